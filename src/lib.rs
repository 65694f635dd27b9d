//! custos: a recording login shell for privileged access.
//!
//! The map of the crate (see `docs/ARCHITECTURE.md` for the prose version):
//!
//! - `shell`: the `custos-shell` story: config, account, nesting, and the
//!   choice between an interactive session and a data channel.
//! - `session`: the interactive loop (PTY, keys, signals, frames).
//! - `screen`: the virtual screen (vt100), scrollback capture, query answers.
//! - `render`: screen to bytes for the user's terminal and the recording.
//! - `record`: asciicast v3 encoding and the recording file.
//! - `config`, `invocation`, `account`, `privilege`, `pty`, `child`,
//!   `nesting`, `spool`: the edges, each owning one concern.
//! - `policy`: the command gate's pure core: a command line, parsed as bash
//!   would, against the policy file; and `custos policy check|test`.
//! - `replay`: `custos replay`, the auditor's TUI (player core, index,
//!   sources, ratatui views); `theme`: colour roles for the TUIs.
//! - `doctor`, `demo`: `custos` subcommands.

pub mod account;
pub mod child;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod invocation;
pub mod masker;
pub mod mask;
pub mod nesting;
pub mod offline;
pub mod policy;
pub mod privilege;
pub mod pty;
pub mod record;
pub mod render;
pub mod replay;
pub mod screen;
pub mod session;
pub mod shell;
pub mod spool;
pub mod theme;
