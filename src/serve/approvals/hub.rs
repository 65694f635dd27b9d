//! The approvals' live state in a running collector: the broadcast that
//! wakes long-polls when a request changes, the version counter, the lock
//! that serialises decisions, the webhook client and the attestation key.
//! The requests themselves live in SQLite (`approvals`); this is what the
//! shared [`App`](super::super::app::App) holds, so it imports nothing of
//! the collector.

use std::time::Duration;

/// Change notification and the lock that serialises decisions.
pub struct Hub {
    pub(super) changes: tokio::sync::broadcast::Sender<i64>,
    last_version: std::sync::Mutex<i64>,
    pub(super) write: tokio::sync::Mutex<()>,
    pub(super) client: Option<reqwest::Client>,
    /// Signs decisions for approvers verified by the identity provider.
    pub attestation: std::sync::OnceLock<crate::evidence::HostKey>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        Self {
            changes,
            last_version: std::sync::Mutex::new(0),
            write: tokio::sync::Mutex::new(()),
            client: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().ok(),
            attestation: std::sync::OnceLock::new(),
        }
    }

    /// A version larger than every earlier one, also across restarts: the
    /// clock in milliseconds, or one more than the last.
    pub(super) fn next_version(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let mut last = self.last_version.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *last = (*last + 1).max(now);
        *last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_only_grow() {
        let hub = Hub::new();
        let a = hub.next_version();
        let b = hub.next_version();
        assert!(b > a);
    }
}
