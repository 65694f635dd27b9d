//! Detecting a `custos-shell` started inside an already recorded session,
//! so it runs the real shell without recording twice.
//!
//! The decision rests on one fact the user can neither forge nor reuse: a
//! live recorder really holds the master side of this process's
//! controlling terminal. While a PTY's master is open its number cannot be
//! given to another terminal, so a recorder that holds it sees everything
//! written there; once the master closes, the fact is gone with it. A lock
//! named after a device number outlived its session (a recorder waiting
//! for a shell that ignored SIGHUP), and the next login on that number ran
//! unrecorded; an environment variable can be set by anyone.
//!
//! Each recorder registers `<spool>/run/pty-MAJOR-MINOR` (the inner PTY's
//! slave) holding its pid and the master's descriptor number. The file is
//! only a pointer: the verdict comes from `/proc`, read by the privileged
//! stage (act `read-recorder`): the process runs as the service user on
//! every id, from this very executable, and the named descriptor is a
//! `ptmx` whose `tty-index` is this terminal's. A stale or forged file
//! fails those checks and the session is recorded. When in doubt, record.
//! The controlling terminal comes from `/proc/self/stat`, not from stdin,
//! which the user can redirect freely.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use nix::sys::stat::fstat;

use crate::recorder::privilege::{Privilege, RecorderFacts};

fn lock_dir(spool: &Path) -> PathBuf {
    spool.join("run")
}

fn registration(spool: &Path, rdev: (u32, u32)) -> PathBuf {
    lock_dir(spool).join(format!("pty-{}-{}", rdev.0, rdev.1))
}

pub use crate::recorder::pty::controlling_tty;

/// True when this process's controlling terminal is the inner PTY of a
/// live recorder (see the module doc).
pub fn is_nested(spool: &Path, privilege: &Privilege) -> bool {
    let Some(tty) = controlling_tty() else { return false };
    let Ok(text) = std::fs::read_to_string(registration(spool, tty)) else { return false };
    let Some((pid, fd)) = parse_registration(&text) else { return false };
    let Some(facts) = privilege.read_recorder(pid, fd) else { return false };
    let Ok(ours) = std::fs::metadata("/proc/self/exe") else { return false };
    let pts_rdev = |index: u32| std::fs::metadata(format!("/dev/pts/{index}")).ok().map(|m| m.rdev());
    holds_master(&facts, privilege.service_uid, (ours.dev(), ours.ino()), tty, pts_rdev)
}

fn parse_registration(text: &str) -> Option<(i32, i32)> {
    let mut f = text.split_whitespace();
    let pid: i32 = f.next()?.parse().ok()?;
    let fd: i32 = f.next()?.parse().ok()?;
    (pid > 0 && fd >= 0 && f.next().is_none()).then_some((pid, fd))
}

/// The judgement, on facts already read.
fn holds_master(facts: &RecorderFacts, service_uid: u32, exe: (u64, u64), tty: (u32, u32), pts_rdev: impl Fn(u32) -> Option<u64>) -> bool {
    let uids: Option<Vec<u32>> = facts
        .status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map(|ids| ids.split_whitespace().filter_map(|v| v.parse().ok()).collect());
    let runs_as_service = uids.is_some_and(|ids| ids.len() == 4 && ids.iter().all(|&id| id == service_uid));
    let is_ptmx = facts.fd_link == Path::new("/dev/ptmx") || facts.fd_link == Path::new("/dev/pts/ptmx");
    let index: Option<u32> = facts.fdinfo.lines().find_map(|l| l.strip_prefix("tty-index:")).and_then(|v| v.trim().parse().ok());
    let ours = libc::makedev(tty.0, tty.1);
    runs_as_service && facts.exe == exe && is_ptmx && index.and_then(pts_rdev) == Some(ours)
}

