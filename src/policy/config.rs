//! The policy file: raw TOML in, validated [`Rule`]s out.
//!
//! Format (version 1). A policy is a list of `[[rule]]` tables, tried in
//! file order; `testdata/policy/policy.example.toml` is the commented
//! reference and `defaults/policy.toml` the built-in policy.
//!
//! ```toml
//! version = 1                      # optional; only 1 exists
//!
//! [policy]
//! # What a line gets whose effect depends on what the checker cannot know
//! # (`$(cat x) -rf /`, `rm -rf $(cat list)`, `… | base64 -d | bash`,
//! # `"$1" -rf /x`, `/bin/r? -rf /x`, `bash +B -c …`), and, without a
//! # terminal, a shell the gate cannot follow (`sh script.sh`):
//! # deny | approve | allow. Default: approve where a collector is
//! # configured (someone can decide), deny otherwise.
//! unknown = "approve"
//!
//! [[rule]]
//! name = "rm-root"                 # required, unique
//! message = "why, shown to the user"   # required
//! action = "deny"                  # deny | approve | allow
//!
//! # Scope (all optional; empty means everyone). The rule applies when the
//! # user is listed, or is in one of the groups, or one of the OIDC groups.
//! users = ["alice"]
//! groups = ["wheel"]
//! oidc_groups = ["sre"]
//!
//! # Only for action = "approve":
//! approvers = "dba-leads"          # required: the group that decides
//! quorum = 2                       # default 1
//! timeout = "15m"                  # s, m, h; default "10m"
//! reason = true                    # the requester must say why; default false
//!
//! # Matchers: all given must hold for a simple command. At least one.
//! program = ["rm", "/usr/bin/rm", "mkfs*"]  # basename, absolute path, or glob on the basename
//! subcommand = ["delete"]          # first operand
//! flags = ["-r", "-f"]             # all present (normalised per program)
//! not_flags = ["--help"]           # none present
//! args = [{ path_equals = ["/"] }] # each entry matched by some operand
//! values = [{ flag = ["-c"], regex = "(?i)drop" }]  # option values
//! # flag "--stdin": the text the command reads on its standard input,
//! # when known (`<<<`, here-documents, `echo … |`); when it is not
//! # (`< f`, `cat f |`, `psql -f f`), the line gets [policy] unknown.
//! redirect_to = { path_under = ["/dev"] }   # some writing redirection
//! redirect_from = { path_equals = ["/etc/shadow"] }  # some reading one
//! input_from = ["curl", "wget"]    # reads output of one of these
//! wrapped_by = ["sudo"]            # runs under one of these wrappers
//! unsafe_expansion = true          # an operand is unsafe (see parse.rs)
//! forks_itself = true              # fork-bomb shape
//! raw = "regex on the whole line"  # last resort
//! ```
//!
//! An argument predicate (`args` entries, `redirect_to`, `redirect_from`)
//! holds for an operand when every key given holds; a key with a list holds
//! when any element does. Keys: `equals` (the word), `regex` (the word),
//! `path_equals`, `path_under` (at or below), `glob` (the canonical path;
//! `*` and `?` stop at `/`, `**` does not), `unsafe` (bool), `last` (bool:
//! the operand is the command's last, as `mv`'s and `rsync`'s destination
//! is; only in `args`), `appends` (bool: the redirection appends, `>>`;
//! only in `redirect_to`). An operand that is itself an unquoted glob
//! (`/e*`, `cd /; rm -rf *`) matches `path_equals` and `path_under` when
//! it could name one of their paths: the checker does not read the file
//! system, so it takes every name the pattern could expand to.
//!
//! Unknown keys anywhere are errors, so a typo cannot silently disable a
//! rule. Every error names the file, the line and the reason. Regexes are
//! compiled here, once, with a size limit, so a pattern that would be slow
//! is rejected at load rather than on every command.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use toml::Spanned;

use super::flags::normalise_rule_flags;
use super::path::canonical;

/// Compiled-size cap for a rule's regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Approval timeout when a rule gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {reason}")]
    Invalid { path: PathBuf, line: usize, reason: String },
}

/// What a rule decides for the commands it matches, least severe first:
/// the order is the precedence between commands of one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Approve,
    Deny,
}

impl Verdict {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Self::Allow),
            "approve" => Ok(Self::Approve),
            "deny" => Ok(Self::Deny),
            other => Err(format!("unknown action {other:?} (expected deny, approve or allow)")),
        }
    }
}

