//! The identity cache: one JSON file per unix user, mode 0600, in a
//! directory only its owner can enter. The recorder's cache is in the
//! custos-owned spool; `custos login` for clients keeps one in the user's
//! own cache directory. Writes go to a temporary file renamed into place,
//! so a crash never leaves half an entry.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Identity;

/// One cached sign-in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// The provider and client it was obtained from: a cache made for
    /// another issuer is never used.
    pub issuer: String,
    pub client_id: String,
    pub identity: Identity,
    pub refresh_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{0:?} is not a user name that can name a cache file")]
    BadUser(String),
    #[error("cannot write the identity cache {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot remove the identity cache {path}: {source}")]
    Remove { path: PathBuf, source: std::io::Error },
}

/// The file for `user` in `dir`.
pub fn path(dir: &Path, user: &str) -> Result<PathBuf, CacheError> {
    if user.is_empty() || user.starts_with('.') || user.contains(['/', '\0']) {
        return Err(CacheError::BadUser(user.to_owned()));
    }
    Ok(dir.join(format!("{user}.json")))
}

/// The entry for `user`, if there is a readable, well-formed one made for
/// `issuer` and `client_id`. A damaged file is treated as absent (a fresh
/// sign-in replaces it).
pub fn load(dir: &Path, user: &str, issuer: &str, client_id: &str) -> Option<Entry> {
    let text = std::fs::read(path(dir, user).ok()?).ok()?;
    let entry: Entry = serde_json::from_slice(&text).ok()?;
    (entry.issuer == issuer && entry.client_id == client_id).then_some(entry)
}

pub fn store(dir: &Path, user: &str, entry: &Entry) -> Result<(), CacheError> {
    let target = path(dir, user)?;
    let write = |source| CacheError::Write { path: target.clone(), source };
    crate::layout::ensure_private_dir(dir).map_err(write)?;
    let tmp = dir.join(format!(".{user}.json.tmp"));
    let body = serde_json::to_vec_pretty(entry).map_err(|e| write(e.into()))?;
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(write)?;
    f.write_all(&body).map_err(write)?;
    f.sync_all().map_err(write)?;
    std::fs::rename(&tmp, &target).map_err(write)
}

/// Forgets `user`'s sign-in. Returns whether there was one.
pub fn remove(dir: &Path, user: &str) -> Result<bool, CacheError> {
    let target = path(dir, user)?;
    match std::fs::remove_file(&target) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(CacheError::Remove { path: target, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Obtained;
    use std::os::unix::fs::PermissionsExt as _;

    fn entry(issuer: &str) -> Entry {
        Entry {
            issuer: issuer.into(),
            client_id: "custos".into(),
            identity: Identity {
                verified: true,
                issuer: issuer.into(),
                subject: "alice".into(),
                email: None,
                name: None,
                groups: vec!["sre".into()],
                obtained: Obtained::Device,
                id_token: Some("a.b.c".into()),
                expires_at: Some(1),
            },
            refresh_token: Some("r".into()),
        }
    }

    #[test]
    fn entries_round_trip_privately_and_only_for_their_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("identity");
        store(&cache, "alice", &entry("https://idp")).unwrap();
        let mode = std::fs::metadata(cache.join("alice.json")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::metadata(&cache).unwrap().permissions().mode() & 0o077, 0);
        assert_eq!(load(&cache, "alice", "https://idp", "custos").unwrap().identity.subject, "alice");
        assert!(load(&cache, "alice", "https://other", "custos").is_none());
        assert!(load(&cache, "alice", "https://idp", "other-client").is_none());
        assert!(remove(&cache, "alice").unwrap());
        assert!(!remove(&cache, "alice").unwrap());
    }

    #[test]
    fn a_damaged_entry_is_absent_and_odd_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bob.json"), "{not json").unwrap();
        assert!(load(dir.path(), "bob", "https://idp", "custos").is_none());
        for bad in ["", "../etc", ".hidden", "a/b"] {
            assert!(matches!(path(dir.path(), bad), Err(CacheError::BadUser(_))), "{bad}");
        }
    }
}
