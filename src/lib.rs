//! custos: a recording login shell for privileged access.
//!
//! One folder per part (`docs/ARCHITECTURE.md` has the map with what each
//! may import; dependencies point from edges to cores, never back):
//!
//! - `recorder`: the login shell, `custos-shell`: the story from argv to
//!   exit status, the privileged stage (all root code), the PTY, the
//!   session loop, leftovers, the approvals pane.
//! - `channel`: a session without a terminal, pure: each stream as masked
//!   lines, binary runs as hashes or a screen; transfers described.
//! - `term`: the screen pipeline: emulator, masker, renderer, and the one
//!   pipeline the session, `custos mask` and the txt export share.
//! - `mask`: pure secret detectors.
//! - `policy`: the command gate's pure core: a line parsed as bash parses
//!   it, against the policy, to a verdict.
//! - `gate`: the command gate in a live session: hooks, socket, watch.
//! - `approval`: approval of single lines: what an approver signs, one held
//!   line, the recorder's link to its agent.
//! - `evidence`: the recording format (asciicast, markers) and its signed,
//!   hash-chained chunks, the spool, export.
//! - `identity`: OIDC sign-in, the token cache, roles.
//! - `serve`: the collector, `custos serve` (the `custos` binary only).
//! - `client`: HTTP to the collector: upload, enroll, search, the approval
//!   agent, event streams (the `custos` binary only).
//! - `tui`: the auditor's replay and the approver's queue, their themes.
//! - `cmd`: one front end per `custos` subcommand.
//! - `fuzzing`: the fuzz targets' bodies, shared by `fuzz/` and the test
//!   that replays its corpora (hidden; nothing else calls it).
//! - `config`: raw TOML to a validated `Config`; `when`: the only clock,
//!   date and duration code; `layout`: where custos keeps things on a host.

/// This build's version and the commit it was built from (see build.rs).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CUSTOS_COMMIT"), ")");

pub mod approval;
pub mod backstop;
pub mod channel;
pub mod client;
pub mod cmd;
pub mod config;
pub mod evidence;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod gate;
pub mod identity;
pub mod layout;
pub mod mask;
pub mod policy;
pub mod recorder;
pub mod serve;
pub mod term;
pub mod tui;
pub mod when;
