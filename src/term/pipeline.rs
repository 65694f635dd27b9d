//! The one screen pipeline: terminal bytes in, masked frames out to any
//! number of targets.
//!
//! Every place that turns a program's output into something shown (the live
//! session, `custos mask`, the txt export) runs the same steps in the same
//! order, so they live here once and a fix lands in all of them:
//!
//! 1. **feed**: bytes go to the [`Screen`] in slices of [`FEED_SLICE`];
//!    whenever the rows waiting for scrollback reach [`MAX_PENDING_SCROLL`],
//!    [`Pipeline::feed`] stops and hands back the rest, so the caller can
//!    take those rows first ([`Pipeline::flush_scrolled`] or
//!    [`Pipeline::take_scrolled_text`]);
//! 2. **cover**: the [`Masker`] decides which cells hide a secret (a frame's
//!    cover may withhold a growing tail until a deadline);
//! 3. **scrolled rows**: formatted once under that cover ([`Scrolled::take`])
//!    and cleared from the screen after every target has them;
//! 4. **frame**: each [`Target`]'s renderer draws what changed, with its own
//!    status line, then the target's overlay (the approvals pane);
//! 5. **passthrough**: titles, bells and clipboard writes the masker lets
//!    through, last.
//!
//! The pipeline is pure: bytes and an instant in, bytes out. Where the bytes
//! go (a terminal, a recording, stdout) is the caller's business.

use std::time::Instant;

use crate::term::masker::{Cover, Masker};
use crate::term::render::{Renderer, Scrolled};
use crate::term::screen::{row_text, Screen, Size};

/// Output is fed to the screen in slices of this many bytes: one byte
/// scrolls at most one row, so a slice adds at most this many rows.
pub const FEED_SLICE: usize = 512;

/// Rows waiting to reach scrollback are taken beyond this many, so the
/// emulator never holds more than `MAX_PENDING_SCROLL + FEED_SLICE` rows:
/// under the 1,000 rows it recycles instead of freeing and reallocating,
/// and a few MiB at most.
pub const MAX_PENDING_SCROLL: usize = 400;

/// One place frames go: its renderer, the status line it shows (if any),
/// and the buffer its bytes are appended to.
pub struct Target<'a> {
    pub renderer: &'a mut Renderer,
    pub status: Option<&'a str>,
    /// Drawn after the frame and before the passthrough (the approvals
    /// pane, on the user's terminal only).
    pub overlay: &'a [u8],
    pub out: &'a mut Vec<u8>,
}

impl<'a> Target<'a> {
    /// A target with no status line and no overlay.
    pub fn plain(renderer: &'a mut Renderer, out: &'a mut Vec<u8>) -> Self {
        Self { renderer, status: None, overlay: &[], out }
    }
}

/// The screen and its masker, run as one pipeline.
pub struct Pipeline {
    screen: Screen,
    /// `None` for recordings that were masked when they were made.
    masker: Option<Masker>,
    /// The last frame's cover, for drawing the same screen somewhere no
    /// renderer's shadow follows (the approvals pane on the user's terminal).
    cover: Cover,
}

impl Pipeline {
    pub fn new(size: Size, masker: Masker) -> Self {
        Self { screen: Screen::new(size), masker: Some(masker), cover: Cover::none() }
    }

    /// A pipeline that covers nothing: for output already masked (a
    /// recording being exported).
    pub fn unmasked(size: Size) -> Self {
        Self { screen: Screen::new(size), masker: None, cover: Cover::none() }
    }

    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// The screen, for what is not a pipeline step: resizes, replies to
    /// queries, synchronized updates.
    pub fn screen_mut(&mut self) -> &mut Screen {
        &mut self.screen
    }

    pub fn masker(&self) -> Option<&Masker> {
        self.masker.as_ref()
    }

    /// Which cells the last [`Pipeline::frame`] covered: draw the screen
    /// with it anywhere else it is shown, so no copy of it shows more than
    /// the frames did.
    pub fn cover(&self) -> &Cover {
        &self.cover
    }

