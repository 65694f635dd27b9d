//! The TUI's state and what each key does: no terminal here, so the
//! snapshot tests drive [`App::key`] and draw into ratatui's `TestBackend`.
//! The terminal edge (raw mode, the event loop) is in `mod.rs`.

use std::path::PathBuf;
use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};

use super::browser::{Browser, Filter};
use super::index::{Builder, Hit};
use super::player::Player;
use super::source::{SessionSummary, Source, Tail, Verification};
use crate::when;
use crate::tui::theme::{Role, Theme};

/// Matches listed in the search results pane, at most.
pub const RESULT_LIMIT: usize = 500;

/// A line of input being typed at the bottom of the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PromptKind {
    Search,
    GoTo,
    Filter,
}

#[derive(Clone, Debug)]
pub struct Prompt {
    pub kind: PromptKind,
    pub text: String,
}

/// Which side pane of the player has the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Screen,
    Commands,
    Results,
}

/// A session being played.
pub struct PlayerView {
    pub player: Player,
    pub summary: SessionSummary,
    pub follow: Option<(Builder, Box<dyn Tail>)>,
    pub focus: Focus,
    pub command_sel: usize,
    pub query: Option<String>,
    pub results: Vec<Hit>,
    pub result_sel: usize,
    /// Where the timeline bar was drawn (x, y, width), for mouse seeks.
    pub timeline: Option<(u16, u16, u16)>,
    /// The approvals pane's stream is shown below the shell's screen
    /// (`p`). Hidden at first: the shell's screen is what the session
    /// showed in its own rows, and the pane is a second stream beside it.
    pub show_pane: bool,
    /// The side pane (session facts, commands, matches) is shown (`v`).
    /// Hidden, the recorded screen has the window's whole width.
    pub show_side: bool,
}

impl PlayerView {
    pub fn new(player: Player, summary: SessionSummary) -> Self {
        Self {
            player,
            summary,
            follow: None,
            focus: Focus::Screen,
            command_sel: 0,
            query: None,
            results: Vec::new(),
            result_sel: 0,
            timeline: None,
            show_pane: false,
            show_side: true,
        }
    }
}

pub struct App {
    pub theme: Theme,
    pub source: Box<dyn Source>,
    pub browser: Option<Browser>,
    pub player: Option<PlayerView>,
    pub prompt: Option<Prompt>,
    pub help: bool,
    pub message: Option<(String, Role)>,
    pub quit: bool,
    /// Where `w` writes the screen as text.
    pub copy_dir: PathBuf,
    /// Bytes for the terminal itself (OSC 52 copies), written after a draw.
    pub to_terminal: Vec<u8>,
    /// "Now" for filters, passed in so tests are stable.
    pub now: u64,
    /// Idle time skipped in every session played (`--idle-cap`).
    pub idle_cap: Option<f64>,
}

impl App {
    pub fn new(theme: Theme, source: Box<dyn Source>) -> Self {
        Self {
            theme,
            source,
            browser: None,
            player: None,
            prompt: None,
            help: false,
            message: None,
            quit: false,
            copy_dir: PathBuf::from("."),
            to_terminal: Vec::new(),
            now: when::unix_now(),
            idle_cap: Some(super::player::DEFAULT_IDLE_CAP),
        }
    }

    /// Opens the browser on the source's sessions, filtered by `filter`.
    pub fn browse(&mut self, filter: &str) -> anyhow::Result<()> {
        let sessions = self.source.list()?;
        let mut browser = Browser::new(sessions);
        if !filter.trim().is_empty() {
            let parsed = Filter::parse(filter, self.now)?;
            browser.apply(filter, parsed, self.source.as_mut());
        }
        self.browser = Some(browser);
        Ok(())
    }

