//! The chunker: cuts a session's asciicast v3 byte stream into sealed
//! chunks, bounded by time and by size.
//!
//! It is fed whole lines, the header line first and then each event line
//! [`crate::evidence::asciicast::Encoder`] produced, with the event's time in
//! microseconds since the session started (the recorder's clock, passed in:
//! the chunker reads none). Lines are never split or re-encoded, so the
//! chunks' payloads, concatenated in order, are byte for byte the `.cast`
//! file the same lines would have made.
//!
//! A chunk is sealed (compressed, signed, linked to the one before):
//! - before a line whose time is `max_span_us` or more after the open chunk's
//!   first line, or that would take it past `max_bytes`;
//! - as soon as it reaches `max_bytes`;
//! - on [`Chunker::tick`] once `max_span_us` has passed since its first line,
//!   so an idle session's last output is sealed within the span rather than
//!   whenever the next event happens to come;
//! - on [`Chunker::finish`], as the final chunk (the caller has pushed the
//!   `x` exit event into it).
//!
//! A single line longer than `max_bytes` becomes a chunk of its own; one
//! longer than [`MAX_CAST`] cannot be stored in any chunk and is refused
//! with [`ChunkerError::LineTooLong`] (the recorder emits output in frames,
//! far below that).

use std::sync::Arc;

use uuid::Uuid;

use super::envelope::MAX_CAST;
use super::{seal, Chunk, Digest, HostKey};

/// Where chunks are cut. Validated by [`ChunkerConfig::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkerConfig {
    max_span_us: u64,
    max_bytes: usize,
}

impl Default for ChunkerConfig {
    /// 5 seconds, 256 KiB of uncompressed asciicast.
    fn default() -> Self {
        ChunkerConfig { max_span_us: 5_000_000, max_bytes: 256 << 10 }
    }
}

impl ChunkerConfig {
    /// `max_span_us` must be positive; `max_bytes` between 1 and
    /// [`MAX_CAST`].
    pub fn new(max_span_us: u64, max_bytes: usize) -> Result<ChunkerConfig, ChunkerError> {
        if max_span_us == 0 {
            return Err(ChunkerError::Config("the chunk time span must be more than zero".into()));
        }
        if max_bytes == 0 || max_bytes > MAX_CAST {
            return Err(ChunkerError::Config(format!("the chunk size must be between 1 and {MAX_CAST} bytes")));
        }
        Ok(ChunkerConfig { max_span_us, max_bytes })
    }

