//! `custos enroll`: the front end of enrollment (`client::enroll`). Its
//! flags, their defaults from the configuration (collector URL, host key)
//! and the host name, and the lines it prints on success (the enrollment,
//! and the collector's attestation key it pinned beside the host key).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

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
    /// The name the collector knows this host by. It must be the host
    /// name: the collector accepts an approval request only from the host
    /// its key was enrolled as, and this host's requests and recordings
    /// carry its host name (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let config = crate::config::Config::load(false, std::env::var("CUSTOS_CONFIG").ok().as_deref())?;
    let server = args
        .server
        .clone()
        .or_else(|| config.collector.url.clone())
        .context("no collector: pass --server URL or set [collector] url in the config")?;
    let key_path = args.key.clone().unwrap_or_else(|| crate::cmd::upload::configured_key_path(&config));
    let key = HostKey::load(&key_path)?;
    let public = key.public();
    let host = crate::recorder::account::host_name();
    let name = args.name.clone().unwrap_or_else(|| host.clone());
    if name != host {
        // Refused here, before the token is spent: enrolled under another
        // name, every approval request of this host would be refused
        // later with `wrong_host`, at the worst moment.
        anyhow::bail!(
            "--name {name:?} is not this host's name ({host:?}): the collector accepts approval requests only from the name \
             a key was enrolled as, and this host's requests and recordings carry {host:?}. Enroll without --name, or set \
             the host name first (hostnamectl set-hostname {name})"
        );
    }
    let attestation = crate::client::enroll::enroll(&server, &args.token, &key, &name)?;
    println!("enrolled key {} ({public}) as {name:?} with {server}", public.id());
    if let Some(collector) = attestation {
        let (path, replaced) = crate::client::enroll::pin_collector(&key_path, &collector)?;
        println!("pinned the collector's attestation key {collector} in {}", path.display());
        if let Some(old) = replaced {
            println!("(it replaces {old}: decisions attested by the old key are no longer trusted)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
