//! Passwords given to a command as options, where no name says "password":
//! `mysql -pS3cret`, `mongosh -p S3cret`, `redis-cli -a S3cret`, `sqlcmd -P
//! S3cret`, `sshpass -p S3cret`, `docker login -p S3cret`, `curl -u
//! user:S3cret`, `smbclient -U user%S3cret`, `openssl … -passin pass:S3cret`.
//!
//! Whether `-p` means a password depends on the tool (`docker run -p` is a
//! port, `mysql -p db` prompts and `db` is the database), so this is a table
//! of tools ([`TOOLS`]) and their options ([`Opt`]): how the value is
//! written (glued to the flag, or the next word) and which part of it is
//! secret. Options that do name a secret (`--password=…`, `--token …`,
//! `-storepass …`) are the assignment parser's (`assign.rs`).
//!
//! The prefilter finds the tool's name; a name counts as the command when it
//! starts a word (or follows a `/`, as in `/usr/bin/mysql`), which is also
//! how a process listing (`ps aux`, `top`, `htop`) shows it. The options are
//! read from there to the end of the command (`|`, `;`, `&&`) or the line:
//! a monitor cuts a long command line at the row's end, and a value cut
//! there is masked as far as it goes.

use super::assign::plausible_value;
use super::config::DetectorId;
use super::scan::{at, before, run_end, Hit, Source};

/// One tool, or a family of them sharing a name's start (`mysql` covers
/// `mysqldump`, `mysqladmin`; `mongo` covers `mongosh`, `mongodump`).
pub(crate) struct Tool {
    pub name: &'static str,
    family: bool,
    /// A word that must come before the option (`docker login -p`).
    subcommand: Option<&'static str>,
    options: &'static [Opt],
}

/// An option whose value is (or holds) a password.
struct Opt {
    flag: &'static str,
    /// `-pS3cret`.
    glued: bool,
    /// `-p S3cret`.
    spaced: bool,
    part: Part,
}

/// Which part of the value is secret.
#[derive(Clone, Copy)]
enum Part {
    Whole,
    /// After the first of this byte: `user:PASS`, `user%PASS`. With none,
    /// nothing (the tool prompts).
    After(u8),
    /// After this prefix, which must be there: `pass:PASS`.
    Prefixed(&'static str),
}

const fn glued(flag: &'static str) -> Opt {
    Opt { flag, glued: true, spaced: false, part: Part::Whole }
}
const fn either(flag: &'static str, part: Part) -> Opt {
    Opt { flag, glued: true, spaced: true, part }
}
const fn spaced(flag: &'static str, part: Part) -> Opt {
    Opt { flag, glued: false, spaced: true, part }
}

const MYSQL: &[Opt] = &[glued("-p")];
const DASH_P: &[Opt] = &[either("-p", Part::Whole)];
const REDIS: &[Opt] = &[either("-a", Part::Whole)];
const SQLCMD: &[Opt] = &[either("-P", Part::Whole)];
const CURL: &[Opt] = &[
    either("-u", Part::After(b':')),
    spaced("--user", Part::After(b':')),
    either("-U", Part::After(b':')),
    spaced("--proxy-user", Part::After(b':')),
];
const SMB: &[Opt] = &[either("-U", Part::After(b'%')), spaced("--user", Part::After(b'%'))];
const OPENSSL: &[Opt] = &[
    spaced("-passin", Part::Prefixed("pass:")),
    spaced("-passout", Part::Prefixed("pass:")),
    spaced("-pass", Part::Prefixed("pass:")),
    spaced("-password", Part::Prefixed("pass:")),
    spaced("-k", Part::Whole),
];

const fn tool(name: &'static str, family: bool, options: &'static [Opt]) -> Tool {
    Tool { name, family, subcommand: None, options }
}
const fn login(name: &'static str) -> Tool {
    Tool { name, family: false, subcommand: Some("login"), options: DASH_P }
}

/// The tools. A name is also a prefilter trigger word.
pub(crate) const TOOLS: &[Tool] = &[
    tool("mysql", true, MYSQL),
    tool("mariadb", true, MYSQL),
    tool("mongo", true, DASH_P),
    tool("redis-cli", false, REDIS),
    tool("valkey-cli", false, REDIS),
    tool("keydb-cli", false, REDIS),
    tool("sqlcmd", false, SQLCMD),
    tool("bcp", false, SQLCMD),
    tool("sshpass", false, DASH_P),
    tool("curl", false, CURL),
    tool("smbclient", false, SMB),
    tool("openssl", false, OPENSSL),
    login("docker"),
    login("podman"),
    login("nerdctl"),
    login("buildah"),
    login("skopeo"),
    login("helm"),
    login("oras"),
];

/// A byte that may come right before a command's name.
fn starts_command(c: u8) -> bool {
    matches!(c, 0 | b' ' | b'\t' | b'/' | b'(' | b'"' | b'\'' | b'`' | b'=' | b';' | b'|' | b'&' | b'$')
}

/// The secret option values of the tool `index` whose name the prefilter
/// found at `start`; each with whether it runs to the end of the line (it
/// may be cut off there, or still growing).
pub(crate) fn values(index: usize, line: &str, start: usize) -> Vec<(std::ops::Range<usize>, bool)> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let Some(tool) = TOOLS.get(index) else { return out };
    if !b.get(start..).is_some_and(|r| r.starts_with(tool.name.as_bytes())) || !starts_command(before(b, start)) {
        return out;
    }
    let mut i = start + tool.name.len();
    if tool.family {
        i = run_end(b, i, |c| c.is_ascii_lowercase() || c == b'-' || c == b'_');
    }
    if !matches!(at(b, i), b' ' | b'\t') {
        return out;
    }
    let mut seen_subcommand = tool.subcommand.is_none();
    let mut words = Words { b, i };
    while let Some(word) = words.next() {
        let w = b.get(word.clone()).unwrap_or_default();
        if !seen_subcommand {
            seen_subcommand = tool.subcommand.is_some_and(|s| w == s.as_bytes());
            continue;
        }
        for opt in tool.options {
            let flag = opt.flag.as_bytes();
            let value = if opt.spaced && w == flag {
                words.next()
            } else if opt.glued && w.len() > flag.len() && w.starts_with(flag) {
                Some(word.start + flag.len()..word.end)
            } else {
                continue;
            };
            if let Some(v) = value.and_then(|v| secret_part(b, v, opt.part)) {
                out.push((v.clone(), v.end == b.len()));
            }
            break;
        }
    }
    out
}

