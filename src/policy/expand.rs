//! Word expansion as far as the gate can know it: quote removal, tilde,
//! parameters, brace expansion and field splitting, from brush-parser's
//! word pieces.
//!
//! The gate runs before the command, so some values cannot be known: the
//! output of most command substitutions, positional parameters, `$RANDOM`.
//! Those are *missing*: they expand to nothing (the value that makes
//! `rm -rf "$DIR"/` mean `rm -rf /`), and a word where a missing value lands
//! at the root of a path is marked unsafe. Command substitutions are not
//! ignored: the caller parses and checks what runs inside them, and gives
//! back the output when it is literal (`$(echo /)`, `$(pwd)`).
//!
//! Missing is not the same as unknowable. A variable the caller did not
//! pass is unset, so empty: the gate's callers send the value of every
//! variable a line names (the hooks do), and `rm -rf "$DIR"/` with `DIR`
//! unset means `rm -rf /`. But a command substitution's output, a
//! positional parameter, a variable assigned from one of those, or a
//! `${...}` operation could be *anything*: [`Field::unknown`] says so, so
//! that a word in a position where any value could change which rule
//! applies (the command name, an argument a rule looks at) gets the
//! policy's `unknown` verdict instead of being read as empty. `$$`, `$#`,
//! `$?`, `$!` and arithmetic are numbers, which cannot, so they are only
//! missing.
//!
//! Globs are never expanded (there is no file system here); a word keeps
//! its `*`, and remembers that an unquoted glob character was in it, so that
//! `/*` can be told from `'/*'`.

use std::collections::BTreeMap;

use brush_parser::word::{BraceExpressionMember, BraceExpressionOrText, Parameter, ParameterExpr, ParameterTestType, SpecialParameter, TildeExpr, WordPiece};
use brush_parser::ParserOptions;

/// Most words one brace expansion may produce (`{1..100000}` would be a
/// cheap way to make the gate do a lot of work).
pub const MAX_BRACE_WORDS: usize = 256;
/// The most unquoted `{` one word may have for brace expansion (see
/// `braces`).
const MAX_BRACES: usize = 8;

/// A variable's value as the gate knows it: `None` when it was assigned
/// something the gate cannot compute (`X=$(cat f)`).
pub type Value = Option<String>;

/// One word after expansion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Field {
    pub text: String,
    /// Some part was quoted, so an empty field is still an argument.
    pub quoted: bool,
    /// Byte offset in `text` of the first unquoted `*`, `?` or `[`.
    pub glob_at: Option<usize>,
    /// The first missing expansion that landed where only slashes came
    /// before it, with its description (`$DIR is unset or empty`).
    pub missing_at_root: Option<String>,
    /// Some expansion was missing (anywhere in the word).
    pub dynamic: bool,
    /// The first expansion in the word whose value cannot be known
    /// (`$(cat x)`, `$1`): the word could be anything. An unquoted one
    /// that is the whole word is kept as an empty field (it could be zero
    /// words or many) so that its position is not lost.
    pub unknown: Option<String>,
}

impl Field {
    /// The unsafe-expansion reason, if the word is a path whose root part
    /// came from a missing value.
    pub fn unsafe_reason(&self) -> Option<&str> {
        self.missing_at_root.as_deref().filter(|_| self.text.starts_with('/'))
    }
}

/// What the expander asks of its caller: variable values, and the output
/// of a command substitution (which the caller also checks as a command).
pub trait Context {
    fn var(&self, name: &str) -> Option<Value>;
    fn home(&self) -> &str;
    /// Parses and checks `script`; returns its output when literal.
    fn substitute(&mut self, script: &str) -> Value;
    /// Budget accounting for nested word parsing; false when exhausted.
    fn charge(&mut self, bytes: usize) -> bool;
    /// Whether a variable `var` does not know is known to be unset (the
    /// caller sent every variable the line names that is set).
    fn knows_every_variable(&self) -> bool {
        true
    }
}

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError(pub String);

