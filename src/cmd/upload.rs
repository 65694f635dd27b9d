//! `custos upload`: the front end of the uploader (`client::upload`). Its
//! flags, their defaults from the configuration, and what is reported: each
//! failure on stderr, exit 1 if any, 0 when everything was delivered (or,
//! with `--if-configured`, when no collector is configured at all).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::client::upload::{KeepLocal, Uploader};
use crate::client::Collector;
use crate::evidence::HostKey;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The spool directory (default: `[recording] spool_dir` from config).
    #[arg(long)]
    pub spool: Option<PathBuf>,
    /// The collector URL (default: `[collector] url` from config).
    #[arg(long)]
    pub server: Option<String>,
    /// The host key for sealing orphaned sessions (default: `[evidence] key`).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Deliver everything in the spool once and exit (the default).
    #[arg(long, conflicts_with = "follow")]
    pub once: bool,
    /// Follow this live session until its final chunk is acknowledged, then
    /// deliver whatever else the spool holds.
    #[arg(long, value_name = "SESSION")]
    pub follow: Option<String>,
    /// How often to look for new chunks while following, in milliseconds.
    #[arg(long, default_value_t = 250)]
    pub poll_ms: u64,
    /// Exit quietly (0) when no collector is configured: the systemd timer
    /// runs on every host, configured or not.
    #[arg(long)]
    pub if_configured: bool,
    /// Tries per session for transient failures with --once.
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let config = crate::config::Config::load(false, std::env::var("CUSTOS_CONFIG").ok().as_deref())?;
    let Some(server) = args.server.clone().or_else(|| config.collector.url.clone()) else {
        if args.if_configured {
            return Ok(ExitCode::SUCCESS);
        }
        anyhow::bail!("no collector: pass --server URL or set [collector] url in the config");
    };
    let spool = args.spool.clone().unwrap_or_else(|| config.recording.spool_dir.clone());
    let key_path = Some(args.key.clone().unwrap_or_else(|| configured_key_path(&config)));
    let key = match key_path {
        Some(path) => match HostKey::load(&path) {
            Ok(key) => Some(key),
            Err(e) => {
                // Without the key, uploading still works; sealing orphans and
                // following (which ask the collector where a session stands,
                // signed by the key) do not.
                eprintln!("custos upload: orphaned sessions cannot be sealed nor followed: {e}");
                None
            }
        },
        None => None,
    };
    let uploader = Uploader {
        collector: Collector::new(&server, None)?,
        spool,
        key,
        base_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(30),
        keep: config.recording.keep_local.map(|keep| KeepLocal { keep, max_bytes: config.evidence.spool_quota_bytes }),
    };
    let runtime = crate::client::runtime()?;
    runtime.block_on(async {
        let mut failed = false;
        if let Some(session) = &args.follow {
            let session = uuid::Uuid::parse_str(session)
                .with_context(|| format!("--follow {session:?} is not a session id"))?
                .to_string();
            if let Err(e) = uploader.follow(&session, Duration::from_millis(args.poll_ms.max(10))).await {
                eprintln!("custos upload: {e}");
                failed = true;
            }
            for e in uploader.drain(args.attempts.max(1), Some(&session)).await {
                eprintln!("custos upload: {e}");
                failed = true;
            }
        } else {
            for e in uploader.drain(args.attempts.max(1), None).await {
                eprintln!("custos upload: {e} (the chunks stay in the spool)");
                failed = true;
            }
        }
        Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    })
}

/// The host key's path from the configuration (`[evidence] key`).
pub fn configured_key_path(config: &crate::config::Config) -> PathBuf {
    config.evidence.key.clone()
}
