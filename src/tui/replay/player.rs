//! The player core: a recording, its index, and a screen at a point in time.
//!
//! Pure and clock-free: the caller says how much wall time passed
//! ([`Player::advance`]), so tests drive it exactly and the TUI is a thin
//! shell around it. The state is "the first `applied` events have been
//! applied to `screen`", plus a playback clock in recording time.
//!
//! Every way of moving (seek by time, by event, by command, to a search hit,
//! step back) goes through [`Player::seek_event`], which either plays forward
//! from where it is (when that is no further than from the nearest keyframe)
//! or restores the keyframe and plays forward from it. Playing forward goes
//! through [`index::apply`], the same function the index builder uses, so a
//! seek lands on the screen straight playback would show.
//!
//! The approvals pane's stream is never applied to that screen: it has a
//! screen of its own ([`Player::pane_screen`], built by [`PaneTrack`]).

use std::time::Duration;

use super::index::{self, Builder, Hit, Index};
use super::markers::{self, Command};
use super::pane::PaneTrack;
use crate::evidence::asciicast::{ParseError, Recording};
use crate::term::screen::{Screen, Size};

/// Playback speeds, slowest first.
pub const SPEEDS: [f64; 7] = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];
const NORMAL_SPEED: usize = 2;

/// Idle time longer than this is skipped during playback, by default.
pub const DEFAULT_IDLE_CAP: f64 = 2.0;

pub struct Player {
    recording: Recording,
    index: Index,
    commands: Vec<Command>,
    screen: Screen,
    pane: PaneTrack,
    applied: usize,
    clock: f64,
    playing: bool,
    speed: usize,
    idle_cap: Option<f64>,
    search: Option<(String, usize)>,
}

impl Player {
    pub fn new(recording: Recording, index: Index) -> Self {
        let screen = Screen::new(Size { rows: recording.rows, cols: recording.cols });
        let commands = markers::commands(&recording.events);
        let pane = PaneTrack::new(&recording.events);
        Self {
            recording,
            index,
            commands,
            screen,
            pane,
            applied: 0,
            clock: 0.0,
            playing: false,
            speed: NORMAL_SPEED,
            idle_cap: Some(DEFAULT_IDLE_CAP),
            search: None,
        }
    }

    /// A player for `recording`, building its index in memory.
    pub fn build(recording: Recording) -> Self {
        let index = Index::build(recording.cols, recording.rows, &recording.events);
        Self::new(recording, index)
    }

