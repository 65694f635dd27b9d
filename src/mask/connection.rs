//! Secrets inside cloud connection strings and signed URLs, where the name
//! in front of the value is the vendor's, not a word like "password":
//!
//! - Azure storage `…;AccountKey=…;` and Service Bus / Event Hubs
//!   `…;SharedAccessKey=…` connection strings;
//! - the signature of a shared access signature (`?sv=…&sig=…`, also
//!   inside `SharedAccessSignature=sv=…`), and of AWS and Google presigned
//!   URLs (`X-Amz-Signature=`, `X-Goog-Signature=`) and CloudFront's
//!   (`&Signature=…&Key-Pair-Id=`);
//! - Oracle's `user/PASSWORD@db` logins (`sqlplus`, `expdp`, `rman`,
//!   `jdbc:oracle:thin:`), which have no `://` for `url_password`.
//!
//! Only the secret is masked: the account, endpoint, expiry and
//! permissions of a SAS stay readable, and so do the user and database of
//! an Oracle login, as `url_password` keeps a URI's user and host.
//! Passwords in other URIs (`postgres://`, `amqps://`, `mongodb+srv://`,
//! `jdbc:mysql://…?password=`) are `url_password`'s and `assignment`'s.

use std::ops::Range;

use super::config::DetectorId;
use super::scan::{at, before, contains_ci, is_word, run_end, Hit, Source};

/// What a connection-string trigger word is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conn {
    /// `AccountKey=`, `SharedAccessKey=`: the value to the next `;`.
    Key,
    /// `sig=`: a SAS signature.
    Sig,
    /// `Signature=` in a URL's query.
    Signature,
    /// A command or URL that takes `user/password@db`.
    Oracle,
}

/// Trigger words (ASCII case-insensitive) and what each is.
pub(crate) const TRIGGERS: &[(&str, Conn)] = &[
    ("accountkey=", Conn::Key),
    ("sharedaccesskey=", Conn::Key),
    ("sig=", Conn::Sig),
    ("signature=", Conn::Signature),
    ("sqlplus", Conn::Oracle),
    ("expdp", Conn::Oracle),
    ("impdp", Conn::Oracle),
    ("sqlldr", Conn::Oracle),
    ("rman", Conn::Oracle),
    (":thin:", Conn::Oracle),
];

fn value_char(c: u8) -> bool {
    !(c.is_ascii_whitespace() || matches!(c, b';' | b'&' | b'"' | b'\'' | b'#' | b'<' | b'>' | b'`' | 0))
}

/// Looks like a signature or key: long enough, and base64, hex or
/// percent-encoded base64.
fn signature_like(v: &[u8]) -> bool {
    v.len() >= 16 && v.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'%' | b'-' | b'_' | b'~'))
}

pub(crate) fn recognise(kind: Conn, line: &str, range: Range<usize>, hits: &mut Vec<Hit>) {
    let b = line.as_bytes();
    let found = match kind {
        Conn::Key => key(b, range),
        Conn::Sig => sig(b, range),
        Conn::Signature => signature(b, range),
        Conn::Oracle => oracle(b, range),
    };
    if let Some(r) = found {
        hits.push(Hit { range: r, source: Source::Builtin(DetectorId::ConnectionString) });
    }
}

/// Where a connection-string value still being written starts: a key,
/// SAS or presigned-URL signature whose value runs to the end of `line`
/// and is not yet long enough for [`recognise`] to mask it. An Oracle
/// password is masked from its first character, so it needs no holding.
pub(crate) fn pending(kind: Conn, line: &str, range: Range<usize>) -> Option<usize> {
    let b = line.as_bytes();
    let placed = match kind {
        Conn::Key => !is_word(before(b, range.start)),
        Conn::Sig => matches!(before(b, range.start), b'?' | b'&' | b';' | b' ' | b'"' | b'\'' | 0) && contains_ci(b, b"sv="),
        Conn::Signature => {
            let mut s = range.start;
            for vendor in [&b"x-amz-"[..], b"x-goog-"] {
                if s >= vendor.len() && b.get(s - vendor.len()..s).is_some_and(|p| p.eq_ignore_ascii_case(vendor)) {
                    s -= vendor.len();
                }
            }
            matches!(before(b, s), b'?' | b'&')
        }
        Conn::Oracle => false,
    };
    let open = range.end < b.len() && run_end(b, range.end, value_char) == b.len();
    (placed && open).then_some(range.end)
}

/// `AccountKey=VALUE` with `;`, start or space before it.
fn key(b: &[u8], r: Range<usize>) -> Option<Range<usize>> {
    if is_word(before(b, r.start)) {
        return None;
    }
    let end = run_end(b, r.end, value_char);
    signature_like(b.get(r.end..end)?).then_some(r.end..end)
}

/// `sig=VALUE` in a query (after `?`, `&` or `;`) on a line that is a SAS
/// (it has the `sv=` service version every SAS carries).
fn sig(b: &[u8], r: Range<usize>) -> Option<Range<usize>> {
    if !matches!(before(b, r.start), b'?' | b'&' | b';' | b' ' | b'"' | b'\'' | 0) || !contains_ci(b, b"sv=") {
        return None;
    }
    let end = run_end(b, r.end, value_char);
    signature_like(b.get(r.end..end)?).then_some(r.end..end)
}

/// `?…&Signature=` (CloudFront), `X-Amz-Signature=`, `X-Goog-Signature=`.
fn signature(b: &[u8], r: Range<usize>) -> Option<Range<usize>> {
    let mut s = r.start;
    for vendor in [&b"x-amz-"[..], b"x-goog-"] {
        if s >= vendor.len() && b.get(s - vendor.len()..s).is_some_and(|p| p.eq_ignore_ascii_case(vendor)) {
            s -= vendor.len();
        }
    }
    if !matches!(before(b, s), b'?' | b'&') {
        return None;
    }
    let end = run_end(b, r.end, value_char);
    signature_like(b.get(r.end..end)?).then_some(r.end..end)
}

/// The first word after the trigger shaped `user/PASSWORD` or
/// `user/PASSWORD@db`: just the password.
fn oracle(b: &[u8], r: Range<usize>) -> Option<Range<usize>> {
    let thin = at(b, r.start) == b':';
    if !thin && (is_word(before(b, r.start)) || !matches!(at(b, r.end), b' ' | b'\t')) {
        return None;
    }
    let mut i = r.end;
    // Options before the login (`sqlplus -s -L app/pw@db`).
    loop {
        i = run_end(b, i, |c| c == b' ' || c == b'\t');
        if at(b, i) != b'-' || thin {
            break;
        }
        i = run_end(b, i, |c| !c.is_ascii_whitespace());
    }
    let end = run_end(b, i, |c| !c.is_ascii_whitespace() && !matches!(c, b'"' | b'\'' | b'`' | b';'));
    let word = b.get(i..end)?;
    let slash = word.iter().position(|c| *c == b'/')?;
    let user = word.get(..slash)?;
    if user.is_empty() || !user.iter().all(|c| is_word(*c) || matches!(c, b'$' | b'#')) {
        return None;
    }
    let rest = word.get(slash + 1..)?;
    let pw_len = rest.iter().rposition(|c| *c == b'@').unwrap_or(rest.len());
    let pw = i + slash + 1..i + slash + 1 + pw_len;
    // `sqlplus /nolog`, `sys/ as sysdba` (no password), `//host` paths.
    (pw_len > 0 && at(b, pw.start) != b'/').then_some(pw)
}
