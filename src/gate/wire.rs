//! The bytes spoken between the shell hooks and the recorder.
//!
//! The hooks are shell code, so the protocol is what bash and zsh can
//! write and read with builtins alone, without forking: a header line of
//! words, then either netstrings (`<len>:<bytes>`, for values that may hold
//! any byte, newlines included) or free text ended by a line that only the
//! holder of the current nonce can write.
//!
//! Shell to recorder:
//!
//! ```text
//! HELLO <token> <shell> <pid> <version>\n
//! PROMPT <nonce> <status> <pid>\n<report lines...><nonce> END\n
//! CHECK <nonce> <enter|backstop|command> <n>\n<len>:<cwd><len>:<line><len>:<command>(<len>:<name><len>:<value>)*
//! ```
//!
//! Recorder to shell, one line each, with the next nonce:
//!
//! ```text
//! OK <nonce>\n        ALLOW <nonce>\n        MORE <nonce>\n
//! DENY <nonce> <len>\n<message>
//! WAIT -\n           (a held line: still waiting for approval; no nonce)
//! ```
//!
//! The decoder is pure and incremental: bytes in as they arrive, whole
//! messages out. Everything is bounded, so a confused or hostile peer gets
//! an error, never unbounded memory.

use crate::policy::MAX_LINE_BYTES;

/// Longest header line.
const MAX_HEADER: usize = 4096;
/// Longest PROMPT report (the hooks' state, bindings included).
const MAX_REPORT: usize = 1024 * 1024;
/// Most fields of a CHECK: cwd, line, command and 500 variables.
const MAX_FIELDS: usize = 1003;
/// Longest field.
const MAX_FIELD: usize = MAX_LINE_BYTES + 1024;

/// Where a CHECK comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The line editor's accept keys: the whole line, before it runs.
    Enter,
    /// The DEBUG trap or preexec: a command reached execution without
    /// passing the Enter gate.
    Backstop,
    /// The DEBUG trap: one simple command of an allowed line, as the shell
    /// is about to run it (after aliases, functions, `eval`, `source`,
    /// history expansion), with the line as typed for context.
    Command,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Enter => "enter",
            Source::Backstop => "backstop",
            Source::Command => "command",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Hello { token: String, shell: String, pid: i32, version: String },
    Prompt { nonce: String, status: i32, pid: i32, report: String },
    Check { nonce: String, source: Source, cwd: String, line: String, command: String, vars: Vec<(String, String)> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("header line longer than {MAX_HEADER} bytes")]
    HeaderTooLong,
    #[error("unknown message {0:?}")]
    UnknownVerb(String),
    #[error("malformed {verb} header: {why}")]
    BadHeader { verb: &'static str, why: &'static str },
    #[error("malformed field {index}: {why}")]
    BadField { index: usize, why: &'static str },
    #[error("PROMPT report longer than {MAX_REPORT} bytes")]
    ReportTooLong,
}

/// A reply to the hooks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Ok { nonce: String },
    Allow { nonce: String },
    More { nonce: String },
    Deny { nonce: String, message: String },
    /// No answer yet: the line waits for approval, and the answer comes
    /// later (see `Gate::resolve`). Nothing is sent.
    Hold,
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Reply::Ok { nonce } => format!("OK {nonce}\n").into_bytes(),
            Reply::Allow { nonce } => format!("ALLOW {nonce}\n").into_bytes(),
            Reply::More { nonce } => format!("MORE {nonce}\n").into_bytes(),
            Reply::Hold => Vec::new(),
            Reply::Deny { nonce, message } => {
                // One line of text: the hooks print it as it is.
                let message = message.replace(['\n', '\r'], " ");
                let mut out = format!("DENY {nonce} {}\n", message.len()).into_bytes();
                out.extend_from_slice(message.as_bytes());
                out
            }
        }
    }
}

