//! `custos replay`: the auditor's TUI. Finds sessions, plays them, seeks
//! anywhere at once, searches what was on screen, and shows whether the
//! evidence chain holds.
//!
//! The parts, pure cores first:
//!
//! - `record::Recording` (in `record.rs`): any asciicast v2 or v3 file,
//!   times made absolute.
//! - [`index`]: keyframes (screen snapshots that make a seek cost at most
//!   one interval of replay) and the text that was on screen, built in one
//!   emulator pass and cached.
//! - [`player`]: the playback state machine (play, pause, speed, step,
//!   idle cap, seek by time, command or search hit), clock passed in.
//! - [`markers`]: `m` events read as commands with verdicts and statuses.
//! - [`pane`]: the approvals pane's own stream (`p` events), a second
//!   screen shown below the shell's only when asked (`p`).
//! - [`browser`]: the session list's filter (times typed as in
//!   `crate::when`, the one time grammar of every command).
//! - [`source`]: where recordings come from (a `.cast` file, a session's
//!   chunk directory, a spool or a folder of either), and the verification
//!   state; [`evidence`] reads and verifies signed chunks; [`remote`] is the
//!   same over a collector (`--server`).
//! - [`app`] (state and keys) and [`ui`] (drawing), tested with ratatui's
//!   `TestBackend`; this file is the terminal edge: raw mode, the alternate
//!   screen, the event loop ([`interact`]).
//!
//! The command line (`custos replay`'s flags, choosing the source) is
//! `crate::cmd::replay`. Only `custos` (src/bin/custos.rs) reaches this
//! module; `custos-shell` links none of it.

pub mod app;
pub mod browser;
pub mod evidence;
pub mod index;
pub mod markers;
pub mod pane;
pub mod player;
pub mod remote;
pub mod source;
pub mod ui;

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::terminal::{disable_raw_mode, enable_raw_mode, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::crossterm::ExecutableCommand as _;

use self::app::App;

/// Puts the terminal back however the loop ends (error or panic-free
/// return alike).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let mut out = std::io::stdout();
        let _ = out.execute(DisableMouseCapture);
        let _ = out.execute(LeaveAlternateScreen);
        let _ = disable_raw_mode();
    }
}

/// Runs `app` on this terminal until it quits: raw mode and the alternate
/// screen for the duration, put back however it ends.
pub fn interact(app: &mut App) -> anyhow::Result<()> {
    enable_raw_mode().context("the terminal cannot be put in raw mode (is this a terminal?)")?;
    let _guard = TerminalGuard;
    let mut out = std::io::stdout();
    out.execute(EnterAlternateScreen)?;
    out.execute(EnableMouseCapture)?;
    let backend = ratatui::backend::CrosstermBackend::new(std::io::stdout());
    let mut terminal = ratatui::Terminal::new(backend)?;
    // Not `terminal.clear()`: it asks the terminal where the cursor is, and
    // a terminal that does not answer would stall the start.
    out.execute(Clear(ClearType::All))?;
    let mut last = Instant::now();
    while !app.quit {
        let was_playing = app.player.as_ref().is_some_and(|v| v.player.playing());
        terminal.draw(|frame| ui::draw(frame, app))?;
        if !app.to_terminal.is_empty() {
            let bytes = std::mem::take(&mut app.to_terminal);
            out.write_all(&bytes)?;
            out.flush()?;
        }
        // 30 frames a second while playing; a followed file is polled
        // every 200 ms; otherwise wake only for input.
        let following = app.player.as_ref().is_some_and(|v| v.follow.is_some());
        let wait = if was_playing {
            Duration::from_millis(33)
        } else if following {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(3600)
        };
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(key) if key.kind != event::KeyEventKind::Release => app.key(key),
                Event::Mouse(mouse) => app.mouse(mouse),
                _ => {}
            }
        }
        // Only time spent playing moves the playback clock: a pause, or
        // the wait for the key that started playing, does not.
        let now = Instant::now();
        app.tick(if was_playing { now - last } else { Duration::ZERO });
        last = now;
    }
    Ok(())
}
