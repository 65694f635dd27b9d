//! The auditors' own trail: every read of a session (its metadata, its
//! markers, its chunk list or a chunk, the `.cast` download, a live follow)
//! is recorded as who, which session, what, and when, before the answer is
//! sent. Watching the watchers is part of the evidence: an auditor who
//! replayed a session cannot later deny having seen it.
//!
//! Fail closed: an access that cannot be recorded (the database is down or
//! full) is refused with 503, never served unrecorded.
//!
//! Who: the bearer token's identity, `token:` and the first 12 hex digits of
//! the token's SHA-256 (the same hash the token table holds, so an
//! administrator can tell tokens apart without the log revealing one).
//!
//! The table is created with the rest of the store's schema (`store`).
//!
//! Routes (in `api`'s table): `GET /v1/audit/access` (admin) lists the
//! trail, newest first, filtered by session, who, time and limit; `GET
//! /v1/sessions/{id}/markers` (admin, logged) gives a session's command
//! markers, which `custos replay --server` shows in its browser.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;

use super::app::App;
use super::auth::{require_read, require_role, Caller};
use super::error::{parse_session_id, ApiError};

/// What an auditor did with a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Metadata,
    Markers,
    ChunkList,
    Chunk,
    Cast,
    Follow,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Metadata => "metadata",
            Action::Markers => "markers",
            Action::ChunkList => "chunk_list",
            Action::Chunk => "chunk",
            Action::Cast => "cast",
            Action::Follow => "follow",
        }
    }
}

/// The identity of the bearer of the request's token.
/// Who to name in the trail: a signed-in person by issuer and subject
/// (and email when known), the admin token by its hash (see [`who`]).
pub fn caller_label(caller: &Caller, headers: &HeaderMap) -> String {
    match caller {
        Caller::Admin => who(headers),
        Caller::Person { identity, .. } => match &identity.email {
            Some(email) => format!("oidc:{} {} <{email}>", identity.issuer, identity.subject),
            None => format!("oidc:{} {}", identity.issuer, identity.subject),
        },
        Caller::Approver { name } => format!("approver:{name}"),
    }
}

pub fn who(headers: &HeaderMap) -> String {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match token {
        Some(t) => {
            let digest = Sha256::digest(t.as_bytes());
            let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
            format!("token:{hex}")
        }
        None => "anonymous".into(),
    }
}

/// Records one access; an error refuses the request (fail closed).
pub async fn record(app: &App, headers: &HeaderMap, caller: &Caller, session: &str, action: Action) -> Result<(), ApiError> {
    sqlx::query("INSERT INTO access_log (at, who, session_id, action) VALUES (?, ?, ?, ?)")
        .bind(crate::when::unix_now_i64())
        .bind(caller_label(caller, headers))
        .bind(session)
        .bind(action.as_str())
        .execute(app.store.pool())
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "audit_log", format!("the access cannot be logged, so it is refused: {e}"))
        })?;
    Ok(())
}

/// A read of the trail that failed: the database is down (503, retry).
fn storage(e: sqlx::Error) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessQuery {
    session: Option<String>,
    who: Option<String>,
    since: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/audit/access`: the trail, newest first.
pub async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<AccessQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_role(&app, &headers, crate::identity::roles::Role::Admin).await?;
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()))?;
    let since = q
        .since
        .map(|t| crate::when::parse_time(&t, crate::when::unix_now_i64()))
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", format!("since: {e}")))?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let rows = sqlx::query(
        "SELECT id, at, who, session_id, action FROM access_log
         WHERE (?1 IS NULL OR session_id = ?1) AND (?2 IS NULL OR who = ?2) AND (?3 IS NULL OR at >= ?3)
         ORDER BY id DESC LIMIT ?4",
    )
    .bind(q.session)
    .bind(q.who)
    .bind(since)
    .bind(limit)
    .fetch_all(app.store.pool())
    .await
    .map_err(storage)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(json!({
            "id": row.try_get::<i64, _>("id").map_err(ApiError::internal)?,
            "at": row.try_get::<i64, _>("at").map_err(ApiError::internal)?,
            "who": row.try_get::<String, _>("who").map_err(ApiError::internal)?,
            "session": row.try_get::<String, _>("session_id").map_err(ApiError::internal)?,
            "action": row.try_get::<String, _>("action").map_err(ApiError::internal)?,
        }));
    }
    Ok(Json(json!({"accesses": out})))
}

/// `GET /v1/sessions/{id}/markers`: the session's `m` markers in order,
/// `{"at_us", "text"}` each.
pub async fn markers(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_session_id(&id)?;
    let caller = require_read(&app, &headers, &id).await?;
    if app.store.session_state(&id).await?.is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no session {id}")));
    }
    record(&app, &headers, &caller, &id, Action::Markers).await?;
    let rows = sqlx::query("SELECT at_us, text FROM markers WHERE session_id = ? ORDER BY seq, rowid")
        .bind(&id)
        .fetch_all(app.store.pool())
        .await
        .map_err(storage)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(json!({"at_us": row.try_get::<i64, _>("at_us").map_err(ApiError::internal)?, "text": row.try_get::<String, _>("text").map_err(ApiError::internal)?}));
    }
    Ok(Json(json!({"session": id, "markers": out})))
}
