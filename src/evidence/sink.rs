//! Where a session's events go: signed chunks in the spool when the host
//! has a key, a plain `.cast` file when it has none.
//!
//! The recorder writes every event through a [`Sink`] and never learns
//! which form it has, except for one thing: a chunk spool can be *full*
//! (its quota, or the disk). Then [`Sink::is_full`] says so and the
//! recorder applies `[evidence] when_full`: it stops reading the shell's
//! output until [`Sink::tick`] finds room (`throttle`), or ends the session
//! (`end`). Events written meanwhile (gate records, the exit) wait in
//! memory inside the writer; nothing is dropped.
//!
//! Why a plain file at all: a fresh build, a developer's laptop and the
//! test suite have no host key, and a missing key must not mean no
//! recording. A key that exists but cannot be used is different: that is
//! a broken installation, and the shell refuses to start (fail closed).
//!
//! A write error other than a full spool (EIO, a vanished directory) is
//! treated like a full spool, so the session slows down instead of
//! producing output nobody can prove was recorded; the error is kept for
//! the status line.
//!
//! **The writer thread.** Compressing, signing and above all fsyncing a
//! chunk (about 8 ms on the VM disk) would stall the session loop, so
//! keys would wait behind a flood's chunks. The loop only encodes event
//! lines and hands them over a bounded channel to a writer thread, which
//! owns the [`EvidenceWriter`]. The channel's bound is the back-pressure:
//! if the thread falls behind, the loop waits, as it would for a slow
//! terminal. The thread starts on the first event, never before: the
//! recorder forks the shell after opening the sink, and a fork must not
//! happen while another thread may hold the allocator's lock.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::EvidenceConfig;
use crate::evidence::{EvidenceWriter, HostKey, KeyError, WhenFull, WriteStatus, WriterError};
use crate::evidence::asciicast::{CastFile, Encoder, Event, Header};

/// Event lines in flight to the writer thread, at most.
const CHANNEL_LINES: usize = 64;

/// How often the open chunk is offered for sealing by time.
pub const TICK_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot create the recording {path}: {source}")]
    Cast { path: PathBuf, source: std::io::Error },
    #[error("the host key: {0}")]
    Key(#[from] KeyError),
    #[error("cannot start the session's evidence in {spool}: {source}")]
    Evidence { spool: PathBuf, source: crate::evidence::WriterError },
    #[error("cannot write the recording: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot finish the session's evidence: {0}")]
    Finish(WriterError),
    #[error("the evidence writer thread failed: {0}")]
    Thread(String),
}

enum Form {
    Cast(CastFile),
    Chunks(Chunks),
}

/// A chunked recording: the writer itself until the first event, then a
/// thread that owns it.
struct Chunks {
    encoder: Encoder,
    line: Vec<u8>,
    /// Why the writer cannot store more, as last reported.
    full: Arc<Mutex<Option<String>>>,
    state: Worker,
}

enum Worker {
    Idle(Box<EvidenceWriter>),
    Running { tx: SyncSender<Msg>, handle: JoinHandle<Result<(), WriterError>> },
    Done,
}

enum Msg {
    Line(Duration, Vec<u8>),
    Finish,
}

impl Chunks {
    fn send(&mut self, msg: Msg) -> Result<(), SinkError> {
        if let Worker::Idle(_) = self.state {
            let Worker::Idle(writer) = std::mem::replace(&mut self.state, Worker::Done) else { return Ok(()) };
            let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL_LINES);
            let full = Arc::clone(&self.full);
            let handle = std::thread::Builder::new()
                .name("evidence-writer".into())
                .spawn(move || write_chunks(*writer, &rx, &full))
                .map_err(|e| SinkError::Thread(e.to_string()))?;
            self.state = Worker::Running { tx, handle };
        }
        match &self.state {
            Worker::Running { tx, .. } => tx.send(msg).map_err(|_| SinkError::Thread("it stopped".into())),
            _ => Err(SinkError::Thread("the recording was already finished".into())),
        }
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        match std::mem::replace(&mut self.state, Worker::Done) {
            Worker::Idle(mut writer) => writer.finish().map(drop).map_err(SinkError::Finish),
            Worker::Running { tx, handle } => {
                // The thread may have stopped on an error; join tells which.
                let _ = tx.send(Msg::Finish);
                drop(tx);
                match handle.join() {
                    Ok(result) => result.map_err(SinkError::Finish),
                    Err(_) => Err(SinkError::Thread("it panicked".into())),
                }
            }
            Worker::Done => Ok(()),
        }
    }
}

/// The writer thread: lines into chunks, chunks to disk, ticks when quiet,
/// the full state published for the loop.
fn write_chunks(mut writer: EvidenceWriter, rx: &Receiver<Msg>, full: &Mutex<Option<String>>) -> Result<(), WriterError> {
    let started = Instant::now();
    let mut paused = false;
    loop {
        let wait = if paused { PAUSED_RETRY } else { TICK_INTERVAL };
        let status = match rx.recv_timeout(wait) {
            Ok(Msg::Line(at, line)) => writer.write_encoded(at, &line),
            Ok(Msg::Finish) | Err(RecvTimeoutError::Disconnected) => {
                let result = writer.finish().map(drop);
                if let Err(e) = &result {
                    publish(full, Some(format!("cannot write evidence: {e}")));
                }
                return result;
            }
            Err(RecvTimeoutError::Timeout) => writer.tick(started.elapsed()),
        };
        let why = describe(status);
        paused = why.is_some();
        publish(full, why);
    }
}

