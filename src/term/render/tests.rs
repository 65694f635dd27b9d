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
