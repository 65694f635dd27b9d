//! Approval decisions: what an approver signs, and how a decision is bound
//! to exactly one request.
//!
//! A decision is signed (ed25519, the same key format as host keys, made
//! with `custos keygen --out FILE`) over this text, one field a line:
//!
//! ```text
//! custos-approval-decision-v1
//! <request id>
//! <session id>
//! <host>
//! <sha-256 of the exact command line, hex>
//! <approve|deny>
//! <approver name>
//! <reason>
//! ```
//!
//! Fields must not contain a newline (refused when signing and checking),
//! so no two decisions share a signed text.
//!
//! An approver who signs in with the identity provider instead of holding a
//! key of their own gets an *attested* decision: the collector, having
//! verified the approver's ID token, signs with its own key, and the text
//! gains three lines naming whom it vouches for:
//!
//! ```text
//! attested
//! <issuer>
//! <subject>
//! ```
//!
//! The approver name is then their email (or subject). The recorder checks
//! an attested decision like any other and refuses one whose subject is the
//! requester's own.
//!
//! Trust boundary: the binding defends against a decision being reused: for
//! another request, another line (even one differing by a byte), another
//! host or session. A second run of the same line is a new request with a
//! new id, so an old approval cannot release it either. The key a decision
//! carries is not trusted by the recorder: it verifies with keys pinned in
//! its own root-owned configuration (`super::trust`), so a collector cannot
//! sign for an approver it invented.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::evidence::{HostKey, PublicKey};

const CONTEXT: &str = "custos-approval-decision-v1";

/// An approver's choice: approve or deny (the policy's verdict is
/// [`crate::policy::Verdict`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    Approve,
    Deny,
}

impl Choice {
    pub fn as_str(self) -> &'static str {
        match self {
            Choice::Approve => "approve",
            Choice::Deny => "deny",
        }
    }
}

/// What a decision is about: one request, in one session on one host, for
/// one exact line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub request_id: String,
    pub session: String,
    pub host: String,
    pub line_sha256: String,
}

/// One approver's signed decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    #[serde(flatten)]
    pub binding: Binding,
    pub verdict: Choice,
    pub approver: String,
    pub reason: String,
    /// The approver's public key, `ed25519:<base64>`.
    pub public_key: String,
    /// Signature of [`Decision::message`], base64.
    pub signature: String,
    /// When the collector accepted it (unix seconds); not signed.
    #[serde(default)]
    pub at: i64,
    /// Set when the collector signed for an approver it verified with the
    /// identity provider (then `public_key` is the collector's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attested: Option<Box<Attestation>>,
    /// The person the collector registered the signer as (not signed: the
    /// collector's own bookkeeping; the recorder asks its pins instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Box<super::trust::Person>>,
}

/// Whom the collector vouches for in an attested decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub issuer: String,
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    #[error("the decision is for request {got}, not {want}")]
    OtherRequest { got: String, want: String },
    #[error("the decision is for session {got}, not {want}")]
    OtherSession { got: String, want: String },
    #[error("the decision is for host {got:?}, not {want:?}")]
    OtherHost { got: String, want: String },
    #[error("the decision is for another command line")]
    OtherLine,
    #[error("the decision's signature does not verify under {key}")]
    BadSignature { key: String },
    #[error("the decision's public key is malformed: {0}")]
    BadKey(String),
    #[error("the decision's signature is not base64 of 64 bytes")]
    MalformedSignature,
    #[error("the field {0} contains a newline")]
    Newline(&'static str),
    #[error("a reason is required")]
    NoReason,
    #[error("the decision by {approver:?} is signed with {key}, a key this host has not pinned (see [approvals] trusted_keys and collector_key)")]
    Unpinned { approver: String, key: String },
}

