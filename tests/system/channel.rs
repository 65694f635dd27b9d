//! Sessions without a terminal, through the real sshd, tried as a recorded
//! user would: commands on stdin, script files, nested shells, a PTY the
//! command makes itself, a database client, and the file-transfer
//! programs. Each must be recorded, masked and gated like an interactive
//! session, and stay byte-exact.

use super::*;

/// Runs `ssh [extra] host [command]` with `stdin`, returning its output.
fn ssh_with(sshd: &sshd::Sshd, extra: &[&str], command: Option<&str>, stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut cmd = sshd.ssh();
    // ssh's own options go before the host: rebuild with them in front.
    let mut args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let host = args.pop().unwrap();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.push(host);
    args.extend(command.map(str::to_owned));
    cmd = Command::new("ssh");
    cmd.args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Writes a file into the test user's home, owned by them.
fn user_file(name: &str, text: &str) -> PathBuf {
    let path = home().join(name);
    std::fs::write(&path, text).unwrap();
    let user = nix::unistd::User::from_name(USER).unwrap().unwrap();
    nix::unistd::chown(&path, Some(user.uid), Some(user.gid)).unwrap();
    path
}

/// The recording's `a` records of one kind, parsed.
fn audits(rec: &Recording, kind: &str) -> Vec<Value> {
    rec.events
        .iter()
        .filter(|e| e.1 == "a")
        .map(|e| serde_json::from_str::<Value>(&e.2).unwrap())
        .filter(|v| v["kind"] == kind)
        .collect()
}

fn stream(rec: &Recording, code: &str) -> String {
    rec.events.iter().filter(|e| e.1 == code).map(|e| e.2.as_str()).collect()
}

/// What is tried, the ssh options, the remote command, stdin, and the tag
/// of the files its allowed and later lines make.
type Case<'a> = (&'a str, Vec<&'a str>, Option<String>, String, &'a str);

