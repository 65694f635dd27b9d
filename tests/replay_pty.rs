//! The real `custos replay` binary in a real PTY, read back through an
//! independent emulator (vt100): play a session recorded by `custos-shell`,
//! seek to a command, search a string, go to a time, and quit; browse a
//! spool; follow a recording as it is written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/shell.rs"]
mod shell;
#[path = "support/fixtures.rs"]
mod fixtures;

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use shell::{Pty, Setup, CUSTOS_BIN};

fn replay(args: &[&str], home: &Path) -> Command {
    let mut cmd = Command::new(CUSTOS_BIN);
    cmd.arg("replay")
        .args(args)
        .env_clear()
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8")
        .env("HOME", home)
        .env("PATH", "/usr/bin:/bin");
    cmd
}

/// A line of the screen's bottom-but-one row: the timeline.
fn timeline(pty: &Pty) -> String {
    let rows = pty.rows();
    rows[rows.len() - 2].clone()
}

#[test]
fn play_a_recorded_session_search_it_and_quit() {
    let setup = Setup::new("");
    let script = "echo first; printf 'the needle is here\\n'; seq 1 3; echo last";
    let mut shell = Pty::spawn(setup.command(&["-c", script]), 12, 60);
    assert_eq!(shell.wait_exit(), 0);
    let recording = setup.recordings().remove(0);

    let mut pty = Pty::spawn(replay(&[recording.to_str().unwrap()], setup.dir.path()), 24, 100);
    pty.wait_text("custos replay");
    pty.wait_text("UNVERIFIED");
    // End: the whole session on screen.
    pty.send(b"\x1b[F");
    pty.wait_text("last");
    // Search from the start: jumps to where the needle was shown.
    pty.send(b"\x1b[H");
    pty.wait_for("the start", |s| !s.contains("last"));
    pty.send(b"/needle\r");
    pty.wait_text("1 matches for \"needle\"");
    pty.wait_for("the needle on the replayed screen", |s| s.lines().any(|l| l.starts_with("│the needle is here")));
    // Help, then quit.
    pty.send(b"?");
    pty.wait_text("play / pause");
    pty.send(b"x");
    pty.wait_for("help closed", |s| !s.contains("play / pause"));
    pty.send(b"q");
    assert_eq!(pty.wait_exit(), 0);
    // The terminal is given back: primary screen, no raw mode leftovers.
    assert!(!pty.with_screen(|s| s.alternate_screen()));
}

/// A recording with gate markers, written the way the recorder writes.
fn session_with_commands(path: &Path) {
    use custos::evidence::asciicast::{CastFile, Event, Header};
    let info = fixtures::session_info("01930000-0000-7000-8000-0000000000aa", "alice", "db1");
    let mut cast = CastFile::create(path, &Header::new(info, 60, 12, None, 1_795_700_000)).unwrap();
    let mut t = Duration::ZERO;
    for (i, line) in ["uptime", "sudo systemctl restart pg", "df -h"].iter().enumerate() {
        t += Duration::from_secs(20);
        cast.write(t, &Event::Output(&format!("$ {line}\r\n"))).unwrap();
        let marker = serde_json::json!({"command": line, "verdict": if i == 1 { "approve" } else { "allow" }, "exit": 0}).to_string();
        cast.write(t, &Event::Marker(&marker)).unwrap();
        t += Duration::from_secs(1);
        cast.write(t, &Event::Output(&format!("output of {line}\r\n"))).unwrap();
    }
    cast.write(t + Duration::from_secs(5), &Event::Exit(0)).unwrap();
}

#[test]
fn browse_a_spool_seek_to_a_command_and_go_to_a_time() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("recordings")).unwrap();
    session_with_commands(&dir.path().join("recordings/s.cast"));
    let mut pty = Pty::spawn(replay(&[dir.path().to_str().unwrap(), "--no-cache", "--theme", "high-contrast"], dir.path()), 24, 100);
    pty.wait_text("1 of 1 sessions");
    pty.wait_text("alice");
    pty.send(b"\r");
    pty.wait_text("3 commands");
    // Second command: the screen shows it, the timeline its time.
    pty.send(b"]]");
    pty.wait_for("the second command", |s| s.contains("$ sudo systemctl restart pg"));
    pty.wait_for("the timeline at 0:41", |_| timeline(&pty).contains("00:41 / 01:08"));
    assert!(!pty.screen_text().contains("output of sudo"), "paused just after the command line");
    // Go to a typed time.
    pty.send(b"g1:03\r");
    pty.wait_for("the timeline at 1:03", |_| timeline(&pty).contains("01:03 / 01:08"));
    pty.wait_text("output of df -h");
    // Back to the browser, then quit.
    pty.send(b"q");
    pty.wait_text("1 of 1 sessions");
    pty.send(b"q");
    assert_eq!(pty.wait_exit(), 0);
}

#[test]
fn follow_plays_a_recording_as_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.cast");
    std::fs::write(&path, "{\"version\":3,\"term\":{\"cols\":40,\"rows\":6}}\n[0.1, \"o\", \"started\\r\\n\"]\n").unwrap();
    let mut pty = Pty::spawn(replay(&[path.to_str().unwrap(), "--follow", "--no-cache"], dir.path()), 20, 90);
    pty.wait_text("LIVE");
    pty.wait_text("started");
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    let written = std::time::Instant::now();
    file.write_all(b"[0.5, \"o\", \"new output arrived\\r\\n\"]\n").unwrap();
    pty.wait_text("new output arrived");
    assert!(written.elapsed() < Duration::from_secs(1), "shown after {:?}", written.elapsed());
    pty.send(b"q");
    assert_eq!(pty.wait_exit(), 0);
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.cast");
    std::fs::write(&bad, "{\"version\":3,\"term\":{\"cols\":40,\"rows\":6}}\n[0.1, \"o\"\n").unwrap();
    let out = replay(&[bad.to_str().unwrap(), "--no-cache"], dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is not a recording custos can play") && err.contains("line 2"), "{err}");

    let out = replay(&[bad.to_str().unwrap(), "--theme", "neon"], dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no built-in theme \"neon\""), "{err}");

    // A collector that is not there, a URL that is not one, an id that is not a session's.
    let out = replay(&["--server", "http://127.0.0.1:1", "--token", "t"], dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot reach the collector at http://127.0.0.1:1"), "{err}");
    let out = replay(&["--server", "ftp://collector", "--token", "t"], dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must start with http:// or https://"), "{err}");
    let out = replay(&["--server", "http://127.0.0.1:1", "--token", "t", "not-a-session"], dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not-a-session (not a session id)"), "{err}");

    let out = replay(&[dir.path().join("missing.cast").to_str().unwrap()], dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open") && err.contains("missing.cast"), "{err}");
}

/// On a host with a collector, delivered recordings leave the spool: an
/// empty spool says where they went and how to play them from there.
#[test]
fn an_empty_spool_on_a_host_with_a_collector_says_where_the_recordings_went() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let config = dir.path().join("custos.toml");
    std::fs::write(&config, format!("[recording]\nspool_dir = \"{}\"\n[collector]\nurl = \"http://127.0.0.1:8470\"\n", spool.display())).unwrap();
    let out = replay(&[], dir.path()).env("CUSTOS_CONFIG", &config).stdin(std::process::Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no recordings left in") && err.contains("custos replay --server http://127.0.0.1:8470"), "{err}");
}
