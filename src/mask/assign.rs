//! Values of assignments whose name says secret: `password=…`,
//! `export GITHUB_TOKEN=…`, `"client_secret": "…"`, `api_key: …`,
//! `--password …`, `Authorization: Bearer …`.
//!
//! The prefilter finds a key word stem (`pass`, `pwd`, `secret`, `token`,
//! `key`, `auth`, `credential`); from there the parser takes the whole key
//! (letters, digits, `_`, `-`, `.`), decides whether the key names a secret
//! ([`is_secret_name`]), finds the operator after it and cuts out the value.
//! Only the value is masked, never the name.
//!
//! One parser serves shell (`A=B`, `A='B'`, `A="B"`), env, YAML and HTTP
//! headers (`key: value`, value to the end of the line), JSON (`"key":
//! "value"`), TOML/ini (`key = value`) and command-line flags (`--password
//! value`, `--token=value`).
//!
//! Stays visible, deliberately:
//! - a key with no value (`Password:` as a prompt, `password=`);
//! - keys that describe a secret rather than hold one: `password_expiry`,
//!   `token_type`, `secret_name`, `token_url`, `access_key_id` (the AWS
//!   detector masks an actual key id), `--password-stdin`, …: the part of
//!   the name after the secret word decides ([`NOT_SECRET_SUFFIXES`]);
//! - `PWD` and `OLDPWD`, the working directory in `env` output;
//! - values that cannot be a secret: booleans, `null`/`none`, a `$VAR`
//!   reference, a `<placeholder>` or `{{ template }}`, text already masked
//!   (`****`);
//! - messages about a password rather than one (`passwd: password updated
//!   successfully`, `token: expired`): words mostly from [`STATUS_WORDS`];
//! - help text's placeholders after an option (`--password=PASSWORD`,
//!   `--token string`);
//! - `pin` whose value is not 4 to 12 digits (`pin: v2.1` pins a version).
//!
//! Short labels (`pw`, `pin`) are keys only whole or as a key's last part
//! (`DB_PW`, `SIM_PIN`): inside a word they are `npw`, `spin`, `mapping`.

use std::ops::Range;

use memchr::memmem;

use super::config::DetectorId;
use super::scan::{at, before, run_end, run_start, trim_range, Enabled, Hit, Source};
use super::tokens::is_aws_secret;

/// Key names containing one of these (after lowercasing and dropping `_`,
/// `-`, `.`) name a secret.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "secretkey",
    "signingkey",
    "encryptionkey",
    "masterkey",
    "authkey",
    "licensekey",
    "credential",
    "authorization",
];

/// Key names ending in one of these name a secret too (`DB_PASS`,
/// `MYSQL_PWD`, `basic_auth`); as a stem inside a word they would catch
/// `passport`, `bypass`, `author`.
const SECRET_ENDINGS: &[&str] = &["pass", "pwd", "auth"];

/// Words ending in a secret ending that are not secrets.
const NOT_SECRET_WORDS: &[&str] = &["bypass", "compass", "overpass", "underpass", "trespass"];

/// If the part of the key after its last secret word contains one of these,
/// the key describes the secret rather than holds it.
const NOT_SECRET_SUFFIXES: &[&str] = &[
    "expir", "type", "len", "policy", "file", "path", "dir", "url", "uri", "endpoint", "name", "count",
    "ttl", "age", "prompt", "hint", "reset", "changed", "updated", "created", "required", "enabled",
    "disabled", "method", "mode", "version", "format", "header", "id", "ref", "arn", "less", "stdin",
    "helper", "iz", "store", "manager", "provider", "source", "env", "var", "issuer", "scope",
    "lifetime", "timeout", "rotation",
];

/// Labels too short to look for inside a word: they name a secret only as
/// a whole key or its last `_`/`-`/`.` part (`pw`, `SIM_PIN`, `user-pw`).
const SHORT_LABELS: &[&str] = &["pw", "pin", "pincode"];

/// Whether a key is one of [`SHORT_LABELS`], alone or as its last part.
fn is_short_label(key: &str) -> bool {
    let last = key.rsplit(['_', '-', '.']).next().unwrap_or(key);
    SHORT_LABELS.iter().any(|l| last.eq_ignore_ascii_case(l))
}

/// Whether a key names a PIN, whose value is digits only: `pin: v2` (a
/// pinned version) is not one.
fn is_pin(key: &str) -> bool {
    let last = key.rsplit(['_', '-', '.']).next().unwrap_or(key);
    last.eq_ignore_ascii_case("pin") || last.eq_ignore_ascii_case("pincode")
}

