//! The interactive session loop: the real shell in a PTY, its output through
//! the virtual screen, rendered to the user's terminal and to the recording.
//!
//! One thread owns everything: the PTY master, the user's terminal, the
//! screen, both renderers and the recording file. It waits in `poll` on
//! three descriptors (keys from the user, output from the shell, a pipe
//! carrying signals) and reacts:
//!
//! - **keys** go to the shell unchanged (and to the recording as `i`
//!   events when input recording is on and the shell's terminal echoes);
//! - **output** is fed to the screen; a frame is rendered as soon as the
//!   shell pauses, or every [`FRAME_INTERVAL`] while it floods, so typing
//!   feels instant and a flood costs one redraw per frame, not per read;
//! - **SIGWINCH** resizes the PTY, the screen and both renderers;
//! - **SIGCHLD** means the shell exited: what it wrote is drained and
//!   rendered, the exit status recorded, the terminal restored;
//! - **hang-up** (the user's terminal is gone) closes the PTY master, which
//!   hangs up the shell, and the recording is completed all the same.
//!
//! With a collector configured, a prefix key opens the approvals pane
//! (see `pane`): a second inner PTY running `custos approve`, parsed into
//! its own screen and drawn below the shell's rows on the user's terminal
//! only. While it is open, keys go to it (never to the shell, the gate or
//! the input recording), the shell's PTY is that many rows shorter, and
//! the recording, which shows the shell alone, gets a resize event.
//!
//! Writes to the user's terminal block: a slow terminal slows the shell
//! down instead of losing output. The recording does the same: when the
//! evidence spool is full (see `sink`), the loop stops reading the shell's
//! output until there is room (`when_full = "throttle"`), or ends the
//! session (`"end"`).

use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::config::OnDegraded;
use crate::gate::socket::GateSocket;
use crate::gate::{Gate, Note};
use crate::term::masker::Masker;
use crate::recorder::pane::{Key, Prefix, Split};
use crate::evidence::WhenFull;
use crate::evidence::asciicast::Event;
use crate::term::render::{Layout, Renderer, Scrolled};
use crate::term::screen::{Screen, Size};
use crate::evidence::sink::Sink;

/// The longest a flood of output goes without a frame on screen.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(16);

/// Rows waiting to reach scrollback are flushed beyond this many. Output is
/// fed to the screen in slices of [`FEED_SLICE`] bytes (one byte scrolls at
/// most one row), so the emulator never holds more than
/// `MAX_PENDING_SCROLL + FEED_SLICE` rows: under the 1,000 rows it recycles
/// instead of freeing and reallocating, and a few MiB at most.
const MAX_PENDING_SCROLL: usize = 400;
const FEED_SLICE: usize = 512;

/// How often the loop looks whether a paused recording has room again.
const PAUSED_RETRY: Duration = Duration::from_millis(100);

/// The user's terminal, passed in so tests and `custos demo` can supply
/// their own.
pub struct Terminal<'a> {
    pub input: BorrowedFd<'a>,
    pub output: BorrowedFd<'a>,
}

pub struct Options {
    pub status_line: Option<String>,
    pub record_input: bool,
    /// Masks secrets on the terminal and in the recording.
    pub masker: Masker,
    /// The command gate, when the shell has hooks.
    pub gate: Option<GateRuntime>,
    /// The approvals pane, when a collector is configured (see `pane`).
    pub pane: Option<PaneSetup>,
}

/// What the approvals pane needs: its launcher, forked at session start,
/// and the prefix key.
pub struct PaneSetup {
    pub launcher: crate::recorder::pane::launcher::Launcher,
    pub prefix: u8,
}

/// The approvals pane as the loop runs it.
struct PaneRuntime {
    launcher: crate::recorder::pane::launcher::Launcher,
    prefix: Prefix,
    /// The prefix as the divider names it (`C-]`).
    key_name: String,
    state: PaneState,
    /// Panes the user closed whose exit status is still to come: those
    /// exits are expected, not news. The launcher runs one pane at a time
    /// and reports exits in order, so a count is enough.
    expected_exits: u32,
    /// The last line the pane showed before it ended on its own.
    last_words: Option<String>,
}

enum PaneState {
    Closed,
    /// Asked the launcher; the focus stays on the shell until it answers.
    Opening,
    Open(Box<OpenPane>),
}

struct OpenPane {
    master: OwnedFd,
    screen: Screen,
    split: Split,
    to_pane: Vec<u8>,
}

/// `C-]` for 0x1d, `C-a` for 0x01.
fn key_name(prefix: u8) -> String {
    let c = char::from(prefix | 0x40);
    format!("C-{}", if c.is_ascii_uppercase() { c.to_ascii_lowercase() } else { c })
}

/// The command gate as the loop runs it (see `gate`).
pub struct GateRuntime {
    pub gate: Gate,
    pub socket: GateSocket,
    pub on_degraded: OnDegraded,
    /// Approvals, when a collector is configured (see `approval`).
    pub approvals: Option<crate::approval::link::Approvals>,
}

/// How often, at most, an Enter typed while a command runs makes the gate
/// look at the foreground processes.
const FOREGROUND_CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// What ended the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The shell exited with this status (128+N for signal N).
    Exited(i32),
    /// The user's terminal hung up; the shell was hung up too.
    HungUp(Option<i32>),
}

