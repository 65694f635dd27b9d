//! The gate's socket, as the session loop sees it: the recorder's end of a
//! socket pair whose other end the shell was given before exec, read
//! without blocking, decoded by `wire`, handed to the [`Gate`], and
//! answered.
//!
//! A pair, not a listening path: nothing is listed in `/proc/net/unix` and
//! there is nothing another user could connect to, so no other process can
//! reach the gate, let alone mark the session degraded by trying. Only the
//! forked child (the shell, after exec) ever held the other end; its pid is
//! the peer pid the gate compares the hello with (`SO_PEERCRED` on a pair
//! names the process that made it, the recorder). The hooks then prove they
//! are this session's with the token.

use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use super::wire::Decoder;
use super::{Gate, Note};

struct Conn {
    stream: UnixStream,
    decoder: Decoder,
    pid: i32,
    /// This connection's CHECK is held for approval.
    held: bool,
}

pub struct GateSocket {
    /// The one connection (none once the shell closed it).
    conns: Vec<Conn>,
}

impl GateSocket {
    /// The recorder's end of the pair; `shell_pid` is the process that was
    /// given the other end.
    pub fn new(stream: UnixStream, shell_pid: i32) -> Self {
        // Reads are driven by poll; replies are short and the shell waits
        // for them, so writes do not block for long.
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_write_timeout(Some(std::time::Duration::from_secs(2)));
        Self { conns: vec![Conn { stream, decoder: Decoder::default(), pid: shell_pid, held: false }] }
    }

    /// What to poll: the connection, while it is open.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.conns.iter().map(|c| c.stream.as_fd()).collect()
    }

    /// Handles readiness of descriptor `index` (as in [`GateSocket::fds`]).
    pub fn ready(&mut self, index: usize, gate: &mut Gate, now: Instant) -> Vec<Note> {
        let mut notes = Vec::new();
        let i = index;
        let Some(conn) = self.conns.get_mut(i) else { return notes };
        let mut buf = [0u8; 16 * 1024];
        let keep = match conn.stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                conn.decoder.push(buf.get(..n).unwrap_or_default());
                let mut keep = true;
                while let Some(next) = conn.decoder.next_message() {
                    match next {
                        Ok(message) => {
                            let (reply, mut more) = gate.handle(message, conn.pid, now);
                            notes.append(&mut more);
                            match reply {
                                Some(super::wire::Reply::Hold) => conn.held = true,
                                Some(reply) => {
                                    if conn.stream.write_all(&reply.encode()).is_err() {
                                        keep = false;
                                        break;
                                    }
                                }
                                None => {
                                    keep = false;
                                    break;
                                }
                            }
                        }
                        Err(e) => {
                            notes.push(Note::Degraded(format!("the gate's connection spoke nonsense ({e}); it was closed")));
                            keep = false;
                            break;
                        }
                    }
                }
                keep
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::Interrupted => true,
            Err(_) => false,
        };
        if !keep {
            self.conns.remove(i);
        }
        notes
    }

    /// Sends the answer to the held CHECK. False when the connection that
    /// asked is gone (the shell stopped waiting).
    pub fn answer_held(&mut self, reply: &super::wire::Reply) -> bool {
        let Some(i) = self.conns.iter().position(|c| c.held) else { return false };
        let Some(conn) = self.conns.get_mut(i) else { return false };
        conn.held = false;
        if conn.stream.write_all(&reply.encode()).is_err() {
            self.conns.remove(i);
            return false;
        }
        true
    }

    /// Tells the shell waiting on a held CHECK that the answer is still
    /// coming (its read would time out otherwise).
    pub fn wait_held(&mut self) {
        if let Some(conn) = self.conns.iter_mut().find(|c| c.held) {
            let _ = conn.stream.write_all(b"WAIT -\n");
        }
    }
}
