//! `custos`: every subcommand other than the login shell itself.
//!
//! Exit codes: 0 success; 1 the command ran and found a problem (for
//! example `doctor` found an installation fault); 2 usage errors (clap).
//! `policy check` adds 3 for an approve verdict (its codes are listed in
//! `policy::cli`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "custos", version, about = "custos: recorded, masked, guarded shells for privileged access")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a recorded shell in this terminal, with everything under a
    /// temporary directory (no root needed).
    Demo(custos::demo::Args),
    /// Check an installation: binary bits and owners, configuration, spool.
    Doctor(custos::doctor::Args),
    /// Mask raw terminal bytes from stdin as a session would, to stdout.
    Mask(custos::offline::Args),
    /// Check command lines against the command policy, offline.
    Policy(custos::policy::cli::Args),
    /// Browse and play recorded sessions (the auditor's TUI).
    Replay(custos::replay::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => custos::demo::run(&args),
        Command::Doctor(args) => custos::doctor::run(&args),
        Command::Mask(args) => custos::offline::run(&args),
        Command::Policy(args) => custos::policy::cli::run(&args),
        Command::Replay(args) => custos::replay::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("custos: {e:#}");
            ExitCode::FAILURE
        }
    }
}