fn publish(full: &Mutex<Option<String>>, why: Option<String>) {
    // A poisoned lock means the loop panicked; nothing to tell it then.
    if let Ok(mut slot) = full.lock() {
        *slot = why;
    }
}

/// How often a writer with a full spool looks for room.
const PAUSED_RETRY: Duration = Duration::from_millis(100);

fn describe(status: Result<WriteStatus, WriterError>) -> Option<String> {
    match status {
        Ok(WriteStatus::Stored) => None,
        Ok(WriteStatus::Full { used, quota, pending_bytes, .. }) => Some(format!(
            "evidence spool full ({} of {} MiB used, {} KiB waiting)",
            used >> 20,
            quota >> 20,
            pending_bytes >> 10
        )),
        Err(e) => Some(format!("cannot write evidence: {e}")),
    }
}

/// One session's recording. See the module doc.
pub struct Sink {
    form: Form,
    path: PathBuf,
    when_full: WhenFull,
    /// The writer thread is gone: nothing more can be recorded.
    broken: Option<String>,
}

/// The host key, when the host has one: `Ok(None)` when the configured
/// file does not exist, an error when it exists but cannot be used.
pub fn host_key(config: &EvidenceConfig) -> Result<Option<Arc<HostKey>>, KeyError> {
    match std::fs::symlink_metadata(&config.key) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        _ => HostKey::load(&config.key).map(|k| Some(Arc::new(k))),
    }
}

impl Sink {
    /// Opens the session's recording under `spool`: chunks signed with
    /// `key` in `<spool>/chunks/<id>/`, or `<spool>/recordings/<id>.cast`
    /// without a key.
    pub fn open(spool: &Path, header: &Header, key: Option<Arc<HostKey>>, config: &EvidenceConfig) -> Result<Sink, SinkError> {
        let (form, path) = match key {
            Some(key) => {
                let writer = EvidenceWriter::create(spool, key, header, config.chunking, config.spool_quota_bytes)
                    .map_err(|source| SinkError::Evidence { spool: spool.to_owned(), source })?;
                let path = writer.dir().to_owned();
                let chunks = Chunks {
                    encoder: Encoder::default(),
                    line: Vec::new(),
                    full: Arc::new(Mutex::new(None)),
                    state: Worker::Idle(Box::new(writer)),
                };
                (Form::Chunks(chunks), path)
            }
            None => {
                let path = crate::layout::recording_path(spool, &header.custos.session_id);
                if let Some(dir) = path.parent() {
                    crate::layout::ensure_private_dir(dir).map_err(|source| SinkError::Cast { path: path.clone(), source })?;
                }
                let cast = CastFile::create(&path, header).map_err(|source| SinkError::Cast { path: path.clone(), source })?;
                (Form::Cast(cast), path)
            }
        };
        Ok(Sink { form, path, when_full: config.when_full, broken: None })
    }

    /// The `.cast` file, or the session's chunk directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the recording is signed chunks (and can be uploaded).
    pub fn is_chunked(&self) -> bool {
        matches!(self.form, Form::Chunks(_))
    }

    /// Records `event` at `at` (since the session started). A plain file's
    /// write error is returned; a chunked recording's problems make it
    /// full (see [`Sink::full`]), except a writer thread that is gone.
    pub fn write(&mut self, at: Duration, event: &Event<'_>) -> Result<(), SinkError> {
        match &mut self.form {
            Form::Cast(cast) => Ok(cast.write(at, event)?),
            Form::Chunks(chunks) => {
                chunks.line.clear();
                chunks.encoder.event(at, event, &mut chunks.line);
                let line = std::mem::take(&mut chunks.line);
                let sent = chunks.send(Msg::Line(at, line));
                if let Err(e) = &sent {
                    // Nothing more can be recorded: stop the session's output.
                    self.broken = Some(e.to_string());
                }
                sent
            }
        }
    }

    /// Why the recording cannot take more output now, if it cannot. The
    /// writer thread seals chunks on time and retries a full spool by
    /// itself; this reads what it last found.
    pub fn full(&self) -> Option<String> {
        if self.broken.is_some() {
            return self.broken.clone();
        }
        match &self.form {
            Form::Chunks(chunks) => {
                chunks.full.lock().map(|g| g.clone()).unwrap_or_else(|_| Some("the evidence writer failed".into()))
            }
            Form::Cast(_) => None,
        }
    }

    pub fn when_full(&self) -> WhenFull {
        self.when_full
    }

