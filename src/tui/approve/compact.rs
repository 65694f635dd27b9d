//! The compact layout of `custos approve`, for a short terminal: the
//! approvals pane inside `custos-shell` is 8 to 12 rows high, where the
//! full layout's bordered tables and the requester's screen do not fit.
//!
//! Rows, top to bottom: a title (count, filter, connection); the queue,
//! one request a line, scrolled to keep the selection in view; one line of
//! the selected request's details (rule, reason, who may decide); the
//! footer shared with the full layout (keys, the reason prompt, the last
//! outcome). The keys are the same in both layouts.

use ratatui::layout::{Constraint, Layout};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use super::{footer_line, Mode, Model, HELP};
use crate::when::format_age;
use crate::tui::theme::{Role, Theme};

pub fn draw(frame: &mut Frame<'_>, model: &Model, theme: &Theme, now: i64) {
    let area = frame.area();
    frame.render_widget(Block::default().style(theme.style(Role::Base)), area);
    let [title_area, queue_area, details_area, footer_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(1), Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let visible = model.visible();

    let mut title = vec![Span::styled(format!(" pending approvals: {}", visible.len()), theme.style(Role::Accent).add_modifier(Modifier::BOLD))];
    if !model.filter.is_empty() {
        title.push(Span::styled(format!(" (filter: {})", model.filter), theme.style(Role::Accent)));
    }
    title.push(Span::styled(if model.connected { "  ● connected" } else { "  ○ connecting" }, theme.style(Role::Muted)));
    frame.render_widget(Paragraph::new(Line::from(title)), title_area);

    if model.mode == Mode::Help {
        let lines: Vec<Line<'_>> = HELP.iter().map(|l| Line::raw(format!(" {l}"))).collect();
        frame.render_widget(Paragraph::new(lines), queue_area);
        frame.render_widget(Paragraph::new(Line::styled(" any key closes the help", theme.style(Role::Muted))), details_area);
        frame.render_widget(Paragraph::new(footer_line(model, theme)), footer_area);
        return;
    }

    // Keep the selection in view: scroll as little as needed.
    let height = usize::from(queue_area.height.max(1));
    let first = model.selected.saturating_sub(height - 1);
    let rows: Vec<Line<'_>> = visible
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, r)| {
            let left = r.expires_at - now;
            let selected = i == model.selected;
            let mark = if selected { "▶ " } else { "  " };
            let base = if selected { theme.style(Role::Selection) } else { theme.style(Role::Base) };
            let left_style = if left < 60 { theme.style(Role::Warn) } else { base };
            Line::from(vec![
                Span::styled(format!("{mark}{}@{} ", r.request.user, r.request.host), base),
                Span::styled(r.request.line.replace('\n', "⏎"), theme.style(Role::Highlight)),
                Span::styled(format!("  {}  {} ago, ", r.request.rule, format_age(now - r.created_at)), base),
                Span::styled(format!("{} left", format_age(left)), left_style),
                Span::styled(format!("  {}/{}", r.approvals(), r.request.quorum), theme.style(Role::Progress)),
            ])
        })
        .collect();
    let queue = if rows.is_empty() { vec![Line::styled(" no pending request", theme.style(Role::Muted))] } else { rows };
    frame.render_widget(Paragraph::new(queue), queue_area);

    let details = match model.current() {
        None => Line::raw(""),
        Some(r) if r.request.user == model.me => Line::styled(" this is your own request: you cannot approve it", theme.style(Role::Danger)),
        Some(r) => {
            let q = &r.request;
            Line::from(vec![
                Span::styled(" reason ", theme.style(Role::Muted)),
                Span::raw(q.reason.clone().unwrap_or_else(|| "(none given)".into())),
                Span::styled("  rule ", theme.style(Role::Muted)),
                Span::raw(format!("{}: {}", q.rule, q.rule_message)),
                Span::styled("  deciders ", theme.style(Role::Muted)),
                Span::raw(format!("group {}, quorum {}", q.approvers, q.quorum)),
                Span::styled("  cwd ", theme.style(Role::Muted)),
                Span::raw(q.cwd.clone()),
            ])
        }
    };
    frame.render_widget(Paragraph::new(details), details_area);
    frame.render_widget(Paragraph::new(footer_line(model, theme)), footer_area);
}
