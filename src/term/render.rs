//! The renderer: turns the inner [`Screen`] into bytes for one target
//! terminal, the way a multiplexer renders a pane.
//!
//! There are two targets per session, each with its own [`Renderer`]: the
//! user's terminal (pane plus a status line on the bottom row) and the
//! recording (the pane alone, so the status line is never recorded). Both are
//! fed the same screen and the same scrolled rows, so the recording shows
//! exactly what the user saw in the pane.
//!
//! A frame is rendered in this order:
//!
//! 1. **Scrolled rows.** Rows that scrolled off the top of the inner primary
//!    screen since the last frame are drawn onto the top rows of the target,
//!    then the target is scrolled with line feeds on its bottom row. That
//!    pushes exactly those rows, in order, into the target's scrollback (a
//!    full-screen scroll is the one kind every terminal saves), whatever the
//!    target's own content was. The screen is then redrawn in full.
//! 2. **Alternate screen.** Entering or leaving the inner alternate screen is
//!    mirrored on the target (`?1049`), so full-screen programs never pollute
//!    the user's scrollback. Each buffer keeps its own shadow.
//! 3. **Cells.** Each pane row is compared with the shadow of what the target
//!    shows; only the changed span is redrawn, with `EL` for trailing blanks.
//! 4. **Status line, modes, cursor.** Input modes (application cursor and
//!    keypad, bracketed paste, mouse, focus) and cursor shape are mirrored
//!    only when they change.
//!
//! The renderer is pure: screen and text in, bytes out. It never reads a
//! clock or a file descriptor.

use std::fmt::Write as _;

use alacritty_terminal::term::cell::Flags;
use alacritty_terminal::vte::ansi::NamedColor;

use std::ops::Range;

use crate::term::masker::Cover;
use crate::term::screen::{is_blank, is_spacer, is_wrapped, shown_char, Cell, Color, Damage, Modes, Passthrough, Screen};

/// Where the pane sits on the target terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Rows of the inner screen.
    pub pane_rows: u16,
    pub cols: u16,
    /// A status line on the row below the pane.
    pub status: bool,
}

impl Layout {
    /// The layout for an outer terminal of `rows` x `cols`. The status line is
    /// dropped when the terminal is too short to spare a row for it.
    pub fn for_terminal(rows: u16, cols: u16, want_status: bool) -> Self {
        let status = want_status && rows >= 3;
        Self {
            pane_rows: if status { rows - 1 } else { rows.max(1) },
            cols: cols.max(2),
            status,
        }
    }

    fn total_rows(self) -> u16 {
        self.pane_rows + u16::from(self.status)
    }
}

/// Rows that scrolled off the inner screen, formatted once and drawn by
/// both renderers.
#[derive(Default)]
pub struct Scrolled {
    text: String,
    rows: Vec<ScrolledRow>,
    /// The cells (covered) of the first screenful of rows: an inline
    /// target may show them already and compares them with what it shows.
    head: Vec<Vec<Cell>>,
}

struct ScrolledRow {
    /// Byte range of the row in `text`.
    start: usize,
    end: usize,
    /// Cells its text fills.
    cells: usize,
    /// It wrapped into the next row.
    wrapped: bool,
    /// The pen its text assumes at its start (carried over from the row it
    /// continues; the default otherwise).
    pen: Pen,
}

impl Scrolled {
    /// Formats the screen's scrolled rows, with the cells `cover` masks
    /// drawn as its glyph. The caller clears them from the screen once every
    /// renderer has drawn them.
    pub fn take(screen: &Screen, cover: &Cover) -> Self {
        Self::take_with(screen, cover, true)
    }