    /// Makes everything durable: the final chunk (over the quota if need
    /// be), or the file's fsync. Write the exit event first.
    pub fn finish(&mut self) -> Result<(), SinkError> {
        match &mut self.form {
            Form::Cast(cast) => Ok(cast.sync()?),
            Form::Chunks(chunks) => chunks.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::spool::SessionDir;
    use crate::evidence::{verify_chain, ChunkerConfig};

    fn header() -> Header {
        crate::fixtures::header(&uuid::Uuid::now_v7().to_string(), None)
    }

    fn config(dir: &Path, quota: u64) -> EvidenceConfig {
        EvidenceConfig {
            key: dir.join("host.key"),
            chunking: ChunkerConfig::new(1_000_000, 4096).unwrap(),
            spool_quota_bytes: quota,
            when_full: WhenFull::Throttle,
        }
    }

    #[test]
    fn without_a_key_the_recording_is_a_plain_cast() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), 1 << 30);
        assert!(host_key(&config).unwrap().is_none());
        let mut sink = Sink::open(dir.path(), &header(), None, &config).unwrap();
        assert!(!sink.is_chunked());
        sink.write(Duration::ZERO, &Event::Output("hi")).unwrap();
        sink.write(Duration::from_millis(5), &Event::Exit(0)).unwrap();
        sink.finish().unwrap();
        let text = std::fs::read_to_string(sink.path()).unwrap();
        assert_eq!(crate::evidence::asciicast::Cast::parse(&text).unwrap().exit_status(), Some(0));
    }

    #[test]
    fn a_key_that_exists_but_is_exposed_is_an_error_not_a_plain_cast() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), 1 << 30);
        HostKey::generate().save(&config.key).unwrap();
        std::fs::set_permissions(&config.key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let Err(e) = host_key(&config) else { panic!("an exposed key is refused") };
        assert!(e.to_string().contains("readable by group or others"), "{e}");
    }

    #[test]
    fn with_a_key_events_become_a_verified_chain_with_time_cut_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), 1 << 30);
        HostKey::generate().save(&config.key).unwrap();
        let key = host_key(&config).unwrap().unwrap();
        let public = key.public();
        let mut sink = Sink::open(dir.path(), &header(), Some(key), &config).unwrap();
        assert!(sink.is_chunked());
        assert_eq!(sink.path().parent().unwrap(), crate::layout::chunks_root(dir.path()));
        for i in 0..6u64 {
            let at = Duration::from_millis(i * 400);
            sink.write(at, &Event::Output("line\r\n")).unwrap();
        }
        sink.write(Duration::from_secs(3), &Event::Exit(3)).unwrap();
        sink.finish().unwrap();
        assert!(sink.full().is_none());
        let found = SessionDir::open(sink.path()).unwrap().found().unwrap();
        let report = verify_chain(found, None, |id| (public.id() == *id).then_some(public));
        assert!(report.is_intact(), "{:?}", report.problems);
        assert!(report.chunks.len() >= 2, "quiet time sealed chunks: {}", report.chunks.len());
    }

    #[test]
    fn a_quiet_session_has_its_chunk_sealed_on_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), 1 << 30);
        config.chunking = ChunkerConfig::new(200_000, 4096).unwrap();
        HostKey::generate().save(&config.key).unwrap();
        let key = host_key(&config).unwrap().unwrap();
        let mut sink = Sink::open(dir.path(), &header(), Some(key), &config).unwrap();
        sink.write(Duration::ZERO, &Event::Output("prompt$ ")).unwrap();
        // No more events: the writer thread seals chunk 0 by itself.
        let spool = SessionDir::open(sink.path()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while spool.chunk_files().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the quiet chunk was never sealed");
            std::thread::sleep(Duration::from_millis(20));
        }
        sink.write(Duration::from_secs(2), &Event::Exit(0)).unwrap();
        sink.finish().unwrap();
        assert_eq!(spool.chunk_files().unwrap().len(), 2);
    }

    #[test]
    fn a_full_spool_is_reported_and_the_end_still_lands() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), 64 * 1024);
        HostKey::generate().save(&config.key).unwrap();
        let key = host_key(&config).unwrap().unwrap();
        let mut sink = Sink::open(dir.path(), &header(), Some(key), &config).unwrap();
        // Incompressible output: zstd cannot shrink it under the quota.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut at = Duration::ZERO;
        while sink.full().is_none() {
            let text: String = (0..4000)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    char::from(b'!' + u8::try_from(state % 90).unwrap())
                })
                .collect();
            sink.write(at, &Event::Output(&text)).unwrap();
            at += Duration::from_millis(1);
            assert!(at < Duration::from_secs(100), "never full");
        }
        assert!(sink.full().unwrap().contains("evidence spool full"), "{:?}", sink.full());
        sink.write(at, &Event::Exit(0)).unwrap();
        sink.finish().unwrap();
        let dir = SessionDir::open(sink.path()).unwrap();
        let last = dir.chunk_files().unwrap().last().unwrap().0;
        let chunk = crate::evidence::Chunk::parse(std::fs::read(dir.chunk_files().unwrap().last().unwrap().1.clone()).unwrap()).unwrap();
        assert!(chunk.envelope().is_final, "the final chunk {last} landed over the quota");
    }
}
