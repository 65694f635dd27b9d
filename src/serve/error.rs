//! The JSON shape every failure of the collector answers with:
//!
//! ```json
//! {"error": "out_of_order", "message": "chunk 5 does not follow ...", "expected_seq": 3}
//! ```
//!
//! `error` is a stable code for programs, `message` says what failed for
//! people, and any further keys ([`ApiError::with`]) carry what a program
//! needs to act (here: where to resume). A 401 also carries
//! `WWW-Authenticate: Bearer`.
//!
//! This module depends only on the store (whose faults answer 503), so every
//! route module and the authentication can use it without a cycle.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::store::StoreError;

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

    pub fn not_found(what: String) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Logged in the request's span (method and path, see `api`): a
        // fault of ours as an error, a refused credential as a warning,
        // any other refusal as information.
        let (status, code, reason) = (self.status.as_u16(), self.code, self.message.as_str());
        if self.status.is_server_error() {
            tracing::error!(status, code, reason, "request failed");
        } else if matches!(self.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            tracing::warn!(status, code, reason, "request refused");
        } else {
            tracing::info!(status, code, reason, "request refused");
        }
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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "storage", e.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A session id from a URL, in its canonical form; `malformed` otherwise.
pub fn parse_session_id(id: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed", format!("session id {id:?} is not a UUID: {e}")))
}
