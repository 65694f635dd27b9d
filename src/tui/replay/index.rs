//! The seek index of a recording: keyframes, and the text that was on screen.
//!
//! Both come from one pass of the emulator over the whole recording
//! ([`Builder`]), which costs what the emulator costs (about 20 ms per MB,
//! see `docs/benchmarks.md`), so it is done once, on first open, and cached
//! ([`Index::load`] / [`Index::save`]).
//!
//! **Keyframes.** Every [`KEYFRAME_BYTES`] of output (or [`KEYFRAME_SECS`]
//! of time), the screen is snapshotted as the bytes that redraw it on a
//! fresh terminal: the renderer's frame (`render.rs`) from an empty shadow.
//! Seeking restores the nearest keyframe at or before the target into a
//! fresh [`Screen`] and replays at most one keyframe interval of events.
//! A full-screen program's keyframe also carries the primary screen as it
//! was when the program switched to the alternate screen, so leaving the
//! program after a seek shows the shell again.
//!
//! What a keyframe restores is what is visible: cells, colours,
//! attributes, the cursor, input modes, the alternate screen. It does not
//! restore parser state that shows nowhere: the current pen, a scroll
//! region, tab stops, a pending wrap. custos's own recordings do not carry
//! such state from one event to the next (every frame the renderer draws
//! positions the cursor and sets the pen itself), so they seek exactly; a
//! foreign recording cut mid-line may show a cell or two differently after
//! a seek until the program redraws. Keyframes are preferably taken after an
//! event that ends a line or before a pause, where that state is least likely
//! to be in use.
//!
//! **Text.** Each row that changed after an event, and each row that
//! scrolled off without having been seen at an event boundary, is added to a
//! text index with the event that showed it. Search scans that index, so
//! finding text anywhere in an hour-long session takes milliseconds.
//!
//! Cache format (version 2): a directory holding `keyframes.json.zst` (a
//! JSON object: format, version, the source's length and modification
//! time, the keyframes) and `text.tsv.zst` (`EVENT<TAB>ROW TEXT` lines),
//! both zstd-compressed: an hour of output made 180 MB of cache as plain
//! files (see docs/benchmarks.md). A cache whose source length or time
//! differ, or that does not decompress or parse, is rebuilt.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::term::masker::Cover;
use crate::evidence::asciicast::{Kind, TimedEvent};
use crate::term::render::{Layout, Renderer, Scrolled};
use crate::term::screen::{row_text, Damage, Screen, Size};

/// Output between keyframes. Replaying this much costs about 20 ms in a
/// release build, which bounds the time of a seek.
pub const KEYFRAME_BYTES: usize = 1 << 20;
/// Time between keyframes in sparse sessions (keeps keyframes near any time
/// an auditor types).
pub const KEYFRAME_SECS: f64 = 60.0;

/// How far apart keyframes are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spacing {
    pub bytes: usize,
    pub secs: f64,
}

impl Default for Spacing {
    fn default() -> Self {
        Self { bytes: KEYFRAME_BYTES, secs: KEYFRAME_SECS }
    }
}

const CACHE_FORMAT: &str = "custos-replay-index";
const CACHE_VERSION: u32 = 2;

/// zstd's level for the cache, written once per recording on its first
/// open. Measured on a 227 MB hour (`examples/replay_open`): level 1 made
/// 12.9 MB in less time than level 3 made 15.9 MB (of 195.5 MB plain).
const CACHE_LEVEL: i32 = 1;

/// A snapshot of the screen after `event` events were applied.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Keyframe {
    /// Events applied before this snapshot: replay continues at this index.
    pub event: usize,
    pub cols: u16,
    pub rows: u16,
    /// Bytes that redraw the primary screen on a fresh terminal.
    pub primary: String,
    /// Its size, when it differs (the screen was resized in a full-screen
    /// program).
    pub primary_size: Option<(u16, u16)>,
    /// Bytes that switch to and redraw the alternate screen, when a
    /// full-screen program was showing.
    pub alternate: Option<String>,
}

