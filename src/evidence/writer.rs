//! The recorder's one object for evidence: events in, signed chunks on
//! disk. It joins the encoder, the [`Chunker`] and the [`ChunkSpool`], and
//! keeps sealed chunks that could not be written yet, so that nothing is
//! ever dropped.
//!
//! When the spool is full (or the disk is: `ENOSPC` is treated the same),
//! sealed chunks wait in memory and every call answers
//! [`WriteStatus::Full`]. The recorder then applies the configured
//! [`WhenFull`]: `Throttle` stops reading the session's output (the PTY
//! fills, the program blocks) and calls [`EvidenceWriter::tick`] until the
//! answer is [`WriteStatus::Stored`]; `End` ends the session, whose last
//! chunks [`EvidenceWriter::finish`] writes over the quota. Memory stays
//! bounded as long as the recorder stops feeding events while full.
//!
//! Other write errors keep the chunk pending too, and are returned; `tick`
//! retries them.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::spool::ChainTip;
use super::{Chunk, ChunkSpool, Chunker, ChunkerConfig, ChunkerError, HostKey, SpoolError};
use crate::evidence::asciicast::{Encoder, Event, Header};

/// What the recorder does when the spool is full (`[evidence] when_full`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Slow the session's output to what can be stored.
    #[default]
    Throttle,
    /// End the session with a message.
    End,
}

/// Whether every sealed chunk is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStatus {
    Stored,
    /// The spool (or the disk) is full; `pending_chunks` chunks
    /// (`pending_bytes` bytes) wait in memory. Apply [`WhenFull`].
    Full { pending_chunks: usize, pending_bytes: usize, used: u64, quota: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error(transparent)]
    Chunker(#[from] ChunkerError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("the recording's session id {0:?} is not a UUID")]
    SessionId(String),
    #[error("the recording was already finished")]
    Finished,
}

/// A session's evidence being written. See the module doc.
pub struct EvidenceWriter {
    chunker: Option<Chunker>,
    encoder: Encoder,
    spool: ChunkSpool,
    pending: VecDeque<Chunk>,
    line: Vec<u8>,
    tip: Option<ChainTip>,
}

impl EvidenceWriter {
    /// Creates the session's spool directory (taking its live lock) and
    /// opens chunk 0 with the header line. The session id is the header's
    /// `custos.session_id`.
    pub fn create(
        spool_dir: &Path,
        key: Arc<HostKey>,
        header: &Header,
        chunking: ChunkerConfig,
        quota_bytes: u64,
    ) -> Result<EvidenceWriter, WriterError> {
        let id = &header.custos.session_id;
        let session = Uuid::parse_str(id).map_err(|_| WriterError::SessionId(id.clone()))?;
        let spool = ChunkSpool::create(spool_dir, session, quota_bytes)?;
        let chunker = Chunker::new(key, session, &Encoder::header(header), chunking)?;
        Ok(EvidenceWriter { chunker: Some(chunker), encoder: Encoder::default(), spool, pending: VecDeque::new(), line: Vec::new(), tip: None })
    }

    /// Records `event` at `at` (time since the session started).
    pub fn write(&mut self, at: Duration, event: &Event<'_>) -> Result<WriteStatus, WriterError> {
        let chunker = self.chunker.as_mut().ok_or(WriterError::Finished)?;
        self.line.clear();
        self.encoder.event(at, event, &mut self.line);
        let sealed = chunker.push(micros(at), &self.line)?;
        self.pending.extend(sealed);
        self.flush(false)
    }

    /// Records an event line already encoded by the caller's
    /// [`Encoder`] (which must be the only one writing to this recording,
    /// since lines carry intervals). Lets the recorder encode on its loop
    /// and leave compression, signing and fsync to a writer thread.
    pub fn write_encoded(&mut self, at: Duration, line: &[u8]) -> Result<WriteStatus, WriterError> {
        let chunker = self.chunker.as_mut().ok_or(WriterError::Finished)?;
        let sealed = chunker.push(micros(at), line)?;
        self.pending.extend(sealed);
        self.flush(false)
    }

    /// Seals the open chunk if its time span has passed, and retries chunks
    /// waiting for room. Call it regularly (every second or so), and while
    /// throttled.
    pub fn tick(&mut self, now: Duration) -> Result<WriteStatus, WriterError> {
        let chunker = self.chunker.as_mut().ok_or(WriterError::Finished)?;
        self.pending.extend(chunker.tick(micros(now)));
        self.flush(false)
    }

    /// Seals the final chunk (write the `x` exit event first) and writes
    /// every pending chunk, over the quota if need be. On an error the
    /// chunks stay pending and `finish` can be called again.
    pub fn finish(&mut self) -> Result<ChainTip, WriterError> {
        if let Some(chunker) = self.chunker.take() {
            self.pending.push_back(chunker.finish());
        }
        self.flush(true)?;
        self.tip.ok_or(WriterError::Finished)
    }

    /// The session's spool directory.
    pub fn dir(&self) -> &Path {
        self.spool.dir()
    }

    pub fn session(&self) -> Uuid {
        self.spool.session()
    }

