#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
//! The command gate in live sessions: real bash and real zsh on a PTY under
//! `custos-shell`, with the hooks injected as a user's login would get them.

#[path = "support/shell.rs"]
mod shell;

use std::path::Path;
use std::time::Duration;

use shell::{Pty, Setup};
use rstest::rstest;

const POLICY: &str = r#"
version = 1

[[rule]]
name = "no-touch"
message = "touch is refused in this test"
action = "deny"
program = ["touch"]

[[rule]]
name = "dump-needs-approval"
message = "dumps need a second person"
action = "approve"
approvers = "dba"
program = ["pg_dump"]
"#;

#[derive(Clone, Copy, Debug)]
enum Shell {
    Bash,
    Zsh,
}

struct Session {
    setup: Setup,
    pty: Pty,
    work: std::path::PathBuf,
}

fn start(shell: Shell) -> Session {
    let path = match shell {
        Shell::Bash => "/bin/bash",
        Shell::Zsh => "/usr/bin/zsh",
    };
    let setup = Setup::new(&format!("[shell]\ndefault = \"{path}\"\n"));
    let policy = setup.dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let work = setup.dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    // The user's own startup file sets the prompt: the hooks load after it.
    let rc = match shell {
        Shell::Bash => ".bashrc",
        Shell::Zsh => ".zshrc",
    };
    std::fs::write(setup.dir.path().join(rc), "PS1='gate> '\n").unwrap();
    let mut cmd = setup.command(&[]);
    cmd.env("CUSTOS_POLICY", &policy).current_dir(&work);
    let pty = Pty::spawn(cmd, 24, 100);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "gate>"));
    Session { setup, pty, work }
}

impl Session {
    fn prompts(&self) -> usize {
        self.pty.screen_text().lines().filter(|l| l.starts_with("gate>")).count()
    }

    /// Types `line`, then waits for a new prompt.
    fn run(&mut self, line: &str) {
        let before = self.prompts();
        self.pty.line(line);
        self.pty.wait_for("the next prompt", |s| s.lines().filter(|l| l.starts_with("gate>")).count() > before);
    }

    fn exit(mut self) -> custos::evidence::asciicast::Cast {
        self.pty.send(b"\x15exit\r");
        self.pty.wait_exit();
        self.setup.recording()
    }
}

fn audits_of(cast: &custos::evidence::asciicast::Cast, kind: &str) -> Vec<serde_json::Value> {
    cast.audits().into_iter().filter(|a| a["kind"] == kind).collect()
}

#[rstest]
#[case::bash(Shell::Bash)]
#[case::zsh(Shell::Zsh)]
fn a_denied_line_never_runs_and_stays_to_be_fixed(#[case] shell: Shell) {
    let mut s = start(shell);
    s.pty.line("touch denied && echo ran-it");
    s.pty.wait_text("touch is refused in this test");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!s.work.join("denied").exists(), "the denied line ran");
    assert!(!s.pty.screen_text().lines().any(|l| l.trim_end() == "ran-it"), "{}", s.pty.screen_text());
    // The line is still in the editor: finish it differently and run it.
    s.pty.send(b"\x15");
    s.run("echo fixed");
    let cast = s.exit();
    let refused = audits_of(&cast, "command");
    assert_eq!(refused[0]["verdict"], "deny", "{refused:?}");
    assert_eq!(refused[0]["rule"], "no-touch");
    assert_eq!(refused[0]["line"], "touch denied && echo ran-it");
    assert!(cast.markers().contains(&"refused: $ touch denied && echo ran-it"), "{:?}", cast.markers());
    assert!(audits_of(&cast, "degraded").is_empty(), "{:?}", audits_of(&cast, "degraded"));
}

#[rstest]
#[case::bash(Shell::Bash)]
#[case::zsh(Shell::Zsh)]
fn an_allowed_line_runs_exactly_once_and_its_status_is_recorded(#[case] shell: Shell) {
    let mut s = start(shell);
    s.run("echo once >> count; (exit 3)");
    s.run("true");
    assert_eq!(std::fs::read_to_string(s.work.join("count")).unwrap(), "once\n");
    let cast = s.exit();
    let commands = audits_of(&cast, "command");
    assert_eq!(commands[0]["line"], "echo once >> count; (exit 3)");
    assert_eq!(commands[0]["verdict"], "allow");
    let exits = audits_of(&cast, "exit");
    assert!(exits.iter().any(|e| e["id"] == commands[0]["id"] && e["status"] == 3), "{exits:?}");
    assert!(cast.markers().contains(&"$ echo once >> count; (exit 3)"));
}

