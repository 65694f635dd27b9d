//! The session browser's state: every session of the source, a filter, and
//! which rows it lets through.
//!
//! The filter has the fields `custos sessions` has: user, host, a time
//! range, command text and screen text. Typed in the browser as
//! `user:alice host:db1 since:'2 hours ago' until:2026-11-26 cmd:rm
//! text:password`; a bare word matches user, host or a command line.
//! Parsing is pure ([`Filter::parse`]); matching screen text needs the
//! source (each session's index), so the browser asks it only for sessions
//! the other fields let through.

use super::source::{SessionSummary, Source};
use crate::when::{self, WhenError};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub user: Option<String>,
    pub host: Option<String>,
    pub since: Option<u64>,
    pub until: Option<u64>,
    pub command: Option<String>,
    pub text: Option<String>,
    pub words: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("unknown filter field {0:?} (fields: user, host, since, until, cmd, text)")]
    Field(String),
    #[error(transparent)]
    Time(#[from] WhenError),
    #[error("unterminated quote in the filter")]
    Quote,
}

impl Filter {
    /// Parses `user:alice since:'2 hours ago' word …`.
    pub fn parse(text: &str, now: u64) -> Result<Self, FilterError> {
        let mut filter = Filter::default();
        for token in tokens(text)? {
            match token.split_once(':') {
                Some((field, value)) if !value.is_empty() && field.chars().all(|c| c.is_ascii_alphabetic()) => {
                    let value = value.to_owned();
                    match field {
                        "user" | "u" => filter.user = Some(value),
                        "host" | "h" => filter.host = Some(value),
                        "since" | "from" => filter.since = Some(point(&value, now)?),
                        "until" | "to" => filter.until = Some(point(&value, now)?),
                        "cmd" | "command" => filter.command = Some(value),
                        "text" | "screen" => filter.text = Some(value),
                        other => return Err(FilterError::Field(other.to_owned())),
                    }
                }
                _ => filter.words.push(token),
            }
        }
        Ok(filter)
    }

    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether `s` passes every field but screen text.
    pub fn matches(&self, s: &SessionSummary) -> bool {
        let has = |hay: &str, needle: &str| hay.to_lowercase().contains(&needle.to_lowercase());
        let user_ok = self.user.as_ref().is_none_or(|u| has(&s.user, u) || s.identity.as_ref().is_some_and(|i| has(i, u)));
        let host_ok = self.host.as_ref().is_none_or(|h| has(&s.host, h));
        let start = s.start.unwrap_or(0);
        let end = start + s.duration as u64;
        // A session overlaps the range: it ended after `since`, started before `until`.
        let since_ok = self.since.is_none_or(|t| end >= t);
        let until_ok = self.until.is_none_or(|t| start <= t);
        let cmd_ok = self.command.as_ref().is_none_or(|c| s.command_lines.iter().any(|l| has(l, c)));
        let words_ok = self.words.iter().all(|w| {
            has(&s.user, w) || has(&s.host, w) || s.identity.as_ref().is_some_and(|i| has(i, w)) || s.command_lines.iter().any(|l| has(l, w))
        });
        user_ok && host_ok && since_ok && until_ok && cmd_ok && words_ok
    }
}

/// A point in time for the filter, as unix seconds (before 1970: 0).
fn point(text: &str, now: u64) -> Result<u64, WhenError> {
    let t = when::parse_time(text, i64::try_from(now).unwrap_or(i64::MAX))?;
    Ok(u64::try_from(t).unwrap_or(0))
}

/// Splits on spaces, keeping quoted parts (`since:'2 hours ago'`) whole.
fn tokens(text: &str) -> Result<Vec<String>, FilterError> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    for c in text.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            (_, c) => current.push(c),
        }
    }
    if quote.is_some() {
        return Err(FilterError::Quote);
    }
    if !current.is_empty() {
        out.push(current);
    }
    Ok(out)
}

/// The browser: sessions, the filter, the visible rows and the selection.
pub struct Browser {
    pub sessions: Vec<SessionSummary>,
    pub filter_text: String,
    pub filter: Filter,
    /// Indexes into `sessions` of the rows shown.
    pub visible: Vec<usize>,
    pub selected: usize,
}

impl Browser {
    pub fn new(sessions: Vec<SessionSummary>) -> Self {
        let visible = (0..sessions.len()).collect();
        Self { sessions, filter_text: String::new(), filter: Filter::default(), visible, selected: 0 }
    }

    /// Applies a filter; screen text is checked through `source`.
    pub fn apply(&mut self, text: &str, filter: Filter, source: &mut dyn Source) {
        self.filter_text = text.to_owned();
        self.visible = self
            .sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| filter.matches(s))
            .filter(|(_, s)| filter.text.as_ref().is_none_or(|t| source.screen_text_contains(&s.id, t).unwrap_or(false)))
            .map(|(i, _)| i)
            .collect();
        self.filter = filter;
        self.selected = 0;
    }

    pub fn selected(&self) -> Option<&SessionSummary> {
        self.visible.get(self.selected).and_then(|&i| self.sessions.get(i))
    }

    pub fn up(&mut self) {
        self.selected = self.selected.saturating_sub(1);
    }

    pub fn down(&mut self) {
        if self.selected + 1 < self.visible.len() {
            self.selected += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::replay::markers::Flags;
    use crate::tui::replay::source::Verification;

    fn session(user: &str, host: &str, start: u64, cmds: &[&str]) -> SessionSummary {
        SessionSummary {
            id: format!("{user}-{host}-{start}"),
            user: user.into(),
            identity: None,
            host: host.into(),
            start: Some(start),
            duration: 600.0,
            commands: cmds.len(),
            command_lines: cmds.iter().map(|c| (*c).to_owned()).collect(),
            flags: Flags::default(),
            verification: Verification::unsigned(),
            open: false,
        }
    }

    const NOW: u64 = 1_795_706_653;

    #[rstest::rstest]
    #[case("user:alice", &[true, false, true])]
    #[case("host:db", &[true, true, false])]
    #[case("since:'2 hours ago'", &[true, true, false])]
    #[case("until:'3 hours ago'", &[false, false, true])]
    #[case("cmd:pg_dump", &[false, true, false])]
    #[case("alice web", &[false, false, true])]
    #[case("", &[true, true, true])]
    fn filters_select_sessions(#[case] text: &str, #[case] expected: &[bool]) {
        let sessions = [
            session("alice", "db1", NOW - 3600, &["ls"]),
            session("bob", "db2", NOW - 1800, &["pg_dump prod"]),
            session("alice", "web1", NOW - 5 * 3600, &["uptime"]),
        ];
        let filter = Filter::parse(text, NOW).unwrap();
        let got: Vec<bool> = sessions.iter().map(|s| filter.matches(s)).collect();
        assert_eq!(got, expected, "{text}");
    }

    #[rstest::rstest]
    #[case("colour:red", "unknown filter field \"colour\"")]
    #[case("since:'last tuesday'", "is not a time:")]
    #[case("user:'alice", "unterminated quote")]
    fn bad_filters_are_named(#[case] text: &str, #[case] expected: &str) {
        let err = Filter::parse(text, NOW).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
}
