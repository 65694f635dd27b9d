//! The masker: decides, frame by frame, which cells of the screen are shown
//! as the mask glyph, so neither the user's terminal nor the recording ever
//! receives a secret, however the program drew it.
//!
//! The detectors (`mask`) read text; the screen holds cells. This module
//! joins the two:
//!
//! 1. It reads rows in display order, the rows that scrolled off since the
//!    last frame first, then the visible ones, and joins wrapped rows into
//!    logical lines, remembering which cell each character came from. A
//!    secret split over a wrap, even over the edge between scrollback and
//!    screen, is one string to the detectors.
//!    A row filled to its last column and not wrapped may still be the
//!    first half of one line: a shell redrawing its command line (readline,
//!    zsh) may write the rest of it by cursor addressing or after `CR LF`,
//!    which the emulator does not mark as a wrap. Such rows and the rows
//!    after them are scanned a second time joined ("soft joins", issue
//!    #17), and what that finds is covered too; the rows stay separate
//!    lines for everything else, so a full-width table does not become one
//!    line to the context detectors.
//! 2. Lines that have scrolled off for good are scanned with the persistent
//!    [`Context`] (inside a PEM key, under a Secret's `data:`, below a table
//!    header), which carries over to the next frame. Lines still on screen
//!    are scanned from a copy, because they can still change.
//! 3. Findings become column ranges per row: a [`Cover`]. The renderer
//!    draws those cells as the glyph, one glyph per cell, so a wide
//!    character becomes two glyphs and layouts hold.
//! 4. **Withholding.** A tail of the line being written that could still
//!    grow into a secret (`ghp_12`, a run of card digits) is withheld (drawn
//!    blank) for up to `hold_ms` (the config key keeps its name). The word
//!    "held" is the approvals' (a line waiting for an approver); here it is
//!    "withheld". If the rest arrives in time it is masked whole. If not
//!    (a key typed by hand, a program stalling mid-token), it is masked
//!    from then on while it stays the end of the line, and shown only if it
//!    ends as something that is not a secret; a short run of digits (a
//!    number being typed) is shown at once. A secret arriving in pieces is
//!    never shown in part.
//!
//! Because the cover is computed from the screen at the moment of drawing,
//! content drawn and overwritten between frames is never drawn at all, and
//! cursor-addressed, coloured or `\r`-redrawn secrets are whole in the cells.

use std::ops::Range;
use std::time::{Duration, Instant};

use crate::mask::{Context, Detectors, Finding, MaskError, MaskingConfig, Memo};
use alacritty_terminal::term::cell::Flags;

use crate::term::screen::{is_spacer, is_wrapped, row_text, shown_char, Cell, Damage, Passthrough, Screen};

/// Which cells one frame covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cover {
    /// Per visible row: column ranges drawn as the glyph.
    pub rows: Vec<Vec<Range<usize>>>,
    /// Per scrolled row (in the screen's order): column ranges drawn as the glyph.
    pub scrolled: Vec<Vec<Range<usize>>>,
    /// A tail withheld (drawn blank) for now: visible row and columns.
    pub withheld: Vec<(u16, Range<usize>)>,
    pub glyph: char,
}

impl Cover {
    /// Nothing covered.
    pub fn none() -> Self {
        Self { glyph: '*', ..Self::default() }
    }

    /// The masked ranges of visible row `row`.
    pub fn row(&self, row: u16) -> &[Range<usize>] {
        self.rows.get(usize::from(row)).map_or(&[], Vec::as_slice)
    }

    pub fn scrolled_row(&self, index: usize) -> &[Range<usize>] {
        self.scrolled.get(index).map_or(&[], Vec::as_slice)
    }

    /// The withheld range on `row`, if any.
    pub fn withheld_on(&self, row: u16) -> Option<&Range<usize>> {
        self.withheld.iter().find(|(r, _)| *r == row).map(|(_, range)| range)
    }

    /// Whether anything on visible row `row` is drawn differently from the
    /// screen.
    pub fn touches(&self, row: u16) -> bool {
        !self.row(row).is_empty() || self.withheld_on(row).is_some()
    }
}

/// A secret found, for `custos mask --explain`: never the value itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explained {
    pub detector: String,
    pub fingerprint: String,
    /// Visible row, or `None` for a row that scrolled off.
    pub row: Option<u16>,
    pub col: usize,
    pub cells: usize,
}

