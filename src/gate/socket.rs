//! The gate's socket, as the session loop sees it: a listener and the
//! connections from the shell's hooks, each read without blocking, decoded
//! by `wire`, handed to the [`Gate`], and answered.
//!
//! A connection is accepted only from the session user's uid (checked with
//! `SO_PEERCRED`); the hooks then prove they are this session's with the
//! token. The peer's pid, from the same credentials, is what the gate
//! compares with the pid the hooks claim.

use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Instant;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

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
    listener: UnixListener,
    conns: Vec<Conn>,
    uid: u32,
}

/// What to poll: the listener is index 0, connections follow.
impl GateSocket {
    pub fn new(listener: UnixListener, uid: u32) -> Self {
        Self { listener, conns: Vec::new(), uid }
    }

    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = vec![self.listener.as_fd()];
        fds.extend(self.conns.iter().map(|c| c.stream.as_fd()));
        fds
    }

    /// Handles readiness of descriptor `index` (as in [`GateSocket::fds`]).
    pub fn ready(&mut self, index: usize, gate: &mut Gate, now: Instant) -> Vec<Note> {
        let mut notes = Vec::new();
        if index == 0 {
            self.accept(&mut notes);
            return notes;
        }
        let i = index - 1;
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

    fn accept(&mut self, notes: &mut Vec<Note>) {
        while let Ok((stream, _)) = self.listener.accept() {
            let Ok(cred) = getsockopt(&stream, PeerCredentials) else { continue };
            if cred.uid() != self.uid {
                notes.push(Note::Degraded(format!("uid {} (pid {}) tried to reach the gate; refused", cred.uid(), cred.pid())));
                continue;
            }
            // Reads are driven by poll; replies are short and the shell
            // waits for them, so writes do not block for long.
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_write_timeout(Some(std::time::Duration::from_secs(2)));
            self.conns.push(Conn { stream, decoder: Decoder::default(), pid: cred.pid(), held: false });
        }
    }
}
