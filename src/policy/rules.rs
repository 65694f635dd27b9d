//! Matching rules against parsed commands, and the verdict of a line.
//!
//! Precedence, in two steps:
//!
//! 1. For each simple command of the line, the rules are tried in file
//!    order and the first whose scope includes the subject and whose
//!    matchers all hold decides that command (a firewall's reading: an
//!    early `allow` for `scp -t` exempts it from later rules). A command no
//!    rule matches is allowed.
//! 2. The line's verdict is the most severe over its commands (deny >
//!    approve > allow), reported with the rule that decided it; between
//!    commands with the same verdict, the first in the line is reported.
//!
//! Rules with only `raw` are about the line's text: they apply to every
//! command of the line (and to a line with no command at all).
//!
//! [`RuleIndex`] narrows step 1 by the command's name: most rules name the
//! programs they are about, and are not tried on any other.

use std::collections::HashMap;

use super::config::{ArgPredicate, Matcher, ProgramPattern, Rule, Verdict};
use super::parse::{Arg, ParsedCommand, Redirect};
use super::Subject;

/// Whether the rule's scope includes the subject.
pub fn in_scope(rule: &Rule, who: &Subject) -> bool {
    if rule.users.is_empty() && rule.groups.is_empty() && rule.oidc_groups.is_empty() {
        return true;
    }
    rule.users.contains(&who.user)
        || rule.groups.iter().any(|g| who.groups.contains(g))
        || rule.oidc_groups.iter().any(|g| who.oidc_groups.contains(g))
}

/// Whether every matcher of `m` holds for `cmd` on `line`.
pub fn matches(m: &Matcher, cmd: &ParsedCommand, line: &str) -> bool {
    matches_but(m, cmd, line, Unseen::default())
}

/// The parts of a matcher that a check leaves out, because the checker
/// cannot see what they look at.
#[derive(Clone, Copy, Debug, Default)]
struct Unseen {
    /// Operands: `flags`, `args`, `values`, and `unsafe_expansion = true`.
    args: bool,
    /// The subcommand (the unknown word came first).
    subcommand: bool,
    /// `values` read from standard input.
    stdin: bool,
}

fn about_stdin(v: &super::config::ValuePredicate) -> bool {
    v.flag.iter().any(|f| f == super::parse::STDIN_VALUE)
}

fn matches_but(m: &Matcher, cmd: &ParsedCommand, line: &str, unseen: Unseen) -> bool {
    if !m.program.is_empty() && !m.program.iter().any(|p| program_matches(p, cmd)) {
        return false;
    }
    if !unseen.subcommand && !m.subcommand.is_empty() && !cmd.subcommand().is_some_and(|s| m.subcommand.iter().any(|x| x == s)) {
        return false;
    }
    let want_flags = !unseen.args && !m.flags.is_empty();
    if want_flags || !m.not_flags.is_empty() {
        let (flags, not_flags) = m.flags_for(&cmd.name);
        if want_flags && !flags.is_subset(&cmd.flags) {
            return false;
        }
        if !m.not_flags.is_empty() && !not_flags.is_disjoint(&cmd.flags) {
            return false;
        }
    }
    let count = cmd.args.len();
    if !unseen.args && !m.args.iter().all(|p| cmd.args.iter().enumerate().any(|(i, a)| arg_matches(p, a, i + 1 == count))) {
        return false;
    }
    for v in &m.values {
        if unseen.args || (unseen.stdin && about_stdin(v)) {
            continue;
        }
        let names = v.names_for(&cmd.name);
        if !cmd.values.iter().any(|(n, val)| names.contains(n) && v.regex.is_match(val)) {
            return false;
        }
    }
    if let Some(p) = &m.redirect_to {
        if !cmd.redirects.iter().any(|r| r.write && redirect_matches(p, r)) {
            return false;
        }
    }
    if let Some(p) = &m.redirect_from {
        if !cmd.redirects.iter().any(|r| !r.write && redirect_matches(p, r)) {
            return false;
        }
    }
    if !m.input_from.is_empty() && !cmd.input_from.iter().any(|p| m.input_from.iter().any(|x| name_matches(x, p))) {
        return false;
    }
    if !m.wrapped_by.is_empty() && !cmd.wrappers.iter().any(|w| m.wrapped_by.iter().any(|x| x == w || w.split(' ').next() == Some(x))) {
        return false;
    }
    if let Some(want) = m.unsafe_expansion.filter(|w| !(unseen.args && *w)) {
        if cmd.unsafe_reasons().next().is_some() != want {
            return false;
        }
    }
    if let Some(want) = m.forks_itself {
        if cmd.forks_itself != want {
            return false;
        }
    }
    if let Some(re) = &m.raw {
        if !re.is_match(line) {
            return false;
        }
    }
    true
}

