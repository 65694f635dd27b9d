//! Starting the real shell in a forked child.
//!
//! Everything the child needs (paths, argv, environment as C strings) is
//! prepared before `fork`, so the child only makes system calls between
//! `fork` and `exec`. The child drops to the user's ids for good before
//! exec; if it cannot, it exits 126 rather than run a shell with the
//! service user's rights.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use nix::sys::signal::{signal, SigHandler, SigSet, SigmaskHow, Signal};

use crate::recorder::invocation::Invocation;
use crate::recorder::privilege::Privilege;

/// The real shell, ready to exec.
pub struct ShellCommand {
    path: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    /// The shell's end of the command gate's socket pair, put by the child
    /// on [`crate::gate::inject::GATE_FD`] for the shell's hooks.
    gate: Option<std::os::fd::RawFd>,
    /// The exec backstop's filter and the socket its listener goes to
    /// (see `backstop::launch`), installed before the drop.
    exec_filter: Option<(Vec<libc::sock_filter>, i32)>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} contains a NUL byte")]
pub struct NulError(OsString);

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Nul(#[from] NulError),
    #[error("the gate's socket was already handed over")]
    HandedOver,
}

fn cstring(s: &[u8]) -> Result<CString, NulError> {
    CString::new(s).map_err(|_| NulError(OsString::from(String::from_utf8_lossy(s).into_owned())))
}

impl ShellCommand {
    /// The real shell at `shell`, invoked as `inv` was, with `SHELL` pointing
    /// at it so programs that start `$SHELL` do not start another recorder.
    pub fn new(shell: &Path, inv: &Invocation, extra_env: &[(&str, &str)]) -> Result<Self, NulError> {
        let path = cstring(shell.as_os_str().as_bytes())?;
        let mut argv = vec![cstring(inv.shell_argv0(shell).as_bytes())?];
        for arg in &inv.args {
            argv.push(cstring(arg.as_bytes())?);
        }
        let mut env = Vec::new();
        for (k, v) in std::env::vars_os() {
            if k == "SHELL" || extra_env.iter().any(|(name, _)| k == *name) {
                continue;
            }
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            env.push(cstring(&kv)?);
        }
        let mut shell_var = b"SHELL=".to_vec();
        shell_var.extend_from_slice(shell.as_os_str().as_bytes());
        env.push(cstring(&shell_var)?);
        for (k, v) in extra_env {
            env.push(cstring(format!("{k}={v}").as_bytes())?);
        }
        Ok(Self { path, argv, env, gate: None, exec_filter: None })
    }

    /// Adds the command gate's hooks: `args` go before the user's own
    /// arguments, `env` is added, and the child puts `socket` (the shell's
    /// end of the gate's pair, open until the fork) on the gate's descriptor.
    pub fn with_gate(mut self, args: &[OsString], env: &[(String, String)], socket: Option<std::os::fd::RawFd>) -> Result<Self, GateError> {
        let mut argv = Vec::with_capacity(self.argv.len() + args.len());
        let mut old = std::mem::take(&mut self.argv).into_iter();
        argv.extend(old.next());
        for a in args {
            argv.push(cstring(a.as_bytes())?);
        }
        argv.extend(old);
        self.argv = argv;
        for (k, v) in env {
            let prefix = format!("{k}=");
            self.env.retain(|e| !e.as_bytes().starts_with(prefix.as_bytes()));
            self.env.push(cstring(format!("{k}={v}").as_bytes())?);
        }
        self.gate = Some(socket.ok_or(GateError::HandedOver)?);
        Ok(self)
    }

    /// Installs the exec backstop's `program` before the drop and sends its
    /// listener over descriptor `to`.
    pub fn with_exec_filter(mut self, program: &[libc::sock_filter], to: i32) -> Self {
        self.exec_filter = Some((program.to_vec(), to));
        self
    }

    /// Sets (or replaces) environment variables.
    pub fn with_env(mut self, env: &[(String, String)]) -> Result<Self, NulError> {
        for (k, v) in env {
            let prefix = format!("{k}=");
            self.env.retain(|e| !e.as_bytes().starts_with(prefix.as_bytes()));
            self.env.push(cstring(format!("{k}={v}").as_bytes())?);
        }
        Ok(self)
    }

