//! `custos completions` and `custos man`: shell completions and man pages,
//! generated from the clap definitions the binary parses its arguments
//! with, so that neither can drift from the options that exist. install.sh
//! writes both where bash-completion, zsh, fish and man look.
//!
//! `custos-shell` takes a login shell's arguments and hands them on
//! unchanged (see `recorder::invocation`), so it has no clap parser: its
//! page comes from [`shell_command`], a description of those arguments.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Directory for custos.1, one custos-SUBCOMMAND.1 per subcommand, and
    /// custos-shell.1 (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Writes the completion script for `cli` (the `custos` command) to stdout.
pub fn completions(args: &CompletionsArgs, mut cli: clap::Command) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "custos", &mut out);
    std::io::stdout().lock().write_all(&out).context("cannot write the completion script")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the man pages of `cli` (the `custos` command, and each of its
/// subcommands that is not hidden) and of `custos-shell` to `args.out`.
pub fn man(args: &ManArgs, cli: clap::Command) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let written = |e: std::io::Error| anyhow::anyhow!("cannot write a man page to {}: {e}", args.out.display());
    clap_mangen::generate_to(cli.version(crate::VERSION), &args.out).map_err(written)?;
    clap_mangen::Man::new(shell_command()).generate_to(&args.out).map_err(written)?;
    println!("wrote the man pages to {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// `custos-shell`'s arguments as its man page shows them. They are a
/// login shell's, passed to the real shell as they are.
pub fn shell_command() -> clap::Command {
    use clap::{Arg, ArgAction};
    clap::Command::new("custos-shell")
        .version(crate::VERSION)
        .about("The recording login shell: starts the user's real shell recorded, masked and gated")
        .long_about(
            "custos-shell is set as the login shell of the people and jobs that touch production. \
             It starts the real shell ([shell] default in /etc/custos/custos.toml, else bash) with the \
             same arguments, on a terminal it records: every session is an asciicast recording bound to \
             the user's identity, with secrets masked on the screen and in the recording, each command \
             line checked against the command policy (/etc/custos/policy.toml), and the recording signed \
             and sent to the collector. Without a terminal (ssh host cmd, scp, rsync, git) each stream \
             is recorded and every command the shell runs is checked the same way.",
        )
        .after_help(
            "FILES: /etc/custos/custos.toml (configuration), /etc/custos/policy.toml (command policy), \
             /var/lib/custos (the spool: recordings not yet delivered, and the host key). \
             EXIT STATUS: the real shell's; 126 when a command is refused or the session cannot be \
             recorded (nothing runs unrecorded). See also custos(1), custos-doctor(1), custos-replay(1).",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(Arg::new("login").short('l').long("login").action(ArgAction::SetTrue).help("Start a login shell (also when argv[0] begins with '-', as login and sshd start it)"))
        .arg(Arg::new("interactive").short('i').action(ArgAction::SetTrue).help("Start an interactive shell"))
        .arg(Arg::new("command").short('c').value_name("COMMAND").help("Run COMMAND (ssh host COMMAND, scp, rsync, git); it is checked against the policy before it runs"))
        .arg(Arg::new("option").short('o').value_name("OPTION").action(ArgAction::Append).help("A shell option, passed to the real shell"))
        .arg(Arg::new("script").value_name("SCRIPT").help("A script to run; its commands are checked as they run"))
        .arg(Arg::new("args").value_name("ARG").num_args(0..).trailing_var_arg(true).help("Arguments for COMMAND or SCRIPT"))
}
