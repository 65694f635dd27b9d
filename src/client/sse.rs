//! Server-Sent Events, the framing of the collector's live routes (`GET
//! /v1/sessions/{id}/follow`): a byte stream of `event:`, `id:` and `data:`
//! lines, an empty line ending each event, `:` lines as comments (the
//! keep-alives). One incremental parser, shared by `custos replay
//! --follow` and the approver's view of a requester's screen: pieces may
//! split a line or an event anywhere, and a `\r\n` line end is accepted.
//! Unknown fields are ignored, as the SSE specification asks.

/// One Server-Sent Event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Splits a byte stream into events (`event:`, `id:`, `data:` lines, an
/// empty line ending each; `:` comments, the keep-alives, ignored).
#[derive(Default)]
pub struct SseParser {
    pending: Vec<u8>,
    current: SseEvent,
    has_data: bool,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let rest = self.pending.split_off(end + 1);
            let line = std::mem::replace(&mut self.pending, rest);
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if self.has_data || !self.current.event.is_empty() {
                    let mut event = std::mem::take(&mut self.current);
                    if event.event.is_empty() {
                        event.event = "message".into();
                    }
                    out.push(event);
                }
                self.has_data = false;
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.current.event = value.to_owned(),
                "id" => self.current.id = Some(value.to_owned()),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_across_pieces_and_comments_skipped() {
        let mut p = SseParser::default();
        assert!(p.feed(b": keep-alive\n\nevent: chunk\nid: 0\nda").is_empty());
        let got = p.feed(b"ta: {\"seq\":0}\r\n\r\nevent: end\ndata: {}\n\n");
        assert_eq!(
            got,
            vec![
                SseEvent { event: "chunk".into(), id: Some("0".into()), data: "{\"seq\":0}".into() },
                SseEvent { event: "end".into(), id: None, data: "{}".into() },
            ]
        );
    }
}