/// The start of a logical line whose first rows have scrolled off while it
/// continues on the first row still to come.
struct Carry {
    text: String,
    /// The text of the row it continues on, to notice when that row is no
    /// longer the continuation (the screen was cleared or redrawn).
    next_row: String,
}

struct Withheld {
    row: u16,
    start: usize,
    /// The withheld text when the withholding began; growing it keeps it withheld.
    text: String,
    since: Instant,
}

/// The masking state of one session (or one `custos mask` run).
pub struct Masker {
    detectors: Detectors,
    enabled: bool,
    glyph: char,
    withhold: Duration,
    /// What rows that scrolled off for good said about the rows after them.
    context: Context,
    withheld: Option<Withheld>,
    /// A tail whose withholding expired: shown, and not withheld again.
    released: Option<(u16, usize, String)>,
    lines: Lines,
    spans: Vec<CellSpan>,
    /// Visible lines known to hold nothing (see `mask::Memo`).
    memo: Memo,
    row_cache: RowCache,
    carry: Option<Carry>,
    /// Like `carry`, for a soft join (see the module doc) over the edge
    /// between rows drawn and rows still to come.
    soft_carry: Option<Carry>,
    /// Soft-joined texts known to hold nothing.
    soft_memo: Memo,
}

/// Logical lines of one frame, in buffers reused from frame to frame (this
/// runs for every frame and every flush of scrolled rows, so it allocates
/// nothing once warm).
#[derive(Default)]
struct Lines {
    /// All lines' text, back to back.
    text: String,
    lines: Vec<Line>,
    segments: Vec<Segment>,
    /// Per-cell origins of segments that are not plain ASCII.
    origins: Vec<Origin>,
}

/// One logical line: rows joined where they wrapped.
#[derive(Clone)]
struct Line {
    text: Range<usize>,
    segments: Range<usize>,
    first_row: usize,
    last_row: usize,
}

/// The part of a line that one row contributes.
#[derive(Clone)]
struct Segment {
    /// Index into the frame's row list (scrolled rows first).
    row: usize,
    /// Byte range in the line's text.
    bytes: Range<usize>,
    /// `None`: one ASCII byte per cell, so byte `b` is column `b - start`.
    /// Otherwise the per-cell origins, in `Lines::origins`.
    origins: Option<Range<usize>>,
}

/// Where a character of a segment that is not plain ASCII came from.
#[derive(Clone, Copy)]
struct Origin {
    /// Byte offset within the line.
    byte: usize,
    col: usize,
    /// Cells it takes (2 for a wide character).
    width: usize,
}

/// A cell a byte range of a line covers.
struct CellSpan {
    row: usize,
    cols: Range<usize>,
}

impl Lines {
    fn clear(&mut self) {
        self.text.clear();
        self.lines.clear();
        self.segments.clear();
        self.origins.clear();
    }

    /// Joins `rows` into logical lines (a wrapped row continues on the next).
    /// Rows from `visible_from` on are visible rows; with `reuse`, a visible
    /// row the emulator reports undamaged is copied from the previous
    /// frame's text instead of being read cell by cell again.
    ///
    /// `prefix` is the start of a line whose first rows scrolled off in an
    /// earlier frame and which continues on `rows[0]`: without it, the
    /// detectors would see the rest of a `password=...` or a token cut off
    /// from its key.
    fn build(
        &mut self,
        rows: &[&[Cell]],
        visible_from: usize,
        mut reuse: Option<(&Damage, &mut RowCache)>,
        prefix: Option<&str>,
    ) {
        self.clear();
        let mut open: Option<Line> = None;
        if let Some(prefix) = prefix.filter(|_| !rows.is_empty()) {
            self.text.push_str(prefix);
            // A segment with no row: findings in it map to no cell.
            self.segments.push(Segment { row: OFF_SCREEN, bytes: 0..prefix.len(), origins: None });
            open = Some(Line { text: 0..prefix.len(), segments: 0..1, first_row: 0, last_row: 0 });
        }
        for (index, cells) in rows.iter().enumerate() {
            let wrapped = is_wrapped(cells);
            let line = open.get_or_insert(Line {
                text: self.text.len()..self.text.len(),
                segments: self.segments.len()..self.segments.len(),
                first_row: index,
                last_row: index,
            });
            line.last_row = index;
            let line_start = line.text.start;
            let seg_start = self.text.len() - line_start;
            let visible = index.checked_sub(visible_from);
            let cached = match (&reuse, visible) {
                (Some((damage, cache)), Some(r)) => {
                    let row = u16::try_from(r).unwrap_or(u16::MAX);
                    if damage.row(row) { None } else { cache.rows.get(r).and_then(Option::as_ref) }
                }
                _ => None,
            };
            let origins = match cached {
                Some(row) => {
                    self.text.push_str(&row.text);
                    row.origins.as_ref().map(|list| {
                        let start = self.origins.len();
                        self.origins.extend(list.iter().map(|o| Origin { byte: o.byte + seg_start, ..*o }));
                        start..self.origins.len()
                    })
                }
                None => {
                    let origins = read_row(cells, wrapped, line_start, seg_start, &mut self.text, &mut self.origins);
                    if let (Some((_, cache)), Some(r)) = (reuse.as_mut(), visible) {
                        cache.store(r, &self.text, line_start + seg_start, origins.clone().and_then(|o| self.origins.get(o)), seg_start);
                    }
                    origins
                }
            };
            self.segments.push(Segment { row: index, bytes: seg_start..self.text.len() - line_start, origins });
            line.text.end = self.text.len();
            line.segments.end = self.segments.len();
            if !wrapped {
                if let Some(done) = open.take() {
                    self.lines.push(done);
                }
            }
        }
        if let Some(done) = open {
            self.lines.push(done);
        }
    }