    /// Replaces the `-c` command's text (the argument after `-c`): a
    /// transfer's server run with its log on.
    pub fn with_command(mut self, old: &str, new: &str) -> Result<Self, NulError> {
        let new = cstring(new.as_bytes())?;
        if let Some(arg) = self.argv.iter_mut().skip(1).find(|a| a.as_bytes() == old.as_bytes()) {
            *arg = new;
        }
        Ok(self)
    }

    /// In the forked child: the shell's stdin, stdout and stderr become
    /// `stdio` (the data channel's pipes), then as [`Self::exec_child`].
    pub fn exec_child_piped(&self, stdio: [&OwnedFd; 3], privilege: &Privilege) -> ! {
        for (target, fd) in stdio.iter().enumerate() {
            // SAFETY: dup2 on descriptors we own, in a child that will exec
            // or exit right after; dup2 clears close-on-exec on the copy.
            if unsafe { libc::dup2(fd.as_raw_fd(), target as i32) } < 0 {
                die(b"custos-shell: cannot attach the data channel\n", 126);
            }
        }
        self.exec_child(None, privilege)
    }

    /// In the forked child: attach to `tty` (if any) as the controlling
    /// terminal, become the user, and exec. Never returns.
    pub fn exec_child(&self, tty: Option<&OwnedFd>, privilege: &Privilege) -> ! {
        if let Some(tty) = tty {
            let fd = tty.as_raw_fd();
            // SAFETY: plain system calls on descriptors we own, in a child
            // that will exec or exit right after.
            let attached = unsafe {
                libc::setsid() >= 0
                    && libc::ioctl(fd, libc::TIOCSCTTY, 0) >= 0
                    && libc::dup2(fd, 0) >= 0
                    && libc::dup2(fd, 1) >= 0
                    && libc::dup2(fd, 2) >= 0
            };
            if !attached {
                die(b"custos-shell: cannot attach the terminal\n", 126);
            }
        }
        if let Some((program, to)) = &self.exec_filter {
            if privilege.install_exec_filter(program, *to).is_err() {
                die(b"custos-shell: cannot install the exec backstop; refusing to start the shell\n", 126);
            }
        }
        if privilege.drop_to_user().is_err() {
            die(b"custos-shell: cannot drop privileges; refusing to start the shell\n", 126);
        }
        if let Some(fd) = self.gate {
            if !place_gate(fd) {
                die(b"custos-shell: cannot reach the command gate; refusing to start the shell\n", 126);
            }
        }
        // Rust ignores SIGPIPE; a shell must start with default dispositions
        // and nothing blocked, or `yes | head` never ends.
        for sig in [Signal::SIGPIPE, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTSTP, Signal::SIGTTIN, Signal::SIGTTOU, Signal::SIGCHLD, Signal::SIGWINCH, Signal::SIGHUP, Signal::SIGTERM] {
            // SAFETY: restoring the default disposition is always sound.
            let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        }
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
        let _ = nix::unistd::execve(&self.path, &self.argv, &self.env);
        die(b"custos-shell: cannot execute the real shell\n", 127);
    }
}

/// Leaves the shell's end of the gate's pair on `GATE_FD`, inherited by
/// the shell (dup2 clears close-on-exec on the copy; the original keeps it
/// and goes at exec). Only system calls: this runs between fork and exec.
fn place_gate(fd: std::os::fd::RawFd) -> bool {
    let target = crate::gate::inject::GATE_FD;
    if fd == target {
        // SAFETY: fcntl on a descriptor we own.
        return unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == 0;
    }
    // SAFETY: dup2 on a descriptor we own.
    unsafe { libc::dup2(fd, target) == target }
}

fn die(msg: &[u8], code: i32) -> ! {
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(code)
    }
}

/// The shell-style exit status for a wait status: the code, or 128+N for a
/// signal N.
pub fn exit_code(status: nix::sys::wait::WaitStatus) -> Option<i32> {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}
