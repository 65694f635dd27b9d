#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
//! The collector end to end: a real `custos serve` on port 0 as a child
//! process, real files, real SQLite, chunks signed with the evidence API,
//! and the real `custos upload` and `custos enroll`.

#[path = "support/collector.rs"]
mod collector;

use std::process::Stdio;
use std::time::Duration;

use collector::*;
use custos::evidence::Chunk;
use uuid::Uuid;

struct World {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    config: std::path::PathBuf,
    server: Server,
    key: custos::evidence::HostKey,
    key_path: std::path::PathBuf,
}

/// A running collector with one enrolled host key.
fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let config = empty_config(&root);
    let server = Server::start(&root.join("data"));
    let (key, key_path) = host_key(&root);
    server.enroll(&config, &key_path);
    World { _dir: dir, root, config, server, key, key_path }
}

fn upload(w: &World, spool: &std::path::Path, extra: &[&str]) -> std::process::Output {
    custos(&w.config)
        .args(["upload", "--spool"])
        .arg(spool)
        .args(["--server", &w.server.url, "--key"])
        .arg(&w.key_path)
        .args(extra)
        .output()
        .unwrap()
}

fn metric(server: &Server, line_start: &str) -> u64 {
    let r = server.get("/metrics", Some(server.token()));
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no {line_start} in {text}"))
}

#[test]
fn a_chain_uploaded_reads_back_byte_identical_and_searchable() {
    let w = world();
    let session = Uuid::now_v7();
    let pieces = cast_pieces(session, "alice", "db1", 3, Some(0));
    let chunks = seal_chain(&w.key, session, &pieces, true);
    let id = session.to_string();
    for c in &chunks {
        let r = w.server.put_chunk(&id, c.envelope().seq, c.as_bytes());
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.json()["hash"], c.hash().to_string());
    }
    // Idempotent: the same bytes again answer 200, and nothing is added.
    let again = w.server.put_chunk(&id, 1, chunks[1].as_bytes());
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["stored_now"], false);

    let cast = w.server.get(&format!("/v1/sessions/{id}/cast"), Some(w.server.token()));
    assert_eq!(cast.status, 200);
    assert_eq!(cast.text(), pieces.concat(), "the cast is the pieces, byte for byte");

    let meta = w.server.json(&format!("/v1/sessions/{id}"));
    assert_eq!(meta["session"]["user"], "alice");
    assert_eq!(meta["session"]["host"], "db1");
    assert_eq!(meta["session"]["shell"], "/bin/bash");
    assert_eq!(meta["session"]["chunks"], 3);
    assert_eq!(meta["session"]["exit_status"], 0);
    assert_eq!(meta["session"]["ended_abnormally"], false);
    assert_eq!(meta["verification"]["state"], "intact", "{meta}");

    let head = w.server.head_as_host(&w.key, &id, 0).json();
    assert_eq!(head["last_seq"], 2);
    assert_eq!(head["final"], true);
    assert_eq!(head["hash"], chunks[2].hash().to_string());

    // Search: by command text (any case), user, host, time; misses miss.
    let found = |q: &str| -> Vec<String> {
        w.server.json(&format!("/v1/sessions?{q}"))["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(found("command=ECHO%20STEP-2"), vec![id.clone()]);
    assert_eq!(found("user=alice&host=db1"), vec![id.clone()]);
    assert!(found("user=bob").is_empty());
    assert!(found("command=rm%20-rf").is_empty());
    assert_eq!(found("since=2025-11-26&until=2025-11-27"), vec![id.clone()]);
    assert!(found("until=2025-11-25").is_empty());
    assert_eq!(w.server.get("/v1/sessions?since=last%20tuesday", Some(w.server.token())).code(), "malformed");

    // The CLI reader.
    let out = custos(&w.config)
        .args(["sessions", "--server", &w.server.url, "--command", "step-1", "--format", "json"])
        .env("CUSTOS_TOKEN", w.server.token())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["id"], id);
    let table = custos(&w.config)
        .args(["sessions", "--server", &w.server.url, "--user", "alice", "--token", w.server.token()])
        .output()
        .unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains(&id) && table.contains("exit 0"), "{table}");

    assert_eq!(metric(&w.server, "custos_chunks_received_total"), 3);
    assert_eq!(metric(&w.server, "custos_chunks_duplicate_total"), 1);
    assert_eq!(metric(&w.server, "custos_sessions "), 1);
}

