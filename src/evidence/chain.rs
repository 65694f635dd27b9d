//! Chain verification: given every chunk found for a session (in whatever
//! order the files were listed) and a way to look up public keys, say
//! whether the session is intact and complete, and if not, exactly which
//! chunk is bad and why.
//!
//! Pure: bytes in, a [`Report`] out. What each check defends against:
//!
//! | check | catches |
//! |---|---|
//! | structure, payload hash ([`Chunk::parse`]) | truncated or damaged files, changed payloads |
//! | key lookup, signature ([`Chunk::verify`]) | changed envelopes, forged chunks, unknown hosts |
//! | session id | a chunk replayed from another session |
//! | seq vs. where it was found | files swapped or renamed (reordered) |
//! | two chunks with one seq | a second, different chunk signed for the same place |
//! | `prev` = hash of chunk seq-1 | a chunk replaced by another validly signed one |
//! | every seq from 0 to the final present | dropped chunks (gaps) |
//! | nothing after the final chunk | chunks appended after the end |
//! | a final chunk exists | a truncated end (the last chunks removed) |
//! | payload inflates within bounds | a signed but unreadable payload |
//!
//! What it cannot catch: a host key used by someone who stole it, and a
//! session whose every chunk, final included, was withheld (there is then
//! nothing to verify; the collector's session list is what notices that).

use std::collections::BTreeMap;
use std::fmt;

use uuid::Uuid;

use super::{Chunk, ChunkError, Digest, KeyId, PublicKey};

/// One chunk as found: its bytes, a label naming where it came from (a
/// file path), and the sequence number its place implies (from the file
/// name, or its position in an ordered listing), if any.
#[derive(Clone, Debug)]
pub struct Found {
    pub label: String,
    pub place: Option<u64>,
    pub bytes: Vec<u8>,
}

/// One thing wrong with a session's chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// No chunks at all.
    Empty,
    /// The bytes are not a well-formed chunk (damaged, truncated, changed
    /// payload, not a chunk).
    Malformed { label: String, place: Option<u64>, error: ChunkError },
    /// The chunk names a key the verifier does not know.
    UnknownKey { label: String, seq: u64, key_id: KeyId },
    /// The signature does not verify: changed after signing, or forged.
    BadSignature { label: String, seq: u64 },
    /// The chunk belongs to another session.
    WrongSession { label: String, seq: u64, expected: Uuid, found: Uuid },
    /// Signed by a different key than the session's first chunk.
    KeyChanged { label: String, seq: u64, expected: KeyId, found: KeyId },
    /// Found where another sequence number belongs (files swapped or renamed).
    Misplaced { label: String, seq: u64, place: u64 },
    /// Two different, validly signed chunks claim the same place.
    Duplicate { seq: u64, labels: Vec<String> },
    /// Chunks `from..=to` are missing.
    Missing { from: u64, to: u64 },
    /// `prev` is not the hash of the chunk before it.
    PrevMismatch { label: String, seq: u64, expected: Digest, found: Digest },
    /// The chunk's time range starts before the previous chunk's ends.
    TimeBackwards { label: String, seq: u64 },
    /// A chunk after the final chunk (appended).
    AfterFinal { label: String, seq: u64, final_seq: u64 },
    /// No final chunk: the end is missing (truncated), or the session is
    /// still being recorded.
    NoFinal { last_seq: Option<u64> },
    /// Validly signed, but the payload does not inflate.
    BadPayload { label: String, seq: u64, error: ChunkError },
}