/// A validated rule.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub message: String,
    pub action: Verdict,
    /// 1-based line of the rule's table in its file.
    pub line: usize,
    pub users: Vec<String>,
    pub groups: Vec<String>,
    pub oidc_groups: Vec<String>,
    pub approvers: Option<String>,
    pub quorum: u32,
    pub timeout: Duration,
    /// For approve rules: the requester must give a reason.
    pub reason: bool,
    pub matcher: Matcher,
}

/// The conditions of a rule on one simple command.
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    pub program: Vec<ProgramPattern>,
    pub subcommand: Vec<String>,
    pub flags: Vec<String>,
    pub not_flags: Vec<String>,
    pub args: Vec<ArgPredicate>,
    pub values: Vec<ValuePredicate>,
    pub redirect_to: Option<ArgPredicate>,
    pub redirect_from: Option<ArgPredicate>,
    pub input_from: Vec<String>,
    pub wrapped_by: Vec<String>,
    pub unsafe_expansion: Option<bool>,
    pub forks_itself: Option<bool>,
    pub raw: Option<Regex>,
    /// `flags` and `not_flags` normalised for each program named in
    /// `program` (by basename), at load: a rule is tried on every command,
    /// and normalising its flags there allocated on every try.
    pub norm_flags: Vec<(String, BTreeSet<String>, BTreeSet<String>)>,
}

impl Matcher {
    /// `flags` and `not_flags` normalised for `program`: precomputed when
    /// `program` is one the rule names, else computed now.
    pub fn flags_for(&self, program: &str) -> (std::borrow::Cow<'_, BTreeSet<String>>, std::borrow::Cow<'_, BTreeSet<String>>) {
        use std::borrow::Cow;
        match self.norm_flags.iter().find(|(n, _, _)| n == program) {
            Some((_, f, nf)) => (Cow::Borrowed(f), Cow::Borrowed(nf)),
            None => (Cow::Owned(normalise_rule_flags(program, &self.flags)), Cow::Owned(normalise_rule_flags(program, &self.not_flags))),
        }
    }

    /// True when only `raw` is given: the rule is about the line's text.
    pub fn raw_only(&self) -> bool {
        self.raw.is_some() && self.only_raw_or_nothing()
    }

    fn only_raw_or_nothing(&self) -> bool {
        self.program.is_empty()
            && self.subcommand.is_empty()
            && self.flags.is_empty()
            && self.not_flags.is_empty()
            && self.args.is_empty()
            && self.values.is_empty()
            && self.redirect_to.is_none()
            && self.redirect_from.is_none()
            && self.input_from.is_empty()
            && self.wrapped_by.is_empty()
            && self.unsafe_expansion.is_none()
            && self.forks_itself.is_none()
    }
}

/// A `program` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgramPattern {
    /// A basename: `rm`.
    Name(String),
    /// An absolute path, canonical: `/usr/bin/rm`.
    Path(String),
    /// A glob on the basename: `mkfs*`.
    Glob(String),
}

#[derive(Clone, Debug, Default)]
pub struct ArgPredicate {
    pub equals: Vec<String>,
    pub regex: Option<Regex>,
    pub path_equals: Vec<String>,
    pub path_under: Vec<String>,
    pub glob: Vec<String>,
    pub unsafe_: Option<bool>,
    /// The operand is (true) or is not (false) the command's last one:
    /// `mv SRC... DEST`, `rsync SRC... DEST`, `cp SRC DEST`.
    pub last: Option<bool>,
    /// Only in `redirect_to`: the redirection appends (`>>`, `&>>`), or
    /// (false) truncates.
    pub appends: Option<bool>,
}

#[derive(Clone, Debug)]
pub struct ValuePredicate {
    pub flag: Vec<String>,
    pub regex: Regex,
    /// `flag` normalised per program named by the rule (see `Matcher::norm_flags`).
    pub norm: Vec<(String, BTreeSet<String>)>,
}

