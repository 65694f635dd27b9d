//! Identity: every session bound to an OpenID Connect identity.
//!
//! The story at session start (`custos-shell`, before the shell runs):
//!
//! 1. [`IdentityConfig::mode_for`] decides whether this user needs a
//!    verified identity (`required`), may go on without one (`optional`),
//!    or is not asked (`off`).
//! 2. The recorder (`recorder::identity`) spawns the helper `custos identity` (`cmd::identity`), as the
//!    `custos` service user, with a cleared environment and the request on
//!    its stdin. The helper owns everything that talks HTTP, so
//!    `custos-shell` links no HTTP client, no TLS and no async runtime. Its
//!    stderr is the user's terminal: that is where the verification URL,
//!    the user code and a QR code appear. Its stdout is the identity, JSON.
//! 3. The helper uses, in order: a cached ID token still valid for a minute;
//!    the cached refresh token (no prompt); the device authorization grant
//!    when a human is at a terminal; the machine identity for `-c`, CI and
//!    scp; and otherwise fails without waiting for anyone.
//! 4. The identity goes into the session header (signed chunk 0), raw ID
//!    token included, so the collector can verify it independently. Its
//!    groups join the policy subject (`oidc_groups`).
//!
//! The cache lives in the custos-owned spool (`<spool>/identity/<user>.json`,
//! mode 0600), written only by the helper running as `custos`: the recorded
//! user can neither read the refresh token nor plant an identity.

pub mod cache;
pub mod config;
pub mod oidc;
pub mod roles;
pub mod signin;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use config::{IdentityConfig, MachineIdentity, Mode};


/// How the identity of a session was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Obtained {
    /// A sign-in with the device authorization grant, just now.
    Device,
    /// A silent refresh with the cached refresh token.
    Refresh,
    /// The cached ID token, still valid.
    Cached,
    /// The configured machine identity (no human present).
    Machine,
}

/// Who a session belongs to, as written in the header and the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The recorder checked the ID token's signature, issuer, audience and
    /// expiry. The collector checks again and decides for itself.
    pub verified: bool,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub obtained: Obtained,
    /// The raw ID token (a signed JWT); `None` for client credentials.
    pub id_token: Option<String>,
    /// When the ID token expires, unix seconds.
    pub expires_at: Option<u64>,
}

/// What the recorder asks the helper, on the helper's stdin. Everything the
/// helper acts on comes from here, decided by the recorder from the
/// root-owned configuration; the helper's environment is empty.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    /// The unix user the identity is for (names the cache entry).
    pub user: String,
    pub cache_dir: PathBuf,
    /// A human at a terminal: the device flow may be shown.
    pub interactive: bool,
    pub timeout_secs: u64,
    pub machine: Option<MachineIdentity>,
}

/// Helper exit codes, beyond 0 (identity on stdout).
pub mod exit {
    /// No cached identity, no machine identity, and no human to sign in.
    pub const NEEDS_LOGIN: i32 = 3;
    /// The provider was unreachable or refused.
    pub const FAILED: i32 = 4;
    /// The user cancelled the sign-in (Ctrl-C) or it timed out.
    pub const CANCELLED: i32 = 5;
}

/// What the session gets from identity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionIdentity {
    /// The header's `identity` value: `null` when off.
    pub header: Option<serde_json::Value>,
    /// OIDC groups for the policy subject (empty when unverified).
    pub groups: Vec<String>,
}

/// Why a session may not start.
#[derive(Debug, thiserror::Error)]
#[error("no verified identity, and this account requires one: {reason}")]
pub struct Refused {
    pub reason: String,
}
