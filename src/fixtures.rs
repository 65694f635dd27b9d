//! Test values shared by the library's unit tests (`cfg(test)` only): the
//! recorded session the tests of the asciicast codec, the chunker, the
//! evidence writer and the sink start from, written out once.
//!
//! Integration tests and benches cannot see `cfg(test)` items of the
//! library; they have the same values in `tests/support/fixtures.rs`.

use crate::evidence::asciicast::{Header, SessionInfo};

/// A fixed session id, for tests that compare bytes.
pub(crate) const SESSION_ID: &str = "0190f1a2-0000-7000-8000-000000000000";

/// When the fixture session started (2023-11-14 22:13:20 UTC).
pub(crate) const STARTED: u64 = 1_700_000_000;

/// alice (uid 1000) in an interactive bash session on db1, with no `-c`
/// command and no verified identity.
pub(crate) fn session_info(session_id: &str) -> SessionInfo {
    SessionInfo {
        session_id: session_id.to_owned(),
        user: "alice".into(),
        uid: 1000,
        host: "db1".into(),
        shell: "/bin/bash".into(),
        mode: "interactive".into(),
        command: None,
        identity: None,
    }
}

/// That session's header: an 80x24 terminal of type `term`, started at
/// [`STARTED`].
pub(crate) fn header(session_id: &str, term: Option<&str>) -> Header {
    Header::new(session_info(session_id), 80, 24, term.map(str::to_owned), STARTED)
}