/// Pushes the hits for [`values`].
pub(crate) fn recognise(index: usize, line: &str, start: usize, hits: &mut Vec<Hit>) {
    for (range, _) in values(index, line, start) {
        hits.push(Hit { range, source: Source::Builtin(DetectorId::CliPassword) });
    }
}

/// The secret inside a value as written (quotes stripped), if it could be one.
fn secret_part(b: &[u8], v: std::ops::Range<usize>, part: Part) -> Option<std::ops::Range<usize>> {
    let mut v = v;
    let q = at(b, v.start);
    if matches!(q, b'"' | b'\'') {
        v.start += 1;
        if v.end > v.start && at(b, v.end - 1) == q {
            v.end -= 1;
        }
    }
    let text = b.get(v.clone())?;
    let v = match part {
        Part::Whole => v,
        Part::After(sep) => v.start + text.iter().position(|c| *c == sep)? + 1..v.end,
        Part::Prefixed(p) => {
            if !text.starts_with(p.as_bytes()) {
                return None;
            }
            v.start + p.len()..v.end
        }
    };
    let text = std::str::from_utf8(b.get(v.clone())?).ok()?;
    // `-p -h db`: the flag had no value.
    (!text.starts_with('-') && plausible_value(text)).then_some(v)
}

/// Shell words from `i` to the end of the command: a quoted stretch belongs
/// to its word, and `|`, `;`, `&` outside quotes end the command.
struct Words<'a> {
    b: &'a [u8],
    i: usize,
}

impl Words<'_> {
    fn next(&mut self) -> Option<std::ops::Range<usize>> {
        let b = self.b;
        let s = run_end(b, self.i, |c| c == b' ' || c == b'\t');
        if s >= b.len() || matches!(at(b, s), b'|' | b';' | b'&' | b'>' | b'<') {
            self.i = b.len();
            return None;
        }
        let mut j = s;
        while j < b.len() {
            let c = at(b, j);
            if c == b'"' || c == b'\'' {
                j = run_end(b, j + 1, |x| x != c) + 1;
                continue;
            }
            if c == b' ' || c == b'\t' || matches!(c, b'|' | b';' | b'&') {
                break;
            }
            j += 1;
        }
        let end = j.min(b.len());
        self.i = end;
        Some(s..end)
    }
}
