//! The virtual screen: the real shell's output is parsed here, and nothing
//! else in custos looks at raw terminal bytes.
//!
//! [`Screen`] wraps the emulator (`alacritty_terminal`, chosen over `vt100`
//! by measurement: see `docs/benchmarks.md`) behind a small interface of
//! rows of [`Cell`]s, a cursor and [`Modes`], so the renderer (and later the
//! masker) do not depend on the emulator's API. Swapping emulators means
//! rewriting this file and the few cell helpers at its end.
//!
//! It also owns the three things a terminal must do beyond drawing:
//!
//! - **Rows that scroll off the top.** The emulator keeps them in its
//!   history; [`Screen::scrolled_rows`] hands them to the renderer, oldest
//!   first, and [`Screen::clear_scrolled`] drops them once both renderers
//!   have drawn them. Nothing is skipped however fast output arrives, as long
//!   as the caller renders before [`Screen::scrolled_len`] reaches
//!   [`HISTORY_LIMIT`] (the session renders at a far lower mark).
//! - **Answers to queries.** Programs ask the terminal where the cursor is,
//!   what it is, its size and colours. The user's terminal never sees the
//!   inner byte stream, so the answers come from here, consistent with the
//!   inner screen, queued in [`Screen::take_replies`].
//! - **Out-of-band strings.** Titles, the bell and clipboard writes are
//!   collected as [`Passthrough`] items. Clipboard reads are never answered:
//!   a program in the session must not read the user's clipboard.
//!
//! Sizes are clamped to at least 1 row and 2 columns: the emulator's column
//! arithmetic underflows on zero, and a terminal can report anything.

use std::cell::RefCell;
use std::rc::Rc;

use alacritty_terminal::event::{Event, EventListener, WindowSize};
use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::index::Line;
use alacritty_terminal::term::cell::Flags;
use alacritty_terminal::term::{ClipboardType, Config, Term, TermMode};
use alacritty_terminal::vte::ansi::{self, CursorShape, NamedColor, Processor, Rgb, StdSyncHandler};

pub use alacritty_terminal::term::cell::Cell;
pub use alacritty_terminal::vte::ansi::Color;

/// Rows the emulator may hold scrolled off the top before the oldest are
/// lost. The session draws them far sooner (`pipeline::MAX_PENDING_SCROLL`).
pub const HISTORY_LIMIT: usize = 100_000;

/// A size in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub rows: u16,
    pub cols: u16,
}

/// The largest screen the emulator makes. It allocates every cell up
/// front, and a size comes from outside (a recording's header or resize
/// event, a terminal's report): 65535x65535 would be 100 GB. Larger than
/// any real terminal (a 4K display in a tiny font is about 800x250).
pub const MAX_ROWS: u16 = 1000;
pub const MAX_COLS: u16 = 2000;

impl Size {
    fn clamped(self) -> Self {
        Self { rows: self.rows.clamp(1, MAX_ROWS), cols: self.cols.clamp(2, MAX_COLS) }
    }
}

impl Dimensions for Size {
    fn total_lines(&self) -> usize {
        usize::from(self.rows)
    }
    fn screen_lines(&self) -> usize {
        usize::from(self.rows)
    }
    fn columns(&self) -> usize {
        usize::from(self.cols)
    }
}

/// Rows that changed between two frames.
#[derive(Clone, Debug, Default)]
pub struct Damage {
    /// `None`: anything may have changed.
    rows: Option<Vec<bool>>,
}

impl Damage {
    /// Everything may have changed.
    pub fn full() -> Self {
        Self { rows: None }
    }

    pub fn row(&self, row: u16) -> bool {
        self.rows.as_ref().is_none_or(|rows| rows.get(usize::from(row)).copied().unwrap_or(true))
    }
}

/// Something the inner program sent that is not screen content but should
/// reach the user's terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Passthrough {
    Title(String),
    Bell,
    /// OSC 52 clipboard write: selection (`c` or `p`) and the decoded text.
    Clipboard(u8, String),
}

