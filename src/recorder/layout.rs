//! The spool: the `custos`-owned directory where recordings are written
//! before anything else happens to them (the evidence issue adds chunks and
//! upload on top). Layout:
//!
//! ```text
//! <spool_dir>/            0700, owned by custos
//!   chunks/<session-id>/  signed chunks, when the host has a key (`sink`)
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
