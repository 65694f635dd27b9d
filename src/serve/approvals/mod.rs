//! The collector's approvals: requests from hosts, decisions from
//! approvers, and the rules between them. The collector is the authority
//! on a request's state; every change is a row update in SQLite (so a
//! request survives a restart) and bumps the request's `version`, which
//! long-polls wait on.
//!
//! Routes (JSON; errors in the shape `error` documents):
//!
//! - `POST /v1/approvals`: a host creates a request. Authenticated by the
//!   host key: `X-Custos-Key` (key id) and `X-Custos-Signature` (base64
//!   ed25519 over `custos-approval-request-v1\n` + the body). Answers the
//!   id and a requester token, which reads and withdraws that request.
//! - `GET /v1/approvals?state=&host=&user=&rule=&q=&after=&wait=`: the
//!   requests an approver may decide (admin: all), filtered. With `after`,
//!   only those whose version is larger; with `wait` (seconds, at most 30)
//!   the answer waits until there is one: a long-poll.
//! - `GET /v1/approvals/{id}?after=&wait=`: one request, long-poll too.
//! - `POST /v1/approvals/{id}/decide`: an approver's signed
//!   [`Decision`]. Refused: the requester themself under any name
//!   (`self_approval`), a registration bound to no person (`no_person`), not in
//!   the rule's group (`not_approver`), a key that is not theirs
//!   (`key_mismatch`), a decision bound to another request, session, host
//!   or line (`bad_decision`), a second decision by the same person
//!   (`already_decided`), a request no longer pending (`not_pending`).
//! - `POST /v1/approvals/{id}/withdraw`: the requester gives up.
//!
//! Rules: one denial ends a request; `quorum` distinct approvers approve
//! it; a request expires at `created + timeout` (a background task marks
//! it within half a second). Every event also lands in `approval_log` and,
//! if configured, is POSTed to the webhook (three retries, backing off).
//!
//! Approvers authenticate in one of two ways:
//!
//! - a token the admin issues with `custos serve approver`, which also
//!   registers their public key and groups; they sign their own decisions;
//! - with `[identity]` configured, the ID token of `custos login`: the
//!   caller needs the approver role (`[identity.roles] approver`) and
//!   membership of the rule's group in the token's groups claim. They send
//!   only a verdict and a reason; the collector signs the decision with its
//!   attestation key (`<data_dir>/attestation.key`, made on first start),
//!   naming their issuer and subject ([`Decision::attest`]).
//!
//! One approver identity per person. A registration binds a person: a
//! unix user and, where configured, an OIDC issuer and subject
//! (`custos serve approver --unix-user --oidc-issuer --oidc-subject`); a
//! signed-in approver is their issuer and subject. Two identities are one
//! person when they share either. Self-approval is refused by person, under
//! any name: an approver whose unix user is the requester's, or whose OIDC
//! identity is the requester's session identity. A person decides once per
//! request (`already_decided`), and the quorum counts people. A
//! registration from before people were bound (no unix user) is refused
//! with `no_person`, naming the `custos serve approver-person` command that
//! binds one and keeps the token and key.
//!
//! The collector's word is not the last: hosts verify every decision with
//! keys they pinned themselves (`approval::trust`), so what this module
//! records about people is checked again on the host.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use sqlx::Row as _;

use super::app::App;
use super::auth::{authenticate, bearer, AuthError, Caller as Authed};
use super::error::ApiError;
use crate::approval::decision::{Attestation, Binding, Choice, Decision};
use crate::approval::trust::Person;
use crate::approval::wire::{NewRequest, RequestView, State as ReqState, REQUEST_CONTEXT};
use crate::evidence::PublicKey;

pub mod hub;

