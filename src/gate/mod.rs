//! The command gate in a live session: the shell's hooks ask, the policy
//! answers, and the recorder watches that the hooks are still there.
//!
//! The hooks are cooperative code in a shell the user controls, so the gate
//! has two jobs. The first is to answer: every line the user accepts comes
//! here whole (bash's readline keys and zsh's accept widgets send it before
//! anything runs), is checked by [`crate::policy`], and is allowed, refused,
//! or (for `approve`) refused as pending until approvals exist. The second
//! is to notice when the hooks are gone, because a user can remove them:
//!
//! - every prompt sends a heartbeat carrying the nonce of the gate's last
//!   reply, and a dump of the hooks' state that the gate checks, the text of
//!   the hook functions included: compared with the text at the first
//!   prompt (before the user typed anything), a change degrades the session
//!   and every later check is refused, since changed hooks may claim any
//!   line (so no record says a line ran that the shell did not run);
//! - while a line runs, each simple command is checked again as the shell
//!   is about to run it (`Source::Command`): what an alias, a function,
//!   `eval` or `source` runs is refused like the same command typed;
//! - an Enter typed at a prompt must be followed by a check;
//! - an Enter typed while a command runs must not be feeding an interactive
//!   shell that has no hooks (`bash --norc`, `env -i bash`, `zsh -f`).
//!
//! Each failure marks the session degraded: shown on the status line,
//! recorded, and (if configured) the end of the session. The gate cannot
//! stop a user from starting an ungated program; it makes sure nobody can
//! miss that one was started.
//!
//! [`Gate`] is pure: messages and key events in, replies and [`Note`]s out,
//! with the clock and the view of the foreground process passed in.
//! `inject` prepares the shell, `socket` is the edge the session loop polls,
//! `foreground` reads `/proc`.

pub mod batch;
pub mod foreground;
pub mod inject;
pub mod socket;
pub mod wire;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::evidence::marker::{Marker, Outcome};
use crate::policy::{Env, Policy, Subject, Verdict};
use wire::{Message, Reply, Source};

/// How long after an Enter at a prompt the check must arrive.
pub const CHECK_WAIT: Duration = Duration::from_secs(2);
/// How long the shell may take to start its hooks once the user types.
pub const HELLO_WAIT: Duration = Duration::from_secs(10);

/// Something the session records or shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// A checked line: a marker for players and a structured record.
    Command(CommandRecord),
    /// The exit status of the last allowed line, known at the next prompt.
    Exit { id: u64, status: i32 },
    /// The hooks are gone or were bypassed; the text says how.
    Degraded(String),
    /// The hooks said hello.
    Hooked { shell: String, pid: i32, version: String },
    /// A line waits for approval; its CHECK is held until
    /// [`Gate::resolve`].
    Held(Box<Held>),
}

/// A line held for approval: its record (outcome `held`) and the rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    pub record: CommandRecord,
    pub rule: crate::policy::RuleRef,
}

/// The structured record of one checked line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandRecord {
    pub id: u64,
    pub line: String,
    pub cwd: String,
    /// `enter`, or `backstop` when the line bypassed the Enter gate.
    pub source: &'static str,
    /// `allow`, `deny`, or `pending` (an approve verdict, held).
    pub verdict: RecordVerdict,
    /// What happened to the line: `ran`, `refused`, `pending-refused`, or
    /// with approvals `held`, then `ran`, `denied`, `expired`, `withdrawn`
    /// or `error`.
    pub outcome: Outcome,
    pub rule: Option<String>,
    pub message: Option<String>,
    /// The programs the line would run, as the policy saw them.
    pub programs: Vec<String>,
    pub unsafe_expansions: Vec<String>,
}

/// The policy's verdict as the audit record names it: an approve verdict
/// is `pending` (held, or refused because it cannot wait).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordVerdict {
    Allow,
    Deny,
    Pending,
}

impl CommandRecord {
    /// The marker for this line, shown as `line` (masked).
    pub fn marker(&self, line: &str) -> Marker {
        Marker::Command { outcome: self.outcome, line: line.to_owned() }
    }

