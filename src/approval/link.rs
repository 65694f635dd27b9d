//! The recorder's side of approvals: the `custos approval-agent` child and
//! the held line, turned into [`Effect`]s the session loop applies.
//!
//! The agent is started at the first held line, as the recorder's own
//! (service) user, with pipes for stdin and stdout and stderr discarded
//! (the user's terminal belongs to the session). Its stdout is read without
//! blocking from the session's `poll`. Standard library only: the HTTP
//! client lives in the agent, so `custos-shell` links none.
//!
//! Fails closed: if the agent cannot start, dies, or speaks nonsense, the
//! held line is refused with a message saying why.

use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::decision::line_hash;
use super::hold::{short, End, Hold};
use super::trust::{Pins, Trust};
use super::wire::{encode, FromAgent, Lines, NewRequest, ToAgent, VERSION};
use crate::evidence::marker::{Marker, Outcome};
use crate::gate::Held;

/// What the session loop does with the hold's news.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// An `a` record for the recording.
    Audit(serde_json::Value),
    /// An `m` marker.
    Marker(Marker),
    /// Answer the held line: `None` runs it, `Some((outcome, message))`
    /// refuses it.
    Resolve(Option<(Outcome, String)>),
}

/// Where the agent reaches the collector, and who is asking.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The `custos` binary.
    pub exe: PathBuf,
    pub server: String,
    /// The host key that signs requests.
    pub key: PathBuf,
    pub session: String,
    pub host: String,
    pub user: String,
    /// The requester's OIDC issuer and subject, if the session has them.
    pub identity: Option<crate::approval::decision::Attestation>,
    /// The keys decisions are verified with, read when one arrives.
    pub pins: Pins,
}

impl Settings {
    /// The agent's settings for a session: `who` is its id, host and user,
    /// `identity` its header's identity; `None` without `[collector] url`.
    pub fn for_session(config: &crate::config::Config, who: &(String, String, String), identity: Option<&serde_json::Value>) -> Option<Self> {
        Some(Settings {
            exe: Settings::sibling_exe(),
            server: config.collector.url.clone()?,
            key: config.evidence.key.clone(),
            session: who.0.clone(),
            host: who.1.clone(),
            user: who.2.clone(),
            identity: attestation_of(identity),
            pins: Pins::for_config(config),
        })
    }

    /// The `custos` binary next to the running one.
    pub fn sibling_exe() -> PathBuf {
        // A missing binary fails at spawn, which refuses the held line.
        crate::layout::custos_binary().unwrap_or_else(|_| PathBuf::from("/usr/bin/custos"))
    }
}

/// Approvals for a session when `[collector] url` is configured: the gate
/// then holds approve verdicts instead of refusing them. `who` is the
/// session id, host and user; `identity` the session header's.
pub fn for_session(
    mut gate: crate::gate::Gate,
    config: &crate::config::Config,
    who: &(String, String, String),
    identity: Option<&serde_json::Value>,
) -> (crate::gate::Gate, Option<Approvals>) {
    let Some(settings) = Settings::for_session(config, who, identity) else { return (gate, None) };
    gate.enable_approvals();
    (gate, Some(Approvals::new(settings)))
}

/// The issuer and subject of a session header's identity, if it has one.
fn attestation_of(identity: Option<&serde_json::Value>) -> Option<crate::approval::decision::Attestation> {
    let id = identity?;
    let field = |k: &str| id.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
    Some(crate::approval::decision::Attestation { issuer: field("issuer")?, subject: field("subject")? })
}

struct Agent {
    child: Child,
    /// `None` once closed, in `drop`.
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    lines: Lines,
}

/// How long a dropped agent may take to finish what it was told (a
/// withdrawal in flight) after its stdin closes, before it is killed.
const AGENT_GRACE: Duration = Duration::from_secs(3);

