//! `custos serve`: the collector's command front end. Its flags and
//! actions (`init`, `token`, `approver`, `approver-person`, `attestation-key`), reading the configuration, and starting
//! the collector (`serve`): open the store, bind, print the address and the
//! first admin token, serve until SIGTERM or SIGINT.
//!
//! Start-up contract (tests rely on it): the bound address is printed on
//! stdout as one line, `http://IP:PORT`, once the socket listens. The first
//! admin token is printed once on stderr.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;

use crate::serve::app::App;
use crate::serve::config::ServeConfig;
use crate::serve::store::{Store, TokenKind};
use crate::when::unix_now_i64 as unix_now;
use crate::serve::{api, approvals};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Collector configuration (TOML); built-in defaults without it.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Listen here instead of the configured address (port 0: any free
    /// port). Default: `listen` in --config, else 127.0.0.1:8470.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Use this data directory (the database and large chunks) instead of
    /// the configured one. Default: `data_dir` in --config, else
    /// /var/lib/custos-collector.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// How the collector logs to stderr: lines for people, or one JSON
    /// object per line for a log pipeline (journald keeps either).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// The least severe events logged: error, warn, info, or debug (debug
    /// adds a line per request, with its status and time).
    #[arg(long, default_value = "info", value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: String,
    #[command(subcommand)]
    pub action: Option<Action>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Sends the collector's events to stderr in `format`, from `level` up.
/// The libraries' own events (sqlx logs every statement at debug) only
/// from warnings up.
fn start_logging(format: LogFormat, level: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level: tracing::Level = level.parse().unwrap_or(tracing::Level::INFO);
    let ours = tracing_subscriber::filter::Targets::new().with_target("custos", level).with_default(tracing::Level::WARN);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false);
    // Another subscriber already set (a test harness): keep it.
    let _ = match format {
        LogFormat::Text => tracing_subscriber::registry().with(layer.with_ansi(false)).with(ours).try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().flatten_event(true).with_current_span(true).with_span_list(false))
            .with(ours)
            .try_init(),
    };
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Prepare the data directory (database, attestation key, the first
    /// admin token, shown once) and print the steps from here to a fleet.
    Init,
    /// Create a token in the data directory and print it: an enrollment
    /// token for `custos enroll` (single use, expires), or another admin token.
    Token {
        #[arg(long, value_enum, default_value = "enroll")]
        kind: TokenArg,
        /// Lifetime of an enrollment token in seconds (default from config).
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Register an approver (name, groups, public key, the person it is)
    /// and print their bearer token; registering a name again replaces its
    /// token and key. Hosts pin the key in `[approvals] trusted_keys`.
    Approver {
        #[arg(long)]
        name: String,
        /// Comma-separated groups (rules name one as `approvers`).
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// The approver's public key, `ed25519:<base64>` (from `custos keygen --out FILE`).
        #[arg(long)]
        public_key: String,
        #[command(flatten)]
        person: PersonArgs,
    },
    /// Bind an existing approver registration to a person, keeping its
    /// token, key and groups (registrations from before approvers were
    /// bound to people need this before they may decide).
    ApproverPerson {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        person: PersonArgs,
    },
    /// Print the collector's attestation public key, for hosts to pin as
    /// `[approvals] collector_key` (`custos enroll` pins it by itself).
    AttestationKey,
}

/// The person an approver registration binds.
#[derive(clap::Args, Debug)]
pub struct PersonArgs {
    /// The approver's unix user on the hosts: a requester with this user
    /// cannot approve their own line under any approver name.
    #[arg(long)]
    unix_user: String,
    /// The approver's OIDC issuer, if they also sign in with the identity
    /// provider (with --oidc-subject).
    #[arg(long, requires = "oidc_subject")]
    oidc_issuer: Option<String>,
    /// The approver's OIDC subject (with --oidc-issuer).
    #[arg(long, requires = "oidc_issuer")]
    oidc_subject: Option<String>,
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
            Some(Action::Init) => init(&config, args.config.as_deref()).await,
            Some(Action::Token { kind, ttl }) => make_token(config, *kind, *ttl).await,
            Some(Action::Approver { name, groups, public_key, person }) => {
                let store = Store::open(&config.data_dir)
                    .await
                    .with_context(|| format!("opening the collector data in {}", config.data_dir.display()))?;
                approvals::migrate(&store).await?;
                let key: crate::evidence::PublicKey = public_key.parse()?;
                let oidc = (person.oidc_issuer.as_deref(), person.oidc_subject.as_deref());
                println!("{}", approvals::register_approver(&store, name, groups, &key, &person.unix_user, oidc).await?);
                Ok(ExitCode::SUCCESS)
            }
            Some(Action::ApproverPerson { name, person }) => {
                let store = Store::open(&config.data_dir)
                    .await
                    .with_context(|| format!("opening the collector data in {}", config.data_dir.display()))?;
                approvals::migrate(&store).await?;
                let oidc = (person.oidc_issuer.as_deref(), person.oidc_subject.as_deref());
                approvals::bind_person(&store, name, &person.unix_user, oidc).await?;
                println!("approver {name:?} is unix user {}", person.unix_user);
                Ok(ExitCode::SUCCESS)
            }
            Some(Action::AttestationKey) => {
                std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
                println!("{}", approvals::attestation_public(&config.data_dir).context("the collector's attestation key")?);
                Ok(ExitCode::SUCCESS)
            }
            None => {
                start_logging(args.log_format, &args.log_level);
                serve(config, args.log_format).await
            }
        }
    })
}