/// Expands one raw word (as brush-parser's tokenizer gives it) into fields.
pub fn expand_word(raw: &str, cx: &mut dyn Context) -> Result<Vec<Field>, ExpandError> {
    let mut out = Vec::new();
    for word in braces(raw)? {
        let pieces = parse_pieces(&word, cx)?;
        // `IFS=,; x=rm,-rf,/; $x` splits on commas.
        let ifs = cx.var("IFS").flatten();
        let mut fields = Fields { ifs, ..Fields::default() };
        expand_pieces(&pieces, false, &mut fields, cx)?;
        out.extend(fields.finish());
    }
    Ok(out)
}

/// Expands a word that is not field-split (an assignment's value, a
/// redirection target, a here-string): one string.
pub fn expand_joined(raw: &str, cx: &mut dyn Context) -> Result<Field, ExpandError> {
    let pieces = parse_pieces(raw, cx)?;
    let mut fields = Fields { no_split: true, ..Fields::default() };
    expand_pieces(&pieces, false, &mut fields, cx)?;
    let mut all = fields.finish();
    let mut first = all.drain(..).next().unwrap_or_default();
    first.quoted = true;
    Ok(first)
}

/// Text of an unexpanded here-document body after expansion.
pub fn expand_heredoc(raw: &str, cx: &mut dyn Context) -> Result<Field, ExpandError> {
    if !cx.charge(raw.len()) {
        return Err(ExpandError("the line is too complex to check".into()));
    }
    let pieces = brush_parser::word::parse_heredoc(raw, &ParserOptions::default())
        .map_err(|e| ExpandError(format!("cannot parse here-document: {e}")))?;
    let pieces: Vec<WordPiece> = pieces.into_iter().map(|p| p.piece).collect();
    let mut fields = Fields { no_split: true, ..Fields::default() };
    expand_pieces(&pieces, true, &mut fields, cx)?;
    Ok(fields.finish().into_iter().next().unwrap_or_default())
}

fn parse_pieces(word: &str, cx: &mut dyn Context) -> Result<Vec<WordPiece>, ExpandError> {
    if !cx.charge(word.len()) {
        return Err(ExpandError("the line is too complex to check".into()));
    }
    let pieces = brush_parser::word::parse(word, &ParserOptions::default())
        .map_err(|e| ExpandError(format!("cannot parse word {word:?}: {e}")))?;
    Ok(pieces.into_iter().map(|p| p.piece).collect())
}

#[derive(Default)]
struct Fields {
    done: Vec<Field>,
    cur: Field,
    started: bool,
    no_split: bool,
    /// `$IFS` when set: the characters that split unquoted expansions
    /// (unset: space, tab and newline). Empty fields between two
    /// delimiters are dropped, as between whitespace.
    ifs: Option<String>,
}

impl Fields {
    fn literal(&mut self, s: &str, quoted: bool) {
        if !quoted {
            if let Some(i) = s.find(['*', '?', '[']) {
                if self.cur.glob_at.is_none() {
                    self.cur.glob_at = Some(self.cur.text.len() + i);
                }
            }
        }
        self.cur.quoted |= quoted;
        self.cur.text.push_str(s);
        self.started |= quoted || !s.is_empty();
    }

    fn value(&mut self, v: Value, quoted: bool, what: &str, unknowable: bool) {
        let v = match v {
            Some(v) if !v.is_empty() => v,
            _ => {
                self.cur.dynamic = true;
                if unknowable && v.is_none() {
                    if self.cur.unknown.is_none() {
                        self.cur.unknown = Some(what.to_owned());
                    }
                    self.started = true;
                }
                if self.cur.missing_at_root.is_none() && self.cur.text.chars().all(|c| c == '/') {
                    self.cur.missing_at_root = Some(format!("{what} is unset or empty"));
                }
                self.cur.quoted |= quoted;
                self.started |= quoted;
                return;
            }
        };
        if quoted || self.no_split {
            self.literal(&v, true);
            return;
        }
        let ifs = self.ifs.clone();
        let sep = |c: char| match &ifs {
            Some(set) => set.contains(c),
            None => c.is_whitespace(),
        };
        let starts_ws = v.starts_with(sep);
        let ends_ws = v.ends_with(sep);
        if starts_ws {
            self.split();
        }
        for (i, part) in v.split(sep).filter(|p| !p.is_empty()).enumerate() {
            if i > 0 {
                self.split();
            }
            self.literal(part, false);
        }
        if ends_ws {
            self.split();
        }
    }

