//! Where recordings come from, behind one small trait.
//!
//! [`Source`] lists sessions, opens one (recording, index, verification
//! state) and follows one that is still being written. Implementations:
//!
//! - [`LocalSource`]: one asciicast file (v2 or v3, ours or asciinema's), or
//!   a directory: a spool (`recordings/*.cast`) or any folder of `.cast`
//!   files. Indexes are cached under the cache root (see `index`).
//! - A collector (`--server URL`) plugs in here later: it lists through the
//!   collector's search API, opens the `.cast` download, follows over SSE,
//!   and reports the chain state the collector verified.
//!
//! The verification state is the evidence module's to decide; a local
//! source asks its [`Verifier`], which by default says [`Verification::Unknown`]
//! for a plain `.cast` file (nothing signed it).

use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};

use super::index::{self, Builder, Index};
use super::markers::{self, Flags};
use crate::evidence::spool::SessionDir;
use crate::evidence::PublicKey;
use crate::evidence::asciicast::{ParseError, Recording};

/// Every source reports one; the evidence side (`super::evidence`) decides it.
pub use super::evidence::Verification;

/// Decides the verification state of a recording at a path.
pub type Verifier = fn(&Path) -> Verification;

/// A plain `.cast` file carries no signatures.
pub fn unsigned(_: &Path) -> Verification {
    Verification::unsigned()
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a recording custos can play: {source}")]
    Parse { path: PathBuf, source: ParseError },
    #[error("no session {0:?} in this source")]
    NotFound(String),
    #[error("{path} shrank while being followed (was the recording replaced?)")]
    Shrank { path: PathBuf },
    #[error("{path}: {reason}")]
    Evidence { path: PathBuf, reason: String },
    #[error("collector: {0}")]
    Collector(String),
}

impl From<super::evidence::Unreadable> for SourceError {
    fn from(e: super::evidence::Unreadable) -> Self {
        SourceError::Evidence { path: e.path, reason: e.reason }
    }
}

/// A row of the session browser.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionSummary {
    /// How the source finds the session again (a path for local sources).
    pub id: String,
    /// The unix user (or `-` for a recording that does not say).
    pub user: String,
    /// The verified identity (e-mail or subject), when the session had one.
    pub identity: Option<String>,
    pub host: String,
    /// Unix time of the start.
    pub start: Option<u64>,
    pub duration: f64,
    pub commands: usize,
    /// Command lines, for the browser's command filter.
    pub command_lines: Vec<String>,
    pub flags: Flags,
    pub verification: Verification,
    /// The recording has no exit event yet (live, or cut short).
    pub open: bool,
}

impl SessionSummary {
    /// What the browser shows as the user: the identity when verified.
    pub fn who(&self) -> String {
        match &self.identity {
            Some(id) => id.clone(),
            None => self.user.clone(),
        }
    }

    pub fn of(id: String, recording: &Recording, verification: Verification) -> Self {
        let info = recording.custos.as_ref();
        let identity = info.and_then(|i| i.identity.as_ref()).and_then(|v| {
            ["email", "preferred_username", "sub"].iter().find_map(|k| v.get(*k).and_then(serde_json::Value::as_str)).map(str::to_owned)
        });
        let commands = markers::commands(&recording.events);
        Self {
            id,
            user: info.map_or_else(|| "-".to_owned(), |i| i.user.clone()),
            identity,
            host: info.map_or_else(|| "-".to_owned(), |i| i.host.clone()),
            start: recording.timestamp,
            duration: recording.duration(),
            commands: commands.len(),
            command_lines: commands.iter().map(|c| c.text.clone()).collect(),
            flags: Flags::of(&commands),
            verification,
            open: recording.exit_status().is_none(),
        }
    }
}

/// A session ready to play.
pub struct Opened {
    pub summary: SessionSummary,
    pub recording: Recording,
    pub index: Index,
}

/// New lines of a recording still being written.
pub trait Tail {
    /// Complete lines appended since the last call (empty when none).
    fn poll(&mut self) -> Result<String, SourceError>;
}

