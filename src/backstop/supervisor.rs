//! The recorder's side of the backstop: what the reader decided, as
//! events for whoever writes the recording (read in its own poll loop, see
//! `launch::Events`, or by a thread, [`spawn`]); and the [`Responder`] the
//! recorder answers held execs and gives grants with.
//!
//! The reader has already answered the kernel for everything but a held
//! exec (`approve`), so nothing here is on an exec's path: an exec waits
//! for the reader alone. A held exec is answered here, later, through
//! the listener the recorder keeps for that.
//!
//! Fail closed: when the reader's link breaks, the listener is closed
//! here too, and with no listener left every exec of the session fails.

use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

pub use super::wire::ExecRecord;
use super::wire::{self, FromReader, ToReader};
use crate::policy::{RuleRef, Verdict};

/// What the thread hands over.
#[derive(Clone, Debug)]
pub enum Event {
    /// Decided and answered.
    Exec(ExecRecord),
    /// Waiting for approval under `rule`; answer with [`Responder::answer`].
    Held { id: u64, record: ExecRecord, rule: RuleRef },
    /// The backstop is gone (its reader died): every exec now fails.
    Gone(String),
    /// Every record asked for by [`Responder::flush`] has come.
    Flushed,
}

/// Answers held execs, and tells the reader of approvals already given.
#[derive(Clone)]
pub struct Responder {
    listener: Arc<Mutex<Option<OwnedFd>>>,
    link: Arc<Mutex<UnixStream>>,
}

impl Responder {
    pub fn new(listener: OwnedFd, link: UnixStream) -> Self {
        Self { listener: Arc::new(Mutex::new(Some(listener))), link: Arc::new(Mutex::new(link)) }
    }

    /// Answers a held exec: run it (watched until it lands as approved)
    /// or refuse it.
    pub fn answer(&self, id: u64, held: &ExecRecord, run: bool) {
        if run {
            self.tell(&ToReader::Verify { tgid: held.tgid, path: held.called.clone(), argv: held.argv.clone(), caller: held.caller.clone(), strict: false });
        }
        let Ok(guard) = self.listener.lock() else { return };
        if let Some(fd) = guard.as_ref() {
            super::reader::respond(fd, id, run);
        }
    }

    /// Programs under `rule` run without asking until [`Self::revoke`]:
    /// a line approved at the prompt does not ask again for each exec.
    /// Call before the line is let go.
    pub fn grant(&self, rule: &str) {
        self.tell(&ToReader::Grant(rule.to_owned()));
    }

    pub fn revoke(&self) {
        self.tell(&ToReader::Revoke);
    }

    /// The session is ending: asks the reader for the records it holds
    /// back; [`Event::Flushed`] follows the last of them.
    pub fn flush(&self) {
        self.tell(&ToReader::Flush);
    }

    /// Fail closed: the reader is gone, so is the listener, and every
    /// exec of the session fails from now on.
    pub fn close(&self) {
        if let Ok(mut l) = self.listener.lock() {
            l.take();
        }
    }

    fn tell(&self, msg: &ToReader) {
        if let Ok(mut link) = self.link.lock() {
            // A broken link is the reader gone: whoever reads the link sees it too.
            let _ = wire::write(&mut *link, msg);
            let _ = link.flush();
        }
    }
}

/// What the reader said, as an event.
pub fn event(msg: FromReader) -> Event {
    match msg {
        FromReader::Decided(record) => Event::Exec(record),
        FromReader::Held { id, record, rule } => Event::Held { id, record, rule },
        FromReader::Killed { tgid, checked, ran, mode } => Event::Exec(killed(tgid, checked, ran, mode)),
        FromReader::Flushed => Event::Flushed,
    }
}

/// Starts a thread that reads the link; `emit` gets every event, in
/// order. For a loop that waits on channels rather than descriptors.
pub fn spawn(listener: OwnedFd, link: UnixStream, mut emit: impl FnMut(Event) + Send + 'static) -> std::io::Result<Responder> {
    let responder = Responder::new(listener, link.try_clone()?);
    let r = responder.clone();
    std::thread::Builder::new().name("exec-backstop".into()).spawn(move || {
        let mut link = link;
        let why = loop {
            match wire::read::<FromReader>(&mut link) {
                Ok(msg) => emit(event(msg)),
                Err(e) => break e.to_string(),
            }
        };
        r.close();
        emit(Event::Gone(why));
    })?;
    Ok(responder)
}

/// The record of a process whose exec landed with other arguments than
/// were checked: killed in `enforce`, `changed` (and left running) in
/// `audit`.
fn killed(tgid: i32, checked: Vec<String>, ran: Vec<String>, mode: super::Mode) -> ExecRecord {
    let enforced = mode == super::Mode::Enforce;
    ExecRecord {
        pid: tgid,
        tgid,
        ppid: 0,
        path: ran.first().cloned().unwrap_or_default(),
        called: String::new(),
        line: ran.join(" "),
        argv: ran,
        cwd: String::new(),
        message: Some(format!("its arguments changed after the check (checked: {})", checked.join(" "))),
        caller: checked,
        verdict: Verdict::Deny,
        outcome: if enforced { "killed" } else { "changed" }.into(),
        rule: None,
        mode,
    }
}