/// Longest long-poll.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Longest screen a request may carry.
const MAX_SCREEN: usize = 256 * 1024;
/// How often expiry is checked.
const EXPIRY_TICK: Duration = Duration::from_millis(500);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS approvers (
    name TEXT PRIMARY KEY,
    groups TEXT NOT NULL,
    public_key TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS approval_requests (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    requester_token_hash TEXT NOT NULL,
    body TEXT NOT NULL,
    decisions TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approval_requests_state ON approval_requests(state, expires_at);
CREATE INDEX IF NOT EXISTS approval_requests_version ON approval_requests(version);
CREATE TABLE IF NOT EXISTS approval_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL
);
";

/// The collector's attestation key in `data_dir`, made on first start.
pub fn attestation_key(data_dir: &std::path::Path) -> Result<crate::evidence::HostKey, crate::evidence::KeyError> {
    let path = data_dir.join("attestation.key");
    if path.exists() {
        return crate::evidence::HostKey::load(&path);
    }
    let key = crate::evidence::HostKey::generate();
    key.save(&path)?;
    Ok(key)
}

/// Creates the tables, and adds the person columns to an older
/// `approvers` table.
pub async fn migrate(store: &super::store::Store) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(SCHEMA).execute(store.pool()).await?;
    let have: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_table_info('approvers')").fetch_all(store.pool()).await?;
    for column in PERSON_COLUMNS {
        if !have.iter().any(|(c,)| c == column) {
            sqlx::raw_sql(&format!("ALTER TABLE approvers ADD COLUMN {column} TEXT")).execute(store.pool()).await?;
        }
    }
    Ok(())
}

fn token_hash(token: &str) -> String {
    use sha2::Digest as _;
    super::store::hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// Columns added to `approvers` after its first release: the person a
/// registration binds. Added on start where missing; rows from before
/// have none, and their decisions are refused until the admin binds one
/// (`custos serve approver-person`).
const PERSON_COLUMNS: &[&str] = &["unix_user", "oidc_issuer", "oidc_subject"];

/// Checks a person a registration binds: a unix user, and the OIDC issuer
/// and subject together or neither.
fn person_of(unix_user: &str, oidc_issuer: Option<&str>, oidc_subject: Option<&str>) -> anyhow::Result<Person> {
    let plain = |what: &str, v: &str| -> anyhow::Result<()> {
        anyhow::ensure!(!v.is_empty() && !v.contains(char::is_whitespace), "{what} {v:?} is empty or has white space");
        Ok(())
    };
    plain("unix user", unix_user)?;
    let oidc = match (oidc_issuer, oidc_subject) {
        (Some(issuer), Some(subject)) => {
            plain("OIDC issuer", issuer)?;
            plain("OIDC subject", subject)?;
            Some(Attestation { issuer: issuer.to_owned(), subject: subject.to_owned() })
        }
        (None, None) => None,
        _ => anyhow::bail!("--oidc-issuer and --oidc-subject go together"),
    };
    Ok(Person { unix_user: Some(unix_user.to_owned()), oidc })
}

/// Registers (or re-registers) an approver bound to a person (their unix
/// user and, optionally, OIDC issuer and subject); returns their new token.
pub async fn register_approver(
    store: &super::store::Store,
    name: &str,
    groups: &[String],
    public_key: &PublicKey,
    unix_user: &str,
    oidc: (Option<&str>, Option<&str>),
) -> anyhow::Result<String> {
    anyhow::ensure!(!name.is_empty() && !name.contains(['\n', ',']), "approver name {name:?} is empty or has a comma or newline");
    let person = person_of(unix_user, oidc.0, oidc.1)?;
    let token = super::store::new_token()?;
    sqlx::query(
        "INSERT INTO approvers (name, groups, public_key, token_hash, created_at, unix_user, oidc_issuer, oidc_subject) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET groups = excluded.groups, public_key = excluded.public_key, token_hash = excluded.token_hash,
           unix_user = excluded.unix_user, oidc_issuer = excluded.oidc_issuer, oidc_subject = excluded.oidc_subject",
    )
    .bind(name)
    .bind(groups.join(","))
    .bind(public_key.to_string())
    .bind(token_hash(&token))
    .bind(crate::when::unix_now_i64())
    .bind(&person.unix_user)
    .bind(person.oidc.as_ref().map(|o| o.issuer.clone()))
    .bind(person.oidc.as_ref().map(|o| o.subject.clone()))
    .execute(store.pool())
    .await?;
    Ok(token)
}

/// Binds an existing registration to a person, keeping its token, key and
/// groups: the way forward for approvers registered before people were.
pub async fn bind_person(store: &super::store::Store, name: &str, unix_user: &str, oidc: (Option<&str>, Option<&str>)) -> anyhow::Result<()> {
    let person = person_of(unix_user, oidc.0, oidc.1)?;
    let done = sqlx::query("UPDATE approvers SET unix_user = ?, oidc_issuer = ?, oidc_subject = ? WHERE name = ?")
        .bind(&person.unix_user)
        .bind(person.oidc.as_ref().map(|o| o.issuer.clone()))
        .bind(person.oidc.as_ref().map(|o| o.subject.clone()))
        .bind(name)
        .execute(store.pool())
        .await?;
    anyhow::ensure!(done.rows_affected() == 1, "no approver is registered as {name:?}");
    Ok(())
}

/// The public half of the collector's attestation key, for hosts to pin.
pub fn attestation_public(data_dir: &std::path::Path) -> Result<PublicKey, crate::evidence::KeyError> {
    attestation_key(data_dir).map(|k| k.public())
}

/// Marks overdue requests expired, forever (spawned by `serve`).
pub async fn expiry_task(app: Arc<App>) {
    loop {
        tokio::time::sleep(EXPIRY_TICK).await;
        let _ = expire_due(&app).await;
    }
}

async fn expire_due(app: &App) -> Result<(), ApiError> {
    let now = crate::when::unix_now_i64();
    let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM approval_requests WHERE state = 'pending' AND expires_at <= ?")
        .bind(now)
        .fetch_all(app.store.pool())
        .await
        .map_err(ApiError::internal)?;
    for (id,) in ids {
        let _guard = app.approvals.write.lock().await;
        if let Some(view) = load(app, &id).await? {
            if view.state == ReqState::Pending {
                let view = save(app, view, ReqState::Expired, None).await?;
                log(app, &view, "expired", json!({})).await;
            }
        }
    }
    Ok(())
}

fn bad(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/approvals", post(create).get(list))
        .route("/v1/approvals/{id}", get(one))
        .route("/v1/approvals/{id}/decide", post(decide))
        .route("/v1/approvals/{id}/withdraw", post(withdraw))
}

fn row_view(row: &sqlx::sqlite::SqliteRow) -> Result<RequestView, ApiError> {
    let body: String = row.try_get("body").map_err(ApiError::internal)?;
    let decisions: String = row.try_get("decisions").map_err(ApiError::internal)?;
    let state: String = row.try_get("state").map_err(ApiError::internal)?;
    Ok(RequestView {
        id: row.try_get("id").map_err(ApiError::internal)?,
        state: ReqState::parse(&state).ok_or_else(|| ApiError::internal(format!("stored state {state:?}")))?,
        version: row.try_get("version").map_err(ApiError::internal)?,
        created_at: row.try_get("created_at").map_err(ApiError::internal)?,
        expires_at: row.try_get("expires_at").map_err(ApiError::internal)?,
        request: serde_json::from_str(&body).map_err(ApiError::internal)?,
        decisions: serde_json::from_str(&decisions).map_err(ApiError::internal)?,
    })
}

const COLUMNS: &str = "id, state, version, created_at, expires_at, body, decisions";

async fn load(app: &App, id: &str) -> Result<Option<RequestView>, ApiError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM approval_requests WHERE id = ?"))
        .bind(id)
        .fetch_optional(app.store.pool())
        .await
        .map_err(ApiError::internal)?;
    row.as_ref().map(row_view).transpose()
}