pub trait Source {
    /// A short description for titles: the path or the server.
    fn describe(&self) -> String;
    /// The sessions, newest first.
    fn list(&mut self) -> Result<Vec<SessionSummary>, SourceError>;
    /// Loads a session with its index.
    fn open(&mut self, id: &str) -> Result<Opened, SourceError>;
    /// Loads a session for `--follow`: what is written so far, an index
    /// builder that has seen it, and the tail to poll for more.
    fn follow(&mut self, id: &str) -> Result<(Opened, Builder, Box<dyn Tail>), SourceError>;
    /// Whether `query` was ever on the session's screen.
    fn screen_text_contains(&mut self, id: &str, query: &str) -> Result<bool, SourceError> {
        Ok(self.open(id)?.index.text.contains(query))
    }
}

/// One recording a local source holds.
enum Entry {
    /// An asciicast file (ours or anyone's).
    Cast(PathBuf),
    /// A session's signed chunks (`<spool>/chunks/<session-id>/`).
    Chunks(SessionDir),
}

impl Entry {
    fn path(&self) -> &Path {
        match self {
            Entry::Cast(p) => p,
            Entry::Chunks(d) => d.path(),
        }
    }
}

/// A recording file, a session's chunk directory, or a directory of them.
pub struct LocalSource {
    root: PathBuf,
    cache_root: Option<PathBuf>,
    verifier: Verifier,
    keys: Vec<PublicKey>,
}

impl LocalSource {
    /// `cache_root`: where indexes are cached (`None`: build in memory).
    pub fn new(root: &Path, cache_root: Option<PathBuf>) -> Self {
        Self { root: root.to_owned(), cache_root, verifier: unsigned, keys: Vec::new() }
    }

    /// Uses `verifier` for the verification state of `.cast` files.
    pub fn with_verifier(mut self, verifier: Verifier) -> Self {
        self.verifier = verifier;
        self
    }

    /// The public keys chunk directories are verified with.
    pub fn with_keys(mut self, keys: Vec<PublicKey>) -> Self {
        self.keys = keys;
        self
    }

    /// The recordings this source holds: the file or chunk directory
    /// itself; or, in a directory, its `.cast` files (or those of its
    /// `recordings/`, for a spool) and its session chunk directories (or
    /// those of its `chunks/` and `delivered/`). A session a spool holds both ways is listed
    /// once: as its chunks while chunk 0 is still there (the signed form),
    /// else as its `.cast` (the chunks' start went to the collector).
    fn entries(&self) -> Result<Vec<Entry>, SourceError> {
        if !self.root.is_dir() {
            return Ok(vec![Entry::Cast(self.root.clone())]);
        }
        if let Ok(dir) = SessionDir::open(&self.root) {
            return Ok(vec![Entry::Chunks(dir)]);
        }
        let spool = self.root.join("recordings");
        let dir = if spool.is_dir() { spool } else { self.root.clone() };
        let mut casts: Vec<PathBuf> = read_dir(&dir)?
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "cast") && p.is_file())
            .collect();
        // A spool's sessions wait in `chunks/`; those the collector has
        // are in `delivered/` while `keep_local` keeps them.
        let parents: Vec<PathBuf> = [crate::evidence::spool::chunks_dir(&self.root), crate::evidence::spool::delivered_dir(&self.root)]
            .into_iter()
            .filter(|p| p.is_dir())
            .collect();
        let parents = if parents.is_empty() { vec![self.root.clone()] } else { parents };
        let mut sessions = Vec::new();
        for parent in &parents {
            sessions.extend(
                read_dir(parent)?
                    .into_iter()
                    .filter_map(|p| SessionDir::open(&p).ok())
                    .filter(|d| d.chunk_files().is_ok_and(|f| f.first().is_some_and(|(seq, _)| *seq == 0))),
            );
        }
        let signed: std::collections::HashSet<String> = sessions.iter().map(|d| d.session().to_string()).collect();
        casts.retain(|p| !p.file_stem().and_then(|s| s.to_str()).is_some_and(|s| signed.contains(s)));
        casts.sort();
        sessions.sort_by_key(SessionDir::session);
        let mut out: Vec<Entry> = casts.into_iter().map(Entry::Cast).collect();
        out.extend(sessions.into_iter().map(Entry::Chunks));
        Ok(out)
    }

    /// The paths of the recordings this source holds (see `entries`).
    pub fn files(&self) -> Result<Vec<PathBuf>, SourceError> {
        Ok(self.entries()?.iter().map(|e| e.path().to_owned()).collect())
    }

    fn read(path: &Path) -> Result<(String, u64, u64), SourceError> {
        let io = |source| SourceError::Io { path: path.to_owned(), source };
        let meta = std::fs::metadata(path).map_err(io)?;
        let text = std::fs::read_to_string(path).map_err(io)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64);
        Ok((text, meta.len(), mtime))
    }

    fn parse(path: &Path, text: &str) -> Result<Recording, SourceError> {
        Recording::parse(text).map_err(|source| SourceError::Parse { path: path.to_owned(), source })
    }

    fn find(&self, id: &str) -> Result<Entry, SourceError> {
        let path = PathBuf::from(id);
        self.entries()?.into_iter().find(|e| e.path() == path).ok_or_else(|| SourceError::NotFound(id.to_owned()))
    }

    /// An entry's text and verification state, and how its index cache is
    /// found: a file by its path, length and time; evidence by the digest
    /// of its content (a chunk directory changes file by file).
    fn load(&self, entry: &Entry) -> Result<Loaded, SourceError> {
        match entry {
            Entry::Cast(path) => {
                let (text, len, mtime) = Self::read(path)?;
                let cache = self.cache_root.as_ref().map(|root| (index::cache_dir(root, path), len, mtime));
                Ok(Loaded { text, verification: (self.verifier)(path), cache })
            }
            Entry::Chunks(dir) => {
                let checked = super::evidence::read_session_dir(dir, &self.keys)?;
                let cache = self.cache_root.as_ref().map(|root| index::content_cache(root, checked.cast.as_bytes()));
                Ok(Loaded { text: checked.cast, verification: checked.verification, cache })
            }
        }
    }
}

