//! What the reader and the recorder say to each other: each exec the
//! reader decided (or holds for approval), and the recorder's word back:
//! grants given and ended at the prompt, and held execs to watch land as
//! approved.
//!
//! Frames are a little-endian `u32` length and a JSON body, on a stream
//! socket pair. JSON because the two ends are the same binary, the frames
//! are written after the kernel has its answer (off an exec's path), and a
//! frame read in a test is readable.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use super::decide::{Mode, Verdicted};
use crate::policy::{RuleRef, Verdict};

/// Frames larger than this are refused (a reader that sends one is broken).
pub const MAX_FRAME: usize = 8 << 20;

/// An exec the kernel holds, as the reader found it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The notification's id: what the answer names.
    pub id: u64,
    /// The calling thread, its process (thread group) and the parent.
    pub pid: i32,
    pub tgid: i32,
    pub ppid: i32,
    /// `execve`, `execveat`, or `listener` (a seccomp listener of the
    /// user's own).
    pub call: String,
    /// The path as passed, and as resolved against the working directory
    /// (or `execveat`'s directory); symlinks not followed.
    pub path: String,
    pub resolved: String,
    /// The program's file after symlinks, when it exists.
    pub real: Option<String>,
    pub argv: Vec<String>,
    pub cwd: String,
    /// The calling process's own command line (what starts the program).
    pub caller: Vec<String>,
    /// Threads in the calling process (more than one: argv can change
    /// after the check, so the exec is verified after it lands).
    pub threads: u32,
    /// Why the call could not be read (then it is refused in enforce).
    pub unreadable: Option<String>,
    /// The absolute path names no file (the `errno` the kernel would
    /// give): nothing can run, so it is answered with that error at once,
    /// neither decided nor recorded. A shell or `execvp` searching `PATH`
    /// makes one such call per directory it tries.
    #[serde(default)]
    pub missing: Option<i32>,
}

/// One exec as the recording keeps it (the `a` record, kind `exec`; see
/// `docs/format.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRecord {
    pub pid: i32,
    pub tgid: i32,
    pub ppid: i32,
    pub path: String,
    /// The path as the caller passed it (relative, perhaps): what a held
    /// exec's watch needs, not part of the record.
    pub called: String,
    pub argv: Vec<String>,
    pub cwd: String,
    /// The command line of the process that made the call.
    pub caller: Vec<String>,
    /// The exec as the policy saw it.
    pub line: String,
    pub verdict: Verdict,
    /// `ran`, `refused`, `held` (then `ran`, `denied`, …), `pending-refused`,
    /// or `killed` (it landed with other arguments than were checked).
    pub outcome: String,
    pub rule: Option<String>,
    pub message: Option<String>,
    pub mode: Mode,
}

impl ExecRecord {
    pub fn new(req: &Request, v: &Verdicted, mode: Mode, outcome: &str, message: Option<String>) -> Self {
        Self {
            pid: req.pid,
            tgid: req.tgid,
            ppid: req.ppid,
            path: req.resolved.clone(),
            called: req.path.clone(),
            argv: req.argv.clone(),
            cwd: req.cwd.clone(),
            caller: req.caller.clone(),
            line: v.line.clone(),
            verdict: v.verdict,
            outcome: outcome.to_owned(),
            rule: v.rule.as_ref().map(|r| r.name.clone()),
            message,
            mode,
        }
    }

    /// The `a` record, with the words shown through `mask`.
    pub fn audit(&self, mask: impl Fn(&str) -> String) -> serde_json::Value {
        let mut json = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = json.as_object_mut() {
            obj.remove("called");
            obj.insert("kind".into(), "exec".into());
            obj.insert("line".into(), mask(&self.line).into());
            obj.insert("argv".into(), self.argv.iter().map(|a| mask(a)).collect::<Vec<_>>().into());
            obj.insert("caller".into(), self.caller.iter().map(|a| mask(a)).collect::<Vec<_>>().into());
        }
        json
    }
}

/// From the recorder to the reader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToReader {
    /// Watch process `tgid` until its command line is `argv` (the exec
    /// landed as checked), stays `caller` (the exec failed), or becomes
    /// anything else: then kill it and say so.
    /// `path` is the program's path as the caller passed it: a script
    /// lands as `INTERPRETER [ARG] PATH ARGV[1..]`.
    /// `strict`: a command line caught empty (the kernel between swapping
    /// in the new memory and laying out its arguments) counts as other
    /// than checked, so a racing thread's exec is killed before the new
    /// program runs; otherwise (a held exec, whose caller waited) it is
    /// looked at again.
    Verify { tgid: i32, path: String, argv: Vec<String>, caller: Vec<String>, strict: bool },
    /// A line approved at the prompt: programs under this rule run
    /// without asking again, until [`ToReader::Revoke`]. Sent before the
    /// line is let go, so it arrives before the line's first exec.
    Grant(String),
    /// The prompt is back: the grants end.
    Revoke,
    /// The session is ending: send every record held back, then
    /// [`FromReader::Flushed`].
    Flush,
}

