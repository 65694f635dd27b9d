//! The command gate's policy: a command line in, a verdict out.
//!
//! This is the pure core of the gate. It never runs a command, reads a
//! file during a check, or looks at a clock: [`Policy::check`] takes the
//! line, who typed it ([`Subject`]) and what the shell knows ([`Env`]) and
//! returns a [`Decision`]. The shell integration, the socket and the
//! session wiring sit around it and enforce what it says.
//!
//! The pieces:
//!
//! - `parse.rs`: the line as bash would run it, through brush-parser (a
//!   real bash parser, not string splitting), flattened into
//!   [`ParsedCommand`]s: every simple command in lists, pipelines,
//!   subshells, substitutions, function bodies and nested `bash -c`,
//!   behind its wrappers, after expansion and quote removal.
//! - `expand.rs`: word expansion, as far as it can be known beforehand.
//! - `wrappers.rs`: `sudo`, `env`, `timeout`, ... and the programs that run
//!   shell code.
//! - `flags.rs`: `-rf` = `-r -f` = `--recursive --force`.
//! - `path.rs`: lexical path canonicalisation.
//! - `config.rs`: the policy file's schema and validation.
//! - `rules.rs`: matching, and precedence between rules and commands.
//! - `cli.rs`: `custos policy check` and `custos policy test`.
//!
//! Fail closed: a line that does not parse, or is too long, too deep or
//! too complex to check within the bounds in `parse.rs`, is denied by the
//! built-in rule [`UNCHECKABLE_RULE`], whatever the policy says, because a
//! gate that lets through what it cannot read is no gate. The user sees
//! why and can fix the line (close the quote, split the script).
//!
//! What the checker cannot know gets a verdict of its own. A line whose
//! effect depends on a value the gate cannot know before it runs (a
//! command name from `$(cat x)` or `"$1"`, a glob for a command name, shell
//! code made at run time, a program piped into an interpreter, shell
//! options that change how code is read, or an unknowable operand where a
//! rule about that program looks at operands) gets `[policy] unknown`
//! under the built-in rule [`UNKNOWN_RULE`], unless a rule is already at
//! least as severe. The default depends on whether anyone can approve:
//! `approve` where a collector is configured, `deny` otherwise; the
//! caller says which ([`Policy::with_collector`]). A value the caller
//! passed in [`Env`] is known, not unknown: the hooks send the value of
//! every variable a line names, so `$CMD` is only unknown when the line
//! itself makes it so (`read CMD`, `CMD=$(cat x)`). [`Decision::unknown`]
//! says which part was unknowable, whatever the verdict.

pub mod cases;
mod config;
mod embedded;
mod expand;
mod flags;
mod parse;
mod path;
mod rules;
mod wrappers;


use std::path::Path;
use std::time::Duration;

use serde::Serialize;

pub use config::{PolicyError, Rule, Verdict, DEFAULT_TIMEOUT};
pub use parse::{analyse, Analysis, Arg, Env, ParsedCommand, Problem, Redirect, UnknownArgs, MAX_COMMANDS, MAX_LINE_BYTES, MAX_NESTING, MAX_OPENERS};
pub use path::canonical;
pub(crate) use wrappers::is_assignment;

/// Where a root-owned policy lives.
pub const SYSTEM_POLICY: &str = "/etc/custos/policy.toml";

/// The policy that applies when no file is named on a command line: one
/// rule for `custos-shell` and `custos policy`, so that a policy tried
/// offline is the one the shell obeys. `CUSTOS_POLICY` when the caller is
/// not privileged (a setuid shell must not let its user choose its rules),
/// else [`SYSTEM_POLICY`] (which a privileged caller trusts only when
/// root owns it: fail closed), else the built-in policy.
pub fn load_default(privileged: bool) -> anyhow::Result<Policy> {
    use anyhow::Context as _;
    if !privileged {
        if let Some(p) = std::env::var_os("CUSTOS_POLICY").filter(|p| !p.is_empty()) {
            return Policy::read(Path::new(&p)).context("the file CUSTOS_POLICY names");
        }
    }
    let system = Path::new(SYSTEM_POLICY);
    match std::fs::metadata(system) {
        Ok(meta) => {
            if privileged {
                crate::config::check_root_owned(system, &meta)?;
            }
            Ok(Policy::read(system)?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Policy::default_policy()),
        Err(e) => Err(e).with_context(|| format!("cannot read {SYSTEM_POLICY}")),
    }
}

/// The built-in policy, used when no policy file exists.
pub const DEFAULT_POLICY: &str = include_str!("../../defaults/policy.toml");

/// Name of the built-in rule that denies lines the gate cannot check.
pub const UNCHECKABLE_RULE: &str = "custos:uncheckable";

/// Name of the built-in rule that gives `[policy] unknown` to lines whose
/// effect the checker cannot know.
pub const UNKNOWN_RULE: &str = "custos:unknown";

/// Who typed the line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    pub user: String,
    /// Unix groups.
    pub groups: Vec<String>,
    /// Groups from the OIDC identity, when there is one.
    pub oidc_groups: Vec<String>,
}

