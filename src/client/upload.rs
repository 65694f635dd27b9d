//! The uploader: delivers spooled chunks to the collector (`custos upload`,
//! whose flags and report are `cmd::upload`, and the recorder's `--follow`
//! uploader).
//!
//! Invariants:
//! - Chunks of a session are sent in seq order, and a chunk file is deleted
//!   only after the collector acknowledged it (2xx). Uploads are idempotent
//!   on the collector, so a lost answer costs a resend, never a duplicate.
//! - A session directory is removed only after its final chunk is
//!   acknowledged; that acknowledgement implies every earlier chunk is stored.
//! - Network failures and 5xx answers keep the chunk and retry with
//!   exponential backoff and jitter ([`backoff`]); a refusal (4xx) keeps the
//!   chunk too, is reported, and stops that session, because resending the
//!   same bytes cannot change the answer and deleting them would lose evidence.
//! - An orphan (no live recorder holds `live.lock`, no final chunk) is sealed
//!   with a final "ended abnormally" chunk by the evidence module and then
//!   delivered like any other session.
//! - One uploader per session at a time: `upload.lock` in the session
//!   directory is flocked while a session is worked on, so the systemd timer
//!   and a recorder's `--follow` uploader never race on the same files.
//!
//! - With `[recording] keep_local`, an acknowledged chunk is moved into
//!   the session's delivered copy instead of deleted (see
//!   `evidence::spool::delivered_dir`), and every pass over the spool first
//!   prunes copies older than that, or beyond the spool quota's size.
//!
//! Spool layout (owned by the evidence module):
//! `<spool>/chunks/<session-id>/<seq, 20 digits>.chunk`, plus `live.lock`;
//! `<spool>/delivered/<session-id>/` the same, for delivered copies.

use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client::{ClientError, Collector, Head};
use crate::evidence::{Chunk, HostKey};

/// Exponential backoff with jitter: attempt 0 waits about `base`, each
/// further attempt doubles it up to `cap`; the wait is drawn from the upper
/// half of that window ("equal jitter") so that many hosts that lost the
/// collector at once do not come back in lockstep, yet none retries at once.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, random: u32) -> Duration {
    let window = base.saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX)).min(cap);
    let half = window / 2;
    let jitter = half.mul_f64(f64::from(random) / f64::from(u32::MAX));
    half + jitter
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // Without OS randomness, no jitter: still correct, merely in lockstep.
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

/// The directory holding one directory per session.
pub fn chunks_root(spool: &Path) -> PathBuf {
    crate::layout::chunks_root(spool)
}

/// The chunk files of a session directory, in seq order.
pub fn local_chunks(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".chunk") else { continue };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(seq) = stem.parse() {
                out.push((seq, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Tries to take an exclusive flock on `path` without waiting. `Ok(None)`:
/// someone else holds it.
fn try_lock(path: &Path, create: bool) -> std::io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new().read(true).write(create).create(create).mode(0o600).open(path)?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(Some(file));
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(err)
    }
}

/// Whether a live recorder still holds the session's `live.lock`.
pub fn recorder_alive(dir: &Path) -> bool {
    match try_lock(&dir.join("live.lock"), false) {
        Ok(Some(_released_on_drop)) => false,
        Ok(None) => true,
        // No lock file: nobody is recording into this directory.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        // Cannot tell: assume alive, so an active session is never sealed.
        Err(_) => true,
    }
}

/// How one pass over a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The final chunk is acknowledged and the directory removed.
    Finished,
    /// Everything present is acknowledged; the recorder is still writing.
    Waiting,
    /// Another uploader is working on this session.
    Busy,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("session {session}: {source}")]
    Collector { session: String, source: Box<ClientError> },
    #[error("session {session}: {path}: {source}")]
    Io { session: String, path: PathBuf, source: std::io::Error },
    #[error("session {session}: {reason}")]
    Stuck { session: String, reason: String },
}

impl UploadError {
    pub fn is_retryable(&self) -> bool {
        match self {
            UploadError::Collector { source, .. } => source.is_retryable(),
            UploadError::Io { .. } | UploadError::Stuck { .. } => false,
        }
    }

    /// The collector does not know this host's key (yet). Enrolling the
    /// host is what changes that, and the chunks wait safely in the spool.
    pub fn is_unenrolled(&self) -> bool {
        matches!(self, UploadError::Collector { source, .. } if source.code() == Some("unknown_key"))
    }
}

/// The uploader: a collector, a spool, and the host key for sealing orphans
/// and proving itself when it asks where a session stands (`head`).
pub struct Uploader {
    pub collector: Collector,
    pub spool: PathBuf,
    pub key: Option<HostKey>,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Keep delivered chunks locally (`[recording] keep_local`).
    pub keep: Option<KeepLocal>,
}

/// How long delivered chunks stay in the spool, and how many bytes of them
/// at most (the spool quota's size).
#[derive(Clone, Copy, Debug)]
pub struct KeepLocal {
    pub keep: Duration,
    pub max_bytes: u64,
}

