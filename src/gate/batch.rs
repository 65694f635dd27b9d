//! The command gate for a shell without a terminal: a script on stdin
//! (`ssh -T host < script`, `bash -s`, `zsh -s`), a script file
//! (`bash script.sh`, `zsh script.zsh`), or a `-c` command that starts
//! either.
//!
//! Nobody types these lines, so there is no Enter to gate: bash loads
//! `hooks/batch.bash` through `BASH_ENV`, whose DEBUG trap (inherited by
//! functions, subshells and command substitutions through `functrace`)
//! asks before every simple command, as it is about to run, with the text
//! bash is about to execute and the values of the variables it names.
//! zsh loads `hooks/batch.zsh` as the `.zshenv` of a `ZDOTDIR` of ours;
//! its DEBUG trap runs before every sublist (a compound command first as a
//! whole, then each command in it), in functions, subshells and command
//! substitutions alike, with the text in `ZSH_DEBUG_CMD`. Aliases,
//! functions, `eval` of a decoded payload, a script file, a nested shell:
//! all end as commands, each asked about on its own.
//!
//! Each question comes on a connection of its own (bash's `/dev/tcp` on
//! loopback, a port and a token the recorder chose): subshells ask at the
//! same time, and one shared descriptor could hand one the other's answer.
//! A connection must carry the token before anything is checked.
//!
//! The hooks run in a shell the user scripts, so the checks also refuse
//! what would take the hooks away: `trap` on DEBUG, turning off
//! `functrace` or `extdebug`, `enable`, changing `BASH_ENV`, and the
//! hooks' own functions (which are read-only besides), and `bash -p`
//! (privileged mode reads no `BASH_ENV`). zsh's functions
//! cannot be made read-only and its options have many spellings, so for
//! zsh the checks refuse by name and by text: `TRAPDEBUG`, `trap -`,
//! `unfunction`, `unset -f`, `functions -c` and the `functions` array, a
//! function defined under a name made at run time, any spelling of
//! `debug_before_cmd`, any change to `ZDOTDIR`, `disable`, `zmodload -u`
//! or `-F`, and a zsh that would read no `.zshenv` (`-f`, `--no-rcs`,
//! `-o no_rcs`, `+o rcs`, `--emulate`, `ARGV0`, `exec -a`). What a script
//! can still do past this (a shell that reads neither, such as `dash`, a
//! zsh under another name, or another interpreter) is for the exec-level
//! gate.
//!
//! A shell this gate cannot follow into (`sh script.sh` and `dash -s` on
//! Debian, `ksh`, bash run under another name) would run commands nobody
//! checks: it gets the policy's `[policy] unknown` verdict (default deny,
//! approve where a collector is configured)
//! instead of being let through. Other interpreters (`python3 x.py`) are
//! for the exec-level gate. Neither bash nor zsh runs the DEBUG trap inside
//! a trap handler, so a handler (`trap 'CODE' EXIT`, zsh's `TRAPEXIT() {…}`)
//! is checked when it is set, as a line of its own, and anything opaque in
//! it (an `eval` of what cannot be known) gets `unknown` too.
//!
//! After a refusal, with `on_refusal_noninteractive = "exit"`, every later
//! question is refused too: the refused shell exits 126, and a subshell or
//! a parent that was still running cannot run anything more.
//!
//! Pure: a CHECK message in, a reply and the record of the command out.

use std::collections::HashSet;

use super::wire::{Message, Reply};
use super::{constant_time_eq, CommandRecord, RecordVerdict};
use crate::config::OnRefusal;
use crate::evidence::marker::Outcome;
use crate::policy::{Env, Policy, Subject, Verdict};

/// Distinct allowed commands recorded per session (a loop runs the same
/// one many times; each distinct text is recorded once, refusals always).
const MAX_RECORDED: usize = 20_000;

/// Shells whose commands this gate checks one by one when they run
/// without a terminal (through `BASH_ENV` and the bash.bashrc hook).
/// `eval` runs in the same shell, under the same trap; `script` starts an
/// interactive `$SHELL`, which the bash.bashrc hook reaches.
const REACHED: &[&str] = &["bash", "zsh", "eval", "script"];

/// The rule name recorded when `[policy] unknown` decided.
pub const UNKNOWN_RULE: &str = crate::policy::UNKNOWN_RULE;

