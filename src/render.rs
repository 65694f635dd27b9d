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

use crate::screen::{Passthrough, Screen};

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
            cols: cols.max(1),
            status,
        }
    }

    fn total_rows(self) -> u16 {
        self.pane_rows + u16::from(self.status)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct Modes {
    app_cursor: bool,
    app_keypad: bool,
    bracketed_paste: bool,
    mouse: vt100::MouseProtocolMode,
    mouse_encoding: vt100::MouseProtocolEncoding,
    focus: bool,
    cursor_style: vt100::CursorStyle,
}

impl Modes {
    fn of(screen: &Screen) -> Self {
        let vt = screen.vt();
        Self {
            app_cursor: vt.application_cursor(),
            app_keypad: vt.application_keypad(),
            bracketed_paste: vt.bracketed_paste(),
            mouse: vt.mouse_protocol_mode(),
            mouse_encoding: vt.mouse_protocol_encoding(),
            focus: screen.focus_reporting(),
            cursor_style: vt.cursor_style(),
        }
    }
}

/// What one buffer (primary or alternate) of the target shows.
#[derive(Default)]
struct Shadow {
    /// `None`: unknown, redraw everything.
    rows: Option<Vec<Vec<vt100::Cell>>>,
    status: Option<String>,
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
}

impl Renderer {
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            primary: Shadow::default(),
            alternate: Shadow::default(),
            in_alt: false,
            modes: Modes::default(),
        }
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The target changed size: everything it shows must be redrawn.
    pub fn resize(&mut self, layout: Layout) {
        self.layout = layout;
        self.primary.invalidate();
        self.alternate.invalidate();
    }

    /// Forgets what the target shows, so the next frame redraws it all.
    pub fn invalidate(&mut self) {
        self.primary.invalidate();
        self.alternate.invalidate();
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

    /// Renders one frame: `scrolled` rows (from [`Screen::take_scrolled`]),
    /// then the current screen, the status line and the modes.
    pub fn frame(&mut self, screen: &Screen, scrolled: &[String], status: Option<&str>, out: &mut Vec<u8>) {
        let vt = screen.vt();
        out.extend_from_slice(b"\x1b[?25l");

        if !scrolled.is_empty() {
            self.switch_buffer(false, out);
            self.push_to_scrollback(scrolled, out);
        }
        self.switch_buffer(vt.alternate_screen(), out);

        let layout = self.layout;
        let shadow = if self.in_alt { &mut self.alternate } else { &mut self.primary };
        draw_cells(vt, layout, shadow, out);
        if layout.status {
            let text = status.unwrap_or("");
            if shadow.status.as_deref() != Some(text) {
                draw_status(layout, text, out);
                shadow.status = Some(text.to_owned());
            }
        }

        let modes = Modes::of(screen);
        write_mode_changes(&self.modes, &modes, out);
        self.modes = modes;

        let (row, col) = vt.cursor_position();
        let row = row.min(layout.pane_rows.saturating_sub(1));
        let col = col.min(layout.cols.saturating_sub(1));
        let _ = write!(Text(out), "\x1b[{};{}H", row + 1, col + 1);
        if !vt.hide_cursor() {
            out.extend_from_slice(b"\x1b[?25h");
        }
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
                Passthrough::Clipboard(kind, data) => {
                    out.extend_from_slice(b"\x1b]52;");
                    out.extend(kind.iter().filter(|b| b.is_ascii_alphanumeric()));
                    out.push(b';');
                    out.extend(data.iter().filter(|b| b.is_ascii_graphic()));
                    out.extend_from_slice(b"\x1b\\");
                }
            }
        }
    }

    /// Bytes that put the target back as the session found it: modes off,
    /// primary screen, cursor visible, status line cleared, cursor on a fresh
    /// line below the pane's content.
    pub fn finish(&mut self, screen: &Screen, out: &mut Vec<u8>) {
        write_mode_changes(&self.modes, &Modes::default(), out);
        self.modes = Modes::default();
        self.switch_buffer(false, out);
        if self.layout.status {
            let _ = write!(Text(out), "\x1b[{};1H\x1b[0m\x1b[2K", self.layout.total_rows());
        }
        // Leave the cursor below the last non-blank row of the primary pane.
        let vt = screen.vt();
        let rows = vt.size().0.get();
        let last = (0..rows)
            .rev()
            .find(|&r| (0..vt.size().1.get()).any(|c| vt.cell(r, c).is_some_and(|cell| !is_blank(cell))))
            .map_or(0, |r| r + 1);
        let row = if vt.alternate_screen() { vt.cursor_position().0 } else { last.max(vt.cursor_position().0) };
        let _ = write!(Text(out), "\x1b[0m\x1b[?25h\x1b[{};1H", row.min(self.layout.pane_rows.saturating_sub(1)) + 1);
        if last > 0 || row > 0 {
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

    fn push_to_scrollback(&mut self, scrolled: &[String], out: &mut Vec<u8>) {
        let pane = usize::from(self.layout.pane_rows.max(1));
        let bottom = self.layout.total_rows();
        for batch in scrolled.chunks(pane) {
            for (i, row) in batch.iter().enumerate() {
                let _ = write!(Text(out), "\x1b[{};1H\x1b[0m\x1b[2K{row}", i + 1);
            }
            let _ = write!(Text(out), "\x1b[0m\x1b[{bottom};1H");
            out.extend(std::iter::repeat_n(b'\n', batch.len()));
        }
        self.primary.invalidate();
    }
}

/// `fmt::Write` into a byte buffer.
struct Text<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Text<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn is_blank(cell: &vt100::Cell) -> bool {
    !cell.has_contents() && cell.bgcolor() == vt100::Color::Default && !cell.inverse() && !cell.underline()
}

fn draw_cells(vt: &vt100::Screen, layout: Layout, shadow: &mut Shadow, out: &mut Vec<u8>) {
    let rows = layout.pane_rows;
    let cols = layout.cols;
    let blank_shadow = shadow.rows.is_none();
    let shadow_rows = shadow.rows.get_or_insert_with(Vec::new);
    shadow_rows.resize_with(usize::from(rows), Vec::new);

    for (r, shadow_row) in (0..rows).zip(shadow_rows.iter_mut()) {
        let mut first = None;
        let mut last = 0;
        let mut last_content = None;
        for c in 0..cols {
            let Some(cell) = vt.cell(r, c) else { break };
            if !is_blank(cell) {
                last_content = Some(c);
            }
            let same = !blank_shadow && shadow_row.get(usize::from(c)) == Some(cell);
            if !same {
                first.get_or_insert(c);
                last = c;
            }
        }
        let Some(mut start) = first else { continue };
        // Never start drawing on the right half of a wide character.
        while start > 0 && vt.cell(r, start).is_some_and(vt100::Cell::is_wide_continuation) {
            start -= 1;
        }
        let draw_end = last_content.map(|lc| lc.min(last));
        let _ = write!(Text(out), "\x1b[{};{}H", r + 1, start + 1);
        // The target's pen is unknown after a jump; the first cell sets it.
        let mut pen: Option<Pen> = None;
        if let Some(end) = draw_end.filter(|&e| e >= start) {
            let mut c = start;
            while c <= end {
                let Some(cell) = vt.cell(r, c) else { break };
                if !cell.is_wide_continuation() {
                    Pen::set(&mut pen, cell, out);
                    let text = cell.contents();
                    out.extend_from_slice(if text.is_empty() { b" " } else { text.as_bytes() });
                }
                c += 1;
            }
        }
        if pen != Some(Pen::default()) {
            out.extend_from_slice(b"\x1b[0m");
        }
        // Everything after the last non-blank cell is blank: erase to the end
        // of the line instead of writing spaces.
        if last_content.is_none_or(|lc| last > lc) {
            out.extend_from_slice(b"\x1b[K");
        }
        shadow_row.clear();
        shadow_row.extend((0..cols).filter_map(|c| vt.cell(r, c).cloned()));
    }
}

fn draw_status(layout: Layout, text: &str, out: &mut Vec<u8>) {
    let width = usize::from(layout.cols);
    let mut line: String = text.chars().filter(|c| !c.is_control()).take(width).collect();
    let len = line.chars().count();
    line.extend(std::iter::repeat_n(' ', width.saturating_sub(len)));
    // Writing the very last cell would leave the cursor in the pending-wrap
    // state on some terminals; it is redrawn from the pane right after.
    let _ = write!(Text(out), "\x1b[{};1H\x1b[0;7m{line}\x1b[0m", layout.total_rows());
}

/// The SGR state of the target while drawing a span.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Pen {
    fg: vt100::Color,
    bg: vt100::Color,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
    inverse: bool,
}