#[rstest]
#[case::bash(Shell::Bash)]
#[case::zsh(Shell::Zsh)]
fn a_multi_line_command_is_checked_whole(#[case] shell: Shell) {
    let mut s = start(shell);
    // Allowed as a whole: it runs.
    s.pty.line("for i in 1 2");
    s.run("do echo loop$i >> loops; done");
    assert_eq!(std::fs::read_to_string(s.work.join("loops")).unwrap(), "loop1\nloop2\n");
    // Denied as a whole, although its first line alone is harmless.
    s.pty.line("for i in 1 2");
    s.pty.line("do echo before$i >> partial; touch made$i; done");
    s.pty.wait_text("rule no-touch");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!s.work.join("made1").exists() && !s.work.join("partial").exists(), "part of a refused command ran");
    // zsh puts the whole text back in the editor to be fixed; drop it.
    s.pty.send(b"\x03");
    std::thread::sleep(Duration::from_millis(500));
    let cast = s.exit();
    let lines: Vec<String> = audits_of(&cast, "command").iter().map(|c| c["line"].as_str().unwrap().to_owned()).collect();
    assert!(lines.contains(&"for i in 1 2\ndo echo loop$i >> loops; done".to_owned()), "{lines:?}");
    assert!(lines.contains(&"for i in 1 2\ndo echo before$i >> partial; touch made$i; done".to_owned()), "{lines:?}");
}

#[rstest]
#[case::bash(Shell::Bash)]
#[case::zsh(Shell::Zsh)]
fn removing_the_backstop_marks_the_session_degraded(#[case] shell: Shell) {
    let mut s = start(shell);
    s.run("trap - DEBUG");
    s.pty.wait_text("DEGRADED");
    // The hooks are put back: the gate still refuses.
    s.pty.line("touch after");
    s.pty.wait_text("touch is refused in this test");
    assert!(!s.work.join("after").exists());
    let cast = s.exit();
    let degraded = audits_of(&cast, "degraded");
    assert!(degraded.iter().any(|d| d["reason"].as_str().unwrap().contains("DEBUG trap")), "{degraded:?}");
    assert!(cast.markers().iter().any(|m| m.starts_with("DEGRADED:")));
    // The status line is the terminal's only: never in the recording.
    assert!(!cast.output().contains("DEGRADED"));
}

#[rstest]
#[case::bash(Shell::Bash, "bash --norc")]
#[case::zsh(Shell::Zsh, "zsh -f")]
fn an_ungated_nested_shell_marks_the_session_degraded(#[case] shell: Shell, #[case] nested: &str) {
    let mut s = start(shell);
    s.pty.line(nested);
    std::thread::sleep(Duration::from_millis(500));
    s.pty.line("PS1='inner> '");
    s.pty.wait_text("inner>");
    s.pty.wait_text("DEGRADED");
    // The nested shell is not gated (that is the point), but nobody can miss it.
    s.pty.line("exit");
    s.pty.wait_for("the outer prompt", |t| t.lines().filter(|l| l.starts_with("gate>")).count() >= 2);
    let cast = s.exit();
    let degraded = audits_of(&cast, "degraded");
    assert!(degraded.iter().any(|d| d["reason"].as_str().unwrap().contains("without the gate's hooks")), "{degraded:?}");
}

#[rstest]
#[case::bash(Shell::Bash)]
#[case::zsh(Shell::Zsh)]
fn an_approve_verdict_is_held_and_refused_until_approvals_exist(#[case] shell: Shell) {
    let mut s = start(shell);
    s.pty.line("pg_dump production > dump.sql");
    s.pty.wait_text("needs approval");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!s.work.join("dump.sql").exists(), "the redirection of a held line ran");
    s.pty.send(b"\x15");
    let cast = s.exit();
    let c = &audits_of(&cast, "command")[0];
    assert_eq!((c["verdict"].as_str(), c["outcome"].as_str()), (Some("pending"), Some("pending-refused")));
}