    /// Runs of consecutive lines (index ranges into `lines`) that may be one
    /// line drawn without autowrap: each but the last ends on a row filled
    /// to its last column, and the next starts on the row below with text.
    /// Only runs of two lines or more, and the run of the first line if
    /// `prefixed` (it continues a soft join from rows already drawn).
    fn soft_runs(&self, rows: &[&[Cell]], prefixed: bool) -> Vec<Range<usize>> {
        let joins = |a: &Line, b: &Line| {
            a.last_row + 1 == b.first_row
                && rows.get(a.last_row).is_some_and(|cells| fills_last_column(cells))
                && rows.get(b.first_row).is_some_and(|cells| starts_with_text(cells))
        };
        let mut runs = Vec::new();
        let mut start = 0;
        for (i, pair) in self.lines.windows(2).enumerate() {
            if let [a, b] = pair {
                if !joins(a, b) {
                    if i > start || (prefixed && start == 0) {
                        runs.push(start..i + 1);
                    }
                    start = i + 1;
                }
            }
        }
        let end = self.lines.len();
        if end > start && (end - start > 1 || (prefixed && start == 0)) {
            runs.push(start..end);
        }
        runs
    }

    fn text(&self, line: &Line) -> &str {
        self.text.get(line.text.clone()).unwrap_or_default()
    }

    /// The cells that bytes `range` of `line` came from, row by row.
    fn cells(&self, line: &Line, range: &Range<usize>, out: &mut Vec<CellSpan>) {
        for seg in self.segments.get(line.segments.clone()).unwrap_or_default() {
            let start = range.start.max(seg.bytes.start);
            let end = range.end.min(seg.bytes.end);
            if start >= end {
                continue;
            }
            match &seg.origins {
                None => out.push(CellSpan { row: seg.row, cols: start - seg.bytes.start..end - seg.bytes.start }),
                Some(origins) => {
                    for o in self.origins.get(origins.clone()).unwrap_or_default() {
                        if (start..end).contains(&o.byte) {
                            out.push(CellSpan { row: seg.row, cols: o.col..o.col + o.width });
                        }
                    }
                }
            }
        }
    }

    /// The byte of `line` where the cell at (`row`, `col`) starts; the end of
    /// the line if the cell is past its text.
    fn byte_at(&self, line: &Line, row: usize, col: usize) -> usize {
        for seg in self.segments.get(line.segments.clone()).unwrap_or_default() {
            if seg.row < row || seg.row == OFF_SCREEN {
                continue;
            }
            if seg.row > row {
                return seg.bytes.start;
            }
            return match &seg.origins {
                None => seg.bytes.start + col.min(seg.bytes.len()),
                Some(origins) => self
                    .origins
                    .get(origins.clone())
                    .unwrap_or_default()
                    .iter()
                    .find(|o| o.col >= col)
                    .map_or(seg.bytes.end, |o| o.byte),
            };
        }
        line.text.len()
    }
}

