//! Signed evidence as a playable recording: a session's chunk directory
//! (`<spool>/chunks/<session-id>/<seq20>.chunk`) read back, its chain
//! verified by the evidence module's [`verify_chain`], and the chunks'
//! payloads joined into the session's `.cast` text.
//!
//! The verification state shown by the player and the browser comes from
//! here for local evidence, never from a guess: a chain that does not verify
//! is [`Verification::Broken`] with the first problem named. What is played
//! then is every chunk that still parses and inflates, in seq order, so the
//! auditor can see what the damaged evidence claims, under the broken badge.
//!
//! [`Verification`] lives here, not in `source`, so the dependency runs one
//! way: `source` reads sessions through this module and re-exports the state;
//! this module knows nothing of sources and says what it could not read with
//! its own [`Unreadable`].

use std::path::PathBuf;

use crate::evidence::spool::SessionDir;
use crate::evidence::{verify_chain, Chunk, Problem, PublicKey, Report};

/// The state of a session's evidence chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Not checked, or nothing to check: why (an unsigned recording, no
    /// public key at hand).
    Unknown(String),
    /// Every chunk is signed, continuous and final.
    Intact,
    /// Every chunk so far checks out, but the final one is not there: the
    /// session is live, or its end was cut off (why).
    Incomplete(String),
    /// Something was changed, dropped, reordered or cut: why.
    Broken(String),
}

impl Verification {
    pub fn label(&self) -> &str {
        match self {
            Verification::Unknown(_) => "unverified",
            Verification::Intact => "intact",
            Verification::Incomplete(_) => "incomplete",
            Verification::Broken(_) => "BROKEN",
        }
    }

    /// A plain `.cast` file: nothing signed it.
    pub fn unsigned() -> Self {
        Verification::Unknown("unsigned recording".into())
    }
}

/// A session directory that could not be read: which, and why.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct Unreadable {
    pub path: PathBuf,
    pub reason: String,
}

/// A session directory, read and checked.
pub struct Checked {
    /// The session's asciicast v3 text (the chunks' payloads in order).
    pub cast: String,
    pub verification: Verification,
}

/// The verification state a chain report amounts to.
pub fn verdict(report: &Report) -> Verification {
    if report.is_intact() {
        return Verification::Intact;
    }
    if report.is_intact_so_far() {
        let last = report.chunks.last().map_or_else(|| "none".to_owned(), |c| c.envelope().seq.to_string());
        return Verification::Incomplete(format!("no final chunk after chunk {last} (live, or its end was cut off)"));
    }
    let real: Vec<&Problem> = report.problems.iter().filter(|p| !matches!(p, Problem::NoFinal { .. })).collect();
    let first = real.first().map_or_else(String::new, |p| p.to_string());
    match real.len() {
        0 | 1 => Verification::Broken(first),
        n => Verification::Broken(format!("{first} (and {} more problem{})", n - 1, if n == 2 { "" } else { "s" })),
    }
}

/// Reads the chunks of `dir`, verifies them with `keys` (no keys: the state
/// is [`Verification::Unknown`], saying so) and joins their payloads.
pub fn read_session_dir(dir: &SessionDir, keys: &[PublicKey]) -> Result<Checked, Unreadable> {
    let path = dir.path().to_owned();
    let spool_err = |e: crate::evidence::spool::SpoolError| Unreadable { path: path.clone(), reason: e.to_string() };
    let found = dir.found().map_err(spool_err)?;
    if keys.is_empty() {
        let chunks = parsed(found.into_iter().map(|f| f.bytes));
        let verification = Verification::Unknown("no public key to check the signatures with (give --key)".into());
        return Ok(Checked { cast: join(&path, &chunks)?, verification });
    }
    let report = verify_chain(found, Some(dir.session()), |id| keys.iter().find(|k| k.id() == *id).copied());
    // Problems name chunk files by path; within the session directory the
    // file name says enough.
    let prefix = format!("{}/", dir.path().display());
    let verification = match verdict(&report) {
        Verification::Broken(why) => Verification::Broken(why.replace(&prefix, "")),
        other => other,
    };
    let chunks = if report.is_intact_so_far() {
        report.chunks
    } else {
        // Broken: show what still parses, in order, under the broken badge.
        parsed(dir.found().map_err(spool_err)?.into_iter().map(|f| f.bytes))
    };
    Ok(Checked { cast: join(&path, &chunks)?, verification })
}

/// Every chunk that parses, in seq order, one per seq.
fn parsed(bytes: impl Iterator<Item = Vec<u8>>) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = bytes.filter_map(|b| Chunk::parse(b).ok()).collect();
    chunks.sort_by_key(|c| c.envelope().seq);
    chunks.dedup_by_key(|c| c.envelope().seq);
    chunks
}

/// The payloads joined. A chunk whose payload does not inflate is left out
/// (its damage is already in the verification state).
fn join(path: &std::path::Path, chunks: &[Chunk]) -> Result<String, Unreadable> {
    let mut out = Vec::new();
    for chunk in chunks {
        if let Ok(payload) = chunk.payload() {
            out.extend_from_slice(&payload);
        }
    }
    if out.is_empty() {
        return Err(Unreadable { path: PathBuf::from(path), reason: "no chunk of this session could be read".into() });
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}
