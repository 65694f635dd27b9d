//! The approvals pane as the session loop runs it: a second inner PTY
//! running `custos approve`, parsed into its own screen and drawn below the
//! shell's rows on the user's terminal.
//!
//! The pane's pure parts (the prefix key, the split of the terminal, paste
//! unbracketing) and its launcher live in `recorder::pane`; this file is
//! the live half, next to the loop because it owns the loop's resources
//! while the pane is open: it takes the keys from the shell, shortens the
//! shell's PTY, and adds its rows to the terminal's frames. States:
//! `Closed` → (prefix `a`) `Opening` → (the launcher's PTY arrives) `Open`
//! → (prefix `a`, the program's end, a terminal too small) `Closed`.
//!
//! The pane is part of the evidence, as a stream of its own: its screen
//! runs through a pipeline of its own (the same detectors as the shell's,
//! with their own state, since its rows are not the shell's), and a
//! renderer for a terminal the pane's size draws its frames into `p`
//! events, never into the shell's `o` events. `m` markers (see
//! `evidence::marker::PaneChange`) say when it opened and at what size,
//! when it was resized and closed and why, and how `custos approve` ended.
//! The shell's recording gets a resize event when its rows change; the
//! divider and the status line are never recorded.

use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use super::{Loop, PaneFit};
use crate::evidence::asciicast::Event;
use crate::evidence::marker::{Marker, PaneChange, PaneClose};
use crate::recorder::pane::launcher::{Launcher, Reply};
use crate::recorder::pane::{Prefix, Split};
use crate::term::masker::Masker;
use crate::term::pipeline::{Pipeline, Target};
use crate::term::render::{Layout, Renderer};
use crate::term::screen::Size;

/// What the approvals pane needs: its launcher, forked at session start,
/// and the prefix key.
pub struct PaneSetup {
    pub launcher: Launcher,
    pub prefix: u8,
}

/// The approvals pane as the loop runs it.
pub(super) struct PaneRuntime {
    launcher: Launcher,
    pub prefix: Prefix,
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
    /// The pane's screen and its own masker.
    pipeline: Pipeline,
    split: Split,
    to_pane: Vec<u8>,
    /// Draws the pane's frames for the recording, on a terminal the pane's
    /// size (the user's terminal gets `pane_overlay` instead).
    to_recording: Renderer,
    /// The screen changed since the last recorded frame.
    changed: bool,
    /// When a withheld tail on the pane must be released by a frame.
    withhold_deadline: Option<Instant>,
    /// The last frame recorded (see `record_pane`).
    last_frame: Vec<u8>,
}

impl OpenPane {
    fn new(master: OwnedFd, split: Split, masker: Option<Masker>) -> Self {
        let size = Size { rows: split.pane_rows, cols: split.cols };
        Self {
            master,
            pipeline: masker.map_or_else(|| Pipeline::unmasked(size), |m| Pipeline::new(size, m)),
            split,
            to_pane: Vec::new(),
            to_recording: Renderer::new(recording_layout(split)),
            changed: true,
            withhold_deadline: None,
            last_frame: Vec::new(),
        }
    }
}

/// The pane as its recorded frames draw it: its own rows, no status line.
fn recording_layout(split: Split) -> Layout {
    Layout { pane_rows: split.pane_rows, cols: split.cols, status: false }
}

impl PaneRuntime {
    pub fn new(setup: PaneSetup) -> Self {
        Self {
            launcher: setup.launcher,
            prefix: Prefix::new(setup.prefix),
            key_name: key_name(setup.prefix),
            state: PaneState::Closed,
            expected_exits: 0,
            last_words: None,
        }
    }

