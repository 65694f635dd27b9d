//! The hold-back window: could the end of a line still being written grow
//! into something a detector would mask?
//!
//! A program may print a secret in pieces (`ghp_` now, the rest a few
//! milliseconds later). Shown as it arrives, the first piece would be on the
//! user's screen, and in the recording, before the whole matches. So the
//! renderer holds back the tail this module points at for `hold_ms`, and
//! shows it if it has not grown into a secret by then.
//!
//! Every check here looks only at the end of the line and is anchored on
//! something specific: a complete token prefix (`ghp_`, `AKIA`, `sk_live_`,
//! `eyJ`), a digit run of six or more that could still be a card in a known
//! issuer range, an SSN-shaped `NNN-NN-`, an IBAN country and check digits,
//! a secret-named key with a partial value, a connection string's
//! `AccountKey=` or a SAS `sig=` with a partial value, a Telegram bot id and
//! `:AA`, a word shaped like the start of a key on a line that names its
//! vendor, a partial `-----BEGIN` marker, or `scheme://user:partial` with no
//! `@` yet. Ordinary words, prompts and
//! command lines match none of these. A prefix alone (`gh`, `AKI`) is not
//! held: it is not secret, and holding every `gh` would make typing `gh pr`
//! stutter.

use memchr::memmem;

use super::assign::parse_all;
use super::checksum::{card_could_start, iban_length};
use super::config::DetectorId;
use super::scan::{at, before, contains_ci, is_word, run_end, run_start, Enabled, Prefilter, Trigger};
use super::{connection, formats, labelled, options};

/// How far back from the end the token checks look: longer than any
/// fixed-length token, short enough to stay cheap on long lines.
const TAIL: usize = 320;

pub(crate) fn pending_prefix(d: Enabled, prefilter: &Prefilter, line: &str) -> Option<usize> {
    let b = line.as_bytes();
    // One prefilter pass serves the assignment and option checks.
    let triggers: Vec<(std::ops::Range<usize>, Trigger)> = prefilter.find_iter(line).collect();
    [
        token_tail(d, b),
        digits_tail(d, b),
        iban_tail(d, b),
        assignment_tail(d, &triggers, line),
        option_tail(d, &triggers, line),
        connection_tail(d, &triggers, line),
        vendor_tail(d, &triggers, line),
        telegram_tail(d, b),
        pem_tail(d, b),
        url_tail(d, b),
        aws_secret_beside_key_tail(d, b),
    ]
        .into_iter()
        .flatten()
        .min()
}

/// `aws … --output text` prints a key id, then the 40-character secret key
/// with no name: on a line with an `AKIA`/`ASIA` id, a trailing run of
/// secret-key characters shorter than 40 may still become one.
fn aws_secret_beside_key_tail(d: Enabled, b: &[u8]) -> Option<usize> {
    if !d.is_enabled(DetectorId::AwsSecretAccessKey) {
        return None;
    }
    if memmem::find(b, b"AKIA").is_none() && memmem::find(b, b"ASIA").is_none() {
        return None;
    }
    let key_char = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'+');
    let run = b.iter().rev().take_while(|c| key_char(c)).count();
    let start = b.len() - run;
    let after_space = start > 0 && b.get(start - 1).is_some_and(|c| c.is_ascii_whitespace());
    // The id itself is 20 characters of AKIA/ASIA; a run that starts with
    // one is the id, not the secret.
    let is_id = b.get(start..start + 4).is_some_and(|p| p == b"AKIA" || p == b"ASIA");
    (after_space && (4..40).contains(&run) && !is_id).then_some(start)
}

/// A known token prefix with a body that is still too short to match.
#[derive(Clone, Copy)]
struct Prefix {
    text: &'static [u8],
    id: DetectorId,
    body: fn(u8) -> bool,
    /// Body length at which the token matches; below it, it may still grow.
    min: usize,
    /// Hold only the body (the prefix is a public host name).
    body_only: bool,
}

fn upper_digit(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}
fn hex_lower(c: u8) -> bool {
    c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
}
fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn slack_body(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}
fn base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}
fn jwt_body(c: u8) -> bool {
    base64url(c) || c == b'.'
}
fn hook_body(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'/' || c == b'_' || c == b'-'
}

