//! [`Detectors`]: the compiled detector set and the scan loop.
//!
//! Each line goes through, in order:
//!
//! 1. the multi-line recognisers in `blocks.rs`, which read and update the
//!    [`Context`] (PEM body lines, Kubernetes Secret data, table columns);
//! 2. one Aho-Corasick pass over trigger words, whose hits send the line to
//!    the token recognisers (`tokens.rs`) and the assignment parser
//!    (`assign.rs`);
//! 3. the digit recognisers (`digits.rs`), only if the line has enough
//!    digits to hold a card number, SSN or IBAN;
//! 4. custom rules, each behind its context word if it has one.
//!
//! Findings on one line may overlap (a token that is also the value of a
//! `TOKEN=` assignment); the caller masks their union. Exact duplicates are
//! dropped, keeping the most specific detector's name.

use std::ops::Range;
use std::sync::Arc;

use super::config::{check_rule, Checksum, DetectorId, Group, MaskingConfig};
use super::scan::{contains_ci, Enabled, Hit, Prefilter, Source, Trigger};
use super::labelled::{self, Vendor};
use super::{assign, blocks, checksum, connection, digits, formats, options, pending, tokens, MaskError};

pub use super::blocks::Context;

/// One secret: where it is and which detector found it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Finding {
    /// Index into the `lines` given to [`Detectors::scan`].
    pub line: usize,
    /// Byte range within that line: non-empty, on char boundaries.
    pub range: Range<usize>,
    /// A built-in's snake_case name or a custom rule's configured name.
    pub detector: Arc<str>,
}

/// A custom rule, compiled.
#[derive(Clone, Debug)]
struct Rule {
    regex: regex::Regex,
    checksum: Option<Checksum>,
    /// Lowercased context word.
    context: Option<Vec<u8>>,
    group: Option<Group>,
}

/// Lines on which no single-line recogniser fires: no prefilter trigger, no
/// digits that could be a number, no e-mail, no custom rule. Such a line
/// gives the same (empty) answer and leaves the context alone every time, so
/// it need not be scanned again. Whole lines are kept, not hashes: a hash
/// collision would mean a secret left unmasked.
#[derive(Debug, Default)]
pub struct Memo {
    inert: std::collections::HashSet<Box<str>>,
}

impl Memo {
    /// Lines remembered at most; past it the memo starts over.
    const MAX_LINES: usize = 4096;

    fn remember(&mut self, line: &str) {
        if self.inert.len() >= Self::MAX_LINES {
            self.inert.clear();
        }
        self.inert.insert(line.into());
    }
}

/// The enabled detectors, compiled once from a [`MaskingConfig`]. A clone
/// shares the compiled automata (they are reference-counted), so a second
/// screen (the approvals pane) gets the same detectors without compiling
/// them again.
#[derive(Clone, Debug)]
pub struct Detectors {
    enabled: Enabled,
    prefilter: Prefilter,
    rules: Vec<Rule>,
    email: Option<regex::Regex>,
    names: Vec<Arc<str>>,
    custom_names: Vec<Arc<str>>,
}

impl Detectors {
    /// Compiles `config`. With `enabled = false` nothing is ever found.
    pub fn new(config: &MaskingConfig) -> Result<Self, MaskError> {
        let mut enabled = Enabled::default();
        if config.enabled {
            for id in &config.detectors {
                if *id != DetectorId::Email || config.email {
                    enabled = enabled.with(*id);
                }
            }
            if config.email {
                enabled = enabled.with(DetectorId::Email);
            }
        }
        let prefilter = Prefilter::new().map_err(|e| MaskError::Prefilter(e.to_string()))?;
        let mut rules = Vec::new();
        let mut custom_names = Vec::new();
        if config.enabled {
            for rule in &config.custom {
                let regex =
                    check_rule(rule).map_err(|reason| MaskError::Rule { rule: rule.name.clone(), reason })?;
                rules.push(Rule {
                    regex,
                    checksum: rule.checksum,
                    context: rule.context.as_ref().map(|c| c.trim().to_ascii_lowercase().into_bytes()),
                    group: rule.group.clone(),
                });
                custom_names.push(Arc::from(rule.name.as_str()));
            }
        }
        let email = if enabled.is_enabled(DetectorId::Email) {
            let re = regex::Regex::new(
                r"(?i)\b[a-z0-9][a-z0-9._%+-]*@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,24}\b",
            )
            .map_err(|e| MaskError::Rule { rule: "email".into(), reason: e.to_string() })?;
            Some(re)
        } else {
            None
        };
        Ok(Self {
            enabled,
            prefilter,
            rules,
            email,
            names: DetectorId::ALL.iter().map(|d| Arc::from(d.name())).collect(),
            custom_names,
        })
    }

