#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::time::{Duration, Instant};

use super::wire::{Message, Reply, Source};
use super::*;
use crate::policy::{Policy, Subject};

fn bash_report() -> String {
    format!("{BASH_TRAP}\nfunctrace on\n\"\\C-m\": \"\\C-x\\C-_c\\C-x\\C-_a\"\n\"\\C-j\": \"\\C-x\\C-_c\\C-x\\C-_a\"\n\"\\C-x\\C-_c\": \"__custos_enter\"\n-- functions --\n__custos_ask () \n{{ \n    __custos_send CHECK\n}}\n-- end functions --\n")
}

fn gate() -> (Gate, Instant) {
    let now = Instant::now();
    let who = Subject { user: "alice".into(), groups: vec![], oidc_groups: vec![] };
    (Gate::new(Policy::default_policy(), who, "/home/alice".into(), "tok".into(), now), now)
}

fn hello(g: &mut Gate, now: Instant) -> String {
    let (reply, notes) = g.handle(Message::Hello { token: "tok".into(), shell: "bash".into(), pid: 7, version: "5.2".into() }, 7, now);
    assert!(matches!(notes[..], [Note::Hooked { .. }]), "{notes:?}");
    match reply {
        Some(Reply::Ok { nonce }) => nonce,
        other => panic!("{other:?}"),
    }
}

fn check(g: &mut Gate, nonce: &str, line: &str, now: Instant) -> (Reply, Vec<Note>) {
    let m = Message::Check { nonce: nonce.into(), source: Source::Enter, cwd: "/tmp".into(), line: line.into(), command: String::new(), vars: vec![] };
    let (reply, notes) = g.handle(m, 7, now);
    (reply.unwrap(), notes)
}

fn nonce_of(r: &Reply) -> String {
    match r {
        Reply::Ok { nonce } | Reply::Allow { nonce } | Reply::More { nonce } | Reply::Deny { nonce, .. } => nonce.clone(),
        Reply::Hold => String::new(),
    }
}

#[test]
fn a_wrong_token_is_refused_and_recorded() {
    let (mut g, now) = gate();
    let (reply, notes) = g.handle(Message::Hello { token: "guess".into(), shell: "bash".into(), pid: 7, version: String::new() }, 7, now);
    assert!(reply.is_none());
    assert!(matches!(&notes[..], [Note::Degraded(w)] if w.contains("token")));
}

#[test]
fn lines_are_allowed_refused_held_or_awaited() {
    let (mut g, now) = gate();
    let n = hello(&mut g, now);
    let (r, notes) = check(&mut g, &n, "ls -l /tmp", now);
    assert!(matches!(r, Reply::Allow { .. }));
    let Note::Command(rec) = &notes[0] else { panic!("{notes:?}") };
    assert_eq!((rec.verdict, rec.outcome, rec.programs.clone()), (RecordVerdict::Allow, Outcome::Ran, vec!["ls".to_owned()]));

    let (r, notes) = check(&mut g, &nonce_of(&r), "sudo rm -rf /", now);
    let Reply::Deny { message, .. } = &r else { panic!("{r:?}") };
    assert!(message.contains("rm-root"), "{message}");
    assert!(matches!(&notes[..], [Note::Command(c)] if c.outcome == Outcome::Refused));

    let (r, notes) = check(&mut g, &nonce_of(&r), "pg_dump prod", now);
    assert!(matches!(&r, Reply::Deny { message, .. } if message.contains("needs approval") && message.contains("no [collector] url")), "{r:?}");
    assert!(matches!(&notes[..], [Note::Command(c)] if c.verdict == RecordVerdict::Pending));

    let (r, notes) = check(&mut g, &nonce_of(&r), "for i in 1 2; do", now);
    assert!(matches!(r, Reply::More { .. }));
    assert!(notes.is_empty());
    assert!(g.degraded().is_empty(), "{:?}", g.degraded());
}

#[test]
fn a_stale_nonce_degrades_the_session() {
    let (mut g, now) = gate();
    let n = hello(&mut g, now);
    let (r, _) = check(&mut g, &n, "true", now);
    let _ = r;
    // The first nonce again: a replay, or a second writer on the socket.
    let (_, notes) = check(&mut g, &n, "true", now);
    assert!(notes.iter().any(|n| matches!(n, Note::Degraded(w) if w.contains("nonce"))), "{notes:?}");
}

#[test]
fn heartbeats_check_the_hooks_and_bring_exit_statuses() {
    let (mut g, now) = gate();
    let n = hello(&mut g, now);
    let (r, notes) = check(&mut g, &n, "make", now);
    let Note::Command(rec) = &notes[0] else { panic!() };
    let id = rec.id;
    let prompt = Message::Prompt { nonce: nonce_of(&r), status: 2, pid: 7, report: bash_report() };
    let (r, notes) = g.handle(prompt, 7, now);
    assert_eq!(notes, vec![Note::Exit { id, status: 2 }]);
    let without_trap = bash_report().lines().skip(1).collect::<Vec<_>>().join("\n");
    let prompt = Message::Prompt { nonce: nonce_of(&r.unwrap()), status: 0, pid: 7, report: without_trap };
    let (_, notes) = g.handle(prompt, 7, now);
    assert!(matches!(&notes[..], [Note::Degraded(w)] if w.contains("DEBUG trap")), "{notes:?}");
}

