//! The chunk byte format (version 1): a fixed 128-byte header, the payload
//! (one zstd frame of asciicast bytes), and a 64-byte ed25519 signature over
//! everything before it. All integers are big-endian. `docs/format.md`
//! gives the same table for a second implementation.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "CUSTOSCK"
//!      8     2  version (1)
//!     10     2  flags: bit 0 = final chunk of the session; other bits 0
//!     12    16  session id (UUID, RFC 9562 byte order)
//!     28     8  seq: 0, 1, 2, ... within the session
//!     36    32  prev: SHA-256 of the whole previous chunk; zeros for seq 0
//!     68    32  SHA-256 of the payload bytes (compressed, as stored)
//!    100     8  first_us: time of the chunk's first event, µs since session start
//!    108     8  last_us: time of its last event (>= first_us)
//!    116     8  key id: first 8 bytes of SHA-256 of the signing public key
//!    124     4  payload length N (at most MAX_PAYLOAD)
//!    128     N  payload: exactly one zstd frame
//!  128+N    64  ed25519 signature (RFC 8032) of bytes 0 .. 128+N
//! ```
//!
//! Trust boundary: [`Chunk::parse`] checks structure only (sizes, magic,
//! version, flags, the payload hash, one zstd frame) and bounds every
//! allocation, so it is safe on bytes from anyone. It does not say who made
//! the chunk: [`Chunk::verify`] checks the signature against a key the
//! caller trusts, and [`super::chain`] checks the chunk's place in its
//! session. Decompression ([`Chunk::payload`]) is bounded separately, since a
//! small frame can claim to expand to gigabytes.

use std::io::Read as _;

use uuid::Uuid;

use super::{Digest, HostKey, KeyId, PublicKey};

pub const MAGIC: [u8; 8] = *b"CUSTOSCK";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 128;
pub const SIGNATURE_LEN: usize = 64;
/// The largest compressed payload a chunk may carry (16 MiB).
pub const MAX_PAYLOAD: usize = 16 << 20;
/// The largest decompressed payload (16 MiB of asciicast): what
/// [`Chunk::payload`] will inflate at most.
pub const MAX_CAST: usize = 16 << 20;
/// The largest chunk in bytes.
pub const MAX_CHUNK: usize = HEADER_LEN + MAX_PAYLOAD + SIGNATURE_LEN;
/// zstd level for payloads: ~100 MB/s and a third of the size on terminal
/// text (measured, `shared/DESIGN.md`).
pub const ZSTD_LEVEL: i32 = 3;

const FLAG_FINAL: u16 = 1;

/// The signed header fields of a chunk.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    pub version: u16,
    pub session: Uuid,
    pub seq: u64,
    pub prev: Digest,
    pub payload_sha256: Digest,
    pub first_us: u64,
    pub last_us: u64,
    pub is_final: bool,
    pub key_id: KeyId,
}

/// Why bytes are not a well-formed chunk, or not one signed by a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("truncated: {len} bytes is shorter than the {min}-byte minimum chunk")]
    TooShort { len: usize, min: usize },
    #[error("too large: {len} bytes is more than the {max}-byte maximum chunk")]
    TooLarge { len: usize, max: usize },
    #[error("not a custos chunk (the first bytes are not the magic \"CUSTOSCK\")")]
    BadMagic,
    #[error("format version {0} is not supported (this custos reads version 1)")]
    UnsupportedVersion(u16),
    #[error("unknown flags {0:#06x} are set (only bit 0, final, is defined)")]
    UnknownFlags(u16),
    #[error("the payload length field says {declared} bytes (at most {max} allowed)")]
    PayloadTooLarge { declared: u64, max: usize },
    #[error("length mismatch: the header declares a {expected}-byte chunk but there are {actual} bytes (truncated or with bytes appended)")]
    LengthMismatch { expected: usize, actual: usize },
    #[error("the payload does not match its SHA-256 in the header (changed)")]
    PayloadHash,
    #[error("time range is backwards: first {first_us} µs is after last {last_us} µs")]
    TimeRange { first_us: u64, last_us: u64 },
    #[error("the payload is not exactly one zstd frame")]
    NotOneFrame,
    #[error("signed by key {chunk}, not by the key given ({given})")]
    WrongKey { chunk: KeyId, given: KeyId },
    #[error("the signature does not verify: the chunk was changed after it was signed, or forged")]
    BadSignature,
    #[error("the payload does not decompress: {0}")]
    Decompress(String),
    #[error("the payload decompresses to more than {max} bytes (refused: a zip bomb or a broken writer)")]
    CastTooLarge { max: usize },
}

