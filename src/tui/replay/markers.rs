//! Command markers (`m` events) as the player lists them: each marker's
//! place in the recording, read through [`crate::evidence::marker`] (which
//! owns the label format), and the flags the session browser shows.

use crate::evidence::asciicast::{Kind, TimedEvent};
use crate::evidence::marker::{self, Ruling};

/// One entry of the command list.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// Index of the `m` event in the recording.
    pub event: usize,
    pub time: f64,
    /// The command line, or the marker's label.
    pub text: String,
    pub ruling: Ruling,
    pub rule: Option<String>,
    pub exit: Option<i32>,
    /// The session was degraded here (shell hooks lost).
    pub degraded: bool,
}

/// Reads the marker at `event`.
pub fn parse(event: usize, time: f64, label: &str) -> Command {
    let marker::Reading { text, ruling, rule, exit, degraded } = marker::read(label);
    Command { event, time, text, ruling, rule, exit, degraded }
}

/// Every marker of a recording, in order.
pub fn commands(events: &[TimedEvent]) -> Vec<Command> {
    commands_from(events, 0)
}

/// The markers of `events`, which start at index `offset` of the recording.
pub fn commands_from(events: &[TimedEvent], offset: usize) -> Vec<Command> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == Kind::Marker)
        .map(|(i, e)| parse(offset + i, e.time, &e.data))
        .collect()
}

/// The flags the session browser shows for a session's commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub denied: bool,
    pub approval: bool,
    pub degraded: bool,
}

impl Flags {
    pub fn of(commands: &[Command]) -> Self {
        Self {
            denied: commands.iter().any(|c| c.ruling == Ruling::Deny),
            approval: commands.iter().any(|c| c.ruling == Ruling::Approve),
            degraded: commands.iter().any(|c| c.degraded),
        }
    }

    /// Short text for a table cell: `D` denied, `A` approval, `!` degraded.
    pub fn label(self) -> String {
        let mut s = String::new();
        if self.degraded {
            s.push_str("degraded ");
        }
        if self.denied {
            s.push_str("denied ");
        }
        if self.approval {
            s.push_str("approval ");
        }
        s.trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_keep_their_place_and_read_as_the_label_says() {
        let c = parse(3, 1.5, r#"{"cmd":"pg_dump prod","verdict":"approve","status":2}"#);
        assert_eq!((c.event, c.time, c.text.as_str(), c.ruling, c.exit), (3, 1.5, "pg_dump prod", Ruling::Approve, Some(2)));
        let c = parse(4, 2.0, "refused: $ rm -rf /");
        assert_eq!((c.event, c.text.as_str(), c.ruling, c.rule), (4, "rm -rf /", Ruling::Deny, None));
    }

    #[test]
    fn flags_summarise_the_commands() {
        let cs = vec![parse(0, 0.0, r#"{"command":"a","verdict":"deny"}"#), parse(1, 0.0, r#"{"degraded":true}"#)];
        let f = Flags::of(&cs);
        assert_eq!(f, Flags { denied: true, approval: false, degraded: true });
        assert_eq!(f.label(), "degraded denied");
        assert_eq!(cs[1].text, "(shell hooks lost)");
    }
}
