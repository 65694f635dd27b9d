//! Throughput of the secret detectors (`mask::Detectors::scan`), which run
//! over every rendered frame and every row that scrolls off under a flood.
//!
//! `cargo bench --bench mask`. A plain timing loop like `benches/render.rs`:
//! lines are scanned in screens of 40, and MB/s is per core (one thread).
//! Compare figures from one run; the machine is shared.
//!
//! `cargo bench --bench mask -- WORD` runs only the measurements whose name
//! contains WORD, and `CUSTOS_BENCH_SCALE=N` does 1/N of the work: together
//! they let `valgrind --tool=cachegrind` count the instructions of one
//! measurement, which, unlike time on a shared VM, does not vary between
//! runs (see docs/benchmarks.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use custos::mask::{Context, Detectors, MaskingConfig};

/// Lines like a busy terminal's, with no secrets: logs with timestamps and
/// ids, `ls -l`, JSON, prose, hex, `seq`, shell prompts.
fn plain_line(i: u64) -> String {
    match i % 10 {
        0 => format!("2026-11-26T12:00:{:02}.{:06}Z INFO req={i:08x} handled GET /api/v1/items/{} in {}ms", i % 60, i % 1_000_000, i * 7, i % 250),
        1 => format!("-rw-r--r--  1 alice staff {:>10} Nov 26 12:{:02} file_{i}.log", i * 4096, i % 60),
        2 => format!("{{\"ts\":{i},\"level\":\"debug\",\"msg\":\"cache miss\",\"key\":\"user:{i}\",\"took_ms\":{}}}", i % 90),
        3 => format!("commit {:040x} Merge pull request #{} from feature/branch-{}", u128::from(i) * 0x9e37_79b9_7f4a_7c15, i % 9000, i % 77),
        4 => format!("{i}"),
        5 => format!("alice@web01:~/src/project-{}$ ls -la /etc | grep conf", i % 13),
        6 => format!("    at com.example.service.Handler.process(Handler.java:{}) [app-1.2.{}.jar:?]", i % 400, i % 20),
        7 => format!("tcp   ESTAB  0  0  10.0.{}.{}:443  192.168.1.{}:{}  users:((\"nginx\",pid={},fd=12))", i % 256, (i * 3) % 256, i % 250, 40000 + i % 20000, 1000 + i % 30000),
        8 => "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.".to_string(),
        _ => format!("550e8400-e29b-41d4-a716-{:012x}  {:>8} KB  /var/lib/docker/overlay2/{:016x}", i, i % 100_000, i.wrapping_mul(0x2545_f491_4f6c_dd1d)),
    }
}

/// One line in eight carries a (fake) secret of some kind.
fn secret_line(i: u64) -> String {
    match i % 8 {
        0 => format!("export GITHUB_TOKEN=ghp_FakeToken{i:026}"),
        1 => "card 4111 1111 1111 1111 exp 12/29".to_string(),
        2 => format!("{{\"user\":\"u{i}\",\"password\":\"Fake-{i}\",\"ok\":true}}"),
        3 => "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string(),
        4 => format!("DATABASE_URL=postgres://app:Fake{i}@db.internal:5432/app"),
        5 => "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.FAKEsignature0123".to_string(),
        6 => "IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789".to_string(),
        _ => format!("AKIAIOSFODNN7EXAMPLE sk_live_FAKE{i:020}"),
    }
}

fn corpus(bytes: usize, secrets: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut total = 0;
    let mut i = 0u64;
    while total < bytes {
        i += 1;
        let line = if secrets && i.is_multiple_of(8) { secret_line(i / 8) } else { plain_line(i) };
        total += line.len() + 1;
        lines.push(line);
    }
    lines
}

/// The name filter and the work divisor (see the module doc).
fn options() -> (Option<String>, usize) {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let scale = std::env::var("CUSTOS_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).filter(|n| *n > 0).unwrap_or(1);
    (filter, scale)
}

fn wanted(name: &str) -> bool {
    options().0.is_none_or(|f| name.contains(f.as_str()))
}

fn measure(name: &str, bytes: usize, mut f: impl FnMut() -> usize) {
    if !wanted(name) {
        return;
    }
    let mut best = Duration::MAX;
    let mut found = 0;
    for _ in 0..3 {
        let t = Instant::now();
        found = black_box(f());
        best = best.min(t.elapsed());
    }
    let mbs = bytes as f64 / 1e6 / best.as_secs_f64();
    println!("{name:<52} {mbs:8.1} MB/s  ({:.3} s per {} MB, {found} findings)", best.as_secs_f64(), bytes / 1_000_000);
}

fn main() {
    let detectors = Detectors::new(&MaskingConfig::default()).unwrap();
    let mut with_rule = MaskingConfig::default();
    with_rule.custom.push(custos::mask::CustomRule {
        name: "ticket".into(),
        regex: "TKT-[0-9A-F]{16}".into(),
        checksum: None,
        context: None,
        group: None,
    });
    let with_rule = Detectors::new(&with_rule).unwrap();
    for (label, secrets) in [("no secrets", false), ("1 line in 8 with a secret", true)] {
        let lines = corpus(16_000_000 / options().1, secrets);
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        measure(&format!("scan, screens of 40 lines, {label}"), bytes, || {
            refs.chunks(40).map(|screen| detectors.scan(screen).len()).sum()
        });
        measure(&format!("scan_from (scrolled rows), {label}"), bytes, || {
            let mut ctx = Context::new();
            refs.chunks(400).map(|batch| detectors.scan_from(&mut ctx, batch).len()).sum()
        });
        measure(&format!("scan + one custom regex, {label}"), bytes, || {
            refs.chunks(40).map(|screen| with_rule.scan(screen).len()).sum()
        });
        measure(&format!("pending_prefix on every line, {label}"), bytes, || {
            refs.iter().filter(|l| detectors.pending_prefix(l).is_some()).count()
        });
    }
    // A frame as the session sees it: 40 lines of 120 columns.
    let screen: Vec<String> = (0..40u64).map(|i| format!("{:<120}", plain_line(i))).collect();
    let refs: Vec<&str> = screen.iter().map(String::as_str).collect();
    let frames = u32::try_from(20_000 / options().1).unwrap_or(1).max(1);
    let name = "one 40x120 frame, no secrets";
    if !wanted(name) {
        return;
    }
    let t = Instant::now();
    for _ in 0..frames {
        black_box(detectors.scan(black_box(&refs)));
    }
    println!("{name:<52} {:8.1} µs per frame", t.elapsed().as_secs_f64() * 1e6 / f64::from(frames));
}
