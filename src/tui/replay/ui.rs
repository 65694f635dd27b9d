//! Drawing: the app's state to a ratatui frame. Nothing here changes state
//! except recording where the timeline was drawn (for mouse seeks).
//!
//! Every colour comes from the theme's roles. The recorded screen keeps the
//! recording's own colours (that is evidence); only its default colours
//! follow the theme.

use alacritty_terminal::term::cell::Flags;
use alacritty_terminal::vte::ansi::NamedColor;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell as TableCell, Clear, List, ListItem, ListState, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::app::{App, Focus, PlayerView, PromptKind};
use super::browser::Browser;
use crate::evidence::marker::Ruling;
use super::source::Verification;
use crate::when::{format_clock, format_date};
use crate::term::screen::{is_spacer, shown_char, Cell, Color as TermColor, Screen};
use crate::tui::theme::{Role, Theme};

/// Width of the side pane (commands or search results) when the window is
/// too narrow for it and the whole recorded screen, and its minimum.
const SIDE: u16 = 38;
const MIN_SIDE: u16 = 24;

pub fn draw(frame: &mut Frame<'_>, app: &mut App) {
    let area = frame.area();
    frame.render_widget(Block::new().style(app.theme.style(Role::Base)), area);
    let [main, bottom] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    if let Some(view) = &mut app.player {
        draw_player(frame, main, &app.theme, view);
    } else if let Some(browser) = &app.browser {
        draw_browser(frame, main, &app.theme, browser, &app.source.describe());
    }
    draw_bottom(frame, bottom, app);
    if app.help {
        draw_help(frame, area, &app.theme, app.player.is_some());
    }
}

fn badge(theme: &Theme, v: &Verification) -> Span<'static> {
    match v {
        Verification::Intact => Span::styled(" ✔ CHAIN INTACT ", theme.style(Role::Ok).add_modifier(Modifier::BOLD)),
        Verification::Unknown(why) => Span::styled(format!(" UNVERIFIED: {why} "), theme.style(Role::Muted)),
        Verification::Incomplete(_) => Span::styled(" ⚠ CHAIN INCOMPLETE ", theme.style(Role::Warn).add_modifier(Modifier::BOLD)),
        Verification::Broken(_) => Span::styled(" ✖ CHAIN BROKEN ", theme.style(Role::Danger).add_modifier(Modifier::BOLD)),
    }
}

