#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
//! Layout snapshots of `custos approve` on ratatui's `TestBackend`: the
//! text of every cell, compared with `testdata/approve/*.txt`. Set
//! `CUSTOS_UPDATE_SNAPSHOTS=1` to rewrite them after a deliberate change.

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::*;
use crate::approval::decision::line_hash;
use crate::approval::wire::NewRequest;

const NOW: i64 = 1_764_180_000;

fn request(id: &str, user: &str, line: &str, quorum: u32, created_ago: i64) -> RequestView {
    RequestView {
        id: id.into(),
        state: State::Pending,
        version: 1,
        created_at: NOW - created_ago,
        expires_at: NOW - created_ago + 600,
        request: NewRequest {
            session: "0190f0c2-0000-7000-8000-00000000abcd".into(),
            host: "db-1".into(),
            user: user.into(),
            line: line.into(),
            line_sha256: line_hash(line),
            cwd: "/srv".into(),
            programs: vec!["pg_dump".into()],
            rule: "dump-needs-approval".into(),
            rule_message: "dumps need a second person".into(),
            approvers: "dba".into(),
            quorum,
            timeout_secs: 600,
            reason: Some("INC-7 restore".into()),
            screen: "bob@db-1:~$ ls\nbackup.sql  notes\nbob@db-1:~$ pg_dump prod".into(),
            identity: None,
        },
        decisions: Vec::new(),
    }
}

fn model() -> Model {
    let mut m = Model::new("alice");
    m.update(vec![
        request("0190f0c2-0000-7000-8000-000000000001", "bob", "pg_dump prod > /tmp/d.sql", 1, 75),
        request("0190f0c2-0000-7000-8000-000000000002", "carol", "pg_dump billing", 2, 5),
    ]);
    m
}

fn render(m: &Model) -> String {
    render_sized(m, 100, 24)
}

fn render_sized(m: &Model, cols: u16, rows: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(cols, rows)).unwrap();
    t.draw(|f| draw(f, m, &Theme::default(), NOW)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn snapshot(name: &str, got: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/approve").join(format!("{name}.txt"));
    if std::env::var_os("CUSTOS_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(got, want, "snapshot {} differs; got:\n{got}", path.display());
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

#[test]
fn the_queue_details_and_screen_layout() {
    snapshot("queue", &render(&model()));
}

#[test]
fn the_reason_prompt_and_the_decision_it_makes() {
    let mut m = model();
    m.key(key(KeyCode::Down));
    assert_eq!(m.key(key(KeyCode::Char('d'))), None);
    for c in "not now".chars() {
        m.key(key(KeyCode::Char(c)));
    }
    snapshot("reason", &render(&m));
    let d = m.key(key(KeyCode::Enter)).unwrap();
    assert_eq!((d.verdict, d.reason.as_str(), d.request.request.user.as_str()), (Choice::Deny, "not now", "carol"));
}

#[test]
fn an_empty_reason_is_not_sent_and_esc_cancels() {
    let mut m = model();
    m.key(key(KeyCode::Char('a')));
    assert_eq!(m.key(key(KeyCode::Enter)), None);
    m.key(key(KeyCode::Esc));
    assert_eq!(m.mode, Mode::Normal);
}

#[test]
fn the_filter_narrows_the_queue() {
    let mut m = model();
    m.key(key(KeyCode::Char('/')));
    for c in "billing".chars() {
        m.key(key(KeyCode::Char(c)));
    }
    m.key(key(KeyCode::Enter));
    assert_eq!(m.visible().len(), 1);
    snapshot("filtered", &render(&m));
}

#[test]
fn help_is_on_question_mark() {
    let mut m = model();
    m.key(key(KeyCode::Char('?')));
    snapshot("help", &render(&m));
    m.key(key(KeyCode::Char('x')));
    assert_eq!(m.mode, Mode::Normal);
}

#[test]
fn a_decided_request_leaves_the_queue_and_the_selection_follows() {
    let mut m = model();
    m.key(key(KeyCode::Down));
    let mut gone = request("0190f0c2-0000-7000-8000-000000000001", "bob", "pg_dump prod > /tmp/d.sql", 1, 75);
    gone.state = State::Approved;
    m.update(vec![gone]);
    assert_eq!(m.visible().len(), 1);
    assert_eq!(m.current().unwrap().request.user, "carol");
}

/// The approvals pane inside `custos-shell` is 8 to 12 rows high: the
/// compact layout keeps the queue, one line of details and the keys.
#[test]
fn the_compact_layout_for_the_pane_inside_custos_shell() {
    let m = model();
    let got = render_sized(&m, 100, 9);
    snapshot("compact", &got);
    assert_eq!(got.lines().count(), 9);
    assert!(got.contains("pg_dump prod > /tmp/d.sql") && got.contains("pg_dump billing"), "{got}");
    assert!(got.lines().last().unwrap().contains("a approve"), "{got}");
}

#[test]
fn the_compact_layout_scrolls_to_the_selection_and_prompts_for_a_reason() {
    let mut m = Model::new("alice");
    m.update((0..12).map(|i| request(&format!("0190f0c2-0000-7000-8000-0000000000{i:02}"), "bob", &format!("pg_dump db{i}"), 1, 100 - i)).collect());
    for _ in 0..10 {
        m.key(key(KeyCode::Down));
    }
    m.key(key(KeyCode::Char('a')));
    for c in "ok".chars() {
        m.key(key(KeyCode::Char(c)));
    }
    let got = render_sized(&m, 80, 8);
    snapshot("compact-reason", &got);
    assert!(got.contains("▶ bob@db-1 pg_dump db10"), "the selection scrolled out of view:\n{got}");
    assert!(!got.contains("pg_dump db0 "), "{got}");
    assert!(got.contains("approve — reason: ok"), "{got}");
}

#[test]
fn a_tall_terminal_keeps_the_full_layout() {
    let got = render_sized(&model(), 100, COMPACT_BELOW);
    assert!(got.contains("requester's screen when they asked (masked)"), "{got}");
    let short = render_sized(&model(), 100, COMPACT_BELOW - 1);
    assert!(!short.contains("requester's screen when they asked (masked)"), "{short}");
}
