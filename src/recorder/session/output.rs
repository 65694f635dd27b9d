//! Where the loop's output goes: frames and scrolled rows from the screen
//! pipeline to two targets, the user's terminal (with the status line and
//! the approvals pane) and the recording (the shell alone: the pane is
//! recorded as a stream of its own, see `pane`), and events into the
//! recording.
//!
//! Writes to the user's terminal block (a slow terminal slows the shell,
//! output is never dropped); a write that fails means the terminal hung up.

use std::io::Write as _;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::Loop;
use crate::evidence::asciicast::Event;
use crate::term::pipeline::Target;

impl Loop<'_> {
    /// Sends the rows that scrolled off to the terminal's scrollback and the
    /// recording, without drawing the screen (the next frame does).
    pub(super) fn flush_scrolled(&mut self) {
        self.term_buf.clear();
        self.rec_buf.clear();
        self.pipeline.flush_scrolled(&mut [
            Target::plain(&mut self.to_terminal, &mut self.term_buf),
            Target::plain(&mut self.to_recording, &mut self.rec_buf),
        ]);
        self.output_frame();
    }

    /// One frame to the user's terminal (with the status line and the
    /// pane) and to the recording (the shell alone).
    pub(super) fn render(&mut self) {
        self.term_buf.clear();
        self.rec_buf.clear();
        let drawn = self.drawn_split();
        // The shell's rows scroll alone while the pane is below them.
        if let Some(split) = drawn {
            let _ = write!(self.term_buf, "\x1b[1;{}r", split.shell_rows);
            self.region_set = true;
        } else if std::mem::take(&mut self.region_set) {
            self.term_buf.extend_from_slice(b"\x1b[r");
            self.to_terminal.invalidate();
        }
        // The pane's frame is recorded first: the overlay draws the pane
        // under that frame's cover.
        let now = Instant::now();
        self.record_pane(now);
        let mut overlay = Vec::new();
        if drawn.is_some() {
            self.pane_overlay(&mut overlay);
        }
        let status = self.status.line();
        let shell_deadline = self.pipeline.frame(
            now,
            &mut [
                Target { renderer: &mut self.to_terminal, status, overlay: &overlay, out: &mut self.term_buf },
                Target::plain(&mut self.to_recording, &mut self.rec_buf),
            ],
        );
        let pane_deadline = self.pane.as_ref().and_then(super::pane::PaneRuntime::withhold_deadline);
        self.withhold_deadline = [shell_deadline, pane_deadline].into_iter().flatten().min();
        self.output_frame();
        self.dirty = false;
        self.last_frame = Instant::now();
    }

    /// Sends what the renderers wrote: to the user's terminal, and to the
    /// recording as an `o` event.
    pub(super) fn output_frame(&mut self) {
        let term_buf = std::mem::take(&mut self.term_buf);
        self.write_terminal(&term_buf);
        self.term_buf = term_buf;
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

    /// Records one event, timed from the session's start. A write the
    /// spool refuses shows as a paused or ended session (see `check_room`).
    pub(super) fn record(&mut self, event: &Event<'_>) {
        let at = self.started.elapsed();
        self.record_at(at, event);
    }

    pub(super) fn record_at(&mut self, at: Duration, event: &Event<'_>) {
        let _ = self.sink.write(at, event);
    }

    pub(super) fn write_terminal(&mut self, bytes: &[u8]) {
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
}