impl Drop for Agent {
    /// Closes the agent's stdin, so it withdraws a pending request and
    /// exits; kills it if it takes longer than [`AGENT_GRACE`].
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + AGENT_GRACE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Approvals {
    settings: Settings,
    agent: Option<Agent>,
    hold: Option<Hold>,
    /// The masked line of the hold, for markers.
    shown_line: String,
    /// When the waiting shell was last told to keep waiting.
    last_keepalive: Option<Instant>,
}

/// How often a shell waiting on a held line hears `WAIT` (its hooks give
/// up on a silent recorder after 30 s).
pub const KEEPALIVE: Duration = Duration::from_secs(10);

impl Approvals {
    pub fn new(settings: Settings) -> Self {
        Self { settings, agent: None, hold: None, shown_line: String::new(), last_keepalive: None }
    }

    /// Whether the waiting shell is due a `WAIT` now.
    pub fn keepalive_due(&mut self, now: Instant) -> bool {
        if self.hold.is_none() {
            self.last_keepalive = None;
            return false;
        }
        let since = *self.last_keepalive.get_or_insert(now);
        if now.saturating_duration_since(since) >= KEEPALIVE {
            self.last_keepalive = Some(now);
            return true;
        }
        false
    }

    pub fn holding(&self) -> bool {
        self.hold.is_some()
    }

    /// The agent's stdout, to poll.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.agent.as_ref().map(|a| a.stdout.as_fd())
    }

    /// When the status line's timer next changes.
    pub fn deadline(&self, now: Instant) -> Option<Instant> {
        self.hold.as_ref().map(|_| now + Duration::from_millis(500))
    }

    pub fn status(&self, now: Instant) -> Option<String> {
        self.hold.as_ref().map(|h| h.status(now))
    }

    /// A line was held: `shown_line` is it masked, `screen` the masked
    /// screen.
    pub fn start(&mut self, held: &Held, shown_line: String, screen: String, now: Instant) -> Vec<Effect> {
        let rule = &held.rule;
        let request = NewRequest {
            session: self.settings.session.clone(),
            host: self.settings.host.clone(),
            user: self.settings.user.clone(),
            line: shown_line.clone(),
            line_sha256: line_hash(&held.record.line),
            cwd: held.record.cwd.clone(),
            programs: held.record.programs.clone(),
            rule: rule.name.clone(),
            rule_message: rule.message.clone(),
            approvers: rule.approvers.clone().unwrap_or_default(),
            quorum: rule.quorum,
            timeout_secs: rule.timeout.as_secs(),
            reason: None,
            screen,
            identity: self.settings.identity.clone(),
        };
        self.shown_line = shown_line;
        let (hold, msg) = Hold::new(request, rule.reason, now);
        self.hold = Some(hold);
        let mut effects = Vec::new();
        if let Some(msg) = msg {
            self.send(&msg, &mut effects);
        }
        effects
    }

