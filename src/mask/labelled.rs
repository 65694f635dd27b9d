//! Vendor keys with no prefix of their own, or one too common to anchor on:
//! they are told from any other random string by context (a vendor's name
//! on the line, a label glued to them) and by how random they look.
//!
//! - Mailgun `key-` + 32 hex digits (the prefilter's `key` word);
//! - Mailchimp 32 hex digits + `-us` + a data-centre number;
//! - Telegram bot tokens, `123456789:AA` + 33 characters;
//! - on a line that names the vendor: Twilio auth tokens (32 hex) and API
//!   key SIDs (`SK` + 32 hex), Cohere keys (40 mixed letters and digits),
//!   Travis CI tokens (22), Postmark server tokens (a UUID), Mailgun's newer
//!   `hex32-hex8-hex8` keys, CircleCI's older personal and project tokens
//!   (40 hex, the shape of a git commit id, so only with `circle` named).
//!
//! Kept apart from the prefix table (`formats.rs`) because none of these is
//! specific enough to mask without its context: a bare 32-hex string is an
//! MD5, a bare UUID is a request id, and both must stay visible elsewhere.
//! Mixed-case shapes must also look random ([`random_enough`]), so a long
//! identifier in `CamelCase` on a line that mentions Cohere is not masked.

use std::ops::Range;

use super::config::DetectorId;
use super::scan::{at, before, is_word, run_end, run_start, Hit, Source};

/// A vendor named on the line, and the shape of its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vendor {
    Twilio,
    Cohere,
    Travis,
    Postmark,
    Mailgun,
    Circle,
}

/// Trigger words (ASCII case-insensitive) naming a vendor.
pub(crate) const VENDORS: &[(&str, Vendor)] = &[
    ("twilio", Vendor::Twilio),
    ("cohere", Vendor::Cohere),
    ("travis", Vendor::Travis),
    ("postmark", Vendor::Postmark),
    ("mailgun", Vendor::Mailgun),
    ("circle", Vendor::Circle),
];

fn hex_lower(c: u8) -> bool {
    c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
}

fn all(v: &[u8], f: fn(u8) -> bool) -> bool {
    v.iter().all(|c| f(*c))
}

fn push(hits: &mut Vec<Hit>, range: Range<usize>, id: DetectorId) {
    hits.push(Hit { range, source: Source::Builtin(id) });
}

/// Shannon entropy of `v` in bits per character.
fn entropy(v: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for c in v {
        if let Some(n) = counts.get_mut(usize::from(*c)) {
            *n += 1;
        }
    }
    let len = v.len() as f64;
    counts.iter().filter(|n| **n > 0).map(|n| f64::from(*n) / len).map(|p| -p * p.log2()).sum()
}

/// Letters of both cases, digits among them (not only a version number at
/// the end), and close to as random as a string of its length can be: a
/// generated key of 20 or more characters from 62 has an entropy near
/// log2(len) (99% of them above 0.8 of it). Entropy alone does not tell
/// `AbstractFactoryBean2` from a key; its digits do.
fn random_enough(v: &[u8]) -> bool {
    let trailing_digits = v.iter().rev().take_while(|c| c.is_ascii_digit()).count();
    let inner_digits = v.iter().take(v.len() - trailing_digits).filter(|c| c.is_ascii_digit()).count();
    v.iter().any(u8::is_ascii_uppercase)
        && v.iter().any(u8::is_ascii_lowercase)
        && inner_digits >= 2
        && entropy(v) >= (v.len() as f64).log2() * 0.8
}

/// Mailgun `key-` + 32 lowercase hex, from a `key` keyword hit.
pub(crate) fn after_keyword(line: &str, keyword: Range<usize>, hits: &mut Vec<Hit>) {
    let b = line.as_bytes();
    if at(b, keyword.end) != b'-' || b.get(keyword.clone()) != Some(b"key") || is_word(before(b, keyword.start)) {
        return;
    }
    let from = keyword.end + 1;
    let end = run_end(b, from, hex_lower);
    if end - from == 32 && !is_word(at(b, end)) {
        push(hits, keyword.start..end, DetectorId::MessagingApiKey);
    }
}

/// Mailchimp: 32 lowercase hex, `-us`, one or two digits, from the `-us` hit.
pub(crate) fn mailchimp(line: &str, dash: usize, hits: &mut Vec<Hit>) {
    let b = line.as_bytes();
    let start = run_start(b, dash, hex_lower);
    let dc_end = run_end(b, dash + 3, |c| c.is_ascii_digit());
    let ok = dash - start == 32
        && !is_word(before(b, start))
        && b.get(dash..dash + 3) == Some(b"-us")
        && (1..=2).contains(&(dc_end - dash - 3))
        && !is_word(at(b, dc_end));
    if ok {
        push(hits, start..dc_end, DetectorId::MessagingApiKey);
    }
}

