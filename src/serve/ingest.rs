//! Ingest: the uploaders' routes, `PUT /v1/sessions/{id}/chunks/{seq}`
//! (with the rules for storing an uploaded chunk) and `GET
//! /v1/sessions/{id}/head` (where an uploader resumes). Neither needs a
//! bearer token: a chunk is authenticated by its own signature, a head
//! request by a signature of the session id and the time by the host's
//! enrolled key (a reader's token also reads a head). The head is not
//! public: it says whether a session exists and what its chain hash is.
//!
//! A chunk is stored only when all of these hold, checked in this order:
//!
//! 1. the body is at most `max_chunk_bytes` (413) and parses as a chunk
//!    (400, with the parser's reason: truncated, not a chunk, changed payload);
//! 2. the URL's session id and seq are the envelope's (400). This is what
//!    makes a chunk replayed into another session fail: the session id is
//!    inside the signed bytes. Such an attempt is also recorded as an alert;
//! 3. the envelope's key id names an enrolled host key (403) and the
//!    signature verifies with it (403); every later chunk of a session must
//!    be signed by the key that signed chunk 0 (403);
//! 4. the chain links: seq 0 has `prev` all zeros, seq N needs N-1 stored and
//!    `prev` equal to its hash (409 `out_of_order` with the expected seq, or
//!    409 `broken_link`); nothing follows a final chunk (409);
//! 5. if a chunk is already stored at that seq: the same bytes answer 200
//!    again (an uploader that lost our answer retries), different bytes
//!    answer 409 `conflict` and are recorded as a tamper alert.
//!
//! Trust boundary: these checks defend against an unenrolled or impostor
//! host, edits to stored history, forks, and replays across sessions. They do
//! not defend against the enrolled host's own key being stolen (root on the
//! host); that is the threat model's stated limit.
//!
//! Chunks of one session are decided one at a time (a lock per session), so two
//! racing uploads of the same seq cannot both pass the check; sessions are
//! independent of each other.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use futures_util::StreamExt as _;
use serde_json::{json, Value};

use super::app::App;
use super::error::{parse_session_id, ApiError, ApiResult};
use super::index::index_payload;
use super::metrics::Reject;
use super::store::{NewAlert, NewChunk, Store, INLINE_MAX};
use crate::evidence::{Chunk, Digest, PublicKey};

/// What a successful upload answers.
#[derive(Debug, serde::Serialize)]
pub struct Ack {
    pub session: String,
    pub seq: u64,
    pub hash: String,
    /// False when these exact bytes were already stored (a retry).
    pub stored_now: bool,
}

/// How far a head proof's time may be from the collector's clock.
const HEAD_PROOF_SKEW_SECS: i64 = 300;

/// Where an uploader resumes: the last stored seq and its hash. The
/// uploading host proves itself with its enrolled key ([`host_proof`]) and
/// sees only sessions that key signed; a reader's bearer token reads any
/// session it may read (`auth::require_read`). Without either: 401, before
/// anything is looked up, so nothing says whether the session exists.
pub(super) async fn head(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let missing = || ApiError::not_found(format!("no chunk of session {id} is stored yet"));
    let state = if headers.contains_key("x-custos-key") {
        let key_id = host_proof(&app, &headers, &id).await?;
        let id = parse_session_id(&id)?;
        // Another host's session answers as if it did not exist.
        app.store.session_state(&id).await?.filter(|s| s.key_id == key_id)
    } else if super::auth::bearer(&headers).is_some() {
        let id = parse_session_id(&id)?;
        super::auth::require_read(&app, &headers, &id).await?;
        app.store.session_state(&id).await?
    } else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "GET /v1/sessions/{id}/head needs the uploading host's proof (X-Custos-Key, X-Custos-Date and X-Custos-Signature, \
             signed by its enrolled key) or a reader's bearer token"
                .into(),
        ));
    };
    let Some(s) = state else { return Err(missing()) };
    let id = parse_session_id(&id)?;
    let last_us = app.store.chunk_last_us(&id, s.last_seq).await?;
    Ok(Json(json!({"session": id, "last_seq": s.last_seq, "hash": s.last_hash, "last_us": last_us, "final": s.is_final})))
}