    /// Plays session `id`; with `follow`, keeps reading what is appended.
    pub fn play(&mut self, id: &str, follow: bool) -> anyhow::Result<()> {
        let view = if follow {
            let (opened, builder, tail) = self.source.follow(id)?;
            let mut player = Player::new(opened.recording, opened.index);
            player.seek_event(usize::MAX);
            let mut view = PlayerView::new(player, opened.summary);
            view.follow = Some((builder, tail));
            view
        } else {
            let opened = self.source.open(id)?;
            PlayerView::new(Player::new(opened.recording, opened.index), opened.summary)
        };
        let mut view = view;
        view.player.set_idle_cap(self.idle_cap);
        self.player = Some(view);
        Ok(())
    }

    /// Time passes: playback advances and a followed file is read.
    pub fn tick(&mut self, elapsed: Duration) {
        let Some(view) = &mut self.player else { return };
        view.player.advance(elapsed);
        if let Some((builder, tail)) = &mut view.follow {
            match tail.poll() {
                Ok(lines) if !lines.is_empty() => {
                    if let Err(e) = view.player.follow(builder, &lines) {
                        self.message = Some((format!("the live recording has a bad line: {e}"), Role::Danger));
                    }
                }
                Ok(_) => {}
                Err(e) => self.message = Some((e.to_string(), Role::Danger)),
            }
        }
    }

    /// Whether something moves on screen without a key: playing, following.
    pub fn animating(&self) -> bool {
        self.player.as_ref().is_some_and(|v| v.player.playing() || v.follow.is_some())
    }

    pub fn key(&mut self, key: KeyEvent) {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if self.prompt.is_some() {
            self.prompt_key(key);
            return;
        }
        if self.help {
            self.help = false;
            return;
        }
        self.message = None;
        if key.code == KeyCode::Char('?') {
            self.help = true;
            return;
        }
        if self.player.is_some() {
            self.player_key(key);
        } else {
            self.browser_key(key);
        }
    }

    fn open_prompt(&mut self, kind: PromptKind, text: String) {
        self.prompt = Some(Prompt { kind, text });
    }

    fn prompt_key(&mut self, key: KeyEvent) {
        let Some(prompt) = &mut self.prompt else { return };
        match key.code {
            KeyCode::Esc => self.prompt = None,
            KeyCode::Backspace => {
                prompt.text.pop();
            }
            KeyCode::Char(c) => prompt.text.push(c),
            KeyCode::Enter => {
                if let Some(prompt) = self.prompt.take() {
                    self.submit(prompt);
                }
            }
            _ => {}
        }
    }

    fn submit(&mut self, prompt: Prompt) {
        match prompt.kind {
            PromptKind::Search => self.search(prompt.text),
            PromptKind::GoTo => {
                let Some(view) = &mut self.player else { return };
                let p = &mut view.player;
                match when::parse_offset(&prompt.text, p.time(), p.duration()) {
                    Ok(t) => {
                        p.pause();
                        p.seek(t);
                    }
                    Err(e) => self.message = Some((e.to_string(), Role::Danger)),
                }
            }
            PromptKind::Filter => {
                let Some(browser) = &mut self.browser else { return };
                match Filter::parse(&prompt.text, self.now) {
                    Ok(filter) => {
                        browser.apply(&prompt.text, filter, self.source.as_mut());
                        let n = browser.visible.len();
                        self.message = Some((format!("{n} of {} sessions match", browser.sessions.len()), Role::Muted));
                    }
                    Err(e) => self.message = Some((e.to_string(), Role::Danger)),
                }
            }
        }
    }

    /// A new search: lists every match and jumps to the next one.
    fn search(&mut self, query: String) {
        let Some(view) = &mut self.player else { return };
        if query.is_empty() {
            view.query = None;
            view.results.clear();
            view.focus = Focus::Screen;
            return;
        }
        view.results = view.player.search_all(&query, RESULT_LIMIT);
        view.result_sel = 0;
        if view.results.is_empty() {
            self.message = Some((format!("{query:?} was never on screen"), Role::Warn));
            view.query = Some(query);
            return;
        }
        view.focus = Focus::Results;
        self.search_step(&query, true);
        if let Some(view) = &mut self.player {
            view.query = Some(query);
        }
    }

