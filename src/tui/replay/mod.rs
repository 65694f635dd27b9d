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
//! - [`browser`]: the session list's filter (times typed as in
//!   `crate::when`, the one time grammar of every command).
//! - [`source`]: where recordings come from (a `.cast` file, a session's
//!   chunk directory, a spool or a folder of either), and the verification
//!   state; [`evidence`] reads and verifies signed chunks; [`remote`] is the
//!   same over a collector (`--server`).
//! - [`app`] (state and keys) and [`ui`] (drawing), tested with ratatui's
//!   `TestBackend`; this file is the terminal edge: raw mode, the alternate
//!   screen, the event loop.
//!
//! Only `custos` (src/bin/custos.rs) reaches this module; `custos-shell`
//! links none of it.

pub mod app;
pub mod browser;
pub mod evidence;
pub mod index;
pub mod markers;
pub mod player;
pub mod remote;
pub mod source;
pub mod ui;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::terminal::{disable_raw_mode, enable_raw_mode, Clear, ClearType, EnterAlternateScreen, LeaveAlternateScreen};
use ratatui::crossterm::ExecutableCommand as _;

use self::app::App;
use self::source::{LocalSource, Source};
use crate::tui::theme::Theme;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A recording (.cast, asciicast v2 or v3) or a session's chunk
    /// directory to play, or a directory (a spool, a folder of recordings
    /// or of chunk directories) to browse. Default: the spool of the
    /// configuration. With --server: a session id to play.
    pub path: Option<PathBuf>,
    /// Browse and play from a collector (`--server URL`, with `--token` or
    /// `--token-file` as for `custos sessions`) instead of local files.
    #[command(flatten)]
    pub remote: crate::cmd::collector::Remote,
    /// Public keys to verify chunk directories with (`ed25519:...` or a key
    /// file; repeat). Default: the configured host key's, if readable.
    #[arg(long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// Play a recording that is still being written, staying at its end.
    #[arg(long)]
    pub follow: bool,
    /// A built-in theme (default, light, high-contrast) or a theme file.
    #[arg(long, default_value = "default", value_name = "NAME|FILE")]
    pub theme: String,
    /// Skip idle time longer than this many seconds (0: play it as recorded).
    #[arg(long, default_value_t = player::DEFAULT_IDLE_CAP, value_name = "SECS")]
    pub idle_cap: f64,
    /// Start at this time (1:30, 90s, 50%).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Browser filter: user name or identity contains this.
    #[arg(long)]
    pub user: Option<String>,
    /// Browser filter: host contains this.
    #[arg(long)]
    pub host: Option<String>,
    /// Browser filter: sessions active since ('2 hours ago', 2026-11-26, @UNIX).
    #[arg(long)]
    pub since: Option<String>,
    /// Browser filter: sessions that started before this.
    #[arg(long)]
    pub until: Option<String>,
    /// Browser filter: a command line contains this.
    #[arg(long)]
    pub command: Option<String>,
    /// Browser filter: this text was on screen at some point.
    #[arg(long)]
    pub text: Option<String>,
    /// Where indexes are cached (default: ~/.cache/custos/replay).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Build indexes in memory only.
    #[arg(long)]
    pub no_cache: bool,
    /// Where `w` writes screens as text (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub copy_dir: Option<PathBuf>,
}

impl Args {
    /// The browser filter given on the command line, in the filter syntax.
    fn filter(&self) -> String {
        let mut parts = Vec::new();
        for (key, value) in [
            ("user", &self.user),
            ("host", &self.host),
            ("since", &self.since),
            ("until", &self.until),
            ("cmd", &self.command),
            ("text", &self.text),
        ] {
            if let Some(v) = value {
                parts.push(format!("{key}:'{}'", v.replace('\'', "")));
            }
        }
        parts.join(" ")
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let theme = Theme::load(&args.theme)?;
    let cache = if args.no_cache { None } else { args.cache_dir.clone().or_else(index::default_cache_root) };
    let (source, file): (Box<dyn Source>, Option<String>) = match (&args.remote.server, &args.path) {
        (Some(_), path) => {
            let collector = args.remote.connect()?;
            let source = remote::ServerSource::new(collector, cache)?;
            (Box::new(source), path.as_ref().map(|p| p.display().to_string()))
        }
        (None, Some(path)) => {
            let meta = std::fs::metadata(path).with_context(|| format!("cannot open {}", path.display()))?;
            let is_session = crate::evidence::spool::SessionDir::open(path).is_ok();
            let file = (!meta.is_dir() || is_session).then(|| path.display().to_string());
            (Box::new(local(path, cache, &args.keys)?), file)
        }
        (None, None) => {
            let config = crate::config::Config::load(false, std::env::var("CUSTOS_CONFIG").ok().as_deref())?;
            let spool = config.recording.spool_dir;
            anyhow::ensure!(spool.is_dir(), "no recordings at {} (give a .cast file or a directory)", spool.display());
            (Box::new(local(&spool, cache, &args.keys)?), None)
        }
    };
    anyhow::ensure!(file.is_some() || !args.follow, "--follow plays one recording: give its .cast file (or, with --server, its session id)");

    let mut app = App::new(theme, source);
    if let Some(dir) = &args.copy_dir {
        app.copy_dir = dir.clone();
    }
    app.idle_cap = (args.idle_cap > 0.0).then_some(args.idle_cap);
    match &file {
        Some(id) => {
            app.play(id, args.follow)?;
            if let Some(view) = &mut app.player {
                if let Some(at) = &args.at {
                    let p = &mut view.player;
                    let t = crate::when::parse_offset(at, 0.0, p.duration())?;
                    p.seek(t);
                }
            }
        }
        None => app.browse(&args.filter())?,
    }
    interact(&mut app)?;
    Ok(ExitCode::SUCCESS)
}

/// A local source whose chunk directories are verified with `keys` (or
/// the configured host key; with neither, chunk directories show as
/// unverified, saying why).
fn local(path: &std::path::Path, cache: Option<PathBuf>, keys: &[String]) -> anyhow::Result<LocalSource> {
    let keys = if keys.is_empty() {
        crate::cmd::evidence::resolve_keys(&[]).unwrap_or_default()
    } else {
        crate::cmd::evidence::resolve_keys(keys)?
    };
    Ok(LocalSource::new(path, cache).with_keys(keys))
}

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

fn interact(app: &mut App) -> anyhow::Result<()> {
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
