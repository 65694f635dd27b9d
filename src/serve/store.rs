//! The collector's storage: metadata in SQLite, and each chunk's bytes
//! either in the same database or in a file of its own under the data
//! directory.
//!
//! ```text
//! <data_dir>/                  0700
//!   custos.db                  SQLite (WAL, synchronous=FULL)
//!   chunks/<session-id>/<seq as 20 digits>.chunk   a chunk over INLINE_MAX bytes
//! ```
//!
//! Why two places: a chunk must be durable before it is acknowledged, and a
//! file of its own costs two fsyncs (the file, then its directory after the
//! rename), one per chunk, each a journal commit of the disk. A chunk of at
//! most [`INLINE_MAX`] bytes (nearly all of them: a second of a busy
//! terminal compresses to a few KiB) is instead written into its own row
//! (`chunks.bytes`), so the group commit's one WAL fsync
//! makes a whole batch of chunks durable at once. A larger chunk keeps the
//! file: a big blob would hold the database's one writer for longer than
//! the fsyncs it saves.
//!
//! Invariants:
//! - A chunk's bytes reach stable storage before its row is committed (a
//!   file: write, fsync, rename, fsync of the directory), or in the same
//!   transaction as its row (inline); its row is committed before the
//!   upload is acknowledged. So an acknowledged chunk survives a crash, and
//!   a row never points at missing bytes.
//! - The `chunks` table has one row per (session, seq); its primary key is the
//!   last line of defence against two different chunks at one position.
//!   Rows of a session are contiguous from seq 0 (ingest stores chunk N
//!   only after N-1), so a seq above the session's last is not stored.
//! - Secrets (bearer and enrollment tokens) are stored only as SHA-256 hashes.
//!
//! Two things are kept in memory, because ingest would otherwise ask the
//! database for them on every chunk: the enrolled host keys (changed only
//! by enrollment, which goes through this store) and each open session's
//! chain state (changed only by commits, which go through this store, and
//! read under ingest's per-session lock). Both are sound because this
//! process is the store's only writer; a store shared by several
//! processes must not keep them.
//!
//! The chain rules themselves (what may be stored) live in `ingest`; this
//! module only stores and reads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row as _, Sqlite};