    fn split(&mut self) {
        if self.started {
            self.done.push(std::mem::take(&mut self.cur));
        }
        self.cur = Field::default();
        self.started = false;
    }

    fn finish(mut self) -> Vec<Field> {
        self.split();
        self.done
    }
}

fn expand_pieces(pieces: &[WordPiece], quoted: bool, f: &mut Fields, cx: &mut dyn Context) -> Result<(), ExpandError> {
    for piece in pieces {
        match piece {
            WordPiece::Text(t) => f.literal(t, quoted),
            WordPiece::SingleQuotedText(t) => f.literal(t, true),
            WordPiece::AnsiCQuotedText(t) => f.literal(&ansi_c(t), true),
            WordPiece::DoubleQuotedSequence(inner) | WordPiece::GettextDoubleQuotedSequence(inner) => {
                let inner: Vec<WordPiece> = inner.iter().map(|p| p.piece.clone()).collect();
                f.literal("", true);
                expand_pieces(&inner, true, f, cx)?;
            }
            WordPiece::EscapeSequence(e) => {
                let c = e.strip_prefix('\\').unwrap_or(e);
                // `\` before a newline is a line continuation: nothing.
                if c != "\n" {
                    f.literal(c, true);
                }
            }
            WordPiece::TildeExpansion(t) => {
                let home = match t {
                    TildeExpr::Home => Some(cx.var("HOME").flatten().unwrap_or_else(|| cx.home().to_owned())),
                    TildeExpr::UserHome(u) if u == "root" => Some("/root".to_owned()),
                    TildeExpr::UserHome(u) => Some(format!("/home/{u}")),
                    TildeExpr::WorkingDir => cx.var("PWD").flatten(),
                    _ => None,
                };
                f.value(home, true, "~", false);
            }
            WordPiece::ParameterExpansion(p) => {
                let (v, what, unknowable) = parameter(p, cx)?;
                f.value(v, quoted, &what, unknowable);
            }
            WordPiece::CommandSubstitution(script) => {
                let v = cx.substitute(script).map(|s| s.trim_end_matches('\n').to_owned());
                f.value(v, quoted, &format!("$({})", clip(script)), true);
            }
            WordPiece::BackquotedCommandSubstitution(script) => {
                let v = cx.substitute(script).map(|s| s.trim_end_matches('\n').to_owned());
                f.value(v, quoted, &format!("`{}`", clip(script)), true);
            }
            WordPiece::ArithmeticExpression(e) => {
                // Arithmetic can hide command substitutions: `$(( $(cmd) ))`.
                scan_substitutions(&e.value, cx)?;
                f.value(None, quoted, "$((...))", false);
            }
        }
    }
    Ok(())
}

fn name_of(p: &Parameter) -> (Option<&str>, String) {
    match p {
        Parameter::Named(n) => (Some(n.as_str()), format!("${n}")),
        Parameter::NamedWithIndex { name, .. } | Parameter::NamedWithAllIndices { name, .. } => (None, format!("${{{name}[...]}}")),
        Parameter::Positional(n) => (None, format!("${n}")),
        Parameter::Special(s) => (None, format!("${s}")),
    }
}

