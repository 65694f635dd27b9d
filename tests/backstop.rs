#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
//! The exec backstop in live sessions: real bash and zsh on a PTY under
//! `custos-shell`, and programs that start programs behind the hooks'
//! back (an interpreter, a script, `make`, `vim`'s `:!`, `find -exec`).
//! Every program start is decided by the kernel's seccomp notification
//! and the policy, whatever started it. (Without the setuid stage, as
//! here, the filter is installed with `no_new_privs`; `sudo` under the
//! backstop is tested through the real sshd in `tests/system`.)

#[path = "support/shell.rs"]
mod shell;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rstest::rstest;
use shell::{Pty, Setup};

const POLICY: &str = r#"
version = 1

[[rule]]
name = "no-touch"
message = "touch is refused in this test"
action = "deny"
program = ["touch"]

[[rule]]
name = "no-bad-echo"
message = "echo BAD is refused in this test"
action = "deny"
program = ["echo"]
args = [{ regex = '^BAD' }]
"#;

#[derive(Clone, Copy, Debug)]
enum Shell {
    Bash,
    Zsh,
}

struct Session {
    setup: Setup,
    pty: Pty,
    work: PathBuf,
}

fn start(shell: Shell, exec: &str) -> Session {
    let path = match shell {
        Shell::Bash => "/bin/bash",
        Shell::Zsh => "/usr/bin/zsh",
    };
    let setup = Setup::new(&format!("[shell]\ndefault = \"{path}\"\n[gate]\nexec = \"{exec}\"\n"));
    let policy = setup.dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let work = setup.dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let rc = match shell {
        Shell::Bash => ".bashrc",
        Shell::Zsh => ".zshrc",
    };
    std::fs::write(setup.dir.path().join(rc), "PS1='bs> '\n").unwrap();
    let mut cmd = setup.command(&[]);
    cmd.env("CUSTOS_POLICY", &policy).current_dir(&work);
    let pty = Pty::spawn(cmd, 40, 160);
    pty.wait_for("the prompt", |s| s.lines().any(|l| l.trim_end() == "bs>"));
    Session { setup, pty, work }
}

impl Session {
    fn prompts(&self) -> usize {
        self.pty.all_lines().iter().filter(|l| l.starts_with("bs>")).count()
    }

    /// Types `line`, then waits for a new prompt.
    fn run(&mut self, line: &str) {
        let before = self.prompts();
        self.pty.line(line);
        self.pty.wait_for("the next prompt", |_| self.prompts() > before);
    }

