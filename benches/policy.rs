//! Verdict latency of the command gate's policy core (`Policy::check`) with
//! the built-in policy: typical lines, and adversarial ones (deep nesting,
//! 100 KB lines). The gate checks every line before it runs, so this is
//! added to every Enter.
//!
//! `cargo bench --bench policy`. A plain timing loop like `benches/render.rs`:
//! each line is checked many times and p50/p99 of single checks reported.
//! Compare figures from one run; the machine is shared.
//!
//! `cargo bench --bench policy -- WORD` checks only the lines whose name
//! contains WORD, and `CUSTOS_BENCH_SCALE=N` does 1/N of the checks, for
//! counting instructions with `valgrind --tool=cachegrind` (see
//! `benches/mask.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use custos::policy::{Env, Policy, Subject};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn measure(policy: &Policy, name: &str, line: &str, iterations: usize) {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.is_some_and(|f| !name.contains(f.as_str())) {
        return;
    }
    let scale = std::env::var("CUSTOS_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).filter(|n| *n > 0).unwrap_or(1);
    let iterations = (iterations / scale).max(1);
    let who = Subject { user: "alice".into(), groups: vec!["staff".into()], oidc_groups: vec![] };
    let env = Env::new("/home/alice", "/home/alice");
    let mut times = Vec::with_capacity(iterations);
    let mut verdict = None;
    for _ in 0..iterations {
        let t = Instant::now();
        let d = black_box(policy.check(black_box(line), &who, &env));
        times.push(t.elapsed());
        verdict = Some(d.verdict);
    }
    times.sort();
    println!(
        "{name:<44} {:>8} B  p50 {:>10.1?}  p99 {:>10.1?}  max {:>10.1?}  -> {}",
        line.len(),
        percentile(&times, 0.50),
        percentile(&times, 0.99),
        times.last().unwrap(),
        verdict.unwrap()
    );
}

fn main() {
    let policy = Policy::default_policy();
    println!("typical lines (2000 checks each)");
    for line in [
        "ls -la",
        "git status",
        "cd /var/log && tail -n 100 syslog | grep -i error",
        "sudo systemctl restart nginx",
        "rm -rf ./build",
        "sudo -u root rm -rf /",
        "for f in *.log; do gzip \"$f\"; done",
        "kubectl -n prod get pods -o wide | awk '{print $1}'",
        "curl -fsSL https://example.com/install.sh | sh",
        "psql -U postgres -d app -c 'SELECT count(*) FROM users'",
        "bash -c \"echo $(date) >> /tmp/log; tar czf /tmp/x.tgz ~/project\"",
        "find . -name '*.o' -print0 | xargs -0 rm -f",
    ] {
        measure(&policy, line, line, 2000);
    }
    println!("adversarial lines");
    let adversarial: Vec<(&str, String)> = vec![
        ("100 KB of words", format!("echo {}", "abcdefgh ".repeat(11_400))),
        ("100 KB single-quoted string", format!("echo '{}'", "x".repeat(100_000))),
        ("100 KB of ; lists", "echo a; ".repeat(12_800)),
        ("100 KB pipeline", format!("cat{}", " | cat".repeat(16_600))),
        ("nesting: 1000 braces", format!("{}true;{}", "{ ".repeat(1000), " }".repeat(1000))),
        ("nesting: 2000 subshells", format!("{}true{}", "(".repeat(2000), ")".repeat(2000))),
        ("nesting: 1000 $(...)", format!("{}true{}", "echo $(".repeat(1000), ")".repeat(1000))),
        ("nesting: 16 eval", format!("{}rm -rf /", "eval ".repeat(16))),
        ("refused: 50,000 '('", "(".repeat(50_000)),
        ("refused: 100 KB unterminated quote", format!("echo '{}", "x".repeat(100_000))),
    ];
    for (name, line) in &adversarial {
        measure(&policy, name, line, 30);
    }
}
