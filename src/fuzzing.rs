//! The fuzz targets' bodies (`fuzz/`, issue #17), one function per target,
//! each taking the fuzzer's bytes. They live in the crate rather than in
//! `fuzz/` so that `tests/fuzz_corpora.rs` replays the committed corpora
//! and crash inputs through exactly the code the fuzzer ran, on stable,
//! in every `cargo test`.
//!
//! Each function must return normally on any input: a typed error from the
//! code under test is an answer, a panic (an unwrap, an index out of
//! bounds, an overflow in a debug build, a failed assertion here) is a bug.
//! The few assertions are properties that hold for every input (a chunk
//! sealed here parses back to its payload), so a wrong answer fails too,
//! not only a crash.
//!
//! Nothing but `fuzz/` and the tests calls this module; the binaries never
//! reach it, so it links into neither.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use uuid::Uuid;

use crate::evidence::asciicast::{self, Cast, Recording};
use crate::evidence::envelope::{self, MAX_CAST};
use crate::evidence::{seal, verify_chain, Chunk, Digest, Found, HostKey, KeyId, PublicKey};
use crate::policy::{Env, Policy, Subject};
use crate::term::masker::Masker;
use crate::term::screen::Size;
use crate::tui::replay::index::{Index, Spacing};

/// The fuzzer's bytes, read front to back; past the end every read is 0
/// or empty, so no input is too short.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn rest(&mut self) -> &'a [u8] {
        self.take(self.0.len())
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// --- policy ----------------------------------------------------------------

fn default_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(Policy::default_policy)
}

/// Target `policy`: the policy parser and the checker. The input is a flags
/// byte, then a command line, then optionally a NUL and policy TOML (the
/// built-in policy without one). The line is checked as typed
/// ([`Policy::check`]) and as an exec's argv split on blanks
/// ([`Policy::check_argv`]).
pub fn policy(data: &[u8]) {
    let mut r = Reader(data);
    let flags = r.byte();
    let rest = r.rest();
    let (line, policy_text) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (rest.get(..i).unwrap_or_default(), rest.get(i + 1..)),
        None => (rest, None),
    };
    let parsed;
    let policy = match policy_text {
        Some(t) => match Policy::parse(&text(t), Path::new("fuzz.toml")) {
            Ok(p) => {
                parsed = p;
                &parsed
            }
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        },
        None => default_policy(),
    };
    let policy = policy.clone().with_collector(flags & 1 != 0);
    let policy = if flags & 2 != 0 { policy.for_execs() } else { policy };
    let line = text(line);
    let who = Subject { user: "alice".into(), groups: vec!["staff".into(), "wheel".into()], oidc_groups: vec!["ops".into()] };
    let mut env = Env::new("/home/alice/src", "/home/alice");
    env.traced = flags & 4 != 0;
    env.complete = flags & 8 != 0;
    env.execs_checked = flags & 16 != 0;
    if flags & 32 != 0 {
        env.vars.insert("HOME".into(), "/home/alice".into());
        env.vars.insert("DIR".into(), "/srv/data".into());
        env.vars.insert("EMPTY".into(), String::new());
        env.vars.insert("CMD".into(), "rm -rf /".into());
    }
    let decision = policy.check(&line, &who, &env);
    let _ = serde_json::to_string(&decision);
    if decision.parse_error.is_some() {
        assert_eq!(decision.verdict, crate::policy::Verdict::Deny, "a line that cannot be checked is denied");
    }
    let argv: Vec<String> = line.split_ascii_whitespace().map(str::to_owned).collect();
    let _ = policy.check_argv(&line, &argv, &who, &env);
}

// --- masker ----------------------------------------------------------------

fn masker() -> Option<Masker> {
    static MASKER: OnceLock<Option<Masker>> = OnceLock::new();
    MASKER.get_or_init(|| Masker::new(&crate::mask::MaskingConfig::default()).ok()).as_ref().map(Masker::fresh)
}

