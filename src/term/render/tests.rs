//! Unit tests of `term::render`.

use super::*;
use crate::term::screen::Size;

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
        let scrolled = Scrolled::take(&screen, &Cover::none());
        let damage = screen.take_damage();
        renderer.frame(&screen, &scrolled, &damage, &Cover::none(), Some("STATUS"), &mut out);
        screen.clear_scrolled();
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

/// Regression: the emulator keeps `\t` in the cell a tab started from,
/// and writing it out moved the target's cursor to its own tab stop, so
/// everything after a tab landed in the wrong columns.
#[test]
fn tabs_are_drawn_as_blank_cells() {
    let layout = Layout::for_terminal(3, 40, false);
    let (target, out) = replay(&[b"a\tb\tc\r\nCREDENTIALS\tKEY"], layout);
    assert!(!out.contains(&b'\t'), "a tab reached the target");
    let rows: Vec<String> = target.screen().rows(0, 40).collect();
    assert_eq!(rows[0], "a       b       c");
    assert_eq!(rows[1], "CREDENTIALS     KEY");
}

#[test]
fn cursor_positions_are_written_in_decimal() {
    let mut out = Vec::new();
    cup(&mut out, 1, 120);
    cup(&mut out, 40, 9);
    assert_eq!(out, b"\x1b[1;120H\x1b[40;9H");
}

#[test]
fn a_status_line_of_wide_characters_never_wraps_or_scrolls() {
    let layout = Layout::for_terminal(5, 20, true);
    let mut screen = Screen::new(Size { rows: layout.pane_rows, cols: layout.cols });
    let mut renderer = Renderer::new(layout);
    let mut out = Vec::new();
    renderer.start(&mut out);
    screen.process(b"top row");
    // Each tick redraws the status: hourglasses are two columns wide.
    for tick in 0..5 {
        let status = format!(" \u{23f3} waiting {tick} \u{23f3}\u{23f3}\u{23f3}\u{23f3}\u{23f3}\u{23f3}");
        let scrolled = Scrolled::take(&screen, &Cover::none());
        let damage = screen.take_damage();
        renderer.frame(&screen, &scrolled, &damage, &Cover::none(), Some(&status), &mut out);
    }
    let mut out_draw = Vec::new();
    draw_status(layout, "\u{23f3}\u{23f3}\u{23f3}\u{23f3}\u{23f3}\u{23f3}\u{23f3}\u{23f3}\u{23f3}\u{23f3}\u{23f3}", &mut out_draw);
    let drawn = String::from_utf8(out_draw).unwrap();
    assert_eq!(drawn.matches('\u{23f3}').count(), 10, "cut to 20 columns: {drawn:?}");
    #[allow(clippy::disallowed_methods)]
    let mut target = vt100::Parser::new(std::num::NonZeroU16::new(5).unwrap(), std::num::NonZeroU16::new(20).unwrap(), 100);
    target.process(&out);
    let rows: Vec<String> = target.screen().rows(0, 20).collect();
    assert_eq!(rows[0], "top row", "{rows:?}");
    assert!(rows[4].contains("waiting 4"), "{rows:?}");
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
    let (target, _) = replay(&["漢字 e\u{301} 🙂|".as_bytes()], layout);
    let row = target.screen().rows(0, 20).next().unwrap();
    assert_eq!(row, "漢字 e\u{301} 🙂|");
    assert_eq!(target.screen().cell(0, 9).unwrap().contents(), "|");
}

#[test]
fn a_long_line_is_written_whole_so_the_target_wraps_it() {
    let layout = Layout::for_terminal(4, 10, false);
    let long = "abcdefghij0123456789XYZ";
    let mut input = format!("{long}\r\n").into_bytes();
    input.extend_from_slice(b"1\r\n2\r\n3\r\n4\r\n");
    let (target, out) = replay(&[&input], layout);
    // Scrolled into scrollback in one piece, not cut by cursor moves.
    assert!(String::from_utf8_lossy(&out).contains(long), "{:?}", String::from_utf8_lossy(&out));
    assert!(target.screen().contents().ends_with("2\n3\n4"));
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
    let damage = screen.take_damage();
    r.frame(&screen, &Scrolled::default(), &damage, &Cover::none(), Some("s"), &mut out);
    out.clear();
    let damage = screen.take_damage();
    r.frame(&screen, &Scrolled::default(), &damage, &Cover::none(), Some("s"), &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), "\x1b[?25l\x1b[1;4H\x1b[?25h");
}

