//! Snapshot tests of `custos replay`'s views, drawn into ratatui's
//! `TestBackend` from real recordings in a temporary spool: the browser
//! (and its filter), the player (screen, command list, timeline), search
//! results, a clipped screen, help, the broken-chain badge, and the
//! approvals pane's own stream shown and hidden. They assert on the text and
//! styles in the drawn buffer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use custos::evidence::asciicast::{CastFile, Event, Header, SessionInfo};
use custos::tui::replay::app::App;
use custos::tui::replay::source::{LocalSource, Verification};
use custos::tui::replay::ui;
use custos::tui::theme::{Role, Theme};
use collector::fixtures;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

const START: u64 = 1_795_700_000; // 2026-11-26 13:33 UTC

fn info(user: &str, host: &str, n: u128) -> SessionInfo {
    fixtures::session_info(format!("0193{n:028x}"), user, host)
}

/// A recorded session: prompt, commands with gate markers, output.
fn record(dir: &Path, user: &str, host: &str, start: u64, commands: &[(&str, &str, i32, &str)]) {
    let recordings = dir.join("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    let info = info(user, host, u128::from(start));
    let path = recordings.join(format!("{}.cast", info.session_id));
    let mut cast = CastFile::create(&path, &Header::new(info, 60, 12, Some("xterm-256color".into()), start)).unwrap();
    let mut t = Duration::ZERO;
    for (line, verdict, status, output) in commands {
        t += Duration::from_secs(10);
        cast.write(t, &Event::Output(&format!("\x1b[32m{user}@{host}\x1b[0m$ "))).unwrap();
        t += Duration::from_secs(2);
        cast.write(t, &Event::Output(&format!("{line}\r\n"))).unwrap();
        let marker = serde_json::json!({"command": line, "verdict": verdict, "exit": status}).to_string();
        cast.write(t, &Event::Marker(&marker)).unwrap();
        t += Duration::from_millis(500);
        cast.write(t, &Event::Output(output)).unwrap();
    }
    t += Duration::from_secs(30);
    cast.write(t, &Event::Exit(0)).unwrap();
}

fn spool() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    record(
        dir.path(),
        "alice",
        "db1",
        START,
        &[
            ("ls /etc", "allow", 0, "hosts  passwd  ssl\r\n"),
            ("rm -rf /var/lib/pg", "deny", 126, "custos: refused by rule no-rm-data\r\n"),
            ("grep needle haystack.txt", "allow", 0, "a needle in a haystack\r\n"),
        ],
    );
    record(dir.path(), "bob", "web2", START - 7200, &[("uptime", "allow", 0, "up 3 days\r\n")]);
    dir
}

fn app(dir: &Path) -> App {
    let mut app = App::new(Theme::default(), Box::new(LocalSource::new(dir, None)));
    app.now = START + 3600;
    app
}

fn draw(app: &mut App, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ui::draw(f, app)).unwrap();
    terminal.backend().buffer().clone()
}

fn lines(buf: &Buffer) -> Vec<String> {
    let area = buf.area;
    (0..area.height)
        .map(|y| (0..area.width).map(|x| buf[(x, y)].symbol().to_owned()).collect::<String>())
        .collect()
}

fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    for (y, line) in lines(buf).iter().enumerate() {
        if let Some(byte) = line.find(needle) {
            return Some((line[..byte].chars().count() as u16, y as u16));
        }
    }
    None
}

