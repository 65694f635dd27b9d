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
    start_with(shell, "")
}

/// As [`start`], with more configuration (after `[shell]`).
fn start_with(shell: Shell, extra: &str) -> Session {
    let path = match shell {
        Shell::Bash => "/bin/bash",
        Shell::Zsh => "/usr/bin/zsh",
    };
    let setup = Setup::new(&format!("[shell]\ndefault = \"{path}\"\n{extra}"));
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

impl Session {
    /// Types `line` (after clearing whatever a refusal left in the editor),
    /// then waits until a marker command after it has run: unlike
    /// [`Session::run`], this holds when the screen scrolls.
    fn settle(&mut self, line: &str) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.pty.send(b"\x15");
        self.pty.line(line);
        std::thread::sleep(Duration::from_millis(150));
        self.pty.send(b"\x15");
        self.pty.line(&format!("echo settled-{n}"));
        let want = format!("settled-{n}");
        self.pty.wait_for(&want, |t| t.lines().any(|l| l.trim_end() == want));
    }
}

/// The refusal of one command, as the DEBUG trap asked about it.
fn refused_commands(cast: &custos::evidence::asciicast::Cast) -> Vec<String> {
    audits_of(cast, "command")
        .iter()
        .filter(|c| c["source"] == "command" && c["outcome"] == "refused")
        .map(|c| c["line"].as_str().unwrap().to_owned())
        .collect()
}

/// Each of these ran, before, a command that the same line typed plainly
/// is refused for: the DEBUG trap now asks about the command as the shell
/// is about to run it.
#[rstest]
#[case::bash(Shell::Bash)]
#[case::zsh(Shell::Zsh)]
fn commands_hidden_behind_expansion_are_refused_as_they_run(#[case] shell: Shell) {
    let mut s = start(shell);
    std::fs::write(s.work.join("x.sh"), "touch via-source\n").unwrap();
    std::fs::write(s.work.join("defs.sh"), "f() { touch via-function; }\n").unwrap();
    let hist_line = "echo touch via-history";
    let attempts: Vec<(&str, Vec<&str>)> = vec![
        ("alias", vec!["alias w='touch via-alias'", "w"]),
        // Defined where the Enter gate never saw it (bash does not trace a
        // definition; zsh refuses this one as it runs).
        ("function", vec!["source defs.sh", "f"]),
        ("positional", vec!["set -- touch via-positional", "\"$1\" \"$2\""]),
        ("glob", vec!["/usr/bin/tou?h via-glob"]),
        // (`settle` runs a marker after each line: the line before it is
        // two back.)
        ("history", vec![hist_line, "!-2:1*"]),
        ("source", vec!["source x.sh", ". ./x.sh"]),
        ("eval", vec!["eval \"$(echo dG91Y2ggdmlhZXZhbA== | base64 -d)\""]),
        // A trap's handler runs untraced: it is judged when it is set.
        ("trap", vec!["trap 'touch via-trap' USR1; kill -USR1 $$"]),
    ];
    for (what, lines) in &attempts {
        for line in lines {
            s.settle(line);
        }
        std::thread::sleep(Duration::from_millis(100));
        let made: Vec<_> = std::fs::read_dir(&s.work).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.starts_with("via")).collect();
        assert!(made.is_empty(), "{what}: the refused command ran: {made:?}\n{}", s.pty.screen_text());
    }
    // Sanity: the same hooks let an allowed alias run.
    s.settle("alias ok='echo alias-ran-fine'");
    s.settle("ok");
    s.pty.wait_text("alias-ran-fine");
    let cast = s.exit();
    let refused = refused_commands(&cast);
    for expected in ["touch via-alias", "touch via-function", "touch via-source"] {
        assert!(refused.iter().any(|l| l.contains(expected)), "{expected} not recorded as refused: {refused:?}");
    }
    // A decoded payload is refused as it runs, or already at Enter as code
    // the checker cannot know (`[policy] unknown`).
    let lines: Vec<serde_json::Value> = audits_of(&cast, "command").into_iter().filter(|c| c["outcome"] == "refused").collect();
    assert!(
        refused.iter().any(|l| l.contains("touch viaeval"))
            || lines.iter().any(|c| c["rule"] == "custos:unknown" && c["line"].as_str().unwrap().contains("base64 -d")),
        "the decoded eval was not refused: {refused:?} {lines:?}"
    );
    // Positional parameters: refused as typed (the command name comes
    // from $1: `[policy] unknown`), as they run, or when touch starts.
    let positional = refused.iter().any(|l| l == "\"$1\" \"$2\"" || l.contains("via-positional"))
        || cast.audits().iter().any(|a| {
            let line = a["line"].as_str().unwrap_or_default();
            (a["kind"] == "exec" || a["kind"] == "command") && a["outcome"] == "refused" && (line == "\"$1\" \"$2\"" || line.contains("via-positional"))
        });
    assert!(positional, "{refused:?}");
    // A glob or history expansion may already be refused as typed.
    let all: Vec<String> = audits_of(&cast, "command").iter().filter(|c| c["outcome"] == "refused").map(|c| c["line"].as_str().unwrap().to_owned()).collect();
    assert!(all.iter().any(|l| l.contains("via-glob")), "{all:?}");
    assert!(all.iter().any(|l| l.contains("touch via-history") || l == "!-2:1*"), "{all:?}");
    // None of this went around the gate: nothing is degraded.
    assert!(audits_of(&cast, "degraded").is_empty(), "{:?}", audits_of(&cast, "degraded"));
}

