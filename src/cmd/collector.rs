//! The flags that name a collector to read from and the token to read it
//! with (`--server`, `--token`, `--token-file`): one clap block, flattened
//! into every command that reads a collector, so the flags, their defaults
//! and their order of precedence are the same everywhere.
//!
//! `custos approve` is not among them: its `--token` is an approver's
//! token (with its own environment variable and no token file), and
//! `upload`/`enroll` take `--server` only (uploads are authenticated by the
//! chunks' signatures, enrollment by a single-use token).

use std::path::PathBuf;

use crate::client::Collector;

/// Where to find a collector and the token to read it: shared by
/// `sessions`, `replay --server`, `verify --server` and `export --server`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Remote {
    /// The collector URL (default: `[collector] url` from config).
    #[arg(long)]
    pub server: Option<String>,
    /// Bearer token (else `CUSTOS_TOKEN`, `--token-file`, ~/.config/custos/token).
    #[arg(long)]
    pub token: Option<String>,
    /// A file holding the bearer token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

impl Remote {
    pub fn connect(&self) -> anyhow::Result<Collector> {
        let server = crate::client::collector_url(self.server.as_deref())?;
        let token = match crate::client::resolve_token(self.token.as_deref(), self.token_file.as_deref())? {
            Some(t) => Some(t),
            // No token given: the ID token of `custos login`, if signed in.
            None => crate::identity::signin::client_id_token()?,
        };
        Ok(Collector::new(&server, token)?)
    }
}

/// Which sessions: the filter flags `custos sessions` sends to the
/// collector and `custos replay` gives its browser. One block, so the two
/// commands take the same flags with the same syntax.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SessionFilter {
    /// Sessions of this user (replay's browser: the user name or identity
    /// contains this).
    #[arg(long)]
    pub user: Option<String>,
    /// Sessions on this host (replay's browser: the host contains this).
    #[arg(long)]
    pub host: Option<String>,
    /// Sessions still running at or after this time (unix seconds,
    /// YYYY-MM-DD, RFC 3339, '2 hours ago', @UNIX, or an age such as 2h).
    #[arg(long)]
    pub since: Option<String>,
    /// Sessions started at or before this time.
    #[arg(long)]
    pub until: Option<String>,
    /// Sessions that ran a command containing this text.
    #[arg(long)]
    pub command: Option<String>,
}
