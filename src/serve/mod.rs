//! `custos serve`: the collector. Hosts enroll their public key, upload
//! signed chunks, and auditors read sessions back (list, search, download,
//! follow live).
//!
//! One process, axum on tokio, SQLite plus a data directory (`store`). The
//! parts: `config` (the TOML file), `ingest` (the rules for accepting a
//! chunk), `index` (what search learns from a payload), `verify` (re-checking
//! stored sessions), `api` (routes, auth, JSON errors), `metrics`.
//!
//! Start-up contract: the bound address is printed on stdout as one line,
//! `http://IP:PORT`, once the socket listens (tests start on port 0 and read
//! it). On the first start an admin token is created, stored only as a hash,
//! and printed once on stderr. `custos serve token` creates further tokens
//! (enrollment or admin) by acting on the data directory directly: whoever
//! can write the data directory already owns the collector.

pub mod api;
pub mod audit;
pub mod approvals;
pub mod config;
pub mod group;
pub mod identity;
pub mod index;
pub mod ingest;
pub mod metrics;
pub mod store;
pub mod verify;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use config::ServeConfig;
use metrics::Metrics;
use store::{Store, TokenKind};

/// Shared state of a running collector.
pub struct App {
    pub store: Store,
    pub metrics: Metrics,
    pub config: ServeConfig,
    /// Striped per-session locks: chunks of one session are decided in turn.
    locks: Vec<tokio::sync::Mutex<()>>,
    spare_lock: tokio::sync::Mutex<()>,
    /// Session ids of newly stored chunks, for live followers.
    pub arrivals: tokio::sync::broadcast::Sender<Arc<str>>,
    /// Batches concurrent chunk rows into shared transactions (started on
    /// first use, inside the runtime).
    committer: std::sync::OnceLock<group::GroupCommitter>,
    /// ID token verification and roles, when `[identity]` is configured.
    pub identity: Option<identity::Verifier>,
    /// Approval requests' change notifications (see `approvals`).
    pub approvals: approvals::Hub,
}

const LOCK_STRIPES: usize = 256;

impl App {
    pub fn new(store: Store, config: ServeConfig) -> Self {
        let (arrivals, _) = tokio::sync::broadcast::channel(1024);
        let identity = config.identity.clone().map(identity::Verifier::new);
        Self {
            identity,
            store,
            metrics: Metrics::default(),
            config,
            locks: (0..LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            spare_lock: tokio::sync::Mutex::new(()),
            arrivals,
            committer: std::sync::OnceLock::new(),
            approvals: approvals::Hub::new(),
        }
    }

    /// The group committer (see `group`); call from within the runtime.
    pub fn committer(&self) -> &group::GroupCommitter {
        self.committer.get_or_init(|| group::GroupCommitter::start(self.store.clone()))
    }

    pub fn session_lock(&self, session: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        session.hash(&mut h);
        let i = usize::try_from(h.finish() % LOCK_STRIPES as u64).unwrap_or(0);
        // `locks` has LOCK_STRIPES entries, so `get` always finds one; the
        // spare (one lock for everything: slower, still correct) keeps the
        // no-indexing rule without a panic path.
        self.locks.get(i).unwrap_or(&self.spare_lock)
    }

    /// A new single-use enrollment token and its expiry (unix seconds).
    pub async fn new_enroll_token(&self) -> Result<(String, i64), store::StoreError> {
        let now = crate::when::unix_now_i64();
        let ttl = i64::try_from(self.config.enroll_token_ttl_secs).unwrap_or(i64::MAX);
        let expires = now.saturating_add(ttl);
        Ok((self.store.create_token(TokenKind::Enroll, Some(expires), now).await?, expires))
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Collector configuration (TOML); built-in defaults without it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Listen here instead of the configured address (port 0: any free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Use this data directory instead of the configured one.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub action: Option<Action>,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Create a token in the data directory and print it: an enrollment
    /// token for `custos enroll` (single use, expires), or another admin token.
    Token {
        #[arg(long, value_enum, default_value = "enroll")]
        kind: TokenArg,
        /// Lifetime of an enrollment token in seconds (default from config).
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Register an approver (name, groups, public key) and print their
    /// bearer token; registering a name again replaces its token and key.
    Approver {
        #[arg(long)]
        name: String,
        /// Comma-separated groups (rules name one as `approvers`).
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// The approver's public key, `ed25519:<base64>` (from `custos keygen --out FILE`).
        #[arg(long)]
        public_key: String,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum TokenArg {
    Enroll,
    Admin,
}

fn resolve_config(args: &Args) -> anyhow::Result<ServeConfig> {
    let mut config = match &args.config {
        Some(path) => ServeConfig::read(path)?,
        None => ServeConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = std::path::absolute(dir).with_context(|| format!("data dir {}", dir.display()))?;
    }
    if config.max_chunk_bytes > crate::evidence::envelope::MAX_CHUNK {
        config.max_chunk_bytes = crate::evidence::envelope::MAX_CHUNK;
    }
    Ok(config)
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let config = resolve_config(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        match &args.action {
            Some(Action::Token { kind, ttl }) => make_token(config, *kind, *ttl).await,
            Some(Action::Approver { name, groups, public_key }) => {
                let store = Store::open(&config.data_dir)
                    .await
                    .with_context(|| format!("opening the collector data in {}", config.data_dir.display()))?;
                approvals::migrate(&store).await?;
                let key: crate::evidence::PublicKey = public_key.parse()?;
                println!("{}", approvals::register_approver(&store, name, groups, &key).await?);
                Ok(ExitCode::SUCCESS)
            }
            None => serve(config).await,
        }
    })
}

async fn make_token(config: ServeConfig, kind: TokenArg, ttl: Option<u64>) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.data_dir)
        .await
        .with_context(|| format!("opening the collector data in {}", config.data_dir.display()))?;
    let now = crate::when::unix_now_i64();
    let token = match kind {
        TokenArg::Admin => store.create_token(TokenKind::Admin, None, now).await?,
        TokenArg::Enroll => {
            let ttl = i64::try_from(ttl.unwrap_or(config.enroll_token_ttl_secs)).unwrap_or(i64::MAX);
            store.create_token(TokenKind::Enroll, Some(now.saturating_add(ttl)), now).await?
        }
    };
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: ServeConfig) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.data_dir)
        .await
        .with_context(|| format!("opening the collector data in {}", config.data_dir.display()))?;
    let admin = store.ensure_admin_token(crate::when::unix_now_i64()).await?;
    approvals::migrate(&store).await.context("creating the approval tables")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let attestation = approvals::attestation_key(&config.data_dir).context("the collector's attestation key")?;
    let app = Arc::new(App::new(store, config));
    let _ = app.approvals.attestation.set(attestation);
    tokio::spawn(approvals::expiry_task(Arc::clone(&app)));
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "http://{addr}").and_then(|()| out.flush()).context("writing the address")?;
    }
    if let Some(token) = admin {
        eprintln!("custos serve: admin token (shown once; it is stored only as a hash): {token}");
    }
    axum::serve(listener, api::router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
        }
        // Without signal handlers the default actions still stop us.
        _ => std::future::pending::<()>().await,
    }
}