/// Whether a key (as written) names a secret value.
pub(crate) fn is_secret_name(key: &str) -> bool {
    if key == "PWD" || key == "OLDPWD" {
        return false;
    }
    if is_short_label(key) {
        return true;
    }
    let norm: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if norm.is_empty() {
        return false;
    }
    // Where the last secret word ends; what follows decides.
    let mut word_end = None;
    for w in SECRET_WORDS {
        if let Some(pos) = memmem::rfind(norm.as_bytes(), w.as_bytes()) {
            let end = pos + w.len();
            word_end = Some(word_end.map_or(end, |e: usize| e.max(end)));
        }
    }
    if let Some(end) = word_end {
        let rest = norm.get(end..).unwrap_or_default();
        // "tokens", "credentials", "secrets": a plural is still a secret.
        return rest.is_empty() || rest == "s" || !NOT_SECRET_SUFFIXES.iter().any(|s| rest.contains(s));
    }
    SECRET_ENDINGS.iter().any(|e| norm.ends_with(e)) && !NOT_SECRET_WORDS.iter().any(|w| norm.ends_with(w))
}

fn key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// A parsed `key OP value` on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assignment {
    pub key: Range<usize>,
    /// The value as written, quotes excluded; may be empty.
    pub value: Range<usize>,
    /// The value runs to the end of the line with nothing closing it: it
    /// may still be growing (for the hold-back window).
    pub open_ended: bool,
    /// The value is the rest of the line after a `:` (YAML, headers, and
    /// status messages: `passwd: password updated successfully`).
    pub prose: bool,
}

pub(crate) fn assignments(d: Enabled, line: &str, keyword_hits: &[Range<usize>], hits: &mut Vec<Hit>) {
    for a in parse_all(line, keyword_hits) {
        let b = line.as_bytes();
        let value = a.value.clone();
        let Some(text) = line.get(value.clone()) else { continue };
        if value.is_empty() || !plausible_value(text) {
            continue;
        }
        let key = line.get(a.key.clone()).unwrap_or_default();
        let bare_key = key.trim_start_matches('-');
        let pin_shaped = (4..=12).contains(&text.len()) && text.bytes().all(|c| c.is_ascii_digit());
        if is_pin(bare_key) && !pin_shaped {
            continue;
        }
        // Help text (`--password=PASSWORD`) and status messages.
        if (a.prose && is_prose(text)) || (key.starts_with('-') && is_placeholder(bare_key, text)) {
            continue;
        }
        let norm_key = key.to_ascii_lowercase().replace(['_', '-', '.'], "");
        let aws = norm_key.ends_with("secretaccesskey") || norm_key == "awssecretkey";
        let range = skip_auth_scheme(b, value);
        if aws && is_aws_secret(b.get(range.clone()).unwrap_or_default()) && d.is_enabled(DetectorId::AwsSecretAccessKey) {
            hits.push(Hit { range, source: Source::Builtin(DetectorId::AwsSecretAccessKey) });
        } else if d.is_enabled(DetectorId::Assignment) {
            hits.push(Hit { range, source: Source::Builtin(DetectorId::Assignment) });
        }
    }
}

/// Every secret-named assignment on the line, values possibly empty.
pub(crate) fn parse_all(line: &str, keyword_hits: &[Range<usize>]) -> Vec<Assignment> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut done_until = 0;
    for hit in keyword_hits {
        if hit.start < done_until {
            continue;
        }
        let key_start = run_start(b, hit.start, key_char);
        let key_end = run_end(b, hit.end, key_char);
        done_until = key_end;
        let Some(key) = line.get(key_start..key_end) else { continue };
        let bare_key = key.trim_start_matches('-');
        if !is_secret_name(bare_key.trim_end_matches(['-', '.'])) {
            continue;
        }
        let strong = STRONG_WORDS.iter().any(|w| contains_ignore_case(bare_key, w));
        // `--password X`, and Java's and OpenSSL's one-dash long options
        // (`keytool -storepass X`) when the dash starts a word.
        let flag = key.starts_with("--") || (key.starts_with('-') && key.len() > 2 && matches!(before(b, key_start), b' ' | b'\t'));
        if let Some(a) = parse_after_key(b, key_start, key_end, flag, strong) {
            out.push(a);
        }
    }
    out
}

/// Words so unambiguous that `PASSWORD:hunter2` (no space after the colon)
/// is taken as an assignment; `token:abc` or `auth:basic` are not.
const STRONG_WORDS: &[&str] = &["password", "passwd", "passphrase", "secret"];

fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Finds the operator after a key and the value after the operator.
fn parse_after_key(b: &[u8], key_start: usize, key_end: usize, flag: bool, strong: bool) -> Option<Assignment> {
    let open_quote = before(b, key_start);
    let quoted_key = matches!(open_quote, b'"' | b'\'') && at(b, key_end) == open_quote;
    let mut i = if quoted_key { key_end + 1 } else { key_end };
    let spaces = |i: usize| run_end(b, i, |c| c == b' ' || c == b'\t');
    let after_key = i;
    i = spaces(i);
    let op = at(b, i);
    let (value_start, rest_of_line) = match op {
        b'=' if at(b, i + 1) != b'=' && before(b, i) != b'!' => {
            let after = if at(b, i + 1) == b'>' { i + 2 } else { i + 1 };
            (spaces(after), false)
        }
        b':' if at(b, i + 1) == b'=' => (spaces(i + 2), false),
        b':' if quoted_key => (spaces(i + 1), false),
        b':' if strong && at(b, i + 1) != b':' && at(b, i + 1) != b'/' && i == after_key => (i + 1, true),
        // YAML and headers need a space after the colon; `token:abc` and
        // `Token::new` are not assignments.
        b':' if matches!(at(b, i + 1), b' ' | b'\t' | 0) => (spaces(i + 1), true),
        // `--password VALUE`
        _ if flag && i > after_key && i < b.len() && at(b, i) != b'-' => (i, false),
        _ => return None,
    };
    let q = at(b, value_start);
    if matches!(q, b'"' | b'\'' | b'`') {
        let inner = value_start + 1;
        let mut j = inner;
        while j < b.len() {
            let c = at(b, j);
            if c == b'\\' && q == b'"' {
                j += 2;
                continue;
            }
            if c == q {
                return Some(Assignment { key: key_start..key_end, value: inner..j, open_ended: false, prose: false });
            }
            j += 1;
        }
        let value = trim_range(b, inner..b.len());
        return Some(Assignment { key: key_start..key_end, value: inner..value.end.max(inner), open_ended: true, prose: false });
    }
    if rest_of_line {
        // YAML/header style: the rest of the line, less a ` #` comment.
        let mut end = b.len();
        if let Some(p) = b.get(value_start..).and_then(|r| memmem::find(r, b" #")) {
            end = value_start + p;
        }
        let value = trim_range(b, value_start..end);
        // Flow collections, anchors, block scalars: the value is elsewhere.
        if matches!(at(b, value.start), b'{' | b'[' | b'|' | b'>' | b'&' | b'*') {
            return None;
        }
        let open_ended = end == b.len();
        return Some(Assignment {
            key: key_start..key_end,
            value: value.start..value.end.max(value.start),
            open_ended,
            prose: true,
        });
    }
    let end = run_end(b, value_start, |c| {
        !(c.is_ascii_whitespace() || matches!(c, b'&' | b';' | b',' | b')' | b']' | b'}' | b'"' | b'\'' | b'<' | b'>'))
    });
    Some(Assignment { key: key_start..key_end, value: value_start..end, open_ended: end == b.len(), prose: false })
}

/// In `Authorization: Bearer abc`, only `abc` is the secret.
fn skip_auth_scheme(b: &[u8], value: Range<usize>) -> Range<usize> {
    for scheme in [&b"Bearer "[..], b"Basic ", b"Token ", b"Digest ", b"Negotiate ", b"token ", b"bearer "] {
        if b.get(value.start..value.end).is_some_and(|v| v.starts_with(scheme) && v.len() > scheme.len()) {
            return value.start + scheme.len()..value.end;
        }
    }
    value
}

/// Words of the messages tools print about a password rather than with
/// one: `passwd: password updated successfully`, `Password: must be at
/// least 8 characters`, `token: expired`.
const STATUS_WORDS: &[&str] = &[
    "password", "passwords", "token", "secret", "updated", "changed", "expired", "expires", "expiry",
    "information", "successfully", "success", "successful", "unchanged", "set", "reset", "saved", "stored",
    "removed", "deleted", "created", "accepted", "incorrect", "invalid", "wrong", "denied", "failed",
    "failure", "mismatch", "match", "matched", "required", "must", "be", "is", "was", "has", "have", "been",
    "not", "no", "do", "does", "too", "short", "weak", "at", "least", "characters", "the", "for", "of",
    "authentication", "tokens", "all", "will", "should", "cannot", "can't", "please", "try", "again",
    "enter", "new", "retype", "same", "unknown", "error", "ok", "done",
];