#[test]
fn commands_on_stdin_script_files_and_nested_shells_are_gated_line_by_line() {
    let Some(sys) = System::setup("gated without a terminal") else { return };
    let sshd = sshd::Sshd::start(USER, &home());
    let script = |tag: &str| format!("touch {tag}-before\nrm -rf /\ntouch {tag}-after\n");
    user_file("script.sh", &script("file"));

    let cases: Vec<Case> = vec![
        ("a script on the login shell's stdin (ssh -T host < script)", vec!["-T"], None, script("login"), "login"),
        ("ssh host 'bash -s' < script", vec![], Some("bash -s".into()), script("bash-s"), "bash-s"),
        ("ssh host 'bash script.sh'", vec![], Some("bash script.sh".into()), String::new(), "file"),
        // bash exec'd by bash -c at shell level 1 with SSH_CLIENT set reads
        // ~/.bashrc instead of BASH_ENV: the bash.bashrc hook loads the gate.
        (
            "ssh host 'exec bash -c …'",
            vec![],
            Some("exec bash -c 'touch exec-before; eval \"$(echo cm0gLXJmIC8= | base64 -d)\"; touch exec-after'".into()),
            String::new(),
            "exec",
        ),
        ("an interactive bash on a pipe (ssh host 'bash -i' < script)", vec![], Some("bash -i".into()), script("interactive"), "interactive"),
        (
            "a function, a command substitution and a decoded eval on stdin",
            vec![],
            Some("bash -s".into()),
            "touch subst-before\nf() { x=$(eval \"$(echo cm0gLXJmIC8= | base64 -d)\"); }\nf\ntouch subst-after\n".into(),
            "subst",
        ),
    ];
    for (what, options, command, stdin, tag) in cases {
        let before = recordings();
        let out = ssh_with(&sshd, &options, command.as_deref(), stdin.as_bytes());
        assert_eq!(out.status.code(), Some(126), "{what}: {}\nsshd log:\n{}", text(&out), sshd.log());
        assert!(String::from_utf8_lossy(&out.stderr).contains("refused by rule rm-root"), "{what}: {}", text(&out));
        assert!(home().join(format!("{tag}-before")).exists(), "{what}: the lines before the refused one did not run");
        assert!(!home().join(format!("{tag}-after")).exists(), "{what}: a line after the refused one ran");
        let rec = only_new_recording(&before, what);
        rec.assert_session(sys.uid, "data", command.as_deref(), 126);
        let markers = rec.markers();
        assert!(markers.iter().any(|m| m.starts_with("refused: $ ") && m.contains("rm -rf /")), "{what}: {markers:?}");
        assert!(markers.iter().any(|m| m == &format!("$ touch {tag}-before")), "{what}: the allowed command is recorded: {markers:?}");
        if !stdin.is_empty() {
            assert!(stream(&rec, "i").contains(&format!("touch {tag}-before")), "{what}: what the shell read is recorded as input");
        }
    }

    // `bash +x -c CODE` is looked into (a `+` option no longer hides the
    // code), so the line is refused before any of it runs.
    let command = "bash +x -c 'touch plus-x-before; eval \"rm -rf /\"; touch plus-x-after'";
    let out = ssh_with(&sshd, &[], Some(command), b"");
    assert_eq!(out.status.code(), Some(126), "{command}: {}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused by rule rm-root"), "{command}: {}", text(&out));
    assert!(!home().join("plus-x-before").exists() && !home().join("plus-x-after").exists(), "{command}: part of it ran");

    // dash (Debian's sh) reads no BASH_ENV: its script would run unchecked,
    // so it gets the policy's `unknown` verdict, deny by default.
    let _ = std::fs::remove_file(home().join("file-before"));
    for command in ["sh script.sh", "sh -s"] {
        let before = recordings();
        let out = ssh_with(&sshd, &[], Some(command), script("dash").as_bytes());
        assert_eq!(out.status.code(), Some(126), "{command}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("refused by rule custos:unknown"), "{command}: {}", text(&out));
        assert!(!home().join("file-before").exists() && !home().join("dash-before").exists(), "{command}: dash ran the script");
        let rec = only_new_recording(&before, command);
        assert!(rec.markers().iter().any(|m| m == &format!("refused: $ {command}")), "{command}: {:?}", rec.markers());
    }

    // The shell of a script that was not refused runs to its end, with its
    // exit status, and `ssh -n` (stdin from /dev/null) still ends.
    let before = recordings();
    let out = ssh_with(&sshd, &["-n"], Some("echo n-ok; exit 3"), b"");
    assert_eq!(out.status.code(), Some(3), "ssh -n: {}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "n-ok\n");
    only_new_recording(&before, "ssh -n").assert_session(sys.uid, "data", Some("echo n-ok; exit 3"), 3);
}

#[test]
fn a_pty_made_by_the_command_replays_as_a_screen() {
    let Some(sys) = System::setup("pty.spawn over ssh") else { return };
    let sshd = sshd::Sshd::start(USER, &home());
    let command = "python3 -c 'import pty; pty.spawn(\"/bin/bash\")'";
    let before = recordings();
    // The shell python starts is interactive, so it skips BASH_ENV; it is
    // gated all the same (the bash.bashrc hook).
    let out = ssh_with(&sshd, &[], Some(command), b"echo pty-$((6*7)) AKIAIOSFODNN7EXAMPLE\nrm -rf /\necho not-reached\nexit\n");
    // The refusal stops the script (exit mode), which ends the session 126.
    assert_eq!(out.status.code(), Some(126), "{}\nsshd log:\n{}", text(&out), sshd.log());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pty-42 AKIAIOSFODNN7EXAMPLE"), "the user sees their output unchanged: {stdout:?}");
    let rec = only_new_recording(&before, "pty.spawn");
    rec.assert_session(sys.uid, "data", Some(command), 126);
    let screen = rec.screen();
    assert!(screen.lines().any(|l| l.trim_end().ends_with(&format!("pty-42 {}", "*".repeat(20)))), "replay shows the screen, masked:\n{screen}");
    assert!(screen.contains("refused by rule rm-root"), "the refusal is on the screen:\n{screen}");
    assert!(!screen.lines().any(|l| l.trim_end() == "not-reached"), "the shell went on after a refusal:\n{screen}");
    assert!(rec.markers().iter().any(|m| m.starts_with("refused: $ rm -rf /")), "{:?}", rec.markers());
    let raw: String = rec.events.iter().map(|e| e.2.as_str()).collect();
    assert!(!raw.contains("AKIAIOSFODNN7EXAMPLE"), "the key is in the recording in clear");
}

/// A private PostgreSQL cluster run by the test user on loopback.
struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
}

