//! What the collector learns from a chunk's payload for search: the session
//! header (chunk 0), command text from `m` markers, every program start the
//! exec backstop recorded (`a` records of kind `exec`, as `exec OUTCOME:
//! LINE`, kept apart from the markers so a session's command list is not
//! buried under its ten thousand `/bin/true`s), the exit status from the
//! `x` event, and the running session time. The approvals pane's `p` events
//! are evidence like any other line (kept, timed) but not indexed: search
//! finds commands, and the pane's markers say when it was open.
//!
//! Pure: asciicast bytes in, an [`PayloadIndex`] out, read through the
//! crate's asciicast codec ([`read_event_loose`]); marker labels are stored
//! as they came (replay reads them with [`crate::evidence::marker`]). The payload is signed
//! evidence from an enrolled host, so a line this indexer cannot read does not
//! make the chunk rejectable; it is counted, and the bytes are kept as they
//! came. Search is a convenience over the evidence, never a gate on it.

use serde_json::Value;

use crate::evidence::asciicast::read_event_loose;

/// The fields of an asciicast v3 header the collector indexes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderFields {
    pub user: Option<String>,
    pub host: Option<String>,
    pub shell: Option<String>,
    pub mode: Option<String>,
    pub command: Option<String>,
    /// Unix seconds, from the header's `timestamp`.
    pub timestamp: Option<i64>,
    /// The header line itself, as JSON text.
    pub json: String,
}

/// One `m` marker: its text and when it happened (microseconds since the
/// session started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedMarker {
    pub at_us: u64,
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PayloadIndex {
    pub header: Option<HeaderFields>,
    pub markers: Vec<IndexedMarker>,
    /// Program starts (`a` records of kind `exec`), as `exec OUTCOME: LINE`.
    pub execs: Vec<IndexedMarker>,
    pub exit_status: Option<i32>,
    /// Session time after the chunk's last event.
    pub elapsed_us: u64,
    /// Lines that were neither a header nor an event.
    pub unreadable_lines: u64,
}

/// Indexes one chunk's decompressed payload. `first` says whether this is
/// chunk 0 (whose first line is the header); `elapsed_us` is the session time
/// after the previous chunk, because asciicast v3 stores intervals.
pub fn index_payload(payload: &[u8], first: bool, elapsed_us: u64) -> PayloadIndex {
    let mut index = PayloadIndex { elapsed_us, ..PayloadIndex::default() };
    let text = String::from_utf8_lossy(payload);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).peekable();
    if first {
        if let Some(line) = lines.peek() {
            if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line) {
                index.header = Some(header_fields(&obj, line));
                lines.next();
            }
        }
    }
    for line in lines {
        // Most lines are output, whose text the index does not need: read
        // only their interval and code, without building the text.
        if let Some((time, code)) = event_head(line) {
            if !matches!(code, "m" | "a" | "x") {
                index.advance(time);
                continue;
            }
        }
        let Some(event) = read_event_loose(line) else {
            index.unreadable_lines += 1;
            continue;
        };
        index.advance(event.time);
        match event.code.as_str() {
            "m" => index.markers.push(IndexedMarker { at_us: index.elapsed_us, text: event.text() }),
            "a" => {
                if let Some(text) = exec_text(&event.text()) {
                    index.execs.push(IndexedMarker { at_us: index.elapsed_us, text });
                }
            }
            "x" => {
                index.exit_status = match &event.data {
                    Some(Value::String(s)) => s.trim().parse().ok(),
                    Some(Value::Number(n)) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
                    _ => None,
                };
            }
            _ => {}
        }
    }
    index
}

impl PayloadIndex {
    /// Moves the session clock by an event's interval.
    fn advance(&mut self, time: f64) {
        if time.is_finite() && time > 0.0 {
            // Saturating float-to-int conversion: a hostile interval cannot wrap.
            self.elapsed_us = self.elapsed_us.saturating_add((time * 1e6) as u64);
        }
    }
}

/// The interval and code of an event line `[number, "code", data]`,
/// skipping over the data; `None` for any other shape (which the full
/// reader then judges).
fn event_head(line: &str) -> Option<(f64, &str)> {
    let (time, code, _): (f64, &str, serde::de::IgnoredAny) = serde_json::from_str(line).ok()?;
    Some((time, code))
}

/// `exec OUTCOME: LINE` for an `a` record of kind `exec`.
fn exec_text(record: &str) -> Option<String> {
    let v: Value = serde_json::from_str(record).ok()?;
    if v.get("kind").and_then(Value::as_str) != Some("exec") {
        return None;
    }
    let outcome = v.get("outcome").and_then(Value::as_str).unwrap_or("?");
    let line = v.get("line").and_then(Value::as_str).unwrap_or_default();
    Some(format!("exec {outcome}: {line}"))
}