/// Target `mask`: `custos mask`'s filter (the session's screen pipeline:
/// emulator, masker, renderer) fed terminal bytes in several writes, then
/// the same bytes as text through the detectors ([`Masker::mask_text`]).
/// The first byte picks the screen size and how the bytes are split.
pub fn mask(data: &[u8]) {
    let mut r = Reader(data);
    let shape = r.byte();
    let size = Size { rows: u16::from(shape & 0x0f) + 1, cols: u16::from(shape >> 4) * 8 + 2 };
    let split = usize::from(r.byte()) + 1;
    let bytes = r.rest();
    let Some(m) = masker() else { return };
    let mut filter = crate::cmd::mask::Filter::new(size, m);
    for piece in bytes.chunks(split) {
        let _ = filter.feed(piece);
    }
    let _ = filter.finish();
    for e in filter.explained() {
        // --explain never shows the value, only where it was.
        let _ = e.fingerprint.len();
    }
    if let Some(m) = masker() {
        let masked = m.mask_text(&text(bytes));
        assert!(!m.contains_secret(&masked) || m.contains_secret(&text(bytes)), "masking made a secret appear");
    }
}

// --- chunks and the chain --------------------------------------------------

fn keys() -> &'static (HostKey, HostKey) {
    static KEYS: OnceLock<(HostKey, HostKey)> = OnceLock::new();
    KEYS.get_or_init(|| (HostKey::from_seed([7; 32]), HostKey::from_seed([9; 32])))
}

/// Target `chunk`: the envelope codec. The bytes are parsed as a chunk (and,
/// when they are one, verified and inflated); then they are sealed as a
/// payload, which must parse back to the same payload.
pub fn chunk(data: &[u8]) {
    let (key, other) = keys();
    if let Ok(chunk) = Chunk::parse(data.to_vec()) {
        let _ = chunk.verify(&key.public());
        let _ = chunk.verify(&other.public());
        let _ = chunk.payload();
        assert_eq!(chunk.as_bytes(), data);
        assert_eq!(chunk.hash(), Digest::of(data));
    }
    let _ = envelope::decompress_bounded(data, 1 << 16);
    let session = Uuid::from_bytes([0x42; 16]);
    let sealed = seal(key, session, 3, Digest::ZERO, 10, 5, false, data);
    let parsed = Chunk::parse(sealed.into_bytes());
    assert!(parsed.is_ok(), "a sealed chunk does not parse: {parsed:?}");
    if let Ok(parsed) = parsed {
        assert_eq!(parsed.verify(&key.public()), Ok(()));
        assert_eq!(parsed.envelope().seq, 3);
        if data.len() <= MAX_CAST {
            assert_eq!(parsed.payload().as_deref(), Ok(data));
        }
    }
}

/// Chunks described by the fuzzer's bytes: mostly sealed by one of two host
/// keys, so that they get past the signature into the chain's rules, each
/// one's fields chosen by an op byte (seq, prev, final, key, session, a
/// flipped byte after signing, or raw bytes instead of a chunk).
fn chunks(r: &mut Reader<'_>, session: Uuid, max: usize) -> Vec<Vec<u8>> {
    let (key, other) = keys();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut next = 0u64;
    let mut prev = Digest::ZERO;
    let mut time = 0u64;
    while !r.is_empty() && out.len() < max {
        let op = r.byte();
        if op & 0x80 != 0 {
            let n = usize::from(r.byte()) * 2;
            out.push(r.take(n).to_vec());
            next = next.saturating_add(1);
            continue;
        }
        let seq = match op & 3 {
            0 | 1 => next,
            2 => u64::from(r.byte()),
            _ => u64::MAX - u64::from(r.byte()),
        };
        let link = if op & 4 == 0 { prev } else { Digest([r.byte(); 32]) };
        let first_us = time.saturating_add(u64::from(r.byte()));
        let last_us = first_us.saturating_add(u64::from(r.byte()));
        time = last_us;
        let signer = if op & 16 == 0 { key } else { other };
        let session = if op & 32 == 0 { session } else { Uuid::from_bytes([r.byte(); 16]) };
        let n = usize::from(r.byte());
        let cast = r.take(n);
        let mut bytes = seal(signer, session, seq, link, first_us, last_us, op & 8 != 0, cast).into_bytes();
        prev = Digest::of(&bytes);
        if op & 64 != 0 {
            let at = usize::from(r.u16()) % bytes.len().max(1);
            let flip = r.byte() | 1;
            if let Some(b) = bytes.get_mut(at) {
                *b ^= flip;
            }
        }
        next = seq.saturating_add(1);
        out.push(bytes);
    }
    out
}

