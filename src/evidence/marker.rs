//! Markers (`m` events): the one codec for their labels. The recorder
//! writes them through [`Marker::label`]; replay (from a file or through the
//! collector, whose index stores labels as they came) reads them through
//! [`read`]. What happened to a checked line travels as an [`Outcome`] from
//! the gate to here, never as a string.
//!
//! Labels custos writes (recordings exist, so these bytes never change):
//!
//! | marker | label |
//! | --- | --- |
//! | a checked line that ran | `$ LINE` |
//! | refused by a rule | `refused: $ LINE` |
//! | needed approval and did not run | `pending approval, refused: $ LINE` |
//! | the hooks are gone | `DEGRADED: WHY` |
//! | a request for approval | `approval requested (ID): $ LINE` |
//! | approved | `approved by NAMES: $ LINE` |
//! | a held line refused | `OUTCOME: MESSAGE: $ LINE` |
//! | a `-c` command refused before it ran | the reason, as it is |
//! | a program start the exec backstop refused, held, or killed | `exec OUTCOME (RULE): LINE` |
//! | the approvals pane opened, COLS x ROWS | `approvals pane opened (COLSxROWS)` |
//! | the open pane's size changed | `approvals pane resized (COLSxROWS)` |
//! | the pane closed | `approvals pane closed (WHY)`, WHY one of [`PaneClose`]'s |
//! | `custos approve` in the pane ended | `approvals pane: custos approve exited with status N` |
//!
//! The pane's markers frame its own stream (`p` events, see
//! `super::asciicast`): the `p` events after `opened` and before the next
//! `closed` are one pane's frames, each drawn for a terminal of the size
//! the last `opened` or `resized` gave. They are markers rather than codes
//! of their own so that any player lists them (an auditor sees where the
//! pane was open even where the pane itself is not shown), and the
//! collector indexes them like any other; [`read_pane`] reads them back.
//!
//! Labels read, besides those: a JSON object, `{"command": "...",
//! "verdict": "allow"|"deny"|"approve", "rule": "...", "exit": N}` (with the
//! aliases `cmd`/`line`, `status`/`exit_status`, and `degraded`), and any
//! other text (asciinema's markers), shown as it is. A plain label that
//! starts `refused by rule` or `needs approval` (what `custos-shell -c`
//! records) counts as a denial. Fields this version does not know are
//! ignored.

use serde::{Deserialize, Serialize};

/// What happened to a checked line. The names are the audit record's
/// `outcome` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Allowed (or approved) and run.
    Ran,
    /// Denied by a rule.
    Refused,
    /// Needed approval where none could be waited for.
    PendingRefused,
    /// Waiting for approval.
    Held,
    /// After a hold: an approver denied it.
    Denied,
    /// After a hold: nobody decided in time.
    Expired,
    /// After a hold: the user withdrew the request.
    Withdrawn,
    /// After a hold: approvals failed (fails closed).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ran => "ran",
            Outcome::Refused => "refused",
            Outcome::PendingRefused => "pending-refused",
            Outcome::Held => "held",
            Outcome::Denied => "denied",
            Outcome::Expired => "expired",
            Outcome::Withdrawn => "withdrawn",
            Outcome::Error => "error",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A marker the recorder writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Marker {
    /// A checked line (as shown: masked) and what happened to it.
    Command { outcome: Outcome, line: String },
    /// The session was degraded; why.
    Degraded(String),
    /// A held line was sent for approval as request `request` (short id).
    ApprovalRequested { request: String, line: String },
    /// A held line was approved; `by` names each approver and reason.
    Approved { by: String, line: String },
    /// A held line was refused after all.
    ApprovalRefused { outcome: Outcome, message: String, line: String },
    /// A `-c` command refused before it ran: the reason.
    Refusal(String),
    /// What the privileged stage did for this session (its acts, in words).
    Stage(Vec<String>),
    /// The session ended for a reason other than the shell's own exit.
    Ended(String),
    /// Processes still running at the end, and what became of them.
    Leftovers(String),
    /// The approvals pane opened, resized, closed, or its program ended.
    Pane(PaneChange),
    /// A run of binary bytes on a stream of a session without a terminal:
    /// recorded as its length and hash (`a` record: kind `binary`).
    Binary { stream: &'static str, bytes: u64, sha256: String },
    /// A file transfer (scp, sftp, rsync, git), summarised (`a` record:
    /// kind `transfer`).
    Transfer(String),
    /// A program start the exec backstop did not simply allow: `outcome`
    /// is `refused`, `held`, `pending-refused`, `killed`, or what became
    /// of a held one (`a` record: kind `exec`; allowed starts have only
    /// the `a` record).
    Exec { outcome: String, rule: Option<String>, line: String },
}

/// What the approvals pane did (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaneChange {
    /// Opened on a terminal of `cols` x `rows`: its `p` events follow.
    Opened { cols: u16, rows: u16 },
    /// The open pane's terminal is now `cols` x `rows`.
    Resized { cols: u16, rows: u16 },
    /// Closed: no `p` events until it opens again.
    Closed(PaneClose),
    /// `custos approve` ended with this status (128+N for signal N).
    Exited(i32),
}

