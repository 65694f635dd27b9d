//! Secrets that only earlier (or later) lines reveal, and the [`Context`]
//! that carries what those lines said.
//!
//! - **pem_private_key**: the lines between `-----BEGIN … PRIVATE KEY-----`
//!   and `-----END … PRIVATE KEY-----` are masked whole; the BEGIN and END
//!   lines stay visible so the reader knows a key was shown. A block also
//!   ends at a line that cannot be part of a PEM body (anything but one
//!   base64 token, a `Name: value` header, a line number and a token, or a
//!   blank line), so a truncated key does not mask the rest of the session.
//!   Public keys and certificates have other labels and are never masked. A
//!   key on one line (JSON's `"-----BEGIN…\n…"`) is masked after the marker.
//! - **k8s_secret_data**: entries under `data:`/`stringData:` of a Secret
//!   printed as YAML or JSON, until the indentation drops back. kubectl
//!   prints keys in alphabetical order, so `data` comes *before*
//!   `kind: Secret`: the decision looks at the enclosing object's `kind`
//!   both above (carried in the context) and below (within the lines being
//!   scanned). If the object ends without a `kind` it is not a Secret. If
//!   the lines end first, `stringData` entries are masked, and `data`
//!   entries are masked when an `apiVersion` above says this is a Kubernetes
//!   object and the value is valid base64, as Secret data always is.
//! - **assignment**, in tables: a `psql`/`mysql` table whose header has a
//!   secret-named column (`password`, `api_token`) confirmed by the
//!   separator row below it; that column's cells are masked in every row
//!   with the header's number of `|` until the table ends. psql's expanded
//!   display (`-[ RECORD 1 ]`, then `name | value` rows) masks values of
//!   secret-named rows.
//!
//! - **assignment**, a label above its value: a line that ends in a
//!   secret-named label and a colon with nothing after it (`Please use the
//!   following password to proceed:`, `Your new API token:`), then, after
//!   at most two blank lines, a line that is one token and looks generated
//!   ([`generated`]): the token is masked. A password prompt ends the same
//!   way, and what follows it is the command's output, so the token must
//!   look random: a host name, a file name or a short hex id stay visible.
//!
//! [`Context`] is small and bounded: a few flags, one table description
//! and a short stack of enclosing `kind`s.

use std::ops::Range;

use memchr::memmem;

use super::assign::is_secret_name;
use super::config::DetectorId;
use super::scan::{at, run_end, trim_range, Enabled, Hit, Source};

/// How far ahead of a `data:` line to look for the object's `kind`.
const LOOKAHEAD: usize = 400;
/// Most enclosing objects remembered; deeper nesting forgets the outermost.
const MAX_KINDS: usize = 16;
/// Most table columns remembered.
const MAX_COLUMNS: usize = 64;

/// What lines already scanned said about the lines that follow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// Inside a PEM private key block.
    pem: bool,
    table: Option<Table>,
    data: Option<DataBlock>,
    /// What the enclosing YAML/JSON objects said about themselves: (key
    /// indent, `Some(is a Secret)` for a `kind:`, `None` for an
    /// `apiVersion:`), innermost last.
    kinds: Vec<(usize, Option<bool>)>,
    /// A secret label ended a line above: blank lines still allowed before
    /// its value (0 when none is expected).
    label_above: u8,
}