    /// Masks `text` as the screen would (input lines, command lines);
    /// unchanged without a masker.
    pub fn mask_text(&self, text: &str) -> String {
        self.masker.as_ref().map_or_else(|| text.to_owned(), |m| m.mask_text(text))
    }

    /// Feeds `bytes` slice by slice. Returns `None` when all were fed and no
    /// rows are due; `Some(rest)` when rows waiting for scrollback reached
    /// [`MAX_PENDING_SCROLL`]: take them, then feed `rest` (possibly empty).
    #[must_use]
    pub fn feed<'b>(&mut self, bytes: &'b [u8]) -> Option<&'b [u8]> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (slice, after) = rest.split_at(rest.len().min(FEED_SLICE));
            self.screen.process(slice);
            rest = after;
            if self.screen.scrolled_len() >= MAX_PENDING_SCROLL {
                return Some(rest);
            }
        }
        None
    }

    /// Sends the rows that scrolled off to every target's scrollback,
    /// without drawing the screen (the next frame does).
    pub fn flush_scrolled(&mut self, targets: &mut [Target<'_>]) {
        let cover = match self.masker.as_mut() {
            Some(m) => m.cover_scrolled(&self.screen),
            None => Cover::none(),
        };
        let scrolled = Scrolled::take_with(&self.screen, &cover, targets.iter().any(|t| t.renderer.is_inline()));
        self.screen.clear_scrolled();
        for t in targets.iter_mut() {
            t.renderer.push_scrolled(&scrolled, t.out);
        }
    }

    /// The rows that scrolled off, as text with trailing blanks trimmed,
    /// taken from the screen: the txt export's scrollback. Uncovered: only
    /// an [`Pipeline::unmasked`] pipeline's caller should want them.
    pub fn take_scrolled_text(&mut self) -> Vec<String> {
        let lines = self.screen.scrolled_rows().map(|r| row_text(r).trim_end().to_owned()).collect();
        self.screen.clear_scrolled();
        lines
    }

    /// Renders one frame to every target: cover, scrolled rows, the screen,
    /// each target's overlay, then the passthrough. Returns when a withheld
    /// tail (see `masker`) must be released by another frame.
    pub fn frame(&mut self, now: Instant, targets: &mut [Target<'_>]) -> Option<Instant> {
        let damage = self.screen.take_damage();
        let (cover, withhold_deadline) = match self.masker.as_mut() {
            Some(m) => m.cover(&self.screen, &damage, now),
            None => (Cover::none(), None),
        };
        let scrolled = Scrolled::take_with(&self.screen, &cover, targets.iter().any(|t| t.renderer.is_inline()));
        self.screen.clear_scrolled();
        let passthrough = self.screen.take_passthrough();
        let passthrough = match self.masker.as_ref() {
            Some(m) => m.filter_passthrough(passthrough),
            None => passthrough,
        };
        for t in targets.iter_mut() {
            t.renderer.frame(&self.screen, &scrolled, &damage, &cover, t.status, t.out);
            t.out.extend_from_slice(t.overlay);
            Renderer::passthrough(&passthrough, t.out);
        }
        self.cover = cover;
        withhold_deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::render::Layout;

    fn masker() -> Masker {
        Masker::new(&crate::mask::MaskingConfig::default()).unwrap()
    }

    fn renderer(size: Size) -> Renderer {
        Renderer::new(Layout { pane_rows: size.rows, cols: size.cols, status: false })
    }

    #[test]
    fn feed_stops_when_rows_are_due_and_resumes_with_the_rest() {
        let size = Size { rows: 5, cols: 20 };
        let mut p = Pipeline::new(size, masker());
        let bytes = "x\r\n".repeat(MAX_PENDING_SCROLL + 10);
        let rest = p.feed(bytes.as_bytes()).expect("rows are due");
        assert!(p.screen().scrolled_len() >= MAX_PENDING_SCROLL);
        assert!(rest.len() < bytes.len());
        let mut r = renderer(size);
        let mut out = Vec::new();
        p.flush_scrolled(&mut [Target::plain(&mut r, &mut out)]);
        assert_eq!(p.screen().scrolled_len(), 0);
        assert!(!out.is_empty());
        assert_eq!(p.feed(rest), None);
    }

    #[test]
    fn small_output_needs_no_flush() {
        let mut p = Pipeline::new(Size { rows: 5, cols: 20 }, masker());
        assert_eq!(p.feed(b"hello"), None);
        assert_eq!(p.screen().text().lines().next(), Some("hello"));
    }

    #[test]
    fn a_frame_goes_to_every_target_with_its_own_status_and_overlay() {
        let size = Size { rows: 4, cols: 30 };
        let mut p = Pipeline::new(size, masker());
        assert_eq!(p.feed(b"echo hi\x1b]0;title\x07"), None);
        let (mut a, mut b) = (renderer(size), renderer(size));
        let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
        let mut targets = [
            Target { renderer: &mut a, status: None, overlay: b"<pane>", out: &mut out_a },
            Target::plain(&mut b, &mut out_b),
        ];
        p.frame(Instant::now(), &mut targets);
        let (a, b) = (String::from_utf8_lossy(&out_a), String::from_utf8_lossy(&out_b));
        assert!(a.contains("echo hi") && b.contains("echo hi"));
        let overlay = a.find("<pane>").expect("overlay drawn");
        // The passthrough comes after the overlay, on both targets.
        assert!(a.find("title").is_some_and(|t| t > overlay));
        assert!(b.contains("title") && !b.contains("<pane>"));
    }

    #[test]
    fn a_secret_is_covered_on_every_target() {
        let size = Size { rows: 4, cols: 60 };
        let mut p = Pipeline::new(size, masker());
        let secret = "ghp_R4nd0mTestTokenValue0123456789abcdEF";
        assert_eq!(p.feed(format!("token {secret}\r\n").as_bytes()), None);
        let (mut a, mut b) = (renderer(size), renderer(size));
        let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
        let far = Instant::now() + std::time::Duration::from_secs(3600);
        p.frame(far, &mut [Target::plain(&mut a, &mut out_a), Target::plain(&mut b, &mut out_b)]);
        for out in [out_a, out_b] {
            let text = String::from_utf8_lossy(&out);
            assert!(text.contains("token") && !text.contains(secret), "{text}");
        }
    }

    #[test]
    fn the_last_frames_cover_draws_the_screen_elsewhere_masked() {
        let size = Size { rows: 3, cols: 60 };
        let mut p = Pipeline::new(size, masker());
        let secret = "ghp_R4nd0mTestTokenValue0123456789abcdEF";
        assert_eq!(p.feed(format!("token {secret}").as_bytes()), None);
        assert!(p.cover().rows.iter().all(Vec::is_empty), "no frame yet, nothing covered");
        let (mut r, mut out) = (renderer(size), Vec::new());
        p.frame(Instant::now() + std::time::Duration::from_secs(3600), &mut [Target::plain(&mut r, &mut out)]);
        let mut elsewhere = Vec::new();
        crate::term::render::draw_screen_at(p.screen(), p.cover(), 10, size.cols, &mut elsewhere);
        let text = String::from_utf8_lossy(&elsewhere);
        assert!(text.contains("\x1b[11;1H") && text.contains("token ") && !text.contains(secret), "{text}");
    }

    #[test]
    fn scrolled_text_is_taken_in_order() {
        let mut p = Pipeline::unmasked(Size { rows: 2, cols: 10 });
        assert_eq!(p.feed(b"one  \r\ntwo\r\nthree\r\nfour"), None);
        assert_eq!(p.take_scrolled_text(), vec!["one", "two"]);
        assert!(p.take_scrolled_text().is_empty());
    }
}
