//! The data channel without a terminal, run unprivileged: the bytes pass
//! untouched, the recording holds the streams masked and binary runs as
//! hashes, and a bash or zsh reading commands without a terminal is gated
//! command by command (functions, command substitutions, script files,
//! stdin, startup files, and each shell started from the other).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

struct Run {
    status: i32,
    stdout: Vec<u8>,
    stderr: String,
    cast: String,
}

fn run(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    run_shell(dir, None, args, stdin, &[], "")
}

fn run_with(dir: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &Path)]) -> Run {
    run_shell(dir, None, args, stdin, env, "")
}

/// As `run`, with zsh as the user's shell and `dir` as its home (so a
/// `.zshenv` there is the user's own).
fn run_zsh(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    run_shell(dir, Some("/usr/bin/zsh"), args, stdin, &[], "")
}

/// `extra` is appended to the config, after `[recording] spool_dir` (and
/// `[shell]` with `shell`).
fn run_shell(dir: &Path, shell: Option<&str>, args: &[&str], stdin: &[u8], env: &[(&str, &Path)], extra: &str) -> Run {
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "[[rule]]\nname = \"no-touch\"\nmessage = \"touch is not allowed\"\naction = \"deny\"\nprogram = [\"touch\"]\n").unwrap();
    let state = dir.join("state");
    // Our own config, so a system-wide /etc/custos does not apply.
    let config = dir.join("custos.toml");
    let mut text = format!("[recording]\nspool_dir = \"{}\"\n", state.join("custos").display());
    let mut command = Command::new(env!("CARGO_BIN_EXE_custos-shell"));
    if let Some(shell) = shell {
        text.push_str(&format!("[shell]\ndefault = \"{shell}\"\n"));
        command.env("HOME", dir);
    }
    text.push_str(extra);
    std::fs::write(&config, text).unwrap();
    let mut child = command
        .args(args)
        .current_dir(dir)
        .env("CUSTOS_CONFIG", &config)
        .env("CUSTOS_POLICY", &policy)
        .env_remove("BASH_ENV")
        .envs(env.iter().copied())
        .env_remove("ZDOTDIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let recordings = state.join("custos/recordings");
    let mut casts: Vec<_> = std::fs::read_dir(&recordings).unwrap().map(|e| e.unwrap().path()).collect();
    casts.sort();
    let cast = std::fs::read_to_string(casts.last().unwrap()).unwrap();
    for c in casts {
        std::fs::remove_file(c).unwrap();
    }
    Run { status: out.status.code().unwrap(), stdout: out.stdout, stderr: String::from_utf8_lossy(&out.stderr).into_owned(), cast }
}

