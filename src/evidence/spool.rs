//! The chunk spool: where the recorder writes every sealed chunk before
//! anything else happens to it, and where the uploader finds them.
//!
//! ```text
//! <spool_dir>/chunks/                        0700, owned by custos
//!   <session-id>/                            one directory per session
//!     live.lock                              flocked by the recorder while it runs
//!     00000000000000000000.chunk             seq as 20-digit decimal
//!     00000000000000000001.chunk
//!     .00000000000000000002.chunk.XXXX.tmp   a write in progress (ignored)
//! ```
//!
//! **Crash safety.** A chunk is written to a temporary name, fsynced,
//! linked to its final name (never replacing one that exists), and the
//! directory fsynced. A crash, kill or power cut at any instant leaves
//! every chunk either absent or complete; readers ignore the dot-files a
//! crash can leave. A session directory is created under a dot-name, its
//! lock taken, then renamed into place, so nobody ever sees a session
//! directory that is neither locked nor finished by a live recorder.
//!
//! **Liveness.** The recorder holds an exclusive `flock` on `live.lock` for
//! the session's life. The kernel drops it when the recorder dies, however
//! it dies, so a free lock and no final chunk means the recorder was lost:
//! [`seal_orphan`] then ends the chain with a marker saying so.
//!
//! **Quota.** The spool's total chunk bytes (all sessions) are tracked; a
//! write that would pass the quota is refused with [`SpoolError::Full`] and
//! nothing is written, so the caller keeps the chunk and decides: wait for
//! the uploader to make room (throttle) or end the session. Other recorders
//! and the uploader change the total too, so it is rescanned whenever a
//! write would not fit and every [`RESCAN_EVERY`] writes: the quota can be
//! passed by what other recorders wrote since the last scan, never more.
//! [`ChunkSpool::write_over_quota`] exists for the end of a session: its
//! last chunks are written even over the quota, because a session without
//! its end would read as truncated evidence.
//!
//! **For the uploader.** A chunk leaves the spool only after the collector
//! acknowledged it. Keep the highest-numbered chunk of a session until its
//! final chunk is acknowledged: [`seal_orphan`] continues the chain from the
//! last chunk it finds (or from a [`ChainTip`] the caller remembers).

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use uuid::Uuid;

use super::chain::Found;
use super::{seal, Chunk, ChunkError, Digest, HostKey};
use crate::evidence::asciicast::{Encoder, Event};

/// The marker that ends a session whose recorder died.
pub const ORPHAN_MARKER: &str = "recorder lost: session ended abnormally";
/// Writes between rescans of the spool's total size.
pub const RESCAN_EVERY: u32 = 64;
const LOCK_NAME: &str = "live.lock";
const CHUNK_SUFFIX: &str = ".chunk";

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("spool is full: {used} bytes used of a {quota}-byte quota, {needed} more needed")]
    Full { used: u64, quota: u64, needed: u64 },
    #[error("session {0} is already being recorded into this spool")]
    Busy(Uuid),
    #[error("session directory {0} already exists")]
    Exists(PathBuf),
    #[error("chunk {seq} of session {session} is not the next one for this spool writer (expected {expected})")]
    OutOfOrder { session: Uuid, seq: u64, expected: u64 },
    #[error("{path} is not a session directory (its name must be a session id)")]
    NotASession { path: PathBuf },
    #[error("{path}: {error}")]
    Chunk { path: PathBuf, error: ChunkError },
    #[error("session {0} has no chunk to continue from")]
    NoTip(Uuid),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io { path: path.to_owned(), source }
}

/// The entries of a spool directory; `None` when it does not exist yet.
fn entries_of(root: &Path) -> Result<Option<std::fs::ReadDir>, SpoolError> {
    match std::fs::read_dir(root) {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(root)(e)),
    }
}

/// Where the spool keeps chunks.
pub fn chunks_dir(spool_dir: &Path) -> PathBuf {
    spool_dir.join("chunks")
}

/// Where chunks the collector acknowledged are kept, when
/// `[recording] keep_local` asks for a local copy: `<spool>/delivered/
/// <session-id>/`, laid out as `chunks/` is, so `custos replay`, `verify`
/// and `export` read a delivered session as they read one still waiting.
/// Not counted in the quota: the evidence is safe on the collector, and
/// [`prune_delivered`] bounds the copies by age and by the quota's size.
pub fn delivered_dir(spool_dir: &Path) -> PathBuf {
    spool_dir.join("delivered")
}

