//! The session recording: asciicast v3.
//!
//! A recording is a header line followed by one JSON array per event,
//! `[interval, code, data]`, where `interval` is the time in seconds since the
//! previous event. Codes: `o` output (what the renderer drew for the pane),
//! `i` input (only when enabled, and never while ECHO is off), `r` resize
//! (`"COLSxROWS"`), `m` marker, `x` exit status, and two codes of ours:
//! `a`, an audit record (JSON text) from the command gate, and `p`, the
//! approvals pane's output (what its own renderer drew for a terminal the
//! pane's size; `m` markers from `super::marker` say when the pane opened,
//! at what size, and when it closed). Players skip codes they do not know
//! (asciinema 3 does; `tests/player.rs` checks), so the structured records
//! and the pane ride in the same signed stream as the screen without ever
//! drawing on it. See <https://docs.asciinema.org/manual/asciicast/v3/>.
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
    /// Standard error of a session without a terminal (`e`): output,
    /// drawn like `o`, kept apart so an auditor can tell the two.
    Error(&'a str),
    Input(&'a str),
    Resize { cols: u16, rows: u16 },
    Marker(&'a str),
    /// A structured audit record (a JSON object) from the command gate.
    Audit(&'a str),
    /// The approvals pane's output: a frame its renderer drew for a
    /// terminal of the pane's size, never the shell's.
    Pane(&'a str),
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
            Event::Error(s) => ("e", (*s).into()),
            Event::Input(s) => ("i", (*s).into()),
            Event::Resize { cols, rows } => ("r", format!("{cols}x{rows}").into()),
            Event::Marker(s) => ("m", (*s).into()),
            Event::Audit(s) => ("a", (*s).into()),
            Event::Pane(s) => ("p", (*s).into()),
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
    #[error("line 1: asciicast version {0} is not supported (custos reads versions 2 and 3)")]
    Version(u64),
    #[error("line 1: the header has no {0}; is this an asciicast file?")]
    HeaderField(&'static str),
    #[error("line {line}: the event time {time} is not a finite, non-negative number of seconds")]
    Time { line: usize, time: f64 },
    #[error("line {line}: a resize event must be COLSxROWS, found {data:?}")]
    Resize { line: usize, data: String },
}

/// Parses one event line, `[time, code, data]`. Blank lines and v3
/// comment lines (`#`) are `None`. This is the one event parser: [`Cast`],
/// [`Recording`], the export (`super::export`) and the approver's live
/// screen read their events through it; the collector's index reads
/// through [`read_event_loose`].
pub fn parse_event_line(line: &str, number: usize) -> Result<Option<(f64, String, String)>, ParseError> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let event: (f64, String, String) =
        serde_json::from_str(trimmed).map_err(|source| ParseError::Json { line: number, source })?;
    if !event.0.is_finite() || event.0 < 0.0 {
        return Err(ParseError::Time { line: number, time: event.0 });
    }
    Ok(Some(event))
}

/// An event line as far as it could be read: see [`read_event_loose`].
#[derive(Clone, Debug, PartialEq)]
pub struct LooseEvent {
    /// The line's time field, unchecked (it may be negative).
    pub time: f64,
    pub code: String,
    /// Any JSON value, or none.
    pub data: Option<serde_json::Value>,
}

impl LooseEvent {
    /// The data as text: a string as it is, other JSON as JSON text.
    pub fn text(&self) -> String {
        match &self.data {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

/// Reads an event line without judging it: `None` unless it is a JSON
/// array that starts with a number and a code. For the collector's index,
/// which reads signed evidence from enrolled hosts: a line it cannot read
/// must not make a chunk rejectable, so times are not checked and the data
/// may be any JSON value, or missing.
pub fn read_event_loose(line: &str) -> Option<LooseEvent> {
    let serde_json::Value::Array(mut event) = serde_json::from_str(line).ok()? else { return None };
    let time = event.first().and_then(serde_json::Value::as_f64)?;
    let code = event.get(1).and_then(serde_json::Value::as_str)?.to_owned();
    let data = (event.len() > 2).then(|| event.swap_remove(2));
    Some(LooseEvent { time, code, data })
}

/// A resize event's data, `COLSxROWS`, as (cols, rows).
pub fn parse_size(data: &str) -> Option<(u16, u16)> {
    let (c, r) = data.split_once('x')?;
    Some((c.trim().parse().ok()?, r.trim().parse().ok()?))
}

impl Cast {
    /// Parses an asciicast v3 file written by [`CastFile`].
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut lines = text.lines();
        let first = lines.next().ok_or(ParseError::Empty)?;
        let header = serde_json::from_str(first).map_err(|source| ParseError::Json { line: 1, source })?;
        let mut events = Vec::new();
        for (i, line) in lines.enumerate() {
            if let Some(event) = parse_event_line(line, i + 2)? {
                events.push(event);
            }
        }
        Ok(Self { header, events })
    }

    /// The concatenated output of all `o` events.
    pub fn output(&self) -> String {
        self.events.iter().filter(|e| e.1 == "o").map(|e| e.2.as_str()).collect()
    }

    /// The concatenated output of the approvals pane (`p` events): a stream
    /// of its own, never part of [`Cast::output`].
    pub fn pane_output(&self) -> String {
        self.events.iter().filter(|e| e.1 == "p").map(|e| e.2.as_str()).collect()
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

/// What an event is, for readers of any recording (v2 or v3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Output,
    Input,
    Resize { cols: u16, rows: u16 },
    Marker,
    /// The approvals pane's output (`p`): its own screen, never the shell's.
    Pane,
    Exit,
    /// A code this version of custos does not know; kept, shown nowhere.
    Other,
}

/// One event with its time made absolute: seconds since the recording
/// started, never decreasing.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedEvent {
    pub time: f64,
    pub kind: Kind,
    pub data: String,
}

/// Any asciicast v2 or v3 recording (ours, or one made by asciinema), for
/// playback. v2 stores absolute times and `width`/`height`; v3 stores
/// intervals and `term.cols`/`term.rows`, and allows `#` comment lines.
/// Both become [`TimedEvent`]s on one absolute clock.
#[derive(Clone, Debug)]
pub struct Recording {
    pub version: u8,
    pub cols: u16,
    pub rows: u16,
    /// Unix time the recording started, if the header says.
    pub timestamp: Option<u64>,
    pub title: Option<String>,
    pub command: Option<String>,
    /// The session's identity when custos recorded it.
    pub custos: Option<SessionInfo>,
    pub events: Vec<TimedEvent>,
    /// Time of the last event read (for v3's intervals).
    clock: f64,
    /// Lines read so far, header included (for error messages).
    lines: usize,
}

impl Recording {
    /// Parses a whole recording.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut lines = text.split_terminator('\n');
        let first = lines.find(|l| !l.trim().is_empty()).ok_or(ParseError::Empty)?;
        let mut recording = Self::from_header(first)?;
        for line in lines {
            recording.push_line(line)?;
        }
        Ok(recording)
    }

    /// A recording with no events yet, from its header line.
    pub fn from_header(line: &str) -> Result<Self, ParseError> {
        let header: serde_json::Value =
            serde_json::from_str(line.trim()).map_err(|source| ParseError::Json { line: 1, source })?;
        let version = header.get("version").and_then(serde_json::Value::as_u64).ok_or(ParseError::HeaderField("version"))?;
        let size = |v: Option<&serde_json::Value>, name| {
            v.and_then(serde_json::Value::as_u64)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or(ParseError::HeaderField(name))
        };
        let (cols, rows) = match version {
            2 => (size(header.get("width"), "width")?, size(header.get("height"), "height")?),
            3 => {
                let term = header.get("term").ok_or(ParseError::HeaderField("term"))?;
                (size(term.get("cols"), "term.cols")?, size(term.get("rows"), "term.rows")?)
            }
            other => return Err(ParseError::Version(other)),
        };
        let text = |key: &str| header.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
        Ok(Self {
            version: if version == 2 { 2 } else { 3 },
            cols,
            rows,
            timestamp: header.get("timestamp").and_then(serde_json::Value::as_u64),
            title: text("title"),
            command: text("command"),
            // A foreign or damaged `custos` object is not an identity.
            custos: header.get("custos").and_then(|v| serde_json::from_value(v.clone()).ok()),
            events: Vec::new(),
            clock: 0.0,
            lines: 1,
        })
    }

    /// Parses the next line after the header (following a file as it grows
    /// feeds complete lines one at a time).
    pub fn push_line(&mut self, line: &str) -> Result<(), ParseError> {
        self.lines += 1;
        let number = self.lines;
        let Some((time, code, data)) = parse_event_line(line, number)? else {
            return Ok(());
        };
        let time = if self.version == 2 { time.max(self.clock) } else { self.clock + time };
        self.clock = time;
        let kind = match code.as_str() {
            "o" | "e" => Kind::Output,
            "i" => Kind::Input,
            "m" => Kind::Marker,
            "p" => Kind::Pane,
            "x" => Kind::Exit,
            "r" => {
                let Some((cols, rows)) = parse_size(&data) else {
                    return Err(ParseError::Resize { line: number, data });
                };
                Kind::Resize { cols, rows }
            }
            _ => Kind::Other,
        };
        self.events.push(TimedEvent { time, kind, data });
        Ok(())
    }

    /// Seconds from the start to the last event.
    pub fn duration(&self) -> f64 {
        self.events.last().map_or(0.0, |e| e.time)
    }

    /// The exit status from the last `x` event, if the session ended.
    pub fn exit_status(&self) -> Option<i32> {
        self.events.iter().rev().find(|e| e.kind == Kind::Exit).and_then(|e| e.data.trim().parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> SessionInfo {
        crate::fixtures::session_info(crate::fixtures::SESSION_ID)
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
    fn the_pane_is_a_p_event_and_reads_back_as_its_own_stream() {
        let mut enc = Encoder::default();
        let mut out = Vec::new();
        enc.event(Duration::from_millis(100), &Event::Output("$ "), &mut out);
        enc.event(Duration::from_millis(250), &Event::Pane("\u{1b}[1;1Hpending approvals: 0"), &mut out);
        let lines = String::from_utf8(out).unwrap();
        assert!(lines.ends_with("[0.150000, \"p\", \"\\u001b[1;1Hpending approvals: 0\"]\n"), "{lines}");
        let text = format!("{{\"version\":3,\"term\":{{\"cols\":80,\"rows\":24}}}}\n{lines}");
        let r = Recording::parse(&text).unwrap();
        let got: Vec<(Kind, &str)> = r.events.iter().map(|e| (e.kind, e.data.as_str())).collect();
        assert_eq!(got, vec![(Kind::Output, "$ "), (Kind::Pane, "\u{1b}[1;1Hpending approvals: 0")]);
        let line = lines.lines().nth(1).unwrap();
        assert_eq!(read_event_loose(line).unwrap().code, "p");
    }

    #[test]
    fn the_pane_never_joins_the_shells_output() {
        let header = String::from_utf8(Encoder::header(&Header::new(info(), 80, 24, None, 0))).unwrap();
        let cast = Cast::parse(&format!("{header}[0.1, \"o\", \"shell\"]\n[0.1, \"p\", \"pane\"]\n[0.1, \"o\", \" again\"]\n")).unwrap();
        assert_eq!(cast.output(), "shell again");
        assert_eq!(cast.pane_output(), "pane");
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

    const V2: &str = "{\"version\": 2, \"width\": 60, \"height\": 12, \"timestamp\": 1795706657}\n[0.5, \"o\", \"a\"]\n[1.25, \"o\", \"b\"]\n[1.0, \"o\", \"late\"]\n";

    #[test]
    fn v2_times_are_absolute_and_never_go_back() {
        let r = Recording::parse(V2).unwrap();
        assert_eq!((r.version, r.cols, r.rows, r.timestamp), (2, 60, 12, Some(1_795_706_657)));
        let times: Vec<f64> = r.events.iter().map(|e| e.time).collect();
        assert_eq!(times, vec![0.5, 1.25, 1.25]);
    }

    #[test]
    fn v3_intervals_add_up_and_comments_are_skipped() {
        let text = "{\"version\":3,\"term\":{\"cols\":80,\"rows\":24}}\n# a comment\n[0.5, \"o\", \"a\"]\n[0.25, \"r\", \"100x30\"]\n[1, \"m\", \"ls\"]\n[0, \"x\", \"3\"]\n";
        let r = Recording::parse(text).unwrap();
        let got: Vec<(f64, Kind)> = r.events.iter().map(|e| (e.time, e.kind)).collect();
        assert_eq!(
            got,
            vec![(0.5, Kind::Output), (0.75, Kind::Resize { cols: 100, rows: 30 }), (1.75, Kind::Marker), (1.75, Kind::Exit)]
        );
        assert_eq!(r.exit_status(), Some(3));
        assert_eq!(r.duration(), 1.75);
    }

    #[test]
    fn loose_reading_takes_what_it_can() {
        let e = read_event_loose("[-5, \"m\", {\"cmd\":\"ls\"}]").unwrap();
        assert_eq!((e.time, e.code.as_str(), e.text()), (-5.0, "m", "{\"cmd\":\"ls\"}".to_owned()));
        assert_eq!(read_event_loose("[1, \"x\"]").unwrap().text(), "");
        assert_eq!(read_event_loose("[1, \"o\", \"a\"]").unwrap().text(), "a");
        for line in ["not json", "[\"x\"]", "{\"version\":3}", "[1]"] {
            assert_eq!(read_event_loose(line), None, "{line}");
        }
    }

    #[test]
    fn sizes_are_cols_by_rows() {
        assert_eq!(parse_size("80x24"), Some((80, 24)));
        assert_eq!(parse_size(" 100 x 30 "), Some((100, 30)));
        assert_eq!(parse_size("wide"), None);
        assert_eq!(parse_size("80x"), None);
    }

    #[rstest::rstest]
    #[case::empty("", "the recording is empty")]
    #[case::not_json("hello\n", "line 1:")]
    #[case::version("{\"version\":1,\"width\":1,\"height\":1}\n", "version 1 is not supported")]
    #[case::no_size("{\"version\":2}\n", "has no width")]
    #[case::no_term("{\"version\":3}\n", "has no term")]
    #[case::bad_event("{\"version\":2,\"width\":1,\"height\":1}\n[1, \"o\"]\n", "line 2:")]
    #[case::negative_time("{\"version\":2,\"width\":1,\"height\":1}\n[-1, \"o\", \"x\"]\n", "line 2: the event time -1")]
    #[case::bad_resize("{\"version\":3,\"term\":{\"cols\":1,\"rows\":1}}\n[1, \"o\", \"x\"]\n[1, \"r\", \"wide\"]\n", "line 3: a resize event")]
    fn malformed_recordings_are_named_errors(#[case] text: &str, #[case] expected: &str) {
        let err = Recording::parse(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
}
