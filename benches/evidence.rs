//! What evidence costs: the recorder's work per MB of terminal output
//! (asciicast encoding, then cutting, zstd and ed25519 in the chunker, then
//! the spool's fsynced writes), and what a recording weighs on disk
//! compared with the raw `.cast` and with gzip.
//!
//! `cargo bench --bench evidence`. A plain timing loop like `benches/mask.rs`
//! (best of three, one thread). Output arrives as the session emits it:
//! 4 KiB events, one per 16 ms frame, so a flood is cut by size (256 KiB)
//! and quiet typing by time (5 s). Compare figures from one run; the machine
//! is shared.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../tests/support/fixtures.rs"]
mod fixtures;

use std::hint::black_box;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use custos::evidence::{seal, Chunk, ChunkSpool, Chunker, ChunkerConfig, Digest, HostKey};
use custos::evidence::asciicast::{Encoder, Event, Header};
use uuid::Uuid;

/// A small deterministic generator (xorshift64*), so every run measures the
/// same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "request", "cache", "miss", "user", "session", "token", "backend", "upstream", "retry", "timeout", "queue",
    "worker", "commit", "deploy", "volume", "mount", "socket", "handler", "config", "reload", "shard", "index",
];
const MODULES: &[&str] = &["api::auth", "db::pool", "http::server", "sched", "storage::s3", "kube::watch"];
const UTF8: &[&str] = &["漢字", "café", "naïve", "Ωmega", "🙂", "→", "データ", "résumé"];

/// Terminal output like ptybench's "realistic" data: logs, colour, UTF-8,
/// long JSON lines, `ls -l`, box drawing, progress bars.
fn realistic(bytes: usize) -> String {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = String::with_capacity(bytes + 4096);
    let mut ms = 1_717_200_000_000u64;
    while out.len() < bytes {
        ms += rng.below(80);
        let ts = format!("2024-06-01T{:02}:{:02}:{:02}.{:03}Z", ms / 3_600_000 % 24, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        let words = |rng: &mut Rng, n: u64| (0..n).map(|_| rng.pick(WORDS)).collect::<Vec<_>>().join(" ");
        let line = match rng.below(10) {
            0..=3 => {
                let n = 3 + rng.below(10);
                format!("{ts} INFO  req={:08x} [{}] {} dur={}.{}ms", rng.next() as u32, rng.pick(MODULES), words(&mut rng, n), rng.below(500), rng.below(10))
            }
            4 | 5 => {
                let n = 4 + rng.below(10);
                format!("\x1b[2m{ts}\x1b[0m \x1b[33mWARN\x1b[0m req={:08x} \x1b[36m{}\x1b[0m {} \x1b[1m{}\x1b[0m", rng.next() as u32, rng.pick(MODULES), words(&mut rng, n), rng.below(99_999))
            }
            6 => format!("{ts} {}", (0..3 + rng.below(8)).map(|_| if rng.below(10) < 6 { rng.pick(UTF8) } else { rng.pick(WORDS) }).collect::<Vec<_>>().join(" ")),
            7 => {
                let n = 5 + rng.below(40);
                let parts: Vec<String> = (0..n).map(|i| format!("\"{}_{i}\":\"{}\"", rng.pick(WORDS), words(&mut rng, 2))).collect();
                format!("{ts} DEBUG payload={{{}}}", parts.join(","))
            }
            8 => format!("-rw-r--r-- 1 root root {:>8} Jun {:>2} {:02}:{:02} \x1b[01;34m{}_{}.log\x1b[0m", rng.below(10_000_000), 1 + rng.below(30), rng.below(24), rng.below(60), rng.pick(WORDS), rng.pick(WORDS)),
            _ => format!("│ {:<10} │ {:<10} │ {:<10} │", rng.pick(WORDS), rng.pick(WORDS), rng.pick(WORDS)),
        };
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out
}

/// `seq 1 N`: short, scroll-heavy, very repetitive.
fn seq_output(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes + 16);
    let mut i = 1u64;
    while out.len() < bytes {
        out.push_str(&i.to_string());
        out.push_str("\r\n");
        i += 1;
    }
    out
}

/// The output as events: pieces of about `piece` bytes (on char
/// boundaries), `gap` apart.
fn events(text: &str, piece: usize, gap: Duration) -> Vec<(Duration, &str)> {
    let mut out = Vec::new();
    let mut at = Duration::ZERO;
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + piece).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        at += gap;
        out.push((at, &text[start..end]));
        start = end;
    }
    out
}

fn header(session: Uuid) -> Header {
    let info = fixtures::session_info(session, "alice", "db1");
    Header::new(info, 120, 40, Some("xterm-256color".into()), 1_764_000_000)
}

/// The asciicast bytes of `events`.
fn encode(session: Uuid, events: &[(Duration, &str)]) -> Vec<u8> {
    let mut enc = Encoder::default();
    let mut out = Encoder::header(&header(session));
    for (at, text) in events {
        enc.event(*at, &Event::Output(text), &mut out);
    }
    out
}

