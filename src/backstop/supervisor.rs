//! The recorder's side of the backstop: a thread that takes each exec the
//! reader read, decides it (`decide`), answers the kernel, and hands the
//! record to whoever writes the recording.
//!
//! The answer goes to the kernel before the record is written, so an exec
//! waits only for the policy; the recording sees the records in the order
//! the execs were decided. A held exec (`approve`) is handed over
//! unanswered, and answered later through [`Responder`].
//!
//! Fail closed: when the reader's link breaks, the listener is closed
//! here too, and with no listener left every exec of the session fails.

use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::decide::{decide, Action, Mode, Verdicted};
use super::wire::{self, FromReader, Request, ToReader};
use crate::evidence::marker::Outcome;
use crate::policy::{Policy, RuleRef, Subject, Verdict};

/// What the backstop decides with.
pub struct Settings {
    pub policy: Policy,
    pub subject: Subject,
    pub home: String,
    pub mode: Mode,
    /// Rules already approved when the session starts (a `-c` command
    /// approved before it ran), granted before the first exec is decided.
    pub granted: Vec<String>,
}

/// One exec as the recording keeps it (the `a` record, kind `exec`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExecRecord {
    pub pid: i32,
    pub tgid: i32,
    pub ppid: i32,
    pub path: String,
    /// The path as the caller passed it (relative, perhaps).
    #[serde(skip)]
    pub called: String,
    pub argv: Vec<String>,
    pub cwd: String,
    /// The command line of the process that made the call.
    pub caller: Vec<String>,
    /// The exec as the policy saw it.
    pub line: String,
    pub verdict: &'static str,
    /// `ran`, `refused`, `held` (then `ran`, `denied`, …), `pending-refused`,
    /// or `killed` (it landed with other arguments than were checked).
    pub outcome: String,
    pub rule: Option<String>,
    pub message: Option<String>,
    pub mode: &'static str,
}

impl ExecRecord {
    fn new(req: &Request, v: &Verdicted, mode: Mode, outcome: &str, message: Option<String>) -> Self {
        Self {
            pid: req.pid,
            tgid: req.tgid,
            ppid: req.ppid,
            path: req.resolved.clone(),
            called: req.path.clone(),
            argv: req.argv.clone(),
            cwd: req.cwd.clone(),
            caller: req.caller.clone(),
            line: v.line.clone(),
            verdict: v.verdict.as_str(),
            outcome: outcome.to_owned(),
            rule: v.rule.as_ref().map(|r| r.name.clone()),
            message,
            mode: mode.as_str(),
        }
    }

    /// The `a` record, with the words shown through `mask`.
    pub fn audit(&self, mask: impl Fn(&str) -> String) -> serde_json::Value {
        let mut json = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = json.as_object_mut() {
            obj.insert("kind".into(), "exec".into());
            obj.insert("line".into(), mask(&self.line).into());
            obj.insert("argv".into(), self.argv.iter().map(|a| mask(a)).collect::<Vec<_>>().into());
            obj.insert("caller".into(), self.caller.iter().map(|a| mask(a)).collect::<Vec<_>>().into());
        }
        json
    }
}

/// What the thread hands over.
#[derive(Clone, Debug)]
pub enum Event {
    /// Decided and answered.
    Exec(ExecRecord),
    /// Waiting for approval under `rule`; answer with [`Responder::answer`].
    Held { id: u64, record: ExecRecord, rule: RuleRef },
    /// The backstop is gone (its reader died): every exec now fails.
    Gone(String),
}

/// Answers held execs, and grants approvals already given.
#[derive(Clone)]
pub struct Responder {
    listener: Arc<Mutex<Option<OwnedFd>>>,
    link: Arc<Mutex<UnixStream>>,
    grants: Arc<Mutex<Vec<String>>>,
}

impl Responder {
    /// Answers a held exec: run it (watched until it lands as checked) or
    /// refuse it.
    pub fn answer(&self, id: u64, held: &ExecRecord, run: bool) {
        self.answer_watched(id, held, run, false);
    }

    fn answer_watched(&self, id: u64, held: &ExecRecord, run: bool, strict: bool) {
        if run {
            if let Ok(mut link) = self.link.lock() {
                let _ = wire::write(&mut *link, &ToReader::Verify { tgid: held.tgid, path: held.called.clone(), argv: held.argv.clone(), caller: held.caller.clone(), strict });
                let _ = link.flush();
            }
        }
        respond(&self.listener, id, run);
    }

