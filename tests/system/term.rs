//! A terminal for the system tests: a PTY the test owns, with a program
//! (`runuser … custos-shell`, `ssh -tt`) running on it as its controlling
//! terminal, the way a user's terminal emulator would run a login.
//!
//! What the terminal shows is read back through an [`Emulator`] (a
//! `vt100` instance of the test's own, with scrollback), never by searching
//! the raw bytes: custos redraws from its own screen, so a line may reach
//! the terminal in pieces, in any order, with cursor moves in between.
//! Tests wait for needles that only the shell's *output* can contain
//! (`printf 'don%s-3' e` prints `done-3`; its echo does not contain that).

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

pub struct Term {
    master: File,
    child: Child,
    screen: Emulator,
    /// The first line the next `expect` looks at.
    mark: usize,
    eof: bool,
    markers: u32,
    /// Every byte the program wrote, as written.
    raw: Vec<u8>,
}

impl Term {
    /// Starts `program args` on a new `rows`x`cols` PTY, in a new session
    /// whose controlling terminal it is.
    pub fn spawn(program: &str, args: &[&str], rows: u16, cols: u16) -> Self {
        let size = nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        nix::fcntl::fcntl(&pty.master, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).unwrap();
        let slave: OwnedFd = pty.slave;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("TERM", "xterm-256color")
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe; stdin is the slave.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        // `cmd` holds our copies of the slave; dropping it leaves the
        // program the only holder, so its exit reads as end of output.
        drop(cmd);
        Self {
            master: File::from(pty.master),
            child,
            screen: Emulator::new(rows, cols),
            mark: 0,
            eof: false,
            markers: 0,
            raw: Vec::new(),
        }
    }

    /// The path of this terminal's slave (`/dev/pts/N`).
    pub fn pts(&self) -> std::path::PathBuf {
        use std::os::fd::AsRawFd as _;
        let mut n: libc::c_uint = 0;
        // SAFETY: TIOCGPTN writes one unsigned int into `n`.
        let r = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCGPTN, &raw mut n) };
        assert_eq!(r, 0, "TIOCGPTN");
        std::path::PathBuf::from(format!("/dev/pts/{n}"))
    }

    /// Types raw bytes (control keys).
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// Types `text` and presses Enter.
    pub fn line(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
        self.master.write_all(b"\r").unwrap();
    }

    /// Reads whatever arrives within `wait`. Returns false at end of output.
    pub fn pump(&mut self, wait: Duration) -> bool {
        if self.eof {
            return false;
        }
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::Error::EINTR) => return true,
            Ok(_) => {}
            Err(e) => panic!("poll: {e}"),
        }
        let mut buf = [0u8; 65536];
        match self.master.read(&mut buf) {
            Ok(0) => self.eof = true,
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                crate::shell::process_answering(&mut self.screen.0, &buf[..n], &mut self.master);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // EIO: every holder of the slave has gone.
            Err(_) => self.eof = true,
        }
        !self.eof
    }

    /// Waits until a line below the previous match shows `needle`, and
    /// returns the lines from there down to it.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let lines = self.screen.lines();
            let rest = lines.get(self.mark..).unwrap_or_default();
            if let Some(at) = rest.iter().position(|l| l.contains(needle)) {
                let seen = rest[..=at].join("\n");
                self.mark += at + 1;
                return seen;
            }
            let now = Instant::now();
            if now >= deadline || !self.pump((deadline - now).min(Duration::from_millis(200))) && self.eof {
                panic!(
                    "{needle:?} did not appear within {timeout:?}{}; the terminal shows:\n{}",
                    if self.eof { " (the terminal closed)" } else { "" },
                    self.screen.lines().join("\n").trim_end()
                );
            }
        }
    }

    /// Runs `command` at the shell prompt and returns what the terminal
    /// showed until it finished (its echo included).
    pub fn run(&mut self, command: &str) -> String {
        self.markers += 1;
        let n = self.markers;
        self.line(&format!("{command}; printf 'don%s-{n}\\n' e"));
        self.expect(&format!("done-{n}"), Duration::from_secs(15))
    }

    /// Waits for the program to exit, reading its last output.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while self.pump(Duration::from_millis(50)) {}
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the program did not exit within {timeout:?}; terminal output:\n{}",
                self.transcript()
            );
            if !self.pump(Duration::from_millis(50)) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The rows on the screen now, without the scrollback.
    pub fn screen_lines(&self) -> Vec<String> {
        self.screen.screen_rows()
    }

    /// Every byte the program wrote, as written.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Every line the terminal showed, scrollback included.
    pub fn transcript(&mut self) -> String {
        self.screen.lines().join("\n").trim_end().to_owned()
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A terminal emulator of the test's own, independent of the one inside
/// custos. Sizes here are fixed and non-zero, so the raw vt100 calls that
/// custos fences behind `screen::Screen` are safe.
pub struct Emulator(vt100::Parser);

impl Emulator {
    pub fn new(rows: u16, cols: u16) -> Self {
        Self(crate::shell::emulator(rows, cols, 100_000))
    }

    pub fn process(&mut self, bytes: &[u8]) {
        self.0.process(bytes);
    }

    pub fn resize(&mut self, rows: u16, cols: u16) {
        #[allow(clippy::disallowed_methods)]
        self.0.set_size(nonzero(rows), nonzero(cols));
    }

    /// The rows on the screen now, without the scrollback.
    pub fn screen_rows(&self) -> Vec<String> {
        let screen = self.0.screen();
        screen.rows(0, screen.size().1.get()).collect()
    }

    /// Every line shown: scrollback, then the screen; trailing blanks cut.
    pub fn lines(&mut self) -> Vec<String> {
        crate::shell::all_lines(&mut self.0).iter().map(|l| l.trim_end().to_owned()).collect()
    }
}

fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).unwrap()
}