impl Uploader {
    /// One pass over one session: send what is there, in order.
    pub async fn push_session(&self, session: &str) -> Result<Progress, UploadError> {
        let dir = chunks_root(&self.spool).join(session);
        let io = |path: &Path| {
            let (session, path) = (session.to_owned(), path.to_owned());
            move |source| UploadError::Io { session, path, source }
        };
        if !dir.is_dir() {
            return Ok(Progress::Finished);
        }
        let lock_path = dir.join("upload.lock");
        let _lock = match try_lock(&lock_path, true) {
            Ok(Some(lock)) => lock,
            Ok(None) => return Ok(Progress::Busy),
            // Removed under us by an uploader that just finished the session.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Progress::Finished),
            Err(e) => return Err(io(&lock_path)(e)),
        };
        if !dir.is_dir() {
            return Ok(Progress::Finished);
        }
        let collector_err = |source| UploadError::Collector { session: session.to_owned(), source: Box::new(source) };
        loop {
            let chunks = local_chunks(&dir).map_err(io(&dir))?;
            for (seq, path) in &chunks {
                let bytes = match std::fs::read(path) {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(path)(e)),
                };
                let is_final = Chunk::parse(bytes.clone()).map(|c| c.envelope().is_final).unwrap_or(false);
                match self.collector.put_chunk(session, *seq, bytes).await {
                    Ok(_ack) => {}
                    Err(e) if e.code() == Some("out_of_order") => {
                        return Err(UploadError::Stuck {
                            session: session.to_owned(),
                            reason: format!(
                                "the collector needs chunk {} before {seq}, and the spool does not have it: {e}",
                                refused_expected(&e).map_or_else(|| "?".into(), |n| n.to_string())
                            ),
                        });
                    }
                    Err(e) => return Err(collector_err(e)),
                }
                match self.keep {
                    Some(_) => crate::evidence::spool::keep_delivered(&self.spool, session, path)
                        .map_err(|e| io(path)(std::io::Error::other(e)))?,
                    None => remove_durably(path).map_err(io(path))?,
                }
                if is_final {
                    std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
                    return Ok(Progress::Finished);
                }
            }
            if recorder_alive(&dir) {
                return Ok(Progress::Waiting);
            }
            // The recorder is gone and no final chunk was written: seal the
            // orphan, then deliver the seal on the next turn of the loop.
            let head = self.collector.head(session, self.key.as_ref()).await.map_err(collector_err)?;
            if head.as_ref().is_some_and(|h| h.is_final) {
                std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
                return Ok(Progress::Finished);
            }
            self.seal_orphan(session, &dir, head.as_ref())?;
        }
    }

    fn seal_orphan(&self, session: &str, dir: &Path, head: Option<&Head>) -> Result<(), UploadError> {
        use crate::evidence::spool::{seal_orphan, Orphan};
        use crate::evidence::{ChainTip, Digest, SessionDir};
        let stuck = |reason: String| UploadError::Stuck { session: session.to_owned(), reason };
        let Some(key) = &self.key else {
            return Err(stuck("the recorder ended without a final chunk, and no host key is available to seal it (set [evidence] key or pass --key)".into()));
        };
        let spool_dir = SessionDir::open(dir).map_err(|e| stuck(e.to_string()))?;
        // Acknowledged chunks are gone from the spool; the collector's head
        // says where the chain ends.
        let known = match head {
            Some(h) => Some(ChainTip {
                session: spool_dir.session(),
                seq: h.last_seq,
                hash: h.hash.parse::<Digest>().map_err(|e| stuck(format!("the collector's head hash: {e}")))?,
                last_us: h.last_us,
                is_final: h.is_final,
            }),
            None => None,
        };
        match seal_orphan(&spool_dir, key, known) {
            Ok(Orphan::Sealed(_) | Orphan::Complete | Orphan::Live) => Ok(()),
            Err(e) => Err(stuck(format!("cannot seal the orphaned session: {e}"))),
        }
    }

    /// Delivers every session in the spool once, retrying transient failures
    /// up to `attempts` times each. Returns the sessions left behind.
    pub async fn drain(&self, attempts: u32, skip: Option<&str>) -> Vec<UploadError> {
        let mut failures = Vec::new();
        if let Err(e) = self.prune() {
            failures.push(e);
        }
        let sessions = match session_ids(&self.spool) {
            Ok(s) => s,
            Err(e) => {
                failures.push(UploadError::Io { session: "*".into(), path: chunks_root(&self.spool), source: e });
                return failures;
            }
        };
        for session in sessions.iter().filter(|s| Some(s.as_str()) != skip) {
            let mut attempt = 0;
            loop {
                match self.push_session(session).await {
                    Ok(_) => break,
                    Err(e) if e.is_retryable() && attempt + 1 < attempts => {
                        tokio::time::sleep(backoff(attempt, self.base_delay, self.max_delay, random_u32())).await;
                        attempt += 1;
                    }
                    Err(e) => {
                        failures.push(e);
                        break;
                    }
                }
            }
        }
        failures
    }

    /// Follows one live session until its final chunk is acknowledged,
    /// retrying transient failures for as long as it takes, polling the
    /// spool every `poll`. Refusals stop it with an error, except one that
    /// says the host is not enrolled: that is tried again every
    /// `max_delay` while the recorder runs.
    pub async fn follow(&self, session: &str, poll: Duration) -> Result<(), UploadError> {
        let mut attempt = 0u32;
        let mut missing_since: Option<std::time::Instant> = None;
        loop {
            let dir = chunks_root(&self.spool).join(session);
            if !dir.is_dir() {
                // Not created yet (the recorder starts us early), or already
                // delivered and removed by another uploader.
                let head = self.collector.head(session, self.key.as_ref()).await;
                match head {
                    Ok(Some(h)) if h.is_final => return Ok(()),
                    Ok(_) | Err(_) => {}
                }
                let since = *missing_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > Duration::from_secs(60) {
                    return Err(UploadError::Stuck {
                        session: session.to_owned(),
                        reason: format!("no spool directory {} appeared within a minute", dir.display()),
                    });
                }
                tokio::time::sleep(poll).await;
                continue;
            }
            missing_since = None;
            match self.push_session(session).await {
                Ok(Progress::Finished) => {
                    // A copy that cannot be pruned now is pruned by the
                    // timer's next pass; the delivery stands.
                    let _ = self.prune();
                    return Ok(());
                }
                Ok(Progress::Waiting | Progress::Busy) => {
                    attempt = 0;
                    tokio::time::sleep(poll).await;
                }
                Err(e) if e.is_retryable() => {
                    tokio::time::sleep(backoff(attempt, self.base_delay, self.max_delay, random_u32())).await;
                    attempt = attempt.saturating_add(1);
                }
                // A session started before its host was enrolled streams
                // once it is, while the recorder still runs; after that,
                // the upload timer delivers what waits.
                Err(e) if e.is_unenrolled() && recorder_alive(&dir) => tokio::time::sleep(self.max_delay).await,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Uploader {
    /// Removes the delivered copies `keep_local` no longer keeps. Answers
    /// the sessions removed.
    pub fn prune(&self) -> Result<Vec<String>, UploadError> {
        let Some(keep) = self.keep else { return Ok(Vec::new()) };
        let root = crate::evidence::spool::delivered_dir(&self.spool);
        crate::evidence::spool::prune_delivered(&self.spool, keep.keep, keep.max_bytes, std::time::SystemTime::now())
            .map_err(|e| UploadError::Io { session: "*".into(), path: root, source: std::io::Error::other(e) })
    }
}

/// The host key's path from config (`[evidence] key`).
fn refused_expected(e: &ClientError) -> Option<u64> {
    match e {
        ClientError::Refused { body, .. } => body.get("expected_seq").and_then(serde_json::Value::as_u64),
        _ => None,
    }
}

/// Session directories in the spool (names that are UUIDs).
pub fn session_ids(spool: &Path) -> std::io::Result<Vec<String>> {
    let root = chunks_root(spool);
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str() {
            if uuid::Uuid::parse_str(name).is_ok() && entry.path().is_dir() {
                out.push(name.to_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Unlinks `path` and syncs its directory, so an acknowledged chunk does not
/// come back after a crash (harmless, being idempotent, but wasteful).
fn remove_durably(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(3);
        assert_eq!(backoff(0, base, cap, 0), Duration::from_millis(50));
        assert_eq!(backoff(0, base, cap, u32::MAX), Duration::from_millis(100));
        assert_eq!(backoff(3, base, cap, 0), Duration::from_millis(400));
        assert_eq!(backoff(10, base, cap, 0), Duration::from_millis(1500));
        assert_eq!(backoff(200, base, cap, u32::MAX), cap);
        let mid = backoff(2, base, cap, u32::MAX / 2);
        assert!(mid > Duration::from_millis(200) && mid < Duration::from_millis(400), "{mid:?}");
    }

    #[test]
    fn local_chunks_are_sorted_and_skip_other_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["00000000000000000002.chunk", "00000000000000000000.chunk", "00000000000000000001.chunk", "live.lock", ".00000000000000000003.tmp", "3.chunk"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let seqs: Vec<u64> = local_chunks(dir.path()).unwrap().into_iter().map(|c| c.0).collect();
        assert_eq!(seqs, vec![0, 1, 2]);
    }

    #[test]
    fn a_held_live_lock_means_the_recorder_is_alive() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!recorder_alive(dir.path()), "no lock file: nobody records");
        let held = try_lock(&dir.path().join("live.lock"), true).unwrap().unwrap();
        // flock locks belong to the open file description: a second open
        // (as another process would) does not get it.
        assert!(recorder_alive(dir.path()));
        drop(held);
        assert!(!recorder_alive(dir.path()));
    }
}