fn key(app: &mut App, code: KeyCode) {
    app.key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

#[test]
fn browser_lists_sessions_newest_first_with_flags_and_evidence() {
    let dir = spool();
    let mut app = app(dir.path());
    app.browse("").unwrap();
    let buf = draw(&mut app, 100, 12);
    let text = lines(&buf);
    assert!(text[0].contains("2 of 2 sessions"), "{text:#?}");
    let header = text.iter().position(|l| l.contains("User") && l.contains("Evidence")).unwrap();
    let alice = &text[header + 1];
    let bob = &text[header + 2];
    for cell in ["alice", "db1", "2026-11-26 13:33", "01:07", "3", "denied", "unverified"] {
        assert!(alice.contains(cell), "{cell:?} missing from {alice:?}");
    }
    for cell in ["bob", "web2", "2026-11-26 11:33", "00:42", "1"] {
        assert!(bob.contains(cell), "{cell:?} missing from {bob:?}");
    }
    assert!(!bob.contains("denied"));
    // The selected row is drawn in the selection style.
    let (x, y) = find(&buf, "alice").unwrap();
    assert_eq!(buf[(x, y)].bg, Theme::default().style(Role::Selection).bg.unwrap());
}

#[test]
fn browser_filters_by_field_and_by_screen_text() {
    let dir = spool();
    let mut app = app(dir.path());
    app.browse("").unwrap();
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "user:bob");
    let buf = draw(&mut app, 100, 12);
    assert!(lines(&buf).last().unwrap().contains("filter: user:bob"), "the prompt shows what is typed");
    key(&mut app, KeyCode::Enter);
    let text = lines(&draw(&mut app, 100, 12));
    assert!(text[0].contains("1 of 2 sessions"), "{text:#?}");
    assert!(text.iter().any(|l| l.contains("bob")) && !text.iter().any(|l| l.contains("alice")));

    // Text that was only ever on screen (command output), not in any header.
    app.browse("text:haystack").unwrap();
    let text = lines(&draw(&mut app, 100, 12));
    assert!(text[0].contains("1 of 2 sessions"), "{text:#?}");
    assert!(text.iter().any(|l| l.contains("alice")));

    // A bad filter says why and keeps the list.
    key(&mut app, KeyCode::Char('/'));
    for _ in 0..20 {
        key(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "since:'next week'");
    key(&mut app, KeyCode::Enter);
    let text = lines(&draw(&mut app, 100, 12));
    assert!(text.last().unwrap().contains("is not a time:"), "{text:#?}");
}

#[test]
fn player_shows_the_screen_commands_with_verdicts_and_the_timeline() {
    let dir = spool();
    let mut app = app(dir.path());
    app.browse("").unwrap();
    key(&mut app, KeyCode::Enter);
    // Jump to the second command: the denied one.
    key(&mut app, KeyCode::Char(']'));
    key(&mut app, KeyCode::Char(']'));
    let buf = draw(&mut app, 110, 18);
    let text = lines(&buf);
    assert!(text[0].contains("alice@db1") && text[0].contains("3 commands"), "{text:#?}");
    assert!(text[0].contains("UNVERIFIED"), "{text:#?}");
    // The recorded screen: both prompts, the first output, the command.
    let screen: Vec<&String> = text.iter().filter(|l| l.starts_with('│')).collect();
    assert!(screen[0].contains("alice@db1$ ls /etc"), "{text:#?}");
    assert!(screen[1].contains("hosts  passwd  ssl"), "{text:#?}");
    assert!(screen[2].contains("alice@db1$ rm -rf /var/lib/pg"), "{text:#?}");
    assert!(text.iter().any(|l| l.contains("60x12")), "the recorded size is shown");
    // The side list: verdict marks and exit statuses.
    assert!(text.iter().any(|l| l.contains("00:12 ✔ ls /etc [0]")), "{text:#?}");
    assert!(text.iter().any(|l| l.contains("00:24 ✖ rm -rf /var/lib/pg [126]")), "{text:#?}");
    let (x, y) = find(&buf, "✖ rm -rf").unwrap();
    assert_eq!(buf[(x, y)].fg, Theme::default().style(Role::Danger).fg.unwrap());
    // The timeline: paused at the command's time, of the whole duration.
    let timeline = &text[text.len() - 2];
    assert!(timeline.contains("⏸ 00:24 / 01:07"), "{timeline:?}");
    assert!(timeline.contains("1x") && timeline.contains("idle ≤2s"), "{timeline:?}");
    // Recorded colours reach the buffer: the prompt is green.
    let (x, y) = find(&buf, "alice@db1$ ls").unwrap();
    assert_eq!(buf[(x, y)].fg, ratatui::style::Color::Indexed(2));

    // Selecting a command in the list jumps to it.
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let text = lines(&draw(&mut app, 110, 18));
    assert!(text[text.len() - 2].contains("⏸ 00:37 / 01:07"), "{text:#?}");
    assert!(text.iter().any(|l| l.contains("alice@db1$ grep needle haystack.txt")));
}

#[test]
fn search_lists_every_match_and_highlights_it_on_screen() {
    let dir = spool();
    let mut app = app(dir.path());
    app.browse("user:alice").unwrap();
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "needle");
    key(&mut app, KeyCode::Enter);
    let buf = draw(&mut app, 110, 18);
    let text = lines(&buf);
    assert!(text.iter().any(|l| l.contains("2 matches for \"needle\"")), "{text:#?}");
    assert!(text.iter().any(|l| l.contains("00:37 alice@db1$ grep needle haystack.txt")), "{text:#?}");
    assert!(text.iter().any(|l| l.contains("00:37 a needle in a haystack")), "{text:#?}");
    // The first match is where playback jumped: the command line is shown.
    let y = text.iter().position(|l| l.starts_with("│alice@db1$ grep needle")).unwrap() as u16;
    let x = 1 + "alice@db1$ grep ".len() as u16;
    assert_eq!(buf[(x, y)].symbol(), "n");
    assert_eq!(buf[(x, y)].bg, Theme::default().style(Role::Highlight).bg.unwrap(), "the match is highlighted");
    assert_eq!(buf[(x + 5, y)].bg, Theme::default().style(Role::Highlight).bg.unwrap(), "the whole match");
    assert_ne!(buf[(x + 7, y)].bg, Theme::default().style(Role::Highlight).bg.unwrap(), "only the match");
    // n goes to the next match; there is none after the second.
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('n'));
    let text = lines(&draw(&mut app, 110, 18));
    assert!(text.iter().any(|l| l.starts_with("│a needle in a haystack")), "{text:#?}");
    key(&mut app, KeyCode::Char('n'));
    let text = lines(&draw(&mut app, 110, 18));
    assert!(text.last().unwrap().contains("no match for \"needle\" after this point"), "{text:#?}");
    // A string never shown says so.
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "swordfish");
    key(&mut app, KeyCode::Enter);
    let text = lines(&draw(&mut app, 110, 18));
    assert!(text.last().unwrap().contains("\"swordfish\" was never on screen"), "{text:#?}");
}

