//! The approvals pane's launcher: a process forked at session start that
//! starts `custos approve` on a fresh PTY, as the user, whenever the
//! recorder asks.
//!
//! Why a launcher: the pane must run as the user (their approver
//! credentials, their config and OIDC cache), exactly as the shell does.
//! The recorder drops to the `custos` service user for good right after
//! forking the shell and cannot become the user again. So, while both
//! identities are still held, it forks this launcher, which drops to the
//! user the way the shell's child does and then waits on a socket.
//!
//! Protocol (a `SOCK_SEQPACKET` pair, one message per datagram):
//!
//! - recorder → launcher: `o` + rows (u16 BE) + cols (u16 BE): open the
//!   pane; `c`: close it (SIGTERM to `custos approve`; the recorder also
//!   closes the master, which hangs the pane's terminal up).
//! - launcher → recorder: `O` with the PTY master as `SCM_RIGHTS`; `F` +
//!   UTF-8 text: it could not be started; `X` + status (i32 BE, 128+N for
//!   a signal): `custos approve` ended.
//!
//! End of file on the socket (the recorder ended) makes the launcher stop
//! the pane and exit.
//!
//! Trust boundary: the launcher runs as the user, so the user can kill it
//! (they lose their pane, nothing else) or write to its socket only through
//! the recorder. The forked child closes every descriptor but its socket
//! at once (above all the shell's PTY master, which would keep the shell
//! alive after the recorder died, and the session lock), drops to the user,
//! and execs `custos pane-launcher`: a fresh process image, so nothing of
//! the recorder's memory (the host signing key among it) lives on in a
//! process the user owns.

use std::ffi::{CString, OsString};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, signal, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::socket::{recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::recorder::privilege::Privilege;
use crate::term::screen::Size;

/// `custos approve`, ready to exec.
pub struct PaneCommand {
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} contains a NUL byte")]
pub struct NulError(String);

fn cstring(bytes: &[u8]) -> Result<CString, NulError> {
    CString::new(bytes).map_err(|_| NulError(String::from_utf8_lossy(bytes).into_owned()))
}

impl PaneCommand {
    /// `program` with `args` (argv[0] is the program), in exactly `env`.
    pub fn new(program: &Path, args: &[OsString], env: &[(OsString, OsString)]) -> Result<Self, NulError> {
        let prog = cstring(program.as_os_str().as_bytes())?;
        let mut argv = vec![prog.clone()];
        for a in args {
            argv.push(cstring(a.as_bytes())?);
        }
        let mut envs = Vec::new();
        for (k, v) in env {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            envs.push(cstring(&kv)?);
        }
        Ok(Self { program: prog, argv, env: envs })
    }
}

/// What the launcher said.
#[derive(Debug)]
pub enum Reply {
    /// The pane runs; here is its PTY master (non-blocking, close-on-exec).
    Opened(OwnedFd),
    /// It could not be started.
    Failed(String),
    /// `custos approve` ended with this status.
    Exited(i32),
    /// The launcher is gone; no pane can open any more.
    Gone,
}

/// The recorder's end of the launcher.
pub struct Launcher {
    sock: OwnedFd,
    pid: Pid,
}

impl Launcher {
    /// Forks the launcher. Call it while the process is single-threaded and
    /// still holds both identities (before `drop_to_service`).
    pub fn start(privilege: &Privilege, cmd: &PaneCommand) -> std::io::Result<Self> {
        // `custos pane-launcher -- <approve's arguments>`, in approve's
        // environment: built before the fork.
        let mut argv = vec![cmd.program.clone(), c"pane-launcher".to_owned(), c"--".to_owned()];
        argv.extend(cmd.argv.iter().skip(1).cloned());
        let launcher = PaneCommand { program: cmd.program.clone(), argv, env: cmd.env.clone() };
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        // SAFETY: the caller guarantees a single-threaded process; the
        // child never returns into the caller.
        match unsafe { privilege.fork_contained() }? {
            ForkResult::Child => {
                drop(ours);
                let fd = theirs.as_raw_fd();
                std::mem::forget(theirs);
                become_launcher(fd, privilege, &launcher)
            }
            ForkResult::Parent { child } => Ok(Self { sock: ours, pid: child }),
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Asks for a pane of `size`; the answer comes as a [`Reply`].
    pub fn open(&self, size: Size) -> std::io::Result<()> {
        let [r0, r1] = size.rows.to_be_bytes();
        let [c0, c1] = size.cols.to_be_bytes();
        self.send(&[b'o', r0, r1, c0, c1])
    }

    /// Stops the pane's `custos approve`, if one runs.
    pub fn close(&self) -> std::io::Result<()> {
        self.send(b"c")
    }

    fn send(&self, msg: &[u8]) -> std::io::Result<()> {
        nix::sys::socket::send(self.sock.as_raw_fd(), msg, MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL)?;
        Ok(())
    }

    /// One reply, if one is waiting.
    pub fn read(&self) -> Option<Reply> {
        let mut buf = [0u8; 512];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC;
        let (n, fds) = match recvmsg::<()>(self.sock.as_raw_fd(), &mut iov, Some(&mut space), flags) {
            Ok(msg) => {
                let mut fds = Vec::new();
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            // SAFETY: the kernel just installed these
                            // descriptors in this process for us alone.
                            fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                        }
                    }
                }
                (msg.bytes, fds)
            }
            Err(nix::Error::EAGAIN | nix::Error::EINTR) => return None,
            Err(_) => return Some(Reply::Gone),
        };
        Some(decode(buf.get(..n).unwrap_or_default(), fds.into_iter().next()))
    }

    /// Closes the socket (the launcher stops the pane and exits) and reaps
    /// the launcher, waiting at most `limit`.
    pub fn shut_down(self, limit: Duration) {
        let Self { sock, pid } = self;
        drop(sock);
        let deadline = std::time::Instant::now() + limit;
        loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => return,
            }
        }
    }
}

