//! The pseudo-terminal the real shell runs in, and the terminal ioctls the
//! session needs on it and on the user's terminal.
//!
//! Both PTY ends are close-on-exec: the child dups the slave onto 0, 1 and 2
//! before exec, and no other descriptor of the recorder (recording file,
//! session lock, master) may leak into the user's shell.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::pty::{openpty, Winsize};
use nix::sys::termios::{self, LocalFlags};

use crate::term::screen::Size;

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

impl Pty {
    /// Opens a PTY pair of `size`. The master is non-blocking.
    pub fn open(size: Size) -> std::io::Result<Self> {
        let ws = winsize(size);
        let pair = openpty(Some(&ws), None).map_err(std::io::Error::from)?;
        for fd in [&pair.master, &pair.slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(std::io::Error::from)?;
        }
        let flags = OFlag::from_bits_truncate(fcntl(&pair.master, FcntlArg::F_GETFL).map_err(std::io::Error::from)?);
        fcntl(&pair.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map_err(std::io::Error::from)?;
        Ok(Self { master: pair.master, slave: pair.slave })
    }
}

fn winsize(size: Size) -> Winsize {
    Winsize { ws_row: size.rows, ws_col: size.cols, ws_xpixel: 0, ws_ypixel: 0 }
}

nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, Winsize);
nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, Winsize);

/// Sets the window size of a terminal (the kernel sends SIGWINCH to its
/// foreground process group).
pub fn set_size(fd: BorrowedFd<'_>, size: Size) -> std::io::Result<()> {
    let ws = winsize(size);
    // SAFETY: fd is a valid descriptor for the duration of the call and ws
    // is a properly initialised winsize.
    unsafe { tiocswinsz(fd.as_raw_fd(), &ws) }.map(|_| ()).map_err(std::io::Error::from)
}

/// The window size of a terminal, `None` if it is not a terminal or reports 0.
pub fn get_size(fd: BorrowedFd<'_>) -> Option<Size> {
    let mut ws = winsize(Size { rows: 0, cols: 0 });
    // SAFETY: fd is valid for the call and ws is a writable winsize.
    unsafe { tiocgwinsz(fd.as_raw_fd(), &mut ws) }.ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some(Size { rows: ws.ws_row, cols: ws.ws_col })
}

/// Whether keys typed now may be recorded, judged from the terminal behind
/// `fd` (on Linux a PTY master reports its slave's settings).
///
/// A password prompt (`read -s`, sudo, ssh, `getpass`) turns ECHO off and
/// keeps the line discipline canonical: never recorded. Line editors
/// (readline, zle) and full-screen programs turn both ECHO and ICANON off
/// and draw what is typed themselves, so their keys are recordable; if ECHO
/// were the only test, input recording would record nothing at a bash
/// prompt. Unknown state (the call fails) counts as secret.
pub fn input_recordable(fd: BorrowedFd<'_>) -> bool {
    termios::tcgetattr(fd).is_ok_and(|t| {
        t.local_flags.contains(LocalFlags::ECHO) || !t.local_flags.contains(LocalFlags::ICANON)
    })
}

/// Whether a line editor (readline, zle) has the terminal: canonical mode
/// is off. Shells turn it back on before running a command.
pub fn line_editing(fd: BorrowedFd<'_>) -> bool {
    termios::tcgetattr(fd).is_ok_and(|t| !t.local_flags.contains(LocalFlags::ICANON))
}

pub fn is_terminal(fd: impl AsFd) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// Puts the user's terminal in raw mode and restores it when dropped, so
/// every exit path (including errors) gives the user their terminal back.
pub struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: termios::Termios,
}

impl<'a> RawMode<'a> {
    pub fn enter(fd: BorrowedFd<'a>) -> std::io::Result<Self> {
        let saved = termios::tcgetattr(fd).map_err(std::io::Error::from)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, termios::SetArg::TCSADRAIN, &raw).map_err(std::io::Error::from)?;
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, termios::SetArg::TCSADRAIN, &self.saved);
    }
}

/// The controlling terminal's (major, minor), from `/proc/self/stat` (not
/// from stdin, which the user can redirect freely).
pub fn controlling_tty() -> Option<(u32, u32)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which may itself contain spaces and ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let tty_nr: u32 = rest.split(' ').nth(4)?.parse().ok()?;
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some((major, minor))
}
