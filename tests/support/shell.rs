//! Test harness: runs the built `custos-shell` in a real PTY, as a user's
//! terminal would, and reads the screen back through an independent
//! emulator (a separate `vt100` instance with scrollback, not the one inside
//! custos).
//!
//! Include with `#[path = "support/shell.rs"] mod shell;`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SHELL_BIN: &str = env!("CARGO_BIN_EXE_custos-shell");
pub const CUSTOS_BIN: &str = env!("CARGO_BIN_EXE_custos");

/// A temporary config and spool for one test.
pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    pub fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let config = format!("[recording]\nspool_dir = \"{}\"\n{extra}", spool.display());
        // `extra` may add its own sections; a second [recording] table would
        // be a duplicate, so tests put recording keys in `extra` via this
        // helper's `with_recording` instead.
        std::fs::write(dir.path().join("custos.toml"), config).unwrap();
        Self { dir }
    }

    pub fn with_recording(recording_keys: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let config = format!("[recording]\nspool_dir = \"{}\"\n{recording_keys}\n{extra}", spool.display());
        std::fs::write(dir.path().join("custos.toml"), config).unwrap();
        Self { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("custos.toml")
    }

    pub fn recordings(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("spool/recordings"))
            .map(|rd| rd.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The only recording; panics if there is not exactly one.
    pub fn recording(&self) -> custos::evidence::asciicast::Cast {
        let recs = self.recordings();
        assert_eq!(recs.len(), 1, "expected exactly one recording, found {recs:?}");
        let text = std::fs::read_to_string(&recs[0]).unwrap();
        custos::evidence::asciicast::Cast::parse(&text).unwrap()
    }

    /// A command for `custos-shell` with this setup's config and a clean,
    /// predictable environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(SHELL_BIN);
        cmd.args(args)
            .env_clear()
            .env("CUSTOS_CONFIG", self.config())
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8")
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", self.dir.path())
            .env("SHELL", "/bin/sh")
            .env("PS1", "$ ");
        cmd
    }
}

/// A running program on a PTY we own, with the screen it draws.
pub struct Pty {
    master: Option<OwnedFd>,
    writer: Option<std::fs::File>,
    hangup: Arc<std::sync::atomic::AtomicBool>,
    pub child: Child,
    parser: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, nix::pty::Winsize);