impl Ending {
    pub fn status(self) -> i32 {
        match self {
            Ending::Exited(s) => s,
            // Like bash when its terminal goes away: SIGHUP.
            Ending::HungUp(s) => s.unwrap_or(128 + libc::SIGHUP),
        }
    }
}

/// Signals the loop handles, delivered through a pipe so `poll` sees them.
pub struct Signals {
    read: UnixStream,
    ids: Vec<signal_hook::SigId>,
}

impl Signals {
    /// Registers the handlers. Call before forking the shell, so an early
    /// exit is not missed.
    pub fn register() -> std::io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut ids = Vec::new();
        for sig in [libc::SIGWINCH, libc::SIGCHLD, libc::SIGHUP, libc::SIGTERM] {
            ids.push(signal_hook::low_level::pipe::register(sig, write.try_clone()?)?);
        }
        Ok(Self { read, ids })
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

struct Loop<'a> {
    term: Terminal<'a>,
    master: Option<OwnedFd>,
    child: Pid,
    screen: Screen,
    to_terminal: Renderer,
    to_recording: Renderer,
    sink: &'a mut Sink,
    options: Options,
    started: Instant,
    last_frame: Instant,
    dirty: bool,
    to_master: Vec<u8>,
    term_buf: Vec<u8>,
    rec_buf: Vec<u8>,
    hung_up: bool,
    exit: Option<i32>,
    /// When a held tail (see `masker`) must be released by redrawing.
    hold_deadline: Option<Instant>,
    /// Keys of the line being typed, recorded when it ends.
    input_line: Vec<u8>,
    /// The status line as configured; degradation and a paused recording
    /// are added to it.
    status_base: Option<String>,
    degraded: Option<String>,
    paused: Option<String>,
    /// A held line's wait for approval, as the status line shows it.
    held: Option<String>,
    last_foreground_check: Option<Instant>,
    /// Set when the session must end (a degraded session, configured so).
    ending: Option<String>,
    pane: Option<PaneRuntime>,
    /// Why the approvals pane closed or would not open, on the status line
    /// until the prefix is used again.
    pane_notice: Option<String>,
    /// The user's terminal has a scroll region for the shell's rows.
    region_set: bool,
}

/// Runs the session until the shell exits or the terminal hangs up.
/// `master` is the PTY the shell (pid `child`) runs on, sized for `layout`.
pub fn run(
    term: Terminal<'_>,
    master: OwnedFd,
    child: Pid,
    layout: Layout,
    signals: &Signals,
    sink: &mut Sink,
    mut options: Options,
) -> std::io::Result<Ending> {
    let started = Instant::now();
    let pane = options.pane.take().map(|p| PaneRuntime {
        launcher: p.launcher,
        prefix: Prefix::new(p.prefix),
        key_name: key_name(p.prefix),
        state: PaneState::Closed,
        expected_exits: 0,
        last_words: None,
    });
    let mut lp = Loop {
        term,
        master: Some(master),
        child,
        screen: Screen::new(Size { rows: layout.pane_rows, cols: layout.cols }),
        to_terminal: Renderer::new(layout),
        to_recording: Renderer::new(Layout { status: false, ..layout }),
        sink,
        options,
        started,
        last_frame: started,
        dirty: true,
        to_master: Vec::new(),
        term_buf: Vec::with_capacity(64 * 1024),
        rec_buf: Vec::with_capacity(64 * 1024),
        hung_up: false,
        exit: None,
        hold_deadline: None,
        input_line: Vec::new(),
        status_base: None,
        degraded: None,
        paused: None,
        held: None,
        last_foreground_check: None,
        ending: None,
        pane,
        pane_notice: None,
        region_set: false,
    };
    lp.status_base = lp.options.status_line.clone();
    let mut start = Vec::new();
    lp.to_terminal.start(&mut start);
    lp.write_terminal(&start);
    lp.event_loop(signals)?;
    lp.finish()
}

