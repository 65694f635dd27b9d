//! Privilege separation (tlog's design).
//!
//! `custos-shell` is installed setuid and setgid to the dedicated `custos`
//! service user. It starts with the user's real ids and `custos` effective
//! ids, and splits in two:
//!
//! - the **child** drops to the user permanently (real, effective and saved
//!   ids) and execs the real shell;
//! - the **parent**, the recorder, drops to `custos` permanently.
//!
//! After the split, nothing the user runs shares an id with the recorder, so
//! the kernel refuses the user's `kill` and `ptrace` on it, and its files
//! (spool, keys) are unreadable to the user. A setuid exec also clears the
//! recorder's dumpable flag, so `/proc/PID` of the recorder is root's.
//!
//! Without the setuid bits (development, tests, `custos demo`) real and
//! effective ids are equal: there is nothing to separate and every step here
//! is a no-op.
//!
//! Supplementary groups cannot be changed without `CAP_SETGID`; both halves
//! keep the ones `login`/`sshd` gave the user. The recorder's access is
//! still bounded by its uid, and signals and ptrace are decided by uid.

use nix::unistd::{getegid, geteuid, getgid, getuid, setresgid, setresuid, Gid, Uid};

/// The ids this process started with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Privilege {
    pub user_uid: u32,
    pub user_gid: u32,
    pub service_uid: u32,
    pub service_gid: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot {what}: {source}")]
pub struct DropError {
    what: &'static str,
    source: nix::Error,
}

impl Privilege {
    pub fn current() -> Self {
        Self {
            user_uid: getuid().as_raw(),
            user_gid: getgid().as_raw(),
            service_uid: geteuid().as_raw(),
            service_gid: getegid().as_raw(),
        }
    }

    /// Running setuid or setgid: config and paths come only from root-owned
    /// places, and the split below is real.
    pub fn is_privileged(&self) -> bool {
        self.user_uid != self.service_uid || self.user_gid != self.service_gid
    }

    /// Runs `f` with the user's effective ids, then restores the service
    /// ids. Used to open the PTY so the user owns their terminal device.
    pub fn as_user<T>(&self, f: impl FnOnce() -> T) -> Result<T, DropError> {
        if !self.is_privileged() {
            return Ok(f());
        }
        set_effective(self.user_uid, self.user_gid, "switch to the user's ids")?;
        let result = f();
        set_effective(self.service_uid, self.service_gid, "switch back to the service ids")?;
        Ok(result)
    }

    /// In the child, before exec: become the user for good.
    pub fn drop_to_user(&self) -> Result<(), DropError> {
        set_all(self.user_uid, self.user_gid, "drop to the user's ids")
    }

    /// In the recorder: become the service user for good.
    pub fn drop_to_service(&self) -> Result<(), DropError> {
        if !self.is_privileged() {
            return Ok(());
        }
        set_all(self.service_uid, self.service_gid, "drop to the service ids")
    }
}

fn set_effective(uid: u32, gid: u32, what: &'static str) -> Result<(), DropError> {
    let keep = Gid::from_raw(u32::MAX);
    let keep_u = Uid::from_raw(u32::MAX);
    // Group first: once the uid changes we may lose the right to change it.
    setresgid(keep, Gid::from_raw(gid), keep).map_err(|source| DropError { what, source })?;
    setresuid(keep_u, Uid::from_raw(uid), keep_u).map_err(|source| DropError { what, source })
}

fn set_all(uid: u32, gid: u32, what: &'static str) -> Result<(), DropError> {
    let g = Gid::from_raw(gid);
    let u = Uid::from_raw(uid);
    setresgid(g, g, g).map_err(|source| DropError { what, source })?;
    setresuid(u, u, u).map_err(|source| DropError { what, source })?;
    // Fail closed: verify the drop took, on every id.
    let (r, e, s) = (getuid(), geteuid(), nix::unistd::getresuid().map(|ids| ids.saved).unwrap_or(u));
    if r != u || e != u || s != u || getgid() != g || getegid() != g {
        return Err(DropError { what, source: nix::Error::EPERM });
    }
    Ok(())
}
