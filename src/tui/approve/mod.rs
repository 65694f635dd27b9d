//! `custos approve`: the approver's TUI.
//!
//! Layout: the pending queue on top (who, host, command, rule, age, time
//! left, quorum progress); below it the selected request's details beside
//! the requester's masked screen as it was when they asked; a footer with
//! the keys, or the prompt for a reason. `a` approves and `d` denies (both
//! ask for a reason, Enter signs and sends it), `/` filters (a substring of
//! user, host, rule or command), `?` shows the keys, `q` quits.
//!
//! [`Model`] is pure: requests and keys in, a [`Decide`] out, drawn by
//! [`draw`] with the clock passed in, so layouts are tested against
//! ratatui's `TestBackend`. The network runs on its own thread
//! (long-polling `GET /v1/approvals?state=pending&after=V&wait=20`, and
//! posting signed decisions) and talks to the loop through channels.
//!
//! The command line (`custos approve`'s flags) is `crate::cmd::approve`.

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use crate::approval::decision::Choice;
use crate::approval::wire::{RequestView, State};
use crate::tui::theme::{Role, Theme};
use crate::when::format_age;

/// What the model asks the network to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decide {
    pub request: RequestView,
    pub verdict: Choice,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Filter,
    Reason { verdict: Choice, typed: String },
    Help,
}

/// Everything the TUI shows.
pub struct Model {
    pub me: String,
    requests: Vec<RequestView>,
    pub selected: usize,
    pub filter: String,
    pub mode: Mode,
    /// The last outcome or error, and its role.
    pub message: Option<(Role, String)>,
    pub quit: bool,
    pub connected: bool,
    /// The latest screen of a followed session: session id and its text.
    pub live: Option<(String, String)>,
}

impl Model {
    pub fn new(me: &str) -> Self {
        Self {
            me: me.to_owned(),
            requests: Vec::new(),
            selected: 0,
            filter: String::new(),
            mode: Mode::Normal,
            message: None,
            quit: false,
            connected: false,
            live: None,
        }
    }

    /// The session the selected request came from: the one to follow live.
    pub fn watched_session(&self) -> Option<String> {
        self.current().map(|r| r.request.session.clone())
    }

    /// The requester's screen for `r`: live if its session is followed,
    /// else as it was when they asked; and whether it is live.
    pub fn screen_of(&self, r: &RequestView) -> (String, bool) {
        match &self.live {
            Some((session, text)) if *session == r.request.session => (text.clone(), true),
            _ => (r.request.screen.clone(), false),
        }
    }

    /// Merges changed requests: pending ones are added or replaced, the
    /// others leave the queue.
    pub fn update(&mut self, changed: Vec<RequestView>) {
        let selected_id = self.visible().get(self.selected).map(|r| r.id.clone());
        for r in changed {
            self.requests.retain(|x| x.id != r.id);
            if r.state == State::Pending {
                self.requests.push(r);
            }
        }
        self.requests.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        if let Some(id) = selected_id {
            if let Some(i) = self.visible().iter().position(|r| r.id == id) {
                self.selected = i;
            }
        }
        self.clamp();
    }

    /// The requests the filter lets through, oldest first.
    pub fn visible(&self) -> Vec<&RequestView> {
        let needle = self.filter.to_lowercase();
        self.requests
            .iter()
            .filter(|r| {
                needle.is_empty()
                    || [&r.request.user, &r.request.host, &r.request.rule, &r.request.line]
                        .iter()
                        .any(|f| f.to_lowercase().contains(&needle))
            })
            .collect()
    }

    fn clamp(&mut self) {
        let n = self.visible().len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    pub fn current(&self) -> Option<&RequestView> {
        self.visible().get(self.selected).copied()
    }

    /// One key; a decision to send when the reason prompt is confirmed.
    pub fn key(&mut self, key: KeyEvent) -> Option<Decide> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return None;
        }
        match &mut self.mode {
            Mode::Help => self.mode = Mode::Normal,
            Mode::Filter => match key.code {
                KeyCode::Enter | KeyCode::Esc => self.mode = Mode::Normal,
                KeyCode::Backspace => {
                    self.filter.pop();
                    self.clamp();
                }
                KeyCode::Char(c) => {
                    self.filter.push(c);
                    self.clamp();
                }
                _ => {}
            },
            Mode::Reason { verdict, typed } => match key.code {
                KeyCode::Esc => self.mode = Mode::Normal,
                KeyCode::Backspace => {
                    typed.pop();
                }
                KeyCode::Char(c) => typed.push(c),
                KeyCode::Enter if !typed.trim().is_empty() => {
                    let (verdict, reason) = (*verdict, typed.trim().to_owned());
                    self.mode = Mode::Normal;
                    let request = self.current()?.clone();
                    self.message = Some((Role::Muted, format!("sending: {} {}…", verdict.as_str(), crate::approval::hold::short(&request.id))));
                    return Some(Decide { request, verdict, reason });
                }
                _ => {}
            },
            Mode::Normal => match key.code {
                KeyCode::Char('q') | KeyCode::Esc => self.quit = true,
                KeyCode::Down | KeyCode::Char('j') => {
                    self.selected = self.selected.saturating_add(1);
                    self.clamp();
                }
                KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
                KeyCode::Char('/') => self.mode = Mode::Filter,
                KeyCode::Char('?') => self.mode = Mode::Help,
                KeyCode::Char(c @ ('a' | 'd')) if self.current().is_some() => {
                    let verdict = if c == 'a' { Choice::Approve } else { Choice::Deny };
                    self.mode = Mode::Reason { verdict, typed: String::new() };
                }
                _ => {}
            },
        }
        None
    }
}