/// A recorder's registration, removed when the session ends.
pub struct Registration {
    path: PathBuf,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Registers this recorder as the holder of `master`, whose slave is
/// `slave`. Call it as the service user (the spool is its own).
pub fn register(spool: &Path, master: impl AsFd, slave: impl AsFd) -> std::io::Result<Registration> {
    let dir = lock_dir(spool);
    crate::layout::ensure_private_dir(&dir)?;
    let st = fstat(slave.as_fd()).map_err(std::io::Error::from)?;
    let path = registration(spool, (libc::major(st.st_rdev), libc::minor(st.st_rdev)));
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut file = File::create(&tmp)?;
    writeln!(file, "{} {}", std::process::id(), master.as_fd().as_raw_fd())?;
    drop(file);
    std::fs::rename(&tmp, &path)?;
    Ok(Registration { path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(uid: u32, link: &str, index: u32) -> RecorderFacts {
        RecorderFacts {
            status: format!("Name:\tcustos-shell\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t1\t1\t1\t1\n"),
            exe: (8, 99),
            fd_link: PathBuf::from(link),
            fdinfo: format!("pos:\t0\nflags:\t02104002\nmnt_id:\t24\nino:\t90\ntty-index:\t{index}\n"),
        }
    }

    fn pts(index: u32) -> Option<u64> {
        Some(libc::makedev(136, index))
    }

    #[test]
    fn a_recorder_holding_this_terminals_master_makes_a_nested_session() {
        assert!(holds_master(&facts(998, "/dev/pts/ptmx", 4), 998, (8, 99), (136, 4), pts));
        assert!(holds_master(&facts(998, "/dev/ptmx", 4), 998, (8, 99), (136, 4), pts));
    }

    #[test]
    fn anything_less_is_recorded() {
        // Another terminal's master.
        assert!(!holds_master(&facts(998, "/dev/ptmx", 5), 998, (8, 99), (136, 4), pts));
        // Not the service user (a process of the user's, a forged pid).
        assert!(!holds_master(&facts(1000, "/dev/ptmx", 4), 998, (8, 99), (136, 4), pts));
        // Another program.
        assert!(!holds_master(&facts(998, "/dev/ptmx", 4), 998, (8, 100), (136, 4), pts));
        // Not a PTY master.
        assert!(!holds_master(&facts(998, "/dev/pts/4", 4), 998, (8, 99), (136, 4), pts));
        // The terminal no longer exists.
        assert!(!holds_master(&facts(998, "/dev/ptmx", 4), 998, (8, 99), (136, 4), |_| None));
        // Mixed ids.
        let mut f = facts(998, "/dev/ptmx", 4);
        f.status = "Uid:\t1000\t998\t998\t998\n".into();
        assert!(!holds_master(&f, 998, (8, 99), (136, 4), pts));
        // No tty-index line (an older kernel): record.
        let mut f = facts(998, "/dev/ptmx", 4);
        f.fdinfo = "pos:\t0\n".into();
        assert!(!holds_master(&f, 998, (8, 99), (136, 4), pts));
    }

    #[test]
    fn registrations_must_be_exactly_two_numbers() {
        assert_eq!(parse_registration("123 7\n"), Some((123, 7)));
        for bad in ["", "123", "x 7", "123 7 9", "-1 7", "0 7"] {
            assert_eq!(parse_registration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_live_recorder_in_this_process_is_seen_through_proc() {
        // This test process plays the recorder: it holds a PTY master and
        // is registered; a child whose controlling terminal is the slave
        // is nested, the test process itself (another terminal) is not.
        let privilege = Privilege::begin().unwrap();
        let spool = tempfile::tempdir().unwrap();
        let pty = crate::recorder::pty::Pty::open(crate::term::screen::Size { rows: 24, cols: 80 }).unwrap();
        let _reg = register(spool.path(), &pty.master, &pty.slave).unwrap();
        let st = fstat(pty.slave.as_fd()).unwrap();
        let tty = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
        let text = std::fs::read_to_string(registration(spool.path(), tty)).unwrap();
        let (pid, fd) = parse_registration(&text).unwrap();
        let facts = privilege.read_recorder(pid, fd).unwrap();
        let ours = std::fs::metadata("/proc/self/exe").unwrap();
        let pts_rdev = |index: u32| std::fs::metadata(format!("/dev/pts/{index}")).ok().map(|m| m.rdev());
        assert!(holds_master(&facts, privilege.service_uid, (ours.dev(), ours.ino()), tty, pts_rdev));
        drop(pty);
        // The master closed: the same registration proves nothing now.
        assert!(privilege.read_recorder(pid, fd).is_none_or(|f| !holds_master(&f, privilege.service_uid, (ours.dev(), ours.ino()), tty, pts_rdev)));
    }
}