fn header_fields(obj: &serde_json::Map<String, Value>, line: &str) -> HeaderFields {
    let custos = obj.get("custos");
    let field = |name: &str| custos.and_then(|c| c.get(name)).and_then(Value::as_str).map(str::to_owned);
    HeaderFields {
        user: field("user"),
        host: field("host"),
        shell: field("shell"),
        mode: field("mode"),
        command: field("command").or_else(|| obj.get("command").and_then(Value::as_str).map(str::to_owned)),
        timestamp: obj.get("timestamp").and_then(Value::as_i64),
        json: line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = r#"{"version":3,"term":{"cols":80,"rows":24},"timestamp":1700000000,"env":{},"custos":{"session_id":"s","user":"alice","uid":1000,"host":"db1","shell":"/bin/bash","mode":"interactive","command":null,"identity":null}}"#;

    #[test]
    fn chunk_zero_gives_header_markers_and_time() {
        let payload = format!("{HEADER}\n[0.5, \"o\", \"$ \"]\n[1.25, \"m\", \"rm -rf /tmp/x\"]\n[0.25, \"o\", \"ok\"]\n");
        let index = index_payload(payload.as_bytes(), true, 0);
        let header = index.header.unwrap();
        assert_eq!(header.user.as_deref(), Some("alice"));
        assert_eq!(header.host.as_deref(), Some("db1"));
        assert_eq!(header.shell.as_deref(), Some("/bin/bash"));
        assert_eq!(header.timestamp, Some(1_700_000_000));
        assert_eq!(index.markers, vec![IndexedMarker { at_us: 1_750_000, text: "rm -rf /tmp/x".into() }]);
        assert_eq!(index.elapsed_us, 2_000_000);
        assert_eq!(index.exit_status, None);
        assert_eq!(index.unreadable_lines, 0);
    }

    #[test]
    fn later_chunks_continue_the_clock_and_find_the_exit() {
        let index = index_payload(b"[1.0, \"m\", \"ls\"]\n[0.5, \"x\", \"130\"]\n", false, 10_000_000);
        assert_eq!(index.header, None);
        assert_eq!(index.markers, vec![IndexedMarker { at_us: 11_000_000, text: "ls".into() }]);
        assert_eq!(index.exit_status, Some(130));
        assert_eq!(index.elapsed_us, 11_500_000);
    }

    #[test]
    fn program_starts_are_indexed_apart_from_the_markers() {
        let payload = br#"[1.0, "a", "{\"kind\":\"exec\",\"outcome\":\"refused\",\"line\":\"/usr/bin/touch x\"}"]
[0.5, "a", "{\"kind\":\"command\",\"line\":\"ls\"}"]
[0.5, "a", "not json"]
"#;
        let index = index_payload(payload, false, 0);
        assert_eq!(index.execs, vec![IndexedMarker { at_us: 1_000_000, text: "exec refused: /usr/bin/touch x".into() }]);
        assert!(index.markers.is_empty());
    }

    #[test]
    fn the_panes_stream_moves_the_clock_and_is_not_indexed() {
        let payload = b"[1.0, \"m\", \"approvals pane opened (80x10)\"]\n[0.5, \"p\", \"pending approvals: 0\"]\n[0.5, \"o\", \"$ \"]\n";
        let index = index_payload(payload, false, 0);
        assert_eq!(index.markers, vec![IndexedMarker { at_us: 1_000_000, text: "approvals pane opened (80x10)".into() }]);
        assert_eq!((index.elapsed_us, index.unreadable_lines), (2_000_000, 0));
    }

    /// Output lines take a short cut (interval and code only); whatever the
    /// line, the clock and the count of unreadable lines come out as the
    /// full reader says.
    #[test]
    fn the_short_cut_for_output_agrees_with_the_full_reader() {
        let lines = [
            r#"[0.5, "o", "plain"]"#,
            r#"[1, "o", "an integer interval"]"#,
            r#"[0.25, "\u006f", "an escaped code"]"#,
            r#"[0.125, "o", "four", "fields"]"#,
            r#"[0.5, "o"]"#,
            r#"[-3, "o", "negative"]"#,
            r#"[1e308, "o", "huge"]"#,
            r#"[18446744073709551615, "o", "the largest integer"]"#,
            r#"[0.5, "r", "80x24"]"#,
            r#"[0.5, "o", {"not": "a string"}]"#,
            r#"["0.5", "o", "a string interval"]"#,
            r#"{"an": "object"}"#,
            r#"[0.5, 7, "a number for a code"]"#,
            r#"[0.75, "m", "a marker"]"#,
        ];
        for line in lines {
            let mut reference = PayloadIndex { elapsed_us: 40, ..PayloadIndex::default() };
            match read_event_loose(line) {
                Some(event) => reference.advance(event.time),
                None => reference.unreadable_lines += 1,
            }
            let index = index_payload(line.as_bytes(), false, 40);
            assert_eq!((index.elapsed_us, index.unreadable_lines), (reference.elapsed_us, reference.unreadable_lines), "{line}");
        }
    }

    #[test]
    fn unreadable_lines_are_counted_not_fatal() {
        let index = index_payload(b"not json\n[\"x\"]\n[-5, \"m\", {\"cmd\":\"ls\"}]\n\xff\xfe\n", false, 7);
        assert_eq!(index.unreadable_lines, 3);
        assert_eq!(index.elapsed_us, 7, "a negative interval does not move the clock");
        assert_eq!(index.markers, vec![IndexedMarker { at_us: 7, text: "{\"cmd\":\"ls\"}".into() }]);
    }
}