#[test]
fn modes_are_mirrored_once_and_reset_at_finish() {
    let layout = Layout::for_terminal(5, 20, false);
    let mut screen = Screen::new(Size { rows: 5, cols: 20 });
    let mut r = Renderer::new(layout);
    let mut out = Vec::new();
    screen.process(b"\x1b[?2004h\x1b[?1000h\x1b[?1006h\x1b[?1h\x1b[?1004h\x1b[5 q");
    let damage = screen.take_damage();
    r.frame(&screen, &Scrolled::default(), &damage, &Cover::none(), None, &mut out);
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

/// The target already shows a login's message of the day, the cursor on
/// the row below it. Started below the cursor, the shell's prompt appears
/// under the message, which stays in view until the shell clears the
/// screen; a message that fills the screen scrolls up just enough to leave
/// the shell a row above the status line.
#[test]
fn a_start_below_the_cursor_keeps_what_the_terminal_shows_above_it() {
    for (motd_rows, expect_start) in [(3u16, 3u16), (9, 8)] {
        let layout = Layout::for_terminal(10, 40, true);
        #[allow(clippy::disallowed_methods)]
        let mut target = vt100::Parser::new(std::num::NonZeroU16::new(10).unwrap(), std::num::NonZeroU16::new(40).unwrap(), 100);
        let motd: String = (1..=motd_rows).map(|i| format!("motd line {i}\r\n")).collect();
        target.process(motd.as_bytes());
        let (row, col) = target.screen().cursor_position();

        let mut screen = Screen::new(Size { rows: layout.pane_rows, cols: layout.cols });
        let mut renderer = Renderer::new(layout);
        let mut out = Vec::new();
        let start = renderer.start_below((row + 1, col + 1), &mut out);
        assert_eq!(start, expect_start, "with {motd_rows} rows of motd");
        screen.process(format!("\x1b[{};1H", start + 1).as_bytes());
        let _ = screen.take_damage();
        let mut frame = |screen: &mut Screen, bytes: &[u8], out: &mut Vec<u8>| {
            screen.process(bytes);
            let scrolled = Scrolled::take(screen, &Cover::none());
            let damage = screen.take_damage();
            renderer.frame(screen, &scrolled, &damage, &Cover::none(), Some("STATUS"), out);
            screen.clear_scrolled();
        };
        frame(&mut screen, b"$ ", &mut out);
        target.process(&out);
        let rows: Vec<String> = target.screen().rows(0, 40).collect();
        let first_kept = motd_rows.saturating_sub(expect_start);
        for (i, r) in rows.iter().take(usize::from(expect_start)).enumerate() {
            assert_eq!(r, &format!("motd line {}", usize::from(first_kept) + i + 1), "row {i}: {rows:#?}");
        }
        assert_eq!(rows[usize::from(expect_start)], "$", "{rows:#?}");
        assert_eq!(rows[9].trim_end(), "STATUS", "{rows:#?}");
        if first_kept > 0 {
            let mut lines = scrollback_and_screen(&mut target);
            lines.truncate(usize::from(first_kept));
            assert_eq!(lines, ["motd line 1"], "the row scrolled away is in the scrollback");
        }

        // `clear` clears the message too.
        out.clear();
        frame(&mut screen, b"\x1b[H\x1b[2J$ ", &mut out);
        target.process(&out);
        let rows: Vec<String> = target.screen().rows(0, 40).collect();
        assert_eq!(rows[0], "$", "{rows:#?}");
        assert!(rows[1..9].iter().all(String::is_empty), "{rows:#?}");
    }
}

// ------------------------------------------------------------------ inline

/// What a terminal of `rows` x `cols` shows when `before` was on it and a
/// command's output then arrives in `pieces`: through an inline renderer,
/// and as the command's own bytes. Answers the two targets and the bytes
/// the renderer wrote.
fn inline_and_plain(pieces: &[&[u8]], rows: u16, cols: u16, before: &[u8]) -> (vt100::Parser, vt100::Parser, Vec<u8>) {
    let layout = Layout::for_terminal(rows, cols, false);
    let mut screen = Screen::new(Size { rows, cols });
    let mut renderer = Renderer::inline(layout);
    let mut out = Vec::new();
    for piece in pieces {
        screen.process(piece);
        let scrolled = Scrolled::take(&screen, &Cover::none());
        let damage = screen.take_damage();
        renderer.frame(&screen, &scrolled, &damage, &Cover::none(), None, &mut out);
        screen.clear_scrolled();
    }
    renderer.finish(&screen, &mut out);
    let target = |bytes: &[u8]| {
        #[allow(clippy::disallowed_methods)]
        let mut t = vt100::Parser::new(std::num::NonZeroU16::new(rows).unwrap(), std::num::NonZeroU16::new(cols).unwrap(), 10_000);
        t.process(before);
        t.process(bytes);
        t
    };
    let plain: Vec<u8> = pieces.concat();
    (target(&out), target(&plain), out)
}

/// The shell prompt and the command, as a terminal shows them before
/// `ssh -tt host cmd` prints anything.
const BEFORE: &[u8] = b"motd line one\r\nmotd line two\r\n$ ssh -tt host cmd\r\n";

#[test]
fn inline_lines_are_the_commands_own_bytes() {
    for (pieces, rows) in [
        (vec![&b"hi\r\n"[..]], 24),
        (vec![&b"one\r\n"[..], b"two\r\nthr", b"ee\r\n"], 24),
        // More lines than rows, in one piece and in several.
        (vec![&b"1\r\n2\r\n3\r\n4\r\n5\r\n6\r\n7\r\n8\r\n9\r\n"[..]], 4),
        (vec![&b"1\r\n2\r\n3\r\n"[..], b"4\r\n5\r\n6\r\n7\r\n", b"8\r\n9\r\n"], 4),
    ] {
        let (_, _, out) = inline_and_plain(&pieces, rows, 40, BEFORE);
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&pieces.concat()));
    }
    // A line longer than the row is written whole: the target wraps it.
    let long = format!("{}\r\n", "x".repeat(100));
    let (_, _, out) = inline_and_plain(&[long.as_bytes()], 5, 40, BEFORE);
    assert_eq!(String::from_utf8_lossy(&out), long);
    // Without a line end, the cursor stays after the text.
    let (inline, plain, out) = inline_and_plain(&[b"no newline"], 5, 40, BEFORE);
    assert_eq!(out, b"no newline");
    assert_eq!(inline.screen().cursor_position(), plain.screen().cursor_position());
}