fn program_matches(p: &ProgramPattern, cmd: &ParsedCommand) -> bool {
    match p {
        ProgramPattern::Name(n) => *n == cmd.name,
        ProgramPattern::Path(path) => cmd.program.starts_with('/') && super::path::canonical(&cmd.program, "/") == *path,
        ProgramPattern::Glob(g) => glob(g, &cmd.name),
    }
}

fn name_matches(pattern: &str, name: &str) -> bool {
    if pattern.contains(['*', '?', '[']) {
        glob(pattern, name)
    } else {
        pattern == name
    }
}

fn arg_matches(p: &ArgPredicate, a: &Arg, last: bool) -> bool {
    p.last.is_none_or(|l| l == last) && predicate(p, &a.text, &a.path, a.unsafe_reason.is_some(), a.glob)
}

fn redirect_matches(p: &ArgPredicate, r: &Redirect) -> bool {
    p.appends.is_none_or(|a| a == r.op.contains(">>")) && predicate(p, &r.target, &r.path, false, false)
}

/// `pattern` (an operand that is an unquoted glob) could name `path` or
/// something below it: `/e*` names `/etc`, `/var/*` names `/var/lib` and
/// whatever is under it.
fn could_name(pattern: &str, path: &str, under: bool) -> bool {
    if glob(pattern, path) {
        return true;
    }
    if !under {
        return false;
    }
    // Some prefix of `path`, cut at a `/`, matches the pattern.
    path.match_indices('/').skip(1).any(|(i, _)| path.get(..i).is_some_and(|prefix| glob(pattern, prefix)))
}

fn predicate(p: &ArgPredicate, text: &str, path: &str, is_unsafe: bool, is_glob: bool) -> bool {
    (p.equals.is_empty() || p.equals.iter().any(|e| e == text))
        && p.regex.as_ref().is_none_or(|r| r.is_match(text))
        && (p.path_equals.is_empty() || p.path_equals.iter().any(|e| e == path || (is_glob && could_name(path, e, false))))
        && (p.path_under.is_empty() || p.path_under.iter().any(|d| is_under(path, d) || (is_glob && could_name(path, d, true))))
        && (p.glob.is_empty() || p.glob.iter().any(|g| glob(g, path)))
        && p.unsafe_.is_none_or(|u| u == is_unsafe)
}

fn is_under(path: &str, dir: &str) -> bool {
    if dir == "/" {
        return true;
    }
    path == dir || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

/// Glob matching: `*` and `?` do not cross `/`, `**` does, `[...]` is a
/// class (`[!...]` negated). Iterative with one backtrack point per star,
/// so the cost is at most pattern length times text length.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    glob_from(&p, &t)
}

fn glob_from(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    // Backtrack point: (pattern index after the star, text index, crosses '/').
    let mut star: Option<(usize, usize, bool)> = None;
    loop {
        if let Some(&pc) = p.get(pi) {
            if pc == '*' {
                let double = p.get(pi + 1) == Some(&'*');
                let next = if double { pi + 2 } else { pi + 1 };
                star = Some((next, ti, double));
                pi = next;
                continue;
            }
            if let Some(&tc) = t.get(ti) {
                let (ok, len) = match pc {
                    '?' => (tc != '/', 1),
                    '[' => class(p.get(pi..).unwrap_or_default(), tc),
                    c => (c == tc, 1),
                };
                if ok {
                    pi += len;
                    ti += 1;
                    continue;
                }
            }
        } else if ti == t.len() {
            return true;
        }
        // Mismatch: let the last star eat one more character.
        match star {
            Some((next, start, crosses)) => {
                let Some(&eaten) = t.get(start) else { return false };
                if eaten == '/' && !crosses {
                    return false;
                }
                star = Some((next, start + 1, crosses));
                pi = next;
                ti = start + 1;
            }
            None => return false,
        }
    }
}