pub struct BatchGate {
    policy: Policy,
    subject: Subject,
    home: String,
    token: String,
    on_refusal: OnRefusal,
    /// A refusal stopped the session (with `exit`).
    stopped: Option<String>,
    recorded: HashSet<String>,
    next_id: u64,
    /// The `-c` line an approver already approved: its commands run.
    approved: Option<String>,
    /// The exec backstop enforces: operands are checked again at exec.
    execs_checked: bool,
}

/// What one question led to.
pub struct Answer {
    /// `None`: drop the connection unanswered (a wrong token).
    pub reply: Option<Reply>,
    /// The record to write, if this command is recorded.
    pub record: Option<CommandRecord>,
    /// The question was refused.
    pub refused: bool,
}

impl BatchGate {
    pub fn new(policy: Policy, subject: Subject, home: String, token: String, on_refusal: OnRefusal) -> Self {
        Self { policy, subject, home, token, on_refusal, stopped: None, recorded: HashSet::new(), next_id: 1, approved: None, execs_checked: false }
    }

    /// The `-c` line was approved before the shell started: the commands it
    /// is made of are not held again.
    pub fn with_approved(mut self, line: Option<String>) -> Self {
        self.approved = line;
        self
    }

    /// Says that the exec backstop enforces in this session.
    pub fn with_exec_backstop(mut self, enforcing: bool) -> Self {
        self.execs_checked = enforcing;
        self
    }

    /// Why the session stopped, once a refusal stopped it.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Answers one message from a connection.
    pub fn answer(&mut self, message: Message) -> Answer {
        let Message::Check { nonce: token, cwd, line, command, vars, .. } = message else {
            return Answer { reply: None, record: None, refused: false };
        };
        if !constant_time_eq(token.as_bytes(), self.token.as_bytes()) {
            return Answer { reply: None, record: None, refused: false };
        }
        let text = if command.is_empty() { line } else { command };
        let mut env = Env::new(&cwd, &self.home);
        env.vars.extend(vars);
        // The DEBUG trap asks again about every command eval and a nested
        // bash or zsh run, so their code need not be known now.
        env.traced = true;
        // The hook sends every variable the command names that is set.
        env.complete = true;
        env.execs_checked = self.execs_checked;
        let mut decision = self.policy.check(&text, &self.subject, &env);
        // bash's head of a loop or `case` alone does not parse; zsh sends
        // the whole compound command, which does.
        if decision.parse_error.is_some() {
            if let Some(words) = header_words(&text) {
                decision = self.policy.check(&words, &self.subject, &env);
            }
        }
        let tamper = tampering(&decision.commands, &text);
        let (rule_name, rule_message, verdict) = match self.unseen(&text, &decision, &env) {
            Some(decided) if decision.verdict == Verdict::Allow => decided,
            _ => (
                decision.rule.as_ref().map(|r| r.name.clone()),
                decision.rule.as_ref().map(|r| r.message.clone()).unwrap_or_default(),
                decision.verdict,
            ),
        };
        let (verdict, message) = if let Some(why) = &self.stopped {
            (RecordVerdict::Deny, Some(format!("not run: the script stopped after a refused command ({why})")))
        } else if let Some(what) = tamper {
            (RecordVerdict::Deny, Some(format!("refused: {what} would switch off the command gate")))
        } else {
            let rule = rule_name.clone().unwrap_or_else(|| "?".into());
            let why = rule_message;
            match verdict {
                Verdict::Allow => (RecordVerdict::Allow, None),
                Verdict::Approve if self.approved.as_deref().is_some_and(|a| a.contains(text.trim())) => (RecordVerdict::Allow, None),
                Verdict::Deny => (RecordVerdict::Deny, Some(format!("refused by rule {rule}: {why}"))),
                Verdict::Approve => (
                    RecordVerdict::Pending,
                    Some(format!("rule {rule} needs approval ({why}); a command in a script cannot wait for approval, so it was not run")),
                ),
            }
        };
        let refused = message.is_some();
        if refused && self.stopped.is_none() && self.on_refusal == OnRefusal::Exit {
            self.stopped = Some(message.clone().unwrap_or_default());
        }
        let record = (refused || (self.recorded.len() < MAX_RECORDED && self.recorded.insert(text.clone()))).then(|| {
            let id = self.next_id;
            self.next_id += 1;
            CommandRecord {
                id,
                line: text.clone(),
                cwd,
                source: "script",
                verdict,
                outcome: if refused { if verdict == RecordVerdict::Pending { Outcome::PendingRefused } else { Outcome::Refused } } else { Outcome::Ran },
                rule: rule_name.clone(),
                message: message.clone(),
                programs: decision.commands.iter().map(|c| c.program.clone()).collect(),
                unsafe_expansions: decision.unsafe_expansions.clone(),
            }
        });
        let nonce = "-".to_owned();
        let reply = match message {
            None => Reply::Allow { nonce },
            Some(message) => Reply::Deny { nonce, message },
        };
        Answer { reply: Some(reply), record, refused }
    }
}

