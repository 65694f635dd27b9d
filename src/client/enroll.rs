//! `custos enroll`: registers this host's public key with a collector,
//! using a single-use enrollment token from the collector's admin
//! (`custos serve token` or `POST /v1/enroll-tokens`).
//!
//! The request carries a signature of the token by the host key, so a token
//! can only enroll a key whose secret half the enrolling host holds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::client::Collector;
use crate::evidence::key::enroll_proof_message;
use crate::evidence::HostKey;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The collector URL (default: `[collector] url` from config).
    #[arg(long)]
    pub server: Option<String>,
    /// The enrollment token from the collector's admin.
    #[arg(long)]
    pub token: String,
    /// The host key (default: `[evidence] key` from config).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The name the collector shows for this host (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    use base64::Engine as _;
    let config = crate::config::Config::load(false, std::env::var("CUSTOS_CONFIG").ok().as_deref())?;
    let server = args
        .server
        .clone()
        .or_else(|| config.collector.url.clone())
        .context("no collector: pass --server URL or set [collector] url in the config")?;
    let key_path = args.key.clone().unwrap_or_else(|| crate::client::upload::configured_key_path(&config));
    let key = HostKey::load(&key_path)?;
    let public = key.public();
    let proof = base64::engine::general_purpose::STANDARD.encode(key.sign(&enroll_proof_message(&args.token)));
    let name = args.name.clone().unwrap_or_else(crate::recorder::account::host_name);
    let collector = Collector::new(&server, None)?;
    let runtime = crate::client::runtime()?;
    runtime
        .block_on(collector.enroll(&args.token, &public.to_string(), &proof, &name))
        .with_context(|| format!("enrolling key {} with {server}", public.id()))?;
    println!("enrolled key {} ({public}) as {name:?} with {server}", public.id());
    Ok(ExitCode::SUCCESS)
}