    /// Types `line`, which the hooks may refuse at Enter (the line then
    /// stays in the editor and is cleared) or let through; waits for
    /// either.
    fn attempt(&mut self, line: &str) {
        let count = |s: &Session| s.pty.all_lines().iter().filter(|l| l.contains("custos: refused")).count();
        let (before, refused) = (self.prompts(), count(self));
        self.pty.line(line);
        self.pty.wait_for("a prompt or a refusal", |_| self.prompts() > before || count(self) > refused);
        if count(self) > refused {
            self.pty.send(b"\x15");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn exit(mut self) -> custos::evidence::asciicast::Cast {
        self.pty.send(b"\x15exit\r");
        self.pty.wait_exit();
        self.setup.recording()
    }
}

fn execs(cast: &custos::evidence::asciicast::Cast) -> Vec<serde_json::Value> {
    cast.audits().into_iter().filter(|a| a["kind"] == "exec").collect()
}

/// Refused starts of `touch`, by the caller's program name.
fn refused_touches(cast: &custos::evidence::asciicast::Cast) -> Vec<String> {
    execs(cast)
        .into_iter()
        .filter(|e| e["outcome"] == "refused" && e["rule"] == "no-touch")
        .map(|e| e["caller"][0].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[rstest]
#[case::bash(Shell::Bash)]
#[case::zsh(Shell::Zsh)]
fn programs_started_behind_the_hooks_are_refused_at_exec(#[case] shell: Shell) {
    let mut s = start(shell, "enforce");
    let w = s.work.clone();
    // Each program's code is in a file the hooks cannot read: written on
    // the line (`python3 -c '…os.system("touch …")'`, `vim -c '!touch …'`)
    // the hooks refuse it at Enter already, and nothing reaches the exec.
    write(&w, "s.sh", "touch from-script\n");
    write(&w, "Makefile", "all:\n\ttouch from-make\n");
    write(&w, "p.py", "import os\nprint(\"py-status\", os.system(\"touch from-python\"))\n");
    write(&w, "v.vim", "!touch from-vim\nqa!\n");
    s.run("python3 p.py");
    s.run("sh s.sh; echo script-status $?");
    s.run("make -s; echo make-status $?");
    s.run("vim -N -u NONE -es < v.vim; echo vim-done");
    write(&w, "f.sh", "touch from-find\n");
    write(&w, "x.sh", "touch from-xargs\n");
    s.run("find . -maxdepth 0 -exec sh f.sh ';'; echo find-done");
    s.run("echo x.sh | xargs sh; echo xargs-done");
    for made in ["from-script", "from-make", "from-python", "from-vim", "from-find", "from-xargs"] {
        assert!(!w.join(made).exists(), "{made} was made: the exec was not refused\n{}", s.pty.screen_text());
    }
    let screen = s.pty.all_lines().join("\n");
    assert!(screen.contains("Permission denied"), "{screen}");
    // An allowed program still runs from all of them.
    s.run("sh -c 'echo made-by-sh > allowed'; cat allowed");
    assert_eq!(std::fs::read_to_string(w.join("allowed")).unwrap(), "made-by-sh\n");
    let cast = s.exit();
    let callers = refused_touches(&cast);
    for caller in ["python3", "sh", "make"] {
        assert!(callers.iter().any(|c| c.ends_with(caller)), "no refused touch from {caller}: {callers:?}");
    }
    // vim runs its `!` through a shell: the shell's exec of touch is refused.
    assert!(callers.len() >= 6, "{callers:?}");
    let markers = cast.markers();
    assert!(markers.iter().any(|m| m.starts_with("exec refused (no-touch): ") && m.contains("touch from-python")), "{markers:?}");
    // Every start is recorded, with its caller: the python's own start too.
    let all = execs(&cast);
    assert!(all.iter().any(|e| e["outcome"] == "ran" && e["argv"][0] == "python3"), "{all:?}");
    assert!(all.iter().all(|e| e["mode"] == "enforce" && e["cwd"].is_string() && e["pid"].as_i64().unwrap() > 0));
}

#[test]
fn the_hooks_bypassed_still_leave_every_program_decided() {
    let mut s = start(Shell::Bash, "enforce");
    let w = s.work.clone();
    // Ways around the line the hooks see: an alias, a function defined
    // earlier, positional parameters, a glob, a decoded eval.
    // Each may be refused by the hooks at Enter already; either way the
    // program must not run.
    s.attempt("alias w='touch from-alias'");
    s.attempt("w; echo alias-done");
    s.attempt("f() { touch from-function; }; f; echo f-done");
    s.attempt("set -- touch; \"$1\" from-positional; echo pos-done");
    s.attempt("/usr/bin/tou?h from-glob; echo glob-done");
    s.attempt("eval \"$(echo dG91Y2ggZnJvbS1ldmFs | base64 -d)\"; echo eval-done");
    // The hooks themselves removed.
    s.attempt("trap - DEBUG; PROMPT_COMMAND=; bind -r '\\C-m' 2>/dev/null; bind '\"\\C-m\": accept-line' 2>/dev/null; true");
    s.attempt("touch from-unhooked; echo unhooked-done");
    for made in ["from-alias", "from-function", "from-positional", "from-glob", "from-eval", "from-unhooked"] {
        assert!(!w.join(made).exists(), "{made} was made\n{}", s.pty.all_lines().join("\n"));
    }
    let cast = s.exit();
    assert!(!execs(&cast).is_empty());
}

#[test]
fn ten_thousand_allowed_programs_pass_and_are_each_recorded() {
    let mut s = start(Shell::Bash, "enforce");
    s.pty.line("for i in $(seq 10000); do /bin/true || echo failed-$i; done; echo loop-done");
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !s.pty.all_lines().iter().any(|l| l.trim_end() == "loop-done") {
        assert!(std::time::Instant::now() < deadline, "the loop did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!s.pty.all_lines().iter().any(|l| l.starts_with("failed-")), "{}", s.pty.screen_text());
    let cast = s.exit();
    let trues = execs(&cast).into_iter().filter(|e| e["path"] == "/bin/true" && e["outcome"] == "ran").count();
    assert_eq!(trues, 10_000);
}

/// The recorder's children other than the shell: the backstop's reader.
fn readers(recorder: u32, shell_name: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.to_owned()) else { continue };
        let ppid: u32 = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if ppid == recorder && comm.trim() != shell_name {
            out.push(pid);
        }
    }
    out
}

#[test]
fn with_its_reader_killed_every_exec_fails_and_the_session_is_degraded() {
    let mut s = start(Shell::Bash, "enforce");
    s.run("/bin/true; echo before-$?");
    let found = readers(s.pty.child.id(), "bash");
    assert_eq!(found.len(), 1, "expected one reader: {found:?}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(found[0]), nix::sys::signal::Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.run("/bin/true; echo after-$?");
    let lines = s.pty.all_lines();
    assert!(lines.iter().any(|l| l.trim_end() == "before-0"), "{lines:?}");
    let after: Vec<&String> = lines.iter().filter(|l| l.starts_with("after-")).collect();
    assert_eq!(after.len(), 1, "{lines:?}");
    assert_ne!(after[0].trim_end(), "after-0", "a program ran with the backstop gone");
    let cast = s.exit();
    assert!(cast.markers().iter().any(|m| m.starts_with("DEGRADED: the exec backstop stopped")), "{:?}", cast.markers());
}

const OWN_LISTENER: &str = r#"
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
class F(ctypes.Structure): _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]
class P(ctypes.Structure): _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(F))]
prog = (F * 1)(F(6, 0, 0, 0x7fff0000))
p = P(1, prog)
libc.prctl(38, 1, 0, 0, 0)
plain = libc.syscall(317, 1, 0, ctypes.byref(p))
print("plain", plain, ctypes.get_errno())
own = libc.syscall(317, 1, 8, ctypes.byref(p))
print("listener", own, ctypes.get_errno())
"#;

#[test]
fn a_users_own_seccomp_listener_is_refused() {
    let mut s = start(Shell::Bash, "enforce");
    write(&s.work, "own.py", OWN_LISTENER);
    s.run("python3 own.py");
    let lines = s.pty.all_lines();
    assert!(lines.iter().any(|l| l.trim_end() == "plain 0 0"), "a plain filter is the user's business: {lines:?}");
    assert!(lines.iter().any(|l| l.trim_end() == "listener -1 13"), "{lines:?}");
    let cast = s.exit();
    assert!(execs(&cast).iter().any(|e| e["outcome"] == "refused" && e["message"].as_str().unwrap_or_default().contains("seccomp listener")));
}

/// Forty children, each execs `/bin/echo` with an argument a second thread
/// flips between `safe` and `BAD` as fast as it can. An exec checked as
/// `safe` that lands as `BAD` must be killed, never finish normally.
const RACE: &str = r#"
import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.execv.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]
outcomes = []
for attempt in range(40):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.dup2(w, 1)
        buf = ctypes.create_string_buffer(b"safe", 8)
        def flip():
            while True:
                ctypes.memmove(buf, b"BAD\0\0", 5)
                ctypes.memmove(buf, b"safe\0", 5)
        threading.Thread(target=flip, daemon=True).start()
        argv = (ctypes.c_char_p * 3)(b"/bin/echo", ctypes.cast(buf, ctypes.c_char_p), None)
        libc.execv(b"/bin/echo", argv)
        os._exit(99)
    os.close(w)
    out = b""
    while True:
        chunk = os.read(r, 100)
        if not chunk:
            break
        out += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        how = "killed"
    else:
        how = "exit%d" % os.WEXITSTATUS(status)
    outcomes.append("%s:%s" % (how, out.decode().strip() or "-"))
print("RACE " + " ".join(outcomes))
"#;

#[test]
fn an_argv_changed_by_a_second_thread_after_the_check_is_caught() {
    let mut s = start(Shell::Bash, "enforce");
    write(&s.work, "race.py", RACE);
    s.pty.line("python3 race.py > race.out; echo race-done");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !s.pty.all_lines().iter().any(|l| l.trim_end() == "race-done") {
        assert!(std::time::Instant::now() < deadline, "the race did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = std::fs::read_to_string(s.work.join("race.out")).unwrap();
    let outcomes: Vec<&str> = out.trim().strip_prefix("RACE ").unwrap().split(' ').collect();
    assert_eq!(outcomes.len(), 40, "{out}");
    // Both sides of the race happened: some checked as BAD (refused),
    // some ran as safe.
    assert!(outcomes.contains(&"exit0:safe"), "{outcomes:?}");
    assert!(outcomes.iter().any(|o| o.starts_with("exit99")), "{outcomes:?}");
    // The watch caught what landed other than checked: killed before or
    // as the program ran. It looks from outside, so a program as quick as
    // echo can finish first on a loaded machine (then the record says
    // killed and the run does not): the watch must have caught some.
    let landed_bad = outcomes.iter().filter(|o| o.ends_with(":BAD") || o.starts_with("killed")).count();
    let killed_runs = outcomes.iter().filter(|o| o.starts_with("killed")).count();
    assert!(landed_bad == 0 || killed_runs > 0, "nothing that landed as BAD was caught: {outcomes:?}");
    let cast = s.exit();
    let killed: Vec<_> = execs(&cast).into_iter().filter(|e| e["outcome"] == "killed").collect();
    assert!(killed.len() >= killed_runs, "every kill is recorded: {killed:?} {outcomes:?}");
}

#[test]
fn audit_mode_runs_everything_and_records_what_enforce_would_have_done() {
    let mut s = start(Shell::Bash, "audit");
    write(&s.work, "a.sh", "touch from-audit\n");
    s.run("sh a.sh");
    assert!(s.work.join("from-audit").exists());
    let cast = s.exit();
    let touch: Vec<_> = execs(&cast).into_iter().filter(|e| e["argv"][0] == "touch").collect();
    assert_eq!(touch.len(), 1, "{touch:?}");
    assert_eq!(touch[0]["verdict"], "deny");
    assert_eq!(touch[0]["outcome"], "ran");
    assert_eq!(touch[0]["mode"], "audit");
}

#[test]
fn off_mode_installs_nothing() {
    let mut s = start(Shell::Bash, "off");
    write(&s.work, "o.sh", "touch from-off\n");
    s.run("sh o.sh");
    assert!(s.work.join("from-off").exists());
    s.run("grep '^Seccomp:' /proc/self/status");
    let lines = s.pty.all_lines();
    assert!(lines.iter().any(|l| l.starts_with("Seccomp:") && l.trim_end().ends_with('0')), "{lines:?}");
    let cast = s.exit();
    assert!(execs(&cast).is_empty());
}

#[test]
fn a_refusal_shows_on_the_status_line() {
    let mut s = start(Shell::Bash, "enforce");
    s.run("grep '^Seccomp:' /proc/self/status");
    let lines = s.pty.all_lines();
    assert!(lines.iter().any(|l| l.starts_with("Seccomp:") && l.trim_end().ends_with('2')), "filtered: {lines:?}");
    write(&s.work, "t.sh", "touch from-status\n");
    s.run("sh t.sh");
    s.pty.wait_for("the exec notice", |screen| screen.contains("exec refused (no-touch)"));
    let cast = s.exit();
    // dash looks for touch along PATH: each place it tries is refused.
    assert!(!refused_touches(&cast).is_empty());
}

#[rstest]
#[case::script("script -q /dev/null")]
#[case::pty_spawn("python3 -c 'import pty; pty.spawn(\"/bin/bash\")'")]
fn a_hookless_shell_on_a_fresh_pty_is_still_decided_program_by_program(#[case] start_it: &str) {
    let mut s = start(Shell::Bash, "enforce");
    s.pty.line(&format!("SHELL=/bin/bash {start_it}"));
    std::thread::sleep(Duration::from_millis(800));
    s.pty.line("PS1='inner> '");
    s.pty.wait_text("inner>");
    s.pty.line("touch from-inner; echo inner-status-$?");
    s.pty.wait_for("the inner shell's answer", |t| t.lines().any(|l| l.starts_with("inner-status-") && !l.contains('$')));
    assert!(!s.work.join("from-inner").exists(), "{}", s.pty.all_lines().join("\n"));
    s.pty.line("exit");
    std::thread::sleep(Duration::from_millis(1500));
    let cast = s.exit();
    assert!(refused_touches(&cast).iter().any(|c| c.ends_with("bash")), "{:?}", refused_touches(&cast));
    // Every program it starts is decided: the session is not degraded.
    let degraded: Vec<_> = cast.audits().into_iter().filter(|a| a["kind"] == "degraded").collect();
    assert!(degraded.is_empty(), "{degraded:?}");
}

/// The reader holds back the records of programs that ran and sends them
/// together; a shell that ends right after its last program must still
/// leave that program in the recording, with a terminal and without.
/// A burst of starts first, so that records are being held back when the
/// last program runs and the shell ends.
#[test]
fn the_last_programs_before_the_shell_ends_are_recorded() {
    const BURST: &str = r#"python3 -c 'import os; [os.waitpid(os.posix_spawn("/bin/true", ["/bin/true"], {}), 0) for _ in range(300)]; os.execv("/bin/echo", ["/bin/echo", "from-python"])'"#;
    let last = |cast: &custos::evidence::asciicast::Cast, word: &str| {
        execs(cast).iter().any(|e| e["outcome"] == "ran" && e["argv"][0] == "/bin/echo" && e["argv"][1] == word)
    };
    for round in 0..3 {
        let mut s = start(Shell::Bash, "enforce");
        let word = format!("last-typed-{round}");
        s.pty.line(&format!("{BURST}; /bin/echo {word}; exit"));
        s.pty.wait_exit();
        let cast = s.setup.recording();
        assert!(last(&cast, &word), "round {round}: the last program is not in the recording: {:?}", execs(&cast));

        let setup = Setup::new("[shell]\ndefault = \"/bin/bash\"\n[gate]\nexec = \"enforce\"\n");
        let word = format!("last-scripted-{round}");
        let out = setup.command(&["-c", &format!("{BURST}; /bin/echo {word}")]).stdin(std::process::Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let cast = setup.recording();
        assert!(last(&cast, &word), "round {round}: the last scripted program is not in the recording: {:?}", execs(&cast));
    }
}
