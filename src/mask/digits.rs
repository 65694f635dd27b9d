//! Numbers that are secrets: payment cards, US SSNs and IBANs.
//!
//! All three are found by walking digit runs, so a line pays for this only
//! if it has enough digits (nine for an SSN, thirteen for a card) or an
//! uppercase pair followed by two digits (an IBAN's country and check).
//!
//! A candidate is a maximal sequence of digit groups joined by one kind of
//! separator (a single space or a single dash). It must stand alone: not
//! touching letters or `_`, not after a `.` (versions, decimals), and not
//! joined to more digits by `:`, `/`, `-` or `.` (IPs, times, dates,
//! ratios). Commas do not join, so CSV fields are checked.
//! Then:
//!
//! - **card**: 13-19 digits, bare or in the groupings cards are printed in
//!   (4-4-4-4…, 4-6-5, 4-6-4), in a known issuer range for that length, and
//!   Luhn-valid. A space-separated sequence that is not a card as a whole may
//!   still hold one as a single bare group.
//! - **us_ssn**: `NNN-NN-NNNN` with a valid area, group and serial. The same
//!   digits with spaces, or nine bare digits, only when the line says `ssn`
//!   or `social security`: otherwise every nine-digit id would be masked.
//! - **iban**: a known country code, two check digits, the country's exact
//!   length, compact or in groups of four, and mod 97.

use std::ops::Range;

use super::checksum::{iban_length, is_card_number, is_iban, ssn_valid};
use super::config::DetectorId;
use super::scan::{at, before, contains_ci, is_word, run_end, Enabled, Hit, Source};

/// Most groups a card or SSN is printed in; longer sequences are tables of
/// numbers, not one number.
const MAX_GROUPS: usize = 24;

pub(crate) fn recognise(d: Enabled, line: &str, hits: &mut Vec<Hit>) {
    let b = line.as_bytes();
    let card = d.is_enabled(DetectorId::Card);
    let ssn = d.is_enabled(DetectorId::UsSsn);
    let iban = d.is_enabled(DetectorId::Iban);
    // One pass for the prefilters: how many digits, and where the first
    // uppercase-pair-then-digit (an IBAN's "DE8") is.
    let mut digit_count = 0;
    let mut iban_from = None;
    let mut uppers = 0;
    let mut spaced_digits = false;
    let mut prev2 = [0u8; 2];
    for (i, c) in b.iter().enumerate() {
        if c.is_ascii_digit() {
            digit_count += 1;
            let [before_space, space] = prev2;
            spaced_digits |= space == b' ' && before_space.is_ascii_digit();
            if uppers >= 2 && iban_from.is_none() {
                iban_from = Some(i - 2);
            }
            uppers = 0;
        } else if c.is_ascii_uppercase() {
            uppers += 1;
        } else {
            uppers = 0;
        }
        prev2 = [prev2[1], *c];
    }
    if (card && digit_count >= 13) || (ssn && digit_count >= 9) {
        // Dash-joined and space-joined numbers are read in separate passes,
        // so "5 123-45-6789" is a 5 and an SSN, not one glued run.
        numbers(b, b'-', card, ssn, hits);
        if spaced_digits {
            numbers(b, b' ', card, ssn, hits);
        }
    }
    if let Some(from) = iban_from.filter(|_| iban && b.len() >= 15) {
        ibans(b, from, hits);
    }
}

fn numbers(b: &[u8], joiner: u8, card: bool, ssn: bool, hits: &mut Vec<Hit>) {
    let mut ssn_context: Option<bool> = None;
    let mut i = 0;
    while i < b.len() {
        if !at(b, i).is_ascii_digit() {
            i += 1;
            continue;
        }
        // Most numbers are short (times, counts, ports): measure the run
        // first, and only build its groups if it has enough digits.
        let start = i;
        let (mut total, mut j) = (0, i);
        loop {
            let end = run_end(b, j, |c| c.is_ascii_digit());
            total += end - j;
            if at(b, end) == joiner && at(b, end + 1).is_ascii_digit() {
                j = end + 1;
            } else {
                j = end;
                break;
            }
        }
        if total < 9 {
            i = j;
            continue;
        }
        // Groups of digits joined by the separator, kept on the stack.
        let mut groups: [Range<usize>; MAX_GROUPS] = std::array::from_fn(|_| 0..0);
        let mut count = 0;
        let mut too_many = false;
        let mut sep: Option<u8> = None;
        let mut j = i;
        loop {
            let end = run_end(b, j, |c| c.is_ascii_digit());
            match groups.get_mut(count) {
                Some(slot) => *slot = j..end,
                None => too_many = true,
            }
            count += 1;
            let s = at(b, end);
            if s == joiner && at(b, end + 1).is_ascii_digit() {
                sep = Some(s);
                j = end + 1;
            } else {
                j = end;
                break;
            }
        }
        i = j;
        let end = j;
        let glued_before = |pos: usize| {
            let prev = before(b, pos);
            is_word(prev)
                || prev == b'.'
                || (matches!(prev, b':' | b'/' | b'-' | b'+') && before(b, pos.saturating_sub(1)).is_ascii_digit())
        };
        let glued_after = |pos: usize| {
            let next = at(b, pos);
            let after = at(b, pos + 1);
            is_word(next)
                || (next == b'.' && after.is_ascii_alphanumeric())
                || (matches!(next, b':' | b'/' | b'-') && after.is_ascii_digit())
        };
        if too_many {
            continue;
        }
        let groups = groups.get(..count).unwrap_or_default();
        let glued = (glued_before(start), glued_after(end));
        if glued != (false, false) && sep != Some(b' ') {
            continue;
        }
        let mut lens = [0usize; MAX_GROUPS];
        for (l, g) in lens.iter_mut().zip(groups) {
            *l = g.end - g.start;
        }
        let lens = lens.get(..count).unwrap_or_default();
        let total: usize = lens.iter().sum();
        if total < 9 {
            continue;
        }
        let mut buf = [0u8; 19];
        let digits = if total <= buf.len() {
            let mut n = 0;
            for g in groups {
                for c in b.get(g.clone()).unwrap_or_default() {
                    if let Some(slot) = buf.get_mut(n) {
                        *slot = *c;
                    }
                    n += 1;
                }
            }
            std::str::from_utf8(buf.get(..total).unwrap_or_default()).unwrap_or_default()
        } else {
            ""
        };
        if glued == (false, false) && card && (13..=19).contains(&total) && card_grouping(lens) && is_card_number(digits) {
            hits.push(Hit { range: start..end, source: Source::Builtin(DetectorId::Card) });
            continue;
        }
        // Space-separated numbers side by side ("5555 5555 5555 4444 12 26"):
        // any run of consecutive groups may be the card, as long as it does
        // not take in a group glued to something outside.
        if card && sep == Some(b' ') {
            space_separated_cards(b, groups, glued, hits);
        }
        if glued != (false, false) {
            continue;
        }
        if ssn && total == 9 && (lens == [3, 2, 4] || lens == [9]) {
            let (Some(area), Some(group), Some(serial)) = (digits.get(0..3), digits.get(3..5), digits.get(5..9)) else {
                continue;
            };
            if !ssn_valid(area, group, serial) {
                continue;
            }
            let dashed = sep == Some(b'-');
            let has_context = *ssn_context.get_or_insert_with(|| {
                contains_ci(b, b"ssn") || contains_ci(b, b"social security")
            });
            if dashed || has_context {
                hits.push(Hit { range: start..end, source: Source::Builtin(DetectorId::UsSsn) });
            }
        }
    }
}