/// Incremental decoder for one connection.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole message, if one has arrived. After an error the
    /// connection must be dropped: framing is lost.
    pub fn next_message(&mut self) -> Option<Result<Message, WireError>> {
        let Some(nl) = memchr::memchr(b'\n', &self.buf) else {
            return (self.buf.len() > MAX_HEADER).then_some(Err(WireError::HeaderTooLong));
        };
        if nl > MAX_HEADER {
            return Some(Err(WireError::HeaderTooLong));
        }
        let header = String::from_utf8_lossy(self.buf.get(..nl).unwrap_or_default()).into_owned();
        let words: Vec<&str> = header.split(' ').collect();
        let body = nl + 1;
        let parsed = match words.first().copied().unwrap_or("") {
            "HELLO" => hello(&words).map(|m| Some((m, body))),
            "PROMPT" => self.prompt(&words, body),
            "CHECK" => self.check(&words, body),
            other => Err(WireError::UnknownVerb(other.chars().take(32).collect())),
        };
        match parsed {
            Ok(Some((message, end))) => {
                self.buf.drain(..end);
                Some(Ok(message))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    fn prompt(&self, words: &[&str], body: usize) -> Result<Option<(Message, usize)>, WireError> {
        let bad = |why| WireError::BadHeader { verb: "PROMPT", why };
        let [_, nonce, status, pid] = words else { return Err(bad("expected nonce, status and pid")) };
        let status = status.parse().map_err(|_| bad("status is not a number"))?;
        let pid = pid.parse().map_err(|_| bad("pid is not a number"))?;
        let rest = self.buf.get(body..).unwrap_or_default();
        let end_line = format!("{nonce} END\n");
        // The end line starts a line: at the start of the report or after a newline.
        let found = if rest.starts_with(end_line.as_bytes()) {
            Some(0)
        } else {
            memchr::memmem::find(rest, format!("\n{end_line}").as_bytes()).map(|i| i + 1)
        };
        match found {
            Some(at) => {
                let report = String::from_utf8_lossy(rest.get(..at).unwrap_or_default()).into_owned();
                let message = Message::Prompt { nonce: (*nonce).to_owned(), status, pid, report };
                Ok(Some((message, body + at + end_line.len())))
            }
            None if rest.len() > MAX_REPORT => Err(WireError::ReportTooLong),
            None => Ok(None),
        }
    }

    fn check(&self, words: &[&str], body: usize) -> Result<Option<(Message, usize)>, WireError> {
        let bad = |why| WireError::BadHeader { verb: "CHECK", why };
        let [_, nonce, source, n] = words else { return Err(bad("expected nonce, source and field count")) };
        let source = match *source {
            "enter" => Source::Enter,
            "backstop" => Source::Backstop,
            "command" => Source::Command,
            _ => return Err(bad("source is neither enter, backstop nor command")),
        };
        let n: usize = n.parse().map_err(|_| bad("field count is not a number"))?;
        if !(3..=MAX_FIELDS).contains(&n) || !(n - 3).is_multiple_of(2) {
            return Err(bad("field count must be 3 plus name/value pairs"));
        }
        let mut at = body;
        let mut fields = Vec::with_capacity(n);
        for index in 0..n {
            let rest = self.buf.get(at..).unwrap_or_default();
            let Some(colon) = memchr::memchr(b':', rest) else {
                return if rest.len() > 12 { Err(WireError::BadField { index, why: "no length" }) } else { Ok(None) };
            };
            let len_text = std::str::from_utf8(rest.get(..colon).unwrap_or_default()).unwrap_or("x");
            let len: usize = len_text.parse().map_err(|_| WireError::BadField { index, why: "length is not a number" })?;
            if len > MAX_FIELD {
                return Err(WireError::BadField { index, why: "longer than the gate checks" });
            }
            let Some(value) = rest.get(colon + 1..colon + 1 + len) else { return Ok(None) };
            fields.push(String::from_utf8_lossy(value).into_owned());
            at += colon + 1 + len;
        }
        let mut fields = fields.into_iter();
        let mut take = || fields.next().unwrap_or_default();
        let (cwd, line, command) = (take(), take(), take());
        let mut vars = Vec::with_capacity((n - 3) / 2);
        for _ in 0..(n - 3) / 2 {
            let (k, v) = (take(), take());
            vars.push((k, v));
        }
        let message = Message::Check { nonce: (*nonce).to_owned(), source, cwd, line, command, vars };
        Ok(Some((message, at)))
    }
}

fn hello(words: &[&str]) -> Result<Message, WireError> {
    let bad = |why| WireError::BadHeader { verb: "HELLO", why };
    let [_, token, shell, pid, version @ ..] = words else { return Err(bad("expected token, shell and pid")) };
    let pid = pid.parse().map_err(|_| bad("pid is not a number"))?;
    Ok(Message::Hello { token: (*token).to_owned(), shell: (*shell).to_owned(), pid, version: version.join(" ") })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn netstrings(fields: &[&str]) -> String {
        fields.iter().map(|f| format!("{}:{f}", f.len())).collect()
    }

    #[test]
    fn check_with_newlines_and_variables_arrives_whole_byte_by_byte() {
        let fields = ["/tmp", "for i in 1 2\ndo rm \"$D\"; done", "", "D", "a b\nc"];
        let wire = format!("CHECK n1 enter {}\n{}", fields.len(), netstrings(&fields));
        let mut d = Decoder::default();
        let bytes = wire.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            d.push(std::slice::from_ref(b));
            let got = d.next_message();
            if i + 1 < bytes.len() {
                assert!(got.is_none(), "a message before its last byte, at {i}");
            } else {
                let Some(Ok(Message::Check { nonce, source, cwd, line, vars, .. })) = got else { panic!("{got:?}") };
                assert_eq!((nonce.as_str(), source, cwd.as_str()), ("n1", Source::Enter, "/tmp"));
                assert_eq!(line, fields[1]);
                assert_eq!(vars, vec![("D".to_owned(), "a b\nc".to_owned())]);
            }
        }
        assert!(d.next_message().is_none());
    }

    #[test]
    fn prompt_report_ends_only_at_the_nonce_line() {
        let mut d = Decoder::default();
        d.push(b"PROMPT abc 0 42\ntrap -- 'x' DEBUG\nzzz END\n");
        assert!(d.next_message().is_none(), "another nonce's END line ended the report");
        d.push(b"abc END\nHELLO t bash 1 5.2\n");
        let Some(Ok(Message::Prompt { nonce, status, pid, report })) = d.next_message() else { panic!() };
        assert_eq!((nonce.as_str(), status, pid), ("abc", 0, 42));
        assert_eq!(report, "trap -- 'x' DEBUG\nzzz END\n");
        assert!(matches!(d.next_message(), Some(Ok(Message::Hello { .. }))));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [
            "NOPE\n",
            "CHECK n enter 4\n",
            "CHECK n sideways 3\n",
            "CHECK n enter x\n",
            "CHECK n enter 3\n99999999999999999999:",
            "CHECK n enter 3\nabc:",
            "PROMPT n notanumber 1\n",
            "HELLO\n",
        ] {
            let mut d = Decoder::default();
            d.push(bad.as_bytes());
            assert!(matches!(d.next_message(), Some(Err(_))), "{bad:?} was accepted");
        }
        let mut d = Decoder::default();
        d.push(&vec![b'x'; MAX_HEADER + 1]);
        assert_eq!(d.next_message(), Some(Err(WireError::HeaderTooLong)));
    }

    #[test]
    fn deny_reply_is_one_line_of_message_with_its_length() {
        let r = Reply::Deny { nonce: "n".into(), message: "refused\nby rule".into() }.encode();
        assert_eq!(r, b"DENY n 15\nrefused by rule");
    }
}