/// Moves an acknowledged chunk of `session` from the spool into its
/// delivered copy (see [`delivered_dir`]), durably: renamed on the same
/// file system, both directories synced. A chunk already moved (by another
/// uploader) is not an error.
pub fn keep_delivered(spool_dir: &Path, session: &str, chunk: &Path) -> Result<(), SpoolError> {
    let dir = delivered_dir(spool_dir).join(session);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io_err(&dir))?;
    let name = chunk.file_name().ok_or_else(|| SpoolError::Io {
        path: chunk.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a chunk file"),
    })?;
    match std::fs::rename(chunk, dir.join(name)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(chunk)(e)),
    }
    for synced in [Some(dir.as_path()), chunk.parent()].into_iter().flatten() {
        File::open(synced).and_then(|d| d.sync_all()).map_err(io_err(synced))?;
    }
    Ok(())
}

/// Removes delivered copies (see [`delivered_dir`]) last written to more
/// than `keep` before `now`, then the oldest of the rest while they take
/// more than `max_bytes`. Answers the session ids removed.
pub fn prune_delivered(spool_dir: &Path, keep: Duration, max_bytes: u64, now: std::time::SystemTime) -> Result<Vec<String>, SpoolError> {
    let root = delivered_dir(spool_dir);
    let Some(entries) = entries_of(&root)? else { return Ok(Vec::new()) };
    let mut copies = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&root))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if Uuid::parse_str(&name).is_err() {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        let written = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        let bytes: u64 = std::fs::read_dir(&path).into_iter().flatten().flatten().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum();
        copies.push((written, bytes, name, path));
    }
    copies.sort();
    let mut total: u64 = copies.iter().map(|c| c.1).sum();
    let mut removed = Vec::new();
    for (written, bytes, name, path) in copies {
        let expired = now.duration_since(written).is_ok_and(|age| age > keep);
        if !expired && total <= max_bytes {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        total = total.saturating_sub(bytes);
        removed.push(name);
    }
    Ok(removed)
}

/// The file name of chunk `seq`.
pub fn chunk_file_name(seq: u64) -> String {
    format!("{seq:020}{CHUNK_SUFFIX}")
}

/// The seq a chunk file's name gives, if it is one.
pub fn parse_chunk_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(CHUNK_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn mkdir_private(dir: &Path) -> Result<(), SpoolError> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))
}

fn fsync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// What waits in one session's chunk directory for the uploader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Waiting {
    pub chunks: usize,
    pub bytes: u64,
    /// When the oldest waiting chunk was written.
    pub oldest: Option<std::time::SystemTime>,
}

/// The chunks in `dir` (one session's directory) that the uploader has
/// not delivered yet: it deletes each chunk the collector acknowledged.
pub fn waiting(dir: &Path) -> Result<Waiting, SpoolError> {
    let mut waiting = Waiting::default();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if entry.file_name().to_str().and_then(parse_chunk_file_name).is_none() {
            continue;
        }
        // A chunk can be delivered and deleted between listing and stat.
        let Ok(meta) = entry.metadata() else { continue };
        waiting.chunks += 1;
        waiting.bytes = waiting.bytes.saturating_add(meta.len());
        if let Ok(modified) = meta.modified() {
            waiting.oldest = Some(waiting.oldest.map_or(modified, |o| o.min(modified)));
        }
    }
    Ok(waiting)
}

/// Total bytes of chunk files under `<spool>/chunks`, temporary files
/// included (they occupy the disk too).
pub fn spool_usage(spool_dir: &Path) -> Result<u64, SpoolError> {
    let root = chunks_dir(spool_dir);
    let mut total = 0u64;
    let Some(sessions) = entries_of(&root)? else { return Ok(0) };
    for session in sessions {
        let session = session.map_err(io_err(&root))?;
        let Ok(files) = std::fs::read_dir(session.path()) else { continue };
        for file in files.flatten() {
            // Files can vanish between listing and stat (the uploader).
            if let Ok(meta) = file.metadata() {
                if meta.is_file() && file.file_name().to_string_lossy().contains(CHUNK_SUFFIX) {
                    total = total.saturating_add(meta.len());
                }
            }
        }
    }
    Ok(total)
}

