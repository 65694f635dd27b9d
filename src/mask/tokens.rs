//! Tokens recognised by a fixed prefix: cloud and SaaS keys, JWTs, and
//! passwords inside URLs.
//!
//! The prefilter has already found the prefix (case-insensitively); each
//! recogniser here checks the exact case, the boundary before the token (a
//! prefix in the middle of a word is not a token), the body's character class
//! and length, and the boundary after it. A JWT must also have a header that
//! decodes to a JSON object with an `"alg"`, which is what separates it from
//! any other dotted base64.

use base64::Engine as _;

use super::config::DetectorId;
use super::scan::{at, before, is_word, run_end, run_start, Enabled, Hit, Source, Trigger};

/// Longest body accepted for open-ended tokens: GitHub documents that its
/// tokens may grow to 255 characters; nothing longer is a token.
const MAX_TOKEN: usize = 255;

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

pub(crate) fn recognise(d: Enabled, trigger: Trigger, line: &str, start: usize, hits: &mut Vec<Hit>) {
    let b = line.as_bytes();
    let found = match trigger {
        Trigger::AwsKeyId => aws_key_id(b, start).map(|r| (r, DetectorId::AwsAccessKeyId)),
        Trigger::GithubClassic => github_classic(b, start).map(|r| (r, DetectorId::GithubToken)),
        Trigger::GithubPat => github_pat(b, start).map(|r| (r, DetectorId::GithubToken)),
        Trigger::Slack => slack(b, start).map(|r| (r, DetectorId::SlackToken)),
        Trigger::SlackHook => slack_hook(b, start).map(|r| (r, DetectorId::SlackToken)),
        Trigger::Stripe => stripe(b, start).map(|r| (r, DetectorId::StripeKey)),
        Trigger::Google => google(b, start).map(|r| (r, DetectorId::GoogleApiKey)),
        Trigger::Jwt => jwt(b, start).map(|r| (r, DetectorId::Jwt)),
        Trigger::Url => url_password(b, start).map(|r| (r, DetectorId::UrlPassword)),
        // Dispatched elsewhere (`detect.rs`).
        _ => None,
    };
    if let Some((range, id)) = found {
        if d.is_enabled(id) {
            hits.push(Hit { range, source: Source::Builtin(id) });
        }
    }
}

fn starts_with(b: &[u8], at: usize, prefix: &[u8]) -> bool {
    b.get(at..).is_some_and(|rest| rest.starts_with(prefix))
}

/// `AKIA`/`ASIA` and exactly 16 uppercase letters or digits.
pub(crate) fn aws_key_id(b: &[u8], s: usize) -> Option<std::ops::Range<usize>> {
    if !(starts_with(b, s, b"AKIA") || starts_with(b, s, b"ASIA")) || alnum(before(b, s)) {
        return None;
    }
    let end = run_end(b, s + 4, |c| c.is_ascii_uppercase() || c.is_ascii_digit());
    (end - s == 20 && !alnum(at(b, end))).then_some(s..end)
}

/// `ghp_` (and gho_, ghu_, ghs_, ghr_) and 36 or more letters and digits.
fn github_classic(b: &[u8], s: usize) -> Option<std::ops::Range<usize>> {
    if !is_lower_prefix(b, s, 4) || is_word(before(b, s)) {
        return None;
    }
    let end = run_end(b, s + 4, alnum);
    let len = end - s - 4;
    ((36..=MAX_TOKEN).contains(&len) && !is_word(at(b, end))).then_some(s..end)
}

/// `github_pat_` and 82 letters, digits and underscores (22, `_`, 59).
fn github_pat(b: &[u8], s: usize) -> Option<std::ops::Range<usize>> {
    if !starts_with(b, s, b"github_pat_") || is_word(before(b, s)) {
        return None;
    }
    let end = run_end(b, s + 11, is_word);
    ((82..=MAX_TOKEN).contains(&(end - s - 11))).then_some(s..end)
}

fn is_lower_prefix(b: &[u8], s: usize, n: usize) -> bool {
    b.get(s..s + n).is_some_and(|p| p.iter().all(|c| !c.is_ascii_uppercase()))
}

/// `xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-`, `xoxe-` (and `xoxo-`) and at
/// least 10 more of letters, digits and dashes, with at least one digit.
fn slack(b: &[u8], s: usize) -> Option<std::ops::Range<usize>> {
    if !starts_with(b, s, b"xox") || !b"bpaerso".contains(&at(b, s + 3)) || at(b, s + 4) != b'-' {
        return None;
    }
    if is_word(before(b, s)) {
        return None;
    }
    let end = run_end(b, s + 5, |c| alnum(c) || c == b'-');
    let body = b.get(s + 5..end)?;
    (body.len() >= 10 && body.len() <= MAX_TOKEN && body.iter().any(u8::is_ascii_digit)).then_some(s..end)
}