impl Keyframe {
    /// A fresh screen showing this snapshot.
    pub fn restore(&self) -> Screen {
        let size = Size { rows: self.rows, cols: self.cols };
        let first = self.primary_size.map_or(size, |(cols, rows)| Size { rows, cols });
        let mut screen = Screen::new(first);
        screen.process(self.primary.as_bytes());
        if first != size {
            screen.resize(size);
        }
        if let Some(alt) = &self.alternate {
            screen.process(alt.as_bytes());
        }
        settle(&mut screen);
        screen
    }
}

/// A line of screen text and the event after which it was on screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TextLine {
    event: usize,
    /// Byte range in [`TextIndex::text`].
    start: usize,
    end: usize,
}

/// Everything that was on screen, line by line.
#[derive(Clone, Debug, Default)]
pub struct TextIndex {
    text: String,
    lines: Vec<TextLine>,
}

/// A search hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The event after which the matching line was on screen.
    pub event: usize,
    /// Which line of the index matched (for "next match after this one").
    pub line: usize,
    /// The whole line, for a list of results.
    pub text: String,
}

impl TextIndex {
    fn push(&mut self, event: usize, text: &str) {
        let start = self.text.len();
        self.text.push_str(text);
        self.text.push('\n');
        self.lines.push(TextLine { event, start, end: start + text.len() });
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The event after which line `line` was on screen.
    pub fn search_line_event(&self, line: usize) -> Option<usize> {
        self.lines.get(line).map(|l| l.event)
    }

    /// The first line at or after the line shown after `event`.
    pub fn first_line_at(&self, event: usize) -> usize {
        self.lines.partition_point(|l| l.event < event)
    }

    /// Lines matching `query`, starting at line `from` and going forward
    /// (or backward from just before `from`), at most `limit`. Smart case:
    /// a query with no upper-case letter ignores case.
    pub fn search(&self, query: &str, from: usize, forward: bool, limit: usize) -> Vec<Hit> {
        let Some(re) = query_regex(query) else { return Vec::new() };
        let mut hits = Vec::new();
        if forward {
            let start = self.lines.get(from).map_or(self.text.len(), |l| l.start);
            for m in re.find_iter(self.text.get(start..).unwrap_or_default()) {
                let at = start + m.start();
                let line = self.lines.partition_point(|l| l.end < at);
                if hits.last().is_some_and(|h: &Hit| h.line == line) {
                    continue;
                }
                hits.push(self.hit(line));
                if hits.len() >= limit {
                    break;
                }
            }
        } else {
            for line in (0..from.min(self.lines.len())).rev() {
                if let Some(l) = self.lines.get(line) {
                    if re.is_match(self.text.get(l.start..l.end).unwrap_or_default()) {
                        hits.push(self.hit(line));
                        if hits.len() >= limit {
                            break;
                        }
                    }
                }
            }
        }
        hits
    }

    /// Whether any line matches (the browser's screen-text filter).
    pub fn contains(&self, query: &str) -> bool {
        query_regex(query).is_some_and(|re| re.is_match(&self.text))
    }

    fn hit(&self, line: usize) -> Hit {
        let l = self.lines.get(line).copied().unwrap_or(TextLine { event: 0, start: 0, end: 0 });
        Hit { event: l.event, line, text: self.text.get(l.start..l.end).unwrap_or_default().to_owned() }
    }

    fn write(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        for l in &self.lines {
            writeln!(out, "{}\t{}", l.event, self.text.get(l.start..l.end).unwrap_or_default())?;
        }
        Ok(())
    }

    fn read(text: &str) -> Option<Self> {
        let mut index = Self::default();
        for line in text.lines() {
            let (event, row) = line.split_once('\t')?;
            index.push(event.parse().ok()?, row);
        }
        Some(index)
    }
}

/// A literal, smart-case search pattern.
fn query_regex(query: &str) -> Option<regex::Regex> {
    if query.is_empty() {
        return None;
    }
    let ignore_case = !query.chars().any(char::is_uppercase);
    regex::RegexBuilder::new(&regex::escape(query)).case_insensitive(ignore_case).build().ok()
}

/// Keyframes and screen text of one recording.
#[derive(Clone, Debug, Default)]
pub struct Index {
    pub keyframes: Vec<Keyframe>,
    pub text: TextIndex,
}

impl Index {
    /// The keyframe to start from to reach the state after `event` events.
    pub fn keyframe_for(&self, event: usize) -> Option<&Keyframe> {
        let i = self.keyframes.partition_point(|k| k.event <= event);
        i.checked_sub(1).and_then(|i| self.keyframes.get(i))
    }