impl Pen {
    /// Makes the target's pen draw `cell`, writing SGR only on a change.
    fn set(current: &mut Option<Pen>, cell: &vt100::Cell, out: &mut Vec<u8>) {
        let want = Pen {
            fg: cell.fgcolor(),
            bg: cell.bgcolor(),
            bold: cell.bold(),
            dim: cell.dim(),
            italic: cell.italic(),
            underline: cell.underline(),
            inverse: cell.inverse(),
        };
        if *current == Some(want) {
            return;
        }
        let mut w = Text(out);
        let _ = w.write_str("\x1b[0");
        for (on, code) in [
            (want.bold, ";1"),
            (want.dim, ";2"),
            (want.italic, ";3"),
            (want.underline, ";4"),
            (want.inverse, ";7"),
        ] {
            if on {
                let _ = w.write_str(code);
            }
        }
        write_color(&mut w, want.fg, 30, 38);
        write_color(&mut w, want.bg, 40, 48);
        let _ = w.write_str("m");
        *current = Some(want);
    }
}

fn write_color(w: &mut Text<'_>, color: vt100::Color, base: u8, extended: u8) {
    let _ = match color {
        vt100::Color::Default => Ok(()),
        vt100::Color::Idx(i) if i < 8 => write!(w, ";{}", base + i),
        vt100::Color::Idx(i) if i < 16 => write!(w, ";{}", base + 60 + i - 8),
        vt100::Color::Idx(i) => write!(w, ";{extended};5;{i}"),
        vt100::Color::Rgb(r, g, b) => write!(w, ";{extended};2;{r};{g};{b}"),
    };
}