    /// As [`Scrolled::take`]; the cells of the first screenful are copied
    /// only when `with_head` (an inline target will draw these rows: see
    /// [`Renderer::is_inline`]), so a login's flood does not copy them.
    pub fn take_with(screen: &Screen, cover: &Cover, with_head: bool) -> Self {
        let mut text = String::new();
        let mut rows = Vec::with_capacity(screen.scrolled_len());
        // Rows of one wrapped line are written as one run of text, so the
        // pen carries over between them; a line ends with the pen reset.
        let mut pen = Some(Pen::default());
        let mut masked = Vec::new();
        let mut head = Vec::new();
        let keep = if with_head { usize::from(screen.size().rows) } else { 0 };
        for (index, cells) in screen.scrolled_rows().enumerate() {
            let cells = apply_cover(cells, cover.scrolled_row(index), None, cover.glyph, &mut masked);
            if index < keep {
                head.push(cells.to_vec());
            }
            let start = text.len();
            let start_pen = pen.unwrap_or_default();
            let wrapped = is_wrapped(cells);
            let end = if wrapped { cells.len() } else { last_content(cells).map_or(0, |c| c + 1) };
            write_cells(cells.get(..end).unwrap_or_default(), &mut pen, &mut text);
            if !wrapped && pen != Some(Pen::default()) {
                text.push_str("\x1b[0m");
                pen = Some(Pen::default());
            }
            rows.push(ScrolledRow { start, end: text.len(), cells: end, wrapped, pen: start_pen });
        }
        Self { text, rows, head }
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }
}

/// What one buffer (primary or alternate) of the target shows.
#[derive(Default)]
struct Shadow {
    /// `None`: unknown, redraw everything.
    rows: Option<Vec<Vec<Cell>>>,
    status: Option<String>,
    /// Rows the last frame drew masked or withheld: they must be compared again
    /// even when the screen did not change them, since the cover may have.
    covered: Vec<bool>,
}

impl Shadow {
    fn invalidate(&mut self) {
        self.rows = None;
        self.status = None;
    }
}

/// Renders frames for one target terminal.
pub struct Renderer {
    layout: Layout,
    primary: Shadow,
    alternate: Shadow,
    /// The target is in its alternate screen.
    in_alt: bool,
    modes: Modes,
    /// The primary screen is drawn inline (see `inline`), until a resize.
    inline: Option<inline::Inline>,
    /// The target was left by the inline placement: the next output takes
    /// the whole target first (see [`Renderer::start`]).
    restart: bool,
    /// The target's cursor is visible.
    cursor_shown: bool,
}

