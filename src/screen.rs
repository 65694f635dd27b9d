//! The virtual screen: the real shell's output is parsed here, and nothing
//! else in custos looks at raw terminal bytes.
//!
//! [`Screen`] wraps the `vt100` emulator behind a small interface so that the
//! renderer (and later the masker) depend on cells, rows and modes, not on
//! which emulator is underneath. It also owns the three things a terminal
//! must do that `vt100` leaves to its caller:
//!
//! - **Rows that scroll off the top.** The emulator keeps no scrollback
//!   (capacity 0); every row pushed off the top of the primary screen is
//!   captured, formatted, in [`Screen::take_scrolled`], so the renderer can
//!   send each one to the user's scrollback and the recording. Nothing is
//!   skipped however fast output arrives, because capture happens inside the
//!   parser, row by row.
//! - **Answers to queries.** Programs ask the terminal where the cursor is or
//!   what it is (`CSI 6 n`, `CSI c`, `CSI > c`, `CSI 18 t`, OSC 10/11). The
//!   user's real terminal never sees the inner byte stream, so the answers come
//!   from here, consistent with the inner screen, and are queued in
//!   [`Screen::take_replies`] for the session to write back to the PTY.
//! - **Out-of-band strings.** Window titles, the bell, clipboard writes and
//!   focus reporting are collected as [`Passthrough`] items for the renderer.
//!
//! `vt100` constructors take `NonZeroU16`; [`Screen::new`] and
//! [`Screen::resize`] clamp to at least 1x1 so no size from a terminal can
//! panic it (clippy bans the raw calls).

use std::fmt::Write as _;
use std::num::NonZeroU16;

/// A size in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size {
    pub rows: u16,
    pub cols: u16,
}

impl Size {
    fn non_zero(self) -> (NonZeroU16, NonZeroU16) {
        (
            NonZeroU16::new(self.rows.max(1)).unwrap_or(NonZeroU16::MIN),
            NonZeroU16::new(self.cols.max(1)).unwrap_or(NonZeroU16::MIN),
        )
    }
}

/// Something the inner program sent that is not screen content but should
/// reach the user's terminal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Passthrough {
    Title(String),
    Bell,
    /// OSC 52 clipboard write: selection name and base64 payload, as sent.
    Clipboard(Vec<u8>, Vec<u8>),
}

/// The emulator's callbacks: everything the parser reports while it runs.
#[derive(Default)]
struct Sink {
    /// Formatted rows that scrolled off the top of the primary screen.
    scrolled: Vec<String>,
    /// Bytes to write back to the inner program (query answers).
    replies: Vec<u8>,
    passthrough: Vec<Passthrough>,
    /// DECSET 1004: the program wants focus in/out reports.
    focus_reporting: bool,
}

impl vt100::Callbacks for Sink {
    fn on_scroll(&mut self, contents: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        if alternate_screen {
            return;
        }
        let mut row = String::new();
        let mut state = vt100::capture::BasicFormattedCaptureState::new();
        // Writing into a String cannot fail.
        let _ = contents.write_formatted_basic(&mut row, &mut state);
        self.scrolled.push(row);
    }

    fn audible_bell(&mut self, _: &mut vt100::Screen) {
        self.passthrough.push(Passthrough::Bell);
    }

    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.passthrough
            .push(Passthrough::Title(String::from_utf8_lossy(title).into_owned()));
    }

    fn set_window_icon_name(&mut self, _: &mut vt100::Screen, _name: &[u8]) {}

    fn copy_to_clipboard(&mut self, _: &mut vt100::Screen, ty: &[u8], data: &[u8]) {
        self.passthrough
            .push(Passthrough::Clipboard(ty.to_vec(), data.to_vec()));
    }

    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        let first = params.first().and_then(|p| p.first()).copied();
        match (i1, c, first) {
            // DSR: status report and cursor position report.
            (None, 'n', Some(5)) => self.replies.extend_from_slice(b"\x1b[0n"),
            (None, 'n', Some(6)) | (Some(b'?'), 'n', Some(6)) => {
                let (row, col) = screen.cursor_position();
                let q = if i1.is_some() { "?" } else { "" };
                let _ = write_bytes(
                    &mut self.replies,
                    format_args!("\x1b[{q}{};{}R", row + 1, col + 1),
                );
            }
            // DA1: a VT220 with ANSI colour, the same family tmux reports.
            (None, 'c', None | Some(0)) => self.replies.extend_from_slice(b"\x1b[?62;22c"),
            // DA2: terminal type 1 (VT220), firmware version 0.
            (Some(b'>'), 'c', None | Some(0)) => self.replies.extend_from_slice(b"\x1b[>1;0;0c"),
            // XTVERSION.
            (Some(b'>'), 'q', _) => {
                let _ = write_bytes(
                    &mut self.replies,
                    format_args!("\x1bP>|custos {}\x1b\\", env!("CARGO_PKG_VERSION")),
                );
            }
            // Text area size in characters.
            (None, 't', Some(18)) => {
                let (rows, cols) = screen.size();
                let _ = write_bytes(&mut self.replies, format_args!("\x1b[8;{rows};{cols}t"));
            }
            (Some(b'?'), 'h' | 'l', _) if params.iter().any(|p| p.first() == Some(&1004)) => {
                self.focus_reporting = c == 'h';
            }
            _ => {}
        }
    }

    fn unhandled_osc(&mut self, _: &mut vt100::Screen, params: &[&[u8]]) {
        // OSC 10/11 ? : default foreground/background colour queries. Programs
        // use them to pick a light or dark palette; answer as a dark terminal.
        if let [code @ (b"10" | b"11"), b"?"] = params {
            let colour = if *code == b"10" { "d0d0/d0d0/d0d0" } else { "0000/0000/0000" };
            let code = String::from_utf8_lossy(code);
            let _ = write_bytes(
                &mut self.replies,
                format_args!("\x1b]{code};rgb:{colour}\x1b\\"),
            );
        }
    }
}