/// Where a chunk's bytes go is by size: a small one into the database in
/// its row's transaction (one fsync for a whole batch of uploads), a large
/// one into a file of its own first. Both kinds, uploaded by many sessions
/// at once, survive the collector being SIGKILLed right after their
/// acknowledgements, read back byte for byte, and tampering with either
/// kind on the collector's disk is caught.
#[test]
fn small_chunks_ride_their_rows_large_ones_get_files_and_all_survive_a_kill() {
    let mut w = world();
    let sessions: Vec<(Uuid, Vec<String>, Vec<Chunk>)> = (0..24)
        .map(|_| {
            let session = Uuid::now_v7();
            let mut pieces = cast_pieces(session, "alice", "db1", 5, Some(0));
            pieces[3].push_str(&noise_output(200_000));
            let chunks = seal_chain(&w.key, session, &pieces, true);
            assert!(chunks[3].as_bytes().len() > custos::serve::store::INLINE_MAX);
            assert!(chunks[2].as_bytes().len() < 4096);
            (session, pieces, chunks)
        })
        .collect();
    let server = &w.server;
    std::thread::scope(|scope| {
        for (session, _, chunks) in &sessions {
            scope.spawn(move || {
                for c in chunks {
                    let r = server.put_chunk(&session.to_string(), c.envelope().seq, c.as_bytes());
                    assert_eq!(r.status, 201, "{}", r.text());
                }
            });
        }
    });
    // Files only for the large chunks.
    let mut files: Vec<String> = Vec::new();
    for dir in std::fs::read_dir(w.server.data_dir.join("chunks")).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            files.push(f.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    assert_eq!(files.len(), sessions.len(), "{files:?}");
    assert!(files.iter().all(|f| f == &format!("{:020}.chunk", 3)), "{files:?}");

    // Killed without a chance to flush anything, and started again.
    let (addr, data, token) = (w.server.addr().to_owned(), w.server.data_dir.clone(), w.server.admin_token.clone());
    w.server.kill();
    w.server = Server::start_with(&data, &addr, &[], None);
    w.server.admin_token = token;
    for (session, pieces, chunks) in &sessions {
        let id = session.to_string();
        assert_eq!(w.server.get(&format!("/v1/sessions/{id}/cast"), Some(w.server.token())).text(), pieces.concat());
        assert_eq!(w.server.json(&format!("/v1/sessions/{id}"))["verification"]["state"], "intact");
        // A retry is still recognised, and a different chunk still refused.
        assert_eq!(w.server.put_chunk(&id, 2, chunks[2].as_bytes()).status, 200);
    }
    let (session, pieces, _) = &sessions[0];
    let forged = seal_chain(&w.key, *session, &[pieces[0].clone(), pieces[1].clone(), "[0.1, \"o\", \"forged\"]\n".into()], false);
    assert_eq!(w.server.put_chunk(&session.to_string(), 2, forged[2].as_bytes()).status, 409);

    // Tampering on disk, in the database and in a file, is caught.
    let (small, large) = (sessions[1].0.to_string(), sessions[2].0.to_string());
    tamper_stored_chunk(&w.server.data_dir, &small, 2);
    tamper_stored_chunk(&w.server.data_dir, &large, 3);
    for (id, seq) in [(&small, 2), (&large, 3)] {
        let meta = w.server.json(&format!("/v1/sessions/{id}"));
        assert_eq!(meta["verification"]["state"], "failed", "{meta}");
        assert!(meta["verification"]["problem"].as_str().unwrap().contains(&format!("chunk {seq}")), "{meta}");
    }
}

#[test]
fn reading_needs_the_admin_token() {
    let w = world();
    for path in ["/v1/sessions", "/v1/keys", "/v1/alerts"] {
        assert_eq!(w.server.get(path, None).status, 401, "{path}");
        assert_eq!(w.server.get(path, Some("cst_wrong")).status, 401, "{path}");
        assert_eq!(w.server.get(path, Some(w.server.token())).status, 200, "{path}");
    }
    let keys = w.server.json("/v1/keys");
    assert_eq!(keys["keys"][0]["public_key"], w.key.public().to_string());
    // A 401 says how to pass a token and where one comes from.
    for token in [None, Some("cst_wrong")] {
        let r = w.server.get("/v1/sessions", token);
        let message = r.json()["message"].as_str().unwrap().to_owned();
        for hint in ["Authorization: Bearer", "--token-file", "custos serve token --kind admin", "custos serve approver"] {
            assert!(message.contains(hint), "{hint:?} missing from {message:?}");
        }
    }
}

#[test]
fn different_bytes_at_a_stored_seq_conflict_and_raise_a_tamper_alert() {
    let w = world();
    let session = Uuid::now_v7();
    let id = session.to_string();
    let chunks = seal_chain(&w.key, session, &cast_pieces(session, "alice", "db1", 2, None), false);
    for c in &chunks {
        assert_eq!(w.server.put_chunk(&id, c.envelope().seq, c.as_bytes()).status, 201);
    }
    // A validly signed but different chunk 1 (a rewritten history).
    let forged = custos::evidence::seal(&w.key, session, 1, chunks[0].hash(), 0, 1, false, b"[0.1, \"o\", \"nothing to see\"]\n");
    let r = w.server.put_chunk(&id, 1, forged.as_bytes());
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.code(), "conflict");
    let alerts = w.server.json("/v1/alerts");
    let alert = &alerts["alerts"][0];
    assert_eq!(alert["kind"], "conflict");
    assert_eq!(alert["session_id"], id);
    assert_eq!(alert["seq"], 1);
    // The stored chunk is untouched.
    let stored = w.server.get(&format!("/v1/sessions/{id}/chunks/1"), Some(w.server.token()));
    assert_eq!(stored.body, chunks[1].as_bytes());
}

#[test]
fn a_chunk_from_an_unenrolled_key_is_rejected() {
    let w = world();
    let stranger = custos::evidence::HostKey::generate();
    let session = Uuid::now_v7();
    let chunks = seal_chain(&stranger, session, &cast_pieces(session, "mallory", "x", 1, None), false);
    let r = w.server.put_chunk(&session.to_string(), 0, chunks[0].as_bytes());
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.code(), "unknown_key");
    assert!(r.json()["message"].as_str().unwrap().contains("not enrolled"));
    assert_eq!(w.server.head_as_host(&w.key, &session.to_string(), 0).status, 404);
    assert_eq!(w.server.head_as_host(&stranger, &session.to_string(), 0).status, 401);
}

#[test]
fn a_chunk_replayed_into_another_session_is_rejected() {
    let w = world();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let chunks_a = seal_chain(&w.key, a, &cast_pieces(a, "alice", "db1", 2, None), false);
    let chunks_b = seal_chain(&w.key, b, &cast_pieces(b, "alice", "db1", 1, None), false);
    assert_eq!(w.server.put_chunk(&b.to_string(), 0, chunks_b[0].as_bytes()).status, 201);
    // Session a's chunk 0, then its chunk 1, pushed into session b.
    for (seq, c) in chunks_a.iter().enumerate() {
        let r = w.server.put_chunk(&b.to_string(), seq as u64, c.as_bytes());
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.code(), "envelope_mismatch");
    }
    assert_eq!(w.server.json("/v1/alerts")["alerts"][0]["kind"], "replayed_chunk");
    assert_eq!(w.server.json(&format!("/v1/sessions/{b}"))["session"]["chunks"], 1);
    // Also a seq that is not the envelope's.
    let r = w.server.put_chunk(&a.to_string(), 1, chunks_a[0].as_bytes());
    assert_eq!((r.status, r.code().as_str()), (400, "envelope_mismatch"));
}

