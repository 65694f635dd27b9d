//! `custos replay`: the command line of the auditor's TUI (`crate::tui::replay`).
//!
//! The flags, and choosing what to play from them: a collector
//! (`--server`), a recording or chunk directory, a directory to browse, or by
//! default the configured spool; the browser filter the filter flags amount
//! to; where `--at` starts. The TUI itself and its terminal loop are
//! `crate::tui::replay`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::tui::replay::app::App;
use crate::tui::replay::source::{LocalSource, Source};
use crate::tui::replay::{index, player, remote};
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
    #[command(flatten)]
    pub filter: crate::cmd::collector::SessionFilter,
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
            ("user", &self.filter.user),
            ("host", &self.filter.host),
            ("since", &self.filter.since),
            ("until", &self.filter.until),
            ("cmd", &self.filter.command),
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
            let mut source = local(&spool, cache, &args.keys)?;
            // A host with a collector keeps no recording once delivered:
            // an empty spool says where they went, not just that it is empty.
            if let (Some(url), Ok(sessions)) = (&config.collector.url, source.list()) {
                anyhow::ensure!(
                    !sessions.is_empty(),
                    "no recordings left in {}: this host delivers them to the collector {url} and keeps none once it has them; \
                     play them from there: custos replay --server {url} (with CUSTOS_TOKEN or --token-file)",
                    spool.display()
                );
            }
            (Box::new(source), None)
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
    crate::tui::replay::interact(&mut app)?;
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