#[test]
fn output_passes_untouched_and_is_recorded_masked() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), &["-c", "cat; echo oops >&2; echo key AKIAIOSFODNN7EXAMPLE"], b"hello\n");
    assert_eq!(r.status, 0);
    assert_eq!(r.stdout, b"hello\nkey AKIAIOSFODNN7EXAMPLE\n", "the wire is byte-exact");
    assert!(r.stderr.contains("oops"));
    assert!(r.cast.contains(r#""i", "hello\r\n""#), "{}", r.cast);
    assert!(r.cast.contains(r#""e", "oops\r\n""#), "stderr is told apart: {}", r.cast);
    assert!(!r.cast.contains("AKIAIOSFODNN7EXAMPLE"), "masked in the recording: {}", r.cast);
    assert!(r.cast.contains(r#""x", "0""#));
}

#[test]
fn binary_output_is_recorded_as_length_and_hash() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(dir.path().join("blob"), &bytes).unwrap();
    let r = run(dir.path(), &["-c", "cat blob"], b"");
    assert_eq!(r.stdout, bytes);
    use sha2::Digest as _;
    let hash: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert!(r.cast.contains(&format!("binary on stdout: 5000 bytes, sha256 {hash}")), "{}", r.cast);
}

/// With `binary = "content"` a binary run is kept, base64, up to the cap,
/// and says whether it was cut.
#[test]
fn binary_content_is_kept_up_to_its_cap() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(dir.path().join("blob"), &bytes).unwrap();
    let r = run_shell(dir.path(), None, &["-c", "cat blob"], b"", &[], "binary = \"content\"\nbinary_cap = 1000\n");
    assert_eq!(r.stdout, bytes, "the wire is byte-exact");
    let audit = r
        .cast
        .lines()
        .filter_map(|l| serde_json::from_str::<(f64, String, String)>(l).ok())
        .filter(|e| e.1 == "a")
        .map(|e| serde_json::from_str::<serde_json::Value>(&e.2).unwrap())
        .find(|v| v["kind"] == "binary")
        .unwrap_or_else(|| panic!("no binary record: {}", r.cast));
    assert_eq!(audit["bytes"], 5000);
    assert_eq!(audit["truncated"], true);
    let kept = base64::engine::general_purpose::STANDARD.decode(audit["content"].as_str().unwrap()).unwrap();
    assert_eq!(kept, bytes[..1000], "the first binary_cap bytes are kept");
}

#[test]
fn a_refused_command_in_a_stdin_script_stops_it_there() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!("echo before > {d}/before\ntouch {d}/refused\necho after > {d}/after\n");
    let r = run(dir.path(), &["-c", "bash -s"], script.as_bytes());
    assert_eq!(r.status, 126);
    assert!(dir.path().join("before").exists(), "lines before it ran");
    assert!(!dir.path().join("refused").exists() && !dir.path().join("after").exists(), "it and the rest did not");
    assert!(r.stderr.contains("refused by rule no-touch"), "{}", r.stderr);
    assert!(r.cast.contains(&format!("refused: $ touch {d}/refused")), "{}", r.cast);
}

#[test]
fn functions_substitutions_script_files_and_login_stdin_are_gated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("s.sh"), format!("touch {d}/t\n")).unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["-c", "bash -s"], format!("f() {{ touch {d}/t; }}\nf\n")),
        (vec![], format!("x=$(touch {d}/t)\n")),
        (vec!["-c", "bash s.sh"], String::new()),
        (vec!["-c", "bash +x -c 'touch t'"], String::new()),
        (vec!["-c", "bash -s"], "eval \"$(echo dG91Y2ggdA== | base64 -d)\"\n".to_owned()),
        (vec!["-c", "bash -s"], "trap - DEBUG\ntouch t\n".to_owned()),
        // A variable named like the hooks' own, made at run time and
        // exported, must not make a child bash skip them.
        (vec!["-c", "bash -s"], "v=__cust; export \"${v}os_port=1\"; bash -c 'touch t'\n".to_owned()),
        (vec!["-c", "bash -s"], "trap 'touch t' EXIT\n".to_owned()),
        (vec!["-c", "bash -s"], "sh -c 'true'; sh s.sh\n".to_owned()),
    ];
    for (args, stdin) in cases {
        let r = run(dir.path(), &args, stdin.as_bytes());
        assert_eq!(r.status, 126, "{args:?} {stdin:?}: {}", r.stderr);
        assert!(!dir.path().join("t").exists(), "{args:?} {stdin:?} ran the refused command");
    }
}

/// The user's own BASH_ENV runs after the trap is in place: a command in
/// it is asked about like any other, and a refusal there ends the shell
/// before the script starts (bash cannot skip a command yet at start-up).
#[test]
fn the_users_own_bash_env_is_gated_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let env_file = dir.path().join("env.bash");
    std::fs::write(&env_file, format!("echo from-env > {d}/env-ran\ntouch {d}/t\n")).unwrap();
    let r = run_with(dir.path(), &["-c", "echo main > main-ran"], b"", &[("BASH_ENV", &env_file)]);
    assert_eq!(r.status, 126, "{}", r.stderr);
    assert!(dir.path().join("env-ran").exists(), "the user's BASH_ENV is read");
    assert!(!dir.path().join("t").exists(), "a refused command in it did not run");
    assert!(!dir.path().join("main-ran").exists(), "the script did not start after a refusal at start-up");
    assert!(r.stderr.contains("refused by rule no-touch"), "{}", r.stderr);
}

/// An ordinary script with loops, `case`, tests and arithmetic runs to its
/// end under the gate, with its output unchanged.
#[test]
fn compound_commands_run_under_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let script = "for i in 1 2; do echo i=$i; done\n\
                  case $- in *i*) echo interactive;; *) echo batch;; esac\n\
                  n=0; while (( n < 2 )); do n=$((n+1)); done; echo n=$n\n\
                  for ((j=0; j<2; j++)); do echo j=$j; done\n\
                  [[ -n x ]] && echo test-ok\n\
                  select s in one; do echo s=$s; break; done <<< 1 2>/dev/null\n\
                  f() { local k; for k in a b; do echo \"$k\"; done; }; f\n";
    let r = run(dir.path(), &["-c", "bash -s"], script.as_bytes());
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(String::from_utf8_lossy(&r.stdout), "i=1\ni=2\nbatch\nn=2\nj=0\nj=1\ntest-ok\ns=one\na\nb\n");
}