/// Writes a new state (and a decision, if any), bumps the version, and
/// tells the watchers.
async fn save(app: &App, mut view: RequestView, state: ReqState, decision: Option<Decision>) -> Result<RequestView, ApiError> {
    if let Some(d) = decision {
        view.decisions.push(d);
    }
    view.state = state;
    view.version = app.approvals.next_version();
    sqlx::query("UPDATE approval_requests SET state = ?, version = ?, decisions = ? WHERE id = ?")
        .bind(state.as_str())
        .bind(view.version)
        .bind(serde_json::to_string(&view.decisions).map_err(ApiError::internal)?)
        .bind(&view.id)
        .execute(app.store.pool())
        .await
        .map_err(ApiError::internal)?;
    let _ = app.approvals.changes.send(view.version);
    Ok(view)
}

/// The approval log, and the webhook.
async fn log(app: &App, view: &RequestView, event: &str, detail: Value) {
    let _ = sqlx::query("INSERT INTO approval_log (at, request_id, event, detail) VALUES (?, ?, ?, ?)")
        .bind(crate::when::unix_now_i64())
        .bind(&view.id)
        .bind(event)
        .bind(detail.to_string())
        .execute(app.store.pool())
        .await;
    if let (Some(url), Some(client)) = (app.config.approval_webhook.clone(), app.approvals.client.clone()) {
        let mut shown = view.clone();
        shown.request.screen.clear();
        let body = json!({"event": event, "request": shown, "detail": detail});
        tokio::spawn(async move {
            for attempt in 0..4u32 {
                match client.post(&url).header("content-type", "application/json").body(body.to_string()).send().await {
                    Ok(r) if r.status().is_success() => return,
                    _ => tokio::time::sleep(Duration::from_millis(500u64 << attempt)).await,
                }
            }
        });
    }
}

