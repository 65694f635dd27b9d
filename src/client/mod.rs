//! The HTTP client side of the collector API: [`Collector`] (one
//! connection, every route the clients use, errors sorted below), and the
//! parts built on it:
//!
//! - `upload`: the uploader, delivering spooled chunks (`custos upload`,
//!   the recorder's `--follow` uploader);
//! - `enroll`: registering a host key with its proof;
//! - `download`: a collector's copy of a session, fetched for offline
//!   checking (`verify`/`export --server`);
//! - `approval`: the recorder's approval agent (`custos approval-agent`);
//! - `sse`: the Server-Sent Events parser of the live routes, shared by
//!   `replay --follow` and `custos approve`.
//!
//! The commands' flags and output are in `cmd` (`upload`, `enroll`,
//! `sessions`, `collector` for the shared `--server`/`--token` flags).
//! This side imports nothing from the collector (`serve`): what both must
//! agree on lives in `evidence` and `approval`.
//!
//! Errors are sorted by what the caller should do about them
//! ([`ClientError::is_retryable`]): a network failure or a 5xx answer means
//! "keep the chunk and try again later", a 4xx answer means the collector
//! refused this request for a reason that retrying will not change.

pub mod approval;
pub mod download;
pub mod enroll;
pub mod sse;
pub mod upload;


use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("collector URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot reach the collector at {url}: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("the collector answered {status} to {what}: {code}: {message}")]
    Refused { what: String, status: u16, code: String, message: String, body: Value },
    #[error("the collector's answer to {what} is not what this custos expects: {reason}")]
    Protocol { what: String, reason: String },
}

impl ClientError {
    /// Whether trying again later may succeed (network down, collector
    /// overloaded or its storage failing); refusals are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Refused { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            ClientError::Url { .. } | ClientError::Protocol { .. } => false,
        }
    }

    /// The error code from a refusal's JSON body (`out_of_order`, `conflict`, ...).
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The collector's acknowledgement of an uploaded chunk.
#[derive(Debug, Clone, Deserialize)]
pub struct Ack {
    pub seq: u64,
    pub hash: String,
    pub stored_now: bool,
}

/// Where a session stands on the collector.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Head {
    pub last_seq: u64,
    pub hash: String,
    #[serde(default)]
    pub last_us: u64,
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// A stored chunk as listed by the collector.
#[derive(Debug, Clone, Deserialize)]
pub struct ChunkInfo {
    pub seq: u64,
    pub hash: String,
    pub size: u64,
    pub is_final: bool,
}

