//! `custos doctor`: checks an installation and says how to fix what is wrong.
//!
//! An installation is only as strong as its weakest file mode. A missing
//! setuid bit, a spool other users can read, or a config a user can write
//! each quietly turn the recorder into something the user controls, and
//! nothing fails loudly: sessions still start. Doctor looks for exactly
//! those mistakes.
//!
//! The work is split the usual way. [`gather`] is the only part that touches
//! the system: it stats files, reads `/etc/passwd`, `/etc/shells` and sshd's
//! configuration, and loads the custos configuration through
//! [`Config::read`] and [`config::check_root_owned`], the same code the
//! shell itself trusts. It produces plain [`Facts`]. [`diagnose`] is pure:
//! facts in, [`Finding`]s out, each with a level, one line of explanation
//! and, for anything not `ok`, the exact command that fixes it. The unit
//! tests below drive `diagnose`'s parts with hand-written facts.
//!
//! Exit status: 0 when nothing is `FAIL`, 1 otherwise (see `bin/custos.rs`).
//!
//! - `facts`: [`gather`], the one part that reads the system.
//! - `checks`: [`diagnose`] and the findings, pure.
//! - this file: the command's arguments and the report.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config;

mod checks;
mod facts;

pub use checks::*;
pub use facts::*;

/// The service user and group the shell is setuid/setgid to.
pub const SERVICE_USER: &str = "custos";

/// Where install.sh puts the binaries when no prefix is given.
const DEFAULT_SHELL: &str = "/usr/local/bin/custos-shell";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Installation prefix: check PREFIX/bin/custos-shell.
    #[arg(long, value_name = "DIR", conflicts_with = "shell")]
    pub prefix: Option<PathBuf>,
    /// The custos-shell binary to check [default: next to this `custos`,
    /// else /usr/local/bin/custos-shell].
    #[arg(long, value_name = "PATH")]
    pub shell: Option<PathBuf>,
    /// The configuration file to check.
    #[arg(long, value_name = "PATH", default_value = config::SYSTEM_CONFIG)]
    pub config: PathBuf,
    /// Print the commented default configuration and exit. install.sh
    /// writes /etc/custos/custos.toml from this, so the file always matches
    /// the defaults built into the binary it installs.
    #[arg(long, hide = true)]
    pub print_default_config: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if args.print_default_config {
        out.write_all(config::DEFAULT_CONFIG.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let shell = locate_shell(args);
    let facts = gather(&shell, &args.config);
    let findings = diagnose(&facts);
    let failed = findings.iter().any(|f| f.level == Level::Fail);
    writeln!(out, "custos doctor: {} with {}", shell.display(), args.config.display())?;
    out.write_all(render(&findings).as_bytes())?;
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `--shell`, else `--prefix`/bin, else next to the running `custos`, else
/// the default prefix.
fn locate_shell(args: &Args) -> PathBuf {
    if let Some(shell) = &args.shell {
        return shell.clone();
    }
    if let Some(prefix) = &args.prefix {
        return prefix.join("bin/custos-shell");
    }
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("custos-shell"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SHELL))
}

/// The report: one line per finding, its fix indented below it, and a
/// summary.
pub fn render(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(out, "{:<5} {}", f.level.label(), f.text);
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "      fix: {fix}");
        }
    }
    let fails = findings.iter().filter(|f| f.level == Level::Fail).count();
    let warns = findings.iter().filter(|f| f.level == Level::Warn).count();
    let _ = match (fails, warns) {
        (0, 0) => writeln!(out, "no problems found"),
        (0, w) => writeln!(out, "no failures, {w} warning(s)"),
        (f, w) => writeln!(out, "{f} failure(s), {w} warning(s): custos does not protect sessions on this host until they are fixed"),
    };
    out
}