/// One message from the launcher, with the descriptor it carried.
fn decode(msg: &[u8], fd: Option<OwnedFd>) -> Reply {
    match msg.split_first() {
        None => Reply::Gone,
        Some((b'O', _)) => match fd {
            Some(master) => match set_nonblocking(&master) {
                Ok(()) => Reply::Opened(master),
                Err(e) => Reply::Failed(format!("the pane's terminal: {e}")),
            },
            None => Reply::Failed("the launcher sent no terminal".into()),
        },
        Some((b'F', text)) => Reply::Failed(String::from_utf8_lossy(text).into_owned()),
        Some((b'X', status)) => match <[u8; 4]>::try_from(status) {
            Ok(bytes) => Reply::Exited(i32::from_be_bytes(bytes)),
            Err(_) => Reply::Failed(format!("the launcher sent a malformed exit status ({} bytes)", status.len())),
        },
        Some((other, _)) => Reply::Failed(format!("the launcher sent an unknown message {:?}", char::from(*other))),
    }
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// The launcher's socket, once it has settled.
const SOCK: RawFd = 3;

/// The forked child: settles its descriptors on the socket alone, drops to
/// the user and execs `custos pane-launcher`. Never returns.
fn become_launcher(sock: RawFd, privilege: &Privilege, launcher: &PaneCommand) -> ! {
    // The recorder's handlers write to its signal pipe; ours are the
    // defaults, with nothing blocked.
    for sig in [Signal::SIGCHLD, Signal::SIGWINCH, Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGPIPE] {
        // SAFETY: restoring a default disposition is always sound.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // SAFETY: plain system calls on descriptors of this process, which is
    // about to own nothing but its socket.
    let settled = unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        null >= 0
            && libc::dup2(null, 0) >= 0
            && libc::dup2(null, 1) >= 0
            && libc::dup2(null, 2) >= 0
            && (sock == SOCK || libc::dup2(sock, SOCK) == SOCK)
            && libc::close_range(4, libc::c_uint::MAX, 0) == 0
            && libc::setsid() >= 0
    };
    if settled && privilege.drop_to_user().is_ok() {
        // The socket must survive the exec.
        // SAFETY: fcntl on our own descriptor.
        if unsafe { libc::fcntl(SOCK, libc::F_SETFD, 0) } == 0 {
            let _ = nix::unistd::execve(&launcher.program, &launcher.argv, &launcher.env);
        }
    }
    // SAFETY: _exit is always sound.
    unsafe { libc::_exit(126) }
}

/// `custos pane-launcher -- approve ARGS`: the launcher after its exec,
/// with its socket on descriptor 3, starting `custos approve ARGS` in its
/// own environment whenever the recorder asks. Not for people.
pub fn run(args: &[OsString]) -> anyhow::Result<std::process::ExitCode> {
    use anyhow::Context as _;
    let mut kind: libc::c_int = 0;
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: getsockopt into a c_int we own, with its length.
    let is_ours = unsafe { libc::getsockopt(SOCK, libc::SOL_SOCKET, libc::SO_TYPE, (&raw mut kind).cast(), &raw mut len) } == 0
        && kind == libc::SOCK_SEQPACKET;
    anyhow::ensure!(is_ours, "custos pane-launcher is started by custos-shell for its approvals pane, not by hand");
    // Our socket must not leak into `custos approve`.
    // SAFETY: fcntl on our own descriptor.
    unsafe { libc::fcntl(SOCK, libc::F_SETFD, libc::FD_CLOEXEC) };
    let custos = std::env::current_exe().context("finding the custos binary")?;
    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    anyhow::ensure!(args.first().is_some_and(|a| a == "approve"), "custos pane-launcher only starts `custos approve`");
    let cmd = PaneCommand::new(&custos, args, &env)?;
    serve(&cmd)
}

/// The launcher's loop. Never returns.
fn serve(cmd: &PaneCommand) -> ! {
    let mut child: Option<Pid> = None;
    loop {
        if let Some(pid) = child {
            if let Ok(status) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                if let Some(code) = crate::recorder::child::exit_code(status) {
                    child = None;
                    let mut msg = vec![b'X'];
                    msg.extend_from_slice(&code.to_be_bytes());
                    reply(&msg, None);
                }
            }
        }
        let mut fds = [libc::pollfd { fd: SOCK, events: libc::POLLIN, revents: 0 }];
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, 100) };
        if ready <= 0 {
            continue;
        }
        let mut buf = [0u8; 64];
        // SAFETY: a read into a buffer we own.
        let n = unsafe { libc::recv(SOCK, buf.as_mut_ptr().cast(), buf.len(), 0) };
        let msg = usize::try_from(n).ok().and_then(|n| buf.get(..n)).unwrap_or_default();
        match msg {
            [] => {
                // The recorder is gone: so is the pane.
                if let Some(pid) = child {
                    let _ = kill(pid, Signal::SIGTERM);
                }
                // SAFETY: _exit is always sound.
                unsafe { libc::_exit(0) }
            }
            [b'o', r0, r1, c0, c1] => {
                // A pane closed a moment ago may not have ended yet: end
                // it, and report its exit first, so exits stay in order.
                if let Some(pid) = child.take() {
                    let code = stop(pid);
                    let mut msg = vec![b'X'];
                    msg.extend_from_slice(&code.to_be_bytes());
                    reply(&msg, None);
                }
                let size = Size { rows: u16::from_be_bytes([*r0, *r1]), cols: u16::from_be_bytes([*c0, *c1]) };
                match spawn(cmd, size) {
                    Ok((master, pid)) => {
                        child = Some(pid);
                        reply(b"O", Some(master.as_raw_fd()));
                    }
                    Err(e) => reply(format!("Fcannot start custos approve: {e}").as_bytes(), None),
                }
            }
            [b'c'] => {
                if let Some(pid) = child {
                    let _ = kill(pid, Signal::SIGTERM);
                }
            }
            _ => reply(b"Fthe launcher got a malformed request", None),
        }
    }
}