/// Writes one session's chunks into the spool, holding its live lock.
pub struct ChunkSpool {
    spool_dir: PathBuf,
    dir: PathBuf,
    session: Uuid,
    _lock: Flock<File>,
    quota: u64,
    used: u64,
    writes_since_scan: u32,
    next_seq: u64,
}

impl ChunkSpool {
    /// Creates the session's directory in `spool_dir` and takes its live
    /// lock. `quota` is the spool's total size limit in bytes.
    pub fn create(spool_dir: &Path, session: Uuid, quota: u64) -> Result<ChunkSpool, SpoolError> {
        let root = chunks_dir(spool_dir);
        mkdir_private(&root)?;
        let dir = root.join(session.to_string());
        if dir.exists() {
            return Err(SpoolError::Exists(dir));
        }
        // Build it under a dot-name (ignored by readers), lock, then rename:
        // nobody sees the session without its lock held.
        let staging = root.join(format!(".{session}.new"));
        std::fs::DirBuilder::new().mode(0o700).create(&staging).map_err(io_err(&staging))?;
        let lock_path = staging.join(LOCK_NAME);
        let file = File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err(&lock_path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| SpoolError::Busy(session))?;
        std::fs::rename(&staging, &dir).map_err(io_err(&dir))?;
        fsync_dir(&root)?;
        // The total is first counted by the first write, not here: this
        // runs before the shell starts, and the count walks every session
        // in the spool (start-up grew with the spool).
        Ok(ChunkSpool {
            spool_dir: spool_dir.to_owned(),
            dir,
            session,
            _lock: lock,
            quota,
            used: 0,
            writes_since_scan: RESCAN_EVERY,
            next_seq: 0,
        })
    }

    /// Writes `chunk` durably, unless that would pass the quota: then
    /// nothing is written and [`SpoolError::Full`] says by how much.
    pub fn write(&mut self, chunk: &Chunk) -> Result<(), SpoolError> {
        let needed = u64::try_from(chunk.as_bytes().len()).unwrap_or(u64::MAX);
        self.writes_since_scan += 1;
        if self.writes_since_scan >= RESCAN_EVERY || self.used.saturating_add(needed) > self.quota {
            self.rescan()?;
        }
        if self.used.saturating_add(needed) > self.quota {
            return Err(SpoolError::Full { used: self.used, quota: self.quota, needed });
        }
        self.write_over_quota(chunk)
    }

    /// Writes `chunk` durably whatever the quota says. For the end of a
    /// session only (see the module doc).
    pub fn write_over_quota(&mut self, chunk: &Chunk) -> Result<(), SpoolError> {
        let e = chunk.envelope();
        if e.session != self.session || e.seq != self.next_seq {
            return Err(SpoolError::OutOfOrder { session: e.session, seq: e.seq, expected: self.next_seq });
        }
        match write_chunk_file(&self.dir, chunk) {
            Ok(_) => {}
            // A retry after a failure past the link (the directory fsync):
            // the chunk is there already, byte for byte.
            Err(SpoolError::Exists(path)) if read_bounded(&path).ok().as_deref() == Some(chunk.as_bytes()) => {
                fsync_dir(&self.dir)?;
            }
            Err(e) => return Err(e),
        }
        self.next_seq += 1;
        self.used = self.used.saturating_add(u64::try_from(chunk.as_bytes().len()).unwrap_or(u64::MAX));
        Ok(())
    }

    /// Recounts the spool's total from the disk (other sessions, uploads).
    pub fn rescan(&mut self) -> Result<u64, SpoolError> {
        self.used = spool_usage(&self.spool_dir)?;
        self.writes_since_scan = 0;
        Ok(self.used)
    }

