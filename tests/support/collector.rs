//! Helpers for tests that run a real `custos serve`: start it on port 0 as a
//! child process, read its address and admin token, make enrollment tokens,
//! enroll keys, build signed chains, fill a spool the way the recorder does,
//! and speak raw HTTP (so malformed requests can be sent too).
//!
//! Include with `#[path = "support/collector.rs"] mod collector;`.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custos::evidence::{seal, Chunk, Digest, HostKey};
use uuid::Uuid;

// Relative to this file: `tests/support/fixtures.rs`. A test that includes
// this module takes the fixtures from here (`collector::fixtures`): a file
// loaded as two modules is a clippy error.
#[path = "fixtures.rs"]
pub mod fixtures;
#[path = "stored.rs"]
pub mod stored;
pub use stored::copy_stored_sessions;

pub fn custos_bin() -> &'static str {
    env!("CARGO_BIN_EXE_custos")
}

/// A `custos` command with the config isolated from the machine's.
pub fn custos(config: &Path) -> Command {
    let mut cmd = Command::new(custos_bin());
    cmd.env("CUSTOS_CONFIG", config).env_remove("CUSTOS_TOKEN");
    cmd
}

/// An empty config file (built-in defaults), so /etc/custos is never read.
pub fn empty_config(dir: &Path) -> PathBuf {
    let path = dir.join("custos.toml");
    std::fs::write(&path, "").unwrap();
    path
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    /// The admin token printed on first start (None on later starts).
    pub admin_token: Option<String>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `custos serve` on a free loopback port.
    pub fn start(data_dir: &Path) -> Server {
        Self::start_with(data_dir, "127.0.0.1:0", &[], None)
    }

    /// Starts it with `listen`, extra arguments, and optionally as `uid`.
    pub fn start_with(data_dir: &Path, listen: &str, extra: &[&str], uid: Option<u32>) -> Server {
        use std::os::unix::process::CommandExt as _;
        let mut cmd = Command::new(custos_bin());
        cmd.args(["serve", "--listen", listen, "--data-dir"]).arg(data_dir).args(extra);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        let mut child = cmd.spawn().expect("spawn custos serve");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the server never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let url = line.trim().to_owned();
        assert!(url.starts_with("http://"), "custos serve printed {line:?}; stderr: {:?}", lines.lock().unwrap());
        // The token line follows the address line on a first start.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut admin_token = None;
        while Instant::now() < deadline && admin_token.is_none() {
            admin_token = lines
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| l.split_once("admin token").map(|(_, rest)| rest.rsplit(' ').next().unwrap_or("").to_owned()));
            std::thread::sleep(Duration::from_millis(20));
        }
        Server { child, url, data_dir: data_dir.to_owned(), admin_token, stderr: lines }
    }

    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    pub fn token(&self) -> &str {
        self.admin_token.as_deref().expect("first start prints an admin token")
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Response {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        http(&self.url, "GET", path, &headers, b"")
    }

    /// `GET /v1/sessions/{id}/head` as the uploading host does it: signed
    /// by `key`, dated `now + skew` seconds.
    pub fn head_as_host(&self, key: &HostKey, session: &str, skew: i64) -> Response {
        use base64::Engine as _;
        let date = custos::when::unix_now_i64() + skew;
        let signature = base64::engine::general_purpose::STANDARD.encode(key.sign(&custos::evidence::key::head_proof_message(session, date)));
        let (key_id, date) = (key.public().id().to_string(), date.to_string());
        let headers = [("X-Custos-Key", key_id.as_str()), ("X-Custos-Date", date.as_str()), ("X-Custos-Signature", signature.as_str())];
        http(&self.url, "GET", &format!("/v1/sessions/{session}/head"), &headers, b"")
    }

    pub fn put_chunk(&self, session: &str, seq: u64, bytes: &[u8]) -> Response {
        http(&self.url, "PUT", &format!("/v1/sessions/{session}/chunks/{seq}"), &[], bytes)
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path, Some(self.token()));
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    pub fn healthy(&self) -> bool {
        self.get("/healthz", None).status == 200
    }

    /// A new enrollment token, made the way an admin would on the server host.
    pub fn enroll_token(&self) -> String {
        let out = Command::new(custos_bin())
            .args(["serve", "token", "--data-dir"])
            .arg(&self.data_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Enrolls the key at `key_path` with `custos enroll`.
    pub fn enroll(&self, config: &Path, key_path: &Path) {
        let token = self.enroll_token();
        let out = custos(config)
            .args(["enroll", "--server", &self.url, "--token", &token, "--key"])
            .arg(key_path)
            .output()
            .unwrap();
        assert!(out.status.success(), "enroll: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// The `error` code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_owned()
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`).
pub fn http(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: custos\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    raw(url, &bytes, false)
}

/// Sends `bytes` as they are, optionally half-closes, and reads the answer.
pub fn raw(url: &str, bytes: &[u8], shutdown_write: bool) -> Response {
    let mut stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // A server that answers before reading everything may reset the rest.
    let _ = stream.write_all(bytes);
    if shutdown_write {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    parse_response(&answer)
}

fn parse_response(answer: &[u8]) -> Response {
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| {
        panic!("no HTTP response: {:?}", String::from_utf8_lossy(answer))
    });
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let mut body = answer[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    Response { status, head, body }
}

/// A host key saved at `dir/host.key` (mode 0600).
pub fn host_key(dir: &Path) -> (HostKey, PathBuf) {
    let path = dir.join("host.key");
    let key = HostKey::generate();
    key.save(&path).unwrap();
    (key, path)
}

/// The asciicast header line of a test session.
pub fn header_line(session: Uuid, user: &str, host: &str) -> String {
    let info = fixtures::session_info(session, user, host);
    let header = custos::evidence::asciicast::Header::new(info, 80, 24, Some("xterm".into()), 1_764_115_200);
    String::from_utf8(custos::evidence::asciicast::Encoder::header(&header)).unwrap()
}

/// The cast text of `n` chunks: a header in the first, a command marker and
/// output in each, and an exit event in the last if `exit` is given.
pub fn cast_pieces(session: Uuid, user: &str, host: &str, n: usize, exit: Option<i32>) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut text = if i == 0 { header_line(session, user, host) } else { String::new() };
            text.push_str(&format!("[0.500000, \"m\", \"echo step-{i}\"]\n[0.100000, \"o\", \"step-{i}\\r\\n\"]\n"));
            if i + 1 == n {
                if let Some(code) = exit {
                    text.push_str(&format!("[0.010000, \"x\", \"{code}\"]\n"));
                }
            }
            text
        })
        .collect()
}

/// An output event of about `len` bytes of text that zstd cannot shrink
/// much (six bits of noise per character, from a fixed seed), so the chunk
/// holding it stays large once compressed.
pub fn noise_output(len: usize) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let text: String = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state >> 58) as usize])
        })
        .collect();
    format!("[0.010000, \"o\", \"{text}\\r\\n\"]\n")
}

/// Seals `pieces` as a chain; the last is final if `final_last`.
pub fn seal_chain(key: &HostKey, session: Uuid, pieces: &[String], final_last: bool) -> Vec<Chunk> {
    let mut prev = Digest::ZERO;
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let seq = i as u64;
        let is_final = final_last && i + 1 == pieces.len();
        let chunk = seal(key, session, seq, prev, seq * 600_000, seq * 600_000 + 600_000, is_final, piece.as_bytes());
        prev = chunk.hash();
        out.push(chunk);
    }
    out
}

/// A session directory in a spool, written as the recorder writes it.
pub struct SpoolSession {
    pub dir: PathBuf,
    /// Held like the live recorder holds it; drop to "kill the recorder".
    pub live_lock: Option<std::fs::File>,
}

impl SpoolSession {
    pub fn create(spool: &Path, session: Uuid, live: bool) -> SpoolSession {
        let dir = spool.join("chunks").join(session.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let live_lock = live.then(|| {
            use std::os::fd::AsRawFd as _;
            let f = std::fs::File::create(dir.join("live.lock")).unwrap();
            assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
            f
        });
        SpoolSession { dir, live_lock }
    }

    /// Writes a chunk: temp file, fsync, rename.
    pub fn write(&self, chunk: &Chunk) {
        let seq = chunk.envelope().seq;
        let tmp = self.dir.join(format!(".{seq:020}.tmp"));
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(chunk.as_bytes()).unwrap();
        f.sync_all().unwrap();
        std::fs::rename(&tmp, self.dir.join(format!("{seq:020}.chunk"))).unwrap();
    }

    pub fn chunk_count(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().ends_with(".chunk")).count())
            .unwrap_or(0)
    }
}

/// Waits until `cond` holds, or fails after `secs`.
pub fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The one session a collector stored in `data_dir`, as cast text, once
/// its chain is complete and verifies with the host key at `key_path`.
/// Recorders with a key and a collector stream their chunks and keep none,
/// so this is where such a session's recording is read back.
pub fn stored_cast(data_dir: &Path, key_path: &Path) -> String {
    let public = HostKey::load(key_path).unwrap().public();
    let mut text = None;
    wait_for(30, "the session's final chunk at the collector", || {
        let out = tempfile::tempdir().unwrap();
        let dirs = copy_stored_sessions(data_dir, out.path());
        assert!(dirs.len() <= 1, "more than one session stored: {dirs:?}");
        let Some(dir) = dirs.first() else { return false };
        let found = custos::evidence::SessionDir::open(dir).unwrap().found().unwrap();
        let report = custos::evidence::verify_chain(found, None, |id| (public.id() == *id).then_some(public));
        if !(report.is_intact() && report.is_complete()) {
            return false;
        }
        text = Some(report.chunks.iter().map(|c| String::from_utf8(c.payload().unwrap()).unwrap()).collect::<String>());
        true
    });
    text.unwrap()
}

/// What someone with access to the collector's disk does in the tamper
/// tests: flips one bit of stored chunk `seq` of `session`, 70 bytes from
/// its end, wherever the collector keeps it (its own file, or the
/// database).
pub fn tamper_stored_chunk(data_dir: &Path, session: &str, seq: u64) {
    let dir = data_dir.join("chunks").join(session);
    if dir.join(format!("{seq:020}.chunk")).exists() {
        return tamper_chunk(&dir, seq);
    }
    stored::with_store(data_dir, async |store| {
        let (mut bytes,): (Vec<u8>,) = sqlx::query_as("SELECT bytes FROM chunks WHERE session_id = ? AND seq = ?")
            .bind(session)
            .bind(i64::try_from(seq).unwrap())
            .fetch_one(store.pool())
            .await
            .unwrap();
        let n = bytes.len();
        bytes[n - 70] ^= 0x20;
        let done = sqlx::query("UPDATE chunks SET bytes = ? WHERE session_id = ? AND seq = ?")
            .bind(bytes)
            .bind(session)
            .bind(i64::try_from(seq).unwrap())
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1);
    });
}

/// What someone with access to the disk does in the tamper tests: flips one
/// bit of chunk `seq` in a session's chunk directory (a spool's), 70 bytes
/// from its end.
pub fn tamper_chunk(session_dir: &Path, seq: u64) {
    let file = session_dir.join(format!("{seq:020}.chunk"));
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n - 70] ^= 0x20;
    std::fs::write(&file, bytes).unwrap();
}