fn draw_player(frame: &mut Frame<'_>, area: Rect, theme: &Theme, view: &mut PlayerView) {
    let broken = match &view.summary.verification {
        Verification::Broken(why) => Some(why.clone()),
        _ => None,
    };
    let incomplete = match &view.summary.verification {
        Verification::Incomplete(why) => Some(why.clone()),
        _ => None,
    };
    let banner_rows = u16::from(broken.is_some() || incomplete.is_some());
    let [header, banner, body, timeline] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(banner_rows), Constraint::Min(3), Constraint::Length(1)]).areas(area);

    // Header: who, where, when; the badge on the right.
    let s = &view.summary;
    let when = s.start.map_or_else(|| "start unknown".to_owned(), format_date);
    let title = format!(" custos replay · {}@{} · {when} UTC · {} commands ", s.who(), s.host, view.player.commands().len());
    let badge = badge(theme, &s.verification);
    let badge_width = u16::try_from(badge.width()).unwrap_or(0);
    let [left, right] = Layout::horizontal([Constraint::Min(1), Constraint::Length(badge_width)]).areas(header);
    frame.render_widget(Paragraph::new(Span::styled(title, theme.style(Role::Accent))), left);
    frame.render_widget(Paragraph::new(Line::from(badge)), right);

    if let Some(why) = &broken {
        let text = format!(" ✖ EVIDENCE CHAIN BROKEN: {why}. What this shows may not be what happened. ");
        frame.render_widget(Paragraph::new(text).style(theme.style(Role::Danger)), banner);
    } else if let Some(why) = &incomplete {
        let text = format!(" ⚠ Evidence chain incomplete: {why}. What is shown checks out so far. ");
        frame.render_widget(Paragraph::new(text).style(theme.style(Role::Warn)), banner);
    }

    // Body: the recorded screen in a frame, the side pane to its right;
    // the approvals pane, when shown and open here, below the screen.
    let pane_size = if view.show_pane { view.player.pane_screen().map(Screen::size) } else { None };
    let screen = view.player.screen();
    let size = screen.size();
    let want = size.cols.saturating_add(2).max(pane_size.map_or(0, |p| p.cols.saturating_add(2)));
    // The side pane takes what the screen leaves; a window too narrow for
    // both clips the screen and keeps a third for the pane.
    let side = if !view.show_side {
        0
    } else if body.width >= want + MIN_SIDE {
        body.width - want
    } else {
        (body.width / 3).min(SIDE)
    };
    let [screen_area, side_area] = Layout::horizontal([Constraint::Min(1), Constraint::Length(side)]).areas(body);
    // The shell's screen keeps at least a few rows; the approvals pane
    // takes what it needs of the rest.
    let pane_rows = match (view.show_pane, pane_size) {
        (false, _) => 0,
        (true, None) => 1,
        (true, Some(p)) => p.rows.saturating_add(2).min(screen_area.height.saturating_sub(5)),
    };
    let [screen_area, pane_area] = Layout::vertical([Constraint::Min(1), Constraint::Length(pane_rows)]).areas(screen_area);
    let screen_width = size.cols.saturating_add(2);
    let fits_w = screen_area.width >= screen_width;
    let fits_h = screen_area.height >= size.rows.saturating_add(2);
    let frame_area = Rect {
        width: screen_area.width.min(screen_width),
        height: screen_area.height.min(size.rows.saturating_add(2)),
        ..screen_area
    };
    let mut border = theme.style(if broken.is_some() { Role::Danger } else { Role::Border });
    let label = if fits_w && fits_h {
        Span::styled(format!(" {}x{} ", size.cols, size.rows), theme.style(Role::Muted))
    } else {
        border = theme.style(Role::Warn);
        Span::styled(
            format!(
                " recorded {}x{}, shown {}x{}{} ",
                size.cols,
                size.rows,
                frame_area.width.saturating_sub(2),
                frame_area.height.saturating_sub(2),
                // Hiding the side pane is the first thing that can help.
                if view.show_side && !fits_w { " (v: wider)" } else { ": enlarge the window" }
            ),
            theme.style(Role::Warn),
        )
    };
    let block = Block::bordered().border_style(border).title(Line::from(label));
    let inner = block.inner(frame_area);
    frame.render_widget(block, frame_area);
    draw_screen(frame, inner, theme, screen, view.query.as_deref());
    if view.show_pane {
        let pane_area = Rect { y: frame_area.y + frame_area.height, ..pane_area };
        draw_pane(frame, pane_area, theme, view.player.pane_screen());
    }

    match view.focus {
        _ if !view.show_side => {}
        Focus::Results => draw_results(frame, side_area, theme, view),
        _ if !view.results.is_empty() && view.focus != Focus::Commands => draw_results(frame, side_area, theme, view),
        _ => draw_commands(frame, side_area, theme, view),
    }

    draw_timeline(frame, timeline, theme, view);
}

/// The approvals pane's own stream where playback is, in a frame of its
/// own below the shell's screen (never part of it), or a line saying it is
/// not open here.
fn draw_pane(frame: &mut Frame<'_>, area: Rect, theme: &Theme, pane: Option<&Screen>) {
    let Some(pane) = pane else {
        let text = " approvals pane: not open at this point (p hides) ";
        frame.render_widget(Paragraph::new(Span::styled(text, theme.style(Role::Muted))), area);
        return;
    };
    let size = pane.size();
    let area = Rect { width: area.width.min(size.cols.saturating_add(2)), ..area };
    let title = format!(" approvals pane · its own stream · {}x{} · p hides ", size.cols, size.rows);
    let block = Block::bordered().border_style(theme.style(Role::Accent)).title(Line::from(Span::styled(title, theme.style(Role::Accent))));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    draw_screen(frame, inner, theme, pane, None);
}