impl ValuePredicate {
    /// The option names `flag` stands for in `program`'s command line.
    pub fn names_for(&self, program: &str) -> std::borrow::Cow<'_, BTreeSet<String>> {
        match self.norm.iter().find(|(n, _)| n == program) {
            Some((_, names)) => std::borrow::Cow::Borrowed(names),
            None => std::borrow::Cow::Owned(normalise_rule_flags(program, &self.flag)),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Option<Spanned<u32>>,
    policy: Option<Spanned<RawSettings>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    unknown: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<String>,
    message: Option<String>,
    action: Option<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    oidc_groups: Vec<String>,
    approvers: Option<String>,
    quorum: Option<u32>,
    timeout: Option<String>,
    reason: Option<bool>,
    #[serde(default)]
    program: Vec<String>,
    #[serde(default)]
    subcommand: Vec<String>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    not_flags: Vec<String>,
    #[serde(default)]
    args: Vec<RawArg>,
    #[serde(default)]
    values: Vec<RawValue>,
    redirect_to: Option<RawArg>,
    redirect_from: Option<RawArg>,
    #[serde(default)]
    input_from: Vec<String>,
    #[serde(default)]
    wrapped_by: Vec<String>,
    unsafe_expansion: Option<bool>,
    forks_itself: Option<bool>,
    raw: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawArg {
    #[serde(default)]
    equals: Vec<String>,
    regex: Option<String>,
    #[serde(default)]
    path_equals: Vec<String>,
    #[serde(default)]
    path_under: Vec<String>,
    #[serde(default)]
    glob: Vec<String>,
    #[serde(rename = "unsafe")]
    unsafe_: Option<bool>,
    last: Option<bool>,
    appends: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValue {
    flag: Vec<String>,
    regex: String,
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(1, |t| t.matches('\n').count() + 1)
}

/// Parses and validates a policy file's text.
/// A validated policy file: its rules and its settings.
pub struct Parsed {
    pub rules: Vec<Rule>,
    /// `[policy] unknown` as written; `None` leaves the default to the
    /// caller, which knows whether a collector can approve.
    pub unknown: Option<Verdict>,
}

pub fn parse_rules(text: &str, path: &Path) -> Result<Vec<Rule>, PolicyError> {
    parse_policy(text, path).map(|p| p.rules)
}

pub fn parse_policy(text: &str, path: &Path) -> Result<Parsed, PolicyError> {
    let invalid = |line: usize, reason: String| PolicyError::Invalid { path: path.to_owned(), line, reason };
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s.start));
        invalid(line, e.message().trim_end().to_owned())
    })?;
    if let Some(v) = &raw.version {
        if *v.get_ref() != 1 {
            return Err(invalid(line_of(text, v.span().start), format!("unsupported policy version {} (this custos reads version 1)", v.get_ref())));
        }
    }
    let unknown = match &raw.policy {
        Some(settings) => match &settings.get_ref().unknown {
            Some(v) => Some(v.parse().map_err(|_| {
                invalid(line_of(text, settings.span().start), format!("[policy] unknown = {v:?}: expected deny, approve or allow"))
            })?),
            None => None,
        },
        None => None,
    };
    let mut rules: Vec<Rule> = Vec::with_capacity(raw.rule.len());
    for (index, spanned) in raw.rule.into_iter().enumerate() {
        let line = line_of(text, spanned.span().start);
        let r = spanned.into_inner();
        let label = match &r.name {
            Some(n) => format!("rule {n:?}"),
            None => format!("rule #{}", index + 1),
        };
        let bad = |reason: String| invalid(line, format!("{label}: {reason}"));
        let name = r.name.clone().filter(|n| !n.trim().is_empty()).ok_or_else(|| bad("missing `name`".into()))?;
        if rules.iter().any(|other| other.name == name) {
            return Err(bad("another rule has the same name".into()));
        }
        let message = r.message.clone().filter(|m| !m.trim().is_empty()).ok_or_else(|| bad("missing `message`".into()))?;
        let action: Verdict = r.action.as_deref().ok_or_else(|| bad("missing `action` (deny, approve or allow)".into()))?.parse().map_err(bad)?;
        if action == Verdict::Approve {
            if r.approvers.as_deref().is_none_or(|a| a.trim().is_empty()) {
                return Err(bad("an approve rule needs `approvers` (the group that decides)".into()));
            }
        } else if r.approvers.is_some() || r.quorum.is_some() || r.timeout.is_some() || r.reason.is_some() {
            return Err(bad("`approvers`, `quorum`, `timeout` and `reason` only apply to action = \"approve\"".into()));
        }
        let quorum = r.quorum.unwrap_or(1);
        if quorum == 0 {
            return Err(bad("`quorum` must be at least 1".into()));
        }
        let timeout = match &r.timeout {
            Some(t) => crate::when::parse_duration(t).map_err(|e| bad(format!("timeout: {e}")))?,
            None => DEFAULT_TIMEOUT,
        };
        let matcher = matcher(&r).map_err(bad)?;
        rules.push(Rule {
            name,
            message,
            action,
            line,
            users: r.users,
            groups: r.groups,
            oidc_groups: r.oidc_groups,
            approvers: r.approvers,
            quorum,
            timeout,
            reason: r.reason.unwrap_or(false),
            matcher,
        });
    }
    Ok(Parsed { rules, unknown })
}

