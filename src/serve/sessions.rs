//! The auditors' routes over stored sessions: `GET /v1/sessions` (list and
//! search), `/v1/sessions/{id}` (metadata with its verification and
//! identity), `.../cast` (the whole recording), `.../chunks` and
//! `.../chunks/{seq}` (the signed chunks as stored, for offline
//! verification), `.../follow` (live, as Server-Sent Events), and `GET
//! /v1/alerts`. Every read of a session is recorded in the access trail
//! (`audit`) before it is answered.
//!
//! Who may read: auditors every session, others only their own (`auth`);
//! following live also admits an approver of a request pending in the
//! session (`approvals::watcher`), to see the requester's screen.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::app::App;
use super::audit;
use super::auth::{authenticate, require_read, require_role, session_identity, Caller};
use super::error::{parse_session_id, ApiError, ApiResult};
use super::store::SessionFilter;
use super::verify;
use crate::evidence::Chunk;
use crate::identity::roles::Role;

pub(super) async fn alerts(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    require_role(&app, &headers, Role::Auditor).await?;
    Ok(Json(json!({"alerts": app.store.alerts().await?})))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    user: Option<String>,
    host: Option<String>,
    since: Option<String>,
    until: Option<String>,
    command: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn list_sessions(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let caller = authenticate(&app, &headers).await?;
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()))?;
    let now = crate::when::unix_now_i64();
    let time = |name: &str, v: Option<String>| -> ApiResult<Option<i64>> {
        v.map(|t| crate::when::parse_time(&t, now))
            .transpose()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", format!("{name}: {e}")))
    };
    let filter = SessionFilter {
        since: time("since", q.since)?,
        until: time("until", q.until)?,
        user: q.user,
        host: q.host,
        command: q.command.filter(|c| !c.is_empty()),
        limit: q.limit,
    };
    let mut sessions = app.store.search(&filter).await?;
    if !caller.has(Role::Auditor) {
        let mut own = Vec::new();
        for s in sessions {
            if caller.owns(&session_identity(&app, &s.id).await?) {
                own.push(s);
            }
        }
        sessions = own;
    }
    Ok(Json(json!({"sessions": sessions})))
}

pub(super) async fn session(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_session_id(&id)?;
    let caller = require_read(&app, &headers, &id).await?;
    let row = app.store.session(&id).await?.ok_or_else(|| ApiError::not_found(format!("no session {id}")))?;
    audit::record(&app, &headers, &caller, &id, audit::Action::Metadata).await?;
    let verification = verify::verify_stored(&app, &id).await?;
    let identity = session_identity(&app, &id).await?;
    Ok(Json(json!({"session": row, "verification": verification, "identity": identity})))
}

pub(super) async fn cast(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_session_id(&id)?;
    let caller = require_read(&app, &headers, &id).await?;
    let chunks = app.store.chunks(&id).await?;
    if chunks.is_empty() {
        return Err(ApiError::not_found(format!("no session {id}")));
    }
    audit::record(&app, &headers, &caller, &id, audit::Action::Cast).await?;
    let mut out = Vec::new();
    for row in chunks {
        let payload = stored_payload(&app, &id, row.seq).await?;
        out.extend_from_slice(&payload);
    }
    Ok(([(header::CONTENT_TYPE, "application/x-asciicast")], out).into_response())
}

/// The decompressed payload of a stored chunk.
async fn stored_payload(app: &App, id: &str, seq: i64) -> ApiResult<Vec<u8>> {
    let seq = u64::try_from(seq).map_err(ApiError::internal)?;
    let bytes = app.store.read_chunk(id, seq).await?;
    let chunk = Chunk::parse(bytes).map_err(|e| {
        app.metrics.verify_failure();
        ApiError::internal(format!("stored chunk {seq} of {id} is damaged: {e}"))
    })?;
    chunk.payload().map_err(|e| ApiError::internal(format!("stored chunk {seq} of {id}: {e}")))
}