#[test]
fn enter_at_a_prompt_without_a_check_degrades_after_the_wait() {
    let (mut g, now) = gate();
    let _ = hello(&mut g, now);
    assert!(g.on_enter(now, true, Vec::new).is_empty());
    assert_eq!(g.deadline(), Some(now + CHECK_WAIT));
    assert!(g.poll(now + CHECK_WAIT - Duration::from_millis(1)).is_empty());
    let notes = g.poll(now + CHECK_WAIT);
    assert!(matches!(&notes[..], [Note::Degraded(w)] if w.contains("not followed by a check")), "{notes:?}");
}

#[test]
fn a_prompt_without_heartbeat_while_running_degrades() {
    let (mut g, now) = gate();
    let n = hello(&mut g, now);
    g.set_shell_args(vec!["-bash".into(), "--posix".into()]);
    let _ = check(&mut g, &n, "PROMPT_COMMAND=", now);
    let me = || vec![Process { pid: 7, name: "bash".into(), args: vec!["-bash".into(), "--posix".into()], other_terminal: false }];
    // A builtin reading in canonical mode (`read x`) is not a prompt.
    assert!(g.on_enter(now, false, me).is_empty());
    let notes = g.on_enter(now, true, me);
    assert!(matches!(&notes[..], [Note::Degraded(w)] if w.contains("heartbeat")), "{notes:?}");
}

#[test]
fn interactive_shells_are_told_from_scripts() {
    let p = |args: &[&str]| Process { pid: 9, name: args[0].trim_start_matches('-').rsplit('/').next().unwrap().into(), args: args.iter().map(|a| (*a).to_owned()).collect(), other_terminal: false };
    for args in [&["bash"][..], &["bash", "--norc"], &["zsh", "-f"], &["/bin/sh"], &["-bash"], &["bash", "-i", "script.sh"], &["bash", "-o", "vi"]] {
        assert!(ungated_shell(&p(args)).is_some(), "{args:?} not seen as an interactive shell");
    }
    for args in [&["bash", "script.sh"][..], &["bash", "-c", "ls"], &["sh", "-ec", "x"], &["python3"], &["vim", "x"]] {
        assert!(ungated_shell(&p(args)).is_none(), "{args:?} seen as an interactive shell");
    }
}

#[test]
fn an_approve_line_that_cannot_wait_is_refused_saying_why() {
    let (mut g, now) = gate();
    g.enable_approvals();
    let n = hello(&mut g, now);
    // Caught by the backstop inside a running command: nothing can wait.
    let m = Message::Check { nonce: n, source: Source::Backstop, cwd: "/tmp".into(), line: "pg_dump prod".into(), command: "pg_dump prod".into(), vars: vec![] };
    let (reply, notes) = g.handle(m, 7, now);
    let Some(Reply::Deny { message, nonce }) = reply else { panic!("{reply:?}") };
    assert!(message.contains("only a line typed at the prompt"), "{message}");
    assert!(notes.iter().any(|n| matches!(n, Note::Command(c) if c.outcome == Outcome::PendingRefused)), "{notes:?}");
    // At the prompt, it is held instead.
    let (r, notes) = check(&mut g, &nonce, "pg_dump prod", now);
    assert!(matches!(r, Reply::Hold), "{r:?}");
    assert!(matches!(&notes[..], [Note::Held(h)] if h.record.outcome == Outcome::Held), "{notes:?}");
}


fn command(g: &mut Gate, nonce: &str, line: &str, command: &str, vars: &[(&str, &str)], now: Instant) -> (Reply, Vec<Note>) {
    let vars = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let m = Message::Check { nonce: nonce.into(), source: Source::Command, cwd: "/tmp".into(), line: line.into(), command: command.into(), vars };
    let (reply, notes) = g.handle(m, 7, now);
    (reply.unwrap(), notes)
}

