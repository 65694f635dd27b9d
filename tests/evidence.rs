//! The evidence format from the outside: the test vectors in
//! `testdata/evidence/` (regenerated here byte for byte, and read back by a
//! reader written from `docs/format.md` alone), and `custos keygen`,
//! `custos verify` and `custos export` as an operator runs them.
//!
//! `CUSTOS_WRITE_VECTORS=1 cargo test --test evidence vectors` rewrites the
//! vectors after a deliberate format change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/shell.rs"]
mod shell;
#[path = "support/fixtures.rs"]
mod fixtures;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use custos::evidence::{Chunk, Chunker, ChunkerConfig, Digest, EvidenceWriter, HostKey};
use custos::evidence::asciicast::{Event, Header, SessionInfo};
use serde_json::{json, Value};
use uuid::Uuid;

const CUSTOS: &str = env!("CARGO_BIN_EXE_custos");

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/evidence")
}

/// The vectors' key: seed bytes 0, 1, ..., 31.
fn vector_key() -> HostKey {
    HostKey::from_seed(std::array::from_fn(|i| u8::try_from(i).unwrap()))
}

/// The absolute time (µs since the start) of each event line of a v3 cast.
fn line_times(cast: &str) -> Vec<(u64, String)> {
    let mut at = 0u64;
    cast.lines()
        .skip(1)
        .map(|line| {
            let interval = line.trim_start_matches('[').split(',').next().unwrap();
            let (s, us) = interval.split_once('.').unwrap();
            at += s.parse::<u64>().unwrap() * 1_000_000 + us.parse::<u64>().unwrap();
            (at, format!("{line}\n"))
        })
        .collect()
}

