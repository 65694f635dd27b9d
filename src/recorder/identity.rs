//! The recorder's side of identity: at session start, run the helper
//! `custos identity` as the service user and apply the user's mode
//! (`required`, `optional`, `off`) to what it answers. Standard library
//! only: the helper owns every HTTP call (see `identity` for the story).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::identity::{exit, Identity, IdentityConfig, Mode, Refused, Request, SessionIdentity};
use crate::recorder::account::Account;
use crate::recorder::privilege::Privilege;

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
    let path = crate::layout::custos_binary().map_err(|e| format!("cannot locate the custos helper: {e}"))?;
    let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    let service = privilege.clone();
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
