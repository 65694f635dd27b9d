//! One direction of the data channel (stdin, stdout or stderr) turned into
//! recordable pieces. The bytes themselves pass on untouched elsewhere; what
//! is recorded is what an auditor should read:
//!
//! - **text**, a line at a time, masked with the same detectors as the
//!   screen. A line's secret can arrive split over two reads, so the tail
//!   after the last newline is held, as the screen's masker withholds a tail
//!   that may still grow into a secret: until its newline comes, until it
//!   grows past [`MAX_HELD`], until the hold deadline (`[masking] hold_ms`,
//!   at least [`MIN_HOLD`], since a pipe's writes come further apart than a
//!   terminal's), or until the stream ends. The detectors' context (inside
//!   a key block, a table's secret column) carries from line to line.
//!   Newlines are recorded as a terminal with `onlcr` shows them (`\r\n`),
//!   so replay draws lines, not a staircase.
//! - **binary** runs (a NUL, invalid UTF-8, or mostly control bytes) become
//!   their length and SHA-256, never their bytes, unless the configuration
//!   asks for content (then up to a cap, base64).
//! - **a screen**: a stream that carries terminal control sequences (a PTY
//!   the command made itself: `script`, python's `pty.spawn`, `expect`)
//!   goes through the screen pipeline from the first sequence on, so replay
//!   shows it as the user saw it, masked as the screen masks.
//!
//! Pure: bytes and instants in, [`Piece`]s out.

use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::mask::{Context, Detectors, MaskError, MaskingConfig};
use crate::term::masker::Masker;
use crate::term::pipeline::{Pipeline, Target};
use crate::term::render::{Layout, Renderer};
use crate::term::screen::Size;

/// A held tail longer than this is recorded without waiting for its
/// newline: a line this long is data, and memory stays bounded.
pub const MAX_HELD: usize = 16 * 1024;

/// The shortest hold for a tail without a newline.
pub const MIN_HOLD: Duration = Duration::from_millis(200);

/// The screen a stream with control sequences is drawn on: a program that
/// made its own PTY without a size gets 80x24 too.
pub const SCREEN: Size = Size { rows: 24, cols: 80 };

/// What a run of binary bytes leaves in the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryPolicy {
    /// Its length and SHA-256 only.
    Hash,
    /// Also its bytes (base64), up to this many per run.
    Content { cap: usize },
}

/// One recordable piece of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Masked text, newlines as `\r\n`.
    Text(String),
    /// A frame of the screen pipeline: terminal output, masked.
    Screen(String),
    /// A run of binary bytes.
    Binary(BinaryRun),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinaryRun {
    pub bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// The first bytes, base64, with `Content`.
    pub content: Option<String>,
    /// `content` stops short of the run.
    pub truncated: bool,
}

/// Masks text a line at a time, carrying the detectors' context.
pub struct LineMasker {
    detectors: Detectors,
    context: Context,
    enabled: bool,
    glyph: char,
}

impl LineMasker {
    pub fn new(config: &MaskingConfig) -> Result<Self, MaskError> {
        Ok(Self { detectors: Detectors::new(config)?, context: Context::new(), enabled: config.enabled, glyph: config.glyph })
    }

    /// Masks one piece of text on its own (a command line), carrying no
    /// context to or from the stream's lines.
    pub fn mask_alone(&self, text: &str) -> String {
        let lines: Vec<&str> = text.split('\n').collect();
        let mut masker = Self { detectors: self.detectors.clone(), context: Context::new(), enabled: self.enabled, glyph: self.glyph };
        masker.mask(&lines).join("\n")
    }

    /// Masks `lines` (no newlines inside), in order, as one more stretch of
    /// the stream.
    pub fn mask(&mut self, lines: &[&str]) -> Vec<String> {
        if !self.enabled {
            return lines.iter().map(|l| (*l).to_owned()).collect();
        }
        let findings = self.detectors.scan_from(&mut self.context, lines);
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let ranges: Vec<_> = findings.iter().filter(|f| f.line == i).map(|f| f.range.clone()).collect();
                if ranges.is_empty() {
                    return (*line).to_owned();
                }
                line.char_indices().map(|(pos, ch)| if ranges.iter().any(|r| r.contains(&pos)) { self.glyph } else { ch }).collect()
            })
            .collect()
    }
}

