//! The loop's link to the command gate and to approvals: what the gate
//! notices becomes markers and audit records in the recording, degradation
//! on the status line (or the session's end), and a held line's wait is
//! handed to `approval::link`, whose effects come back here.
//!
//! The gate decides (see `gate`); this file only carries its decisions to
//! the recording, the shell's socket and the status line. What a checked
//! line leaves in the recording is the gate's typed record, written through
//! `evidence::marker` (the one owner of the marker format). A full evidence
//! spool (`[evidence] when_full`) is handled here too: it is the other
//! thing, besides the gate, that can pause or end a session.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::{Loop, Reads};
use crate::approval::link::Effect;
use crate::config::OnDegraded;
use crate::evidence::asciicast::Event;
use crate::evidence::marker::{Marker, Outcome};
use crate::evidence::WhenFull;
use crate::gate::socket::GateSocket;
use crate::gate::{Gate, Note};

/// The command gate as the loop runs it (see `gate`).
pub struct GateRuntime {
    pub gate: Gate,
    pub socket: GateSocket,
    pub on_degraded: OnDegraded,
    /// Approvals, when a collector is configured (see `approval`).
    pub approvals: Option<crate::approval::link::Approvals>,
}

/// How often, at most, an Enter typed while a command runs makes the gate
/// look at the foreground processes.
const FOREGROUND_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// What the terminal shows when the session is ended on the user.
pub(super) fn ending_message(why: &str) -> String {
    format!("\r\n\x1b[1;31mcustos: ending the session: {why}\x1b[0m\r\n")
}

