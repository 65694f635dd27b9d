//! Export: a session's chunks as a `.cast` file (v3, the chunks' payloads
//! concatenated), as asciicast v2, as the text the session showed, or as one
//! JSON object per event for a SIEM.
//!
//! Pure: asciicast bytes in (read through the crate's one codec,
//! [`super::asciicast`]), bytes out. Conversions:
//! - `cast-v2`: times become absolute (seconds since the start); the `term`
//!   object becomes `width`/`height`; other header fields (`custos`
//!   included) are kept. v2 has no exit event, so `x` is dropped.
//! - `txt`: output is fed through the same emulator the session used
//!   ([`crate::term::screen::Screen`]), honouring resizes; the rows that scrolled
//!   off the top, then the final screen, right-trimmed, trailing blank rows
//!   left out. The shell's screen alone: the approvals pane's `p` stream
//!   is not part of it.
//! - `json`: one object per line: the session's identity fields, the
//!   event's absolute time (RFC 3339 and unix seconds), its offset, type and
//!   data (`type` is `pane` for the approvals pane's `p` events).

use serde_json::{json, Map, Value};

use super::asciicast::{parse_event_line, parse_size, ParseError};
use super::marker::{self, Marker, PaneChange};
use super::{Chunk, ChunkError};
use crate::term::masker::Cover;
use crate::term::render::{Layout as RenderLayout, Renderer, Scrolled};
use crate::term::pipeline::Pipeline;
use crate::term::screen::{Damage, Screen, Size};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// asciicast v3: the chunks' payloads concatenated.
    Cast,
    /// asciicast v2, absolute times.
    #[value(name = "cast-v2")]
    CastV2,
    /// The text the session showed, scrolled lines included.
    Txt,
    /// One JSON object per event, with the session's fields.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("chunk {seq}: {error}")]
    Chunk { seq: u64, error: ChunkError },
    #[error("the recording is not asciicast v3: line {line}: {reason}")]
    Cast { line: usize, reason: String },
}

/// The chunks' payloads, in the order given: the session's `.cast` bytes.
pub fn concatenate(chunks: &[Chunk]) -> Result<Vec<u8>, ExportError> {
    let mut out = Vec::new();
    for chunk in chunks {
        let payload = chunk.payload().map_err(|error| ExportError::Chunk { seq: chunk.envelope().seq, error })?;
        out.extend_from_slice(&payload);
    }
    Ok(out)
}

/// One parsed event: absolute offset from the start, code, data.
struct CastEvent {
    at_us: u64,
    code: String,
    data: String,
}

struct ParsedCast {
    header: Map<String, Value>,
    events: Vec<CastEvent>,
}

fn parse(cast: &[u8]) -> Result<ParsedCast, ExportError> {
    let err = |line: usize, reason: String| ExportError::Cast { line, reason };
    let text = std::str::from_utf8(cast).map_err(|e| err(0, format!("not UTF-8: {e}")))?;
    let mut lines = text.lines().enumerate();
    let (_, first) = lines.next().ok_or_else(|| err(1, "empty".into()))?;
    let header: Map<String, Value> = serde_json::from_str(first).map_err(|e| err(1, format!("header: {e}")))?;
    if header.get("version").and_then(Value::as_u64) != Some(3) {
        return Err(err(1, "the header's version is not 3".into()));
    }
    let mut events = Vec::new();
    let mut at_us = 0u64;
    for (i, line) in lines {
        let event = parse_event_line(line, i + 1).map_err(|e| match e {
            ParseError::Time { line, time } => err(line, format!("interval {time} is not a time")),
            ParseError::Json { line, source } => err(line, source.to_string()),
            other => err(i + 1, other.to_string()),
        })?;
        let Some((interval, code, data)) = event else { continue };
        // Saturating float-to-int conversion; intervals are written in µs.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let micros = (interval * 1e6).round() as u64;
        at_us = at_us.saturating_add(micros);
        events.push(CastEvent { at_us, code, data });
    }
    Ok(ParsedCast { header, events })
}

