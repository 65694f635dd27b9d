//! Enrollment: registers a host's public key with a collector, using a
//! single-use enrollment token from the collector's admin (`custos serve
//! token` or `POST /v1/enroll-tokens`).
//!
//! The request carries a signature of the token by the host key
//! ([`enroll_proof_message`]), so a token can only enroll a key whose
//! secret half the enrolling host holds. The flags and the message are
//! `cmd::enroll`.

use anyhow::Context as _;

use crate::client::Collector;
use crate::evidence::key::enroll_proof_message;
use crate::evidence::HostKey;

/// Enrolls `key`'s public half with the collector at `server` as `name`.
pub fn enroll(server: &str, token: &str, key: &HostKey, name: &str) -> anyhow::Result<()> {
    use base64::Engine as _;
    let public = key.public();
    let proof = base64::engine::general_purpose::STANDARD.encode(key.sign(&enroll_proof_message(token)));
    let collector = Collector::new(server, None)?;
    let runtime = crate::client::runtime()?;
    runtime
        .block_on(collector.enroll(token, &public.to_string(), &proof, name))
        .with_context(|| format!("enrolling key {} with {server}", public.id()))?;
    Ok(())
}