/// Input and display modes the renderer mirrors onto the user's terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Modes {
    pub app_cursor: bool,
    pub app_keypad: bool,
    pub bracketed_paste: bool,
    pub mouse_click: bool,
    pub mouse_drag: bool,
    pub mouse_motion: bool,
    pub mouse_sgr: bool,
    pub mouse_utf8: bool,
    pub focus: bool,
    /// DECSCUSR value: 0 default, 1/2 block, 3/4 underline, 5/6 bar.
    pub cursor_shape: u8,
    pub cursor_visible: bool,
    pub alternate_screen: bool,
}

/// Collects the emulator's events; the emulator takes its listener by
/// value and calls it through `&self`.
#[derive(Clone, Default)]
struct Listener(Rc<RefCell<Vec<Event>>>);

impl EventListener for Listener {
    fn send_event(&self, event: Event) {
        self.0.borrow_mut().push(event);
    }
}

/// The inner terminal.
pub struct Screen {
    term: Term<Listener>,
    parser: Processor<StdSyncHandler>,
    events: Listener,
    replies: Vec<u8>,
    passthrough: Vec<Passthrough>,
    size: Size,
    /// The start of an erase-scrollback sequence a write ended in, held
    /// until the next write says whether it is one.
    held: Vec<u8>,
}

/// Erase scrollback (ED 3), dropped: see the module doc.
const ERASE_SCROLLBACK: &[u8] = b"\x1b[3J";

impl Screen {
    /// A blank screen of `size`, clamped.
    pub fn new(size: Size) -> Self {
        let size = size.clamped();
        let events = Listener::default();
        let config = Config { scrolling_history: HISTORY_LIMIT, ..Config::default() };
        #[allow(clippy::disallowed_methods)] // this is the clamping wrapper
        let term = Term::new(config, &size, events.clone());
        Self {
            term,
            parser: Processor::new(),
            events,
            replies: Vec::new(),
            passthrough: Vec::new(),
            size,
            held: Vec::new(),
        }
    }

    /// Feeds bytes the inner program wrote.
    pub fn process(&mut self, bytes: &[u8]) {
        if self.held.is_empty() {
            self.advance(bytes);
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(bytes);
            self.advance(&joined);
        }
        self.collect_events();
    }

    /// Parses `bytes` without their erase-scrollback sequences; holds a
    /// trailing start of one.
    fn advance(&mut self, mut bytes: &[u8]) {
        while let Some(at) = memchr::memmem::find(bytes, ERASE_SCROLLBACK) {
            self.parser.advance(&mut self.term, bytes.get(..at).unwrap_or_default());
            bytes = bytes.get(at + ERASE_SCROLLBACK.len()..).unwrap_or_default();
        }
        let partial = (1..ERASE_SCROLLBACK.len()).rev().find(|&n| bytes.ends_with(ERASE_SCROLLBACK.get(..n).unwrap_or_default())).unwrap_or(0);
        let (now, later) = bytes.split_at(bytes.len() - partial);
        self.parser.advance(&mut self.term, now);
        self.held.extend_from_slice(later);
    }

    /// When a synchronized update (`?2026`) holds output back, the moment it
    /// must be applied even if the program never ends it.
    pub fn sync_deadline(&self) -> Option<std::time::Instant> {
        self.parser.sync_timeout().sync_timeout()
    }

    /// Applies a held synchronized update (its deadline passed).
    pub fn end_sync(&mut self) {
        self.parser.stop_sync(&mut self.term);
        self.collect_events();
    }

    /// True while a synchronized update is being held back: the screen is
    /// mid-update and should not be drawn.
    pub fn in_sync(&self) -> bool {
        self.sync_deadline().is_some()
    }

    fn collect_events(&mut self) {
        let events = std::mem::take(&mut *self.events.0.borrow_mut());
        for event in events {
            match event {
                Event::PtyWrite(text) => self.replies.extend_from_slice(text.as_bytes()),
                Event::Title(title) => self.passthrough.push(Passthrough::Title(title)),
                Event::ResetTitle => self.passthrough.push(Passthrough::Title(String::new())),
                Event::Bell => self.passthrough.push(Passthrough::Bell),
                Event::ClipboardStore(kind, text) => {
                    let kind = if kind == ClipboardType::Clipboard { b'c' } else { b'p' };
                    self.passthrough.push(Passthrough::Clipboard(kind, text));
                }
                Event::ColorRequest(index, format) => {
                    self.replies.extend_from_slice(format(default_color(index)).as_bytes());
                }
                Event::TextAreaSizeRequest(format) => {
                    let ws = WindowSize { num_lines: self.size.rows, num_cols: self.size.cols, cell_width: 8, cell_height: 16 };
                    self.replies.extend_from_slice(format(ws).as_bytes());
                }
                _ => {}
            }
        }
    }