    /// Bytes used, as last counted, and the quota.
    pub fn usage(&self) -> (u64, u64) {
        (self.used, self.quota)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn session(&self) -> Uuid {
        self.session
    }
}

/// Temp file, fsync, link into place (refusing to replace), fsync the
/// directory.
fn write_chunk_file(dir: &Path, chunk: &Chunk) -> Result<PathBuf, SpoolError> {
    let name = chunk_file_name(chunk.envelope().seq);
    let path = dir.join(&name);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(chunk.as_bytes()).map_err(io_err(tmp.path()))?;
    tmp.as_file().sync_data().map_err(io_err(tmp.path()))?;
    tmp.persist_noclobber(&path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            SpoolError::Exists(path.clone())
        } else {
            io_err(&path)(e.error)
        }
    })?;
    fsync_dir(dir)?;
    Ok(path)
}

/// Where a session's chain ends, as far as the caller knows: enough to
/// seal the chunk that follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainTip {
    pub session: Uuid,
    pub seq: u64,
    pub hash: Digest,
    pub last_us: u64,
    pub is_final: bool,
}

impl ChainTip {
    pub fn of(chunk: &Chunk) -> ChainTip {
        let e = chunk.envelope();
        ChainTip { session: e.session, seq: e.seq, hash: chunk.hash(), last_us: e.last_us, is_final: e.is_final }
    }
}

/// A session directory in a spool, for reading back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDir {
    path: PathBuf,
    session: Uuid,
}

impl SessionDir {
    /// A directory named after its session id.
    pub fn open(path: &Path) -> Result<SessionDir, SpoolError> {
        let session = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| Uuid::parse_str(n).ok())
            .ok_or_else(|| SpoolError::NotASession { path: path.to_owned() })?;
        if !path.is_dir() {
            return Err(SpoolError::NotASession { path: path.to_owned() });
        }
        Ok(SessionDir { path: path.to_owned(), session })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn session(&self) -> Uuid {
        self.session
    }

    /// The chunk files, by the seq their names give, in order. Files whose
    /// names are not `<20 digits>.chunk` are not listed.
    pub fn chunk_files(&self) -> Result<Vec<(u64, PathBuf)>, SpoolError> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.path).map_err(io_err(&self.path))? {
            let entry = entry.map_err(io_err(&self.path))?;
            let name = entry.file_name();
            if let Some(seq) = name.to_str().and_then(parse_chunk_file_name) {
                files.push((seq, entry.path()));
            }
        }
        files.sort();
        Ok(files)
    }

    /// Every chunk file's bytes, labelled and placed by its name, for
    /// [`super::verify_chain`]. Also lists other `*.chunk` files (with no
    /// place) so nothing put into the directory goes unexamined.
    pub fn found(&self) -> Result<Vec<Found>, SpoolError> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.path).map_err(io_err(&self.path))? {
            let entry = entry.map_err(io_err(&self.path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(CHUNK_SUFFIX) {
                continue;
            }
            let path = entry.path();
            out.push(read_found(&path, parse_chunk_file_name(&name))?);
        }
        out.sort_by(|a, b| (a.place, &a.label).cmp(&(b.place, &b.label)));
        Ok(out)
    }

    /// The chunks, parsed, in seq order. The first file that does not parse
    /// is an error naming it (use [`SessionDir::found`] and verification to
    /// examine a damaged session).
    pub fn chunks(&self) -> Result<Vec<Chunk>, SpoolError> {
        let mut chunks = Vec::new();
        for (_, path) in self.chunk_files()? {
            chunks.push(read_chunk(&path)?);
        }
        Ok(chunks)
    }

    /// True while a recorder holds the session's live lock.
    pub fn is_live(&self) -> bool {
        let Ok(file) = File::open(self.path.join(LOCK_NAME)) else { return false };
        match Flock::lock(file, FlockArg::LockSharedNonblock) {
            Ok(_) => false,
            Err((_, e)) => e == nix::Error::EWOULDBLOCK,
        }
    }

    /// The last chunk in the directory, if any.
    pub fn tip(&self) -> Result<Option<ChainTip>, SpoolError> {
        match self.chunk_files()?.last() {
            Some((_, path)) => Ok(Some(ChainTip::of(&read_chunk(path)?))),
            None => Ok(None),
        }
    }

    /// Removes chunk `seq` (after the collector acknowledged it) durably.
    pub fn remove_chunk(&self, seq: u64) -> Result<(), SpoolError> {
        let path = self.path.join(chunk_file_name(seq));
        std::fs::remove_file(&path).map_err(io_err(&path))?;
        fsync_dir(&self.path)
    }
}

