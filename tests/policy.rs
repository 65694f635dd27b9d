//! `custos policy` as a user runs it: the built binary, its output and its
//! exit codes (0 allow, 1 deny, 3 approve, 2 usage or policy error).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::process::{Command, Output};

const CUSTOS: &str = env!("CARGO_BIN_EXE_custos");
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/policy");
const DEFAULT_POLICY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/defaults/policy.toml");

fn custos(args: &[&str]) -> Output {
    Command::new(CUSTOS).args(args).output().unwrap()
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