/// `custos serve init`: what the first start would make, made now, and
/// the walk from here to hosts that stream to this collector.
async fn init(config: &ServeConfig, config_path: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let dir = &config.data_dir;
    let store = Store::open(dir).await.with_context(|| format!("preparing the collector data in {}", dir.display()))?;
    let admin = store.ensure_admin_token(unix_now()).await?;
    approvals::migrate(&store).await.context("creating the approval tables")?;
    let attestation = approvals::attestation_public(dir).context("the collector's attestation key")?;
    let serve = match config_path {
        Some(path) => format!("custos serve --config {}", path.display()),
        None => format!("custos serve --data-dir {}", dir.display()),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "custos serve init: the collector's data is in {} (mode 0700).", dir.display())?;
    match admin {
        Some(token) => {
            writeln!(out, "\nAdmin token (shown once; only its hash is kept):\n\n    {token}\n")?;
            writeln!(out, "Keep it for the auditors' and admins' tools: export CUSTOS_TOKEN=..., or a file of mode 0600")?;
            writeln!(out, "passed with --token-file. Make more with: custos serve token --kind admin")?;
        }
        None => {
            writeln!(out, "\nIt was prepared before: its admin token was shown then. Make another with:")?;
            writeln!(out, "    custos serve token --kind admin --data-dir {}", dir.display())?;
        }
    }
    writeln!(out, "\nThe attestation key hosts pin (custos enroll pins it): {attestation}")?;
    writeln!(
        out,
        "\nNext:
  1. Start it: {serve}
     (or: systemctl enable --now custos-collector, which install.sh --collector installs).
     It listens on {listen}. Hosts on other machines need https: put a TLS proxy in
     front of it, as hosts send plain http only to loopback.
  2. For each host, make an enrollment token here (single use, {ttl} h):
         custos serve token --data-dir {dir}
  3. On the host, as root: custos enroll --server https://COLLECTOR:{port} --token TOKEN
     and in /etc/custos/custos.toml:
         [collector]
         url = \"https://COLLECTOR:{port}\"
  4. On the host: custos doctor (it checks that the collector answers and knows the host).
  5. Read what arrives: custos sessions --server https://COLLECTOR:{port} (with CUSTOS_TOKEN set).",
        listen = config.listen,
        port = config.listen.port(),
        ttl = config.enroll_token_ttl_secs / 3600,
        dir = dir.display(),
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn make_token(config: ServeConfig, kind: TokenArg, ttl: Option<u64>) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.data_dir)
        .await
        .with_context(|| format!("opening the collector data in {}", config.data_dir.display()))?;
    let now = unix_now();
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

async fn serve(config: ServeConfig, log_format: LogFormat) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.data_dir)
        .await
        .with_context(|| format!("opening the collector data in {}", config.data_dir.display()))?;
    let admin = store.ensure_admin_token(unix_now()).await?;
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
    tracing::info!(address = %format!("http://{addr}"), data_dir = %app.config.data_dir.display(), version = crate::VERSION, "listening");
    if let Some(token) = admin {
        match log_format {
            // The line scripts and the first-start docs look for.
            LogFormat::Text => eprintln!("custos serve: admin token (shown once; it is stored only as a hash): {token}"),
            LogFormat::Json => tracing::warn!(token = %token, "admin token (shown once; it is stored only as a hash)"),
        }
    }
    if let Some(listen) = app.config.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening for metrics on {listen}"))?;
        let addr = metrics.local_addr().context("reading the metrics address")?;
        tracing::info!(address = %format!("http://{addr}/metrics"), "metrics without a token");
        let router = api::metrics_router(Arc::clone(&app));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics, router).await {
                tracing::error!(error = %e, "the metrics address stopped");
            }
        });
    }
    axum::serve(listener, api::router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("stopped");
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

#[cfg(test)]
mod help_tests {
    use super::*;

    /// `custos serve --help` names the defaults, and they are the ones the
    /// configuration uses.
    #[test]
    fn the_help_names_the_real_defaults() {
        let help = <Args as clap::Args>::augment_args(clap::Command::new("serve")).render_long_help().to_string();
        for default in [crate::serve::config::DEFAULT_LISTEN, crate::serve::config::DEFAULT_DATA_DIR] {
            assert!(help.contains(default), "{default} is not in:\n{help}");
        }
    }
}