/// A parameter's value, its description, and whether a missing value is
/// unknowable rather than unset.
fn parameter(p: &ParameterExpr, cx: &mut dyn Context) -> Result<(Value, String, bool), ExpandError> {
    let lookup = |param: &Parameter, cx: &mut dyn Context| -> (Option<Value>, String) {
        let (name, what) = name_of(param);
        // Positional parameters are known when the gate's DEBUG trap sent
        // them (as variables named 1, 2, ...).
        if let Parameter::Positional(n) = param {
            return (cx.var(&n.to_string()), what);
        }
        (name.and_then(|n| cx.var(n)), what)
    };
    // Unknowable: assigned something the gate cannot compute, or a
    // positional or special parameter other than the numeric ones.
    let complete = cx.knows_every_variable();
    let unknowable = |param: &Parameter, v: &Option<Value>| match (param, v) {
        (_, Some(None)) => true,
        (Parameter::Named(_), Some(_)) => false,
        (Parameter::Named(_), None) => !complete,
        (Parameter::Special(s), _) => !matches!(
            s,
            SpecialParameter::ProcessId | SpecialParameter::LastExitStatus | SpecialParameter::PositionalParameterCount | SpecialParameter::LastBackgroundProcessId
        ),
        _ => true,
    };
    let word_value = |raw: &Option<String>, cx: &mut dyn Context| -> Result<(Value, bool), ExpandError> {
        match raw {
            None => Ok((Some(String::new()), false)),
            Some(raw) => {
                let f = expand_joined(raw, cx)?;
                let unknown = f.unknown.is_some();
                Ok((if f.dynamic { None } else { Some(f.text) }, unknown))
            }
        }
    };
    Ok(match p {
        ParameterExpr::Parameter { parameter, indirect: false } => {
            let (v, what) = lookup(parameter, cx);
            let u = unknowable(parameter, &v);
            (v.flatten(), what, u)
        }
        ParameterExpr::UseDefaultValues { parameter, indirect: false, test_type, default_value }
        | ParameterExpr::AssignDefaultValues { parameter, indirect: false, test_type, default_value } => {
            let (v, what) = lookup(parameter, cx);
            let u = unknowable(parameter, &v);
            let use_default = match (&v, test_type) {
                (None, _) => true,
                (Some(Some(s)), ParameterTestType::UnsetOrNull) => s.is_empty(),
                (Some(None), _) => return Ok((None, what, true)),
                (Some(Some(_)), ParameterTestType::Unset) => false,
            };
            if use_default {
                let (d, du) = word_value(default_value, cx)?;
                (d, what, u || du)
            } else {
                (v.flatten(), what, u)
            }
        }
        ParameterExpr::UseAlternativeValue { parameter, indirect: false, test_type, alternative_value } => {
            let (v, what) = lookup(parameter, cx);
            let u = unknowable(parameter, &v);
            let set = match (&v, test_type) {
                (None, _) => false,
                (Some(None), _) => return Ok((None, what, true)),
                (Some(Some(s)), ParameterTestType::UnsetOrNull) => !s.is_empty(),
                (Some(Some(_)), ParameterTestType::Unset) => true,
            };
            if set {
                let (a, au) = word_value(alternative_value, cx)?;
                (a, what, u || au)
            } else {
                (Some(String::new()), what, u)
            }
        }
        ParameterExpr::IndicateErrorIfNullOrUnset { parameter, indirect: false, .. } => {
            // `${DIR:?}`: bash refuses to run the command when DIR is unset
            // or empty, so a missing value here is not dangerous. Expand to
            // a placeholder that no rule takes for a system path.
            let (v, what) = lookup(parameter, cx);
            let u = unknowable(parameter, &v);
            match v.flatten() {
                Some(s) if !s.is_empty() => (Some(s), what, false),
                _ => (Some(format!("<{what}:?>")), what, u),
            }
        }
        // Indirection, lengths, substrings, pattern removal, case changes:
        // computable in principle, but a rule should not depend on it.
        // Treat the result as unknown, which is the cautious reading.
        other => (None, format!("${{{}}}", short(other)), true),
    })
}