    /// The `a` record for this line, shown as `line` (masked).
    pub fn audit(&self, line: String) -> serde_json::Value {
        let mut json = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = json.as_object_mut() {
            obj.insert("kind".into(), "command".into());
            obj.insert("line".into(), line.into());
        }
        json
    }
}

/// Where the watcher believes the shell is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No hello yet: the shell is reading its startup files.
    Starting,
    /// A heartbeat came: the shell shows a prompt and waits for a line.
    Prompt,
    /// A line was allowed and runs until the next heartbeat.
    Running,
}

/// A foreground process, as `/proc` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    /// The short command name (`comm`).
    pub name: String,
    /// The arguments, `argv[0]` first.
    pub args: Vec<String>,
    /// Its controlling terminal is another than the session's (a PTY a
    /// program inside the session opened).
    pub other_terminal: bool,
}

pub struct Gate {
    policy: Policy,
    subject: Subject,
    home: String,
    token: String,
    nonce: String,
    shell_pid: Option<i32>,
    shell: String,
    /// The hooked shell's arguments when it said hello: after `exec bash`
    /// the same pid shows others.
    shell_args: Option<Vec<String>>,
    phase: Phase,
    next_id: u64,
    /// The allowed line whose exit status the next heartbeat brings.
    running: Option<u64>,
    /// An Enter at a prompt that no check has followed yet.
    check_due: Option<Instant>,
    started: Instant,
    degraded: Vec<String>,
    /// Approvals are available: approve verdicts are held, not refused.
    approvals: bool,
    /// The line held for approval.
    held: Option<CommandRecord>,
    /// The running line, as typed, and whether it was approved: a simple
    /// command of it that needs approval runs only if this line was
    /// approved and shows it.
    running_line: Option<(String, bool)>,
    /// The hooks' function definitions as the shell printed them at its
    /// first heartbeat, before the user could type anything.
    functions: Option<String>,
    /// The hooks were found changed: their checks can no longer be taken
    /// at their word, so every one is answered with a refusal (and the
    /// record says refused, never that a line ran).
    tampered: bool,
    /// The exec backstop enforces: a hookless shell on a terminal of its
    /// own (`script`, `pty.spawn`, a multiplexer) still has every program
    /// it starts decided, so it is not a way around the gate.
    exec_backstop: bool,
}

impl Gate {
    pub fn new(policy: Policy, subject: Subject, home: String, token: String, started: Instant) -> Self {
        Self {
            policy,
            subject,
            home,
            token,
            nonce: new_nonce(),
            shell_pid: None,
            shell: String::new(),
            shell_args: None,
            phase: Phase::Starting,
            exec_backstop: false,
            next_id: 1,
            running: None,
            check_due: None,
            started,
            degraded: Vec::new(),
            approvals: false,
            held: None,
            running_line: None,
            functions: None,
            tampered: false,
        }
    }

    /// Holds approve verdicts for approval instead of refusing them.
    pub fn enable_approvals(&mut self) {
        self.approvals = true;
    }

    /// Answers the held line: `None` lets it run (once: the hold is
    /// consumed), `Some((outcome, message))` refuses it. `None` as the
    /// reply: nothing was held.
    pub fn resolve(&mut self, refusal: Option<(Outcome, String)>) -> (Option<Reply>, Vec<Note>) {
        let Some(mut record) = self.held.take() else { return (None, Vec::new()) };
        let nonce = self.rotate();
        let reply = match refusal {
            None => {
                record.outcome = Outcome::Ran;
                record.message = None;
                self.running_line = Some((record.line.clone(), true));
                self.running = Some(record.id);
                self.phase = Phase::Running;
                Reply::Allow { nonce }
            }
            Some((outcome, message)) => {
                record.outcome = outcome;
                record.message = Some(message.clone());
                Reply::Deny { nonce, message }
            }
        };
        (Some(reply), vec![Note::Command(record)])
    }

    /// The hooked shell's pid, once it said hello.
    pub fn shell_pid(&self) -> Option<i32> {
        self.shell_pid
    }