enum Caller {
    Admin,
    /// Registered with `custos serve approver`; signs with their own key.
    /// `person` is `None` for a registration from before people were bound.
    Approver { name: String, groups: Vec<String>, public_key: String, person: Option<Person> },
    /// Signed in with the identity provider; the collector attests.
    Person { identity: crate::identity::Identity, roles: std::collections::BTreeSet<crate::identity::roles::Role> },
}

impl Caller {
    /// Whether a signed-in person holds the approver role (admin implies it).
    fn is_approver(&self) -> bool {
        match self {
            Caller::Person { roles, .. } => roles.contains(&crate::identity::roles::Role::Approver),
            Caller::Admin | Caller::Approver { .. } => true,
        }
    }

    /// Whether the caller may see and decide requests for `group`.
    fn in_group(&self, group: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Approver { groups, .. } => groups.iter().any(|g| g == group),
            Caller::Person { identity, .. } => self.is_approver() && identity.groups.iter().any(|g| g == group),
        }
    }
}

/// The name an OIDC approver's decisions carry.
fn person_name(identity: &crate::identity::Identity) -> String {
    identity.email.clone().unwrap_or_else(|| identity.subject.clone())
}

async fn caller(app: &App, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m.to_owned());
    let token = bearer(headers).ok_or_else(|| unauthorized(&AuthError::Missing.to_string()))?;
    // An ID token (three dot-separated parts) goes to the identity
    // provider's keys; the admin token obeys `[identity] admin_token`.
    if token.split('.').count() == 3 || app.store.is_admin_token(token).await? {
        return match authenticate(app, headers).await {
            Ok(Authed::Admin) => Ok(Caller::Admin),
            Ok(Authed::Person { identity, roles }) => Ok(Caller::Person { identity, roles }),
            Ok(Authed::Approver { .. }) => Err(ApiError::internal("authenticate never answers an approver")),
            Err(AuthError::Store(e)) => Err(e.into()),
            Err(e) => Err(unauthorized(&e.to_string())),
        };
    }
    type Row = (String, String, String, Option<String>, Option<String>, Option<String>);
    let row: Option<Row> = sqlx::query_as("SELECT name, groups, public_key, unix_user, oidc_issuer, oidc_subject FROM approvers WHERE token_hash = ?")
        .bind(token_hash(token))
        .fetch_optional(app.store.pool())
        .await
        .map_err(ApiError::internal)?;
    match row {
        Some((name, groups, public_key, unix_user, issuer, subject)) => {
            let oidc = issuer.zip(subject).map(|(issuer, subject)| Attestation { issuer, subject });
            let person = unix_user.map(|u| Person { unix_user: Some(u), oidc });
            let groups = groups.split(',').filter(|g| !g.is_empty()).map(str::to_owned).collect();
            Ok(Caller::Approver { name, groups, public_key, person })
        }
        None => Err(unauthorized(&AuthError::Invalid.to_string())),
    }
}