/// SHA-256 of the exact line, lower-case hex.
pub fn line_hash(line: &str) -> String {
    use std::fmt::Write as _;
    Sha256::digest(line.as_bytes()).iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn message(b: &Binding, verdict: Choice, approver: &str, reason: &str, attested: Option<&Attestation>) -> Result<Vec<u8>, DecisionError> {
    let (issuer, subject) = attested.map_or(("", ""), |a| (a.issuer.as_str(), a.subject.as_str()));
    for (name, v) in [
        ("request_id", b.request_id.as_str()),
        ("session", &b.session),
        ("host", &b.host),
        ("line_sha256", &b.line_sha256),
        ("approver", approver),
        ("reason", reason),
        ("issuer", issuer),
        ("subject", subject),
    ] {
        if v.contains('\n') {
            return Err(DecisionError::Newline(name));
        }
    }
    let mut text = format!(
        "{CONTEXT}\n{}\n{}\n{}\n{}\n{}\n{approver}\n{reason}",
        b.request_id,
        b.session,
        b.host,
        b.line_sha256,
        verdict.as_str()
    );
    if attested.is_some() {
        text.push_str(&format!("\nattested\n{issuer}\n{subject}"));
    }
    Ok(text.into_bytes())
}

impl Decision {
    /// Signs a decision on `binding` with the approver's key.
    pub fn sign(key: &HostKey, binding: Binding, verdict: Choice, approver: &str, reason: &str) -> Result<Decision, DecisionError> {
        Self::signed(key, binding, verdict, approver, reason, None)
    }

    /// The collector's decision on behalf of an approver it verified with
    /// the identity provider: signed with the collector's key, naming the
    /// approver's issuer and subject.
    pub fn attest(collector: &HostKey, binding: Binding, verdict: Choice, approver: &str, reason: &str, who: Attestation) -> Result<Decision, DecisionError> {
        Self::signed(collector, binding, verdict, approver, reason, Some(Box::new(who)))
    }

    fn signed(key: &HostKey, binding: Binding, verdict: Choice, approver: &str, reason: &str, attested: Option<Box<Attestation>>) -> Result<Decision, DecisionError> {
        if reason.trim().is_empty() {
            return Err(DecisionError::NoReason);
        }
        let msg = message(&binding, verdict, approver, reason, attested.as_deref())?;
        let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&msg));
        Ok(Decision {
            binding,
            verdict,
            approver: approver.to_owned(),
            reason: reason.to_owned(),
            public_key: key.public().to_string(),
            signature,
            at: 0,
            attested,
            person: None,
        })
    }

    /// Checks that the decision is about `want` and that its signature
    /// verifies under its own public key (the caller checks that the key is
    /// the approver's; the recorder uses [`Decision::check_with`]).
    pub fn check(&self, want: &Binding) -> Result<(), DecisionError> {
        let key: PublicKey = self.public_key.parse().map_err(|e: crate::evidence::KeyError| DecisionError::BadKey(e.to_string()))?;
        self.check_with(want, &key)
    }

    /// Checks that the decision is about `want` and that its signature
    /// verifies under `key`, whatever key it carries.
    pub fn check_with(&self, want: &Binding, key: &PublicKey) -> Result<(), DecisionError> {
        let got = &self.binding;
        if got.request_id != want.request_id {
            return Err(DecisionError::OtherRequest { got: got.request_id.clone(), want: want.request_id.clone() });
        }
        if got.session != want.session {
            return Err(DecisionError::OtherSession { got: got.session.clone(), want: want.session.clone() });
        }
        if got.host != want.host {
            return Err(DecisionError::OtherHost { got: got.host.clone(), want: want.host.clone() });
        }
        if got.line_sha256 != want.line_sha256 {
            return Err(DecisionError::OtherLine);
        }
        if self.reason.trim().is_empty() {
            return Err(DecisionError::NoReason);
        }
        let sig = base64::engine::general_purpose::STANDARD
            .decode(self.signature.trim())
            .ok()
            .and_then(|s| <[u8; 64]>::try_from(s).ok())
            .ok_or(DecisionError::MalformedSignature)?;
        let msg = message(got, self.verdict, &self.approver, &self.reason, self.attested.as_deref())?;
        if key.verifies(&msg, &sig) {
            Ok(())
        } else {
            Err(DecisionError::BadSignature { key: key.to_string() })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn binding() -> Binding {
        Binding { request_id: "r1".into(), session: "s1".into(), host: "h1".into(), line_sha256: line_hash("pg_dump prod") }
    }

    #[test]
    fn a_signed_decision_checks_against_its_own_binding() {
        let key = HostKey::from_seed([7; 32]);
        let d = Decision::sign(&key, binding(), Choice::Approve, "alice", "ticket 42").unwrap();
        assert_eq!(d.check(&binding()), Ok(()));
    }

    #[test]
    fn a_decision_replayed_elsewhere_is_rejected() {
        let key = HostKey::from_seed([7; 32]);
        let d = Decision::sign(&key, binding(), Choice::Approve, "alice", "ok").unwrap();
        let mut other = binding();
        other.request_id = "r2".into();
        assert!(matches!(d.check(&other), Err(DecisionError::OtherRequest { .. })));
        let mut other = binding();
        other.line_sha256 = line_hash("pg_dump prod ");
        assert_eq!(d.check(&other), Err(DecisionError::OtherLine));
        let mut other = binding();
        other.host = "h2".into();
        assert!(matches!(d.check(&other), Err(DecisionError::OtherHost { .. })));
        let mut other = binding();
        other.session = "s2".into();
        assert!(matches!(d.check(&other), Err(DecisionError::OtherSession { .. })));
    }

    #[test]
    fn an_edited_decision_fails_its_signature() {
        let key = HostKey::from_seed([7; 32]);
        let mut d = Decision::sign(&key, binding(), Choice::Deny, "alice", "no").unwrap();
        d.verdict = Choice::Approve;
        assert!(matches!(d.check(&binding()), Err(DecisionError::BadSignature { .. })));
        let mut d = Decision::sign(&key, binding(), Choice::Approve, "alice", "ok").unwrap();
        d.approver = "mallory".into();
        assert!(matches!(d.check(&binding()), Err(DecisionError::BadSignature { .. })));
        d.signature = "!!".into();
        assert_eq!(d.check(&binding()), Err(DecisionError::MalformedSignature));
        d.public_key = "nonsense".into();
        assert!(matches!(d.check(&binding()), Err(DecisionError::BadKey(_))));
    }

    #[test]
    fn an_attested_decision_binds_the_approvers_identity() {
        let collector = HostKey::from_seed([9; 32]);
        let who = Attestation { issuer: "https://idp".into(), subject: "alice".into() };
        let d = Decision::attest(&collector, binding(), Choice::Approve, "alice@example.com", "ticket 7", who.clone()).unwrap();
        assert_eq!(d.check(&binding()), Ok(()));
        assert_eq!(d.public_key, collector.public().to_string());
        // Claiming someone else, or dropping the attestation, breaks it.
        let mut other = d.clone();
        other.attested = Some(Box::new(Attestation { subject: "bob".into(), ..who }));
        assert!(matches!(other.check(&binding()), Err(DecisionError::BadSignature { .. })));
        let mut bare = d;
        bare.attested = None;
        assert!(matches!(bare.check(&binding()), Err(DecisionError::BadSignature { .. })));
        // A plain decision's text is unchanged by the new field.
        let plain = Decision::sign(&collector, binding(), Choice::Approve, "alice@example.com", "ticket 7").unwrap();
        assert!(!serde_json::to_string(&plain).unwrap().contains("attested"));
    }

    #[test]
    fn newlines_and_empty_reasons_are_refused() {
        let key = HostKey::from_seed([7; 32]);
        assert_eq!(Decision::sign(&key, binding(), Choice::Approve, "a\nb", "ok"), Err(DecisionError::Newline("approver")));
        assert_eq!(Decision::sign(&key, binding(), Choice::Approve, "a", "  "), Err(DecisionError::NoReason));
    }
}
