//! The state of a running collector ([`App`]), shared by every route: the
//! store, the metrics, the configuration, the per-session locks that make
//! chunks of one session be decided in turn, the broadcast of arrivals for
//! live followers, the group committer, the ID token verifier and the
//! approvals' hub.
//!
//! It holds the parts; it does not route or authenticate, so it imports no
//! route module.

use std::sync::Arc;

use super::approvals::hub::Hub;
use super::config::ServeConfig;
use super::group::GroupCommitter;
use super::identity::Verifier;
use super::metrics::Metrics;
use super::store::{Store, StoreError, TokenKind};

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
    committer: std::sync::OnceLock<GroupCommitter>,
    /// ID token verification and roles, when `[identity]` is configured.
    pub identity: Option<Verifier>,
    /// Approval requests' change notifications (see `approvals`).
    pub approvals: Hub,
}

const LOCK_STRIPES: usize = 256;

impl App {
    pub fn new(store: Store, config: ServeConfig) -> Self {
        let (arrivals, _) = tokio::sync::broadcast::channel(1024);
        let identity = config.identity.clone().map(Verifier::new);
        Self {
            identity,
            store,
            metrics: Metrics::default(),
            config,
            locks: (0..LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            spare_lock: tokio::sync::Mutex::new(()),
            arrivals,
            committer: std::sync::OnceLock::new(),
            approvals: Hub::new(),
        }
    }

    /// The group committer (see `group`); call from within the runtime.
    pub fn committer(&self) -> &GroupCommitter {
        self.committer.get_or_init(|| GroupCommitter::start(self.store.clone()))
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
    pub async fn new_enroll_token(&self) -> Result<(String, i64), StoreError> {
        let now = crate::when::unix_now_i64();
        let ttl = i64::try_from(self.config.enroll_token_ttl_secs).unwrap_or(i64::MAX);
        let expires = now.saturating_add(ttl);
        Ok((self.store.create_token(TokenKind::Enroll, Some(expires), now).await?, expires))
    }
}
