//! Signing in: [`obtain`] gets an identity in the order the module
//! `identity` documents (cached, refreshed, device flow, machine), for the
//! hidden helper the recorder spawns (`custos identity`) and for `custos
//! login`; [`client_id_token`] is the clients' bearer token (`custos
//! sessions`, `replay`, `approve`) from the user's own sign-in.
//!
//! The commands' front ends (flags, output, exit codes) are
//! `crate::cmd::identity`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::cache::{self, Entry};
use super::oidc::{OidcError, Prompt, Provider, Tokens};
use super::{exit, Identity, MachineIdentity, Obtained, Request};
use crate::when::unix_now;

/// A cached ID token is used only while it stays valid this much longer.
const MIN_VALIDITY_SECS: u64 = 60;

/// Why the helper has no identity to give.
#[derive(Debug, thiserror::Error)]
pub enum ObtainError {
    #[error("no cached sign-in and no machine identity, and no terminal to sign in on")]
    NeedsLogin,
    #[error("sign-in cancelled")]
    Cancelled,
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error(transparent)]
    Cache(#[from] cache::CacheError),
    #[error("cannot read the machine identity {path}: {source}")]
    Machine { path: PathBuf, source: std::io::Error },
    #[error("the machine identity {path} is readable by others (mode {mode:o}); it must be readable only by custos (chmod 600)")]
    MachineExposed { path: PathBuf, mode: u32 },
}

impl ObtainError {
    /// The helper's exit code for this failure (see `identity::exit`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NeedsLogin => exit::NEEDS_LOGIN,
            Self::Cancelled | Self::Oidc(OidcError::TimedOut(_)) => exit::CANCELLED,
            _ => exit::FAILED,
        }
    }
}

/// Obtains an identity for `req`, in the order the module documents.
/// `tty` receives what the user must see (the sign-in prompt).
pub async fn obtain(req: &Request, tty: &mut dyn std::io::Write) -> Result<Identity, ObtainError> {
    let cached = cache::load(&req.cache_dir, &req.user, &req.issuer, &req.client_id);
    if let Some(entry) = &cached {
        if entry.identity.expires_at.is_some_and(|e| e > unix_now() + MIN_VALIDITY_SECS) {
            return Ok(Identity { obtained: Obtained::Cached, ..entry.identity.clone() });
        }
    }
    let can_refresh = cached.as_ref().is_some_and(|e| e.refresh_token.is_some());
    if !can_refresh && !req.interactive && req.machine.is_none() {
        // Nothing the provider could do for us: say so without waiting.
        return Err(ObtainError::NeedsLogin);
    }
    let mut provider = Provider::discover(&req.issuer, &req.client_id).await?;
    if let Some(refresh) = cached.as_ref().and_then(|e| e.refresh_token.clone()) {
        match provider.refresh(&refresh).await {
            Ok(tokens) => return keep(&mut provider, req, tokens, Obtained::Refresh).await,
            Err(e @ OidcError::Unreachable { .. }) => return Err(e.into()),
            // Expired or revoked: forget it and sign in afresh.
            Err(_) => {
                cache::remove(&req.cache_dir, &req.user)?;
            }
        }
    }
    if req.interactive {
        let tokens = device_login(&provider, req, tty).await?;
        return keep(&mut provider, req, tokens, Obtained::Device).await;
    }
    match &req.machine {
        Some(MachineIdentity::TokenFile(path)) => {
            let raw = read_secret(path)?;
            let identity = provider.verify(raw.trim(), unix_now(), &req.groups_claim, Obtained::Machine).await.map_err(OidcError::from)?;
            Ok(identity)
        }
        Some(MachineIdentity::ClientCredentials { client_id, secret_file }) => {
            let secret = read_secret(secret_file)?;
            let expires_at = provider.client_credentials(client_id, secret.trim()).await?;
            Ok(Identity {
                verified: true,
                issuer: req.issuer.clone(),
                subject: client_id.clone(),
                email: None,
                name: None,
                groups: Vec::new(),
                obtained: Obtained::Machine,
                id_token: None,
                expires_at,
            })
        }
        None => Err(ObtainError::NeedsLogin),
    }
}

/// Reads a machine credential, refusing one that others can read: whoever
/// can read it can act as the machine.
fn read_secret(path: &Path) -> Result<String, ObtainError> {
    use std::os::unix::fs::PermissionsExt as _;
    let machine = |source| ObtainError::Machine { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(machine)?;
    let mode = file.metadata().map_err(machine)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ObtainError::MachineExposed { path: path.to_owned(), mode });
    }
    std::io::read_to_string(file).map_err(machine)
}

/// Verifies fresh tokens and caches them.
async fn keep(provider: &mut Provider, req: &Request, tokens: Tokens, how: Obtained) -> Result<Identity, ObtainError> {
    let identity = provider.verify(&tokens.id_token, unix_now(), &req.groups_claim, how).await.map_err(OidcError::from)?;
    let entry = Entry {
        issuer: req.issuer.clone(),
        client_id: req.client_id.clone(),
        identity: identity.clone(),
        refresh_token: tokens.refresh_token,
    };
    cache::store(&req.cache_dir, &req.user, &entry)?;
    Ok(identity)
}