impl Problem {
    /// The chunk a problem is about, for sorting the report.
    fn seq(&self) -> u64 {
        match self {
            Problem::Empty => 0,
            Problem::Malformed { place, .. } => place.unwrap_or(u64::MAX),
            Problem::UnknownKey { seq, .. }
            | Problem::BadSignature { seq, .. }
            | Problem::WrongSession { seq, .. }
            | Problem::KeyChanged { seq, .. }
            | Problem::Misplaced { seq, .. }
            | Problem::Duplicate { seq, .. }
            | Problem::PrevMismatch { seq, .. }
            | Problem::TimeBackwards { seq, .. }
            | Problem::AfterFinal { seq, .. }
            | Problem::BadPayload { seq, .. } => *seq,
            Problem::Missing { from, .. } => *from,
            Problem::NoFinal { .. } => u64::MAX,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty => write!(f, "no chunks found"),
            Problem::Malformed { label, place: Some(p), error } => write!(f, "chunk {p} ({label}): {error}"),
            Problem::Malformed { label, place: None, error } => write!(f, "{label}: {error}"),
            Problem::UnknownKey { label, seq, key_id } => {
                write!(f, "chunk {seq} ({label}): signed by unknown key {key_id} (give its public key with --key)")
            }
            Problem::BadSignature { label, seq } => {
                write!(f, "chunk {seq} ({label}): the signature does not verify: changed after signing, or forged")
            }
            Problem::WrongSession { label, seq, expected, found } => {
                write!(f, "chunk {seq} ({label}): belongs to session {found}, not {expected}")
            }
            Problem::KeyChanged { label, seq, expected, found } => {
                write!(f, "chunk {seq} ({label}): signed by key {found}, but the session's first chunk by {expected}")
            }
            Problem::Misplaced { label, seq, place } => {
                write!(f, "chunk {seq} ({label}): found in the place of chunk {place} (reordered or renamed)")
            }
            Problem::Duplicate { seq, labels } => {
                write!(f, "chunk {seq}: different signed chunks claim this place: {}", labels.join(", "))
            }
            Problem::Missing { from, to } if from == to => write!(f, "chunk {from}: missing"),
            Problem::Missing { from, to } => write!(f, "chunks {from} to {to}: missing"),
            Problem::PrevMismatch { label, seq, expected, found } => write!(
                f,
                "chunk {seq} ({label}): does not link to the chunk before it (prev {found}, expected {expected}): replaced or reordered"
            ),
            Problem::TimeBackwards { label, seq } => {
                write!(f, "chunk {seq} ({label}): its time range starts before the previous chunk's ends")
            }
            Problem::AfterFinal { label, seq, final_seq } => {
                write!(f, "chunk {seq} ({label}): comes after the final chunk {final_seq} (appended)")
            }
            Problem::NoFinal { last_seq: Some(last) } => write!(
                f,
                "truncated: no final chunk after chunk {last} (the end is missing, or the session is still recording)"
            ),
            Problem::NoFinal { last_seq: None } => write!(f, "truncated: no final chunk"),
            Problem::BadPayload { label, seq, error } => write!(f, "chunk {seq} ({label}): {error}"),
        }
    }
}