/// Below this many rows the TUI draws its compact layout (see `compact`):
/// the approvals pane inside `custos-shell` is 8 to 12 rows high.
pub const COMPACT_BELOW: u16 = 16;

/// Draws the whole TUI; `now` is unix seconds.
pub fn draw(frame: &mut Frame<'_>, model: &Model, theme: &Theme, now: i64) {
    let area = frame.area();
    if area.height < COMPACT_BELOW {
        return compact::draw(frame, model, theme, now);
    }
    frame.render_widget(Block::default().style(theme.style(Role::Base)), area);
    let [queue_area, lower, footer] = Layout::vertical([Constraint::Percentage(40), Constraint::Min(6), Constraint::Length(1)]).areas(area);
    let [details_area, screen_area] = Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(lower);
    let border = theme.style(Role::Border);
    let visible = model.visible();

    let title = if model.filter.is_empty() {
        format!(" pending approvals: {} ", visible.len())
    } else {
        format!(" pending approvals: {} (filter: {}) ", visible.len(), model.filter)
    };
    let header = Row::new(["who", "host", "command", "rule", "age", "left", "quorum"]).style(theme.style(Role::Accent).add_modifier(Modifier::BOLD));
    let rows: Vec<Row<'_>> = visible
        .iter()
        .map(|r| {
            let left = r.expires_at - now;
            let left_style = if left < 60 { theme.style(Role::Warn) } else { theme.style(Role::Base) };
            Row::new(vec![
                Cell::from(r.request.user.clone()),
                Cell::from(r.request.host.clone()),
                Cell::from(r.request.line.replace('\n', "⏎")),
                Cell::from(r.request.rule.clone()),
                Cell::from(format_age(now - r.created_at)),
                Cell::from(format_age(left)).style(left_style),
                Cell::from(format!("{}/{}", r.approvals(), r.request.quorum)).style(theme.style(Role::Progress)),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(10),
            Constraint::Length(12),
            Constraint::Min(16),
            Constraint::Length(20),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(6),
        ],
    )
    .header(header)
    .row_highlight_style(theme.style(Role::Selection))
    .block(Block::default().borders(Borders::ALL).border_style(border).title(title));
    let mut state = TableState::default();
    if !visible.is_empty() {
        state.select(Some(model.selected));
    }
    frame.render_stateful_widget(table, queue_area, &mut state);

    let current = model.current();
    let details: Vec<Line<'_>> = match current {
        None => vec![Line::styled("no pending request", theme.style(Role::Muted))],
        Some(r) => {
            let q = &r.request;
            let field = |k: &str, v: String| Line::from(vec![Span::styled(format!("{k:>9} "), theme.style(Role::Muted)), Span::raw(v)]);
            let mut lines = vec![
                field("request", crate::approval::hold::short(&r.id).to_owned()),
                field("who", match &q.identity {
                    Some(id) => format!("{} ({} at {})", q.user, id.subject, id.issuer),
                    None => format!("{} (unix user, unverified)", q.user),
                }),
                field("where", format!("{} session {}", q.host, crate::approval::hold::short(&q.session))),
                field("cwd", q.cwd.clone()),
                Line::from(vec![Span::styled(format!("{:>9} ", "command"), theme.style(Role::Muted)), Span::styled(q.line.clone(), theme.style(Role::Highlight))]),
                field("programs", q.programs.join(" ")),
                field("rule", format!("{}: {}", q.rule, q.rule_message)),
                field("deciders", format!("group {}, quorum {}", q.approvers, q.quorum)),
                field("reason", q.reason.clone().unwrap_or_else(|| "(none given)".into())),
            ];
            for d in &r.decisions {
                lines.push(Line::styled(format!("{:>9} {} {}: {}", "", d.approver, d.verdict.as_str(), d.reason), theme.style(Role::Ok)));
            }
            if q.user == model.me {
                lines.push(Line::styled("this is your own request: you cannot approve it", theme.style(Role::Danger)));
            }
            lines
        }
    };
    frame.render_widget(
        Paragraph::new(details).wrap(Wrap { trim: false }).block(Block::default().borders(Borders::ALL).border_style(border).title(" details ")),
        details_area,
    );
    let (screen, live) = current.map(|r| model.screen_of(r)).unwrap_or_default();
    let screen_title = if live { " requester's screen, live (masked) " } else { " requester's screen when they asked (masked) " };
    // The bottom of the screen is where the prompt was: keep it in view.
    let inner_rows = usize::from(screen_area.height.saturating_sub(2));
    let rows: Vec<&str> = screen.lines().collect();
    let start = rows.len().saturating_sub(inner_rows);
    let shown: Vec<Line<'_>> = rows.iter().skip(start).map(|l| Line::raw((*l).to_owned())).collect();
    frame.render_widget(
        Paragraph::new(shown).block(Block::default().borders(Borders::ALL).border_style(border).title(screen_title)),
        screen_area,
    );

    frame.render_widget(Paragraph::new(footer_line(model, theme)), footer);

    if model.mode == Mode::Help {
        let w = 64.min(area.width);
        let h = u16::try_from(HELP.len() + 2).unwrap_or(11).min(area.height);
        let popup = Rect { x: area.width.saturating_sub(w) / 2, y: area.height.saturating_sub(h) / 2, width: w, height: h };
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(HELP.iter().map(|l| Line::raw(*l)).collect::<Vec<_>>())
                .style(theme.style(Role::Base))
                .block(Block::default().borders(Borders::ALL).border_style(theme.style(Role::Accent)).title(" keys ")),
            popup,
        );
    }
}

