//! Replay of recordings made by other tools: golden casts recorded by
//! asciinema 3 (asciicast v3) and asciinema 2.4 (v2) from the same script,
//! `testdata/replay/session.sh`, in a 60x12 terminal. Both must play to the
//! screen that script leaves, and seek to any event exactly as straight
//! playback shows it.
//!
//! Regenerate (only if the script changes):
//! `asciinema rec --headless --window-size 60x12 -c 'bash --norc --noprofile testdata/replay/session.sh' asciinema3.cast`
//! (asciinema 3.2), and `asciinema rec --cols 60 --rows 12 -c '…' asciinema2.cast` (asciinema 2.4,
//! inside a terminal: `script -qec '…' /dev/null`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use alacritty_terminal::vte::ansi::NamedColor;
use custos::evidence::asciicast::{Kind, Recording};
use custos::tui::replay::index::{self, snapshot, Index, Spacing};
use custos::tui::replay::player::Player;
use custos::term::screen::{Color, Screen, Size};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/replay");

fn load(name: &str) -> Recording {
    Recording::parse(&std::fs::read_to_string(format!("{DIR}/{name}")).unwrap()).unwrap()
}

/// What `session.sh` leaves on a 60x12 screen: 24 lines scrolled the first
/// 13 away, `placed` was drawn on row 2 at column 40, and `the end` scrolled
/// everything up one more row.
fn expected_final_rows() -> Vec<String> {
    let mut rows = vec![format!("13{}placed", " ".repeat(37))];
    rows.extend((14..=20).map(|n| n.to_string()));
    rows.extend(["漢字 café 🙂 wide".to_owned(), "progress done".to_owned(), "the end".to_owned(), String::new()]);
    rows
}

#[rstest::rstest]
#[case::asciinema3("asciinema3.cast", 3)]
#[case::asciinema2("asciinema2.cast", 2)]
fn a_golden_cast_plays_to_the_screen_the_session_left(#[case] name: &str, #[case] version: u8) {
    let recording = load(name);
    assert_eq!((recording.version, recording.cols, recording.rows), (version, 60, 12));
    assert!(recording.events.iter().all(|e| matches!(e.kind, Kind::Output | Kind::Exit)));
    let mut player = Player::build(recording);
    assert!((1.8..2.2).contains(&player.duration()), "{}", player.duration());
    player.seek_event(usize::MAX);
    let rows: Vec<String> = player.screen().text().split('\n').map(str::to_owned).collect();
    assert_eq!(rows, expected_final_rows());

    // Colours survive: at 0.5 s the second line is on screen in colour.
    player.seek(0.5);
    assert!(player.screen().text().starts_with("golden session\nred and orange and truecolor"));
    let row = player.screen().row(1).unwrap();
    assert_eq!(row[0].fg, Color::Named(NamedColor::Red));
    assert_eq!(row[8].fg, Color::Indexed(208));
    let t = "red and orange and ".len();
    assert!(matches!(row[t].bg, Color::Spec(rgb) if (rgb.r, rgb.g, rgb.b) == (30, 60, 90)));

    // Search finds a line that scrolled away long before the end.
    let hit = player.search_all("golden session", 5);
    assert_eq!(hit.len(), 1);
    assert_eq!(hit[0].event, 0);
}

#[rstest::rstest]
#[case::asciinema3("asciinema3.cast")]
#[case::asciinema2("asciinema2.cast")]
#[case::custos_golden("../golden/hello.cast")]
fn seeking_a_golden_cast_matches_straight_playback(#[case] name: &str) {
    let recording = load(name);
    let mut screen = Screen::new(Size { rows: recording.rows, cols: recording.cols });
    let mut expected = vec![snapshot(&screen)];
    for e in &recording.events {
        index::apply(&mut screen, e);
        expected.push(snapshot(&screen));
    }
    let index = Index::build_with(recording.cols, recording.rows, &recording.events, Spacing { bytes: 1, secs: 0.0 });
    assert!(index.keyframes.len() > 3, "{} keyframes", index.keyframes.len());
    let mut player = Player::new(recording, index);
    for n in (0..expected.len()).rev() {
        player.seek_event(n);
        assert_eq!(snapshot(player.screen()), expected[n], "{name}: event {n}");
    }
}