/// SIGTERM, a second's grace, then SIGKILL; the exit status.
fn stop(pid: Pid) -> i32 {
    let _ = kill(pid, Signal::SIGTERM);
    for i in 0..110 {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(status) => {
                if let Some(code) = crate::recorder::child::exit_code(status) {
                    return code;
                }
            }
            Err(_) => return 128 + libc::SIGKILL,
        }
        if i == 100 {
            let _ = kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    128 + libc::SIGKILL
}

fn reply(msg: &[u8], fd: Option<RawFd>) {
    let iov = [IoSlice::new(msg)];
    let fds: Vec<RawFd> = fd.into_iter().collect();
    let cmsgs: Vec<ControlMessage<'_>> = if fds.is_empty() { Vec::new() } else { vec![ControlMessage::ScmRights(&fds)] };
    let _ = sendmsg::<()>(SOCK, &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None);
}

/// Opens a PTY of `size` and starts `cmd` on it in a session of its own.
fn spawn(cmd: &PaneCommand, size: Size) -> std::io::Result<(OwnedFd, Pid)> {
    let pty = crate::recorder::pty::Pty::open(Size { rows: size.rows.max(1), cols: size.cols.max(2) })?;
    // SAFETY: the launcher is single-threaded; the child only makes system
    // calls before exec.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let fd = pty.slave.as_raw_fd();
            // SAFETY: system calls on descriptors we own, then exec or _exit.
            unsafe {
                let ok = libc::setsid() >= 0
                    && libc::ioctl(fd, libc::TIOCSCTTY, 0) >= 0
                    && libc::dup2(fd, 0) >= 0
                    && libc::dup2(fd, 1) >= 0
                    && libc::dup2(fd, 2) >= 0
                    && libc::close_range(3, libc::c_uint::MAX, 0) == 0;
                if ok {
                    let _ = nix::unistd::execve(&cmd.program, &cmd.argv, &cmd.env);
                }
                let msg = b"custos-shell: cannot start custos approve\r\n";
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(127)
            }
        }
        ForkResult::Parent { child } => Ok((pty.master, child)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn failed(reply: Reply) -> String {
        match reply {
            Reply::Failed(why) => why,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn replies_decode() {
        let (r, _w) = nix::unistd::pipe().unwrap();
        assert!(matches!(decode(b"O", Some(r)), Reply::Opened(_)));
        assert!(matches!(decode(&[b'X', 0, 0, 0, 130], None), Reply::Exited(130)));
        assert!(matches!(decode(b"", None), Reply::Gone));
        assert_eq!(failed(decode(b"Fno pty", None)), "no pty");
    }

    #[test]
    fn malformed_replies_are_named_failures() {
        assert!(failed(decode(b"O", None)).contains("no terminal"));
        assert!(failed(decode(&[b'X', 1, 2], None)).contains("malformed exit status (2 bytes)"));
        assert!(failed(decode(b"Zzz", None)).contains("unknown message 'Z'"));
    }

    #[test]
    fn a_nul_in_the_command_is_an_error_naming_it() {
        let err = PaneCommand::new(Path::new("/bin/custos"), &[OsString::from("a\0b")], &[]).err().unwrap();
        assert!(err.to_string().contains("NUL"), "{err}");
    }
}