/// bash: the hook functions are read-only, so the redefinition fails and
/// the next line is still refused. zsh has no read-only functions: the
/// redefinition (hidden from the gate's text check) is seen in the next
/// heartbeat, the session is marked degraded, and from then on every check
/// is refused, so no record ever claims a command ran that did not.
#[rstest]
#[case::bash(Shell::Bash)]
#[case::zsh(Shell::Zsh)]
fn redefining_a_hook_function_never_lets_a_refused_line_run(#[case] shell: Shell) {
    let mut s = start(shell);
    // `__custos_ask`, and a body that claims every line is `ls`, both
    // decoded at run time so that no text the gate sees names the hooks.
    let name = "X19jdXN0b3NfYXNr";
    let body = match shell {
        // __custos_send "CHECK $__custos_nonce $1" "$PWD" ls ls && __custos_recv
        Shell::Bash | Shell::Zsh => "X19jdXN0b3Nfc2VuZCAiQ0hFQ0sgJF9fY3VzdG9zX25vbmNlICQxIiAiJFBXRCIgbHMgbHMgJiYgX19jdXN0b3NfcmVjdg==",
    };
    match shell {
        Shell::Bash => s.pty.line(&format!("eval \"$(echo {name} | base64 -d)() {{ $(echo {body} | base64 -d); }}\"")),
        Shell::Zsh => s.pty.line(&format!("functions[$(echo {name} | base64 -d)]=\"$(echo {body} | base64 -d)\"")),
    }
    std::thread::sleep(Duration::from_millis(800));
    s.pty.send(b"\x15");
    s.pty.line("touch tampered");
    std::thread::sleep(Duration::from_millis(800));
    assert!(!s.work.join("tampered").exists(), "the refused line ran\n{}", s.pty.screen_text());
    // Changed hooks get every line refused, `exit` too: Ctrl-D ends it.
    s.pty.send(b"\x15\x04");
    s.pty.wait_exit();
    let cast = s.setup.recording();
    let commands = audits_of(&cast, "command");
    assert!(
        !commands.iter().any(|c| c["line"] == "ls" && c["outcome"] == "ran"),
        "a record claims `ls` ran: {commands:?}"
    );
    if let Shell::Zsh = shell {
        let degraded = audits_of(&cast, "degraded");
        assert!(degraded.iter().any(|d| d["reason"].as_str().unwrap().contains("redefined")), "{degraded:?}");
    }
}