    /// Whether a built-in detector is on.
    pub fn is_enabled(&self, id: DetectorId) -> bool {
        self.enabled.is_enabled(id)
    }

    /// Scans a screen's worth of logical lines, top to bottom, with no
    /// context from before the first line. Context flows from earlier lines
    /// to later ones (PEM blocks, Kubernetes Secret data, table columns), and
    /// may look ahead within `lines` (kubectl prints `data:` before
    /// `kind: Secret`). Findings are sorted by line, then start.
    pub fn scan(&self, lines: &[&str]) -> Vec<Finding> {
        self.scan_from(&mut Context::default(), lines)
    }

    /// Like [`Detectors::scan`], but starting from what earlier lines said,
    /// and leaving `context` as it stands after the last line. A caller that
    /// scans rows as they scroll off keeps one `Context` for them, and scans
    /// each frame of the visible screen from a clone of it.
    pub fn scan_from(&self, context: &mut Context, lines: &[&str]) -> Vec<Finding> {
        self.scan_lines(context, lines, None)
    }

    /// Like [`Detectors::scan_from`], remembering in `memo` the lines on
    /// which no single-line recogniser fired, and skipping them next time.
    /// For the visible screen, which is scanned again every frame although
    /// most of its lines have not changed; not for rows scrolling off, which
    /// are each seen once.
    pub fn scan_from_memo(&self, context: &mut Context, lines: &[&str], memo: &mut Memo) -> Vec<Finding> {
        self.scan_lines(context, lines, Some(memo))
    }

    fn scan_lines(&self, context: &mut Context, lines: &[&str], mut memo: Option<&mut Memo>) -> Vec<Finding> {
        let mut findings = Vec::new();
        if self.enabled.is_empty() && self.rules.is_empty() {
            return findings;
        }
        let mut hits = Vec::new();
        for (index, line) in lines.iter().enumerate() {
            // A row padded to the screen's width ends in blanks that hold
            // nothing to find, and every recogniser would walk them. The
            // hits' offsets are the same in the line and in its trimmed
            // prefix.
            let line = &line.trim_end_matches(' ');
            hits.clear();
            let whole_line_masked = blocks::before_line(self.enabled, context, lines, index, line, &mut hits);
            if !whole_line_masked {
                let known_inert = memo.as_ref().is_some_and(|m| m.inert.contains(*line));
                if !known_inert {
                    let before = hits.len();
                    let triggered = self.scan_line(context, line, &mut hits);
                    if let Some(m) = memo.as_deref_mut() {
                        if !triggered && hits.len() == before {
                            m.remember(line);
                        }
                    }
                }
            }
            self.collect(index, line, &mut hits, &mut findings);
        }
        findings
    }