#[test]
fn chunks_that_do_not_link_are_rejected() {
    let w = world();
    let session = Uuid::now_v7();
    let id = session.to_string();
    let chunks = seal_chain(&w.key, session, &cast_pieces(session, "alice", "db1", 3, None), false);
    // A gap: chunk 1 before chunk 0.
    let r = w.server.put_chunk(&id, 1, chunks[1].as_bytes());
    assert_eq!((r.status, r.code().as_str()), (409, "out_of_order"));
    assert_eq!(r.json()["expected_seq"], 0);
    assert_eq!(w.server.put_chunk(&id, 0, chunks[0].as_bytes()).status, 201);
    let r = w.server.put_chunk(&id, 2, chunks[2].as_bytes());
    assert_eq!(r.json()["expected_seq"], 1, "{}", r.text());
    // Chunk 1 whose prev is not chunk 0's hash.
    let unlinked = custos::evidence::seal(&w.key, session, 1, custos::evidence::Digest([7; 32]), 0, 1, false, b"[0.1, \"o\", \"x\"]\n");
    let r = w.server.put_chunk(&id, 1, unlinked.as_bytes());
    assert_eq!((r.status, r.code().as_str()), (409, "broken_link"), "{}", r.text());
    // Chunk 0 with a non-zero prev.
    let other = Uuid::now_v7();
    let bad_start = custos::evidence::seal(&w.key, other, 0, custos::evidence::Digest([1; 32]), 0, 1, false, header_line(other, "a", "b").as_bytes());
    let r = w.server.put_chunk(&other.to_string(), 0, bad_start.as_bytes());
    assert_eq!((r.status, r.code().as_str()), (409, "broken_link"));
    // After the final chunk nothing more is accepted.
    let fin = custos::evidence::seal(&w.key, session, 1, chunks[0].hash(), 0, 1, true, b"[0.1, \"x\", \"0\"]\n");
    assert_eq!(w.server.put_chunk(&id, 1, fin.as_bytes()).status, 201);
    let after = custos::evidence::seal(&w.key, session, 2, fin.hash(), 1, 2, false, b"[0.1, \"o\", \"late\"]\n");
    let r = w.server.put_chunk(&id, 2, after.as_bytes());
    assert_eq!((r.status, r.code().as_str()), (409, "session_closed"));
}

#[test]
fn malformed_oversized_and_truncated_bodies_get_a_clean_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("serve.toml");
    std::fs::write(&config_file, "max_chunk_bytes = 4096\n").unwrap();
    let server = Server::start_with(&dir.path().join("data"), "127.0.0.1:0", &["--config", config_file.to_str().unwrap()], None);
    let (key, key_path) = host_key(dir.path());
    server.enroll(&empty_config(dir.path()), &key_path);
    let session = Uuid::now_v7();
    let id = session.to_string();
    let good = seal_chain(&key, session, &cast_pieces(session, "a", "h", 1, None), false).remove(0);
    let bytes = good.as_bytes();

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("empty", Vec::new(), 400, "malformed"),
        ("garbage", b"hello, collector".to_vec(), 400, "malformed"),
        ("cut short", bytes[..bytes.len() - 10].to_vec(), 400, "malformed"),
        ("extra bytes", [bytes, b"!!"].concat(), 400, "malformed"),
        ("one bit flipped in the payload", { let mut b = bytes.to_vec(); b[140] ^= 1; b }, 400, "malformed"),
        ("signature changed", { let mut b = bytes.to_vec(); let n = b.len(); b[n - 1] ^= 1; b }, 403, "bad_signature"),
        ("too large", vec![0u8; 5000], 413, "too_large"),
    ];
    for (what, body, status, code) in cases {
        let r = server.put_chunk(&id, 0, &body);
        assert_eq!((r.status, r.code().as_str()), (status, code), "{what}: {}", r.text());
        assert!(!r.json()["message"].as_str().unwrap().is_empty(), "{what}");
    }
    // Not a UUID, not a number.
    assert_eq!(server.put_chunk("not-a-session", 0, bytes).status, 400);
    let r = http(&server.url, "PUT", &format!("/v1/sessions/{id}/chunks/minus-one"), &[], bytes);
    assert_eq!(r.status, 400);
    // A body that ends before its Content-Length.
    let mut request = format!("PUT /v1/sessions/{id}/chunks/0 HTTP/1.1\r\nHost: c\r\nContent-Length: {}\r\n\r\n", bytes.len()).into_bytes();
    request.extend_from_slice(&bytes[..bytes.len() / 2]);
    let r = raw(&server.url, &request, true);
    assert!((400..500).contains(&r.status), "truncated body: {} {}", r.status, r.text());
    // Declared too large: refused before reading it.
    let r = raw(&server.url, format!("PUT /v1/sessions/{id}/chunks/0 HTTP/1.1\r\nHost: c\r\nContent-Length: 999999999\r\n\r\n").as_bytes(), true);
    assert_eq!(r.status, 413);
    // Unknown route: JSON 404.
    assert_eq!(server.get("/v2/nothing", None).code(), "not_found");

    // Still healthy, and the good chunk still goes in.
    assert!(server.healthy());
    assert_eq!(server.put_chunk(&id, 0, bytes).status, 201);
    assert!(metric(&server, "custos_chunk_rejects_total{reason=\"malformed\"}") >= 5);
    assert_eq!(metric(&server, "custos_chunk_rejects_total{reason=\"too_large\"}"), 2);
    assert!(metric(&server, "custos_verify_failures_total") >= 1);
}

