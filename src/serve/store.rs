//! The collector's storage: chunk files under the data directory and
//! metadata in SQLite.
//!
//! ```text
//! <data_dir>/                  0700
//!   custos.db                  SQLite (WAL, synchronous=FULL)
//!   chunks/<session-id>/<seq as 20 digits>.chunk   the bytes as uploaded
//! ```
//!
//! Invariants:
//! - A chunk's bytes reach stable storage (write, fsync, rename, fsync of the
//!   directory) before its row is committed, and its row is committed before
//!   the upload is acknowledged. So an acknowledged chunk survives a crash,
//!   and a row never points at a missing file.
//! - The `chunks` table has one row per (session, seq); its primary key is the
//!   last line of defence against two different chunks at one position.
//! - Secrets (bearer and enrollment tokens) are stored only as SHA-256 hashes.
//!
//! The chain rules themselves (what may be stored) live in `ingest`; this
//! module only stores and reads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Row as _;

use super::index::PayloadIndex;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("a stored number is out of range: {0}")]
    Range(&'static str),
}

/// What a token lets its bearer do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Read everything and manage enrollment (break-glass until OIDC roles).
    Admin,
    /// Enroll one host key, once, before it expires.
    Enroll,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Admin => "admin",
            TokenKind::Enroll => "enroll",
        }
    }
}

/// Why an enrollment was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrollRefusal {
    #[error("the enrollment token is not known")]
    UnknownToken,
    #[error("the enrollment token was already used")]
    Used,
    #[error("the enrollment token expired")]
    Expired,
    #[error("key {0} is already enrolled with a different public key")]
    KeyIdClash(String),
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct HostRow {
    pub key_id: String,
    pub public_key: String,
    pub name: String,
    pub enrolled_at: i64,
}

/// What ingest needs to know about a session to decide on the next chunk.
#[derive(Clone, Debug)]
pub struct SessionState {
    pub key_id: String,
    pub last_seq: u64,
    pub last_hash: String,
    pub is_final: bool,
    pub elapsed_us: u64,
}

/// A verified, linked chunk ready to be recorded.
pub struct NewChunk {
    pub session: String,
    pub seq: u64,
    pub hash: String,
    pub size: u64,
    pub first_us: u64,
    pub last_us: u64,
    pub is_final: bool,
    pub key_id: String,
    pub index: PayloadIndex,
    pub now: i64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionRow {
    pub id: String,
    pub key_id: String,
    pub user: Option<String>,
    pub host: Option<String>,
    pub shell: Option<String>,
    pub mode: Option<String>,
    pub command: Option<String>,
    /// Unix seconds, from the recording's header.
    pub started_at: Option<i64>,
    /// Unix seconds; set once the final chunk is stored.
    pub ended_at: Option<i64>,
    pub chunks: i64,
    pub bytes: i64,
    pub last_seq: i64,
    pub last_hash: String,
    pub is_final: bool,
    pub exit_status: Option<i32>,
    /// The session ended without an exit event (the recorder was killed and
    /// its spool sealed later).
    pub ended_abnormally: bool,
    pub received_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ChunkRow {
    pub seq: i64,
    pub hash: String,
    pub size: i64,
    pub first_us: i64,
    pub last_us: i64,
    pub is_final: bool,
    pub received_at: i64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub session_id: Option<String>,
    pub seq: Option<i64>,
    pub key_id: Option<String>,
    pub detail: String,
}

#[derive(Clone, Debug)]
pub struct NewAlert<'a> {
    pub kind: &'a str,
    pub session_id: Option<&'a str>,
    pub seq: Option<u64>,
    pub key_id: Option<&'a str>,
    pub detail: String,
    pub now: i64,
}

/// Search filters; `None` means "any".
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionFilter {
    pub user: Option<String>,
    pub host: Option<String>,
    /// Sessions still running at or after this time (unix seconds).
    pub since: Option<i64>,
    /// Sessions started at or before this time (unix seconds).
    pub until: Option<i64>,
    /// Case-insensitive substring of a command marker or the `-c` command.
    pub command: Option<String>,
    pub limit: Option<i64>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    used_at INTEGER,
    used_by TEXT
);
CREATE TABLE IF NOT EXISTS hosts (
    key_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    name TEXT NOT NULL,
    enrolled_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    user TEXT, host TEXT, shell TEXT, mode TEXT, command TEXT,
    started_at INTEGER,
    header TEXT,
    chunks INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    last_hash TEXT NOT NULL,
    elapsed_us INTEGER NOT NULL,
    is_final INTEGER NOT NULL,
    exit_status INTEGER,
    abnormal INTEGER NOT NULL DEFAULT 0,
    ended_at INTEGER,
    received_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user);
CREATE INDEX IF NOT EXISTS sessions_host ON sessions(host);
CREATE INDEX IF NOT EXISTS sessions_started ON sessions(started_at);
CREATE TABLE IF NOT EXISTS chunks (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    first_us INTEGER NOT NULL,
    last_us INTEGER NOT NULL,
    is_final INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS markers (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS markers_session ON markers(session_id);
CREATE TABLE IF NOT EXISTS execs (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS execs_session ON execs(session_id);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    session_id TEXT,
    seq INTEGER,
    key_id TEXT,
    detail TEXT NOT NULL
);
";

/// The collector's storage handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    chunks_dir: PathBuf,
}

fn to_i64(v: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Range(what))
}

fn to_u64(v: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Range(what))
}