fn space_separated_cards(b: &[u8], groups: &[Range<usize>], glued: (bool, bool), hits: &mut Vec<Hit>) {
    let last = groups.len().saturating_sub(1);
    for first in 0..groups.len() {
        if first == 0 && glued.0 {
            continue;
        }
        let mut digits = String::new();
        let mut lens = Vec::new();
        for (k, g) in groups.iter().enumerate().skip(first) {
            if k == last && glued.1 {
                break;
            }
            digits.push_str(std::str::from_utf8(b.get(g.clone()).unwrap_or_default()).unwrap_or_default());
            lens.push(g.end - g.start);
            if digits.len() > 19 {
                break;
            }
            let whole = first == 0 && k == last;
            if !whole && (13..=19).contains(&digits.len()) && card_grouping(&lens) && is_card_number(&digits) {
                let start = groups.get(first).map_or(g.start, |f| f.start);
                hits.push(Hit { range: start..g.end, source: Source::Builtin(DetectorId::Card) });
            }
        }
    }
}

/// The ways card numbers are printed: one run, or a first group of four
/// followed by fours (the last possibly shorter), or 4-6-5 / 4-6-4 (Amex,
/// Diners).
fn card_grouping(lens: &[usize]) -> bool {
    match lens {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [4, middle @ .., last] => middle.iter().all(|l| *l == 4) && (1..=4).contains(last),
        _ => false,
    }
}

fn ibans(b: &[u8], from: usize, hits: &mut Vec<Hit>) {
    let mut i = from;
    while i + 4 <= b.len() {
        let starts = at(b, i).is_ascii_uppercase()
            && at(b, i + 1).is_ascii_uppercase()
            && at(b, i + 2).is_ascii_digit()
            && at(b, i + 3).is_ascii_digit()
            && !b.get(i.wrapping_sub(1)).is_some_and(|c| c.is_ascii_alphanumeric());
        if starts {
            if let Some(end) = iban_at(b, i) {
                hits.push(Hit { range: i..end, source: Source::Builtin(DetectorId::Iban) });
                i = end;
                continue;
            }
        }
        i += 1;
    }
}

/// The end of a valid IBAN starting at `s`, compact or grouped by fours.
pub(crate) fn iban_at(b: &[u8], s: usize) -> Option<usize> {
    let len = iban_length(b.get(s..s + 2)?)?;
    let upper_or_digit = |c: u8| c.is_ascii_uppercase() || c.is_ascii_digit();
    // Compact.
    let end = run_end(b, s, upper_or_digit);
    if end - s == len && !at(b, end).is_ascii_alphanumeric() {
        let text = std::str::from_utf8(b.get(s..end)?).ok()?;
        return is_iban(text).then_some(end);
    }
    // Grouped: CCdd then groups of four, the last of 1-4, single spaces.
    let mut compact = String::with_capacity(len);
    let mut j = s;
    loop {
        let end = run_end(b, j, upper_or_digit);
        let group = end - j;
        let remaining = len - compact.len();
        if group == 0 || group > 4 || (group < 4 && group != remaining) {
            return None;
        }
        compact.push_str(std::str::from_utf8(b.get(j..end)?).ok()?);
        if compact.len() == len {
            return (!at(b, end).is_ascii_alphanumeric() && is_iban(&compact)).then_some(end);
        }
        if at(b, end) != b' ' {
            return None;
        }
        j = end + 1;
    }
}
