//! `custos policy` as a user runs it: the built binary, its output and its
//! exit codes (0 allow, 1 deny, 3 approve, 2 usage or policy error).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::process::{Command, Output};

const CUSTOS: &str = env!("CARGO_BIN_EXE_custos");
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/policy");
const DEFAULT_POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/defaults/policy.toml");

/// A custos config of the test's own, without a collector, so that the
/// host's /etc/custos/config.toml does not decide `[policy] unknown`.
fn no_collector() -> &'static str {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("config.toml"), "").unwrap();
        d
    });
    Box::leak(dir.path().join("config.toml").display().to_string().into_boxed_str())
}

fn custos(args: &[&str]) -> Output {
    Command::new(CUSTOS).args(args).env("CUSTOS_CONFIG", no_collector()).output().unwrap()
}

fn check(line: &str, extra: &[&str]) -> Output {
    let policy = DEFAULT_POLICY;
    let mut args = vec!["policy", "check", "--policy", policy, "--user", "alice", "--cwd", "/home/alice"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", line]);
    custos(&args)
}

#[test]
fn the_default_case_table_passes_through_the_binary() {
    let out = custos(&["policy", "test", &format!("{DIR}/default.cases.toml")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.trim_end().ends_with(", 0 failed"), "{stdout}");
}

#[test]
fn check_exit_codes_follow_the_verdict() {
    assert_eq!(check("ls -la", &[]).status.code(), Some(0));
    assert_eq!(check("sudo rm -rf /", &[]).status.code(), Some(1));
    assert_eq!(check("kubectl delete pod x", &[]).status.code(), Some(3));
    assert_eq!(check("echo 'oops", &[]).status.code(), Some(1));
}

#[test]
fn check_text_names_the_rule_and_every_command() {
    let out = check("true && sudo -u root rm -fr //etc/", &[]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("verdict: deny"), "{s}");
    assert!(s.contains("rule: rm-root"), "{s}");
    assert!(s.contains("message: Recursive deletion"), "{s}");
    assert!(s.contains("command 1: true"), "{s}");
    assert!(s.contains("command 2: rm (decided)"), "{s}");
    assert!(s.contains("flags: --force --recursive"), "{s}");
    assert!(s.contains("args: \"//etc/\" (/etc)"), "{s}");
}

/// An assignment word (alias, export) is shown as it is, not as a path
/// under the working directory.
#[test]
fn check_text_shows_an_assignment_as_it_is() {
    let s = String::from_utf8_lossy(&check("alias nuke='rm -rf /'; export DIR=./build", &[]).stdout).into_owned();
    assert!(s.lines().any(|l| l == "  args: \"nuke=rm -rf /\""), "{s}");
    assert!(s.lines().any(|l| l == "  args: \"DIR=./build\""), "{s}");
    let s = String::from_utf8_lossy(&check("cat ./notes", &[]).stdout).into_owned();
    assert!(s.contains("args: \"./notes\" (/home/alice/notes)"), "{s}");
}

#[test]
fn check_json_has_verdict_rule_message_and_commands() {
    let out = check("pg_dump app | gzip > app.sql.gz", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "approve");
    assert_eq!(v["rule"], "db-dump");
    assert!(v["message"].as_str().unwrap().contains("approver"));
    assert_eq!(v["commands"][0]["name"], "pg_dump");
    assert_eq!(v["commands"][1]["name"], "gzip");
    assert_eq!(v["commands"][1]["redirects"][0]["path"], "/home/alice/app.sql.gz");
}

#[test]
fn check_uses_given_variables() {
    assert_eq!(check("rm -rf \"$DIR\"/", &[]).status.code(), Some(1));
    assert_eq!(check("rm -rf \"$DIR\"/", &["--env", "DIR=/home/alice/tmp"]).status.code(), Some(0));
}

#[test]
fn a_bad_policy_is_exit_2_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.toml");
    std::fs::write(&p, "[[rule]]\nname = \"x\"\nmessage = \"m\"\naction = \"deny\"\nprogram = [\"rm\"]\nflgas = [\"-r\"]\n").unwrap();
    let out = custos(&["policy", "check", "--policy", p.to_str().unwrap(), "--", "ls"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:6:", p.display())) && err.contains("unknown field `flgas`"), "{err}");
}

#[test]
fn policy_test_reports_failures_with_line_expected_and_actual() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("c.toml");
    std::fs::write(
        &cases,
        format!("policy = \"{DEFAULT_POLICY}\"\n[[case]]\nline = \"rm -rf /\"\nexpect = \"allow\"\n[[case]]\nline = \"ls\"\nexpect = \"allow\"\n"),
    )
    .unwrap();
    let out = custos(&["policy", "test", cases.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("FAIL \"rm -rf /\""), "{s}");
    assert!(s.contains("expected allow, got deny (rule rm-root)"), "{s}");
    assert!(s.contains("1 passed, 1 failed"), "{s}");
}

#[test]
fn check_names_the_part_it_could_not_know_in_text_and_json() {
    let out = check("$(cat x) -rf /", &[]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "no collector: deny\n{s}");
    assert!(s.contains("rule: custos:unknown"), "{s}");
    assert!(s.contains("unknown: the command name comes from $(cat x)"), "{s}");
    assert!(s.contains("command 2: (unknown) (decided)"), "{s}");
    let out = check("rm -rf $(cat list)", &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["verdict"].as_str(), v["rule"].as_str()), (Some("deny"), Some("custos:unknown")));
    let parts = v["unknown"].as_array().unwrap();
    assert!(parts.iter().any(|p| p.as_str().unwrap().contains("an argument of rm comes from $(cat list)")), "{v}");
    let rm = v["commands"].as_array().unwrap().iter().find(|c| c["name"] == "rm").unwrap();
    assert_eq!(rm["unknown_args"]["what"], "$(cat list)");
    // Ordinary work: allowed, nothing unknown.
    let out = check("git log $(git rev-parse HEAD)", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["unknown"], serde_json::json!([]));
    // A variable given with --env is known.
    let out = check("$CMD -rf /", &["--env", "CMD=rm"]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("rule: rm-root") && !s.contains("unknown:"), "{s}");
}

/// The default of `[policy] unknown` through the real loading path: the
/// custos config names a collector (approve, exit 3) or does not (deny).
#[test]
fn the_unknown_default_follows_the_configured_collector() {
    let dir = tempfile::tempdir().unwrap();
    let with = dir.path().join("with.toml");
    std::fs::write(&with, "[collector]\nurl = \"https://collector.example:8470\"\n").unwrap();
    let without = dir.path().join("without.toml");
    std::fs::write(&without, "").unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "version = 1\n[[rule]]\nname = \"no-dd\"\nmessage = \"m\"\naction = \"deny\"\nprogram = [\"dd\"]\n").unwrap();
    let run = |config: &std::path::Path, policy: Option<&std::path::Path>| {
        let mut args = vec!["policy".to_owned(), "check".into(), "--user".into(), "alice".into(), "--cwd".into(), "/home/alice".into()];
        if let Some(p) = policy {
            args.extend(["--policy".to_owned(), p.display().to_string()]);
        }
        args.extend(["--".to_owned(), "/bin/r? -rf /x".to_owned()]);
        let out = Command::new(CUSTOS).args(&args).env("CUSTOS_CONFIG", config).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    for policy in [None, Some(policy.as_path())] {
        let (code, s) = run(&with, policy);
        assert_eq!(code, Some(3), "collector configured: approve\n{s}");
        assert!(s.contains("verdict: approve") && s.contains("rule: custos:unknown") && s.contains("is a glob"), "{s}");
        let (code, s) = run(&without, policy);
        assert_eq!(code, Some(1), "no collector: deny\n{s}");
        assert!(s.contains("rule: custos:unknown"), "{s}");
    }
    // Written out, the policy's setting wins.
    std::fs::write(&policy, "[policy]\nunknown = \"deny\"\n").unwrap();
    assert_eq!(run(&with, Some(&policy)).0, Some(1));
    std::fs::write(&policy, "[policy]\nunknown = \"allow\"\n").unwrap();
    let (code, s) = run(&without, Some(&policy));
    assert_eq!(code, Some(0), "{s}");
    assert!(s.contains("unknown: the command name /bin/r? is a glob"), "allowed, and still said: {s}");
}

#[test]
fn a_bad_unknown_setting_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.toml");
    std::fs::write(&p, "version = 1\n\n[policy]\nunknown = \"maybe\"\n").unwrap();
    let out = custos(&["policy", "check", "--policy", p.to_str().unwrap(), "--", "ls"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("{}:3:", p.display())) && err.contains("[policy] unknown = \"maybe\": expected deny, approve or allow"), "{err}");
}

#[test]
fn a_case_file_says_whether_a_collector_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let cases = |collector: &str, expect: &str| {
        let f = dir.path().join(format!("{collector}.cases.toml"));
        std::fs::write(
            &f,
            format!("policy = \"{DEFAULT_POLICY}\"\ncollector = {collector}\n[[case]]\nline = '$(cat x) -rf /'\nexpect = \"{expect}\"\nrule = \"custos:unknown\"\n[[case]]\nline = 'ls $(pwd)'\nexpect = \"allow\"\n"),
        )
        .unwrap();
        custos(&["policy", "test", f.to_str().unwrap()])
    };
    for (collector, expect) in [("true", "approve"), ("false", "deny")] {
        let out = cases(collector, expect);
        assert!(out.status.success(), "collector = {collector}: {}", String::from_utf8_lossy(&out.stdout));
    }
    assert_eq!(cases("true", "deny").status.code(), Some(1), "a wrong expectation fails");
}

#[test]
fn check_and_the_shell_obey_the_same_custos_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "version = 1\n[[rule]]\nname = \"no-echo\"\nmessage = \"echo is refused here\"\naction = \"deny\"\nprogram = [\"echo\"]\n").unwrap();
    let out = Command::new(CUSTOS)
        .args(["policy", "check", "--", "echo hi"])
        .env("CUSTOS_CONFIG", no_collector())
        .env("CUSTOS_POLICY", &policy)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("no-echo"), "{stdout}");

    let config = dir.path().join("custos.toml");
    std::fs::write(&config, format!("[recording]\nspool_dir = \"{}\"\n", dir.path().join("spool").display())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_custos-shell"))
        .args(["-c", "echo hi"])
        .env("CUSTOS_CONFIG", &config)
        .env("CUSTOS_POLICY", &policy)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // Worded as an interactive refusal is.
    assert!(stderr.contains("custos: refused by rule no-echo: echo is refused here") && !String::from_utf8_lossy(&out.stdout).contains("hi"), "{stderr}");
}