impl Context {
    /// Nothing carried over: the state at the start of output.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Table {
    pipes: usize,
    /// Indices of secret-named cells (split on `|`).
    secret_cells: Vec<usize>,
    /// The separator row under the header has been seen.
    confirmed: bool,
    /// psql `\x` display: `name | value` rows.
    expanded: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct DataBlock {
    /// Indent of the `data:` key; entries are deeper.
    indent: usize,
    json: bool,
    /// `kind: Secret` is known, or this is `stringData` (Secret-only).
    certain: bool,
    /// Inside a YAML block scalar (`key: |`) whose key is at this indent.
    scalar: Option<usize>,
}

/// Runs before the single-line detectors. Returns true when the whole line
/// is masked (a PEM body line) and nothing else needs to look at it.
pub(crate) fn before_line(
    d: Enabled,
    ctx: &mut Context,
    lines: &[&str],
    index: usize,
    line: &str,
    hits: &mut Vec<Hit>,
) -> bool {
    let b = line.as_bytes();
    if ctx.pem {
        if memmem::find(b, b"-----END").is_some() {
            ctx.pem = false;
            return false;
        }
        match pem_body(b) {
            Some(range) => {
                if !range.is_empty() {
                    hits.push(Hit { range, source: Source::Builtin(DetectorId::PemPrivateKey) });
                }
                return true;
            }
            None => ctx.pem = false,
        }
    }
    if d.is_enabled(DetectorId::K8sSecretData) {
        k8s_line(ctx, lines, index, b, hits);
    }
    if d.is_enabled(DetectorId::Assignment) {
        // The last line may be a row still being written: fewer cells so far.
        table_row(ctx, b, index + 1 == lines.len(), hits);
        value_below_label(ctx, b, hits);
    }
    false
}

// ---- A label above its value -----------------------------------------------

/// Blank lines allowed between a label and its value (Jenkins prints one).
const LABEL_GAP: u8 = 2;

fn value_below_label(ctx: &mut Context, b: &[u8], hits: &mut Vec<Hit>) {
    let range = trim_range(b, 0..b.len());
    if ctx.label_above > 0 {
        if range.is_empty() {
            ctx.label_above -= 1;
            return;
        }
        ctx.label_above = 0;
        if b.get(range.clone()).is_some_and(generated) {
            hits.push(Hit { range, source: Source::Builtin(DetectorId::Assignment) });
            return;
        }
    }
    if ends_with_label(b.get(range).unwrap_or_default()) {
        ctx.label_above = LABEL_GAP + 1;
    }
}

/// `…password:`, `Token:`, `Your new API key :` with nothing after it: the
/// last few words before the colon name a secret.
fn ends_with_label(line: &[u8]) -> bool {
    let Some(head) = line.strip_suffix(b":") else { return false };
    if head.len() > 200 {
        return false;
    }
    let Ok(head) = std::str::from_utf8(head) else { return false };
    // The last eight words, alone and in pairs (`API key`): "Please use
    // the following password to proceed to installation:" (Jenkins).
    let words: Vec<&str> = head.split_whitespace().rev().take(8).map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric())).filter(|w| !w.is_empty()).collect();
    words.iter().any(|w| is_secret_name(w)) || words.windows(2).any(|p| matches!(p, [b, a] if is_secret_name(&format!("{a}{b}"))))
}

/// One token that looks made by a generator rather than by a person: 8 to
/// 128 characters, no `.` or `/` (host and file names), and either 32 or
/// more hex digits (not a UUID) or letters of both cases and digits, or
/// letters, digits and symbols, spread out (most characters distinct).
pub(crate) fn generated(t: &[u8]) -> bool {
    if !(8..=128).contains(&t.len()) || t.iter().any(|c| c.is_ascii_whitespace() || !c.is_ascii_graphic() || matches!(c, b'.' | b'/' | b'\\' | b':' | b'<' | b'>' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b'\'' | b',')) {
        return false;
    }
    let hex = t.iter().all(u8::is_ascii_hexdigit);
    if hex {
        return t.len() >= 32 && t.iter().any(u8::is_ascii_digit) && t.iter().any(u8::is_ascii_alphabetic);
    }
    let upper = t.iter().any(u8::is_ascii_uppercase);
    let lower = t.iter().any(u8::is_ascii_lowercase);
    let digit = t.iter().any(u8::is_ascii_digit);
    let symbol = t.iter().any(|c| !c.is_ascii_alphanumeric() && !matches!(c, b'-' | b'_'));
    let classes = usize::from(upper) + usize::from(lower) + usize::from(digit) + usize::from(symbol);
    let mut seen = [false; 128];
    let mut distinct = 0usize;
    for c in t {
        if let Some(s) = seen.get_mut(usize::from(*c)) {
            if !*s {
                *s = true;
                distinct += 1;
            }
        }
    }
    digit && classes >= 3 && distinct * 10 >= t.len().min(40) * 6
}

// ---- PEM ----------------------------------------------------------------