    /// Says that the exec backstop enforces in this session (see the field).
    pub fn with_exec_backstop(mut self, enforcing: bool) -> Self {
        self.exec_backstop = enforcing;
        self
    }

    /// The hooked shell's arguments, read when it said hello.
    pub fn set_shell_args(&mut self, args: Vec<String>) {
        self.shell_args = Some(args);
    }

    /// Why the session is degraded, most recent last; empty when it is not.
    pub fn degraded(&self) -> &[String] {
        &self.degraded
    }

    fn degrade(&mut self, why: String, notes: &mut Vec<Note>) {
        if !self.degraded.contains(&why) {
            self.degraded.push(why.clone());
            notes.push(Note::Degraded(why));
        }
    }

    fn rotate(&mut self) -> String {
        self.nonce = new_nonce();
        self.nonce.clone()
    }

    /// Handles one message from a connection whose peer process is
    /// `peer_pid`. `None` as the reply means: drop the connection.
    pub fn handle(&mut self, message: Message, peer_pid: i32, now: Instant) -> (Option<Reply>, Vec<Note>) {
        let mut notes = Vec::new();
        match message {
            Message::Hello { token, shell, pid, version } => {
                if !constant_time_eq(token.as_bytes(), self.token.as_bytes()) {
                    self.degrade("a process sent the gate a wrong session token".into(), &mut notes);
                    return (None, notes);
                }
                if pid != peer_pid {
                    self.degrade(format!("the gate's hello named pid {pid} but came from pid {peer_pid}"), &mut notes);
                }
                if self.shell_pid.is_some_and(|p| p != pid) {
                    self.degrade(format!("a second shell (pid {pid}) loaded the hooks"), &mut notes);
                }
                if let Some(preset) = version.split(' ').find_map(|w| w.strip_prefix("preset=")) {
                    self.degrade(format!("the user's startup files defined the gate's own functions ({preset}) before the hooks could"), &mut notes);
                }
                self.shell_pid = Some(pid);
                self.shell = shell.clone();
                self.phase = Phase::Prompt;
                notes.push(Note::Hooked { shell, pid, version });
                (Some(Reply::Ok { nonce: self.rotate() }), notes)
            }
            Message::Prompt { nonce, status, pid, report } => {
                self.check_nonce(&nonce, "heartbeat", &mut notes);
                if Some(pid) != self.shell_pid {
                    self.degrade(format!("a heartbeat came from pid {pid}, not the hooked shell"), &mut notes);
                }
                for missing in missing_hooks(&self.shell, &report) {
                    self.degrade(format!("{missing} was removed or changed (re-installed at the next prompt)"), &mut notes);
                }
                let functions = hook_functions(&report);
                match &self.functions {
                    None => self.functions = Some(functions),
                    Some(expected) if *expected != functions => {
                        self.tampered = true;
                        self.degrade("the gate's hook functions were redefined: their text is not what the hooks installed; every command is refused from here on".into(), &mut notes);
                    }
                    Some(_) => {}
                }
                self.running_line = None;
                if let Some(id) = self.running.take() {
                    notes.push(Note::Exit { id, status });
                }
                self.phase = Phase::Prompt;
                self.check_due = None;
                let _ = now;
                (Some(Reply::Ok { nonce: self.rotate() }), notes)
            }
            Message::Check { nonce, source, cwd, line, command, vars } => {
                self.check_nonce(&nonce, "check", &mut notes);
                self.check_due = None;
                let (reply, record) = self.check(source, cwd, line, &command, vars);
                if let (Reply::Hold, Some((record, Some(rule)))) = (&reply, &record) {
                    self.held = Some(record.clone());
                    notes.push(Note::Held(Box::new(Held { record: record.clone(), rule: rule.clone() })));
                    return (Some(reply), notes);
                }
                if let Some((record, _)) = record {
                    if source == Source::Command {
                        // One command of a running line: its refusal is
                        // recorded; the line's own record stands.
                        notes.push(Note::Command(record));
                        return (Some(reply), notes);
                    }
                    if record.outcome == Outcome::Ran {
                        self.running_line = Some((record.line.clone(), false));
                    }
                    if source == Source::Backstop {
                        self.degrade("a line reached the shell without passing the Enter gate (the backstop checked it)".into(), &mut notes);
                    }
                    if record.outcome == Outcome::Ran {
                        self.running = Some(record.id);
                        self.phase = Phase::Running;
                    }
                    notes.push(Note::Command(record));
                }
                (Some(reply), notes)
            }
        }
    }