/// Reads a chunk file into a [`Found`] (its bytes need not parse).
pub fn read_found(path: &Path, place: Option<u64>) -> Result<Found, SpoolError> {
    let bytes = read_bounded(path)?;
    Ok(Found { label: path.display().to_string(), place, bytes })
}

/// Reads and parses one chunk file.
pub fn read_chunk(path: &Path) -> Result<Chunk, SpoolError> {
    Chunk::parse(read_bounded(path)?).map_err(|error| SpoolError::Chunk { path: path.to_owned(), error })
}

/// A file's bytes, at most one byte past the largest chunk (so an oversized
/// file is reported as such without being read whole).
fn read_bounded(path: &Path) -> Result<Vec<u8>, SpoolError> {
    use std::io::Read as _;
    let file = File::open(path).map_err(io_err(path))?;
    let mut bytes = Vec::new();
    let limit = u64::try_from(super::envelope::MAX_CHUNK).unwrap_or(u64::MAX) + 1;
    file.take(limit).read_to_end(&mut bytes).map_err(io_err(path))?;
    Ok(bytes)
}

/// The sessions in a spool, in id order (UUID v7 ids sort by start time).
pub fn list_sessions(spool_dir: &Path) -> Result<Vec<SessionDir>, SpoolError> {
    let root = chunks_dir(spool_dir);
    let Some(entries) = entries_of(&root)? else { return Ok(Vec::new()) };
    let mut sessions = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&root))?;
        if let Ok(dir) = SessionDir::open(&entry.path()) {
            sessions.push(dir);
        }
    }
    sessions.sort_by_key(|s| s.session);
    Ok(sessions)
}

/// What [`seal_orphan`] did.
#[derive(Debug)]
pub enum Orphan {
    /// A recorder holds the lock: the session is live; nothing done.
    Live,
    /// The session already has its final chunk; nothing done.
    Complete,
    /// The final chunk it sealed and wrote (also returned for upload).
    Sealed(Chunk),
}

