//! Which processes have the session's terminal, read from `/proc`.
//!
//! The gate asks this when the user presses Enter while a command runs: an
//! interactive shell in the foreground process group that is not the
//! hooked shell is a shell nobody gates. `comm`, `stat` and `cmdline` are
//! readable by the recorder's service user for any process (unless `/proc`
//! is mounted with `hidepid`, when the check sees nothing and says so by
//! finding nothing).

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
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// A process's name and arguments.
pub fn read(pid: i32) -> Option<Process> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?.trim_end().to_owned();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args = cmdline.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    Some(Process { pid, name, args })
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
    }
}