/// A progress bar redrawn with `\r`, a row rewritten from below, colours,
/// wide characters and a tab: the target shows what the command's own
/// bytes show, and nothing above the command's first row is touched.
#[test]
fn inline_redraws_show_what_the_command_drew() {
    let pieces: Vec<&[u8]> = vec![
        b"downloading  10%",
        b"\rdownloading  55%",
        b"\rdownloading 100%\r\n",
        b"step \x1b[1;32mok\x1b[0m and \xe6\x97\xa5\xe6\x9c\xac\r\n",
        b"a\tb\r\n",
        b"status: waiting\r\nnext line\x1b[1A\r\x1b[Kstatus: done\x1b[1B\r\n",
    ];
    let (mut inline, mut plain, out) = inline_and_plain(&pieces, 10, 40, BEFORE);
    assert_eq!(scrollback_and_screen(&mut inline), scrollback_and_screen(&mut plain));
    assert_eq!(inline.screen().cursor_position(), plain.screen().cursor_position());
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains(";1H") && !text.contains("\x1b[H"), "no absolute positions: {text:?}");
}

/// A full-screen program takes the alternate screen, drawn whole; leaving
/// it puts the cursor back in the command's rows, which are as they were.
#[test]
fn inline_alternate_screen_is_drawn_whole_and_left_as_found() {
    let pieces: Vec<&[u8]> = vec![b"before the editor\r\n", b"\x1b[?1049h\x1b[H\x1b[2Jeditor top\x1b[5;3Hmiddle", b"\x1b[?1049l", b"after the editor\r\n"];
    let (mut inline, mut plain, out) = inline_and_plain(&pieces, 8, 30, BEFORE);
    assert_eq!(scrollback_and_screen(&mut inline), scrollback_and_screen(&mut plain));
    assert!(String::from_utf8_lossy(&out).contains("?1049h"));
}