impl Postgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is not installed (apt-get install -y postgresql; .ci/run does this)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())
            .expect("no initdb under /usr/lib/postgresql");
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let user = nix::unistd::User::from_name(USER).unwrap().unwrap();
        nix::unistd::chown(&data, Some(user.uid), Some(user.gid)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let as_user = |program: &str| {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", USER, "--"]).arg(bin.join(program));
            cmd
        };
        run_ok(as_user("initdb").args(["-A", "trust", "-U", USER, "-D"]).arg(&data));
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", data.display());
        run_ok(as_user("pg_ctl").args(["-w", "-D"]).arg(&data).args(["-l"]).arg(data.join("log")).args(["-o", &options, "start"]));
        let pg = Self { dir, port };
        run_ok(as_user("psql").args(["-h", "127.0.0.1", "-p", &port.to_string(), "-d", "postgres", "-q", "-c"]).arg(
            "create table customers (name text, email text, password text); \
             insert into customers values ('alice', 'alice@example.com', 'Tr0ub4dor-and-3-horses'), \
                                          ('bob', 'bob@example.com', 'correct-horse-battery-staple');",
        ));
        pg
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| d.flatten().map(|e| e.path().join("bin/pg_ctl")).find(|p| p.exists()));
        if let Some(pg_ctl) = bin {
            let _ = Command::new("runuser")
                .args(["-u", USER, "--"])
                .arg(pg_ctl)
                .args(["-w", "-m", "immediate", "-D"])
                .arg(self.dir.path().join("data"))
                .arg("stop")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[test]
fn psql_output_over_ssh_is_recorded_with_the_password_column_masked() {
    let Some(sys) = System::setup("psql over ssh") else { return };
    let pg = Postgres::start();
    let sshd = sshd::Sshd::start(USER, &home());
    let command = format!("psql -h 127.0.0.1 -p {} -d postgres -c 'select name, email, password from customers order by name'", pg.port);
    let before = recordings();
    let out = ssh_with(&sshd, &[], Some(&command), b"");
    assert!(out.status.success(), "{}\nsshd log:\n{}", text(&out), sshd.log());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Tr0ub4dor-and-3-horses"), "the user gets the rows unchanged: {stdout}");
    let rec = only_new_recording(&before, "psql -c");
    rec.assert_session(sys.uid, "data", Some(&command), 0);
    let output = stream(&rec, "o");
    assert!(output.contains("alice@example.com") && output.contains("bob"), "the rows are recorded: {output}");
    for secret in ["Tr0ub4dor-and-3-horses", "correct-horse-battery-staple"] {
        assert!(!rec.events.iter().any(|e| e.2.contains(secret)), "{secret} is in the recording in clear:\n{output}");
    }
    assert!(output.contains(&"*".repeat(22)), "the password column is covered: {output}");
    drop(pg);
}

#[test]
fn git_clone_and_push_are_recorded_as_transfers_and_the_files_arrive_intact() {
    let Some(sys) = System::setup("git over ssh") else { return };
    let sshd = sshd::Sshd::start(USER, &home());
    run_ok(Command::new("runuser").args(["-u", USER, "--", "git", "init", "-q", "--bare", "-b", "main"]).arg(home().join("repo.git")));
    let work = tempfile::tempdir().unwrap();
    let git = |dir: &Path, args: &[&str]| -> Output {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_SSH_COMMAND", sshd.rsync_shell())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .env("HOME", work.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}\nsshd log:\n{}", text(&out), sshd.log());
        out
    };
    let url = format!("{}:repo.git", sshd.host());
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    random_file(&src.join("data.bin"), 1 << 20);
    git(&src, &["add", "data.bin"]);
    git(&src, &["commit", "-q", "-m", "data"]);
    let head = String::from_utf8_lossy(&git(&src, &["rev-parse", "HEAD"]).stdout).trim().to_owned();

    let before = recordings();
    git(&src, &["push", "-q", &url, "main"]);
    let rec = only_new_recording(&before, "git push");
    rec.assert_session(sys.uid, "data", Some("git-receive-pack 'repo.git'"), 0);
    let transfer = audits(&rec, "transfer");
    assert_eq!(transfer.len(), 1, "{:?}", rec.events);
    let t = &transfer[0];
    assert_eq!(t["protocol"], "git-receive-pack");
    assert_eq!(t["direction"], "upload");
    assert!(t["files"].as_array().unwrap().iter().any(|f| f["path"] == "refs/heads/main" && f["to"] == head.as_str()), "the pushed ref: {t}");

    let before = recordings();
    git(work.path(), &["clone", "-q", &url, "copy"]);
    let rec = only_new_recording(&before, "git clone");
    rec.assert_session(sys.uid, "data", Some("git-upload-pack 'repo.git'"), 0);
    let transfer = audits(&rec, "transfer");
    assert_eq!(transfer.len(), 1);
    assert_eq!(transfer[0]["protocol"], "git-upload-pack");
    assert_eq!(transfer[0]["direction"], "download");
    assert_eq!(sha256(&work.path().join("copy/data.bin")), sha256(&src.join("data.bin")), "the cloned file differs");
}