use super::index::{IndexedMarker, PayloadIndex};
use crate::evidence::PublicKey;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("a stored number is out of range: {0}")]
    Range(&'static str),
    #[error("these chunks cannot be committed together: {0}")]
    Batch(&'static str),
    #[error("stored key {key_id} is unreadable: {reason}")]
    Key { key_id: String, reason: String },
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

/// The largest chunk whose bytes are stored in the database, in its row's
/// transaction, rather than in a file of its own (see the module doc).
pub const INLINE_MAX: usize = 64 * 1024;

/// Rows per multi-row statement: eighteen columns at most stays below
/// SQLite's limit of 32,766 bound values.
const ROWS_PER_STATEMENT: usize = 1000;

/// How many open sessions' chain states are kept in memory; past this the
/// memory is emptied and states are read from the database again.
const STATES_KEPT: usize = 100_000;

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
    /// The chunk's bytes, to be stored with its row (at most
    /// [`INLINE_MAX`]); `None` when they are already durable in a file.
    pub inline: Option<Vec<u8>>,
}

impl NewChunk {
    /// The session's chain state once this chunk is stored.
    fn state_after(&self) -> SessionState {
        SessionState {
            key_id: self.key_id.clone(),
            last_seq: self.seq,
            last_hash: self.hash.clone(),
            is_final: self.is_final,
            elapsed_us: self.index.elapsed_us,
        }
    }
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
    bytes BLOB,
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

/// The collector's storage handle; cheap to clone (clones share the
/// memory of host keys and session states).
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    chunks_dir: PathBuf,
    /// Enrolled public keys by key id, parsed (parsing decompresses a
    /// curve point: a tenth of a chunk's check). A key id's key never
    /// changes once enrolled (a different one is refused) and none is
    /// removed.
    host_keys: Arc<Mutex<HashMap<String, PublicKey>>>,
    /// The chain state of sessions that have not ended, as last committed.
    states: Arc<Mutex<HashMap<String, SessionState>>>,
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
            .busy_timeout(Duration::from_secs(30))
            // Under a steady stream of uploads every commit touches a few
            // pages (the session's row, index leaves): a page cache that
            // holds them (32 MiB, not 2) saves reading them back, and a
            // checkpoint every 16 MiB of WAL (not 4) copies a page changed
            // by many commits into the database once, not once per 4 MiB.
            .pragma("cache_size", "-32768")
            .pragma("wal_autocheckpoint", "4096");
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        sqlx::raw_sql(ACCESS_LOG_SCHEMA).execute(&pool).await?;
        // A data directory from before chunks' bytes were kept in their
        // rows: the column is added (existing rows keep their files).
        let (has_bytes,): (bool,) = sqlx::query_as("SELECT COUNT(*) > 0 FROM pragma_table_info('chunks') WHERE name = 'bytes'")
            .fetch_one(&pool)
            .await?;
        if !has_bytes {
            sqlx::raw_sql("ALTER TABLE chunks ADD COLUMN bytes BLOB").execute(&pool).await?;
        }
        Ok(Self { pool, chunks_dir, host_keys: Arc::default(), states: Arc::default() })
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

    /// The enrolled public key with this key id, parsed; kept in memory
    /// once read.
    pub async fn host_public_key(&self, key_id: &str) -> Result<Option<PublicKey>, StoreError> {
        if let Some(key) = self.host_keys.lock().unwrap_or_else(PoisonError::into_inner).get(key_id) {
            return Ok(Some(*key));
        }
        let Some(text) = self.host_key(key_id).await? else { return Ok(None) };
        let key: PublicKey = text.parse().map_err(|e| StoreError::Key { key_id: key_id.to_owned(), reason: format!("{e}") })?;
        self.host_keys.lock().unwrap_or_else(PoisonError::into_inner).insert(key_id.to_owned(), key);
        Ok(Some(key))
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

    /// A session's chain state: from memory for a session this process
    /// has stored a chunk of, else from the database.
    pub async fn session_state(&self, session: &str) -> Result<Option<SessionState>, StoreError> {
        if let Some(state) = self.states.lock().unwrap_or_else(PoisonError::into_inner).get(session) {
            return Ok(Some(state.clone()));
        }
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

    /// Reads a stored chunk's bytes, wherever they are kept.
    pub async fn read_chunk(&self, session: &str, seq: u64) -> Result<Vec<u8>, StoreError> {
        let row: Option<(Option<Vec<u8>>,)> = sqlx::query_as("SELECT bytes FROM chunks WHERE session_id = ? AND seq = ?")
            .bind(session)
            .bind(to_i64(seq, "seq")?)
            .fetch_optional(&self.pool)
            .await?;
        if let Some((Some(bytes),)) = row {
            return Ok(bytes);
        }
        let path = chunk_file(&self.chunks_dir, session, seq);
        tokio::fs::read(&path).await.map_err(|source| StoreError::Io { path, source })
    }

    /// Records a chunk (its bytes with it, or already durable in a file),
    /// and updates the session's metadata and search index, in one
    /// transaction.
    pub async fn commit_chunk(&self, chunk: &NewChunk) -> Result<(), StoreError> {
        self.commit_batch(std::slice::from_ref(chunk)).await
    }

    /// Records several chunks in one transaction (one fsync for all: group
    /// commit). All or none: on an error nothing of the batch is stored.
    pub async fn commit_batch(&self, chunks: &[NewChunk]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::insert_batch(&mut tx, chunks).await?;
        tx.commit().await?;
        let mut states = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        for chunk in chunks {
            if chunk.is_final {
                states.remove(&chunk.session);
                continue;
            }
            if states.len() >= STATES_KEPT && !states.contains_key(&chunk.session) {
                states.clear();
            }
            states.insert(chunk.session.clone(), chunk.state_after());
        }
        Ok(())
    }

    /// Writes the rows of `chunks` in a handful of statements, however many
    /// chunks there are: each statement is a round trip to the database's
    /// thread, and one per row per table made the group commit's one
    /// writer the collector's bottleneck. A session has at most one chunk
    /// in a batch (ingest holds the session's lock until its commit).
    async fn insert_batch(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, chunks: &[NewChunk]) -> Result<(), StoreError> {
        struct Row<'a> {
            chunk: &'a NewChunk,
            seq: i64,
            size: i64,
            first_us: i64,
            last_us: i64,
            elapsed: i64,
        }
        let rows = chunks
            .iter()
            .map(|chunk| {
                Ok(Row {
                    chunk,
                    seq: to_i64(chunk.seq, "seq")?,
                    size: to_i64(chunk.size, "size")?,
                    first_us: to_i64(chunk.first_us, "first_us")?,
                    last_us: to_i64(chunk.last_us, "last_us")?,
                    elapsed: to_i64(chunk.index.elapsed_us, "elapsed_us")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // One row update per session below: a batch holding two chunks of
        // one session is refused (the group committer then commits them
        // one at a time).
        let mut sessions = std::collections::HashSet::new();
        if !rows.iter().all(|r| sessions.insert(r.chunk.session.as_str())) {
            return Err(StoreError::Batch("two chunks of one session"));
        }
        for part in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO chunks (session_id, seq, hash, size, first_us, last_us, is_final, received_at, bytes) ",
            );
            q.push_values(part, |mut b, r| {
                let c = r.chunk;
                b.push_bind(&c.session).push_bind(r.seq).push_bind(&c.hash).push_bind(r.size);
                b.push_bind(r.first_us).push_bind(r.last_us).push_bind(c.is_final).push_bind(c.now);
                b.push_bind(c.inline.as_deref());
            });
            q.build().execute(&mut **tx).await?;

            let first: Vec<&Row<'_>> = part.iter().filter(|r| r.chunk.seq == 0).collect();
            if !first.is_empty() {
                let mut q = QueryBuilder::<Sqlite>::new(
                    "INSERT INTO sessions (id, key_id, user, host, shell, mode, command, started_at, header,
                        chunks, bytes, last_seq, last_hash, elapsed_us, is_final, exit_status, received_at, updated_at) ",
                );
                q.push_values(first, |mut b, r| {
                    let c = r.chunk;
                    let h = c.index.header.clone().unwrap_or_default();
                    b.push_bind(&c.session).push_bind(&c.key_id);
                    b.push_bind(h.user).push_bind(h.host).push_bind(h.shell).push_bind(h.mode).push_bind(h.command);
                    b.push_bind(h.timestamp).push_bind(if h.json.is_empty() { None } else { Some(h.json) });
                    b.push("1").push_bind(r.size).push("0").push_bind(&c.hash).push_bind(r.elapsed);
                    b.push("0").push("NULL").push_bind(c.now).push_bind(c.now);
                });
                q.build().execute(&mut **tx).await?;
            }

            let later: Vec<&Row<'_>> = part.iter().filter(|r| r.chunk.seq > 0).collect();
            if !later.is_empty() {
                let mut q = QueryBuilder::<Sqlite>::new("WITH v(id, size, seq, hash, elapsed, now) AS (");
                q.push_values(later, |mut b, r| {
                    b.push_bind(&r.chunk.session).push_bind(r.size).push_bind(r.seq).push_bind(&r.chunk.hash);
                    b.push_bind(r.elapsed).push_bind(r.chunk.now);
                });
                q.push(
                    ") UPDATE sessions SET chunks = chunks + 1, bytes = bytes + v.size, last_seq = v.seq, last_hash = v.hash,
                        elapsed_us = v.elapsed, updated_at = v.now FROM v WHERE sessions.id = v.id",
                );
                q.build().execute(&mut **tx).await?;
            }

            // Markers and program starts: the same shape, two tables (search
            // looks in both; a session's command list reads only markers).
            for table in ["markers", "execs"] {
                let items: Vec<(&str, i64, &IndexedMarker)> = part
                    .iter()
                    .flat_map(|r| {
                        let list = if table == "markers" { &r.chunk.index.markers } else { &r.chunk.index.execs };
                        list.iter().map(move |m| (r.chunk.session.as_str(), r.seq, m))
                    })
                    .collect();
                for group in items.chunks(ROWS_PER_STATEMENT) {
                    let at = group.iter().map(|(_, _, m)| to_i64(m.at_us, "at_us")).collect::<Result<Vec<_>, _>>()?;
                    let mut q = QueryBuilder::<Sqlite>::new(format!("INSERT INTO {table} (session_id, seq, at_us, text) "));
                    q.push_values(group.iter().zip(at), |mut b, ((session, seq, m), at)| {
                        b.push_bind(*session).push_bind(*seq).push_bind(at).push_bind(&m.text);
                    });
                    q.build().execute(&mut **tx).await?;
                }
            }
        }
        // The rare ones, one statement per chunk.
        for r in &rows {
            let (c, session) = (r.chunk, r.chunk.session.as_str());
            if let Some(status) = c.index.exit_status {
                sqlx::query("UPDATE sessions SET exit_status = ? WHERE id = ?").bind(status).bind(session).execute(&mut **tx).await?;
            }
            if c.is_final {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A chunk row for tests (also `group`'s).
    pub(crate) fn chunk(session: &str, seq: u64, inline: Option<Vec<u8>>) -> NewChunk {
        NewChunk {
            session: session.to_owned(),
            seq,
            hash: format!("{session}-{seq}"),
            size: 3,
            first_us: 0,
            last_us: 1,
            is_final: false,
            key_id: "k".into(),
            index: PayloadIndex::default(),
            now: 1,
            inline,
        }
    }

    /// A data directory from before bytes were kept in rows: its chunks
    /// are files and its `chunks` table has no `bytes` column. Opening it
    /// adds the column; old chunks read from their files, new ones from
    /// their rows.
    #[tokio::test]
    async fn an_older_data_directory_gains_the_column_and_keeps_its_files() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).await.unwrap();
            sqlx::raw_sql("ALTER TABLE chunks DROP COLUMN bytes").execute(store.pool()).await.unwrap();
            let mut tx = store.pool().begin().await.unwrap();
            sqlx::raw_sql(
                "INSERT INTO chunks (session_id, seq, hash, size, first_us, last_us, is_final, received_at)
                 VALUES ('old', 0, 'h', 3, 0, 1, 0, 1)",
            )
            .execute(&mut *tx)
            .await
            .unwrap();
            tx.commit().await.unwrap();
            Store::write_chunk_file(store.chunks_dir(), "old", 0, b"old").unwrap();
            store.pool().close().await;
        }
        let store = Store::open(dir.path()).await.unwrap();
        assert_eq!(store.read_chunk("old", 0).await.unwrap(), b"old");
        store.commit_chunk(&chunk("new", 0, Some(b"new".to_vec()))).await.unwrap();
        assert_eq!(store.read_chunk("new", 0).await.unwrap(), b"new");
        assert!(!chunk_file(store.chunks_dir(), "new", 0).exists(), "a small chunk has no file");
        assert!(store.read_chunk("none", 0).await.is_err(), "a chunk never stored is an error, not empty bytes");
    }

    /// The rows of a batch go in a few statements; each chunk's session
    /// row still counts it, and a batch holding two chunks of one session
    /// is refused whole (the group committer then takes them one by one).
    #[tokio::test]
    async fn a_batch_counts_every_chunk_and_refuses_two_of_one_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let first: Vec<NewChunk> = (0..30).map(|i| chunk(&format!("s{i}"), 0, Some(vec![i as u8; 3]))).collect();
        store.commit_batch(&first).await.unwrap();
        let second: Vec<NewChunk> = (0..30).map(|i| chunk(&format!("s{i}"), 1, None)).collect();
        store.commit_batch(&second).await.unwrap();
        for i in 0..30 {
            let row = store.session(&format!("s{i}")).await.unwrap().unwrap();
            assert_eq!((row.chunks, row.bytes, row.last_seq, row.last_hash.as_str()), (2, 6, 1, format!("s{i}-1").as_str()));
        }
        let twice = [chunk("s0", 2, None), chunk("s0", 3, None)];
        assert!(matches!(store.commit_batch(&twice).await, Err(StoreError::Batch(_))));
        assert_eq!(store.session("s0").await.unwrap().unwrap().chunks, 2, "nothing of the refused batch is stored");
    }
}
