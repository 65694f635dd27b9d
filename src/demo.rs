//! `custos demo`: a recorded shell in the current terminal, with everything
//! (configuration, spool) under a temporary directory and no root needed.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