impl Renderer {
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            primary: Shadow::default(),
            alternate: Shadow::default(),
            in_alt: false,
            modes: Modes { cursor_visible: true, ..Modes::default() },
            inline: None,
            restart: false,
            cursor_shown: true,
        }
    }

    /// A renderer that draws the primary screen from wherever the target's
    /// cursor is, as the command would have (see `inline`), with no
    /// [`Renderer::start`]. `layout` has no status line.
    pub fn inline(layout: Layout) -> Self {
        Self { inline: Some(inline::Inline::new(layout.cols)), ..Self::new(Layout { status: false, ..layout }) }
    }

    /// The primary screen is still drawn inline.
    pub fn is_inline(&self) -> bool {
        self.inline.is_some()
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The target changed size: everything it shows must be redrawn. An
    /// inline target is taken whole from then on: it reflowed the rows
    /// written inline its own way, and a status line needs the bottom row.
    pub fn resize(&mut self, layout: Layout) {
        self.layout = layout;
        if self.inline.take().is_some() {
            self.restart = true;
        }
        self.invalidate();
    }

    /// Forgets what the target shows, so the next frame redraws it all.
    pub fn invalidate(&mut self) {
        self.primary.invalidate();
        self.alternate.invalidate();
        if let Some(inline) = self.inline.as_mut() {
            inline.invalidate();
        }
    }

    /// The target leaves the inline placement: it is taken whole now.
    fn restart_if_due(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.restart) {
            // The alternate screen is left as it is: `start` scrolls the
            // primary one, and the alternate is redrawn whole anyway.
            let alt = self.in_alt;
            if alt {
                out.extend_from_slice(b"\x1b[0m\x1b[?1049l");
                self.in_alt = false;
            }
            self.start(out);
        }
    }

    /// Bytes that make a fresh target ready: existing content is scrolled
    /// into the target's scrollback rather than erased, then the pane starts
    /// blank at the top.
    pub fn start(&mut self, out: &mut Vec<u8>) {
        let rows = self.layout.total_rows();
        let _ = write!(Text(out), "\x1b[{rows};1H");
        out.extend(std::iter::repeat_n(b'\n', usize::from(rows)));
        out.extend_from_slice(b"\x1b[H");
        self.invalidate();
    }

    /// As [`Renderer::start`], for a target whose cursor the terminal
    /// reported at `cursor` (row, column, 1-based): what is above the
    /// cursor (the message of the day and the last-login line sshd printed)
    /// stays in view, the rows from the cursor down are blanked, and a pane
    /// row is drawn only once the shell writes to it. Answers the pane row
    /// (0-based) the shell starts on. Content that leaves no row for the
    /// shell above the status line is scrolled up, into the scrollback.
    pub fn start_below(&mut self, cursor: (u16, u16), out: &mut Vec<u8>) -> u16 {
        let (row, col) = cursor;
        let row = row.clamp(1, self.layout.total_rows());
        // Rows in use: those above the cursor, and its own if written on.
        let used = if col > 1 { row } else { row - 1 };
        let pane = self.layout.pane_rows.max(1);
        let scroll = (used + 1).saturating_sub(pane);
        if scroll > 0 {
            let _ = write!(Text(out), "\x1b[{};1H", self.layout.total_rows());
            out.extend(std::iter::repeat_n(b'\n', usize::from(scroll)));
        }
        let start = used - scroll;
        cup(out, usize::from(start) + 1, 1);
        out.extend_from_slice(b"\x1b[0m\x1b[J");
        self.invalidate();
        // Known rows, none of them what the screen holds: each is drawn
        // whole when the screen first changes it, and not before.
        self.primary.rows = Some(vec![Vec::new(); usize::from(pane)]);
        start
    }

    /// Renders one frame: the `scrolled` rows (see [`Scrolled::take`]), then
    /// the current screen (only rows in `damage` are compared with what the
    /// target shows), the status line, the modes and the cursor.
    #[allow(clippy::too_many_arguments)]
    pub fn frame(
        &mut self,
        screen: &Screen,
        scrolled: &Scrolled,
        damage: &Damage,
        cover: &Cover,
        status: Option<&str>,
        out: &mut Vec<u8>,
    ) {
        let modes = screen.modes();
        self.restart_if_due(out);
        // Drawn whole, the cursor is hidden while rows are drawn under it.
        // Inline, the cursor moves with the rows: hiding it is noise.
        let whole = self.inline.is_none() || modes.alternate_screen;
        if whole {
            out.extend_from_slice(b"\x1b[?25l");
        }
        self.push_scrolled(scrolled, out);
        self.switch_buffer(modes.alternate_screen, out);
        if let Some(inline) = self.inline.as_mut().filter(|_| !whole) {
            inline.draw(screen, damage, cover, out);
            write_mode_changes(&self.modes, &modes, out);
            self.modes = modes;
            if modes.cursor_visible != self.cursor_shown {
                out.extend_from_slice(if modes.cursor_visible { b"\x1b[?25h" } else { b"\x1b[?25l" });
                self.cursor_shown = modes.cursor_visible;
            }
            return;
        }

        let layout = self.layout;
        let shadow = if self.in_alt { &mut self.alternate } else { &mut self.primary };
        draw_cells(screen, layout, damage, cover, shadow, out);
        if layout.status {
            let text = status.unwrap_or("");
            if shadow.status.as_deref() != Some(text) {
                draw_status(layout, text, out);
                shadow.status = Some(text.to_owned());
            }
        }

        write_mode_changes(&self.modes, &modes, out);
        self.modes = modes;

        let (row, col) = screen.cursor();
        let row = row.min(layout.pane_rows.saturating_sub(1));
        let col = col.min(layout.cols.saturating_sub(1));
        cup(out, usize::from(row) + 1, usize::from(col) + 1);
        if modes.cursor_visible {
            out.extend_from_slice(b"\x1b[?25h");
        }
        self.cursor_shown = modes.cursor_visible;
    }

    /// Titles, bells and clipboard writes, in the order the program sent them.
    pub fn passthrough(items: &[Passthrough], out: &mut Vec<u8>) {
        for item in items {
            match item {
                Passthrough::Title(title) => {
                    let clean: String = title.chars().filter(|c| !c.is_control()).collect();
                    let _ = write!(Text(out), "\x1b]2;{clean}\x1b\\");
                }
                Passthrough::Bell => out.push(0x07),
                Passthrough::Clipboard(kind, text) => {
                    use base64::Engine as _;
                    out.extend_from_slice(b"\x1b]52;");
                    out.push(*kind);
                    out.push(b';');
                    out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(text).as_bytes());
                    out.extend_from_slice(b"\x1b\\");
                }
            }
        }
    }

    /// Bytes that put the target back as the session found it: modes off,
    /// primary screen, cursor visible, status line cleared, cursor on a fresh
    /// line below the pane's content.
    /// Inline, the cursor stays where the command left it.
    pub fn finish(&mut self, screen: &Screen, out: &mut Vec<u8>) {
        let restored = Modes { cursor_visible: true, ..Modes::default() };
        write_mode_changes(&self.modes, &restored, out);
        self.modes = restored;
        let was_alt = self.in_alt;
        self.switch_buffer(false, out);
        if self.inline.is_some() {
            if !std::mem::replace(&mut self.cursor_shown, true) {
                out.extend_from_slice(b"\x1b[?25h");
            }
            return;
        }
        if self.layout.status {
            let _ = write!(Text(out), "\x1b[{};1H\x1b[0m\x1b[2K", self.layout.total_rows());
        }
        // Leave the cursor below the last non-blank row of the primary pane.
        let last = (0..self.layout.pane_rows)
            .rev()
            .find(|&r| screen.row(r).is_some_and(|cells| last_content(cells).is_some()))
            .map_or(0, |r| r + 1);
        let row = if was_alt { screen.cursor().0 } else { last.max(screen.cursor().0) };
        let row = row.min(self.layout.pane_rows.saturating_sub(1));
        let _ = write!(Text(out), "\x1b[0m\x1b[?25h\x1b[{};1H", row + 1);
        if last > 0 {
            out.extend_from_slice(b"\r\n");
        }
    }

    fn switch_buffer(&mut self, alt: bool, out: &mut Vec<u8>) {
        if alt == self.in_alt {
            return;
        }
        if alt {
            // 1049h saves the cursor and clears the alternate buffer.
            out.extend_from_slice(b"\x1b[0m\x1b[?1049h");
            self.alternate.invalidate();
        } else {
            // 1049l restores the primary buffer as we last drew it.
            out.extend_from_slice(b"\x1b[0m\x1b[?1049l");
        }
        self.in_alt = alt;
    }

    /// Pushes `scrolled` rows into the target's scrollback, in order. The
    /// pane is left to the next frame to redraw.
    pub fn push_scrolled(&mut self, scrolled: &Scrolled, out: &mut Vec<u8>) {
        if scrolled.is_empty() {
            return;
        }
        self.restart_if_due(out);
        self.switch_buffer(false, out);
        if let Some(inline) = self.inline.as_mut() {
            inline.scrolled(scrolled, out);
            return;
        }
        let pane = usize::from(self.layout.pane_rows.max(1));
        let bottom = self.layout.total_rows();
        out.extend_from_slice(b"\x1b[0m");
        for batch in scrolled.rows.chunks(pane) {
            let mut continues = false;
            for (i, row) in batch.iter().enumerate() {
                // A row that continues a wrapped one is written straight on:
                // the target wraps it itself, keeps the line whole in its
                // scrollback, and a search of the stream finds it whole.
                if !continues {
                    cup(out, i + 1, 1);
                    out.extend_from_slice(b"\x1b[0m\x1b[2K");
                    if row.pen != Pen::default() {
                        row.pen.write(&mut Text(out));
                    }
                }
                out.extend_from_slice(scrolled.text.get(row.start..row.end).unwrap_or_default().as_bytes());
                continues = row.wrapped;
            }
            let _ = write!(Text(out), "\x1b[0m\x1b[{bottom};1H");
            out.extend(std::iter::repeat_n(b'\n', batch.len()));
        }
        self.primary.invalidate();
    }
}

