//! README's run command, `custos demo`, without a terminal: it plays a
//! scripted session, streams it to a collector on loopback, and says where
//! the recording is and how to verify it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "support/shell.rs"]
mod shell;

use std::process::{Command, Stdio};

#[test]
fn demo_without_a_terminal_records_a_scripted_session() {
    let out = Command::new(shell::CUSTOS_BIN).arg("demo").stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("  | hello from a recorded shell: "), "{stdout}");
    assert!(stdout.contains("exited with status 0"), "{stdout}");
    assert!(stdout.contains("  | demo$ sudo rm -rf --no-preserve-root /\n  | custos: refused by rule rm-root"), "the gate did not refuse, or the refused line is not shown: {stdout}");
    // The fake secrets the script prints are masked in what it replays.
    assert!(stdout.contains("  | export DB_PASSWORD=***********; card *******************\n"), "{stdout}");
    assert!(!stdout.contains("Tr0ub4dor-3") && !stdout.contains("4111 1111 1111 1111"), "{stdout}");
    let path = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Recording (asciicast v3): "))
        .expect("demo names the recording");
    let cast = custos::evidence::asciicast::Cast::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(cast.exit_status(), Some(0));
    assert!(cast.output().contains("hello from a recorded shell"));
    assert!(!cast.output().contains("Tr0ub4dor-3"), "the recording holds a secret");
    // The collector's copy is a verified chain; the printed command says so.
    assert!(stdout.contains("signed chunks, all acknowledged by the collector"), "{stdout}");
    let verify = stdout.lines().find_map(|l| l.strip_prefix("Verify the signed chain:")).expect("demo prints a verify command");
    let words: Vec<&str> = verify.split_whitespace().collect();
    let out = Command::new(words[0]).args(&words[1..]).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the printed verify command failed: {report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("intact"), "{report}");
    let demo_dir = std::path::Path::new(path).parent().unwrap();
    assert!(demo_dir.file_name().unwrap().to_string_lossy().starts_with("custos-demo-"));
    std::fs::remove_dir_all(demo_dir).unwrap();
}