    fn search_step(&mut self, query: &str, forward: bool) {
        let Some(view) = &mut self.player else { return };
        match view.player.search(query, forward) {
            Some(hit) => {
                view.result_sel = view.results.iter().position(|h| h.line == hit.line).unwrap_or(view.result_sel);
            }
            None => {
                let dir = if forward { "after" } else { "before" };
                self.message = Some((format!("no match for {query:?} {dir} this point"), Role::Warn));
            }
        }
    }

    fn browser_key(&mut self, key: KeyEvent) {
        let Some(browser) = &mut self.browser else {
            self.quit = true;
            return;
        };
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => self.quit = true,
            KeyCode::Up | KeyCode::Char('k') => browser.up(),
            KeyCode::Down | KeyCode::Char('j') => browser.down(),
            KeyCode::Char('/') | KeyCode::Char('f') => {
                let text = browser.filter_text.clone();
                self.open_prompt(PromptKind::Filter, text);
            }
            KeyCode::Enter => {
                if let Some(id) = browser.selected().map(|s| s.id.clone()) {
                    if let Err(e) = self.play(&id, false) {
                        self.message = Some((format!("{e:#}"), Role::Danger));
                    }
                }
            }
            _ => {}
        }
    }

    fn player_key(&mut self, key: KeyEvent) {
        let Some(view) = &mut self.player else { return };
        // Lists take the arrows and Enter while they have focus.
        if view.focus != Focus::Screen {
            let (len, sel) = match view.focus {
                Focus::Commands => (view.player.commands().len(), &mut view.command_sel),
                _ => (view.results.len(), &mut view.result_sel),
            };
            match key.code {
                KeyCode::Up | KeyCode::Char('k') => {
                    *sel = sel.saturating_sub(1);
                    return;
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    if *sel + 1 < len {
                        *sel += 1;
                    }
                    return;
                }
                KeyCode::Enter => {
                    let i = *sel;
                    if view.focus == Focus::Commands {
                        view.player.pause();
                        view.player.jump_to_command(i);
                    } else if let Some(hit) = view.results.get(i).cloned() {
                        view.player.jump_to_hit(&hit);
                    }
                    return;
                }
                KeyCode::Esc => {
                    view.focus = Focus::Screen;
                    return;
                }
                _ => {}
            }
        }
        let p = &mut view.player;
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => {
                if self.browser.is_some() {
                    self.player = None;
                } else {
                    self.quit = true;
                }
            }
            KeyCode::Char(' ') => p.toggle(),
            KeyCode::Char('.') | KeyCode::Char('s') => p.step(),
            KeyCode::Char(',') => p.step_back(),
            KeyCode::Right | KeyCode::Char('l') => p.seek(p.time() + 5.0),
            KeyCode::Left | KeyCode::Char('h') => p.seek(p.time() - 5.0),
            KeyCode::PageDown | KeyCode::Char('L') => p.seek(p.time() + 60.0),
            KeyCode::PageUp | KeyCode::Char('H') => p.seek(p.time() - 60.0),
            KeyCode::Home => p.seek(0.0),
            KeyCode::End => p.seek_event(usize::MAX),
            KeyCode::Char('+') | KeyCode::Char('=') => p.faster(),
            KeyCode::Char('-') => p.slower(),
            KeyCode::Char('i') => {
                let cap = if p.idle_cap().is_some() { None } else { Some(super::player::DEFAULT_IDLE_CAP) };
                p.set_idle_cap(cap);
            }
            KeyCode::Char(']') => {
                if !p.next_command() {
                    self.message = Some(("no command after this point".into(), Role::Warn));
                }
                view.command_sel = view.player.current_command().unwrap_or(0);
            }
            KeyCode::Char('[') => {
                if !p.prev_command() {
                    self.message = Some(("no command before this point".into(), Role::Warn));
                }
                view.command_sel = view.player.current_command().unwrap_or(0);
            }
            KeyCode::Tab => {
                // The lists are in the side pane: Tab brings it back.
                view.show_side = true;
                view.focus = match view.focus {
                    Focus::Screen if !view.results.is_empty() => Focus::Results,
                    Focus::Screen | Focus::Results => Focus::Commands,
                    Focus::Commands => Focus::Screen,
                };
                if view.focus == Focus::Commands {
                    view.command_sel = view.player.current_command().unwrap_or(0);
                }
            }
            KeyCode::Char('/') => self.open_prompt(PromptKind::Search, String::new()),
            KeyCode::Char('g') => self.open_prompt(PromptKind::GoTo, String::new()),
            KeyCode::Char('n') | KeyCode::Char('N') => {
                let forward = key.code == KeyCode::Char('n');
                match view.query.clone() {
                    Some(q) => self.search_step(&q, forward),
                    None => self.message = Some(("no search yet: press / to search".into(), Role::Warn)),
                }
            }
            KeyCode::Char('v') => {
                view.show_side = !view.show_side;
                if !view.show_side {
                    view.focus = Focus::Screen;
                }
                let what = if view.show_side { "shown" } else { "hidden: the screen has the whole width" };
                self.message = Some((format!("side pane {what} (v toggles)"), Role::Ok));
            }
            KeyCode::Char('p') => {
                self.message = Some(if !view.player.has_pane() {
                    ("this session never opened the approvals pane".into(), Role::Warn)
                } else {
                    view.show_pane = !view.show_pane;
                    let what = if view.show_pane { "shown below the screen" } else { "hidden" };
                    (format!("approvals pane {what} (p toggles)"), Role::Ok)
                });
            }
            KeyCode::Char('c') => self.copy_osc52(),
            KeyCode::Char('w') => self.copy_file(),
            _ => {}
        }
    }

    /// A click or drag on the timeline seeks there.
    pub fn mouse(&mut self, event: MouseEvent) {
        let Some(view) = &mut self.player else { return };
        let Some((x, y, width)) = view.timeline else { return };
        let on_bar = event.row == y && event.column >= x && event.column < x + width;
        let pressed = matches!(event.kind, MouseEventKind::Down(MouseButton::Left) | MouseEventKind::Drag(MouseButton::Left));
        if on_bar && pressed && width > 1 {
            let fraction = f64::from(event.column - x) / f64::from(width - 1);
            let t = fraction * view.player.duration();
            view.player.seek(t);
        }
    }

    /// The screen as plain text, rows trimmed; with the approvals pane
    /// shown and open here, its text follows below a divider.
    pub fn screen_text(&mut self) -> Option<String> {
        let view = self.player.as_mut()?;
        let mut text = view.player.screen().text().trim_end().to_owned() + "\n";
        if view.show_pane {
            if let Some(pane) = view.player.pane_screen() {
                text.push_str("── approvals pane ──\n");
                text.push_str(pane.text().trim_end());
                text.push('\n');
            }
        }
        Some(text)
    }

    fn copy_osc52(&mut self) {
        use base64::Engine as _;
        let Some(text) = self.screen_text() else { return };
        self.to_terminal.extend_from_slice(b"\x1b]52;c;");
        self.to_terminal.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(&text).as_bytes());
        self.to_terminal.extend_from_slice(b"\x1b\\");
        let lines = text.lines().count();
        self.message = Some((format!("copied {lines} lines to the clipboard (OSC 52; w writes a file)"), Role::Ok));
    }

    fn copy_file(&mut self) {
        let (Some(text), Some(view)) = (self.screen_text(), self.player.as_ref()) else { return };
        let stem = std::path::Path::new(&view.summary.id).file_stem().map_or_else(|| "session".into(), |s| s.to_string_lossy().into_owned());
        let at = when::format_clock(view.player.time()).replace(':', "-");
        let path = self.copy_dir.join(format!("{stem}-at-{at}.txt"));
        self.message = Some(match std::fs::write(&path, text) {
            Ok(()) => (format!("screen written to {}", path.display()), Role::Ok),
            Err(e) => (format!("cannot write {}: {e}", path.display()), Role::Danger),
        });
    }

    /// The verification state of what is playing or selected.
    pub fn verification(&self) -> Option<&Verification> {
        match (&self.player, &self.browser) {
            (Some(v), _) => Some(&v.summary.verification),
            (None, Some(b)) => b.selected().map(|s| &s.verification),
            _ => None,
        }
    }
}