    /// Builds the index of `events` from scratch.
    pub fn build(cols: u16, rows: u16, events: &[TimedEvent]) -> Self {
        Self::build_with(cols, rows, events, Spacing::default())
    }

    /// Builds with keyframes `spacing` apart (tests use small ones).
    pub fn build_with(cols: u16, rows: u16, events: &[TimedEvent], spacing: Spacing) -> Self {
        let mut builder = Builder::with_spacing(cols, rows, spacing);
        builder.feed(events);
        builder.into_index()
    }

    /// Reads a cached index for a source of `len` bytes modified at `mtime`.
    /// `None` when there is no cache, or it is stale or unreadable (it is
    /// then rebuilt; a cache is never evidence).
    pub fn load(dir: &Path, len: u64, mtime: u64) -> Option<Self> {
        let read = |name: &str| std::fs::File::open(dir.join(name)).ok().and_then(|f| zstd::decode_all(f).ok());
        let file: CacheFile = serde_json::from_slice(&read(KEYFRAMES_FILE)?).ok()?;
        if file.format != CACHE_FORMAT || file.version != CACHE_VERSION || file.source_len != len || file.source_mtime != mtime {
            return None;
        }
        let text = String::from_utf8(read(TEXT_FILE)?).ok()?;
        Some(Self { keyframes: file.keyframes, text: TextIndex::read(&text)? })
    }

    /// Writes the cache (atomically per file: a reader sees the old or the
    /// new file, never half of one).
    pub fn save(&self, dir: &Path, len: u64, mtime: u64) -> std::io::Result<()> {
        crate::layout::ensure_private_dir(dir)?;
        let file = CacheFileRef {
            format: CACHE_FORMAT,
            version: CACHE_VERSION,
            source_len: len,
            source_mtime: mtime,
            keyframes: &self.keyframes,
        };
        let mut text = Vec::with_capacity(self.text.text.len() + self.text.lines.len() * 8);
        self.text.write(&mut text)?;
        write_atomic(&dir.join(TEXT_FILE), &zstd::encode_all(text.as_slice(), CACHE_LEVEL)?)?;
        let keyframes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        write_atomic(&dir.join(KEYFRAMES_FILE), &zstd::encode_all(keyframes.as_slice(), CACHE_LEVEL)?)
    }
}

/// The cache's files (see the module doc).
pub const KEYFRAMES_FILE: &str = "keyframes.json.zst";
pub const TEXT_FILE: &str = "text.tsv.zst";

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[derive(Deserialize)]
struct CacheFile {
    format: String,
    version: u32,
    source_len: u64,
    source_mtime: u64,
    keyframes: Vec<Keyframe>,
}

#[derive(Serialize)]
struct CacheFileRef<'a> {
    format: &'static str,
    version: u32,
    source_len: u64,
    source_mtime: u64,
    keyframes: &'a [Keyframe],
}

/// Where the cache of the recording at `source` lives: under `cache_root`,
/// named by a digest of the recording's canonical path (the spool may not
/// be writable by the auditor, so the cache is never put next to it).
pub fn cache_dir(cache_root: &Path, source: &Path) -> PathBuf {
    use sha2::Digest as _;
    let canonical = source.canonicalize().unwrap_or_else(|_| source.to_owned());
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    cache_root.join(name)
}

/// The cache of a recording known by its content (a chunk directory
/// joined, a collector's download): the directory is named by the content's
/// SHA-256, so any change lands in a new directory, and it is valid for the
/// content's length (time 0: content does not have one). Returned as
/// (directory, length, time) for [`Index::load`] and [`Index::save`].
pub fn content_cache(cache_root: &Path, content: &[u8]) -> (PathBuf, u64, u64) {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(content);
    let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    (cache_root.join(format!("sha256-{name}")), content.len() as u64, 0)
}

/// The default cache root: `$XDG_CACHE_HOME/custos/replay`, or
/// `~/.cache/custos/replay`.
pub fn default_cache_root() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("custos").join("replay"))
}