/// The verdict on one session's chunks.
pub struct Report {
    /// The session the chunks belong to (as given, or from the lowest chunk).
    pub session: Option<Uuid>,
    /// Every problem found, in chunk order. Empty means intact and complete.
    pub problems: Vec<Problem>,
    /// The validly signed chunks of the session, in order, one per seq,
    /// nothing after the final one: what an export can use.
    pub chunks: Vec<Chunk>,
    /// The key that signed the session's chunks.
    pub key_id: Option<KeyId>,
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("session", &self.session)
            .field("problems", &self.problems)
            .field("chunks", &self.chunks.len())
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl Report {
    /// Every check passed, the final chunk included.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// Every check passed except that there is no final chunk yet: a live
    /// session's chunks so far.
    pub fn is_intact_so_far(&self) -> bool {
        self.problems.iter().all(|p| matches!(p, Problem::NoFinal { .. }))
    }

    /// The final chunk is present and intact.
    pub fn is_complete(&self) -> bool {
        self.chunks.last().is_some_and(|c| c.envelope().is_final)
    }
}

/// Verifies a session's chunks. `session` is the session they must belong
/// to, if known (a directory name, a server's session id); otherwise the
/// lowest-numbered valid chunk decides. `keys` looks up public keys by id.
pub fn verify_chain(found: Vec<Found>, session: Option<Uuid>, keys: impl Fn(&KeyId) -> Option<PublicKey>) -> Report {
    let mut problems = Vec::new();
    if found.is_empty() {
        return Report { session, problems: vec![Problem::Empty], chunks: Vec::new(), key_id: None };
    }
    // Places accounted for by a chunk that is there but bad, so the gap
    // check does not report them a second time as missing.
    let mut bad_places = std::collections::BTreeSet::new();
    let mut signed: Vec<(String, Chunk)> = Vec::new();
    for Found { label, place, bytes } in found {
        let chunk = match Chunk::parse(bytes) {
            Ok(c) => c,
            Err(error) => {
                bad_places.extend(place);
                problems.push(Problem::Malformed { label, place, error });
                continue;
            }
        };
        let e = chunk.envelope();
        if let Some(place) = place.filter(|p| *p != e.seq) {
            problems.push(Problem::Misplaced { label: label.clone(), seq: e.seq, place });
        }
        // A chunk that fails here accounts for its place only when the place
        // is known: its own seq field is not yet trustworthy.
        let Some(key) = keys(&e.key_id) else {
            bad_places.extend(place);
            problems.push(Problem::UnknownKey { label, seq: e.seq, key_id: e.key_id });
            continue;
        };
        if chunk.verify(&key).is_err() {
            bad_places.extend(place);
            problems.push(Problem::BadSignature { label, seq: place.unwrap_or(e.seq) });
            continue;
        }
        signed.push((label, chunk));
    }

    // The session and key: as given, or from the lowest valid chunk.
    signed.sort_by_key(|(_, c)| c.envelope().seq);
    let session = session.or_else(|| signed.first().map(|(_, c)| c.envelope().session));
    let key_id = signed.first().map(|(_, c)| c.envelope().key_id);
    let mut by_seq: BTreeMap<u64, Vec<(String, Chunk)>> = BTreeMap::new();
    for (label, chunk) in signed {
        let e = chunk.envelope();
        if let Some(expected) = session.filter(|s| *s != e.session) {
            bad_places.insert(e.seq);
            problems.push(Problem::WrongSession { label, seq: e.seq, expected, found: e.session });
            continue;
        }
        if let Some(expected) = key_id.filter(|k| *k != e.key_id) {
            problems.push(Problem::KeyChanged { label: label.clone(), seq: e.seq, expected, found: e.key_id });
        }
        by_seq.entry(e.seq).or_default().push((label, chunk));
    }

    // One chunk per place. Identical copies are the same evidence; different
    // ones are reported, and the one that links to its predecessor is kept.
    let mut chain: BTreeMap<u64, (String, Chunk)> = BTreeMap::new();
    let mut prev_hash: Option<(u64, Digest)> = None;
    for (seq, copies) in by_seq {
        let mut unique: Vec<(String, Chunk)> = Vec::with_capacity(copies.len());
        for copy in copies {
            if !unique.iter().any(|u| u.1.as_bytes() == copy.1.as_bytes()) {
                unique.push(copy);
            }
        }
        let mut copies = unique;
        if copies.len() > 1 {
            problems.push(Problem::Duplicate { seq, labels: copies.iter().map(|(l, _)| l.clone()).collect() });
            let links = |c: &Chunk| match prev_hash {
                Some((p, h)) if p.checked_add(1) == Some(seq) => c.envelope().prev == h,
                _ => seq == 0 && c.envelope().prev == Digest::ZERO,
            };
            copies.sort_by_key(|(_, c)| !links(c));
        }
        if let Some(first) = copies.into_iter().next() {
            prev_hash = Some((seq, first.1.hash()));
            chain.insert(seq, first);
        }
    }

    // Nothing may follow the first final chunk.
    let final_seq = chain.values().map(|(_, c)| c.envelope()).find(|e| e.is_final).map(|e| e.seq);
    if let Some(final_seq) = final_seq {
        // A final chunk at seq 2^64-1 has nothing after it (found by the
        // chain fuzz target: `final_seq + 1` overflowed).
        let after = final_seq.checked_add(1).map(|next| chain.split_off(&next)).unwrap_or_default();
        for (label, chunk) in after.into_values() {
            problems.push(Problem::AfterFinal { label, seq: chunk.envelope().seq, final_seq });
        }
        bad_places.retain(|p| *p <= final_seq);
    }

    // Walk the places that hold something, in order: gaps between them,
    // links and times between neighbours. Arithmetic on the gaps rather
    // than a walk over every number, since a seq can be anything up to 2^64.
    let mut places: std::collections::BTreeSet<u64> = chain.keys().copied().collect();
    places.extend(bad_places);
    let mut next = 0u64;
    let mut before: Option<&Chunk> = None;
    for &seq in &places {
        if seq > next {
            problems.push(Problem::Missing { from: next, to: seq - 1 });
            before = None;
        }
        next = seq.saturating_add(1);
        let Some((label, chunk)) = chain.get(&seq) else {
            before = None;
            continue;
        };
        let e = chunk.envelope();
        let expected_prev = match (seq, before) {
            (0, _) => Some(Digest::ZERO),
            (_, Some(b)) => Some(b.hash()),
            _ => None,
        };
        if let Some(expected) = expected_prev.filter(|h| *h != e.prev) {
            problems.push(Problem::PrevMismatch { label: label.clone(), seq, expected, found: e.prev });
        }
        if before.is_some_and(|b| e.first_us < b.envelope().last_us) {
            problems.push(Problem::TimeBackwards { label: label.clone(), seq });
        }
        if let Err(error) = chunk.payload() {
            problems.push(Problem::BadPayload { label: label.clone(), seq, error });
        }
        before = Some(chunk);
    }
    // With no chunk verified at all (say, every one under an unknown key),
    // "no final chunk" would only repeat that nothing could be checked.
    let nothing_verified = chain.is_empty() && !problems.is_empty();
    if final_seq.is_none() && !nothing_verified {
        problems.push(Problem::NoFinal { last_seq: places.last().copied() });
    }
    problems.sort_by_key(Problem::seq);
    Report { session, problems, chunks: chain.into_values().map(|(_, c)| c).collect(), key_id }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::{seal, HostKey};
    use proptest::prelude::*;

    fn key() -> HostKey {
        HostKey::from_seed([5; 32])
    }

    fn session() -> Uuid {
        Uuid::from_u128(0x0190_f1a2_0000_7000_8000_0000_0000_00aa)
    }

    /// A session of `n` chunks, the last final.
    fn chunks(n: u64) -> Vec<Chunk> {
        let key = key();
        let mut prev = Digest::ZERO;
        let mut out = Vec::new();
        for seq in 0..n {
            let text = if seq == 0 { "{\"version\":3}\n".to_string() } else { format!("[1.0, \"o\", \"chunk {seq}\"]\n") };
            let c = seal(&key, session(), seq, prev, seq * 1_000_000, seq * 1_000_000 + 500, seq + 1 == n, text.as_bytes());
            prev = c.hash();
            out.push(c);
        }
        out
    }

    fn found(chunks: &[Chunk]) -> Vec<Found> {
        chunks
            .iter()
            .map(|c| Found { label: format!("{:020}.chunk", c.envelope().seq), place: Some(c.envelope().seq), bytes: c.as_bytes().to_vec() })
            .collect()
    }

    fn keys(id: &KeyId) -> Option<PublicKey> {
        let public = key().public();
        (public.id() == *id).then_some(public)
    }

    fn verify(found: Vec<Found>) -> Report {
        verify_chain(found, Some(session()), keys)
    }

    /// Found by the chain fuzz target: a final chunk (and a copy of it) at
    /// the last possible seq overflowed `seq + 1`; now it is a report.
    #[test]
    fn a_final_chunk_at_the_last_seq_is_reported_not_a_panic() {
        let key = key();
        let last = seal(&key, session(), u64::MAX, Digest::ZERO, 1, 2, true, b"[1.0, \"o\", \"x\"]\n");
        let before = seal(&key, session(), u64::MAX - 1, Digest::ZERO, 0, 1, false, b"[1.0, \"o\", \"y\"]\n");
        let other = seal(&key, session(), u64::MAX, Digest::ZERO, 1, 2, true, b"[1.0, \"o\", \"z\"]\n");
        let report = verify(found(&[before, last, other]));
        assert!(report.problems.iter().any(|p| matches!(p, Problem::Missing { from: 0, .. })), "{:?}", report.problems);
        assert!(report.problems.iter().any(|p| matches!(p, Problem::Duplicate { .. })), "{:?}", report.problems);
    }

    #[test]
    fn an_intact_session_passes_in_any_listing_order() {
        let mut f = found(&chunks(5));
        f.reverse();
        let report = verify(f);
        assert!(report.is_intact(), "{:?}", report.problems);
        assert!(report.is_complete());
        assert_eq!(report.chunks.len(), 5);
        assert_eq!(report.key_id, Some(key().public().id()));
    }

    #[test]
    fn each_kind_of_damage_is_named() {
        let c = chunks(5);
        let other_key = HostKey::from_seed([6; 32]);
        let other_session = seal(&key(), Uuid::nil(), 2, c[1].hash(), 0, 0, false, b"x\n");
        let resigned_2 = seal(&key(), session(), 2, Digest::of(b"not chunk 1"), 2_000_000, 2_000_500, false, b"[1.0, \"o\", \"forged\"]\n");
        let mut flipped = c[2].as_bytes().to_vec();
        flipped[40] ^= 1; // inside prev: the signature no longer covers it
        let mut truncated = c[3].as_bytes().to_vec();
        truncated.truncate(150);
        let label = |seq: u64| format!("{seq:020}.chunk");

        let cases: Vec<(&str, Vec<Found>, Vec<Problem>)> = vec![
            ("dropped", found(&[c[0].clone(), c[1].clone(), c[3].clone(), c[4].clone()]), vec![Problem::Missing { from: 2, to: 2 }]),
            ("truncated end", found(&c[..3]), vec![Problem::NoFinal { last_seq: Some(2) }]),
            (
                "changed",
                {
                    let mut f = found(&c);
                    f[2].bytes = flipped;
                    f
                },
                vec![Problem::BadSignature { label: label(2), seq: 2 }],
            ),
            (
                "truncated file",
                {
                    let mut f = found(&c);
                    f[3].bytes = truncated;
                    f
                },
                vec![Problem::Malformed { label: label(3), place: Some(3), error: ChunkError::TooShort { len: 150, min: 192 } }],
            ),
            (
                "swapped files",
                {
                    let mut f = found(&c);
                    f.swap(1, 2);
                    f[1].label = label(1);
                    f[1].place = Some(1);
                    f[2].label = label(2);
                    f[2].place = Some(2);
                    f
                },
                vec![
                    Problem::Misplaced { label: label(2), seq: 1, place: 2 },
                    Problem::Misplaced { label: label(1), seq: 2, place: 1 },
                ],
            ),
            (
                "appended after final",
                {
                    let extra = seal(&key(), session(), 5, c[4].hash(), 5_000_000, 5_000_000, false, b"x\n");
                    found(&[c.clone(), vec![extra]].concat())
                },
                vec![Problem::AfterFinal { label: label(5), seq: 5, final_seq: 4 }],
            ),
            (
                "other session",
                {
                    let mut f = found(&c);
                    f[2].bytes = other_session.as_bytes().to_vec();
                    f
                },
                vec![Problem::WrongSession { label: label(2), seq: 2, expected: session(), found: Uuid::nil() }],
            ),
            (
                "unknown key",
                {
                    let mut f = found(&c);
                    f[0].bytes = seal(&other_key, session(), 0, Digest::ZERO, 0, 500, false, b"{}\n").into_bytes();
                    f
                },
                vec![Problem::UnknownKey { label: label(0), seq: 0, key_id: other_key.public().id() }],
            ),
            (
                "re-signed replacement",
                {
                    let mut f = found(&c);
                    f[2].bytes = resigned_2.as_bytes().to_vec();
                    f
                },
                vec![
                    Problem::PrevMismatch { label: label(2), seq: 2, expected: c[1].hash(), found: Digest::of(b"not chunk 1") },
                    Problem::PrevMismatch { label: label(3), seq: 3, expected: resigned_2.hash(), found: c[2].hash() },
                ],
            ),
            (
                "duplicate seq",
                {
                    let mut f = found(&c);
                    f.push(Found { label: "copy.chunk".into(), place: None, bytes: resigned_2.as_bytes().to_vec() });
                    f
                },
                vec![Problem::Duplicate { seq: 2, labels: vec![label(2), "copy.chunk".into()] }],
            ),
            ("nothing", vec![], vec![Problem::Empty]),
        ];
        for (name, f, expected) in cases {
            let report = verify(f);
            assert_eq!(report.problems, expected, "{name}");
            assert!(!report.is_intact(), "{name}");
            for p in &report.problems {
                assert!(!p.to_string().is_empty());
            }
        }
    }

    #[test]
    fn a_second_known_key_time_going_back_and_an_unreadable_payload_are_named() {
        let key = key();
        let other = HostKey::from_seed([6; 32]);
        let both = |id: &KeyId| [key.public(), other.public()].into_iter().find(|k| k.id() == *id);
        let c0 = seal(&key, session(), 0, Digest::ZERO, 0, 2_000, false, b"{}\n");
        // Signed by a key the verifier trusts, but not the session's.
        let c1 = seal(&other, session(), 1, c0.hash(), 3_000, 3_000, false, b"a\n");
        // Starts before chunk 1 ended.
        let c2 = seal(&key, session(), 2, c1.hash(), 1_000, 4_000, false, b"b\n");
        let report = verify_chain(found(&[c0.clone(), c1.clone(), c2.clone()]), Some(session()), both);
        assert_eq!(
            report.problems,
            vec![
                Problem::KeyChanged { label: format!("{:020}.chunk", 1), seq: 1, expected: key.public().id(), found: other.public().id() },
                Problem::TimeBackwards { label: format!("{:020}.chunk", 2), seq: 2 },
                Problem::NoFinal { last_seq: Some(2) },
            ]
        );
    }

    #[test]
    fn identical_copies_are_one_chunk() {
        let c = chunks(3);
        let mut f = found(&c);
        f.push(Found { label: "copy".into(), place: None, bytes: c[1].as_bytes().to_vec() });
        let report = verify(f);
        assert!(report.is_intact(), "{:?}", report.problems);
    }

    #[test]
    fn a_live_session_is_intact_so_far() {
        let report = verify(found(&chunks(4)[..2]));
        assert!(!report.is_intact());
        assert!(report.is_intact_so_far());
        assert_eq!(report.problems[0].to_string(), "truncated: no final chunk after chunk 1 (the end is missing, or the session is still recording)");
    }

    #[derive(Clone, Debug)]
    enum Damage {
        Flip { chunk: usize, byte: usize, bit: u8 },
        Drop { chunk: usize },
        Swap { a: usize, b: usize },
        Truncate { keep: usize },
        Cut { chunk: usize, len: usize },
    }

    fn damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            (0..6usize, any::<usize>(), 0..8u8).prop_map(|(chunk, byte, bit)| Damage::Flip { chunk, byte, bit }),
            (0..6usize).prop_map(|chunk| Damage::Drop { chunk }),
            (0..6usize, 0..6usize).prop_filter("two chunks", |(a, b)| a != b).prop_map(|(a, b)| Damage::Swap { a, b }),
            (0..6usize).prop_map(|keep| Damage::Truncate { keep }),
            (0..6usize, any::<usize>()).prop_map(|(chunk, len)| Damage::Cut { chunk, len }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any single-bit change of any byte of any chunk, any dropped chunk,
        /// any swap of two chunks' files, any truncation of the session or of
        /// one file: verify notices.
        #[test]
        fn any_damage_is_detected(d in damage()) {
            let c = chunks(6);
            let mut f = found(&c);
            match d {
                Damage::Flip { chunk, byte, bit } => {
                    let bytes = &mut f[chunk].bytes;
                    let at = byte % bytes.len();
                    bytes[at] ^= 1 << bit;
                }
                Damage::Drop { chunk } => {
                    f.remove(chunk);
                }
                Damage::Swap { a, b } => {
                    let (ba, bb) = (f[a].bytes.clone(), f[b].bytes.clone());
                    f[a].bytes = bb;
                    f[b].bytes = ba;
                }
                Damage::Truncate { keep } => f.truncate(keep),
                Damage::Cut { chunk, len } => {
                    let bytes = &mut f[chunk].bytes;
                    let keep = len % bytes.len();
                    bytes.truncate(keep);
                }
            }
            let report = verify(f);
            prop_assert!(!report.is_intact());
        }

        /// The same, when chunks come without places (a bare list): a swap
        /// is then invisible by design (the list is sorted by seq), but every
        /// other damage is still found.
        #[test]
        fn damage_is_detected_without_file_names(d in damage().prop_filter("no swap", |d| !matches!(d, Damage::Swap { .. }))) {
            let c = chunks(6);
            let mut f: Vec<Found> = found(&c).into_iter().map(|x| Found { place: None, ..x }).collect();
            match d {
                Damage::Flip { chunk, byte, bit } => {
                    let bytes = &mut f[chunk].bytes;
                    let at = byte % bytes.len();
                    bytes[at] ^= 1 << bit;
                }
                Damage::Drop { chunk } => {
                    f.remove(chunk);
                }
                Damage::Truncate { keep } => f.truncate(keep),
                Damage::Cut { chunk, len } => {
                    let bytes = &mut f[chunk].bytes;
                    let keep = len % bytes.len();
                    bytes.truncate(keep);
                }
                Damage::Swap { .. } => {}
            }
            prop_assert!(!verify(f).is_intact());
        }
    }
}