/// One chunk: its bytes exactly as stored and sent, and the parsed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    bytes: Vec<u8>,
    envelope: Envelope,
    hash: Digest,
}

/// Reads the big-endian integer at `at` in a buffer already checked to be
/// at least [`HEADER_LEN`] long.
fn be<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = bytes.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

impl Chunk {
    /// Parses and checks the structure of `bytes` (see the module doc for
    /// what that covers and what it does not).
    pub fn parse(bytes: Vec<u8>) -> Result<Chunk, ChunkError> {
        let min = HEADER_LEN + SIGNATURE_LEN;
        if bytes.len() < min {
            // A short file that does not even start with the magic is more
            // usefully reported as "not a chunk".
            if bytes.len() >= MAGIC.len() && bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
                return Err(ChunkError::BadMagic);
            }
            return Err(ChunkError::TooShort { len: bytes.len(), min });
        }
        if bytes.len() > MAX_CHUNK {
            return Err(ChunkError::TooLarge { len: bytes.len(), max: MAX_CHUNK });
        }
        if be::<8>(&bytes, 0) != MAGIC {
            return Err(ChunkError::BadMagic);
        }
        let version = u16::from_be_bytes(be(&bytes, 8));
        if version != VERSION {
            return Err(ChunkError::UnsupportedVersion(version));
        }
        let flags = u16::from_be_bytes(be(&bytes, 10));
        if flags & !FLAG_FINAL != 0 {
            return Err(ChunkError::UnknownFlags(flags));
        }
        let payload_len = u32::from_be_bytes(be(&bytes, 124));
        let n = usize::try_from(payload_len).unwrap_or(usize::MAX);
        if n > MAX_PAYLOAD {
            return Err(ChunkError::PayloadTooLarge { declared: payload_len.into(), max: MAX_PAYLOAD });
        }
        let expected = HEADER_LEN + n + SIGNATURE_LEN;
        if bytes.len() != expected {
            return Err(ChunkError::LengthMismatch { expected, actual: bytes.len() });
        }
        let envelope = Envelope {
            version,
            session: Uuid::from_bytes(be(&bytes, 12)),
            seq: u64::from_be_bytes(be(&bytes, 28)),
            prev: Digest(be(&bytes, 36)),
            payload_sha256: Digest(be(&bytes, 68)),
            first_us: u64::from_be_bytes(be(&bytes, 100)),
            last_us: u64::from_be_bytes(be(&bytes, 108)),
            is_final: flags & FLAG_FINAL != 0,
            key_id: KeyId(be(&bytes, 116)),
        };
        if envelope.first_us > envelope.last_us {
            return Err(ChunkError::TimeRange { first_us: envelope.first_us, last_us: envelope.last_us });
        }
        let payload = bytes.get(HEADER_LEN..HEADER_LEN + n).unwrap_or_default();
        if Digest::of(payload) != envelope.payload_sha256 {
            return Err(ChunkError::PayloadHash);
        }
        // Exactly one frame: a second frame (or trailing bytes) would be
        // content a reader that stops after the first frame never sees.
        match zstd::zstd_safe::find_frame_compressed_size(payload) {
            Ok(size) if size == payload.len() => {}
            _ => return Err(ChunkError::NotOneFrame),
        }
        let hash = Digest::of(&bytes);
        Ok(Chunk { bytes, envelope, hash })
    }

    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Checks the signature with `key`, which must be the key the envelope
    /// names.
    pub fn verify(&self, key: &PublicKey) -> Result<(), ChunkError> {
        if key.id() != self.envelope.key_id {
            return Err(ChunkError::WrongKey { chunk: self.envelope.key_id, given: key.id() });
        }
        let split = self.bytes.len().saturating_sub(SIGNATURE_LEN);
        let (signed, sig) = self.bytes.split_at(split);
        let sig: [u8; SIGNATURE_LEN] = sig.try_into().map_err(|_| ChunkError::BadSignature)?;
        if key.verifies(signed, &sig) {
            Ok(())
        } else {
            Err(ChunkError::BadSignature)
        }
    }

    /// SHA-256 of the whole chunk, signature included: the next chunk's
    /// `prev`.
    pub fn hash(&self) -> Digest {
        self.hash
    }

    /// The compressed payload, as stored.
    pub fn compressed(&self) -> &[u8] {
        let end = self.bytes.len().saturating_sub(SIGNATURE_LEN);
        self.bytes.get(HEADER_LEN..end).unwrap_or_default()
    }

    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        let start = self.bytes.len().saturating_sub(SIGNATURE_LEN);
        self.bytes.get(start..).unwrap_or_default()
    }

    /// The decompressed asciicast bytes, refusing more than [`MAX_CAST`].
    pub fn payload(&self) -> Result<Vec<u8>, ChunkError> {
        decompress_bounded(self.compressed(), MAX_CAST)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Inflates one zstd frame, stopping with an error past `max` bytes. The
/// output buffer grows with what is actually produced, never with what the
/// frame header claims, so a lying header cannot make us allocate.
///
/// Each thread keeps one decompression context and resets it for every
/// frame: making a context (its allocation and tables) cost as much as
/// inflating a second of terminal output, once per chunk a collector takes.
pub fn decompress_bounded(frame: &[u8], max: usize) -> Result<Vec<u8>, ChunkError> {
    use zstd::zstd_safe::{DCtx, ResetDirective};
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<DCtx<'static>>> = const { std::cell::RefCell::new(None) };
    }
    let inflate = |decoder: zstd::stream::read::Decoder<'_, &[u8]>| {
        let mut out = Vec::new();
        let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
        decoder.single_frame().take(limit).read_to_end(&mut out).map_err(|e| ChunkError::Decompress(e.to_string()))?;
        if out.len() > max {
            return Err(ChunkError::CastTooLarge { max });
        }
        Ok(out)
    };
    CONTEXT.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok();
        let context = slot.as_mut().and_then(|s| {
            if s.is_none() {
                **s = DCtx::try_create();
            }
            s.as_mut()
        });
        // A context left mid-frame by an earlier error starts afresh.
        let context = context.and_then(|c| c.reset(ResetDirective::SessionOnly).is_ok().then_some(c));
        match context {
            Some(context) => inflate(zstd::stream::read::Decoder::with_context(frame, context)),
            None => inflate(zstd::stream::read::Decoder::with_buffer(frame).map_err(|e| ChunkError::Decompress(e.to_string()))?),
        }
    })
}

