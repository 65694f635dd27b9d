//! The shapes approvals travel in: the recorder ↔ agent protocol, and the
//! request as the collector's API creates and shows it.
//!
//! Recorder ↔ agent framing: one JSON object per line (`\n`), UTF-8, over
//! the agent's stdin (recorder → agent) and stdout (agent → recorder).
//! Version: the agent's first line is `{"ev":"ready","version":1}`; a
//! recorder that sees another version stops the agent and refuses held
//! lines (fails closed).
//!
//! ```text
//! → {"op":"create","request":{...NewRequest...}}
//! → {"op":"withdraw","id":"<request id>"}
//! ← {"ev":"ready","version":1}
//! ← {"ev":"created","id":"...","expires_at":1764180000}
//! ← {"ev":"progress","approvals":1,"quorum":2,"by":"alice"}
//! ← {"ev":"approved","decisions":[{...Decision...}]}
//! ← {"ev":"denied","decision":{...Decision...}}
//! ← {"ev":"expired"}
//! ← {"ev":"withdrawn"}
//! ← {"ev":"error","message":"..."}
//! ```
//!
//! Trust boundary: the agent runs as the recorder's own service user, so
//! its messages are trusted to be what the collector said; the recorder
//! still checks every approving decision against the request it holds
//! ([`super::decision::Decision::check`]), so a confused agent cannot
//! release a line with a decision about another one.

use serde::{Deserialize, Serialize};

use super::decision::Decision;

/// Protocol version the agent announces.
pub const VERSION: u32 = 1;

/// What a host signs before a new request's JSON body when it creates the
/// request (`POST /v1/approvals`, `X-Custos-Signature`): the agent signs,
/// the collector checks.
pub const REQUEST_CONTEXT: &str = "custos-approval-request-v1\n";
/// Longest line either side accepts (a request carries a screen).
pub const MAX_LINE: usize = 1024 * 1024;

/// What a host asks the collector to decide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub session: String,
    pub host: String,
    /// The requester, as the host knows them (unix user; unverified until
    /// OIDC lands).
    pub user: String,
    /// The line as approvers see it: masked, so a secret typed on the line
    /// never reaches the collector.
    pub line: String,
    /// SHA-256 of the exact line (what decisions bind), hex.
    pub line_sha256: String,
    pub cwd: String,
    /// The programs the line runs, as the policy parsed it.
    pub programs: Vec<String>,
    pub rule: String,
    pub rule_message: String,
    /// The group whose members may decide.
    pub approvers: String,
    pub quorum: u32,
    pub timeout_secs: u64,
    #[serde(default)]
    pub reason: Option<String>,
    /// The requester's screen when they asked, masked, rows joined by `\n`.
    #[serde(default)]
    pub screen: String,
    /// The requester's OIDC identity, when the session has one: what the
    /// self-approval rule compares an approver's identity with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<crate::approval::decision::Attestation>,
}

/// A request's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Approved,
    Denied,
    Expired,
    Withdrawn,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Denied => "denied",
            State::Expired => "expired",
            State::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "pending" => State::Pending,
            "approved" => State::Approved,
            "denied" => State::Denied,
            "expired" => State::Expired,
            "withdrawn" => State::Withdrawn,
            _ => return None,
        })
    }
}

/// A request as the collector shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: String,
    pub state: State,
    /// Grows with every change; long-polls wait for a larger one.
    pub version: i64,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(flatten)]
    pub request: NewRequest,
    pub decisions: Vec<Decision>,
}

impl RequestView {
    /// Distinct people who approved so far: decisions by one person (as
    /// the collector recorded them) count once, whatever their names.
    pub fn approvals(&self) -> u32 {
        let mut seen: Vec<&super::decision::Decision> = Vec::new();
        for d in self.decisions.iter().filter(|d| d.verdict == super::decision::Choice::Approve) {
            let same = |o: &&super::decision::Decision| {
                o.approver == d.approver || matches!((&o.person, &d.person), (Some(a), Some(b)) if a.same(b))
            };
            if !seen.iter().any(same) {
                seen.push(d);
            }
        }
        u32::try_from(seen.len()).unwrap_or(u32::MAX)
    }
}

/// Recorder → agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum ToAgent {
    Create { request: Box<NewRequest> },
    Withdraw { id: String },
}

/// Agent → recorder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "lowercase", deny_unknown_fields)]
pub enum FromAgent {
    Ready { version: u32 },
    Created { id: String, expires_at: i64 },
    Progress { approvals: u32, quorum: u32, by: String },
    Approved { decisions: Vec<Decision> },
    Denied { decision: Decision },
    Expired,
    Withdrawn,
    Error { message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("an agent line longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("a malformed agent line ({0})")]
    Malformed(String),
}

/// Encodes one message as a line.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec(msg).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Splits a byte stream into messages; bounded.
#[derive(Default)]
pub struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, if one has arrived.
    pub fn next_message<T: for<'de> Deserialize<'de>>(&mut self) -> Option<Result<T, WireError>> {
        match memchr::memchr(b'\n', &self.buf) {
            Some(end) => {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let body = line.get(..end).unwrap_or_default();
                Some(serde_json::from_slice(body).map_err(|e| WireError::Malformed(e.to_string())))
            }
            None if self.buf.len() > MAX_LINE => {
                self.buf.clear();
                Some(Err(WireError::TooLong))
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn messages_round_trip_across_any_split() {
        let msgs = vec![
            FromAgent::Ready { version: VERSION },
            FromAgent::Created { id: "r".into(), expires_at: 5 },
            FromAgent::Progress { approvals: 1, quorum: 2, by: "alice".into() },
            FromAgent::Expired,
            FromAgent::Error { message: "x\ny".into() },
        ];
        let bytes: Vec<u8> = msgs.iter().flat_map(encode).collect();
        for split in 0..bytes.len() {
            let mut lines = Lines::default();
            let (a, b) = bytes.split_at(split);
            let mut got = Vec::new();
            lines.push(a);
            while let Some(m) = lines.next_message::<FromAgent>() {
                got.push(m.unwrap());
            }
            lines.push(b);
            while let Some(m) = lines.next_message::<FromAgent>() {
                got.push(m.unwrap());
            }
            assert_eq!(got, msgs);
        }
    }

    #[test]
    fn the_wire_format_is_stable() {
        assert_eq!(encode(&ToAgent::Withdraw { id: "abc".into() }), b"{\"op\":\"withdraw\",\"id\":\"abc\"}\n");
        assert_eq!(encode(&FromAgent::Expired), b"{\"ev\":\"expired\"}\n");
    }

    #[test]
    fn malformed_and_oversized_lines_are_errors() {
        let mut lines = Lines::default();
        lines.push(b"{\"ev\":\"nope\"}\n");
        assert!(matches!(lines.next_message::<FromAgent>(), Some(Err(WireError::Malformed(_)))));
        lines.push(&vec![b'x'; MAX_LINE + 1]);
        assert!(matches!(lines.next_message::<FromAgent>(), Some(Err(WireError::TooLong))));
        assert!(lines.next_message::<FromAgent>().is_none());
    }
}