/// Cursor position (1-based), without `fmt`: it is written for every row
/// drawn, and `write!` showed up at 8 % of a flood's profile.
fn cup(out: &mut Vec<u8>, row: usize, col: usize) {
    out.extend_from_slice(b"\x1b[");
    push_decimal(out, row);
    out.push(b';');
    push_decimal(out, col);
    out.push(b'H');
}

fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            // n % 10 < 10, so the cast cannot truncate.
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
}

/// `fmt::Write` into a byte buffer.
struct Text<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Text<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The column of the last cell that shows something.
fn last_content(cells: &[Cell]) -> Option<usize> {
    cells.iter().rposition(|c| !is_blank(c))
}

/// Writes `cells` (their text and the SGR changes between them) to `out`.
///
/// This is the renderer's innermost loop (every cell of every row that
/// scrolls off passes through it), so it writes to a `String` directly.
fn write_cells(cells: &[Cell], pen: &mut Option<Pen>, out: &mut String) {
    for cell in cells {
        if is_spacer(cell) {
            continue;
        }
        let want = Pen { fg: cell.fg, bg: cell.bg, flags: cell.flags & STYLE_FLAGS };
        if *pen != Some(want) {
            want.write(out);
            *pen = Some(want);
        }
        out.push(shown_char(cell));
        if let Some(marks) = cell.zerowidth() {
            out.extend(marks);
        }
    }
}

