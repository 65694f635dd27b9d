//! Vendor tokens recognised by a fixed prefix, as one table ([`FORMATS`]):
//! AI providers' keys, package-registry tokens, CI and source-hosting
//! tokens, e-mail and SMS API keys, chat webhooks.
//!
//! Each row says everything there is to know about one format: the prefix
//! (exact case), the characters of the body, its length, whether a random
//! body must mix character classes, and whether only the part after the
//! prefix is secret (a webhook's host name is public). The prefilter's
//! trigger words are the prefixes themselves, so adding a row costs nothing
//! on lines that do not contain it, and the hold-back window (`pending.rs`)
//! reads the same rows to know how long a growing token may still get.
//!
//! Kept apart on purpose from the formats that need context to be told from
//! any other random string (`labelled.rs`): a row here must be specific
//! enough to mask with no context at all. The older prefix recognisers in
//! `tokens.rs` (GitHub, Slack, Stripe, AWS, Google, JWT) predate the table
//! and keep their own checks.
//!
//! The checklist was the gitleaks rule set and the vendors' documented
//! formats; lengths are the documented ones with some slack where vendors
//! say a format may grow.

use super::config::DetectorId;
use super::scan::{at, before, is_word, run_end, Hit, Source};

/// One prefix-anchored token format.
pub(crate) struct Format {
    /// Exact case; the prefilter matches it case-insensitively and
    /// [`recognise`] checks the case.
    pub prefix: &'static str,
    pub id: DetectorId,
    /// Characters the body (after the prefix) is made of.
    pub body: fn(u8) -> bool,
    /// Body length accepted, inclusive.
    pub min: usize,
    pub max: usize,
    /// The body must use at least two of upper case, lower case and digits:
    /// what separates `sk-` + 48 random characters from `sk-learn-…`.
    pub mixed: bool,
    /// Mask only the body: the prefix is a public host and path.
    pub body_only: bool,
}

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn letters(c: u8) -> bool {
    c.is_ascii_alphabetic()
}
fn lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}
fn hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}
fn base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}
/// GitLab's newer routable tokens carry `.`-separated parts.
fn base64url_dot(c: u8) -> bool {
    base64url(c) || c == b'.'
}
/// Atlassian API tokens end in `=` and a checksum.
fn atlassian(c: u8) -> bool {
    base64url(c) || c == b'='
}
/// SendGrid: 22 characters, `.`, 43 characters.
fn sendgrid(c: u8) -> bool {
    base64url(c) || c == b'.'
}
fn brevo(c: u8) -> bool {
    alnum(c) || c == b'-'
}
/// A webhook URL's path: ids, `/`, the secret, and (Teams) `@` and `-`.
fn hook_path(c: u8) -> bool {
    base64url(c) || c == b'/' || c == b'@'
}

const fn row(prefix: &'static str, id: DetectorId, body: fn(u8) -> bool, min: usize, max: usize, mixed: bool) -> Format {
    Format { prefix, id, body, min, max, mixed, body_only: false }
}

const fn hook(prefix: &'static str, id: DetectorId, min: usize) -> Format {
    Format { prefix, id, body: hook_path, min, max: 400, mixed: false, body_only: true }
}

use DetectorId::{AiApiKey as Ai, ChatToken as Chat, CiToken as Ci, MessagingApiKey as Msg, RegistryToken as Reg};