    /// Resizes, clamped like [`Screen::new`]. The emulator reflows wrapped
    /// lines, as terminals do; rows pushed off the top become scrolled rows.
    pub fn resize(&mut self, size: Size) {
        let size = size.clamped();
        self.size = size;
        #[allow(clippy::disallowed_methods)] // this is the clamping wrapper
        self.term.resize(size);
    }

    pub fn size(&self) -> Size {
        self.size
    }

    /// The cells of visible row `row` (0 is the top), `None` past the bottom.
    pub fn row(&self, row: u16) -> Option<&[Cell]> {
        let grid = self.term.grid();
        (usize::from(row) < grid.screen_lines()).then(|| &grid[Line(i32::from(row))][..])
    }

    /// How many rows have scrolled off the top since [`Screen::clear_scrolled`].
    pub fn scrolled_len(&self) -> usize {
        self.term.grid().history_size()
    }

    /// The rows that scrolled off the top, oldest first.
    pub fn scrolled_rows(&self) -> impl Iterator<Item = &[Cell]> {
        let grid = self.term.grid();
        let history = i32::try_from(grid.history_size()).unwrap_or(i32::MAX);
        (-history..0).map(move |line| &grid[Line(line)][..])
    }

    /// Forgets the scrolled rows, once they have been drawn.
    pub fn clear_scrolled(&mut self) {
        self.term.grid_mut().clear_history();
    }

    /// Which rows changed since the last call; resets the record. Both
    /// renderers of a frame share one answer.
    pub fn take_damage(&mut self) -> Damage {
        let rows = match self.term.damage() {
            alacritty_terminal::term::TermDamage::Full => None,
            alacritty_terminal::term::TermDamage::Partial(lines) => {
                let mut rows = vec![false; usize::from(self.size.rows)];
                for line in lines {
                    if let Some(flag) = rows.get_mut(line.line) {
                        *flag = true;
                    }
                }
                Some(rows)
            }
        };
        self.term.reset_damage();
        Damage { rows }
    }

    /// Cursor position (row, column), clamped to the screen.
    pub fn cursor(&self) -> (u16, u16) {
        let point = self.term.grid().cursor.point;
        let row = u16::try_from(point.line.0.max(0)).unwrap_or(u16::MAX).min(self.size.rows - 1);
        let col = u16::try_from(point.column.0).unwrap_or(u16::MAX).min(self.size.cols - 1);
        (row, col)
    }

    /// The cursor sits past the last column: the next character wraps
    /// first (a row just written to its end).
    pub fn wrap_pending(&self) -> bool {
        self.term.grid().cursor.input_needs_wrap
    }

    pub fn modes(&self) -> Modes {
        let mode = *self.term.mode();
        let style = self.term.cursor_style();
        let shape = match style.shape {
            CursorShape::Block | CursorShape::HollowBlock => 1,
            CursorShape::Underline => 3,
            CursorShape::Beam => 5,
            CursorShape::Hidden => 0,
        };
        Modes {
            app_cursor: mode.contains(TermMode::APP_CURSOR),
            app_keypad: mode.contains(TermMode::APP_KEYPAD),
            bracketed_paste: mode.contains(TermMode::BRACKETED_PASTE),
            mouse_click: mode.contains(TermMode::MOUSE_REPORT_CLICK),
            mouse_drag: mode.contains(TermMode::MOUSE_DRAG),
            mouse_motion: mode.contains(TermMode::MOUSE_MOTION),
            mouse_sgr: mode.contains(TermMode::SGR_MOUSE),
            mouse_utf8: mode.contains(TermMode::UTF8_MOUSE),
            focus: mode.contains(TermMode::FOCUS_IN_OUT),
            cursor_shape: if style == ansi::CursorStyle::default() { 0 } else { shape + u8::from(!style.blinking) },
            cursor_visible: mode.contains(TermMode::SHOW_CURSOR) && style.shape != CursorShape::Hidden,
            alternate_screen: mode.contains(TermMode::ALT_SCREEN),
        }
    }

