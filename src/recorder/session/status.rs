//! The status line's state: the text as configured, plus the news the user
//! must not miss (a held line's wait, paused output, a degraded gate, the
//! approvals pane's notice).
//!
//! Pure: the loop sets the news and asks [`Status::refresh`] what changed;
//! a line that appears or goes costs the shell a row, so the loop resizes
//! then (see `Loop::check_size`), and only redraws otherwise.

/// What a refresh changed on the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    None,
    /// Other text on a line that was there already.
    Text,
    /// The line appeared or went: the shell's rows change.
    Rows,
}

pub(super) struct Status {
    /// The status line as configured (`None`: turned off).
    base: Option<String>,
    /// The line as shown now (`None`: no status line).
    line: Option<String>,
    pub degraded: Option<String>,
    pub paused: Option<String>,
    /// A held line's wait for approval.
    pub held: Option<String>,
    /// Why the approvals pane closed or would not open, until the prefix
    /// is used again.
    pub pane_notice: Option<String>,
    /// The last program start the exec backstop refused or held, until
    /// the next Enter.
    pub exec_notice: Option<String>,
    /// What waits in the spool for a collector that is not reached.
    pub backlog: Option<String>,
}

impl Status {
    pub fn new(configured: Option<String>) -> Self {
        Self { line: configured.clone(), base: configured, degraded: None, paused: None, held: None, pane_notice: None, exec_notice: None, backlog: None }
    }

    /// The line as shown now.
    pub fn line(&self) -> Option<&str> {
        self.line.as_deref()
    }

    /// Whether there is a status line, so the shell has a row less.
    pub fn shown(&self) -> bool {
        self.line.is_some()
    }

    /// The line the news asks for (`None`: no status line), for a terminal
    /// `width` columns wide: news that would not fit after the configured
    /// text gets the room of all but its first part (` ● REC`).
    pub fn compose(&self, width: u16) -> Option<String> {
        let line = self.compose_with(self.base.clone())?;
        if unicode_width::UnicodeWidthStr::width(line.as_str()) <= usize::from(width) {
            return Some(line);
        }
        let short = self.base.as_deref().and_then(|b| b.split("  ").next()).map(str::to_owned);
        self.compose_with(short)
    }

    fn compose_with(&self, base: Option<String>) -> Option<String> {
        // With the status line turned off, it still appears while there is
        // news the user must not miss, and goes when there is none.
        let news = self.held.is_some()
            || self.paused.is_some()
            || self.degraded.is_some()
            || self.pane_notice.is_some()
            || self.exec_notice.is_some()
            || self.backlog.is_some();
        let base = base.or_else(|| news.then(String::new))?;
        // A held line's wait replaces the usual text; problems still show.
        let mut line = self.held.clone().unwrap_or(base);
        if let Some(why) = &self.paused {
            line.push_str(&format!("  \u{23f8} OUTPUT PAUSED: {why}"));
        }
        if let Some(why) = &self.degraded {
            line.push_str(&format!("  \u{26a0} DEGRADED: {why}"));
        }
        if let Some(backlog) = &self.backlog {
            line.push_str(&format!("  \u{21e1} {backlog}"));
        }
        if let Some(notice) = &self.exec_notice {
            line.push_str(&format!("  \u{26d4} {notice}"));
        }
        // The pane's news goes first: it answers a key just pressed.
        if let Some(notice) = &self.pane_notice {
            line = format!(" \u{26a0} {notice} \u{2502}{line}");
        }
        Some(line)
    }

    /// Shows what [`Status::compose`] asks for; says what changed.
    pub fn refresh(&mut self, width: u16) -> Change {
        let Some(line) = self.compose(width) else {
            return if self.line.take().is_some() { Change::Rows } else { Change::None };
        };
        if self.line.as_ref() == Some(&line) {
            return Change::None;
        }
        let appeared = self.line.is_none();
        self.line = Some(line);
        if appeared {
            Change::Rows
        } else {
            Change::Text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_line_shows_as_is() {
        let mut s = Status::new(Some(" custos".into()));
        assert_eq!(s.line(), Some(" custos"));
        assert_eq!(s.refresh(200), Change::None);
    }

    #[test]
    fn news_appears_on_a_line_turned_off_and_goes_with_it() {
        let mut s = Status::new(None);
        assert!(!s.shown());
        s.paused = Some("spool full".into());
        assert_eq!(s.refresh(200), Change::Rows);
        assert_eq!(s.line(), Some("  \u{23f8} OUTPUT PAUSED: spool full"));
        s.paused = None;
        assert_eq!(s.refresh(200), Change::Rows);
        assert!(!s.shown());
    }

    #[test]
    fn news_on_a_configured_line_changes_text_not_rows() {
        let mut s = Status::new(Some(" alice@db1".into()));
        s.degraded = Some("hooks gone".into());
        assert_eq!(s.refresh(200), Change::Text);
        assert_eq!(s.line(), Some(" alice@db1  \u{26a0} DEGRADED: hooks gone"));
    }

    /// A reason too long for the row after the configured text keeps the
    /// row for itself, after the recording mark.
    #[test]
    fn news_too_wide_for_the_row_keeps_only_the_recording_mark_of_the_text() {
        let base = " \u{25cf} REC  custos  alice@db1  session 0123abcd";
        let mut s = Status::new(Some(base.into()));
        s.degraded = Some("the DEBUG trap backstop was removed or changed (re-installed at the next prompt)".into());
        s.refresh(200);
        assert_eq!(s.line(), Some(format!("{base}  \u{26a0} DEGRADED: the DEBUG trap backstop was removed or changed (re-installed at the next prompt)").as_str()));
        s.refresh(120);
        assert_eq!(s.line(), Some(" \u{25cf} REC  \u{26a0} DEGRADED: the DEBUG trap backstop was removed or changed (re-installed at the next prompt)"));
    }

    #[test]
    fn a_held_line_replaces_the_text_and_the_pane_notice_goes_first() {
        let mut s = Status::new(Some(" alice@db1".into()));
        s.held = Some(" waiting for approval".into());
        s.paused = Some("full".into());
        s.pane_notice = Some("approvals pane: terminal too small".into());
        assert_eq!(s.refresh(200), Change::Text);
        assert_eq!(
            s.line(),
            Some(" \u{26a0} approvals pane: terminal too small \u{2502} waiting for approval  \u{23f8} OUTPUT PAUSED: full")
        );
    }
}
