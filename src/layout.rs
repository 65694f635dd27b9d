//! Where custos keeps things on a host: the `custos` binary beside
//! `custos-shell`, and the spool, the `custos`-owned directory where
//! recordings are written before anything else happens to them. A leaf:
//! every part that touches these places (recorder, evidence, identity,
//! the collector's data directory, the clients' caches) imports it, and it
//! imports nothing of ours. Layout of the spool:
//!
//! ```text
//! <spool_dir>/            0700, owned by custos
//!   chunks/<session-id>/  signed chunks, when the host has a key (`sink`)
//!   delivered/<session-id>/  chunks the collector has, kept while
//!                         `[recording] keep_local` says (`upload`)
//!   recordings/<session-id>.cast   a plain recording, when it has none
//!   run/                  session locks (see `nesting`)
//! ```

use std::path::{Path, PathBuf};

/// Creates `dir` (and parents) if needed, mode 0700 for what we create.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Where signed chunks go, one directory per session (see `evidence::spool`).
pub fn chunks_root(spool: &Path) -> PathBuf {
    spool.join("chunks")
}

/// Where the recording of `session_id` goes when the host has no key.
pub fn recording_path(spool: &Path, session_id: &str) -> PathBuf {
    spool.join("recordings").join(format!("{session_id}.cast"))
}

/// The `custos` binary installed beside the running `custos-shell`.
pub fn custos_binary() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| std::io::Error::other("the running binary has no directory"))?;
    let custos = dir.join("custos");
    if custos.is_file() {
        Ok(custos)
    } else {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} is missing", custos.display())))
    }
}