/// Applies one event to a screen, as playback does. Both the builder and
/// the player go through here, so a keyframe and straight playback agree.
pub fn apply(screen: &mut Screen, event: &TimedEvent) {
    match event.kind {
        Kind::Output => {
            screen.process(event.data.as_bytes());
            settle(screen);
        }
        Kind::Resize { cols, rows } => screen.resize(Size { rows, cols }),
        // The approvals pane has a screen of its own (`super::pane`): the
        // shell's screen, its keyframes and its text index never see it.
        Kind::Input | Kind::Marker | Kind::Pane | Kind::Exit | Kind::Other => {}
    }
}

/// Drops what a replayed screen accumulates and nobody reads: answers to
/// queries, titles, rows scrolled off the top.
pub fn settle(screen: &mut Screen) {
    screen.take_replies();
    screen.take_passthrough();
    screen.clear_scrolled();
}

/// The bytes that redraw `screen` on a fresh terminal of its size.
pub fn snapshot(screen: &Screen) -> String {
    let size = screen.size();
    let mut renderer = Renderer::new(Layout { pane_rows: size.rows, cols: size.cols, status: false });
    let mut out = Vec::new();
    renderer.frame(screen, &Scrolled::default(), &Damage::full(), &Cover::none(), None, &mut out);
    // The renderer writes what the cells hold, which came from a `str`.
    String::from_utf8_lossy(&out).into_owned()
}

/// Sequences that switch to the alternate screen.
const ALT_ENTER: [&str; 3] = ["\x1b[?1049h", "\x1b[?1047h", "\x1b[?47h"];

/// Builds an [`Index`] event by event; `--follow` keeps one and feeds it
/// what the recording grows by.
pub struct Builder {
    screen: Screen,
    index: Index,
    /// Events fed so far.
    events: usize,
    bytes_since: usize,
    time_of_last: f64,
    /// Text of each visible row at the last event boundary.
    rows: Vec<String>,
    /// The primary screen when the current full-screen program started.
    primary_under_alt: Option<(String, Size)>,
    alt_enter: Option<aho_corasick::AhoCorasick>,
    last_time: f64,
    /// The last output event ended a line, or the recording paused after it.
    quiet: bool,
    spacing: Spacing,
}

impl Builder {
    pub fn new(cols: u16, rows: u16) -> Self {
        Self::with_spacing(cols, rows, Spacing::default())
    }

    pub fn with_spacing(cols: u16, rows: u16, spacing: Spacing) -> Self {
        let screen = Screen::new(Size { rows, cols });
        let first = Keyframe { event: 0, cols, rows, primary: String::new(), primary_size: None, alternate: None };
        let rows_text = vec![String::new(); usize::from(screen.size().rows)];
        Self {
            screen,
            index: Index { keyframes: vec![first], text: TextIndex::default() },
            events: 0,
            bytes_since: 0,
            time_of_last: 0.0,
            rows: rows_text,
            primary_under_alt: None,
            // Three fixed literals always build; `None` would only skip the
            // primary-under-alternate snapshots.
            alt_enter: aho_corasick::AhoCorasick::new(ALT_ENTER).ok(),
            last_time: 0.0,
            quiet: true,
            spacing,
        }
    }

    /// Events fed so far.
    pub fn events(&self) -> usize {
        self.events
    }

    /// Feeds the next events of the recording.
    pub fn feed(&mut self, events: &[TimedEvent]) {
        for event in events {
            // A pause before this event makes the boundary before it quiet.
            if event.time - self.last_time >= 0.05 {
                self.quiet = true;
            }
            if self.due() {
                self.keyframe();
            }
            self.apply(event);
            self.events += 1;
            self.last_time = event.time;
        }
    }

    fn due(&self) -> bool {
        let by_size = self.bytes_since >= self.spacing.bytes;
        let by_time = self.last_time - self.time_of_last >= self.spacing.secs && self.bytes_since > 0;
        // Prefer a quiet boundary; never wait past twice the interval.
        (by_size || by_time) && (self.quiet || self.bytes_since >= 2 * self.spacing.bytes) && !self.screen.in_sync()
    }

