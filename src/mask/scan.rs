//! What the dispatcher (`detect.rs`) and the recognisers (`tokens.rs`,
//! `digits.rs`, `assign.rs`, `blocks.rs`, `pending.rs`) share: the [`Hit`]
//! a recogniser reports, the [`Trigger`] words of the one prefilter pass
//! ([`Prefilter`]), the set of detectors that are switched on
//! ([`Enabled`]), and the byte-level helpers every recogniser reads lines
//! with.
//!
//! It exists so the dependencies run one way: the dispatcher calls the
//! recognisers, and both import this module; no recogniser imports the
//! dispatcher. Nothing here allocates per line except
//! [`Prefilter::keywords`].

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::config::DetectorId;
use super::connection::{self, Conn};
use super::labelled::{self, Vendor};
use super::{formats, options};

/// What found a span, before it becomes a [`Finding`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Builtin(DetectorId),
    Custom(usize),
}

impl Source {
    /// Lower wins when two detectors report the same span: the more specific
    /// name is the more useful one in `--explain`.
    pub(crate) fn rank(self) -> u8 {
        match self {
            Source::Builtin(DetectorId::Assignment) => 3,
            Source::Builtin(DetectorId::K8sSecretData | DetectorId::PemPrivateKey) => 2,
            Source::Builtin(DetectorId::Email) => 4,
            Source::Builtin(_) => 0,
            Source::Custom(_) => 1,
        }
    }
}

/// A span on the line being scanned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hit {
    pub range: Range<usize>,
    pub source: Source,
}

/// What a trigger word found by the prefilter sends the line to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// A word that may be part of a secret-named key (`password`, `token`).
    Keyword,
    AwsKeyId,
    GithubClassic,
    GithubPat,
    Slack,
    SlackHook,
    Stripe,
    Google,
    Jwt,
    Url,
    PemBegin,
    /// A short label glued to its operator (`pw=`, `pin:`): a keyword
    /// whose hit is the label without the operator's byte.
    ShortLabel,
    /// A row of `formats::FORMATS`.
    Format(u8),
    /// A tool of `options::TOOLS`.
    Tool(u8),
    Conn(Conn),
    Vendor(Vendor),
    /// `-us`, the data-centre suffix of a Mailchimp key.
    MailchimpDc,
    /// `:AA`, the middle of a Telegram bot token.
    Telegram,
}

/// Trigger words, matched ASCII case-insensitively (the recognisers check
/// case where it matters). Keywords are short stems so one hit covers
/// `PASSWORD`, `db_pass`, `x-api-key`, `client_secret` and so on.
const TRIGGERS: &[(&str, Trigger)] = &[
    ("pass", Trigger::Keyword),
    ("pwd", Trigger::Keyword),
    ("secret", Trigger::Keyword),
    ("token", Trigger::Keyword),
    ("key", Trigger::Keyword),
    ("auth", Trigger::Keyword),
    ("credential", Trigger::Keyword),
    ("akia", Trigger::AwsKeyId),
    ("asia", Trigger::AwsKeyId),
    ("ghp_", Trigger::GithubClassic),
    ("gho_", Trigger::GithubClassic),
    ("ghu_", Trigger::GithubClassic),
    ("ghs_", Trigger::GithubClassic),
    ("ghr_", Trigger::GithubClassic),
    ("github_pat_", Trigger::GithubPat),
    ("xox", Trigger::Slack),
    ("hooks.slack.com/services/", Trigger::SlackHook),
    ("sk_live_", Trigger::Stripe),
    ("sk_test_", Trigger::Stripe),
    ("rk_live_", Trigger::Stripe),
    ("rk_test_", Trigger::Stripe),
    ("aiza", Trigger::Google),
    ("eyj", Trigger::Jwt),
    ("://", Trigger::Url),
    ("-----begin ", Trigger::PemBegin),
    ("pw=", Trigger::ShortLabel),
    ("pw:", Trigger::ShortLabel),
    ("pw\"", Trigger::ShortLabel),
    ("pw ", Trigger::ShortLabel),
    ("pin=", Trigger::ShortLabel),
    ("pin:", Trigger::ShortLabel),
    ("pin\"", Trigger::ShortLabel),
    ("pin ", Trigger::ShortLabel),
    ("-us", Trigger::MailchimpDc),
    (":aa", Trigger::Telegram),
];