/// The table. Where one prefix starts another (`sk-ant-` and `sk-`), the
/// longer comes first: the prefilter prefers the earlier of two patterns
/// that match at one place.
pub(crate) const FORMATS: &[Format] = &[
    // AI providers.
    row("sk-ant-", Ai, base64url, 80, 250, true),
    row("sk-proj-", Ai, base64url, 40, 250, true),
    row("sk-svcacct-", Ai, base64url, 40, 250, true),
    row("sk-admin-", Ai, base64url, 40, 250, true),
    row("sk-", Ai, base64url, 32, 250, true),
    row("hf_", Ai, letters, 30, 40, true),
    row("gsk_", Ai, alnum, 48, 60, true),
    row("r8_", Ai, alnum, 36, 40, true),
    row("pplx-", Ai, alnum, 40, 64, true),
    row("xai-", Ai, alnum, 70, 90, true),
    // Package registries.
    row("npm_", Reg, alnum, 36, 36, true),
    row("pypi-AgE", Reg, base64url, 50, 400, true),
    row("rubygems_", Reg, hex, 48, 48, false),
    row("oy2", Reg, lower_alnum, 43, 43, true),
    row("cio", Reg, alnum, 32, 32, true),
    row("dckr_pat_", Reg, base64url, 20, 40, true),
    row("dckr_oat_", Reg, base64url, 20, 40, true),
    // CI and source hosting (GitHub's own are in `tokens.rs`).
    row("glpat-", Ci, base64url_dot, 20, 120, true),
    row("glptt-", Ci, base64url, 20, 60, true),
    row("glrt-", Ci, base64url_dot, 20, 120, true),
    row("gldt-", Ci, base64url, 20, 60, true),
    row("glcbt-", Ci, base64url, 20, 60, true),
    row("glsoat-", Ci, base64url, 20, 60, true),
    row("glft-", Ci, base64url, 20, 60, true),
    row("gloas-", Ci, base64url, 20, 80, true),
    row("GR1348941", Ci, base64url, 20, 60, true),
    row("bkua_", Ci, lower_alnum, 40, 40, true),
    row("ATATT3", Ci, atlassian, 100, 300, true),
    row("ATBB", Ci, alnum, 32, 40, true),
    row("CCIPAT_", Ci, base64url, 50, 80, true),
    // E-mail and SMS.
    row("SG.", Msg, sendgrid, 66, 66, true),
    row("xkeysib-", Msg, brevo, 80, 81, true),
    row("xsmtpsib-", Msg, brevo, 80, 81, true),
    // Chat.
    row("xapp-", DetectorId::SlackToken, brevo, 20, 255, true),
    hook("discord.com/api/webhooks/", Chat, 60),
    hook("discordapp.com/api/webhooks/", Chat, 60),
    hook("webhook.office.com/webhookb2/", Chat, 60),
];

/// Checks the row `index` at the prefilter's hit `start`.
pub(crate) fn recognise(index: usize, line: &str, start: usize, hits: &mut Vec<Hit>) -> Option<DetectorId> {
    let f = FORMATS.get(index)?;
    let range = find(f, line.as_bytes(), start)?;
    hits.push(Hit { range, source: Source::Builtin(f.id) });
    Some(f.id)
}

fn find(f: &Format, b: &[u8], s: usize) -> Option<std::ops::Range<usize>> {
    let prefix = f.prefix.as_bytes();
    if !b.get(s..).is_some_and(|rest| rest.starts_with(prefix)) {
        return None;
    }
    // A prefix in the middle of a word (`task-`, `toy2`) is not a token; a
    // host name may follow `https://` or a subdomain (`myorg.webhook…`).
    if !f.body_only && (is_word(before(b, s)) || before(b, s) == b'-') {
        return None;
    }
    let from = s + prefix.len();
    let end = run_end(b, from, f.body);
    let body = b.get(from..end)?;
    // A token glued to more word characters is something else.
    if !(f.min..=f.max).contains(&body.len()) || (!f.body_only && is_word(at(b, end))) {
        return None;
    }
    if f.mixed {
        let classes = [u8::is_ascii_uppercase, u8::is_ascii_lowercase, u8::is_ascii_digit];
        if classes.iter().filter(|class| body.iter().any(class)).count() < 2 {
            return None;
        }
    }
    if f.prefix == "SG." && (at(b, from + 22) != b'.' || body.iter().filter(|c| **c == b'.').count() != 1) {
        return None;
    }
    Some(if f.body_only { from..end } else { s..end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_longer_prefix_comes_before_any_prefix_of_it() {
        for (i, a) in FORMATS.iter().enumerate() {
            for b in FORMATS.get(i + 1..).unwrap_or_default() {
                assert!(
                    !b.prefix.to_ascii_lowercase().starts_with(&a.prefix.to_ascii_lowercase()) || a.prefix == b.prefix,
                    "{:?} must come before {:?}",
                    b.prefix,
                    a.prefix
                );
            }
        }
    }

    /// A body for `f` of length `n` made of characters its charset allows.
    fn body(f: &Format, n: usize) -> String {
        let mut out: String = b"aB3cD4eF5gH6".iter().copied().filter(|c| (f.body)(*c)).map(char::from).cycle().take(n).collect();
        if f.prefix == "SG." && n > 22 {
            out.replace_range(22..23, ".");
        }
        out
    }

    #[test]
    fn every_row_matches_its_shortest_token_and_not_one_shorter() {
        for f in FORMATS {
            let line = format!("x {}{} y", f.prefix, body(f, f.min));
            let found = find(f, line.as_bytes(), 2);
            let want = if f.body_only { 2 + f.prefix.len()..line.len() - 2 } else { 2..line.len() - 2 };
            assert_eq!(found, Some(want), "{line}");
            let short = format!("x {}{} y", f.prefix, body(f, f.min - 1));
            assert_eq!(find(f, short.as_bytes(), 2), None, "{short}");
        }
    }
}