/// Target `chain`: the chain verifier over the chunks [`chunks`] makes, each
/// found at its index or at no known place (the first byte says which).
pub fn chain(data: &[u8]) {
    let mut r = Reader(data);
    let mode = r.byte();
    let session = Uuid::from_bytes([0x42; 16]);
    let found: Vec<Found> = chunks(&mut r, session, 16)
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| Found {
            label: format!("{i:020}.chunk"),
            place: (mode & 1 == 0).then_some(i as u64),
            bytes,
        })
        .collect();
    let (key, other) = keys();
    let known = [key.public(), other.public()];
    let lookup = |id: &KeyId| -> Option<PublicKey> { known.iter().find(|k| k.id() == *id).cloned() };
    let given = (mode & 2 == 0).then_some(session);
    let report = verify_chain(found, given, lookup);
    for p in &report.problems {
        let _ = p.to_string();
    }
    let _ = format!("{report:?}");
    if report.is_intact() {
        assert!(report.is_complete(), "an intact chain ends with its final chunk");
    }
}

// --- the collector's ingest --------------------------------------------------

/// A collector in this process: its runtime, its data directory (in
/// /dev/shm where there is one: every accepted chunk is fsynced), and the
/// app with both fuzz host keys enrolled.
struct Collector {
    app: Option<Arc<crate::serve::app::App>>,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    inputs: u32,
}

/// Inputs one collector takes before a fresh one replaces it (its store
/// only grows).
const COLLECTOR_INPUTS: u32 = 2_000;

impl Collector {
    #[allow(clippy::expect_used)] // a harness that cannot start is not a finding
    fn start() -> Self {
        use crate::serve::store::{Store, TokenKind};
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() { tempfile::Builder::new().prefix("custos-fuzz-").tempdir_in(shm) } else { tempfile::tempdir() };
        let dir = dir.expect("a temporary directory");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let app = rt.block_on(async {
            let store = Store::open(&dir.path().join("data")).await.expect("the store opens");
            let now = crate::when::unix_now_i64();
            for k in [&keys().0, &keys().1] {
                let token = store.create_token(TokenKind::Enroll, None, now).await.expect("a token");
                let public = k.public();
                store
                    .enroll(&token, &public.id().to_string(), &public.to_string(), "fuzz", now)
                    .await
                    .expect("the store answers")
                    .expect("the key enrolls");
            }
            let config = crate::serve::config::ServeConfig { data_dir: dir.path().join("data"), ..Default::default() };
            Arc::new(crate::serve::app::App::new(store, config))
        });
        Self { app: Some(app), rt, _dir: dir, inputs: 0 }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        // The pool and the group committer close inside their runtime.
        let app = self.app.take();
        self.rt.block_on(async move { drop(app) });
    }
}