/// The recorded cells, clipped to `area`; when clipped, scrolled so the
/// cursor stays in view.
fn draw_screen(frame: &mut Frame<'_>, area: Rect, theme: &Theme, screen: &Screen, query: Option<&str>) {
    let size = screen.size();
    let (cursor_row, cursor_col) = screen.cursor();
    let top = cursor_row.saturating_sub(area.height.saturating_sub(1)).min(size.rows.saturating_sub(area.height));
    let left = cursor_col.saturating_sub(area.width.saturating_sub(1)).min(size.cols.saturating_sub(area.width));
    let base = theme.style(Role::Base);
    let highlight = theme.style(Role::Highlight);
    let modes = screen.modes();
    let buf = frame.buffer_mut();
    for y in 0..area.height {
        let row = top + y;
        let Some(cells) = screen.row(row) else { break };
        let marked = query.map(|q| matches_in_row(cells, q)).unwrap_or_default();
        for x in 0..area.width {
            let col = usize::from(left + x);
            let Some(cell) = cells.get(col) else { break };
            let Some(target) = buf.cell_mut((area.x + x, area.y + y)) else { continue };
            if is_spacer(cell) {
                target.set_symbol("");
                continue;
            }
            let mut style = cell_style(cell, base);
            if marked.get(col).copied().unwrap_or(false) {
                style = style.patch(highlight);
            }
            if modes.cursor_visible && row == cursor_row && col == usize::from(cursor_col) {
                style = style.add_modifier(Modifier::REVERSED);
            }
            let mut symbol = String::new();
            symbol.push(shown_char(cell));
            if let Some(marks) = cell.zerowidth() {
                symbol.extend(marks);
            }
            target.set_symbol(&symbol).set_style(style);
        }
    }
}

/// Which columns of a row are inside a match of `query` (smart case).
fn matches_in_row(cells: &[Cell], query: &str) -> Vec<bool> {
    let mut text = String::new();
    let mut column_of = Vec::new();
    for (col, cell) in cells.iter().enumerate() {
        if is_spacer(cell) {
            continue;
        }
        let start = text.len();
        text.push(shown_char(cell));
        column_of.extend(std::iter::repeat_n(col, text.len() - start));
    }
    let mut marked = vec![false; cells.len()];
    let ignore_case = !query.chars().any(char::is_uppercase);
    let Ok(re) = regex::RegexBuilder::new(&regex::escape(query)).case_insensitive(ignore_case).build() else {
        return marked;
    };
    for m in re.find_iter(&text) {
        for &col in column_of.get(m.start()..m.end()).unwrap_or_default() {
            if let Some(slot) = marked.get_mut(col) {
                *slot = true;
            }
            // The right half of a wide character goes with it.
            if cells.get(col + 1).is_some_and(is_spacer) {
                if let Some(slot) = marked.get_mut(col + 1) {
                    *slot = true;
                }
            }
        }
    }
    marked
}

fn term_color(color: TermColor) -> Option<Color> {
    match color {
        TermColor::Named(named) => {
            let n = named as usize;
            (n < 16).then(|| Color::Indexed(u8::try_from(n).unwrap_or(0)))
        }
        TermColor::Indexed(i) => Some(Color::Indexed(i)),
        TermColor::Spec(rgb) => Some(Color::Rgb(rgb.r, rgb.g, rgb.b)),
    }
}

fn cell_style(cell: &Cell, base: Style) -> Style {
    let mut style = base;
    if let Some(fg) = term_color(cell.fg).filter(|_| cell.fg != TermColor::Named(NamedColor::Foreground)) {
        style = style.fg(fg);
    }
    if let Some(bg) = term_color(cell.bg).filter(|_| cell.bg != TermColor::Named(NamedColor::Background)) {
        style = style.bg(bg);
    }
    for (flag, modifier) in [
        (Flags::BOLD, Modifier::BOLD),
        (Flags::DIM, Modifier::DIM),
        (Flags::ITALIC, Modifier::ITALIC),
        (Flags::ALL_UNDERLINES, Modifier::UNDERLINED),
        (Flags::INVERSE, Modifier::REVERSED),
        (Flags::HIDDEN, Modifier::HIDDEN),
        (Flags::STRIKEOUT, Modifier::CROSSED_OUT),
    ] {
        if cell.flags.intersects(flag) {
            style = style.add_modifier(modifier);
        }
    }
    style
}