async fn create(State(app): State<Arc<App>>, headers: HeaderMap, body: axum::body::Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let forbidden = |code, m: String| ApiError::new(StatusCode::FORBIDDEN, code, m);
    let key_id = header("x-custos-key").ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "X-Custos-Key is required".into()))?;
    let signature = header("x-custos-signature")
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s.trim()).ok())
        .and_then(|s| <[u8; 64]>::try_from(s).ok())
        .ok_or_else(|| bad("malformed", "X-Custos-Signature: not a base64 ed25519 signature".into()))?;
    let host = app.store.hosts().await?.into_iter().find(|h| h.key_id == key_id);
    let host = host.ok_or_else(|| forbidden("unknown_host", format!("no host is enrolled with key {key_id}")))?;
    let key: PublicKey = host.public_key.parse().map_err(ApiError::internal)?;
    let mut signed = REQUEST_CONTEXT.as_bytes().to_vec();
    signed.extend_from_slice(&body);
    if !key.verifies(&signed, &signature) {
        return Err(forbidden("bad_signature", "the request is not signed by the host's key".into()));
    }
    let request: NewRequest = serde_json::from_slice(&body).map_err(|e| bad("malformed", format!("approval request: {e}")))?;
    validate(&request)?;
    if !host.name.is_empty() && host.name != request.host {
        return Err(forbidden("wrong_host", format!("host {:?} is enrolled as {:?}", request.host, host.name)));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let requester_token = super::store::new_token().map_err(ApiError::internal)?;
    let now = crate::when::unix_now_i64();
    let expires_at = now.saturating_add(i64::try_from(request.timeout_secs).unwrap_or(i64::MAX));
    let _guard = app.approvals.write.lock().await;
    let version = app.approvals.next_version();
    sqlx::query(
        "INSERT INTO approval_requests (id, state, version, created_at, expires_at, key_id, requester_token_hash, body, decisions)
         VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, '[]')",
    )
    .bind(&id)
    .bind(version)
    .bind(now)
    .bind(expires_at)
    .bind(&key_id)
    .bind(token_hash(&requester_token))
    .bind(serde_json::to_string(&request).map_err(ApiError::internal)?)
    .execute(app.store.pool())
    .await
    .map_err(ApiError::internal)?;
    let _ = app.approvals.changes.send(version);
    let view = RequestView { id: id.clone(), state: ReqState::Pending, version, created_at: now, expires_at, request, decisions: Vec::new() };
    log(&app, &view, "requested", json!({"key_id": key_id})).await;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "requester_token": requester_token, "expires_at": expires_at, "version": version}))))
}

fn validate(r: &NewRequest) -> Result<(), ApiError> {
    let invalid = |m: String| bad("malformed", m);
    uuid::Uuid::parse_str(&r.session).map_err(|e| invalid(format!("session {:?} is not a UUID: {e}", r.session)))?;
    if r.line_sha256.len() != 64 || !r.line_sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return Err(invalid("line_sha256 must be 64 lower-case hex digits".into()));
    }
    if r.quorum == 0 || r.quorum > 100 {
        return Err(invalid(format!("quorum {} is not between 1 and 100", r.quorum)));
    }
    if r.timeout_secs == 0 || r.timeout_secs > 7 * 24 * 3600 {
        return Err(invalid(format!("timeout_secs {} is not between 1 second and a week", r.timeout_secs)));
    }
    if r.approvers.is_empty() || r.user.is_empty() || r.host.is_empty() {
        return Err(invalid("approvers, user and host must not be empty".into()));
    }
    if r.screen.len() > MAX_SCREEN {
        return Err(invalid(format!("the screen is {} bytes; at most {MAX_SCREEN}", r.screen.len())));
    }
    Ok(())
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    state: Option<String>,
    host: Option<String>,
    user: Option<String>,
    rule: Option<String>,
    /// Case-insensitive substring of the line.
    q: Option<String>,
    after: Option<i64>,
    wait: Option<u64>,
}

