//! Replays the fuzz corpora (`fuzz/corpus/TARGET/`) and the crash inputs
//! the campaigns found (`fuzz/regressions/TARGET/`) through the same
//! functions the fuzz targets call (`custos::fuzzing`), on stable, so every
//! `cargo test` keeps what fuzzing learned: an input that once crashed
//! fails here if the bug comes back. How to run a campaign:
//! README.md, Fuzzing.
//!
//! Each input runs in its own `catch_unwind`, so one failure names every
//! input that fails, not only the first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Runs every corpus and regression input of `target` through `run`; fails
/// naming each input that panics, and when the corpus is missing or empty
/// (a test that replays nothing proves nothing).
fn replay(target: &str, run: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = inputs(&fuzz.join("corpus").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} is missing or empty");
    let regressions = inputs(&fuzz.join("regressions").join(target));
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: {} of {} inputs panicked:\n{}", failed.len(), corpus.len() + regressions.len(), failed.join("\n"));
}

#[test]
fn policy() {
    replay("policy", custos::fuzzing::policy);
}

#[test]
fn mask() {
    replay("mask", custos::fuzzing::mask);
}

#[test]
fn chunk() {
    replay("chunk", custos::fuzzing::chunk);
}

#[test]
fn chain() {
    replay("chain", custos::fuzzing::chain);
}

#[test]
fn ingest() {
    replay("ingest", custos::fuzzing::ingest);
}

#[test]
fn asciicast() {
    replay("asciicast", custos::fuzzing::asciicast);
}

#[test]
fn replay_index() {
    replay("replay_index", custos::fuzzing::replay_index);
}
