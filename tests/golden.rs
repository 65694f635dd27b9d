//! Golden recording: a fixed terminal byte stream, rendered and encoded as
//! custos does it, must match `testdata/golden/hello.cast` byte for byte,
//! and replay to the same screen the emulator had.
//!
//! The input file holds the program's writes separated by NUL bytes; each
//! write is one frame, 0.1 s after the previous. Regenerate the fixture
//! after an intended format change with `UPDATE_GOLDEN=1 cargo test --test golden`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/shell.rs"]
mod shell;
#[path = "support/fixtures.rs"]
mod fixtures;

use std::time::Duration;

use custos::evidence::asciicast::{Cast, Encoder, Event, Header};
use custos::term::masker::Cover;
use custos::term::render::{Layout, Renderer, Scrolled};
use custos::term::screen::{Screen, Size};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/golden");

fn render_cast(input: &[u8], size: Size) -> (String, Screen) {
    let info = fixtures::session_info("01930000-0000-7000-8000-000000000001", "alice", "db1");
    let header = Header::new(info, size.cols, size.rows, Some("xterm-256color".into()), 1_764_000_000);
    let mut cast = Encoder::header(&header);
    let mut encoder = Encoder::default();
    let mut screen = Screen::new(size);
    let mut renderer = Renderer::new(Layout { pane_rows: size.rows, cols: size.cols, status: false });
    let mut out = Vec::new();
    for (i, write) in input.split(|&b| b == 0).enumerate() {
        screen.process(write);
        let scrolled = Scrolled::take(&screen, &Cover::none());
        screen.clear_scrolled();
        out.clear();
        let damage = screen.take_damage();
        renderer.frame(&screen, &scrolled, &damage, &Cover::none(), None, &mut out);
        Renderer::passthrough(&screen.take_passthrough(), &mut out);
        let at = Duration::from_millis(100 * (i as u64 + 1));
        encoder.event(at, &Event::Output(std::str::from_utf8(&out).unwrap()), &mut cast);
    }
    encoder.event(Duration::from_millis(2000), &Event::Exit(0), &mut cast);
    (String::from_utf8(cast).unwrap(), screen)
}

#[test]
fn hello_session_matches_the_golden_cast_and_replays_to_the_same_screen() {
    let input = std::fs::read(format!("{DIR}/hello.input")).unwrap();
    let size = Size { rows: 12, cols: 60 };
    let (cast_text, screen) = render_cast(&input, size);
    let golden_path = format!("{DIR}/hello.cast");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, &cast_text).unwrap();
    }
    let golden = std::fs::read_to_string(&golden_path).unwrap();
    assert_eq!(cast_text, golden, "rendering changed; if intended, rerun with UPDATE_GOLDEN=1");

    let cast = Cast::parse(&golden).unwrap();
    let mut replayed = shell::replay(&cast);
    let replayed_rows: Vec<String> = replayed.screen().rows(0, size.cols).map(|r| r.trim_end().to_owned()).collect();
    let live_rows: Vec<String> = screen.text().split('\n').map(str::to_owned).collect();
    assert_eq!(replayed_rows, live_rows);
    // Rows that scrolled off are in the replay's scrollback, in order.
    let lines = shell::all_lines(&mut replayed);
    let numbers: Vec<u32> = lines.iter().filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
    assert_eq!(numbers, (1..=14).collect::<Vec<u32>>());
    // Attributes survive: the background of the placed text is truecolor.
    let row = live_rows.iter().position(|r| r.contains("placed")).unwrap() as u16;
    let col = live_rows[usize::from(row)].find("placed").unwrap() as u16;
    assert_eq!(replayed.screen().cell(row, col).unwrap().bgcolor(), vt100::Color::Rgb(30, 60, 90));
}
