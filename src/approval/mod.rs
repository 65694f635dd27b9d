//! Just-in-time approval of single command lines.
//!
//! A line the policy answers `approve` is held at the prompt: the gate does
//! not answer the shell hooks' CHECK until the collector has decided. The
//! parts, and where they run:
//!
//! - `decision` (pure): what an approver signs, and the check that a
//!   decision binds exactly this request, session, host and line. Used by
//!   the collector, by `custos approve`, and by the recorder.
//! - `wire` (pure): the JSON-lines protocol between the recorder and its
//!   `custos approval-agent` child, plus the request and request-view shapes
//!   the collector's API speaks.
//! - `hold` (pure): the recorder's state of one held line: asking for a
//!   reason, waiting, the status-line text, and how it ends.
//! - `link`: the recorder's edge: spawns the agent and talks to it through
//!   pipes without blocking. Standard library only, so `custos-shell` links
//!   no HTTP, tokio or TUI code.
//! - `command`: a `-c` command that needs approval waits before its
//!   session starts (std only, like `link`).
//!
//! Nothing in this folder speaks HTTP: it is the recorder's side and the
//! pure cores. Elsewhere: the agent itself (HTTP to the collector,
//! long-polling for changes, reconnecting across restarts) is
//! `client::approval`; `custos approve`, the approver's TUI, is
//! `tui::approve`; the collector side is `serve::approvals`.

pub mod command;
pub mod decision;
pub mod hold;
pub mod link;
pub mod trust;
pub mod wire;