/// Ends the chain of a session whose recorder died: if no recorder holds
/// its lock and the last chunk (in the directory, or `known`, whichever is
/// later) is not final, seals a final chunk holding an `m` marker
/// [`ORPHAN_MARKER`] and writes it, whatever the quota. Holds the lock
/// while it works, so two uploaders cannot both do it.
pub fn seal_orphan(dir: &SessionDir, key: &HostKey, known: Option<ChainTip>) -> Result<Orphan, SpoolError> {
    let lock_path = dir.path.join(LOCK_NAME);
    let file = File::options().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err(&lock_path))?;
    let Ok(_lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
        return Ok(Orphan::Live);
    };
    let on_disk = dir.tip()?;
    let tip = match (on_disk, known.filter(|k| k.session == dir.session)) {
        (Some(a), Some(b)) => Some(if b.seq > a.seq { b } else { a }),
        (a, b) => a.or(b),
    };
    let tip = tip.ok_or(SpoolError::NoTip(dir.session))?;
    if tip.is_final {
        return Ok(Orphan::Complete);
    }
    let mut line = Vec::new();
    Encoder::default().event(Duration::ZERO, &Event::Marker(ORPHAN_MARKER), &mut line);
    let chunk = seal(key, dir.session, tip.seq + 1, tip.hash, tip.last_us, tip.last_us, true, &line);
    write_chunk_file(&dir.path, &chunk)?;
    Ok(Orphan::Sealed(chunk))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{verify_chain, PublicKey};

    /// A delivered copy of `bytes` bytes, last written `age` ago.
    fn delivered(spool: &Path, bytes: usize, age: Duration) -> String {
        let id = Uuid::now_v7().to_string();
        let waiting = chunks_dir(spool).join(&id);
        std::fs::create_dir_all(&waiting).unwrap();
        let chunk = waiting.join(chunk_file_name(0));
        std::fs::write(&chunk, vec![7u8; bytes]).unwrap();
        keep_delivered(spool, &id, &chunk).unwrap();
        assert!(!chunk.exists() && delivered_dir(spool).join(&id).join(chunk_file_name(0)).exists());
        let copy = File::open(delivered_dir(spool).join(&id)).unwrap();
        copy.set_modified(std::time::SystemTime::now() - age).unwrap();
        id
    }

    #[test]
    fn delivered_copies_go_when_too_old_then_oldest_first_beyond_the_size() {
        let spool = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(86_400);
        let expired = delivered(spool.path(), 10, 8 * day);
        let old = delivered(spool.path(), 100, 3 * day);
        let new = delivered(spool.path(), 100, day);
        let now = std::time::SystemTime::now();
        // A week, and room for both that are younger.
        assert_eq!(prune_delivered(spool.path(), 7 * day, 1000, now).unwrap(), vec![expired]);
        // Room for one: the older goes.
        assert_eq!(prune_delivered(spool.path(), 7 * day, 150, now).unwrap(), vec![old]);
        assert!(delivered_dir(spool.path()).join(&new).is_dir());
        assert!(prune_delivered(spool.path(), 7 * day, 150, now).unwrap().is_empty());
        // Moving a chunk another uploader moved already is not an error.
        keep_delivered(spool.path(), &new, &chunks_dir(spool.path()).join(&new).join(chunk_file_name(0))).unwrap();
    }
    use std::sync::Arc;

    use crate::evidence::{Chunker, ChunkerConfig};

    fn key() -> Arc<HostKey> {
        Arc::new(HostKey::from_seed([3; 32]))
    }

    fn keys(id: &crate::evidence::KeyId) -> Option<PublicKey> {
        let k = key().public();
        (k.id() == *id).then_some(k)
    }

    /// A chunker cutting every line into its own chunk.
    fn chunker(session: Uuid) -> Chunker {
        Chunker::new(key(), session, b"{\"version\":3}\n", ChunkerConfig::new(u64::MAX, 1).unwrap()).unwrap()
    }

    #[test]
    fn chunks_are_written_read_back_and_verify() {
        let spool = tempfile::tempdir().unwrap();
        let session = Uuid::now_v7();
        let mut writer = ChunkSpool::create(spool.path(), session, u64::MAX).unwrap();
        let mut c = chunker(session);
        let mut written = Vec::new();
        for i in 0..3u64 {
            for chunk in c.push(i, format!("[0.1, \"o\", \"{i}\"]\n").as_bytes()).unwrap() {
                writer.write(&chunk).unwrap();
                written.push(chunk);
            }
        }
        let last = c.finish();
        writer.write(&last).unwrap();
        written.push(last);

        let sessions = list_sessions(spool.path()).unwrap();
        assert_eq!(sessions.len(), 1);
        let dir = &sessions[0];
        assert_eq!(dir.session(), session);
        assert!(dir.is_live(), "the writer holds the lock");
        assert_eq!(dir.chunks().unwrap(), written);
        let names: Vec<String> = dir.chunk_files().unwrap().iter().map(|(_, p)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names[1], "00000000000000000001.chunk");
        let report = verify_chain(dir.found().unwrap(), Some(session), keys);
        assert!(report.is_intact(), "{:?}", report.problems);
        drop(writer);
        assert!(!dir.is_live(), "the lock goes with the writer");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_second_writer_for_the_session_is_refused_and_order_is_enforced() {
        let spool = tempfile::tempdir().unwrap();
        let session = Uuid::now_v7();
        let mut writer = ChunkSpool::create(spool.path(), session, u64::MAX).unwrap();
        assert!(matches!(ChunkSpool::create(spool.path(), session, u64::MAX), Err(SpoolError::Exists(_))));
        let mut c = chunker(session);
        let first = c.push(1, b"[0.1, \"o\", \"a\"]\n").unwrap();
        let err = writer.write(&first[1]).unwrap_err();
        assert!(matches!(err, SpoolError::OutOfOrder { seq: 1, expected: 0, .. }), "{err}");
    }

    #[test]
    fn the_quota_refuses_a_write_and_leaves_nothing_behind() {
        let spool = tempfile::tempdir().unwrap();
        let session = Uuid::now_v7();
        let mut c = chunker(session);
        let chunks: Vec<Chunk> = (0..4u64).flat_map(|i| c.push(i, b"[0.1, \"o\", \"abc\"]\n").unwrap()).collect();
        let size = chunks[0].as_bytes().len() as u64;
        let mut writer = ChunkSpool::create(spool.path(), session, size + 10).unwrap();
        writer.write(&chunks[0]).unwrap();
        let err = writer.write(&chunks[1]).unwrap_err();
        assert!(matches!(err, SpoolError::Full { used, quota, .. } if used == size && quota == size + 10), "{err}");
        assert_eq!(spool_usage(spool.path()).unwrap(), size);
        // Room made by the uploader (here: removing chunk 0) is seen.
        let dir = SessionDir::open(writer.dir()).unwrap();
        dir.remove_chunk(0).unwrap();
        writer.write(&chunks[1]).unwrap();
        // The end of a session goes in over the quota.
        writer.write_over_quota(&chunks[2]).unwrap();
        assert_eq!(dir.chunk_files().unwrap().len(), 2);
    }

    #[test]
    fn an_orphaned_session_is_sealed_once_and_then_verifies() {
        let spool = tempfile::tempdir().unwrap();
        let session = Uuid::now_v7();
        let mut writer = ChunkSpool::create(spool.path(), session, u64::MAX).unwrap();
        let mut c = chunker(session);
        for chunk in c.push(2_000_000, b"[2.0, \"o\", \"x\"]\n").unwrap() {
            writer.write(&chunk).unwrap();
        }
        let dir = SessionDir::open(writer.dir()).unwrap();
        assert!(matches!(seal_orphan(&dir, &key(), None).unwrap(), Orphan::Live));
        drop(writer); // the recorder dies

        let Orphan::Sealed(last) = seal_orphan(&dir, &key(), None).unwrap() else { panic!("not sealed") };
        assert!(last.envelope().is_final);
        assert_eq!(last.envelope().first_us, 2_000_000);
        let text = String::from_utf8(last.payload().unwrap()).unwrap();
        assert_eq!(text, format!("[0.000000, \"m\", \"{ORPHAN_MARKER}\"]\n"));
        assert!(matches!(seal_orphan(&dir, &key(), None).unwrap(), Orphan::Complete));
        let report = verify_chain(dir.found().unwrap(), Some(session), keys);
        assert!(report.is_intact(), "{:?}", report.problems);
    }

    #[test]
    fn an_orphan_whose_chunks_were_uploaded_continues_from_the_known_tip() {
        let spool = tempfile::tempdir().unwrap();
        let session = Uuid::now_v7();
        let mut writer = ChunkSpool::create(spool.path(), session, u64::MAX).unwrap();
        let mut c = chunker(session);
        let chunks = c.push(5, b"[0.1, \"o\", \"x\"]\n").unwrap();
        for chunk in &chunks {
            writer.write(chunk).unwrap();
        }
        drop(writer);
        let dir = SessionDir::open(&chunks_dir(spool.path()).join(session.to_string())).unwrap();
        dir.remove_chunk(0).unwrap();
        dir.remove_chunk(1).unwrap();
        assert!(matches!(seal_orphan(&dir, &key(), None), Err(SpoolError::NoTip(_))));
        let Orphan::Sealed(last) = seal_orphan(&dir, &key(), Some(ChainTip::of(&chunks[1]))).unwrap() else { panic!() };
        assert_eq!((last.envelope().seq, last.envelope().prev), (2, chunks[1].hash()));
    }

    #[test]
    fn readers_ignore_temporary_files_and_name_bad_chunks() {
        let spool = tempfile::tempdir().unwrap();
        let session = Uuid::now_v7();
        let writer = ChunkSpool::create(spool.path(), session, u64::MAX).unwrap();
        std::fs::write(writer.dir().join(".00000000000000000000.chunk.abc.tmp"), b"partial").unwrap();
        let dir = SessionDir::open(writer.dir()).unwrap();
        assert!(dir.found().unwrap().is_empty());
        std::fs::write(writer.dir().join(chunk_file_name(0)), b"garbage, not a chunk").unwrap();
        let err = dir.chunks().unwrap_err().to_string();
        assert!(err.contains("00000000000000000000.chunk") && err.contains("not a custos chunk"), "{err}");
        assert!(SessionDir::open(spool.path()).is_err());
        assert_eq!(parse_chunk_file_name("00000000000000000042.chunk"), Some(42));
        assert_eq!(parse_chunk_file_name("42.chunk"), None);
        assert_eq!(parse_chunk_file_name("99999999999999999999.chunk"), None, "past u64::MAX");
    }
}
