//! The interactive session loop: the real shell in a PTY, its output through
//! the screen pipeline, rendered to the user's terminal and to the recording.
//!
//! One thread owns everything: the PTY master, the user's terminal, the
//! pipeline (screen and masker), both renderers and the recording file. It
//! waits in `poll` on three descriptors (keys from the user, output from the
//! shell, a pipe carrying signals), plus the gate's and the pane's, and
//! dispatches:
//!
//! - **keys** go through the pane's prefix ([`route`]) to the pane, to a
//!   held line's prompt, or to the shell unchanged (and to the recording as
//!   `i` events when input recording is on and the shell's terminal echoes);
//! - **output** is fed to the pipeline (`term::pipeline`); a frame is
//!   rendered as soon as the shell pauses, or every [`FRAME_INTERVAL`] while
//!   it floods, so typing feels instant and a flood costs one redraw per
//!   frame, not per read. [`Loop::read_output`] is the one place the shell's
//!   output is read, whether by the loop, for a held line, or at the end;
//! - **SIGWINCH** resizes the PTY, the screen and both renderers;
//! - **SIGCHLD** means the shell exited: what it wrote is drained and
//!   rendered, the exit status recorded, the terminal restored;
//! - **hang-up** (the user's terminal is gone) closes the PTY master, which
//!   hangs up the shell, and the recording is completed all the same.
//!
//! The rest lives beside the loop, one concern a file: `gate_link` (gate
//! notes, approval effects, a full spool), `pane` (the approvals pane while
//! it runs: a second inner PTY drawn below the shell's rows on the user's
//! terminal and recorded as a stream of its own, never in the shell's
//! screen; while it is open, keys go to it, never to the shell, the gate or
//! the input recording, and the recording gets a resize event),
//! `status` (the status line's text) and `output` (frames to the terminal
//! and the recording, events into the recording).
//!
//! Writes to the user's terminal block: a slow terminal slows the shell
//! down instead of losing output. The recording does the same: when the
//! evidence spool is full (see `sink`), the loop stops reading the shell's
//! output until there is room (`when_full = "throttle"`), or ends the
//! session (`"end"`).

mod cursor;
mod exec_link;
mod gate_link;
mod output;
mod pane;
mod status;

use std::io::Read as _;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub use self::exec_link::ExecRuntime;
pub use self::gate_link::GateRuntime;
pub use self::pane::PaneSetup;
use self::pane::PaneRuntime;
use self::status::{Change, Status};
use crate::evidence::asciicast::Event;
use crate::evidence::marker::Marker;
use crate::evidence::sink::Sink;
use crate::recorder::leftovers::Containment;
use crate::recorder::pane::{Key, Split};
use crate::term::masker::Masker;
use crate::term::pipeline::Pipeline;
use crate::term::render::{Layout, Renderer};
use crate::term::screen::Size;

/// The longest a flood of output goes without a frame on screen.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(16);

/// How long a hung-up shell has to exit before it is ended with the rest.
const HANGUP_GRACE: Duration = Duration::from_secs(2);

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
    /// Where the session's processes are, to end what is left.
    pub containment: Containment,
    /// Leave the leftovers running (`[session] leftovers = "keep"`).
    pub keep_leftovers: bool,
    /// What the privileged stage did, recorded first.
    pub stage: Option<Vec<String>>,
    /// The exec backstop, when `[gate] exec` is not `off`.
    pub exec: Option<ExecRuntime>,
    /// Ask the terminal where its cursor is and start the shell below what
    /// it shows (an interactive login: see `cursor`).
    pub start_below: bool,
    /// Draw the shell's output from where the terminal's cursor is, as the
    /// command would have, until a resize (a command run with a terminal:
    /// see `term::render::inline`).
    pub inline: bool,
    /// The session's chunk directory, watched for chunks the collector has
    /// not taken (see [`Loop::check_backlog`]), and after how long a
    /// waiting chunk is news; `None` without a collector.
    pub backlog: Option<(std::path::PathBuf, Duration)>,
}

