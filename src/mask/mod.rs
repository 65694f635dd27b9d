//! Secret detection: text lines in, spans to mask out.
//!
//! This is the pure core of masking. It never sees terminal bytes, cells or
//! colours: the caller (the screen-to-cells mapping) hands it logical lines
//! (one terminal line each, wrapped rows already joined) and gets back
//! [`Finding`]s, each a line index, a byte range within that line and the
//! name of the detector that fired. No I/O, no clock, no globals, so the same
//! lines always give the same findings.
//!
//! The pieces:
//!
//! - [`MaskingConfig`] (`config.rs`): the validated `[masking]` section.
//! - [`Detectors`] (`detect.rs`): built once from the config; [`Detectors::scan`]
//!   finds secrets in a screen's worth of lines, [`Detectors::pending_prefix`]
//!   tells the renderer how much of a line still being written to hold back.
//! - [`Context`]: what earlier lines said (inside a PEM private key, under the
//!   `data:` of a Kubernetes Secret, below a table header with a `password`
//!   column), so a caller that scans rows as they scroll off can carry it
//!   into the next batch with [`Detectors::scan_from`].
//! - `checksum.rs`: Luhn, IBAN mod 97, card issuer ranges, SSN rules.
//! - `tokens.rs`, `digits.rs`, `assign.rs`, `blocks.rs`, `pending.rs`: the
//!   detectors themselves, grouped by how they recognise a secret;
//!   `formats.rs` is the table of vendor tokens known by their prefix,
//!   `labelled.rs` the vendor keys that need context and randomness to be
//!   told apart, `options.rs` passwords given to a command as options
//!   (`mysql -pS3cret`), `connection.rs` the secrets of cloud connection
//!   strings and signed URLs.
//! - `scan.rs`: what the dispatcher and the detectors share (hits, the
//!   trigger prefilter, which detectors are on, byte helpers), so the
//!   detectors never import the dispatcher.
//!
//! Why hand-written recognisers rather than one regex per detector: this runs
//! over every rendered frame and every row that scrolls off under a flood of
//! output, and almost every line has no secret. One Aho-Corasick pass over
//! fixed prefixes and key words (`ghp_`, `AKIA`, `password`, `://`, ...) plus
//! a digit count decides which recognisers run at all; each then checks
//! lengths, character classes, checksums and context by hand, which is both
//! cheaper and stricter than a pattern. Only operators' custom rules are
//! regexes.
//!
//! What stays visible is as much a part of the contract as what is masked:
//! names of secret-named keys (only values are masked), the BEGIN/END lines of
//! a PEM block (so the reader knows a key was there), prompts with no value,
//! Luhn-invalid digit runs, UUIDs, hashes, dates, addresses and version
//! strings. The tests hold both lists.

mod assign;
mod blocks;
mod checksum;
mod config;
mod connection;
mod detect;
mod digits;
mod formats;
mod labelled;
mod options;
mod pending;
mod scan;
mod tokens;

pub use checksum::{is_card_number, is_iban, luhn, mod97, ssn_valid};
pub(crate) use config::RawMasking;
pub use config::{Checksum, CustomRule, DetectorId, FieldError, Group, MaskingConfig, MAX_HOLD_MS, MAX_RULE_LEN};
pub use detect::{Context, Detectors, Finding, Memo};

use sha2::{Digest as _, Sha256};

/// Errors building [`Detectors`] from a configuration made in code (a
/// configuration read from a file has already been checked the same way).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    #[error("masking rule {rule:?}: {reason}")]
    Rule { rule: String, reason: String },
    #[error("cannot build the masking prefilter: {0}")]
    Prefilter(String),
}

/// Prefix that separates custom fingerprints from any other SHA-256 use, and
/// versions the scheme: changing it changes every fingerprint.
const FINGERPRINT_DOMAIN: &[u8] = b"custos mask fingerprint v1\0";

/// A stable, non-reversible name for a secret, for `custos mask --explain`:
/// the first 12 hex digits (48 bits) of SHA-256 over a fixed domain prefix
/// and the value. Operators can tell two findings apart, or see that the same
/// secret appears twice, without the value being printed. 48 bits is too
/// short to be a useful offline-guessing oracle for strong secrets; for weak
/// ones (a 4-digit PIN) any hash would be, so `--explain` output should be
/// treated as sensitive anyway.
pub fn fingerprint(secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(FINGERPRINT_DOMAIN);
    h.update(secret.as_bytes());
    h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