fn broken(_: &Path) -> Verification {
    Verification::Broken("chunk 3 of 7: the signature does not verify".into())
}

#[test]
fn a_broken_chain_is_impossible_to_miss() {
    let dir = spool();
    let source = LocalSource::new(dir.path(), None).with_verifier(broken);
    let mut app = App::new(Theme::default(), Box::new(source));
    app.browse("").unwrap();
    // On a row that is not selected, the evidence cell is in the danger style.
    key(&mut app, KeyCode::Down);
    let buf = draw(&mut app, 100, 12);
    let (x, y) = find(&buf, "✖ BROKEN").unwrap();
    assert_eq!(buf[(x, y)].bg, Theme::default().style(Role::Danger).bg.unwrap());

    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Enter);
    let buf = draw(&mut app, 110, 18);
    let text = lines(&buf);
    assert!(text[0].contains("✖ CHAIN BROKEN"), "{text:#?}");
    assert!(text[1].contains("EVIDENCE CHAIN BROKEN: chunk 3 of 7: the signature does not verify"), "{text:#?}");
    // The banner is a full row in the danger style, and so is the frame.
    let danger = Theme::default().style(Role::Danger);
    for x in 0..110 {
        assert_eq!(buf[(x, 1)].bg, danger.bg.unwrap(), "banner column {x}");
    }
    assert_eq!(buf[(0, 2)].symbol(), "┌");
    assert_eq!(buf[(0, 2)].fg, danger.fg.unwrap());
}

#[test]
fn a_screen_larger_than_the_window_is_clipped_with_a_clear_frame() {
    let dir = spool();
    let mut app = app(dir.path());
    app.browse("user:alice").unwrap();
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::End);
    let buf = draw(&mut app, 50, 10);
    let text = lines(&buf);
    assert!(text.iter().any(|l| l.contains("recorded 60x12, shown")), "{text:#?}");
    let (x, y) = find(&buf, "recorded 60x12").unwrap();
    assert_eq!(buf[(x, y)].fg, Theme::default().style(Role::Warn).fg.unwrap());
}

