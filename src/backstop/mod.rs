//! The exec backstop: every program started in the session is decided by
//! the policy before it runs, whatever started it.
//!
//! The shell's hooks see the line as typed, but they are cooperative code
//! in a shell the user controls, and they see nothing a script, an editor's
//! `:!`, `make`, `xargs` or an interpreter starts. Under them, the kernel
//! asks: the privileged stage installs a seccomp filter (`filter`) on the
//! session's first process, as root and without `no_new_privs` so `sudo`
//! keeps working, and every `execve`/`execveat` of the session's process
//! tree waits until the reader answers.
//!
//! Three parts, because reading another process's memory is a privilege:
//!
//! - `reader` (its own process, `CAP_SYS_PTRACE` and `CAP_KILL` only, the
//!   service user, not dumpable): takes each notification, copies the
//!   path, argv and working directory out of the caller, decides, answers
//!   the kernel, and only then sends the record (`wire`) to the recorder:
//!   an exec waits for this one process. Records of programs that ran are
//!   held back a moment and sent together (the recorder is not woken once
//!   per start); at the session's end the recorder asks for the rest.
//! - `decide` (pure): the policy's verdict for the exec and what to answer:
//!   run, refuse (`EACCES`), or hold for approval.
//! - `supervisor` (the recorder's side): turns the reader's frames into
//!   records for the recording, and answers held execs (the recorder keeps
//!   the listener for that) and gives grants (`Responder`).
//!
//! Known limits, stated where an auditor will look: the policy decides by
//! program names, so a copy of a refused program under another name runs;
//! a program that does harm itself (an interpreter's `os.remove`) makes no
//! exec to refuse; and a process's memory can be changed between the check
//! and the exec by a thread of its own (watched: see `reader`) or by
//! another process of the user writing to it (not watched).

pub mod decide;
pub mod filter;
pub mod launch;
pub mod reader;
pub mod supervisor;
pub mod wire;

pub use decide::Mode;