    fn check_nonce(&mut self, got: &str, what: &str, notes: &mut Vec<Note>) {
        if !constant_time_eq(got.as_bytes(), self.nonce.as_bytes()) {
            self.degrade(format!("a {what} carried a stale or forged nonce"), notes);
        }
    }

    fn check(&mut self, source: Source, cwd: String, line: String, command: &str, vars: Vec<(String, String)>) -> (Reply, Option<(CommandRecord, Option<crate::policy::RuleRef>)>) {
        let mut env = Env::new(&cwd, &self.home);
        env.vars.extend(vars);
        // The hook sends every variable the line names that is set.
        env.complete = true;
        env.execs_checked = self.exec_backstop;
        if self.tampered {
            let text = if source == Source::Command { command.to_owned() } else { line };
            return self.refuse_tampered(source, cwd, text);
        }
        if source == Source::Command {
            return self.check_command(cwd, line, command, &env);
        }
        // The hooks' own names are not for typing: a line that uses them is
        // after the gate itself.
        if line.contains(HOOK_PREFIX) {
            return self.own_names(source, cwd, line);
        }
        let mut decision = self.policy.check(&line, &self.subject, &env);
        if source == Source::Enter && decision.incomplete {
            return (Reply::More { nonce: self.rotate() }, None);
        }
        self.check_trap_handlers(&mut decision, &env);
        // The backstop checks the command about to run as well as the line
        // history holds (which may be another line, with HISTCONTROL).
        if source == Source::Backstop && !command.is_empty() && command != line {
            let alone = self.policy.check(command, &self.subject, &env);
            if alone.verdict > decision.verdict {
                decision = alone;
            }
        }
        if line.trim().is_empty() && decision.verdict == Verdict::Allow {
            return (Reply::Allow { nonce: self.rotate() }, None);
        }
        let id = self.next_id;
        self.next_id += 1;
        let rule = decision.rule.as_ref().map(|r| r.name.clone());
        let why = decision.rule.as_ref().map(|r| r.message.clone());
        let (verdict, outcome, message) = match decision.verdict {
            Verdict::Allow => (RecordVerdict::Allow, Outcome::Ran, None),
            Verdict::Deny => (
                RecordVerdict::Deny,
                Outcome::Refused,
                Some(format!("refused by rule {}: {}", rule.as_deref().unwrap_or("?"), why.as_deref().unwrap_or(""))),
            ),
            // Held only at the Enter gate: a backstop check runs inside a
            // line the shell already accepted, where nothing can wait.
            Verdict::Approve if self.approvals && source == Source::Enter && self.held.is_none() => (RecordVerdict::Pending, Outcome::Held, None),
            Verdict::Approve => {
                let because = if !self.approvals {
                    "approvals are not available on this host (no [collector] url)"
                } else if source != Source::Enter {
                    "only a line typed at the prompt can wait for approval, and this one ran inside another command"
                } else {
                    "another line is already waiting for approval"
                };
                (
                    RecordVerdict::Pending,
                    Outcome::PendingRefused,
                    Some(format!(
                        "rule {} needs approval ({}); {because}, so the line was not run",
                        rule.as_deref().unwrap_or("?"),
                        why.as_deref().unwrap_or("")
                    )),
                )
            }
        };
        let record = CommandRecord {
            id,
            line,
            cwd,
            source: source.as_str(),
            verdict,
            outcome,
            rule,
            message: message.clone(),
            programs: decision.commands.iter().map(|c| c.program.clone()).collect(),
            unsafe_expansions: decision.unsafe_expansions,
        };
        if record.outcome == Outcome::Held {
            return (Reply::Hold, Some((record, decision.rule)));
        }
        let nonce = self.rotate();
        let reply = match message {
            None => Reply::Allow { nonce },
            Some(message) => Reply::Deny { nonce, message },
        };
        (reply, Some((record, decision.rule)))
    }

