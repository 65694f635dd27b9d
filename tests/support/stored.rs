//! Reading what a real `custos serve` stored, through its own store (the
//! bytes of a chunk are in its database or in a file, by size), for tests
//! that check a recording after it reached the collector.
//!
//! Include with `#[path = "support/stored.rs"] mod stored;` (the collector
//! helpers include it as `collector::stored`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Runs `f` with the collector's own store in `data_dir` (opened beside a
/// running collector: SQLite's WAL lets both in).
pub fn with_store<T>(data_dir: &Path, f: impl AsyncFnOnce(custos::serve::store::Store) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = custos::serve::store::Store::open(data_dir).await.unwrap();
        f(store).await
    })
}

/// Copies every session a collector stored in `data_dir` out into `out`,
/// in the spool's layout (`<session>/<seq as 20 digits>.chunk`), read
/// through the collector's store wherever it keeps each chunk's bytes.
/// Answers the session directories made.
pub fn copy_stored_sessions(data_dir: &Path, out: &Path) -> Vec<PathBuf> {
    with_store(data_dir, async |store| {
        let mut dirs = Vec::new();
        for row in store.search(&Default::default()).await.unwrap() {
            let dir = out.join(&row.id);
            std::fs::create_dir_all(&dir).unwrap();
            for chunk in store.chunks(&row.id).await.unwrap() {
                let seq = u64::try_from(chunk.seq).unwrap();
                let bytes = store.read_chunk(&row.id, seq).await.unwrap();
                std::fs::write(dir.join(format!("{seq:020}.chunk")), bytes).unwrap();
            }
            dirs.push(dir);
        }
        dirs
    })
}
