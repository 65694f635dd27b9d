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
    if !m.program.is_empty() && !m.program.iter().any(|p| program_matches(p, cmd)) {
        return false;
    }
    if !m.subcommand.is_empty() && !cmd.subcommand().is_some_and(|s| m.subcommand.iter().any(|x| x == s)) {
        return false;
    }
    if !m.flags.is_empty() || !m.not_flags.is_empty() {
        let (flags, not_flags) = m.flags_for(&cmd.name);
        if !m.flags.is_empty() && !flags.is_subset(&cmd.flags) {
            return false;
        }
        if !m.not_flags.is_empty() && !not_flags.is_disjoint(&cmd.flags) {
            return false;
        }
    }
    let count = cmd.args.len();
    if !m.args.iter().all(|p| cmd.args.iter().enumerate().any(|(i, a)| arg_matches(p, a, i + 1 == count))) {
        return false;
    }
    for v in &m.values {
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
    if let Some(want) = m.unsafe_expansion {
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

/// The first rule that decides `cmd` for `who`, with its verdict.
pub fn first_match<'r>(rules: &'r [Rule], cmd: &ParsedCommand, who: &Subject, line: &str) -> Option<&'r Rule> {
    rules.iter().find(|r| in_scope(r, who) && matches(&r.matcher, cmd, line))
}

/// A rule about `cmd`'s program that an unknowable operand could make
/// match (`rm -rf $(cat list)` and `rm-root`): its other matchers hold, and
/// what it says of flags, operands, option values (and, when the unknown
/// word comes first, the subcommand) could be true of a value the checker
/// cannot know. Rules without `program` do not count: they are about an
/// operand of any program (`/etc/shadow`), and would make every
/// substitution unknown; the exec-level gate sees the real operands.
/// Only rules more severe than `than` (what the command gets now) count.
pub fn could_match_unknown_args<'r>(rules: &'r [Rule], cmd: &ParsedCommand, who: &Subject, line: &str, subcommand_unknown: bool, than: Verdict) -> Option<&'r Rule> {
    rules.iter().filter(|r| r.action > than).find(|r| {
        let m = &r.matcher;
        let about_args = !m.flags.is_empty() || !m.args.is_empty() || !m.values.is_empty() || m.unsafe_expansion == Some(true) || (subcommand_unknown && !m.subcommand.is_empty());
        if m.program.is_empty() || !about_args || !in_scope(r, who) {
            return false;
        }
        let mut rest = m.clone();
        rest.flags.clear();
        rest.args.clear();
        rest.values.clear();
        if rest.unsafe_expansion == Some(true) {
            rest.unsafe_expansion = None;
        }
        if subcommand_unknown {
            rest.subcommand.clear();
        }
        matches(&rest, cmd, line)
    })
}

/// A rule about `cmd`'s program that looks at its standard input
/// (`values` with flag `--stdin`) and could match what it reads, which the
/// checker cannot see (`cat x.sql | psql`): its other matchers hold. Only
/// rules more severe than `than` count.
pub fn could_match_unknown_stdin<'r>(rules: &'r [Rule], cmd: &ParsedCommand, who: &Subject, line: &str, than: Verdict) -> Option<&'r Rule> {
    let about_stdin = |v: &super::config::ValuePredicate| v.flag.iter().any(|f| f == super::parse::STDIN_VALUE);
    rules.iter().filter(|r| r.action > than).find(|r| {
        let m = &r.matcher;
        if m.program.is_empty() || !m.values.iter().any(about_stdin) || !in_scope(r, who) {
            return false;
        }
        let mut rest = m.clone();
        rest.values.retain(|v| !about_stdin(v));
        matches(&rest, cmd, line)
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
