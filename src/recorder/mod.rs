//! The recorder: everything `custos-shell` does between `sshd` (or `login`)
//! and the real shell.
//!
//! - `shell`: the login shell's story, from argv to exit status.
//! - `invocation`: classifying argv (passed on unchanged).
//! - `account`: the user from the real uid, the host name.
//! - `nesting`: a recorder already owning this session.
//! - `privilege`: the setuid split: child to the user, recorder to `custos`.
//! - `pty`, `child`: the PTY and terminal ioctls; forking and exec'ing the
//!   real shell.
//! - `layout`: the custos-owned directory layout of the spool.
//! - `uploader`: starting `custos upload --follow` beside the recorder.
//! - `session`: the interactive loop (poll and dispatch), with its
//!   `gate_link`, live `pane`, `status` line and `output` beside it; the
//!   screen work is `term::pipeline`.
//! - `pane`: the approvals pane's pure parts (prefix key, split) and its
//!   launcher.
//!
//! Nothing here links HTTP, TLS, an async runtime, SQL or a TUI: the
//! recorder is on every login's critical path and runs with privilege.

pub mod account;
pub mod child;
pub mod invocation;
pub mod layout;
pub mod nesting;
pub mod pane;
pub mod privilege;
pub mod pty;
pub mod session;
pub mod shell;
pub mod uploader;