async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = caller(&app, &headers).await?;
    let Query(q) = query.map_err(|e| bad("malformed", e.body_text()))?;
    let state = match q.state.as_deref() {
        None | Some("" | "all") => None,
        Some(s) => Some(ReqState::parse(s).ok_or_else(|| bad("malformed", format!("state {s:?} is not pending, approved, denied, expired or withdrawn")))?),
    };
    let wait = Duration::from_secs(q.wait.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut changes = app.approvals.changes.subscribe();
    loop {
        let mut sql = format!("SELECT {COLUMNS} FROM approval_requests WHERE 1 = 1");
        if state.is_some() {
            sql.push_str(" AND state = ?");
        }
        if q.after.is_some() {
            sql.push_str(" AND version > ?");
        }
        sql.push_str(" ORDER BY created_at, id LIMIT 20000");
        let mut query = sqlx::query(&sql);
        if let Some(s) = state {
            query = query.bind(s.as_str());
        }
        if let Some(after) = q.after {
            query = query.bind(after);
        }
        let rows = query.fetch_all(app.store.pool()).await.map_err(ApiError::internal)?;
        let needle = q.q.as_deref().map(str::to_lowercase);
        let mut out = Vec::new();
        let mut version = q.after.unwrap_or(0);
        for row in &rows {
            let v = row_view(row)?;
            version = version.max(v.version);
            let r = &v.request;
            let visible = who.in_group(&r.approvers);
            let matches = q.host.as_ref().is_none_or(|h| &r.host == h)
                && q.user.as_ref().is_none_or(|u| &r.user == u)
                && q.rule.as_ref().is_none_or(|u| &r.rule == u)
                && needle.as_ref().is_none_or(|n| r.line.to_lowercase().contains(n));
            if visible && matches {
                out.push(v);
            }
        }
        if !out.is_empty() || q.after.is_none() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(json!({"version": version, "requests": out})));
        }
        let _ = tokio::time::timeout_at(deadline, changes.recv()).await;
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OneQuery {
    after: Option<i64>,
    wait: Option<u64>,
}

/// The caller, if they may decide a request pending in `session`: they
/// may then follow that session live (`GET /v1/sessions/{id}/follow`).
/// `None` when the token is no approver's; refused when it is, but no
/// request of theirs is pending there.
pub async fn watcher(app: &App, headers: &HeaderMap, session: &str) -> Result<Option<Authed>, ApiError> {
    let Ok(who) = caller(app, headers).await else { return Ok(None) };
    let refused = || ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("no request you may decide is pending in session {session}"));
    let groups: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT json_extract(body, '$.approvers') FROM approval_requests WHERE state = 'pending' AND json_extract(body, '$.session') = ?")
        .bind(session)
        .fetch_all(app.store.pool())
        .await
        .map_err(ApiError::internal)?;
    if !groups.iter().any(|(g,)| who.in_group(g)) {
        return Err(refused());
    }
    Ok(Some(match who {
        Caller::Admin => Authed::Admin,
        Caller::Approver { name, .. } => Authed::Approver { name },
        Caller::Person { identity, roles } => Authed::Person { identity, roles },
    }))
}

/// Who may read or withdraw a request: the admin, an approver of its
/// group, or the requester (by the token `create` gave).
async fn authorize_read(app: &App, headers: &HeaderMap, id: &str) -> Result<(), ApiError> {
    let token = bearer(headers).unwrap_or_default();
    let row: Option<(String,)> = sqlx::query_as("SELECT requester_token_hash FROM approval_requests WHERE id = ?")
        .bind(id)
        .fetch_optional(app.store.pool())
        .await
        .map_err(ApiError::internal)?;
    let Some((hash,)) = row else { return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no approval request {id}"))) };
    if !token.is_empty() && token_hash(token) == hash {
        return Ok(());
    }
    let who = caller(app, headers).await?;
    let view = load(app, id).await?.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no approval request {id}")))?;
    if who.in_group(&view.request.approvers) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "not_approver", format!("only approvers of group {:?} read this request", view.request.approvers)))
    }
}

async fn one(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<OneQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RequestView>, ApiError> {
    let Query(q) = query.map_err(|e| bad("malformed", e.body_text()))?;
    authorize_read(&app, &headers, &id).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.unwrap_or(0)).min(MAX_WAIT);
    let mut changes = app.approvals.changes.subscribe();
    loop {
        let view = load(&app, &id).await?.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no approval request {id}")))?;
        if q.after.is_none_or(|a| view.version > a) || tokio::time::Instant::now() >= deadline {
            return Ok(Json(view));
        }
        let _ = tokio::time::timeout_at(deadline, changes.recv()).await;
    }
}

/// What an approver signed in with the identity provider sends: the
/// collector binds and signs it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Attest {
    verdict: Choice,
    reason: String,
}

/// A decision body, by who sends it.
enum Asked {
    Signed(Box<Decision>),
    Attest(Attest),
}