fn write_mode_changes(old: &Modes, new: &Modes, out: &mut Vec<u8>) {
    let mut w = Text(out);
    let flag = |on: bool| if on { 'h' } else { 'l' };
    if old.app_cursor != new.app_cursor {
        let _ = write!(w, "\x1b[?1{}", flag(new.app_cursor));
    }
    if old.app_keypad != new.app_keypad {
        let _ = w.write_str(if new.app_keypad { "\x1b=" } else { "\x1b>" });
    }
    if old.bracketed_paste != new.bracketed_paste {
        let _ = write!(w, "\x1b[?2004{}", flag(new.bracketed_paste));
    }
    if old.mouse != new.mouse {
        if let Some(code) = mouse_mode_code(old.mouse) {
            let _ = write!(w, "\x1b[?{code}l");
        }
        if let Some(code) = mouse_mode_code(new.mouse) {
            let _ = write!(w, "\x1b[?{code}h");
        }
    }
    if old.mouse_encoding != new.mouse_encoding {
        if let Some(code) = mouse_encoding_code(old.mouse_encoding) {
            let _ = write!(w, "\x1b[?{code}l");
        }
        if let Some(code) = mouse_encoding_code(new.mouse_encoding) {
            let _ = write!(w, "\x1b[?{code}h");
        }
    }
    if old.focus != new.focus {
        let _ = write!(w, "\x1b[?1004{}", flag(new.focus));
    }
    if old.cursor_style != new.cursor_style {
        let _ = write!(w, "\x1b[{} q", cursor_style_code(new.cursor_style));
    }
}

fn mouse_mode_code(mode: vt100::MouseProtocolMode) -> Option<u16> {
    match mode {
        vt100::MouseProtocolMode::None => None,
        vt100::MouseProtocolMode::Press => Some(9),
        vt100::MouseProtocolMode::PressRelease => Some(1000),
        vt100::MouseProtocolMode::ButtonMotion => Some(1002),
        vt100::MouseProtocolMode::AnyMotion => Some(1003),
    }
}

fn mouse_encoding_code(encoding: vt100::MouseProtocolEncoding) -> Option<u16> {
    match encoding {
        vt100::MouseProtocolEncoding::Default => None,
        vt100::MouseProtocolEncoding::Utf8 => Some(1005),
        vt100::MouseProtocolEncoding::Sgr => Some(1006),
    }
}

