//! Which processes have the session's terminal, read from `/proc`.
//!
//! The gate asks this when the user presses Enter while a command runs: an
//! interactive shell in the foreground process group that is not the
//! hooked shell is a shell nobody gates. `comm`, `stat` and `cmdline` are
//! readable by the recorder's service user for any process (unless `/proc`
//! is mounted with `hidepid`, when the check sees nothing and says so by
//! finding nothing).
//!
//! It also looks past the session's terminal: a program the user starts can
//! open a fresh PTY and run an interactive shell on it (`script`, python's
//! `pty.spawn`, `expect`), which no hooks watch and whose keys never pass
//! the Enter gate. [`elsewhere`] finds the shell's descendants whose
//! controlling terminal is another one. A multiplexer's server (`tmux`,
//! `screen`) daemonizes out of that tree, so its client in the foreground
//! is what gives it away (see `Gate::on_enter`).

use std::os::fd::BorrowedFd;

use super::Process;

/// The processes of the terminal's foreground process group.
pub fn processes(master: BorrowedFd<'_>) -> Vec<Process> {
    let Ok(pgrp) = nix::unistd::tcgetpgrp(master) else { return Vec::new() };
    let pgrp = pgrp.as_raw();
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if pid != pgrp && process_group(pid) != Some(pgrp) {
            continue;
        }
        if let Some(p) = read(pid) {
            found.push(p);
        }
    }
    found
}

/// The process group of `pid`: the fifth field of `/proc/PID/stat`, after
/// the command name in parentheses (which may itself hold spaces and
/// parentheses, so it is skipped from its last `)`).
fn process_group(pid: i32) -> Option<i32> {
    stat_field(pid, 2)
}

/// Field `n` after the command name of `/proc/PID/stat` (0 = state,
/// 1 = parent, 2 = process group, 4 = controlling terminal).
fn stat_field(pid: i32, n: usize) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    rest.split_whitespace().nth(n)?.parse().ok()
}

/// The descendants of `root` whose controlling terminal is neither
/// `root`'s nor none: processes on a terminal of their own inside the
/// session. Each is marked [`Process::other_terminal`].
pub fn elsewhere(root: i32) -> Vec<Process> {
    let Some(own) = stat_field(root, 4) else { return Vec::new() };
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut table: Vec<(i32, i32, i32)> = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if let (Some(ppid), Some(tty)) = (stat_field(pid, 1), stat_field(pid, 4)) {
            table.push((pid, ppid, tty));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while let Some(&parent) = tree.get(i) {
        tree.extend(table.iter().filter(|(_, ppid, _)| *ppid == parent).map(|(pid, _, _)| *pid));
        i += 1;
    }
    table
        .iter()
        .filter(|(pid, _, tty)| *tty != 0 && *tty != own && tree.contains(pid))
        .filter_map(|(pid, _, _)| read(*pid))
        .map(|p| Process { other_terminal: true, ..p })
        .collect()
}

/// A process's name and arguments.
pub fn read(pid: i32) -> Option<Process> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?.trim_end().to_owned();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    Some(Process { pid, name, args, other_terminal: false })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id() as i32;
        let p = read(me).unwrap();
        assert_eq!(p.pid, me);
        assert!(!p.name.is_empty());
        assert!(p.args.first().is_some_and(|a| a.contains("custos")), "{:?}", p.args);
        assert_eq!(process_group(me), Some(nix::unistd::getpgrp().as_raw()));
        assert_eq!(stat_field(me, 1), Some(nix::unistd::getppid().as_raw()));
    }

    #[test]
    fn a_shell_on_a_fresh_pty_below_us_is_found_elsewhere() {
        // A child on a PTY of its own, as `script` makes one.
        let pair = nix::pty::openpty(None, None).unwrap();
        let slave = pair.slave;
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        use std::os::fd::AsRawFd as _;
        use std::os::unix::process::CommandExt as _;
        let fd = slave.as_raw_fd();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(fd, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let me = std::process::id() as i32;
        let mut found = Vec::new();
        for _ in 0..100 {
            found = elsewhere(me);
            if found.iter().any(|p| p.pid == child.id() as i32 && p.name == "sleep") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        let ours = stat_field(me, 4).unwrap();
        let p = found.iter().find(|p| p.pid == child.id() as i32);
        if ours == stat_field(child.id() as i32, 4).unwrap_or(ours) {
            return;
        }
        assert!(p.is_some_and(|p| p.other_terminal), "{found:?}");
    }
}