/// What [`LocalSource::load`] read.
struct Loaded {
    text: String,
    verification: Verification,
    /// The cache directory, and the length and time it is valid for.
    cache: Option<(PathBuf, u64, u64)>,
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SourceError::Io { path: dir.to_owned(), source })?;
    Ok(entries.filter_map(Result::ok).map(|e| e.path()).collect())
}

/// The index of `recording`, from the cache when it holds a fresh one, else
/// built (and cached: a cache that cannot be written costs time, not
/// evidence).
pub fn cached_index(recording: &Recording, cache: Option<&(PathBuf, u64, u64)>) -> Index {
    if let Some((dir, len, mtime)) = cache {
        if let Some(index) = Index::load(dir, *len, *mtime) {
            return index;
        }
    }
    let index = Index::build(recording.cols, recording.rows, &recording.events);
    if let Some((dir, len, mtime)) = cache {
        let _ = index.save(dir, *len, *mtime);
    }
    index
}

impl Source for LocalSource {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&mut self) -> Result<Vec<SessionSummary>, SourceError> {
        let mut out = Vec::new();
        for entry in self.entries()? {
            let path = entry.path().to_owned();
            // One unreadable recording must not hide the others: it is
            // listed, flagged as broken evidence with the reason.
            let summary = match self.load(&entry).and_then(|l| Ok((Self::parse(&path, &l.text)?, l.verification))) {
                Ok((rec, verification)) => SessionSummary::of(path.display().to_string(), &rec, verification),
                Err(e) => SessionSummary {
                    id: path.display().to_string(),
                    user: "-".into(),
                    identity: None,
                    host: "-".into(),
                    start: None,
                    duration: 0.0,
                    commands: 0,
                    command_lines: Vec::new(),
                    flags: Flags::default(),
                    verification: Verification::Broken(e.to_string()),
                    open: false,
                },
            };
            out.push(summary);
        }
        out.sort_by(|a, b| b.start.cmp(&a.start).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    fn open(&mut self, id: &str) -> Result<Opened, SourceError> {
        let entry = self.find(id)?;
        let loaded = self.load(&entry)?;
        let recording = Self::parse(entry.path(), &loaded.text)?;
        let index = cached_index(&recording, loaded.cache.as_ref());
        let summary = SessionSummary::of(id.to_owned(), &recording, loaded.verification);
        Ok(Opened { summary, recording, index })
    }

    fn follow(&mut self, id: &str) -> Result<(Opened, Builder, Box<dyn Tail>), SourceError> {
        let Entry::Cast(path) = self.find(id)? else {
            return Err(SourceError::Evidence {
                path: PathBuf::from(id),
                reason: "--follow reads a .cast file being written, not a chunk directory".into(),
            });
        };
        let (text, _, _) = Self::read(&path)?;
        // Only complete lines: the last one may be half written.
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        let recording = Self::parse(&path, text.get(..complete).unwrap_or_default())?;
        let mut builder = Builder::new(recording.cols, recording.rows);
        builder.feed(&recording.events);
        let index = builder.index();
        let summary = SessionSummary::of(id.to_owned(), &recording, (self.verifier)(&path));
        let tail = FileTail { path: path.clone(), offset: complete as u64, partial: Vec::new() };
        Ok((Opened { summary, recording, index }, builder, Box::new(tail)))
    }
}

/// Follows a file by polling its length.
pub struct FileTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail for FileTail {
    fn poll(&mut self) -> Result<String, SourceError> {
        let io = |source| SourceError::Io { path: self.path.clone(), source };
        let mut file = std::fs::File::open(&self.path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < self.offset {
            return Err(SourceError::Shrank { path: self.path.clone() });
        }
        if len == self.offset {
            return Ok(String::new());
        }
        file.seek(std::io::SeekFrom::Start(self.offset)).map_err(io)?;
        let mut buf = Vec::new();
        file.take(len - self.offset).read_to_end(&mut buf).map_err(io)?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(String::new());
        };
        let rest = self.partial.split_off(end + 1);
        let lines = std::mem::replace(&mut self.partial, rest);
        Ok(String::from_utf8_lossy(&lines).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAST: &str = "{\"version\":3,\"term\":{\"cols\":20,\"rows\":3},\"timestamp\":100}\n[0.1, \"o\", \"hello\\r\\n\"]\n";

    #[test]
    fn a_directory_lists_every_cast_and_flags_unreadable_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.cast"), CAST).unwrap();
        std::fs::write(dir.path().join("b.cast"), "not a recording\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let mut source = LocalSource::new(dir.path(), None);
        let list = source.list().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].start, Some(100));
        assert_eq!(list[0].verification, Verification::unsigned());
        assert!(matches!(&list[1].verification, Verification::Broken(why) if why.contains("line 1")), "{list:?}");
        let err = source.open(&list[1].id).err().unwrap().to_string();
        assert!(err.contains("is not a recording custos can play"), "{err}");
        assert!(matches!(source.open("/etc/passwd"), Err(SourceError::NotFound(_))));
    }

