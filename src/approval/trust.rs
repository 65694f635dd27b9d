//! The keys a recorder trusts to sign approval decisions, and whom each
//! key speaks for.
//!
//! Why: a decision carries the public key it was signed with. Checking a
//! signature with that key proves only that *someone* signed it: a
//! compromised collector, or anyone on the path to it, can sign a quorum
//! with keys of their own. So the recorder verifies decisions only with
//! keys it already holds, from root-owned configuration:
//!
//! - `[approvals] collector_key`: the collector's attestation key, which
//!   signs for approvers who signed in with the identity provider;
//! - `[approvals] trusted_keys`: a root-owned file of pins, read each time
//!   a decision arrives (so adding an approver needs no new session);
//! - `collector.pub` beside the host key: the attestation key `custos
//!   enroll` pinned when it enrolled the host.
//!
//! The pin file, one pin a line (`#` starts a comment):
//!
//! ```text
//! approver <unix user> ed25519:<base64> [<oidc issuer> <oidc subject>]
//! collector ed25519:<base64>
//! ```
//!
//! An `approver` pin binds a key to a person: their unix user and, where
//! they also sign in with the identity provider, their OIDC issuer and
//! subject. A collector-attested decision speaks for the issuer and
//! subject it names. Two decisions are by the same [`Person`] when they
//! share the unix user or the OIDC identity; such decisions count once,
//! and a person who is the requester (their unix user, or their session's
//! OIDC identity) does not count at all, whatever name they signed under.
//!
//! Trust boundary: a pinned collector key still vouches for any OIDC
//! identity it names, so a stolen attestation key can forge attested
//! decisions (pin approver keys only, and no collector key, to avoid that).
//! The pins are as trustworthy as the root-owned files they come from.
//!
//! Parsing and the verdict are pure ([`Trust::parse`], [`Trust::vouch`]);
//! [`Trust::load`] is the edge that reads a file and checks who owns it.

use std::path::{Path, PathBuf};

use super::decision::{Attestation, Binding, Decision, DecisionError};
use crate::evidence::PublicKey;

/// One approver identity: the same person whichever name they sign under.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Person {
    /// Their unix user on the hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix_user: Option<String>,
    /// Their identity at the identity provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<Attestation>,
}

impl Person {
    /// Whether `self` and `other` are one person: they share a unix user
    /// or an OIDC identity.
    pub fn same(&self, other: &Person) -> bool {
        (self.unix_user.is_some() && self.unix_user == other.unix_user) || (self.oidc.is_some() && self.oidc == other.oidc)
    }

