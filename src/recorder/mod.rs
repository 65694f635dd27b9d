//! The recorder: everything `custos-shell` does between `sshd` (or `login`)
//! and the real shell.
//!
//! - `shell`: the login shell's story, from argv to exit status.
//! - `invocation`: classifying argv (passed on unchanged).
//! - `account`: the user from the real uid, the host name.
//! - `nesting`: a recorder already owning this session.
//! - `identity`: the sign-in at session start (runs `custos identity` as
//!   the service user; the user's mode decides what a failure means).
//! - `privilege`: the privileged stage, all of the root code: it takes the
//!   terminal, makes the session's cgroup, and splits the login into a root
//!   warden, the recorder (as `custos`) and the shell (as the user).
//! - `leftovers`: what is left of a session at its end, listed and ended.
//! - `pty`, `child`: the PTY and terminal ioctls; forking and exec'ing the
//!   real shell.
//! - `uploader`: starting `custos upload --follow` beside the recorder.
//! - `session`: the interactive loop (poll and dispatch), its gate link,
//!   status line, output and the open approvals pane.
//! - `pane`: the approvals pane's pure parts and its launcher process.
//!
//! Nothing here links HTTP, TLS, an async runtime, SQL or a TUI
//! (`tests/lean.rs` checks the built binary): the recorder is on every
//! login's critical path and runs with privilege. It imports the cores
//! (`term`, `policy`, `mask`, `evidence`, `config`, `when`, `layout`) and
//! the shell-side parts (`gate`, `approval`, `identity`); none of them
//! imports it (only `custos login`'s front end borrows `account`).

pub mod account;
pub mod channel;
pub mod child;
pub mod identity;
pub mod invocation;
pub mod leftovers;
pub mod nesting;
pub mod pane;
pub mod privilege;
pub mod pty;
pub mod session;
pub mod shell;
pub mod uploader;