fn write_bytes(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) -> std::fmt::Result {
    let mut s = String::new();
    s.write_fmt(args)?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// The inner terminal: a `vt100` parser plus what its callbacks collected.
pub struct Screen {
    parser: vt100::Parser<Sink>,
}

impl Screen {
    /// A blank screen of `size`, clamped to at least one row and column.
    pub fn new(size: Size) -> Self {
        let (rows, cols) = size.non_zero();
        Self {
            parser: vt100::Parser::new_with_callbacks(rows, cols, 0, Sink::default()),
        }
    }

    /// Feeds bytes the inner program wrote.
    pub fn process(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
    }

    /// Resizes, clamped like [`Screen::new`].
    pub fn resize(&mut self, size: Size) {
        let (rows, cols) = size.non_zero();
        #[allow(clippy::disallowed_methods)] // this is the clamping wrapper
        self.parser.set_size(rows, cols);
    }

    pub fn size(&self) -> Size {
        let (rows, cols) = self.parser.screen().size();
        Size { rows: rows.get(), cols: cols.get() }
    }

    /// The emulator's screen, for reading cells and modes.
    pub fn vt(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// Rows that scrolled off the primary screen since the last call, oldest
    /// first, each formatted as SGR sequences and text without a newline.
    pub fn take_scrolled(&mut self) -> Vec<String> {
        std::mem::take(&mut self.parser.callbacks_mut().scrolled)
    }

    /// How many scrolled rows are waiting, so the caller can bound memory.
    pub fn scrolled_len(&self) -> usize {
        self.parser.callbacks().scrolled.len()
    }

    /// Answers to terminal queries, to be written to the inner program.
    pub fn take_replies(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.parser.callbacks_mut().replies)
    }

    pub fn take_passthrough(&mut self) -> Vec<Passthrough> {
        std::mem::take(&mut self.parser.callbacks_mut().passthrough)
    }

    pub fn focus_reporting(&self) -> bool {
        self.parser.callbacks().focus_reporting
    }

    /// The visible text, rows joined by newlines, trailing blanks trimmed.
    pub fn text(&self) -> String {
        self.vt().contents()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_size_is_clamped_instead_of_panicking() {
        let mut s = Screen::new(Size { rows: 0, cols: 0 });
        assert_eq!(s.size(), Size { rows: 1, cols: 1 });
        s.resize(Size { rows: 0, cols: 5 });
        assert_eq!(s.size(), Size { rows: 1, cols: 5 });
        s.process(b"hello\r\nworld");
    }

    #[test]
    fn rows_scrolled_off_the_top_are_captured_in_order() {
        let mut s = Screen::new(Size { rows: 3, cols: 10 });
        for i in 0..10 {
            s.process(format!("line{i}\r\n").as_bytes());
        }
        let scrolled = s.take_scrolled();
        let expected: Vec<String> = (0..8).map(|i| format!("line{i}")).collect();
        assert_eq!(scrolled, expected);
        assert!(s.take_scrolled().is_empty());
    }

    #[test]
    fn alternate_screen_rows_do_not_reach_scrollback() {
        let mut s = Screen::new(Size { rows: 2, cols: 10 });
        s.process(b"\x1b[?1049h");
        for i in 0..5 {
            s.process(format!("alt{i}\r\n").as_bytes());
        }
        assert!(s.take_scrolled().is_empty());
    }

    #[test]
    fn cursor_position_query_is_answered_from_the_inner_screen() {
        let mut s = Screen::new(Size { rows: 5, cols: 20 });
        s.process(b"\x1b[3;7H\x1b[6n");
        assert_eq!(s.take_replies(), b"\x1b[3;7R");
    }

    #[test]
    fn device_attribute_and_size_queries_are_answered() {
        let mut s = Screen::new(Size { rows: 5, cols: 20 });
        s.process(b"\x1b[c\x1b[>c\x1b[18t");
        let replies = String::from_utf8(s.take_replies()).unwrap();
        assert_eq!(replies, "\x1b[?62;22c\x1b[>1;0;0c\x1b[8;5;20t");
    }

    #[test]
    fn title_and_bell_are_passed_through() {
        let mut s = Screen::new(Size { rows: 5, cols: 20 });
        s.process(b"\x1b]2;my title\x07\x07");
        assert_eq!(
            s.take_passthrough(),
            vec![Passthrough::Title("my title".into()), Passthrough::Bell]
        );
    }
}