const HELP: [&str; 9] = [
    "a        approve the selected request (asks for a reason)",
    "d        deny it (asks for a reason; one denial ends it)",
    "/        filter by user, host, rule or command",
    "↑ ↓ j k  select",
    "Esc      cancel a prompt",
    "q        quit",
    "",
    "Decisions are signed with your key and bound to the",
    "request, session, host and exact command line.",
];

/// The bottom line: the reason or filter prompt, the last outcome, or the
/// keys.
fn footer_line<'a>(model: &'a Model, theme: &Theme) -> Line<'a> {
    match &model.mode {
        Mode::Reason { verdict, typed } => {
            let role = if *verdict == Choice::Approve { Role::Ok } else { Role::Danger };
            Line::from(vec![Span::styled(format!(" {} — reason: ", verdict.as_str()), theme.style(role)), Span::raw(format!("{typed}█")), Span::styled("  (Enter signs and sends, Esc cancels)", theme.style(Role::Muted))])
        }
        Mode::Filter => Line::from(vec![Span::styled(" filter: ", theme.style(Role::Accent)), Span::raw(format!("{}█", model.filter))]),
        _ => match &model.message {
            Some((role, text)) => Line::styled(format!(" {text}"), theme.style(*role)),
            None => Line::styled(
                format!(" a approve  d deny  / filter  ↑↓ select  ? help  q quit   {}", if model.connected { "● connected" } else { "○ connecting" }),
                theme.style(Role::Muted),
            ),
        },
    }
}

/// From the network thread to the loop.
enum Net {
    Changed(Vec<RequestView>),
    Connected(bool),
    Result(Role, String),
    /// A followed session's screen text.
    Screen(String, String),
}

/// Runs the TUI on this terminal against the collector at `server`, as
/// `credentials`, until the approver quits.
pub fn run(theme: Theme, server: String, credentials: Credentials) -> anyhow::Result<ExitCode> {
    use ratatui::crossterm::terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen};
    use ratatui::crossterm::ExecutableCommand as _;
    let me = credentials.name().to_owned();
    let (to_ui, from_net) = mpsc::channel::<Net>();
    let (to_net, from_ui) = tokio::sync::mpsc::unbounded_channel::<Decide>();
    let (watch, watched) = tokio::sync::watch::channel::<Option<String>>(None);
    std::thread::spawn(move || net::network(server, credentials, to_ui, from_ui, watched));

    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = std::io::stdout().execute(LeaveAlternateScreen);
            let _ = disable_raw_mode();
        }
    }
    enable_raw_mode().context("the terminal cannot be put in raw mode (is this a terminal?)")?;
    let _guard = Guard;
    std::io::stdout().execute(EnterAlternateScreen)?;
    let mut terminal = ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    let mut model = Model::new(&me);
    while !model.quit {
        while let Ok(msg) = from_net.try_recv() {
            match msg {
                Net::Changed(v) => model.update(v),
                Net::Connected(c) => model.connected = c,
                Net::Result(role, text) => model.message = Some((role, text)),
                Net::Screen(session, text) => model.live = Some((session, text)),
            }
        }
        let session = model.watched_session();
        watch.send_if_modified(|w| {
            let changed = *w != session;
            if changed {
                w.clone_from(&session);
            }
            changed
        });
        let now = crate::when::unix_now_i64();
        terminal.draw(|f| draw(f, &model, &theme, now))?;
        if event::poll(Duration::from_millis(100))? {
            if let Event::Key(k) = event::read()? {
                if k.kind != event::KeyEventKind::Release {
                    if let Some(decide) = model.key(k) {
                        let _ = to_net.send(decide);
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

mod net;
pub use net::Credentials;

mod compact;
#[cfg(test)]
mod tests;