fn draw_commands(frame: &mut Frame<'_>, area: Rect, theme: &Theme, view: &PlayerView) {
    if area.width == 0 {
        return;
    }
    let focused = view.focus == Focus::Commands;
    let current = view.player.current_command();
    let items: Vec<ListItem<'_>> = view
        .player
        .commands()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (mark, role) = match c.ruling {
                Ruling::Allow => ("✔", Role::Ok),
                Ruling::Deny => ("✖", Role::Danger),
                Ruling::Approve => ("⧗", Role::Warn),
                Ruling::None if c.degraded => ("!", Role::Warn),
                Ruling::None => ("•", Role::Muted),
            };
            let mut spans = vec![
                Span::styled(format!("{} ", format_clock(c.time)), theme.style(Role::Muted)),
                Span::styled(format!("{mark} "), theme.style(role)),
                Span::raw(c.text.clone()),
            ];
            if let Some(status) = c.exit {
                let role = if status == 0 { Role::Ok } else { Role::Danger };
                spans.push(Span::styled(format!(" [{status}]"), theme.style(role)));
            }
            let mut item = ListItem::new(Line::from(spans));
            if Some(i) == current && !focused {
                item = item.style(theme.style(Role::Accent));
            }
            item
        })
        .collect();
    let title = if focused { " Commands (⏎ jump, Esc back) " } else { " Commands (Tab) " };
    let empty = items.is_empty();
    let border = theme.style(if focused { Role::Accent } else { Role::Border });
    let list = List::new(items).block(Block::bordered().title(title).border_style(border)).highlight_style(theme.style(Role::Selection));
    let mut state = ListState::default();
    if focused {
        state.select(Some(view.command_sel));
    }
    frame.render_stateful_widget(list, area, &mut state);
    if empty {
        let inner = Block::bordered().inner(area);
        frame.render_widget(Paragraph::new(Span::styled("no command markers", theme.style(Role::Muted))), inner);
    }
}

fn draw_results(frame: &mut Frame<'_>, area: Rect, theme: &Theme, view: &PlayerView) {
    if area.width == 0 {
        return;
    }
    let items: Vec<ListItem<'_>> = view
        .results
        .iter()
        .map(|hit| {
            let time = view.player.recording().events.get(hit.event).map_or(0.0, |e| e.time);
            ListItem::new(Line::from(vec![
                Span::styled(format!("{} ", format_clock(time)), theme.style(Role::Muted)),
                Span::raw(hit.text.trim().to_owned()),
            ]))
        })
        .collect();
    let more = if view.results.len() >= super::app::RESULT_LIMIT { "+" } else { "" };
    let title = format!(" {}{more} matches for {:?} (n/N) ", view.results.len(), view.query.as_deref().unwrap_or(""));
    let focused = view.focus == Focus::Results;
    let border = theme.style(if focused { Role::Accent } else { Role::Border });
    let list = List::new(items).block(Block::bordered().title(title).border_style(border)).highlight_style(theme.style(Role::Selection));
    let mut state = ListState::default();
    state.select(Some(view.result_sel));
    frame.render_stateful_widget(list, area, &mut state);
}

