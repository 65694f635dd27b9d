//! `custos login`, `custos logout` and the hidden `custos identity`: the
//! front ends of `crate::identity::signin`.
//!
//! `login` and `logout` manage a user's own sign-in for the clients (`custos
//! sessions`, `custos replay`, `custos approve`) or, run as root or custos
//! with `--cache-dir`, the recorder's cache. `identity` is the helper the
//! recorder spawns: a request on stdin, the identity as JSON on stdout, and
//! the exit codes of `crate::identity::exit`.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::identity::cache;
use crate::identity::signin::{obtain, runtime, SignIn};
use crate::identity::Request;

/// `custos identity`: the helper the recorder spawns. Not for people.
#[derive(clap::Args)]
pub struct HelperArgs {}

pub fn helper(_: &HelperArgs) -> anyhow::Result<ExitCode> {
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body).context("reading the request")?;
    let req: Request = serde_json::from_slice(&body).context("the request is not an identity request")?;
    let rt = runtime()?;
    let mut tty = std::io::stderr();
    match rt.block_on(obtain(&req, &mut tty)) {
        Ok(identity) => {
            let mut out = std::io::stdout();
            serde_json::to_writer(&mut out, &identity)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("custos: {e}");
            Ok(ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1)))
        }
    }
}

/// Where the provider and the cache are, for `login` and `logout`.
#[derive(clap::Args)]
pub struct LoginArgs {
    /// The OpenID provider (default: `[identity] issuer` of the configuration).
    #[arg(long)]
    pub issuer: Option<String>,
    /// The client id (default: `[identity] client_id`).
    #[arg(long)]
    pub client_id: Option<String>,
    /// The cache directory (default: `$XDG_CACHE_HOME/custos`; the recorder's
    /// is `<spool>/identity`).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// The user the entry is for (default: you).
    #[arg(long)]
    pub user: Option<String>,
}

impl LoginArgs {
    fn request(&self, interactive: bool) -> anyhow::Result<Request> {
        let sign_in = SignIn {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            cache_dir: self.cache_dir.clone(),
            user: self.user.clone(),
        };
        sign_in.request(interactive)
    }
}

/// `custos login`: signs in (or refreshes silently) and caches the result.
pub fn login(args: &LoginArgs) -> anyhow::Result<ExitCode> {
    let req = args.request(true)?;
    let identity = runtime()?.block_on(obtain(&req, &mut std::io::stderr()))?;
    let how = serde_json::to_value(identity.obtained)?;
    println!(
        "signed in as {} ({}) at {}, groups [{}], {}",
        identity.subject,
        identity.email.as_deref().unwrap_or("no email"),
        identity.issuer,
        identity.groups.join(", "),
        how.as_str().unwrap_or("")
    );
    Ok(ExitCode::SUCCESS)
}

/// `custos logout`: forgets the cached sign-in.
pub fn logout(args: &LoginArgs) -> anyhow::Result<ExitCode> {
    let req = args.request(false)?;
    if cache::remove(&req.cache_dir, &req.user)? {
        println!("signed out: removed the cached sign-in of {}", req.user);
    } else {
        println!("no cached sign-in for {}", req.user);
    }
    Ok(ExitCode::SUCCESS)
}
