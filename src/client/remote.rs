//! `custos verify --server URL SESSION` and `custos export --server URL
//! SESSION`: the evidence commands over a collector's copy of a session.
//!
//! The chunks are downloaded as they are stored (`GET
//! /v1/sessions/{id}/chunks/{seq}`) into a private temporary session
//! directory, and then verified offline by the same code that verifies a
//! local spool. So the collector is trusted for nothing but delivery: a
//! chunk it changed, dropped or reordered is reported like a local one.
//! The public keys come from `--key` when given (the strong form: keys the
//! auditor holds); otherwise from the collector's enrolled-key list, which
//! the output says.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::client::Collector;
use crate::cmd::evidence::{describe, verify_session, ExportArgs, VerifyArgs};
use crate::evidence::spool::chunk_file_name;
use crate::evidence::SessionDir;

/// Downloads every stored chunk of `session` into `<into>/<session>/`.
async fn download(collector: &Collector, session: &str, into: &Path) -> anyhow::Result<PathBuf> {
    let dir = into.join(session);
    crate::recorder::layout::ensure_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
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

pub fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let collector = args.remote.connect()?;
    let session = session_id(&args.path.to_string_lossy())?;
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let runtime = crate::client::runtime()?;
    let (dir, (keys, source)) = runtime.block_on(async {
        anyhow::Ok((download(&collector, &session, tmp.path()).await?, keys(&collector, &args.keys).await?))
    })?;
    let keys = crate::cmd::evidence::resolve_keys(&keys)?;
    let report = verify_session(&SessionDir::open(&dir)?, &keys)?;
    println!("{}", describe(&report, &format!("{}, checked with {source}", collector.base())));
    Ok(if report.is_intact() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let collector = args.remote.connect()?;
    let session = session_id(&args.path.to_string_lossy())?;
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let runtime = crate::client::runtime()?;
    let (dir, (keys, _)) = runtime.block_on(async {
        anyhow::Ok((download(&collector, &session, tmp.path()).await?, keys(&collector, &args.keys).await?))
    })?;
    let local = ExportArgs {
        path: dir,
        format: args.format,
        output: args.output.clone(),
        keys,
        unverified: args.unverified,
        from: args.from.clone(),
        to: args.to.clone(),
        remote: crate::client::sessions::Remote { server: None, token: None, token_file: None },
    };
    crate::cmd::evidence::export(&local)
}