const PREFIXES: &[Prefix] = &[
    Prefix { text: b"AKIA", id: DetectorId::AwsAccessKeyId, body: upper_digit, min: 16, body_only: false },
    Prefix { text: b"ASIA", id: DetectorId::AwsAccessKeyId, body: upper_digit, min: 16, body_only: false },
    Prefix { text: b"ghp_", id: DetectorId::GithubToken, body: alnum, min: 36, body_only: false },
    Prefix { text: b"gho_", id: DetectorId::GithubToken, body: alnum, min: 36, body_only: false },
    Prefix { text: b"ghu_", id: DetectorId::GithubToken, body: alnum, min: 36, body_only: false },
    Prefix { text: b"ghs_", id: DetectorId::GithubToken, body: alnum, min: 36, body_only: false },
    Prefix { text: b"ghr_", id: DetectorId::GithubToken, body: alnum, min: 36, body_only: false },
    Prefix { text: b"github_pat_", id: DetectorId::GithubToken, body: is_word, min: 82, body_only: false },
    Prefix { text: b"xoxb-", id: DetectorId::SlackToken, body: slack_body, min: 10, body_only: false },
    Prefix { text: b"xoxp-", id: DetectorId::SlackToken, body: slack_body, min: 10, body_only: false },
    Prefix { text: b"xoxa-", id: DetectorId::SlackToken, body: slack_body, min: 10, body_only: false },
    Prefix { text: b"xoxr-", id: DetectorId::SlackToken, body: slack_body, min: 10, body_only: false },
    Prefix { text: b"xoxs-", id: DetectorId::SlackToken, body: slack_body, min: 10, body_only: false },
    Prefix { text: b"xoxe-", id: DetectorId::SlackToken, body: slack_body, min: 10, body_only: false },
    Prefix { text: b"xoxo-", id: DetectorId::SlackToken, body: slack_body, min: 10, body_only: false },
    Prefix { text: b"sk_live_", id: DetectorId::StripeKey, body: alnum, min: 24, body_only: false },
    Prefix { text: b"sk_test_", id: DetectorId::StripeKey, body: alnum, min: 24, body_only: false },
    Prefix { text: b"rk_live_", id: DetectorId::StripeKey, body: alnum, min: 24, body_only: false },
    Prefix { text: b"rk_test_", id: DetectorId::StripeKey, body: alnum, min: 24, body_only: false },
    Prefix { text: b"key-", id: DetectorId::MessagingApiKey, body: hex_lower, min: 32, body_only: false },
    Prefix { text: b"AIza", id: DetectorId::GoogleApiKey, body: base64url, min: 35, body_only: false },
    // A JWT is never "long enough" by length alone: hold it until the scan
    // recognises all three segments.
    Prefix { text: b"eyJ", id: DetectorId::Jwt, body: jwt_body, min: usize::MAX, body_only: false },
    Prefix { text: b"hooks.slack.com/services/", id: DetectorId::SlackToken, body: hook_body, min: 20, body_only: true },
];

fn token_tail(d: Enabled, b: &[u8]) -> Option<usize> {
    // Every prefix and body is made of these, so the token is in the last
    // run of them.
    let token_char = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/' | b'@');
    let from = run_start(b, b.len(), token_char).max(b.len().saturating_sub(TAIL));
    let tail = b.get(from..)?;
    if tail.len() < 3 {
        return None;
    }
    // One pass over the tail, trying at each byte only the prefixes that
    // start with it. Every occurrence whose body runs to the end counts and
    // the earliest start wins: for a JWT that is the header, not the
    // payload's own "eyJ".
    let by_first = prefixes_by_first_byte();
    let mut best: Option<usize> = None;
    for (pos, c) in tail.iter().enumerate() {
        for p in by_first.get(usize::from(*c)).map(Vec::as_slice).unwrap_or_default() {
            if !d.is_enabled(p.id) {
                continue;
            }
            let s = from + pos;
            let body_start = s + p.text.len();
            let ok = tail.get(pos..).is_some_and(|t| t.starts_with(p.text))
                && run_end(b, body_start, p.body) == b.len()
                && (p.body_only || !is_word(before(b, s)))
                && b.len() - body_start < p.min;
            if ok {
                let at = if p.body_only { body_start } else { s };
                best = Some(best.map_or(at, |x| x.min(at)));
            }
        }
    }
    best
}

/// [`PREFIXES`] and the format table's rows, by the first byte of their
/// prefix (built once).
fn prefixes_by_first_byte() -> &'static [Vec<Prefix>] {
    static TABLE: std::sync::OnceLock<Vec<Vec<Prefix>>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: Vec<Vec<Prefix>> = vec![Vec::new(); 256];
        let formats = formats::FORMATS.iter().map(|f| Prefix { text: f.prefix.as_bytes(), id: f.id, body: f.body, min: f.min, body_only: f.body_only });
        for p in PREFIXES.iter().copied().chain(formats) {
            if let Some(slot) = p.text.first().and_then(|c| table.get_mut(usize::from(*c))) {
                slot.push(p);
            }
        }
        table
    })
}