async fn decide(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>, body: axum::body::Bytes) -> Result<Json<RequestView>, ApiError> {
    let forbidden = |code, m: String| ApiError::new(StatusCode::FORBIDDEN, code, m);
    let conflict = |code, m: String| ApiError::new(StatusCode::CONFLICT, code, m);
    let who = caller(&app, &headers).await?;
    let (name, person) = match &who {
        Caller::Admin => return Err(forbidden("not_approver", "decisions are made by approvers with their own token and key, not the admin".into())),
        Caller::Approver { name, person: Some(person), .. } => (name.clone(), person.clone()),
        Caller::Approver { name, person: None, .. } => {
            return Err(forbidden(
                "no_person",
                format!(
                    "approver {name:?} was registered before approvers were bound to people, so whose decision it is cannot be told; \
                     the admin binds one with `custos serve approver-person --name {name} --unix-user USER [--oidc-issuer ISSUER --oidc-subject SUBJECT]` \
                     (token and key stay), and hosts pin the key in [approvals] trusted_keys"
                ),
            ))
        }
        Caller::Person { identity, .. } => {
            (person_name(identity), Person { unix_user: None, oidc: Some(Attestation { issuer: identity.issuer.clone(), subject: identity.subject.clone() }) })
        }
    };
    let malformed = |e: serde_json::Error| bad("malformed", format!("decision: {e}"));
    let asked = match &who {
        Caller::Person { .. } => Asked::Attest(serde_json::from_slice(&body).map_err(malformed)?),
        _ => Asked::Signed(serde_json::from_slice(&body).map_err(malformed)?),
    };
    let _guard = app.approvals.write.lock().await;
    let view = load(&app, &id).await?.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no approval request {id}")))?;
    if view.state == ReqState::Pending && view.expires_at <= crate::when::unix_now_i64() {
        let view = save(&app, view, ReqState::Expired, None).await?;
        log(&app, &view, "expired", json!({})).await;
        return Err(conflict("not_pending", format!("request {id} expired")));
    }
    if view.state != ReqState::Pending {
        return Err(conflict("not_pending", format!("request {id} is {}", view.state.as_str())).with("state", view.state.as_str().into()));
    }
    let r = &view.request;
    // Self-approval is refused by person, under any name: the requester's
    // unix user and session identity against the approver's person.
    let requester = Person { unix_user: Some(r.user.clone()), oidc: r.identity.clone() };
    let own = person.same(&requester)
        || match &who {
            Caller::Person { identity, .. } => r.identity.is_none() && (name == r.user || identity.subject == r.user),
            _ => false,
        };
    if own {
        log(&app, &view, "refused", json!({"approver": name, "person": person, "why": "self_approval"})).await;
        return Err(forbidden("self_approval", format!("{name} ({}) asked for this command and cannot approve it", person.describe())));
    }
    if !who.is_approver() {
        log(&app, &view, "refused", json!({"approver": name, "why": "not_approver"})).await;
        return Err(forbidden("not_approver", format!("{name} does not hold the approver role (see [identity.roles] approver)")));
    }
    if !who.in_group(&r.approvers) {
        log(&app, &view, "refused", json!({"approver": name, "why": "not_approver"})).await;
        return Err(forbidden("not_approver", format!("{name} is not in the approver group {:?} of rule {}", r.approvers, r.rule)));
    }
    let want = Binding { request_id: view.id.clone(), session: r.session.clone(), host: r.host.clone(), line_sha256: r.line_sha256.clone() };
    let decision = match (&who, asked) {
        (Caller::Person { identity, .. }, Asked::Attest(asked)) => {
            let key = app.approvals.attestation.get().ok_or_else(|| ApiError::internal("the collector has no attestation key"))?;
            let who = Attestation { issuer: identity.issuer.clone(), subject: identity.subject.clone() };
            Decision::attest(key, want, asked.verdict, &name, &asked.reason, who).map_err(|e| bad("bad_decision", e.to_string()))?
        }
        (Caller::Approver { public_key, .. }, Asked::Signed(decision)) => {
            if decision.approver != name {
                return Err(forbidden("wrong_approver", format!("the decision is signed as {:?}, but the token is {name:?}'s", decision.approver)));
            }
            if decision.public_key != *public_key || decision.attested.is_some() {
                return Err(forbidden("key_mismatch", format!("the decision is not signed with {name}'s registered key")));
            }
            if let Err(e) = decision.check(&want) {
                log(&app, &view, "refused", json!({"approver": name, "why": e.to_string()})).await;
                return Err(bad("bad_decision", format!("the decision is not for this request: {e}")));
            }
            *decision
        }
        _ => return Err(ApiError::internal("unreachable caller")),
    };
    if let Some(d) = view.decisions.iter().find(|d| d.approver == name || d.person.as_ref().is_some_and(|p| p.same(&person))) {
        return Err(conflict(
            "already_decided",
            format!("{} has already decided request {id} (as {}); one person decides once, under any name", person.describe(), d.approver),
        ));
    }
    let mut decision = decision;
    decision.at = crate::when::unix_now_i64();
    decision.person = Some(Box::new(person));
    let verdict = decision.verdict;
    let detail = json!({"approver": name, "verdict": verdict.as_str(), "reason": decision.reason, "attested": decision.attested});
    let quorum = r.quorum;
    let mut next = view.clone();
    next.decisions.push(decision.clone());
    let state = match verdict {
        Choice::Deny => ReqState::Denied,
        Choice::Approve if next.approvals() >= quorum => ReqState::Approved,
        Choice::Approve => ReqState::Pending,
    };
    let view = save(&app, view, state, Some(decision)).await?;
    log(&app, &view, if state == ReqState::Pending { "approval" } else { state.as_str() }, detail).await;
    Ok(Json(view))
}