enum Mode {
    Text,
    Screen(Box<ScreenMode>),
}

struct ScreenMode {
    pipeline: Pipeline,
    renderer: Renderer,
    /// When the masker's withheld tail must be released by a frame.
    deadline: Option<Instant>,
}

/// One direction of the channel.
pub struct Stream {
    masker: LineMasker,
    /// For the screen pipeline, should the stream turn out to be one.
    screen_masker: Option<Masker>,
    mode: Mode,
    /// Text after the last newline (bytes, possibly ending mid-character).
    held: Vec<u8>,
    held_since: Option<Instant>,
    hold: Duration,
    binary: Option<(u64, Sha256, Vec<u8>)>,
    policy: BinaryPolicy,
}

impl Stream {
    /// A stream masked per `config`. `screen` allows the switch to the
    /// screen pipeline (output streams; typed input is not a screen).
    pub fn new(config: &MaskingConfig, policy: BinaryPolicy, screen: bool) -> Result<Self, MaskError> {
        Ok(Self {
            masker: LineMasker::new(config)?,
            screen_masker: if screen { Some(Masker::new(config)?) } else { None },
            mode: Mode::Text,
            held: Vec::new(),
            held_since: None,
            hold: Duration::from_millis(config.hold_ms).max(MIN_HOLD),
            binary: None,
            policy,
        })
    }

    /// True once the stream is drawn as a screen.
    pub fn is_screen(&self) -> bool {
        matches!(self.mode, Mode::Screen(_))
    }

    /// The pieces `bytes` complete.
    pub fn feed(&mut self, bytes: &[u8], now: Instant) -> Vec<Piece> {
        let mut out = Vec::new();
        if bytes.is_empty() {
            return out;
        }
        if let Mode::Screen(screen) = &mut self.mode {
            screen.feed(bytes, now, &mut out);
            return out;
        }
        if is_binary(bytes) {
            self.flush_text(&mut out);
            let (len, hash, content) = self.binary.get_or_insert_with(|| (0, Sha256::new(), Vec::new()));
            *len += bytes.len() as u64;
            hash.update(bytes);
            if let BinaryPolicy::Content { cap } = self.policy {
                let room = cap.saturating_sub(content.len());
                content.extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
            }
            return out;
        }
        self.flush_binary(&mut out);
        if let Some(masker) = self.screen_masker.take_if(|_| has_control_sequence(bytes)) {
            // From here on a screen: what was held is its first output.
            let mut pending = std::mem::take(&mut self.held);
            self.held_since = None;
            pending.extend_from_slice(bytes);
            let mut screen = Box::new(ScreenMode {
                pipeline: Pipeline::new(SCREEN, masker),
                renderer: Renderer::new(Layout { pane_rows: SCREEN.rows, cols: SCREEN.cols, status: false }),
                deadline: None,
            });
            screen.feed(&pending, now, &mut out);
            self.mode = Mode::Screen(screen);
            return out;
        }
        self.held.extend_from_slice(bytes);
        let cut = self.held.iter().rposition(|&b| b == b'\n').map(|i| i + 1);
        if let Some(cut) = cut {
            let lines: Vec<u8> = self.held.drain(..cut).collect();
            self.emit_lines(&lines, &mut out);
        }
        if self.held.len() > MAX_HELD {
            self.flush_text(&mut out);
        }
        self.held_since = if self.held.is_empty() { None } else { self.held_since.or(Some(now)) };
        out
    }