impl BatchGate {
    /// What the rules cannot see in an allowed command, decided: a shell
    /// this gate cannot follow into gets `[policy] unknown`, and a trap's
    /// handler (which bash runs without its DEBUG trap) is checked now, as
    /// a line of its own, with anything opaque in it `unknown` too.
    fn unseen(&self, text: &str, decision: &crate::policy::Decision, env: &Env) -> Option<(Option<String>, String, Verdict)> {
        let unknown = |what: &str| {
            (self.policy.unknown() != Verdict::Allow).then(|| {
                (
                    Some(UNKNOWN_RULE.to_owned()),
                    format!("{what} would run commands the gate cannot see; run them with bash, which is checked command by command, or ask an administrator about [policy] unknown"),
                    self.policy.unknown(),
                )
            })
        };
        // A shell behind a wrapper that resets the environment starts
        // without BASH_ENV, so the hooks do not reach it either.
        let reached = |c: &&crate::policy::ParsedCommand| {
            REACHED.contains(&c.name.as_str()) && !c.wrappers.iter().any(|w| ["sudo", "doas", "pkexec", "runuser", "chroot"].contains(&w.as_str()))
        };
        if let Some(c) = decision.commands.iter().find(|c| c.unseen_code && !reached(c)) {
            return unknown(&format!("{} (a script file, or stdin)", c.name));
        }
        // zsh's `TRAPEXIT() { … }` is a trap handler too: its body was
        // checked with the definition, but what it runs unseen (an `eval`
        // of a decoded string) will not be traced when it runs.
        let definition = text.trim_start().trim_start_matches("function").trim_start();
        if definition.starts_with("TRAP") && decision.commands.iter().any(|c| c.unseen_code) {
            return unknown("this zsh trap function");
        }
        let handler = decision.commands.iter().find_map(trap_handler)?;
        // A handler runs without the DEBUG trap: nothing in it is traced.
        let untraced = Env { traced: false, ..env.clone() };
        let inner = self.policy.check(&handler, &self.subject, &untraced);
        if inner.verdict != Verdict::Allow {
            return Some((inner.rule.as_ref().map(|r| r.name.clone()), inner.rule.as_ref().map(|r| r.message.clone()).unwrap_or_default(), inner.verdict));
        }
        if inner.commands.iter().any(|c| c.unseen_code) {
            return unknown("this trap's handler");
        }
        None
    }
}

/// The code of `trap CODE SIGNAL…`, when it sets a handler (not `trap -
/// SIG`, `trap '' SIG`, `trap SIG` or `trap -p`).
pub(crate) fn trap_handler(c: &crate::policy::ParsedCommand) -> Option<String> {
    if c.name != "trap" || c.args.len() < 2 {
        return None;
    }
    let code = &c.args.first()?.text;
    (code != "-" && !code.trim().is_empty()).then(|| code.clone())
}

/// The DEBUG trap also runs before the head of a `for`, `select` or `case`,
/// and `BASH_COMMAND` then holds only that head (`for i in 1 2`, `case $x
/// in `), which does not parse on its own. What runs there is the
/// expansion of its words, so those are checked as the arguments of `:`.
pub(crate) fn header_words(text: &str) -> Option<String> {
    let name_then = |rest: &str| -> Option<String> {
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let (name, after) = rest.split_at(end);
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        match after.trim_start().strip_prefix("in") {
            Some(words) if words.is_empty() || words.starts_with(' ') => Some(format!(":{words}")),
            _ if after.trim().is_empty() => Some(":".into()),
            _ => None,
        }
    };
    if let Some(rest) = text.strip_prefix("for ").or_else(|| text.strip_prefix("select ")) {
        return name_then(rest.trim_start());
    }
    let word = text.strip_prefix("case ")?.trim_end().strip_suffix(" in")?;
    Some(format!(": {word}"))
}