/// Telegram bot token `<bot id>:AA<33>`, from the `:AA` hit.
pub(crate) fn telegram(line: &str, colon: usize, hits: &mut Vec<Hit>) {
    let b = line.as_bytes();
    let start = run_start(b, colon, |c| c.is_ascii_digit());
    let end = run_end(b, colon + 1, |c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    let ok = (8..=10).contains(&(colon - start))
        && !is_word(before(b, start))
        && b.get(colon + 1..colon + 3) == Some(b"AA")
        && end - colon - 1 == 35
        && !is_word(at(b, end));
    if ok {
        push(hits, start..end, DetectorId::ChatToken);
    }
}

/// The keys of `vendor` anywhere on a line that names it.
pub(crate) fn on_vendor_line(vendor: Vendor, line: &str, hits: &mut Vec<Hit>) {
    let b = line.as_bytes();
    // CircleCI prints commit ids (`CIRCLE_SHA1`): its 40-hex tokens only on
    // a line that also says token.
    if vendor == Vendor::Circle && !b.windows(5).any(|w| w.eq_ignore_ascii_case(b"token")) {
        return;
    }
    let mut i = 0;
    while i < b.len() {
        let tok = |c: u8| c.is_ascii_alphanumeric() || c == b'-';
        if !tok(at(b, i)) {
            i += 1;
            continue;
        }
        let end = run_end(b, i, tok);
        let word = b.get(i..end).unwrap_or_default();
        if !is_word(before(b, i)) && !is_word(at(b, end)) {
            if let Some(id) = vendor_key(vendor, word) {
                push(hits, i..end, id);
            }
        }
        i = end;
    }
}

/// Where a key of `vendor` may be being written at the end of `line`: the
/// trailing word is shorter than the vendor's keys and shaped like their
/// start. Hex shapes need a digit and mixed shapes a digit or both cases,
/// so a plain word typed on the line (`cohere models list`) is not held.
pub(crate) fn pending(d: super::scan::Enabled, vendor: Vendor, line: &str) -> Option<usize> {
    let id = vendor_id(vendor);
    if !d.is_enabled(id) {
        return None;
    }
    let b = line.as_bytes();
    let start = run_start(b, b.len(), |c| c.is_ascii_alphanumeric() || c == b'-');
    let w = b.get(start..)?;
    if w.is_empty() || is_word(before(b, start)) {
        return None;
    }
    let digit = w.iter().any(u8::is_ascii_digit);
    let hex = |w: &[u8], full: usize| w.len() < full && all(w, hex_lower) && digit;
    let mixed = |full: usize| {
        w.len() < full
            && all(w, |c| c.is_ascii_alphanumeric())
            && (digit || (w.iter().any(u8::is_ascii_uppercase) && w.iter().any(u8::is_ascii_lowercase)))
    };
    let growing = match vendor {
        Vendor::Twilio => hex(w, 32) || (w.starts_with(b"SK") && w.len() < 34 && all(w.get(2..)?, hex_lower)),
        Vendor::Circle => hex(w, 40),
        Vendor::Cohere => mixed(40),
        Vendor::Travis => mixed(22),
        Vendor::Postmark => {
            w.len() < 36
                && digit
                && w.iter().enumerate().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
        }
        Vendor::Mailgun => {
            w.len() < 50
                && digit
                && w.iter().enumerate().all(|(i, c)| if matches!(i, 32 | 41) { *c == b'-' } else { hex_lower(*c) })
        }
    };
    growing.then_some(start)
}

fn vendor_id(vendor: Vendor) -> DetectorId {
    match vendor {
        Vendor::Cohere => DetectorId::AiApiKey,
        Vendor::Travis | Vendor::Circle => DetectorId::CiToken,
        _ => DetectorId::MessagingApiKey,
    }
}

fn vendor_key(vendor: Vendor, w: &[u8]) -> Option<DetectorId> {
    let uuid = |w: &[u8]| {
        w.len() == 36
            && w.iter().enumerate().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
    };
    let hit = match vendor {
        // The account SID (`AC…`) is an identifier, printed in every URL.
        Vendor::Twilio => {
            (w.len() == 32 && all(w, hex_lower)) || (w.len() == 34 && w.starts_with(b"SK") && all(w.get(2..)?, hex_lower))
        }
        Vendor::Cohere => w.len() == 40 && random_enough(w),
        Vendor::Travis => w.len() == 22 && random_enough(w),
        Vendor::Postmark => uuid(w),
        // A commit id is the same shape (see `on_vendor_line`).
        Vendor::Circle => w.len() == 40 && all(w, hex_lower),
        Vendor::Mailgun => {
            w.len() == 50 && w.split(|c| *c == b'-').map(<[u8]>::len).eq([32, 8, 8]) && all(w, |c| hex_lower(c) || c == b'-')
        }
    };
    hit.then_some(vendor_id(vendor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_keys_pass_and_identifiers_do_not() {
        assert!(random_enough(b"q8Zr2LmW0xTn5VbK7cJd"));
        assert!(!random_enough(b"AbstractFactoryBean2"));
        assert!(!random_enough(b"ServiceAccountTokenV1Handler"));
        assert!(!random_enough(b"aaaaaaaaaaAAAAAAAAAA11"));
        assert!(!random_enough(b"abcdefghijklmnopqrstuv"));
    }
}
