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
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::unistd::{fork, ForkResult, Pid};

use super::supervisor::{self, Event, Responder, Settings};
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
    /// the child and forks the reader.
    pub fn start(self, privilege: &Privilege) -> Result<Started, LaunchError> {
        drop(self.theirs);
        self.ours.set_read_timeout(Some(HANDOVER_WAIT))?;
        let listener = receive_fd(&self.ours).map_err(LaunchError::Handover)?;
        let (link, reader_end) = UnixStream::pair()?;
        // SAFETY: the recorder is single-threaded here (the caller's
        // promise); the child runs only the reader and exits.
        match unsafe { fork() }.map_err(|e| LaunchError::Reader(e.to_string()))? {
            ForkResult::Child => {
                drop(link);
                reader_child(privilege, listener, reader_end)
            }
            ForkResult::Parent { child } => {
                drop(reader_end);
                Ok(Started { listener, link, reader: child })
            }
        }
    }
}

fn reader_child(privilege: &Privilege, listener: OwnedFd, link: UnixStream) -> ! {
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
    if privilege.become_exec_reader().is_err() {
        // SAFETY: _exit is always sound.
        unsafe { libc::_exit(126) }
    }
    super::reader::run(listener, link)
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
    /// Starts the supervisor thread; its events arrive on the returned
    /// [`Events`].
    pub fn spawn(self, settings: Settings) -> Result<(Responder, Events), LaunchError> {
        let (tx, rx) = mpsc::channel();
        let (wake_r, wake_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK).map_err(std::io::Error::from)?;
        let responder = self.spawn_with(settings, move |event| {
            if tx.send(event).is_ok() {
                let _ = nix::unistd::write(&wake_w, b"!");
            }
        })?;
        Ok((responder, Events { rx, wake: wake_r }))
    }

    /// Starts the supervisor thread, handing events to `emit`.
    pub fn spawn_with(self, settings: Settings, emit: impl FnMut(Event) + Send + 'static) -> Result<Responder, LaunchError> {
        Ok(supervisor::spawn(self.listener, self.link, settings, emit)?)
    }
}

/// The supervisor's events, for a poll loop: wait on [`Events::fd`], then
/// [`Events::drain`].
pub struct Events {
    rx: mpsc::Receiver<Event>,
    wake: OwnedFd,
}

impl Events {
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd as _;
        self.wake.as_fd()
    }

    pub fn drain(&self) -> Vec<Event> {
        let mut buf = [0u8; 256];
        while matches!(nix::unistd::read(&self.wake, &mut buf), Ok(n) if n > 0) {}
        self.rx.try_iter().collect()
    }
}