/// Why the approvals pane closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaneClose {
    /// The prefix key and `a` again.
    ByUser,
    /// `custos approve` ended by itself (`q`, or an error).
    Ended,
    /// The terminal became too small for it.
    TooSmall,
    /// Its launcher ended, so no pane can run.
    LauncherGone,
    /// The session ended while it was open.
    SessionEnded,
}

impl PaneClose {
    const ALL: [PaneClose; 5] =
        [PaneClose::ByUser, PaneClose::Ended, PaneClose::TooSmall, PaneClose::LauncherGone, PaneClose::SessionEnded];

    pub fn as_str(self) -> &'static str {
        match self {
            PaneClose::ByUser => "by the user",
            PaneClose::Ended => "custos approve ended",
            PaneClose::TooSmall => "the terminal is too small",
            PaneClose::LauncherGone => "its launcher ended",
            PaneClose::SessionEnded => "the session ended",
        }
    }
}

const PANE_OPENED: &str = "approvals pane opened (";
const PANE_RESIZED: &str = "approvals pane resized (";
const PANE_CLOSED: &str = "approvals pane closed (";
const PANE_EXITED: &str = "approvals pane: custos approve exited with status ";

impl PaneChange {
    fn label(self) -> String {
        match self {
            PaneChange::Opened { cols, rows } => format!("{PANE_OPENED}{cols}x{rows})"),
            PaneChange::Resized { cols, rows } => format!("{PANE_RESIZED}{cols}x{rows})"),
            PaneChange::Closed(why) => format!("{PANE_CLOSED}{})", why.as_str()),
            PaneChange::Exited(status) => format!("{PANE_EXITED}{status}"),
        }
    }
}

/// Reads a marker's label as a change of the approvals pane; `None` for
/// every other marker, and for a pane label this version cannot read.
pub fn read_pane(label: &str) -> Option<PaneChange> {
    let size = |rest: &str| rest.strip_suffix(')').and_then(super::asciicast::parse_size);
    if let Some(rest) = label.strip_prefix(PANE_OPENED) {
        return size(rest).map(|(cols, rows)| PaneChange::Opened { cols, rows });
    }
    if let Some(rest) = label.strip_prefix(PANE_RESIZED) {
        return size(rest).map(|(cols, rows)| PaneChange::Resized { cols, rows });
    }
    if let Some(why) = label.strip_prefix(PANE_CLOSED).and_then(|r| r.strip_suffix(')')) {
        return PaneClose::ALL.into_iter().find(|c| c.as_str() == why).map(PaneChange::Closed);
    }
    label.strip_prefix(PANE_EXITED).and_then(|n| n.parse().ok()).map(PaneChange::Exited)
}

