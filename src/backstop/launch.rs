//! Setting the backstop up around the shell's fork: the socket pair the
//! child hands the listener over, the reader's fork, and the wake-up pipe
//! a poll loop waits on.
//!
//! The order matters and is the caller's: [`Pending::new`] before the
//! shell's fork (the child needs [`Pending::child_end`] and the program);
//! [`Pending::start`] after it, while the recorder is still single-threaded
//! and still holds root as its saved uid (the reader is forked there);
//! then the recorder drops and [`Started::spawn`] starts the thread.

use std::os::fd::{AsRawFd, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::unistd::{fork, ForkResult, Pid};

use super::decide::Settings;
use super::supervisor::{self, Event, Responder};
use super::wire::{Frames, FromReader};
use crate::recorder::privilege::Privilege;

/// How long the child may take to hand the listener over.
const HANDOVER_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot prepare the exec backstop: {0}")]
    Io(#[from] std::io::Error),
    #[error("the shell's process did not hand over the exec backstop's listener (the filter could not be installed): {0}")]
    Handover(String),
    #[error("cannot start the exec backstop's reader: {0}")]
    Reader(String),
}

/// Before the shell's fork.
pub struct Pending {
    ours: UnixStream,
    theirs: OwnedFd,
    program: Vec<libc::sock_filter>,
}

impl Pending {
    pub fn new() -> Result<Self, LaunchError> {
        let (ours, theirs) = UnixStream::pair()?;
        Ok(Self { ours, theirs: theirs.into(), program: super::filter::program() })
    }

    /// What the shell's child installs, and where it sends the listener.
    pub fn child_end(&self) -> (&[libc::sock_filter], RawFd) {
        (&self.program, self.theirs.as_raw_fd())
    }

    /// After the shell's fork, single-threaded: takes the listener from
    /// the child and forks the reader, which decides with `settings`.
    pub fn start(self, privilege: &Privilege, settings: Settings) -> Result<Started, LaunchError> {
        drop(self.theirs);
        self.ours.set_read_timeout(Some(HANDOVER_WAIT))?;
        let listener = receive_fd(&self.ours).map_err(LaunchError::Handover)?;
        let (link, reader_end) = UnixStream::pair()?;
        // SAFETY: the recorder is single-threaded here (the caller's
        // promise); the child runs only the reader and exits.
        match unsafe { fork() }.map_err(|e| LaunchError::Reader(e.to_string()))? {
            ForkResult::Child => {
                drop(link);
                reader_child(privilege, listener, reader_end, settings)
            }
            ForkResult::Parent { child } => {
                drop(reader_end);
                Ok(Started { listener, link, reader: child })
            }
        }
    }
}

fn reader_child(privilege: &Privilege, listener: OwnedFd, link: UnixStream, settings: Settings) -> ! {
    use nix::sys::signal::{signal, SigHandler, Signal};
    for sig in [Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU, Signal::SIGPIPE, Signal::SIGWINCH, Signal::SIGTERM] {
        // SAFETY: ignoring a signal is always sound.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    // Nothing of the recorder's but the two ends it needs: move them to
    // 3 and 4 and close the rest (the terminal, the spool, the key).
    // SAFETY: dup2/close_range on descriptors of this process.
    let (listener, link) = unsafe {
        let l = libc::fcntl(listener.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 100);
        let k = libc::fcntl(link.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 101);
        if l < 0 || k < 0 || libc::dup3(l, 3, libc::O_CLOEXEC) < 0 || libc::dup3(k, 4, libc::O_CLOEXEC) < 0 {
            libc::_exit(126);
        }
        libc::syscall(libc::SYS_close_range, 5u32, u32::MAX, 0u32);
        std::mem::forget(listener);
        std::mem::forget(link);
        (OwnedFd::from_raw_fd(3), UnixStream::from_raw_fd(4))
    };
    // Dropped, then confined: from here it can read the session's
    // processes and nothing it does can write to one (see `filter`).
    if privilege.become_exec_reader().is_err() || privilege.confine_exec_reader(super::filter::reader_program().as_deref()).is_err() {
        // SAFETY: _exit is always sound.
        unsafe { libc::_exit(126) }
    }
    super::reader::run(listener, link, settings)
}

/// Receives one descriptor (`SCM_RIGHTS`).
fn receive_fd(sock: &UnixStream) -> Result<OwnedFd, String> {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).map_err(|e| e.to_string())?;
    for cmsg in msg.cmsgs().map_err(|e| e.to_string())? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just gave us this descriptor.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(if msg.bytes == 0 { "the shell's process ended first".into() } else { "no descriptor came".into() })
}

/// After the fork: the listener and the link to the reader.
pub struct Started {
    listener: OwnedFd,
    link: UnixStream,
    pub reader: Pid,
}

impl Started {
    /// For a poll loop: the reader's link as [`Events`], read where the
    /// loop is (no thread between the reader and the recording).
    pub fn events(self) -> Result<(Responder, Events), LaunchError> {
        let responder = Responder::new(self.listener, self.link.try_clone()?);
        Ok((responder.clone(), Events { link: self.link, frames: Frames::default(), responder, gone: false }))
    }

    /// For a loop that waits on a channel: a thread reads the link and
    /// hands events to `emit`.
    pub fn spawn_with(self, emit: impl FnMut(Event) + Send + 'static) -> Result<Responder, LaunchError> {
        Ok(supervisor::spawn(self.listener, self.link, emit)?)
    }
}

/// The reader's link, for a poll loop: wait on [`Events::fd`] while it is
/// there, then [`Events::drain`].
pub struct Events {
    link: UnixStream,
    frames: Frames,
    responder: Responder,
    gone: bool,
}

impl Events {
    /// What to wait on; `None` once the reader is gone.
    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd as _;
        (!self.gone).then(|| self.link.as_fd())
    }

    /// Everything the reader has said, without waiting. When the link
    /// ends or breaks, the listener is closed (every exec fails from then
    /// on) and the last event is [`Event::Gone`].
    pub fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if self.gone {
            return out;
        }
        let mut chunk = [0u8; 16 * 1024];
        let mut why = loop {
            match nix::sys::socket::recv(self.link.as_raw_fd(), &mut chunk, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => break Some(super::wire::WireError::Closed.to_string()),
                Ok(n) => self.frames.push(chunk.get(..n).unwrap_or_default()),
                Err(nix::Error::EAGAIN) => break None,
                Err(nix::Error::EINTR) => {}
                Err(e) => break Some(format!("the exec backstop's link failed: {e}")),
            }
        };
        loop {
            match self.frames.take::<FromReader>() {
                Ok(Some(msg)) => out.push(supervisor::event(msg)),
                Ok(None) => break,
                Err(e) => {
                    why = Some(e.to_string());
                    break;
                }
            }
        }
        if let Some(why) = why {
            self.gone = true;
            self.responder.close();
            out.push(Event::Gone(why));
        }
        out
    }
}
