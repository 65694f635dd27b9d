//! The approvals pane's stream (`p` events) as the player shows it: a
//! screen of its own, never the shell's, shown below it only when the
//! auditor asks (`p`).
//!
//! The pane's markers (`evidence::marker::PaneChange`) cut the recording
//! into spans: each `opened` starts a fresh pane on a blank terminal of the
//! size it names, `resized` changes that size, `closed` ends it. So the
//! pane at any point is its span's `p` events replayed from the span's
//! start, and a seek needs no keyframes: a pane is small and short-lived.
//! [`PaneTrack`] remembers the last screen it built and plays forward from
//! it when it can (playback), and rebuilds from the span's start when it
//! cannot (a seek back, another span).
//!
//! Pure, like the player: events in, a screen out.

use crate::evidence::asciicast::{Kind, TimedEvent};
use crate::evidence::marker::{self, PaneChange};
use crate::term::screen::{Screen, Size};

/// One pane: where it opened, at what size, and where it closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    /// Index of its `opened` marker.
    opened: usize,
    size: Size,
    /// Index of its `closed` marker, once read.
    closed: Option<usize>,
}

/// The last screen built: span `span` after the first `applied` events.
struct Built {
    span: usize,
    applied: usize,
    screen: Screen,
}

/// Where the pane was open in a recording, and its screen at any point.
#[derive(Default)]
pub struct PaneTrack {
    /// Events read so far.
    scanned: usize,
    spans: Vec<Span>,
    built: Option<Built>,
}

impl PaneTrack {
    pub fn new(events: &[TimedEvent]) -> Self {
        let mut track = Self::default();
        track.extend(events);
        track
    }

    /// Reads the events appended since the last call (a followed recording).
    pub fn extend(&mut self, events: &[TimedEvent]) {
        for (i, event) in events.iter().enumerate().skip(self.scanned) {
            if event.kind != Kind::Marker {
                continue;
            }
            match marker::read_pane(&event.data) {
                Some(PaneChange::Opened { cols, rows }) => {
                    self.spans.push(Span { opened: i, size: Size { rows, cols }, closed: None });
                }
                Some(PaneChange::Closed(_)) => {
                    if let Some(open) = self.spans.last_mut().filter(|s| s.closed.is_none()) {
                        open.closed = Some(i);
                    }
                }
                Some(PaneChange::Resized { .. } | PaneChange::Exited(_)) | None => {}
            }
        }
        self.scanned = self.scanned.max(events.len());
    }

    /// The recording opened the pane at least once.
    pub fn any(&self) -> bool {
        !self.spans.is_empty()
    }

    /// The pane's screen once the first `applied` events have been
    /// applied, or `None` where no pane is open.
    pub fn screen_at(&mut self, events: &[TimedEvent], applied: usize) -> Option<&Screen> {
        let applied = applied.min(events.len());
        // The last pane opened among the applied events, if not yet closed.
        let span = self.spans.iter().rposition(|s| s.opened < applied)?;
        let Span { opened, size, closed } = *self.spans.get(span)?;
        if closed.is_some_and(|c| c < applied) {
            return None;
        }
        let reusable = self.built.as_ref().is_some_and(|b| b.span == span && b.applied <= applied);
        if !reusable {
            self.built = Some(Built { span, applied: opened + 1, screen: Screen::new(size) });
        }
        let built = self.built.as_mut()?;
        for event in events.get(built.applied..applied).unwrap_or_default() {
            apply(&mut built.screen, event);
        }
        built.applied = applied;
        Some(&built.screen)
    }
}

/// Applies one event of an open pane's span to its screen.
fn apply(screen: &mut Screen, event: &TimedEvent) {
    match event.kind {
        Kind::Pane => {
            screen.process(event.data.as_bytes());
            super::index::settle(screen);
        }
        Kind::Marker => {
            if let Some(PaneChange::Resized { cols, rows }) = marker::read_pane(&event.data) {
                screen.resize(Size { rows, cols });
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::asciicast::Recording;

    /// A shell session whose pane opened (event 1), drew twice, was
    /// resized, drew, and closed (event 6); then the shell went on.
    const CAST: &str = concat!(
        "{\"version\":3,\"term\":{\"cols\":30,\"rows\":4}}\n",
        "[0.1, \"o\", \"$ shell\"]\n",
        "[0.1, \"m\", \"approvals pane opened (30x2)\"]\n",
        "[0.1, \"p\", \"\\u001b[1;1Hpending approvals: 0\"]\n",
        "[0.1, \"p\", \"\\u001b[2;1Hkeys: q quit\"]\n",
        "[0.1, \"m\", \"approvals pane resized (30x3)\"]\n",
        "[0.1, \"p\", \"\\u001b[3;1Hthird row\"]\n",
        "[0.1, \"m\", \"approvals pane closed (by the user)\"]\n",
        "[0.1, \"o\", \" after\"]\n",
    );

    fn events() -> Vec<TimedEvent> {
        Recording::parse(CAST).unwrap().events
    }

    fn text(track: &mut PaneTrack, events: &[TimedEvent], applied: usize) -> Option<String> {
        track.screen_at(events, applied).map(Screen::text)
    }

    #[test]
    fn the_pane_exists_only_between_its_markers() {
        let events = events();
        let mut track = PaneTrack::new(&events);
        assert!(track.any());
        assert_eq!(text(&mut track, &events, 1), None, "before it opened");
        assert_eq!(text(&mut track, &events, 2).map(|t| t.trim().to_owned()), Some(String::new()), "opened, blank");
        assert_eq!(text(&mut track, &events, 7), None, "after it closed");
        assert_eq!(text(&mut track, &events, 8), None);
    }

    #[test]
    fn the_pane_plays_forward_and_a_seek_back_rebuilds_it() {
        let events = events();
        let mut track = PaneTrack::new(&events);
        let at3 = text(&mut track, &events, 3).unwrap();
        assert!(at3.contains("pending approvals: 0") && !at3.contains("keys"), "{at3}");
        let at6 = track.screen_at(&events, 6).unwrap();
        assert_eq!(at6.size(), Size { rows: 3, cols: 30 }, "resized by its marker");
        let at6 = at6.text();
        assert!(at6.contains("pending approvals: 0") && at6.contains("keys: q quit") && at6.contains("third row"), "{at6}");
        // Back again: the same screen straight playback showed there.
        assert_eq!(text(&mut track, &events, 3).unwrap(), at3);
    }

    #[test]
    fn a_recording_without_a_pane_has_none_and_a_followed_one_finds_it() {
        let all = events();
        let mut track = PaneTrack::new(&all[..1]);
        assert!(!track.any());
        assert_eq!(text(&mut track, &all[..1], 1), None);
        track.extend(&all);
        assert!(text(&mut track, &all, 3).unwrap().contains("pending approvals"));
    }

    #[test]
    fn a_pane_never_closed_stays_open_to_the_end() {
        let events = events();
        let cut = &events[..4];
        let mut track = PaneTrack::new(cut);
        assert!(text(&mut track, cut, usize::MAX).unwrap().contains("keys: q quit"));
    }
}