/// The vectors, built from `session.cast` with the vector key: 250 ms or
/// 2 KiB per chunk.
fn build_vectors() -> (Uuid, String, Vec<Chunk>) {
    let cast = std::fs::read_to_string(vectors_dir().join("session.cast")).unwrap();
    let header: Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    let session = Uuid::parse_str(header["custos"]["session_id"].as_str().unwrap()).unwrap();
    let header_line = format!("{}\n", cast.lines().next().unwrap());
    let config = ChunkerConfig::new(250_000, 2048).unwrap();
    let mut chunker = Chunker::new(Arc::new(vector_key()), session, header_line.as_bytes(), config).unwrap();
    let mut chunks = Vec::new();
    for (at, line) in line_times(&cast) {
        chunks.extend(chunker.push(at, line.as_bytes()).unwrap());
    }
    chunks.push(chunker.finish());
    (session, cast, chunks)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn vectors_json(session: Uuid, chunks: &[Chunk]) -> Value {
    let key = vector_key();
    let seed: Vec<u8> = (0u8..32).collect();
    json!({
        "about": "custos chunk format v1 test vectors: see docs/format.md",
        "zstd": format!("libzstd {}, level 3, one frame, single-threaded", zstd::zstd_safe::version_string()),
        "key": {
            "seed": hex(&seed),
            "public_key": key.public().to_string(),
            "public_key_hex": hex(&key.public().to_bytes()),
            "key_id": key.public().id().to_string(),
        },
        "session": session.to_string(),
        "cast": "session.cast",
        "chunks": chunks.iter().map(|c| {
            let e = c.envelope();
            json!({
                "file": format!("{session}/{:020}.chunk", e.seq),
                "seq": e.seq,
                "prev": e.prev.to_string(),
                "payload_sha256": e.payload_sha256.to_string(),
                "first_us": e.first_us,
                "last_us": e.last_us,
                "is_final": e.is_final,
                "key_id": e.key_id.to_string(),
                "payload_len": c.compressed().len(),
                "chunk_len": c.as_bytes().len(),
                "hash": c.hash().to_string(),
                "signature": hex(c.signature()),
                "cast_text": String::from_utf8(c.payload().unwrap()).unwrap(),
            })
        }).collect::<Vec<_>>(),
    })
}

#[test]
fn vectors_regenerate_byte_for_byte() {
    let (session, cast, chunks) = build_vectors();
    assert!(chunks.len() >= 4, "the vectors should show several cuts: {}", chunks.len());
    let dir = vectors_dir();
    let json_text = format!("{}\n", serde_json::to_string_pretty(&vectors_json(session, &chunks)).unwrap());
    if std::env::var_os("CUSTOS_WRITE_VECTORS").is_some() {
        let sdir = dir.join(session.to_string());
        let _ = std::fs::remove_dir_all(&sdir);
        std::fs::create_dir_all(&sdir).unwrap();
        for c in &chunks {
            std::fs::write(sdir.join(format!("{:020}.chunk", c.envelope().seq)), c.as_bytes()).unwrap();
        }
        std::fs::write(dir.join("vectors.json"), &json_text).unwrap();
        std::fs::write(dir.join("host.key.pub"), format!("# custos test vector key (seed 00 01 .. 1f)\n{}\n", vector_key().public()))
            .unwrap();
    }
    assert_eq!(std::fs::read_to_string(dir.join("vectors.json")).unwrap(), json_text, "vectors.json differs");
    for c in &chunks {
        let file = dir.join(session.to_string()).join(format!("{:020}.chunk", c.envelope().seq));
        assert!(std::fs::read(&file).unwrap() == c.as_bytes(), "{} differs from a fresh seal", file.display());
    }
    let joined: Vec<u8> = chunks.iter().flat_map(|c| c.payload().unwrap()).collect();
    assert_eq!(String::from_utf8(joined).unwrap(), cast);
}

/// A reader written from the table in docs/format.md, using the crypto and
/// compression crates directly rather than custos's codec.
#[test]
fn vectors_read_back_by_the_documented_layout() {
    use ed25519_dalek::{Signature, VerifyingKey};
    use sha2::Digest as _;
    let vectors: Value = serde_json::from_str(&std::fs::read_to_string(vectors_dir().join("vectors.json")).unwrap()).unwrap();
    let public: [u8; 32] = hex_decode(vectors["key"]["public_key_hex"].as_str().unwrap()).try_into().unwrap();
    let key = VerifyingKey::from_bytes(&public).unwrap();
    assert_eq!(hex(&sha2::Sha256::digest(public)[..8]), vectors["key"]["key_id"]);
    let mut prev = [0u8; 32];
    let mut cast = Vec::new();
    for v in vectors["chunks"].as_array().unwrap() {
        let b = std::fs::read(vectors_dir().join(v["file"].as_str().unwrap())).unwrap();
        let u64_at = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap());
        assert_eq!(&b[0..8], b"CUSTOSCK");
        assert_eq!(u16::from_be_bytes([b[8], b[9]]), 1);
        assert_eq!(u16::from_be_bytes([b[10], b[11]]) == 1, v["is_final"].as_bool().unwrap());
        assert_eq!(Uuid::from_slice(&b[12..28]).unwrap().to_string(), vectors["session"]);
        assert_eq!(u64_at(28), v["seq"].as_u64().unwrap());
        assert_eq!(b[36..68], prev, "prev of chunk {}", v["seq"]);
        assert_eq!(hex(&b[68..100]), v["payload_sha256"]);
        assert_eq!(u64_at(100), v["first_us"].as_u64().unwrap());
        assert_eq!(u64_at(108), v["last_us"].as_u64().unwrap());
        assert_eq!(hex(&b[116..124]), v["key_id"]);
        let n = u32::from_be_bytes(b[124..128].try_into().unwrap()) as usize;
        assert_eq!(n, v["payload_len"].as_u64().unwrap() as usize);
        assert_eq!(b.len(), 128 + n + 64);
        let payload = &b[128..128 + n];
        assert_eq!(hex(&sha2::Sha256::digest(payload)), v["payload_sha256"]);
        let sig = Signature::from_bytes(b[128 + n..].try_into().unwrap());
        key.verify_strict(&b[..128 + n], &sig).unwrap();
        assert_eq!(hex(&b[128 + n..]), v["signature"]);
        let text = zstd::stream::decode_all(payload).unwrap();
        assert_eq!(String::from_utf8(text.clone()).unwrap(), v["cast_text"]);
        cast.extend(text);
        prev = sha2::Sha256::digest(&b).into();
        assert_eq!(hex(&prev), v["hash"]);
    }
    assert_eq!(cast, std::fs::read(vectors_dir().join("session.cast")).unwrap());
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// A scratch area: a config whose host key lives in it, and a spool.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[recording]\nspool_dir = \"{0}/spool\"\n[evidence]\nkey = \"{0}/host.key\"\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("custos.toml"), config).unwrap();
        Scratch { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn custos(&self, args: &[&str]) -> Output {
        Command::new(CUSTOS).args(args).env("CUSTOS_CONFIG", self.path().join("custos.toml")).output().unwrap()
    }

    /// A copy of the vector session to damage.
    fn vector_session(&self) -> PathBuf {
        let (session, _, _) = build_vectors();
        let to = self.path().join(session.to_string());
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(vectors_dir().join(session.to_string())).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
        to
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn keygen_writes_a_private_key_and_its_public_half_and_keeps_an_existing_one() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = Scratch::new();
    let out = s.custos(&["keygen"]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let key = HostKey::load(&s.path().join("host.key")).unwrap();
    assert_eq!(printed, key.public().to_string());
    assert_eq!(std::fs::metadata(s.path().join("host.key")).unwrap().permissions().mode() & 0o777, 0o600);
    let public = std::fs::read_to_string(s.path().join("host.key.pub")).unwrap();
    assert!(public.contains(&printed), "{public}");

    let again = s.custos(&["keygen"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("--force"), "{}", text(&again));
    let kept = s.custos(&["keygen", "--if-missing"]);
    assert!(kept.status.success());
    assert_eq!(String::from_utf8(kept.stdout).unwrap().trim(), printed);
    let replaced = s.custos(&["keygen", "--force"]);
    assert!(replaced.status.success());
    assert_ne!(String::from_utf8(replaced.stdout).unwrap().trim(), printed);

    let elsewhere = s.path().join("other.key");
    let out = s.custos(&["keygen", "--out", elsewhere.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(HostKey::load(&elsewhere).is_ok());
}

#[test]
fn verify_passes_the_vectors_and_names_each_kind_of_damage() {
    let s = Scratch::new();
    let key_file = vectors_dir().join("host.key.pub");
    let key_arg = key_file.to_str().unwrap();
    let session = s.vector_session();
    let sess = session.to_str().unwrap();
    let out = s.custos(&["verify", "--key", key_arg, sess]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("intact and complete"), "{}", text(&out));

    // The key given as text works the same.
    let public = vector_key().public().to_string();
    assert_eq!(s.custos(&["verify", "--key", &public, sess]).status.code(), Some(0));
    // A single chunk file.
    let chunk1 = session.join(format!("{:020}.chunk", 1));
    let out = s.custos(&["verify", "--key", &public, chunk1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Without the right key: unknown key, exit 1.
    let other = HostKey::from_seed([0xee; 32]).public().to_string();
    let out = s.custos(&["verify", "--key", &other, sess]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("unknown key"), "{}", text(&out));

    // One byte changed in chunk 1's payload.
    let mut bytes = std::fs::read(&chunk1).unwrap();
    bytes[140] ^= 0x20;
    std::fs::write(&chunk1, &bytes).unwrap();
    let out = s.custos(&["verify", "--key", &public, sess]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("chunk 1 (") && text(&out).contains("payload does not match"), "{}", text(&out));
    let out = s.custos(&["verify", "--key", &public, chunk1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // Chunk 1 removed: a gap.
    std::fs::remove_file(&chunk1).unwrap();
    let out = s.custos(&["verify", "--key", &public, sess]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("chunk 1: missing"), "{}", text(&out));

    // The end removed: truncated.
    let s2 = Scratch::new();
    let session2 = s2.vector_session();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&session2).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    std::fs::remove_file(files.last().unwrap()).unwrap();
    let out = s2.custos(&["verify", "--key", &public, session2.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("truncated: no final chunk"), "{}", text(&out));

    // Two chunk files swapped: reordered.
    let s3 = Scratch::new();
    let session3 = s3.vector_session();
    let (a, b) = (session3.join(format!("{:020}.chunk", 1)), session3.join(format!("{:020}.chunk", 2)));
    let tmp = session3.join("swap");
    std::fs::rename(&a, &tmp).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&tmp, &b).unwrap();
    let out = s3.custos(&["verify", "--key", &public, session3.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("reordered"), "{}", text(&out));

    // Not evidence at all.
    let out = s.custos(&["verify", "--key", &public, s.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("is not a chunk file, a session directory"), "{}", text(&out));
    // No key anywhere.
    let out = s.custos(&["verify", sess]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no public key to verify with"), "{}", text(&out));
}

/// Records a small session through the writer into `spool`, signed with
/// the key at `key_path`; returns its chunk directory.
fn record_session(spool: &Path, key: Arc<HostKey>, outputs: &[&str]) -> PathBuf {
    let session = Uuid::now_v7();
    let info = fixtures::session_info(session, "alice", "db1");
    let header = Header::new(info, 40, 6, Some("xterm-256color".into()), 1_764_000_000);
    let mut w = EvidenceWriter::create(spool, key, &header, ChunkerConfig::new(100_000, 4096).unwrap(), u64::MAX).unwrap();
    let mut at = Duration::ZERO;
    for o in outputs {
        at += Duration::from_millis(60);
        w.write(at, &Event::Output(o)).unwrap();
    }
    w.write(at + Duration::from_millis(10), &Event::Exit(0)).unwrap();
    w.finish().unwrap();
    w.dir().to_owned()
}

#[test]
fn export_writes_each_format_and_a_spool_verifies() {
    let s = Scratch::new();
    assert!(s.custos(&["keygen"]).status.success());
    let key = Arc::new(HostKey::load(&s.path().join("host.key")).unwrap());
    let spool = s.path().join("spool");
    let outputs: Vec<String> = (1..=12).map(|i| format!("line {i}\r\n")).collect();
    let refs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let dir = record_session(&spool, key.clone(), &refs);
    let d = dir.to_str().unwrap();

    // The configured key is found without --key.
    let out = s.custos(&["verify", spool.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A session still being recorded has no end yet: in a spool that is not
    // damage, but the session on its own is not complete.
    let live_id = Uuid::now_v7();
    let info = SessionInfo { uid: 1002, ..fixtures::session_info(live_id, "carol", "db1") };
    let header = Header::new(info, 80, 24, None, 1_764_000_100);
    let mut live = EvidenceWriter::create(&spool, key.clone(), &header, ChunkerConfig::new(10_000, 4096).unwrap(), u64::MAX).unwrap();
    live.write(Duration::from_millis(50), &Event::Output("still going\r\n")).unwrap();
    live.tick(Duration::from_millis(100)).unwrap();
    let out = s.custos(&["verify", spool.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(&format!("session {live_id} (")) && text(&out).contains("recording, intact so far"), "{}", text(&out));
    let out = s.custos(&["verify", live.dir().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // Exporting it gives what there is so far, with a warning.
    let out = s.custos(&["export", live.dir().to_str().unwrap(), "--format", "txt"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "still going\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no final chunk"));
    live.write(Duration::from_millis(150), &Event::Exit(0)).unwrap();
    live.finish().unwrap();

    let cast = s.custos(&["export", d]);
    assert!(cast.status.success(), "{}", text(&cast));
    let parsed = custos::evidence::asciicast::Cast::parse(std::str::from_utf8(&cast.stdout).unwrap()).unwrap();
    assert_eq!(parsed.output(), outputs.concat());
    assert_eq!(parsed.exit_status(), Some(0));

    let txt = s.custos(&["export", d, "--format", "txt"]);
    let expected: String = (1..=12).map(|i| format!("line {i}\n")).collect();
    assert_eq!(String::from_utf8(txt.stdout).unwrap(), expected);

    let v2_file = s.path().join("out.v2.cast");
    let v2 = s.custos(&["export", d, "--format", "cast-v2", "-o", v2_file.to_str().unwrap()]);
    assert!(v2.status.success(), "{}", text(&v2));
    let v2_text = std::fs::read_to_string(&v2_file).unwrap();
    let header: Value = serde_json::from_str(v2_text.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(v2_text.lines().nth(12).unwrap(), "[0.720000, \"o\", \"line 12\\r\\n\"]");

    let json_out = s.custos(&["export", d, "--format", "json"]);
    let events: Vec<Value> = String::from_utf8(json_out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 13);
    assert!(events.iter().all(|e| e["user"] == "alice" && e["host"] == "db1"));

    // A damaged session is not exported unless asked.
    let last = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "chunk")).max().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&last, bytes).unwrap();
    let refused = s.custos(&["export", d]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("refusing to export"), "{}", text(&refused));
    let forced = s.custos(&["export", d, "--unverified"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(String::from_utf8(forced.stdout).unwrap().contains("line 12"));
    let out = s.custos(&["verify", spool.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("signature does not verify"), "{}", text(&out));
}

#[test]
fn orphan_sealing_makes_a_killed_session_verify_as_ended_abnormally() {
    use custos::evidence::spool::{seal_orphan, Orphan, SessionDir, ORPHAN_MARKER};
    let s = Scratch::new();
    assert!(s.custos(&["keygen"]).status.success());
    let key = Arc::new(HostKey::load(&s.path().join("host.key")).unwrap());
    let spool = s.path().join("spool");
    let session = Uuid::now_v7();
    let info = SessionInfo { uid: 1001, ..fixtures::session_info(session, "bob", "db2") };
    let header = Header::new(info, 80, 24, None, 1_764_000_000);
    let mut w = EvidenceWriter::create(&spool, key.clone(), &header, ChunkerConfig::new(50_000, 4096).unwrap(), u64::MAX).unwrap();
    for i in 0..5u64 {
        w.write(Duration::from_millis(100 * i), &Event::Output("work\r\n")).unwrap();
    }
    let dir = SessionDir::open(w.dir()).unwrap();
    drop(w); // killed: no final chunk, lock released
    let out = s.custos(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("truncated"), "{}", text(&out));
    assert!(matches!(seal_orphan(&dir, &key, None).unwrap(), Orphan::Sealed(_)));
    let out = s.custos(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cast = s.custos(&["export", dir.path().to_str().unwrap()]);
    assert!(String::from_utf8(cast.stdout).unwrap().ends_with(&format!("\"m\", \"{ORPHAN_MARKER}\"]\n")));
}

#[test]
fn asciinema_3_plays_the_concatenated_chunks() {
    let Some(asciinema) = shell::asciinema_3() else {
        eprintln!("SKIP: no asciinema 3 player (set ASCIINEMA_BIN or install it: cargo install asciinema)");
        return;
    };
    let s = Scratch::new();
    let key = Arc::new(HostKey::generate());
    let outputs: Vec<String> = (1..=30).map(|i| format!("\x1b[1;32mrow\x1b[0m {i} 漢字\r\n")).collect();
    let refs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let dir = record_session(&s.path().join("spool"), key.clone(), &refs);
    let cast_file = s.path().join("session.cast");
    let out = s.custos(&["export", dir.to_str().unwrap(), "--key", &key.public().to_string(), "-o", cast_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let chunks = std::fs::read_dir(&dir).unwrap().filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "chunk")).count();
    assert!(chunks > 3, "the session should span several chunks: {chunks}");

    let mut play = Command::new(asciinema);
    play.args(["play", "--speed", "20"]).arg(&cast_file).env("TERM", "xterm-256color");
    let mut player = shell::Pty::spawn(play, 6, 40);
    assert_eq!(player.wait_exit(), 0, "asciinema play failed:\n{}", player.screen_text());
    let shown = player.all_lines();
    let mut at = 0;
    for i in 1..=30 {
        let want = format!("row {i} 漢字");
        let found = shown[at..].iter().position(|l| l.trim_end() == want);
        assert!(found.is_some(), "the player did not show {want:?}; it showed:\n{}", shown.join("\n"));
        at += found.unwrap() + 1;
    }
}

#[test]
fn a_fresh_seal_of_the_first_vector_chunk_uses_the_zero_prev() {
    let (_, _, chunks) = build_vectors();
    assert_eq!(chunks[0].envelope().prev, Digest::ZERO);
    assert!(chunks[0].payload().unwrap().starts_with(b"{\"version\":3,"));
    assert!(chunks.last().unwrap().envelope().is_final);
    assert!(String::from_utf8(chunks.last().unwrap().payload().unwrap()).unwrap().contains("\"x\", \"0\"]"));
}

#[test]
fn export_cuts_a_time_range_by_position_or_by_clock_time() {
    let s = Scratch::new();
    assert!(s.custos(&["keygen"]).status.success());
    let key = Arc::new(HostKey::load(&s.path().join("host.key")).unwrap());
    // Twelve lines, one every 60 ms; the session started at 1_764_000_000.
    let outputs: Vec<String> = (1..=12).map(|i| format!("line {i}\r\n")).collect();
    let refs: Vec<&str> = outputs.iter().map(String::as_str).collect();
    let dir = record_session(&s.path().join("spool"), key, &refs);
    let d = dir.to_str().unwrap();

    // Positions: 0.3 s to 0.5 s holds lines 5 to 8; the 40x6 screen at
    // 0.3 s (lines 1-4) is redrawn first, so the excerpt opens on it.
    let out = s.custos(&["export", d, "--from", "0.3s", "--to", "0.5s"]);
    assert!(out.status.success(), "{}", text(&out));
    let cast = String::from_utf8(out.stdout).unwrap();
    let header: Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    assert_eq!(header["excerpt"], serde_json::json!({"from": "0.300000", "to": "0.500000"}));
    assert_eq!(header["custos"]["user"], "alice");
    let parsed = custos::evidence::asciicast::Cast::parse(&cast).unwrap();
    assert!(parsed.output().ends_with("line 5\r\nline 6\r\nline 7\r\nline 8\r\n"), "{cast}");
    assert!(!parsed.output().contains("line 9"), "{cast}");
    assert_eq!(parsed.exit_status(), None, "the exit is after the range");

    // Clock time: from the session's start, everything; from after its end
    // (clamped to the end), only the last screen (6 rows: lines 8 to 12).
    let out = s.custos(&["export", d, "--from", "@1764000000", "--format", "txt"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), (1..=12).map(|i| format!("line {i}\n")).collect::<String>());
    let out = s.custos(&["export", d, "--from", "2025-11-24T16:00:01Z", "--format", "txt"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), (8..=12).map(|i| format!("line {i}\n")).collect::<String>());
    let out = s.custos(&["export", d, "--from", "50%", "--format", "txt"]);
    let txt = String::from_utf8(out.stdout).unwrap();
    assert!(txt.ends_with("line 12\n"), "{txt}");

    // Bad ranges are named.
    let out = s.custos(&["export", d, "--from", "next week"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("--from") && text(&out).contains("is not a time"), "{}", text(&out));
    let out = s.custos(&["export", d, "--from", "0.5s", "--to", "0.2s"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("is before --from"), "{}", text(&out));
}
