//! The approvals pane inside `custos-shell`: a prefix key (Ctrl-] by
//! default) then `a` opens `custos approve` in the lower part of the
//! terminal, multiplexer-style, so an on-call engineer decides without
//! leaving their session.
//!
//! What this module owns, and why it is split the way it is:
//!
//! - [`Prefix`]: the prefix-key state machine (the key itself is parsed
//!   and defaulted in `config`, `[approvals] pane_key`). Pure: key bytes in, bytes to
//!   forward and toggles out. Prefix then `a` toggles; prefix twice sends
//!   the prefix byte itself; prefix then any other byte sends both bytes
//!   on, so a program that uses the key (telnet's escape is Ctrl-] too)
//!   still gets it, one keystroke later. A lone prefix waits, as tmux's
//!   does, for the next key.
//! - [`split`]: rows for the shell, the divider and the pane for a terminal
//!   size. Pure, and it refuses a terminal too short to give the shell at
//!   least [`MIN_SHELL_ROWS`] and the pane at least [`MIN_PANE_ROWS`].
//! - [`approve_command`]: the argv and environment of `custos approve`,
//!   from the recorder's environment, passed in. Only the variables an
//!   approver's credentials and terminal need cross over.
//! - `launcher`: the pane's process. The recorder has dropped to the
//!   `custos` service user for good before the user could ever press the
//!   prefix, so it cannot start a process as the user any more. A small
//!   launcher is forked at session start, while both identities are still
//!   held, and drops to the user as the shell does; on request it opens a
//!   PTY, starts `custos approve` on it and hands the PTY master back over
//!   a socket (`SCM_RIGHTS`).
//!
//! The session loop (`session`) routes keys through [`Prefix`], feeds the
//! pane's output into a second `Screen`, and draws it below the shell's
//! rows on the user's terminal only: the recording renderer never sees the
//! pane, just as it never sees the status line. The shell's PTY is resized
//! to the rows left (the recording gets a resize event, as for any
//! resize), and back when the pane closes.
//!
//! `custos-shell` stays lean: nothing here links HTTP, an async runtime or
//! a TUI. The pane is the separate `custos` binary.

pub mod launcher;

use std::ffi::OsString;

/// The pane's share of the terminal's rows, in percent.
pub const PANE_PERCENT: u16 = 40;
/// The fewest rows `custos approve` gets: its compact layout needs them.
pub const MIN_PANE_ROWS: u16 = 8;
/// The fewest rows the shell keeps while the pane is open.
pub const MIN_SHELL_ROWS: u16 = 5;

/// What the keys the user typed amount to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// Bytes for whoever has the focus (the shell or the pane).
    Forward(Vec<u8>),
    /// Prefix then `a`: open or close the pane.
    Toggle,
}

/// The prefix-key state machine. A prefix pressed at the end of one read
/// is remembered for the next.
#[derive(Clone, Debug)]
pub struct Prefix {
    key: u8,
    armed: bool,
}

impl Prefix {
    pub fn new(key: u8) -> Self {
        Self { key, armed: false }
    }

    /// A prefix is waiting for its second key.
    pub fn armed(&self) -> bool {
        self.armed
    }

    /// Splits `bytes` into runs to forward and toggles, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Key> {
        let mut out = Vec::new();
        let mut run = Vec::new();
        for &b in bytes {
            if self.armed {
                self.armed = false;
                match b {
                    b'a' => {
                        if !run.is_empty() {
                            out.push(Key::Forward(std::mem::take(&mut run)));
                        }
                        out.push(Key::Toggle);
                    }
                    b if b == self.key => run.push(b),
                    b => {
                        run.push(self.key);
                        run.push(b);
                    }
                }
            } else if b == self.key {
                self.armed = true;
            } else {
                run.push(b);
            }
        }
        if !run.is_empty() {
            out.push(Key::Forward(run));
        }
        out
    }
}

/// Where the shell, the divider and the pane sit while the pane is open.
/// Rows are 0-based; the status line, if any, is the last row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    /// The shell's rows: 0 to `shell_rows - 1`.
    pub shell_rows: u16,
    /// The divider's row (`shell_rows`).
    pub divider: u16,
    /// The pane's first row and its height.
    pub pane_top: u16,
    pub pane_rows: u16,
    pub cols: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("terminal too small ({rows} rows, needs {need})")]