/// Shell code, shortened for a message.
pub fn clip(s: &str) -> String {
    let s = s.trim();
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn short(p: &ParameterExpr) -> String {
    let s = format!("{p:?}");
    s.chars().take(40).collect()
}

/// Checks every command substitution in `text` (arithmetic, `[[ ]]` tests,
/// case words): they run, so the gate must see them, but their values do
/// not become arguments.
pub fn scan_substitutions(text: &str, cx: &mut dyn Context) -> Result<(), ExpandError> {
    if !text.contains("$(") && !text.contains('`') {
        return Ok(());
    }
    let pieces = parse_pieces(text, cx)?;
    scan_pieces(&pieces, cx);
    Ok(())
}

fn scan_pieces(pieces: &[WordPiece], cx: &mut dyn Context) {
    for piece in pieces {
        match piece {
            WordPiece::CommandSubstitution(s) | WordPiece::BackquotedCommandSubstitution(s) => {
                cx.substitute(s);
            }
            WordPiece::DoubleQuotedSequence(inner) | WordPiece::GettextDoubleQuotedSequence(inner) => {
                let inner: Vec<WordPiece> = inner.iter().map(|p| p.piece.clone()).collect();
                scan_pieces(&inner, cx);
            }
            WordPiece::ArithmeticExpression(e) => {
                let _ = scan_substitutions(&e.value, cx);
            }
            _ => {}
        }
    }
}

/// Brace expansion (`/{etc,usr}`, `{1..3}`), bounded by [`MAX_BRACE_WORDS`].
/// Quoted braces are not expanded; brush-parser's brace parser knows quotes.
fn braces(raw: &str) -> Result<Vec<String>, ExpandError> {
    if !raw.contains('{') {
        return Ok(vec![raw.to_owned()]);
    }
    // brush-parser's brace parser backtracks: each unmatched `{` multiplies
    // its time by about 2.6 (16 of them took 0.8 s, 100 would never end),
    // and a typed line must not stall the gate. Real brace expansions have
    // a few; more is refused as uncheckable.
    // brush-parser panics on a sequence bound that does not fit an i64
    // (`{99999999999999999999..1}`; `{5555…5e~` found by the policy fuzz
    // target): it reads the number after `{` or `..` before it knows
    // whether this is a sequence.
    if huge_sequence_bound(raw) {
        return Err(ExpandError(format!("{raw:?} has a brace sequence bound of 19 digits or more, too large to check")));
    }
    if unquoted_braces(raw) > MAX_BRACES {
        return Err(ExpandError(format!("{raw:?} has more than {MAX_BRACES} braces to expand, too many to check")));
    }
    let parsed = brush_parser::word::parse_brace_expansions(raw, &ParserOptions::default())
        .map_err(|e| ExpandError(format!("cannot parse braces in {raw:?}: {e}")))?;
    let Some(parts) = parsed else {
        return Ok(vec![raw.to_owned()]);
    };
    let mut words = vec![String::new()];
    expand_brace_parts(&parts, &mut words)?;
    Ok(words)
}

/// A run of 19 or more digits right after `{` or `..` (a sign between
/// allowed): what brush-parser would read as a sequence bound.
fn huge_sequence_bound(raw: &str) -> bool {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let after = if b.get(i) == Some(&b'{') {
            i + 1
        } else if b.get(i..i + 2) == Some(b"..") {
            i + 2
        } else {
            i += 1;
            continue;
        };
        let start = if matches!(b.get(after), Some(b'-' | b'+')) { after + 1 } else { after };
        let digits = b.get(start..).unwrap_or_default().iter().take_while(|c| c.is_ascii_digit()).count();
        if digits >= 19 {
            return true;
        }
        i = after;
    }
    false
}

/// Opening braces outside quotes that are not a parameter's (`${`): the
/// ones brace expansion looks at.
fn unquoted_braces(raw: &str) -> usize {
    let (mut count, mut quote, mut escaped, mut prev) = (0, None, false, ' ');
    for c in raw.chars() {
        match (quote, c) {
            _ if escaped => escaped = false,
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => escaped = true,
            (Some('"'), '"') => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '{') if prev != '$' => count += 1,
            _ => {}
        }
        prev = c;
    }
    count
}