/// The auditors' access trail (`audit` writes and reads it), created with
/// the rest of the schema.
const ACCESS_LOG_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS access_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    who TEXT NOT NULL,
    session_id TEXT NOT NULL,
    action TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS access_log_session ON access_log(session_id);
";

/// SHA-256 of a token, hex: what the database holds instead of the token.
fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A fresh random token: `cst_` and 32 random bytes in URL-safe base64.
pub fn new_token() -> Result<String, std::io::Error> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(format!("cst_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// The file a stored chunk lives in.
pub fn chunk_file(chunks_dir: &Path, session: &str, seq: u64) -> PathBuf {
    chunks_dir.join(session).join(format!("{seq:020}.chunk"))
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        crate::layout::ensure_private_dir(data_dir).map_err(io(data_dir))?;
        let chunks_dir = data_dir.join("chunks");
        crate::layout::ensure_private_dir(&chunks_dir).map_err(io(&chunks_dir))?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join("custos.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed row survives power loss, because the upload it
            // records is acknowledged (and deleted from the host's spool) next.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        sqlx::raw_sql(ACCESS_LOG_SCHEMA).execute(&pool).await?;
        Ok(Self { pool, chunks_dir })
    }

    /// The database, for modules with tables of their own (`audit`,
    /// `approvals`).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn chunks_dir(&self) -> &Path {
        &self.chunks_dir
    }

    /// Creates the first admin token if there is none; returns it (the only
    /// time it is ever shown).
    pub async fn ensure_admin_token(&self, now: i64) -> Result<Option<String>, StoreError> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM tokens WHERE kind = 'admin'").fetch_one(&self.pool).await?;
        if count > 0 {
            return Ok(None);
        }
        self.create_token(TokenKind::Admin, None, now).await.map(Some)
    }

    /// Creates a token of `kind`, valid until `expires_at` (unix seconds) if
    /// given; returns the token.
    pub async fn create_token(&self, kind: TokenKind, expires_at: Option<i64>, now: i64) -> Result<String, StoreError> {
        let token = new_token().map_err(|source| StoreError::Io { path: PathBuf::from("getrandom"), source })?;
        sqlx::query("INSERT INTO tokens (hash, kind, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(token_hash(&token))
            .bind(kind.as_str())
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(token)
    }

    /// Whether `token` is a valid admin bearer token.
    pub async fn is_admin_token(&self, token: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM tokens WHERE hash = ? AND kind = 'admin'")
            .bind(token_hash(token))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Redeems an enrollment token for `key_id` (single use, before expiry)
    /// and records the host key, in one transaction.
    pub async fn enroll(
        &self,
        token: &str,
        key_id: &str,
        public_key: &str,
        name: &str,
        now: i64,
    ) -> Result<Result<(), EnrollRefusal>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("SELECT expires_at, used_at FROM tokens WHERE hash = ? AND kind = 'enroll'")
            .bind(token_hash(token))
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(Err(EnrollRefusal::UnknownToken)) };
        let expires_at: Option<i64> = row.try_get("expires_at")?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        if used_at.is_some() {
            return Ok(Err(EnrollRefusal::Used));
        }
        if expires_at.is_some_and(|e| e <= now) {
            return Ok(Err(EnrollRefusal::Expired));
        }
        let existing: Option<(String,)> = sqlx::query_as("SELECT public_key FROM hosts WHERE key_id = ?")
            .bind(key_id)
            .fetch_optional(&mut *tx)
            .await?;
        match existing {
            Some((pk,)) if pk != public_key => return Ok(Err(EnrollRefusal::KeyIdClash(key_id.to_owned()))),
            Some(_) => {
                sqlx::query("UPDATE hosts SET name = ? WHERE key_id = ?").bind(name).bind(key_id).execute(&mut *tx).await?;
            }
            None => {
                sqlx::query("INSERT INTO hosts (key_id, public_key, name, enrolled_at) VALUES (?, ?, ?, ?)")
                    .bind(key_id)
                    .bind(public_key)
                    .bind(name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("UPDATE tokens SET used_at = ?, used_by = ? WHERE hash = ?")
            .bind(now)
            .bind(key_id)
            .bind(token_hash(token))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// The enrolled public key (text form) with this key id.
    pub async fn host_key(&self, key_id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT public_key FROM hosts WHERE key_id = ?")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }

    pub async fn hosts(&self) -> Result<Vec<HostRow>, StoreError> {
        let rows: Vec<(String, String, String, i64)> =
            sqlx::query_as("SELECT key_id, public_key, name, enrolled_at FROM hosts ORDER BY enrolled_at")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(key_id, public_key, name, enrolled_at)| HostRow { key_id, public_key, name, enrolled_at })
            .collect())
    }

    pub async fn session_state(&self, session: &str) -> Result<Option<SessionState>, StoreError> {
        let row = sqlx::query("SELECT key_id, last_seq, last_hash, is_final, elapsed_us FROM sessions WHERE id = ?")
            .bind(session)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionState {
            key_id: row.try_get("key_id")?,
            last_seq: to_u64(row.try_get("last_seq")?, "last_seq")?,
            last_hash: row.try_get("last_hash")?,
            is_final: row.try_get("is_final")?,
            elapsed_us: to_u64(row.try_get("elapsed_us")?, "elapsed_us")?,
        }))
    }

    /// The hash of the chunk stored at `seq`, if any.
    pub async fn chunk_hash(&self, session: &str, seq: u64) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT hash FROM chunks WHERE session_id = ? AND seq = ?")
            .bind(session)
            .bind(to_i64(seq, "seq")?)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// The `last_us` of the chunk stored at `seq` (0 if none).
    pub async fn chunk_last_us(&self, session: &str, seq: u64) -> Result<u64, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT last_us FROM chunks WHERE session_id = ? AND seq = ?")
            .bind(session)
            .bind(to_i64(seq, "seq")?)
            .fetch_optional(&self.pool)
            .await?;
        row.map_or(Ok(0), |r| to_u64(r.0, "last_us"))
    }

    /// Writes a chunk's bytes durably: temp file, fsync, rename, fsync dir.
    /// Blocking; call it from a blocking task.
    pub fn write_chunk_file(chunks_dir: &Path, session: &str, seq: u64, bytes: &[u8]) -> Result<(), StoreError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = chunk_file(chunks_dir, session, seq);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        let dir = chunks_dir.join(session);
        crate::layout::ensure_private_dir(&dir).map_err(io(&dir))?;
        let tmp = dir.join(format!(".{seq:020}.tmp"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(io(&dir))?;
        Ok(())
    }

    /// Reads a stored chunk's bytes.
    pub async fn read_chunk_file(&self, session: &str, seq: u64) -> Result<Vec<u8>, StoreError> {
        let path = chunk_file(&self.chunks_dir, session, seq);
        tokio::fs::read(&path).await.map_err(|source| StoreError::Io { path, source })
    }

    /// Records a chunk whose file is already durable, and updates the
    /// session's metadata and search index, in one transaction.
    pub async fn commit_chunk(&self, chunk: &NewChunk) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::insert_chunk(&mut tx, chunk).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records several chunks in one transaction (one fsync for all: group
    /// commit). All or none: on an error nothing of the batch is stored.
    pub async fn commit_batch(&self, chunks: &[NewChunk]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in chunks {
            Self::insert_chunk(&mut tx, chunk).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_chunk(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, chunk: &NewChunk) -> Result<(), StoreError> {
        let seq = to_i64(chunk.seq, "seq")?;
        let size = to_i64(chunk.size, "size")?;
        let elapsed = to_i64(chunk.index.elapsed_us, "elapsed_us")?;
        let session = chunk.session.as_str();
        sqlx::query(
            "INSERT INTO chunks (session_id, seq, hash, size, first_us, last_us, is_final, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(session)
        .bind(seq)
        .bind(&chunk.hash)
        .bind(size)
        .bind(to_i64(chunk.first_us, "first_us")?)
        .bind(to_i64(chunk.last_us, "last_us")?)
        .bind(chunk.is_final)
        .bind(chunk.now)
        .execute(&mut **tx)
        .await?;
        if chunk.seq == 0 {
            let h = chunk.index.header.clone().unwrap_or_default();
            sqlx::query(
                "INSERT INTO sessions (id, key_id, user, host, shell, mode, command, started_at, header,
                    chunks, bytes, last_seq, last_hash, elapsed_us, is_final, exit_status, received_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, 0, ?, ?, 0, NULL, ?, ?)",
            )
            .bind(session)
            .bind(&chunk.key_id)
            .bind(h.user)
            .bind(h.host)
            .bind(h.shell)
            .bind(h.mode)
            .bind(h.command)
            .bind(h.timestamp)
            .bind(if h.json.is_empty() { None } else { Some(h.json) })
            .bind(size)
            .bind(&chunk.hash)
            .bind(elapsed)
            .bind(chunk.now)
            .bind(chunk.now)
            .execute(&mut **tx)
            .await?;
        } else {
            sqlx::query(
                "UPDATE sessions SET chunks = chunks + 1, bytes = bytes + ?, last_seq = ?, last_hash = ?,
                    elapsed_us = ?, updated_at = ? WHERE id = ?",
            )
            .bind(size)
            .bind(seq)
            .bind(&chunk.hash)
            .bind(elapsed)
            .bind(chunk.now)
            .bind(session)
            .execute(&mut **tx)
            .await?;
        }
        if let Some(status) = chunk.index.exit_status {
            sqlx::query("UPDATE sessions SET exit_status = ? WHERE id = ?")
                .bind(status)
                .bind(session)
                .execute(&mut **tx)
                .await?;
        }
        if chunk.is_final {
            // A final chunk without any exit event in the session means the
            // recorder never wrote one: the spool was sealed after a crash.
            sqlx::query(
                "UPDATE sessions SET is_final = 1, abnormal = (exit_status IS NULL),
                    ended_at = started_at + elapsed_us / 1000000 WHERE id = ?",
            )
            .bind(session)
            .execute(&mut **tx)
            .await?;
        }
        // Markers and program starts: the same shape, two tables (search
        // looks in both; a session's command list reads only markers).
        let rows = [("markers", &chunk.index.markers), ("execs", &chunk.index.execs)];
        for (table, list) in rows {
            let sql = format!("INSERT INTO {table} (session_id, seq, at_us, text) VALUES (?, ?, ?, ?)");
            for item in list {
                sqlx::query(&sql).bind(session).bind(seq).bind(to_i64(item.at_us, "at_us")?).bind(&item.text).execute(&mut **tx).await?;
            }
        }
        Ok(())
    }

    /// Marks a session as ended abnormally whatever its events say (the
    /// evidence module's seal of an orphaned spool says so explicitly).
    pub async fn mark_abnormal(&self, session: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET abnormal = 1 WHERE id = ?").bind(session).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn record_alert(&self, alert: NewAlert<'_>) -> Result<(), StoreError> {
        let seq = alert.seq.map(|s| to_i64(s, "seq")).transpose()?;
        sqlx::query("INSERT INTO alerts (at, kind, session_id, seq, key_id, detail) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(alert.now)
            .bind(alert.kind)
            .bind(alert.session_id)
            .bind(seq)
            .bind(alert.key_id)
            .bind(&alert.detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query("SELECT id, at, kind, session_id, seq, key_id, detail FROM alerts ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AlertRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    session_id: r.try_get("session_id")?,
                    seq: r.try_get("seq")?,
                    key_id: r.try_get("key_id")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    const SESSION_COLUMNS: &'static str = "id, key_id, user, host, shell, mode, command, started_at, ended_at,
        chunks, bytes, last_seq, last_hash, is_final, exit_status, abnormal, received_at, updated_at";

    fn session_row(r: &sqlx::sqlite::SqliteRow) -> Result<SessionRow, StoreError> {
        Ok(SessionRow {
            id: r.try_get("id")?,
            key_id: r.try_get("key_id")?,
            user: r.try_get("user")?,
            host: r.try_get("host")?,
            shell: r.try_get("shell")?,
            mode: r.try_get("mode")?,
            command: r.try_get("command")?,
            started_at: r.try_get("started_at")?,
            ended_at: r.try_get("ended_at")?,
            chunks: r.try_get("chunks")?,
            bytes: r.try_get("bytes")?,
            last_seq: r.try_get("last_seq")?,
            last_hash: r.try_get("last_hash")?,
            is_final: r.try_get("is_final")?,
            exit_status: r.try_get("exit_status")?,
            ended_abnormally: r.try_get("abnormal")?,
            received_at: r.try_get("received_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let sql = format!("SELECT {} FROM sessions WHERE id = ?", Self::SESSION_COLUMNS);
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(Self::session_row).transpose()
    }

    /// The header line of a session's recording, as stored from chunk 0.
    pub async fn session_header(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT header FROM sessions WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        Ok(row.and_then(|r| r.0))
    }

    /// Sessions matching `filter`, newest first. Time filters select
    /// sessions that overlap the window [since, until].
    pub async fn search(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>, StoreError> {
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
        let sql = format!(
            "SELECT {} FROM sessions s
             WHERE (?1 IS NULL OR s.user = ?1)
               AND (?2 IS NULL OR s.host = ?2)
               AND (?3 IS NULL OR s.ended_at IS NULL OR s.ended_at >= ?3)
               AND (?4 IS NULL OR s.started_at <= ?4)
               AND (?5 IS NULL
                    OR instr(lower(coalesce(s.command, '')), lower(?5)) > 0
                    OR EXISTS (SELECT 1 FROM markers m WHERE m.session_id = s.id
                               AND instr(lower(m.text), lower(?5)) > 0)
                    OR EXISTS (SELECT 1 FROM execs x WHERE x.session_id = s.id
                               AND instr(lower(x.text), lower(?5)) > 0))
             ORDER BY s.started_at DESC, s.id DESC
             LIMIT ?6",
            Self::SESSION_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(&filter.user)
            .bind(&filter.host)
            .bind(filter.since)
            .bind(filter.until)
            .bind(&filter.command)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::session_row).collect()
    }

    pub async fn chunks(&self, session: &str) -> Result<Vec<ChunkRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, hash, size, first_us, last_us, is_final, received_at FROM chunks
             WHERE session_id = ? ORDER BY seq",
        )
        .bind(session)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChunkRow {
                    seq: r.try_get("seq")?,
                    hash: r.try_get("hash")?,
                    size: r.try_get("size")?,
                    first_us: r.try_get("first_us")?,
                    last_us: r.try_get("last_us")?,
                    is_final: r.try_get("is_final")?,
                    received_at: r.try_get("received_at")?,
                })
            })
            .collect()
    }

    /// Counts for `/metrics`: sessions and chunks stored.
    pub async fn totals(&self) -> Result<(i64, i64, i64), StoreError> {
        let (sessions, chunks, bytes): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM sessions), (SELECT COUNT(*) FROM chunks), (SELECT coalesce(SUM(size), 0) FROM chunks)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((sessions, chunks, bytes))
    }
}
