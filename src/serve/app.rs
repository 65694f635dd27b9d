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
    /// Per-session locks: chunks of one session are decided in turn.
    locks: SessionLocks,
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


impl App {
    pub fn new(store: Store, config: ServeConfig) -> Self {
        let (arrivals, _) = tokio::sync::broadcast::channel(1024);
        let identity = config.identity.clone().map(Verifier::new);
        Self {
            identity,
            store,
            metrics: Metrics::default(),
            config,
            locks: SessionLocks::default(),
            arrivals,
            committer: std::sync::OnceLock::new(),
            approvals: Hub::new(),
        }
    }

    /// The group committer (see `group`); call from within the runtime.
    pub fn committer(&self) -> &GroupCommitter {
        self.committer.get_or_init(|| GroupCommitter::start(self.store.clone()))
    }

    /// Waits for, then holds, the lock of `session`'s chunks: a chunk is
    /// checked against the stored chain and committed before the next
    /// chunk of the same session is looked at.
    pub async fn session_lock(&self, session: &str) -> SessionGuard<'_> {
        self.locks.lock(session).await
    }

    /// A new single-use enrollment token and its expiry (unix seconds).
    pub async fn new_enroll_token(&self) -> Result<(String, i64), StoreError> {
        let now = crate::when::unix_now_i64();
        let ttl = i64::try_from(self.config.enroll_token_ttl_secs).unwrap_or(i64::MAX);
        let expires = now.saturating_add(ttl);
        Ok((self.store.create_token(TokenKind::Enroll, Some(expires), now).await?, expires))
    }
}

/// One lock per session that has a chunk being decided, and none for the
/// others. A session's chunk holds its lock until it is committed, which
/// under load is a wait for the group commit's fsync; a lock shared by
/// several sessions (striping) would make unrelated sessions wait out each
/// other's commits, one after another.
#[derive(Default)]
struct SessionLocks {
    held: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl SessionLocks {
    async fn lock(&self, session: &str) -> SessionGuard<'_> {
        let lock = {
            let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            held.entry(session.to_owned()).or_default().clone()
        };
        SessionGuard { guard: Some(lock.lock_owned().await), session: session.to_owned(), locks: self }
    }
}

/// A held session lock; dropping it lets the next chunk of the session in,
/// and forgets the lock when nobody else waits for it.
pub struct SessionGuard<'a> {
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    session: String,
    locks: &'a SessionLocks,
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        let mut held = self.locks.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // The map's reference and this guard's: nobody else holds or waits
        // (a newcomer takes its reference under the map's lock, held here).
        if held.get(&self.session).is_some_and(|lock| Arc::strong_count(lock) == 2) {
            held.remove(&self.session);
        }
        drop(self.guard.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_waits_for_itself_only_and_its_lock_is_forgotten_after() {
        let locks = SessionLocks::default();
        let a = locks.lock("a").await;
        // Another session is not held up by `a`.
        let b = tokio::time::timeout(std::time::Duration::from_secs(5), locks.lock("b")).await.expect("b is free");
        // A second chunk of `a` waits until the first lets go.
        let waiting = locks.lock("a");
        tokio::pin!(waiting);
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), &mut waiting).await.is_err(), "a waits for a");
        drop(a);
        let a2 = tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await.expect("a's turn came");
        drop((a2, b));
        assert!(locks.held.lock().unwrap().is_empty(), "no lock is kept for sessions nobody is deciding");
    }
}