    pub fn recording(&self) -> &Recording {
        &self.recording
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    /// The approvals pane's screen where playback is, if a pane is open
    /// there: a stream of its own, never part of [`Player::screen`].
    pub fn pane_screen(&mut self) -> Option<&Screen> {
        self.pane.screen_at(&self.recording.events, self.applied)
    }

    /// The session opened the approvals pane at some point.
    pub fn has_pane(&self) -> bool {
        self.pane.any()
    }

    /// Events applied to the screen.
    pub fn applied(&self) -> usize {
        self.applied
    }

    /// The playback clock, in seconds of recording time.
    pub fn time(&self) -> f64 {
        self.clock
    }

    pub fn duration(&self) -> f64 {
        self.recording.duration()
    }

    pub fn at_end(&self) -> bool {
        self.applied >= self.recording.events.len()
    }

    pub fn playing(&self) -> bool {
        self.playing
    }

    /// Play or pause. Playing from the end starts over.
    pub fn toggle(&mut self) {
        if !self.playing && self.at_end() {
            self.seek_event(0);
        }
        self.playing = !self.playing;
    }

    pub fn pause(&mut self) {
        self.playing = false;
    }

    pub fn speed(&self) -> f64 {
        SPEEDS.get(self.speed).copied().unwrap_or(1.0)
    }

    pub fn faster(&mut self) {
        self.speed = (self.speed + 1).min(SPEEDS.len() - 1);
    }

    pub fn slower(&mut self) {
        self.speed = self.speed.saturating_sub(1);
    }

    pub fn idle_cap(&self) -> Option<f64> {
        self.idle_cap
    }

    /// `None` plays idle time as recorded.
    pub fn set_idle_cap(&mut self, cap: Option<f64>) {
        self.idle_cap = cap.filter(|c| c.is_finite() && *c >= 0.0);
    }

    /// Moves to time `t` (clamped to the recording): every event at or
    /// before `t` is applied.
    pub fn seek(&mut self, t: f64) {
        let t = if t.is_finite() { t.clamp(0.0, self.duration()) } else { 0.0 };
        let n = self.recording.events.partition_point(|e| e.time <= t);
        self.goto(n);
        self.clock = t;
    }

    /// Moves to the state after the first `n` events; the clock shows the
    /// time of the last one applied.
    pub fn seek_event(&mut self, n: usize) {
        let n = n.min(self.recording.events.len());
        self.goto(n);
        self.clock = self.time_of(n);
    }

    fn time_of(&self, applied: usize) -> f64 {
        applied.checked_sub(1).and_then(|i| self.recording.events.get(i)).map_or(0.0, |e| e.time)
    }

    fn goto(&mut self, n: usize) {
        let keyframe = self.index.keyframe_for(n);
        let from_here = n >= self.applied && keyframe.is_none_or(|k| k.event <= self.applied);
        if !from_here {
            match keyframe {
                Some(k) => {
                    self.screen = k.restore();
                    self.applied = k.event;
                }
                None => {
                    self.screen = Screen::new(Size { rows: self.recording.rows, cols: self.recording.cols });
                    self.applied = 0;
                }
            }
        }
        self.play_to(n);
    }

    fn play_to(&mut self, n: usize) {
        let end = n.min(self.recording.events.len());
        if let Some(events) = self.recording.events.get(self.applied..end) {
            for event in events {
                index::apply(&mut self.screen, event);
            }
        }
        self.applied = self.applied.max(end);
    }

    /// Applies the next event and pauses there.
    pub fn step(&mut self) {
        self.playing = false;
        self.seek_event(self.applied + 1);
    }

    /// Goes back one event and pauses there.
    pub fn step_back(&mut self) {
        self.playing = false;
        self.seek_event(self.applied.saturating_sub(1));
    }

    /// Plays for `wall` of real time at the current speed, skipping idle
    /// time beyond the cap. Stops at the end.
    pub fn advance(&mut self, wall: Duration) {
        if !self.playing {
            return;
        }
        let mut budget = wall.as_secs_f64() * self.speed();
        while let Some(next) = self.recording.events.get(self.applied) {
            let last = self.time_of(self.applied);
            let due = match self.idle_cap {
                Some(cap) => next.time.min(last + cap),
                None => next.time,
            };
            let wait = (due - self.clock).max(0.0);
            if wait > budget {
                self.clock += budget;
                return;
            }
            budget -= wait;
            self.clock = self.clock.max(next.time);
            let n = self.applied + 1;
            self.play_to(n);
        }
        self.clock = self.duration();
        self.playing = false;
    }

    /// The command the playback is in: the last marker applied.
    pub fn current_command(&self) -> Option<usize> {
        let i = self.commands.partition_point(|c| c.event < self.applied);
        i.checked_sub(1)
    }

    /// Jumps just past the marker of command `i`.
    pub fn jump_to_command(&mut self, i: usize) {
        if let Some(c) = self.commands.get(i) {
            let event = c.event;
            self.seek_event(event + 1);
        }
    }

    /// Jumps to the next command marker; false when there is none.
    pub fn next_command(&mut self) -> bool {
        let i = self.commands.partition_point(|c| c.event < self.applied);
        if i < self.commands.len() {
            self.jump_to_command(i);
            true
        } else {
            false
        }
    }

    /// Jumps to the previous command marker; false when there is none.
    pub fn prev_command(&mut self) -> bool {
        let i = self.commands.partition_point(|c| c.event + 1 < self.applied);
        match i.checked_sub(1) {
            Some(i) => {
                self.jump_to_command(i);
                true
            }
            None => false,
        }
    }

    /// Every line matching `query` in the whole session, at most `limit`.
    pub fn search_all(&self, query: &str, limit: usize) -> Vec<Hit> {
        self.index.text.search(query, 0, true, limit)
    }

    /// Jumps to the next (or previous) line matching `query` after the
    /// current position, and returns it; `None` when there is none.
    pub fn search(&mut self, query: &str, forward: bool) -> Option<Hit> {
        let at_last_hit = self
            .search
            .as_ref()
            .filter(|(q, line)| q == query && self.index_line_event(*line).is_some_and(|e| e + 1 == self.applied))
            .map(|(_, line)| *line);
        let from = match (at_last_hit, forward) {
            (Some(line), true) => line + 1,
            (Some(line), false) => line,
            (None, true) => self.index.text.first_line_at(self.applied),
            (None, false) => self.index.text.first_line_at(self.applied.saturating_sub(1)),
        };
        let hit = self.index.text.search(query, from, forward, 1).into_iter().next()?;
        self.jump_to_hit(&hit);
        self.search = Some((query.to_owned(), hit.line));
        Some(hit)
    }

    fn index_line_event(&self, line: usize) -> Option<usize> {
        self.index.text.search_line_event(line)
    }

    /// Shows the screen a search hit was on.
    pub fn jump_to_hit(&mut self, hit: &Hit) {
        self.playing = false;
        self.seek_event(hit.event + 1);
    }

    /// `--follow`: parses `lines` (complete lines appended to the
    /// recording), indexes them with `builder`, and stays at the live edge
    /// if playback was there. Returns how many events were added.
    pub fn follow(&mut self, builder: &mut Builder, lines: &str) -> Result<usize, ParseError> {
        let before = self.recording.events.len();
        let live = self.at_end();
        let mut result = Ok(());
        for line in lines.split_terminator('\n') {
            if let Err(e) = self.recording.push_line(line) {
                result = Err(e);
                break;
            }
        }
        let new = self.recording.events.get(before..).unwrap_or_default();
        builder.feed(new);
        builder.extend(&mut self.index);
        self.commands.extend(markers::commands_from(new, before));
        self.pane.extend(&self.recording.events);
        let added = self.recording.events.len() - before;
        if live && added > 0 {
            self.seek_event(self.recording.events.len());
        }
        result.map(|()| added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::replay::index::{snapshot, Spacing};

    /// An asciicast v2 text from (absolute time, code, data) events.
    fn v2(cols: u16, rows: u16, events: &[(f64, &str, String)]) -> String {
        let mut text = format!("{{\"version\": 2, \"width\": {cols}, \"height\": {rows}, \"timestamp\": 1795700000}}\n");
        for (t, code, data) in events {
            text.push_str(&serde_json::to_string(&(t, code, data)).unwrap());
            text.push('\n');
        }
        text
    }

    /// A shell session with prompts, commands (markers), coloured output,
    /// wide characters, a full-screen program, a resize and a needle.
    fn shell_session() -> Recording {
        let mut ev: Vec<(f64, &str, String)> = Vec::new();
        let mut t = 0.0;
        for i in 0..30 {
            t += 1.0;
            ev.push((t, "o", "\x1b[1;32malice@db1\x1b[0m:~$ ".into()));
            t += 0.5;
            ev.push((t, "o", format!("cmd{i}\r\n")));
            let verdict = if i % 5 == 4 { "deny" } else { "allow" };
            ev.push((t, "m", format!("{{\"command\":\"cmd{i}\",\"verdict\":\"{verdict}\",\"exit\":{}}}", i % 3)));
            t += 0.1;
            let mut out = String::new();
            for j in 0..(i % 7) * 5 {
                out.push_str(&format!("\x1b[3{}mline {i}.{j} 漢字\x1b[0m {}\r\n", j % 8, "x".repeat(j * 3 % 50)));
            }
            if i == 25 {
                out.push_str("a Needle in the haystack\r\n");
            }
            ev.push((t, "o", out));
            if i == 10 {
                t += 0.2;
                ev.push((t, "o", "\x1b[?1049h\x1b[H\x1b[2J\x1b[7m editor \x1b[0m\r\n~\r\n~".into()));
                for k in 0..12 {
                    t += 0.1;
                    ev.push((t, "o", format!("\x1b[{};3H\x1b[33medit {k} {}\x1b[0m\r\n", 2 + k % 6, "y".repeat(k * 7))));
                }
                t += 0.2;
                ev.push((t, "o", "\x1b[?1049l".into()));
            }
            if i == 20 {
                t += 0.1;
                ev.push((t, "r", "50x10".into()));
            }
        }
        t += 100.0;
        ev.push((t, "o", "logout\r\n".into()));
        ev.push((t, "x", "0".into()));
        Recording::parse(&v2(60, 12, &ev)).unwrap()
    }

    fn straight(recording: &Recording) -> Vec<String> {
        let mut screen = Screen::new(Size { rows: recording.rows, cols: recording.cols });
        let mut out = vec![snapshot(&screen)];
        for e in &recording.events {
            index::apply(&mut screen, e);
            out.push(snapshot(&screen));
        }
        out
    }

    fn player(recording: Recording) -> Player {
        let index = Index::build_with(recording.cols, recording.rows, &recording.events, Spacing { bytes: 300, secs: 5.0 });
        Player::new(recording, index)
    }

    #[test]
    fn seeking_anywhere_shows_what_straight_playback_shows() {
        let recording = shell_session();
        let expected = straight(&recording);
        let mut p = player(recording);
        assert!(p.index().keyframes.len() > 10, "{} keyframes", p.index().keyframes.len());
        assert!(p.index().keyframes.iter().any(|k| k.alternate.is_some()), "no keyframe inside the full-screen program");
        let n = expected.len();
        // Every event, visited out of order: backwards, forwards, far jumps.
        for k in 0..n {
            let target = (k * 7919) % n;
            p.seek_event(target);
            assert_eq!(p.applied(), target);
            assert_eq!(snapshot(p.screen()), expected[target], "seek to event {target} (visit {k})");
        }
    }

    #[test]
    fn seeking_by_time_applies_every_event_up_to_it() {
        let recording = shell_session();
        let times: Vec<f64> = recording.events.iter().map(|e| e.time).collect();
        let mut p = player(recording);
        for t in [0.0, 0.99, 1.0, 7.3, 20.05, 1e9, -5.0, f64::NAN] {
            p.seek(t);
            let clamped = if t.is_finite() { t.clamp(0.0, p.duration()) } else { 0.0 };
            assert_eq!(p.applied(), times.iter().filter(|&&x| x <= clamped).count(), "t={t}");
            assert_eq!(p.time(), clamped);
        }
    }

    #[test]
    fn commands_are_listed_and_navigated_in_order() {
        let mut p = player(shell_session());
        assert_eq!(p.commands().len(), 30);
        assert_eq!(p.commands()[4].ruling, crate::evidence::marker::Ruling::Deny);
        assert_eq!(p.commands()[2].exit, Some(2));
        assert_eq!(p.current_command(), None);
        assert!(p.next_command());
        assert_eq!(p.current_command(), Some(0));
        assert!(p.screen().text().contains("cmd0"));
        assert!(p.next_command() && p.next_command());
        assert_eq!(p.current_command(), Some(2));
        assert!(p.prev_command());
        assert_eq!(p.current_command(), Some(1));
        assert!(p.prev_command());
        assert!(!p.prev_command(), "there is no command before the first");
        p.seek_event(usize::MAX);
        assert!(!p.next_command(), "there is no command after the last");
        p.jump_to_command(17);
        assert_eq!(p.current_command(), Some(17));
        assert_eq!(p.applied(), p.commands()[17].event + 1);
    }

    #[test]
    fn search_finds_text_anywhere_and_jumps_to_where_it_was_shown() {
        let mut p = player(shell_session());
        // Smart case: lower case ignores case.
        let hit = p.search("needle in the", true).expect("the needle was on screen");
        assert!(hit.text.contains("a Needle in the haystack"));
        assert!(p.screen().text().contains("a Needle in the haystack"), "{}", p.screen().text());
        assert_eq!(p.search("needle", true), None, "only one needle");
        p.seek_event(usize::MAX);
        assert!(p.search("needle", false).is_some(), "found again searching backwards");
        assert_eq!(p.search_all("Needle", 10).len(), 1);
        assert!(p.search_all("NEEDLE", 10).is_empty(), "an upper-case query matches case");
        // Text drawn inside the full-screen program is found too.
        let hit = p.search("edit 11", false).unwrap();
        assert!(p.screen().modes().alternate_screen, "shown in the program's screen");
        assert_eq!(p.applied(), hit.event + 1);
        // Lines of one event are visited one by one.
        p.seek_event(0);
        let a = p.search("line 13.", true).unwrap();
        let b = p.search("line 13.", true).unwrap();
        assert!(b.line > a.line, "{a:?} {b:?}");
    }

    #[test]
    fn playback_follows_speed_and_skips_idle_time() {
        let mut p = player(shell_session());
        p.toggle();
        p.advance(Duration::from_millis(1500));
        assert_eq!(p.time(), 1.5);
        p.faster();
        assert_eq!(p.speed(), 2.0);
        p.advance(Duration::from_millis(250));
        assert_eq!(p.time(), 2.0);
        for _ in 0..10 {
            p.faster();
        }
        assert_eq!(p.speed(), 16.0);
        for _ in 0..10 {
            p.slower();
        }
        assert_eq!(p.speed(), 0.25);
        // The last 100 s of idle time take the cap, 2 s, at 1x.
        let before_logout = p.recording().events.len() - 2;
        p.seek_event(before_logout);
        p.faster();
        p.faster();
        assert_eq!(p.speed(), 1.0);
        let start = p.time();
        p.advance(Duration::from_millis(1900));
        assert!((p.time() - start - 1.9).abs() < 1e-9);
        assert!(!p.at_end());
        p.advance(Duration::from_millis(200));
        assert!(p.at_end() && !p.playing());
        // Without a cap the idle time plays as recorded.
        p.set_idle_cap(None);
        p.seek_event(before_logout);
        p.toggle();
        p.advance(Duration::from_secs(50));
        assert!(!p.at_end());
    }

    #[test]
    fn stepping_moves_one_event_and_pauses() {
        let mut p = player(shell_session());
        p.toggle();
        p.step();
        assert!(!p.playing());
        assert_eq!(p.applied(), 1);
        assert!(p.screen().text().contains("alice@db1"));
        p.step();
        p.step_back();
        assert_eq!(p.applied(), 1);
        p.step_back();
        p.step_back();
        assert_eq!(p.applied(), 0);
    }

    #[test]
    fn following_appends_events_and_stays_at_the_live_edge() {
        let text = v2(20, 4, &[(0.1, "o", "one\r\n".into())]);
        let recording = Recording::parse(&text).unwrap();
        let mut builder = Builder::new(20, 4);
        builder.feed(&recording.events);
        let index = builder.index();
        let mut p = Player::new(recording, index);
        p.seek_event(usize::MAX);
        let added = p.follow(&mut builder, "[0.5, \"o\", \"two\\r\\n\"]\n[0.6, \"m\", \"{\\\"command\\\":\\\"ls\\\"}\"]\n").unwrap();
        assert_eq!(added, 2);
        assert!(p.at_end());
        assert_eq!(p.screen().text(), "one\ntwo\n\n");
        assert_eq!(p.commands().len(), 1);
        assert_eq!(p.search_all("two", 5).len(), 1);
        // A broken line is reported, the good ones before it are kept.
        let err = p.follow(&mut builder, "[0.7, \"o\", \"three\\r\\n\"]\n[oops\n").unwrap_err();
        assert!(err.to_string().contains("line 6"), "{err}");
        assert!(p.screen().text().contains("three"));
    }
}