/// The rule that decided a line, as the gate and the approvals flow need it.
/// It also crosses from the exec backstop's reader to the recorder (a
/// held exec), hence `Deserialize`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RuleRef {
    pub name: String,
    pub message: String,
    pub action: Verdict,
    /// For approve rules: the group that decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvers: Option<String>,
    pub quorum: u32,
    #[serde(serialize_with = "seconds", deserialize_with = "from_seconds")]
    pub timeout: Duration,
    /// For approve rules: the requester must give a reason.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reason: bool,
    /// Line of the rule in its policy file (0 for built-in rules).
    pub line: usize,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

fn from_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    <u64 as serde::Deserialize>::deserialize(d).map(Duration::from_secs)
}

/// The verdict for one line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    /// The deciding rule; `None` when nothing matched (allow).
    pub rule: Option<RuleRef>,
    /// Index into `commands` of the command the rule decided.
    pub command: Option<usize>,
    /// Every simple command found in the line.
    pub commands: Vec<ParsedCommand>,
    /// Unsafe expansions found, whatever the verdict (`$DIR is unset or
    /// empty`, `/* is a glob at the root`).
    pub unsafe_expansions: Vec<String>,
    /// Why the line could not be checked (then the verdict is deny).
    pub parse_error: Option<String>,
    /// The line is not a whole command yet (see [`Problem::is_incomplete`]).
    pub incomplete: bool,
    /// What the checker could not know, one sentence each (`the command
    /// name comes from $(cat x)`), whatever the verdict.
    pub unknown: Vec<String>,
}

/// A validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    rules: Vec<Rule>,
    /// Which of `rules` each command name is tried against.
    index: rules::RuleIndex,
    /// `[policy] unknown` as written.
    unknown: Option<Verdict>,
    /// A collector is configured, so an approval can be given: the
    /// default of `unknown` is `approve` rather than `deny`.
    collector: bool,
}

