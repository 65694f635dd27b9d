//! The exec backstop with the privileged stage, as installed: the filter
//! is installed by root without `no_new_privs`, so `sudo` still works
//! under it, and the reader (not dumpable, the service user with only
//! `CAP_SYS_PTRACE` and `CAP_KILL`) reads even root's execs under `sudo`.

use super::*;

const POLICY: &str = r#"
version = 1

[[rule]]
name = "no-touch"
message = "touch is refused in this test"
action = "deny"
program = ["touch"]
"#;

const SUDOERS: &str = "/etc/sudoers.d/custos-system-tests";

/// Removes the test's sudoers file, also when the test fails.
struct Sudoers;

impl Drop for Sudoers {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(SUDOERS);
    }
}

fn grant_sudo() -> Sudoers {
    assert!(Command::new("sudo").arg("-V").output().is_ok_and(|o| o.status.success()), "sudo is not installed (.ci/run installs it)");
    std::fs::write(SUDOERS, format!("{USER} ALL=(ALL) NOPASSWD: ALL\n")).unwrap();
    chmod(Path::new(SUDOERS), 0o440);
    Sudoers
}

fn exec_audits(rec: &Recording) -> Vec<Value> {
    rec.events
        .iter()
        .filter(|e| e.1 == "a")
        .map(|e| serde_json::from_str::<Value>(&e.2).unwrap())
        .filter(|v| v["kind"] == "exec")
        .collect()
}

#[test]
fn sudo_works_under_the_backstop_and_what_it_starts_is_decided_too() {
    let Some(sys) = System::setup("exec backstop under sudo") else { return };
    std::fs::write("/etc/custos/policy.toml", POLICY).unwrap();
    chmod(Path::new("/etc/custos/policy.toml"), 0o644);
    let _sudo = grant_sudo();
    let _ = std::fs::remove_file("/tmp/custos-bs-sudo");
    let _ = std::fs::remove_file("/tmp/custos-bs-login");
    // The programs' code is in files the gate's hooks cannot read: written
    // as `python3 -c '…os.system("touch …")'` the line is refused at the
    // gate already, and nothing reaches the exec this test is about.
    std::fs::write("/tmp/custos-bs-sudo.py", "import os\nprint(\"py-status\", os.system(\"touch /tmp/custos-bs-sudo\"))\n").unwrap();
    std::fs::write("/tmp/custos-bs-login.py", "import os\nprint(\"login-status\", os.system(\"touch /tmp/custos-bs-login\"))\n").unwrap();
    chmod(Path::new("/tmp/custos-bs-sudo.py"), 0o644);
    chmod(Path::new("/tmp/custos-bs-login.py"), 0o644);

    // Without a terminal, through sshd.
    let sshd = sshd::Sshd::start(USER, &home());
    let before = recordings();
    let line = r#"grep '^Seccomp:' /proc/self/status; sudo -n id -u; sudo -n python3 /tmp/custos-bs-sudo.py; echo ssh-done"#;
    let out = sshd.ssh().arg(line).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let rec = only_new_recording(&before, "ssh with sudo");
    let execs = exec_audits(&rec);
    assert!(stdout.contains("Seccomp:\t2"), "the session runs under the filter: {}\n{execs:?}\n{:?}", text(&out), rec.events);
    assert!(stdout.lines().any(|l| l == "0"), "sudo ran as root under the backstop: {}", text(&out));
    assert!(stdout.contains("ssh-done"), "{}", text(&out));
    assert!(!stdout.contains("py-status 0"), "{}", text(&out));
    assert!(!Path::new("/tmp/custos-bs-sudo").exists(), "root's touch under sudo ran");
    assert!(execs.iter().any(|e| e["argv"][0] == "sudo" && e["outcome"] == "ran"), "{execs:?}");
    assert!(execs.iter().any(|e| e["argv"][0] == "id" && e["outcome"] == "ran"), "sudo's own start of id was read: {execs:?}");
    let refused: Vec<_> = execs.iter().filter(|e| e["rule"] == "no-touch" && e["outcome"] == "refused").collect();
    assert_eq!(refused.len(), 1, "{execs:?}");
    assert!(rec.events.iter().any(|e| e.1 == "m" && e.2.starts_with("exec refused (no-touch)")));

    // Interactive, logged in as the user.
    let before = recordings();
    let mut term = sys.login();
    let shown = term.run("python3 /tmp/custos-bs-login.py");
    // python's system() runs `sh -c 'touch …'`: refused as a whole.
    assert!(shown.contains("login-status ") && !shown.contains("login-status 0"), "{shown}");
    let shown = term.run("sudo -n sh -c 'echo root-says-$(id -u)'");
    assert!(shown.contains("root-says-0"), "{shown}");
    term.line("exit");
    term.wait(SHORT);
    assert!(!Path::new("/tmp/custos-bs-login").exists());
    let rec = only_new_recording(&before, "the login");
    let execs = exec_audits(&rec);
    assert!(execs.iter().any(|e| e["rule"] == "no-touch" && e["outcome"] == "refused"), "{execs:?}");
    for made in ["/tmp/custos-bs-sudo.py", "/tmp/custos-bs-login.py"] {
        let _ = std::fs::remove_file(made);
    }
    // The reader is gone with the session.
    drop(sshd);
    drop(sys);
}