    /// One simple command of a running line, as the shell is about to run
    /// it. Allowed: nothing is recorded (the line's record stands). Refused
    /// (or needing an approval the line did not have): recorded on its own,
    /// with what it was part of.
    fn check_command(&mut self, cwd: String, line: String, command: &str, env: &Env) -> (Reply, Option<(CommandRecord, Option<crate::policy::RuleRef>)>) {
        if command.contains(HOOK_PREFIX) {
            return self.own_names(Source::Command, cwd, command.to_owned());
        }
        let mut decision = self.policy.check(command, &self.subject, env);
        // bash traps the header of a compound command too (`for i in 1 2`,
        // `case $x in`): what runs there is the expansion of its words.
        if decision.incomplete {
            if let Some(words) = batch::header_words(command) {
                decision = self.policy.check(&words, &self.subject, env);
            }
        }
        self.check_trap_handlers(&mut decision, env);
        let approved = self.running_line.as_ref().is_some_and(|(typed, approved)| *approved && typed.contains(command.trim()));
        let rule = decision.rule.as_ref().map(|r| r.name.clone());
        let why = decision.rule.as_ref().map(|r| r.message.clone()).unwrap_or_default();
        let (verdict, outcome, message) = match decision.verdict {
            Verdict::Allow => return (Reply::Allow { nonce: self.rotate() }, None),
            Verdict::Approve if approved => return (Reply::Allow { nonce: self.rotate() }, None),
            Verdict::Deny => (RecordVerdict::Deny, Outcome::Refused, format!("refused by rule {}: {why} (the command as the shell was about to run it: {command})", rule.as_deref().unwrap_or("?"))),
            Verdict::Approve => (
                RecordVerdict::Pending,
                Outcome::PendingRefused,
                format!("rule {} needs approval ({why}); this command ran inside an allowed line that did not show it, so it was not run: {command}", rule.as_deref().unwrap_or("?")),
            ),
        };
        let id = self.next_id;
        self.next_id += 1;
        let record = CommandRecord {
            id,
            line: command.to_owned(),
            cwd,
            source: Source::Command.as_str(),
            verdict,
            outcome,
            rule,
            message: Some(message.clone()),
            programs: decision.commands.iter().map(|c| c.program.clone()).collect(),
            unsafe_expansions: decision.unsafe_expansions,
        };
        let _ = line;
        (Reply::Deny { nonce: self.rotate(), message }, Some((record, decision.rule)))
    }

    /// A trap's handler runs without the DEBUG trap (neither shell traces
    /// it), so the code a `trap CODE SIG` sets is judged now, as a line of
    /// its own; the stricter verdict stands.
    fn check_trap_handlers(&self, decision: &mut crate::policy::Decision, env: &Env) {
        let handlers: Vec<String> = decision.commands.iter().filter_map(batch::trap_handler).collect();
        for handler in handlers {
            let inner = self.policy.check(&handler, &self.subject, env);
            if inner.verdict > decision.verdict {
                *decision = inner;
            }
        }
    }

    /// A check from hooks found changed.
    fn refuse_tampered(&mut self, source: Source, cwd: String, line: String) -> (Reply, Option<(CommandRecord, Option<crate::policy::RuleRef>)>) {
        let message = "the gate's hooks were changed in this shell, so nothing it asks about is run; start a new session".to_owned();
        self.refusal(source, cwd, line, "custos-hooks-changed", message)
    }

    /// A line or command that names the hooks' own functions or variables.
    fn own_names(&mut self, source: Source, cwd: String, line: String) -> (Reply, Option<(CommandRecord, Option<crate::policy::RuleRef>)>) {
        let message = format!("the gate's own functions and variables ({HOOK_PREFIX}*) are not for use; nothing was run");
        self.refusal(source, cwd, line, "custos-hooks", message)
    }

