//! One held line, as the recorder sees it: from the approve verdict to its
//! end. Pure: keys and agent messages in, messages to the agent and an
//! [`End`] out, the clock passed in.
//!
//! Phases: `Reason` (the rule wants one; the user types it on the status
//! line), `Creating` (sent to the agent), `Waiting` (the collector holds
//! it). Ctrl-C in any phase withdraws. An approval ends the hold only
//! when every decision checks against this request's binding under a key
//! this host pinned (`super::trust`), and enough distinct people other
//! than the requester approved; anything else refuses the line.

use std::time::Instant;

use super::decision::{Binding, Choice, Decision};
use super::trust::{Person, Trust};
use crate::evidence::marker::Outcome;
use super::wire::{FromAgent, NewRequest, ToAgent};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    Reason { typed: String },
    Creating,
    Waiting { id: String, expires_at: i64, approvals: u32 },
}

/// How a hold ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Run the line, once.
    Approved { id: String, decisions: Vec<Decision> },
    /// Do not run it. `outcome` is `Denied`, `Expired`, `Withdrawn` or
    /// `Error`; `message` is what the user sees.
    Refused { id: Option<String>, outcome: Outcome, message: String },
}

pub struct Hold {
    pub request: NewRequest,
    pub phase: Phase,
    since: Instant,
}

const CTRL_C: u8 = 0x03;

impl Hold {
    /// A new hold; the message to send the agent when no reason is needed.
    pub fn new(request: NewRequest, needs_reason: bool, now: Instant) -> (Hold, Option<ToAgent>) {
        if needs_reason {
            (Hold { request, phase: Phase::Reason { typed: String::new() }, since: now }, None)
        } else {
            let msg = ToAgent::Create { request: Box::new(request.clone()) };
            (Hold { request, phase: Phase::Creating, since: now }, Some(msg))
        }
    }

    pub fn id(&self) -> Option<&str> {
        match &self.phase {
            Phase::Waiting { id, .. } => Some(id),
            _ => None,
        }
    }

    /// Keys the user typed while the line is held. Nothing reaches the
    /// shell meanwhile.
    pub fn keys(&mut self, keys: &[u8]) -> (Option<ToAgent>, Option<End>) {
        if keys.contains(&CTRL_C) {
            let id = self.id().map(str::to_owned);
            let withdraw = id.clone().map(|id| ToAgent::Withdraw { id });
            let end = End::Refused { id, outcome: Outcome::Withdrawn, message: "approval request withdrawn; the line was not run".into() };
            return (withdraw, Some(end));
        }
        let Phase::Reason { typed } = &mut self.phase else { return (None, None) };
        for &b in keys {
            match b {
                b'\r' | b'\n' if !typed.trim().is_empty() => {
                    self.request.reason = Some(typed.trim().to_owned());
                    self.phase = Phase::Creating;
                    return (Some(ToAgent::Create { request: Box::new(self.request.clone()) }), None);
                }
                0x7f | 0x08 => {
                    typed.pop();
                }
                0x15 => typed.clear(),
                b if b >= 0x20 && typed.len() < 500 => typed.push(char::from(b)),
                _ => {}
            }
        }
        (None, None)
    }

    fn binding(&self, id: &str) -> Binding {
        Binding {
            request_id: id.to_owned(),
            session: self.request.session.clone(),
            host: self.request.host.clone(),
            line_sha256: self.request.line_sha256.clone(),
        }
    }

