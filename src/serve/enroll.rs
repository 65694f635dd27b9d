//! Host keys and their enrollment: `POST /v1/enroll` (a host registers
//! its public key with a single-use token and a proof that it holds the
//! secret half), `POST /v1/enroll-tokens` (admin: a new token), `GET
//! /v1/keys` (admin: the enrolled keys).
//!
//! The proof is the key's signature over
//! [`enroll_proof_message`](crate::evidence::key::enroll_proof_message), the
//! wire fact `custos enroll` signs; it lives with the key so that neither
//! side imports the other.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use super::app::App;
use super::auth::require_role;
use super::error::{ApiError, ApiResult};
use crate::evidence::key::enroll_proof_message;
use crate::evidence::PublicKey;
use crate::identity::roles::Role;

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

pub(super) async fn enroll(State(app): State<Arc<App>>, body: axum::body::Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
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
    if !key.verifies(&enroll_proof_message(&request.token), &proof) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_proof",
            "the proof is not a signature of this token by this key".into(),
        ));
    }
    let key_id = key.id().to_string();
    let name = request.name.unwrap_or_default();
    match app.store.enroll(&request.token, &key_id, &key.to_string(), &name, crate::when::unix_now_i64()).await? {
        Ok(()) => {
            // The host pins this to verify the decisions the collector
            // attests for approvers signed in with the identity provider.
            let attestation = app.approvals.attestation.get().map(|k| k.public().to_string());
            Ok((StatusCode::CREATED, Json(json!({"key_id": key_id, "public_key": key.to_string(), "name": name, "attestation_key": attestation}))))
        }
        Err(refusal) => Err(ApiError::new(StatusCode::FORBIDDEN, "enrollment_refused", refusal.to_string())),
    }
}

pub(super) async fn create_enroll_token(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult<(StatusCode, Json<Value>)> {
    require_role(&app, &headers, Role::Admin).await?;
    let (token, expires_at) = app.new_enroll_token().await?;
    Ok((StatusCode::CREATED, Json(json!({"token": token, "expires_at": expires_at}))))
}

pub(super) async fn keys(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    require_role(&app, &headers, Role::Admin).await?;
    Ok(Json(json!({"keys": app.store.hosts().await?})))
}