/// How long a shell whose terminal closed has to become reapable before
/// it is taken to have left its terminal and run on: the kernel closes an
/// exiting process's files before its parent can reap it (measured: a
/// `touch` ended so about once in 150 sessions, as 129).
const EXIT_AFTER_CLOSE: Duration = Duration::from_millis(100);

/// How often the spool is looked at for chunks that wait.
const BACKLOG_EVERY: Duration = Duration::from_secs(2);

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

/// Signals the loop handles, delivered through a pipe so `poll` sees them;
/// SIGTERM and SIGHUP also raise a flag, as they end the session.
pub struct Signals {
    read: UnixStream,
    ids: Vec<signal_hook::SigId>,
    term: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

impl Signals {
    /// Registers the handlers. Call before forking the shell, so an early
    /// exit is not missed. Interrupts from the terminal's keys are ignored:
    /// the terminal is raw, and no key of the user's may stop the recorder.
    pub fn register() -> std::io::Result<Self> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let term = Arc::new(AtomicBool::new(false));
        let hup = Arc::new(AtomicBool::new(false));
        let mut ids = Vec::new();
        for sig in [libc::SIGWINCH, libc::SIGCHLD, libc::SIGHUP, libc::SIGTERM] {
            ids.push(signal_hook::low_level::pipe::register(sig, write.try_clone()?)?);
        }
        ids.push(signal_hook::flag::register(libc::SIGTERM, Arc::clone(&term))?);
        ids.push(signal_hook::flag::register(libc::SIGHUP, Arc::clone(&hup))?);
        for sig in [nix::sys::signal::Signal::SIGINT, nix::sys::signal::Signal::SIGQUIT, nix::sys::signal::Signal::SIGTSTP] {
            // SAFETY: ignoring a signal is always sound.
            let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) };
        }
        Ok(Self { read, ids, term, hup })
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}


/// Where keys the prefix let through go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// Prefix then `a`: open or close the approvals pane.
    TogglePane,
    /// To `custos approve` in the open pane, never to the shell.
    Pane(Vec<u8>),
    /// To the shell's side: a held line's prompt, or the shell itself.
    Shell(Vec<u8>),
}

/// Routes one key run from the prefix machine: the pane has the focus
/// while it is open.
fn route(key: Key, pane_focused: bool) -> Route {
    match key {
        Key::Toggle => Route::TogglePane,
        Key::Forward(bytes) if pane_focused => Route::Pane(bytes),
        Key::Forward(bytes) => Route::Shell(bytes),
    }
}

/// An Enter among the keys: the gate expects the line's check.
fn has_enter(keys: &[u8]) -> bool {
    keys.iter().any(|&b| b == b'\r' || b == b'\n')
}

/// The keys end the line being typed (Enter, Ctrl-C, Ctrl-D), so the input
/// recording writes it out.
fn ends_line(keys: &[u8]) -> bool {
    keys.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0x03 || b == 0x04)
}

/// The shell's layout on a terminal of `size`: above the open pane's
/// divider, or the whole terminal less the status line.
fn shell_layout(size: Size, want_status: bool, pane: Option<Split>) -> Layout {
    match pane {
        Some(s) => Layout { pane_rows: s.shell_rows, cols: s.cols, status: false },
        None => Layout::for_terminal(size.rows, size.cols, want_status),
    }
}

/// What fitting the open pane to the terminal left (see `Loop::fit_pane`).
enum PaneFit {
    NoPane,
    Split(Split),
    /// Too small for it: the pane closed, and closing resized the shell.
    Closed,
}

/// How long one call of [`Loop::read_output`] may go on reading.
#[derive(Debug, Clone, Copy)]
enum Reads {
    /// One read, for the loop: `poll` said there is output.
    Once,
    /// Up to this many, while output keeps coming (a held line's echo).
    AtMost(u32),
    /// Until the PTY is empty or this instant (the shell has exited).
    Until(Instant),
}

