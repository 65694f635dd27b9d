//! `custos approve`: the command line of the approver's TUI
//! (`crate::tui::approve`): which collector, which theme, and who the
//! approver is (a registered approver's token, name and key, or the sign-in
//! of `custos login`).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::tui::approve::Credentials;
use crate::tui::theme::Theme;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The collector's base URL (default: `[collector] url` of the configuration).
    #[arg(long)]
    pub server: Option<String>,
    /// Your approver name, as registered with `custos serve approver` (or
    /// CUSTOS_APPROVER_NAME). Not needed when you signed in with `custos login`.
    #[arg(long)]
    pub name: Option<String>,
    /// Your approver token (or CUSTOS_APPROVER_TOKEN). Without one, the ID
    /// token of `custos login` is used and the collector attests your decisions.
    #[arg(long)]
    pub token: Option<String>,
    /// Your signing key, made with `custos keygen --out FILE` (or
    /// CUSTOS_APPROVER_KEY); goes with --token.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// A built-in theme (default, light, high-contrast) or a theme file.
    #[arg(long, default_value = "default", value_name = "NAME|FILE")]
    pub theme: String,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let theme = Theme::load(&args.theme)?;
    let server = crate::client::collector_url(args.server.as_deref())?;
    let credentials = Credentials::resolve(args.name.as_deref(), args.token.as_deref(), args.key.as_deref())?;
    crate::tui::approve::run(theme, server, credentials)
}