    /// `unix user alice`, `oidc https://idp#sub`, or both.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(u) = &self.unix_user {
            parts.push(format!("unix user {u}"));
        }
        if let Some(o) = &self.oidc {
            parts.push(format!("oidc {}#{}", o.issuer, o.subject));
        }
        if parts.is_empty() {
            "nobody".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The keys this host trusts for decisions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trust {
    approvers: Vec<(PublicKey, Person)>,
    collectors: Vec<PublicKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{origin}, line {line}: {reason}")]
    Line { origin: String, line: usize, reason: String },
    #[error("cannot read the pinned approval keys in {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the pinned approval keys in {path} are not trusted: {reason} (it must be owned by root and writable only by its owner)")]
    Unsafe { path: PathBuf, reason: String },
}

impl Trust {
    /// Parses pins (the format in the module docs); `origin` names the
    /// file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Trust, TrustError> {
        let mut trust = Trust::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |reason: String| TrustError::Line { origin: origin.to_owned(), line: n + 1, reason };
            let words: Vec<&str> = line.split_whitespace().collect();
            let key = |w: Option<&&str>| -> Result<PublicKey, TrustError> {
                let w = w.ok_or_else(|| bad("a pin needs a key, ed25519:<base64>".into()))?;
                w.parse().map_err(|e| bad(format!("{w:?} is not a public key: {e}")))
            };
            match words.as_slice() {
                ["collector", rest @ ..] if rest.len() == 1 => trust.collectors.push(key(rest.first())?),
                ["approver", user, rest @ ..] if rest.len() == 1 || rest.len() == 3 => {
                    let oidc = match rest {
                        [_, issuer, subject] => Some(Attestation { issuer: (*issuer).to_owned(), subject: (*subject).to_owned() }),
                        _ => None,
                    };
                    trust.approvers.push((key(rest.first())?, Person { unix_user: Some((*user).to_owned()), oidc }));
                }
                _ => {
                    return Err(bad(format!(
                        "{line:?} is not `approver <unix user> ed25519:<key> [<oidc issuer> <oidc subject>]` or `collector ed25519:<key>`"
                    )))
                }
            }
        }
        Ok(trust)
    }

    /// Reads pins from `path`, which must be owned by root (or by this
    /// process's user, for an unprivileged run) and writable by nobody
    /// else. A missing file is an error unless `optional`.
    pub fn load(path: &Path, optional: bool) -> Result<Trust, TrustError> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => return Ok(Trust::default()),
            Err(source) => return Err(TrustError::Read { path: path.to_owned(), source }),
        };
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != 0 && meta.uid() != me {
            return Err(TrustError::Unsafe { path: path.to_owned(), reason: format!("it is owned by uid {}", meta.uid()) });
        }
        if meta.mode() & 0o022 != 0 {
            return Err(TrustError::Unsafe { path: path.to_owned(), reason: format!("its mode is {:o}", meta.mode() & 0o7777) });
        }
        let text = std::fs::read_to_string(path).map_err(|source| TrustError::Read { path: path.to_owned(), source })?;
        Trust::parse(&text, &path.display().to_string())
    }

    /// Trusts `key` as a collector's attestation key.
    pub fn add_collector(&mut self, key: PublicKey) {
        if !self.collectors.contains(&key) {
            self.collectors.push(key);
        }
    }

    /// Adds every pin of `other`.
    pub fn extend(&mut self, other: Trust) {
        self.approvers.extend(other.approvers);
        for k in other.collectors {
            self.add_collector(k);
        }
    }

    /// Whether nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.approvers.is_empty() && self.collectors.is_empty()
    }

    /// Whom `d` speaks for, if it is about `want` and signed by a pinned
    /// key: an attested decision by a pinned collector key speaks for the
    /// identity it names, any other by the person its approver key is
    /// pinned to. The key the decision carries is only used to find the
    /// pin; the signature is checked with the pinned key.
    pub fn vouch(&self, d: &Decision, want: &Binding) -> Result<Person, DecisionError> {
        let carried: Option<PublicKey> = d.public_key.parse().ok();
        let unpinned = || DecisionError::Unpinned { approver: d.approver.clone(), key: d.public_key.clone() };
        match &d.attested {
            Some(who) => {
                let key = self.collectors.iter().find(|k| Some(**k) == carried).ok_or_else(unpinned)?;
                d.check_with(want, key)?;
                Ok(Person { unix_user: None, oidc: Some((**who).clone()) })
            }
            None => {
                let (key, person) = self.approvers.iter().find(|(k, _)| Some(*k) == carried).ok_or_else(unpinned)?;
                d.check_with(want, key)?;
                Ok(person.clone())
            }
        }
    }
}

/// Where a host's pins come from (all root-owned; see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pins {
    /// `[approvals] collector_key`.
    pub collector_key: Option<PublicKey>,
    /// `[approvals] trusted_keys`: must exist when set.
    pub trusted_keys: Option<PathBuf>,
    /// The collector key `custos enroll` pinned; may be missing.
    pub enrolled: Option<PathBuf>,
}

/// The file beside the host key where `custos enroll` pins the collector's
/// attestation key.
pub fn enrolled_pin_path(host_key: &Path) -> PathBuf {
    host_key.with_file_name("collector.pub")
}

impl Pins {
    /// The pins for a host configuration.
    pub fn for_config(config: &crate::config::Config) -> Pins {
        Pins {
            collector_key: config.approvals.collector_key,
            trusted_keys: config.approvals.trusted_keys.clone(),
            enrolled: Some(enrolled_pin_path(&config.evidence.key)),
        }
    }

