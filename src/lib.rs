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
//! - `gate`: the command gate in a live session: the bash and zsh hooks,
//!   their socket, and the watch for hooks that were removed.
//! - `serve`: the collector (`custos serve`): ingest of signed chunks,
//!   search, download, live follow; `client` and `upload` are its other end
//!   (`custos upload`, `enroll`, `sessions`). Only the `custos` binary
//!   reaches them; nothing of the server links into `custos-shell`.
//! - `when`: times as typed on a command line, for search filters.
//! - `evidence`: the signed chunk chain: envelope codec, host key, chunker,
//!   chunk spool, chain verification, export; `custos keygen|verify|export`.
//! - `replay`: `custos replay`, the auditor's TUI (player core, index,
//!   sources, ratatui views); `theme`: colour roles for the TUIs.
//! - `doctor`, `demo`: `custos` subcommands.

pub mod approval;
pub mod client;
pub mod cmd;
pub mod config;
pub mod evidence;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod gate;
pub mod identity;
pub mod mask;
pub mod policy;
pub mod recorder;
pub mod serve;
pub mod term;
pub mod tui;
pub mod when;