/// What `poll` found ready, by source.
struct Ready {
    output: PollFlags,
    keys: PollFlags,
    signals: bool,
    /// Indices of the gate's ready descriptors (see `GateSocket::fds`).
    gate: Vec<usize>,
    approvals: bool,
    launcher: bool,
    pane: PollFlags,
    exec: bool,
}

const READABLE: PollFlags = PollFlags::POLLIN.union(PollFlags::POLLHUP).union(PollFlags::POLLERR);

struct Loop<'a> {
    term: Terminal<'a>,
    master: Option<OwnedFd>,
    child: Pid,
    pipeline: Pipeline,
    to_terminal: Renderer,
    to_recording: Renderer,
    sink: &'a mut Sink,
    record_input: bool,
    gate: Option<GateRuntime>,
    pane: Option<PaneRuntime>,
    status: Status,
    started: Instant,
    last_frame: Instant,
    dirty: bool,
    to_master: Vec<u8>,
    term_buf: Vec<u8>,
    rec_buf: Vec<u8>,
    hung_up: bool,
    exit: Option<i32>,
    /// When a withheld tail (see `masker`) must be released by redrawing.
    withhold_deadline: Option<Instant>,
    /// Keys of the line being typed, recorded when it ends.
    input_line: Vec<u8>,
    last_foreground_check: Option<Instant>,
    /// Set when the session must end (a degraded session, configured so).
    ending: Option<String>,
    /// The user's terminal has a scroll region for the shell's rows.
    region_set: bool,
    containment: Containment,
    keep_leftovers: bool,
    exec: Option<ExecRuntime>,
    /// Until then, a cursor position report the terminal sends late is
    /// taken out of the input (see `cursor`).
    late_report_until: Option<Instant>,
    /// The backlog watch (see [`Options::backlog`]) and its next look.
    backlog: Option<(std::path::PathBuf, Duration, Instant)>,
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
    options: Options,
) -> std::io::Result<Ending> {
    let started = Instant::now();
    let mut lp = Loop {
        term,
        master: Some(master),
        child,
        pipeline: Pipeline::new(Size { rows: layout.pane_rows, cols: layout.cols }, options.masker),
        to_terminal: if options.inline { Renderer::inline(layout) } else { Renderer::new(layout) },
        to_recording: Renderer::new(Layout { status: false, ..layout }),
        sink,
        record_input: options.record_input,
        gate: options.gate,
        pane: options.pane.map(PaneRuntime::new),
        status: Status::new(options.status_line),
        started,
        last_frame: started,
        dirty: true,
        to_master: Vec::new(),
        term_buf: Vec::with_capacity(64 * 1024),
        rec_buf: Vec::with_capacity(64 * 1024),
        hung_up: false,
        exit: None,
        withhold_deadline: None,
        input_line: Vec::new(),
        last_foreground_check: None,
        ending: None,
        region_set: false,
        containment: options.containment,
        keep_leftovers: options.keep_leftovers,
        exec: options.exec,
        late_report_until: None,
        backlog: options.backlog.map(|(dir, after)| (dir, after, started + BACKLOG_EVERY)),
    };
    if let Some(acts) = options.stage {
        lp.record(&Event::Marker(&Marker::Stage(acts).label()));
    }
    let mut start = Vec::new();
    let (cursor, typed) = if options.start_below { cursor::ask(lp.term.input, lp.term.output) } else { (None, Vec::new()) };
    match cursor {
        Some(at) => {
            let row = lp.to_terminal.start_below(at, &mut start);
            // The shell starts on that row; the rows above are blank on
            // the inner screen and left as they are on the terminal.
            let _ = lp.pipeline.feed(format!("\x1b[{};1H", row + 1).as_bytes());
            let _ = lp.pipeline.screen_mut().take_damage();
        }
        None if options.inline => {}
        None => {
            if options.start_below {
                lp.late_report_until = Some(Instant::now() + cursor::LATE);
            }
            lp.to_terminal.start(&mut start);
        }
    }
    lp.write_terminal(&start);
    if !typed.is_empty() {
        lp.dispatch_keys(&typed);
    }
    lp.event_loop(signals)?;
    lp.finish()
}

