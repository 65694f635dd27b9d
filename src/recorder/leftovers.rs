//! What is left of a session when it ends, and ending it.
//!
//! A login's processes must not outlive its recording unseen: a `nohup`
//! job, a `setsid` daemon or a tmux server started inside would go on
//! running, unrecorded, after logout. When the privileged stage runs, the
//! shell and all it starts live in a cgroup of the session's own (see
//! `privilege`, act `create-cgroup`), which no process can leave by
//! `setsid`, double forks or re-parenting, and whose `cgroup.freeze` and
//! `cgroup.kill` belong to the recorder. At the end the recorder freezes
//! it, lists what is in it, and kills it (`[session] leftovers = "kill"`)
//! or lets it run (`"keep"`); either way the recording names each process.
//!
//! Without the stage (development, tests, the demo) there is no cgroup:
//! the session is the shell's own session id, which a process leaves with
//! `setsid`. Good enough where the user and the recorder are one account.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the session's processes are.
#[derive(Debug, Clone)]
pub enum Containment {
    /// The session's cgroup v2 directory.
    Cgroup(PathBuf),
    /// No cgroup: the processes of the shell's session id.
    Session(i32),
}

/// A process still running at the session's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub pid: i32,
    pub command: String,
}

impl Containment {
    /// Stops every process in place (cgroup only), so the list below is
    /// complete: nothing forks between listing and killing.
    pub fn freeze(&self) {
        let Containment::Cgroup(dir) = self else { return };
        if std::fs::write(dir.join("cgroup.freeze"), "1").is_err() {
            return;
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            let events = std::fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
            if events.lines().any(|l| l == "frozen 1") {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets frozen processes run again (for `keep`).
    pub fn thaw(&self) {
        if let Containment::Cgroup(dir) = self {
            let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
        }
    }

    /// The processes in the session now.
    pub fn list(&self) -> Vec<Leftover> {
        let pids: Vec<i32> = match self {
            Containment::Cgroup(dir) => std::fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect(),
            Containment::Session(sid) => in_session(*sid),
        };
        pids.into_iter().map(|pid| Leftover { pid, command: command_of(pid) }).collect()
    }

    /// Kills every process of the session.
    pub fn kill(&self) {
        match self {
            Containment::Cgroup(dir) => {
                let _ = std::fs::write(dir.join("cgroup.kill"), "1");
                // A frozen cgroup's processes die once thawed.
                self.thaw();
            }
            Containment::Session(sid) => {
                for pid in in_session(*sid) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
    }
}

/// Pids whose session id is `sid`, from `/proc/PID/stat`.
///
/// Every process of the host is looked at, at every session's end (twice
/// when something is left), so each `stat` is read with one `read` into a
/// buffer on the stack: `read_to_string` stats the file and grows its
/// buffer from 32 bytes, eight system calls a process instead of three.
fn in_session(sid: i32) -> Vec<i32> {
    use std::io::Read as _;
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut buf = [0u8; 1024];
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(mut file) = std::fs::File::open(format!("/proc/{pid}/stat")) else { return false };
            let n = file.read(&mut buf).unwrap_or(0);
            let stat = std::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or_default();
            // A zombie has ended; it only waits to be reaped.
            session_of(stat) == Some(sid) && !is_zombie(stat)
        })
        .collect()
}

/// The session id field of a `/proc/PID/stat` line.
fn session_of(stat: &str) -> Option<i32> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split(' ').nth(3)?.parse().ok()
}

fn is_zombie(stat: &str) -> bool {
    stat.rfind(')').and_then(|i| stat.get(i + 2..)).is_some_and(|rest| rest.starts_with('Z'))
}

/// A process's command line, as `ps` shows it, or its name.
fn command_of(pid: i32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_owned();
    if !text.is_empty() {
        return text.chars().take(200).collect();
    }
    std::fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| format!("[{}]", c.trim())).unwrap_or_else(|_| "?".into())
}

/// The marker's text for what was left.
pub fn describe(left: &[Leftover], kept: bool) -> String {
    let what = if kept { "left running ([session] leftovers = \"keep\")" } else { "killed" };
    let list: Vec<String> = left.iter().map(|l| format!("{} {}", l.pid, l.command)).collect();
    format!("processes still running at the end of the session, {what}: {}", list.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_field_is_read_past_a_command_name_with_spaces_and_parens() {
        assert_eq!(session_of("42 (a b) c) S 1 42 77 34816 42 4194560"), Some(77));
        assert_eq!(session_of("garbage"), None);
    }

    #[test]
    fn the_description_names_every_process_and_what_happened() {
        let left = vec![Leftover { pid: 7, command: "sleep 1000".into() }, Leftover { pid: 9, command: "tmux".into() }];
        let killed = describe(&left, false);
        assert!(killed.contains("killed: 7 sleep 1000; 9 tmux"), "{killed}");
        assert!(describe(&left, true).contains("left running"));
    }

    #[test]
    fn a_session_without_a_cgroup_is_found_by_its_session_id() {
        use std::os::unix::process::CommandExt as _;
        let mut child = std::process::Command::new("sleep");
        child.arg("30");
        // SAFETY: setsid in the child before exec.
        unsafe {
            child.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = child.spawn().unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        let session = Containment::Session(pid);
        let listed = session.list();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].pid, pid);
        assert!(listed[0].command.starts_with("sleep 30"), "{listed:?}");
        session.kill();
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    }
}