/// At `pos` the prefilter found `-----begin ` (any case).
pub(crate) fn pem_begin(ctx: &mut Context, line: &str, pos: usize, hits: &mut Vec<Hit>) {
    let b = line.as_bytes();
    if !b.get(pos..).is_some_and(|r| r.starts_with(b"-----BEGIN ")) {
        return;
    }
    let label_start = pos + 11;
    let Some(label_len) = b.get(label_start..).and_then(|r| memmem::find(r, b"-----")) else {
        return;
    };
    let label = b.get(label_start..label_start + label_len).unwrap_or_default();
    if memmem::find(label, b"PRIVATE KEY").is_none() {
        return;
    }
    let after = label_start + label_len + 5;
    let rest = trim_range(b, after..b.len());
    if rest.is_empty() {
        ctx.pem = true;
        return;
    }
    // The key on this same line (an escaped string): up to the END marker.
    let end = b
        .get(rest.clone())
        .and_then(|r| memmem::find(r, b"-----END"))
        .map_or(rest.end, |p| rest.start + p);
    if end > rest.start {
        hits.push(Hit { range: rest.start..end, source: Source::Builtin(DetectorId::PemPrivateKey) });
    }
}

/// The part of a line inside a PEM block to mask, or `None` if the line
/// cannot be part of a PEM body (the block has ended).
fn pem_body(b: &[u8]) -> Option<Range<usize>> {
    let t = trim_range(b, 0..b.len());
    if t.is_empty() {
        return Some(t);
    }
    if memmem::find(b.get(t.clone())?, b"-----").is_some() {
        return None;
    }
    if let Some(body) = pem_body_text(b, t.clone()) {
        return Some(body);
    }
    // `cat -n`, `less -N`: a line number, then the body.
    let digits_end = run_end(b, t.start, |c| c.is_ascii_digit());
    let body_start = run_end(b, digits_end, |c| c == b' ' || c == b'\t');
    if digits_end > t.start && body_start > digits_end {
        return pem_body_text(b, body_start..t.end);
    }
    None
}

/// One base64 token, or an RFC 1421 header ("Proc-Type: 4,ENCRYPTED").
fn pem_body_text(b: &[u8], t: Range<usize>) -> Option<Range<usize>> {
    let text = b.get(t.clone())?;
    let base64 = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=');
    if !text.is_empty() && text.iter().all(base64) {
        return Some(t);
    }
    let name_end = t.start + text.iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'-').count();
    (name_end > t.start && at(b, name_end) == b':' && at(b, name_end + 1) == b' ').then_some(t)
}

// ---- Kubernetes Secrets ---------------------------------------------------

/// The shape of one YAML or JSON line, as far as Secrets care.
struct Shape {
    /// Indent of the key (after a YAML `- `).
    indent: usize,
    json: bool,
    key: Range<usize>,
    /// The value as written (quotes stripped), possibly empty.
    value: Range<usize>,
    /// A JSON value that opens an object at the end of the line.
    opens_object: bool,
}

fn shape(b: &[u8]) -> Option<Shape> {
    let mut i = run_end(b, 0, |c| c == b' ');
    if at(b, i) == b'-' && at(b, i + 1) == b' ' {
        i = run_end(b, i + 1, |c| c == b' ');
    }
    let indent = i;
    if at(b, i) == b'"' {
        let key_end = run_end(b, i + 1, |c| c != b'"');
        let mut j = run_end(b, key_end + 1, |c| c == b' ');
        if at(b, key_end) != b'"' || at(b, j) != b':' {
            return None;
        }
        j = run_end(b, j + 1, |c| c == b' ');
        let (value, opens_object) = match at(b, j) {
            b'"' => {
                let mut k = j + 1;
                while k < b.len() && at(b, k) != b'"' {
                    k += if at(b, k) == b'\\' { 2 } else { 1 };
                }
                (j + 1..k.min(b.len()), false)
            }
            b'{' => (j..j, trim_range(b, j + 1..b.len()).is_empty()),
            _ => (j..j, false),
        };
        return Some(Shape { indent, json: true, key: i + 1..key_end, value, opens_object });
    }
    let key_end = run_end(b, i, |c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/'));
    if key_end == i || at(b, key_end) != b':' || !matches!(at(b, key_end + 1), b' ' | 0) {
        return None;
    }
    let mut value = trim_range(b, key_end + 1..b.len());
    if let Some(p) = b.get(value.clone()).and_then(|v| memmem::find(v, b" #")) {
        value = trim_range(b, value.start..value.start + p);
    }
    let quoted = matches!(at(b, value.start), b'"' | b'\'') && value.len() >= 2 && at(b, value.end - 1) == at(b, value.start);
    if quoted {
        value = value.start + 1..value.end - 1;
    }
    Some(Shape { indent, json: false, key: i..key_end, value, opens_object: false })
}

fn key_is(b: &[u8], s: &Shape, name: &[u8]) -> bool {
    b.get(s.key.clone()) == Some(name)
}

fn is_blank(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_whitespace)
}