fn expand_brace_parts(parts: &[BraceExpressionOrText], words: &mut Vec<String>) -> Result<(), ExpandError> {
    for part in parts {
        let alternatives: Vec<String> = match part {
            BraceExpressionOrText::Text(t) => vec![t.clone()],
            BraceExpressionOrText::Expr(members) => {
                let mut alts = Vec::new();
                for m in members {
                    match m {
                        BraceExpressionMember::Child(children) => {
                            let mut sub = vec![String::new()];
                            expand_brace_parts(children, &mut sub)?;
                            alts.extend(sub);
                        }
                        BraceExpressionMember::NumberSequence { start, end, increment } => {
                            let step = increment.unsigned_abs().max(1);
                            let count = start.abs_diff(*end) / step + 1;
                            if count > MAX_BRACE_WORDS as u64 {
                                return Err(ExpandError(format!("brace expansion {{{start}..{end}}} is too large to check")));
                            }
                            let mut i = *start;
                            for _ in 0..count {
                                alts.push(i.to_string());
                                i = if start <= end { i.saturating_add(step as i64) } else { i.saturating_sub(step as i64) };
                            }
                        }
                        BraceExpressionMember::CharSequence { start, end, increment } => {
                            let (a, b) = (u32::from(*start), u32::from(*end));
                            let step = u32::try_from(increment.unsigned_abs()).unwrap_or(1).max(1);
                            let (lo, hi) = (a.min(b), a.max(b));
                            for c in (lo..=hi).step_by(step as usize).filter_map(char::from_u32) {
                                alts.push(c.to_string());
                            }
                        }
                    }
                }
                alts
            }
        };
        let mut next = Vec::with_capacity(words.len() * alternatives.len().max(1));
        for w in words.iter() {
            for a in &alternatives {
                next.push(format!("{w}{a}"));
            }
        }
        if next.len() > MAX_BRACE_WORDS {
            return Err(ExpandError("brace expansion is too large to check".into()));
        }
        *words = next;
    }
    Ok(())
}