#[test]
fn zsh_a_refused_command_in_a_stdin_script_stops_it_there() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!("echo before > {d}/before\ntouch {d}/refused\necho after > {d}/after\n");
    for args in [vec!["-c", "zsh -s"], vec![]] {
        let r = run_zsh(dir.path(), &args, script.as_bytes());
        assert_eq!(r.status, 126, "{args:?}: {}", r.stderr);
        assert!(dir.path().join("before").exists(), "{args:?}: lines before it ran");
        assert!(!dir.path().join("refused").exists() && !dir.path().join("after").exists(), "{args:?}: it and the rest did not");
        assert!(r.stderr.contains("custos: refused by rule no-touch"), "{}", r.stderr);
        assert!(r.cast.contains(&format!("refused: $ touch {d}/refused")), "{}", r.cast);
        std::fs::remove_file(dir.path().join("before")).unwrap();
    }
}

#[test]
fn zsh_functions_substitutions_subshells_script_files_and_eval_are_gated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.zsh"), "echo start\ntouch t\n").unwrap();
    // The refused command is reached only at run time: its text is built,
    // read from a file, or inside a construct the outer check cannot see.
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-c", "zsh -s"], "c=tou; f() { ${c}ch t; }\nf\n"),
        (vec![], "c=tou; x=$(${c}ch t)\n"),
        (vec![], "c=tou; ( ${c}ch t )\n"),
        (vec![], "c=tou; echo | ${c}ch t\n"),
        (vec!["-c", "zsh s.zsh"], ""),
        (vec![], "zsh s.zsh\n"),
        (vec!["-c", "zsh -s"], "eval \"$(echo dG91Y2ggdA== | base64 -d)\"\n"),
        (vec!["-c", "zsh -s"], "c=tou; zsh -c \"${c}ch t\"\n"),
    ];
    for (args, stdin) in cases {
        let r = run_zsh(dir.path(), &args, stdin.as_bytes());
        assert_eq!(r.status, 126, "{args:?} {stdin:?}: {}", r.stderr);
        assert!(r.stderr.contains("custos: "), "{args:?} {stdin:?}: {}", r.stderr);
        assert!(!dir.path().join("t").exists(), "{args:?} {stdin:?} ran the refused command");
    }
}

#[test]
fn zsh_switching_the_gate_off_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.zsh"), "touch t\n").unwrap();
    for attempt in [
        "unfunction TRAPDEBUG",
        "trap - DEBUG",
        "trap '' DEBUG",
        "trap -",
        "unsetopt debugbeforecmd",
        "setopt no_debug_before_cmd",
        "n=TRAPDEBUG; $n() { : }",
        "ZDOTDIR=/tmp zsh s.zsh",
        "zsh -f s.zsh",
        "zsh --no-rcs s.zsh",
        "zsh --emulate sh s.zsh",
        "ARGV0=sh zsh s.zsh",
        "zmodload -u zsh/net/tcp",
        "disable trap",
    ] {
        let r = run_zsh(dir.path(), &["-c", "zsh -s"], format!("{attempt}\nc=tou; ${{c}}ch t\n").as_bytes());
        assert_eq!(r.status, 126, "{attempt}: {}", r.stderr);
        assert!(r.stderr.contains("would switch off the command gate"), "{attempt}: {}", r.stderr);
        assert!(!dir.path().join("t").exists(), "{attempt} switched the gate off");
    }
}

#[test]
fn zsh_startup_files_are_the_users_and_are_gated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // A login zsh reads .zshenv, .zprofile and .zlogin: ours, then the user's.
    std::fs::write(dir.path().join(".zshenv"), format!("echo env > {d}/env-ran\n")).unwrap();
    std::fs::write(dir.path().join(".zprofile"), format!("echo profile > {d}/profile-ran\n")).unwrap();
    let r = run_zsh(dir.path(), &["-l", "-s"], b"echo script\n");
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout, b"script\n");
    assert!(dir.path().join("env-ran").exists() && dir.path().join("profile-ran").exists(), "the user's files were read");
    std::fs::write(dir.path().join(".zshenv"), format!("touch {d}/t\n")).unwrap();
    let r = run_zsh(dir.path(), &["-c", "echo never"], b"");
    assert_eq!(r.status, 126, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing ran after the refusal in .zshenv");
    assert!(!dir.path().join("t").exists(), "the user's .zshenv is gated too");
}