    fn keyframe(&mut self) {
        let size = self.screen.size();
        let (primary, primary_size, alternate) = if self.screen.modes().alternate_screen {
            let (primary, psize) = self.primary_under_alt.clone().unwrap_or_else(|| (String::new(), size));
            let psize = (psize != size).then_some((psize.cols, psize.rows));
            (primary, psize, Some(snapshot(&self.screen)))
        } else {
            (snapshot(&self.screen), None, None)
        };
        self.index.keyframes.push(Keyframe { event: self.events, cols: size.cols, rows: size.rows, primary, primary_size, alternate });
        self.bytes_since = 0;
        self.time_of_last = self.last_time;
    }

    fn apply(&mut self, event: &TimedEvent) {
        match event.kind {
            Kind::Output => {
                let data = event.data.as_str();
                // Snapshot the primary screen just before each switch to
                // the alternate one, so keyframes inside can restore it.
                let mut done = 0;
                let switches = self.alt_enter.as_ref().map(|ac| ac.find_iter(data).map(|m| m.start()).collect::<Vec<_>>()).unwrap_or_default();
                for start in switches {
                    if !self.screen.modes().alternate_screen {
                        self.screen.process(data.get(done..start).unwrap_or_default().as_bytes());
                        done = start;
                        self.primary_under_alt = Some((snapshot(&self.screen), self.screen.size()));
                    }
                }
                self.screen.process(data.get(done..).unwrap_or_default().as_bytes());
                self.index_scrolled();
                settle(&mut self.screen);
                self.bytes_since += data.len();
                self.quiet = data.ends_with('\n');
            }
            Kind::Resize { .. } => {
                apply(&mut self.screen, event);
                self.rows.resize(usize::from(self.screen.size().rows), String::new());
            }
            _ => {}
        }
        self.index_rows();
    }

    /// Rows that scrolled off during this event and were not on screen at
    /// the last event boundary (drawn and scrolled within one write).
    fn index_scrolled(&mut self) {
        if self.screen.modes().alternate_screen || self.screen.scrolled_len() == 0 {
            return;
        }
        let event = self.events;
        let seen: std::collections::HashSet<&str> = self.rows.iter().map(String::as_str).collect();
        for cells in self.screen.scrolled_rows() {
            let text = row_text(cells);
            let text = text.trim_end();
            if !text.is_empty() && !seen.contains(text) {
                self.index.text.push(event, text);
            }
        }
    }

    /// Rows that changed in this event. A line counts once while it stays
    /// on screen, wherever it moves: text that was visible at the last
    /// boundary (in any row, since output scrolls) is not added again.
    fn index_rows(&mut self) {
        let damage = self.screen.take_damage();
        let mut changed = Vec::new();
        for r in 0..self.screen.size().rows {
            if !damage.row(r) {
                continue;
            }
            let text = self.screen.row(r).map(row_text).unwrap_or_default();
            let text = text.trim_end();
            if self.rows.get(usize::from(r)).is_some_and(|old| old != text) {
                changed.push((usize::from(r), text.to_owned()));
            }
        }
        if changed.is_empty() {
            return;
        }
        {
            let before: std::collections::HashSet<&str> = self.rows.iter().map(String::as_str).collect();
            for (_, text) in &changed {
                if !text.trim().is_empty() && !before.contains(text.as_str()) {
                    self.index.text.push(self.events, text);
                }
            }
        }
        for (r, text) in changed {
            if let Some(slot) = self.rows.get_mut(r) {
                *slot = text;
            }
        }
    }

    /// The index so far.
    pub fn index(&self) -> Index {
        self.index.clone()
    }

    /// The index, consuming the builder.
    pub fn into_index(self) -> Index {
        self.index
    }

    /// Appends what was built since `index` was taken from this builder
    /// (for `--follow`, without cloning the whole text each poll).
    pub fn extend(&self, index: &mut Index) {
        if let Some(new) = self.index.keyframes.get(index.keyframes.len()..) {
            index.keyframes.extend_from_slice(new);
        }
        if let Some(new) = self.index.text.lines.get(index.text.lines.len()..) {
            for l in new {
                let text = self.index.text.text.get(l.start..l.end).unwrap_or_default();
                index.text.push(l.event, text);
            }
        }
    }
}