/// Whether a value is a message of [`STATUS_WORDS`] rather than a
/// passphrase: words of letters only (ending punctuation aside, numbers
/// not counted), at least two, more than half of them status words. A
/// passphrase such as `correct horse battery staple` has none.
fn is_prose(v: &str) -> bool {
    let words: Vec<&str> = v
        .split_whitespace()
        .map(|w| w.trim_end_matches(['.', ',', '!', ':', ';']))
        .filter(|w| !w.bytes().all(|c| c.is_ascii_digit()))
        .collect();
    if words.len() < 2 || !words.iter().all(|w| w.bytes().all(|c| c.is_ascii_alphabetic() || c == b'\'')) {
        return false;
    }
    let status = words.iter().filter(|w| STATUS_WORDS.iter().any(|s| w.eq_ignore_ascii_case(s))).count();
    status * 2 > words.len()
}

/// Whether a value is a help text's placeholder (`--password=PASSWORD`,
/// `--token string`, `-p password`): the key's own name, a type name, or
/// a secret word, in one case throughout.
fn is_placeholder(key: &str, v: &str) -> bool {
    const TYPES: &[&str] = &["string", "str", "value", "text", "file", "path", "int", "secret", "pass", "pwd", "token", "key", "password", "passwd", "passphrase"];
    let v = v.trim_matches(['[', ']', '.']);
    let one_case = v.bytes().all(|c| !c.is_ascii_lowercase()) || v.bytes().all(|c| !c.is_ascii_uppercase());
    let word = v.replace(['_', '-'], "");
    one_case
        && (v.eq_ignore_ascii_case(key.trim_start_matches('-'))
            || TYPES.iter().any(|t| word.eq_ignore_ascii_case(t))
            || (v.bytes().all(|c| c.is_ascii_uppercase() || c == b'_') && is_secret_name(v)))
}

/// Values that cannot be a secret, or are already hidden.
pub(crate) fn plausible_value(v: &str) -> bool {
    const NOT_SECRETS: &[&str] = &[
        "true", "false", "yes", "no", "on", "off", "null", "none", "nil", "~", "undefined", "required",
        "optional", "redacted", "[redacted]", "<redacted>", "(redacted)", "hidden", "<hidden>", "(none)",
        "<none>", "not set", "<not set>", "(not set)", "[hidden]", "[filtered]", "filtered", "<secret>",
    ];
    let v = v.trim();
    if v.is_empty() || NOT_SECRETS.iter().any(|n| v.eq_ignore_ascii_case(n)) {
        return false;
    }
    if v.starts_with('$') || v.starts_with("{{") || v.starts_with("%(") || v.starts_with("${") {
        return false;
    }
    if v.starts_with('<') && v.ends_with('>') {
        return false;
    }
    // Already masked: "****", "xxxxxx", "••••".
    !v.chars().all(|c| matches!(c, '*' | '•' | '#' | 'x' | 'X' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("password", true)]
    #[case("PASSWORD", true)]
    #[case("db_password", true)]
    #[case("PGPASSWORD", true)]
    #[case("passwd", true)]
    #[case("DB_PASS", true)]
    #[case("MYSQL_PWD", true)]
    #[case("Pwd", true)]
    #[case("PWD", false)]
    #[case("OLDPWD", false)]
    #[case("API_KEY", true)]
    #[case("x-api-key", true)]
    #[case("apikey", true)]
    #[case("GITHUB_TOKEN", true)]
    #[case("client_secret", true)]
    #[case("private_key", true)]
    #[case("aws_secret_access_key", true)]
    #[case("SecretAccessKey", true)]
    #[case("basic_auth", true)]
    #[case("auth", true)]
    #[case("Authorization", true)]
    #[case("credentials", true)]
    #[case("secret_key_base", true)]
    #[case("password_expiry", false)]
    #[case("token_type", false)]
    #[case("secret_name", false)]
    #[case("secretName", false)]
    #[case("token_url", false)]
    #[case("aws_access_key_id", false)]
    #[case("password-stdin", false)]
    #[case("password_min_length", false)]
    #[case("tokenizer", false)]
    #[case("passport", false)]
    #[case("bypass", false)]
    #[case("author", false)]
    #[case("authentication_method", false)]
    #[case("key", false)]
    #[case("keyboard", false)]
    #[case("monkey", false)]
    fn secret_names(#[case] key: &str, #[case] secret: bool) {
        assert_eq!(is_secret_name(key), secret, "{key}");
    }
}