    /// A message from the agent. Decisions are checked against `trust`,
    /// the keys this host pinned.
    pub fn agent(&mut self, msg: FromAgent, trust: &Trust) -> Option<End> {
        let id = self.id().map(str::to_owned);
        match msg {
            FromAgent::Ready { .. } => None,
            FromAgent::Created { id, expires_at } => {
                self.phase = Phase::Waiting { id, expires_at, approvals: 0 };
                None
            }
            FromAgent::Progress { approvals: n, .. } => {
                if let Phase::Waiting { approvals, .. } = &mut self.phase {
                    *approvals = n;
                }
                None
            }
            FromAgent::Approved { decisions } => {
                let Some(id) = id else {
                    return Some(End::Refused { id: None, outcome: Outcome::Error, message: "an approval came for no request".into() });
                };
                let want = self.binding(&id);
                let requester = Person { unix_user: Some(self.request.user.clone()), oidc: self.request.identity.clone() };
                let mut counted: Vec<Person> = Vec::new();
                for d in &decisions {
                    let person = match trust.vouch(d, &want) {
                        Ok(p) => p,
                        Err(e) => return Some(End::Refused { id: Some(id), outcome: Outcome::Error, message: format!("an approval was rejected: {e}") }),
                    };
                    // The requester never counts, under any name; one
                    // person counts once, under however many names.
                    if d.verdict == Choice::Approve && !person.same(&requester) && !counted.iter().any(|p| p.same(&person)) {
                        counted.push(person);
                    }
                }
                if u32::try_from(counted.len()).unwrap_or(0) < self.request.quorum {
                    let message = format!(
                        "an approval was rejected: {} of {} approvers (the requester and repeated people do not count)",
                        counted.len(),
                        self.request.quorum
                    );
                    return Some(End::Refused { id: Some(id), outcome: Outcome::Error, message });
                }
                Some(End::Approved { id, decisions })
            }
            FromAgent::Denied { decision } => {
                let message = match id.as_ref().map(|i| trust.vouch(&decision, &self.binding(i))) {
                    Some(Ok(_)) => format!("denied by {}: {}", decision.approver, decision.reason),
                    _ => format!("denied (by {}, reason {:?}; the decision did not verify against this host's pinned keys)", decision.approver, decision.reason),
                };
                Some(End::Refused { id, outcome: Outcome::Denied, message })
            }
            FromAgent::Expired => Some(End::Refused {
                id,
                outcome: Outcome::Expired,
                message: format!("approval request expired after {}s with no decision; the line was not run", self.request.timeout_secs),
            }),
            FromAgent::Withdrawn => Some(End::Refused { id, outcome: Outcome::Withdrawn, message: "approval request withdrawn".into() }),
            FromAgent::Error { message } => Some(End::Refused { id, outcome: Outcome::Error, message: format!("approval unavailable: {message}") }),
        }
    }

    /// The status-line text.
    pub fn status(&self, now: Instant) -> String {
        let waited = now.saturating_duration_since(self.since).as_secs();
        let clock = format!("{}:{:02}", waited / 60, waited % 60);
        match &self.phase {
            Phase::Reason { typed } => format!(" \u{270e} rule {} needs a reason (Enter sends, Ctrl-C cancels): {typed}\u{2588}", self.request.rule),
            Phase::Creating => format!(" \u{23f3} waiting for approval {clock}  (sending the request; Ctrl-C withdraws)"),
            Phase::Waiting { id, approvals, .. } => format!(
                " \u{23f3} waiting for approval {clock}  request {}  {approvals}/{} approvals  rule {}  (Ctrl-C withdraws)",
                short(id),
                self.request.quorum,
                self.request.rule
            ),
        }
    }
}