    /// When [`Stream::due`] has something to record without more bytes.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.mode {
            Mode::Screen(s) => s.deadline,
            Mode::Text => self.held_since.map(|t| t + self.hold),
        }
    }

    /// What is due at `now`: a held tail past its hold, a withheld frame.
    pub fn due(&mut self, now: Instant) -> Vec<Piece> {
        let mut out = Vec::new();
        match &mut self.mode {
            Mode::Screen(s) => {
                if s.deadline.is_some_and(|d| d <= now) {
                    s.frame(now, &mut out);
                }
            }
            Mode::Text => {
                if self.held_since.is_some_and(|t| t + self.hold <= now) {
                    self.flush_text(&mut out);
                }
            }
        }
        out
    }

    /// The stream ended: everything held is recorded.
    pub fn finish(&mut self, now: Instant) -> Vec<Piece> {
        let mut out = Vec::new();
        self.flush_text(&mut out);
        self.flush_binary(&mut out);
        if let Mode::Screen(s) = &mut self.mode {
            // Past every withholding deadline: the last frame shows all.
            s.frame(now + Duration::from_secs(3600), &mut out);
            s.deadline = None;
        }
        out
    }

    fn emit_lines(&mut self, bytes: &[u8], out: &mut Vec<Piece>) {
        let text = String::from_utf8_lossy(bytes);
        let ends_with_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let lines: Vec<&str> = body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
        let masked = self.masker.mask(&lines);
        let mut joined = masked.join("\r\n");
        if ends_with_newline {
            joined.push_str("\r\n");
        }
        out.push(Piece::Text(joined));
    }

    fn flush_text(&mut self, out: &mut Vec<Piece>) {
        self.held_since = None;
        if self.held.is_empty() {
            return;
        }
        let held = std::mem::take(&mut self.held);
        self.emit_lines(&held, out);
    }

    fn flush_binary(&mut self, out: &mut Vec<Piece>) {
        let Some((bytes, hash, content)) = self.binary.take() else { return };
        let content = match self.policy {
            BinaryPolicy::Hash => None,
            BinaryPolicy::Content { .. } => Some(base64::engine::general_purpose::STANDARD.encode(&content)),
        };
        let truncated = matches!(self.policy, BinaryPolicy::Content { cap } if (cap as u64) < bytes);
        out.push(Piece::Binary(BinaryRun { bytes, sha256: hex(&hash.finalize()), content, truncated }));
    }
}

impl ScreenMode {
    fn feed(&mut self, bytes: &[u8], now: Instant, out: &mut Vec<Piece>) {
        let mut rest = bytes;
        let mut frame = Vec::new();
        while let Some(more) = self.pipeline.feed(rest) {
            self.pipeline.flush_scrolled(&mut [Target::plain(&mut self.renderer, &mut frame)]);
            rest = more;
        }
        if !frame.is_empty() {
            out.push(Piece::Screen(String::from_utf8_lossy(&frame).into_owned()));
        }
        self.frame(now, out);
    }

    fn frame(&mut self, now: Instant, out: &mut Vec<Piece>) {
        let mut frame = Vec::new();
        self.deadline = self.pipeline.frame(now, &mut [Target::plain(&mut self.renderer, &mut frame)]);
        if !frame.is_empty() {
            out.push(Piece::Screen(String::from_utf8_lossy(&frame).into_owned()));
        }
    }
}

/// A read is binary if it holds a NUL, bytes that are not UTF-8 (an
/// incomplete character at the very end is not counted), or more than one
/// control byte in eight that text does not use.
pub fn is_binary(bytes: &[u8]) -> bool {
    if bytes.contains(&0) {
        return true;
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        let incomplete_tail = e.error_len().is_none() && bytes.len() - e.valid_up_to() < 4;
        if !incomplete_tail {
            return true;
        }
    }
    let odd = bytes.iter().filter(|&&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x1b | 0x08 | 0x07 | 0x0c)) || b == 0x7f).count();
    odd * 8 > bytes.len()
}