/// `hooks.slack.com/services/T…/B…/secret`: the path is the credential.
fn slack_hook(b: &[u8], s: usize) -> Option<std::ops::Range<usize>> {
    let from = s + "hooks.slack.com/services/".len();
    let end = run_end(b, from, |c| alnum(c) || c == b'/' || c == b'_' || c == b'-');
    let path = b.get(from..end)?;
    (path.len() >= 20 && path.iter().filter(|c| **c == b'/').count() >= 2).then_some(from..end)
}

/// `sk_live_`, `sk_test_`, `rk_live_`, `rk_test_` and 24 or more letters and
/// digits. Publishable keys (`pk_`) are public by design and not matched.
fn stripe(b: &[u8], s: usize) -> Option<std::ops::Range<usize>> {
    if !is_lower_prefix(b, s, 8) || is_word(before(b, s)) {
        return None;
    }
    let end = run_end(b, s + 8, alnum);
    ((24..=MAX_TOKEN).contains(&(end - s - 8)) && !is_word(at(b, end))).then_some(s..end)
}

/// `AIza` and exactly 35 of letters, digits, `_` and `-`.
fn google(b: &[u8], s: usize) -> Option<std::ops::Range<usize>> {
    if !starts_with(b, s, b"AIza") || base64url(before(b, s)) {
        return None;
    }
    let end = run_end(b, s + 4, base64url);
    (end - s == 39).then_some(s..end)
}

/// Header, payload and signature in base64url, joined by dots (up to five
/// segments, for JWE); the header must decode to a JSON object with "alg".
fn jwt(b: &[u8], s: usize) -> Option<std::ops::Range<usize>> {
    if !starts_with(b, s, b"eyJ") || base64url(before(b, s)) || before(b, s) == b'.' {
        return None;
    }
    let header_end = run_end(b, s, base64url);
    if at(b, header_end) != b'.' || header_end - s > 2048 {
        return None;
    }
    let mut end = header_end;
    let mut segments = 1;
    while at(b, end) == b'.' && segments < 5 {
        let next = run_end(b, end + 1, base64url);
        if segments == 1 && next - end - 1 < 2 {
            return None; // the payload is never empty
        }
        end = next;
        segments += 1;
    }
    if segments < 3 {
        return None;
    }
    let header = b.get(s..header_end)?;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&decoded).ok()?;
    value.get("alg")?.as_str()?;
    Some(s..end)
}

/// `scheme://user:PASSWORD@host`: just the password. The authority ends at
/// the first `/`, `?`, `#`, whitespace or quote; within it the last `@`
/// ends the user info, so an unescaped `@` in the password is still covered.
fn url_password(b: &[u8], s: usize) -> Option<std::ops::Range<usize>> {
    let scheme_start = run_start(b, s, |c| alnum(c) || c == b'+' || c == b'.' || c == b'-');
    if s - scheme_start < 2 || !at(b, scheme_start).is_ascii_alphabetic() {
        return None;
    }
    let from = s + 3;
    let end = run_end(b, from, |c| {
        !(c.is_ascii_whitespace() || b"/?#\"'<>`".contains(&c) || c == 0)
    });
    let authority = b.get(from..end)?;
    let at_sign = from + authority.iter().rposition(|c| *c == b'@')?;
    let colon = from + b.get(from..at_sign)?.iter().position(|c| *c == b':')?;
    let password = b.get(colon + 1..at_sign)?;
    if password.is_empty() || password.iter().all(|c| *c == b'*' || *c == b'x' || *c == b'X') || password.starts_with(b"$")
    {
        return None;
    }
    Some(colon + 1..at_sign)
}

/// The 40-character secret access key printed next to its key id without a
/// name (`aws ... --output text`, CSV credential exports). Called only when
/// an AWS key id is on the same line; the value needs both cases, so a git
/// SHA (hex) never qualifies.
pub(crate) fn aws_secret_beside_key_id(line: &str, hits: &mut Vec<Hit>) {
    let b = line.as_bytes();
    let secret_char = |c: u8| alnum(c) || c == b'/' || c == b'+';
    let mut i = 0;
    while i < b.len() {
        if !secret_char(at(b, i)) {
            i += 1;
            continue;
        }
        let end = run_end(b, i, secret_char);
        if end - i == 40 && is_aws_secret(b.get(i..end).unwrap_or_default()) {
            hits.push(Hit { range: i..end, source: Source::Builtin(DetectorId::AwsSecretAccessKey) });
        }
        i = end;
    }
}

/// Looks like an AWS secret access key: 40 base64 characters with both
/// cases, so hex digests never qualify.
pub(crate) fn is_aws_secret(v: &[u8]) -> bool {
    v.len() == 40
        && v.iter().all(|c| alnum(*c) || *c == b'/' || *c == b'+')
        && v.iter().any(u8::is_ascii_lowercase)
        && v.iter().any(u8::is_ascii_uppercase)
}