impl Loop<'_> {
    fn event_loop(&mut self, signals: &Signals) -> std::io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        while self.exit.is_none() && !self.hung_up && self.ending.is_none() && self.master.is_some() {
            let Some(ready) = self.wait(signals)? else { continue };
            if ready.exec {
                self.exec_ready();
            }
            if ready.launcher {
                self.launcher_replies();
            }
            if ready.pane.contains(PollFlags::POLLOUT) {
                self.flush_to_pane();
            }
            if ready.pane.intersects(READABLE) {
                self.read_pane(&mut buf);
            }
            // Connections are handled last first, so indices stay valid
            // when one is dropped.
            for index in ready.gate.into_iter().rev() {
                self.gate_ready(index);
            }
            self.gate_poll();
            if ready.approvals {
                self.approvals_ready();
            }
            self.approval_status();
            self.approvals_keepalive();

            if ready.signals {
                self.handle_signals(signals)?;
            }
            if self.pipeline.screen().sync_deadline().is_some_and(|d| Instant::now() >= d) {
                self.pipeline.screen_mut().end_sync();
                self.dirty = true;
            }
            self.check_room();
            self.check_backlog();
            if self.withhold_deadline.is_some_and(|d| Instant::now() >= d) {
                self.withhold_deadline = None;
                self.dirty = true;
            }
            if ready.output.contains(PollFlags::POLLOUT) {
                self.flush_to_master();
            }
            let read_output = ready.output.intersects(READABLE);
            if read_output && !self.read_output(&mut buf, Reads::Once) {
                // The slave side is closed: no process holds the shell's
                // terminal any more. If the shell still runs, it left its
                // terminal (for another one, perhaps the user's own): the
                // session ends here and its processes with it. A shell
                // that exits closes its files before its parent can reap
                // it, so it is given a moment to become reapable first;
                // never an unbounded wait while the user's terminal is live.
                self.reap_within(EXIT_AFTER_CLOSE);
                if self.exit.is_none() {
                    self.end_session("the shell's terminal was closed while the shell ran on".into());
                }
                break;
            }
            if ready.keys.intersects(READABLE) {
                self.read_keys(&mut buf);
            }
            // Render when the shell paused, or a flood has gone a frame
            // interval without one.
            if self.dirty && !self.pipeline.screen().in_sync() && (!read_output || self.last_frame.elapsed() >= FRAME_INTERVAL) {
                self.render();
            }
        }
        Ok(())
    }

    /// Waits in `poll` for the next thing to do, or the next deadline.
    /// `None`: interrupted, look again.
    fn wait(&self, signals: &Signals) -> std::io::Result<Option<Ready>> {
        let Some(master) = self.master.as_ref() else { return Ok(None) };
        // A synchronized update (`?2026`) holds the screen back until the
        // program ends it or its deadline passes; draw nothing meanwhile.
        let sync_deadline = self.pipeline.screen().sync_deadline();
        let gate_deadline = self.gate.as_ref().and_then(|g| g.gate.deadline());
        // While paused, look often for the room the writer finds.
        let tick_deadline = self.status.paused.is_some().then(|| Instant::now() + PAUSED_RETRY);
        let approval_tick = self.gate.as_ref().and_then(|g| g.approvals.as_ref()).and_then(|a| a.deadline(Instant::now()));
        let backlog_tick = self.backlog.as_ref().map(|b| b.2);
        let deadline = [sync_deadline, self.withhold_deadline, gate_deadline, tick_deadline, approval_tick, backlog_tick].into_iter().flatten().min();
        // Something to draw: look for more output without waiting. A
        // synchronized update holds drawing back, so then wait, as for a
        // withheld tail, until its deadline.
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
        let mut master_events = if self.status.paused.is_some() { PollFlags::empty() } else { PollFlags::POLLIN };
        if !self.to_master.is_empty() {
            master_events |= PollFlags::POLLOUT;
        }
        // Stop reading keys while the shell is not taking them.
        let key_events = if self.to_master.len() < 64 * 1024 { PollFlags::POLLIN } else { PollFlags::empty() };
        let mut fds = vec![
            PollFd::new(master.as_fd(), master_events),
            PollFd::new(self.term.input, key_events),
            PollFd::new(signals.read.as_fd(), PollFlags::POLLIN),
        ];
        let mut agent_index = None;
        let mut gate_end = fds.len();
        if let Some(g) = self.gate.as_ref() {
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
            fds.push(PollFd::new(p.launcher_fd(), PollFlags::POLLIN));
            if let Some((fd, keys_waiting)) = p.open_fd() {
                let events = if keys_waiting { PollFlags::POLLIN | PollFlags::POLLOUT } else { PollFlags::POLLIN };
                pane_index = Some(fds.len());
                fds.push(PollFd::new(fd, events));
            }
        }
        let mut exec_index = None;
        if let Some(fd) = self.exec.as_ref().and_then(|x| x.events.fd()) {
            exec_index = Some(fds.len());
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let ready = |i: Option<usize>| i.and_then(|i| fds.get(i)).and_then(PollFd::revents).unwrap_or(PollFlags::empty());
        Ok(Some(Ready {
            output: ready(Some(0)),
            keys: ready(Some(1)),
            signals: ready(Some(2)).contains(PollFlags::POLLIN),
            gate: (3..gate_end).filter(|&i| ready(Some(i)).intersects(READABLE)).map(|i| i - 3).collect(),
            approvals: ready(agent_index).intersects(READABLE),
            launcher: !ready(launcher_index).is_empty(),
            pane: ready(pane_index),
            exec: ready(exec_index).intersects(READABLE),
        }))
    }

    /// The one read path for the shell's output: reads into the pipeline
    /// for as long as `reads` allows. Returns false at the end of output
    /// (the slave side closed, or the PTY gone).
    fn read_output(&mut self, buf: &mut [u8], reads: Reads) -> bool {
        let mut done = 0u32;
        loop {
            if let Reads::Until(deadline) = reads {
                if Instant::now() >= deadline {
                    return true;
                }
            }
            let Some(master) = self.master.as_ref() else { return false };
            match nix::unistd::read(master, buf) {
                Ok(0) => return false,
                Ok(n) => self.feed(buf.get(..n).unwrap_or_default()),
                // Nothing more for now; the loop's `poll` waits for it.
                Err(nix::Error::EAGAIN | nix::Error::EINTR) => return true,
                // EIO: the slave was closed by its last holder.
                Err(_) => return false,
            }
            done += 1;
            match reads {
                Reads::Once => return true,
                Reads::AtMost(n) if done >= n => return true,
                _ => {}
            }
        }
    }

    /// Feeds shell output to the pipeline, sending rows to scrollback as
    /// they pile up (see `term::pipeline::MAX_PENDING_SCROLL`).
    fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while let Some(more) = self.pipeline.feed(rest) {
            self.flush_scrolled();
            rest = more;
        }
        self.dirty = true;
        let replies = self.pipeline.screen_mut().take_replies();
        if !replies.is_empty() {
            self.to_master.extend_from_slice(&replies);
            self.flush_to_master();
        }
    }

    /// Every [`BACKLOG_EVERY`], counts the chunks that wait in the spool:
    /// when the oldest has waited longer than configured, the collector is
    /// not taking them, and the status line says how much waits.
    fn check_backlog(&mut self) {
        let Some((dir, after, next)) = self.backlog.as_mut() else { return };
        let now = Instant::now();
        if now < *next {
            return;
        }
        *next = now + BACKLOG_EVERY;
        let waiting = crate::evidence::spool::waiting(dir).unwrap_or_default();
        let age = waiting.oldest.and_then(|t| t.elapsed().ok()).unwrap_or_default();
        let news = (age > *after).then(|| {
            format!(
                "COLLECTOR NOT REACHED: {} chunk{} ({} KiB) wait in the spool, the oldest for {}",
                waiting.chunks,
                if waiting.chunks == 1 { "" } else { "s" },
                waiting.bytes.div_ceil(1024),
                crate::when::format_age(i64::try_from(age.as_secs()).unwrap_or(i64::MAX))
            )
        });
        if self.status.backlog != news {
            self.status.backlog = news;
            self.refresh_status();
        }
    }

    fn read_keys(&mut self, buf: &mut [u8]) {
        match nix::unistd::read(self.term.input, buf) {
            Ok(0) => self.hang_up(),
            Ok(n) if self.late_report_until.is_some() => {
                let mut keys = buf.get(..n).unwrap_or_default().to_vec();
                if self.late_report_until.is_some_and(|until| Instant::now() > until) {
                    self.late_report_until = None;
                } else if let Some((range, _)) = cursor::find_report(&keys) {
                    keys.drain(range);
                    self.late_report_until = None;
                }
                self.dispatch_keys(&keys);
            }
            Ok(n) => self.dispatch_keys(buf.get(..n).unwrap_or_default()),
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
            Err(_) => self.hang_up(),
        }
    }

    /// Keys from the user: through the pane's prefix when there is a pane.
    fn dispatch_keys(&mut self, keys: &[u8]) {
        let Some(pane) = self.pane.as_mut() else { return self.keys_to_shell(keys) };
        for key in pane.prefix.feed(keys) {
            match route(key, self.pane_focused()) {
                Route::TogglePane => self.toggle_pane(),
                Route::Pane(bytes) => self.keys_to_pane(&bytes),
                Route::Shell(bytes) => self.keys_to_shell(&bytes),
            }
        }
    }

    /// Keys for the shell: to a held line's prompt, or to the shell (and
    /// the gate's Enter watch, and the input recording).
    fn keys_to_shell(&mut self, keys: &[u8]) {
        if self.keys_to_hold(keys) {
            return;
        }
        if self.record_input {
            self.record_keys(keys);
        }
        if has_enter(keys) {
            self.gate_enter();
            if self.status.exec_notice.take().is_some() {
                self.refresh_status();
            }
        }
        self.to_master.extend_from_slice(keys);
        self.flush_to_master();
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
        if ends_line(keys) || self.input_line.len() >= 4096 {
            self.flush_input();
        }
    }

    fn flush_input(&mut self) {
        if self.input_line.is_empty() {
            return;
        }
        let text = self.pipeline.mask_text(&String::from_utf8_lossy(&self.input_line));
        self.input_line.clear();
        self.record(&Event::Input(&text));
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

    fn handle_signals(&mut self, signals: &Signals) -> std::io::Result<()> {
        let pipe = &signals.read;
        // The pipe carries no signal numbers, so check everything a signal
        // could have changed.
        let mut drain = [0u8; 64];
        let mut reader = pipe;
        while matches!(reader.read(&mut drain), Ok(n) if n > 0) {}
        if signals.term.swap(false, Ordering::Relaxed) {
            self.end_session("ended by SIGTERM (the system is shutting down or an administrator ended it)".into());
        }
        if signals.hup.swap(false, Ordering::Relaxed) {
            self.hang_up();
        }
        self.check_size()?;
        self.reap(false);
        Ok(())
    }

    /// Fits the pane, the shell's PTY, the screen and both renderers to the
    /// user's terminal; the recording gets a resize event when the shell's
    /// rows change.
    fn check_size(&mut self) -> std::io::Result<()> {
        let Some(size) = crate::recorder::pty::get_size(self.term.output) else { return Ok(()) };
        let want_status = self.status.shown();
        // With the pane open, the shell gets the rows above it.
        let split = match self.fit_pane(size, want_status)? {
            PaneFit::NoPane => None,
            PaneFit::Split(s) => Some(s),
            PaneFit::Closed => return Ok(()),
        };
        let layout = shell_layout(size, want_status, split);
        if layout == self.to_terminal.layout() {
            return Ok(());
        }
        let pane = Size { rows: layout.pane_rows, cols: layout.cols };
        if let Some(master) = self.master.as_ref() {
            crate::recorder::pty::set_size(master.as_fd(), pane)?;
        }
        // Rows the resize pushes off the top go to scrollback first.
        self.pipeline.screen_mut().resize(pane);
        self.render();
        self.to_terminal.resize(layout);
        self.to_recording.resize(Layout { status: false, ..layout });
        self.record(&Event::Resize { cols: pane.cols, rows: pane.rows });
        self.dirty = true;
        self.render();
        Ok(())
    }

    /// Shows what the status line's news asks for.
    fn refresh_status(&mut self) {
        match self.status.refresh(self.to_terminal.layout().cols) {
            Change::None => {}
            Change::Text => self.dirty = true,
            Change::Rows => {
                self.dirty = true;
                let _ = self.check_size();
            }
        }
    }

    /// Collects the shell's exit status. With `block`, waits for it (the PTY
    /// is closed, so it is exiting or already has).
    /// As [`Loop::reap`] without blocking, looking again for up to `wait`
    /// while the shell has not exited.
    fn reap_within(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        loop {
            self.reap(false);
            if self.exit.is_some() || Instant::now() >= until {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

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

    /// Ends the session for `why`, said on the terminal and recorded.
    fn end_session(&mut self, why: String) {
        if self.ending.is_none() {
            self.write_terminal(gate_link::ending_message(&why).as_bytes());
            self.ending = Some(why);
        }
    }

    /// Hangs up the shell's terminal and gives the shell a moment to go
    /// (bash saves its history on SIGHUP); whatever is still running then
    /// is a leftover.
    fn hang_up_shell(&mut self) {
        self.master = None;
        let deadline = Instant::now() + HANGUP_GRACE;
        while self.exit.is_none() && Instant::now() < deadline {
            self.reap(false);
            if self.exit.is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Lists what is left of the session and ends it (or, with `keep`,
    /// lets it run), then collects the shell's status if it was among
    /// them. Records what it found.
    fn end_leftovers(&mut self) {
        // Usually nothing is left: then there is nothing to freeze.
        let left = if self.containment.list().is_empty() {
            Vec::new()
        } else {
            self.containment.freeze();
            let left = self.containment.list();
            if self.keep_leftovers && self.exit.is_some() {
                self.containment.thaw();
            } else {
                self.containment.kill();
            }
            left
        };
        if !left.is_empty() {
            let kept = self.keep_leftovers && self.exit.is_some();
            let text = crate::recorder::leftovers::describe(&left, kept);
            self.record(&Event::Marker(&Marker::Leftovers(text).label()));
        }
        let deadline = Instant::now() + HANGUP_GRACE;
        while self.exit.is_none() && Instant::now() < deadline {
            self.reap(false);
            if self.exit.is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Drains what the shell left, renders the last frame, records the exit
    /// status and gives the terminal back.
    fn finish(mut self) -> std::io::Result<Ending> {
        self.close_pane(crate::evidence::marker::PaneClose::SessionEnded);
        if let Some(p) = self.pane.take() {
            p.shut_down();
        }
        if self.exit.is_some() && !self.hung_up {
            // The shell has exited; what it wrote is already in the PTY.
            // Background jobs may still hold the slave open and keep
            // writing, so the drain is bounded.
            let mut buf = vec![0u8; 64 * 1024];
            self.read_output(&mut buf, Reads::Until(Instant::now() + Duration::from_millis(500)));
        }
        self.render();
        let mut end = Vec::new();
        self.to_terminal.finish(self.pipeline.screen(), &mut end);
        self.write_terminal(&end);

        if self.exit.is_none() {
            // Hung up or ended: closing the master hangs up the shell's
            // terminal, and the kernel sends it SIGHUP.
            self.hang_up_shell();
        }
        if let Some(why) = self.ending.clone() {
            self.record(&Event::Marker(&Marker::Ended(why).label()));
        } else if self.hung_up {
            // The login's terminal closed, or root sent SIGHUP (the warden
            // passes on the terminal's): the same end for the session.
            self.record(&Event::Marker(&Marker::Ended("hung up (the login's terminal closed, or SIGHUP)".into()).label()));
        }
        self.end_leftovers();
        self.exec_finish();
        self.flush_input();
        let ending = if self.hung_up { Ending::HungUp(self.exit) } else { Ending::Exited(self.exit.unwrap_or(0)) };
        let at = self.started.elapsed();
        self.sink.write(at, &Event::Exit(ending.status())).map_err(std::io::Error::other)?;
        self.sink.finish().map_err(std::io::Error::other)?;
        Ok(ending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_PREFIX;
    use crate::recorder::pane::{split, Prefix};

    /// Runs keys through the prefix and the router as `dispatch_keys`
    /// does, with the pane opening and closing on each toggle.
    fn dispatch(keys: &[u8], mut pane_open: bool) -> Vec<Route> {
        let mut prefix = Prefix::new(DEFAULT_PREFIX);
        let mut out = Vec::new();
        for key in prefix.feed(keys) {
            let r = route(key, pane_open);
            if r == Route::TogglePane {
                pane_open = !pane_open;
            }
            out.push(r);
        }
        out
    }

    #[test]
    fn keys_go_to_the_shell_while_the_pane_is_closed() {
        assert_eq!(dispatch(b"ls\r", false), vec![Route::Shell(b"ls\r".to_vec())]);
    }

    #[test]
    fn keys_go_to_the_pane_while_it_is_open_and_never_to_the_shell() {
        assert_eq!(dispatch(b"y", true), vec![Route::Pane(b"y".to_vec())]);
    }

    #[test]
    fn the_prefix_toggles_and_the_keys_after_it_follow_the_focus() {
        assert_eq!(
            dispatch(b"ab\x1da\r\x1dacd", true),
            vec![
                Route::Pane(b"ab".to_vec()),
                Route::TogglePane,
                Route::Shell(b"\r".to_vec()),
                Route::TogglePane,
                Route::Pane(b"cd".to_vec()),
            ]
        );
    }

    #[test]
    fn the_prefix_twice_sends_the_prefix_to_whoever_has_the_focus() {
        assert_eq!(dispatch(b"\x1d\x1d", false), vec![Route::Shell(vec![0x1d])]);
        assert_eq!(dispatch(b"\x1d\x1d", true), vec![Route::Pane(vec![0x1d])]);
    }

    #[test]
    fn enter_makes_the_gate_look_other_keys_do_not() {
        assert!(has_enter(b"ls\r"));
        assert!(has_enter(b"\n"));
        assert!(!has_enter(b"ls"));
        assert!(!has_enter(b"\x03"));
    }

    #[test]
    fn a_recorded_line_ends_at_enter_ctrl_c_or_ctrl_d() {
        for keys in [&b"\r"[..], b"\n", b"x\x03", b"\x04"] {
            assert!(ends_line(keys), "{keys:?}");
        }
        assert!(!ends_line(b"echo hi"));
    }

    #[test]
    fn without_a_pane_the_shell_gets_the_terminal_less_the_status_line() {
        let size = Size { rows: 24, cols: 80 };
        assert_eq!(shell_layout(size, true, None), Layout { pane_rows: 23, cols: 80, status: true });
        assert_eq!(shell_layout(size, false, None), Layout { pane_rows: 24, cols: 80, status: false });
    }

    #[test]
    fn with_the_pane_open_the_shell_gets_the_rows_above_the_divider() {
        let size = Size { rows: 40, cols: 100 };
        let s = split(40, 100, true).unwrap();
        let layout = shell_layout(size, true, Some(s));
        assert_eq!(layout, Layout { pane_rows: s.shell_rows, cols: 100, status: false });
        assert!(layout.pane_rows < 40 - s.pane_rows);
    }
}
