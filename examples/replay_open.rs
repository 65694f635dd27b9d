//! First and second open of a long session in `custos replay`, from a
//! session's signed chunk directory: the first open verifies the chain,
//! joins the payloads and builds the keyframe index; the second finds the
//! index in the cache (keyed by the content's SHA-256) and only verifies
//! and parses.
//!
//! `cargo run --release --example replay_open -- 200` (MB of output).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Instant;

use custos::evidence::{seal, Digest, HostKey};
use custos::tui::replay::source::{LocalSource, Source as _};

fn line(i: u64) -> String {
    match i % 6 {
        0 => format!("\x1b[32m2026-11-26T12:00:{:02}Z\x1b[0m INFO req={i:08x} handled GET /api/v1/items/{} in {}ms\r\n", i % 60, i * 7, i % 250),
        1 => format!("\x1b[38;5;{}m{:>10}\x1b[0m  drwxr-xr-x  \x1b[01;34mdir_{i}\x1b[0m\r\n", i % 256, i * 4096),
        2 => format!("{{\"ts\":{i},\"level\":\"debug\",\"msg\":\"{}\"}}\r\n", "x".repeat((i % 200) as usize)),
        3 => format!("漢字テキスト {i} 🙂 café ümlaut ────────\r\n"),
        4 => format!("\x1b[1;31mERROR\x1b[0m req={i:08x} failed: connection reset by peer\r\n"),
        _ => format!("plain text line number {i} with some words in it\r\n"),
    }
}

fn main() {
    let mb: usize = std::env::args().nth(1).map_or(200, |a| a.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let key = HostKey::generate();
    let session = uuid::Uuid::now_v7();
    let chunks = dir.path().join("chunks").join(session.to_string());
    std::fs::create_dir_all(&chunks).unwrap();

    // One hour of 8 KB output events, cut into pieces of about 512 KB.
    let events = mb * 1_000_000 / 8192;
    let interval = 3600.0 / events as f64;
    let mut piece = String::from("{\"version\":3,\"term\":{\"cols\":120,\"rows\":39},\"timestamp\":1795700000}\n");
    let (mut seq, mut prev, mut i, mut at_us, mut first_us, mut total) = (0u64, Digest::ZERO, 0u64, 0u64, 0u64, 0usize);
    let started = Instant::now();
    for n in 0..events {
        let mut data = String::with_capacity(8400);
        while data.len() < 8192 {
            i += 1;
            data.push_str(&line(i));
        }
        if n % 100 == 0 {
            piece.push_str(&format!("[0.000, \"m\", \"{{\\\"command\\\":\\\"make test {n}\\\",\\\"verdict\\\":\\\"allow\\\"}}\"]\n"));
        }
        piece.push_str(&format!("[{interval:.6}, \"o\", {}]\n", serde_json::to_string(&data).unwrap()));
        at_us += (interval * 1e6) as u64;
        let last = n + 1 == events;
        if piece.len() > 512 * 1024 || last {
            let chunk = seal(&key, session, seq, prev, first_us, at_us, last, piece.as_bytes());
            std::fs::write(chunks.join(format!("{seq:020}.chunk")), chunk.as_bytes()).unwrap();
            total += piece.len();
            prev = chunk.hash();
            seq += 1;
            first_us = at_us;
            piece.clear();
        }
    }
    eprintln!("wrote {seq} chunks, {:.0} MB of cast, in {:.1} s", total as f64 / 1e6, started.elapsed().as_secs_f64());

    let cache = dir.path().join("cache");
    let id = chunks.display().to_string();
    for label in ["first open (verify, join, build index, save cache)", "second open (verify, join, load cached index)"] {
        let mut source = LocalSource::new(&chunks, Some(cache.clone())).with_keys(vec![key.public()]);
        let t = Instant::now();
        let opened = source.open(&id).unwrap();
        println!("{label}: {:.2} s ({:?}, {} events)", t.elapsed().as_secs_f64(), opened.summary.verification, opened.recording.events.len());
    }
    // The cache on disk, and what it would take uncompressed.
    let (mut stored, mut plain) = (0u64, 0u64);
    for dir in std::fs::read_dir(&cache).unwrap().flatten() {
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let bytes = std::fs::read(file.path()).unwrap();
            stored += bytes.len() as u64;
            plain += zstd::decode_all(bytes.as_slice()).map_or(0, |d| d.len() as u64);
        }
    }
    println!("index cache: {:.1} MB on disk, {:.1} MB uncompressed", stored as f64 / 1e6, plain as f64 / 1e6);
}