/// A connection to one collector.
#[derive(Clone)]
pub struct Collector {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Collector {
    /// `base` is the collector's URL (`http://127.0.0.1:8470`); `token` the
    /// bearer token for reading (uploads need none).
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let url_err = |reason: &str| ClientError::Url { url: base.to_owned(), reason: reason.to_owned() };
        let trimmed = base.trim().trim_end_matches('/');
        if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
            return Err(url_err("must start with http:// or https://"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("custos/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| url_err(&e.to_string()))?;
        Ok(Self { base: trimmed.to_owned(), http, token })
    }

    /// The same collector and token with a connection pool of its own: for
    /// use on another runtime (a pooled connection is driven by the runtime
    /// that opened it, so one runtime must not reuse another's).
    pub fn fresh(&self) -> Result<Self, ClientError> {
        Self::new(&self.base, self.token.clone())
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authed(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request`; a non-success status becomes [`ClientError::Refused`]
    /// carrying the collector's JSON error.
    async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let response =
            request.send().await.map_err(|source| ClientError::Transport { url: self.base.clone(), source })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        Err(ClientError::Refused {
            what: what.to_owned(),
            status: status.as_u16(),
            code: field("error").unwrap_or_else(|| "http".into()),
            message: field("message").unwrap_or_else(|| text.chars().take(200).collect()),
            body,
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, what: &str, request: reqwest::RequestBuilder) -> Result<T, ClientError> {
        let response = self.send(what, request).await?;
        let bytes = response.bytes().await.map_err(|source| ClientError::Transport { url: self.base.clone(), source })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol { what: what.to_owned(), reason: e.to_string() })
    }

    pub async fn put_chunk(&self, session: &str, seq: u64, bytes: Vec<u8>) -> Result<Ack, ClientError> {
        let what = format!("chunk {seq} of session {session}");
        let request = self
            .http
            .put(self.url(&format!("/v1/sessions/{session}/chunks/{seq}")))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        self.json(&what, request).await
    }

    /// The session's last stored chunk, or `None` if nothing is stored yet.
    /// The uploading host proves itself with `key` (the collector answers
    /// only for sessions that key signed); without one, the bearer token.
    pub async fn head(&self, session: &str, key: Option<&crate::evidence::HostKey>) -> Result<Option<Head>, ClientError> {
        use base64::Engine as _;
        let what = format!("the head of session {session}");
        let mut request = self.http.get(self.url(&format!("/v1/sessions/{session}/head")));
        match key {
            Some(key) => {
                let now = crate::when::unix_now_i64();
                let signature = key.sign(&crate::evidence::key::head_proof_message(session, now));
                request = request
                    .header("X-Custos-Key", key.public().id().to_string())
                    .header("X-Custos-Date", now.to_string())
                    .header("X-Custos-Signature", base64::engine::general_purpose::STANDARD.encode(signature));
            }
            None => request = self.authed(request),
        }
        match self.json(&what, request).await {
            Ok(head) => Ok(Some(head)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Asks `/healthz` whether the collector is up. Answers its clock (the
    /// `Date` header of the answer, unix seconds) when it sent one.
    pub async fn health(&self) -> Result<Option<i64>, ClientError> {
        let response = self.send("GET /healthz", self.http.get(self.url("/healthz"))).await?;
        let date = response.headers().get(reqwest::header::DATE).and_then(|d| d.to_str().ok()).and_then(|d| httpdate::parse_http_date(d).ok());
        Ok(date.and_then(|d| d.duration_since(std::time::UNIX_EPOCH).ok()).and_then(|d| i64::try_from(d.as_secs()).ok()))
    }

    pub async fn enroll(&self, token: &str, public_key: &str, proof: &str, name: &str) -> Result<Value, ClientError> {
        let body = serde_json::json!({"token": token, "public_key": public_key, "proof": proof, "name": name});
        let request = self
            .http
            .post(self.url("/v1/enroll"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        self.json("the enrollment", request).await
    }

    /// `GET /v1/sessions` with query parameters.
    pub async fn sessions(&self, query: &[(&str, String)]) -> Result<Vec<Value>, ClientError> {
        #[derive(Deserialize)]
        struct List {
            sessions: Vec<Value>,
        }
        let request = self.authed(self.http.get(self.url("/v1/sessions")).query(query));
        Ok(self.json::<List>("the session search", request).await?.sessions)
    }

    pub async fn session(&self, id: &str) -> Result<Value, ClientError> {
        let request = self.authed(self.http.get(self.url(&format!("/v1/sessions/{id}"))));
        self.json(&format!("session {id}"), request).await
    }

    pub async fn chunk_list(&self, id: &str) -> Result<Vec<ChunkInfo>, ClientError> {
        #[derive(Deserialize)]
        struct List {
            chunks: Vec<ChunkInfo>,
        }
        let request = self.authed(self.http.get(self.url(&format!("/v1/sessions/{id}/chunks"))));
        Ok(self.json::<List>(&format!("the chunk list of {id}"), request).await?.chunks)
    }

    pub async fn chunk(&self, id: &str, seq: u64) -> Result<Vec<u8>, ClientError> {
        let what = format!("chunk {seq} of {id}");
        let request = self.authed(self.http.get(self.url(&format!("/v1/sessions/{id}/chunks/{seq}"))));
        let response = self.send(&what, request).await?;
        let bytes = response.bytes().await.map_err(|source| ClientError::Transport { url: self.base.clone(), source })?;
        Ok(bytes.to_vec())
    }

    pub async fn cast(&self, id: &str) -> Result<Vec<u8>, ClientError> {
        let request = self.authed(self.http.get(self.url(&format!("/v1/sessions/{id}/cast"))));
        let response = self.send(&format!("the recording of {id}"), request).await?;
        let bytes = response.bytes().await.map_err(|source| ClientError::Transport { url: self.base.clone(), source })?;
        Ok(bytes.to_vec())
    }

    /// A session's command markers: `{"at_us", "text"}` each, in order.
    pub async fn markers(&self, id: &str) -> Result<Vec<Value>, ClientError> {
        #[derive(Deserialize)]
        struct List {
            markers: Vec<Value>,
        }
        let request = self.authed(self.http.get(self.url(&format!("/v1/sessions/{id}/markers"))));
        Ok(self.json::<List>(&format!("the markers of {id}"), request).await?.markers)
    }

    /// Opens the live stream of a session's chunks (Server-Sent Events),
    /// from chunk `from` on. No overall timeout: a follow lasts as long as
    /// the session.
    pub async fn follow(&self, id: &str, from: u64) -> Result<reqwest::Response, ClientError> {
        let request = self
            .authed(self.http.get(self.url(&format!("/v1/sessions/{id}/follow"))))
            .query(&[("from", from.to_string())])
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .timeout(Duration::from_secs(366 * 86_400));
        self.send(&format!("following {id}"), request).await
    }

    /// The auditors' access log (`GET /v1/audit/access`).
    pub async fn access_log(&self, query: &[(&str, String)]) -> Result<Vec<Value>, ClientError> {
        #[derive(Deserialize)]
        struct List {
            accesses: Vec<Value>,
        }
        let request = self.authed(self.http.get(self.url("/v1/audit/access")).query(query));
        Ok(self.json::<List>("the access log", request).await?.accesses)
    }

    /// The enrolled host keys, as `ed25519:...` text.
    pub async fn keys(&self) -> Result<Vec<String>, ClientError> {
        #[derive(Deserialize)]
        struct Key {
            public_key: String,
        }
        #[derive(Deserialize)]
        struct List {
            keys: Vec<Key>,
        }
        let request = self.authed(self.http.get(self.url("/v1/keys")));
        Ok(self.json::<List>("the key list", request).await?.keys.into_iter().map(|k| k.public_key).collect())
    }
}

/// The enrollment proof's message: a wire fact shared with the collector,
/// so it lives with the key (`evidence::key`).
pub use crate::evidence::key::enroll_proof_message;

/// The collector's URL: `flag` (`--server`), else `[collector] url` of the
/// configuration; without a trailing slash.
pub fn collector_url(flag: Option<&str>) -> anyhow::Result<String> {
    use anyhow::Context as _;
    let url = match flag {
        Some(s) => s.to_owned(),
        None => crate::config::Config::load(false, std::env::var("CUSTOS_CONFIG").ok().as_deref())?
            .collector
            .url
            .context("no collector: pass --server URL or set [collector] url in the config")?,
    };
    Ok(url.trim_end_matches('/').to_owned())
}

/// The bearer token for reading, from (in order) `--token`, the
/// `CUSTOS_TOKEN` environment variable, `--token-file`, or
/// `~/.config/custos/token` if it exists.
pub fn resolve_token(flag: Option<&str>, file: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    use anyhow::Context as _;
    if let Some(t) = flag.filter(|t| !t.is_empty()) {
        return Ok(Some(t.to_owned()));
    }
    if let Ok(t) = std::env::var("CUSTOS_TOKEN") {
        if !t.trim().is_empty() {
            return Ok(Some(t.trim().to_owned()));
        }
    }
    let default_file = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")))
        .map(|d| d.join("custos").join("token"));
    let (path, required) = match (file, default_file) {
        (Some(p), _) => (p.to_owned(), true),
        (None, Some(p)) => (p, false),
        (None, None) => return Ok(None),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_owned()).filter(|t| !t.is_empty())),
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading the token file {}", path.display())),
    }
}

/// A single-threaded runtime for the CLI's client commands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context as _;
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")
}