/// Leading spaces, and list-item dashes counted as indentation.
fn line_indent(b: &[u8]) -> (usize, bool) {
    let i = run_end(b, 0, |c| c == b' ');
    if at(b, i) == b'-' && at(b, i + 1) == b' ' {
        (run_end(b, i + 1, |c| c == b' '), true)
    } else {
        (i, false)
    }
}

/// A `kind:` line: Some(is it "Secret").
fn kind_of(b: &[u8], s: &Shape) -> Option<bool> {
    key_is(b, s, b"kind").then(|| b.get(s.value.clone()) == Some(b"Secret"))
}

fn k8s_line(ctx: &mut Context, lines: &[&str], index: usize, b: &[u8], hits: &mut Vec<Hit>) {
    if is_blank(b) {
        return;
    }
    let (indent, item) = line_indent(b);
    if b.starts_with(b"---") {
        ctx.kinds.clear();
        ctx.data = None;
        return;
    }
    if !ctx.kinds.is_empty() {
        ctx.kinds.retain(|&(k, _)| k < indent || (k == indent && !item));
    }
    if let Some(block) = &mut ctx.data {
        if indent > block.indent {
            data_entry(block, b, indent, shape(b).as_ref(), index + 1 == lines.len(), hits);
            return;
        }
        ctx.data = None;
    }
    // Only four keys matter outside a data block; most lines are none of
    // them, and are not parsed further.
    let key = b.get(indent..).unwrap_or_default();
    let key = key.strip_prefix(b"\"").unwrap_or(key);
    if ![&b"kind"[..], b"data", b"stringData", b"apiVersion"].iter().any(|k| key.starts_with(k)) {
        return;
    }
    let Some(s) = shape(b) else { return };
    let kind = kind_of(b, &s);
    if kind.is_some() || key_is(b, &s, b"apiVersion") {
        if ctx.kinds.len() >= MAX_KINDS {
            ctx.kinds.remove(0);
        }
        ctx.kinds.push((s.indent, kind));
        return;
    }
    let string_data = key_is(b, &s, b"stringData");
    if !(string_data || key_is(b, &s, b"data")) {
        return;
    }
    let opens = if s.json { s.opens_object } else { s.value.is_empty() };
    if !opens {
        return;
    }
    let siblings = || ctx.kinds.iter().filter(|(k, _)| *k == s.indent);
    let known = siblings().find_map(|(_, kind)| *kind);
    let k8s_object = siblings().next().is_some();
    let certain = match known.or_else(|| kind_below(lines, index, s.indent)) {
        Some(false) => return,
        Some(true) => true,
        // A Kubernetes object whose kind is not in sight: mask what can
        // only be Secret data. Without even an `apiVersion` above it, a
        // `data:` key is just a word in some YAML or JSON.
        None if string_data || k8s_object => string_data,
        None => return,
    };
    ctx.data = Some(DataBlock { indent: s.indent, json: s.json, certain, scalar: None });
}