/// Converts `.cast` (v3) bytes to `format`.
pub fn export(cast: &[u8], format: Format) -> Result<Vec<u8>, ExportError> {
    match format {
        Format::Cast => {
            parse(cast)?;
            Ok(cast.to_vec())
        }
        Format::CastV2 => to_v2(&parse(cast)?),
        Format::Txt => Ok(to_text(&parse(cast)?).into_bytes()),
        Format::Json => to_json(&parse(cast)?),
    }
}

/// Where a recording starts (unix seconds, from its header) and how long it
/// runs, for reading a range's ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub start: Option<i64>,
    pub duration_us: u64,
}

pub fn bounds(cast: &[u8]) -> Result<Bounds, ExportError> {
    let parsed = parse(cast)?;
    Ok(Bounds {
        start: parsed.header.get("timestamp").and_then(Value::as_i64),
        duration_us: parsed.events.last().map_or(0, |e| e.at_us),
    })
}

/// The part of a recording from `from_us` to `to_us` (offsets from its
/// start), as asciicast v3 that plays on its own: the header's `timestamp`
/// moves to the range's start and `term` takes the size the terminal had
/// then; the first event redraws the screen as it was at `from_us` (so the
/// excerpt does not open on a blank screen); then every event inside the
/// range, timed from its start. `excerpt` in the header says which part of
/// which recording this is. Markers and input before the range are left
/// out; the exit event stays only if it is inside.
pub fn slice(cast: &[u8], from_us: u64, to_us: Option<u64>) -> Result<Vec<u8>, ExportError> {
    let parsed = parse(cast)?;
    let (cols, rows) = term_size(&parsed.header);
    let mut screen = Screen::new(Size { rows, cols });
    let mut pane: Option<Screen> = None;
    let mut events = parsed.events.iter().peekable();
    while let Some(e) = events.next_if(|e| e.at_us < from_us) {
        match e.code.as_str() {
            "o" | "e" => replay(&mut screen, &e.data),
            "p" => {
                if let Some(pane) = pane.as_mut() {
                    replay(pane, &e.data);
                }
            }
            "r" => {
                if let Some(size) = resize(&e.data) {
                    screen.resize(size);
                }
            }
            "m" => match marker::read_pane(&e.data) {
                Some(PaneChange::Opened { cols, rows }) => pane = Some(Screen::new(Size { rows, cols })),
                Some(PaneChange::Resized { cols, rows }) => {
                    if let Some(pane) = pane.as_mut() {
                        pane.resize(Size { rows, cols });
                    }
                }
                Some(PaneChange::Closed(_)) => pane = None,
                Some(PaneChange::Exited(_)) | None => {}
            },
            _ => {}
        }
    }
    let size = screen.size();
    let mut header = parsed.header.clone();
    let mut term = header.get("term").and_then(Value::as_object).cloned().unwrap_or_default();
    term.insert("cols".into(), size.cols.into());
    term.insert("rows".into(), size.rows.into());
    header.insert("term".into(), Value::Object(term));
    if let Some(start) = header.get("timestamp").and_then(Value::as_i64) {
        let moved = start.saturating_add(i64::try_from(from_us / 1_000_000).unwrap_or(i64::MAX));
        header.insert("timestamp".into(), moved.into());
    }
    let end = to_us.map_or(Value::Null, |t| Value::from(seconds(t)));
    header.insert("excerpt".into(), json!({"from": seconds(from_us), "to": end}));
    let mut out = serde_json::to_vec(&header).map_err(|e| ExportError::Cast { line: 1, reason: e.to_string() })?;
    out.push(b'\n');
    let mut line = |interval_us: u64, code: &str, data: &str| {
        out.extend_from_slice(format!("[{}, ", seconds(interval_us)).as_bytes());
        let _ = serde_json::to_writer(&mut out, code);
        out.extend_from_slice(b", ");
        let _ = serde_json::to_writer(&mut out, data);
        out.extend_from_slice(b"]\n");
    };
    line(0, "o", &redraw(&screen));
    if let Some(pane) = &pane {
        let size = pane.size();
        line(0, "m", &Marker::Pane(PaneChange::Opened { cols: size.cols, rows: size.rows }).label());
        line(0, "p", &redraw(pane));
    }
    let mut last = from_us;
    for e in events.take_while(|e| to_us.is_none_or(|t| e.at_us <= t)) {
        line(e.at_us - last, &e.code, &e.data);
        last = e.at_us;
    }
    Ok(out)
}

