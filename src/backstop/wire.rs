//! What the reader and the recorder say to each other: one exec (or
//! listener attempt) the kernel holds, read out of the caller's memory,
//! and the recorder's requests to watch an allowed exec land as checked.
//!
//! Frames are a little-endian `u32` length and a JSON body, on a stream
//! socket pair. JSON because the two ends are the same binary, the cost
//! is small next to an exec, and a frame read in a test is readable.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

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
}

/// From the reader to the recorder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromReader {
    Exec(Request),
    /// A verified exec ran something other than what was checked: the
    /// process was killed.
    Killed { tgid: i32, checked: Vec<String>, ran: Vec<String> },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_named() {
        let req = Request { id: 7, pid: 10, argv: vec!["rm".into(), "-rf".into()], ..Request::default() };
        let mut buf = Vec::new();
        write(&mut buf, &FromReader::Exec(req.clone())).unwrap();
        assert_eq!(read::<FromReader>(buf.as_slice()).unwrap(), FromReader::Exec(req));
        assert!(matches!(read::<FromReader>(&[][..]), Err(WireError::Closed)));
        let huge = (u32::MAX).to_le_bytes();
        assert!(matches!(read::<FromReader>(&huge[..]), Err(WireError::TooLarge(_))));
        let mut junk = 3u32.to_le_bytes().to_vec();
        junk.extend_from_slice(b"{{{");
        assert!(matches!(read::<FromReader>(junk.as_slice()), Err(WireError::Json(_))));
    }
}