impl Pty {
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> Self {
        let ws = nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        // Tests run in parallel threads, and a child forked by one test
        // would inherit another test's PTY descriptors, keeping that
        // terminal open after its test hangs it up. Close-on-exec, set
        // under a lock so no fork happens in between, prevents it.
        static SPAWN: Mutex<()> = Mutex::new(());
        let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let pair = nix::pty::openpty(Some(&ws), None).unwrap();
        for fd in [&pair.master, &pair.slave] {
            nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).unwrap();
        }
        let slave = pair.slave;
        let slave_fd = slave.as_raw_fd();
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let _ = slave_fd;
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(slave);
        let parser = Arc::new(Mutex::new(emulator(rows, cols, 20_000)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let mut reader_file = std::fs::File::from(pair.master.try_clone().unwrap());
        let writer = std::fs::File::from(pair.master.try_clone().unwrap());
        // As a real terminal does, the harness answers a cursor position
        // query (DSR 6) with where its cursor is at that point.
        let mut answers = std::fs::File::from(pair.master.try_clone().unwrap());
        let (p2, r2) = (parser.clone(), raw.clone());
        let hangup = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let h2 = hangup.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            loop {
                // Wake up now and then to notice a hang-up request, which
                // needs every copy of the master closed.
                let mut fds = [libc::pollfd { fd: reader_file.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
                // SAFETY: one valid pollfd.
                let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, 50) };
                if h2.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                if ready == 0 {
                    continue;
                }
                match reader_file.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        process_answering(&mut p2.lock().unwrap(), &buf[..n], &mut answers);
                        r2.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                }
            }
        });
        Self { master: Some(pair.master), writer: Some(writer), hangup, child, parser, raw, reader: Some(reader) }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.as_mut().unwrap().write_all(bytes).unwrap();
    }

    /// Types a line and presses Enter.
    pub fn line(&mut self, text: &str) {
        self.send(text.as_bytes());
        self.send(b"\r");
    }

    pub fn screen_text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    pub fn rows(&self) -> Vec<String> {
        let p = self.parser.lock().unwrap();
        let cols = p.screen().size().1.get();
        p.screen().rows(0, cols).collect()
    }

    pub fn with_screen<T>(&self, f: impl FnOnce(&vt100::Screen) -> T) -> T {
        f(self.parser.lock().unwrap().screen())
    }

    /// Every line the terminal has shown: scrollback, then the screen.
    pub fn all_lines(&self) -> Vec<String> {
        all_lines(&mut self.parser.lock().unwrap())
    }

    pub fn raw_output(&self) -> Vec<u8> {
        self.raw.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the screen text, or fails the test with
    /// the screen as it is.
    #[track_caller]
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.screen_text();
            if pred(&text) {
                return;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[track_caller]
    pub fn wait_text(&self, needle: &str) {
        self.wait_for(needle, |s| s.contains(needle));
    }

    pub fn resize(&mut self, rows: u16, cols: u16) {
        let ws = nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        #[allow(clippy::disallowed_methods)]
        self.parser.lock().unwrap().set_size(
            std::num::NonZeroU16::new(rows).unwrap(),
            std::num::NonZeroU16::new(cols).unwrap(),
        );
        // SAFETY: valid fd and winsize.
        unsafe { tiocswinsz(self.master.as_ref().unwrap().as_raw_fd(), &ws) }.unwrap();
    }

    /// Waits for the program to exit; returns its exit code (or 128+signal).
    #[track_caller]
    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                use std::os::unix::process::ExitStatusExt as _;
                if let Some(reader) = self.reader.take() {
                    // The reader ends at EIO once every holder of the slave is gone.
                    let _ = reader.join();
                }
                return status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("custos-shell did not exit; screen:\n{}", self.screen_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes our side of the terminal, as a dropped ssh connection does.
    pub fn hang_up(&mut self) {
        self.hangup.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.writer = None;
        self.master = None;
    }
}

impl Drop for Pty {
    /// A failed test must not leave a session behind.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A fresh independent emulator (not the one inside custos) of `rows` x
/// `cols`, keeping `scrollback` lines. Test sizes are non-zero, so the raw
/// vt100 call that custos fences behind `screen::Screen` is safe here.
/// Feeds `bytes` to `parser` as a terminal takes them, answering each
/// cursor position query (DSR 6) on `answers` with where the cursor is at
/// that point, as real terminals do.
pub fn process_answering(parser: &mut vt100::Parser, bytes: &[u8], answers: &mut impl std::io::Write) {
    let mut rest = bytes;
    while let Some(at) = rest.windows(4).position(|w| w == b"\x1b[6n") {
        parser.process(&rest[..at]);
        let (row, col) = parser.screen().cursor_position();
        let _ = answers.write_all(format!("\x1b[{};{}R", row + 1, col + 1).as_bytes());
        rest = &rest[at + 4..];
    }
    parser.process(rest);
}

pub fn emulator(rows: u16, cols: u16, scrollback: usize) -> vt100::Parser {
    #[allow(clippy::disallowed_methods)]
    vt100::Parser::new(std::num::NonZeroU16::new(rows).unwrap(), std::num::NonZeroU16::new(cols).unwrap(), scrollback)
}

/// Every line an emulator has shown: scrollback, then the screen.
pub fn all_lines(parser: &mut vt100::Parser) -> Vec<String> {
    let screen = parser.screen_mut();
    let cols = screen.size().1.get();
    screen.set_scrollback(usize::MAX);
    let depth = screen.scrollback();
    let mut lines = Vec::new();
    for offset in (1..=depth).rev() {
        screen.set_scrollback(offset);
        lines.push(screen.rows(0, cols).next().unwrap_or_default());
    }
    screen.set_scrollback(0);
    lines.extend(screen.rows(0, cols));
    lines
}

/// Replays a recording's output on a fresh emulator of the recorded size.
pub fn replay(cast: &custos::evidence::asciicast::Cast) -> vt100::Parser {
    let mut rows = cast.header.term.rows;
    let mut cols = cast.header.term.cols;
    let mut parser = emulator(rows, cols, 20_000);
    for (_, code, data) in &cast.events {
        match code.as_str() {
            "o" => parser.process(data.as_bytes()),
            "r" => {
                let (c, r) = data.split_once('x').unwrap();
                cols = c.parse().unwrap();
                rows = r.parse().unwrap();
                #[allow(clippy::disallowed_methods)]
                parser.set_size(std::num::NonZeroU16::new(rows).unwrap(), std::num::NonZeroU16::new(cols).unwrap());
            }
            _ => {}
        }
    }
    parser
}

pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

/// The asciinema 3 player recordings are checked against (`ASCIINEMA_BIN`,
/// else `asciinema` on PATH), or `None` when there is none.
pub fn asciinema_3() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ASCIINEMA_BIN").map(PathBuf::from).filter(|p| p.exists()) {
        return Some(p);
    }
    let out = Command::new("sh").args(["-c", "command -v asciinema"]).output().ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    // asciinema 2 (Python) cannot read v3; only a version 3 player counts.
    let version = Command::new(&path).arg("--version").output().ok()?;
    String::from_utf8_lossy(&version.stdout).contains("asciinema 3").then(|| PathBuf::from(path))
}