pub struct TooSmall {
    pub rows: u16,
    pub need: u16,
}

/// The rows of a `rows` x `cols` terminal (with a status line on its last
/// row when `status`): [`PANE_PERCENT`] of them for the pane (at least
/// [`MIN_PANE_ROWS`]), one for the divider, the rest for the shell (at
/// least [`MIN_SHELL_ROWS`]).
pub fn split(rows: u16, cols: u16, status: bool) -> Result<Split, TooSmall> {
    let status_rows = u16::from(status);
    let need = MIN_SHELL_ROWS + 1 + MIN_PANE_ROWS + status_rows;
    if rows < need {
        return Err(TooSmall { rows, need });
    }
    let usable = rows - status_rows;
    let wanted = (u32::from(rows) * u32::from(PANE_PERCENT) / 100) as u16;
    // The shell's minimum wins over the pane's share.
    let pane_rows = wanted.max(MIN_PANE_ROWS).min(usable - 1 - MIN_SHELL_ROWS);
    let shell_rows = usable - 1 - pane_rows;
    Ok(Split { shell_rows, divider: shell_rows, pane_top: shell_rows + 1, pane_rows, cols: cols.max(2) })
}

/// Variables `custos approve` gets from the session's environment: the
/// approver's credentials (token, name, key, and the places a config file
/// or an OIDC sign-in are kept) and what a terminal program needs.
/// Nothing else crosses: the pane is a fresh, predictable process.
pub const PASSED_ENV: &[&str] = &[
    "CUSTOS_APPROVER_TOKEN",
    "CUSTOS_APPROVER_NAME",
    "CUSTOS_APPROVER_KEY",
    "HOME",
    "USER",
    "LOGNAME",
    "PATH",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "TERM",
    "LANG",
];

/// The argv (without the program) and environment of `custos approve
/// --server URL`, from `env` (the session's environment). When
/// `CUSTOS_APPROVER_NAME` and `CUSTOS_APPROVER_KEY` are set they are also
/// given as `--name` and `--key`.
pub fn approve_command(server: &str, env: &[(OsString, OsString)]) -> (Vec<OsString>, Vec<(OsString, OsString)>) {
    let kept: Vec<(OsString, OsString)> = env
        .iter()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            PASSED_ENV.contains(&k.as_ref()) || k.starts_with("LC_")
        })
        .cloned()
        .collect();
    let get = |name: &str| kept.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.clone());
    let mut args: Vec<OsString> = vec!["approve".into(), "--server".into(), server.into()];
    if let (Some(name), Some(key)) = (get("CUSTOS_APPROVER_NAME"), get("CUSTOS_APPROVER_KEY")) {
        args.extend(["--name".into(), name, "--key".into(), key]);
    }
    (args, kept)
}

