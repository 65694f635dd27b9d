//! The collector's HTTP surface: routes, authentication, and the JSON error
//! shape every failure answers with:
//!
//! ```json
//! {"error": "out_of_order", "message": "chunk 5 does not follow ...", "expected_seq": 3}
//! ```
//!
//! `error` is a stable code for programs, `message` says what failed for
//! people. Authentication: uploads are authenticated by the chunk's own
//! signature (an enrolled host key), so `PUT .../chunks/{seq}` and `GET
//! .../head` need no token; everything else needs a bearer token: the admin
//! token (break-glass, can be switched off), or an OIDC ID token whose
//! groups give roles (`identity`): auditors read every session, others only
//! their own (a session whose verified identity is theirs); keys and
//! enrollment need admin.
//! `docs/openapi.json` describes every route in [`ROUTES`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt as _;
use serde_json::{json, Value};

use super::identity::Caller;
use super::store::SessionFilter;
use crate::identity::roles::Role;
use super::App;
use crate::evidence::{Chunk, PublicKey};

/// Every route, as (method, path). The router is built from the same paths,
/// and a test checks each against `docs/openapi.json`.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/v1/enroll"),
    ("POST", "/v1/enroll-tokens"),
    ("GET", "/v1/keys"),
    ("GET", "/v1/alerts"),
    ("GET", "/v1/sessions"),
    ("GET", "/v1/sessions/{id}"),
    ("GET", "/v1/sessions/{id}/head"),
    ("GET", "/v1/sessions/{id}/cast"),
    ("GET", "/v1/sessions/{id}/chunks"),
    ("GET", "/v1/sessions/{id}/chunks/{seq}"),
    ("PUT", "/v1/sessions/{id}/chunks/{seq}"),
    ("GET", "/v1/sessions/{id}/follow"),
    ("GET", "/v1/sessions/{id}/markers"),
    ("GET", "/v1/audit/access"),
    ("POST", "/v1/approvals"),
    ("GET", "/v1/approvals"),
    ("GET", "/v1/approvals/{id}"),
    ("POST", "/v1/approvals/{id}/decide"),
    ("POST", "/v1/approvals/{id}/withdraw"),
];

/// The OpenAPI description served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// A failure, answered as JSON with its status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    extra: serde_json::Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: String) -> Self {
        Self { status, code, message, extra: serde_json::Map::new() }
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    fn not_found(what: String) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.extra;
        body.insert("error".into(), self.code.into());
        body.insert("message".into(), self.message.into());
        let mut response = (self.status, Json(Value::Object(body))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<super::store::StoreError> for ApiError {
    fn from(e: super::store::StoreError) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/enroll", post(enroll))
        .route("/v1/enroll-tokens", post(create_enroll_token))
        .route("/v1/keys", get(keys))
        .route("/v1/alerts", get(alerts))
        .route("/v1/sessions", get(list_sessions))
        .route("/v1/sessions/{id}", get(session))
        .route("/v1/sessions/{id}/head", get(head))
        .route("/v1/sessions/{id}/cast", get(cast))
        .route("/v1/sessions/{id}/chunks", get(chunk_list))
        .route("/v1/sessions/{id}/chunks/{seq}", get(chunk_bytes).put(upload))
        .route("/v1/sessions/{id}/follow", get(follow))
        .route("/v1/sessions/{id}/markers", get(super::audit::markers))
        .route("/v1/audit/access", get(super::audit::list))
        .merge(super::approvals::routes())
        .fallback(|| async { ApiError::not_found("no such route".into()) })
        .with_state(app)
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

impl From<super::identity::AuthError> for ApiError {
    fn from(e: super::identity::AuthError) -> Self {
        match e {
            super::identity::AuthError::Store(e) => e.into(),
            other => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", other.to_string()),
        }
    }
}

/// The caller, if it holds `role`.
pub(super) async fn require_role(app: &App, headers: &HeaderMap, role: Role) -> ApiResult<Caller> {
    let caller = super::identity::authenticate(app, headers).await?;
    if caller.has(role) {
        Ok(caller)
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("this needs the {role:?} role").to_lowercase()))
    }
}