    /// The single-line recognisers.
    /// Returns whether any prefilter trigger matched (only then can the
    /// line have changed `context`).
    fn scan_line(&self, context: &mut Context, line: &str, hits: &mut Vec<Hit>) -> bool {
        let bytes = line.as_bytes();
        if bytes.len() < 4 {
            return false;
        }
        let mut keyword_hits: Vec<Range<usize>> = Vec::new();
        let mut aws_key_id = false;
        let mut triggered = false;
        let mut vendors: Vec<Vendor> = Vec::new();
        let from = hits.len();
        for (range, trigger) in self.prefilter.find_iter(line) {
            triggered = true;
            match trigger {
                Trigger::Keyword => {
                    labelled::after_keyword(line, range.clone(), hits);
                    keyword_hits.push(range);
                }
                Trigger::ShortLabel => keyword_hits.push(range.start..range.end - 1),
                Trigger::Format(i) => {
                    formats::recognise(usize::from(i), line, range.start, hits);
                }
                Trigger::Tool(i) => options::recognise(usize::from(i), line, range.start, hits),
                Trigger::Conn(kind) => connection::recognise(kind, line, range, hits),
                Trigger::Vendor(v) if !vendors.contains(&v) => vendors.push(v),
                Trigger::Vendor(_) => {}
                Trigger::MailchimpDc => labelled::mailchimp(line, range.start, hits),
                Trigger::Telegram => labelled::telegram(line, range.start, hits),
                Trigger::PemBegin => {
                    if self.is_enabled(DetectorId::PemPrivateKey) {
                        blocks::pem_begin(context, line, range.start, hits);
                    }
                }
                Trigger::AwsKeyId => {
                    aws_key_id |= tokens::aws_key_id(bytes, range.start).is_some();
                    tokens::recognise(self.enabled, Trigger::AwsKeyId, line, range.start, hits);
                }
                other => tokens::recognise(self.enabled, other, line, range.start, hits),
            }
        }
        for v in vendors {
            labelled::on_vendor_line(v, line, hits);
        }
        // The table-driven recognisers above push whatever they find; a
        // detector switched off in the config drops its hits here.
        let enabled = self.enabled;
        let mut i = from;
        while i < hits.len() {
            match hits.get(i).map(|h| h.source) {
                Some(Source::Builtin(id)) if !enabled.is_enabled(id) => {
                    hits.swap_remove(i);
                }
                _ => i += 1,
            }
        }
        if !keyword_hits.is_empty() {
            if self.is_enabled(DetectorId::Assignment) || self.is_enabled(DetectorId::AwsSecretAccessKey) {
                assign::assignments(self.enabled, line, &keyword_hits, hits);
            }
            if self.is_enabled(DetectorId::Assignment) {
                blocks::table_header(context, line);
            }
            // `"kind":"Secret"` contains the stem "secret".
            if self.is_enabled(DetectorId::K8sSecretData) {
                blocks::inline_json_secret(line, hits);
            }
        }
        if aws_key_id && self.is_enabled(DetectorId::AwsSecretAccessKey) {
            tokens::aws_secret_beside_key_id(line, hits);
        }
        digits::recognise(self.enabled, line, hits);
        if let Some(re) = &self.email {
            if bytes.contains(&b'@') {
                for m in re.find_iter(line) {
                    hits.push(Hit { range: m.range(), source: Source::Builtin(DetectorId::Email) });
                }
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            apply_rule(rule, i, line, hits);
        }
        triggered
    }

    /// Turns a line's hits into findings: on char boundaries, non-empty,
    /// sorted, exact duplicates dropped (most specific name kept).
    fn collect(&self, index: usize, line: &str, hits: &mut [Hit], findings: &mut Vec<Finding>) {
        hits.sort_by_key(|h| (h.range.start, h.range.end, h.source.rank()));
        let mut last: Option<Range<usize>> = None;
        for hit in hits.iter() {
            let r = &hit.range;
            if r.start >= r.end
                || r.end > line.len()
                || !line.is_char_boundary(r.start)
                || !line.is_char_boundary(r.end)
                || last.as_ref() == Some(r)
            {
                continue;
            }
            last = Some(r.clone());
            findings.push(Finding { line: index, range: r.clone(), detector: self.name(hit.source) });
        }
    }

    fn name(&self, source: Source) -> Arc<str> {
        let found = match source {
            Source::Builtin(id) => self.names.get(id as usize),
            Source::Custom(i) => self.custom_names.get(i),
        };
        found.cloned().unwrap_or_else(|| Arc::from("unknown"))
    }

    /// For the hold-back window: the byte offset in `line` (the line still
    /// being written, normally the cursor line) from which its tail could
    /// still grow into something a detector would mask, or `None` if nothing
    /// at its end could. Never returns an offset that would hold back an
    /// empty tail. Custom rules are not consulted: a regex cannot cheaply say
    /// whether a string is a prefix of a match.
    pub fn pending_prefix(&self, line: &str) -> Option<usize> {
        if self.enabled.is_empty() {
            return None;
        }
        pending::pending_prefix(self.enabled, &self.prefilter, line).filter(|&at| at < line.len() && line.is_char_boundary(at))
    }
}

fn apply_rule(rule: &Rule, index: usize, line: &str, hits: &mut Vec<Hit>) {
    if let Some(ctx) = &rule.context {
        if !contains_ci(line.as_bytes(), ctx) {
            return;
        }
    }
    let mut push = |range: Range<usize>| {
        let text = line.get(range.clone()).unwrap_or("");
        let ok = match rule.checksum {
            None => true,
            Some(Checksum::Luhn) => {
                checksum::luhn(&text.chars().filter(|c| *c != ' ' && *c != '-').collect::<String>())
            }
            Some(Checksum::Mod97) => checksum::mod97(&text.chars().filter(|c| *c != ' ').collect::<String>()),
        };
        if ok {
            hits.push(Hit { range, source: Source::Custom(index) });
        }
    };
    match &rule.group {
        None => rule.regex.find_iter(line).for_each(|m| push(m.range())),
        Some(group) => {
            for caps in rule.regex.captures_iter(line) {
                let m = match group {
                    Group::Index(n) => caps.get(*n),
                    Group::Name(name) => caps.name(name),
                };
                if let Some(m) = m {
                    push(m.range());
                }
            }
        }
    }
}
