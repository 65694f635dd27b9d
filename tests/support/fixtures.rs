//! Test values shared by the integration tests and the benches: the
//! session header most recordings in them start from, written out once.
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