/// Reads one row's cells into `text`; returns the range of `origins` it
/// added, or `None` if the row is plain ASCII (byte = column).
fn read_row(
    cells: &[Cell],
    wrapped: bool,
    line_start: usize,
    seg_start: usize,
    text: &mut String,
    origins: &mut Vec<Origin>,
) -> Option<Range<usize>> {
    // Trailing blanks of a row that ends a line are padding, not text.
    let used = if wrapped { cells.len() } else { cells.iter().rposition(|c| !matches!(c.c, ' ' | '\0' | '\t')).map_or(0, |p| p + 1) };
    let cells = cells.get(..used).unwrap_or(cells);
    let mut table: Option<usize> = None;
    for (col, cell) in cells.iter().enumerate() {
        let plain = cell.c.is_ascii() && !matches!(cell.c, '\0' | '\t') && cell.extra.is_none() && !cell.flags.intersects(WIDE);
        if !plain && table.is_none() {
            // From here on the mapping needs a table: fill it in for the
            // plain cells before this one.
            table = Some(origins.len());
            for c in 0..col {
                origins.push(Origin { byte: seg_start + c, col: c, width: 1 });
            }
        }
        if table.is_some() {
            if is_spacer(cell) {
                continue;
            }
            let width = if cell.flags.contains(Flags::WIDE_CHAR) { 2 } else { 1 };
            origins.push(Origin { byte: text.len() - line_start, col, width });
            text.push(shown_char(cell));
            if let Some(marks) = cell.zerowidth() {
                text.extend(marks);
            }
        } else {
            text.push(cell.c);
        }
    }
    table.map(|start| start..origins.len())
}

/// The text of each visible row as the last frame read it, for rows the
/// emulator reports unchanged since.
#[derive(Default)]
struct RowCache {
    rows: Vec<Option<CachedRow>>,
}

struct CachedRow {
    text: String,
    /// Origins with bytes relative to the row's start.
    origins: Option<Vec<Origin>>,
}

impl RowCache {
    fn store(&mut self, row: usize, text: &str, from: usize, origins: Option<&[Origin]>, seg_start: usize) {
        if self.rows.len() <= row {
            self.rows.resize_with(row + 1, || None);
        }
        let cached = CachedRow {
            text: text.get(from..).unwrap_or_default().to_owned(),
            origins: origins.map(|list| list.iter().map(|o| Origin { byte: o.byte - seg_start, ..*o }).collect()),
        };
        if let Some(slot) = self.rows.get_mut(row) {
            *slot = Some(cached);
        }
    }
}

/// Whether a row was written up to its last column without wrapping: the
/// row below may continue it, drawn there by cursor addressing.
fn fills_last_column(cells: &[Cell]) -> bool {
    !is_wrapped(cells) && cells.last().is_some_and(|c| !matches!(c.c, ' ' | '\0' | '\t'))
}

/// Whether a row's first cell holds text (it may continue the row above).
fn starts_with_text(cells: &[Cell]) -> bool {
    cells.first().is_some_and(|c| !matches!(c.c, ' ' | '\0' | '\t'))
}

/// The row of a segment carried over from rows no longer in the frame.
const OFF_SCREEN: usize = usize::MAX;

const WIDE: Flags = Flags::WIDE_CHAR.union(Flags::WIDE_CHAR_SPACER).union(Flags::LEADING_WIDE_CHAR_SPACER);

impl Masker {
    pub fn new(config: &MaskingConfig) -> Result<Self, MaskError> {
        Ok(Self::with(Detectors::new(config)?, config.enabled, config.glyph, Duration::from_millis(config.hold_ms)))
    }

    /// A masker with the same detectors and settings and none of this
    /// one's state (context, withheld tail, memo): for a second screen of
    /// the session, the approvals pane, whose rows are not the shell's.
    pub fn fresh(&self) -> Self {
        Self::with(self.detectors.clone(), self.enabled, self.glyph, self.withhold)
    }