/// Every trigger word: [`TRIGGERS`] first (a keyword wins over a longer
/// word starting at the same place only if listed earlier), then the rows
/// of the tables that live with their recognisers.
fn all_triggers() -> Vec<(&'static str, Trigger)> {
    let mut all = TRIGGERS.to_vec();
    all.extend(formats::FORMATS.iter().zip(0u8..).map(|(f, i)| (f.prefix, Trigger::Format(i))));
    all.extend(options::TOOLS.iter().zip(0u8..).map(|(t, i)| (t.name, Trigger::Tool(i))));
    all.extend(connection::TRIGGERS.iter().map(|&(w, c)| (w, Trigger::Conn(c))));
    all.extend(labelled::VENDORS.iter().map(|&(w, v)| (w, Trigger::Vendor(v))));
    all
}

/// Which built-in detectors are on: one bit per [`DetectorId`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Enabled(u32);

impl Enabled {
    const fn bit(id: DetectorId) -> u32 {
        1 << (id as u32)
    }

    /// `id` switched on as well.
    pub(crate) fn with(self, id: DetectorId) -> Self {
        Self(self.0 | Self::bit(id))
    }

    /// Whether a built-in detector is on.
    pub(crate) fn is_enabled(self, id: DetectorId) -> bool {
        self.0 & Self::bit(id) != 0
    }

    /// No built-in detector is on.
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The prefilter: one Aho-Corasick pass over [`TRIGGERS`], which decides
/// which recognisers a line goes to at all.
#[derive(Clone, Debug)]
pub(crate) struct Prefilter {
    triggers: AhoCorasick,
    /// What each pattern of `triggers` is, by pattern index.
    kinds: Vec<Trigger>,
}

impl Prefilter {
    pub(crate) fn new() -> Result<Self, aho_corasick::BuildError> {
        let all = all_triggers();
        // A DFA: with over a hundred case-insensitive words the packed
        // (SIMD) search no longer applies, and the DFA's one table lookup
        // per byte is the fastest of the rest (measured: benches/mask.rs).
        let triggers = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(all.iter().map(|(p, _)| p))?;
        Ok(Self { triggers, kinds: all.into_iter().map(|(_, t)| t).collect() })
    }

    /// The trigger words on `line`, left to right: where, and what each sends
    /// the line to.
    pub(crate) fn find_iter<'a>(&'a self, line: &'a str) -> impl Iterator<Item = (Range<usize>, Trigger)> + 'a {
        self.triggers
            .find_iter(line)
            .filter_map(|m| self.kinds.get(m.pattern().as_usize()).map(|&trigger| (m.range(), trigger)))
    }

    /// The keyword hits among a line's `triggers`, for the pending check.
    pub(crate) fn keywords(triggers: &[(Range<usize>, Trigger)]) -> Vec<Range<usize>> {
        triggers
            .iter()
            .filter_map(|(range, t)| match t {
                Trigger::Keyword => Some(range.clone()),
                Trigger::ShortLabel => Some(range.start..range.end - 1),
                _ => None,
            })
            .collect()
    }
}

/// Whether `hay` contains `needle_lower` (already lowercase), ignoring ASCII case.
pub(crate) fn contains_ci(hay: &[u8], needle_lower: &[u8]) -> bool {
    if needle_lower.is_empty() {
        return true;
    }
    hay.windows(needle_lower.len()).any(|w| w.eq_ignore_ascii_case(needle_lower))
}

/// ASCII letters, digits and underscore.
pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Byte at `i`, or 0 outside the slice: lets boundary checks read past
/// either end without indexing.
pub(crate) fn at(bytes: &[u8], i: usize) -> u8 {
    bytes.get(i).copied().unwrap_or(0)
}

/// Byte before `i`, or 0 at the start.
pub(crate) fn before(bytes: &[u8], i: usize) -> u8 {
    i.checked_sub(1).map_or(0, |j| at(bytes, j))
}

/// End of the run starting at `from` of bytes satisfying `f`.
pub(crate) fn run_end(bytes: &[u8], from: usize, f: impl Fn(u8) -> bool) -> usize {
    bytes.get(from..).map_or(from, |rest| from + rest.iter().take_while(|b| f(**b)).count())
}

/// Start of the run ending at `to` (exclusive) of bytes satisfying `f`.
pub(crate) fn run_start(bytes: &[u8], to: usize, f: impl Fn(u8) -> bool) -> usize {
    bytes.get(..to).map_or(to, |head| to - head.iter().rev().take_while(|b| f(**b)).count())
}

/// `range` with ASCII whitespace trimmed from both ends.
pub(crate) fn trim_range(bytes: &[u8], range: Range<usize>) -> Range<usize> {
    let mut s = range.start;
    let mut e = range.end.min(bytes.len());
    while s < e && at(bytes, s).is_ascii_whitespace() {
        s += 1;
    }
    while e > s && at(bytes, e - 1).is_ascii_whitespace() {
        e -= 1;
    }
    s..e
}
