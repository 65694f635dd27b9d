//! `custos replay --server URL`: the browser and the player over a
//! collector's read API, with the same token `custos sessions` takes.
//!
//! - The list is `GET /v1/sessions` (newest first), and for each session
//!   its markers (`GET .../markers`: commands, verdicts, statuses) and its
//!   metadata (`GET /v1/sessions/{id}`), whose `verification` is the
//!   collector's own re-check of the stored chain (every chunk re-read,
//!   signature, seq and link checked). That state is the badge.
//! - Opening downloads the `.cast` (`GET .../cast`); its index is cached by
//!   the content's SHA-256, so a second open of the same content is fast.
//! - `--follow` reads `GET .../follow` (Server-Sent Events) on a thread of
//!   its own; the player polls what arrived.
//!
//! Every one of those reads is logged by the collector as an access by this
//! token (`serve::audit`).

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::index::{self, Builder};
use super::markers::{self, Flags};
use super::source::{cached_index, Opened, SessionSummary, Source, SourceError, Tail, Verification};
use crate::client::sse::SseParser;
use crate::client::{ClientError, Collector};
use crate::evidence::asciicast::Recording;

/// Sessions listed at most.
const LIST_LIMIT: u32 = 500;

pub struct ServerSource {
    collector: Collector,
    runtime: tokio::runtime::Runtime,
    cache_root: Option<PathBuf>,
}

fn collector_err(e: ClientError) -> SourceError {
    match e.status() {
        Some(404) => SourceError::NotFound(e.to_string()),
        _ => SourceError::Collector(e.to_string()),
    }
}

/// The collector's `verification` object as the badge's state.
pub fn verification_of(v: &Value) -> Verification {
    let problem = v.get("problem").and_then(Value::as_str).unwrap_or("no reason given").to_owned();
    match v.get("state").and_then(Value::as_str) {
        Some("intact") => Verification::Intact,
        Some("incomplete") => Verification::Incomplete(problem),
        Some("failed") => Verification::Broken(problem),
        other => Verification::Unknown(format!("the collector reported verification state {other:?}")),
    }
}

/// A browser row from the collector's session row, markers and
/// verification.
pub fn summary_of(row: &Value, marker_rows: &[Value], verification: Verification) -> SessionSummary {
    let text = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_owned);
    let int = |k: &str| row.get(k).and_then(Value::as_i64);
    let commands: Vec<markers::Command> = marker_rows
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let at = m.get("at_us").and_then(Value::as_u64).unwrap_or(0) as f64 / 1e6;
            markers::parse(i, at, m.get("text").and_then(Value::as_str).unwrap_or_default())
        })
        .collect();
    let start = int("started_at");
    let end = int("ended_at").or_else(|| int("updated_at"));
    let duration = match (start, end) {
        (Some(s), Some(e)) if e >= s => (e - s) as f64,
        _ => 0.0,
    };
    SessionSummary {
        id: text("id").unwrap_or_default(),
        user: text("user").unwrap_or_else(|| "-".into()),
        identity: None,
        host: text("host").unwrap_or_else(|| "-".into()),
        start: start.and_then(|s| u64::try_from(s).ok()),
        duration,
        commands: commands.len(),
        command_lines: commands.iter().map(|c| c.text.clone()).collect(),
        flags: Flags::of(&commands),
        verification,
        open: row.get("is_final").and_then(Value::as_bool) != Some(true),
    }
}

impl ServerSource {
    pub fn new(collector: Collector, cache_root: Option<PathBuf>) -> Result<Self, SourceError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::Collector(format!("cannot start the client runtime: {e}")))?;
        Ok(Self { collector, runtime, cache_root })
    }

    fn session_id(id: &str) -> Result<String, SourceError> {
        uuid::Uuid::parse_str(id.trim()).map(|u| u.to_string()).map_err(|_| SourceError::NotFound(format!("{id} (not a session id)")))
    }

    /// The session's row and the collector's verification of it.
    fn metadata(&self, id: &str) -> Result<(Value, Verification), SourceError> {
        let meta = self.runtime.block_on(self.collector.session(id)).map_err(collector_err)?;
        let verification = meta.get("verification").map_or_else(
            || Verification::Unknown("the collector did not report a verification state".into()),
            verification_of,
        );
        Ok((meta.get("session").cloned().unwrap_or(Value::Null), verification))
    }
}

impl Source for ServerSource {
    fn describe(&self) -> String {
        self.collector.base().to_owned()
    }

    fn list(&mut self) -> Result<Vec<SessionSummary>, SourceError> {
        let query = [("limit", LIST_LIMIT.to_string())];
        let rows = self.runtime.block_on(self.collector.sessions(&query)).map_err(collector_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
            let markers = self.runtime.block_on(self.collector.markers(&id)).map_err(collector_err)?;
            let (_, verification) = self.metadata(&id)?;
            out.push(summary_of(&row, &markers, verification));
        }
        Ok(out)
    }

    fn open(&mut self, id: &str) -> Result<Opened, SourceError> {
        let id = Self::session_id(id)?;
        let (_, verification) = self.metadata(&id)?;
        let bytes = self.runtime.block_on(self.collector.cast(&id)).map_err(collector_err)?;
        let cache = self.cache_root.as_ref().map(|root| index::content_cache(root, &bytes));
        let text = String::from_utf8_lossy(&bytes);
        let recording = Recording::parse(&text).map_err(|source| SourceError::Parse { path: PathBuf::from(&id), source })?;
        let index = cached_index(&recording, cache.as_ref());
        let summary = SessionSummary::of(id, &recording, verification);
        Ok(Opened { summary, recording, index })
    }

