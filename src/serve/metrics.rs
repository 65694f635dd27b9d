//! Counters for `GET /metrics`, in the Prometheus text format (version
//! 0.0.4). Process-lifetime counters live here; totals that must survive a
//! restart (sessions, chunks, bytes stored) are read from the store at scrape
//! time instead.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an upload was refused; one counter per reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    TooLarge,
    Malformed,
    Mismatch,
    UnknownKey,
    BadSignature,
    Conflict,
    OutOfOrder,
    BrokenLink,
    Closed,
    Storage,
}

impl Reject {
    const ALL: [Reject; 10] = [
        Reject::TooLarge,
        Reject::Malformed,
        Reject::Mismatch,
        Reject::UnknownKey,
        Reject::BadSignature,
        Reject::Conflict,
        Reject::OutOfOrder,
        Reject::BrokenLink,
        Reject::Closed,
        Reject::Storage,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reject::TooLarge => "too_large",
            Reject::Malformed => "malformed",
            Reject::Mismatch => "envelope_mismatch",
            Reject::UnknownKey => "unknown_key",
            Reject::BadSignature => "bad_signature",
            Reject::Conflict => "conflict",
            Reject::OutOfOrder => "out_of_order",
            Reject::BrokenLink => "broken_link",
            Reject::Closed => "session_closed",
            Reject::Storage => "storage",
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    chunks_accepted: AtomicU64,
    chunk_bytes_accepted: AtomicU64,
    chunks_duplicate: AtomicU64,
    sessions_started: AtomicU64,
    verify_failures: AtomicU64,
    rejects: [AtomicU64; Reject::ALL.len()],
}

impl Metrics {
    pub fn accepted(&self, bytes: u64, new_session: bool) {
        self.chunks_accepted.fetch_add(1, Ordering::Relaxed);
        self.chunk_bytes_accepted.fetch_add(bytes, Ordering::Relaxed);
        if new_session {
            self.sessions_started.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn duplicate(&self) {
        self.chunks_duplicate.fetch_add(1, Ordering::Relaxed);
    }

    pub fn verify_failure(&self) {
        self.verify_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reject(&self, reason: Reject) {
        let i = Reject::ALL.iter().position(|r| *r == reason);
        if let Some(counter) = i.and_then(|i| self.rejects.get(i)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The exposition text. `stored` is (sessions, chunks, bytes) from the store.
    pub fn render(&self, stored: (i64, i64, i64)) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let plain = |v: u64| vec![(String::new(), v)];
        let non_negative = |v: i64| u64::try_from(v).unwrap_or(0);
        metric("custos_chunks_received_total", "counter", "Chunks accepted since start.", &plain(get(&self.chunks_accepted)));
        metric("custos_chunk_bytes_received_total", "counter", "Bytes of accepted chunks since start.", &plain(get(&self.chunk_bytes_accepted)));
        metric("custos_chunks_duplicate_total", "counter", "Repeated uploads of an already stored chunk (answered OK).", &plain(get(&self.chunks_duplicate)));
        metric("custos_sessions_started_total", "counter", "Sessions whose chunk 0 arrived since start.", &plain(get(&self.sessions_started)));
        metric("custos_verify_failures_total", "counter", "Signature or chain verifications that failed, at upload or on re-check.", &plain(get(&self.verify_failures)));
        let rejects: Vec<(String, u64)> = Reject::ALL
            .iter()
            .zip(&self.rejects)
            .map(|(r, c)| (format!("{{reason=\"{}\"}}", r.label()), get(c)))
            .collect();
        metric("custos_chunk_rejects_total", "counter", "Uploads refused, by reason.", &rejects);
        metric("custos_sessions", "gauge", "Sessions stored.", &plain(non_negative(stored.0)));
        metric("custos_chunks", "gauge", "Chunks stored.", &plain(non_negative(stored.1)));
        metric("custos_chunk_bytes", "gauge", "Bytes of chunks stored.", &plain(non_negative(stored.2)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_labels() {
        let m = Metrics::default();
        m.accepted(100, true);
        m.accepted(50, false);
        m.reject(Reject::Conflict);
        m.reject(Reject::Conflict);
        m.verify_failure();
        let text = m.render((1, 2, 150));
        assert!(text.contains("custos_chunks_received_total 2\n"), "{text}");
        assert!(text.contains("custos_chunk_bytes_received_total 150\n"), "{text}");
        assert!(text.contains("custos_chunk_rejects_total{reason=\"conflict\"} 2\n"), "{text}");
        assert!(text.contains("custos_chunk_rejects_total{reason=\"malformed\"} 0\n"), "{text}");
        assert!(text.contains("custos_verify_failures_total 1\n"), "{text}");
        assert!(text.contains("# TYPE custos_sessions gauge\ncustos_sessions 1\n"), "{text}");
    }
}