/// Matches a `[...]` class at the start of `p` against `c`; returns whether
/// it matched and the class's length in the pattern.
fn class(p: &[char], c: char) -> (bool, usize) {
    let Some(end) = p.iter().skip(2).position(|&x| x == ']').map(|i| i + 2) else {
        return (c == '[', 1);
    };
    let body = p.get(1..end).unwrap_or_default();
    let (negate, body) = match body.split_first() {
        Some(('!' | '^', rest)) => (true, rest),
        _ => (false, body),
    };
    let mut hit = false;
    let mut i = 0;
    while let Some(&a) = body.get(i) {
        if body.get(i + 1) == Some(&'-') {
            if let Some(&b) = body.get(i + 2) {
                hit |= a <= c && c <= b;
                i += 3;
                continue;
            }
        }
        hit |= a == c;
        i += 1;
    }
    (hit != negate && c != '/', end + 1)
}

/// The rules that can match a command, by its program's name, in file
/// order: a rule that names its programs (`program = ["rm", "unlink"]`) is
/// listed only under those names; a rule about any program, or about a
/// path or glob of one, under every name. The built-in policy has 55 rules
/// and each command's name lists about a dozen.
#[derive(Clone, Debug, Default)]
pub struct RuleIndex {
    by_name: HashMap<String, Vec<usize>>,
    any: Vec<usize>,
}

impl RuleIndex {
    pub fn new(rules: &[Rule]) -> Self {
        let mut any = Vec::new();
        let mut named: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            let program = &r.matcher.program;
            let names: Option<Vec<&String>> = program
                .iter()
                .map(|p| match p {
                    ProgramPattern::Name(n) => Some(n),
                    ProgramPattern::Path(_) | ProgramPattern::Glob(_) => None,
                })
                .collect();
            match names.filter(|n| !n.is_empty()) {
                Some(names) => names.into_iter().for_each(|n| named.entry(n.clone()).or_default().push(i)),
                None => any.push(i),
            }
        }
        let by_name = named
            .into_iter()
            .map(|(name, mut list)| {
                list.extend(&any);
                list.sort_unstable();
                list.dedup();
                (name, list)
            })
            .collect();
        Self { by_name, any }
    }

    /// The rules that can match a command named `name`, in file order.
    pub fn candidates<'r>(&self, rules: &'r [Rule], name: &str) -> impl Iterator<Item = &'r Rule> + use<'r, '_> {
        self.by_name.get(name).unwrap_or(&self.any).iter().filter_map(|&i| rules.get(i))
    }
}

/// The first rule that decides `cmd` for `who`, with its verdict.
pub fn first_match<'r>(rules: &'r [Rule], index: &RuleIndex, cmd: &ParsedCommand, who: &Subject, line: &str) -> Option<&'r Rule> {
    index.candidates(rules, &cmd.name).find(|r| in_scope(r, who) && matches(&r.matcher, cmd, line))
}

/// A rule about `cmd`'s program that an unknowable operand could make
/// match (`rm -rf $(cat list)` and `rm-root`): its other matchers hold, and
/// what it says of flags, operands, option values (and, when the unknown
/// word comes first, the subcommand) could be true of a value the checker
/// cannot know. Rules without `program` do not count: they are about an
/// operand of any program (`/etc/shadow`), and would make every
/// substitution unknown; the exec-level gate sees the real operands.
/// Only rules more severe than `than` (what the command gets now) count.
pub fn could_match_unknown_args<'r>(rules: &'r [Rule], index: &RuleIndex, cmd: &ParsedCommand, who: &Subject, line: &str, subcommand_unknown: bool, than: Verdict) -> Option<&'r Rule> {
    index.candidates(rules, &cmd.name).filter(|r| r.action > than).find(|r| {
        let m = &r.matcher;
        let about_args = !m.flags.is_empty() || !m.args.is_empty() || !m.values.is_empty() || m.unsafe_expansion == Some(true) || (subcommand_unknown && !m.subcommand.is_empty());
        if m.program.is_empty() || !about_args || !in_scope(r, who) {
            return false;
        }
        matches_but(m, cmd, line, Unseen { args: true, subcommand: subcommand_unknown, stdin: false })
    })
}

