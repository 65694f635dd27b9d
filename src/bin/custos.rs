//! `custos`: every subcommand other than the login shell itself.
//!
//! Exit codes: 0 success; 1 the command ran and found a problem (for
//! example `doctor` found an installation fault); 2 usage errors (clap).
//! `policy check` adds 3 for an approve verdict (its codes are listed in
//! `policy::cli`).

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "custos", version = custos::VERSION, about = "custos: recorded, masked, guarded shells for privileged access")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a recorded shell in this terminal, with everything under a
    /// temporary directory (no root needed).
    Demo(custos::cmd::demo::Args),
    /// Check an installation: binary bits and owners, configuration, spool.
    Doctor(custos::cmd::doctor::Args),
    /// Write recordings out as .cast (v3 or v2), plain text, or JSON lines.
    Export(custos::cmd::evidence::ExportArgs),
    /// Make the host key that signs recordings; prints the public key.
    Keygen(custos::cmd::evidence::KeygenArgs),
    /// Mask raw terminal bytes from stdin as a session would, to stdout.
    Mask(custos::cmd::mask::Args),
    /// Check command lines against the command policy, offline.
    Policy(custos::cmd::policy::Args),
    /// Run the collector: hosts upload signed chunks, auditors read sessions.
    Serve(custos::cmd::serve::Args),
    /// Register this host's public key with a collector.
    Enroll(custos::cmd::enroll::Args),
    /// Deliver spooled chunks to the collector.
    Upload(custos::cmd::upload::Args),
    /// List and search the sessions a collector holds.
    Sessions(custos::cmd::sessions::Args),
    /// Check recordings' signatures and hash chain; exit 0 only when intact
    /// and complete.
    Verify(custos::cmd::evidence::VerifyArgs),
    /// Browse and play recorded sessions (the auditor's TUI).
    Replay(custos::cmd::replay::Args),
    /// Sign in with the OpenID provider (device flow) and cache the identity.
    Login(custos::cmd::identity::LoginArgs),
    /// Forget the cached sign-in.
    Logout(custos::cmd::identity::LoginArgs),
    /// The recorder's identity helper (reads a request on stdin).
    #[command(hide = true)]
    Identity(custos::cmd::identity::HelperArgs),
    /// Print the completion script for a shell (bash, zsh, fish, ...).
    Completions(custos::cmd::docs::CompletionsArgs),
    /// Write the man pages of custos, its subcommands and custos-shell.
    Man(custos::cmd::docs::ManArgs),
    /// Decide pending approval requests (the approver's TUI).
    Approve(custos::cmd::approve::Args),
    /// The recorder's link to the collector for held lines (internal).
    #[command(hide = true)]
    ApprovalAgent(custos::client::approval::Args),
    /// Starts `custos approve` for custos-shell's approvals pane (internal).
    #[command(hide = true)]
    PaneLauncher {
        #[arg(last = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => custos::cmd::demo::run(&args),
        Command::Completions(args) => custos::cmd::docs::completions(&args, Cli::command()),
        Command::Man(args) => custos::cmd::docs::man(&args, Cli::command()),
        Command::Doctor(args) => custos::cmd::doctor::run(&args),
        Command::Export(args) => custos::cmd::evidence::export(&args),
        Command::Keygen(args) => custos::cmd::evidence::keygen(&args),
        Command::Mask(args) => custos::cmd::mask::run(&args),
        Command::Policy(args) => custos::cmd::policy::run(&args),
        Command::Serve(args) => custos::cmd::serve::run(&args),
        Command::Enroll(args) => custos::cmd::enroll::run(&args),
        Command::Upload(args) => custos::cmd::upload::run(&args),
        Command::Sessions(args) => custos::cmd::sessions::run(&args),
        Command::Verify(args) => custos::cmd::evidence::verify(&args),
        Command::Replay(args) => custos::cmd::replay::run(&args),
        Command::Login(args) => custos::cmd::identity::login(&args),
        Command::Logout(args) => custos::cmd::identity::logout(&args),
        Command::Identity(args) => custos::cmd::identity::helper(&args),
        Command::Approve(args) => custos::cmd::approve::run(&args),
        Command::ApprovalAgent(args) => custos::client::approval::run(&args),
        Command::PaneLauncher { args } => custos::recorder::pane::launcher::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One write: `eprintln!` writes each formatted piece on its own,
            // and a reader between them (the approvals pane, a recording)
            // would show `custos:` apart from its message.
            let message = format!("custos: {e:#}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), message.as_bytes());
            ExitCode::FAILURE
        }
    }
}
