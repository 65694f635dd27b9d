//! Identity: every session bound to an OpenID Connect identity.
//!
//! The story at session start (`custos-shell`, before the shell runs):
//!
//! 1. [`IdentityConfig::mode_for`] decides whether this user needs a
//!    verified identity (`required`), may go on without one (`optional`),
//!    or is not asked (`off`).
//! 2. The recorder spawns the helper `custos identity` (`cmd::identity`), as the
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

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

pub use config::{IdentityConfig, MachineIdentity, Mode};

use crate::recorder::account::Account;
use crate::recorder::privilege::Privilege;

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

/// The helper binary: `custos`, installed next to `custos-shell`.
fn helper_path() -> std::io::Result<PathBuf> {
    crate::recorder::uploader::custos_binary()
}

/// Where the recorder keeps identities: inside its own spool.
pub fn cache_dir(spool: &Path) -> PathBuf {
    spool.join("identity")
}

/// Obtains the session's identity at start, applying the user's mode.
/// Errors only when the mode is `required` and no identity was obtained.
pub fn at_session_start(
    cfg: &IdentityConfig,
    account: &Account,
    privilege: &Privilege,
    spool: &Path,
    interactive: bool,
) -> Result<SessionIdentity, Refused> {
    let mode = cfg.mode_for(&account.name, &account.groups);
    let Some(issuer) = cfg.issuer.clone().filter(|_| mode != Mode::Off) else {
        return Ok(SessionIdentity::default());
    };
    let request = Request {
        issuer,
        client_id: cfg.client_id.clone(),
        scopes: cfg.scopes.clone(),
        groups_claim: cfg.groups_claim.clone(),
        user: account.name.clone(),
        cache_dir: cache_dir(spool),
        interactive,
        timeout_secs: cfg.login_timeout_secs,
        machine: cfg.machine.clone(),
    };
    match run_helper(&request, privilege) {
        Ok(identity) => {
            let groups = identity.groups.clone();
            Ok(SessionIdentity { header: serde_json::to_value(&identity).ok(), groups })
        }
        Err(reason) if mode == Mode::Required => Err(Refused { reason }),
        Err(reason) => {
            eprintln!("custos-shell: continuing without a verified identity ({reason}); this session is marked unverified");
            Ok(SessionIdentity {
                header: Some(serde_json::json!({"verified": false, "reason": reason})),
                groups: Vec::new(),
            })
        }
    }
}

/// Runs `custos identity` as the service user and reads its answer.
/// Returns a sentence saying what went wrong otherwise.
fn run_helper(request: &Request, privilege: &Privilege) -> Result<Identity, String> {
    use std::os::unix::process::CommandExt as _;
    let path = helper_path().map_err(|e| format!("cannot locate the custos helper: {e}"))?;
    let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let service = *privilege;
    let mut cmd = Command::new(&path);
    cmd.arg("identity").env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    if let Ok(term) = std::env::var("TERM") {
        cmd.env("TERM", term);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    // SAFETY: between fork and exec the closure only makes system calls
    // (setresgid/setresuid/getresuid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || service.drop_to_service().map_err(|_| std::io::Error::from_raw_os_error(libc::EPERM)));
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    // Ctrl-C during sign-in reaches the helper (same terminal), which
    // cancels; the recorder stays to report it.
    let ignored = ignore_interrupts();
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&body);
    }
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_end(&mut out);
    }
    let status = child.wait();
    restore_interrupts(ignored);
    let status = status.map_err(|e| format!("waiting for the custos helper: {e}"))?;
    match status.code() {
        Some(0) => serde_json::from_slice(&out).map_err(|e| format!("the custos helper's answer is not an identity: {e}")),
        Some(exit::NEEDS_LOGIN) => Err(format!(
            "no signed-in identity is cached for {} and no machine identity is configured; sign in once from an interactive session (ssh -t), or configure [identity.machine]",
            request.user
        )),
        Some(exit::CANCELLED) => Err("sign-in cancelled or timed out".into()),
        Some(exit::FAILED) => Err(format!("sign-in with {} failed (see the message above)", request.issuer)),
        _ => Err(format!("the custos helper ended abnormally ({status})")),
    }
}

type Saved = Vec<(nix::sys::signal::Signal, nix::sys::signal::SigHandler)>;

fn ignore_interrupts() -> Saved {
    use nix::sys::signal::{signal, SigHandler, Signal};
    let mut saved = Vec::new();
    for sig in [Signal::SIGINT, Signal::SIGQUIT] {
        // SAFETY: installing SIG_IGN is always sound.
        if let Ok(old) = unsafe { signal(sig, SigHandler::SigIgn) } {
            saved.push((sig, old));
        }
    }
    saved
}

fn restore_interrupts(saved: Saved) {
    for (sig, old) in saved {
        // SAFETY: restores the handler that was installed before.
        let _ = unsafe { nix::sys::signal::signal(sig, old) };
    }
}