    /// Answers to terminal queries, to be written to the inner program.
    pub fn take_replies(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.replies)
    }

    pub fn take_passthrough(&mut self) -> Vec<Passthrough> {
        std::mem::take(&mut self.passthrough)
    }

    /// The visible text, rows joined by newlines, trailing blanks trimmed.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for r in 0..self.size.rows {
            if r > 0 {
                out.push('\n');
            }
            let line = self.row(r).map(row_text).unwrap_or_default();
            out.push_str(line.trim_end());
        }
        out
    }
}

/// A row's text: one char per cell (plus combining marks), wide-character
/// spacers skipped.
pub fn row_text(cells: &[Cell]) -> String {
    let mut s = String::with_capacity(cells.len());
    for cell in cells {
        if is_spacer(cell) {
            continue;
        }
        s.push(shown_char(cell));
        if let Some(marks) = cell.zerowidth() {
            s.extend(marks);
        }
    }
    s
}

/// The right half of a wide character: drawn by its left half.
pub fn is_spacer(cell: &Cell) -> bool {
    cell.flags.contains(Flags::WIDE_CHAR_SPACER)
}

/// Whether the row continues on the next one (it wrapped).
pub fn is_wrapped(cells: &[Cell]) -> bool {
    cells.last().is_some_and(|c| c.flags.contains(Flags::WRAPLINE))
}

/// The character a cell shows. The emulator keeps a `\t` in the cell a tab
/// started from (for copying text out); on screen that cell is blank, and
/// writing the tab to another terminal would move its cursor instead.
pub fn shown_char(cell: &Cell) -> char {
    match cell.c {
        '\0' | '\t' => ' ',
        c => c,
    }
}

/// A cell that looks like an erased one: nothing drawn, default background,
/// no line or inversion that would show.
pub fn is_blank(cell: &Cell) -> bool {
    matches!(cell.c, ' ' | '\0' | '\t')
        && cell.bg == Color::Named(NamedColor::Background)
        && !cell.flags.intersects(Flags::INVERSE | Flags::ALL_UNDERLINES | Flags::STRIKEOUT)
        && cell.extra.is_none()
}

