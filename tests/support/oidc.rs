//! A real OpenID provider for tests: npm `oidc-provider` (installed into
//! `~/.cache/custos-ci/oidc` on first use, as `.ci/run` does), started on a
//! loopback port with the device flow, the public client `custos`, a
//! confidential client `custos-machine` (secret `machine-secret`), and test
//! users whose groups the test chooses. [`Idp::approve`] completes the
//! browser half of a device flow over HTTP (`oidc/approve.mjs`).
//!
//! Include with `#[path = "support/oidc.rs"] mod oidc;`.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PROVIDER_VERSION: &str = "9.13";

/// The directory holding `node_modules/oidc-provider` and our scripts.
pub fn provider_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("CUSTOS_OIDC_DIR").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/custos-ci/oidc")
        });
        std::fs::create_dir_all(&dir).unwrap();
        if !dir.join("node_modules/oidc-provider/package.json").exists() {
            let status = Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", &format!("oidc-provider@{PROVIDER_VERSION}")])
                .current_dir(&dir)
                .status()
                .expect("npm must be installed to run the identity tests");
            assert!(status.success(), "npm install oidc-provider failed");
        }
        // ESM resolves packages next to the script, so the scripts live
        // beside node_modules.
        let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/oidc");
        for f in ["provider.mjs", "approve.mjs", "forge.mjs"] {
            std::fs::copy(here.join(f), dir.join(f)).unwrap();
        }
        dir
    })
    .clone()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running provider.
pub struct Idp {
    child: Child,
    pub port: u16,
    pub issuer: String,
}

impl Idp {
    /// Starts a provider whose users are `users` (login, groups).
    pub fn start(users: &[(&str, &[&str])]) -> Idp {
        Self::start_with(users, &[])
    }

    /// With extra environment: `ID_TTL`, `REFRESH_TTL`, `ISSUER`.
    pub fn start_with(users: &[(&str, &[&str])], env: &[(&str, &str)]) -> Idp {
        Self::start_on(free_port(), users, env)
    }

    /// On a given port (a restart with a new signing key keeps the issuer).
    pub fn start_on(port: u16, users: &[(&str, &[&str])], env: &[(&str, &str)]) -> Idp {
        let dir = provider_dir();
        let users: serde_json::Map<String, serde_json::Value> =
            users.iter().map(|(u, g)| ((*u).to_owned(), serde_json::json!(g))).collect();
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("provider.mjs"))
            .current_dir(&dir)
            .env("PORT", port.to_string())
            .env("USERS", serde_json::Value::Object(users).to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("node must be installed to run the identity tests");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("listening ") {
                    let _ = tx.send(issuer.to_owned());
                }
            }
        });
        let issuer = rx.recv_timeout(Duration::from_secs(30)).expect("the OpenID provider did not start");
        Idp { child, port, issuer }
    }

    /// Where this instance answers (its issuer may name another).
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Completes the browser half of the device flow for `user_code`,
    /// signing in as `login`.
    pub fn approve(&self, user_code: &str, login: &str) {
        let out = Command::new("node")
            .arg(provider_dir().join("approve.mjs"))
            .args([&self.base(), user_code, login])
            .current_dir(provider_dir())
            .output()
            .unwrap();
        assert!(out.status.success(), "approve failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The user code in a sign-in prompt (`code   ABCD-EFGH`), if shown.
pub fn user_code(text: &str) -> Option<String> {
    let rest = &text[text.find("code ")? + 5..];
    let code: String = rest.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    (code.len() >= 8).then_some(code)
}

/// Runs `custos login` against `idp` into `cache_dir` for unix user
/// `user`, approving as `login` if a prompt appears. Returns the stderr and
/// stdout text and whether a prompt was shown.
pub fn login(idp: &Idp, cache_dir: &Path, user: &str, login: &str) -> (String, String, bool) {
    let config = cache_dir.with_extension("toml");
    std::fs::create_dir_all(cache_dir.parent().unwrap()).unwrap();
    std::fs::write(&config, "").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(["login", "--issuer", &idp.issuer, "--user", user, "--cache-dir"])
        .arg(cache_dir)
        .env("CUSTOS_CONFIG", &config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut err = String::new();
    let mut prompted = false;
    let started = Instant::now();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        err.push_str(&line);
        err.push('\n');
        if let (false, Some(code)) = (prompted, user_code(&line)) {
            prompted = true;
            idp.approve(&code, login);
        }
        assert!(started.elapsed() < Duration::from_secs(90), "login took too long: {err}");
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "custos login failed: {err}");
    (err, String::from_utf8_lossy(&out.stdout).into_owned(), prompted)
}

/// The cached ID token of `user` in `cache_dir`.
pub fn cached_id_token(cache_dir: &Path, user: &str) -> String {
    let entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache_dir.join(format!("{user}.json"))).unwrap()).unwrap();
    entry["identity"]["id_token"].as_str().unwrap().to_owned()
}

/// Re-signs `jwt` with a fresh key from nowhere (same header, so the same
/// key id, unless `new_kid`).
pub fn forge(jwt: &str, new_kid: bool) -> String {
    let out = Command::new("node")
        .arg(provider_dir().join("forge.mjs"))
        .arg(jwt)
        .arg(if new_kid { "new-kid" } else { "same-kid" })
        .current_dir(provider_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "forge failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