/// Applies recorded output to `screen`, dropping what a replay never reads.
fn replay(screen: &mut Screen, data: &str) {
    screen.process(data.as_bytes());
    screen.take_replies();
    screen.take_passthrough();
    screen.clear_scrolled();
}

/// The bytes that draw `screen` on a fresh terminal of its size.
fn redraw(screen: &Screen) -> String {
    let size = screen.size();
    let mut out = Vec::new();
    let mut renderer = Renderer::new(RenderLayout { pane_rows: size.rows, cols: size.cols, status: false });
    renderer.frame(screen, &Scrolled::default(), &Damage::full(), &Cover::none(), None, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn resize(data: &str) -> Option<Size> {
    parse_size(data).map(|(cols, rows)| Size { cols, rows })
}

fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

fn term_size(header: &Map<String, Value>) -> (u16, u16) {
    let term = header.get("term");
    let dim = |k: &str, default: u16| {
        term.and_then(|t| t.get(k)).and_then(Value::as_u64).and_then(|v| u16::try_from(v).ok()).unwrap_or(default)
    };
    (dim("cols", 80), dim("rows", 24))
}

fn to_v2(cast: &ParsedCast) -> Result<Vec<u8>, ExportError> {
    let (cols, rows) = term_size(&cast.header);
    let mut header = Map::new();
    header.insert("version".into(), 2.into());
    header.insert("width".into(), cols.into());
    header.insert("height".into(), rows.into());
    for (k, v) in &cast.header {
        if k != "version" && k != "term" {
            header.insert(k.clone(), v.clone());
        }
    }
    let mut out = serde_json::to_vec(&header).map_err(|e| ExportError::Cast { line: 1, reason: e.to_string() })?;
    out.push(b'\n');
    for e in cast.events.iter().filter(|e| e.code != "x") {
        out.extend_from_slice(format!("[{}, ", seconds(e.at_us)).as_bytes());
        // v2 players know `o` only: standard error is output there.
        let code = if e.code == "e" { "o" } else { e.code.as_str() };
        let _ = serde_json::to_writer(&mut out, code);
        out.extend_from_slice(b", ");
        let _ = serde_json::to_writer(&mut out, &e.data);
        out.extend_from_slice(b"]\n");
    }
    Ok(out)
}

/// The recording replayed through the screen pipeline (`term::pipeline`,
/// unmasked: the recording was masked when it was made); rows are
/// collected as they scroll off, then the last screen.
fn to_text(cast: &ParsedCast) -> String {
    let (cols, rows) = term_size(&cast.header);
    let mut pipeline = Pipeline::unmasked(Size { rows, cols });
    let mut lines: Vec<String> = Vec::new();
    for e in &cast.events {
        match e.code.as_str() {
            "o" | "e" => {
                let mut rest = e.data.as_bytes();
                while let Some(more) = pipeline.feed(rest) {
                    lines.extend(pipeline.take_scrolled_text());
                    rest = more;
                }
            }
            "r" => {
                if let Some((c, r)) = e.data.split_once('x') {
                    if let (Ok(cols), Ok(rows)) = (c.parse(), r.parse()) {
                        pipeline.screen_mut().resize(Size { rows, cols });
                    }
                }
            }
            _ => {}
        }
    }
    lines.extend(pipeline.take_scrolled_text());
    lines.extend(pipeline.screen().text().lines().map(str::to_owned));
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn to_json(cast: &ParsedCast) -> Result<Vec<u8>, ExportError> {
    let start = cast.header.get("timestamp").and_then(Value::as_u64).unwrap_or(0);
    let custos = cast.header.get("custos").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut out = Vec::new();
    for e in &cast.events {
        let mut obj = custos.clone();
        let abs_us = start.saturating_mul(1_000_000).saturating_add(e.at_us);
        let kind = match e.code.as_str() {
            "o" => "output",
            "e" => "stderr",
            "i" => "input",
            "a" => "audit",
            "r" => "resize",
            "m" => "marker",
            "p" => "pane",
            "x" => "exit",
            _ => "other",
        };
        let fields = json!({
            "time": crate::when::format_rfc3339_us(abs_us),
            "ts": abs_us as f64 / 1e6,
            "offset": e.at_us as f64 / 1e6,
            "type": kind,
            "code": e.code,
            "data": e.data,
        });
        if let Value::Object(fields) = fields {
            obj.extend(fields);
        }
        serde_json::to_writer(&mut out, &obj).map_err(|err| ExportError::Cast { line: 0, reason: err.to_string() })?;
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAST: &str = concat!(
        "{\"version\":3,\"term\":{\"cols\":20,\"rows\":3,\"type\":\"xterm\"},\"timestamp\":1700000000,\"env\":{\"SHELL\":\"/bin/bash\"},",
        "\"custos\":{\"session_id\":\"0190f1a2-0000-7000-8000-000000000000\",\"user\":\"alice\",\"uid\":1000,\"host\":\"db1\",\"shell\":\"/bin/bash\",\"mode\":\"interactive\",\"command\":null,\"identity\":null}}\n",
        "[0.500000, \"o\", \"one\\r\\ntwo\\r\\n\"]\n",
        "[0.250000, \"m\", \"mark\"]\n",
        "[1.000000, \"o\", \"three\\r\\nfour\\r\\nfive\"]\n",
        "[0.000001, \"x\", \"0\"]\n",
    );

    #[test]
    fn v2_has_absolute_times_and_no_exit_event() {
        let out = String::from_utf8(export(CAST.as_bytes(), Format::CastV2).unwrap()).unwrap();
        let mut lines = out.lines();
        let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!((header["version"].as_u64(), header["width"].as_u64(), header["height"].as_u64()), (Some(2), Some(20), Some(3)));
        assert_eq!(header["custos"]["user"], "alice");
        assert_eq!(header["timestamp"], 1_700_000_000);
        let rest: Vec<&str> = lines.collect();
        assert_eq!(
            rest,
            vec!["[0.500000, \"o\", \"one\\r\\ntwo\\r\\n\"]", "[0.750000, \"m\", \"mark\"]", "[1.750000, \"o\", \"three\\r\\nfour\\r\\nfive\"]"]
        );
    }

    #[test]
    fn text_includes_the_lines_that_scrolled_off() {
        let out = String::from_utf8(export(CAST.as_bytes(), Format::Txt).unwrap()).unwrap();
        assert_eq!(out, "one\ntwo\nthree\nfour\nfive\n");
    }

    /// A cast of `events` (code, data), 0.1 s apart, on a 60x3 terminal.
    fn cast_of(events: &[(&str, &str)]) -> String {
        let mut cast = String::from("{\"version\":3,\"term\":{\"cols\":60,\"rows\":3},\"timestamp\":1700000000,\"env\":{}}\n");
        for (code, data) in events {
            cast.push_str(&format!("[0.100000, {}, {}]\n", serde_json::to_string(code).unwrap(), serde_json::to_string(data).unwrap()));
        }
        cast
    }

    #[test]
    fn text_keeps_what_clear_erased_screen_and_scrollback() {
        // `clear` is home, erase the screen, erase the scrollback; here split
        // over two events, as a write may split it.
        let cast = cast_of(&[
            ("o", "one\r\ntwo\r\ntoken ********\r\nfour\r\n"),
            ("o", "\u{1b}[H\u{1b}[2J\u{1b}["),
            ("o", "3Jfive\r\nsix\r\n"),
        ]);
        let out = String::from_utf8(export(cast.as_bytes(), Format::Txt).unwrap()).unwrap();
        assert_eq!(out, "one\ntwo\ntoken ********\nfour\nfive\nsix\n");
    }

    #[test]
    fn text_of_a_live_sessions_recording_keeps_what_clear_erased() {
        use crate::term::pipeline::Target;
        use crate::term::render::Layout;
        use std::time::{Duration, Instant};
        // The recording as a session makes it: the pipeline's frames, which
        // redraw the screen rather than pass `clear` on.
        let size = Size { rows: 3, cols: 60 };
        let masker = crate::term::masker::Masker::new(&crate::mask::MaskingConfig::default()).unwrap();
        let mut pipeline = Pipeline::new(size, masker);
        let mut renderer = Renderer::new(Layout { pane_rows: size.rows, cols: size.cols, status: false });
        let later = Instant::now() + Duration::from_secs(3600);
        let mut frames = Vec::new();
        for write in ["one\r\ntwo\r\ntoken ghp_R4nd0mTestTokenValue0123456789abcdEF\r\nfour\r\n", "\x1b[H\x1b[2J\x1b[3J", "five\r\nsix\r\n"] {
            assert_eq!(pipeline.feed(write.as_bytes()), None);
            let mut out = Vec::new();
            pipeline.frame(later, &mut [Target::plain(&mut renderer, &mut out)]);
            frames.push(String::from_utf8(out).unwrap());
        }
        let events: Vec<(&str, &str)> = frames.iter().map(|f| ("o", f.as_str())).collect();
        let out = String::from_utf8(export(cast_of(&events).as_bytes(), Format::Txt).unwrap()).unwrap();
        assert_eq!(out, format!("one\ntwo\ntoken {}\nfour\nfive\nsix\n", "*".repeat(40)));
    }

    #[test]
    fn json_is_one_object_per_event_with_the_session_fields() {
        let out = String::from_utf8(export(CAST.as_bytes(), Format::Json).unwrap()).unwrap();
        let events: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(events.len(), 4);
        assert_eq!(events[0]["user"], "alice");
        assert_eq!(events[0]["session_id"], "0190f1a2-0000-7000-8000-000000000000");
        assert_eq!(events[0]["type"], "output");
        assert_eq!(events[0]["time"], "2023-11-14T22:13:20.500000Z");
        assert_eq!(events[1]["type"], "marker");
        assert_eq!(events[3]["type"], "exit");
        assert_eq!(events[3]["offset"], 1.750001);
    }

    #[test]
    fn a_range_plays_on_its_own_from_the_screen_it_starts_on() {
        // From 1.0 s (after "one two" and the marker) to 1.75 s (before the exit).
        let out = String::from_utf8(slice(CAST.as_bytes(), 1_000_000, Some(1_750_000)).unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        let header: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(header["timestamp"], 1_700_000_001);
        assert_eq!(header["excerpt"], json!({"from": "1.000000", "to": "1.750000"}));
        assert_eq!(header["custos"]["user"], "alice");
        assert_eq!(lines.len(), 3, "{out}");
        let first: (f64, String, String) = serde_json::from_str(lines[1]).unwrap();
        assert_eq!((first.0, first.1.as_str()), (0.0, "o"));
        assert!(first.2.contains("one") && first.2.contains("two"), "the screen at the start is redrawn: {first:?}");
        assert_eq!(lines[2], "[0.750000, \"o\", \"three\\r\\nfour\\r\\nfive\"]");
        // The excerpt is a recording of its own: its text is what it shows.
        let text = String::from_utf8(export(out.as_bytes(), Format::Txt).unwrap()).unwrap();
        assert!(text.ends_with("three\nfour\nfive\n"), "{text}");
        assert!(!out.contains("\"m\""), "a marker before the range is left out");
        // Open-ended: the exit event is kept.
        let rest = String::from_utf8(slice(CAST.as_bytes(), 1_000_000, None).unwrap()).unwrap();
        assert!(rest.lines().last().unwrap().contains("\"x\""), "{rest}");
    }

    /// A session whose approvals pane opened at 1 s and closed at 3 s.
    const WITH_PANE: &str = concat!(
        "{\"version\":3,\"term\":{\"cols\":20,\"rows\":3},\"timestamp\":1700000000,\"env\":{}}\n",
        "[0.500000, \"o\", \"$ shell\"]\n",
        "[0.500000, \"m\", \"approvals pane opened (20x2)\"]\n",
        "[0.000000, \"p\", \"\\u001b[1;1Hpending: 0\"]\n",
        "[1.000000, \"p\", \"\\u001b[2;1Hkeys\"]\n",
        "[1.000000, \"m\", \"approvals pane closed (by the user)\"]\n",
        "[0.000000, \"o\", \" back\"]\n",
    );

    #[test]
    fn the_panes_stream_is_its_own_in_every_export() {
        let text = String::from_utf8(export(WITH_PANE.as_bytes(), Format::Txt).unwrap()).unwrap();
        assert_eq!(text, "$ shell back\n", "the text export is the shell's screen alone");
        let json = String::from_utf8(export(WITH_PANE.as_bytes(), Format::Json).unwrap()).unwrap();
        let types: Vec<String> = json.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].as_str().unwrap().to_owned()).collect();
        assert_eq!(types, ["output", "marker", "pane", "pane", "marker", "output"]);
        let v2 = String::from_utf8(export(WITH_PANE.as_bytes(), Format::CastV2).unwrap()).unwrap();
        assert!(v2.contains("[1.000000, \"p\", \"\\u001b[1;1Hpending: 0\"]"), "{v2}");
    }

    #[test]
    fn a_range_inside_an_open_pane_opens_it_again_as_it_was() {
        let out = String::from_utf8(slice(WITH_PANE.as_bytes(), 2_500_000, None).unwrap()).unwrap();
        let events: Vec<(f64, String, String)> = out.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect();
        let codes: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(codes, ["o", "m", "p", "m", "o"], "{out}");
        assert_eq!(events[1].2, "approvals pane opened (20x2)");
        assert!(events[2].2.contains("pending: 0") && events[2].2.contains("keys"), "the pane is redrawn: {:?}", events[2]);
        assert!(!events[0].2.contains("pending"), "the pane never draws on the shell's screen");
        // After the pane closed, a range has no pane to open.
        let after = String::from_utf8(slice(WITH_PANE.as_bytes(), 3_500_000, None).unwrap()).unwrap();
        assert!(!after.contains("\"p\"") && !after.contains("approvals pane"), "{after}");
    }

    #[test]
    fn bounds_are_the_header_time_and_the_last_event() {
        assert_eq!(bounds(CAST.as_bytes()).unwrap(), Bounds { start: Some(1_700_000_000), duration_us: 1_750_001 });
    }

    #[test]
    fn a_broken_cast_is_a_named_error() {
        for (cast, reason) in [
            ("", "line 1"),
            ("{\"version\":2}\n", "version is not 3"),
            ("{\"version\":3}\n[0.1, \"o\"]\n", "line 2"),
            ("{\"version\":3}\n[-1, \"o\", \"x\"]\n", "not a time"),
        ] {
            let err = export(cast.as_bytes(), Format::Json).unwrap_err().to_string();
            assert!(err.contains(reason), "{cast:?}: {err}");
        }
        assert!(export(&[0xff, 0xfe], Format::Cast).is_err());
    }
}