/// The colour xterm shows by default for palette `index` (0-255), or the
/// default foreground (256) and background (257): the answer to OSC 4/10/11
/// queries. Answering as a dark terminal.
fn default_color(index: usize) -> Rgb {
    const BASE: [(u8, u8, u8); 16] = [
        (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
        (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
    ];
    let rgb = |(r, g, b): (u8, u8, u8)| Rgb { r, g, b };
    match index {
        0..=15 => BASE.get(index).copied().map_or(Rgb { r: 0, g: 0, b: 0 }, rgb),
        16..=231 => {
            let i = index - 16;
            let level = |v: usize| if v == 0 { 0 } else { u8::try_from(55 + v * 40).unwrap_or(255) };
            Rgb { r: level(i / 36), g: level((i / 6) % 6), b: level(i % 6) }
        }
        232..=255 => {
            let v = u8::try_from(8 + (index - 232) * 10).unwrap_or(255);
            Rgb { r: v, g: v, b: v }
        }
        256 => Rgb { r: 0xd0, g: 0xd0, b: 0xd0 },
        _ => Rgb { r: 0, g: 0, b: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrolled_text(s: &Screen) -> Vec<String> {
        s.scrolled_rows().map(|r| row_text(r).trim_end().to_owned()).collect()
    }

    #[test]
    fn zero_size_is_clamped_instead_of_panicking() {
        let mut s = Screen::new(Size { rows: 0, cols: 0 });
        assert_eq!(s.size(), Size { rows: 1, cols: 2 });
        s.resize(Size { rows: 0, cols: 5 });
        assert_eq!(s.size(), Size { rows: 1, cols: 5 });
        s.process(b"hello\r\nworld");
        assert_eq!(s.text(), "world");
    }

    /// A recording's header or resize event may say 65535x65535: the
    /// emulator would allocate every cell of it (100 GB) up front.
    #[test]
    fn a_huge_size_is_clamped_instead_of_allocated() {
        let mut s = Screen::new(Size { rows: u16::MAX, cols: u16::MAX });
        assert_eq!(s.size(), Size { rows: MAX_ROWS, cols: MAX_COLS });
        s.resize(Size { rows: 24, cols: 80 });
        s.resize(Size { rows: 40_000, cols: 3 });
        assert_eq!(s.size(), Size { rows: MAX_ROWS, cols: 3 });
        s.process(b"ok");
        assert_eq!(s.text().trim_end(), "ok");
    }

    #[test]
    fn rows_scrolled_off_the_top_are_kept_in_order_until_cleared() {
        let mut s = Screen::new(Size { rows: 3, cols: 10 });
        for i in 0..10 {
            s.process(format!("line{i}\r\n").as_bytes());
        }
        let expected: Vec<String> = (0..8).map(|i| format!("line{i}")).collect();
        assert_eq!(scrolled_text(&s), expected);
        s.clear_scrolled();
        assert_eq!(s.scrolled_len(), 0);
        assert_eq!(s.text(), "line8\nline9\n");
    }

    #[test]
    fn rows_a_clear_moves_off_the_screen_are_kept_though_it_erases_the_scrollback() {
        // `clear`: home, erase the screen, erase the scrollback; the
        // sequences split over writes at every point.
        let clear = b"\x1b[H\x1b[2J\x1b[3J";
        for cut in 0..=clear.len() {
            let mut s = Screen::new(Size { rows: 3, cols: 10 });
            s.process(b"one\r\ntwo\r\nthree\r\nfour\r\n");
            s.process(&clear[..cut]);
            s.process(&clear[cut..]);
            s.process(b"five");
            assert_eq!(scrolled_text(&s), ["one", "two", "three", "four"], "cut at {cut}");
            assert_eq!(s.text(), "five\n\n");
        }
    }

    #[test]
    fn a_write_ending_in_an_escape_that_is_not_an_erase_is_applied_with_the_next() {
        let mut s = Screen::new(Size { rows: 3, cols: 10 });
        s.process(b"ab\x1b[");
        s.process(b"31mc\x1b[3");
        s.process(b"Dd\x1b");
        s.process(b"[1;1He");
        assert_eq!(s.text(), "ebc\n\n");
    }

    #[test]
    fn alternate_screen_rows_do_not_reach_scrollback() {
        let mut s = Screen::new(Size { rows: 2, cols: 10 });
        s.process(b"\x1b[?1049h");
        for i in 0..5 {
            s.process(format!("alt{i}\r\n").as_bytes());
        }
        assert_eq!(s.scrolled_len(), 0);
        assert!(s.modes().alternate_screen);
    }

    #[test]
    fn cursor_position_query_is_answered_from_the_inner_screen() {
        let mut s = Screen::new(Size { rows: 5, cols: 20 });
        s.process(b"\x1b[3;7H\x1b[6n");
        assert_eq!(s.take_replies(), b"\x1b[3;7R");
    }

    #[test]
    fn device_attribute_size_and_colour_queries_are_answered() {
        let mut s = Screen::new(Size { rows: 5, cols: 20 });
        s.process(b"\x1b[c\x1b[18t\x1b]11;?\x07");
        let replies = String::from_utf8(s.take_replies()).unwrap();
        assert!(replies.starts_with("\x1b[?6c"), "{replies:?}");
        assert!(replies.contains("\x1b[8;5;20t"), "{replies:?}");
        assert!(replies.contains("\x1b]11;rgb:0000/0000/0000\x07"), "{replies:?}");
    }

    #[test]
    fn title_bell_and_clipboard_are_passed_through() {
        let mut s = Screen::new(Size { rows: 5, cols: 20 });
        s.process(b"\x1b]2;my title\x07\x07\x1b]52;c;aGk=\x07");
        assert_eq!(
            s.take_passthrough(),
            vec![Passthrough::Title("my title".into()), Passthrough::Bell, Passthrough::Clipboard(b'c', "hi".into())]
        );
    }

    #[test]
    fn clipboard_reads_are_never_answered() {
        let mut s = Screen::new(Size { rows: 5, cols: 20 });
        s.process(b"\x1b]52;c;?\x07");
        assert!(s.take_replies().is_empty());
    }

    #[test]
    fn default_palette_matches_xterm() {
        assert_eq!(default_color(196), Rgb { r: 255, g: 0, b: 0 });
        assert_eq!(default_color(244), Rgb { r: 128, g: 128, b: 128 });
    }
}
