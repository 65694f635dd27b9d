//! Who is calling the collector, and whose a session is.
//!
//! Callers present a bearer token: either the admin token (break-glass,
//! switched off with `[identity] admin_token = false`) or an OIDC ID token
//! from `custos login`, verified against the issuer's keys like a session
//! header's. Roles come from the token's groups (`[identity.roles]`).
//!
//! A session's identity is re-verified here, never taken on the recorder's
//! word: its ID token must be signed by the issuer, for this client, and
//! unexpired at the moment the session started (the header's timestamp).
//! Only then is the session `identity_verified`, and only then does a
//! non-auditor count as its owner.

use std::collections::BTreeSet;

use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::Value;

use super::App;
use crate::identity::oidc::Provider;
use crate::identity::roles::{roles_for, Role, RoleGroups};
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

/// An authenticated caller.
#[derive(Clone, Debug)]
pub enum Caller {
    /// The admin token: every right.
    Admin,
    /// A person signed in with the provider.
    Person { identity: Identity, roles: BTreeSet<Role> },
    /// An approver registered with `custos serve approver` (their token is
    /// not an ID token); admitted only where approvals say so.
    Approver { name: String },
}

impl Caller {
    /// Whether the caller holds `role` (admin holds all).
    pub fn has(&self, role: Role) -> bool {
        match self {
            Self::Admin => true,
            Self::Person { roles, .. } => roles.contains(&role) || roles.contains(&Role::Admin),
            Self::Approver { .. } => false,
        }
    }

    /// Whether `session` belongs to this caller: a verified session identity
    /// with the caller's issuer and subject.
    pub fn owns(&self, session: &SessionIdentity) -> bool {
        match (self, &session.identity) {
            (Self::Person { identity, .. }, Some(id)) => {
                session.identity_verified
                    && id.get("issuer").and_then(Value::as_str) == Some(identity.issuer.as_str())
                    && id.get("subject").and_then(Value::as_str) == Some(identity.subject.as_str())
            }
            _ => false,
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required")]
    Missing,
    #[error("the bearer token is not valid")]
    Invalid,
    #[error("the bearer ID token is not valid: {0}")]
    BadIdToken(String),
    #[error(transparent)]
    Store(#[from] super::store::StoreError),
}

/// Authenticates the request's bearer token. This is the role lookup the
/// rest of the collector (reads, approvals) calls: `authenticate(..)?.has(Role::Approver)`.
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Caller, AuthError> {
    let token = super::api::bearer(headers).ok_or(AuthError::Missing)?;
    let admin_allowed = app.identity.as_ref().is_none_or(|v| v.config.admin_token);
    if admin_allowed && app.store.is_admin_token(token).await? {
        return Ok(Caller::Admin);
    }
    match &app.identity {
        Some(v) if token.split('.').count() == 3 => {
            let identity = v.verify(token, crate::when::unix_now()).await.map_err(AuthError::BadIdToken)?;
            let roles = roles_for(&v.config.roles, &identity.groups);
            Ok(Caller::Person { identity, roles })
        }
        _ => Err(AuthError::Invalid),
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

/// Checks the identity in a stored header line.
pub async fn check_session(app: &App, header: Option<&str>) -> SessionIdentity {
    let parsed: Option<Value> = header.and_then(|h| serde_json::from_str(h).ok());
    let at = parsed.as_ref().and_then(|h| h.get("timestamp")).and_then(Value::as_u64).unwrap_or(0);
    let mut identity = parsed.as_ref().and_then(|h| h.pointer("/custos/identity")).filter(|v| !v.is_null()).cloned();
    let raw = identity.as_ref().and_then(|i| i.get("id_token")).and_then(Value::as_str).map(str::to_owned);
    if let Some(Value::Object(map)) = identity.as_mut() {
        map.remove("id_token");
    }
    let problem = match (&identity, &raw, &app.identity) {
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