    /// Writes `session` as one signed, final chunk `seq` into `spool/chunks/`.
    fn chunk(spool: &Path, key: &crate::evidence::HostKey, session: uuid::Uuid, seq: u64) -> PathBuf {
        let dir = spool.join("chunks").join(session.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let header = format!("{{\"version\":3,\"term\":{{\"cols\":20,\"rows\":3}},\"timestamp\":{}}}\n[0.1, \"o\", \"signed\"]\n", 200 + seq);
        let sealed = crate::evidence::seal(key, session, seq, crate::evidence::Digest::ZERO, 0, 100_000, true, header.as_bytes());
        std::fs::write(dir.join(crate::evidence::spool::chunk_file_name(seq)), sealed.as_bytes()).unwrap();
        dir
    }

    #[test]
    fn a_spool_lists_a_session_once_signed_chunks_first() {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::evidence::HostKey::generate();
        let (whole, drained) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        std::fs::create_dir(dir.path().join("recordings")).unwrap();
        for id in [whole, drained] {
            std::fs::write(dir.path().join(format!("recordings/{id}.cast")), CAST).unwrap();
        }
        // `whole` still has chunk 0; `drained` only a later chunk (its start
        // was uploaded and removed), so its .cast is what is listed.
        let chunks = chunk(dir.path(), &key, whole, 0);
        chunk(dir.path(), &key, drained, 3);
        let mut source = LocalSource::new(dir.path(), None).with_keys(vec![key.public()]);
        let files = source.files().unwrap();
        assert_eq!(files, vec![dir.path().join(format!("recordings/{drained}.cast")), chunks.clone()]);
        let list = source.list().unwrap();
        let signed = list.iter().find(|s| s.id == chunks.display().to_string()).unwrap();
        assert_eq!(signed.verification, Verification::Intact);
        assert_eq!(signed.start, Some(200));
        // The session directory itself is a source of one.
        let mut one = LocalSource::new(&chunks, None);
        let opened = one.open(&chunks.display().to_string()).unwrap();
        assert!(opened.index.text.contains("signed"));
        assert!(matches!(opened.summary.verification, Verification::Unknown(why) if why.contains("no public key")));
        // A chunk directory cannot be followed: that is a .cast being written.
        let err = one.follow(&chunks.display().to_string()).err().unwrap().to_string();
        assert!(err.contains("--follow reads a .cast file"), "{err}");
    }

    #[test]
    fn a_spool_is_read_from_its_recordings_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("recordings")).unwrap();
        std::fs::write(dir.path().join("recordings/s1.cast"), CAST).unwrap();
        let source = LocalSource::new(dir.path(), None);
        assert_eq!(source.files().unwrap(), vec![dir.path().join("recordings/s1.cast")]);
    }