impl Marker {
    /// The `m` event's data.
    pub fn label(&self) -> String {
        match self {
            Marker::Command { outcome: Outcome::Ran, line } => format!("$ {line}"),
            Marker::Command { outcome: Outcome::Refused, line } => format!("refused: $ {line}"),
            // Every other end of a line that needed approval: refused
            // while pending, or denied, expired, withdrawn or failed after
            // a hold (the `a` record says which).
            Marker::Command { line, .. } => format!("pending approval, refused: $ {line}"),
            Marker::Degraded(why) => format!("DEGRADED: {why}"),
            Marker::ApprovalRequested { request, line } => format!("approval requested ({request}): $ {line}"),
            Marker::Approved { by, line } => format!("approved by {by}: $ {line}"),
            Marker::ApprovalRefused { outcome, message, line } => format!("{outcome}: {message}: $ {line}"),
            Marker::Refusal(reason) => reason.clone(),
            Marker::Stage(acts) => format!("privileged stage: {}", acts.join("; ")),
            Marker::Ended(why) => format!("session ended: {why}"),
            Marker::Leftovers(text) => text.clone(),
            Marker::Pane(change) => change.label(),
            Marker::Binary { stream, bytes, sha256 } => format!("binary on {stream}: {bytes} bytes, sha256 {sha256}"),
            Marker::Transfer(summary) => format!("transfer: {summary}"),
            Marker::Exec { outcome, rule: Some(rule), line } => format!("exec {outcome} ({rule}): {line}"),
            Marker::Exec { outcome, rule: None, line } => format!("exec {outcome}: {line}"),
        }
    }
}

/// The gate's ruling on a command line, as a marker tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ruling {
    Allow,
    Deny,
    Approve,
    /// A marker that is not a gate decision.
    None,
}

/// A marker as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The command line, or the marker's label.
    pub text: String,
    pub ruling: Ruling,
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