/// Looks below a `data:` line at `indent` for its object's `kind`. Some(is
/// Secret) if found, Some(false) if the object ends without one, None if
/// the lines end first.
fn kind_below(lines: &[&str], index: usize, indent: usize) -> Option<bool> {
    for line in lines.iter().skip(index + 1).take(LOOKAHEAD) {
        let b = line.as_bytes();
        if is_blank(b) {
            continue;
        }
        let (k, item) = line_indent(b);
        if k < indent || (item && k == indent) || b.starts_with(b"---") {
            return Some(false);
        }
        if k == indent {
            if let Some(s) = shape(b) {
                // The last line may still be being written: a `kind:` whose
                // value could yet become `Secret` decides nothing.
                let last = std::ptr::eq(*line, *lines.last().unwrap_or(&""));
                let value = b.get(s.value.clone()).unwrap_or_default();
                if last && key_is(b, &s, b"kind") && value.len() < 6 && b"Secret".starts_with(value) {
                    return None;
                }
                if let Some(secret) = kind_of(b, &s) {
                    return Some(secret);
                }
            }
        }
    }
    None
}

/// `last_line`: the line may still be being written, so a value that is not
/// (yet) whole base64 is masked if it is base64 so far: it must not be
/// shown in part while the rest arrives.
fn data_entry(block: &mut DataBlock, b: &[u8], indent: usize, shape: Option<&Shape>, last_line: bool, hits: &mut Vec<Hit>) {
    let push = |hits: &mut Vec<Hit>, range: Range<usize>| {
        if !range.is_empty() {
            hits.push(Hit { range, source: Source::Builtin(DetectorId::K8sSecretData) });
        }
    };
    if let Some(scalar) = block.scalar {
        if indent > scalar {
            push(hits, trim_range(b, 0..b.len()));
            return;
        }
        block.scalar = None;
    }
    let Some(s) = shape else { return };
    let value = b.get(s.value.clone()).unwrap_or_default();
    if !block.json && matches!(value.first(), Some(b'|' | b'>')) && value.len() <= 3 {
        block.scalar = Some(indent);
        return;
    }
    let growing = last_line && !value.is_empty() && value.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='));
    if block.certain || is_base64(value) || growing {
        push(hits, s.value.clone());
    }
}

/// Standard base64 with padding, as Secret `data` values always are.
fn is_base64(v: &[u8]) -> bool {
    let body = v.iter().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/')).count();
    let pad = v.len() - body;
    !v.is_empty() && v.len().is_multiple_of(4) && pad <= 2 && v.iter().skip(body).all(|c| *c == b'=')
}

/// A whole Secret as one line of JSON (`kubectl … -o json | jq -c`): the
/// line itself must say `"kind":"Secret"`.
pub(crate) fn inline_json_secret(line: &str, hits: &mut Vec<Hit>) {
    let b = line.as_bytes();
    if !says_kind_secret(b) {
        return;
    }
    for key in [&b"\"data\""[..], b"\"stringData\""] {
        let mut from = 0;
        while let Some(p) = b.get(from..).and_then(|r| memmem::find(r, key)) {
            let mut i = from + p + key.len();
            from = i;
            i = run_end(b, i, |c| c == b' ');
            if at(b, i) != b':' {
                continue;
            }
            i = run_end(b, i + 1, |c| c == b' ');
            if at(b, i) != b'{' {
                continue;
            }
            i += 1;
            // "key": "value" pairs until the closing brace.
            loop {
                i = run_end(b, i, |c| c == b' ');
                if at(b, i) != b'"' {
                    break;
                }
                let key_end = run_end(b, i + 1, |c| c != b'"');
                i = run_end(b, key_end + 1, |c| c == b' ');
                if at(b, i) != b':' {
                    break;
                }
                i = run_end(b, i + 1, |c| c == b' ');
                if at(b, i) != b'"' {
                    break;
                }
                let start = i + 1;
                let mut k = start;
                while k < b.len() && at(b, k) != b'"' {
                    k += if at(b, k) == b'\\' { 2 } else { 1 };
                }
                if k > start && k <= b.len() {
                    hits.push(Hit { range: start..k, source: Source::Builtin(DetectorId::K8sSecretData) });
                }
                i = run_end(b, k + 1, |c| c == b' ');
                if at(b, i) != b',' {
                    break;
                }
                i += 1;
            }
            from = i.max(from);
        }
    }
}

