//! `custos policy check` and `custos policy test`: the policy offline, so a
//! policy can be tried and tested like code before it guards a shell.
//!
//! Exit codes (both subcommands write them down here, in one place):
//! `check`: 0 allow, 1 deny, 3 approve, 2 a usage or policy error.
//! `test`: 0 when every case passes, 1 when some fail, 2 a usage, policy or
//! case-file error.
//!
//! The case file (`testdata/policy/default.cases.toml` is the example):
//!
//! ```toml
//! policy = "default.toml"       # relative to this file; default: as
//!                               # `check`'s (CUSTOS_POLICY, ...)
//! collector = true              # optional: whether a collector is
//!                               # configured, for the default of
//!                               # [policy] unknown; default: as the
//!                               # custos config says
//! [defaults]                    # optional, for every case
//! user = "alice"
//! groups = ["staff"]
//! oidc_groups = []
//! cwd = "/home/alice"
//! home = "/home/alice"
//! env = { BUILD = "/home/alice/build" }
//!
//! [[case]]
//! line = "rm -rf /"
//! expect = "deny"               # allow | approve | deny
//! rule = "rm-root"              # optional: the deciding rule
//! # user, groups, oidc_groups, cwd, home, env: optional overrides
//! ```
//!
//! In `check`, a variable not given with `--env` is unset, which is the
//! cautious reading (`rm -rf "$DIR"/` is checked as `rm -rf /`), except
//! where any value could change which rule applies: there it is unknown
//! (`$CMD args`). In a case file, as at the gate (whose hooks send every
//! variable a line names that is set), a variable not in `env` is unset. What the
//! checker cannot know (`$(cat x) -rf /`) is printed as `unknown: …` lines
//! (`"unknown"` in JSON). The default of `[policy] unknown` depends on
//! whether a collector is configured: both subcommands read the custos
//! config (`CUSTOS_CONFIG`, else `/etc/custos/config.toml`) to know.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::policy::cases::{default_home, run_cases, CaseFile};
use crate::policy::{Decision, Env, Policy, Subject, Verdict};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Print the verdict for one command line.
    Check(CheckArgs),
    /// Run a table of expected verdicts.
    Test(TestArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Policy file (default: $CUSTOS_POLICY, else /etc/custos/policy.toml if it exists, else the built-in policy).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The user typing the line (default: $USER).
    #[arg(long, value_name = "U")]
    pub user: Option<String>,
    /// A unix group of the user (repeatable).
    #[arg(long = "group", value_name = "G")]
    pub groups: Vec<String>,
    /// An OIDC group of the user (repeatable).
    #[arg(long = "oidc-group", value_name = "G")]
    pub oidc_groups: Vec<String>,
    /// The shell's working directory (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// The user's home directory (default: /root for root, else /home/USER).
    #[arg(long, value_name = "DIR")]
    pub home: Option<String>,
    /// A shell variable, NAME=VALUE (repeatable); others are unset.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// The command line, as one argument (after `--`).
    #[arg(value_name = "COMMAND LINE", required = true)]
    pub line: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The case file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Policy to test (overrides the case file's `policy`).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Print every case, not only failures.
    #[arg(long)]
    pub verbose: bool,
}

const EXIT_DENY: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_APPROVE: u8 = 3;

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let result = match &args.command {
        PolicyCommand::Check(a) => check(a),
        PolicyCommand::Test(a) => test(a),
    };
    match result {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("custos policy: {e:#}");
            Ok(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// The policy a command without `--policy` obeys: the one an unprivileged
/// `custos-shell` would (`CUSTOS_POLICY`, else the system file, else the
/// built-in policy). `collector`: whether a collector is
/// configured (`None`: as the custos config says).
fn load(explicit: Option<&Path>, collector: Option<bool>) -> anyhow::Result<Policy> {
    let collector = match collector {
        Some(c) => c,
        None => collector_configured()?,
    };
    let policy = match explicit {
        Some(p) => Policy::read(p)?,
        None => crate::policy::load_default(false)?,
    };
    Ok(policy.with_collector(collector))
}

/// Whether the custos config this host obeys names a collector, which
/// decides the default of `[policy] unknown`.
fn collector_configured() -> anyhow::Result<bool> {
    let config = crate::config::Config::load(false, std::env::var("CUSTOS_CONFIG").ok().as_deref())
        .context("cannot read the custos config, which says whether a collector can approve (the default of [policy] unknown)")?;
    Ok(config.collector.url.is_some())
}

fn check(a: &CheckArgs) -> anyhow::Result<ExitCode> {
    let policy = load(a.policy.as_deref(), None)?;
    let user = a.user.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".into());
    let cwd = match &a.cwd {
        Some(c) => c.clone(),
        None => std::env::current_dir().context("cannot read the current directory; pass --cwd")?.to_string_lossy().into_owned(),
    };
    let mut env = Env::new(&cwd, &a.home.clone().unwrap_or_else(|| default_home(&user)));
    for kv in &a.env {
        let (k, v) = kv.split_once('=').with_context(|| format!("--env {kv:?}: expected NAME=VALUE"))?;
        env.vars.insert(k.to_owned(), v.to_owned());
    }
    let who = Subject { user, groups: a.groups.clone(), oidc_groups: a.oidc_groups.clone() };
    let line = a.line.join(" ");
    let decision = policy.check(&line, &who, &env);
    let mut out = std::io::stdout().lock();
    let text = match a.format {
        Format::Text => render_text(&decision),
        Format::Json => render_json(&decision)?,
    };
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = out.write_all(text.as_bytes());
    Ok(exit_code(decision.verdict))
}

/// The exit status for a verdict.
pub fn exit_code(v: Verdict) -> ExitCode {
    match v {
        Verdict::Allow => ExitCode::SUCCESS,
        Verdict::Deny => ExitCode::from(EXIT_DENY),
        Verdict::Approve => ExitCode::from(EXIT_APPROVE),
    }
}

/// The human form of a decision.
pub fn render_text(d: &Decision) -> String {
    let mut s = format!("verdict: {}\n", d.verdict);
    if let Some(r) = &d.rule {
        s.push_str(&format!("rule: {}\nmessage: {}\n", r.name, r.message));
        if let Some(a) = &r.approvers {
            s.push_str(&format!("approvers: {a} (quorum {}, timeout {}s)\n", r.quorum, r.timeout.as_secs()));
        }
    }
    if let Some(e) = &d.parse_error {
        s.push_str(&format!("parse error: {e}\n"));
    }
    for u in &d.unknown {
        s.push_str(&format!("unknown: {u}\n"));
    }
    for u in &d.unsafe_expansions {
        s.push_str(&format!("unsafe: {u}\n"));
    }
    for (i, c) in d.commands.iter().enumerate() {
        let mark = if d.command == Some(i) { " (decided)" } else { "" };
        let program = if c.program.is_empty() { "(unknown)" } else { c.program.as_str() };
        s.push_str(&format!("command {}: {program}{mark}\n", i + 1));
        if !c.wrappers.is_empty() {
            s.push_str(&format!("  via: {}\n", c.wrappers.join(" > ")));
        }
        if !c.flags.is_empty() {
            s.push_str(&format!("  flags: {}\n", c.flags.iter().cloned().collect::<Vec<_>>().join(" ")));
        }
        for (n, v) in &c.values {
            s.push_str(&format!("  option: {n} = {v:?}\n"));
        }
        if !c.args.is_empty() {
            let args: Vec<String> = c
                .args
                .iter()
                .map(|a| {
                    // NAME=VALUE (alias, export, declare, env) is an
                    // assignment, not a path, whatever its value holds.
                    let pathlike = !crate::policy::is_assignment(&a.text) && (a.text.contains('/') || a.text.starts_with('.'));
                    if pathlike && a.path != a.text {
                        format!("{:?} ({})", a.text, a.path)
                    } else {
                        format!("{:?}", a.text)
                    }
                })
                .collect();
            s.push_str(&format!("  args: {}\n", args.join(" ")));
        }
        for r in &c.redirects {
            s.push_str(&format!("  redirect: {} {}\n", r.op, r.path));
        }
        if !c.input_from.is_empty() {
            s.push_str(&format!("  input from: {}\n", c.input_from.join(", ")));
        }
    }
    s
}

/// The JSON form: `{"verdict", "rule", "message", "commands", ...}`.
pub fn render_json(d: &Decision) -> anyhow::Result<String> {
    let v = serde_json::json!({
        "verdict": d.verdict,
        "rule": d.rule.as_ref().map(|r| r.name.clone()),
        "message": d.rule.as_ref().map(|r| r.message.clone()),
        "approvers": d.rule.as_ref().and_then(|r| r.approvers.clone()),
        "quorum": d.rule.as_ref().filter(|r| r.approvers.is_some()).map(|r| r.quorum),
        "timeout_secs": d.rule.as_ref().filter(|r| r.approvers.is_some()).map(|r| r.timeout.as_secs()),
        "commands": d.commands,
        "unsafe_expansions": d.unsafe_expansions,
        "parse_error": d.parse_error,
        "unknown": d.unknown,
    });
    Ok(format!("{}\n", serde_json::to_string_pretty(&v)?))
}

/// Reads a case file and the policy it names (or `policy`, when given).
pub fn load_cases(file: &Path, policy: Option<&Path>) -> anyhow::Result<(Policy, CaseFile)> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let cases: CaseFile = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |s| text.get(..s.start).map_or(1, |t| t.matches('\n').count() + 1));
        anyhow::anyhow!("{}:{line}: {}", file.display(), e.message())
    })?;
    let named = cases.policy.as_ref().map(|p| file.parent().unwrap_or(Path::new(".")).join(p));
    let policy = load(policy.or(named.as_deref()), cases.collector)?;
    Ok((policy, cases))
}

fn test(a: &TestArgs) -> anyhow::Result<ExitCode> {
    let (policy, file) = load_cases(&a.file, a.policy.as_deref())?;
    if file.cases.is_empty() {
        anyhow::bail!("{}: no [[case]] in the file", a.file.display());
    }
    let outcomes = run_cases(&policy, &file);
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for o in &outcomes {
        match &o.failure {
            Some(why) => {
                failed += 1;
                let _ = writeln!(out, "FAIL {:?}\n     {why}", o.case.line);
                if let Some(e) = &o.decision.parse_error {
                    let _ = writeln!(out, "     parse error: {e}");
                }
            }
            None if a.verbose => {
                let _ = writeln!(out, "ok   {:?} -> {}", o.case.line, o.decision.verdict);
            }
            None => {}
        }
    }
    let _ = writeln!(out, "{} passed, {failed} failed", outcomes.len() - failed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(EXIT_DENY) })
}
