//! The session recording: asciicast v3.
//!
//! A recording is a header line followed by one JSON array per event,
//! `[interval, code, data]`, where `interval` is the time in seconds since the
//! previous event. Codes: `o` output (what the renderer drew for the pane),
//! `i` input (only when enabled, and never while ECHO is off), `r` resize
//! (`"COLSxROWS"`), `m` marker, `x` exit status, and one code of ours, `a`:
//! an audit record (JSON text) from the command gate. Players skip codes
//! they do not know (asciinema 3 does; `tests/player.rs` checks), so the
//! structured records ride in the same signed stream as the screen. See
//! <https://docs.asciinema.org/manual/asciicast/v3/>.
//!
//! The header carries the standard fields (`term`, `timestamp`, `command`,
//! `env`) plus a `custos` object that binds the recording to its session: id,
//! unix user, host, real shell, and an `identity` slot that stays `null`
//! until OIDC identity is configured. Players ignore fields they do not know.
//!
//! [`Encoder`] is pure (events in, lines out, no clock); [`CastFile`] is the
//! edge that appends those lines to a file.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Who and what a session is, written once in the header.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionInfo {
    /// UUID v7: sortable by start time.
    pub session_id: String,
    pub user: String,
    pub uid: u32,
    pub host: String,
    /// The real shell that ran under the recorder.
    pub shell: String,
    /// `interactive` (a PTY) or `data` (bytes passed through untouched).
    pub mode: String,
    /// The command given with `-c`, if any.
    pub command: Option<String>,
    /// Verified identity; `null` until OIDC is configured (unverified).
    pub identity: Option<serde_json::Value>,
}