/// Checks a host's proof for reading the head of `session`: `X-Custos-Key`
/// names an enrolled key, `X-Custos-Date` is within a few minutes of now,
/// and `X-Custos-Signature` is that key's signature of
/// [`head_proof_message`](crate::evidence::key::head_proof_message).
/// Answers the key id.
async fn host_proof(app: &App, headers: &HeaderMap, session: &str) -> ApiResult<String> {
    use base64::Engine as _;
    let unauthorized = |m: String| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let key_id = header("x-custos-key").unwrap_or_default().to_owned();
    let date: i64 = header("x-custos-date")
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| unauthorized("X-Custos-Date: unix seconds are required with X-Custos-Key".into()))?;
    if (crate::when::unix_now_i64() - date).abs() > HEAD_PROOF_SKEW_SECS {
        return Err(unauthorized(format!("X-Custos-Date {date} is more than {HEAD_PROOF_SKEW_SECS}s from the collector's clock")));
    }
    let signature = header("x-custos-signature")
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .ok_or_else(|| unauthorized("X-Custos-Signature: not a base64 ed25519 signature".into()))?;
    let host = app.store.hosts().await?.into_iter().find(|h| h.key_id == key_id);
    let host = host.ok_or_else(|| unauthorized(format!("no host is enrolled with key {key_id:?}")))?;
    let key: PublicKey = host.public_key.parse().map_err(ApiError::internal)?;
    if !key.verifies(&crate::evidence::key::head_proof_message(session, date), &signature) {
        return Err(unauthorized("X-Custos-Signature does not verify with the host's key for this session and date".into()));
    }
    Ok(key_id)
}

pub(super) async fn upload(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((id, seq)): Path<(String, String)>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Ack>)> {
    let body = read_bounded(&app, &headers, body).await?;
    let ack = ingest(&app, &id, &seq, body).await?;
    let status = if ack.stored_now { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(ack)))
}