    fn flush(&mut self, over_quota: bool) -> Result<WriteStatus, WriterError> {
        while let Some(chunk) = self.pending.front() {
            let result = if over_quota { self.spool.write_over_quota(chunk) } else { self.spool.write(chunk) };
            match result {
                Ok(()) => {
                    self.tip = Some(ChainTip::of(chunk));
                    self.pending.pop_front();
                }
                Err(SpoolError::Full { used, quota, .. }) => return Ok(self.full(used, quota)),
                Err(SpoolError::Io { source, .. }) if is_disk_full(&source) && !over_quota => {
                    let (used, quota) = self.spool.usage();
                    return Ok(self.full(used, quota));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(WriteStatus::Stored)
    }

    fn full(&self, used: u64, quota: u64) -> WriteStatus {
        WriteStatus::Full {
            pending_chunks: self.pending.len(),
            pending_bytes: self.pending.iter().map(|c| c.as_bytes().len()).sum(),
            used,
            quota,
        }
    }
}

fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::spool::SessionDir;
    use crate::evidence::{verify_chain, KeyId, PublicKey};

    fn key() -> Arc<HostKey> {
        Arc::new(HostKey::from_seed([4; 32]))
    }

    fn header(session: Uuid) -> Header {
        crate::fixtures::header(&session.to_string(), None)
    }

    fn keys(id: &KeyId) -> Option<PublicKey> {
        let k = key().public();
        (k.id() == *id).then_some(k)
    }

    #[test]
    fn events_become_a_verified_chain_equal_to_the_cast() {
        let spool = tempfile::tempdir().unwrap();
        let session = Uuid::now_v7();
        let chunking = ChunkerConfig::new(1_000_000, 1 << 20).unwrap();
        let mut w = EvidenceWriter::create(spool.path(), key(), &header(session), chunking, u64::MAX).unwrap();
        let mut cast = Encoder::header(&header(session));
        let mut enc = Encoder::default();
        for i in 0..20u64 {
            let at = Duration::from_millis(i * 300);
            let text = format!("line {i}\r\n");
            enc.event(at, &Event::Output(&text), &mut cast);
            assert_eq!(w.write(at, &Event::Output(&text)).unwrap(), WriteStatus::Stored);
        }
        enc.event(Duration::from_secs(7), &Event::Exit(0), &mut cast);
        w.write(Duration::from_secs(7), &Event::Exit(0)).unwrap();
        let tip = w.finish().unwrap();
        assert!(tip.is_final);
        let dir = SessionDir::open(w.dir()).unwrap();
        let report = verify_chain(dir.found().unwrap(), Some(session), keys);
        assert!(report.is_intact(), "{:?}", report.problems);
        assert!(report.chunks.len() >= 6, "cut about every second: {}", report.chunks.len());
        let joined: Vec<u8> = report.chunks.iter().flat_map(|c| c.payload().unwrap()).collect();
        assert_eq!(joined, cast);
        assert!(matches!(w.write(Duration::from_secs(8), &Event::Exit(0)), Err(WriterError::Finished)));
    }

    #[test]
    fn a_full_spool_holds_chunks_until_there_is_room_and_the_end_goes_in_anyway() {
        let spool = tempfile::tempdir().unwrap();
        let session = Uuid::now_v7();
        // Every event its own chunk; a quota of a few chunks.
        let chunking = ChunkerConfig::new(u64::MAX, 1).unwrap();
        let mut w = EvidenceWriter::create(spool.path(), key(), &header(session), chunking, 2_000).unwrap();
        let mut statuses = Vec::new();
        for i in 0..40u64 {
            statuses.push(w.write(Duration::from_millis(i), &Event::Output("0123456789")).unwrap());
        }
        let WriteStatus::Full { pending_chunks, used, quota, .. } = *statuses.last().unwrap() else {
            panic!("never full: {statuses:?}")
        };
        assert!(used <= quota && pending_chunks > 0, "{statuses:?}");
        let dir = SessionDir::open(w.dir()).unwrap();
        // The uploader frees space: the waiting chunks go to disk on tick,
        // as many as fit each time, until none wait.
        for round in 0.. {
            assert!(round < 50, "the pending chunks never drained");
            for (seq, _) in dir.chunk_files().unwrap() {
                dir.remove_chunk(seq).unwrap();
            }
            if w.tick(Duration::from_millis(50)).unwrap() == WriteStatus::Stored {
                break;
            }
        }
        // Fill again, then end: everything, the final chunk included, lands.
        for i in 0..40u64 {
            w.write(Duration::from_millis(100 + i), &Event::Output("0123456789")).unwrap();
        }
        w.write(Duration::from_millis(200), &Event::Exit(0)).unwrap();
        let tip = w.finish().unwrap();
        let files = dir.chunk_files().unwrap();
        assert_eq!(files.last().unwrap().0, tip.seq);
        // No gap between what the uploader took and what is on disk now.
        let first_left = files.first().unwrap().0;
        let expected: Vec<u64> = (first_left..=tip.seq).collect();
        assert_eq!(files.iter().map(|(s, _)| *s).collect::<Vec<_>>(), expected);
    }

    #[test]
    fn a_header_without_a_uuid_session_is_refused() {
        let spool = tempfile::tempdir().unwrap();
        let mut h = header(Uuid::nil());
        h.custos.session_id = "not-a-uuid".into();
        let err = EvidenceWriter::create(spool.path(), key(), &h, ChunkerConfig::default(), u64::MAX).err().unwrap();
        assert!(matches!(err, WriterError::SessionId(_)), "{err}");
    }
}