/// Compresses `cast` as one zstd frame at [`ZSTD_LEVEL`].
pub fn compress(cast: &[u8]) -> Vec<u8> {
    // In-memory compression fails only if zstd cannot allocate its context;
    // a frame of raw (stored) blocks is still a valid frame then, so sealing
    // never fails and never drops the events.
    zstd::bulk::compress(cast, ZSTD_LEVEL).unwrap_or_else(|_| raw_frame(cast))
}

/// A zstd frame holding `data` in raw (uncompressed) blocks, per RFC 8878:
/// magic, a frame header with a 128 KiB window and no content size, then
/// blocks of at most 128 KiB, the last one flagged.
fn raw_frame(data: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 128 << 10;
    let mut out = Vec::with_capacity(data.len() + 6 + 3 * (data.len() / BLOCK + 1));
    out.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    out.push(0x00); // frame header descriptor: window descriptor follows, nothing else
    out.push(7 << 3); // window descriptor: 2^(10+7) = 128 KiB
    let mut blocks = data.chunks(BLOCK).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0]); // one empty last raw block
    }
    while let Some(block) = blocks.next() {
        let last = u32::from(blocks.peek().is_none());
        // Block header, 3 bytes little-endian: last (1 bit), type raw (2 bits = 0), size (21 bits).
        let header = last | (u32::try_from(block.len()).unwrap_or(0) << 3);
        out.extend_from_slice(header.to_le_bytes().get(..3).unwrap_or_default());
        out.extend_from_slice(block);
    }
    out
}

/// Builds and signs a chunk. `first_us`/`last_us` are the times of its first
/// and last events in microseconds since the session started (the
/// asciicast header's `timestamp`); `cast_bytes` are whole asciicast lines.
#[allow(clippy::too_many_arguments)]
pub fn seal(
    key: &HostKey,
    session: Uuid,
    seq: u64,
    prev: Digest,
    first_us: u64,
    last_us: u64,
    is_final: bool,
    cast_bytes: &[u8],
) -> Chunk {
    let payload = compress(cast_bytes);
    seal_compressed(key, session, seq, prev, first_us, last_us.max(first_us), is_final, payload)
}