#[rstest]
#[case::bash_script(Shell::Bash, "script -q /dev/null")]
#[case::zsh_script(Shell::Zsh, "script -q /dev/null")]
#[case::bash_pty_spawn(Shell::Bash, "python3 -c 'import pty; pty.spawn(\"/bin/bash\")'")]
fn a_hookless_shell_on_a_fresh_pty_marks_the_session_degraded(#[case] shell: Shell, #[case] start_it: &str) {
    // Without the exec backstop; with it, see tests/backstop.rs.
    let mut s = start_with(shell, "[gate]\nexec = \"off\"\n");
    s.pty.line(&format!("SHELL=/bin/bash {start_it}"));
    std::thread::sleep(Duration::from_millis(800));
    s.pty.line("PS1='inner> '");
    s.pty.wait_text("inner>");
    std::thread::sleep(Duration::from_millis(600));
    s.pty.line("echo typed-inside");
    s.pty.wait_text("DEGRADED");
    s.pty.line("exit");
    // Keys typed before `script` itself is gone would be read by it.
    std::thread::sleep(Duration::from_millis(1500));
    let cast = s.exit();
    let degraded = audits_of(&cast, "degraded");
    assert!(degraded.iter().any(|d| d["reason"].as_str().unwrap().contains("terminal of its own")), "{degraded:?}");
}

#[test]
fn tmux_inside_a_gated_session_marks_it_degraded() {
    let mut s = start_with(Shell::Bash, "[gate]\nexec = \"off\"\n");
    let sock = s.setup.dir.path().join("tmux.sock");
    s.pty.line(&format!("tmux -S {} -f /dev/null new-session", sock.display()));
    s.pty.wait_for("tmux's status line", |t| t.lines().any(|l| l.starts_with("[0]")));
    std::thread::sleep(Duration::from_millis(600));
    s.pty.line("echo inside-tmux");
    s.pty.wait_text("DEGRADED");
    s.pty.line("exit");
    s.pty.wait_for("tmux to exit", |t| t.contains("[exited]"));
    let cast = s.exit();
    let degraded = audits_of(&cast, "degraded");
    assert!(degraded.iter().any(|d| d["reason"].as_str().unwrap().contains("multiplexer")), "{degraded:?}");
}

/// The shell's pid, from the recording's `hooked` record (read live from
/// the spool is not possible: the recording is finished at exit), so the
/// test asks the shell itself.
fn fds_of(pid: &str) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.flatten().filter_map(|e| std::fs::read_link(e.path()).ok()).map(|p| p.display().to_string()).collect())
        .unwrap_or_default()
}

/// The session's hooks directory: the shell started with ENV (bash) or
/// ZDOTDIR (zsh) naming a file or directory in it.
fn hooks_dir(pid: &str) -> String {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    environ
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("ENV=").or_else(|| kv.strip_prefix("ZDOTDIR=")))
        .map(|p| Path::new(p).parent().unwrap().display().to_string())
        .expect("the shell started with the hooks' ENV or ZDOTDIR")
}

#[rstest]
#[case::bash(Shell::Bash)]
#[case::zsh(Shell::Zsh)]
fn no_program_the_shell_starts_holds_the_gate_and_nothing_listens(#[case] shell: Shell) {
    let mut s = start(shell);
    // A program the user runs: its descriptors, as it sees them.
    s.run("ls -l /proc/self/fd > child-fds; echo $$ > shell-pid");
    let child = std::fs::read_to_string(s.work.join("child-fds")).unwrap();
    assert!(!child.contains("socket:"), "a child program holds a socket:\n{child}");
    let pid = std::fs::read_to_string(s.work.join("shell-pid")).unwrap().trim().to_owned();
    // Only the relay holds the gate's socket; the shell's own pipes to it
    // are close-on-exec (checked above by the child).
    let shell_fds = fds_of(&pid);
    assert!(!shell_fds.iter().any(|f| f.starts_with("socket:")), "the shell holds a socket: {shell_fds:?}");
    // No path to connect to: nothing in this session's hooks directory (the
    // shell started with ENV or ZDOTDIR naming it) is in /proc/net/unix.
    let dir = hooks_dir(&pid);
    assert!(dir.starts_with("/tmp/custos-gate-"), "{dir}");
    assert!(!std::fs::read_dir(&dir).unwrap().any(|e| e.unwrap().file_name() == "gate.sock"), "a socket path in {dir}");
    let unix = std::fs::read_to_string("/proc/net/unix").unwrap();
    assert!(!unix.contains(&dir), "{unix}");
    let cast = s.exit();
    assert!(audits_of(&cast, "degraded").is_empty(), "{:?}", audits_of(&cast, "degraded"));
}