/// Target `ingest`: the collector's ingest ([`crate::serve::ingest::ingest`],
/// the handler's core: URL session and seq, body) in process, against a
/// real store. Each input uploads up to 6 chunks made by [`chunks`] to a
/// session of its own, at the URL of the chunk's seq or of one the op byte
/// picks.
pub fn ingest(data: &[u8]) {
    static COLLECTOR: Mutex<Option<Collector>> = Mutex::new(None);
    static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut guard = COLLECTOR.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if guard.as_ref().is_none_or(|c| c.inputs >= COLLECTOR_INPUTS) {
        *guard = None;
        *guard = Some(Collector::start());
    }
    let Some(collector) = guard.as_mut() else { return };
    collector.inputs += 1;
    let Some(app) = collector.app.clone() else { return };
    let n = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let session = Uuid::from_u64_pair(0x0193_0000_0000_7000, 0x8000_0000_0000_0000 | n);
    let mut r = Reader(data);
    let url_mode = r.byte();
    let bodies = chunks(&mut r, session, 6);
    collector.rt.block_on(async {
        for (i, body) in bodies.into_iter().enumerate() {
            let seq = Chunk::parse(body.clone()).map_or(i as u64, |c| c.envelope().seq);
            let url_seq = match (url_mode >> (i % 4 * 2)) & 3 {
                0 | 1 => seq.to_string(),
                2 => format!("{}", seq.wrapping_add(1)),
                _ => format!("-{seq}"),
            };
            let url_session = if url_mode == 0xff { Uuid::nil().to_string() } else { session.to_string() };
            match crate::serve::ingest::ingest(&app, &url_session, &url_seq, body).await {
                Ok(ack) => assert_eq!(ack.seq.to_string(), url_seq),
                Err(e) => {
                    let _ = e.message.len();
                }
            }
        }
    });
}

// --- asciicast and replay ----------------------------------------------------

/// Target `asciicast`: every reader of asciicast text: [`Cast::parse`],
/// [`Recording::parse`] and line by line, the collector's loose reader and
/// payload index, the marker reader.
pub fn asciicast(data: &[u8]) {
    let text = text(data);
    if let Ok(cast) = Cast::parse(&text) {
        let _ = (cast.output(), cast.pane_output(), cast.audits(), cast.exit_status());
        for m in cast.markers() {
            let _ = crate::evidence::marker::read(m);
        }
    }
    if let Ok(rec) = Recording::parse(&text) {
        let mut last = 0.0f64;
        for e in &rec.events {
            assert!(e.time >= last || e.time.is_nan(), "event times go backwards: {} after {last}", e.time);
            last = e.time;
        }
        let _ = (rec.duration(), rec.exit_status());
    }
    for (i, line) in text.lines().enumerate() {
        let _ = asciicast::parse_event_line(line, i + 1);
        if let Some(e) = asciicast::read_event_loose(line) {
            let _ = e.text();
            let _ = asciicast::parse_size(&e.text());
        }
    }
    let _ = crate::serve::index::index_payload(data, true, 0);
    let _ = crate::serve::index::index_payload(data, false, u64::MAX - 1);
}

/// The screen sizes the replay target builds: the emulator allocates every
/// cell up front, so a header may not ask for more than this many cells
/// here (see `docs/benchmarks.md`, Fuzzing).
const REPLAY_MAX_CELLS: usize = 400 * 200;

/// Target `replay_index`: a recording parsed and indexed for replay
/// (keyframes every 256 bytes or 1 s, so an input makes several), every
/// keyframe restored, the text index searched for a word of the input.
pub fn replay_index(data: &[u8]) {
    let text = text(data);
    let Ok(rec) = Recording::parse(&text) else { return };
    let too_large = |cols: u16, rows: u16| usize::from(cols) * usize::from(rows) > REPLAY_MAX_CELLS;
    if too_large(rec.cols, rec.rows)
        || rec.events.iter().any(|e| matches!(e.kind, asciicast::Kind::Resize { cols, rows } if too_large(cols, rows)))
    {
        return;
    }
    let index = Index::build_with(rec.cols, rec.rows, &rec.events, Spacing { bytes: 256, secs: 1.0 });
    for k in &index.keyframes {
        let _ = k.restore();
    }
    let _ = index.keyframe_for(rec.events.len() / 2);
    let query = text.split_whitespace().nth(3).unwrap_or("a");
    let hits = index.text.search(query, 0, true, 10);
    for h in &hits {
        assert!(h.line < index.text.len());
    }
    let _ = index.text.search(query, index.text.len(), false, 10);
    let _ = index.text.contains(query);
    let _ = index.text.first_line_at(rec.events.len());
}