impl Policy {
    /// Validates policy text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, PolicyError> {
        let parsed = config::parse_policy(text, path)?;
        Ok(Self::from_rules(parsed.rules, parsed.unknown))
    }

    /// The one place a policy is put together, so the index always
    /// describes the rules it is used with.
    fn from_rules(rules: Vec<Rule>, unknown: Option<Verdict>) -> Self {
        let index = rules::RuleIndex::new(&rules);
        Self { rules, index, unknown, collector: false }
    }

    /// Reads and validates a policy file.
    pub fn read(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    /// The built-in policy (`defaults/policy.toml`).
    pub fn default_policy() -> Self {
        // The built-in text is checked by a test; should it ever fail to
        // parse, an empty policy would allow everything, so fall back to
        // one rule that denies everything instead.
        Self::parse(DEFAULT_POLICY, Path::new("<built-in policy>")).unwrap_or_else(|e| {
            let rules = config::parse_rules(
                &format!("[[rule]]\nname = \"broken-built-in-policy\"\nmessage = {:?}\naction = \"deny\"\nraw = \"\"\n", e.to_string()),
                Path::new("<fallback>"),
            )
            .unwrap_or_default();
            Self::from_rules(rules, Some(Verdict::Deny))
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Says whether a collector is configured on this host, which decides
    /// the default of `[policy] unknown` (`approve` with one, `deny`
    /// without). A policy not told is read as without.
    pub fn with_collector(mut self, configured: bool) -> Self {
        self.collector = configured;
        self
    }

    /// The policy as the exec backstop applies it: an exec's own arguments
    /// are concrete, and what its shell code (`bash -c CODE`) starts is
    /// decided again at each exec, so nothing is left unknown there (the
    /// hooks give `[policy] unknown` to the line as typed).
    pub fn for_execs(mut self) -> Self {
        self.unknown = Some(Verdict::Allow);
        self
    }

    /// `[policy] unknown`: what a line gets whose effect the checker cannot
    /// know, and a shell whose commands the gate cannot see.
    pub fn unknown(&self) -> Verdict {
        match self.unknown {
            Some(v) => v,
            None if self.collector => Verdict::Approve,
            None => Verdict::Deny,
        }
    }

    /// The verdict for `line`, typed by `who`, in a shell described by `env`.
    pub fn check(&self, line: &str, who: &Subject, env: &Env) -> Decision {
        let analysis = analyse(line, env);
        self.decide(line, who, analysis, env.execs_checked)
    }

    /// The verdict for a program started with `argv` (the exec backstop):
    /// the same as [`Self::check`] of `line`, the words quoted, without
    /// parsing what is already words.
    pub fn check_argv(&self, line: &str, argv: &[String], who: &Subject, env: &Env) -> Decision {
        let analysis = parse::analyse_argv(argv, env);
        self.decide(line, who, analysis, env.execs_checked)
    }

    fn decide(&self, line: &str, who: &Subject, analysis: Analysis, execs_checked: bool) -> Decision {
        let unsafe_expansions: Vec<String> = {
            let mut seen: Vec<String> = Vec::new();
            for r in analysis.commands.iter().flat_map(|c| c.unsafe_reasons()) {
                if !seen.iter().any(|s| s == r) {
                    seen.push(r.to_owned());
                }
            }
            seen
        };
        if let Some(problem) = analysis.problem {
            let message = format!("{problem}; the gate refuses what it cannot check");
            let incomplete = problem.is_incomplete();
            return Decision {
                verdict: Verdict::Deny,
                rule: Some(RuleRef { name: UNCHECKABLE_RULE.into(), message, action: Verdict::Deny, approvers: None, quorum: 1, timeout: DEFAULT_TIMEOUT, reason: false, line: 0 }),
                command: None,
                commands: analysis.commands,
                unsafe_expansions,
                parse_error: Some(problem.to_string()),
                incomplete,
                unknown: Vec::new(),
            };
        }
        let mut best: Option<(Verdict, &Rule, Option<usize>)> = None;
        // What each command gets from the rules as written out.
        let mut firsts: Vec<Verdict> = Vec::with_capacity(analysis.commands.len());
        for (i, cmd) in analysis.commands.iter().enumerate() {
            let first = rules::first_match(&self.rules, &self.index, cmd, who, line);
            firsts.push(first.map_or(Verdict::Allow, |r| r.action));
            if let Some(rule) = first {
                if best.is_none_or(|(v, _, _)| rules::more_severe(rule.action, v)) {
                    best = Some((rule.action, rule, Some(i)));
                }
            }
        }
        if analysis.commands.is_empty() {
            if let Some(rule) = rules::first_raw_match(&self.rules, who, line) {
                best = Some((rule.action, rule, None));
            }
        }
        let (mut verdict, mut rule, mut command) = match best {
            Some((v, r, i)) => (v, Some(rule_ref(r)), i),
            None => (Verdict::Allow, None, None),
        };
        let unknown = self.unknowable(&analysis.commands, &firsts, who, line, execs_checked);
        if let Some((first, why)) = unknown.first() {
            let v = self.unknown();
            if v > verdict {
                let message = format!("the checker cannot know what this line does: {why}. Write the value out, or ask an administrator about [policy] unknown");
                verdict = v;
                rule = Some(RuleRef { name: UNKNOWN_RULE.into(), message, action: v, approvers: None, quorum: 1, timeout: DEFAULT_TIMEOUT, reason: false, line: 0 });
                command = Some(*first);
            }
        }
        let unknown = unknown.into_iter().map(|(_, why)| why).collect();
        Decision { verdict, rule, command, commands: analysis.commands, unsafe_expansions, parse_error: None, incomplete: false, unknown }
    }

    /// Each command whose effect the checker cannot know, with why.
    /// `firsts` is what each command gets from the rules as written out.
    fn unknowable(&self, commands: &[ParsedCommand], firsts: &[Verdict], who: &Subject, line: &str, execs_checked: bool) -> Vec<(usize, String)> {
        let mut out: Vec<(usize, String)> = Vec::new();
        for (i, cmd) in commands.iter().enumerate() {
            if let Some(why) = &cmd.unknown {
                out.push((i, why.clone()));
                continue;
            }
            if execs_checked {
                continue;
            }
            if cmd.unknown_args.is_none() && cmd.stdin_unknown.is_none() {
                continue;
            }
            let now = firsts.get(i).copied().unwrap_or(Verdict::Allow);
            if let Some(u) = &cmd.unknown_args {
                if let Some(r) = rules::could_match_unknown_args(&self.rules, &self.index, cmd, who, line, u.subcommand, now) {
                    out.push((i, format!("an argument of {} comes from {}, and rule {} looks at {}'s arguments", cmd.name, u.what, r.name, cmd.name)));
                    continue;
                }
            }
            if let Some(what) = &cmd.stdin_unknown {
                if let Some(r) = rules::could_match_unknown_stdin(&self.rules, &self.index, cmd, who, line, now) {
                    out.push((i, format!("{} reads its input from {what}, and rule {} looks at what {} reads", cmd.name, r.name, cmd.name)));
                }
            }
        }
        out
    }
}

fn rule_ref(r: &Rule) -> RuleRef {
    RuleRef {
        name: r.name.clone(),
        message: r.message.clone(),
        action: r.action,
        approvers: r.approvers.clone(),
        quorum: r.quorum,
        timeout: r.timeout,
        reason: r.reason,
        line: r.line,
    }
}

#[cfg(test)]
mod tests;