/// A user other than the session's: it finds nothing to connect to and
/// cannot take the shell's descriptors, so it can neither reach the gate
/// nor mark the session degraded.
#[rstest]
#[case::bash(Shell::Bash)]
#[case::zsh(Shell::Zsh)]
fn another_user_cannot_reach_the_gate_or_degrade_the_session(#[case] shell: Shell) {
    let mut s = start(shell);
    s.run("echo $$ > shell-pid");
    let pid = std::fs::read_to_string(s.work.join("shell-pid")).unwrap().trim().to_owned();
    let dir = hooks_dir(&pid);
    // As `nobody`: every unix socket path on the host, and the shell's and
    // its relay's descriptors, tried.
    let probe = format!(
        r#"
import os, socket, sys
reached = []
for line in open('/proc/net/unix').read().splitlines()[1:]:
    parts = line.split()
    if len(parts) >= 8 and parts[7].startswith('/'):
        try:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.settimeout(0.2); c.connect(parts[7])
            c.sendall(b'HELLO x bash 1 5\n'); reached.append(parts[7]); c.close()
        except OSError:
            pass
for pid in [{pid}] + [int(p) for p in os.listdir('/proc') if p.isdigit()]:
    try:
        for fd in os.listdir('/proc/%d/fd' % pid):
            reached.append('fd %d/%s' % (pid, fd))
    except OSError:
        pass
print('reached:', [r for r in reached if r.startswith('{dir}/') or r.startswith('fd {pid}/')])
"#
    );
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-c", &probe])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("reached: []"), "another user reached the gate: {text}");
    s.run("echo still-fine");
    let cast = s.exit();
    assert!(audits_of(&cast, "degraded").is_empty(), "{:?}", audits_of(&cast, "degraded"));
}

#[rstest]
#[case::bash(Shell::Bash)]
#[case::zsh(Shell::Zsh)]
fn a_script_without_a_shebang_runs_without_a_debugger(#[case] shell: Shell) {
    let mut s = start(shell);
    let script = s.work.join("noshebang");
    std::fs::write(&script, "echo no-shebang-ran\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    s.run("./noshebang");
    s.pty.wait_text("no-shebang-ran");
    let screen = s.pty.all_lines().join("\n");
    assert!(!screen.contains("debugger"), "{screen}");
    s.exit();
}

/// What a user can see of their shell's own state: its flags, options,
/// history file and history. `functrace` is the one difference the gate
/// needs (the DEBUG trap must reach functions and subshells), and it is
/// left out of the comparison, by name.
fn shell_state(shell: Shell, under_custos: bool) -> String {
    let (path, rc) = match shell {
        Shell::Bash => ("/bin/bash", ".bashrc"),
        Shell::Zsh => ("/usr/bin/zsh", ".zshrc"),
    };
    let setup = Setup::new(&format!("[shell]\ndefault = \"{path}\"\n"));
    let home = setup.dir.path();
    std::fs::write(home.join(rc), "PS1='gate> '\n").unwrap();
    if matches!(shell, Shell::Bash) {
        // Options posix mode sets or clears, set the other way by the user.
        std::fs::write(home.join(".bash_profile"), ". ~/.bashrc\nshopt -u sourcepath\nshopt -s shift_verbose\n").unwrap();
        std::fs::write(home.join(".bash_history"), "echo from-yesterday\n").unwrap();
    } else {
        std::fs::write(home.join(".zprofile"), "HISTFILE=~/.zsh_history; SAVEHIST=100; HISTSIZE=100\n").unwrap();
        std::fs::write(home.join(".zsh_history"), "echo from-yesterday\n").unwrap();
    }
    let mut cmd = if under_custos {
        let mut cmd = setup.command(&["-l"]);
        cmd.env("CUSTOS_POLICY", home.join("none.toml"));
        std::fs::write(home.join("none.toml"), "version = 1\n").unwrap();
        cmd
    } else {
        // The same environment, without custos.
        let mut plain = std::process::Command::new(path);
        plain.arg("-l").env_clear();
        for (k, v) in setup.command(&[]).get_envs() {
            if let (Some(v), false) = (v, k == "CUSTOS_CONFIG") {
                plain.env(k, v);
            }
        }
        plain
    };
    cmd.current_dir(home);
    let mut pty = Pty::spawn(cmd, 24, 100);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "gate>"));
    let report = match shell {
        Shell::Bash => "{ echo \"flags=$-\"; shopt -p; set -o; echo \"histfile=$HISTFILE\"; history | sed 's/^ *[0-9]* *//'; } > ~/state 2>&1; echo state-written",
        Shell::Zsh => "{ echo \"flags=$-\"; setopt; echo \"histfile=$HISTFILE\"; fc -ln 1; } > ~/state 2>&1; echo state-written",
    };
    pty.line(report);
    pty.wait_for("the report", |s| s.lines().any(|l| l.trim_end() == "state-written"));
    pty.line("exit");
    pty.wait_exit();
    let state = std::fs::read_to_string(home.join("state")).unwrap().replace(&home.display().to_string(), "~");
    state.lines().filter(|l| !l.contains("functrace")).map(|l| {
        if let Some(f) = l.strip_prefix("flags=") { format!("flags={}", f.replace('T', "")) } else { l.to_owned() }
    }).collect::<Vec<_>>().join("\n")
}