/// The cells to draw for a row: the screen's, or a copy with the covered
/// cells replaced by the glyph (and withheld ones by blanks). A covered wide
/// character becomes one glyph per cell, so the layout holds.
fn apply_cover<'a>(
    cells: &'a [Cell],
    masked: &[Range<usize>],
    withheld: Option<&Range<usize>>,
    glyph: char,
    buf: &'a mut Vec<Cell>,
) -> &'a [Cell] {
    if masked.is_empty() && withheld.is_none() {
        return cells;
    }
    buf.clear();
    buf.extend_from_slice(cells);
    let wide = Flags::WIDE_CHAR | Flags::WIDE_CHAR_SPACER | Flags::LEADING_WIDE_CHAR_SPACER;
    let mut cover = |range: &Range<usize>, c: char| {
        for cell in buf.iter_mut().take(range.end).skip(range.start) {
            cell.c = c;
            cell.flags.remove(wide);
            cell.extra = None;
        }
    };
    for range in masked {
        cover(range, glyph);
    }
    if let Some(range) = withheld {
        cover(range, ' ');
    }
    buf
}

fn draw_cells(screen: &Screen, layout: Layout, damage: &Damage, cover: &Cover, shadow: &mut Shadow, out: &mut Vec<u8>) {
    let rows = layout.pane_rows;
    let cols = usize::from(layout.cols);
    let redraw_all = shadow.rows.is_none();
    let shadow_rows = shadow.rows.get_or_insert_with(Vec::new);
    shadow_rows.resize_with(usize::from(rows), Vec::new);
    shadow.covered.resize(usize::from(rows), false);
    let mut masked = Vec::new();
    // After a row drawn to its last column that wraps, the target's cursor
    // waits to wrap: the next row can be written straight on.
    let mut wrap_pending = false;

    for ((r, shadow_row), was_covered) in (0..rows).zip(shadow_rows.iter_mut()).zip(shadow.covered.iter_mut()) {
        let covered = cover.touches(r);
        if !redraw_all && !damage.row(r) && !covered && !*was_covered {
            wrap_pending = false;
            continue;
        }
        *was_covered = covered;
        let Some(cells) = screen.row(r) else { break };
        let cells = cells.get(..cols).unwrap_or(cells);
        let cells = apply_cover(cells, cover.row(r), cover.withheld_on(r), cover.glyph, &mut masked);
        let changed = if redraw_all {
            Some(0)
        } else {
            cells.iter().zip(shadow_row.iter()).position(|(a, b)| a != b).or_else(|| (cells.len() != shadow_row.len()).then_some(0))
        };
        let Some(mut first) = changed else {
            wrap_pending = false;
            continue;
        };
        let last_changed = if redraw_all || cells.len() != shadow_row.len() {
            cells.len().saturating_sub(1)
        } else {
            cells.iter().zip(shadow_row.iter()).rposition(|(a, b)| a != b).unwrap_or(first)
        };
        // Never start drawing on the right half of a wide character.
        while first > 0 && cells.get(first).is_some_and(is_spacer) {
            first -= 1;
        }
        let content_end = last_content(cells);
        let draw_end = content_end.map(|lc| lc.min(last_changed));
        if !(wrap_pending && first == 0) {
            cup(out, usize::from(r) + 1, first + 1);
        }
        // The target's pen is unknown after a jump; the first cell sets it.
        let mut pen: Option<Pen> = None;
        let mut text = String::new();
        if let Some(end) = draw_end.filter(|&e| e >= first) {
            write_cells(cells.get(first..=end).unwrap_or_default(), &mut pen, &mut text);
        }
        out.extend_from_slice(text.as_bytes());
        if pen.is_some_and(|p| p != Pen::default()) {
            out.extend_from_slice(b"\x1b[0m");
        }
        // Everything after the last non-blank cell is blank: erase to the
        // end of the line instead of writing spaces.
        let erase = content_end.is_none_or(|lc| last_changed > lc);
        if erase {
            out.extend_from_slice(b"\x1b[K");
        }
        wrap_pending = !erase && draw_end == Some(cols - 1) && is_wrapped(cells);
        shadow_row.clear();
        shadow_row.extend_from_slice(cells);
    }
}

