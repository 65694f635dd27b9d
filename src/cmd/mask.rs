//! `custos mask`: the session's masking pipeline without a session.
//!
//! Raw terminal bytes (as a program writes them to a PTY) come in on stdin;
//! the masked terminal bytes the user's terminal would receive go out on
//! stdout, flushed after every read, so it works in a pipe. This is how
//! operators tune masking rules against real output, and how tests check
//! masking without a PTY. The pipeline is the session's own
//! (`term::pipeline`): screen, masker, renderer, rows flushed as they
//! scroll off.
//!
//! `--explain` prints, instead of the bytes, what was masked: detector,
//! fingerprint and position, never the value.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use crate::config::Config;
use crate::term::masker::{Explained, Masker};
use crate::term::pipeline::{Pipeline, Target};
use crate::term::render::{Layout, Renderer};
use crate::term::screen::Size;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Width of the virtual terminal.
    #[arg(long, default_value_t = 80)]
    pub cols: u16,
    /// Height of the virtual terminal.
    #[arg(long, default_value_t = 24)]
    pub rows: u16,
    /// Configuration whose [masking] section applies (default: the system
    /// configuration, or the built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// List what was masked (detector, fingerprint, position) instead of
    /// writing the masked bytes.
    #[arg(long)]
    pub explain: bool,
    /// Take the input as it comes out of a PTY master, where the line
    /// discipline has already turned `\n` into `\r\n`. Without it, input is
    /// what a program writes (a file, a pipe) and each `\n` is turned into
    /// `\r\n` as a PTY would.
    #[arg(long)]
    pub pty_output: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::read(path)?,
        None => Config::load(false, None)?,
    };
    let masker = Masker::new(&config.masking).context("the [masking] configuration")?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut filter = Filter::new(Size { rows: args.rows, cols: args.cols }, masker);
    let mut input = stdin.lock();
    let mut output = stdout.lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading stdin"),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        let out = if args.pty_output { filter.feed(chunk) } else { filter.feed(&onlcr(chunk)) };
        if !args.explain && write_or_quit(&mut output, &out)? {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let out = filter.finish();
    if args.explain {
        for e in filter.explained() {
            let place = e.row.map_or_else(|| "scrollback".to_owned(), |r| format!("row {}", r + 1));
            writeln!(output, "{:<22} {}  {place}, column {}, {} cells", e.detector, e.fingerprint, e.col + 1, e.cells)?;
        }
    } else {
        write_or_quit(&mut output, &out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What a PTY's default output processing (ONLCR) does: `\n` becomes `\r\n`.
fn onlcr(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 16);
    for &b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Writes and flushes; a closed pipe (`| head`) is a clean end, not an error.
fn write_or_quit(out: &mut impl std::io::Write, bytes: &[u8]) -> anyhow::Result<bool> {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(e).context("writing stdout"),
    }
}

/// Raw terminal bytes in, masked terminal bytes out.
pub struct Filter {
    pipeline: Pipeline,
    renderer: Renderer,
    explained: Vec<Explained>,
}

impl Filter {
    pub fn new(size: Size, masker: Masker) -> Self {
        let pipeline = Pipeline::new(size, masker);
        let size = pipeline.screen().size();
        Self {
            pipeline,
            renderer: Renderer::new(Layout { pane_rows: size.rows, cols: size.cols, status: false }),
            explained: Vec::new(),
        }
    }

    /// Feeds one write of the program; returns the bytes to show for it.
    /// Anything still held back (a tail that may grow into a secret) stays
    /// blank until the next write or [`Filter::finish`].
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Some(more) = self.pipeline.feed(rest) {
            self.note();
            self.pipeline.flush_scrolled(&mut [Target::plain(&mut self.renderer, &mut out)]);
            rest = more;
        }
        // Answers to queries have nowhere to go offline.
        let _ = self.pipeline.screen_mut().take_replies();
        self.frame(Instant::now(), &mut out);
        out
    }

    /// The last frame: nothing is held any more.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let far = Instant::now() + std::time::Duration::from_secs(3600);
        self.frame(far, &mut out);
        out
    }

    /// What was masked so far (for `--explain`), first sighting of each
    /// secret only.
    pub fn explained(&self) -> &[Explained] {
        &self.explained
    }

    fn note(&mut self) {
        let Some(masker) = self.pipeline.masker() else { return };
        for e in masker.explain(self.pipeline.screen()) {
            if !self.explained.iter().any(|seen| seen.fingerprint == e.fingerprint && seen.detector == e.detector) {
                self.explained.push(e);
            }
        }
    }

    fn frame(&mut self, now: Instant, out: &mut Vec<u8>) {
        self.note();
        self.pipeline.frame(now, &mut [Target::plain(&mut self.renderer, out)]);
    }
}