/// A window narrower than the recording plus the side pane: the frame
/// says so and names the way out, and hiding the side pane gives the
/// screen the whole width.
#[test]
fn hiding_the_side_pane_gives_the_screen_the_whole_width() {
    let dir = spool();
    let mut app = app(dir.path());
    app.browse("user:alice").unwrap();
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::End);
    let text = lines(&draw(&mut app, 70, 20));
    assert!(text.iter().any(|l| l.contains("recorded 60x12, shown 45x12 (v: wider)")), "{text:#?}");
    key(&mut app, KeyCode::Char('v'));
    let text = lines(&draw(&mut app, 70, 20));
    assert!(text.iter().any(|l| l.contains(" 60x12 ")), "the whole screen fits: {text:#?}");
    assert!(!text.iter().any(|l| l.contains("recorded 60x12, shown")), "{text:#?}");
    assert!(text.iter().any(|l| l.contains("side pane hidden")), "{text:#?}");
    key(&mut app, KeyCode::Char('v'));
    let text = lines(&draw(&mut app, 70, 20));
    assert!(text.iter().any(|l| l.contains("recorded 60x12, shown")), "{text:#?}");
}

#[test]
fn help_lists_the_keys_and_any_key_closes_it() {
    let dir = spool();
    let mut app = app(dir.path());
    app.browse("").unwrap();
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('?'));
    let text = lines(&draw(&mut app, 100, 24));
    for k in ["play / pause", "previous / next command", "go to a time", "copy the screen"] {
        assert!(text.iter().any(|l| l.contains(k)), "{k:?} missing: {text:#?}");
    }
    key(&mut app, KeyCode::Char('x'));
    let text = lines(&draw(&mut app, 100, 24));
    assert!(!text.iter().any(|l| l.contains("play / pause")));
}

#[test]
fn go_to_time_copy_and_quit() {
    let dir = spool();
    let mut app = app(dir.path());
    app.copy_dir = dir.path().to_owned();
    app.browse("user:alice").unwrap();
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('g'));
    type_text(&mut app, "0:13");
    key(&mut app, KeyCode::Enter);
    let text = lines(&draw(&mut app, 110, 18));
    assert!(text[text.len() - 2].contains("⏸ 00:13 / 01:07"), "{text:#?}");
    // A bad time is an error on the bottom line, the position is kept.
    key(&mut app, KeyCode::Char('g'));
    type_text(&mut app, "soon");
    key(&mut app, KeyCode::Enter);
    let text = lines(&draw(&mut app, 110, 18));
    assert!(text.last().unwrap().contains("\"soon\" is not a time in the recording"), "{text:#?}");
    assert!(text[text.len() - 2].contains("00:13"));
    // c copies through OSC 52, w writes a file.
    key(&mut app, KeyCode::Char('c'));
    let osc = String::from_utf8(std::mem::take(&mut app.to_terminal)).unwrap();
    let b64 = osc.strip_prefix("\x1b]52;c;").unwrap().strip_suffix("\x1b\\").unwrap();
    use base64::Engine as _;
    let copied = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
    assert!(copied.starts_with("alice@db1$ ls /etc\nhosts  passwd  ssl\n"), "{copied:?}");
    key(&mut app, KeyCode::Char('w'));
    let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).filter(|e| e.path().extension().is_some_and(|x| x == "txt")).collect();
    assert_eq!(written.len(), 1);
    assert_eq!(std::fs::read_to_string(written[0].path()).unwrap(), copied);
    // q leaves the player for the browser, then quits.
    key(&mut app, KeyCode::Char('q'));
    assert!(app.player.is_none() && !app.quit);
    key(&mut app, KeyCode::Char('q'));
    assert!(app.quit);
}

#[test]
fn a_click_on_the_timeline_seeks_there() {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let dir = spool();
    let mut app = app(dir.path());
    app.browse("user:alice").unwrap();
    key(&mut app, KeyCode::Enter);
    let buf = draw(&mut app, 110, 18);
    let text = lines(&buf);
    let row = text.len() as u16 - 2;
    let (x, width) = app.player.as_ref().unwrap().timeline.map(|(x, y, w)| {
        assert_eq!(y, row);
        (x, w)
    }).unwrap();
    // The middle of the bar is the middle of the session.
    app.mouse(MouseEvent { kind: MouseEventKind::Down(MouseButton::Left), column: x + (width - 1) / 2, row, modifiers: KeyModifiers::NONE });
    let t = app.player.as_ref().unwrap().player.time();
    let duration = app.player.as_ref().unwrap().player.duration();
    assert!((t - duration / 2.0).abs() <= duration / f64::from(width), "t={t} of {duration}");
    // A click elsewhere does nothing.
    app.mouse(MouseEvent { kind: MouseEventKind::Down(MouseButton::Left), column: x, row: 3, modifiers: KeyModifiers::NONE });
    assert_eq!(app.player.as_ref().unwrap().player.time(), t);
    let text = lines(&draw(&mut app, 110, 18));
    assert!(text[text.len() - 2].contains(&format!("⏸ {} / 01:07", custos::when::format_clock(t))), "{text:#?}");
}