#[test]
fn enrollment_tokens_are_single_use_and_need_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = empty_config(dir.path());
    let server = Server::start(&dir.path().join("data"));
    let (_key, key_path) = host_key(dir.path());
    let token = server.enroll_token();
    let enroll = |token: &str| {
        custos(&config)
            .args(["enroll", "--server", &server.url, "--token", token, "--key"])
            .arg(&key_path)
            .output()
            .unwrap()
    };
    assert!(enroll(&token).status.success());
    let again = enroll(&token);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already used"), "{}", String::from_utf8_lossy(&again.stderr));
    let unknown = enroll("cst_made_up");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not known"));
    // An expired token.
    let out = std::process::Command::new(custos_bin())
        .args(["serve", "token", "--ttl", "1", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let short = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    std::thread::sleep(Duration::from_millis(2100));
    assert!(String::from_utf8_lossy(&enroll(&short).stderr).contains("expired"));
    // A proof by another key than the one enrolled is refused.
    let other = custos::evidence::HostKey::generate();
    let fresh = server.enroll_token();
    use base64::Engine as _;
    let proof = base64::engine::general_purpose::STANDARD.encode(other.sign(&custos::client::enroll_proof_message(&fresh)));
    let body = serde_json::json!({"token": fresh, "public_key": _key.public().to_string(), "proof": proof}).to_string();
    let r = http(&server.url, "POST", "/v1/enroll", &[("Content-Type", "application/json")], body.as_bytes());
    assert_eq!((r.status, r.code().as_str()), (403, "bad_proof"));
    let r = http(&server.url, "POST", "/v1/enroll", &[], b"{not json");
    assert_eq!((r.status, r.code().as_str()), (400, "malformed"));
    // Admins can also mint tokens over the API.
    let r = http(&server.url, "POST", "/v1/enroll-tokens", &[("Authorization", &format!("Bearer {}", server.token()))], b"");
    assert_eq!(r.status, 201);
    assert!(r.json()["token"].as_str().unwrap().starts_with("cst_"));
}

#[test]
fn a_bad_config_file_names_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("serve.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nlisten_backlog = 5\n").unwrap();
    let out = std::process::Command::new(custos_bin()).args(["serve", "--config"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(path.to_str().unwrap()) && err.contains("line 2") && err.contains("unknown field `listen_backlog`"), "{err}");
}

#[test]
fn every_route_is_in_the_openapi_description_and_served() {
    let w = world();
    let doc = w.server.get("/openapi.json", None).json();
    assert_eq!(doc, serde_json::from_str::<serde_json::Value>(custos::serve::api::OPENAPI).unwrap());
    let session = Uuid::nil();
    for (method, path) in custos::serve::api::ROUTES {
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} is not in docs/openapi.json");
        // The router has it too: whatever it answers, it is not "no such route".
        let concrete = path.replace("{id}", &session.to_string()).replace("{seq}", "0");
        let r = http(&w.server.url, method, &concrete, &[], b"");
        assert!(r.status != 405 && !(r.status == 404 && r.code() == "not_found" && r.text().contains("no such route")), "{method} {path}: {}", r.status);
    }
    // And the description lists nothing the router lacks.
    let documented: usize = doc["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, custos::serve::api::ROUTES.len());
}

#[test]
fn a_live_session_can_be_followed_over_server_sent_events() {
    use std::io::{BufRead as _, Write as _};
    let w = world();
    let session = Uuid::now_v7();
    let id = session.to_string();
    let chunks = seal_chain(&w.key, session, &cast_pieces(session, "alice", "db1", 3, Some(0)), true);
    assert_eq!(w.server.put_chunk(&id, 0, chunks[0].as_bytes()).status, 201);
    let mut stream = std::net::TcpStream::connect(w.server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(stream, "GET /v1/sessions/{id}/follow HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer {}\r\n\r\n", w.server.token()).unwrap();
    let reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let uploader = {
        let (url, chunks) = (w.server.url.clone(), chunks.clone());
        std::thread::spawn(move || {
            for c in &chunks[1..] {
                std::thread::sleep(Duration::from_millis(300));
                let r = http(&url, "PUT", &format!("/v1/sessions/{}/chunks/{}", c.envelope().session, c.envelope().seq), &[], c.as_bytes());
                assert_eq!(r.status, 201);
            }
        })
    };
    let mut seqs = Vec::new();
    let mut cast = String::new();
    let mut ended = false;
    for line in reader.lines() {
        let line = line.unwrap();
        if line == "event: end" {
            ended = true;
            break;
        }
        if let Some(data) = line.strip_prefix("data: ") {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(data) {
                if let Some(seq) = v["seq"].as_u64() {
                    seqs.push(seq);
                    cast.push_str(v["cast"].as_str().unwrap());
                }
            }
        }
    }
    uploader.join().unwrap();
    assert!(ended, "the stream ends after the final chunk");
    assert_eq!(seqs, vec![0, 1, 2]);
    assert_eq!(cast, cast_pieces(session, "alice", "db1", 3, Some(0)).concat());
}

#[test]
fn the_uploader_delivers_in_order_and_empties_the_spool() {
    let w = world();
    let spool = w.root.join("spool");
    let mut sessions = Vec::new();
    for user in ["alice", "bob"] {
        let session = Uuid::now_v7();
        let pieces = cast_pieces(session, user, "db1", 4, Some(0));
        let s = SpoolSession::create(&spool, session, false);
        for c in seal_chain(&w.key, session, &pieces, true) {
            s.write(&c);
        }
        sessions.push((session, pieces, s));
    }
    // One chunk was already delivered (a previous uploader died before
    // deleting it): idempotent, no duplicate.
    let (first, _, s0) = &sessions[0];
    let c0 = std::fs::read(s0.dir.join(format!("{:020}.chunk", 0))).unwrap();
    assert_eq!(w.server.put_chunk(&first.to_string(), 0, &c0).status, 201);

    let out = upload(&w, &spool, &["--once"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (session, pieces, s) in &sessions {
        assert!(!s.dir.exists(), "the session directory goes once its final chunk is acknowledged");
        let cast = w.server.get(&format!("/v1/sessions/{session}/cast"), Some(w.server.token()));
        assert_eq!(cast.text(), pieces.concat());
        assert_eq!(w.server.json(&format!("/v1/sessions/{session}"))["session"]["chunks"], 4);
    }
}

#[test]
fn the_uploader_survives_a_collector_killed_and_restarted_ten_seconds_later() {
    let mut w = world();
    let spool = w.root.join("spool");
    let session = Uuid::now_v7();
    let id = session.to_string();
    let n = 8;
    let pieces = cast_pieces(session, "alice", "db1", n, Some(0));
    let chunks = seal_chain(&w.key, session, &pieces, true);
    let mut s = SpoolSession::create(&spool, session, true);
    s.write(&chunks[0]);
    let mut follower = custos(&w.config)
        .args(["upload", "--spool"])
        .arg(&spool)
        .args(["--server", &w.server.url, "--key"])
        .arg(&w.key_path)
        .args(["--follow", &id, "--poll-ms", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stored = |server: &Server| -> Option<u64> {
        let r = server.head_as_host(&w.key, &id, 0);
        (r.status == 200).then(|| r.json()["last_seq"].as_u64().unwrap())
    };
    for c in &chunks[1..3] {
        s.write(c);
    }
    wait_for(20, "chunks 0..=2 delivered", || stored(&w.server) == Some(2));

    // Kill it (SIGKILL) while the session goes on; restart ten seconds later.
    let addr = w.server.addr().to_owned();
    let data = w.server.data_dir.clone();
    w.server.kill();
    for c in &chunks[3..6] {
        s.write(c);
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(10));
    assert!(s.chunk_count() >= 3, "undelivered chunks stay in the spool");
    let token = w.server.admin_token.clone();
    w.server = Server::start_with(&data, &addr, &[], None);
    w.server.admin_token = token;
    for c in &chunks[6..] {
        s.write(c);
    }
    drop(s.live_lock.take()); // the recorder exits after its final chunk

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = follower.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the follower did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(follower.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    assert!(!s.dir.exists());
    // Nothing lost, nothing duplicated, the chain verifies.
    let listed = w.server.json(&format!("/v1/sessions/{id}/chunks"));
    let seqs: Vec<u64> = listed["chunks"].as_array().unwrap().iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (0..n as u64).collect::<Vec<_>>());
    assert_eq!(w.server.get(&format!("/v1/sessions/{id}/cast"), Some(w.server.token())).text(), pieces.concat());
    assert_eq!(w.server.json(&format!("/v1/sessions/{id}"))["verification"]["state"], "intact");
}

#[test]
fn an_orphaned_session_is_sealed_uploaded_and_marked_abnormal() {
    let w = world();
    let spool = w.root.join("spool");
    let session = Uuid::now_v7();
    let id = session.to_string();
    let pieces = cast_pieces(session, "alice", "db1", 3, None);
    let chunks = seal_chain(&w.key, session, &pieces, false);
    // The recorder wrote three chunks and was killed: lock free, no final.
    let s = SpoolSession::create(&spool, session, false);
    std::fs::File::create(s.dir.join("live.lock")).unwrap();
    for c in &chunks {
        s.write(c);
    }
    let out = upload(&w, &spool, &["--once"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!s.dir.exists());
    let meta = w.server.json(&format!("/v1/sessions/{id}"));
    assert_eq!(meta["session"]["chunks"], 4, "{meta}");
    assert_eq!(meta["session"]["is_final"], true);
    assert_eq!(meta["session"]["ended_abnormally"], true);
    assert_eq!(meta["verification"]["state"], "intact");
    let cast = w.server.get(&format!("/v1/sessions/{id}/cast"), Some(w.server.token())).text();
    assert!(cast.starts_with(&pieces.concat()));
    assert!(cast.contains("ended abnormally"), "{cast}");
}

#[test]
fn a_live_session_is_not_sealed() {
    let w = world();
    let spool = w.root.join("spool");
    let session = Uuid::now_v7();
    let s = SpoolSession::create(&spool, session, true);
    for c in seal_chain(&w.key, session, &cast_pieces(session, "alice", "db1", 2, None), false) {
        s.write(&c);
    }
    let out = upload(&w, &spool, &["--once"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(s.dir.exists(), "a live session's directory stays");
    assert_eq!(s.chunk_count(), 0, "acknowledged chunks leave the spool");
    let meta = w.server.json(&format!("/v1/sessions/{session}"));
    assert_eq!(meta["session"]["is_final"], false);
    assert_eq!(meta["verification"]["state"], "incomplete");
}

#[test]
fn a_read_only_collector_disk_keeps_chunks_in_the_spool_until_it_is_fixed() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = empty_config(root);
    // Root ignores permission bits, so as root the collector runs as nobody.
    let uid = (unsafe { libc::geteuid() } == 0).then_some(65534u32);
    let data = root.join("data");
    std::fs::create_dir(&data).unwrap();
    if let Some(uid) = uid {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&data, Some(uid), Some(uid)).unwrap();
    }
    let server = Server::start_with(&data, "127.0.0.1:0", &[], uid);
    let (key, key_path) = host_key(root);
    server.enroll(&config, &key_path);
    let chunks_dir = data.join("chunks");
    std::fs::set_permissions(&chunks_dir, std::fs::Permissions::from_mode(0o500)).unwrap();

    let spool = root.join("spool");
    let session = Uuid::now_v7();
    // Chunks too large to ride in the database's transaction: these go to
    // files of their own under the read-only directory.
    let mut pieces = cast_pieces(session, "alice", "db1", 2, Some(0));
    for piece in &mut pieces {
        piece.push_str(&noise_output(200_000));
    }
    let s = SpoolSession::create(&spool, session, false);
    for c in seal_chain(&key, session, &pieces, true) {
        s.write(&c);
    }
    let run = || {
        custos(&config)
            .args(["upload", "--attempts", "2", "--spool"])
            .arg(&spool)
            .args(["--server", &server.url, "--key"])
            .arg(&key_path)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("503") && err.contains("stay in the spool"), "{err}");
    assert_eq!(s.chunk_count(), 2, "nothing is deleted without an acknowledgement");
    assert!(server.healthy());
    assert!(metric(&server, "custos_chunk_rejects_total{reason=\"storage\"}") >= 2);

    std::fs::set_permissions(&chunks_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!s.dir.exists());
    let cast = server.get(&format!("/v1/sessions/{session}/cast"), Some(server.token()));
    assert_eq!(cast.text(), pieces.concat());
}

#[test]
fn verify_and_export_work_against_the_collector_and_catch_tampering_on_its_disk() {
    let w = world();
    let session = Uuid::now_v7();
    let id = session.to_string();
    let pieces = cast_pieces(session, "alice", "db1", 3, Some(0));
    for c in seal_chain(&w.key, session, &pieces, true) {
        assert_eq!(w.server.put_chunk(&id, c.envelope().seq, c.as_bytes()).status, 201);
    }
    let run = |args: &[&str]| {
        custos(&w.config)
            .args(args)
            .args(["--server", &w.server.url, "--token", w.server.token()])
            .output()
            .unwrap()
    };
    let out = run(&["verify", &id]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact and complete: 3 chunks"));
    // With the auditor's own copy of the public key.
    let public = w.key.public().to_string();
    assert!(run(&["verify", &id, "--key", &public]).status.success());
    let out = run(&["export", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), pieces.concat());
    let out = run(&["export", &id, "--format", "txt"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("step-2"));

    // Someone with access to the collector's disk edits chunk 1.
    tamper_stored_chunk(&w.server.data_dir, &id, 1);
    let out = run(&["verify", &id]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NOT intact") && text.contains("chunk 1"), "{text}");
    let meta = w.server.json(&format!("/v1/sessions/{id}"));
    assert_eq!(meta["verification"]["state"], "failed");
    assert!(meta["verification"]["problem"].as_str().unwrap().contains("chunk 1"), "{meta}");
    // An unknown session is a clear error, not an empty success.
    let out = run(&["verify", &Uuid::now_v7().to_string()]);
    assert!(!out.status.success());
}

#[test]
fn the_timer_run_is_quiet_without_a_collector_and_the_cli_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let config = empty_config(dir.path());
    let quiet = custos(&config).args(["upload", "--once", "--if-configured", "--spool"]).arg(dir.path()).output().unwrap();
    assert!(quiet.status.success() && quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    let loud = custos(&config).args(["upload", "--once", "--spool"]).arg(dir.path()).output().unwrap();
    assert!(!loud.status.success());
    assert!(String::from_utf8_lossy(&loud.stderr).contains("no collector"));
}

/// `custos replay --server`'s source against a real collector: the list
/// carries commands and the collector's own chain verification, opening
/// plays the stored cast, tampering on the collector's disk turns the badge
/// to broken, and every read is in the access log with the token's identity.
#[test]
fn the_replay_source_reads_a_collector_and_every_access_is_logged() {
    use custos::tui::replay::source::{Source as _, Verification};
    let w = world();
    let session = Uuid::now_v7();
    let id = session.to_string();
    let pieces = cast_pieces(session, "alice", "db1", 3, Some(0));
    for c in seal_chain(&w.key, session, &pieces, true) {
        assert_eq!(w.server.put_chunk(&id, c.envelope().seq, c.as_bytes()).status, 201);
    }
    let collector = custos::client::Collector::new(&w.server.url, Some(w.server.token().to_owned())).unwrap();
    let cache = w.root.join("cache");
    let mut source = custos::tui::replay::remote::ServerSource::new(collector, Some(cache.clone())).unwrap();
    let list = source.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].id.as_str(), list[0].user.as_str(), list[0].host.as_str()), (id.as_str(), "alice", "db1"));
    assert_eq!(list[0].commands, 3);
    assert_eq!(list[0].verification, Verification::Intact);
    let opened = source.open(&id).unwrap();
    assert_eq!(opened.summary.verification, Verification::Intact);
    assert!(opened.index.text.contains("step-2"));
    assert_eq!(opened.recording.exit_status(), Some(0));
    // The index is cached by content: one cache directory, reused.
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    source.open(&id).unwrap();
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);

    // Tampering on the collector's disk is reported by the list and the player.
    tamper_stored_chunk(&w.server.data_dir, &id, 1);
    let list = source.list().unwrap();
    assert!(matches!(&list[0].verification, Verification::Broken(why) if why.contains("chunk 1")), "{list:?}");

    // The access log: who (the token's identity), which session, what, when.
    let log = w.server.json(&format!("/v1/audit/access?session={id}"));
    let accesses = log["accesses"].as_array().unwrap();
    let actions: Vec<&str> = accesses.iter().map(|a| a["action"].as_str().unwrap()).collect();
    for action in ["markers", "metadata", "cast"] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    let who = accesses[0]["who"].as_str().unwrap();
    assert!(who.starts_with("token:") && who.len() == "token:".len() + 12, "{who}");
    assert!(!log.to_string().contains(w.server.token()), "the log never holds the token itself");
    assert!(accesses.iter().all(|a| a["session"] == id.as_str() && a["at"].as_i64().unwrap() > 1_700_000_000));
    // Newest first: the last read was the metadata of the list after tampering.
    assert_eq!(accesses[0]["action"], "metadata");
    let before = accesses.len();
    // A chunk download and a follow are logged too.
    assert_eq!(w.server.get(&format!("/v1/sessions/{id}/chunks/0"), Some(w.server.token())).status, 200);
    let log = w.server.json(&format!("/v1/audit/access?session={id}&limit=1"));
    assert_eq!(log["accesses"].as_array().unwrap().len(), 1);
    assert_eq!(log["accesses"][0]["action"], "chunk");
    let all = w.server.json(&format!("/v1/audit/access?who={who}"));
    assert_eq!(all["accesses"].as_array().unwrap().len(), before + 1);

    // Only an admin reads the log; a bad filter is a clean 400.
    assert_eq!(w.server.get("/v1/audit/access", None).status, 401);
    let bad = w.server.get("/v1/audit/access?since=last%20tuesday", Some(w.server.token()));
    assert_eq!((bad.status, bad.code()), (400, "malformed".to_owned()));
    let bad = w.server.get("/v1/audit/access?colour=red", Some(w.server.token()));
    assert_eq!(bad.status, 400);
    // A session that does not exist is not found, and nothing is logged for it.
    let other = Uuid::now_v7().to_string();
    assert_eq!(w.server.get(&format!("/v1/sessions/{other}/markers"), Some(w.server.token())).status, 404);
    assert!(w.server.json(&format!("/v1/audit/access?session={other}"))["accesses"].as_array().unwrap().is_empty());
}

/// `custos replay --server URL --follow ID`: what is stored arrives first,
/// then each new chunk, over Server-Sent Events, within a second.
#[test]
fn the_replay_source_follows_a_live_session() {
    use custos::tui::replay::source::{Source as _, Verification};
    let w = world();
    let session = Uuid::now_v7();
    let id = session.to_string();
    let pieces = cast_pieces(session, "alice", "db1", 3, Some(0));
    let chunks = seal_chain(&w.key, session, &pieces, true);
    for c in &chunks[..2] {
        assert_eq!(w.server.put_chunk(&id, c.envelope().seq, c.as_bytes()).status, 201);
    }
    let collector = custos::client::Collector::new(&w.server.url, Some(w.server.token().to_owned())).unwrap();
    let mut source = custos::tui::replay::remote::ServerSource::new(collector, None).unwrap();
    let (opened, _builder, mut tail) = source.follow(&id).unwrap();
    assert!(matches!(opened.summary.verification, Verification::Incomplete(_)), "{:?}", opened.summary.verification);
    assert!(opened.index.text.contains("step-1"));
    assert_eq!(opened.recording.exit_status(), None);
    let uploaded = std::time::Instant::now();
    assert_eq!(w.server.put_chunk(&id, 2, chunks[2].as_bytes()).status, 201);
    let mut got = String::new();
    wait_for(10, "the third chunk to arrive", || {
        got.push_str(&tail.poll().unwrap());
        got.contains("step-2")
    });
    assert!(uploaded.elapsed() < Duration::from_secs(1), "delay {:?}", uploaded.elapsed());
    assert!(got.contains("\"x\""), "{got}");
    let log = w.server.json(&format!("/v1/audit/access?session={id}"));
    assert!(log["accesses"].as_array().unwrap().iter().any(|a| a["action"] == "follow"), "{log}");
}

/// `GET /v1/sessions/{id}/head` and `/metrics` are not public: without
/// credentials both answer 401, and the head's 401 is the same whether or
/// not the session exists. The head answers the uploading host (signed by
/// its enrolled key, freshly dated) for its own sessions only, and a
/// reader's token; `/metrics` answers the metrics token, the admin, and,
/// without any token, the separate metrics address.
#[test]
fn head_and_metrics_need_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let serve_config = root.join("serve.toml");
    std::fs::write(&serve_config, "metrics_token = \"metrics-0123456789abcdef\"\nmetrics_listen = \"127.0.0.1:0\"\n").unwrap();
    let server = Server::start_with(&root.join("data"), "127.0.0.1:0", &["--config", serve_config.to_str().unwrap()], None);
    let (key, key_path) = host_key(root);
    server.enroll(&empty_config(root), &key_path);
    let other_root = root.join("other");
    std::fs::create_dir_all(&other_root).unwrap();
    let (other, other_path) = host_key(&other_root);
    server.enroll(&empty_config(&other_root), &other_path);
    let session = Uuid::now_v7();
    let id = session.to_string();
    for c in seal_chain(&key, session, &cast_pieces(session, "alice", "db1", 2, None), false) {
        assert_eq!(server.put_chunk(&id, c.envelope().seq, c.as_bytes()).status, 201);
    }
    let nowhere = Uuid::now_v7().to_string();

    // No credentials: 401, the same answer for a session that exists and one that does not.
    let (a, b) = (server.get(&format!("/v1/sessions/{id}/head"), None), server.get(&format!("/v1/sessions/{nowhere}/head"), None));
    assert_eq!((a.status, b.status), (401, 401), "{} {}", a.text(), b.text());
    assert_eq!(a.body, b.body);
    assert!(a.text().contains("X-Custos-Signature"), "{}", a.text());
    assert!(!a.text().contains("hash"), "{}", a.text());

    // The uploading host, signed and dated now: its own session answers.
    let r = server.head_as_host(&key, &id, 0);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["last_seq"], 1);
    // Another enrolled host sees it as missing; a stale or future proof, a
    // proof for another session, and an unenrolled key are refused.
    let (mine, theirs) = (server.head_as_host(&other, &id, 0), server.head_as_host(&other, &nowhere, 0));
    assert_eq!((mine.status, theirs.status), (404, 404));
    assert_eq!(server.head_as_host(&key, &id, -3600).status, 401);
    assert_eq!(server.head_as_host(&key, &id, 3600).status, 401);
    let stranger = custos::evidence::HostKey::generate();
    let r = server.head_as_host(&stranger, &id, 0);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("no host is enrolled"), "{}", r.text());
    {
        // A proof made for one session does not read another.
        use base64::Engine as _;
        let date = custos::when::unix_now_i64();
        let sig = base64::engine::general_purpose::STANDARD.encode(key.sign(&custos::evidence::key::head_proof_message(&nowhere, date)));
        let (kid, date) = (key.public().id().to_string(), date.to_string());
        let h = [("X-Custos-Key", kid.as_str()), ("X-Custos-Date", date.as_str()), ("X-Custos-Signature", sig.as_str())];
        assert_eq!(http(&server.url, "GET", &format!("/v1/sessions/{id}/head"), &h, b"").status, 401);
    }
    // A reader's token reads it; a wrong token does not.
    let r = server.get(&format!("/v1/sessions/{id}/head"), Some(server.token()));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(server.get(&format!("/v1/sessions/{id}/head"), Some("cst_wrong")).status, 401);

    // /metrics: 401 bare, 200 with the metrics token or the admin's.
    let r = server.get("/metrics", None);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("metrics_token"), "{}", r.text());
    assert_eq!(server.get("/metrics", Some("metrics-0123456789abcdeX")).status, 401);
    let r = server.get("/metrics", Some("metrics-0123456789abcdef"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("custos_chunks_received_total 2"), "{}", r.text());
    assert_eq!(server.get("/metrics", Some(server.token())).status, 200);
    // The separate metrics address: /metrics without a token, nothing else.
    // Logged as `INFO metrics without a token address=http://…/metrics`.
    let printed = || {
        server.stderr.lock().unwrap().iter().filter(|l| l.contains("metrics without a token")).find_map(|l| {
            l.split_once("address=").map(|(_, u)| u.split_whitespace().next().unwrap_or_default().to_owned())
        })
    };
    wait_for(10, "the metrics address on stderr", || printed().is_some());
    let url = printed().unwrap();
    let base = url.trim_end_matches("/metrics");
    let r = http(base, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("custos_sessions 1"), "{}", r.text());
    assert_eq!(http(base, "GET", &format!("/v1/sessions/{id}/head"), &[], b"").status, 404);
}

/// `custos doctor` asks the configured collector: a FAIL with the enroll
/// command while it does not know this host's key, ok once enrolled, and
/// a FAIL naming the collector when it stops answering.
#[test]
fn doctor_asks_the_collector_whether_it_answers_and_knows_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key_path) = host_key(dir.path());
    let mut server = Server::start(&dir.path().join("data"));
    let config = dir.path().join("custos.toml");
    std::fs::write(
        &config,
        format!(
            "[recording]\nspool_dir = \"{}\"\n[evidence]\nkey = \"{}\"\n[collector]\nurl = \"{}\"\n",
            dir.path().join("spool").display(),
            key_path.display(),
            server.url
        ),
    )
    .unwrap();
    let doctor = || {
        let out = custos(&config).args(["doctor", "--config"]).arg(&config).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let line = |report: &str, level: &str, words: &str| report.lines().any(|l| l.starts_with(level) && l.contains(words));

    let report = doctor();
    assert!(line(&report, "ok", &format!("the collector {} answers", server.url)), "{report}");
    assert!(line(&report, "FAIL", "the collector refuses this host's key (no host is enrolled with key"), "{report}");
    assert!(report.contains(&format!("custos enroll --server {} --token TOKEN", server.url)), "{report}");
    assert!(line(&report, "ok", "this host's clock is within 30s of the collector's"), "{report}");

    server.enroll(&config, &key_path);
    let report = doctor();
    assert!(line(&report, "ok", "the collector knows this host's key"), "{report}");
    assert!(!line(&report, "FAIL", "collector"), "{report}");

    server.kill();
    let report = doctor();
    assert!(line(&report, "FAIL", &format!("the collector {} does not answer", server.url)), "{report}");
}

/// Enrolled as another name, every approval request of the host would be
/// refused (`wrong_host`): `custos enroll --name` refuses that at once,
/// before the token is spent, and the host's own name enrolls.
#[test]
fn enrolling_under_a_name_that_is_not_the_host_name_is_refused_before_the_token_is_spent() {
    let dir = tempfile::tempdir().unwrap();
    let config = empty_config(dir.path());
    let server = Server::start(&dir.path().join("data"));
    let (_key, key_path) = host_key(dir.path());
    let token = server.enroll_token();
    let enroll = |name: &str| custos(&config).args(["enroll", "--server", &server.url, "--token", &token, "--name", name, "--key"]).arg(&key_path).output().unwrap();
    let other = enroll("not-this-host");
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success());
    assert!(stderr.contains("--name \"not-this-host\" is not this host's name") && stderr.contains("approval requests"), "{stderr}");
    assert_eq!(server.json("/v1/keys")["keys"], serde_json::json!([]), "a key was enrolled");
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let same = enroll(&host);
    assert!(same.status.success(), "{}", String::from_utf8_lossy(&same.stderr));
}

/// `--log-format json` logs one JSON object per line on stderr, with a
/// level: the start, each refusal in the span of its request (method and
/// path), and at debug a line per request; no other output is mixed in.
#[test]
fn the_collector_logs_json_lines_with_levels_and_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with(&dir.path().join("data"), "127.0.0.1:0", &["--log-format", "json", "--log-level", "debug"], None);
    assert_eq!(server.get("/healthz", None).status, 200);
    assert_eq!(server.put_chunk("not-a-uuid", 0, b"x").status, 400);
    assert_eq!(server.get("/v1/sessions", None).status, 401);
    let log = server.stderr.clone();
    let lines = move || log.lock().unwrap().clone();
    wait_for(10, "the 401 in the log", || lines().iter().any(|l| l.contains("\"status\":401")));
    server.kill();
    let events: Vec<serde_json::Value> = lines().iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))).collect();
    let find = |level: &str, message: &str, status: Option<u64>| {
        events.iter().find(|e| e["level"] == level && e["message"] == message && status.is_none_or(|s| e["status"] == s)).cloned()
    };
    let listening = find("INFO", "listening", None).expect("the start is logged");
    assert_eq!(listening["address"], server.url.as_str());
    let bad = find("INFO", "request refused", Some(400)).expect("a refusal is logged");
    assert_eq!(bad["span"]["method"], "PUT");
    assert_eq!(bad["span"]["path"], "/v1/sessions/not-a-uuid/chunks/0");
    assert!(bad["reason"].as_str().unwrap().contains("not a UUID"), "{bad}");
    assert!(find("WARN", "request refused", Some(401)).is_some(), "{events:#?}");
    let served = find("DEBUG", "served", Some(200)).expect("debug has a line per request");
    assert_eq!(served["span"]["path"], "/healthz");
    assert!(events.iter().all(|e| e["timestamp"].is_string()), "{events:#?}");
}