/// A resize gives the target to the usual renderer: it takes the whole
/// target from the next frame, as a login does.
#[test]
fn inline_gives_way_to_the_whole_target_on_a_resize() {
    let size = Size { rows: 6, cols: 30 };
    let mut screen = Screen::new(size);
    let mut renderer = Renderer::inline(Layout::for_terminal(size.rows, size.cols, false));
    let mut out = Vec::new();
    screen.process(b"first\r\n");
    let damage = screen.take_damage();
    renderer.frame(&screen, &Scrolled::default(), &damage, &Cover::none(), None, &mut out);
    assert!(renderer.is_inline());
    let bigger = Size { rows: 8, cols: 30 };
    screen.resize(bigger);
    renderer.resize(Layout::for_terminal(bigger.rows, bigger.cols, true));
    assert!(!renderer.is_inline());
    let mut after = Vec::new();
    screen.process(b"second\r\n");
    let damage = screen.take_damage();
    renderer.frame(&screen, &Scrolled::default(), &damage, &Cover::none(), Some("STATUS"), &mut after);
    let text = String::from_utf8_lossy(&after);
    assert!(text.starts_with("\x1b[8;1H\n"), "the target is taken whole: {text:?}");
    assert!(text.contains("first") && text.contains("second") && text.contains("STATUS"), "{text:?}");
}

/// A secret is covered inline as everywhere: the command's bytes never
/// reach the target with it.
#[test]
fn inline_output_is_masked() {
    use crate::term::pipeline::{Pipeline, Target};
    let masker = crate::term::masker::Masker::new(&crate::mask::MaskingConfig::default()).unwrap();
    let size = Size { rows: 5, cols: 60 };
    let mut p = Pipeline::new(size, masker);
    let secret = "ghp_R4nd0mTestTokenValue0123456789abcdEF";
    let mut r = Renderer::inline(Layout::for_terminal(size.rows, size.cols, false));
    let mut out = Vec::new();
    let far = std::time::Instant::now() + std::time::Duration::from_secs(3600);
    for line in 0..8 {
        assert_eq!(p.feed(format!("line {line} token {secret}\r\n").as_bytes()), None);
        p.frame(far, &mut [Target::plain(&mut r, &mut out)]);
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("line 7 token") && !text.contains(secret), "{text}");
}

/// One step of a command's output, for the generator below.
#[derive(Clone, Debug)]
enum Piece {
    Word(String),
    Space,
    LineEnd,
    LineFeed,
    Return,
    Colour(u8),
    Reset,
    EraseLine,
    Wide,
    Run(usize),
    Up(u16),
    At(u16, usize),
}

fn piece() -> impl proptest::strategy::Strategy<Value = Piece> {
    use proptest::prelude::*;
    prop_oneof![
        4 => "[a-z]{1,9}".prop_map(Piece::Word),
        2 => Just(Piece::Space),
        4 => Just(Piece::LineEnd),
        1 => Just(Piece::LineFeed),
        1 => Just(Piece::Return),
        1 => (31u8..37).prop_map(Piece::Colour),
        1 => Just(Piece::Reset),
        1 => Just(Piece::EraseLine),
        1 => Just(Piece::Wide),
        1 => (1usize..70).prop_map(Piece::Run),
        1 => (1u16..4).prop_map(Piece::Up),
        1 => (0u16..8, 0usize..30).prop_map(|(r, c)| Piece::At(r, c)),
    ]
}

/// Where the screen inside has its cursor, as `command_bytes` writes.
struct Cursor {
    row: u16,
    col: usize,
    rows: u16,
    cols: usize,
    /// The screen inside has scrolled: the command has taken the target's
    /// whole height, and rows are the same on both.
    scrolled: bool,
}

impl Cursor {
    fn line_feed(&mut self) {
        if self.row + 1 == self.rows {
            self.scrolled = true;
        } else {
            self.row += 1;
        }
    }

    fn print(&mut self, width: usize) {
        if self.col + width > self.cols {
            self.col = 0;
            self.line_feed();
        }
        self.col += width;
    }
}