    /// A refusal by the gate itself (no policy rule), recorded.
    fn refusal(&mut self, source: Source, cwd: String, line: String, rule: &str, message: String) -> (Reply, Option<(CommandRecord, Option<crate::policy::RuleRef>)>) {
        let id = self.next_id;
        self.next_id += 1;
        let record = CommandRecord {
            id,
            line,
            cwd,
            source: source.as_str(),
            verdict: RecordVerdict::Deny,
            outcome: Outcome::Refused,
            rule: Some(rule.into()),
            message: Some(message.clone()),
            programs: Vec::new(),
            unsafe_expansions: Vec::new(),
        };
        (Reply::Deny { nonce: self.rotate(), message }, Some((record, None)))
    }

    /// The user pressed Enter. At a prompt, a check must follow within
    /// [`CHECK_WAIT`]; while a command runs, the foreground process must
    /// not be an interactive shell without hooks.
    /// `line_editing` says whether canonical mode is off on the terminal
    /// (a line editor is reading).
    pub fn on_enter(&mut self, now: Instant, line_editing: bool, foreground: impl FnOnce() -> Vec<Process>) -> Vec<Note> {
        let mut notes = Vec::new();
        match self.phase {
            Phase::Prompt | Phase::Starting => {
                if self.check_due.is_none() {
                    let wait = if self.phase == Phase::Starting { HELLO_WAIT.saturating_sub(now.saturating_duration_since(self.started)).max(CHECK_WAIT) } else { CHECK_WAIT };
                    self.check_due = Some(now + wait);
                }
            }
            Phase::Running => {
                for p in foreground() {
                    if Some(p.pid) == self.shell_pid && self.shell_args.as_ref() == Some(&p.args) {
                        // The hooked shell itself. Reading with its line
                        // editor means it shows a prompt, and every prompt
                        // sends a heartbeat first: this one did not.
                        if line_editing {
                            self.degrade("a prompt came back without the gate's heartbeat: the hooks were removed".into(), &mut notes);
                        }
                        continue;
                    }
                    // A fork of the hooked shell (a subshell, the hooks'
                    // own coprocess relay) has its command line and its
                    // hooks: not a shell without them.
                    if !p.other_terminal && self.shell_args.as_ref() == Some(&p.args) {
                        continue;
                    }
                    if p.other_terminal {
                        if self.exec_backstop {
                            continue;
                        }
                        if let Some(why) = ungated_shell(&p) {
                            self.degrade(format!("{why}, on a terminal of its own inside the session (script, pty.spawn, expect...)"), &mut notes);
                        }
                        continue;
                    }
                    if matches!(p.name.as_str(), "tmux" | "screen" | "tmux: client" | "dtach" | "abduco") {
                        if self.exec_backstop {
                            continue;
                        }
                        self.degrade(format!("a terminal multiplexer is in the foreground ({}, pid {}): its shells have terminals of their own, without the gate's hooks", p.args.join(" "), p.pid), &mut notes);
                        continue;
                    }
                    if let Some(why) = ungated_shell(&p) {
                        self.degrade(why, &mut notes);
                    }
                }
            }
        }
        notes
    }

    /// When [`Gate::poll`] must next run.
    pub fn deadline(&self) -> Option<Instant> {
        self.check_due
    }

    /// Notices a check that did not come.
    pub fn poll(&mut self, now: Instant) -> Vec<Note> {
        let mut notes = Vec::new();
        if self.check_due.is_some_and(|d| now >= d) {
            self.check_due = None;
            let why = if self.phase == Phase::Starting {
                "the shell's hooks never started (the user's startup files may have removed them)"
            } else {
                "Enter at a prompt was not followed by a check: the hooks were removed"
            };
            self.degrade(why.into(), &mut notes);
        }
        notes
    }
}