#[path = "support/collector.rs"]
mod collector;

/// A spool holding one session as signed chunks (`chunks/<id>/`), three
/// chunks, the last final; returns the key and the session directory.
fn signed_spool(dir: &Path) -> (custos::evidence::HostKey, std::path::PathBuf) {
    let key = custos::evidence::HostKey::generate();
    let session = uuid::Uuid::now_v7();
    let pieces = collector::cast_pieces(session, "carol", "vault1", 3, Some(0));
    let spool = collector::SpoolSession::create(dir, session, false);
    for chunk in collector::seal_chain(&key, session, &pieces, true) {
        spool.write(&chunk);
    }
    (key, spool.dir)
}

#[test]
fn signed_chunks_verify_with_the_key_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let (host_key, _) = signed_spool(dir.path());
    let source = LocalSource::new(dir.path(), None).with_keys(vec![host_key.public()]);
    let mut app = App::new(Theme::default(), Box::new(source));
    app.browse("").unwrap();
    let text = lines(&draw(&mut app, 100, 8));
    assert!(text.iter().any(|l| l.contains("carol") && l.contains("vault1") && l.contains("✔ intact")), "{text:#?}");
    key(&mut app, KeyCode::Enter);
    let text = lines(&draw(&mut app, 110, 30));
    assert!(text[0].contains("✔ CHAIN INTACT"), "{text:#?}");
    assert!(text.iter().any(|l| l.contains("echo step-1")), "the markers are the command list: {text:#?}");

    // Without a key nothing vouches for the chunks, and the badge says why.
    let mut app = App::new(Theme::default(), Box::new(LocalSource::new(dir.path(), None)));
    app.browse("").unwrap();
    key(&mut app, KeyCode::Enter);
    let text = lines(&draw(&mut app, 110, 10));
    assert!(text[0].contains("UNVERIFIED: no public key"), "{text:#?}");
}



#[test]
fn a_really_tampered_chain_shows_the_broken_badge_everywhere() {
    // Two plain recordings, and the signed session (the oldest: listed last).
    let dir = spool();
    let (host_key, session_dir) = signed_spool(dir.path());
    // Someone edits one byte of chunk 1's signed payload on disk.
    collector::tamper_chunk(&session_dir, 1);

    let source = LocalSource::new(dir.path(), None).with_keys(vec![host_key.public()]);
    let mut app = App::new(Theme::default(), Box::new(source));
    app.browse("").unwrap();
    let buf = draw(&mut app, 100, 10);
    let text = lines(&buf);
    let row = text.iter().position(|l| l.contains("carol")).unwrap();
    assert_eq!(row, 6, "{text:#?}");
    assert!(text[0].contains("✖ 1 with a BROKEN evidence chain"), "the title counts broken sessions: {text:#?}");
    assert!(text[row].contains("✖ BROKEN"), "{text:#?}");
    let (x, y) = find(&buf, "✖ BROKEN").unwrap();
    let danger = Theme::default().style(Role::Danger);
    assert_eq!(buf[(x, y)].bg, danger.bg.unwrap(), "the evidence cell is in the danger colours");
    assert_eq!(buf[(x, y)].fg, danger.fg.unwrap());

    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let buf = draw(&mut app, 120, 30);
    let text = lines(&buf);
    assert!(text[0].contains("✖ CHAIN BROKEN"), "{text:#?}");
    // The banner names the damaged chunk, the reason comes from verify_chain.
    assert!(text[1].contains("EVIDENCE CHAIN BROKEN: chunk 1"), "{text:#?}");
    for x in 0..120 {
        assert_eq!(buf[(x, 1)].bg, danger.bg.unwrap(), "banner column {x}");
    }
    assert_eq!(buf[(0, 2)].fg, danger.fg.unwrap(), "the screen's frame is in the danger colour");
}