/// The file entry of a transfer record whose path ends with `name`.
fn file_entry<'a>(transfer: &'a Value, name: &str, direction: &str) -> &'a Value {
    transfer["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap_or_default().ends_with(name) && f["direction"] == direction)
        .unwrap_or_else(|| panic!("no {direction} of {name} in {transfer}"))
}

#[test]
fn transfers_are_recorded_with_names_sizes_and_hashes_and_arrive_intact() {
    let Some(sys) = System::setup("transfer records") else { return };
    let sshd = sshd::Sshd::start(USER, &home());
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local.bin");
    let size: u64 = 3 << 20;
    random_file(&local, size);
    let digest = sha256(&local);
    let remote = |name: &str| format!("{}:{name}", sshd.host());
    let local_copy = |name: &str| path_arg(&dir.path().join(name));

    // (what, command, protocol, direction, the name, whether the protocol
    // carries the file's bytes so the record can hash them)
    let cases: Vec<(&str, Command, &str, &str, &str, bool)> = vec![
        ("scp upload over sftp", with_args(sshd.scp(false), [path_arg(&local), remote("s.bin")]), "sftp", "upload", "s.bin", true),
        ("scp download over sftp", with_args(sshd.scp(false), [remote("s.bin"), local_copy("s.bin")]), "sftp", "download", "s.bin", true),
        ("legacy scp upload", with_args(sshd.scp(true), [path_arg(&local), remote("l.bin")]), "scp", "upload", "l.bin", true),
        ("legacy scp download", with_args(sshd.scp(true), [remote("l.bin"), local_copy("l.bin")]), "scp", "download", "l.bin", true),
        ("rsync upload", rsync(&sshd, &path_arg(&local), &remote("r.bin")), "rsync", "upload", "r.bin", false),
        ("rsync download", rsync(&sshd, &remote("r.bin"), &local_copy("r.bin")), "rsync", "download", "r.bin", false),
    ];
    for (what, mut cmd, protocol, direction, name, hashed) in cases {
        let before = recordings();
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{what} failed: {}\nsshd log:\n{}", text(&out), sshd.log());
        let rec = only_new_recording(&before, what);
        let command = rec.custos("command").as_str().unwrap_or_default().to_owned();
        rec.assert_session(sys.uid, "data", Some(&command), 0);
        let transfers = audits(&rec, "transfer");
        assert_eq!(transfers.len(), 1, "{what}: {:?}", rec.events);
        let t = &transfers[0];
        assert_eq!(t["protocol"], protocol, "{what}: {t}");
        assert_eq!(t["direction"], direction, "{what}: {t}");
        assert!(rec.markers().iter().any(|m| m.starts_with(&format!("transfer: {protocol} {direction}")) && m.contains(name)), "{what}: {:?}", rec.markers());
        if protocol == "rsync" {
            assert!(t["arguments"].as_array().unwrap().iter().any(|a| a.as_str().unwrap_or_default().ends_with(name)), "{what}: {t}");
        } else {
            let f = file_entry(t, name, direction);
            assert_eq!(f["size"], size, "{what}: {f}");
            if hashed {
                assert_eq!(f["sha256"], digest.as_str(), "{what}: the file's hash: {f}");
            }
        }
        // No file content is stored in the recording.
        assert!(rec.events.iter().all(|e| e.2.len() < 64 << 10), "{what}: a large event in the recording");
    }

    // An sftp batch: upload, download, mkdir and rename in one session.
    let batch = dir.path().join("batch");
    std::fs::write(&batch, format!("put {} b.bin\nget b.bin {}\nmkdir made\nrename b.bin made/b.bin\nls made\n", path_arg(&local), local_copy("b.bin"))).unwrap();
    let mut sftp = Command::new("sftp");
    sftp.args(["-q", "-b"]).arg(&batch).args(["-P", &sshd.port.to_string()]).args(sshd.client_options()).arg(sshd.host());
    let before = recordings();
    let out = sftp.output().unwrap();
    assert!(out.status.success(), "sftp -b: {}\nsshd log:\n{}", text(&out), sshd.log());
    let rec = only_new_recording(&before, "sftp -b");
    let t = &audits(&rec, "transfer")[0];
    assert_eq!(t["protocol"], "sftp");
    assert_eq!(t["direction"], "both", "{t}");
    let up = file_entry(t, "/b.bin", "upload");
    assert_eq!((up["size"].as_u64(), up["sha256"].as_str()), (Some(size), Some(digest.as_str())), "{up}");
    let down = file_entry(t, "/b.bin", "download");
    assert_eq!((down["size"].as_u64(), down["sha256"].as_str()), (Some(size), Some(digest.as_str())), "{down}");
    file_entry(t, "/made", "mkdir");
    let renamed = file_entry(t, "/b.bin", "rename");
    assert!(renamed["to"].as_str().unwrap_or_default().ends_with("made/b.bin"), "{renamed}");

    let home = home();
    for file in [home.join("s.bin"), home.join("l.bin"), home.join("r.bin"), home.join("made/b.bin")] {
        assert_eq!(sha256(&file), digest, "{} (uploaded) differs", file.display());
    }
    for file in ["s.bin", "l.bin", "r.bin", "b.bin"] {
        assert_eq!(sha256(&dir.path().join(file)), digest, "{file} (downloaded) differs");
    }
}

