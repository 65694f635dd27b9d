//! A recording plays in asciinema's own player (asciinema 3, which reads
//! asciicast v3) and ends on the screen the session showed.
//!
//! The player is found through `ASCIINEMA_BIN` (set by `.ci/run`, which
//! installs asciinema 3 from crates.io) or `asciinema` on the PATH. Without
//! either the test says so and returns, so a developer without the player
//! can still run the suite; CI always has it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/shell.rs"]
mod shell;

use std::process::Command;

use shell::{replay, Pty, Setup};

#[test]
fn a_recording_plays_in_asciinema_3_to_the_same_screen() {
    let Some(asciinema) = shell::asciinema_3() else {
        eprintln!("SKIP: no asciinema 3 player (set ASCIINEMA_BIN or install it: cargo install asciinema)");
        return;
    };
    let setup = Setup::new("");
    let script = "printf '\\e[1;32mgreen\\e[0m 漢字 card 4111 1111 1111 1111\\n'; seq 1 30; printf 'tab\\there\\n'";
    let mut pty = Pty::spawn(setup.command(&["-c", script]), 20, 70);
    assert_eq!(pty.wait_exit(), 0);
    let path = setup.recordings().remove(0);
    let cast = setup.recording();
    let expected: Vec<String> = shell::all_lines(&mut replay(&cast)).into_iter().filter(|l| !l.trim().is_empty()).collect();
    assert!(expected.iter().any(|l| l.starts_with("green 漢字 card *******************")), "{expected:?}");

    let mut play = Command::new(asciinema);
    play.args(["play", "--speed", "50"]).arg(&path).env("TERM", "xterm-256color");
    // Played, as recordings are meant to be, in a terminal of the recorded
    // size (rows that scroll off are pushed by line feeds on its bottom row).
    let mut player = Pty::spawn(play, cast.header.term.rows, cast.header.term.cols);
    assert_eq!(player.wait_exit(), 0, "asciinema play failed:\n{}", player.screen_text());
    let shown = player.all_lines();
    // Every line of the recording, in order, on the player's terminal.
    let mut at = 0;
    for line in &expected {
        let found = shown[at..].iter().position(|l| l.trim_end() == line.trim_end());
        assert!(found.is_some(), "the player did not show {line:?}; it showed:\n{}", shown.join("\n"));
        at += found.unwrap() + 1;
    }
}

/// The approvals pane's stream (`p` events and the pane's markers) is
/// skipped by asciinema 3, which reads codes it does not know as "other":
/// the player shows the shell's screen and nothing of the pane.
#[test]
fn the_approvals_panes_stream_never_reaches_asciinema_3s_screen() {
    use custos::evidence::asciicast::{CastFile, Event, Header};
    use std::time::Duration;
    let Some(asciinema) = shell::asciinema_3() else {
        eprintln!("SKIP: no asciinema 3 player (set ASCIINEMA_BIN or install it: cargo install asciinema)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pane.cast");
    let info = custos::evidence::asciicast::SessionInfo {
        session_id: "0193f1a2-0000-7000-8000-000000000001".into(),
        user: "alice".into(),
        uid: 1000,
        host: "db1".into(),
        shell: "/bin/bash".into(),
        mode: "interactive".into(),
        command: None,
        identity: None,
    };
    let mut cast = CastFile::create(&path, &Header::new(info, 60, 12, Some("xterm-256color".into()), 1_795_700_000)).unwrap();
    let at = Duration::from_millis;
    cast.write(at(10), &Event::Output("shell-before\r\n")).unwrap();
    cast.write(at(20), &Event::Marker("approvals pane opened (60x4)")).unwrap();
    cast.write(at(20), &Event::Resize { cols: 60, rows: 7 }).unwrap();
    cast.write(at(30), &Event::Pane("\x1b[1;1H pane-only: pending approvals 0\x1b[2;1H")).unwrap();
    cast.write(at(40), &Event::Marker("approvals pane closed (by the user)")).unwrap();
    cast.write(at(40), &Event::Resize { cols: 60, rows: 12 }).unwrap();
    cast.write(at(50), &Event::Output("shell-after\r\n")).unwrap();
    cast.write(at(60), &Event::Exit(0)).unwrap();
    drop(cast);

    let mut play = Command::new(asciinema);
    play.args(["play", "--speed", "10"]).arg(&path).env("TERM", "xterm-256color");
    let mut player = Pty::spawn(play, 12, 60);
    assert_eq!(player.wait_exit(), 0, "asciinema play failed:\n{}", player.screen_text());
    let shown = player.all_lines().join("\n");
    assert!(shown.contains("shell-before") && shown.contains("shell-after"), "{shown}");
    assert!(!shown.contains("pane-only"), "the pane reached the player's screen:\n{shown}");
}
