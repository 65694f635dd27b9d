//! Seek benchmark for `custos replay`: a generated one-hour session of about
//! 200 MB of output (the target case), measured as an auditor
//! meets it: parsing the `.cast`, building the index on first open, saving
//! and loading the cached index, then seeks to random times from random
//! positions (p50/p99/max) and searches across the whole session.
//!
//! `cargo bench --bench replay` (`REPLAY_BENCH_MB=50` for a smaller run).
//! Plain timing loops, like the other benches; the machine is shared, so
//! compare figures from one run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../tests/support/fixtures.rs"]
mod fixtures;

use std::time::{Duration, Instant};

use custos::evidence::asciicast::Recording;
use custos::tui::replay::index::Index;
use custos::tui::replay::player::Player;


/// An asciicast v3 text: one hour, `bytes` of output in events of about
/// 8 KB, a command marker every 30 s, a full-screen program now and then.
fn session(bytes: usize) -> String {
    let events = bytes / 8192;
    let interval = 3600.0 / events as f64;
    let mut text = String::with_capacity(bytes + bytes / 4);
    text.push_str("{\"version\":3,\"term\":{\"cols\":120,\"rows\":39},\"timestamp\":1795700000}\n");
    let mut i = 0u64;
    let mut since_marker = 0.0;
    for n in 0..events {
        let mut data = String::with_capacity(8400);
        if n % 5000 == 2500 {
            data.push_str("\x1b[?1049h\x1b[H\x1b[2J");
        }
        if n % 5000 == 2600 {
            data.push_str("\x1b[?1049l");
        }
        while data.len() < 8192 {
            i += 1;
            data.push_str(&fixtures::terminal_line(i));
        }
        if n == events * 7 / 10 {
            data.push_str("the rare string zebra-quartz-1234\r\n");
        }
        since_marker += interval;
        if since_marker >= 30.0 {
            since_marker = 0.0;
            text.push_str(&format!("[0.000, \"m\", \"{{\\\"command\\\":\\\"make test {n}\\\",\\\"verdict\\\":\\\"allow\\\"}}\"]\n"));
        }
        text.push_str(&format!("[{interval:.6}, \"o\", "));
        text.push_str(&serde_json::to_string(&data).unwrap());
        text.push_str("]\n");
    }
    text
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let mb: usize = std::env::var("REPLAY_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let t = Instant::now();
    let text = session(mb * 1_000_000);
    println!("generated {:.0} MB of asciicast v3 in {:.1} s", text.len() as f64 / 1e6, t.elapsed().as_secs_f64());

    let t = Instant::now();
    let recording = Recording::parse(&text).unwrap();
    let parse = t.elapsed();
    let output: usize = recording.events.iter().map(|e| e.data.len()).sum();
    drop(text);
    println!(
        "parse: {:.2} s ({:.0} MB/s), {} events, {:.0} MB of output, {:.0} s long",
        parse.as_secs_f64(),
        output as f64 / 1e6 / parse.as_secs_f64(),
        recording.events.len(),
        output as f64 / 1e6,
        recording.duration()
    );

    let t = Instant::now();
    let index = Index::build(recording.cols, recording.rows, &recording.events);
    let build = t.elapsed();
    let keyframe_bytes: usize = index.keyframes.iter().map(|k| k.primary.len() + k.alternate.as_ref().map_or(0, String::len)).sum();
    println!(
        "index build (first open): {:.2} s ({:.0} MB/s), {} keyframes ({:.1} MB), {} text lines",
        build.as_secs_f64(),
        output as f64 / 1e6 / build.as_secs_f64(),
        index.keyframes.len(),
        keyframe_bytes as f64 / 1e6,
        index.text.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    index.save(dir.path(), 1, 2).unwrap();
    let save = t.elapsed();
    let t = Instant::now();
    let loaded = Index::load(dir.path(), 1, 2).unwrap();
    let load = t.elapsed();
    let cache: u64 = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    println!(
        "index cache: save {:.2} s, load (later opens) {:.2} s, {:.0} MB on disk",
        save.as_secs_f64(),
        load.as_secs_f64(),
        cache as f64 / 1e6
    );

    let mut player = Player::new(recording, loaded);
    let duration = player.duration();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut seeks = Vec::new();
    for _ in 0..300 {
        let target = random() * duration;
        let t = Instant::now();
        player.seek(target);
        seeks.push(t.elapsed());
        std::hint::black_box(player.screen().cursor());
    }
    seeks.sort();
    println!(
        "seek to a random time: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} seeks)",
        ms(percentile(&seeks, 0.5)),
        ms(percentile(&seeks, 0.99)),
        ms(*seeks.last().unwrap()),
        seeks.len()
    );

    let mut steps = Vec::new();
    player.seek(duration / 3.0);
    for _ in 0..200 {
        let t = Instant::now();
        player.step();
        steps.push(t.elapsed());
    }
    steps.sort();
    println!("step one event (8 KB): p50 {:.2} ms, p99 {:.2} ms", ms(percentile(&steps, 0.5)), ms(percentile(&steps, 0.99)));

    let mut commands = Vec::new();
    player.seek(0.0);
    for _ in 0..50 {
        let t = Instant::now();
        player.next_command();
        commands.push(t.elapsed());
    }
    commands.sort();
    println!("next command: p50 {:.1} ms, p99 {:.1} ms", ms(percentile(&commands, 0.5)), ms(percentile(&commands, 0.99)));

    for query in ["zebra-quartz-1234", "ERROR req=0000fffe"] {
        let mut searches = Vec::new();
        for _ in 0..5 {
            player.seek(0.0);
            let t = Instant::now();
            let hit = player.search(query, true);
            searches.push(t.elapsed());
            assert!(hit.is_some(), "{query} not found");
        }
        searches.sort();
        println!("search {query:?} from the start, then seek: p50 {:.0} ms", ms(percentile(&searches, 0.5)));
    }
}
