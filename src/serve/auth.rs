//! Who is calling the collector, and what they may do.
//!
//! Callers present a bearer token: either the admin token (break-glass,
//! switched off with `[identity] admin_token = false`) or an OIDC ID token
//! from `custos login`, verified against the issuer's keys like a session
//! header's (`identity`). Roles come from the token's groups
//! (`[identity.roles]`). Uploads need no token: a chunk is authenticated by
//! its own signature (`ingest`). Approvers' own tokens are checked by
//! `approvals`, which starts from [`authenticate`] too.
//!
//! The role checks every route uses live here: [`require_role`] (admin
//! for keys and enrollment, auditor for everything read), and
//! [`require_read`]: auditors read every session, others only their own (a
//! session whose verified identity is theirs).

use std::collections::BTreeSet;

use axum::http::{header, HeaderMap, StatusCode};
use serde_json::Value;

use super::app::App;
use super::error::{ApiError, ApiResult};
use super::identity::{check_session, SessionIdentity};
use super::store::StoreError;
use crate::identity::roles::{roles_for, Role};
use crate::identity::Identity;

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

/// What a refused caller needs to know: how to send a token, and where
/// each kind comes from. Every 401 of the API ends with it.
pub const HOW_TO_AUTHENTICATE: &str = "send `Authorization: Bearer TOKEN` (the custos commands take --token, --token-file or \
     CUSTOS_TOKEN). An admin token comes from `custos serve token --kind admin` run on the collector (the first one is \
     printed once, on stderr, when the collector first starts), an approver's from `custos serve approver`, and where [identity] is \
     configured an ID token from the OpenID provider (`custos login`) is accepted too";

/// Why a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required: {HOW_TO_AUTHENTICATE}")]
    Missing,
    #[error("the bearer token is not valid here (not one this collector issued, or no longer): {HOW_TO_AUTHENTICATE}")]
    Invalid,
    #[error("the bearer ID token is not valid: {0}")]
    BadIdToken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(e) => e.into(),
            other => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", other.to_string()),
        }
    }
}

/// The token of an `Authorization: Bearer ...` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Authenticates the request's bearer token. This is the role lookup the
/// rest of the collector (reads, approvals) calls: `authenticate(..)?.has(Role::Approver)`.
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Caller, AuthError> {
    let token = bearer(headers).ok_or(AuthError::Missing)?;
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

/// The caller, if it holds `role`.
pub async fn require_role(app: &App, headers: &HeaderMap, role: Role) -> ApiResult<Caller> {
    let caller = authenticate(app, headers).await?;
    if caller.has(role) {
        Ok(caller)
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("this needs the {role:?} role").to_lowercase()))
    }
}

/// Reading a session: auditors read all; anyone else only their own.
pub async fn require_read(app: &App, headers: &HeaderMap, id: &str) -> ApiResult<Caller> {
    let caller = authenticate(app, headers).await?;
    if caller.has(Role::Auditor) {
        return Ok(caller);
    }
    if caller.owns(&session_identity(app, id).await?) {
        Ok(caller)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("session {id} is not yours; reading other people's sessions needs the auditor role"),
        ))
    }
}

/// The collector's conclusion about stored session `id`'s identity.
pub async fn session_identity(app: &App, id: &str) -> Result<SessionIdentity, StoreError> {
    let header = app.store.session_header(id).await?;
    Ok(check_session(app.identity.as_ref(), header.as_deref()).await)
}
