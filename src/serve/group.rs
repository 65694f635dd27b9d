//! Group commit: chunks that arrive together are recorded in one SQLite
//! transaction, so one fsync of the WAL covers them all instead of one each.
//!
//! Every upload still waits for its own row to be durable before it is
//! acknowledged: [`GroupCommitter::commit`] returns only after the
//! transaction holding the chunk has committed (synchronous=FULL). What
//! changes is that while one transaction is being synced, the chunks that
//! arrive queue up and go into the next one together; under light load a
//! batch is one chunk and nothing waits longer than before.
//!
//! A batch that fails as a whole (one bad row aborts the transaction) is
//! retried chunk by chunk, so one chunk's failure is never another's.
//! Chunks of one session stay in order: ingest holds the session's lock
//! until its chunk's commit has answered.

use tokio::sync::{mpsc, oneshot};

use super::store::{NewChunk, Store, StoreError};

/// Chunks per transaction, at most.
const MAX_BATCH: usize = 512;

type Job = (NewChunk, oneshot::Sender<Result<(), StoreError>>);

pub struct GroupCommitter {
    tx: mpsc::UnboundedSender<Job>,
}

impl GroupCommitter {
    /// Starts the committing task on the current runtime.
    pub fn start(store: Store) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                let (chunks, replies): (Vec<NewChunk>, Vec<_>) = jobs.into_iter().unzip();
                if chunks.len() > 1 && store.commit_batch(&chunks).await.is_ok() {
                    for reply in replies {
                        let _ = reply.send(Ok(()));
                    }
                    continue;
                }
                for (chunk, reply) in chunks.iter().zip(replies) {
                    let _ = reply.send(store.commit_chunk(chunk).await);
                }
            }
        });
        Self { tx }
    }

    /// Records `chunk`; returns once its transaction is durable.
    pub async fn commit(&self, chunk: NewChunk) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Io {
            path: std::path::PathBuf::from("group commit"),
            source: std::io::Error::other("the committing task has stopped"),
        };
        self.tx.send((chunk, reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn chunk(session: &str, seq: u64) -> NewChunk {
        crate::serve::store::tests::chunk(session, seq, Some(format!("bytes of {session} {seq}").into_bytes()))
    }

    #[tokio::test]
    async fn concurrent_chunks_share_transactions_and_a_bad_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let committer = GroupCommitter::start(store.clone());
        let ids: Vec<String> = (0..50).map(|i| format!("s{i:02}")).collect();
        let results = futures_util::future::join_all(ids.iter().map(|id| committer.commit(chunk(id, 0)))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        for id in &ids {
            assert_eq!(store.session_state(id).await.unwrap().unwrap().last_seq, 0, "{id}");
        }
        // Queued together, so in one batch: the duplicate aborts the batch,
        // which is retried one by one; only the duplicate fails.
        let (dup, fresh) = tokio::join!(committer.commit(chunk("s00", 0)), committer.commit(chunk("t", 0)));
        assert!(matches!(dup, Err(StoreError::Db(_))), "{dup:?}");
        assert!(fresh.is_ok(), "{fresh:?}");
        assert!(store.session_state("t").await.unwrap().is_some());
        // Each chunk's bytes rode in its transaction; the duplicate's did
        // not replace the first.
        assert_eq!(store.read_chunk("t", 0).await.unwrap(), b"bytes of t 0");
        assert_eq!(store.read_chunk("s00", 0).await.unwrap(), b"bytes of s00 0");
        let reopened = Store::open(dir.path()).await.unwrap();
        assert_eq!(reopened.session_state("s07").await.unwrap().unwrap().last_hash, "s07-0", "from the database, not memory");
    }
}