/// What in `text` would take the backstop away, if anything.
fn tampering(commands: &[crate::policy::ParsedCommand], text: &str) -> Option<String> {
    if text.contains("BASH_ENV") || text.contains("__custos") {
        return Some("a change to BASH_ENV or the hooks' functions".into());
    }
    if let Some(what) = zsh_text_tampering(text) {
        return Some(what);
    }
    // A bash started in POSIX or privileged mode reads no BASH_ENV; both
    // reach a child through these variables.
    if text.contains("SHELLOPTS") || text.contains("POSIXLY_CORRECT") {
        return Some("a change to SHELLOPTS or POSIXLY_CORRECT".into());
    }
    // `env -i` and `exec -c` empty the environment of what they run,
    // BASH_ENV with it; `exec -a sh zsh` starts the shell emulating sh (no
    // `.zshenv`), and bash in posix mode (no `BASH_ENV`). The policy sees
    // through both wrappers, so look at the words.
    let words: Vec<&str> = text.split_whitespace().collect();
    if let Some(at) = words.iter().position(|w| *w == "exec") {
        let options: Vec<&&str> = words.get(at + 1..).unwrap_or_default().iter().take_while(|w| w.starts_with('-') && **w != "--").collect();
        if options.iter().any(|w| w.contains('c')) {
            return Some("`exec -c`".into());
        }
        if options.iter().any(|w| w.contains('a')) {
            return Some("`exec -a`".into());
        }
    }
    if let Some(at) = words.iter().position(|w| *w == "env" || w.ends_with("/env")) {
        if words.get(at + 1..).unwrap_or_default().iter().any(|w| *w == "-i" || *w == "--ignore-environment" || *w == "-" || (w.starts_with('-') && !w.starts_with("--") && w.contains('i'))) {
            return Some("`env -i`".into());
        }
    }
    for c in commands {
        let words: Vec<&str> = c.flags.iter().map(String::as_str).chain(c.args.iter().map(|a| a.text.as_str())).collect();
        let any = |f: &dyn Fn(&str) -> bool| words.iter().any(|w| f(w));
        let hit = match c.name.as_str() {
            // zsh: `trap -` alone resets every trap, DEBUG with them.
            "trap" => any(&|w| w.eq_ignore_ascii_case("DEBUG") || w.eq_ignore_ascii_case("RETURN")) || words == ["-"],
            "set" => {
                any(&|w| w.starts_with('+') && w.contains('T'))
                    || any(&|w| w.starts_with('-') && !w.starts_with("--") && w.contains('p'))
                    || (any(&|w| w == "+o") && any(&|w| w == "functrace"))
                    || (any(&|w| w == "-o") && any(&|w| w == "posix" || w == "privileged"))
            }
            "shopt" => any(&|w| w == "extdebug"),
            "enable" | "disable" => true,
            "env" => any(&|w| w == "-i" || w == "--ignore-environment" || w == "-"),
            "bash" | "sh" => any(&|w| w == "--posix" || (w.starts_with('-') && !w.starts_with("--") && w.contains('p')) || w == "privileged"),
            // A zsh that reads no startup files, or starts as sh or ksh
            // (which read no `.zshenv`), never loads the hooks.
            "zsh" => any(&|w| {
                let flag = w.starts_with('-') && !w.starts_with("--") && w.contains('f');
                flag || w == "+o" || matches!(option_name(w).as_str(), "norcs" | "emulate")
            }),
            // The hooks' functions can be removed by a name made at run time.
            "unfunction" => true,
            "unset" | "unhash" => any(&|w| w.starts_with('-') && (w.contains('f') || w.contains('m'))),
            // `functions -c f TRAPDEBUG` copies a function over the trap's.
            "functions" => any(&|w| w.starts_with('-') && w.contains('c')),
            "setopt" | "unsetopt" => any(&|w| w.starts_with('-') && w.contains('m')),
            // Unloading (or disabling the features of) zsh/net/tcp or
            // zsh/parameter leaves the hooks without their builtins.
            "zmodload" => any(&|w| w.starts_with('-') && (w.contains('u') || w.contains('F'))),
            name => name.starts_with("__custos"),
        };
        if hit {
            return Some(format!("`{}`", c.name));
        }
    }
    None
}