/// The last 8 characters of an id: what the status line shows.
pub fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::approval::decision::line_hash;
    use crate::evidence::HostKey;

    fn request() -> NewRequest {
        NewRequest {
            session: "s".into(),
            host: "h".into(),
            user: "bob".into(),
            line: "pg_dump prod".into(),
            line_sha256: line_hash("pg_dump prod"),
            cwd: "/".into(),
            programs: vec!["pg_dump".into()],
            rule: "dump".into(),
            rule_message: "m".into(),
            approvers: "dba".into(),
            quorum: 2,
            timeout_secs: 60,
            reason: None,
            screen: String::new(),
            identity: None,
        }
    }

    fn sign(seed: u8, who: &str, id: &str, line: &str, verdict: Choice) -> Decision {
        let b = Binding { request_id: id.into(), session: "s".into(), host: "h".into(), line_sha256: line_hash(line) };
        Decision::sign(&HostKey::from_seed([seed; 32]), b, verdict, who, "ok").unwrap()
    }

    /// The pins: alice (seeds 1 and 6: one person, two keys), carol (2),
    /// the requester bob (3 and 7), and the collector (5).
    fn trust() -> Trust {
        let k = |seed: u8| HostKey::from_seed([seed; 32]).public();
        let text = format!(
            "approver alice {}\napprover alice {}\napprover carol {}\napprover bob {}\napprover bob {}\ncollector {}\n",
            k(1), k(6), k(2), k(3), k(7), k(5)
        );
        Trust::parse(&text, "pins").unwrap()
    }

    fn waiting() -> Hold {
        let (mut h, msg) = Hold::new(request(), false, Instant::now());
        assert!(matches!(msg, Some(ToAgent::Create { .. })));
        assert_eq!(h.agent(FromAgent::Created { id: "r1".into(), expires_at: 0 }, &trust()), None);
        h
    }

    #[test]
    fn a_quorum_of_bound_decisions_releases_the_line() {
        let mut h = waiting();
        let d = vec![sign(1, "alice", "r1", "pg_dump prod", Choice::Approve), sign(2, "carol", "r1", "pg_dump prod", Choice::Approve)];
        assert!(matches!(h.agent(FromAgent::Approved { decisions: d }, &trust()), Some(End::Approved { .. })));
    }

    #[test]
    fn a_decision_for_another_request_or_line_is_refused() {
        let mut h = waiting();
        let d = vec![sign(1, "alice", "r0", "pg_dump prod", Choice::Approve), sign(2, "carol", "r1", "pg_dump prod", Choice::Approve)];
        assert!(matches!(h.agent(FromAgent::Approved { decisions: d }, &trust()), Some(End::Refused { outcome: Outcome::Error, .. })));
        let mut h = waiting();
        let d = vec![sign(1, "alice", "r1", "pg_dump prod2", Choice::Approve), sign(2, "carol", "r1", "pg_dump prod", Choice::Approve)];
        assert!(matches!(h.agent(FromAgent::Approved { decisions: d }, &trust()), Some(End::Refused { outcome: Outcome::Error, .. })));
    }

    #[test]
    fn one_approver_twice_or_the_requester_does_not_make_a_quorum() {
        let mut h = waiting();
        let d = vec![sign(1, "alice", "r1", "pg_dump prod", Choice::Approve), sign(1, "alice", "r1", "pg_dump prod", Choice::Approve)];
        assert!(matches!(h.agent(FromAgent::Approved { decisions: d }, &trust()), Some(End::Refused { .. })));
        let mut h = waiting();
        let d = vec![sign(1, "alice", "r1", "pg_dump prod", Choice::Approve), sign(3, "bob", "r1", "pg_dump prod", Choice::Approve)];
        assert!(matches!(h.agent(FromAgent::Approved { decisions: d }, &trust()), Some(End::Refused { .. })));
    }

    #[test]
    fn the_requesters_own_identity_attested_under_another_name_does_not_count() {
        use crate::approval::decision::Attestation;
        let me = Attestation { issuer: "https://idp".into(), subject: "bob-sub".into() };
        let mut req = request();
        req.identity = Some(me.clone());
        let (mut h, _) = Hold::new(req, false, Instant::now());
        assert_eq!(h.agent(FromAgent::Created { id: "r1".into(), expires_at: 0 }, &trust()), None);
        let b = Binding { request_id: "r1".into(), session: "s".into(), host: "h".into(), line_sha256: line_hash("pg_dump prod") };
        let collector = HostKey::from_seed([5; 32]);
        let own = Decision::attest(&collector, b.clone(), Choice::Approve, "bob@example.com", "mine", me).unwrap();
        let d = vec![own.clone(), sign(1, "alice", "r1", "pg_dump prod", Choice::Approve)];
        assert!(matches!(h.agent(FromAgent::Approved { decisions: d }, &trust()), Some(End::Refused { .. })));
        // Someone else's attested approval does count.
        let (mut h, _) = Hold::new(request(), false, Instant::now());
        assert_eq!(h.agent(FromAgent::Created { id: "r1".into(), expires_at: 0 }, &trust()), None);
        let carol = Attestation { issuer: "https://idp".into(), subject: "carol-sub".into() };
        let theirs = Decision::attest(&collector, b, Choice::Approve, "carol@example.com", "fine", carol).unwrap();
        let d = vec![theirs, sign(1, "alice", "r1", "pg_dump prod", Choice::Approve)];
        assert!(matches!(h.agent(FromAgent::Approved { decisions: d }, &trust()), Some(End::Approved { .. })));
    }

    #[test]
    fn one_person_under_two_names_counts_once_and_the_requester_under_another_name_not_at_all() {
        let mut h = waiting();
        let d = vec![sign(1, "alice", "r1", "pg_dump prod", Choice::Approve), sign(6, "alice-admin", "r1", "pg_dump prod", Choice::Approve)];
        match h.agent(FromAgent::Approved { decisions: d }, &trust()) {
            Some(End::Refused { message, .. }) => assert!(message.contains("1 of 2 approvers"), "{message}"),
            other => panic!("{other:?}"),
        }
        let mut h = waiting();
        let d = vec![sign(1, "alice", "r1", "pg_dump prod", Choice::Approve), sign(7, "robert", "r1", "pg_dump prod", Choice::Approve)];
        assert!(matches!(h.agent(FromAgent::Approved { decisions: d }, &trust()), Some(End::Refused { .. })));
    }

    #[test]
    fn a_decision_signed_by_an_unpinned_key_is_refused() {
        let mut h = waiting();
        let d = vec![sign(1, "alice", "r1", "pg_dump prod", Choice::Approve), sign(9, "carol", "r1", "pg_dump prod", Choice::Approve)];
        match h.agent(FromAgent::Approved { decisions: d }, &trust()) {
            Some(End::Refused { outcome: Outcome::Error, message, .. }) => assert!(message.contains("has not pinned"), "{message}"),
            other => panic!("{other:?}"),
        }
        // With nothing pinned, nothing releases a line.
        let mut h = waiting();
        let d = vec![sign(1, "alice", "r1", "pg_dump prod", Choice::Approve), sign(2, "carol", "r1", "pg_dump prod", Choice::Approve)];
        assert!(matches!(h.agent(FromAgent::Approved { decisions: d }, &Trust::default()), Some(End::Refused { .. })));
    }

    #[test]
    fn a_reason_is_typed_then_sent_and_ctrl_c_withdraws() {
        let (mut h, msg) = Hold::new(request(), true, Instant::now());
        assert_eq!(msg, None);
        assert_eq!(h.keys(b"\r"), (None, None), "an empty reason is not sent");
        assert_eq!(h.keys(b"ticket 9x\x7f"), (None, None));
        assert!(h.status(Instant::now()).contains("ticket 9"));
        let (msg, end) = h.keys(b"\r");
        assert_eq!(end, None);
        match msg {
            Some(ToAgent::Create { request }) => assert_eq!(request.reason.as_deref(), Some("ticket 9")),
            other => panic!("{other:?}"),
        }
        h.agent(FromAgent::Created { id: "r7".into(), expires_at: 0 }, &trust());
        assert!(h.status(Instant::now()).contains("waiting for approval"));
        let (msg, end) = h.keys(b"x\x03");
        assert_eq!(msg, Some(ToAgent::Withdraw { id: "r7".into() }));
        assert!(matches!(end, Some(End::Refused { outcome: Outcome::Withdrawn, .. })));
    }

    #[test]
    fn denial_names_who_and_why() {
        let mut h = waiting();
        let end = h.agent(FromAgent::Denied { decision: sign(1, "alice", "r1", "pg_dump prod", Choice::Deny) }, &trust());
        assert_eq!(end, Some(End::Refused { id: Some("r1".into()), outcome: Outcome::Denied, message: "denied by alice: ok".into() }));
    }
}