/// The header line's content.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    pub version: u8,
    pub term: Term,
    pub timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub env: serde_json::Map<String, serde_json::Value>,
    pub custos: SessionInfo,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Term {
    pub cols: u16,
    pub rows: u16,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl Header {
    pub fn new(info: SessionInfo, cols: u16, rows: u16, term: Option<String>, timestamp: u64) -> Self {
        let mut env = serde_json::Map::new();
        env.insert("SHELL".into(), info.shell.clone().into());
        if let Some(t) = &term {
            env.insert("TERM".into(), t.clone().into());
        }
        Self {
            version: 3,
            term: Term { cols, rows, kind: term },
            timestamp,
            command: info.command.clone(),
            env,
            custos: info,
        }
    }
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq)]
pub enum Event<'a> {
    Output(&'a str),
    Input(&'a str),
    Resize { cols: u16, rows: u16 },
    Marker(&'a str),
    /// A structured audit record (a JSON object) from the command gate.
    Audit(&'a str),
    Exit(i32),
}

/// Encodes events as asciicast v3 lines. Keeps the time of the previous
/// event, because v3 stores intervals.
#[derive(Default)]
pub struct Encoder {
    last: Duration,
}

impl Encoder {
    pub fn header(header: &Header) -> Vec<u8> {
        let mut line = serde_json::to_vec(header).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// Appends the line for `event` at `at` (time since the session started)
    /// to `out`. Times that go backwards are clamped to a zero interval.
    pub fn event(&mut self, at: Duration, event: &Event<'_>, out: &mut Vec<u8>) {
        let interval = at.saturating_sub(self.last);
        self.last = self.last.max(at);
        let (code, data): (&str, std::borrow::Cow<'_, str>) = match event {
            Event::Output(s) => ("o", (*s).into()),
            Event::Input(s) => ("i", (*s).into()),
            Event::Resize { cols, rows } => ("r", format!("{cols}x{rows}").into()),
            Event::Marker(s) => ("m", (*s).into()),
            Event::Audit(s) => ("a", (*s).into()),
            Event::Exit(status) => ("x", status.to_string().into()),
        };
        let micros = interval.as_micros();
        out.extend_from_slice(format!("[{}.{:06}, \"{code}\", ", micros / 1_000_000, micros % 1_000_000).as_bytes());
        // Serialising a str to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, data.as_ref());
        out.extend_from_slice(b"]\n");
    }
}

/// A recording file being appended to.
pub struct CastFile {
    path: PathBuf,
    file: std::fs::File,
    encoder: Encoder,
    buf: Vec<u8>,
}

impl CastFile {
    /// Creates `path` (which must not exist), mode 0600, and writes the header.
    pub fn create(path: &Path, header: &Header) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(&Encoder::header(header))?;
        Ok(Self { path: path.to_owned(), file, encoder: Encoder::default(), buf: Vec::new() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event. The line reaches the kernel before this returns, so
    /// a recorder that dies right after loses nothing it had written.
    pub fn write(&mut self, at: Duration, event: &Event<'_>) -> std::io::Result<()> {
        self.buf.clear();
        self.encoder.event(at, event, &mut self.buf);
        self.file.write_all(&self.buf)
    }

    /// Flushes to stable storage.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

/// A parsed recording, for tests, `custos` subcommands and replay.
#[derive(Debug)]
pub struct Cast {
    pub header: Header,
    pub events: Vec<(f64, String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the recording is empty")]
    Empty,
    #[error("line {line}: {source}")]
    Json { line: usize, source: serde_json::Error },
}

impl Cast {
    /// Parses an asciicast v3 file written by [`CastFile`].
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut lines = text.lines();
        let first = lines.next().ok_or(ParseError::Empty)?;
        let header = serde_json::from_str(first).map_err(|source| ParseError::Json { line: 1, source })?;
        let mut events = Vec::new();
        for (i, line) in lines.enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let event: (f64, String, String) =
                serde_json::from_str(line).map_err(|source| ParseError::Json { line: i + 2, source })?;
            events.push(event);
        }
        Ok(Self { header, events })
    }

    /// The concatenated output of all `o` events.
    pub fn output(&self) -> String {
        self.events.iter().filter(|e| e.1 == "o").map(|e| e.2.as_str()).collect()
    }

    /// The audit records (`a` events), parsed.
    pub fn audits(&self) -> Vec<serde_json::Value> {
        self.events.iter().filter(|e| e.1 == "a").filter_map(|e| serde_json::from_str(&e.2).ok()).collect()
    }

    /// The markers' labels, in order.
    pub fn markers(&self) -> Vec<&str> {
        self.events.iter().filter(|e| e.1 == "m").map(|e| e.2.as_str()).collect()
    }

    /// The exit status from the `x` event, if the session ended cleanly.
    pub fn exit_status(&self) -> Option<i32> {
        self.events.iter().rev().find(|e| e.1 == "x").and_then(|e| e.2.parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> SessionInfo {
        SessionInfo {
            session_id: "0190f1a2-0000-7000-8000-000000000000".into(),
            user: "alice".into(),
            uid: 1000,
            host: "db1".into(),
            shell: "/bin/bash".into(),
            mode: "interactive".into(),
            command: None,
            identity: None,
        }
    }

    #[test]
    fn events_encode_as_intervals() {
        let mut enc = Encoder::default();
        let mut out = Vec::new();
        enc.event(Duration::from_millis(1500), &Event::Output("a\"b\u{1b}[0m"), &mut out);
        enc.event(Duration::from_millis(1750), &Event::Resize { cols: 80, rows: 24 }, &mut out);
        enc.event(Duration::from_millis(1700), &Event::Exit(130), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[1.500000, \"o\", \"a\\\"b\\u001b[0m\"]\n[0.250000, \"r\", \"80x24\"]\n[0.000000, \"x\", \"130\"]\n"
        );
    }

    #[test]
    fn header_round_trips_and_carries_the_session() {
        let h = Header::new(info(), 120, 39, Some("xterm-256color".into()), 1_700_000_000);
        let line = Encoder::header(&h);
        let text = String::from_utf8(line).unwrap();
        assert!(text.starts_with("{\"version\":3,\"term\":{\"cols\":120,\"rows\":39,\"type\":\"xterm-256color\"}"));
        let cast = Cast::parse(&text).unwrap();
        assert_eq!(cast.header.custos, info());
    }

    #[test]
    fn golden_fixture_parses() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/golden/hello.cast")).unwrap();
        let cast = Cast::parse(&text).unwrap();
        assert_eq!(cast.header.version, 3);
        assert_eq!(cast.exit_status(), Some(0));
    }

    #[test]
    fn malformed_event_names_its_line() {
        let err = Cast::parse("{\"version\":3,\"term\":{\"cols\":1,\"rows\":1},\"timestamp\":0,\"env\":{},\"custos\":{\"session_id\":\"x\",\"user\":\"u\",\"uid\":0,\"host\":\"h\",\"shell\":\"/bin/sh\",\"mode\":\"interactive\",\"command\":null,\"identity\":null}}\n[0.1, \"o\"\n").unwrap_err();
        assert!(err.to_string().starts_with("line 2:"), "{err}");
    }
}