/// The common `export ZDOTDIR=~/.config/zsh` in ~/.zshenv: the user's
/// other startup files come from there, and a zsh started later is still
/// gated (ZDOTDIR is ours again before the next command).
#[test]
fn zsh_a_zdotdir_set_in_the_users_zshenv_is_followed_and_stays_gated() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(dir.path().join(".zshenv"), format!("export ZDOTDIR=\"{d}/conf\"\n")).unwrap();
    std::fs::write(conf.join(".zprofile"), format!("echo profile > {d}/profile-ran\n")).unwrap();
    std::fs::write(conf.join(".zshenv"), "echo evil-env-ran\n").unwrap();
    let r = run_zsh(dir.path(), &["-l", "-s"], format!("echo script\nzsh -c 'touch {d}/t'\n").as_bytes());
    assert!(dir.path().join("profile-ran").exists(), "the .zprofile in the new ZDOTDIR was read: {}", r.stderr);
    assert!(!dir.path().join("t").exists(), "a zsh started later ran ungated: {}", r.stderr);
    assert_eq!(r.status, 126, "{}", r.stderr);
    assert!(String::from_utf8_lossy(&r.stdout).starts_with("script\n"), "{:?}", String::from_utf8_lossy(&r.stdout));
}

#[test]
fn zsh_and_bash_started_from_each_other_are_gated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.sh"), "touch t\n").unwrap();
    std::fs::write(dir.path().join("s.zsh"), "touch t\n").unwrap();
    for (r, what) in [(run_zsh(dir.path(), &["-c", "zsh -s"], b"bash s.sh\n"), "bash from zsh"), (run(dir.path(), &["-c", "bash -s"], b"zsh s.zsh\n"), "zsh from bash")] {
        assert_eq!(r.status, 126, "{what}: {}", r.stderr);
        assert!(r.stderr.contains("refused by rule no-touch"), "{what}: {}", r.stderr);
        assert!(!dir.path().join("t").exists(), "{what} ran the refused command");
    }
}

#[test]
fn zsh_an_allowed_script_runs_to_the_end_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let script = "f() { print -rn -- \"$1\"; }\nx=$(echo sub)\nfor i in 1 2; do f \"$i:$x \"; done\n( echo sub | tr a-z A-Z )\nprintf '\\x00\\xff\\n'\nprint -r -- \"é ${#x}\"\n";
    let r = run_zsh(dir.path(), &["-c", "zsh -s"], script.as_bytes());
    assert_eq!(r.status, 0, "{}", r.stderr);
    let mut expected = b"1:sub 2:sub SUB\n\x00\xff\n".to_vec();
    expected.extend_from_slice("é 3\n".as_bytes());
    assert_eq!(r.stdout, expected, "{:?}", String::from_utf8_lossy(&r.stdout));
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

/// Function definitions are not traced, so a function named like a builtin
/// the hooks call (`builtin`, `local`, `return`) could run the user's code
/// inside the gate, unchecked; and an alias could replace the trap's
/// handler. Neither gets a command past the gate, in bash or zsh.
#[test]
fn functions_or_aliases_named_like_the_hooks_words_do_not_open_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    for def in ["builtin() { :; }", "local() { :; }", "return() { :; }", "printf() { :; }", "shopt -s expand_aliases; alias __custos_debug=true"] {
        let r = run(dir.path(), &["-c", "bash -s"], format!("{def}\ntouch {d}/t\n").as_bytes());
        assert_eq!(r.status, 126, "bash, {def}: {}", r.stderr);
        assert!(!dir.path().join("t").exists(), "bash, {def}: the refused command ran");
    }
    for def in ["builtin() { : }", "return() { : }", "print() { : }", "ztcp() { : }"] {
        let r = run_zsh(dir.path(), &["-c", "zsh -s"], format!("{def}\ntouch {d}/t\n").as_bytes());
        assert_ne!(r.status, 0, "zsh, {def}: {}", r.stderr);
        assert!(!dir.path().join("t").exists(), "zsh, {def}: the refused command ran");
    }
}

/// Each question's connection is closed when it is answered: a shell that
/// runs many commands holds no more descriptors after them than before.
#[test]
fn the_gates_connections_do_not_pile_up_in_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let script = "a=$(ls /proc/$$/fd | wc -l)\nfor i in 1 2 3 4 5 6 7 8 9 10; do true; done\nb=$(ls /proc/$$/fd | wc -l)\necho \"$a $b\"\n";
    let r = run(dir.path(), &["-c", "bash -s"], script.as_bytes());
    assert_eq!(r.status, 0, "{}", r.stderr);
    let out = String::from_utf8_lossy(&r.stdout);
    let counts: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(counts.len(), 2, "{out}");
    assert_eq!(counts[0], counts[1], "descriptors before and after ten commands: {out}");
}