/// Why `p` is an interactive shell that no hooks watch, if it is one.
fn ungated_shell(p: &Process) -> Option<String> {
    const SHELLS: &[&str] = &["bash", "zsh", "sh", "dash", "ksh", "mksh", "ksh93", "fish", "tcsh", "csh", "ash", "busybox", "yash", "posh", "custos-shell"];
    let name = p.name.trim_start_matches('-');
    if !SHELLS.contains(&name) {
        return None;
    }
    // A script or `-c` is not an interactive shell; `-i` makes one anyway.
    let mut interactive = true;
    let mut args = p.args.iter().skip(1);
    while let Some(a) = args.next() {
        if a == "-i" || a == "--interactive" {
            interactive = true;
            break;
        }
        if a == "-c" || (a.starts_with('-') && !a.starts_with("--") && a.contains('c')) {
            interactive = false;
            break;
        }
        if a == "-o" || a == "-O" || a == "--rcfile" || a == "--init-file" {
            args.next();
            continue;
        }
        if !a.starts_with('-') && !a.starts_with('+') {
            interactive = false;
            break;
        }
    }
    interactive.then(|| format!("an interactive shell without the gate's hooks is running: {} (pid {})", p.args.join(" "), p.pid))
}

/// What a heartbeat's report must contain, per shell; each missing piece
/// named.
fn missing_hooks(shell: &str, report: &str) -> Vec<&'static str> {
    let needs: &[(&str, &'static str)] = match shell {
        "bash" => &[
            (BASH_TRAP, "the DEBUG trap backstop"),
            ("functrace on", "functrace"),
            ("\"\\C-m\": \"\\C-x\\C-_c\\C-x\\C-_a\"", "the Enter key binding"),
            ("\"\\C-j\": \"\\C-x\\C-_c\\C-x\\C-_a\"", "the C-j key binding"),
            ("\"\\C-x\\C-_c\": \"__custos_enter\"", "the gate's readline command"),
        ],
        "zsh" => &[
            ("__custos_debug", "the DEBUG trap backstop"),
            ("widget accept-line=user:__custos_accept", "the accept-line widget"),
            ("__custos_preexec", "the preexec backstop"),
        ],
        _ => &[],
    };
    let functions = hook_functions(report);
    // The state, without the functions' text (which names the hooks too).
    let state = report.split("-- functions --").next().unwrap_or_default();
    let mut missing: Vec<&'static str> = needs.iter().filter(|(text, _)| !state.contains(text)).map(|(_, name)| *name).collect();
    if matches!(shell, "bash" | "zsh") && functions.trim().is_empty() {
        missing.push("the hook functions' definitions");
    }
    missing
}

/// The bash hooks' DEBUG trap exactly as `trap -p DEBUG` prints it (see
/// `hooks/custos.bash`): a trap that merely contains the call could let
/// commands through before it.
pub(crate) const BASH_TRAP: &str = r#"trap -- '[[ ${FUNCNAME-} == @(__custos_send|__custos_recv|__custos_ask|__custos_refused|__custos_enter|__custos_debug|__custos_install|__custos_prompt|__custos_editing) || $BASH_COMMAND == @(__custos_prompt|__custos_editing|__custos_enter|__custos_edit) ]] || \__custos_debug "$@"' DEBUG"#;

/// What every name of the hooks starts with.
const HOOK_PREFIX: &str = "__custos_";

/// The hooks' function definitions in a heartbeat's report: the lines
/// between `-- functions --` and `-- end functions --`.
fn hook_functions(report: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in report.lines() {
        match line {
            "-- functions --" => inside = true,
            "-- end functions --" => inside = false,
            _ if inside => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}

fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fills `buf` from the kernel's random source. The per-session token and
/// nonces must not be guessable by other processes.
pub fn fill_random(buf: &mut [u8]) {
    use std::io::Read as _;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(buf).is_ok() {
            return;
        }
    }
    // /dev/urandom unreadable: fall back to a v4 UUID's randomness.
    for chunk in buf.chunks_mut(16) {
        let id = uuid::Uuid::now_v7().as_u128() ^ u128::from(std::process::id()).rotate_left(64);
        for (dst, src) in chunk.iter_mut().zip(id.to_le_bytes()) {
            *dst = src;
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