#[test]
fn bash_rebinding_enter_is_caught_and_reported() {
    let mut s = start(Shell::Bash);
    // Enter bound straight to accept-line, and the next line typed on the
    // same prompt: the backstop checks it before it runs.
    s.pty.line(r#"bind '"\C-m": accept-line'; bind '"\C-j": accept-line'"#);
    s.pty.wait_text("DEGRADED");
    s.pty.line("touch bypass");
    s.pty.wait_text("touch is refused in this test");
    std::thread::sleep(Duration::from_millis(200));
    assert!(!s.work.join("bypass").exists());
    let cast = s.exit();
    let degraded = audits_of(&cast, "degraded");
    assert!(degraded.iter().any(|d| d["reason"].as_str().unwrap().contains("Enter key binding")), "{degraded:?}");
}

#[test]
fn the_users_startup_files_still_run_and_come_first() {
    let setup = Setup::new("[shell]\ndefault = \"/bin/bash\"\n");
    // A profile that defines its own DEBUG trap and PROMPT_COMMAND, as
    // bash-preexec users have: the gate loads after it and keeps it working.
    std::fs::write(setup.dir.path().join(".bash_profile"), "PS1='gate> '\nPROMPT_COMMAND='echo pc-ran >> ~/pc'\nexport FROM_PROFILE=yes\n").unwrap();
    let mut pty = Pty::spawn(setup.command(&["-l"]), 24, 100);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "gate>"));
    pty.line("echo profile=$FROM_PROFILE login=$(shopt -q login_shell && echo yes) posix=$(shopt -oq posix && echo on || echo off) env=${ENV-unset}");
    pty.wait_text("profile=yes login=yes posix=off env=unset");
    pty.line("exit");
    pty.wait_exit();
    let pc = std::fs::read_to_string(Path::new(setup.dir.path()).join("pc")).unwrap();
    assert!(pc.lines().count() >= 2, "the user's PROMPT_COMMAND stopped running: {pc:?}");
    let cast = setup.recording();
    assert!(audits_of(&cast, "hooked").len() == 1);
}

#[test]
fn bash_without_heartbeats_is_noticed_at_the_next_prompt() {
    let mut s = start(Shell::Bash);
    // Everything that would put the hooks back, removed in one line.
    s.run(r#"PROMPT_COMMAND=; bind '"\C-m": accept-line'; bind '"\C-j": accept-line'; trap - DEBUG"#);
    s.pty.line("echo ungated");
    s.pty.wait_text("DEGRADED");
    let cast = s.exit();
    let degraded = audits_of(&cast, "degraded");
    assert!(degraded.iter().any(|d| d["reason"].as_str().unwrap().contains("heartbeat")), "{degraded:?}");
}

#[test]
fn exec_of_a_hookless_shell_is_seen_at_the_next_enter() {
    let mut s = start(Shell::Bash);
    s.pty.line("exec bash --norc");
    std::thread::sleep(Duration::from_millis(500));
    s.pty.line("PS1='replaced> '");
    s.pty.wait_text("replaced>");
    s.pty.wait_text("DEGRADED");
    let cast = s.exit();
    let degraded = audits_of(&cast, "degraded");
    assert!(
        degraded.iter().any(|d| d["reason"].as_str().unwrap().contains("bash --norc")),
        "{degraded:?}"
    );
}

#[test]
fn a_degraded_session_ends_when_the_config_says_so() {
    let setup = Setup::new("[shell]\ndefault = \"/bin/bash\"\n[gate]\non_degraded = \"end\"\n");
    std::fs::write(setup.dir.path().join(".bashrc"), "PS1='gate> '\n").unwrap();
    let mut pty = Pty::spawn(setup.command(&[]), 24, 100);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "gate>"));
    pty.line("trap - DEBUG");
    pty.wait_text("ending the session");
    let status = pty.wait_exit();
    assert_ne!(status, 0);
    let cast = setup.recording();
    assert!(audits_of(&cast, "degraded").iter().any(|d| d["reason"].as_str().unwrap().contains("DEBUG trap")));
    assert!(cast.exit_status().is_some(), "the recording was not completed");
}

/// `[policy] unknown` through the shell's own loading path: a `-c` line
/// whose command name is a glob is refused without a collector, and held
/// for approval (which an unreachable collector cannot give) with one.
#[test]
fn a_line_the_checker_cannot_know_follows_the_collector_default() {
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("defaults/policy.toml");
    let run = |setup: &Setup| {
        let out = setup.command(&["-c", "/bin/r? -rf /x"]).env("CUSTOS_POLICY", &policy).stdin(std::process::Stdio::null()).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&Setup::new(""));
    assert_eq!(code, Some(126), "{err}");
    assert!(err.contains("refused by rule custos:unknown") && err.contains("/bin/r? is a glob"), "{err}");
    let (code, err) = run(&Setup::new("[collector]\nurl = \"https://127.0.0.1:1\"\n"));
    assert_eq!(code, Some(126), "{err}");
    assert!(err.contains("needs approval under rule custos:unknown"), "{err}");
    let out = Setup::new("").command(&["-c", "ls $(pwd) >/dev/null"]).env("CUSTOS_POLICY", &policy).stdin(std::process::Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}
