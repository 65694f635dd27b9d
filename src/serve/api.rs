//! The collector's HTTP surface: the route table ([`ROUTES`], [`router`])
//! and the service's own routes (`/healthz`, `/metrics`,
//! `/openapi.json`). The handlers live with their route group (`ingest`,
//! `sessions`, `enroll`, `audit`, `approvals`); authentication and roles
//! are `auth`, the JSON error shape is `error`.
//!
//! Uploads are authenticated by the chunk's own signature (an enrolled host
//! key), so `PUT .../chunks/{seq}` needs no token, and `GET .../head` takes
//! the host's signature or a reader's token (`ingest`). `/metrics` takes the
//! configured metrics token or an auditor's, or is scraped without one on
//! the separate `metrics_listen` address. `/healthz` and `/openapi.json`
//! are open; everything else needs a bearer token (`auth`).
//! `docs/openapi.json` describes every route in [`ROUTES`].

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::app::App;
use super::error::{ApiError, ApiResult};
use super::{approvals, audit, enroll, ingest, sessions};

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

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/enroll", post(enroll::enroll))
        .route("/v1/enroll-tokens", post(enroll::create_enroll_token))
        .route("/v1/keys", get(enroll::keys))
        .route("/v1/alerts", get(sessions::alerts))
        .route("/v1/sessions", get(sessions::list_sessions))
        .route("/v1/sessions/{id}", get(sessions::session))
        .route("/v1/sessions/{id}/head", get(ingest::head))
        .route("/v1/sessions/{id}/cast", get(sessions::cast))
        .route("/v1/sessions/{id}/chunks", get(sessions::chunk_list))
        .route("/v1/sessions/{id}/chunks/{seq}", get(sessions::chunk_bytes).put(ingest::upload))
        .route("/v1/sessions/{id}/follow", get(sessions::follow))
        .route("/v1/sessions/{id}/markers", get(audit::markers))
        .route("/v1/audit/access", get(audit::list))
        .merge(approvals::routes())
        .fallback(|| async { ApiError::not_found("no such route".into()) })
        .layer(axum::middleware::from_fn(log_request))
        .with_state(app)
}

/// Every request runs in a span naming its method and path, so what is
/// logged while it is served says which request it was; it ends with one
/// debug line with the status and the time taken.
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument as _;
    let span = tracing::info_span!("request", method = %request.method(), path = %request.uri().path());
    let started = std::time::Instant::now();
    async move {
        let response = next.run(request).await;
        tracing::debug!(status = response.status().as_u16(), micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX), "served");
        response
    }
    .instrument(span)
    .await
}

async fn healthz(State(app): State<Arc<App>>) -> ApiResult<Json<Value>> {
    app.store.totals().await?;
    Ok(Json(json!({"status": "ok"})))
}

/// `/metrics` on the main address: the metrics token, or an auditor.
async fn metrics(State(app): State<Arc<App>>, headers: axum::http::HeaderMap) -> ApiResult<Response> {
    let token = super::auth::bearer(&headers);
    let by_token = match (token, app.config.metrics_token.as_deref()) {
        (Some(t), Some(want)) => {
            use sha2::Digest as _;
            // Compared as digests, so the time taken says nothing of the token.
            sha2::Sha256::digest(t.as_bytes()) == sha2::Sha256::digest(want.as_bytes())
        }
        _ => false,
    };
    if !by_token {
        if token.is_none() {
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "unauthorized",
                "GET /metrics needs a bearer token: the collector's metrics_token, or an auditor's (or scrape the metrics_listen address)".into(),
            ));
        }
        super::auth::require_role(&app, &headers, crate::identity::roles::Role::Auditor).await?;
    }
    open_metrics(State(app)).await
}

/// The metrics themselves: what the `metrics_listen` address serves
/// without a token.
pub async fn open_metrics(State(app): State<Arc<App>>) -> ApiResult<Response> {
    let totals = app.store.totals().await?;
    let mut response = app.metrics.render(totals).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(response)
}

/// The router of the `metrics_listen` address: `/metrics` only, no token.
pub fn metrics_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", get(open_metrics))
        .fallback(|| async { ApiError::not_found("only /metrics is served here".into()) })
        .with_state(app)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