/// Watching a session live: whoever may read it, and also an approver of a
/// request pending in it (to see the requester's screen before deciding).
pub(super) async fn require_watch(app: &App, headers: &HeaderMap, id: &str) -> ApiResult<Caller> {
    match require_read(app, headers, id).await {
        Ok(caller) => Ok(caller),
        Err(refused) => super::approvals::watcher(app, headers, id).await?.ok_or(refused),
    }
}

/// Reading a session: auditors read all; anyone else only their own.
pub(super) async fn require_read(app: &App, headers: &HeaderMap, id: &str) -> ApiResult<Caller> {
    let caller = super::identity::authenticate(app, headers).await?;
    if caller.has(Role::Auditor) {
        return Ok(caller);
    }
    let header = app.store.session_header(id).await?;
    if caller.owns(&super::identity::check_session(app, header.as_deref()).await) {
        Ok(caller)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("session {id} is not yours; reading other people's sessions needs the auditor role"),
        ))
    }
}

async fn healthz(State(app): State<Arc<App>>) -> ApiResult<Json<Value>> {
    app.store.totals().await?;
    Ok(Json(json!({"status": "ok"})))
}

async fn metrics(State(app): State<Arc<App>>) -> ApiResult<Response> {
    let totals = app.store.totals().await?;
    let mut response = app.metrics.render(totals).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(response)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollRequest {
    token: String,
    public_key: String,
    /// ed25519 signature, base64, by the key being enrolled over
    /// `custos-enroll-v1:` followed by the token: proves the host holds the
    /// secret half, so a token cannot enroll someone else's public key.
    proof: String,
    #[serde(default)]
    name: Option<String>,
}

async fn enroll(State(app): State<Arc<App>>, body: axum::body::Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    use base64::Engine as _;
    let request: EnrollRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", format!("enrollment request: {e}")))?;
    let key: PublicKey = request
        .public_key
        .parse()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", format!("public_key: {e}")))?;
    let proof = base64::engine::general_purpose::STANDARD
        .decode(request.proof.trim())
        .ok()
        .and_then(|p| <[u8; 64]>::try_from(p).ok())
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "malformed", "proof: not a base64 ed25519 signature".into()))?;
    if !key.verifies(&crate::client::enroll_proof_message(&request.token), &proof) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_proof",
            "the proof is not a signature of this token by this key".into(),
        ));
    }
    let key_id = key.id().to_string();
    let name = request.name.unwrap_or_default();
    match app.store.enroll(&request.token, &key_id, &key.to_string(), &name, crate::when::unix_now_i64()).await? {
        Ok(()) => Ok((StatusCode::CREATED, Json(json!({"key_id": key_id, "public_key": key.to_string(), "name": name})))),
        Err(refusal) => Err(ApiError::new(StatusCode::FORBIDDEN, "enrollment_refused", refusal.to_string())),
    }
}

async fn create_enroll_token(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult<(StatusCode, Json<Value>)> {
    require_role(&app, &headers, Role::Admin).await?;
    let (token, expires_at) = app.new_enroll_token().await?;
    Ok((StatusCode::CREATED, Json(json!({"token": token, "expires_at": expires_at}))))
}

async fn keys(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    require_role(&app, &headers, Role::Admin).await?;
    Ok(Json(json!({"keys": app.store.hosts().await?})))
}

async fn alerts(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    require_role(&app, &headers, Role::Auditor).await?;
    Ok(Json(json!({"alerts": app.store.alerts().await?})))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    user: Option<String>,
    host: Option<String>,
    since: Option<String>,
    until: Option<String>,
    command: Option<String>,
    limit: Option<i64>,
}

async fn list_sessions(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let caller = super::identity::authenticate(&app, &headers).await?;
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
            let header = app.store.session_header(&s.id).await?;
            if caller.owns(&super::identity::check_session(&app, header.as_deref()).await) {
                own.push(s);
            }
        }
        sessions = own;
    }
    Ok(Json(json!({"sessions": sessions})))
}

pub(super) fn parse_session_id(id: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", format!("session id {id:?} is not a UUID: {e}")))
}