/// Reads a marker's label.
pub fn read(label: &str) -> Reading {
    let gate = label.trim_start().starts_with('{').then(|| serde_json::from_str::<GateMarker>(label).ok()).flatten();
    if let Some(g) = gate {
        let ruling = match g.verdict.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("allow") => Ruling::Allow,
            Some("deny") => Ruling::Deny,
            Some("approve" | "approval") => Ruling::Approve,
            _ => Ruling::None,
        };
        let text = g.command.unwrap_or_else(|| if g.degraded { "(shell hooks lost)".into() } else { label.to_owned() });
        return Reading { text, ruling, rule: g.rule, exit: g.exit, degraded: g.degraded };
    }
    let (ruling, text) = if let Some(line) = label.strip_prefix("pending approval, refused: $ ") {
        (Ruling::Approve, line)
    } else if let Some(line) = label.strip_prefix("refused: $ ") {
        (Ruling::Deny, line)
    } else if let Some(line) = label.strip_prefix("$ ") {
        (Ruling::Allow, line)
    } else if label.starts_with("refused by rule") || label.starts_with("needs approval") {
        (Ruling::Deny, label)
    } else {
        (Ruling::None, label)
    };
    Reading { text: text.to_owned(), ruling, rule: None, exit: None, degraded: label.starts_with("DEGRADED: ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case::gate_allow(r#"{"command":"ls -la","verdict":"allow","exit":0}"#, "ls -la", Ruling::Allow, Some(0))]
    #[case::gate_deny(r#"{"command":"rm -rf /","verdict":"deny","rule":"no-rm-root"}"#, "rm -rf /", Ruling::Deny, None)]
    #[case::gate_approve(r#"{"cmd":"pg_dump prod","verdict":"approve","status":2}"#, "pg_dump prod", Ruling::Approve, Some(2))]
    #[case::plain("chapter 2", "chapter 2", Ruling::None, None)]
    #[case::refusal("refused by rule rm-root (never)", "refused by rule rm-root (never)", Ruling::Deny, None)]
    #[case::broken_json("{not json", "{not json", Ruling::None, None)]
    #[case::gate_ran("$ ls -la", "ls -la", Ruling::Allow, None)]
    #[case::gate_refused("refused: $ rm -rf /", "rm -rf /", Ruling::Deny, None)]
    #[case::gate_pending("pending approval, refused: $ pg_dump x", "pg_dump x", Ruling::Approve, None)]
    fn labels_read_as_commands(#[case] label: &str, #[case] text: &str, #[case] ruling: Ruling, #[case] exit: Option<i32>) {
        let r = read(label);
        assert_eq!((r.text.as_str(), r.ruling, r.exit), (text, ruling, exit));
    }

    /// The labels are the recording format: these bytes are in recordings
    /// that exist, and each reads back as the ruling it was written for.
    #[rstest::rstest]
    #[case::ran(Marker::Command { outcome: Outcome::Ran, line: "ls".into() }, "$ ls", Ruling::Allow)]
    #[case::refused(Marker::Command { outcome: Outcome::Refused, line: "rm -rf /".into() }, "refused: $ rm -rf /", Ruling::Deny)]
    #[case::pending(Marker::Command { outcome: Outcome::PendingRefused, line: "x".into() }, "pending approval, refused: $ x", Ruling::Approve)]
    #[case::denied_after_hold(Marker::Command { outcome: Outcome::Denied, line: "x".into() }, "pending approval, refused: $ x", Ruling::Approve)]
    #[case::degraded(Marker::Degraded("hooks gone".into()), "DEGRADED: hooks gone", Ruling::None)]
    #[case::requested(Marker::ApprovalRequested { request: "0190f1a2".into(), line: "x".into() }, "approval requested (0190f1a2): $ x", Ruling::None)]
    #[case::approved(Marker::Approved { by: "alice (ok)".into(), line: "x".into() }, "approved by alice (ok): $ x", Ruling::None)]
    #[case::hold_refused(Marker::ApprovalRefused { outcome: Outcome::Expired, message: "too late".into(), line: "x".into() }, "expired: too late: $ x", Ruling::None)]
    #[case::refusal(Marker::Refusal("refused by rule r (m)".into()), "refused by rule r (m)", Ruling::Deny)]
    #[case::stage(Marker::Stage(vec!["a".into(), "b".into()]), "privileged stage: a; b", Ruling::None)]
    #[case::ended(Marker::Ended("SIGTERM".into()), "session ended: SIGTERM", Ruling::None)]
    #[case::needs_approval(Marker::Refusal("needs approval under rule r; no".into()), "needs approval under rule r; no", Ruling::Deny)]
    fn markers_write_their_labels(#[case] marker: Marker, #[case] label: &str, #[case] ruling: Ruling) {
        assert_eq!(marker.label(), label);
        let read = read(label);
        assert_eq!(read.ruling, ruling);
        assert_eq!(read.degraded, matches!(marker, Marker::Degraded(_)));
    }

    #[rstest::rstest]
    #[case::opened(PaneChange::Opened { cols: 100, rows: 12 }, "approvals pane opened (100x12)")]
    #[case::resized(PaneChange::Resized { cols: 100, rows: 16 }, "approvals pane resized (100x16)")]
    #[case::by_user(PaneChange::Closed(PaneClose::ByUser), "approvals pane closed (by the user)")]
    #[case::ended(PaneChange::Closed(PaneClose::Ended), "approvals pane closed (custos approve ended)")]
    #[case::too_small(PaneChange::Closed(PaneClose::TooSmall), "approvals pane closed (the terminal is too small)")]
    #[case::launcher(PaneChange::Closed(PaneClose::LauncherGone), "approvals pane closed (its launcher ended)")]
    #[case::session(PaneChange::Closed(PaneClose::SessionEnded), "approvals pane closed (the session ended)")]
    #[case::exited(PaneChange::Exited(143), "approvals pane: custos approve exited with status 143")]
    fn pane_markers_write_their_labels_and_read_back(#[case] change: PaneChange, #[case] label: &str) {
        assert_eq!(Marker::Pane(change).label(), label);
        assert_eq!(read_pane(label), Some(change));
        // Any player lists it as a plain marker, never as a command.
        assert_eq!(read(label).ruling, Ruling::None);
    }

    #[rstest::rstest]
    #[case::command("$ ls")]
    #[case::no_size("approvals pane opened (wide)")]
    #[case::unclosed("approvals pane opened (100x12")]
    #[case::unknown_reason("approvals pane closed (a cosmic ray)")]
    #[case::bad_status("approvals pane: custos approve exited with status -")]
    #[case::asciinema("chapter 2")]
    fn other_markers_are_not_the_panes(#[case] label: &str) {
        assert_eq!(read_pane(label), None);
    }

    #[test]
    fn outcomes_serialise_as_the_audit_records_names() {
        for outcome in [
            Outcome::Ran,
            Outcome::Refused,
            Outcome::PendingRefused,
            Outcome::Held,
            Outcome::Denied,
            Outcome::Expired,
            Outcome::Withdrawn,
            Outcome::Error,
        ] {
            assert_eq!(serde_json::to_value(outcome).unwrap(), outcome.as_str());
        }
        assert_eq!(Outcome::PendingRefused.to_string(), "pending-refused");
    }
}