/// Encoder + chunker (zstd level 3 + ed25519), as the recorder runs them.
fn chunk(key: &Arc<HostKey>, session: Uuid, events: &[(Duration, &str)]) -> Vec<Chunk> {
    let mut enc = Encoder::default();
    let mut chunker = Chunker::new(key.clone(), session, &Encoder::header(&header(session)), ChunkerConfig::default()).unwrap();
    let mut line = Vec::new();
    let mut chunks = Vec::new();
    for (at, text) in events {
        line.clear();
        enc.event(*at, &Event::Output(text), &mut line);
        chunks.extend(chunker.push(at.as_micros() as u64, &line).unwrap());
    }
    chunks.push(chunker.finish());
    chunks
}

fn best_of_3<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut result = None;
    for _ in 0..3 {
        let t = Instant::now();
        let r = black_box(f());
        best = best.min(t.elapsed());
        result = Some(r);
    }
    (best, result.unwrap())
}

fn gzip(bytes: &[u8]) -> usize {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap().len()
}

fn main() {
    let key = Arc::new(HostKey::from_seed([7; 32]));
    let mb = 32_000_000;
    let corpora = [("realistic text", realistic(mb)), ("seq (scroll-heavy)", seq_output(mb))];
    println!("throughput, per MB of terminal output (4 KiB events every 16 ms), best of 3:");
    for (name, text) in &corpora {
        let evs = events(text, 4096, Duration::from_millis(16));
        let mbs = |d: Duration| text.len() as f64 / 1e6 / d.as_secs_f64();
        let session = Uuid::now_v7();
        let (t_enc, cast) = best_of_3(|| encode(session, &evs));
        let (t_chunk, chunks) = best_of_3(|| chunk(&key, session, &evs));
        // Signing alone, over chunks of the size the flood produces.
        let (t_sign, _) = best_of_3(|| {
            chunks.iter().map(|c| key.sign(c.as_bytes()).len()).sum::<usize>()
        });
        let spool_dir = tempfile::tempdir_in(std::env::var_os("CUSTOS_BENCH_SPOOL").unwrap_or_else(|| "/var/tmp".into())).unwrap();
        let t = Instant::now();
        let mut spool = ChunkSpool::create(spool_dir.path(), session, u64::MAX).unwrap();
        for c in &chunks {
            spool.write(c).unwrap();
        }
        let t_spool = t.elapsed();
        println!("  {name}:");
        println!("    {:<46} {:8.1} MB/s", "asciicast encoding only", mbs(t_enc));
        println!("    {:<46} {:8.1} MB/s  ({} chunks)", "encoding + chunker (zstd 3 + ed25519)", mbs(t_chunk), chunks.len());
        println!(
            "    {:<46} {:8.1} ms per 100 MB  ({:.0} µs per chunk)",
            "  of which ed25519 signing",
            t_sign.as_secs_f64() * 1e3 * 100e6 / text.len() as f64,
            t_sign.as_secs_f64() * 1e6 / chunks.len() as f64
        );
        println!(
            "    {:<46} {:8.1} MB/s  ({:.2} ms per chunk, fsync file + dir)",
            "spool writes alone",
            mbs(t_spool),
            t_spool.as_secs_f64() * 1e3 / chunks.len() as f64
        );
        println!(
            "    {:<46} {:8.2} s (wall) per 100 MB",
            "recorder: encode + chunk + spool, inline",
            (t_chunk + t_spool).as_secs_f64() * 100e6 / text.len() as f64
        );
        let per_mb = |n: usize| n as f64 * 1e6 / text.len() as f64;
        let stored: usize = chunks.iter().map(|c| c.as_bytes().len()).sum();
        let zstd_only: usize = chunks.iter().map(|c| c.compressed().len()).sum();
        println!("    size per MB of terminal output:");
        println!("      {:<44} {:>10.0} bytes", "raw asciicast (.cast)", per_mb(cast.len()));
        println!("      {:<44} {:>10.0} bytes", "gzip -6 of the .cast (flate2)", per_mb(gzip(&cast)));
        println!("      {:<44} {:>10.0} bytes", "custos chunks (zstd 3 + envelopes)", per_mb(stored));
        println!("      {:<44} {:>10.0} bytes", "  of which envelopes (192 B per chunk)", per_mb(stored - zstd_only));
    }

    // A quiet interactive session: a keystroke echo every 150 ms for ten
    // minutes. Chunks are cut by time, so the envelope's share matters here.
    let session = Uuid::now_v7();
    let echo: Vec<(Duration, &str)> = (1..=4000u64).map(|i| (Duration::from_millis(150 * i), if i % 40 == 0 { "\r\n\x1b[1;32malice@db1\x1b[0m:~$ " } else { "x" })).collect();
    let cast = encode(session, &echo);
    let chunks = chunk(&key, session, &echo);
    let stored: usize = chunks.iter().map(|c| c.as_bytes().len()).sum();
    println!("interactive typing, 10 minutes (4,000 events):");
    println!("  {:<48} {:>10} bytes", "raw asciicast", cast.len());
    println!("  {:<48} {:>10} bytes", "gzip -6", gzip(&cast));
    println!("  {:<48} {:>10} bytes  ({} chunks)", "custos chunks", stored, chunks.len());

    // One seal of a full 256 KiB chunk, the recorder's pause in a flood.
    let full = realistic(256 << 10);
    let (t, _) = best_of_3(|| seal(&key, session, 1, Digest::ZERO, 0, 1, false, full.as_bytes()));
    println!("{:<50} {:8.2} ms", "seal one 256 KiB chunk (realistic text)", t.as_secs_f64() * 1e3);
}