#[test]
fn each_command_of_a_line_is_checked_as_the_shell_runs_it() {
    let (mut g, now) = gate();
    let n = hello(&mut g, now);
    // `w` is an alias: allowed as typed, refused as what it runs.
    let (r, _) = check(&mut g, &n, "w", now);
    assert!(matches!(r, Reply::Allow { .. }));
    let (r, notes) = command(&mut g, &nonce_of(&r), "w", "sudo rm -rf /", &[], now);
    assert!(matches!(&r, Reply::Deny { message, .. } if message.contains("rm-root") && message.contains("sudo rm -rf /")), "{r:?}");
    let Note::Command(rec) = &notes[0] else { panic!("{notes:?}") };
    assert_eq!((rec.source, rec.line.as_str(), rec.outcome), ("command", "sudo rm -rf /", Outcome::Refused));
    // An allowed command leaves no record of its own.
    let (r, notes) = command(&mut g, &nonce_of(&r), "w", "ls", &[], now);
    assert!(matches!(r, Reply::Allow { .. }) && notes.is_empty(), "{r:?} {notes:?}");
    // Positional parameters come as variables 1, 2, ...
    let (r, _) = command(&mut g, &nonce_of(&r), "set -- sudo; \"$1\" rm -rf /", "\"$1\" rm -rf /", &[("1", "sudo")], now);
    assert!(matches!(&r, Reply::Deny { .. }), "{r:?}");
    assert!(g.degraded().is_empty(), "{:?}", g.degraded());
}

#[test]
fn the_hooks_own_names_are_refused() {
    let (mut g, now) = gate();
    let n = hello(&mut g, now);
    let (r, notes) = check(&mut g, &n, "__custos_ask() { return 0; }", now);
    assert!(matches!(&r, Reply::Deny { message, .. } if message.contains("not for use")), "{r:?}");
    assert!(matches!(&notes[..], [Note::Command(c)] if c.outcome == Outcome::Refused));
    let (r, _) = command(&mut g, &nonce_of(&r), "eval \"$x\"", "__custos_state=r", &[], now);
    assert!(matches!(r, Reply::Deny { .. }), "{r:?}");
}

#[test]
fn changed_hook_functions_degrade_and_nothing_runs_after() {
    let (mut g, now) = gate();
    let n = hello(&mut g, now);
    let prompt = Message::Prompt { nonce: n, status: 0, pid: 7, report: bash_report() };
    let (r, notes) = g.handle(prompt, 7, now);
    assert!(notes.is_empty(), "{notes:?}");
    let forged = bash_report().replace("__custos_send CHECK", "return 0");
    let prompt = Message::Prompt { nonce: nonce_of(&r.unwrap()), status: 0, pid: 7, report: forged };
    let (r, notes) = g.handle(prompt, 7, now);
    assert!(notes.iter().any(|n| matches!(n, Note::Degraded(w) if w.contains("redefined"))), "{notes:?}");
    // The changed hooks may claim anything: it is refused, and recorded so.
    let (r, notes) = check(&mut g, &nonce_of(&r.unwrap()), "ls", now);
    assert!(matches!(r, Reply::Deny { .. }), "{r:?}");
    assert!(matches!(&notes[..], [Note::Command(c)] if c.outcome == Outcome::Refused && c.line == "ls"), "{notes:?}");
}

#[test]
fn functions_defined_before_the_hooks_degrade_at_hello() {
    let (mut g, now) = gate();
    let (_, notes) = g.handle(Message::Hello { token: "tok".into(), shell: "bash".into(), pid: 7, version: "5.2 preset=__custos_ask".into() }, 7, now);
    assert!(notes.iter().any(|n| matches!(n, Note::Degraded(w) if w.contains("__custos_ask"))), "{notes:?}");
}

#[test]
fn a_shell_on_another_terminal_and_a_multiplexer_degrade() {
    let (mut g, now) = gate();
    let n = hello(&mut g, now);
    let _ = check(&mut g, &n, "script -q /dev/null", now);
    let found = || vec![Process { pid: 20, name: "bash".into(), args: vec!["/bin/bash".into(), "-i".into()], other_terminal: true }];
    let notes = g.on_enter(now, false, found);
    assert!(matches!(&notes[..], [Note::Degraded(w)] if w.contains("terminal of its own")), "{notes:?}");
    let tmux = || vec![Process { pid: 21, name: "tmux: client".into(), args: vec!["tmux".into()], other_terminal: false }];
    let notes = g.on_enter(now, false, tmux);
    assert!(matches!(&notes[..], [Note::Degraded(w)] if w.contains("multiplexer")), "{notes:?}");
}

#[test]
fn a_trap_handler_is_judged_when_it_is_set() {
    let (mut g, now) = gate();
    let n = hello(&mut g, now);
    let (r, _) = check(&mut g, &n, "trap 'sudo rm -rf /' USR1", now);
    assert!(matches!(&r, Reply::Deny { message, .. } if message.contains("rm-root")), "{r:?}");
    let (r, _) = command(&mut g, &nonce_of(&r), "x", "trap 'sudo rm -rf /' INT", &[], now);
    assert!(matches!(&r, Reply::Deny { .. }), "{r:?}");
    let (r, _) = command(&mut g, &nonce_of(&r), "for i in 1 2; do :; done", "for i in 1 2", &[], now);
    assert!(matches!(&r, Reply::Allow { .. }), "{r:?}");
}