#[rstest]
#[case::bash(Shell::Bash)]
#[case::zsh(Shell::Zsh)]
fn the_shell_keeps_the_users_options_and_history(#[case] shell: Shell) {
    let plain = shell_state(shell, false);
    let custos = shell_state(shell, true);
    assert!(plain.contains("from-yesterday"), "{plain}");
    assert_eq!(custos, plain);
}

/// A refusal is printed above the prompt, which comes back whole below it
/// with the line still there to be fixed, and typing goes on after the
/// line: in zsh without a .zshrc, with a right prompt and with a prompt
/// of two rows, and in bash.
#[rstest]
#[case::zsh_without_zshrc(Shell::Zsh, None, "$ ")]
#[case::zsh_right_prompt(Shell::Zsh, Some("PS1='gate> '\nRPROMPT='[right]'\n"), "gate> ")]
#[case::zsh_two_row_prompt(Shell::Zsh, Some("PS1=$'top of the prompt\\ngate> '\n"), "gate> ")]
#[case::bash(Shell::Bash, Some("PS1='gate> '\n"), "gate> ")]
fn a_refusal_prints_above_a_clean_prompt(#[case] shell: Shell, #[case] rc: Option<&str>, #[case] prompt: &str) {
    let (path, rc_file) = match shell {
        Shell::Bash => ("/bin/bash", ".bashrc"),
        Shell::Zsh => ("/usr/bin/zsh", ".zshrc"),
    };
    let setup = Setup::new(&format!("[shell]\ndefault = \"{path}\"\n"));
    let policy = setup.dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    if let Some(rc) = rc {
        std::fs::write(setup.dir.path().join(rc_file), rc).unwrap();
    }
    let mut cmd = setup.command(&[]);
    cmd.env("CUSTOS_POLICY", &policy).current_dir(setup.dir.path());
    let mut pty = Pty::spawn(cmd, 24, 100);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.starts_with(prompt.trim_end())));
    let line = "touch denied && echo ran-it";
    pty.line(line);
    pty.wait_text("touch is refused in this test");
    std::thread::sleep(Duration::from_millis(300));
    pty.send(b"xyz");
    let typed = format!("{prompt}{line}xyz");
    pty.wait_for("the typing after the line", |s| s.lines().any(|l| l.starts_with(&typed)));
    let rows = pty.rows();
    let shown = rows.iter().enumerate().map(|(i, r)| format!("{i:2}|{r}")).collect::<Vec<_>>().join("\n");
    let message = rows.iter().position(|r| r.starts_with("custos: refused by rule no-touch: touch is refused in this test")).unwrap_or_else(|| panic!("the message is not on a row of its own:\n{shown}"));
    assert!(message > 0 && rows[message - 1].starts_with(&format!("{prompt}{line}")), "the refused line is not shown above the message:\n{shown}");
    let prompt_rows = if rc.is_some_and(|rc| rc.contains("top of the prompt")) { 2 } else { 1 };
    if prompt_rows == 2 {
        assert_eq!(rows[message + 1].trim_end(), "top of the prompt", "\n{shown}");
    }
    let editing = message + prompt_rows;
    assert!(rows[editing].starts_with(&typed), "the prompt and the line are not right below the message:\n{shown}");
    let cursor = pty.with_screen(|sc| sc.cursor_position());
    assert_eq!(cursor, (u16::try_from(editing).unwrap(), u16::try_from(typed.len()).unwrap()), "\n{shown}");
    pty.send(b"\x15exit\r");
    pty.wait_exit();
}
