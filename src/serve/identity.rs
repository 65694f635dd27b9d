//! The collector's side of OIDC: `[identity]` of its configuration, the
//! [`Verifier`] of ID tokens for one issuer, and whose a session is.
//! Bearer tokens of callers are checked in `auth`, with this verifier.
//!
//! A session's identity is re-verified here, never taken on the recorder's
//! word: its ID token must be signed by the issuer, for this client, and
//! unexpired at the moment the session started (the header's timestamp).
//! Only then is the session `identity_verified`, and only then does a
//! non-auditor count as its owner.

use serde::Serialize;
use serde_json::Value;

use crate::identity::oidc::Provider;
use crate::identity::roles::RoleGroups;
use crate::identity::{Identity, Obtained};

/// `[identity]` in the collector's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeIdentity {
    pub issuer: String,
    /// The audience hosts' and clients' ID tokens must carry.
    pub client_id: String,
    pub groups_claim: String,
    pub roles: RoleGroups,
    /// Whether the admin token is still accepted (break-glass).
    pub admin_token: bool,
}

/// Verifies ID tokens for one issuer; discovers it on first use (the
/// provider may be down when the collector starts) and keeps its keys.
pub struct Verifier {
    pub config: ServeIdentity,
    provider: tokio::sync::Mutex<Option<Provider>>,
}

impl Verifier {
    pub fn new(config: ServeIdentity) -> Self {
        Self { config, provider: tokio::sync::Mutex::new(None) }
    }

    /// Verifies `raw` as valid at `at` (unix seconds).
    pub async fn verify(&self, raw: &str, at: u64) -> Result<Identity, String> {
        let mut guard = self.provider.lock().await;
        if guard.is_none() {
            let p = Provider::discover(&self.config.issuer, &self.config.client_id).await.map_err(|e| e.to_string())?;
            *guard = Some(p);
        }
        let Some(provider) = guard.as_mut() else { return Err("no provider".into()) };
        provider.verify(raw, at, &self.config.groups_claim, Obtained::Cached).await.map_err(|e| e.to_string())
    }
}

/// The collector's conclusion about a session's identity, shown in the
/// session's metadata.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SessionIdentity {
    /// The header's identity, without the raw token.
    pub identity: Option<Value>,
    pub identity_verified: bool,
    /// Why it is not verified, when it is not.
    pub identity_problem: Option<String>,
}

/// Checks the identity in a stored header line with the collector's
/// verifier (none: `[identity]` is not configured).
pub async fn check_session(verifier: Option<&Verifier>, header: Option<&str>) -> SessionIdentity {
    let parsed: Option<Value> = header.and_then(|h| serde_json::from_str(h).ok());
    let at = parsed.as_ref().and_then(|h| h.get("timestamp")).and_then(Value::as_u64).unwrap_or(0);
    let mut identity = parsed.as_ref().and_then(|h| h.pointer("/custos/identity")).filter(|v| !v.is_null()).cloned();
    let raw = identity.as_ref().and_then(|i| i.get("id_token")).and_then(Value::as_str).map(str::to_owned);
    if let Some(Value::Object(map)) = identity.as_mut() {
        map.remove("id_token");
    }
    let problem = match (&identity, &raw, verifier) {
        (None, _, _) => Some("the session carries no identity".to_owned()),
        (Some(_), None, _) => Some("the session's identity has no ID token to verify".to_owned()),
        (Some(_), Some(_), None) => Some("this collector has no [identity] issuer to verify against".to_owned()),
        (Some(id), Some(raw), Some(v)) => match v.verify(raw, at).await {
            Err(e) => Some(e),
            Ok(checked) => {
                let claimed = id.get("subject").and_then(Value::as_str);
                (claimed != Some(checked.subject.as_str()))
                    .then(|| format!("the header names subject {claimed:?} but the token is {}'s", checked.subject))
            }
        },
    };
    SessionIdentity { identity, identity_verified: problem.is_none(), identity_problem: problem }
}