/// The bytes of `pieces`, never moving the cursor above the command's
/// first row (the only thing the target above it has that the screen
/// inside does not). Before the screen inside has scrolled, the cursor
/// goes up only from a row that shows something: a row it only passed
/// through is opened on the target by the command's bytes and not by the
/// renderer, which opens rows that show something, and a target that
/// scrolled for it would differ by that much. A wide character is never
/// written on a row's last column: `vt100` leaves that cell as it was,
/// the screen inside blanks it.
fn command_bytes(pieces: &[Piece], rows: u16, cols: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = Cursor { row: 0, col: 0, rows, cols, scrolled: false };
    let mut shows = false;
    for p in pieces {
        match p {
            Piece::Word(w) => {
                out.extend_from_slice(w.as_bytes());
                (0..w.len()).for_each(|_| at.print(1));
                shows = true;
            }
            Piece::Run(n) => {
                out.extend(std::iter::repeat_n(b'y', *n));
                (0..*n).for_each(|_| at.print(1));
                shows = true;
            }
            Piece::Wide if at.col + 1 == cols => {}
            Piece::Wide => {
                out.extend_from_slice("\u{65e5}".as_bytes());
                at.print(2);
                shows = true;
            }
            // A space may be the one thing on a row it wrapped onto.
            Piece::Space => {
                out.push(b' ');
                at.print(1);
                shows = false;
            }
            Piece::LineEnd => {
                out.extend_from_slice(b"\r\n");
                at.col = 0;
                at.line_feed();
                shows = false;
            }
            Piece::LineFeed => {
                out.push(b'\n');
                at.col = at.col.min(cols - 1);
                at.line_feed();
                shows = false;
            }
            Piece::Return => {
                out.push(b'\r');
                at.col = 0;
            }
            Piece::Colour(c) => out.extend_from_slice(format!("\x1b[{c}m").as_bytes()),
            Piece::Reset => out.extend_from_slice(b"\x1b[0m"),
            // From the row's start, as progress lines do: erasing half a
            // wide character is drawn differently by `vt100` and the screen.
            Piece::EraseLine => {
                out.extend_from_slice(b"\r\x1b[K");
                at.col = 0;
                shows = false;
            }
            Piece::Up(n) => {
                let n = (*n).min(at.row);
                if n > 0 && (shows || at.scrolled) {
                    // From the row's start: `vt100` keeps a pending wrap
                    // through `CUU`, where xterm and the screen inside end it.
                    out.extend_from_slice(format!("\r\x1b[{n}A").as_bytes());
                    at.row -= n;
                    at.col = 0;
                }
            }
            Piece::At(r, c) if at.scrolled => {
                let r = (*r).min(rows - 1);
                out.extend_from_slice(format!("\x1b[{};{}H", r + 1, c + 1).as_bytes());
                at.row = r;
                at.col = *c;
            }
            Piece::At(..) => {}
        }
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200)))]

    /// Whatever a command writes (lines, wraps, redraws from `\r` and
    /// from rows below, colours, wide characters), split into frames
    /// anywhere: the target shows, scrollback included, what the
    /// command's own bytes show, and its cursor is where theirs is.
    #[test]
    fn inline_shows_what_the_commands_bytes_show(
        pieces in proptest::collection::vec(piece(), 0..80),
        cuts in proptest::collection::vec(0usize..4000, 0..10),
        rows in 3u16..9,
    ) {
        let bytes = command_bytes(&pieces, rows, 30);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut parts = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain([bytes.len()]) {
            // Cut between characters, as reads of a PTY may not, but the
            // screen keeps an incomplete one for the next read anyway.
            if cut >= from && std::str::from_utf8(&bytes[..cut]).is_ok() {
                parts.push(&bytes[from..cut]);
                from = cut;
            }
        }
        let (mut inline, mut plain, _) = inline_and_plain(&parts, rows, 30, BEFORE);
        // A space written and a cell never written look the same; a row
        // the cursor only passed through (opened by the command, not by
        // the renderer, which opens rows that show something) is blank.
        let trimmed = |t: &mut vt100::Parser| {
            let mut lines: Vec<String> = scrollback_and_screen(t).iter().map(|l| l.trim_end().to_owned()).collect();
            while lines.last().is_some_and(String::is_empty) {
                lines.pop();
            }
            lines
        };
        proptest::prop_assert_eq!(trimmed(&mut inline), trimmed(&mut plain));
        proptest::prop_assert_eq!(inline.screen().cursor_position(), plain.screen().cursor_position());
    }
}