/// Keys for a pane whose program has not asked for bracketed paste, with
/// the paste markers taken out. The user's terminal wraps a paste in them
/// whenever the *shell* asked for it (bash does at its prompt), and
/// `custos approve` would drop a marked paste whole, reason and all.
pub fn unbracket_paste(keys: &[u8]) -> Vec<u8> {
    const MARKERS: [&[u8]; 2] = [b"\x1b[200~", b"\x1b[201~"];
    let mut out = Vec::with_capacity(keys.len());
    let mut rest = keys;
    while let Some((&first, tail)) = rest.split_first() {
        if let Some(m) = MARKERS.iter().find(|m| rest.starts_with(m)) {
            rest = rest.get(m.len()..).unwrap_or_default();
            continue;
        }
        out.push(first);
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use rstest::rstest;

    const P: u8 = crate::config::DEFAULT_PREFIX;

    fn fwd(b: &[u8]) -> Key {
        Key::Forward(b.to_vec())
    }

    #[rstest]
    #[case::plain(b"ls\r".to_vec(), vec![fwd(b"ls\r")])]
    #[case::toggle(vec![P, b'a'], vec![Key::Toggle])]
    #[case::toggle_between_keys(vec![b'x', P, b'a', b'y'], vec![fwd(b"x"), Key::Toggle, fwd(b"y")])]
    #[case::prefix_twice_sends_one(vec![P, P], vec![fwd(&[P])])]
    #[case::prefix_other_sends_both(vec![P, b'b'], vec![fwd(&[P, b'b'])])]
    #[case::prefix_escape_sequence(vec![P, 0x1b, b'[', b'A'], vec![fwd(&[P, 0x1b, b'[', b'A'])])]
    #[case::two_toggles(vec![P, b'a', P, b'a'], vec![Key::Toggle, Key::Toggle])]
    #[case::uppercase_is_not_toggle(vec![P, b'A'], vec![fwd(&[P, b'A'])])]
    fn the_prefix_key(#[case] keys: Vec<u8>, #[case] want: Vec<Key>) {
        assert_eq!(Prefix::new(P).feed(&keys), want);
    }

    #[test]
    fn a_prefix_at_the_end_of_one_read_applies_to_the_next() {
        let mut p = Prefix::new(P);
        assert_eq!(p.feed(&[b'l', P]), vec![fwd(b"l")]);
        assert!(p.armed());
        assert_eq!(p.feed(b"a"), vec![Key::Toggle]);
        assert!(!p.armed());
        assert_eq!(p.feed(&[P]), vec![]);
        assert_eq!(p.feed(&[P]), vec![fwd(&[P])]);
    }

    #[test]
    fn paste_markers_are_taken_out_and_nothing_else() {
        assert_eq!(unbracket_paste(b"\x1b[200~INC-7 restore\x1b[201~\r"), b"INC-7 restore\r");
        assert_eq!(unbracket_paste(b"\x1b[A\x1b[20"), b"\x1b[A\x1b[20");
        assert_eq!(unbracket_paste(b""), b"");
    }

    #[rstest]
    // 40 % of 24 is 9: the shell keeps 24 - 1 (status) - 1 (divider) - 9.
    #[case(24, true, 13, 9)]
    #[case(24, false, 14, 9)]
    #[case(50, true, 28, 20)]
    // The pane's minimum beats its share.
    #[case(16, true, 6, 8)]
    // The smallest terminal that fits: the shell keeps its minimum.
    #[case(15, true, 5, 8)]
    #[case(14, false, 5, 8)]
    fn the_split(#[case] rows: u16, #[case] status: bool, #[case] shell: u16, #[case] pane: u16) {
        let s = split(rows, 100, status).unwrap();
        assert_eq!((s.shell_rows, s.pane_rows), (shell, pane));
        assert_eq!(s.divider, s.shell_rows);
        assert_eq!(s.pane_top, s.shell_rows + 1);
        assert_eq!(s.pane_top + s.pane_rows + u16::from(status), rows, "every row is used once");
    }

    #[rstest]
    #[case(14, true)]
    #[case(13, false)]
    #[case(1, true)]
    #[case(0, false)]
    fn a_short_terminal_is_refused(#[case] rows: u16, #[case] status: bool) {
        let err = split(rows, 80, status).unwrap_err();
        assert_eq!(err.rows, rows);
        assert!(err.to_string().contains("too small"), "{err}");
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
    }

    #[test]
    fn approve_gets_the_server_credentials_and_terminal_only() {
        let (args, kept) = approve_command(
            "http://c:8470",
            &env(&[
                ("CUSTOS_APPROVER_TOKEN", "cst_x"),
                ("CUSTOS_APPROVER_NAME", "alice"),
                ("CUSTOS_APPROVER_KEY", "/k"),
                ("TERM", "xterm"),
                ("LC_ALL", "C.UTF-8"),
                ("LD_PRELOAD", "/evil.so"),
                ("CUSTOS_CONFIG", "/tmp/c.toml"),
            ]),
        );
        assert_eq!(args, ["approve", "--server", "http://c:8470", "--name", "alice", "--key", "/k"].map(OsString::from));
        let names: Vec<_> = kept.iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["CUSTOS_APPROVER_TOKEN", "CUSTOS_APPROVER_NAME", "CUSTOS_APPROVER_KEY", "TERM", "LC_ALL"]);
    }

    #[test]
    fn without_a_name_and_key_approve_resolves_its_own_credentials() {
        let (args, _) = approve_command("https://c", &env(&[("CUSTOS_APPROVER_NAME", "alice")]));
        assert_eq!(args, ["approve", "--server", "https://c"].map(OsString::from));
    }
}
