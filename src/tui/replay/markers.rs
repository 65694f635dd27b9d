//! Command markers (`m` events) as the player lists them.
//!
//! A marker's label is either plain text (asciinema's markers, custos's
//! refusal notes) or a JSON object, which is what the command gate writes
//! for each command line it decided: `{"command": "...", "verdict":
//! "allow"|"deny"|"approve", "rule": "...", "exit": N}`. Fields this
//! version does not know are ignored; a label that is not such an object is
//! shown as it is. A plain label that says a command was refused (what
//! `custos-shell -c` records today) counts as a denial.

use serde::Deserialize;

use crate::evidence::asciicast::{Kind, TimedEvent};

/// The gate's decision on a command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    Approve,
    /// A marker that is not a gate decision.
    None,
}

/// One entry of the command list.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// Index of the `m` event in the recording.
    pub event: usize,
    pub time: f64,
    /// The command line, or the marker's label.
    pub text: String,
    pub verdict: Verdict,
    pub rule: Option<String>,
    pub exit: Option<i32>,
    /// The session was degraded here (shell hooks lost).
    pub degraded: bool,
}

#[derive(Deserialize)]
struct GateMarker {
    #[serde(alias = "cmd", alias = "line")]
    command: Option<String>,
    verdict: Option<String>,
    rule: Option<String>,
    #[serde(alias = "status", alias = "exit_status")]
    exit: Option<i32>,
    #[serde(default)]
    degraded: bool,
}

/// Reads the marker at `event`.
pub fn parse(event: usize, time: f64, label: &str) -> Command {
    let gate = label.trim_start().starts_with('{').then(|| serde_json::from_str::<GateMarker>(label).ok()).flatten();
    match gate {
        Some(g) => {
            let verdict = match g.verdict.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("allow") => Verdict::Allow,
                Some("deny") => Verdict::Deny,
                Some("approve" | "approval") => Verdict::Approve,
                _ => Verdict::None,
            };
            let text = g.command.unwrap_or_else(|| if g.degraded { "(shell hooks lost)".into() } else { label.to_owned() });
            Command { event, time, text, verdict, rule: g.rule, exit: g.exit, degraded: g.degraded }
        }
        None => {
            // The labels the gate writes in interactive sessions (see
            // `session::apply_notes`): `$ LINE`, `refused: $ LINE`,
            // `pending approval, refused: $ LINE`, `DEGRADED: WHY`.
            let (verdict, text) = if let Some(line) = label.strip_prefix("pending approval, refused: $ ") {
                (Verdict::Approve, line)
            } else if let Some(line) = label.strip_prefix("refused: $ ") {
                (Verdict::Deny, line)
            } else if let Some(line) = label.strip_prefix("$ ") {
                (Verdict::Allow, line)
            } else if label.starts_with("refused by rule") || label.starts_with("needs approval") {
                (Verdict::Deny, label)
            } else {
                (Verdict::None, label)
            };
            Command {
                event,
                time,
                text: text.to_owned(),
                verdict,
                rule: None,
                exit: None,
                degraded: label.starts_with("DEGRADED: "),
            }
        }
    }
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
            denied: commands.iter().any(|c| c.verdict == Verdict::Deny),
            approval: commands.iter().any(|c| c.verdict == Verdict::Approve),
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

    #[rstest::rstest]
    #[case::gate_allow(r#"{"command":"ls -la","verdict":"allow","exit":0}"#, "ls -la", Verdict::Allow, Some(0))]
    #[case::gate_deny(r#"{"command":"rm -rf /","verdict":"deny","rule":"no-rm-root"}"#, "rm -rf /", Verdict::Deny, None)]
    #[case::gate_approve(r#"{"cmd":"pg_dump prod","verdict":"approve","status":2}"#, "pg_dump prod", Verdict::Approve, Some(2))]
    #[case::plain("chapter 2", "chapter 2", Verdict::None, None)]
    #[case::refusal("refused by rule rm-root (never)", "refused by rule rm-root (never)", Verdict::Deny, None)]
    #[case::broken_json("{not json", "{not json", Verdict::None, None)]
    #[case::gate_ran("$ ls -la", "ls -la", Verdict::Allow, None)]
    #[case::gate_refused("refused: $ rm -rf /", "rm -rf /", Verdict::Deny, None)]
    #[case::gate_pending("pending approval, refused: $ pg_dump x", "pg_dump x", Verdict::Approve, None)]
    fn markers_read_as_commands(#[case] label: &str, #[case] text: &str, #[case] verdict: Verdict, #[case] exit: Option<i32>) {
        let c = parse(3, 1.5, label);
        assert_eq!((c.text.as_str(), c.verdict, c.exit, c.event), (text, verdict, exit, 3));
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