/// A trailing digit sequence that could still become a card number or SSN.
fn digits_tail(d: Enabled, b: &[u8]) -> Option<usize> {
    let card = d.is_enabled(DetectorId::Card);
    let ssn = d.is_enabled(DetectorId::UsSsn);
    if !(card || ssn) || !matches!(b.last(), Some(c) if c.is_ascii_digit() || *c == b' ' || *c == b'-') {
        return None;
    }
    let seq_start = run_start(b, b.len(), |c| c.is_ascii_digit() || c == b' ' || c == b'-');
    let start = run_end(b, seq_start, |c| c == b' ' || c == b'-');
    if start >= b.len() {
        return None;
    }
    let prev = before(b, start);
    // As in the card detector, a comma does not join numbers (CSV fields
    // are checked); `.`, `:` and `/` do.
    if is_word(prev) || (matches!(prev, b'.' | b':' | b'/') && before(b, start - 1).is_ascii_digit()) {
        return None;
    }
    // Groups and the separator between them (one kind, single).
    let mut lens: Vec<usize> = Vec::new();
    let mut sep = None;
    let mut digits = String::new();
    let mut i = start;
    while i < b.len() {
        let end = run_end(b, i, |c| c.is_ascii_digit());
        lens.push(end - i);
        digits.push_str(std::str::from_utf8(b.get(i..end)?).ok()?);
        if end == b.len() {
            break;
        }
        let s = at(b, end);
        if sep.is_some_and(|x| x != s) || at(b, end + 1) == b' ' || at(b, end + 1) == b'-' {
            return None;
        }
        sep = Some(s);
        i = end + 1;
        if lens.len() > 6 {
            return None;
        }
    }
    let card_shape = match lens.as_slice() {
        [_] => true,
        [4, rest @ ..] => {
            let (last, middle) = rest.split_last().unwrap_or((&0, &[]));
            (middle.iter().all(|l| *l == 4) && *last <= 4) || (rest.len() <= 2 && matches!(rest, [6] | [6, 0..=5] | [0..=6]))
        }
        _ => false,
    };
    if card && card_shape && digits.len() >= 6 && digits.len() < 19 && card_could_start(&digits) {
        return Some(start);
    }
    let dashed = sep == Some(b'-')
        && match lens.as_slice() {
            [3, 2] => at(b, b.len() - 1) == b'-',
            [3, 2, 1..=3] => true,
            _ => false,
        };
    // As in the SSN detector, spaces or nine bare digits only on a line
    // that names it.
    let named = || contains_ci(b, b"ssn") || contains_ci(b, b"social security");
    let spaced_or_bare = matches!((sep, lens.as_slice()), (None, [3..=8]) | (Some(b' '), [3] | [3, 2] | [3, 2, 1..=3]));
    let ssn_shape = dashed || (spaced_or_bare && named());
    let area_ok = digits.get(..3).is_some_and(|a| a != "000" && a != "666" && !a.starts_with('9'));
    (ssn && ssn_shape && area_ok && digits.get(3..5) != Some("00")).then_some(start)
}

/// `DE89 3704 00…`: a known country, check digits, and fewer characters
/// than that country's IBAN has.
fn iban_tail(d: Enabled, b: &[u8]) -> Option<usize> {
    if !d.is_enabled(DetectorId::Iban) {
        return None;
    }
    let start = run_start(b, b.len(), |c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' ');
    // The IBAN starts at the first uppercase pair + two digits in the run.
    let mut s = start;
    while s + 4 <= b.len() {
        let head = b.get(s..s + 4)?;
        let starts = head.first().is_some_and(u8::is_ascii_uppercase)
            && head.get(1).is_some_and(u8::is_ascii_uppercase)
            && head.get(2).is_some_and(u8::is_ascii_digit)
            && head.get(3).is_some_and(u8::is_ascii_digit)
            && !before(b, s).is_ascii_alphanumeric();
        if starts {
            let len = iban_length(head.get(..2)?)?;
            let rest = b.get(s..)?;
            let compact = rest.iter().filter(|c| **c != b' ').count();
            let grouped = rest.split(|c| *c == b' ').all(|g| g.len() <= 4) || !rest.contains(&b' ');
            let spaced_right = memmem::find(rest, b"  ").is_none();
            return (compact < len && grouped && spaced_right).then_some(s);
        }
        s += 1;
    }
    None
}