/// A session whose approvals pane was open from 5 s to 20 s: its stream
/// (`p` events between its markers) as `custos-shell` writes it.
fn record_with_pane(dir: &Path) {
    let recordings = dir.join("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    let info = info("carol", "db3", 7);
    let path = recordings.join(format!("{}.cast", info.session_id));
    let mut cast = CastFile::create(&path, &Header::new(info, 60, 12, None, START)).unwrap();
    let at = Duration::from_secs;
    cast.write(at(1), &Event::Output("carol@db3$ make deploy\r\n")).unwrap();
    cast.write(at(5), &Event::Marker("approvals pane opened (60x4)")).unwrap();
    cast.write(at(5), &Event::Resize { cols: 60, rows: 7 }).unwrap();
    cast.write(at(6), &Event::Pane("\x1b[?1049h\x1b[1;1H pending approvals: 1\x1b[2;1H▶ dave@web1 bump prod")).unwrap();
    cast.write(at(20), &Event::Marker("approvals pane closed (by the user)")).unwrap();
    cast.write(at(20), &Event::Resize { cols: 60, rows: 12 }).unwrap();
    cast.write(at(21), &Event::Marker("approvals pane: custos approve exited with status 129")).unwrap();
    cast.write(at(25), &Event::Exit(0)).unwrap();
}

#[test]
fn the_approvals_pane_shows_only_when_asked_and_only_while_it_was_open() {
    let dir = tempfile::tempdir().unwrap();
    record_with_pane(dir.path());
    let mut app = app(dir.path());
    app.browse("").unwrap();
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('g'));
    type_text(&mut app, "0:10");
    key(&mut app, KeyCode::Enter);
    // Hidden by default: the shell's screen alone, though the pane is open.
    let text = lines(&draw(&mut app, 110, 24)).join("\n");
    assert!(text.contains("carol@db3$ make deploy"), "{text}");
    assert!(!text.contains("pending approvals") && !text.contains("approvals pane ·"), "{text}");
    // The side list says where it was open, as any player would.
    assert!(text.contains("approvals pane opened (60x4)"), "{text}");

    key(&mut app, KeyCode::Char('p'));
    let buf = draw(&mut app, 110, 24);
    let text = lines(&buf);
    let title = text.iter().position(|l| l.contains("approvals pane · its own stream · 60x4")).expect("the pane's frame");
    let shell = text.iter().position(|l| l.contains("carol@db3$ make deploy")).unwrap();
    assert!(title > shell, "below the shell's screen: {text:#?}");
    assert!(text[title + 1].contains("pending approvals: 1") && text[title + 2].contains("dave@web1 bump prod"), "{text:#?}");
    assert!(text.last().unwrap().contains("approvals pane shown"), "{text:#?}");
    // w writes the pane's text too while it is shown.
    assert!(app.screen_text().unwrap().contains("── approvals pane ──\n pending approvals: 1"));

    // Where it was closed, it says so instead.
    key(&mut app, KeyCode::Char('g'));
    type_text(&mut app, "0:22");
    key(&mut app, KeyCode::Enter);
    let text = lines(&draw(&mut app, 110, 24)).join("\n");
    assert!(!text.contains("pending approvals") && text.contains("approvals pane: not open at this point"), "{text}");
    assert!(!app.screen_text().unwrap().contains("approvals pane"));

    // Back inside, and hidden again.
    key(&mut app, KeyCode::Char('g'));
    type_text(&mut app, "0:07");
    key(&mut app, KeyCode::Enter);
    assert!(lines(&draw(&mut app, 110, 24)).join("\n").contains("pending approvals: 1"));
    key(&mut app, KeyCode::Char('p'));
    let text = lines(&draw(&mut app, 110, 24)).join("\n");
    assert!(!text.contains("pending approvals"), "{text}");
}

#[test]
fn a_session_without_the_pane_says_so_when_asked() {
    let dir = spool();
    let mut app = app(dir.path());
    app.browse("user:bob").unwrap();
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('p'));
    let text = lines(&draw(&mut app, 110, 18));
    assert!(text.last().unwrap().contains("this session never opened the approvals pane"), "{text:#?}");
    assert!(!app.player.as_ref().unwrap().show_pane);
}
