//! Load generator for `custos serve`: N concurrent sessions over loopback,
//! each uploading `--rate` signed chunks per second (default 1, the
//! recorder's cadence), for a fixed time; reports chunks/s acknowledged and
//! ack latency percentiles.
//! The collector verifies every signature and link and fsyncs every chunk
//! and row before it answers, as in production.
//!
//! ```sh
//! cargo build --release --bin custos --example collector_load
//! target/release/examples/collector_load --sessions 1000 --seconds 30
//! target/release/examples/collector_load --sessions 1000 --rate 5 --seconds 20
//! ```
//!
//! It starts `custos serve` itself (`--custos PATH`, default
//! `target/release/custos`) with a temporary data directory, enrolls a key,
//! and pre-seals every chunk before the clock starts, so the generator's
//! own signing does not compete with the collector during the run. Both
//! share the machine's cores: the numbers are a floor.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::BufRead as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use custos::evidence::{seal, Digest, HostKey};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

/// About a second of busy terminal output, as the recorder would cut it.
fn piece(session: uuid::Uuid, seq: u64) -> String {
    let mut text = String::new();
    if seq == 0 {
        text.push_str(&format!(
            "{{\"version\":3,\"term\":{{\"cols\":120,\"rows\":40}},\"timestamp\":1764115200,\"env\":{{}},\"custos\":{{\"session_id\":\"{session}\",\"user\":\"load\",\"uid\":1000,\"host\":\"bench\",\"shell\":\"/bin/bash\",\"mode\":\"interactive\",\"command\":null,\"identity\":null}}}}\n"
        ));
    }
    text.push_str(&format!("[0.100000, \"m\", \"kubectl get pods -n team-{seq}\"]\n"));
    for i in 0..20 {
        text.push_str(&format!(
            "[0.040000, \"o\", \"pod-{seq}-{i:03}   1/1   Running   0   {i}m   10.0.{seq}.{i}   node-{}\\r\\n\"]\n",
            i % 7
        ));
    }
    text
}

fn main() {
    let sessions: usize = arg("--sessions", "1000").parse().unwrap();
    let seconds: u64 = arg("--seconds", "30").parse().unwrap();
    let rate: u64 = arg("--rate", "1").parse().unwrap();
    assert!(rate >= 1, "--rate is chunks per second per session, at least 1");
    let custos = arg("--custos", "target/release/custos");
    let dir = tempfile::tempdir().unwrap();

    let mut server = std::process::Command::new(&custos)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start custos serve");
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().to_owned();
    let token = std::process::Command::new(&custos)
        .args(["serve", "token", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();

    let key = HostKey::generate();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let collector = custos::client::Collector::new(&url, None).unwrap();
    {
        use base64::Engine as _;
        let proof = base64::engine::general_purpose::STANDARD.encode(key.sign(&custos::client::enroll_proof_message(&token)));
        rt.block_on(collector.enroll(&token, &key.public().to_string(), &proof, "bench")).unwrap();
    }

    let per_session = seconds * rate;
    eprintln!("sealing {} chunks ...", sessions as u64 * per_session);
    let started = Instant::now();
    let mut plans = Vec::with_capacity(sessions);
    let mut chunk_bytes = 0usize;
    for _ in 0..sessions {
        let session = uuid::Uuid::now_v7();
        let mut prev = Digest::ZERO;
        let mut chunks = Vec::new();
        let tick = 1_000_000 / rate;
        for seq in 0..per_session {
            let c = seal(&key, session, seq, prev, seq * tick, seq * tick + tick * 9 / 10, seq + 1 == per_session, piece(session, seq).as_bytes());
            prev = c.hash();
            chunk_bytes += c.as_bytes().len();
            chunks.push(c.into_bytes());
        }
        plans.push((session.to_string(), chunks));
    }
    eprintln!(
        "sealed in {:.1} s; mean chunk {} bytes; running {sessions} sessions x {seconds} s at {rate} chunks/s each against {url}",
        started.elapsed().as_secs_f64(),
        chunk_bytes / plans.iter().map(|p| p.1.len()).sum::<usize>().max(1)
    );

    let collector = Arc::new(collector);
    let (latencies, errors, wall) = rt.block_on(async move {
        let start = tokio::time::Instant::now() + Duration::from_millis(500);
        let mut tasks = Vec::new();
        for (i, (session, chunks)) in plans.into_iter().enumerate() {
            let collector = collector.clone();
            // Spread the sessions' ticks evenly over each tick.
            let tick = Duration::from_micros(1_000_000 / rate);
            let offset = Duration::from_micros((i as u64 * 1_000_000 / rate) / sessions as u64);
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(chunks.len());
                let mut errors = 0u64;
                for (seq, bytes) in chunks.into_iter().enumerate() {
                    tokio::time::sleep_until(start + offset + tick * seq as u32).await;
                    let t = Instant::now();
                    match collector.put_chunk(&session, seq as u64, bytes).await {
                        Ok(_) => lat.push(t.elapsed()),
                        Err(e) => {
                            errors += 1;
                            if errors == 1 {
                                eprintln!("session {session} chunk {seq}: {e}");
                            }
                        }
                    }
                }
                (lat, errors)
            }));
        }
        let t0 = Instant::now();
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (lat, e) = t.await.unwrap();
            all.extend(lat);
            errors += e;
        }
        (all, errors, t0.elapsed())
    });
    let mut lat = latencies;
    lat.sort();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or_default();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let acked = lat.len();
    println!("sessions={sessions} seconds={seconds} rate={rate} acked={acked} errors={errors}");
    println!(
        "throughput={:.0} chunks/s over {:.1} s (offered {} chunks/s)",
        acked as f64 / wall.as_secs_f64(),
        wall.as_secs_f64(),
        sessions as u64 * rate
    );
    println!(
        "ack latency ms: p50={:.1} p90={:.1} p99={:.1} max={:.1}",
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(lat.last().copied().unwrap_or_default())
    );
    let _ = server.kill();
    let _ = server.wait();
}