    /// The launcher's descriptor, for `poll`.
    pub fn launcher_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.launcher.fd()
    }

    /// The open pane's PTY and whether it has keys waiting, for `poll`.
    pub fn open_fd(&self) -> Option<(std::os::fd::BorrowedFd<'_>, bool)> {
        match &self.state {
            PaneState::Open(open) => Some((open.master.as_fd(), !open.to_pane.is_empty())),
            _ => None,
        }
    }

    /// Keys go to the pane while it is open.
    pub fn focused(&self) -> bool {
        matches!(self.state, PaneState::Open(_))
    }

    /// When the open pane's withheld tail must be released by a frame.
    pub fn withhold_deadline(&self) -> Option<Instant> {
        match &self.state {
            PaneState::Open(open) => open.withhold_deadline,
            _ => None,
        }
    }

    /// The split of the open pane.
    pub fn open_split(&self) -> Option<Split> {
        match &self.state {
            PaneState::Open(open) => Some(open.split),
            _ => None,
        }
    }

    /// Stops the launcher at the session's end.
    pub fn shut_down(self) {
        self.launcher.shut_down(std::time::Duration::from_millis(500));
    }
}

/// `C-]` for 0x1d, `C-a` for 0x01.
fn key_name(prefix: u8) -> String {
    let c = char::from(prefix | 0x40);
    format!("C-{}", if c.is_ascii_uppercase() { c.to_ascii_lowercase() } else { c })
}

/// The divider's text between the shell's rows and the pane's.
fn divider(key_name: &str) -> String {
    format!(" approvals \u{2500}\u{2500} {key_name} a closes \u{2500}\u{2500} keys go to the pane, not the shell")
}

/// The last non-blank line of a pane's screen, shortened for the status
/// line.
fn last_words(text: &str) -> Option<String> {
    text.lines().rev().map(str::trim).find(|l| !l.is_empty()).map(|l| l.chars().take(160).collect())
}