async fn withdraw(State(app): State<Arc<App>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<RequestView>, ApiError> {
    let token = bearer(&headers).unwrap_or_default().to_owned();
    let _guard = app.approvals.write.lock().await;
    let row: Option<(String,)> = sqlx::query_as("SELECT requester_token_hash FROM approval_requests WHERE id = ?")
        .bind(&id)
        .fetch_optional(app.store.pool())
        .await
        .map_err(ApiError::internal)?;
    let Some((hash,)) = row else { return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no approval request {id}"))) };
    if token.is_empty() || token_hash(&token) != hash {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "not_requester", "only the requester's token withdraws a request".into()));
    }
    let view = load(&app, &id).await?.ok_or_else(|| ApiError::internal("the request vanished"))?;
    if view.state != ReqState::Pending {
        return Err(ApiError::new(StatusCode::CONFLICT, "not_pending", format!("request {id} is {}", view.state.as_str())));
    }
    let view = save(&app, view, ReqState::Withdrawn, None).await?;
    log(&app, &view, "withdrawn", json!({})).await;
    Ok(Json(view))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rstest::rstest;

    fn good() -> NewRequest {
        NewRequest {
            session: "0190f0c2-0000-7000-8000-000000000001".into(),
            host: "db-1".into(),
            user: "bob".into(),
            line: "pg_dump".into(),
            line_sha256: crate::approval::decision::line_hash("pg_dump"),
            cwd: "/".into(),
            programs: vec![],
            rule: "r".into(),
            rule_message: "m".into(),
            approvers: "dba".into(),
            quorum: 1,
            timeout_secs: 60,
            reason: None,
            screen: String::new(),
            identity: None,
        }
    }

    #[rstest]
    #[case::session_not_uuid(|r: &mut NewRequest| r.session = "s1".into(), "is not a UUID")]
    #[case::hash_short(|r: &mut NewRequest| r.line_sha256 = "abc".into(), "64 lower-case hex")]
    #[case::hash_upper(|r: &mut NewRequest| r.line_sha256 = r.line_sha256.to_uppercase(), "64 lower-case hex")]
    #[case::quorum_zero(|r: &mut NewRequest| r.quorum = 0, "quorum 0")]
    #[case::timeout_zero(|r: &mut NewRequest| r.timeout_secs = 0, "timeout_secs 0")]
    #[case::no_group(|r: &mut NewRequest| r.approvers.clear(), "must not be empty")]
    #[case::huge_screen(|r: &mut NewRequest| r.screen = "x".repeat(MAX_SCREEN + 1), "the screen is")]
    fn a_bad_request_is_refused_with_the_reason(#[case] spoil: fn(&mut NewRequest), #[case] expected: &str) {
        assert!(validate(&good()).is_ok());
        let mut r = good();
        spoil(&mut r);
        let e = validate(&r).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "malformed"));
        assert!(e.message.contains(expected), "{:?} should mention {expected:?}", e.message);
    }
}
