//! Detecting a `custos-shell` started inside an already recorded session,
//! so it runs the real shell without recording twice.
//!
//! tlog keys this on the kernel audit session id, which `pam_loginuid` sets
//! at login and no user process can change. Where it is unset
//! (`/proc/self/sessionid` reads 4294967295, as without `pam_loginuid`), we
//! key on the controlling terminal instead: every recorder holds an `flock`
//! on `<spool>/run/tty-MAJOR-MINOR` for the PTY it created (and on
//! `audit-ID` when the audit id is set). The directory belongs to `custos`,
//! mode 0700, so the user can neither create such a lock nor hold one open;
//! and a lock is only "held" while its recorder lives, so a crashed
//! recorder leaves nothing stale behind. The controlling terminal comes from
//! `/proc/self/stat`, not from stdin, which the user can redirect freely.
//! An environment variable would be forgeable, so none is consulted.

use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::fstat;

/// Held by a recorder for the life of its session.
pub struct SessionLocks {
    _locks: Vec<Flock<File>>,
}

const AUDIT_UNSET: u32 = u32::MAX;

fn lock_dir(spool: &Path) -> PathBuf {
    spool.join("run")
}

/// The audit session id, if `pam_loginuid` set one.
pub fn audit_session() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/self/sessionid").ok()?;
    text.trim().parse().ok().filter(|&id| id != AUDIT_UNSET)
}

/// The controlling terminal's (major, minor), from `/proc/self/stat`.
pub fn controlling_tty() -> Option<(u32, u32)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may itself contain spaces and ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let tty_nr: u32 = rest.split(' ').nth(4)?.parse().ok()?;
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some((major, minor))
}

fn held(path: &Path) -> bool {
    let Ok(file) = File::open(path) else { return false };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => false,
        Err((_, e)) => e == nix::Error::EWOULDBLOCK,
    }
}

/// True when this process runs inside a session some live recorder owns.
pub fn is_nested(spool: &Path) -> bool {
    let dir = lock_dir(spool);
    if let Some(id) = audit_session() {
        if held(&dir.join(format!("audit-{id}"))) {
            return true;
        }
    }
    controlling_tty().is_some_and(|(major, minor)| held(&dir.join(format!("tty-{major}-{minor}"))))
}

/// Claims the session for the PTY whose slave is `slave`.
pub fn claim(spool: &Path, slave: impl AsFd) -> std::io::Result<SessionLocks> {
    let dir = lock_dir(spool);
    crate::layout::ensure_private_dir(&dir)?;
    let st = fstat(slave.as_fd()).map_err(std::io::Error::from)?;
    let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
    let mut names = vec![format!("tty-{major}-{minor}")];
    if let Some(id) = audit_session() {
        names.push(format!("audit-{id}"));
    }
    let mut locks = Vec::new();
    for name in names {
        let file = File::options().create(true).truncate(false).write(true).open(dir.join(&name))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
            std::io::Error::new(ErrorKind::WouldBlock, format!("session lock {name} is held: {e}"))
        })?;
        locks.push(lock);
    }
    Ok(SessionLocks { _locks: locks })
}