/// Decodes `$'...'` escapes as bash does (the common ones; an unknown escape
/// keeps its backslash, as bash does).
pub fn ansi_c(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push('\\');
            break;
        };
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'e' | 'E' => out.push('\x1b'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            '\\' | '\'' | '"' | '?' => out.push(e),
            'x' | 'u' | 'U' => {
                let max = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut n = 0u32;
                let mut digits = 0;
                while digits < max {
                    match chars.peek().and_then(|c| c.to_digit(16)) {
                        Some(d) => {
                            n = n * 16 + d;
                            digits += 1;
                            chars.next();
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    out.push('\\');
                    out.push(e);
                } else if let Some(c) = char::from_u32(n) {
                    out.push(c);
                }
            }
            '0'..='7' => {
                let mut n = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            n = n * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                if let Some(c) = char::from_u32(n) {
                    out.push(c);
                }
            }
            'c' => {
                if let Some(x) = chars.next() {
                    if let Some(c) = char::from_u32(u32::from(x) & 0x1f) {
                        out.push(c);
                    }
                }
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

/// Variables as a shell's scope holds them.
pub type Vars = BTreeMap<String, Value>;

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    struct Fixed(Vars);
    impl Context for Fixed {
        fn var(&self, name: &str) -> Option<Value> {
            self.0.get(name).cloned()
        }
        fn home(&self) -> &str {
            "/home/alice"
        }
        fn substitute(&mut self, script: &str) -> Value {
            script.strip_prefix("echo ").map(str::to_owned)
        }
        fn charge(&mut self, _: usize) -> bool {
            true
        }
    }

    fn fields(raw: &str) -> Vec<String> {
        let mut cx = Fixed(
            [("D", Some("/srv/app")), ("EMPTY", Some("")), ("SPLIT", Some("-r -f")), ("COMMAS", Some("a,b")), ("UNKNOWN", None)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.map(str::to_owned)))
                .collect(),
        );
        expand_word(raw, &mut cx).unwrap().into_iter().map(|f| f.text).collect()
    }

    #[rstest]
    #[case("rm", &["rm"])]
    #[case("'r'm", &["rm"])]
    #[case("\"rm\"", &["rm"])]
    #[case("\\rm", &["rm"])]
    #[case("r\"\"m", &["rm"])]
    #[case("$'\\x72m'", &["rm"])]
    #[case("$'\\162m'", &["rm"])]
    #[case("~", &["/home/alice"])]
    #[case("~/x", &["/home/alice/x"])]
    #[case("~root", &["/root"])]
    #[case("$D/x", &["/srv/app/x"])]
    #[case("${D}/x", &["/srv/app/x"])]
    #[case("\"$UNSET\"/", &["/"])]
    #[case("$UNSET", &[])]
    #[case("\"$UNSET\"", &[""])]
    #[case("${UNSET:-/tmp}", &["/tmp"])]
    #[case("${EMPTY:-/tmp}", &["/tmp"])]
    #[case("${EMPTY-/tmp}", &[])]
    #[case("$SPLIT", &["-r", "-f"])]
    #[case("\"$SPLIT\"", &["-r -f"])]
    #[case("$COMMAS", &["a,b"])]
    #[case("/{etc,usr}", &["/etc", "/usr"])]
    #[case("'{a,b}'", &["{a,b}"])]
    #[case("x{1..3}", &["x1", "x2", "x3"])]
    #[case("$(echo /)", &["/"])]
    #[case("`echo /etc`", &["/etc"])]
    #[case("\"a b\"", &["a b"])]
    fn expands_like_bash(#[case] raw: &str, #[case] expected: &[&str]) {
        assert_eq!(fields(raw), expected);
    }

    #[rstest]
    #[case("\"$DIR\"/", true)]
    #[case("\"$DIR/etc\"", true)]
    #[case("/$DIR", true)]
    #[case("$UNKNOWN/x", true)]
    #[case("\"$DIR\"", false)]
    #[case("/tmp/$DIR", false)]
    #[case("${DIR:?}/", false)]
    #[case("$D/", false)]
    fn missing_values_at_the_root_are_unsafe(#[case] raw: &str, #[case] expected: bool) {
        let mut cx = Fixed([("D".to_owned(), Some("/srv".to_owned())), ("UNKNOWN".to_owned(), None)].into_iter().collect());
        let f = expand_word(raw, &mut cx).unwrap();
        assert_eq!(f.iter().any(|f| f.unsafe_reason().is_some()), expected, "{f:?}");
    }

    #[test]
    fn ifs_decides_where_expansions_split() {
        let vars = |ifs: Option<&str>| -> Vars {
            let mut v: Vars = [("X".to_owned(), Some("rm,-rf,/".to_owned())), ("Y".to_owned(), Some("a b".to_owned()))].into_iter().collect();
            if let Some(i) = ifs {
                v.insert("IFS".to_owned(), Some(i.to_owned()));
            }
            v
        };
        let split = |ifs: Option<&str>, raw: &str| -> Vec<String> { expand_word(raw, &mut Fixed(vars(ifs))).unwrap().into_iter().map(|f| f.text).collect() };
        assert_eq!(split(Some(","), "$X"), ["rm", "-rf", "/"]);
        assert_eq!(split(Some(","), "$Y"), ["a b"]);
        assert_eq!(split(Some(","), "\"$X\""), ["rm,-rf,/"]);
        assert_eq!(split(None, "$X"), ["rm,-rf,/"]);
        assert_eq!(split(Some(""), "$Y"), ["a b"]);
    }

    #[test]
    fn huge_brace_expansions_are_refused_not_expanded() {
        let mut cx = Fixed(Vars::new());
        assert!(expand_word("{1..1000000}", &mut cx).is_err());
        assert!(expand_word("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}", &mut cx).is_err());
    }

    /// Found by fuzzing: 100 unmatched `{` made the brace parser backtrack
    /// for ever, and the gate with it.
    #[test]
    fn a_word_of_many_braces_is_refused_at_once_and_quoted_ones_are_not_counted() {
        let mut cx = Fixed(Vars::new());
        let err = expand_word(&format!("app{}", "{".repeat(100)), &mut cx).unwrap_err();
        assert!(err.0.contains("too many to check"), "{err:?}");
        assert_eq!(unquoted_braces("'{{{{'\"{{{{\"\\{${a}{b,c}"), 1);
        // An awk program's braces are quoted: not brace expansion.
        let awk = "'BEGIN{a=1}{b=2}{c=3}{d=4}{e=5}{f=6}{g=7}{h=8}{i=9}END{print}'";
        assert_eq!(expand_word(awk, &mut cx).unwrap().len(), 1);
        assert_eq!(expand_word("/{etc,usr}", &mut cx).unwrap().len(), 2);
    }
}