#[allow(clippy::too_many_arguments)]
fn seal_compressed(
    key: &HostKey,
    session: Uuid,
    seq: u64,
    prev: Digest,
    first_us: u64,
    last_us: u64,
    is_final: bool,
    payload: Vec<u8>,
) -> Chunk {
    let envelope = Envelope {
        version: VERSION,
        session,
        seq,
        prev,
        payload_sha256: Digest::of(&payload),
        first_us,
        last_us,
        is_final,
        key_id: key.public().id(),
    };
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len() + SIGNATURE_LEN);
    bytes.extend_from_slice(&MAGIC);
    bytes.extend_from_slice(&envelope.version.to_be_bytes());
    bytes.extend_from_slice(&(if is_final { FLAG_FINAL } else { 0 }).to_be_bytes());
    bytes.extend_from_slice(session.as_bytes());
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(&prev.0);
    bytes.extend_from_slice(&envelope.payload_sha256.0);
    bytes.extend_from_slice(&first_us.to_be_bytes());
    bytes.extend_from_slice(&last_us.to_be_bytes());
    bytes.extend_from_slice(&envelope.key_id.0);
    // A payload over u32::MAX cannot come from the chunker (it cuts at far
    // less); saturating keeps the header honest enough that parse refuses it.
    bytes.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_be_bytes());
    bytes.extend_from_slice(&payload);
    let signature = key.sign(&bytes);
    bytes.extend_from_slice(&signature);
    let hash = Digest::of(&bytes);
    Chunk { bytes, envelope, hash }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> HostKey {
        HostKey::from_seed([1; 32])
    }

    fn session() -> Uuid {
        Uuid::from_u128(0x0190_f1a2_0000_7000_8000_0000_0000_0001)
    }

    fn sample(cast: &[u8]) -> Chunk {
        seal(&key(), session(), 3, Digest::of(b"previous"), 1_000, 2_500, false, cast)
    }

    #[test]
    fn seal_then_parse_round_trips_every_field() {
        let cast = b"[0.500000, \"o\", \"hello\\r\\n\"]\n";
        let chunk = sample(cast);
        let parsed = Chunk::parse(chunk.as_bytes().to_vec()).unwrap();
        assert_eq!(parsed, chunk);
        let e = parsed.envelope();
        assert_eq!(
            (e.version, e.session, e.seq, e.prev, e.first_us, e.last_us, e.is_final, e.key_id),
            (1, session(), 3, Digest::of(b"previous"), 1_000, 2_500, false, key().public().id())
        );
        assert_eq!(parsed.payload().unwrap(), cast);
        parsed.verify(&key().public()).unwrap();
        assert_eq!(parsed.hash(), Digest::of(chunk.as_bytes()));
        assert_eq!(parsed.as_bytes().len(), HEADER_LEN + parsed.compressed().len() + SIGNATURE_LEN);
    }

    #[test]
    fn the_final_flag_and_an_empty_payload_round_trip() {
        let chunk = seal(&key(), session(), 0, Digest::ZERO, 0, 0, true, b"");
        let parsed = Chunk::parse(chunk.into_bytes()).unwrap();
        assert!(parsed.envelope().is_final);
        assert_eq!(parsed.payload().unwrap(), b"");
    }

    #[test]
    fn another_key_does_not_verify() {
        let chunk = sample(b"x");
        let other = HostKey::from_seed([2; 32]).public();
        assert!(matches!(chunk.verify(&other), Err(ChunkError::WrongKey { .. })));
    }

    #[test]
    fn a_changed_signed_field_fails_the_signature() {
        let mut bytes = sample(b"x").into_bytes();
        bytes[30] ^= 1; // inside seq
        let parsed = Chunk::parse(bytes).unwrap();
        assert_eq!(parsed.verify(&key().public()), Err(ChunkError::BadSignature));
    }

    fn with_u32_at(mut bytes: Vec<u8>, at: usize, v: u32) -> Vec<u8> {
        bytes[at..at + 4].copy_from_slice(&v.to_be_bytes());
        bytes
    }

    #[test]
    fn malformed_chunks_are_named_errors() {
        let good = sample(b"[0.1, \"o\", \"x\"]\n").into_bytes();
        let n = good.len();
        let cases: Vec<(&str, Vec<u8>, ChunkError)> = vec![
            ("empty", vec![], ChunkError::TooShort { len: 0, min: 192 }),
            ("short", good[..100].to_vec(), ChunkError::TooShort { len: 100, min: 192 }),
            ("truncated", good[..n - 1].to_vec(), ChunkError::LengthMismatch { expected: n, actual: n - 1 }),
            ("appended", [good.clone(), vec![0]].concat(), ChunkError::LengthMismatch { expected: n, actual: n + 1 }),
            ("magic", [b"NOTCHUNK".as_slice(), &good[8..]].concat(), ChunkError::BadMagic),
            ("short text", b"hello, this is not a chunk".to_vec(), ChunkError::BadMagic),
            ("version", [&good[..8], &[0, 2], &good[10..]].concat(), ChunkError::UnsupportedVersion(2)),
            ("flags", [&good[..10], &[0x80, 0], &good[12..]].concat(), ChunkError::UnknownFlags(0x8000)),
            (
                "oversized length",
                with_u32_at(good.clone(), 124, u32::MAX),
                ChunkError::PayloadTooLarge { declared: u32::MAX.into(), max: MAX_PAYLOAD },
            ),
            (
                "length off by one",
                with_u32_at(good.clone(), 124, u32::try_from(n - 192 + 1).unwrap()),
                ChunkError::LengthMismatch { expected: n + 1, actual: n },
            ),
            ("payload changed", { let mut b = good.clone(); b[HEADER_LEN + 5] ^= 0x40; b }, ChunkError::PayloadHash),
            (
                "time backwards",
                { let mut b = good.clone(); b[100..108].copy_from_slice(&9_999u64.to_be_bytes()); b },
                ChunkError::TimeRange { first_us: 9_999, last_us: 2_500 },
            ),
        ];
        for (name, bytes, expected) in cases {
            assert_eq!(Chunk::parse(bytes).unwrap_err(), expected, "{name}");
        }
        let huge = vec![0u8; MAX_CHUNK + 1];
        assert!(matches!(Chunk::parse(huge), Err(ChunkError::TooLarge { .. })));
    }

    /// A chunk whose payload is `payload`, correctly hashed and signed: the
    /// damage is in the compressed data itself, which only decoding finds.
    fn signed_with_payload(payload: Vec<u8>) -> Vec<u8> {
        seal_compressed(&key(), session(), 0, Digest::ZERO, 0, 0, false, payload).into_bytes()
    }

    #[test]
    fn bad_zstd_is_a_clean_error() {
        let not_zstd = signed_with_payload(b"plain text, not zstd".to_vec());
        assert_eq!(Chunk::parse(not_zstd).unwrap_err(), ChunkError::NotOneFrame);
        let two_frames = signed_with_payload([compress(b"a"), compress(b"b")].concat());
        assert_eq!(Chunk::parse(two_frames).unwrap_err(), ChunkError::NotOneFrame);
        // A frame whose block content is corrupt but whose framing is intact.
        let mut frame = compress(&b"hello world, hello world, hello world ".repeat(50));
        let mid = frame.len() / 2;
        frame[mid] ^= 0xff;
        frame[mid + 1] ^= 0xff;
        if let Ok(chunk) = Chunk::parse(signed_with_payload(frame)) {
            let err = chunk.payload().unwrap_err();
            assert!(matches!(err, ChunkError::Decompress(_)), "{err}");
        }
    }

    #[test]
    fn a_zip_bomb_is_refused_without_inflating_it() {
        // 64 MiB of zeros compresses to a few KiB: four times the limit.
        let bomb = compress(&vec![0u8; 4 * MAX_CAST]);
        assert!(bomb.len() < MAX_PAYLOAD / 100, "{}", bomb.len());
        let chunk = Chunk::parse(signed_with_payload(bomb)).unwrap();
        chunk.verify(&key().public()).unwrap();
        assert_eq!(chunk.payload().unwrap_err(), ChunkError::CastTooLarge { max: MAX_CAST });
    }

    /// The thread's context is reused: a frame abandoned half-way (over the
    /// limit, or corrupt, or cut short) does not leak into the next one.
    #[test]
    fn a_frame_abandoned_half_way_leaves_nothing_for_the_next() {
        let good = b"the next frame, whole ".repeat(100);
        let frame = compress(&good);
        let bomb = compress(&vec![0u8; 4 * MAX_CAST]);
        let mut corrupt = compress(&b"hello world, hello world, hello world ".repeat(50));
        let mid = corrupt.len() / 2;
        corrupt[mid] ^= 0xff;
        corrupt[mid + 1] ^= 0xff;
        let cut = frame.get(..frame.len() / 2).unwrap().to_vec();
        for bad in [&bomb, &corrupt, &cut] {
            let _ = decompress_bounded(bad, MAX_CAST);
            assert_eq!(decompress_bounded(&frame, MAX_CAST).unwrap(), good);
        }
        assert!(decompress_bounded(&cut, MAX_CAST).is_err(), "a frame cut short is an error, not a short payload");
        assert_eq!(decompress_bounded(&bomb, MAX_CAST).unwrap_err(), ChunkError::CastTooLarge { max: MAX_CAST });
    }

    #[test]
    fn the_raw_frame_fallback_is_valid_zstd() {
        for len in [0, 1, 1000, (128 << 10) - 1, 128 << 10, (128 << 10) + 1, 300_000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let frame = raw_frame(&data);
            assert_eq!(zstd::zstd_safe::find_frame_compressed_size(&frame), Ok(frame.len()), "{len}");
            assert_eq!(decompress_bounded(&frame, MAX_CAST).unwrap(), data, "{len}");
        }
    }
}
