//! Evidence: a session's recording as a signed, hash-chained series of chunks.
//!
//! A session's asciicast v3 byte stream is cut into chunks ([`chunker`]),
//! each one zstd frame in a signed envelope ([`envelope`]) that names the
//! session, its sequence number and the SHA-256 of the chunk before it. The
//! host's ed25519 key ([`key`]) signs every chunk, so anyone holding the
//! public key can check, offline, that nothing was changed, dropped,
//! reordered, appended or cut off ([`chain`]). Decompressed and concatenated
//! in order, a session's chunks are byte for byte its `.cast` file
//! ([`export`] turns them into the other formats). Inside the chunks is
//! asciicast ([`asciicast`], the crate's one codec for it), whose `m`
//! events carry [`marker`] labels.
//!
//! The cores (envelope codec, chunker, chain verification, export) are pure:
//! bytes and values in, bytes and values out, no clock and no I/O. The edges
//! are the key file ([`HostKey::load`]/[`HostKey::save`]) and the disk spool
//! ([`spool`]), where chunks are written before anything else happens to
//! them. [`EvidenceWriter`] is what the recorder holds: events in, chunks on
//! disk, the spool quota reported rather than ever dropping data. `docs/format.md` specifies the byte format for a second
//! implementation; `testdata/evidence/` holds vectors to check it against.

pub mod asciicast;
pub mod chain;
pub mod chunker;
pub mod envelope;
pub mod export;
pub mod key;
pub mod marker;
pub mod sink;
pub mod spool;
pub mod writer;

use std::fmt;
use std::str::FromStr;

pub use chain::{verify_chain, Found, Problem, Report};
pub use chunker::{Chunker, ChunkerConfig, ChunkerError};
pub use envelope::{seal, Chunk, ChunkError, Envelope};
pub use key::{HostKey, KeyError, PublicKey};
pub use spool::{ChainTip, ChunkSpool, SessionDir, SpoolError};
pub use writer::{EvidenceWriter, WhenFull, WriteStatus, WriterError};

/// `[evidence]`: how recordings become signed chunks in the spool (the
/// section's validated form; `config` parses it, this part owns it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceConfig {
    /// The host's ed25519 signing key (mode 0600, owned by custos).
    pub key: std::path::PathBuf,
    /// Where chunks are cut: by time and by uncompressed size.
    pub chunking: ChunkerConfig,
    /// The spool's size limit in bytes, all sessions together.
    pub spool_quota_bytes: u64,
    /// What the recorder does when the spool is full.
    pub when_full: WhenFull,
}

/// A SHA-256 digest. Displayed (and parsed) as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The `prev` of chunk 0: there is no chunk before it.
    pub const ZERO: Digest = Digest([0; 32]);

    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest(sha2::Sha256::digest(bytes).into())
    }
}

/// The first 8 bytes of SHA-256 of an ed25519 public key: names the key that
/// signed a chunk, so a verifier holding several keys can pick the right one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Decodes exactly `N` bytes of hex (either case).
fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let digits = s.as_bytes();
    if digits.len() != 2 * N {
        return Err(HexError { expected: 2 * N, text: s.chars().take(80).collect() });
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok();
        *byte = text
            .and_then(|t| u8::from_str_radix(t, 16).ok())
            .ok_or_else(|| HexError { expected: 2 * N, text: s.chars().take(80).collect() })?;
    }
    Ok(out)
}

/// Text that should have been a fixed number of hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} hex digits, got {text:?}")]
pub struct HexError {
    expected: usize,
    text: String,
}

macro_rules! hex_newtype {
    ($t:ident, $n:literal) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($t), "("))?;
                write_hex(f, &self.0)?;
                write!(f, ")")
            }
        }
        impl FromStr for $t {
            type Err = HexError;
            fn from_str(s: &str) -> Result<Self, HexError> {
                parse_hex::<$n>(s).map($t)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_newtype!(Digest, 32);
hex_newtype!(KeyId, 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_print_and_parse_as_lowercase_hex() {
        let d = Digest::of(b"abc");
        let text = d.to_string();
        assert_eq!(text, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(text.parse::<Digest>().unwrap(), d);
        assert_eq!(text.to_uppercase().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn bad_hex_is_a_clear_error() {
        assert!("abc".parse::<Digest>().unwrap_err().to_string().contains("expected 64 hex digits"));
        assert!("zz00000000000000".parse::<KeyId>().is_err());
        assert!("é00000000000000".parse::<KeyId>().is_err());
    }
}