    /// Programs under `rule` run without asking until [`Self::revoke`]:
    /// a line approved at the prompt does not ask again for each exec.
    pub fn grant(&self, rule: &str) {
        if let Ok(mut g) = self.grants.lock() {
            g.push(rule.to_owned());
        }
    }

    pub fn revoke(&self) {
        if let Ok(mut g) = self.grants.lock() {
            g.clear();
        }
    }
}

fn respond(listener: &Mutex<Option<OwnedFd>>, id: u64, run: bool) {
    let Ok(guard) = listener.lock() else { return };
    let Some(fd) = guard.as_ref() else { return };
    let mut resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: if run { 0 } else { -libc::EACCES },
        flags: if run { libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32 } else { 0 },
    };
    // SAFETY: SEND reads one seccomp_notif_resp we own. An error means the
    // caller died meanwhile; there is nobody left to answer.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND as _, &raw mut resp) };
}

/// Starts the thread. `emit` gets every event, in order.
pub fn spawn(listener: OwnedFd, link: UnixStream, settings: Settings, mut emit: impl FnMut(Event) + Send + 'static) -> std::io::Result<Responder> {
    let writer = link.try_clone()?;
    let responder = Responder {
        listener: Arc::new(Mutex::new(Some(listener))),
        link: Arc::new(Mutex::new(writer)),
        grants: Arc::new(Mutex::new(settings.granted.clone())),
    };
    let r = responder.clone();
    std::thread::Builder::new().name("exec-backstop".into()).spawn(move || {
        let mut link = link;
        let why = loop {
            let msg = match wire::read::<FromReader>(&mut link) {
                Ok(m) => m,
                Err(e) => break e.to_string(),
            };
            match msg {
                FromReader::Exec(req) => {
                    let granted = |rule: &str| r.grants.lock().map(|g| g.iter().any(|x| x == rule)).unwrap_or(false);
                    let v = decide(&settings.policy, &settings.subject, &settings.home, &req, settings.mode, granted);
                    match &v.action {
                        Action::Run => {
                            if req.threads > 1 && req.call != "listener" {
                                r.answer_watched(req.id, &ExecRecord::new(&req, &v, settings.mode, "ran", None), true, true);
                            } else {
                                respond(&r.listener, req.id, true);
                            }
                            emit(Event::Exec(ExecRecord::new(&req, &v, settings.mode, Outcome::Ran.as_str(), None)));
                        }
                        Action::Refuse(message) => {
                            respond(&r.listener, req.id, false);
                            emit(Event::Exec(ExecRecord::new(&req, &v, settings.mode, Outcome::Refused.as_str(), Some(message.clone()))));
                        }
                        Action::Hold => {
                            let rule = v.rule.clone().unwrap_or_else(|| RuleRef {
                                name: "custos:approve".into(),
                                message: "needs approval".into(),
                                action: Verdict::Approve,
                                approvers: None,
                                quorum: 1,
                                timeout: std::time::Duration::from_secs(300),
                                reason: false,
                                line: 0,
                            });
                            let record = ExecRecord::new(&req, &v, settings.mode, Outcome::Held.as_str(), Some(rule.message.clone()));
                            emit(Event::Held { id: req.id, record, rule });
                        }
                    }
                }
                FromReader::Killed { tgid, checked, ran } => {
                    let record = ExecRecord {
                        pid: tgid,
                        tgid,
                        ppid: 0,
                        path: ran.first().cloned().unwrap_or_default(),
                        called: String::new(),
                        line: ran.join(" "),
                        argv: ran,
                        cwd: String::new(),
                        caller: checked.clone(),
                        verdict: Verdict::Deny.as_str(),
                        outcome: "killed".into(),
                        rule: None,
                        message: Some(format!("its arguments changed after the check (checked: {})", checked.join(" "))),
                        mode: settings.mode.as_str(),
                    };
                    emit(Event::Exec(record));
                }
            }
        };
        // Fail closed: no listener, no exec.
        if let Ok(mut l) = r.listener.lock() {
            l.take();
        }
        emit(Event::Gone(why));
    })?;
    Ok(responder)
}