    /// Reads every source, now.
    pub fn load(&self) -> Result<Trust, TrustError> {
        let mut trust = Trust::default();
        if let Some(k) = self.collector_key {
            trust.add_collector(k);
        }
        if let Some(path) = &self.trusted_keys {
            trust.extend(Trust::load(path, false)?);
        }
        if let Some(path) = &self.enrolled {
            trust.extend(Trust::load(path, true)?);
        }
        Ok(trust)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::approval::decision::{line_hash, Choice};
    use crate::evidence::HostKey;

    fn binding() -> Binding {
        Binding { request_id: "r1".into(), session: "s1".into(), host: "h1".into(), line_sha256: line_hash("pg_dump prod") }
    }

    #[test]
    fn pins_parse_and_bad_lines_name_the_line() {
        let a = HostKey::from_seed([1; 32]).public();
        let c = HostKey::from_seed([2; 32]).public();
        let text = format!("# pins\napprover alice {a}\n\napprover bob {c} https://idp bob-sub # with oidc\ncollector {c}\n");
        let t = Trust::parse(&text, "pins").unwrap();
        assert_eq!(t.approvers.len(), 2);
        assert_eq!(t.approvers[1].1.oidc, Some(Attestation { issuer: "https://idp".into(), subject: "bob-sub".into() }));
        assert_eq!(t.collectors, vec![c]);
        let e = Trust::parse(&format!("approver alice {a}\napprover carol ed25519:nope\n"), "pins").unwrap_err().to_string();
        assert!(e.starts_with("pins, line 2: \"ed25519:nope\" is not a public key"), "{e}");
        let e = Trust::parse("approver alice\n", "pins").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("is not `approver"), "{e}");
        let e = Trust::parse(&format!("approver alice {a} https://idp\n"), "pins").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn only_a_pinned_key_vouches_and_it_names_its_person() {
        let alice = HostKey::from_seed([1; 32]);
        let stranger = HostKey::from_seed([3; 32]);
        let t = Trust::parse(&format!("approver alice {}\n", alice.public()), "pins").unwrap();
        let d = Decision::sign(&alice, binding(), Choice::Approve, "alice-admin", "ok").unwrap();
        assert_eq!(t.vouch(&d, &binding()).unwrap().unix_user.as_deref(), Some("alice"));
        let forged = Decision::sign(&stranger, binding(), Choice::Approve, "alice", "ok").unwrap();
        assert!(matches!(t.vouch(&forged, &binding()), Err(DecisionError::Unpinned { .. })));
        // A collector's attestation counts only if the collector key is pinned.
        let collector = HostKey::from_seed([4; 32]);
        let who = Attestation { issuer: "https://idp".into(), subject: "dana".into() };
        let attested = Decision::attest(&collector, binding(), Choice::Approve, "dana@x", "fine", who.clone()).unwrap();
        assert!(matches!(t.vouch(&attested, &binding()), Err(DecisionError::Unpinned { .. })));
        // An approver's key is not a collector key.
        let by_alice = Decision::attest(&alice, binding(), Choice::Approve, "dana@x", "fine", who.clone()).unwrap();
        assert!(matches!(t.vouch(&by_alice, &binding()), Err(DecisionError::Unpinned { .. })));
        let mut t = t;
        t.add_collector(collector.public());
        assert_eq!(t.vouch(&attested, &binding()).unwrap().oidc, Some(who));
        // The binding is still checked.
        let mut other = binding();
        other.request_id = "r2".into();
        assert!(matches!(t.vouch(&d, &other), Err(DecisionError::OtherRequest { .. })));
    }

    #[test]
    fn people_are_the_same_when_they_share_a_unix_user_or_an_oidc_identity() {
        let oidc = |s: &str| Some(Attestation { issuer: "i".into(), subject: s.into() });
        let alice = Person { unix_user: Some("alice".into()), oidc: oidc("a") };
        assert!(alice.same(&Person { unix_user: Some("alice".into()), oidc: None }));
        assert!(alice.same(&Person { unix_user: None, oidc: oidc("a") }));
        assert!(!alice.same(&Person { unix_user: Some("bob".into()), oidc: oidc("b") }));
        assert!(!Person::default().same(&Person::default()));
    }
}
