//! Test values shared by the integration tests and the benches, written out
//! once: the session header most recordings in them start from, and the
//! realistic terminal output the benches measure with.
//! (The library's unit tests have the same values in `src/fixtures.rs`;
//! integration tests cannot see `cfg(test)` items of the library.)
//!
//! Include with `#[path = "support/fixtures.rs"] mod fixtures;` (from a
//! bench: `#[path = "../tests/support/fixtures.rs"]`).

#![allow(dead_code)]

use custos::evidence::asciicast::SessionInfo;

/// `user` (uid 1000) in an interactive bash session on `host`, with no `-c`
/// command and no verified identity. Tests that need another uid or an
/// identity set that field on the result.
pub fn session_info(session_id: impl ToString, user: &str, host: &str) -> SessionInfo {
    SessionInfo {
        session_id: session_id.to_string(),
        user: user.into(),
        uid: 1000,
        host: host.into(),
        shell: "/bin/bash".into(),
        mode: "interactive".into(),
        command: None,
        identity: None,
    }
}

/// Line `i` of realistic terminal output, like ptybench's: coloured logs,
/// long wrapping JSON lines, wide characters, progress bars, truecolour,
/// tabs. Deterministic, so runs compare.
pub fn terminal_line(i: u64) -> String {
    match i % 8 {
        0 => format!("\x1b[32m2026-11-26T12:00:{:02}Z\x1b[0m INFO req={i:08x} handled GET /api/v1/items/{} in {}ms\r\n", i % 60, i * 7, i % 250),
        1 => format!("\x1b[38;5;{}m{:>10}\x1b[0m  drwxr-xr-x  \x1b[01;34mdir_{i}\x1b[0m\r\n", i % 256, i * 4096),
        2 => format!("{{\"ts\":{i},\"level\":\"debug\",\"msg\":\"{}\",\"fields\":{{\"a\":\"{}\"}}}}\r\n", "x".repeat((i % 200) as usize), "y".repeat((i % 90) as usize)),
        3 => format!("漢字テキスト {i} 🙂 café ümlaut ────────────────\r\n"),
        4 => format!("progress {}%\rprogress {}%\rprogress done\r\n", i % 100, (i + 50) % 100),
        5 => format!("\x1b[38;2;{};{};{}mtruecolor line {i}\x1b[0m\tcol2\tcol3\r\n", i % 255, (i * 3) % 255, (i * 7) % 255),
        6 => format!("\x1b[1;31mERROR\x1b[0m req={i:08x} failed: connection reset by peer\r\n"),
        _ => format!("plain text line number {i} with some words in it\r\n"),
    }
}