    /// A masker with these settings and no state yet.
    fn with(detectors: Detectors, enabled: bool, glyph: char, withhold: Duration) -> Self {
        Self {
            detectors,
            enabled,
            glyph,
            withhold,
            context: Context::new(),
            withheld: None,
            released: None,
            lines: Lines::default(),
            spans: Vec::new(),
            memo: Memo::default(),
            row_cache: RowCache::default(),
            carry: None,
            soft_carry: None,
            soft_memo: Memo::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn glyph(&self) -> char {
        self.glyph
    }

    /// Computes the cover for the screen as it is now, including the rows
    /// that scrolled off since the last call (which are then final: their
    /// context is kept for later frames). Returns the cover and, when a
    /// tail is withheld, the moment the frame must be redrawn to release it.
    ///
    /// `damage` is the emulator's record of rows changed since the last
    /// frame ([`Screen::take_damage`]); undamaged rows are not read again.
    pub fn cover(&mut self, screen: &Screen, damage: &Damage, now: Instant) -> (Cover, Option<Instant>) {
        let mut cover = self.cover_rows(screen, Some(damage));
        let deadline = if self.enabled { self.withhold_tail(screen, &mut cover, now) } else { None };
        for ranges in cover.rows.iter_mut().chain(cover.scrolled.iter_mut()) {
            normalise(ranges);
        }
        (cover, deadline)
    }

    /// The cover of the scrolled rows only, for flushing them to scrollback
    /// between frames: visible rows are read only as far as a line that
    /// wrapped over the edge continues.
    pub fn cover_scrolled(&mut self, screen: &Screen) -> Cover {
        let mut cover = self.cover_rows(screen, None);
        for ranges in cover.scrolled.iter_mut() {
            normalise(ranges);
        }
        cover
    }

    /// With `damage`, a whole frame; without, the scrolled rows only.
    fn cover_rows(&mut self, screen: &Screen, damage: Option<&Damage>) -> Cover {
        let scrolled_only = damage.is_none();
        let mut cover = Cover { glyph: self.glyph, ..Cover::default() };
        let scrolled_count = screen.scrolled_len();
        cover.scrolled = vec![Vec::new(); scrolled_count];
        cover.rows = vec![Vec::new(); usize::from(screen.size().rows)];
        if !self.enabled {
            return cover;
        }
        let mut rows: Vec<&[Cell]> = screen.scrolled_rows().collect();
        let mut continues = rows.last().is_some_and(|r| is_wrapped(r) || fills_last_column(r));
        for r in 0..screen.size().rows {
            if scrolled_only && !continues {
                break;
            }
            let Some(cells) = screen.row(r) else { break };
            continues = is_wrapped(cells) || fills_last_column(cells);
            rows.push(cells);
        }
        let visible_from = screen.scrolled_len();
        let first_row_text = rows.first().map(|cells| row_text(cells)).unwrap_or_default();
        if self.carry.as_ref().is_some_and(|c| c.next_row != first_row_text) {
            self.carry = None;
        }
        // The row after a soft join may have been blank when the rows before
        // it were drawn (the shell had not written the rest yet): it still
        // continues them as long as it holds what it held then.
        let soft_prefix = self
            .soft_carry
            .take()
            .filter(|c| self.carry.is_none() && first_row_text.starts_with(c.next_row.trim_end()))
            .filter(|_| rows.first().is_some_and(|cells| starts_with_text(cells)))
            .map(|c| c.text);
        let reuse = damage.map(|d| (d, &mut self.row_cache));
        self.lines.build(&rows, visible_from, reuse, self.carry.as_ref().map(|c| c.text.as_str()));
        self.carry_over(&rows, scrolled_count);
        let runs = self.lines.soft_runs(&rows, soft_prefix.is_some());
        self.soft_carry_over(&rows, scrolled_count, &runs, soft_prefix.as_deref());

        // Lines wholly in the scrolled rows are final; the rest may change.
        let lines = &self.lines;
        let split = lines.lines.iter().position(|l| l.last_row >= scrolled_count).unwrap_or(lines.lines.len());
        let (done, live) = lines.lines.split_at(split);
        let done_text: Vec<&str> = done.iter().map(|l| lines.text(l)).collect();
        let mut live_text: Vec<&str> = live.iter().map(|l| lines.text(l)).collect();
        // Blank rows below the output are not lines: the detectors treat the
        // last line as possibly still being written, and that is the last
        // line with text.
        while live_text.last().is_some_and(|l| l.is_empty()) {
            live_text.pop();
        }
        let found_done = self.detectors.scan_from(&mut self.context, &done_text);
        let found_live = if live_text.is_empty() {
            Vec::new()
        } else {
            self.detectors.scan_from_memo(&mut self.context.clone(), &live_text, &mut self.memo)
        };
        for (findings, group) in [(found_done, done), (found_live, live)] {
            for finding in findings {
                let Some(line) = group.get(finding.line) else { continue };
                self.spans.clear();
                lines.cells(line, &finding.range, &mut self.spans);
                for span in &self.spans {
                    let target = if span.row < scrolled_count {
                        cover.scrolled.get_mut(span.row)
                    } else {
                        cover.rows.get_mut(span.row - scrolled_count)
                    };
                    if let Some(ranges) = target {
                        ranges.push(span.cols.clone());
                    }
                }
            }
        }
        for run in &runs {
            let prefix = soft_prefix.as_deref().filter(|_| run.start == 0).unwrap_or_default();
            let members = lines.lines.get(run.clone()).unwrap_or_default();
            let mut joined = String::from(prefix);
            for line in members {
                joined.push_str(lines.text(line));
            }
            let found = self.detectors.scan_from_memo(&mut self.context.clone(), &[joined.as_str()], &mut self.soft_memo);
            for finding in found {
                let mut offset = prefix.len();
                for line in members {
                    let len = line.text.len();
                    let range = finding.range.start.max(offset) - offset..finding.range.end.min(offset + len).saturating_sub(offset);
                    offset += len;
                    if range.is_empty() {
                        continue;
                    }
                    self.spans.clear();
                    lines.cells(line, &range, &mut self.spans);
                    for span in &self.spans {
                        let target = if span.row < scrolled_count {
                            cover.scrolled.get_mut(span.row)
                        } else {
                            cover.rows.get_mut(span.row.wrapping_sub(scrolled_count))
                        };
                        if let Some(ranges) = target {
                            ranges.push(span.cols.clone());
                        }
                    }
                }
            }
        }
        cover
    }

    /// After a frame or flush that consumed scrolled rows: if the last of
    /// them ends a line that fills the last column, keep the text of its
    /// soft-joined run, so the rest drawn on the first row still to come is
    /// scanned with it.
    fn soft_carry_over(&mut self, rows: &[&[Cell]], scrolled_count: usize, runs: &[Range<usize>], prefix: Option<&str>) {
        self.soft_carry = None;
        let Some(last_scrolled) = scrolled_count.checked_sub(1) else { return };
        if !rows.get(last_scrolled).is_some_and(|cells| fills_last_column(cells)) {
            return;
        }
        let lines = &self.lines;
        let Some(end) = lines.lines.iter().position(|l| l.last_row == last_scrolled) else { return };
        let start = runs.iter().find(|r| r.contains(&end)).map_or(end, |r| r.start);
        let mut text = String::from(prefix.filter(|_| start == 0).unwrap_or_default());
        for line in lines.lines.get(start..=end).unwrap_or_default() {
            text.push_str(lines.text(line));
        }
        // Bounded like `carry`.
        if text.len() <= 64 * 1024 {
            let next_row = rows.get(scrolled_count).map(|cells| row_text(cells)).unwrap_or_default();
            self.soft_carry = Some(Carry { text, next_row });
        }
    }

    /// After a frame or flush that consumed scrolled rows: if the last of
    /// them wrapped onto a row still to come, keep the start of that line.
    fn carry_over(&mut self, rows: &[&[Cell]], scrolled_count: usize) {
        if scrolled_count == 0 {
            return;
        }
        let last_scrolled = scrolled_count - 1;
        let lines = &self.lines;
        self.carry = lines
            .lines
            .iter()
            .find(|l| l.first_row <= last_scrolled && last_scrolled <= l.last_row)
            .filter(|_| rows.get(last_scrolled).is_some_and(|cells| is_wrapped(cells)))
            .map(|l| {
                let segments = lines.segments.get(l.segments.clone()).unwrap_or_default();
                let end = segments
                    .iter()
                    .find(|seg| seg.row != OFF_SCREEN && seg.row >= scrolled_count)
                    .map_or(l.text.len(), |seg| seg.bytes.start);
                Carry {
                    text: lines.text(l).get(..end).unwrap_or_default().to_owned(),
                    next_row: rows.get(scrolled_count).map(|cells| row_text(cells)).unwrap_or_default(),
                }
            })
            // Bound what is carried: a line longer than this is not one a
            // detector needs whole.
            .filter(|c| c.text.len() <= 64 * 1024);
    }

    /// Every secret in the screen and the rows that scrolled off, for
    /// `--explain`: detector, fingerprint and position, never the value.
    pub fn explain(&self, screen: &Screen) -> Vec<Explained> {
        if !self.enabled {
            return Vec::new();
        }
        let scrolled_count = screen.scrolled_len();
        let rows: Vec<&[Cell]> = screen
            .scrolled_rows()
            .chain((0..screen.size().rows).filter_map(|r| screen.row(r)))
            .collect();
        let mut lines = Lines::default();
        lines.build(&rows, rows.len(), None, self.carry.as_ref().map(|c| c.text.as_str()));
        let text: Vec<&str> = lines.lines.iter().map(|l| lines.text(l)).collect();
        let mut out = Vec::new();
        let mut spans = Vec::new();
        for Finding { line, range, detector } in self.detectors.scan_from(&mut self.context.clone(), &text) {
            let Some(l) = lines.lines.get(line) else { continue };
            let Some(value) = lines.text(l).get(range.clone()) else { continue };
            spans.clear();
            lines.cells(l, &range, &mut spans);
            let Some(first) = spans.first() else { continue };
            out.push(Explained {
                detector: detector.to_string(),
                fingerprint: crate::mask::fingerprint(value),
                row: first.row.checked_sub(scrolled_count).and_then(|r| u16::try_from(r).ok()),
                col: first.cols.start,
                cells: spans.iter().map(|s| s.cols.len()).sum(),
            });
        }
        // Rows drawn without autowrap that only joined hold a secret (see
        // the module doc), as `cover` finds them.
        for run in lines.soft_runs(&rows, false) {
            let members = lines.lines.get(run).unwrap_or_default();
            let joined: String = members.iter().map(|l| lines.text(l)).collect();
            for Finding { range, detector, .. } in self.detectors.scan_from(&mut self.context.clone(), &[joined.as_str()]) {
                let Some(value) = joined.get(range.clone()) else { continue };
                let fingerprint = crate::mask::fingerprint(value);
                if out.iter().any(|e: &Explained| e.fingerprint == fingerprint) {
                    continue;
                }
                let mut offset = 0;
                let mut first: Option<(usize, usize)> = None;
                let mut cells = 0;
                for line in members {
                    let len = line.text.len();
                    let part = range.start.max(offset) - offset..range.end.min(offset + len).saturating_sub(offset);
                    offset += len;
                    if part.is_empty() {
                        continue;
                    }
                    spans.clear();
                    lines.cells(line, &part, &mut spans);
                    cells += spans.iter().map(|s| s.cols.len()).sum::<usize>();
                    if first.is_none() {
                        first = spans.first().map(|s| (s.row, s.cols.start));
                    }
                }
                let Some((row, col)) = first else { continue };
                out.push(Explained {
                    detector: detector.to_string(),
                    fingerprint,
                    row: row.checked_sub(scrolled_count).and_then(|r| u16::try_from(r).ok()),
                    col,
                    cells,
                });
            }
        }
        out
    }

    /// Masks secrets in a piece of text that is not on the screen (a window
    /// title, a recorded input line): each character of a finding becomes
    /// the glyph.
    pub fn mask_text(&self, text: &str) -> String {
        if !self.enabled {
            return text.to_owned();
        }
        let lines: Vec<&str> = text.split('\n').collect();
        let findings = self.detectors.scan_from(&mut self.context.clone(), &lines);
        if findings.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let ranges: Vec<&Range<usize>> = findings.iter().filter(|f| f.line == i).map(|f| &f.range).collect();
            for (pos, ch) in line.char_indices() {
                out.push(if ranges.iter().any(|r| r.contains(&pos)) { self.glyph } else { ch });
            }
        }
        out
    }

    /// Out-of-band strings get the same treatment: titles are masked; a
    /// clipboard write that carries a secret is dropped, since it cannot be
    /// masked and still be useful.
    pub fn filter_passthrough(&self, items: Vec<Passthrough>) -> Vec<Passthrough> {
        items
            .into_iter()
            .filter_map(|item| match item {
                Passthrough::Title(title) => Some(Passthrough::Title(self.mask_text(&title))),
                Passthrough::Clipboard(_, ref text) if self.contains_secret(text) => None,
                other => Some(other),
            })
            .collect()
    }

    /// True if `text` holds anything a detector would mask.
    pub fn contains_secret(&self, text: &str) -> bool {
        self.enabled && !self.detectors.scan_from(&mut self.context.clone(), &text.split('\n').collect::<Vec<_>>()).is_empty()
    }

    /// Masks the cells of [`Self::spans`] (lines counted from the first
    /// scrolled row) on the visible rows.
    fn mask_spans(&self, cover: &mut Cover, scrolled_count: usize) {
        for span in &self.spans {
            let Some(r) = span.row.checked_sub(scrolled_count) else { continue };
            if let Some(ranges) = cover.rows.get_mut(r) {
                ranges.push(span.cols.clone());
                normalise(ranges);
            }
        }
    }

    /// Holds back the tail of the cursor's line if it could still grow into
    /// a secret. Returns when the withholding ends. Uses the lines built by the
    /// cover just computed.
    fn withhold_tail(&mut self, screen: &Screen, cover: &mut Cover, now: Instant) -> Option<Instant> {
        if self.withhold.is_zero() {
            return None;
        }
        let scrolled_count = screen.scrolled_len();
        let (cursor_row, cursor_col) = screen.cursor();
        let row_index = scrolled_count + usize::from(cursor_row);
        let lines = &self.lines;
        let Some(line) = lines.lines.iter().find(|l| l.first_row <= row_index && row_index <= l.last_row) else {
            self.withheld = None;
            return None;
        };
        // The text written so far: up to the cursor on its row.
        let end = lines.byte_at(line, row_index, usize::from(cursor_col));
        let written = lines.text(line).get(..end)?;
        let Some(start_byte) = self.detectors.pending_prefix(written) else {
            self.withheld = None;
            return None;
        };
        let tail = written.get(start_byte..)?.to_owned();
        self.spans.clear();
        lines.cells(line, &(start_byte..end), &mut self.spans);
        let first = self.spans.first()?;
        let (start_row, start_col) = (first.row, first.cols.start);
        let row = start_row.checked_sub(scrolled_count).and_then(|r| u16::try_from(r).ok())?;
        if self.released.as_ref().is_some_and(|(r, c, t)| *r == row && *c == start_col && tail.starts_with(t.as_str())) {
            // A number shown while short is masked once it is long enough
            // to be a card's.
            if masked_while_growing(&tail) {
                self.mask_spans(cover, scrolled_count);
            }
            return None;
        }
        let since = match &self.withheld {
            Some(h) if h.row == row && h.start == start_col && tail.starts_with(h.text.as_str()) => h.since,
            _ => now,
        };
        if now.saturating_duration_since(since) >= self.withhold {
            if !masked_while_growing(&tail) {
                // Nothing more came in time: a number, not a secret.
                self.withheld = None;
                self.released = Some((row, start_col, tail));
                return None;
            }
            // It grows slower than `hold_ms`: typed, key by key, or a
            // program that stalls mid-token. Shown now, all but its last
            // character would be in the clear before the whole matched; so
            // it stays masked while it stays the end of the line, and what
            // it ends as decides then (a secret stays masked, anything else
            // is shown).
            self.mask_spans(cover, scrolled_count);
            self.withheld = Some(Withheld { row, start: start_col, text: tail, since });
            return None;
        }
        // Hold every cell of the tail, on each row it spans.
        for span in &self.spans {
            let Some(r) = span.row.checked_sub(scrolled_count).and_then(|r| u16::try_from(r).ok()) else { continue };
            match cover.withheld.last_mut() {
                Some((hr, cols)) if *hr == r => {
                    cols.start = cols.start.min(span.cols.start);
                    cols.end = cols.end.max(span.cols.end);
                }
                _ => cover.withheld.push((r, span.cols.clone())),
            }
        }
        self.withheld = Some(Withheld { row, start: start_col, text: tail, since });
        Some(since + self.withhold)
    }
}

/// Whether a tail withheld past `hold_ms` is masked until it ends rather
/// than shown: all but a short run of digits (a number being typed, a
/// size, a pid), which is shown; a card or account number typed digit by
/// digit is masked from its eighth digit on, so no more than an issuer's
/// prefix is ever on screen.
fn masked_while_growing(tail: &str) -> bool {
    let numeric = tail.bytes().all(|c| c.is_ascii_digit() || matches!(c, b' ' | b'-'));
    !numeric || tail.bytes().filter(u8::is_ascii_digit).count() >= 8
}

/// Sorts and merges adjacent or overlapping ranges.
fn normalise(ranges: &mut Vec<Range<usize>>) {
    if ranges.len() < 2 {
        return;
    }
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges.drain(..) {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    *ranges = merged;
}

#[cfg(test)]
mod tests;