fn says_kind_secret(b: &[u8]) -> bool {
    let key = b"\"kind\"";
    let mut from = 0;
    while let Some(p) = b.get(from..).and_then(|r| memmem::find(r, key)) {
        let mut i = run_end(b, from + p + key.len(), |c| c == b' ');
        from = from + p + key.len();
        if at(b, i) != b':' {
            continue;
        }
        i = run_end(b, i + 1, |c| c == b' ');
        if b.get(i..).is_some_and(|r| r.starts_with(b"\"Secret\"")) {
            return true;
        }
    }
    false
}

// ---- Tables -------------------------------------------------------------

/// Cells of a table row, split on `|`.
fn cells(b: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut start = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let end = b.get(start..).and_then(|r| r.iter().position(|c| *c == b'|')).map_or(b.len(), |p| start + p);
        let cell = start..end;
        if end == b.len() {
            done = true;
        }
        start = end + 1;
        Some(cell)
    })
}

fn is_separator(b: &[u8]) -> bool {
    !is_blank(b) && b.iter().all(|c| matches!(c, b'-' | b'+' | b'|' | b'=' | b' ')) && b.iter().any(|c| matches!(c, b'-' | b'='))
}

/// Called on lines with a secret key word while no table is open: a header
/// row with a secret-named column opens one, to be confirmed by the
/// separator row that follows it.
pub(crate) fn table_header(ctx: &mut Context, line: &str) {
    let b = line.as_bytes();
    if ctx.table.is_some() || !b.contains(&b'|') {
        return;
    }
    let mut secret_cells = Vec::new();
    let mut pipes = 0;
    for (i, cell) in cells(b).enumerate() {
        if i > 0 {
            pipes += 1;
        }
        let t = trim_range(b, cell);
        let name = line.get(t).unwrap_or_default();
        if i < MAX_COLUMNS
            && !name.is_empty()
            && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
            && is_secret_name(name)
        {
            secret_cells.push(i);
        }
    }
    if !secret_cells.is_empty() {
        ctx.table = Some(Table { pipes, secret_cells, confirmed: false, expanded: false });
    }
}

fn table_row(ctx: &mut Context, b: &[u8], last_line: bool, hits: &mut Vec<Hit>) {
    if b.get(trim_range(b, 0..b.len())).is_some_and(|t| t.starts_with(b"-[ RECORD ")) {
        ctx.table = Some(Table { pipes: 1, secret_cells: Vec::new(), confirmed: true, expanded: true });
        return;
    }
    let Some(table) = &mut ctx.table else { return };
    let push = |hits: &mut Vec<Hit>, range: Range<usize>| {
        if !range.is_empty() {
            hits.push(Hit { range, source: Source::Builtin(DetectorId::Assignment) });
        }
    };
    if table.expanded {
        let Some(bar) = b.iter().position(|c| *c == b'|') else {
            ctx.table = None;
            return;
        };
        let name = trim_range(b, 0..bar);
        let name = std::str::from_utf8(b.get(name).unwrap_or_default()).unwrap_or_default();
        if is_secret_name(name) {
            push(hits, trim_range(b, bar + 1..b.len()));
        }
        return;
    }
    if !table.confirmed {
        if is_separator(b) {
            table.confirmed = true;
        } else {
            ctx.table = None;
        }
        return;
    }
    if is_separator(b) {
        return;
    }
    let pipes = b.iter().filter(|c| **c == b'|').count();
    // A row of the table has the header's number of bars; the line still
    // being written may have fewer so far, and its secret cell must not be
    // shown while the rest arrives.
    let partial = last_line && pipes > 0 && pipes < table.pipes;
    if pipes != table.pipes && !partial {
        ctx.table = None;
        return;
    }
    for (i, cell) in cells(b).enumerate() {
        if table.secret_cells.contains(&i) {
            let t = trim_range(b, cell);
            // psql marks a wrapped cell with a trailing "+".
            let t = if at(b, t.end.saturating_sub(1)) == b'+' && t.len() > 1 {
                trim_range(b, t.start..t.end - 1)
            } else {
                t
            };
            push(hits, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_shapes() {
        assert!(is_base64(b"YWRtaW4="));
        assert!(is_base64(b"MWYyZDFlMmU2N2Rm"));
        assert!(!is_base64(b"admin"));
        assert!(!is_base64(b"a=bc"));
        assert!(!is_base64(b""));
    }
}