async fn device_login(provider: &Provider, req: &Request, tty: &mut dyn std::io::Write) -> Result<Tokens, ObtainError> {
    let timeout = Duration::from_secs(req.timeout_secs);
    let show_qr = std::io::stderr().is_terminal();
    let login = provider.device_login(&req.scopes, timeout, |p| {
        let _ = tty.write_all(prompt_text(p, show_qr).as_bytes());
        let _ = tty.flush();
    });
    tokio::select! {
        r = login => Ok(r?),
        _ = tokio::signal::ctrl_c() => Err(ObtainError::Cancelled),
    }
}

/// What the user reads: the URL, the code, and a QR code of the complete
/// URL when the terminal can show one.
pub fn prompt_text(p: &Prompt, qr: bool) -> String {
    let mut out = format!(
        "\r\ncustos: sign in to continue.\r\n  open   {}\r\n  code   {}\r\n",
        p.verification_uri, p.user_code
    );
    if let (true, Some(complete)) = (qr, &p.verification_uri_complete) {
        if let Ok(code) = qrcode::QrCode::new(complete.as_bytes()) {
            use qrcode::render::unicode::Dense1x2;
            let art = code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).build();
            out.push_str("  or scan:\r\n");
            for line in art.lines() {
                out.push_str("  ");
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
    }
    out.push_str("custos: waiting for the sign-in (Ctrl-C cancels)\r\n");
    out
}

/// The one-thread runtime the identity commands block on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")
}

/// Whose sign-in, with which provider, cached where: `custos login` and
/// `logout`'s flags, and what the clients use (all `None`: the
/// configuration's provider, the user's own cache, the user running this).
#[derive(Clone, Debug, Default)]
pub struct SignIn {
    /// The OpenID provider (default: `[identity] issuer`).
    pub issuer: Option<String>,
    /// The client id (default: `[identity] client_id`).
    pub client_id: Option<String>,
    /// The cache directory (default: `$XDG_CACHE_HOME/custos`).
    pub cache_dir: Option<PathBuf>,
    /// The user the entry is for (default: the user running this).
    pub user: Option<String>,
}

fn own_cache_dir() -> anyhow::Result<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("custos"))
        .context("neither XDG_CACHE_HOME nor HOME is set")
}

impl SignIn {
    /// The request `obtain` acts on, from these and the configuration.
    pub fn request(&self, interactive: bool) -> anyhow::Result<Request> {
        let config = crate::config::Config::load(false, std::env::var("CUSTOS_CONFIG").ok().as_deref())?;
        let id = config.identity;
        let issuer = self
            .issuer
            .clone()
            .or(id.issuer)
            .context("no identity provider: give --issuer or set [identity] issuer in custos.toml")?;
        let user = match &self.user {
            Some(u) => u.clone(),
            None => crate::recorder::account::Account::lookup(nix::unistd::getuid().as_raw())?.name,
        };
        Ok(Request {
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id: self.client_id.clone().unwrap_or(id.client_id),
            scopes: id.scopes,
            groups_claim: id.groups_claim,
            user,
            cache_dir: match &self.cache_dir {
                Some(d) => d.clone(),
                None => own_cache_dir()?,
            },
            interactive,
            timeout_secs: id.login_timeout_secs,
            machine: None,
        })
    }
}

/// The ID token of the user's own cached sign-in, refreshed silently if it
/// has expired, for the clients to send as their bearer token. With no
/// cached sign-in and a person at the terminal, it signs them in with the
/// device flow first (as `custos login` would), so `custos sessions`,
/// `replay` and `approve` need no separate step. `None` when identity is
/// not configured, or nobody signed in and nobody is there to.
pub fn client_id_token() -> anyhow::Result<Option<String>> {
    let Ok(mut req) = SignIn::default().request(false) else {
        return Ok(None);
    };
    let cached = cache::load(&req.cache_dir, &req.user, &req.issuer, &req.client_id).is_some();
    let person = std::io::IsTerminal::is_terminal(&std::io::stdin()) && std::io::IsTerminal::is_terminal(&std::io::stderr());
    if !cached && !person {
        return Ok(None);
    }
    let identity = if cached {
        runtime()?.block_on(obtain(&req, &mut std::io::sink())).context("renewing your sign-in (run `custos login`)")?
    } else {
        req.interactive = true;
        eprintln!("custos: not signed in to {}; signing in with the device flow", req.issuer);
        runtime()?.block_on(obtain(&req, &mut std::io::stderr())).context("signing in (or run `custos login`)")?
    };
    Ok(identity.id_token)
}

/// Reads a cache directory path the way `login` would (for tests and doctor).
pub fn cache_file(dir: &Path, user: &str) -> anyhow::Result<PathBuf> {
    Ok(cache::path(dir, user)?)
}