impl Loop<'_> {
    /// A gate descriptor is ready: accept, or read and answer.
    pub(super) fn gate_ready(&mut self, index: usize) {
        let Some(g) = self.gate.as_mut() else { return };
        let notes = g.socket.ready(index, &mut g.gate, Instant::now());
        self.apply_notes(notes);
    }

    pub(super) fn gate_poll(&mut self) {
        let Some(g) = self.gate.as_mut() else { return };
        let notes = g.gate.poll(Instant::now());
        self.apply_notes(notes);
    }

    /// The user pressed Enter: the gate expects a check, or looks at what
    /// runs in the foreground (at most every [`FOREGROUND_CHECK_INTERVAL`]).
    pub(super) fn gate_enter(&mut self) {
        let now = Instant::now();
        let recent = self.last_foreground_check.is_some_and(|t| now.duration_since(t) < FOREGROUND_CHECK_INTERVAL);
        let Some(g) = self.gate.as_mut() else { return };
        let master = self.master.as_ref();
        let editing = master.is_some_and(|m| crate::recorder::pty::line_editing(m.as_fd()));
        let mut looked = false;
        let shell = g.gate.shell_pid();
        let notes = g.gate.on_enter(now, editing, || {
            looked = true;
            match master {
                Some(m) if !recent => {
                    let mut found = crate::gate::foreground::processes(m.as_fd());
                    found.extend(shell.map(crate::gate::foreground::elsewhere).unwrap_or_default());
                    found
                }
                _ => Vec::new(),
            }
        });
        if looked && !recent {
            self.last_foreground_check = Some(now);
        }
        self.apply_notes(notes);
    }

    /// A held line's progress: its socket to answer, its status to show.
    pub(super) fn approvals_ready(&mut self) {
        let effects = self.gate.as_mut().and_then(|g| g.approvals.as_mut()).map(|a| a.readable()).unwrap_or_default();
        self.approval_effects(effects);
    }

    /// Keeps a held line's shell waiting while its approval is pending.
    pub(super) fn approvals_keepalive(&mut self) {
        if let Some(g) = self.gate.as_mut() {
            if g.approvals.as_mut().is_some_and(|a| a.keepalive_due(Instant::now())) {
                g.socket.wait_held();
            }
        }
    }

    /// Keys while a line is held go to the hold (a reason, Ctrl-C), not to
    /// the shell, which waits for its answer. Returns false when no line is
    /// held.
    pub(super) fn keys_to_hold(&mut self, keys: &[u8]) -> bool {
        let Some(a) = self.gate.as_mut().and_then(|g| g.approvals.as_mut()).filter(|a| a.holding()) else {
            return false;
        };
        let effects = a.keys(keys);
        self.approval_effects(effects);
        self.approval_status();
        true
    }

    /// Records what the gate noticed, and shows degradation.
    pub(super) fn apply_notes(&mut self, notes: Vec<Note>) {
        for note in notes {
            // One time for everything a note leaves in the recording.
            let at = self.started.elapsed();
            match note {
                Note::Command(record) => {
                    let line = self.pipeline.mask_text(&record.line);
                    self.record_at(at, &Event::Marker(&record.marker(&line).label()));
                    self.record_at(at, &Event::Audit(&record.audit(line).to_string()));
                }
                Note::Exit { id, status } => {
                    self.exec_revoke();
                    let json = serde_json::json!({"kind": "exit", "id": id, "status": status});
                    self.record_at(at, &Event::Audit(&json.to_string()));
                }
                Note::Hooked { shell, pid, version } => {
                    if let (Some(g), Some(p)) = (self.gate.as_mut(), crate::gate::foreground::read(pid)) {
                        g.gate.set_shell_args(p.args);
                    }
                    let json = serde_json::json!({"kind": "hooked", "shell": shell, "pid": pid, "version": version});
                    self.record_at(at, &Event::Audit(&json.to_string()));
                }
                Note::Held(held) => {
                    // The shell echoed the line before it asked: take that
                    // in, so the approvers' screen shows it.
                    let mut buf = vec![0u8; 16 * 1024];
                    self.read_output(&mut buf, Reads::AtMost(8));
                    let line = self.pipeline.mask_text(&held.record.line);
                    let screen = self.pipeline.mask_text(&self.pipeline.screen().text());
                    let effects = match self.gate.as_mut().and_then(|g| g.approvals.as_mut()) {
                        Some(a) => a.start(&held, line, screen, Instant::now()),
                        None => vec![Effect::Resolve(Some((Outcome::Error, "approvals are not configured".into())))],
                    };
                    self.approval_effects(effects);
                    self.approval_status();
                    // Told at once that the answer takes a while, the shell
                    // puts the line back on the screen (bash's Enter binding
                    // cleared it), so the requester, the recording and an
                    // approver watching live see what waits.
                    if let Some(g) = self.gate.as_mut() {
                        g.socket.wait_held();
                    }
                }
                Note::Degraded(why) => {
                    self.record_at(at, &Event::Marker(&Marker::Degraded(why.clone()).label()));
                    let json = serde_json::json!({"kind": "degraded", "reason": why});
                    self.record_at(at, &Event::Audit(&json.to_string()));
                    self.status.degraded = Some(why.clone());
                    self.refresh_status();
                    if self.gate.as_ref().is_some_and(|g| g.on_degraded == OnDegraded::End) {
                        self.write_terminal(ending_message(&why).as_bytes());
                        self.ending = Some(why);
                    }
                }
            }
        }
    }

    /// Applies what a held line's progress asks for (see `approval::link`).
    pub(super) fn approval_effects(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Audit(json) => self.record(&Event::Audit(&json.to_string())),
                Effect::Marker(marker) => self.record(&Event::Marker(&marker.label())),
                Effect::Resolve(refusal) => {
                    if self.exec_resolve(&refusal) {
                        continue;
                    }
                    let Some(g) = self.gate.as_mut() else { continue };
                    let (reply, notes) = g.gate.resolve(refusal);
                    // The grant first: the reader must have it before the
                    // line's first exec, so before the line is let go.
                    for note in &notes {
                        if let Note::Command(record) = note {
                            self.exec_grant(record);
                        }
                    }
                    if let (Some(reply), Some(g)) = (reply, self.gate.as_mut()) {
                        g.socket.answer_held(&reply);
                    }
                    self.apply_notes(notes);
                }
            }
        }
    }

    /// Shows a held line's state on the status line, and the usual one
    /// after.
    pub(super) fn approval_status(&mut self) {
        let held = self.gate.as_ref().and_then(|g| g.approvals.as_ref()).and_then(|a| a.status(Instant::now()));
        if held != self.status.held {
            self.status.held = held;
            self.refresh_status();
        }
    }

    /// Applies `[evidence] when_full` when the recording has no room, and
    /// resumes when it has again.
    pub(super) fn check_room(&mut self) {
        let full = self.sink.full();
        if full == self.status.paused {
            return;
        }
        match (&full, self.sink.when_full()) {
            (Some(why), WhenFull::End) if self.ending.is_none() => {
                self.write_terminal(ending_message(why).as_bytes());
                self.ending = Some(why.clone());
            }
            _ => {}
        }
        self.status.paused = full;
        self.refresh_status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::{CommandRecord, RecordVerdict};

    fn record(outcome: Outcome, line: &str) -> CommandRecord {
        CommandRecord {
            id: 7,
            line: line.into(),
            cwd: "/home/alice".into(),
            source: "enter",
            verdict: RecordVerdict::Allow,
            outcome,
            rule: None,
            message: None,
            programs: vec!["echo".into()],
            unsafe_expansions: Vec::new(),
        }
    }

    #[test]
    fn each_outcome_has_its_marker() {
        assert_eq!(record(Outcome::Ran, "ls").marker("ls").label(), "$ ls");
        assert_eq!(record(Outcome::Refused, "rm -rf /").marker("rm -rf /").label(), "refused: $ rm -rf /");
        assert_eq!(
            record(Outcome::PendingRefused, "reboot").marker("reboot").label(),
            "pending approval, refused: $ reboot"
        );
    }

    #[test]
    fn the_audit_record_carries_the_masked_line_not_the_typed_one() {
        let json = record(Outcome::Ran, "echo ghp_secret").audit("echo ****".into());
        assert_eq!(json["kind"], "command");
        assert_eq!(json["line"], "echo ****");
        assert_eq!(json["id"], 7);
        assert_eq!(json["outcome"], "ran");
        assert!(!json.to_string().contains("ghp_secret"));
    }

    #[test]
    fn the_ending_message_names_the_reason() {
        let msg = ending_message("hooks gone");
        assert!(msg.starts_with("\r\n") && msg.ends_with("\r\n"));
        assert!(msg.contains("custos: ending the session: hooks gone"));
    }
}