/// What a recorded user can try from inside a session without a terminal:
/// signal or trace the recorder (their shell's parent), read its memory,
/// or find a descriptor of it (the gate's loopback listener) in their
/// shell.
#[test]
fn the_recorder_of_a_session_without_a_terminal_is_out_of_the_users_reach() {
    let Some(sys) = System::setup("data channel recorder out of reach") else { return };
    let sshd = sshd::Sshd::start(USER, &home());
    // The first ancestor that is not the user's is the recorder.
    let script = "r=$$; while [ \"$(stat -c %U /proc/$r)\" = \"$(id -un)\" ]; do r=$(cut -d' ' -f4 /proc/$r/stat); done\n\
                  echo recorder=$(stat -c %U /proc/$r)\n\
                  kill -KILL $r; echo kill=$?\n\
                  kill -STOP $r; echo stop=$?\n\
                  python3 -c 'import ctypes,os,sys; l=ctypes.CDLL(None,use_errno=True); r=l.ptrace(16,int(sys.argv[1]),0,0); print(\"ptrace\", r, os.strerror(ctypes.get_errno()))' $r\n\
                  cat /proc/$r/environ >/dev/null 2>&1; echo environ=$?\n\
                  python3 -c 'import os,sys; port=int(os.environ[\"CUSTOS_GATE_PORT\"]); rows=[l.split() for l in open(\"/proc/net/tcp\").read().splitlines()[1:]]; ino=[r[9] for r in rows if int(r[1].split(\":\")[1],16)==port and r[3]==\"0A\"]; fds=[os.readlink(\"/proc/%s/fd/%s\" % (sys.argv[1], f)) for f in os.listdir(\"/proc/%s/fd\" % sys.argv[1])]; print(\"listener-found\", len(ino)); print(\"listener-held\", sum(1 for f in fds for i in ino if f == \"socket:[%s]\" % i))' $$\n\
                  echo still-recorded\n";
    let before = recordings();
    let out = ssh_with(&sshd, &[], Some("bash -s"), script.as_bytes());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for expected in ["recorder=custos", "kill=1", "stop=1", "ptrace -1 Operation not permitted", "environ=1", "listener-found 1", "listener-held 0", "still-recorded"] {
        assert!(stdout.contains(expected), "expected {expected:?} in:\n{stdout}");
    }
    let rec = only_new_recording(&before, "kill the recorder");
    rec.assert_session(sys.uid, "data", Some("bash -s"), 0);
    assert!(stream(&rec, "o").contains("still-recorded"), "the output after the attempts is recorded");
}
