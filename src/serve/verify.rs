//! The verification state of a stored session: every stored chunk re-read
//! from disk and re-checked (structure, signature by the session's enrolled
//! key, seq, link to the chunk before it), so tampering with the collector's
//! own files after ingest is reported, not only bad uploads.

use super::app::App;
use super::error::ApiError;
use crate::evidence::{Chunk, Digest, PublicKey};

/// What `GET /v1/sessions/{id}` reports under `verification`.
#[derive(Debug, serde::Serialize)]
pub struct Verification {
    /// `intact` (final chunk stored, every check passed), `incomplete`
    /// (every stored chunk checks out, the final one has not arrived yet) or
    /// `failed`.
    pub state: &'static str,
    pub chunks_checked: u64,
    /// The first problem found, naming the chunk.
    pub problem: Option<String>,
}

pub async fn verify_stored(app: &App, id: &str) -> Result<Verification, ApiError> {
    let rows = app.store.chunks(id).await?;
    let state = app.store.session_state(id).await?;
    let fail = |checked: u64, problem: String| {
        app.metrics.verify_failure();
        Ok(Verification { state: "failed", chunks_checked: checked, problem: Some(problem) })
    };
    let Some(state) = state else {
        return Ok(Verification { state: "incomplete", chunks_checked: 0, problem: Some("no chunk stored".into()) });
    };
    let key = match app.store.host_key(&state.key_id).await? {
        Some(text) => match text.parse::<PublicKey>() {
            Ok(key) => key,
            Err(e) => return fail(0, format!("the session's key {} is unreadable: {e}", state.key_id)),
        },
        None => return fail(0, format!("the session's key {} is no longer enrolled", state.key_id)),
    };
    let mut prev = Digest::ZERO;
    let mut checked = 0u64;
    let mut saw_final = false;
    for (expected, row) in (0u64..).zip(&rows) {
        let seq = u64::try_from(row.seq).unwrap_or(u64::MAX);
        if seq != expected {
            return fail(checked, format!("chunk {expected} is missing"));
        }
        if saw_final {
            return fail(checked, format!("chunk {seq} follows the final chunk"));
        }
        let bytes = match app.store.read_chunk(id, seq).await {
            Ok(bytes) => bytes,
            Err(e) => return fail(checked, format!("chunk {seq}: {e}")),
        };
        let chunk = match Chunk::parse(bytes) {
            Ok(chunk) => chunk,
            Err(e) => return fail(checked, format!("chunk {seq}: {e}")),
        };
        if let Err(e) = chunk.verify(&key) {
            return fail(checked, format!("chunk {seq}: {e}"));
        }
        let env = chunk.envelope();
        if env.seq != seq || env.session.to_string() != id {
            return fail(checked, format!("chunk {seq}: its envelope says session {} seq {}", env.session, env.seq));
        }
        if env.prev != prev {
            return fail(checked, format!("chunk {seq} does not link to chunk {}", seq.saturating_sub(1)));
        }
        if chunk.hash().to_string() != row.hash {
            return fail(checked, format!("chunk {seq} changed on disk since it was received"));
        }
        prev = chunk.hash();
        saw_final = env.is_final;
        checked += 1;
    }
    Ok(Verification {
        state: if saw_final { "intact" } else { "incomplete" },
        chunks_checked: checked,
        problem: (!saw_final).then(|| "the final chunk has not arrived".to_owned()),
    })
}