    fn follow(&mut self, id: &str) -> Result<(Opened, Builder, Box<dyn Tail>), SourceError> {
        let id = Self::session_id(id)?;
        let (row, verification) = self.metadata(&id)?;
        let last_seq = row.get("last_seq").and_then(Value::as_u64).unwrap_or(0);
        let rx = spawn_follow(self.collector.fresh().map_err(collector_err)?, id.clone());
        // What is stored so far arrives first, in order: wait for it.
        let mut text = String::new();
        let mut ended = false;
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(Arrival::Chunk { seq, cast }) => {
                    text.push_str(&cast);
                    if seq >= last_seq {
                        break;
                    }
                }
                Ok(Arrival::End) => {
                    ended = true;
                    break;
                }
                Ok(Arrival::Failed(why)) => return Err(SourceError::Collector(why)),
                Err(_) => return Err(SourceError::Collector(format!("following {id}: nothing arrived for a minute"))),
            }
        }
        let recording = Recording::parse(&text).map_err(|source| SourceError::Parse { path: PathBuf::from(&id), source })?;
        let mut builder = Builder::new(recording.cols, recording.rows);
        builder.feed(&recording.events);
        let index = builder.index();
        let summary = SessionSummary::of(id, &recording, verification);
        Ok((Opened { summary, recording, index }, builder, Box::new(SseTail { rx, ended })))
    }
}

/// What the follow thread passes on.
enum Arrival {
    Chunk { seq: u64, cast: String },
    End,
    Failed(String),
}

/// Reads the session's event stream on a thread of its own (the player's
/// loop is synchronous) and passes each chunk on.
fn spawn_follow(collector: Collector, id: String) -> mpsc::Receiver<Arrival> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Arrival::Failed(format!("cannot start the follow runtime: {e}")));
                return;
            }
        };
        runtime.block_on(async move {
            let mut response = match collector.follow(&id, 0).await {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Arrival::Failed(e.to_string()));
                    return;
                }
            };
            let mut parser = SseParser::default();
            loop {
                let piece = match response.chunk().await {
                    Ok(Some(piece)) => piece,
                    Ok(None) => {
                        let _ = tx.send(Arrival::Failed(format!("the collector closed the follow of {id}")));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Arrival::Failed(format!("following {id}: {e}")));
                        return;
                    }
                };
                for event in parser.feed(&piece) {
                    let arrival = match event.event.as_str() {
                        "chunk" => match chunk_event(&event.data) {
                            Some((seq, cast)) => Arrival::Chunk { seq, cast },
                            None => Arrival::Failed(format!("following {id}: a chunk event that is not {{seq, cast}}")),
                        },
                        "end" => Arrival::End,
                        "error" => Arrival::Failed(format!("the collector: {}", event.data)),
                        _ => continue,
                    };
                    let stop = !matches!(arrival, Arrival::Chunk { .. });
                    // The player went away, or the stream is over.
                    if tx.send(arrival).is_err() || stop {
                        return;
                    }
                }
            }
        });
    });
    rx
}

fn chunk_event(data: &str) -> Option<(u64, String)> {
    let v: Value = serde_json::from_str(data).ok()?;
    Some((v.get("seq")?.as_u64()?, v.get("cast")?.as_str()?.to_owned()))
}

/// New lines of a followed session, from the follow thread.
struct SseTail {
    rx: mpsc::Receiver<Arrival>,
    ended: bool,
}

impl Tail for SseTail {
    fn poll(&mut self) -> Result<String, SourceError> {
        let mut out = String::new();
        if self.ended {
            return Ok(out);
        }
        loop {
            match self.rx.try_recv() {
                Ok(Arrival::Chunk { cast, .. }) => out.push_str(&cast),
                Ok(Arrival::End) => {
                    self.ended = true;
                    return Ok(out);
                }
                Ok(Arrival::Failed(why)) => {
                    self.ended = true;
                    return Err(SourceError::Collector(why));
                }
                Err(mpsc::TryRecvError::Empty) => return Ok(out),
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.ended = true;
                    return Err(SourceError::Collector("the follow stream stopped".into()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collector_states_map_to_badges() {
        let v = |s: &str| serde_json::json!({"state": s, "problem": "chunk 2 does not link to chunk 1"});
        assert_eq!(verification_of(&v("intact")), Verification::Intact);
        assert_eq!(verification_of(&v("failed")), Verification::Broken("chunk 2 does not link to chunk 1".into()));
        assert!(matches!(verification_of(&v("incomplete")), Verification::Incomplete(_)));
        assert!(matches!(verification_of(&v("sideways")), Verification::Unknown(why) if why.contains("sideways")));
    }

    #[test]
    fn a_row_with_gate_markers_counts_commands_and_denials() {
        let row = serde_json::json!({"id": "a", "user": "alice", "host": "db1", "started_at": 100, "ended_at": 160, "is_final": true});
        let markers = vec![
            serde_json::json!({"at_us": 1_000_000, "text": "{\"command\":\"ls\",\"verdict\":\"allow\",\"exit\":0}"}),
            serde_json::json!({"at_us": 2_000_000, "text": "{\"command\":\"rm -rf /\",\"verdict\":\"deny\"}"}),
        ];
        let s = summary_of(&row, &markers, Verification::Intact);
        assert_eq!((s.commands, s.duration, s.open), (2, 60.0, false));
        assert!(s.flags.denied, "{s:?}");
        assert_eq!(s.command_lines, vec!["ls".to_owned(), "rm -rf /".to_owned()]);
    }
}