    pub fn max_span_us(&self) -> u64 {
        self.max_span_us
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkerError {
    #[error("chunker configuration: {0}")]
    Config(String),
    #[error("a line of {len} bytes is longer than the {max}-byte chunk limit; emit smaller events")]
    LineTooLong { len: usize, max: usize },
    #[error("not one asciicast line: it must end with a newline and contain no other")]
    NotALine,
}

/// Cuts one session's lines into chunks. See the module doc.
pub struct Chunker {
    key: Arc<HostKey>,
    session: Uuid,
    config: ChunkerConfig,
    next_seq: u64,
    prev: Digest,
    /// The open chunk's lines, and the times of its first and last line.
    buf: Vec<u8>,
    first_us: u64,
    last_us: u64,
}

fn check_line(line: &[u8]) -> Result<(), ChunkerError> {
    match line.split_last() {
        Some((b'\n', body)) if memchr::memchr(b'\n', body).is_none() => {}
        _ => return Err(ChunkerError::NotALine),
    }
    if line.len() > MAX_CAST {
        return Err(ChunkerError::LineTooLong { len: line.len(), max: MAX_CAST });
    }
    Ok(())
}

impl Chunker {
    /// A chunker for `session`, whose first chunk opens with `header_line`
    /// (the asciicast header, at time 0).
    pub fn new(key: Arc<HostKey>, session: Uuid, header_line: &[u8], config: ChunkerConfig) -> Result<Chunker, ChunkerError> {
        check_line(header_line)?;
        Ok(Chunker {
            key,
            session,
            config,
            next_seq: 0,
            prev: Digest::ZERO,
            buf: header_line.to_vec(),
            first_us: 0,
            last_us: 0,
        })
    }

    /// Adds one event line at `at_us` (µs since the session start; a time
    /// before the previous line's is taken as that time). Returns the chunks
    /// this sealed, in order: usually none, at most two.
    pub fn push(&mut self, at_us: u64, line: &[u8]) -> Result<Vec<Chunk>, ChunkerError> {
        check_line(line)?;
        let at_us = at_us.max(self.last_us);
        let mut sealed = Vec::new();
        if !self.buf.is_empty()
            && (at_us.saturating_sub(self.first_us) >= self.config.max_span_us
                || self.buf.len() + line.len() > self.config.max_bytes)
        {
            sealed.push(self.seal(false));
        }
        if self.buf.is_empty() {
            self.first_us = at_us;
        }
        self.buf.extend_from_slice(line);
        self.last_us = at_us;
        if self.buf.len() >= self.config.max_bytes {
            sealed.push(self.seal(false));
        }
        Ok(sealed)
    }

    /// Seals the open chunk if its first line is `max_span_us` or more
    /// before `now_us`. Call it from the recorder's loop (say, every second)
    /// so quiet sessions are sealed promptly.
    pub fn tick(&mut self, now_us: u64) -> Option<Chunk> {
        if !self.buf.is_empty() && now_us.saturating_sub(self.first_us) >= self.config.max_span_us {
            Some(self.seal(false))
        } else {
            None
        }
    }

    /// Seals the final chunk: whatever is open (possibly nothing), flagged
    /// final. Nothing may follow it.
    pub fn finish(mut self) -> Chunk {
        if self.buf.is_empty() {
            self.first_us = self.last_us;
        }
        self.seal(true)
    }

    /// The sequence number the next sealed chunk will have.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Bytes of asciicast in the open chunk.
    pub fn open_bytes(&self) -> usize {
        self.buf.len()
    }

    pub fn session(&self) -> Uuid {
        self.session
    }

    fn seal(&mut self, is_final: bool) -> Chunk {
        let chunk = seal(&self.key, self.session, self.next_seq, self.prev, self.first_us, self.last_us, is_final, &self.buf);
        self.next_seq += 1;
        self.prev = chunk.hash();
        self.buf.clear();
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::asciicast::{Encoder, Event};
    use proptest::prelude::*;
    use std::time::Duration;

    fn key() -> Arc<HostKey> {
        Arc::new(HostKey::from_seed([9; 32]))
    }

    fn header() -> Vec<u8> {
        Encoder::header(&crate::fixtures::header(crate::fixtures::SESSION_ID, Some("xterm")))
    }

    fn line(enc: &mut Encoder, at_us: u64, text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        enc.event(Duration::from_micros(at_us), &Event::Output(text), &mut out);
        out
    }

    fn payloads(chunks: &[Chunk]) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.payload().unwrap()).collect()
    }

    #[test]
    fn chunks_cut_on_time_and_concatenate_to_the_cast() {
        let session = Uuid::now_v7();
        let mut chunker = Chunker::new(key(), session, &header(), ChunkerConfig::new(5_000_000, 1 << 20).unwrap()).unwrap();
        let mut enc = Encoder::default();
        let mut cast = header();
        let mut chunks = Vec::new();
        for (at, text) in [(100_000, "a"), (4_900_000, "b"), (5_000_000, "c"), (6_000_000, "d"), (12_000_000, "e")] {
            let l = line(&mut enc, at, text);
            cast.extend_from_slice(&l);
            chunks.extend(chunker.push(at, &l).unwrap());
        }
        let mut x = Vec::new();
        enc.event(Duration::from_micros(12_500_000), &Event::Exit(0), &mut x);
        cast.extend_from_slice(&x);
        chunks.extend(chunker.push(12_500_000, &x).unwrap());
        chunks.push(chunker.finish());

        let ranges: Vec<_> = chunks.iter().map(|c| (c.envelope().seq, c.envelope().first_us, c.envelope().last_us, c.envelope().is_final)).collect();
        // Chunk 0: header at 0 plus a and b; "c" at 5.0 s is 5 s after 0.
        assert_eq!(ranges, vec![(0, 0, 4_900_000, false), (1, 5_000_000, 6_000_000, false), (2, 12_000_000, 12_500_000, true)]);
        assert_eq!(payloads(&chunks), cast);
        assert_eq!(chunks[0].envelope().prev, Digest::ZERO);
        assert_eq!(chunks[1].envelope().prev, chunks[0].hash());
        assert_eq!(chunks[2].envelope().prev, chunks[1].hash());
        assert!(chunks.iter().all(|c| c.envelope().session == session));
    }

    #[test]
    fn chunks_cut_on_size_and_a_long_line_stands_alone() {
        let mut chunker = Chunker::new(key(), Uuid::nil(), b"{}\n", ChunkerConfig::new(u64::MAX, 100).unwrap()).unwrap();
        let small = [b'a'; 39].iter().copied().chain([b'\n']).collect::<Vec<_>>(); // 40 bytes
        let mut sizes = Vec::new();
        for i in 0..3 {
            for c in chunker.push(i, &small).unwrap() {
                sizes.push(c.payload().unwrap().len());
            }
        }
        // 3 + 40 + 40 = 83; the third 40 would pass 100, so it opens a new chunk.
        assert_eq!(sizes, vec![83]);
        let long = [b'b'; 299].iter().copied().chain([b'\n']).collect::<Vec<_>>();
        let sealed: Vec<usize> = chunker.push(10, &long).unwrap().iter().map(|c| c.payload().unwrap().len()).collect();
        assert_eq!(sealed, vec![40, 300]);
        assert_eq!(chunker.open_bytes(), 0);
        let last = chunker.finish();
        assert!(last.envelope().is_final);
        assert_eq!(last.payload().unwrap(), b"");
        assert_eq!((last.envelope().first_us, last.envelope().last_us), (10, 10));
    }

    #[test]
    fn tick_seals_a_quiet_session_after_the_span() {
        let mut chunker = Chunker::new(key(), Uuid::nil(), b"{}\n", ChunkerConfig::new(5_000_000, 1 << 20).unwrap()).unwrap();
        assert!(chunker.tick(4_999_999).is_none());
        let first = chunker.tick(5_000_000).unwrap();
        assert_eq!(first.payload().unwrap(), b"{}\n");
        assert!(chunker.tick(60_000_000).is_none(), "an empty chunk is never sealed by time");
        assert!(chunker.push(61_000_000, b"[1, \"o\", \"x\"]\n").unwrap().is_empty());
        assert!(chunker.tick(65_999_999).is_none());
        assert_eq!(chunker.tick(66_000_000).unwrap().envelope().seq, 1);
    }

    #[test]
    fn time_going_backwards_is_clamped() {
        let mut chunker = Chunker::new(key(), Uuid::nil(), b"{}\n", ChunkerConfig::default()).unwrap();
        chunker.push(3_000, b"[0.003, \"o\", \"x\"]\n").unwrap();
        chunker.push(1_000, b"[0.0, \"o\", \"y\"]\n").unwrap();
        let c = chunker.finish();
        assert_eq!((c.envelope().first_us, c.envelope().last_us), (0, 3_000));
    }

    #[test]
    fn bad_lines_and_configs_are_refused() {
        assert_eq!(Chunker::new(key(), Uuid::nil(), b"{}", ChunkerConfig::default()).err(), Some(ChunkerError::NotALine));
        let mut chunker = Chunker::new(key(), Uuid::nil(), b"{}\n", ChunkerConfig::default()).unwrap();
        assert_eq!(chunker.push(0, b"a\nb\n").err(), Some(ChunkerError::NotALine));
        assert_eq!(chunker.push(0, b"").err(), Some(ChunkerError::NotALine));
        let mut huge = vec![b'x'; MAX_CAST];
        huge.push(b'\n');
        assert!(matches!(chunker.push(0, &huge), Err(ChunkerError::LineTooLong { .. })));
        assert!(ChunkerConfig::new(0, 10).is_err());
        assert!(ChunkerConfig::new(10, 0).is_err());
        assert!(ChunkerConfig::new(10, MAX_CAST + 1).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any stream of events, any bounds: the chunks concatenate to the
        /// exact cast, link in order, respect the size bound unless a line
        /// alone exceeds it, span less than the time bound, and only the
        /// last is final.
        #[test]
        fn any_stream_concatenates_to_the_cast(
            events in proptest::collection::vec((0u64..3_000_000, ".{0,300}"), 0..60),
            span in 1u64..10_000_000,
            max in 1usize..2_000,
        ) {
            let mut chunker = Chunker::new(key(), Uuid::nil(), &header(), ChunkerConfig::new(span, max).unwrap()).unwrap();
            let mut enc = Encoder::default();
            let mut cast = header();
            let mut chunks = Vec::new();
            let mut at = 0;
            for (gap, text) in &events {
                at += gap;
                let l = line(&mut enc, at, text);
                cast.extend_from_slice(&l);
                chunks.extend(chunker.push(at, &l).unwrap());
                chunks.extend(chunker.tick(at + gap / 2));
            }
            chunks.push(chunker.finish());
            prop_assert_eq!(payloads(&chunks), cast);
            let mut prev = Digest::ZERO;
            for (i, c) in chunks.iter().enumerate() {
                let e = c.envelope();
                prop_assert_eq!(e.seq, i as u64);
                prop_assert_eq!(e.prev, prev);
                prop_assert_eq!(e.is_final, i + 1 == chunks.len());
                let p = c.payload().unwrap();
                let lines = p.split_inclusive(|b| *b == b'\n').count();
                prop_assert!(p.len() <= max || lines == 1, "chunk {} has {} bytes in {} lines", i, p.len(), lines);
                prop_assert!(e.last_us - e.first_us < span, "chunk {} spans {}..{} µs", i, e.first_us, e.last_us);
                prev = c.hash();
            }
        }
    }
}
