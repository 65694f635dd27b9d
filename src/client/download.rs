//! A collector's copy of one session, fetched for offline checking: what
//! `custos verify --server URL SESSION` and `custos export --server URL
//! SESSION` start from.
//!
//! The chunks are downloaded as they are stored (`GET
//! /v1/sessions/{id}/chunks/{seq}`) into a private temporary session
//! directory, and then verified offline by the same code that verifies a
//! local spool (`cmd::evidence`). So the collector is trusted for nothing
//! but delivery: a chunk it changed, dropped or reordered is reported like
//! a local one. The public keys come from `--key` when given (the strong
//! form: keys the auditor holds); otherwise from the collector's
//! enrolled-key list, which the output says.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::client::Collector;
use crate::evidence::spool::chunk_file_name;

/// One session's chunks in a private temporary directory, and the keys to
/// check them with. The directory is removed when this is dropped.
pub struct Downloaded {
    _tmp: tempfile::TempDir,
    /// The session's chunk directory.
    pub dir: PathBuf,
    /// The keys to verify with: `--key` values, else the collector's list.
    pub keys: Vec<String>,
    /// Where `keys` came from, for the report.
    pub key_source: &'static str,
}

/// Downloads every stored chunk of the session `text` names (a session id)
/// and picks the keys: `given` if any, else those enrolled at the collector.
pub fn session(collector: &Collector, text: &str, given: &[String]) -> anyhow::Result<Downloaded> {
    let session = session_id(text)?;
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let runtime = crate::client::runtime()?;
    let (dir, (keys, key_source)) = runtime.block_on(async {
        anyhow::Ok((download(collector, &session, tmp.path()).await?, keys(collector, given).await?))
    })?;
    Ok(Downloaded { _tmp: tmp, dir, keys, key_source })
}

/// Downloads every stored chunk of `session` into `<into>/<session>/`.
async fn download(collector: &Collector, session: &str, into: &Path) -> anyhow::Result<PathBuf> {
    let dir = into.join(session);
    crate::layout::ensure_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for info in collector.chunk_list(session).await? {
        let bytes = collector.chunk(session, info.seq).await?;
        let path = dir.join(chunk_file_name(info.seq));
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// The keys to verify with: `--key` values, else the collector's list.
async fn keys(collector: &Collector, given: &[String]) -> anyhow::Result<(Vec<String>, &'static str)> {
    if given.is_empty() {
        Ok((collector.keys().await?, "keys enrolled at the collector"))
    } else {
        Ok((given.to_vec(), "the keys given"))
    }
}

fn session_id(text: &str) -> anyhow::Result<String> {
    Ok(uuid::Uuid::parse_str(text)
        .with_context(|| format!("with --server, {text:?} must be a session id"))?
        .to_string())
}