impl Loop<'_> {
    pub(super) fn pane_focused(&self) -> bool {
        self.pane.as_ref().is_some_and(PaneRuntime::focused)
    }

    /// Keys for the approvals pane: to its `custos approve` alone.
    pub(super) fn keys_to_pane(&mut self, keys: &[u8]) {
        if let Some(PaneState::Open(open)) = self.pane.as_mut().map(|p| &mut p.state) {
            // The terminal's modes are the shell's; the pane may want
            // pastes plain.
            if open.pipeline.screen().modes().bracketed_paste {
                open.to_pane.extend_from_slice(keys);
            } else {
                open.to_pane.extend(crate::recorder::pane::unbracket_paste(keys));
            }
        }
        self.flush_to_pane();
    }

    pub(super) fn flush_to_pane(&mut self) {
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
    pub(super) fn read_pane(&mut self, buf: &mut [u8]) {
        let Some(PaneState::Open(open)) = self.pane.as_mut().map(|p| &mut p.state) else { return };
        // Bounded, so a flooding pane cannot starve the shell.
        for _ in 0..4 {
            match nix::unistd::read(&open.master, buf) {
                Ok(0) => return self.pane_ended(),
                Ok(n) => {
                    let screen = open.pipeline.screen_mut();
                    screen.process(buf.get(..n).unwrap_or_default());
                    // A TUI draws in the alternate screen; whatever scrolls
                    // off the pane is not kept.
                    screen.clear_scrolled();
                    let replies = screen.take_replies();
                    open.to_pane.extend_from_slice(&replies);
                    // Titles, bells and clipboard writes are the shell's
                    // to send; the pane's go nowhere.
                    let _ = screen.take_passthrough();
                    open.changed = true;
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
            p.last_words = last_words(&open.pipeline.screen().text());
        }
        self.close_pane(PaneClose::Ended);
    }

    /// Prefix then `a`: open the pane, or close it.
    pub(super) fn toggle_pane(&mut self) {
        self.status.pane_notice = None;
        let want_status = self.status.shown();
        let size = crate::recorder::pty::get_size(self.term.output);
        let Some(p) = self.pane.as_mut() else { return };
        match p.state {
            PaneState::Closed => {
                let Some(size) = size else {
                    self.status.pane_notice = Some("approvals pane: the terminal's size is unknown".into());
                    return self.refresh_status();
                };
                match crate::recorder::pane::split(size.rows, size.cols, want_status) {
                    Err(e) => self.status.pane_notice = Some(format!("approvals pane: {e}")),
                    Ok(split) => match p.launcher.open(Size { rows: split.pane_rows, cols: split.cols }) {
                        Ok(()) => {
                            p.state = PaneState::Opening;
                            p.last_words = None;
                        }
                        Err(e) => self.status.pane_notice = Some(format!("approvals pane: cannot reach its launcher: {e}")),
                    },
                }
            }
            PaneState::Opening => {
                // Changed their mind: the pane is closed as it arrives.
                p.state = PaneState::Closed;
            }
            PaneState::Open(_) => self.close_pane(PaneClose::ByUser),
        }
        self.refresh_status();
    }

    /// Closes the pane, `why` as the recording tells it: its last frame and
    /// the marker are recorded, its program is stopped (unless it ended by
    /// itself or with the launcher; stopping it makes its exit no news) and
    /// the shell gets its rows back.
    pub(super) fn close_pane(&mut self, why: PaneClose) {
        if !self.pane.as_ref().is_some_and(PaneRuntime::focused) {
            return;
        }
        self.record_pane(Instant::now());
        self.record(&Event::Marker(&Marker::Pane(PaneChange::Closed(why)).label()));
        let Some(p) = self.pane.as_mut() else { return };
        // Dropping the master hangs up the pane's terminal; the launcher
        // also sends SIGTERM.
        p.state = PaneState::Closed;
        if !matches!(why, PaneClose::Ended | PaneClose::LauncherGone) {
            p.expected_exits += 1;
            let _ = p.launcher.close();
        }
        let _ = self.check_size();
        self.dirty = true;
    }

    /// Records the open pane's frame as a `p` event, when its screen
    /// changed or a withheld tail is due: drawn by the pane's own renderer
    /// under its own masker's cover, which `pane_overlay` then draws with.
    pub(super) fn record_pane(&mut self, now: Instant) {
        let Some(PaneState::Open(open)) = self.pane.as_mut().map(|p| &mut p.state) else { return };
        let due = open.withhold_deadline.is_some_and(|d| now >= d);
        if !open.changed && !due {
            return;
        }
        let mut frame = Vec::new();
        open.withhold_deadline = open.pipeline.frame(now, &mut [Target::plain(&mut open.to_recording, &mut frame)]);
        open.changed = false;
        // `custos approve` ticks ten times a second, and each tick that
        // draws nothing new still moves the cursor: a frame that only
        // repeats the last one changes nothing (frames draw at absolute
        // places, and the pane has no rows scrolling off to push), so it
        // is not recorded, rather than 400 bytes a second of an idle pane.
        if frame.is_empty() || frame == open.last_frame {
            return;
        }
        // The renderer writes only UTF-8, as for the shell's frames.
        let text = String::from_utf8_lossy(&frame);
        let at = self.started.elapsed();
        let _ = self.sink.write(at, &Event::Pane(&text));
        open.last_frame = frame;
    }

    /// What the launcher said: a pane to show, a failure, an exit.
    pub(super) fn launcher_replies(&mut self) {
        let want_status = self.status.shown();
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
                            let masker = self.pipeline.masker().map(Masker::fresh);
                            p.state = PaneState::Open(Box::new(OpenPane::new(master, split, masker)));
                            self.record(&Event::Marker(&Marker::Pane(PaneChange::Opened { cols: pane.cols, rows: pane.rows }).label()));
                            self.check_size().unwrap_or_else(|e| {
                                self.status.pane_notice = Some(format!("approvals pane: cannot resize the shell: {e}"));
                            });
                        }
                        (state, split) => {
                            if let (PaneState::Opening, Err(Some(e))) = (state, split) {
                                self.status.pane_notice = Some(format!("approvals pane: {e}"));
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
                    self.status.pane_notice = Some(format!("approvals pane: {why}"));
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
                    // After the close, whichever the loop saw first: the
                    // recording reads opened, closed, exited.
                    self.record(&Event::Marker(&Marker::Pane(PaneChange::Exited(status)).label()));
                    let Some(p) = self.pane.as_mut() else { return };
                    if !expected && status != 0 {
                        let words = p.last_words.take().map(|w| format!(": {w}")).unwrap_or_default();
                        self.status.pane_notice = Some(format!("approvals pane: custos approve exited with status {status}{words}"));
                    }
                }
                Reply::Gone => {
                    self.close_pane(PaneClose::LauncherGone);
                    self.pane = None;
                    self.status.pane_notice = Some("approvals pane: unavailable (its launcher ended)".into());
                }
            }
            self.refresh_status();
        }
    }

    /// Fits the open pane to a terminal of `size`: resizes its PTY and
    /// screen when its split changed, or closes it when the terminal is too
    /// small for it.
    pub(super) fn fit_pane(&mut self, size: Size, want_status: bool) -> std::io::Result<PaneFit> {
        let Some(PaneState::Open(open)) = self.pane.as_mut().map(|p| &mut p.state) else { return Ok(PaneFit::NoPane) };
        match crate::recorder::pane::split(size.rows, size.cols, want_status) {
            Ok(s) => {
                if s != open.split {
                    let pane = Size { rows: s.pane_rows, cols: s.cols };
                    crate::recorder::pty::set_size(open.master.as_fd(), pane)?;
                    let screen = open.pipeline.screen_mut();
                    screen.resize(pane);
                    screen.clear_scrolled();
                    // A new size: the next recorded frame draws it all.
                    open.to_recording.resize(recording_layout(s));
                    open.changed = true;
                    open.split = s;
                    self.dirty = true;
                    self.record(&Event::Marker(&Marker::Pane(PaneChange::Resized { cols: pane.cols, rows: pane.rows }).label()));
                }
                Ok(PaneFit::Split(s))
            }
            Err(e) => {
                self.status.pane_notice = Some(format!("approvals pane closed: {e}"));
                self.close_pane(PaneClose::TooSmall);
                self.refresh_status();
                Ok(PaneFit::Closed)
            }
        }
    }

    /// The split of the open pane, once the shell's renderer has made room
    /// for it.
    pub(super) fn drawn_split(&self) -> Option<Split> {
        let layout = self.to_terminal.layout();
        let split = self.pane.as_ref()?.open_split()?;
        (!layout.status && layout.pane_rows == split.shell_rows).then_some(split)
    }

    /// The divider, the pane, the status line and the pane's cursor, for
    /// the user's terminal only: the pane is recorded by `record_pane`, the
    /// divider and the status line never. The pane is drawn under the
    /// cover of its last recorded frame, so the terminal shows no more of
    /// it than the recording.
    pub(super) fn pane_overlay(&self, out: &mut Vec<u8>) {
        let status = self.status.line();
        let Some(p) = self.pane.as_ref() else { return };
        let PaneState::Open(open) = &p.state else { return };
        let split = open.split;
        crate::term::render::draw_bar(split.divider, split.cols, &divider(&p.key_name), out);
        let screen = open.pipeline.screen();
        crate::term::render::draw_screen_at(screen, open.pipeline.cover(), split.pane_top, split.cols, out);
        if let Some(text) = status {
            crate::term::render::draw_bar(split.pane_top + split.pane_rows, split.cols, text, out);
        }
        let (row, col) = screen.cursor();
        let _ = write!(out, "\x1b[{};{}H", split.pane_top + row + 1, col + 1);
        out.extend_from_slice(if screen.modes().cursor_visible { b"\x1b[?25h" } else { b"\x1b[?25l" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_is_named_as_tmux_names_it() {
        assert_eq!(key_name(0x1d), "C-]");
        assert_eq!(key_name(0x01), "C-a");
        assert_eq!(key_name(0x02), "C-b");
    }

    #[test]
    fn the_divider_says_how_to_close_the_pane() {
        assert!(divider("C-]").contains("C-] a closes"));
    }

    #[test]
    fn last_words_are_the_last_line_with_text() {
        assert_eq!(last_words("first\n  error: no collector  \n\n   \n"), Some("error: no collector".into()));
        assert_eq!(last_words("\n \n"), None);
        assert_eq!(last_words(&"x".repeat(300)).map(|w| w.len()), Some(160));
    }
}