    #[test]
    fn the_index_is_cached_and_rebuilt_when_the_recording_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let path = dir.path().join("a.cast");
        std::fs::write(&path, CAST).unwrap();
        let id = path.display().to_string();
        let mut source = LocalSource::new(&path, Some(cache.clone()));
        let first = source.open(&id).unwrap();
        let dir_of = index::cache_dir(&cache, &path);
        assert!(dir_of.join(index::KEYFRAMES_FILE).exists() && dir_of.join(index::TEXT_FILE).exists());
        // zstd frames, both.
        for file in [index::KEYFRAMES_FILE, index::TEXT_FILE] {
            assert!(std::fs::read(dir_of.join(file)).unwrap().starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), "{file}");
        }
        let (_, len, mtime) = LocalSource::read(&path).unwrap();
        let cached = Index::load(&dir_of, len, mtime).unwrap();
        assert_eq!(cached.text.search("hello", 0, true, 10), first.index.text.search("hello", 0, true, 10));
        assert!(Index::load(&dir_of, len + 1, mtime).is_none(), "a stale cache must not be used");
        // A cache that does not decompress is rebuilt, never an error.
        std::fs::write(dir_of.join(index::TEXT_FILE), b"not zstd").unwrap();
        assert!(Index::load(&dir_of, len, mtime).is_none());
        let again = source.open(&id).unwrap();
        assert_eq!(again.index.text.search("hello", 0, true, 10), first.index.text.search("hello", 0, true, 10));
        assert!(Index::load(&dir_of, len, mtime).is_some(), "rebuilt and saved again");
    }

    #[test]
    fn a_tail_returns_only_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.cast");
        std::fs::write(&path, format!("{CAST}[0.1, \"o\", \"par")).unwrap();
        let mut source = LocalSource::new(&path, None);
        let (opened, _, mut tail) = source.follow(&path.display().to_string()).unwrap();
        assert_eq!(opened.recording.events.len(), 1);
        assert_eq!(tail.poll().unwrap(), "");
        std::fs::OpenOptions::new().append(true).open(&path).and_then(|mut f| std::io::Write::write_all(&mut f, b"tial\"]\n[0.1, \"o\", \"x")).unwrap();
        assert_eq!(tail.poll().unwrap(), "[0.1, \"o\", \"partial\"]\n");
        std::fs::write(&path, "").unwrap();
        assert!(matches!(tail.poll(), Err(SourceError::Shrank { .. })));
    }
}