fn cursor_style_code(style: vt100::CursorStyle) -> u8 {
    match style {
        vt100::CursorStyle::Default => 0,
        vt100::CursorStyle::BlinkBlock => 1,
        vt100::CursorStyle::SteadyBlock => 2,
        vt100::CursorStyle::BlinkUnderline => 3,
        vt100::CursorStyle::SteadyUnderline => 4,
        vt100::CursorStyle::BlinkVerticalBar => 5,
        vt100::CursorStyle::SteadyVerticalBar => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::screen::Size;

    /// Renders `input` through a screen and a renderer, in the given pieces,
    /// and replays every byte the renderer produced on an independent
    /// emulator the size of the target, with scrollback.
    fn replay(pieces: &[&[u8]], layout: Layout) -> (vt100::Parser, Vec<u8>) {
        let mut screen = Screen::new(Size { rows: layout.pane_rows, cols: layout.cols });
        let mut renderer = Renderer::new(layout);
        let mut out = Vec::new();
        renderer.start(&mut out);
        for piece in pieces {
            screen.process(piece);
            let scrolled = screen.take_scrolled();
            renderer.frame(&screen, &scrolled, Some("STATUS"), &mut out);
        }
        #[allow(clippy::disallowed_methods)]
        let mut target = vt100::Parser::new(
            std::num::NonZeroU16::new(layout.total_rows()).unwrap(),
            std::num::NonZeroU16::new(layout.cols).unwrap(),
            10_000,
        );
        target.process(&out);
        (target, out)
    }

    fn scrollback_and_screen(target: &mut vt100::Parser) -> Vec<String> {
        let screen = target.screen_mut();
        screen.set_scrollback(usize::MAX);
        let depth = screen.scrollback();
        let mut lines = Vec::new();
        for offset in (1..=depth).rev() {
            screen.set_scrollback(offset);
            lines.push(screen.rows(0, screen.size().1.get()).next().unwrap_or_default());
        }
        screen.set_scrollback(0);
        lines.extend(screen.rows(0, screen.size().1.get()));
        lines
    }

    #[test]
    fn pane_is_drawn_with_status_line_below() {
        let layout = Layout::for_terminal(5, 20, true);
        let (target, _) = replay(&[b"hello\r\nworld"], layout);
        let rows: Vec<String> = target.screen().rows(0, 20).collect();
        assert_eq!(rows[0], "hello");
        assert_eq!(rows[1], "world");
        assert!(rows[4].starts_with("STATUS"));
        assert_eq!(target.screen().cursor_position(), (1, 5));
    }

    #[test]
    fn every_scrolled_row_reaches_the_target_scrollback_in_order() {
        let layout = Layout::for_terminal(6, 30, true);
        let mut input = Vec::new();
        for i in 0..200 {
            input.extend_from_slice(format!("line {i:03}\r\n").as_bytes());
        }
        // One frame with far more rows than the pane holds, then small ones.
        let (mut target, _) = replay(&[&input[..1500], &input[1500..1510], &input[1510..]], layout);
        let lines = scrollback_and_screen(&mut target);
        let numbered: Vec<&String> = lines.iter().filter(|l| l.starts_with("line ")).collect();
        let expected: Vec<String> = (0..200).map(|i| format!("line {i:03}")).collect();
        assert_eq!(numbered, expected.iter().collect::<Vec<_>>());
        // The status line is on the screen, and never in the scrollback.
        assert!(lines.last().unwrap().starts_with("STATUS"));
        assert_eq!(lines.iter().filter(|l| l.starts_with("STATUS")).count(), 1);
    }

    #[test]
    fn colours_and_attributes_survive_rendering() {
        let layout = Layout::for_terminal(4, 40, false);
        let (target, _) = replay(
            &[b"\x1b[1;31mred\x1b[0m \x1b[38;5;200mx\x1b[38;2;1;2;3my\x1b[4;7mz\x1b[0m"],
            layout,
        );
        let s = target.screen();
        assert_eq!(s.cell(0, 0).unwrap().fgcolor(), vt100::Color::Idx(1));
        assert!(s.cell(0, 0).unwrap().bold());
        assert_eq!(s.cell(0, 4).unwrap().fgcolor(), vt100::Color::Idx(200));
        assert_eq!(s.cell(0, 5).unwrap().fgcolor(), vt100::Color::Rgb(1, 2, 3));
        assert!(s.cell(0, 6).unwrap().underline() && s.cell(0, 6).unwrap().inverse());
        assert!(!s.cell(0, 3).unwrap().bold());
    }

    #[test]
    fn wide_and_combining_characters_keep_their_cells() {
        let layout = Layout::for_terminal(4, 20, false);
        let (target, _) = replay(&["漢字 e\u{301} 🙂|".as_bytes(), b"\x1b[1;3Hx"], layout);
        let row = target.screen().rows(0, 20).next().unwrap();
        assert_eq!(row, "漢x  e\u{301} 🙂|");
    }

    #[test]
    fn alternate_screen_is_mirrored_and_primary_restored() {
        let layout = Layout::for_terminal(5, 20, true);
        let (target, out) = replay(
            &[b"prompt$ ", b"\x1b[?1049h\x1b[Hfullscreen", b"\x1b[?1049lback"],
            layout,
        );
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("\x1b[?1049h") && text.contains("\x1b[?1049l"));
        let rows: Vec<String> = target.screen().rows(0, 20).collect();
        assert_eq!(rows[0], "prompt$ back");
        assert!(!target.screen().alternate_screen());
    }

    #[test]
    fn unchanged_screen_renders_no_cells() {
        let layout = Layout::for_terminal(5, 20, true);
        let mut screen = Screen::new(Size { rows: 4, cols: 20 });
        let mut r = Renderer::new(layout);
        let mut out = Vec::new();
        screen.process(b"abc");
        r.frame(&screen, &[], Some("s"), &mut out);
        out.clear();
        r.frame(&screen, &[], Some("s"), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "\x1b[?25l\x1b[1;4H\x1b[?25h");
    }

    #[test]
    fn modes_are_mirrored_once_and_reset_at_finish() {
        let layout = Layout::for_terminal(5, 20, false);
        let mut screen = Screen::new(Size { rows: 5, cols: 20 });
        let mut r = Renderer::new(layout);
        let mut out = Vec::new();
        screen.process(b"\x1b[?2004h\x1b[?1000h\x1b[?1006h\x1b[?1h\x1b[?1004h\x1b[5 q");
        r.frame(&screen, &[], None, &mut out);
        let text = String::from_utf8(out.clone()).unwrap();
        for seq in ["\x1b[?2004h", "\x1b[?1000h", "\x1b[?1006h", "\x1b[?1h", "\x1b[?1004h", "\x1b[5 q"] {
            assert!(text.contains(seq), "missing {seq:?} in {text:?}");
        }
        out.clear();
        r.finish(&screen, &mut out);
        let text = String::from_utf8(out).unwrap();
        for seq in ["\x1b[?2004l", "\x1b[?1000l", "\x1b[?1006l", "\x1b[?1l", "\x1b[?1004l", "\x1b[0 q"] {
            assert!(text.contains(seq), "missing {seq:?} in {text:?}");
        }
    }

    proptest::proptest! {
        /// However the output is split into reads, the target ends with the
        /// same screen as the emulator, and the same scrollback.
        #[test]
        fn any_split_renders_the_same_final_screen(cuts in proptest::collection::vec(0usize..2000, 0..12)) {
            let mut input = Vec::new();
            for i in 0..60 {
                input.extend_from_slice(format!("\x1b[3{}mrow {i} \x1b[0m漢字 {}\r\n", i % 8, "x".repeat(i % 37)).as_bytes());
            }
            input.extend_from_slice(b"\x1b[2;5Hpatched\x1b[K");
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut prev = 0;
            for c in cuts { pieces.push(&input[prev..c]); prev = c; }
            pieces.push(&input[prev..]);
            let layout = Layout::for_terminal(8, 30, true);
            let (mut split, _) = replay(&pieces, layout);
            let (mut whole, _) = replay(&[&input], layout);
            proptest::prop_assert_eq!(scrollback_and_screen(&mut split), scrollback_and_screen(&mut whole));
        }
    }
}