/// The status line, cut and padded to exactly the terminal's width in
/// columns (a wide character such as the hourglass takes two: counting
/// characters instead wrapped the last row and scrolled the terminal).
fn draw_status(layout: Layout, text: &str, out: &mut Vec<u8>) {
    use unicode_width::UnicodeWidthChar as _;
    let width = usize::from(layout.cols);
    let mut line = String::new();
    let mut used = 0;
    for c in text.chars().filter(|c| !c.is_control()) {
        let w = c.width().unwrap_or(0);
        if used + w > width {
            break;
        }
        used += w;
        line.push(c);
    }
    line.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
    let _ = write!(Text(out), "\x1b[{};1H\x1b[0;7m{line}\x1b[0m", layout.total_rows());
}

/// The SGR state of the target while drawing a span.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Pen {
    fg: Color,
    bg: Color,
    flags: Flags,
}

impl Default for Pen {
    fn default() -> Self {
        Self { fg: Color::Named(NamedColor::Foreground), bg: Color::Named(NamedColor::Background), flags: Flags::empty() }
    }
}

/// The flags that change how a cell is drawn.
const STYLE_FLAGS: Flags = Flags::BOLD
    .union(Flags::DIM)
    .union(Flags::ITALIC)
    .union(Flags::ALL_UNDERLINES)
    .union(Flags::INVERSE)
    .union(Flags::HIDDEN)
    .union(Flags::STRIKEOUT);