/// An escape that starts a CSI, OSC or another sequence a terminal acts on.
pub fn has_control_sequence(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| matches!(w, [0x1b, b'[' | b']' | b'(' | b')' | b'7' | b'8' | b'=' | b'>' | b'c' | b'M' | b'P']))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn stream() -> Stream {
        Stream::new(&MaskingConfig::default(), BinaryPolicy::Hash, true).unwrap()
    }

    fn texts(pieces: &[Piece]) -> String {
        pieces.iter().map(|p| if let Piece::Text(t) = p { t.as_str() } else { "" }).collect()
    }

    #[test]
    fn lines_are_masked_and_recorded_with_terminal_newlines() {
        let mut s = stream();
        let now = Instant::now();
        let out = s.feed(b"id\tpassword\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nplain\n", now);
        let text = texts(&out);
        assert!(!text.contains("wJalrXUtnFEMI"), "{text}");
        assert!(text.contains("plain\r\n"), "{text}");
        assert!(text.starts_with("id\tpassword\r\n"), "{text}");
    }

    #[test]
    fn a_secret_split_across_reads_is_held_until_its_line_ends() {
        let mut s = stream();
        let now = Instant::now();
        let first = s.feed(b"key AKIAIOSF", now);
        assert!(first.is_empty(), "the tail is held: {first:?}");
        assert!(s.deadline().is_some());
        let second = s.feed(b"ODNN7EXAMPLE done\n", now);
        let text = texts(&second);
        assert!(!text.contains("AKIA"), "{text}");
        assert!(text.contains("done"), "{text}");
        assert!(s.deadline().is_none());
    }

    #[test]
    fn a_held_tail_goes_out_at_its_deadline_or_at_the_end() {
        let mut s = stream();
        let now = Instant::now();
        assert!(s.feed(b"prompt> ", now).is_empty());
        assert!(s.due(now).is_empty());
        let due = s.deadline().unwrap();
        assert_eq!(texts(&s.due(due)), "prompt> ");
        assert!(s.feed(b"tail", now).is_empty());
        assert_eq!(texts(&s.finish(now)), "tail");
    }

    #[test]
    fn a_long_line_without_newline_is_not_held_forever() {
        let mut s = stream();
        let out = s.feed(&vec![b'x'; MAX_HELD + 1], Instant::now());
        assert_eq!(texts(&out).len(), MAX_HELD + 1);
    }

    #[test]
    fn binary_runs_become_length_and_hash() {
        let mut s = stream();
        let now = Instant::now();
        let mut out = s.feed(b"header\n", now);
        out.extend(s.feed(&[0, 1, 2, 0xff], now));
        out.extend(s.feed(&[0, 9], now));
        out.extend(s.feed(b"after\n", now));
        let runs: Vec<&BinaryRun> = out.iter().filter_map(|p| if let Piece::Binary(b) = p { Some(b) } else { None }).collect();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].bytes, 6);
        assert_eq!(runs[0].sha256, hex(&Sha256::digest([0, 1, 2, 0xff, 0, 9])));
        assert_eq!(runs[0].content, None);
        assert_eq!(texts(&out), "header\r\nafter\r\n");
    }

    #[test]
    fn binary_content_is_kept_up_to_its_cap_when_asked() {
        let mut s = Stream::new(&MaskingConfig::default(), BinaryPolicy::Content { cap: 3 }, false).unwrap();
        let now = Instant::now();
        s.feed(&[0, 1, 2, 3, 4], now);
        let out = s.finish(now);
        let Piece::Binary(run) = &out[0] else { panic!("{out:?}") };
        assert_eq!(run.content.as_deref(), Some("AAEC"));
        assert!(run.truncated);
    }

    #[test]
    fn control_sequences_switch_the_stream_to_the_screen_pipeline() {
        let mut s = stream();
        let now = Instant::now();
        let mut out = s.feed(b"$ ", now);
        out.extend(s.feed(b"\x1b[1;32mgreen\x1b[0m export TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4a\r\n", now));
        out.extend(s.finish(now));
        assert!(s.is_screen());
        let screen: String = out.iter().map(|p| if let Piece::Screen(t) = p { t.as_str() } else { "" }).collect();
        assert!(screen.contains("green"), "{screen:?}");
        assert!(!screen.contains("ghp_16C7e42F292c"), "masked on the screen too: {screen:?}");
    }

    #[test]
    fn input_streams_stay_text() {
        let mut s = Stream::new(&MaskingConfig::default(), BinaryPolicy::Hash, false).unwrap();
        let out = s.feed(b"\x1b[Aecho hi\n", Instant::now());
        assert!(!s.is_screen());
        assert_eq!(texts(&out), "\x1b[Aecho hi\r\n");
    }

    #[test]
    fn classification() {
        assert!(!is_binary("héllo wörld\n".as_bytes()));
        assert!(!is_binary(&"é".as_bytes()[..1]), "an incomplete character at the end is text");
        assert!(is_binary(&[0xff, 0xfe, b'a']));
        assert!(is_binary(b"a\0b"));
        assert!(is_binary(&[1, 2, 3, 4, b'a']));
        assert!(has_control_sequence(b"x\x1b[2J"));
        assert!(!has_control_sequence(b"x\x1b"));
    }
}