impl Loop<'_> {
    fn event_loop(&mut self, signals: &Signals) -> std::io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        while self.exit.is_none() && !self.hung_up && self.ending.is_none() {
            let Some(master) = self.master.as_ref() else { break };
            let master_fd = master.as_fd();
            // A synchronized update (`?2026`) holds the screen back until the
            // program ends it or its deadline passes; draw nothing meanwhile.
            let sync_deadline = self.screen.sync_deadline();
            let gate_deadline = self.options.gate.as_ref().and_then(|g| g.gate.deadline());
            // While paused, look often for the room the writer finds.
            let tick_deadline = self.paused.is_some().then(|| Instant::now() + PAUSED_RETRY);
            let approval_tick = self.options.gate.as_ref().and_then(|g| g.approvals.as_ref()).and_then(|a| a.deadline(Instant::now()));
            let deadline =
                [sync_deadline, self.hold_deadline, gate_deadline, tick_deadline, approval_tick].into_iter().flatten().min();
            // Something to draw: look for more output without waiting. A
            // synchronized update holds drawing back, so then wait, as for a
            // held tail, until its deadline.
            let timeout = match deadline {
                _ if self.dirty && sync_deadline.is_none() => PollTimeout::ZERO,
                Some(deadline) => {
                    let ms = deadline.saturating_duration_since(Instant::now()).as_millis();
                    PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
                }
                None => PollTimeout::NONE,
            };
            // A full spool (throttle): leave the output in the PTY, so the
            // shell blocks on its writes until the recording has room.
            let mut master_events = if self.paused.is_some() { PollFlags::empty() } else { PollFlags::POLLIN };
            if !self.to_master.is_empty() {
                master_events |= PollFlags::POLLOUT;
            }
            // Stop reading keys while the shell is not taking them.
            let key_events = if self.to_master.len() < 64 * 1024 { PollFlags::POLLIN } else { PollFlags::empty() };
            let mut fds = vec![
                PollFd::new(master_fd, master_events),
                PollFd::new(self.term.input, key_events),
                PollFd::new(signals.read.as_fd(), PollFlags::POLLIN),
            ];
            let mut agent_index = None;
            let mut gate_end = fds.len();
            if let Some(g) = self.options.gate.as_ref() {
                fds.extend(g.socket.fds().into_iter().map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
                gate_end = fds.len();
                if let Some(fd) = g.approvals.as_ref().and_then(|a| a.fd()) {
                    agent_index = Some(fds.len());
                    fds.push(PollFd::new(fd, PollFlags::POLLIN));
                }
            }
            let (mut launcher_index, mut pane_index) = (None, None);
            if let Some(p) = self.pane.as_ref() {
                launcher_index = Some(fds.len());
                fds.push(PollFd::new(p.launcher.fd(), PollFlags::POLLIN));
                if let PaneState::Open(open) = &p.state {
                    let mut events = PollFlags::POLLIN;
                    if !open.to_pane.is_empty() {
                        events |= PollFlags::POLLOUT;
                    }
                    pane_index = Some(fds.len());
                    fds.push(PollFd::new(open.master.as_fd(), events));
                }
            }
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let ready = |fd: Option<&PollFd<'_>>| fd.and_then(|fd| fd.revents()).unwrap_or(PollFlags::empty());
            let (m, k, s) = (ready(fds.first()), ready(fds.get(1)), ready(fds.get(2)));
            let agent_ready = agent_index.is_some_and(|i| ready(fds.get(i)).intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR));
            let launcher_ready = launcher_index.is_some_and(|i| !ready(fds.get(i)).is_empty());
            let pane_ready = pane_index.map_or(PollFlags::empty(), |i| ready(fds.get(i)));
            let gate_ready: Vec<usize> = fds
                .iter()
                .take(gate_end)
                .skip(3)
                .enumerate()
                .filter(|(_, fd)| ready(Some(fd)).intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR))
                .map(|(i, _)| i)
                .collect();
            drop(fds);
            if launcher_ready {
                self.launcher_replies();
            }
            if pane_ready.contains(PollFlags::POLLOUT) {
                self.flush_to_pane();
            }
            if pane_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                self.read_pane(&mut buf);
            }
            // Connections are handled last first, so indices stay valid
            // when one is dropped.
            for index in gate_ready.into_iter().rev() {
                self.gate_ready(index);
            }
            self.gate_poll();
            if agent_ready {
                let effects = self.options.gate.as_mut().and_then(|g| g.approvals.as_mut()).map(|a| a.readable()).unwrap_or_default();
                self.approval_effects(effects);
            }
            self.approval_status();
            if let Some(g) = self.options.gate.as_mut() {
                if g.approvals.as_mut().is_some_and(|a| a.keepalive_due(Instant::now())) {
                    g.socket.wait_held();
                }
            }

            if s.contains(PollFlags::POLLIN) {
                self.handle_signals(&signals.read)?;
            }
            if self.screen.sync_deadline().is_some_and(|d| Instant::now() >= d) {
                self.screen.end_sync();
                self.dirty = true;
            }
            self.check_room();
            if self.hold_deadline.is_some_and(|d| Instant::now() >= d) {
                self.hold_deadline = None;
                self.dirty = true;
            }
            if m.contains(PollFlags::POLLOUT) {
                self.flush_to_master();
            }
            let mut read_output = false;
            if m.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                read_output = true;
                if !self.read_master(&mut buf) {
                    // The slave side is closed: every writer has gone.
                    self.reap(true);
                    break;
                }
            }
            if k.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                self.read_keys(&mut buf);
            }
            // Render when the shell paused, or a flood has gone a frame
            // interval without one.
            if self.dirty && !self.screen.in_sync() && (!read_output || self.last_frame.elapsed() >= FRAME_INTERVAL) {
                self.render();
            }
        }
        Ok(())
    }

    /// Reads one buffer of shell output. Returns false at end of output.
    fn read_master(&mut self, buf: &mut [u8]) -> bool {
        let Some(master) = self.master.as_ref() else { return false };
        match nix::unistd::read(master, buf) {
            Ok(0) => false,
            Ok(n) => {
                self.feed(buf.get(..n).unwrap_or_default());
                true
            }
            Err(nix::Error::EAGAIN | nix::Error::EINTR) => true,
            // EIO: the slave was closed by its last holder.
            Err(_) => false,
        }
    }

    /// Feeds shell output to the screen, flushing scrolled rows as they
    /// pile up (see [`MAX_PENDING_SCROLL`]).
    fn feed(&mut self, bytes: &[u8]) {
        for slice in bytes.chunks(FEED_SLICE) {
            self.screen.process(slice);
            if self.screen.scrolled_len() >= MAX_PENDING_SCROLL {
                self.flush_scrolled();
            }
        }
        self.after_output();
    }

    /// Sends the rows that scrolled off to the terminal's scrollback and the
    /// recording, without drawing the screen (the next frame does).
    fn flush_scrolled(&mut self) {
        let cover = self.options.masker.cover_scrolled(&self.screen);
        let scrolled = Scrolled::take(&self.screen, &cover);
        self.screen.clear_scrolled();
        self.term_buf.clear();
        self.rec_buf.clear();
        self.to_terminal.push_scrolled(&scrolled, &mut self.term_buf);
        self.to_recording.push_scrolled(&scrolled, &mut self.rec_buf);
        let term_buf = std::mem::take(&mut self.term_buf);
        self.write_terminal(&term_buf);
        self.term_buf = term_buf;
        self.record_output();
    }

    fn after_output(&mut self) {
        self.dirty = true;
        let replies = self.screen.take_replies();
        if !replies.is_empty() {
            self.to_master.extend_from_slice(&replies);
            self.flush_to_master();
        }
    }

    fn read_keys(&mut self, buf: &mut [u8]) {
        match nix::unistd::read(self.term.input, buf) {
            Ok(0) => self.hang_up(),
            Ok(n) => {
                let keys = buf.get(..n).unwrap_or_default();
                let Some(pane) = self.pane.as_mut() else {
                    self.keys_to_shell(keys);
                    return;
                };
                for key in pane.prefix.feed(keys) {
                    match key {
                        Key::Toggle => self.toggle_pane(),
                        Key::Forward(bytes) => {
                            if self.pane_focused() {
                                self.keys_to_pane(&bytes);
                            } else {
                                self.keys_to_shell(&bytes);
                            }
                        }
                    }
                }
            }
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
            Err(_) => self.hang_up(),
        }
    }

    /// Keys for the shell: to a held line's prompt, or to the shell (and
    /// the gate's Enter watch, and the input recording).
    fn keys_to_shell(&mut self, keys: &[u8]) {
        // A held line: keys go to the hold (a reason, Ctrl-C), not
        // the shell, which waits for its answer.
        if let Some(a) = self.options.gate.as_mut().and_then(|g| g.approvals.as_mut()).filter(|a| a.holding()) {
            let effects = a.keys(keys);
            self.approval_effects(effects);
            self.approval_status();
            return;
        }
        if self.options.record_input {
            self.record_keys(keys);
        }
        if keys.iter().any(|&b| b == b'\r' || b == b'\n') {
            self.gate_enter();
        }
        self.to_master.extend_from_slice(keys);
        self.flush_to_master();
    }

    fn pane_focused(&self) -> bool {
        self.pane.as_ref().is_some_and(|p| matches!(p.state, PaneState::Open(_)))
    }

    /// Keys for the approvals pane: to its `custos approve` alone.
    fn keys_to_pane(&mut self, keys: &[u8]) {
        if let Some(PaneState::Open(open)) = self.pane.as_mut().map(|p| &mut p.state) {
            // The terminal's modes are the shell's; the pane may want
            // pastes plain.
            if open.screen.modes().bracketed_paste {
                open.to_pane.extend_from_slice(keys);
            } else {
                open.to_pane.extend(crate::recorder::pane::unbracket_paste(keys));
            }
        }
        self.flush_to_pane();
    }

    fn flush_to_pane(&mut self) {
        let Some(PaneState::Open(open)) = self.pane.as_mut().map(|p| &mut p.state) else { return };
        while !open.to_pane.is_empty() {
            match nix::unistd::write(&open.master, &open.to_pane) {
                Ok(n) => {
                    open.to_pane.drain(..n);
                }
                Err(nix::Error::EINTR) => {}
                // EAGAIN waits for POLLOUT; anything else is the pane
                // ending, which its read side reports.
                Err(_) => return,
            }
        }
    }

    /// Reads the pane's output into its screen; at its end, closes it.
    fn read_pane(&mut self, buf: &mut [u8]) {
        let Some(PaneState::Open(open)) = self.pane.as_mut().map(|p| &mut p.state) else { return };
        // Bounded, so a flooding pane cannot starve the shell.
        for _ in 0..4 {
            match nix::unistd::read(&open.master, buf) {
                Ok(0) => return self.pane_ended(),
                Ok(n) => {
                    open.screen.process(buf.get(..n).unwrap_or_default());
                    // A TUI draws in the alternate screen; whatever scrolls
                    // off the pane is not kept.
                    open.screen.clear_scrolled();
                    let replies = open.screen.take_replies();
                    open.to_pane.extend_from_slice(&replies);
                    let _ = open.screen.take_passthrough();
                    self.dirty = true;
                }
                Err(nix::Error::EAGAIN) => break,
                Err(nix::Error::EINTR) => {}
                // EIO: `custos approve` and everything on its terminal ended.
                Err(_) => return self.pane_ended(),
            }
        }
        self.flush_to_pane();
    }

    /// The pane's program ended on its own: the pane closes, keeping its
    /// last line for the status line should the exit status be a failure.
    fn pane_ended(&mut self) {
        let Some(p) = self.pane.as_mut() else { return };
        if let PaneState::Open(open) = &p.state {
            let text = open.screen.text();
            p.last_words = text.lines().rev().map(str::trim).find(|l| !l.is_empty()).map(|l| l.chars().take(160).collect());
        }
        self.close_pane(false);
    }

    /// Prefix then `a`: open the pane, or close it.
    fn toggle_pane(&mut self) {
        self.pane_notice = None;
        let want_status = self.options.status_line.is_some();
        let size = crate::recorder::pty::get_size(self.term.output);
        let Some(p) = self.pane.as_mut() else { return };
        match p.state {
            PaneState::Closed => {
                let Some(size) = size else {
                    self.pane_notice = Some("approvals pane: the terminal's size is unknown".into());
                    return self.refresh_status();
                };
                match crate::recorder::pane::split(size.rows, size.cols, want_status) {
                    Err(e) => self.pane_notice = Some(format!("approvals pane: {e}")),
                    Ok(split) => match p.launcher.open(Size { rows: split.pane_rows, cols: split.cols }) {
                        Ok(()) => {
                            p.state = PaneState::Opening;
                            p.last_words = None;
                        }
                        Err(e) => self.pane_notice = Some(format!("approvals pane: cannot reach its launcher: {e}")),
                    },
                }
            }
            PaneState::Opening => {
                // Changed their mind: the pane is closed as it arrives.
                p.state = PaneState::Closed;
            }
            PaneState::Open(_) => self.close_pane(true),
        }
        self.refresh_status();
    }

    /// Closes the pane (`by_user`: prefix then `a`, so its exit is no
    /// news), stops its program and gives the shell its rows back.
    fn close_pane(&mut self, by_user: bool) {
        let Some(p) = self.pane.as_mut() else { return };
        if !matches!(p.state, PaneState::Open(_)) {
            return;
        }
        // Dropping the master hangs up the pane's terminal; the launcher
        // also sends SIGTERM.
        p.state = PaneState::Closed;
        if by_user {
            p.expected_exits += 1;
            let _ = p.launcher.close();
        }
        let _ = self.check_size();
        self.dirty = true;
    }

    /// What the launcher said: a pane to show, a failure, an exit.
    fn launcher_replies(&mut self) {
        use crate::recorder::pane::launcher::Reply;
        let want_status = self.options.status_line.is_some();
        while let Some(reply) = self.pane.as_ref().and_then(|p| p.launcher.read()) {
            let size = crate::recorder::pty::get_size(self.term.output);
            let Some(p) = self.pane.as_mut() else { return };
            match reply {
                Reply::Opened(master) => {
                    let split = size.ok_or(None).and_then(|s| crate::recorder::pane::split(s.rows, s.cols, want_status).map_err(Some));
                    match (&p.state, split) {
                        (PaneState::Opening, Ok(split)) => {
                            let pane = Size { rows: split.pane_rows, cols: split.cols };
                            // The terminal may have changed since the ask.
                            let _ = crate::recorder::pty::set_size(master.as_fd(), pane);
                            p.state = PaneState::Open(Box::new(OpenPane { master, screen: Screen::new(pane), split, to_pane: Vec::new() }));
                            self.check_size()
                                .unwrap_or_else(|e| self.pane_notice = Some(format!("approvals pane: cannot resize the shell: {e}")));
                        }
                        (state, split) => {
                            if let (PaneState::Opening, Err(Some(e))) = (state, split) {
                                self.pane_notice = Some(format!("approvals pane: {e}"));
                            }
                            p.state = PaneState::Closed;
                            p.expected_exits += 1;
                            let _ = p.launcher.close();
                            drop(master);
                        }
                    }
                }
                Reply::Failed(why) => {
                    if matches!(p.state, PaneState::Opening) {
                        p.state = PaneState::Closed;
                    }
                    self.pane_notice = Some(format!("approvals pane: {why}"));
                }
                Reply::Exited(status) => {
                    let expected = p.expected_exits > 0;
                    p.expected_exits = p.expected_exits.saturating_sub(1);
                    if !expected && matches!(p.state, PaneState::Open(_)) {
                        // Its last output may still be in the PTY.
                        let mut buf = vec![0u8; 16 * 1024];
                        self.read_pane(&mut buf);
                        self.pane_ended();
                    }
                    let Some(p) = self.pane.as_mut() else { return };
                    if !expected && status != 0 {
                        let words = p.last_words.take().map(|w| format!(": {w}")).unwrap_or_default();
                        self.pane_notice = Some(format!("approvals pane: custos approve exited with status {status}{words}"));
                    }
                }
                Reply::Gone => {
                    self.close_pane(false);
                    self.pane = None;
                    self.pane_notice = Some("approvals pane: unavailable (its launcher ended)".into());
                }
            }
            self.refresh_status();
        }
    }

    /// Input is recorded a line at a time, so the detectors see a token
    /// typed key by key as the whole token, and masks it. Keys typed while
    /// the terminal is at a password prompt (see `pty::input_recordable`)
    /// are dropped, and so is any line they were part of.
    fn record_keys(&mut self, keys: &[u8]) {
        let recordable = self.master.as_ref().is_some_and(|m| crate::recorder::pty::input_recordable(m.as_fd()));
        if !recordable {
            self.input_line.clear();
            return;
        }
        self.input_line.extend_from_slice(keys);
        let ends_line = keys.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0x03 || b == 0x04);
        if ends_line || self.input_line.len() >= 4096 {
            self.flush_input();
        }
    }

    fn flush_input(&mut self) {
        if self.input_line.is_empty() {
            return;
        }
        let text = self.options.masker.mask_text(&String::from_utf8_lossy(&self.input_line));
        self.input_line.clear();
        let at = self.started.elapsed();
        let _ = self.sink.write(at, &Event::Input(&text));
    }

    /// A gate descriptor is ready: accept, or read and answer.
    fn gate_ready(&mut self, index: usize) {
        let Some(g) = self.options.gate.as_mut() else { return };
        let notes = g.socket.ready(index, &mut g.gate, Instant::now());
        self.apply_notes(notes);
    }

    fn gate_poll(&mut self) {
        let Some(g) = self.options.gate.as_mut() else { return };
        let notes = g.gate.poll(Instant::now());
        self.apply_notes(notes);
    }

    /// The user pressed Enter: the gate expects a check, or looks at what
    /// runs in the foreground (at most every [`FOREGROUND_CHECK_INTERVAL`]).
    fn gate_enter(&mut self) {
        let now = Instant::now();
        let recent = self.last_foreground_check.is_some_and(|t| now.duration_since(t) < FOREGROUND_CHECK_INTERVAL);
        let Some(g) = self.options.gate.as_mut() else { return };
        let master = self.master.as_ref();
        let editing = master.is_some_and(|m| crate::recorder::pty::line_editing(m.as_fd()));
        let mut looked = false;
        let notes = g.gate.on_enter(now, editing, || {
            looked = true;
            match master {
                Some(m) if !recent => crate::gate::foreground::processes(m.as_fd()),
                _ => Vec::new(),
            }
        });
        if looked && !recent {
            self.last_foreground_check = Some(now);
        }
        self.apply_notes(notes);
    }

    /// Records what the gate noticed, and shows degradation.
    fn apply_notes(&mut self, notes: Vec<Note>) {
        for note in notes {
            let at = self.started.elapsed();
            match note {
                Note::Command(record) => {
                    let line = self.options.masker.mask_text(&record.line);
                    let _ = self.sink.write(at, &Event::Marker(&record.marker(&line).label()));
                    let _ = self.sink.write(at, &Event::Audit(&record.audit(line).to_string()));
                }
                Note::Exit { id, status } => {
                    let json = serde_json::json!({"kind": "exit", "id": id, "status": status});
                    let _ = self.sink.write(at, &Event::Audit(&json.to_string()));
                }
                Note::Hooked { shell, pid, version } => {
                    if let (Some(g), Some(p)) = (self.options.gate.as_mut(), crate::gate::foreground::read(pid)) {
                        g.gate.set_shell_args(p.args);
                    }
                    let json = serde_json::json!({"kind": "hooked", "shell": shell, "pid": pid, "version": version});
                    let _ = self.sink.write(at, &Event::Audit(&json.to_string()));
                }
                Note::Held(held) => {
                    // The shell echoed the line before it asked: take that
                    // in, so the approvers' screen shows it.
                    let mut buf = vec![0u8; 16 * 1024];
                    for _ in 0..8 {
                        let Some(master) = self.master.as_ref() else { break };
                        match nix::unistd::read(master, &mut buf) {
                            Ok(n) if n > 0 => self.feed(buf.get(..n).unwrap_or_default()),
                            _ => break,
                        }
                    }
                    let line = self.options.masker.mask_text(&held.record.line);
                    let screen = self.options.masker.mask_text(&self.screen.text());
                    let effects = match self.options.gate.as_mut().and_then(|g| g.approvals.as_mut()) {
                        Some(a) => a.start(&held, line, screen, Instant::now()),
                        None => vec![crate::approval::link::Effect::Resolve(Some((crate::evidence::marker::Outcome::Error, "approvals are not configured".into())))],
                    };
                    self.approval_effects(effects);
                    self.approval_status();
                }
                Note::Degraded(why) => {
                    let _ = self.sink.write(at, &Event::Marker(&crate::evidence::marker::Marker::Degraded(why.clone()).label()));
                    let json = serde_json::json!({"kind": "degraded", "reason": why});
                    let _ = self.sink.write(at, &Event::Audit(&json.to_string()));
                    self.degraded = Some(why.clone());
                    self.refresh_status();
                    if self.options.gate.as_ref().is_some_and(|g| g.on_degraded == OnDegraded::End) {
                        let msg = format!("\r\n\x1b[1;31mcustos: ending the session: {why}\x1b[0m\r\n");
                        self.write_terminal(msg.as_bytes());
                        self.ending = Some(why);
                    }
                }
            }
        }
    }

    /// Applies `[evidence] when_full` when the recording has no room, and
    /// resumes when it has again.
    fn check_room(&mut self) {
        let full = self.sink.full();
        if full == self.paused {
            return;
        }
        match (&full, self.sink.when_full()) {
            (Some(why), WhenFull::End) if self.ending.is_none() => {
                let msg = format!("\r\n\x1b[1;31mcustos: ending the session: {why}\x1b[0m\r\n");
                self.write_terminal(msg.as_bytes());
                self.ending = Some(why.clone());
            }
            _ => {}
        }
        self.paused = full;
        self.refresh_status();
    }

    /// The status line: as configured, plus what is wrong now.
    fn refresh_status(&mut self) {
        // With the status line turned off, it still appears while there is
        // news the user must not miss (a held line, paused output, a
        // degraded gate, the pane's notice), and goes when there is none.
        let news = self.held.is_some() || self.paused.is_some() || self.degraded.is_some() || self.pane_notice.is_some();
        let Some(base) = self.status_base.clone().or_else(|| news.then(String::new)) else {
            if self.options.status_line.take().is_some() {
                self.dirty = true;
                let _ = self.check_size();
            }
            return;
        };
        // A held line's wait replaces the usual text; problems still show.
        let mut line = self.held.clone().unwrap_or(base);
        if let Some(why) = &self.paused {
            line.push_str(&format!("  \u{23f8} OUTPUT PAUSED: {why}"));
        }
        if let Some(why) = &self.degraded {
            line.push_str(&format!("  \u{26a0} DEGRADED: {why}"));
        }
        // The pane's news goes first: it answers a key just pressed.
        if let Some(notice) = &self.pane_notice {
            line = format!(" \u{26a0} {notice} \u{2502}{line}");
        }
        if self.options.status_line.as_ref() != Some(&line) {
            let appeared = self.options.status_line.is_none();
            self.options.status_line = Some(line);
            self.dirty = true;
            if appeared {
                let _ = self.check_size();
            }
        }
    }

    /// Applies what a held line's progress asks for (see `approval::link`).
    fn approval_effects(&mut self, effects: Vec<crate::approval::link::Effect>) {
        use crate::approval::link::Effect;
        for effect in effects {
            let at = self.started.elapsed();
            match effect {
                Effect::Audit(json) => {
                    let _ = self.sink.write(at, &Event::Audit(&json.to_string()));
                }
                Effect::Marker(marker) => {
                    let _ = self.sink.write(at, &Event::Marker(&marker.label()));
                }
                Effect::Resolve(refusal) => {
                    let Some(g) = self.options.gate.as_mut() else { continue };
                    let (reply, notes) = g.gate.resolve(refusal);
                    if let Some(reply) = reply {
                        g.socket.answer_held(&reply);
                    }
                    self.apply_notes(notes);
                }
            }
        }
    }

    /// Shows a held line's state on the status line, and the usual one
    /// after.
    fn approval_status(&mut self) {
        let held = self.options.gate.as_ref().and_then(|g| g.approvals.as_ref()).and_then(|a| a.status(Instant::now()));
        if held != self.held {
            self.held = held;
            self.refresh_status();
        }
    }

    fn flush_to_master(&mut self) {
        let Some(master) = self.master.as_ref() else { return };
        while !self.to_master.is_empty() {
            match nix::unistd::write(master, &self.to_master) {
                Ok(n) => {
                    self.to_master.drain(..n);
                }
                Err(nix::Error::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    fn handle_signals(&mut self, pipe: &UnixStream) -> std::io::Result<()> {
        // The pipe carries no signal numbers, so check everything a signal
        // could have changed.
        let mut drain = [0u8; 64];
        let mut reader = pipe;
        while matches!(reader.read(&mut drain), Ok(n) if n > 0) {}
        self.check_size()?;
        self.reap(false);
        Ok(())
    }

    fn check_size(&mut self) -> std::io::Result<()> {
        let Some(size) = crate::recorder::pty::get_size(self.term.output) else { return Ok(()) };
        let want_status = self.options.status_line.is_some();
        // With the pane open, the shell gets the rows above it.
        let mut split = None;
        if let Some(PaneState::Open(open)) = self.pane.as_mut().map(|p| &mut p.state) {
            match crate::recorder::pane::split(size.rows, size.cols, want_status) {
                Ok(s) => {
                    if s != open.split {
                        let pane = Size { rows: s.pane_rows, cols: s.cols };
                        crate::recorder::pty::set_size(open.master.as_fd(), pane)?;
                        open.screen.resize(pane);
                        open.screen.clear_scrolled();
                        open.split = s;
                        self.dirty = true;
                    }
                    split = Some(s);
                }
                Err(e) => {
                    self.pane_notice = Some(format!("approvals pane closed: {e}"));
                    self.close_pane(true);
                    self.refresh_status();
                    return Ok(());
                }
            }
        }
        let layout = match split {
            Some(s) => Layout { pane_rows: s.shell_rows, cols: s.cols, status: false },
            None => Layout::for_terminal(size.rows, size.cols, want_status),
        };
        if layout == self.to_terminal.layout() {
            return Ok(());
        }
        let pane = Size { rows: layout.pane_rows, cols: layout.cols };
        if let Some(master) = self.master.as_ref() {
            crate::recorder::pty::set_size(master.as_fd(), pane)?;
        }
        // Rows the resize pushes off the top go to scrollback first.
        self.screen.resize(pane);
        self.render();
        self.to_terminal.resize(layout);
        self.to_recording.resize(Layout { status: false, ..layout });
        let at = self.started.elapsed();
        let _ = self.sink.write(at, &Event::Resize { cols: pane.cols, rows: pane.rows });
        self.dirty = true;
        self.render();
        Ok(())
    }

    /// Collects the shell's exit status. With `block`, waits for it (the PTY
    /// is closed, so it is exiting or already has).
    fn reap(&mut self, block: bool) {
        if self.exit.is_some() {
            return;
        }
        let flags = if block { None } else { Some(WaitPidFlag::WNOHANG) };
        loop {
            match waitpid(self.child, flags) {
                Ok(WaitStatus::StillAlive) => return,
                Ok(status) => {
                    if let Some(code) = crate::recorder::child::exit_code(status) {
                        self.exit = Some(code);
                        return;
                    }
                }
                Err(nix::Error::EINTR) => {}
                Err(_) => {
                    self.exit = Some(128 + libc::SIGHUP);
                    return;
                }
            }
        }
    }

    fn hang_up(&mut self) {
        self.hung_up = true;
    }

    fn render(&mut self) {
        let damage = self.screen.take_damage();
        let (cover, hold_deadline) = self.options.masker.cover(&self.screen, &damage, Instant::now());
        self.hold_deadline = hold_deadline;
        let scrolled = Scrolled::take(&self.screen, &cover);
        self.screen.clear_scrolled();
        let passthrough = self.options.masker.filter_passthrough(self.screen.take_passthrough());
        self.term_buf.clear();
        self.rec_buf.clear();
        let status = self.options.status_line.as_deref();
        let drawn = self.drawn_pane().map(|open| open.split);
        // The shell's rows scroll alone while the pane is below them.
        if let Some(split) = drawn {
            let _ = write!(self.term_buf, "\x1b[1;{}r", split.shell_rows);
            self.region_set = true;
        } else if std::mem::take(&mut self.region_set) {
            self.term_buf.extend_from_slice(b"\x1b[r");
            self.to_terminal.invalidate();
        }
        self.to_terminal.frame(&self.screen, &scrolled, &damage, &cover, status, &mut self.term_buf);
        self.to_recording.frame(&self.screen, &scrolled, &damage, &cover, None, &mut self.rec_buf);
        if drawn.is_some() {
            self.draw_pane();
        }
        Renderer::passthrough(&passthrough, &mut self.term_buf);
        Renderer::passthrough(&passthrough, &mut self.rec_buf);
        let term_buf = std::mem::take(&mut self.term_buf);
        self.write_terminal(&term_buf);
        self.term_buf = term_buf;
        self.record_output();
        self.dirty = false;
        self.last_frame = Instant::now();
    }

    /// The open pane, once the shell's renderer has made room for it.
    fn drawn_pane(&self) -> Option<&OpenPane> {
        let layout = self.to_terminal.layout();
        match self.pane.as_ref().map(|p| &p.state) {
            Some(PaneState::Open(open)) if !layout.status && layout.pane_rows == open.split.shell_rows => Some(open),
            _ => None,
        }
    }

    /// The divider, the pane, the status line and the pane's cursor, onto
    /// the user's terminal only: the recording never sees them.
    fn draw_pane(&mut self) {
        let status = self.options.status_line.as_deref();
        let Some(p) = self.pane.as_ref() else { return };
        let PaneState::Open(open) = &p.state else { return };
        let split = open.split;
        let out = &mut self.term_buf;
        let divider = format!(" approvals \u{2500}\u{2500} {} a closes \u{2500}\u{2500} keys go to the pane, not the shell", p.key_name);
        crate::term::render::draw_bar(split.divider, split.cols, &divider, out);
        crate::term::render::draw_screen_at(&open.screen, split.pane_top, split.cols, out);
        if let Some(text) = status {
            crate::term::render::draw_bar(split.pane_top + split.pane_rows, split.cols, text, out);
        }
        let (row, col) = open.screen.cursor();
        let _ = write!(out, "\x1b[{};{}H", split.pane_top + row + 1, col + 1);
        out.extend_from_slice(if open.screen.modes().cursor_visible { b"\x1b[?25h" } else { b"\x1b[?25l" });
    }

    fn record_output(&mut self) {
        if self.rec_buf.is_empty() {
            return;
        }
        // The renderer writes only UTF-8 (text from cells, ASCII controls);
        // should that ever break, the recording gets U+FFFD, not a gap.
        let text = match std::str::from_utf8(&self.rec_buf) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(&self.rec_buf),
        };
        let at = self.started.elapsed();
        let _ = self.sink.write(at, &Event::Output(&text));
    }

    fn write_terminal(&mut self, bytes: &[u8]) {
        if self.hung_up || bytes.is_empty() {
            return;
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            match nix::unistd::write(self.term.output, rest) {
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(nix::Error::EINTR) => {}
                Err(nix::Error::EAGAIN) => {
                    // A non-blocking terminal: wait until it takes more.
                    let mut fds = [PollFd::new(self.term.output, PollFlags::POLLOUT)];
                    let _ = poll(&mut fds, PollTimeout::from(1000u16));
                }
                Err(_) => {
                    self.hang_up();
                    return;
                }
            }
        }
    }

    /// Drains what the shell left, renders the last frame, records the exit
    /// status and gives the terminal back.
    fn finish(mut self) -> std::io::Result<Ending> {
        self.close_pane(true);
        if let Some(p) = self.pane.take() {
            p.launcher.shut_down(Duration::from_millis(500));
        }
        if self.exit.is_some() && !self.hung_up {
            // The shell has exited; what it wrote is already in the PTY.
            // Background jobs may still hold the slave open and keep
            // writing, so the drain is bounded.
            let mut buf = vec![0u8; 64 * 1024];
            let deadline = Instant::now() + Duration::from_millis(500);
            while Instant::now() < deadline {
                let Some(master) = self.master.as_ref() else { break };
                match nix::unistd::read(master, &mut buf) {
                    Ok(n) if n > 0 => self.feed(buf.get(..n).unwrap_or_default()),
                    _ => break,
                }
            }
        }
        self.render();
        let mut end = Vec::new();
        self.to_terminal.finish(&self.screen, &mut end);
        self.write_terminal(&end);

        if self.exit.is_none() {
            // Hung up: closing the master hangs up the shell's terminal, and
            // the kernel sends it SIGHUP.
            self.master = None;
            let deadline = Instant::now() + Duration::from_secs(10);
            while self.exit.is_none() && Instant::now() < deadline {
                self.reap(false);
                if self.exit.is_none() {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        self.flush_input();
        let ending = if self.hung_up { Ending::HungUp(self.exit) } else { Ending::Exited(self.exit.unwrap_or(0)) };
        let at = self.started.elapsed();
        self.sink.write(at, &Event::Exit(ending.status())).map_err(std::io::Error::other)?;
        self.sink.finish().map_err(std::io::Error::other)?;
        Ok(ending)
    }
}