impl Pen {
    /// Writes the SGR sequence that sets exactly this pen.
    fn write(self, out: &mut impl std::fmt::Write) {
        let want = self;
        let _ = out.write_str("\x1b[0");
        for (flag, code) in [
            (Flags::BOLD, ";1"),
            (Flags::DIM, ";2"),
            (Flags::ITALIC, ";3"),
            (Flags::UNDERLINE, ";4"),
            (Flags::DOUBLE_UNDERLINE, ";4:2"),
            (Flags::UNDERCURL, ";4:3"),
            (Flags::DOTTED_UNDERLINE, ";4:4"),
            (Flags::DASHED_UNDERLINE, ";4:5"),
            (Flags::INVERSE, ";7"),
            (Flags::HIDDEN, ";8"),
            (Flags::STRIKEOUT, ";9"),
        ] {
            if want.flags.contains(flag) {
                let _ = out.write_str(code);
            }
        }
        write_color(out, want.fg, 30, 38);
        write_color(out, want.bg, 40, 48);
        let _ = out.write_str("m");
    }
}

fn write_color(w: &mut impl std::fmt::Write, color: Color, base: u8, extended: u8) {
    let _ = match color {
        Color::Named(named) => {
            let n = named as usize;
            match n {
                0..=7 => write!(w, ";{}", usize::from(base) + n),
                8..=15 => write!(w, ";{}", usize::from(base) + 60 + n - 8),
                _ => Ok(()),
            }
        }
        Color::Indexed(i) => write!(w, ";{extended};5;{i}"),
        Color::Spec(rgb) => write!(w, ";{extended};2;{};{};{}", rgb.r, rgb.g, rgb.b),
    };
}

fn write_mode_changes(old: &Modes, new: &Modes, out: &mut Vec<u8>) {
    let mut w = Text(out);
    let flag = |on: bool| if on { 'h' } else { 'l' };
    for (was, is, code) in [
        (old.app_cursor, new.app_cursor, 1),
        (old.bracketed_paste, new.bracketed_paste, 2004),
        (old.mouse_click, new.mouse_click, 1000),
        (old.mouse_drag, new.mouse_drag, 1002),
        (old.mouse_motion, new.mouse_motion, 1003),
        (old.mouse_utf8, new.mouse_utf8, 1005),
        (old.mouse_sgr, new.mouse_sgr, 1006),
        (old.focus, new.focus, 1004),
    ] {
        if was != is {
            let _ = write!(w, "\x1b[?{code}{}", flag(is));
        }
    }
    if old.app_keypad != new.app_keypad {
        let _ = w.write_str(if new.app_keypad { "\x1b=" } else { "\x1b>" });
    }
    if old.cursor_shape != new.cursor_shape {
        let _ = write!(w, "\x1b[{} q", new.cursor_shape);
    }
}

/// Draws every row of `screen` on the target's rows `top..` (0-based),
/// `cols` wide, with the cells `cover` masks drawn as its glyph and no
/// shadow: the approvals pane (see `pane`), a second screen below the
/// shell's rows on the user's terminal. It is a few rows a frame, so
/// redrawing it whole keeps it right whatever the shell's frame did around
/// it (a switch of buffers clears the target).
pub fn draw_screen_at(screen: &Screen, cover: &Cover, top: u16, cols: u16, out: &mut Vec<u8>) {
    let cols = usize::from(cols);
    let mut masked = Vec::new();
    for r in 0..screen.size().rows {
        let Some(cells) = screen.row(r) else { break };
        let cells = cells.get(..cols).unwrap_or(cells);
        let cells = apply_cover(cells, cover.row(r), cover.withheld_on(r), cover.glyph, &mut masked);
        cup(out, usize::from(top) + usize::from(r) + 1, 1);
        out.extend_from_slice(b"\x1b[0m");
        let mut pen = Some(Pen::default());
        let mut text = String::new();
        if let Some(end) = last_content(cells) {
            write_cells(cells.get(..=end).unwrap_or_default(), &mut pen, &mut text);
        }
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\x1b[0m\x1b[K");
    }
}

/// A reverse-video bar on row `row` (0-based) of the target, like the
/// status line: the approvals pane's divider and, while the pane is open,
/// the status line itself.
pub fn draw_bar(row: u16, cols: u16, text: &str, out: &mut Vec<u8>) {
    draw_status(Layout { pane_rows: row, cols, status: true }, text, out);
}

mod inline;

#[cfg(test)]
mod tests;