/// `password=hun`, `"token": "abc`, `api_key: x`: a secret-named key whose
/// value reaches the end of the line unclosed.
fn assignment_tail(d: Enabled, triggers: &[(std::ops::Range<usize>, Trigger)], line: &str) -> Option<usize> {
    if !(d.is_enabled(DetectorId::Assignment) || d.is_enabled(DetectorId::AwsSecretAccessKey)) {
        return None;
    }
    let hits = Prefilter::keywords(triggers);
    if hits.is_empty() {
        return None;
    }
    parse_all(line, &hits)
        .into_iter()
        .rev()
        .find(|a| a.open_ended && !a.value.is_empty() && a.value.end == line.trim_end().len())
        .map(|a| a.value.start)
}

/// `mysql -pS3c`, `redis-cli -a S3c`: a password option whose value
/// reaches the end of the line.
fn option_tail(d: Enabled, triggers: &[(std::ops::Range<usize>, Trigger)], line: &str) -> Option<usize> {
    if !d.is_enabled(DetectorId::CliPassword) {
        return None;
    }
    triggers
        .iter()
        .filter_map(|&(ref range, t)| match t {
            Trigger::Tool(i) => Some(options::values(usize::from(i), line, range.start)),
            _ => None,
        })
        .flatten()
        .find(|(_, open)| *open)
        .map(|(v, _)| v.start)
}

/// `AccountKey=RmFr`, `…&sig=abc`: a connection-string key or signature
/// whose value reaches the end of the line.
fn connection_tail(d: Enabled, triggers: &[(std::ops::Range<usize>, Trigger)], line: &str) -> Option<usize> {
    if !d.is_enabled(DetectorId::ConnectionString) {
        return None;
    }
    triggers
        .iter()
        .filter_map(|&(ref range, t)| match t {
            Trigger::Conn(kind) => connection::pending(kind, line, range.clone()),
            _ => None,
        })
        .min()
}

/// `123456789:AAaB3d`: a Telegram bot id, `:AA` and the start of the
/// secret, which is held (the bot id is the bot's public user id).
fn telegram_tail(d: Enabled, b: &[u8]) -> Option<usize> {
    if !d.is_enabled(DetectorId::ChatToken) {
        return None;
    }
    let body = run_start(b, b.len(), base64url);
    let colon = body.checked_sub(1)?;
    let id_start = run_start(b, colon, |c| c.is_ascii_digit());
    let ok = at(b, colon) == b':'
        && b.get(body..body + 2) == Some(b"AA")
        && (8..=10).contains(&(colon - id_start))
        && !is_word(before(b, id_start))
        && b.len() - body < 35;
    ok.then_some(body)
}

/// `twilio … SK01234`, `cohere key: q8Zr`: on a line that names a vendor
/// whose keys have no prefix, a trailing word shaped like the start of
/// one of its keys.
fn vendor_tail(d: Enabled, triggers: &[(std::ops::Range<usize>, Trigger)], line: &str) -> Option<usize> {
    triggers
        .iter()
        .filter_map(|&(_, t)| match t {
            Trigger::Vendor(v) => labelled::pending(d, v, line),
            _ => None,
        })
        .min()
}

/// A `-----BEGIN` marker still being written (it may name a private key).
fn pem_tail(d: Enabled, b: &[u8]) -> Option<usize> {
    if !d.is_enabled(DetectorId::PemPrivateKey) {
        return None;
    }
    let from = b.len().saturating_sub(80);
    let pos = from + memmem::rfind(b.get(from..)?, b"-----B")?;
    let rest = b.get(pos..)?;
    let marker = b"-----BEGIN ";
    let n = rest.len().min(marker.len());
    if rest.get(..n) != marker.get(..n) {
        return None;
    }
    let label = rest.get(n..).unwrap_or_default();
    let dashes = label.iter().rev().take_while(|c| **c == b'-').count();
    let ok = label.iter().take(label.len() - dashes).all(|c| c.is_ascii_uppercase() || *c == b' ') && dashes < 5;
    ok.then_some(pos)
}

/// `scheme://user:partial` with no `@` yet. A short all-digit partial is a
/// port (`http://localhost:8080`), not held.
fn url_tail(d: Enabled, b: &[u8]) -> Option<usize> {
    if !d.is_enabled(DetectorId::UrlPassword) {
        return None;
    }
    let from = b.len().saturating_sub(TAIL);
    let pos = from + memmem::rfind(b.get(from..)?, b"://")?;
    let authority = b.get(pos + 3..)?;
    if authority.iter().any(|c| c.is_ascii_whitespace() || b"/?#@\"'<>`".contains(c)) {
        return None;
    }
    let colon = authority.iter().position(|c| *c == b':')?;
    let partial = authority.get(colon + 1..)?;
    let port_like = partial.len() <= 5 && partial.iter().all(u8::is_ascii_digit);
    (!partial.is_empty() && !port_like).then_some(pos + 3 + colon + 1)
}