/// From the reader to the recorder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromReader {
    /// Decided and already answered: it ran, or it was refused.
    Decided(ExecRecord),
    /// Waiting for approval under `rule`, unanswered: the recorder answers
    /// (it holds the listener too).
    Held { id: u64, record: ExecRecord, rule: RuleRef },
    /// A verified exec ran something other than what was checked: the
    /// process was killed (in `audit`, only recorded).
    Killed { tgid: i32, checked: Vec<String>, ran: Vec<String>, mode: Mode },
    /// Every exec answered before [`ToReader::Flush`] arrived has been
    /// sent.
    Flushed,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the exec backstop's link closed")]
    Closed,
    #[error("the exec backstop's link failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("a frame of {0} bytes is larger than the exec backstop allows")]
    TooLarge(usize),
    #[error("a frame the exec backstop cannot read: {0}")]
    Json(#[from] serde_json::Error),
}

pub fn write<T: Serialize>(mut w: impl Write, msg: &T) -> Result<(), WireError> {
    let body = serde_json::to_vec(msg)?;
    if body.len() > MAX_FRAME {
        return Err(WireError::TooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).map_err(|_| WireError::TooLarge(body.len()))?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame)?;
    Ok(())
}

pub fn read<T: for<'de> Deserialize<'de>>(mut r: impl Read) -> Result<T, WireError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(WireError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(serde_json::from_slice(&body)?)
}

/// Frames out of bytes that arrive in any pieces (a poll loop's reads,
/// which must never wait for the rest of a frame).
#[derive(Debug, Default)]
pub struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn take<T: for<'de> Deserialize<'de>>(&mut self) -> Result<Option<T>, WireError> {
        let Some(head) = self.buf.first_chunk::<4>() else { return Ok(None) };
        let len = u32::from_le_bytes(*head) as usize;
        if len > MAX_FRAME {
            return Err(WireError::TooLarge(len));
        }
        let Some(body) = self.buf.get(4..4 + len) else { return Ok(None) };
        let msg = serde_json::from_slice(body);
        self.buf.drain(..4 + len);
        Ok(Some(msg?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_named() {
        let req = Request { id: 7, pid: 10, path: "/bin/rm".into(), resolved: "/bin/rm".into(), argv: vec!["rm".into(), "-rf".into(), "/".into()], ..Request::default() };
        let policy = crate::policy::Policy::default_policy();
        let who = crate::policy::Subject { user: "alice".into(), ..Default::default() };
        let v = super::super::decide::decide(&policy, &who, "/", &req, Mode::Enforce, |_| false);
        let held = FromReader::Held { id: 7, record: ExecRecord::new(&req, &v, Mode::Enforce, "held", None), rule: v.rule.clone().unwrap() };
        let mut buf = Vec::new();
        write(&mut buf, &held).unwrap();
        assert_eq!(read::<FromReader>(buf.as_slice()).unwrap(), held, "a held exec's rule arrives whole");
        assert!(matches!(read::<FromReader>(&[][..]), Err(WireError::Closed)));
        let huge = (u32::MAX).to_le_bytes();
        assert!(matches!(read::<FromReader>(&huge[..]), Err(WireError::TooLarge(_))));
        let mut junk = 3u32.to_le_bytes().to_vec();
        junk.extend_from_slice(b"{{{");
        assert!(matches!(read::<FromReader>(junk.as_slice()), Err(WireError::Json(_))));

        // The same frames, arriving a byte at a time, then two at once.
        let mut frames = Frames::default();
        for b in &buf {
            assert_eq!(frames.take::<FromReader>().unwrap(), None);
            frames.push(&[*b]);
        }
        assert_eq!(frames.take::<FromReader>().unwrap(), Some(held.clone()));
        assert_eq!(frames.take::<FromReader>().unwrap(), None);
        frames.push(&[buf.as_slice(), buf.as_slice()].concat());
        assert_eq!(frames.take::<FromReader>().unwrap(), Some(held.clone()));
        assert_eq!(frames.take::<FromReader>().unwrap(), Some(held));
        frames.push(&junk);
        assert!(matches!(frames.take::<FromReader>(), Err(WireError::Json(_))));
        frames.push(&huge);
        assert!(matches!(frames.take::<FromReader>(), Err(WireError::TooLarge(_))));
    }
}