/// A rule about `cmd`'s program that looks at its standard input
/// (`values` with flag `--stdin`) and could match what it reads, which the
/// checker cannot see (`cat x.sql | psql`): its other matchers hold. Only
/// rules more severe than `than` count.
pub fn could_match_unknown_stdin<'r>(rules: &'r [Rule], index: &RuleIndex, cmd: &ParsedCommand, who: &Subject, line: &str, than: Verdict) -> Option<&'r Rule> {
    index.candidates(rules, &cmd.name).filter(|r| r.action > than).find(|r| {
        let m = &r.matcher;
        if m.program.is_empty() || !m.values.iter().any(about_stdin) || !in_scope(r, who) {
            return false;
        }
        matches_but(m, cmd, line, Unseen { stdin: true, ..Unseen::default() })
    })
}

/// The first raw-only rule matching a line that has no commands.
pub fn first_raw_match<'r>(rules: &'r [Rule], who: &Subject, line: &str) -> Option<&'r Rule> {
    rules.iter().find(|r| in_scope(r, who) && r.matcher.raw_only() && r.matcher.raw.as_ref().is_some_and(|re| re.is_match(line)))
}

/// Most severe first; ties keep the earlier command.
pub fn more_severe(a: Verdict, b: Verdict) -> bool {
    a > b
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// The index lists, for any name, exactly the rules a linear scan
    /// could match on the program, in file order.
    #[test]
    fn the_index_lists_every_rule_a_command_of_that_name_could_match() {
        let policy = crate::policy::Policy::default_policy();
        let rules = policy.rules();
        let index = RuleIndex::new(rules);
        let names: Vec<String> = rules
            .iter()
            .flat_map(|r| r.matcher.program.iter())
            .filter_map(|p| match p {
                ProgramPattern::Name(n) => Some(n.clone()),
                _ => None,
            })
            .chain(["not-a-program".to_owned(), String::new()])
            .collect();
        assert!(names.len() > 20, "{names:?}");
        for name in &names {
            let linear: Vec<&str> = rules
                .iter()
                .filter(|r| r.matcher.program.is_empty() || r.matcher.program.iter().any(|p| !matches!(p, ProgramPattern::Name(n) if n != name)))
                .map(|r| r.name.as_str())
                .collect();
            let indexed: Vec<&str> = index.candidates(rules, name).map(|r| r.name.as_str()).collect();
            assert_eq!(indexed, linear, "{name}");
        }
        // Most rules are about named programs, so a name lists few of them.
        assert!(index.candidates(rules, "ls").count() < rules.len() / 2);
    }

    #[rstest]
    #[case("/lib*", "/lib64", true)]
    #[case("/lib*", "/lib", true)]
    #[case("/lib*", "/lib/x", false)]
    #[case("/lib**", "/lib/x", true)]
    #[case("/dev/sd?", "/dev/sda", true)]
    #[case("/dev/sd[a-z]", "/dev/sdb", true)]
    #[case("/dev/sd[!a]", "/dev/sda", false)]
    #[case("/dev/nvme*", "/dev/nvme0n1p1", true)]
    #[case("mkfs*", "mkfs.ext4", true)]
    #[case("*", "", true)]
    #[case("a*b*c", "aXbYc", true)]
    #[case("a*b*c", "aXbY", false)]
    #[case("/**/x", "/a/b/x", true)]
    fn globs(#[case] pattern: &str, #[case] text: &str, #[case] expected: bool) {
        assert_eq!(glob(pattern, text), expected);
    }

    #[test]
    fn glob_is_not_exponential() {
        let text = "a".repeat(5000);
        let pattern = format!("{}b", "*a".repeat(50));
        let t = std::time::Instant::now();
        assert!(!glob(&pattern, &text));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    #[rstest]
    #[case("/dev/sda", "/dev", true)]
    #[case("/dev", "/dev", true)]
    #[case("/device", "/dev", false)]
    #[case("/etc", "/", true)]
    fn under(#[case] path: &str, #[case] dir: &str, #[case] expected: bool) {
        assert_eq!(is_under(path, dir), expected);
    }
}