    /// Keys typed while a line is held.
    pub fn keys(&mut self, keys: &[u8]) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(hold) = self.hold.as_mut() else { return effects };
        let (msg, end) = hold.keys(keys);
        if let Some(msg) = msg {
            self.send(&msg, &mut effects);
        }
        if let Some(end) = end {
            self.end(end, &mut effects);
        }
        effects
    }

    /// The agent wrote something (or exited).
    pub fn readable(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let mut gone = false;
        if let Some(agent) = self.agent.as_mut() {
            match agent.stdout.read(&mut buf) {
                Ok(0) => gone = true,
                Ok(n) => agent.lines.push(buf.get(..n).unwrap_or_default()),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {}
                Err(_) => gone = true,
            }
        }
        while let Some(next) = self.agent.as_mut().and_then(|a| a.lines.next_message::<FromAgent>()) {
            let msg = match next {
                Ok(FromAgent::Ready { version }) if version != VERSION => FromAgent::Error { message: format!("the approval agent speaks version {version}, not {VERSION}") },
                Ok(msg) => msg,
                Err(e) => FromAgent::Error { message: e.to_string() },
            };
            if let FromAgent::Error { .. } = &msg {
                gone = true;
            }
            self.agent_message(msg, &mut effects);
        }
        if gone {
            self.agent = None;
            if self.hold.is_some() {
                self.agent_message(FromAgent::Error { message: "the approval agent stopped".into() }, &mut effects);
            }
        }
        effects
    }

    fn agent_message(&mut self, msg: FromAgent, effects: &mut Vec<Effect>) {
        if self.hold.is_none() {
            // Created after the user already gave up (Ctrl-C while it was
            // being sent): withdraw it, so nobody approves a dead request.
            if let FromAgent::Created { id, .. } = msg {
                self.send(&ToAgent::Withdraw { id }, effects);
            }
            return;
        }
        let Some(hold) = self.hold.as_mut() else { return };
        if let FromAgent::Created { id, expires_at } = &msg {
            effects.push(Effect::Marker(Marker::ApprovalRequested { request: short(id).to_owned(), line: self.shown_line.clone() }));
            effects.push(Effect::Audit(json!({
                "kind": "approval", "event": "requested", "request": id, "expires_at": expires_at,
                "rule": hold.request.rule, "approvers": hold.request.approvers, "quorum": hold.request.quorum,
                "line": self.shown_line, "line_sha256": hold.request.line_sha256, "reason": hold.request.reason,
            })));
        }
        if let FromAgent::Progress { approvals, quorum, by } = &msg {
            effects.push(Effect::Audit(json!({"kind": "approval", "event": "progress", "request": hold.id(), "approvals": approvals, "quorum": quorum, "by": by})));
        }
        // The pins are read when a decision arrives, so an approver pinned
        // after the session started counts. Unreadable pins refuse an
        // approval (fail closed); a denial is a denial either way.
        let trust = match &msg {
            FromAgent::Approved { .. } | FromAgent::Denied { .. } => match self.settings.pins.load() {
                Ok(t) => t,
                Err(e) if matches!(msg, FromAgent::Approved { .. }) => {
                    let end = End::Refused { id: hold.id().map(str::to_owned), outcome: Outcome::Error, message: format!("an approval was rejected: {e}") };
                    self.end(end, effects);
                    return;
                }
                Err(_) => Trust::default(),
            },
            _ => Trust::default(),
        };
        if let Some(end) = hold.agent(msg, &trust) {
            self.end(end, effects);
        }
    }

    fn end(&mut self, end: End, effects: &mut Vec<Effect>) {
        self.hold = None;
        let line = &self.shown_line;
        match end {
            End::Approved { id, decisions } => {
                let names: Vec<String> = decisions.iter().map(|d| format!("{} ({})", d.approver, d.reason)).collect();
                effects.push(Effect::Marker(Marker::Approved { by: names.join(", "), line: line.clone() }));
                effects.push(Effect::Audit(json!({"kind": "approval", "event": "approved", "request": id, "decisions": decisions})));
                effects.push(Effect::Resolve(None));
            }
            End::Refused { id, outcome, message } => {
                effects.push(Effect::Marker(Marker::ApprovalRefused { outcome, message: message.clone(), line: line.clone() }));
                effects.push(Effect::Audit(json!({"kind": "approval", "event": outcome, "request": id, "message": message})));
                effects.push(Effect::Resolve(Some((outcome, message))));
            }
        }
    }

    fn send(&mut self, msg: &ToAgent, effects: &mut Vec<Effect>) {
        if self.agent.is_none() {
            match self.spawn() {
                Ok(agent) => self.agent = Some(agent),
                Err(e) => {
                    let end = End::Refused {
                        id: None,
                        outcome: Outcome::Error,
                        message: format!("approval unavailable: cannot start {}: {e}", self.settings.exe.display()),
                    };
                    if self.hold.is_some() {
                        self.end(end, effects);
                    }
                    return;
                }
            }
        }
        let failed = self.agent.as_mut().is_some_and(|a| a.stdin.as_mut().is_none_or(|s| s.write_all(&encode(msg)).is_err()));
        if failed {
            self.agent = None;
            if self.hold.is_some() {
                self.end(End::Refused { id: None, outcome: Outcome::Error, message: "approval unavailable: the approval agent stopped".into() }, effects);
            }
        }
    }

    fn spawn(&self) -> std::io::Result<Agent> {
        let s = &self.settings;
        use std::os::unix::process::CommandExt as _;
        // Its own process group: when the login's terminal goes away, the
        // hangup must not kill the agent before it withdraws the request.
        let mut child = Command::new(&s.exe)
            .process_group(0)
            .arg("approval-agent")
            .arg("--server")
            .arg(&s.server)
            .arg("--key")
            .arg(&s.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(std::io::Error::other("no pipes to the agent"));
        };
        nix::fcntl::fcntl(&stdout, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).map_err(std::io::Error::from)?;
        Ok(Agent { child, stdin: Some(stdin), stdout, lines: Lines::default() })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::gate::CommandRecord;
    use crate::policy::{RuleRef, Verdict};

    fn held(reason: bool) -> Held {
        Held {
            record: CommandRecord {
                id: 1,
                line: "pg_dump prod".into(),
                cwd: "/".into(),
                source: "enter",
                verdict: crate::gate::RecordVerdict::Pending,
                outcome: Outcome::Held,
                rule: Some("dump".into()),
                message: None,
                programs: vec!["pg_dump".into()],
                unsafe_expansions: vec![],
            },
            rule: RuleRef {
                name: "dump".into(),
                message: "m".into(),
                action: Verdict::Approve,
                approvers: Some("dba".into()),
                quorum: 1,
                timeout: Duration::from_secs(60),
                reason,
                line: 1,
            },
        }
    }

    fn approvals(exe: &str) -> Approvals {
        Approvals::new(Settings {
            exe: PathBuf::from(exe),
            server: "http://127.0.0.1:9".into(),
            key: PathBuf::from("/nonexistent"),
            session: "s".into(),
            host: "h".into(),
            user: "bob".into(),
            identity: None,
            pins: Pins::default(),
        })
    }

    #[test]
    fn an_agent_that_cannot_start_refuses_the_line_fail_closed() {
        let mut a = approvals("/nonexistent/custos");
        let effects = a.start(&held(false), "pg_dump prod".into(), String::new(), Instant::now());
        match effects.last() {
            Some(Effect::Resolve(Some((Outcome::Error, message)))) => assert!(message.contains("cannot start"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(!a.holding());
    }

    #[test]
    fn an_agent_that_dies_refuses_the_held_line() {
        // `true` exits at once: its stdout closes with nothing said. If it
        // is gone before the request is written, the write fails and the
        // line is refused at once; otherwise when its stdout closes.
        let mut a = approvals("/bin/true");
        let mut effects = a.start(&held(false), "pg_dump prod".into(), String::new(), Instant::now());
        for _ in 0..100 {
            if !effects.is_empty() {
                break;
            }
            assert!(a.holding());
            effects = a.readable();
            if !effects.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(matches!(effects.last(), Some(Effect::Resolve(Some((Outcome::Error, _))))), "{effects:?}");
    }

    #[test]
    fn a_rule_wanting_a_reason_waits_for_it_before_starting_the_agent() {
        let mut a = approvals("/nonexistent/custos");
        assert!(a.start(&held(true), "pg_dump prod".into(), String::new(), Instant::now()).is_empty());
        assert!(a.status(Instant::now()).unwrap().contains("needs a reason"));
        let effects = a.keys(b"\x03");
        assert!(matches!(effects.last(), Some(Effect::Resolve(Some((Outcome::Withdrawn, _))))), "{effects:?}");
    }
}