/// `ZDOTDIR=VALUE` or `export ZDOTDIR=VALUE`, alone: one word of value, no
/// command after it and no command substitution in it.
fn zdotdir_assignment(text: &str) -> bool {
    let text = text.trim();
    let Some(value) = text.strip_prefix("export ").unwrap_or(text).trim_start().strip_prefix("ZDOTDIR=") else { return false };
    !value.contains(|c: char| c.is_whitespace() || ";&|<>`".contains(c)) && !value.contains("$(")
}

/// A zsh option or long flag as zsh compares them: case, `_` and `-`
/// ignored (`--no-rcs`, `NO_RCS` and `norcs` are one option).
fn option_name(word: &str) -> String {
    word.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

/// zsh's hooks are taken away by names and assignments the parsed commands
/// do not show: the DEBUG trap's function, the option that runs it before
/// each command, the `ZDOTDIR` every later zsh reads them from, a function
/// defined under a name made at run time (which may be `TRAPDEBUG`), the
/// `functions` array, and `ARGV0` (a zsh started as `sh` reads no
/// `.zshenv`).
fn zsh_text_tampering(text: &str) -> Option<String> {
    if text.contains("TRAPDEBUG") || option_name(text).contains("debugbeforecmd") {
        return Some("a change to the DEBUG trap".into());
    }
    // `$ZDOTDIR` and `${ZDOTDIR}` read it; any other mention may set it,
    // except a plain assignment on its own (`export ZDOTDIR=~/.config/zsh`
    // in the user's .zshenv): the trap takes the new value as the user's
    // and puts ours back before the next command runs.
    if !zdotdir_assignment(text) && text.replace("${ZDOTDIR}", "").replace("$ZDOTDIR", "").contains("ZDOTDIR") {
        return Some("a change to ZDOTDIR".into());
    }
    if text.contains("ARGV0") {
        return Some("ARGV0".into());
    }
    let assigned = |array: &str| {
        text.match_indices(array).any(|(at, _)| {
            let before = text.get(..at).and_then(|t| t.chars().next_back());
            let after = text.get(at + array.len()..).and_then(|t| t.chars().next());
            before.is_none_or(|c| c.is_whitespace() || ";&|({".contains(c)) && matches!(after, Some('[' | '=' | '+'))
        })
    };
    if assigned("functions") || assigned("dis_functions") {
        return Some("a change to the functions array".into());
    }
    // A function defined under a name that is not a plain word.
    for (at, _) in text.match_indices("()") {
        if !text.get(at + 2..).unwrap_or_default().trim_start().starts_with('{') {
            continue;
        }
        let before = text.get(..at).unwrap_or_default().trim_end();
        let name = before.rsplit(|c: char| c.is_whitespace() || ";&|".contains(c)).next().unwrap_or_default();
        if name.contains(['$', '`', '"', '\'', '\\']) {
            return Some("a function defined under a name made at run time".into());
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    for pair in words.windows(2) {
        if let [first, name] = pair {
            if *first == "function" && name.contains(['$', '`', '"', '\'', '\\']) {
                return Some("a function defined under a name made at run time".into());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::gate::wire::Source;

    fn gate(on: OnRefusal) -> BatchGate {
        let subject = Subject { user: "alice".into(), groups: vec![], oidc_groups: vec![] };
        BatchGate::new(Policy::default_policy(), subject, "/home/alice".into(), "tok".into(), on)
    }

    fn ask(g: &mut BatchGate, command: &str) -> Answer {
        g.answer(Message::Check { nonce: "tok".into(), source: Source::Backstop, cwd: "/tmp".into(), line: String::new(), command: command.into(), vars: vec![] })
    }

    fn allowed(a: &Answer) -> bool {
        matches!(a.reply, Some(Reply::Allow { .. }))
    }

    #[test]
    fn a_refused_command_stops_every_later_one_in_exit_mode() {
        let mut g = gate(OnRefusal::Exit);
        assert!(allowed(&ask(&mut g, "echo hi")));
        let refused = ask(&mut g, "rm -rf /");
        assert!(refused.refused);
        assert!(matches!(&refused.reply, Some(Reply::Deny { message, .. }) if message.contains("refused by rule")));
        assert!(g.stopped().is_some());
        let later = ask(&mut g, "echo after");
        assert!(later.refused, "nothing runs after a refusal");
    }

    #[test]
    fn in_continue_mode_only_the_refused_command_is_refused() {
        let mut g = gate(OnRefusal::Continue);
        assert!(ask(&mut g, "rm -rf /").refused);
        assert!(allowed(&ask(&mut g, "echo after")));
    }

    #[test]
    fn a_wrong_token_gets_no_answer() {
        let mut g = gate(OnRefusal::Exit);
        let a = g.answer(Message::Check { nonce: "nope".into(), source: Source::Backstop, cwd: "/".into(), line: String::new(), command: "ls".into(), vars: vec![] });
        assert!(a.reply.is_none() && a.record.is_none());
    }

    #[test]
    fn switching_the_backstop_off_is_refused() {
        for cmd in ["trap - DEBUG", "trap '' debug", "builtin trap - DEBUG", "set +T", "set +o functrace", "shopt -u extdebug", "unset -f __custos_debug", "export BASH_ENV=", "enable -n trap", "env -i bash x.sh", "bash --posix x.sh"] {
            let mut g = gate(OnRefusal::Continue);
            let a = ask(&mut g, cmd);
            assert!(a.refused, "{cmd} must be refused");
        }
        let mut g = gate(OnRefusal::Continue);
        assert!(allowed(&ask(&mut g, "trap 'rm -f /tmp/x' EXIT")));
        assert!(allowed(&ask(&mut g, "set -e")));
    }

    #[test]
    fn the_heads_of_for_select_and_case_are_checked_by_their_words() {
        let mut g = gate(OnRefusal::Continue);
        for head in ["for i in 1 2", "for i", "select x in a b", "case $x in ", "for f in *.log"] {
            assert!(allowed(&ask(&mut g, head)), "{head}");
        }
        assert!(!allowed(&ask(&mut g, "for f in $(rm -rf /)")), "a substitution in the words is still checked");
        assert_eq!(header_words("for i in 1 2").as_deref(), Some(": 1 2"));
        assert_eq!(header_words("case \"$(id)\" in ").as_deref(), Some(": \"$(id)\""));
        assert_eq!(header_words("format disk"), None);
        assert_eq!(header_words("for 1x in y"), None);
    }

    #[test]
    fn a_shell_the_gate_cannot_follow_gets_the_unknown_verdict() {
        let mut g = gate(OnRefusal::Continue);
        for line in ["sh deploy.sh", "dash -s", "ksh", "sudo -u app sh run.sh", "env sh x.sh"] {
            let a = ask(&mut g, line);
            assert!(!allowed(&a), "{line}");
            assert_eq!(a.record.as_ref().and_then(|r| r.rule.as_deref()), Some(UNKNOWN_RULE), "{line}");
        }
        for line in ["bash deploy.sh", "bash -s", "sh -c 'echo hi'", "echo hi | sh", "eval \"$(dircolors -b)\"", "trap 'rm -f /tmp/x' EXIT", "trap - EXIT", "trap '' INT"] {
            assert!(allowed(&ask(&mut g, line)), "{line}: the gate checks these itself");
        }
        for line in ["sudo bash x.sh", "sudo -u app bash -s", "exec -c bash x.sh", "exec -lc bash"] {
            assert!(!allowed(&ask(&mut g, line)), "{line}: the shell starts without BASH_ENV");
        }
        assert!(allowed(&ask(&mut g, "exec bash x.sh")), "a plain exec keeps the environment");
        for line in ["TRAPEXIT() { eval \"$(base64 -d <<< cm0gLXJmIC8=)\" }", "function TRAPINT { eval \"$x\"; }", "trap 'rm -rf /' EXIT", "trap 'eval \"$(base64 -d <<< cm0gLXJmIC8=)\"' EXIT", "trap 'sh x.sh' TERM"] {
            assert!(!allowed(&ask(&mut g, line)), "{line}: a trap handler runs without the DEBUG trap");
        }
        for line in ["bash -p x.sh", "set -o posix", "set -p", "POSIXLY_CORRECT=1 bash x.sh", "export SHELLOPTS"] {
            assert!(!allowed(&ask(&mut g, line)), "{line}: the child would skip BASH_ENV");
        }
        let policy = Policy::parse("[policy]\nunknown = \"allow\"\n", std::path::Path::new("p.toml")).unwrap();
        let mut open = BatchGate::new(policy, Subject::default(), "/root".into(), "tok".into(), OnRefusal::Continue);
        assert!(allowed(&ask(&mut open, "sh deploy.sh")), "unknown = allow lets it run");
    }

    #[test]
    fn a_plain_zdotdir_assignment_alone_is_allowed() {
        let mut g = gate(OnRefusal::Continue);
        for line in ["export ZDOTDIR=\"$HOME/.config/zsh\"", "ZDOTDIR=${XDG_CONFIG_HOME:-$HOME/.config}/zsh"] {
            assert!(allowed(&ask(&mut g, line)), "{line}");
        }
        for line in ["ZDOTDIR=/tmp zsh s.zsh", "export ZDOTDIR=$(mktemp -d)", "ZDOTDIR=/tmp; zsh -c x", "unset ZDOTDIR"] {
            assert!(!allowed(&ask(&mut g, line)), "{line}");
        }
    }

    #[test]
    fn switching_zshs_backstop_off_is_refused() {
        for cmd in [
            "unfunction TRAPDEBUG",
            "unfunction $f",
            "TRAPDEBUG () {\n\t:\n}",
            "$n () {\n\t:\n}",
            "function ${n} { : }",
            "functions[__custos_debug]=:",
            "a=TRAP; functions[${a}DEBUG]=:",
            "functions -c f g",
            "unset -f f",
            "unhash -f f",
            "trap - DEBUG",
            "trap '' DEBUG",
            "trap -",
            "unsetopt debugbeforecmd",
            "unsetopt DEBUG_BEFORE_CMD",
            "setopt no_debug_before_cmd",
            "set +o debugbeforecmd",
            "options[debugbeforecmd]=off",
            "unsetopt -m 'debug*'",
            "export ZDOTDIR=/tmp; zsh s.zsh",
            "ZDOTDIR=/tmp zsh s.zsh",
            "unset ZDOTDIR",
            ": ${ZDOTDIR::=/tmp}",
            "zsh -f s.zsh",
            "zsh -fc 'touch t'",
            "zsh --no-rcs s.zsh",
            "zsh --norcs s.zsh",
            "zsh -o no_rcs s.zsh",
            "zsh +o rcs s.zsh",
            "zsh --emulate sh s.zsh",
            "ARGV0=sh zsh s.zsh",
            "exec -a sh zsh s.zsh",
            "zmodload -u zsh/net/tcp",
            "zmodload -F zsh/net/tcp -b:ztcp",
            "disable trap",
            "disable -r builtin",
        ] {
            let mut g = gate(OnRefusal::Continue);
            assert!(ask(&mut g, cmd).refused, "{cmd} must be refused");
        }
    }

    #[test]
    fn zsh_commands_that_leave_the_backstop_alone_are_allowed() {
        for cmd in [
            "trap 'rm -f $tmp' EXIT",
            "setopt err_exit",
            "emulate -L zsh",
            "source $ZDOTDIR/aliases.zsh",
            "echo ${ZDOTDIR}",
            "(( ${+functions[f]} )) && f",
            "f () {\n\techo hi\n}",
            "zsh -c 'echo hi'",
            "zsh -x s.zsh",
            "zmodload zsh/datetime",
            "unset x",
        ] {
            let mut g = gate(OnRefusal::Continue);
            assert!(allowed(&ask(&mut g, cmd)), "{cmd} must be allowed");
        }
    }

    #[test]
    fn a_variable_naming_the_command_is_resolved() {
        let mut g = gate(OnRefusal::Continue);
        let a = g.answer(Message::Check {
            nonce: "tok".into(),
            source: Source::Backstop,
            cwd: "/".into(),
            line: String::new(),
            command: "$t - DEBUG".into(),
            vars: vec![("t".into(), "trap".into())],
        });
        assert!(a.refused);
    }

    #[test]
    fn each_distinct_allowed_command_is_recorded_once() {
        let mut g = gate(OnRefusal::Continue);
        assert!(ask(&mut g, "echo hi").record.is_some());
        assert!(ask(&mut g, "echo hi").record.is_none());
        assert!(ask(&mut g, "rm -rf /").record.is_some());
        assert!(ask(&mut g, "rm -rf /").record.is_some(), "refusals are always recorded");
    }
}
