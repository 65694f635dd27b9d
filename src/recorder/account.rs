//! The unix account the session belongs to: the *real* uid of this process,
//! never anything the environment says (`USER`, `HOME` and `LOGNAME` are the
//! user's to set).

use std::path::PathBuf;

use nix::unistd::{Gid, Group, Uid, User};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// Names of the primary and supplementary groups.
    pub groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("uid {0} has no entry in the user database")]
    Unknown(u32),
    #[error("looking up uid {uid}: {source}")]
    Lookup { uid: u32, source: nix::Error },
}

impl Account {
    /// Looks up `uid` in the user and group databases.
    pub fn lookup(uid: u32) -> Result<Self, AccountError> {
        let user = User::from_uid(Uid::from_raw(uid))
            .map_err(|source| AccountError::Lookup { uid, source })?
            .ok_or(AccountError::Unknown(uid))?;
        let mut groups = Vec::new();
        let cname = std::ffi::CString::new(user.name.clone()).unwrap_or_default();
        let gids = nix::unistd::getgrouplist(&cname, user.gid).unwrap_or_else(|_| vec![user.gid]);
        for gid in gids {
            if let Ok(Some(g)) = Group::from_gid(gid) {
                if !groups.contains(&g.name) {
                    groups.push(g.name);
                }
            }
        }
        Ok(Self { name: user.name, uid, gid: user.gid.as_raw(), home: user.dir, groups })
    }

    /// The account of a group's gid, for messages.
    pub fn group_name(gid: u32) -> Option<String> {
        Group::from_gid(Gid::from_raw(gid)).ok().flatten().map(|g| g.name)
    }
}

/// The machine's host name, for the header and the status line.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}