/// Reads a request body of at most `max_chunk_bytes`, refusing early on a
/// declared length that is too large and counting as it streams otherwise.
pub(super) async fn read_bounded(app: &App, headers: &HeaderMap, body: Body) -> ApiResult<Vec<u8>> {
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

fn reject(app: &App, reason: Reject, status: StatusCode, message: String) -> ApiError {
    app.metrics.reject(reason);
    ApiError::new(status, reason.label(), message)
}

/// Decides on and stores one uploaded chunk.
pub async fn ingest(app: &Arc<App>, url_session: &str, url_seq: &str, body: Vec<u8>) -> Result<Ack, ApiError> {
    let session = uuid::Uuid::parse_str(url_session).map_err(|e| {
        reject(app, Reject::Mismatch, StatusCode::BAD_REQUEST, format!("session id {url_session:?} is not a UUID: {e}"))
    })?;
    let seq: u64 = url_seq.parse().map_err(|_| {
        reject(app, Reject::Mismatch, StatusCode::BAD_REQUEST, format!("seq {url_seq:?} is not a non-negative integer"))
    })?;
    let size = u64::try_from(body.len()).unwrap_or(u64::MAX);
    let chunk = Chunk::parse(body)
        .map_err(|e| reject(app, Reject::Malformed, StatusCode::BAD_REQUEST, format!("not a valid chunk: {e}")))?;
    let env = chunk.envelope().clone();
    let session_text = session.to_string();
    let now = crate::when::unix_now_i64();
    if env.session != session {
        let err = reject(
            app,
            Reject::Mismatch,
            StatusCode::BAD_REQUEST,
            format!("the chunk belongs to session {}, not {session}: a chunk cannot be moved to another session", env.session),
        );
        alert(app, "replayed_chunk", Some(&session_text), Some(seq), Some(&env.key_id.to_string()), err.message.clone(), now).await;
        return Err(err);
    }
    if env.seq != seq {
        return Err(reject(
            app,
            Reject::Mismatch,
            StatusCode::BAD_REQUEST,
            format!("the chunk is seq {}, not {seq}", env.seq),
        ));
    }
    let key_id = env.key_id.to_string();
    let key = app.store.host_public_key(&key_id).await.map_err(|e| storage(app, &e))?;
    let Some(key) = key else {
        return Err(reject(
            app,
            Reject::UnknownKey,
            StatusCode::FORBIDDEN,
            format!("key {key_id} is not enrolled with this collector (run `custos enroll` on the host)"),
        ));
    };
    if let Err(e) = chunk.verify(&key) {
        app.metrics.verify_failure();
        let err = reject(app, Reject::BadSignature, StatusCode::FORBIDDEN, format!("chunk {seq}: {e}"));
        alert(app, "bad_signature", Some(&session_text), Some(seq), Some(&key_id), err.message.clone(), now).await;
        return Err(err);
    }
    // Decompress (bounded) before taking the lock: it is the costly part.
    let payload = chunk
        .payload()
        .map_err(|e| reject(app, Reject::Malformed, StatusCode::BAD_REQUEST, format!("chunk {seq}: {e}")))?;
    let hash = chunk.hash().to_string();

    let _guard = app.session_lock(&session_text).await;
    let state = app.store.session_state(&session_text).await.map_err(|e| storage(app, &e))?;
    // A session's chunks are stored contiguously from 0, so only a seq at
    // or below the last stored one can already be there.
    let maybe_stored = state.as_ref().is_some_and(|s| seq <= s.last_seq);
    let stored = if maybe_stored { app.store.chunk_hash(&session_text, seq).await.map_err(|e| storage(app, &e))? } else { None };
    if let Some(stored) = stored {
        if stored == hash {
            app.metrics.duplicate();
            return Ok(Ack { session: session_text, seq, hash, stored_now: false });
        }
        let err = reject(
            app,
            Reject::Conflict,
            StatusCode::CONFLICT,
            format!("a different chunk is already stored at seq {seq} (stored {stored}, uploaded {hash})"),
        );
        alert(app, "conflict", Some(&session_text), Some(seq), Some(&key_id), err.message.clone(), now).await;
        return Err(err);
    }
    let elapsed_before = match &state {
        None => {
            if seq != 0 {
                return Err(out_of_order(app, seq, 0));
            }
            if env.prev != Digest::ZERO {
                return Err(broken_link(app, "chunk 0 must have an all-zero prev".into()));
            }
            0
        }
        Some(state) => {
            if state.key_id != key_id {
                return Err(reject(
                    app,
                    Reject::Mismatch,
                    StatusCode::FORBIDDEN,
                    format!("session {session} is signed by key {}, not {key_id}", state.key_id),
                ));
            }
            if state.is_final {
                return Err(reject(
                    app,
                    Reject::Closed,
                    StatusCode::CONFLICT,
                    format!("session {session} already ended at seq {}; nothing can follow its final chunk", state.last_seq),
                ));
            }
            let expected = state.last_seq.saturating_add(1);
            if seq != expected {
                return Err(out_of_order(app, seq, expected));
            }
            if env.prev.to_string() != state.last_hash {
                let err = broken_link(
                    app,
                    format!("chunk {seq} says the previous chunk is {}, but the stored chunk {} is {}", env.prev, state.last_seq, state.last_hash),
                );
                alert(app, "broken_link", Some(&session_text), Some(seq), Some(&key_id), err.message.clone(), now).await;
                return Err(err);
            }
            state.elapsed_us
        }
    };

    let index = index_payload(&payload, seq == 0, elapsed_before);
    let bytes = chunk.into_bytes();
    // A small chunk's bytes go into the database with its row (one fsync
    // for the whole batch); a large one is made durable in its own file
    // before its row is queued.
    let inline = if bytes.len() <= INLINE_MAX {
        Some(bytes)
    } else {
        let chunks_dir = app.store.chunks_dir().to_owned();
        let file_session = session_text.clone();
        tokio::task::spawn_blocking(move || Store::write_chunk_file(&chunks_dir, &file_session, seq, &bytes))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", format!("writer task failed: {e}")))?
            .map_err(|e| storage(app, &e))?;
        None
    };
    app.committer()
        .commit(NewChunk {
            session: session_text.clone(),
            seq,
            hash: hash.clone(),
            size,
            first_us: env.first_us,
            last_us: env.last_us,
            is_final: env.is_final,
            key_id,
            index,
            now,
            inline,
        })
        .await
        .map_err(|e| storage(app, &e))?;
    app.metrics.accepted(size, seq == 0);
    // Followers re-read the store; a lagging or absent receiver is fine.
    let _ = app.arrivals.send(Arc::from(session_text.as_str()));
    Ok(Ack { session: session_text, seq, hash, stored_now: true })
}

fn out_of_order(app: &App, seq: u64, expected: u64) -> ApiError {
    reject(
        app,
        Reject::OutOfOrder,
        StatusCode::CONFLICT,
        format!("chunk {seq} does not follow what is stored: the next chunk must be seq {expected}"),
    )
    .with("expected_seq", expected.into())
}

fn broken_link(app: &App, message: String) -> ApiError {
    reject(app, Reject::BrokenLink, StatusCode::CONFLICT, message)
}

/// A storage fault: the client should retry later, and keeps its chunk.
fn storage(app: &App, e: &super::store::StoreError) -> ApiError {
    app.metrics.reject(Reject::Storage);
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage", format!("cannot store the chunk now: {e}"))
}

async fn alert(
    app: &App,
    kind: &str,
    session: Option<&str>,
    seq: Option<u64>,
    key_id: Option<&str>,
    detail: String,
    now: i64,
) {
    tracing::warn!(kind = %kind, session, seq, key_id, detail = %detail, "alert");
    let alert = NewAlert { kind, session_id: session, seq, key_id, detail, now };
    if let Err(e) = app.store.record_alert(alert.clone()).await {
        // The refusal stands either way; the log keeps what the table could not.
        tracing::error!(kind = %kind, detail = %alert.detail, error = %e, "cannot record the alert");
    }
}