async fn session(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_session_id(&id)?;
    let caller = require_read(&app, &headers, &id).await?;
    let row = app.store.session(&id).await?.ok_or_else(|| ApiError::not_found(format!("no session {id}")))?;
    super::audit::record(&app, &headers, &caller, &id, super::audit::Action::Metadata).await?;
    let verification = super::verify::verify_stored(&app, &id).await?;
    let header = app.store.session_header(&id).await?;
    let identity = super::identity::check_session(&app, header.as_deref()).await;
    Ok(Json(json!({"session": row, "verification": verification, "identity": identity})))
}

/// Where an uploader resumes: the last stored seq and its hash.
async fn head(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_session_id(&id)?;
    match app.store.session_state(&id).await? {
        Some(s) => {
            let last_us = app.store.chunk_last_us(&id, s.last_seq).await?;
            Ok(Json(json!({"session": id, "last_seq": s.last_seq, "hash": s.last_hash, "last_us": last_us, "final": s.is_final})))
        }
        None => Err(ApiError::not_found(format!("no chunk of session {id} is stored yet"))),
    }
}

async fn cast(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Response> {
    let id = parse_session_id(&id)?;
    let caller = require_read(&app, &headers, &id).await?;
    let chunks = app.store.chunks(&id).await?;
    if chunks.is_empty() {
        return Err(ApiError::not_found(format!("no session {id}")));
    }
    super::audit::record(&app, &headers, &caller, &id, super::audit::Action::Cast).await?;
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
    let bytes = app.store.read_chunk_file(id, seq).await?;
    let chunk = Chunk::parse(bytes).map_err(|e| {
        app.metrics.verify_failure();
        ApiError::internal(format!("stored chunk {seq} of {id} is damaged: {e}"))
    })?;
    chunk.payload().map_err(|e| ApiError::internal(format!("stored chunk {seq} of {id}: {e}")))
}

async fn chunk_list(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = parse_session_id(&id)?;
    let caller = require_read(&app, &headers, &id).await?;
    super::audit::record(&app, &headers, &caller, &id, super::audit::Action::ChunkList).await?;
    Ok(Json(json!({"session": id, "chunks": app.store.chunks(&id).await?})))
}

async fn chunk_bytes(
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
    super::audit::record(&app, &headers, &caller, &id, super::audit::Action::Chunk).await?;
    let bytes = app.store.read_chunk_file(&id, seq).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn upload(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((id, seq)): Path<(String, String)>,
    body: Body,
) -> ApiResult<(StatusCode, Json<super::ingest::Ack>)> {
    let body = read_bounded(&app, &headers, body).await?;
    let ack = super::ingest::ingest(&app, &id, &seq, body).await?;
    let status = if ack.stored_now { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(ack)))
}

/// Reads a request body of at most `max_chunk_bytes`, refusing early on a
/// declared length that is too large and counting as it streams otherwise.
async fn read_bounded(app: &App, headers: &HeaderMap, body: Body) -> ApiResult<Vec<u8>> {
    use super::metrics::Reject;
    let max = app.config.max_chunk_bytes;
    let too_large = |len: String| {
        app.metrics.reject(Reject::TooLarge);
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Reject::TooLarge.label(),
            format!("the body is {len} bytes; a chunk may be at most {max} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared {
        if len > u64::try_from(max).unwrap_or(u64::MAX) {
            return Err(too_large(len.to_string()));
        }
    }
    let mut out = Vec::with_capacity(declared.and_then(|l| usize::try_from(l).ok()).unwrap_or(0).min(max));
    let mut stream = body.into_data_stream();
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| {
            app.metrics.reject(Reject::Malformed);
            ApiError::new(StatusCode::BAD_REQUEST, "truncated", format!("the request body ended early: {e}"))
        })?;
        if out.len().saturating_add(piece.len()) > max {
            return Err(too_large(format!("more than {max}")));
        }
        out.extend_from_slice(&piece);
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowQuery {
    /// The first seq to send (default 0: the whole session so far).
    from: Option<u64>,
}

/// Server-Sent Events: one `chunk` event per stored chunk, in order, as they
/// arrive (`id` is the seq, data is `{"seq", "final", "cast"}` with the
/// chunk's asciicast lines), then an `end` event after the final chunk.
/// `Last-Event-ID` resumes after the last chunk a client saw.
async fn follow(
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
    super::audit::record(&app, &headers, &caller, &id, super::audit::Action::Follow).await?;
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