fn draw_timeline(frame: &mut Frame<'_>, area: Rect, theme: &Theme, view: &mut PlayerView) {
    let p = &view.player;
    let state = if p.playing() { "▶" } else { "⏸" };
    let idle = p.idle_cap().map_or_else(|| "idle as recorded".to_owned(), |c| format!("idle ≤{c}s"));
    let live = if view.follow.is_some() { " · LIVE" } else { "" };
    let left = format!(" {state} {} / {} ", format_clock(p.time()), format_clock(p.duration()));
    let right = format!(" {}x · {idle} · event {}/{}{live} ", p.speed(), p.applied(), p.recording().events.len());
    let lw = u16::try_from(left.chars().count()).unwrap_or(0);
    let rw = u16::try_from(right.chars().count()).unwrap_or(0);
    let [l, bar, r] = Layout::horizontal([Constraint::Length(lw), Constraint::Min(0), Constraint::Length(rw)]).areas(area);
    frame.render_widget(Paragraph::new(Span::styled(left, theme.style(Role::Accent))), l);
    frame.render_widget(Paragraph::new(Span::styled(right, theme.style(Role::Muted))), r);
    view.timeline = Some((bar.x, bar.y, bar.width));
    if bar.width == 0 {
        return;
    }
    let width = usize::from(bar.width);
    let duration = p.duration();
    let fraction = if duration > 0.0 { (p.time() / duration).clamp(0.0, 1.0) } else { 1.0 };
    let head = ((width - 1) as f64 * fraction).round() as usize;
    let mut ticks = vec![false; width];
    for c in p.commands() {
        let at = if duration > 0.0 { ((width - 1) as f64 * c.time / duration).round() as usize } else { 0 };
        if let Some(t) = ticks.get_mut(at) {
            *t = true;
        }
    }
    let spans: Vec<Span<'_>> = (0..width)
        .map(|i| {
            let tick = ticks.get(i).copied().unwrap_or(false);
            if i == head {
                Span::styled("●", theme.style(Role::Accent))
            } else if i < head {
                Span::styled(if tick { "┃" } else { "━" }, theme.style(Role::Progress))
            } else {
                Span::styled(if tick { "┃" } else { "─" }, theme.style(Role::Muted))
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(Line::from(spans)), bar);
}

fn draw_browser(frame: &mut Frame<'_>, area: Rect, theme: &Theme, browser: &Browser, source: &str) {
    let [header, filter, table] = Layout::vertical([Constraint::Length(1), Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let title = format!(" custos replay · {source} · {} of {} sessions ", browser.visible.len(), browser.sessions.len());
    let broken = browser.sessions.iter().filter(|s| matches!(s.verification, Verification::Broken(_))).count();
    let mut spans = vec![Span::styled(title, theme.style(Role::Accent))];
    if broken > 0 {
        let text = format!(" ✖ {broken} with a BROKEN evidence chain ");
        spans.push(Span::styled(text, theme.style(Role::Danger).add_modifier(Modifier::BOLD)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), header);
    let filter_line = if browser.filter_text.is_empty() {
        Span::styled(" / to filter: user: host: since: until: cmd: text:", theme.style(Role::Muted))
    } else {
        Span::styled(format!(" filter: {}", browser.filter_text), theme.style(Role::Warn))
    };
    frame.render_widget(Paragraph::new(filter_line), filter);

    let head = Row::new(["User", "Host", "Start (UTC)", "Duration", "Cmds", "Flags", "Evidence"]).style(theme.style(Role::Accent));
    let rows: Vec<Row<'_>> = browser
        .visible
        .iter()
        .filter_map(|&i| browser.sessions.get(i))
        .map(|s| {
            let evidence = match &s.verification {
                Verification::Intact => TableCell::from(Span::styled("✔ intact", theme.style(Role::Ok))),
                Verification::Unknown(_) => TableCell::from(Span::styled("unverified", theme.style(Role::Muted))),
                Verification::Incomplete(_) => TableCell::from(Span::styled("⚠ partial", theme.style(Role::Warn))),
                Verification::Broken(_) => TableCell::from(Span::styled("✖ BROKEN", theme.style(Role::Danger))),
            };
            let mut flags = s.flags.label();
            if s.open {
                flags = format!("{flags} open").trim().to_owned();
            }
            let flags_role = if s.flags.denied || s.flags.degraded { Role::Warn } else { Role::Base };
            Row::new(vec![
                TableCell::from(s.who()),
                TableCell::from(s.host.clone()),
                TableCell::from(s.start.map_or_else(|| "-".to_owned(), format_date)),
                TableCell::from(format_clock(s.duration)),
                TableCell::from(s.commands.to_string()),
                TableCell::from(Span::styled(flags, theme.style(flags_role))),
                evidence,
            ])
        })
        .collect();
    let empty = rows.is_empty();
    let widths = [
        Constraint::Min(12),
        Constraint::Min(10),
        Constraint::Length(16),
        Constraint::Length(8),
        Constraint::Length(4),
        Constraint::Length(16),
        Constraint::Length(10),
    ];
    let t = Table::new(rows, widths)
        .header(head)
        .block(Block::bordered().border_style(theme.style(Role::Border)))
        .row_highlight_style(theme.style(Role::Selection));
    let mut state = TableState::default();
    state.select((!empty).then_some(browser.selected));
    frame.render_stateful_widget(t, table, &mut state);
    if empty {
        let inner = Block::bordered().inner(table);
        let inner = Rect { y: inner.y + 1, height: inner.height.saturating_sub(1), ..inner };
        frame.render_widget(Paragraph::new(Span::styled(" no session matches", theme.style(Role::Muted))), inner);
    }
}

fn draw_bottom(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let theme = &app.theme;
    let line = if let Some(prompt) = &app.prompt {
        let label = match prompt.kind {
            PromptKind::Search => "search: ",
            PromptKind::GoTo => "go to (1:30, 90s, +30s, 50%): ",
            PromptKind::Filter => "filter: ",
        };
        Line::from(vec![Span::styled(label, theme.style(Role::Accent)), Span::raw(prompt.text.clone()), Span::styled("█", theme.style(Role::Accent))])
    } else if let Some((text, role)) = &app.message {
        Line::from(Span::styled(text.clone(), theme.style(*role)))
    } else if app.player.is_some() {
        Line::from(Span::styled(
            " space play · ←→ 5s · . step · [ ] commands · / search · g go to · +- speed · c copy · ? help · q quit",
            theme.style(Role::Muted),
        ))
    } else {
        Line::from(Span::styled(" ↑↓ select · ⏎ play · / filter · ? help · q quit", theme.style(Role::Muted)))
    };
    frame.render_widget(Paragraph::new(line), area);
}

const PLAYER_HELP: &[(&str, &str)] = &[
    ("space", "play / pause"),
    (". / ,", "step one event forward / back"),
    ("← →", "back / forward 5 s"),
    ("PgUp PgDn", "back / forward 1 min"),
    ("Home End", "start / end"),
    ("+ -", "speed (0.25x to 16x)"),
    ("i", "skip idle time on / off"),
    ("[ ]", "previous / next command"),
    ("Tab", "focus the command or match list (⏎ jumps)"),
    ("/", "search the text on screen, whole session"),
    ("n N", "next / previous match"),
    ("g", "go to a time: 1:30, 90s, +30s, -1m, 50%"),
    ("p", "show / hide the approvals pane (its own stream)"),
    ("v", "show / hide the side pane (the screen gets the whole width)"),
    ("c", "copy the screen (OSC 52)"),
    ("w", "write the screen to a text file"),
    ("click", "seek on the timeline"),
    ("q Esc", "back to the sessions / quit"),
];

const BROWSER_HELP: &[(&str, &str)] = &[
    ("↑ ↓", "select a session"),
    ("⏎", "play it"),
    ("/", "filter: user:alice host:db since:'2 hours ago' until:… cmd:rm text:password"),
    ("q", "quit"),
];

fn draw_help(frame: &mut Frame<'_>, area: Rect, theme: &Theme, player: bool) {
    let keys = if player { PLAYER_HELP } else { BROWSER_HELP };
    let width = area.width.min(84);
    let height = area.height.min(u16::try_from(keys.len()).unwrap_or(20) + 4);
    let popup = Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height };
    let mut lines: Vec<Line<'_>> = keys
        .iter()
        .map(|(k, what)| Line::from(vec![Span::styled(format!(" {k:<10} "), theme.style(Role::Accent)), Span::raw(*what)]))
        .collect();
    lines.push(Line::from(Span::styled(" any key closes this help", theme.style(Role::Muted))));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Keys ").border_style(theme.style(Role::Accent))).style(theme.style(Role::Base)),
        popup,
    );
}
