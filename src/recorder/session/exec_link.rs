//! The loop's link to the exec backstop: each program start the
//! supervisor decided becomes a record (and, unless it simply ran, a
//! marker and a note on the status line); a held one waits for approval
//! through the same approvals flow as a held line.
//!
//! The backstop's reader decides and answers (see `backstop`); only
//! records and holds come here, in the order they were decided, and at
//! the end the records it held back ([`Loop::exec_finish`]).

use std::time::{Duration, Instant};

use super::Loop;
use crate::backstop::launch::Events;
use crate::backstop::supervisor::{Event as ExecEvent, ExecRecord, Responder};
use crate::evidence::asciicast::Event;
use crate::evidence::marker::{Marker, Outcome};
use crate::gate::{CommandRecord, Held, RecordVerdict};

/// How long the end waits for the reader's last records (it answers at
/// once unless the machine is starved).
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// The backstop as the loop runs it.
pub struct ExecRuntime {
    pub events: Events,
    pub responder: Responder,
    /// The exec waiting for approval now: its notification id and record.
    held: Option<(u64, ExecRecord)>,
    /// The session is ending: the terminal is the user's again, so
    /// records are written but not shown.
    ending: bool,
}

impl ExecRuntime {
    pub fn new(events: Events, responder: Responder) -> Self {
        Self { events, responder, held: None, ending: false }
    }
}

impl Loop<'_> {
    /// The supervisor has news.
    pub(super) fn exec_ready(&mut self) {
        let Some(x) = self.exec.as_mut() else { return };
        for event in x.events.drain() {
            self.exec_event(event, false);
        }
    }

    /// The session is ending: the reader's last records (it holds back
    /// those of programs that ran for a moment), read until it says that
    /// was all, so that no start is missing from the recording.
    pub(super) fn exec_finish(&mut self) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let Some(x) = self.exec.as_mut() else { return };
        x.ending = true;
        x.responder.flush();
        let until = Instant::now() + FLUSH_WAIT;
        loop {
            let Some(x) = self.exec.as_mut() else { return };
            let left = until.saturating_duration_since(Instant::now());
            {
                let Some(fd) = x.events.fd() else { return };
                if left.is_zero() {
                    return;
                }
                let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX));
            }
            let mut flushed = false;
            for event in x.events.drain() {
                flushed |= matches!(event, ExecEvent::Flushed);
                self.exec_event(event, true);
            }
            if flushed {
                return;
            }
        }
    }

    fn exec_event(&mut self, event: ExecEvent, ending: bool) {
        match event {
            ExecEvent::Exec(record) => self.exec_record(&record),
            // Nobody is left to approve it.
            ExecEvent::Held { id, mut record, rule } if ending => {
                record.outcome = Outcome::PendingRefused.as_str().into();
                record.message = Some(format!("{}; the session is ending", rule.message));
                if let Some(x) = self.exec.as_ref() {
                    x.responder.answer(id, &record, false);
                }
                self.exec_record(&record);
            }
            ExecEvent::Held { id, record, rule } => self.exec_hold(id, record, rule),
            ExecEvent::Gone(why) => {
                let why = format!("the exec backstop stopped ({why}); every program start fails from now on");
                self.apply_notes(vec![crate::gate::Note::Degraded(why)]);
            }
            ExecEvent::Flushed => {}
        }
    }

    fn exec_record(&mut self, record: &ExecRecord) {
        let mask = |s: &str| self.pipeline.mask_text(s);
        let audit = record.audit(mask).to_string();
        let line = self.pipeline.mask_text(&record.line);
        if record.outcome != Outcome::Ran.as_str() {
            let marker = Marker::Exec { outcome: record.outcome.clone(), rule: record.rule.clone(), line: line.clone() };
            self.record(&Event::Marker(&marker.label()));
            let rule = record.rule.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
            self.status.exec_notice = Some(format!("exec {}{rule}: {line}", record.outcome));
            if !self.exec.as_ref().is_some_and(|x| x.ending) {
                self.refresh_status();
            }
        }
        self.record(&Event::Audit(&audit));
    }

    /// An `approve` exec: held through the approvals flow when it is free,
    /// else refused as pending.
    fn exec_hold(&mut self, id: u64, mut record: ExecRecord, rule: crate::policy::RuleRef) {
        let free = self.gate.as_ref().and_then(|g| g.approvals.as_ref()).is_some_and(|a| !a.holding());
        let busy = self.exec.as_ref().is_some_and(|x| x.held.is_some());
        if !free || busy {
            record.outcome = Outcome::PendingRefused.as_str().into();
            record.message = Some(format!("{}; approvals cannot wait for it now", rule.message));
            if let Some(x) = self.exec.as_ref() {
                x.responder.answer(id, &record, false);
            }
            self.exec_record(&record);
            return;
        }
        let line = self.pipeline.mask_text(&record.line);
        let held = Held {
            record: CommandRecord {
                id,
                line: record.line.clone(),
                cwd: record.cwd.clone(),
                source: "exec",
                verdict: RecordVerdict::Pending,
                outcome: Outcome::Held,
                rule: Some(rule.name.clone()),
                message: None,
                programs: vec![record.path.clone()],
                unsafe_expansions: Vec::new(),
            },
            rule,
        };
        self.exec_record(&record);
        let screen = self.pipeline.mask_text(&self.pipeline.screen().text());
        let effects = match self.gate.as_mut().and_then(|g| g.approvals.as_mut()) {
            Some(a) => a.start(&held, line, screen, Instant::now()),
            None => Vec::new(),
        };
        if let Some(x) = self.exec.as_mut() {
            x.held = Some((id, record));
        }
        self.approval_effects(effects);
        self.approval_status();
    }

    /// Whether a resolution belongs to a held exec; if so it is answered.
    pub(super) fn exec_resolve(&mut self, refusal: &Option<(Outcome, String)>) -> bool {
        let Some((id, mut record)) = self.exec.as_mut().and_then(|x| x.held.take()) else { return false };
        let run = refusal.is_none();
        if let Some(x) = self.exec.as_ref() {
            x.responder.answer(id, &record, run);
        }
        match refusal {
            None => {
                record.outcome = Outcome::Ran.as_str().into();
                record.message = Some("approved".into());
            }
            Some((outcome, message)) => {
                record.outcome = outcome.as_str().into();
                record.message = Some(message.clone());
            }
        }
        self.exec_record(&record);
        true
    }

    /// A line approved at the prompt: its programs do not ask again.
    pub(super) fn exec_grant(&mut self, record: &CommandRecord) {
        if let (Some(x), Some(rule), Outcome::Ran) = (self.exec.as_ref(), record.rule.as_deref(), record.outcome) {
            x.responder.grant(rule);
        }
    }

    /// The prompt is back: grants end.
    pub(super) fn exec_revoke(&mut self) {
        if let Some(x) = self.exec.as_ref() {
            x.responder.revoke();
        }
    }
}