pub(super) async fn chunk_list(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_session_id(&id)?;
    let caller = require_read(&app, &headers, &id).await?;
    audit::record(&app, &headers, &caller, &id, audit::Action::ChunkList).await?;
    Ok(Json(json!({"session": id, "chunks": app.store.chunks(&id).await?})))
}

pub(super) async fn chunk_bytes(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((id, seq)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = parse_session_id(&id)?;
    let caller = require_read(&app, &headers, &id).await?;
    let seq: u64 = seq
        .parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "malformed", format!("seq {seq:?} is not a number")))?;
    if app.store.chunk_hash(&id, seq).await?.is_none() {
        return Err(ApiError::not_found(format!("no chunk {seq} in session {id}")));
    }
    audit::record(&app, &headers, &caller, &id, audit::Action::Chunk).await?;
    let bytes = app.store.read_chunk(&id, seq).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Watching a session live: whoever may read it, and also an approver of a
/// request pending in it (to see the requester's screen before deciding).
async fn require_watch(app: &App, headers: &HeaderMap, id: &str) -> ApiResult<Caller> {
    match require_read(app, headers, id).await {
        Ok(caller) => Ok(caller),
        Err(refused) => super::approvals::watcher(app, headers, id).await?.ok_or(refused),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FollowQuery {
    /// The first seq to send (default 0: the whole session so far).
    from: Option<u64>,
}

/// Server-Sent Events: one `chunk` event per stored chunk, in order, as they
/// arrive (`id` is the seq, data is `{"seq", "final", "cast"}` with the
/// chunk's asciicast lines), then an `end` event after the final chunk.
/// `Last-Event-ID` resumes after the last chunk a client saw.
pub(super) async fn follow(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<FollowQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let id = parse_session_id(&id)?;
    let caller = require_watch(&app, &headers, &id).await?;
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", e.body_text()))?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|seq| seq.saturating_add(1));
    let from = resume.or(q.from).unwrap_or(0);
    audit::record(&app, &headers, &caller, &id, audit::Action::Follow).await?;
    struct Follow {
        app: Arc<App>,
        id: String,
        next: u64,
        arrivals: tokio::sync::broadcast::Receiver<Arc<str>>,
        ended: bool,
    }
    let state = Follow { arrivals: app.arrivals.subscribe(), app, id, next: from, ended: false };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        if s.ended {
            return None;
        }
        loop {
            let seq = i64::try_from(s.next).unwrap_or(i64::MAX);
            match s.app.store.chunk_hash(&s.id, s.next).await {
                Ok(Some(_)) => {
                    let event = match (stored_payload(&s.app, &s.id, seq).await, s.app.store.chunks(&s.id).await) {
                        (Ok(payload), Ok(rows)) => {
                            let is_final = rows.iter().any(|r| r.seq == seq && r.is_final);
                            let data = json!({"seq": s.next, "final": is_final, "cast": String::from_utf8_lossy(&payload)});
                            // After the final chunk the next turn finds
                            // nothing more and sends `end`.
                            s.next = s.next.saturating_add(1);
                            Event::default().event("chunk").id(seq.to_string()).data(data.to_string())
                        }
                        (Err(e), _) => {
                            s.ended = true;
                            Event::default().event("error").data(e.message)
                        }
                        (_, Err(e)) => {
                            s.ended = true;
                            Event::default().event("error").data(e.to_string())
                        }
                    };
                    return Some((Ok::<_, std::convert::Infallible>(event), s));
                }
                Ok(None) => {
                    if let Ok(Some(state)) = s.app.store.session_state(&s.id).await {
                        if state.is_final && s.next > state.last_seq {
                            s.ended = true;
                            return Some((Ok(Event::default().event("end").data("{}")), s));
                        }
                    }
                    // Wait for an arrival (any session; re-check), or poll again.
                    let _ = tokio::time::timeout(Duration::from_secs(2), s.arrivals.recv()).await;
                }
                Err(e) => {
                    s.ended = true;
                    return Some((Ok(Event::default().event("error").data(e.to_string())), s));
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}