fn compile(field: &str, pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("{field}: regex does not compile: {}", e.to_string().lines().last().unwrap_or_default().trim()))
}

fn matcher(r: &RawRule) -> Result<Matcher, String> {
    let program = r
        .program
        .iter()
        .map(|p| {
            if p.is_empty() {
                Err("program: empty name".to_owned())
            } else if p.starts_with('/') {
                Ok(ProgramPattern::Path(canonical(p, "/")))
            } else if p.contains('/') {
                Err(format!("program: {p:?} is neither a basename nor an absolute path"))
            } else if p.contains(['*', '?', '[']) {
                Ok(ProgramPattern::Glob(p.clone()))
            } else {
                Ok(ProgramPattern::Name(p.clone()))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let args = r.args.iter().enumerate().map(|(i, a)| arg_predicate(&format!("args[{i}]"), a)).collect::<Result<Vec<_>, _>>()?;
    let values = r
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if v.flag.is_empty() {
                return Err(format!("values[{i}]: `flag` is empty"));
            }
            let norm = program_names(&program).into_iter().map(|n| {
                let names = normalise_rule_flags(&n, &v.flag);
                (n, names)
            }).collect();
            Ok(ValuePredicate { flag: v.flag.clone(), regex: compile(&format!("values[{i}].regex"), &v.regex)?, norm })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let names = program_names(&program);
    let m = Matcher {
        program,
        subcommand: r.subcommand.clone(),
        flags: r.flags.clone(),
        not_flags: r.not_flags.clone(),
        args,
        values,
        redirect_to: r.redirect_to.as_ref().map(|a| arg_predicate("redirect_to", a)).transpose()?,
        redirect_from: r.redirect_from.as_ref().map(|a| arg_predicate("redirect_from", a)).transpose()?,
        input_from: r.input_from.clone(),
        wrapped_by: r.wrapped_by.clone(),
        unsafe_expansion: r.unsafe_expansion,
        forks_itself: r.forks_itself,
        raw: r.raw.as_deref().map(|p| compile("raw", p)).transpose()?,
        norm_flags: names
            .into_iter()
            .map(|n| {
                let (f, nf) = (normalise_rule_flags(&n, &r.flags), normalise_rule_flags(&n, &r.not_flags));
                (n, f, nf)
            })
            .collect(),
    };
    if m.raw.is_none() && m.only_raw_or_nothing() {
        return Err("no matcher: a rule must say which commands it is about (program, flags, args, ..., or raw)".into());
    }
    Ok(m)
}

/// The basenames a rule's `program` list names exactly (not its globs).
fn program_names(program: &[ProgramPattern]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in program {
        let name = match p {
            ProgramPattern::Name(n) => n.clone(),
            ProgramPattern::Path(path) => super::path::basename(path).to_owned(),
            ProgramPattern::Glob(_) => continue,
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn arg_predicate(field: &str, a: &RawArg) -> Result<ArgPredicate, String> {
    let p = ArgPredicate {
        equals: a.equals.clone(),
        regex: a.regex.as_deref().map(|r| compile(&format!("{field}.regex"), r)).transpose()?,
        path_equals: a.path_equals.iter().map(|p| absolute(field, "path_equals", p)).collect::<Result<_, _>>()?,
        path_under: a.path_under.iter().map(|p| absolute(field, "path_under", p)).collect::<Result<_, _>>()?,
        glob: a.glob.iter().map(|p| absolute(field, "glob", p).map(|_| p.clone())).collect::<Result<_, _>>()?,
        unsafe_: a.unsafe_,
        last: a.last,
        appends: a.appends,
    };
    if p.appends.is_some() && field != "redirect_to" {
        return Err(format!("{field}: `appends` is only for redirect_to"));
    }
    if p.equals.is_empty() && p.regex.is_none() && p.path_equals.is_empty() && p.path_under.is_empty() && p.glob.is_empty() && p.unsafe_.is_none() && p.last.is_none() {
        return Err(format!("{field}: empty predicate (give equals, regex, path_equals, path_under, glob, unsafe or last)"));
    }
    Ok(p)
}

fn absolute(field: &str, key: &str, p: &str) -> Result<String, String> {
    if p.starts_with('/') {
        Ok(canonical(p, "/"))
    } else {
        Err(format!("{field}.{key}: {p:?} is not an absolute path"))
    }
}
