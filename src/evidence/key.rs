//! The host key: one ed25519 key per host, owned by the `custos` user, that
//! signs every chunk the recorder seals.
//!
//! The secret key file is one line, `ed25519-secret:<base64 of the 32-byte
//! seed>`, mode 0600. [`HostKey::load`] refuses a file that group or others
//! can read (or a symlink): a key anyone else could have read cannot vouch
//! for anything. [`HostKey::save`] writes a temporary file, fsyncs it and
//! renames it into place, so a crash leaves the old key or the new one, never
//! half of one.
//!
//! The public key travels as text, `ed25519:<base64 of 32 bytes>`, and is
//! named inside chunks by its [`KeyId`].
//!
//! Enrollment proof: a host enrolling its key with a collector signs
//! [`enroll_proof_message`] of the enrollment token (the wire fact both
//! `custos enroll` and the collector must agree on).

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use super::{Digest, KeyId};

const SECRET_PREFIX: &str = "ed25519-secret:";
const PUBLIC_PREFIX: &str = "ed25519:";
/// Key files are one short line; anything longer is not a key file.
const MAX_KEY_FILE: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read key {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write key {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("key {path} is readable by group or others (mode {mode:o}); it must be 0600, owned by the custos user (chmod 600 it, or make a new key with `custos keygen --force`)")]
    Exposed { path: PathBuf, mode: u32 },
    #[error("key {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("key {path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("not a public key ({reason}): expected ed25519:<base64 of 32 bytes>, got {text:?}")]
    Public { text: String, reason: String },
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

/// The host's signing key. Its `Debug` output never shows the secret.
pub struct HostKey {
    signing: SigningKey,
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey(<secret>, id {})", self.public().id())
    }
}

impl HostKey {
    /// A new random key from the operating system's generator.
    ///
    /// # Panics
    /// If the operating system has no randomness to give (no `getrandom(2)`
    /// and no `/dev/urandom`): a signing key cannot be made without it, and
    /// a predictable one would be worse than none. [`HostKey::try_generate`]
    /// returns that as an error instead.
    #[allow(clippy::panic)]
    pub fn generate() -> HostKey {
        match Self::try_generate() {
            Ok(key) => key,
            Err(e) => panic!("{e}"),
        }
    }

    /// A new random key, or an error when the OS has no randomness.
    pub fn try_generate() -> Result<HostKey, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        let key = Self::from_seed(seed);
        zeroize_array(&mut seed);
        Ok(key)
    }

    /// The key for a fixed 32-byte seed (RFC 8032's secret key). Test vectors
    /// use this; real keys come from [`HostKey::generate`].
    pub fn from_seed(seed: [u8; 32]) -> HostKey {
        HostKey { signing: SigningKey::from_bytes(&seed) }
    }

    pub fn public(&self) -> PublicKey {
        PublicKey { key: self.signing.verifying_key() }
    }

    /// Signs `message` (ed25519, RFC 8032, no prehash).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// Reads a key file written by [`HostKey::save`]. Refuses files that
    /// group or others can read, symlinks, and anything but one key line.
    pub fn load(path: &Path) -> Result<HostKey, KeyError> {
        use std::io::Read as _;
        use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
        let read_err = |source| KeyError::Read { path: path.to_owned(), source };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    KeyError::NotAFile { path: path.to_owned() }
                } else {
                    read_err(e)
                }
            })?;
        let meta = file.metadata().map_err(read_err)?;
        if !meta.is_file() {
            return Err(KeyError::NotAFile { path: path.to_owned() });
        }
        if meta.mode() & 0o077 != 0 {
            return Err(KeyError::Exposed { path: path.to_owned(), mode: meta.mode() & 0o7777 });
        }
        let mut text = String::new();
        file.take(MAX_KEY_FILE).read_to_string(&mut text).map_err(read_err)?;
        let format = |reason: &str| KeyError::Format { path: path.to_owned(), reason: reason.to_owned() };
        let line = text.trim();
        let b64 = line
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| format("expected one line `ed25519-secret:<base64>` (is this a custos host key?)"))?;
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format(&format!("the key is not valid base64: {e}")))?;
        let seed: Result<[u8; 32], _> = bytes.as_slice().try_into();
        zeroize_array(&mut bytes);
        let mut seed = seed.map_err(|_| format("the key is not 32 bytes long"))?;
        let key = Self::from_seed(seed);
        zeroize_array(&mut seed);
        Ok(key)
    }

    /// Writes the key to `path`, mode 0600: a temporary file in the same
    /// directory, fsynced, renamed over `path`, then the directory fsynced.
    /// Replaces an existing key; callers decide whether that is allowed.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let mut line = format!(
            "{SECRET_PREFIX}{}\n",
            base64::engine::general_purpose::STANDARD.encode(self.signing.as_bytes())
        );
        let result = write_atomically(path, line.as_bytes(), 0o600);
        let mut bytes = std::mem::take(&mut line).into_bytes();
        zeroize_array(&mut bytes);
        result.map_err(|source| KeyError::Write { path: path.to_owned(), source })
    }
}

/// Overwrites a secret's bytes before the memory is freed (zeroize's
/// writes are not optimised away as dead stores).
fn zeroize_array(bytes: &mut [u8]) {
    use zeroize::Zeroize as _;
    bytes.zeroize();
}

/// Creates `path` with `mode` holding `bytes` so that a crash at any instant
/// leaves either the old file or the complete new one.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // tempfile creates the file 0600 with O_EXCL, so nobody can open it first.
    let mut tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir)?;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// An ed25519 public key: what a verifier or a collector holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PublicKey {
    /// The key's id: the first 8 bytes of SHA-256 of its 32 bytes.
    pub fn id(&self) -> KeyId {
        let d = Digest::of(self.key.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(d.0.get(..8).unwrap_or(&[0; 8]));
        KeyId(id)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// A key from its 32 bytes; refuses bytes that are not a curve point and
    /// the small-order ("weak") keys for which forged signatures exist.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        let text = || format!("{PUBLIC_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(bytes));
        let key = VerifyingKey::from_bytes(bytes)
            .map_err(|_| KeyError::Public { text: text(), reason: "not a point on the curve".into() })?;
        if key.is_weak() {
            return Err(KeyError::Public { text: text(), reason: "a weak (small-order) key".into() });
        }
        Ok(PublicKey { key })
    }

    /// True when `signature` is this key's signature of `message`. Strict
    /// verification: non-canonical signatures are refused, so one message
    /// has exactly one valid signature under a key.
    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.key.verify_strict(message, &sig).is_ok()
    }

    /// Reads a public key file: the first line that is not blank or a `#`
    /// comment, as `ed25519:<base64>` (what `custos keygen` writes to
    /// `<key>.pub`).
    pub fn load(path: &Path) -> Result<PublicKey, KeyError> {
        use std::io::Read as _;
        let file = std::fs::File::open(path).map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
        let mut text = String::new();
        file.take(MAX_KEY_FILE)
            .read_to_string(&mut text)
            .map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| KeyError::Format { path: path.to_owned(), reason: "no key in the file".into() })?;
        line.parse()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(self.key.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<PublicKey, KeyError> {
        let s = s.trim();
        let err = |reason: &str| KeyError::Public { text: s.chars().take(100).collect(), reason: reason.to_owned() };
        let b64 = s.strip_prefix(PUBLIC_PREFIX).ok_or_else(|| err("no `ed25519:` prefix"))?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| err("not base64"))?;
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| err("not 32 bytes"))?;
        PublicKey::from_bytes(&bytes)
    }
}

/// The message an enrolling host signs with its key, proving to the
/// collector that it holds the secret half of the key it enrolls:
/// `custos-enroll-v1:` followed by the enrollment token.
pub fn enroll_proof_message(token: &str) -> Vec<u8> {
    format!("custos-enroll-v1:{token}").into_bytes()
}

/// What a host signs to read where its upload of `session` stands (`GET
/// /v1/sessions/{id}/head`): the session and the time (unix seconds), so
/// the proof is good for that session only and only for a few minutes.
pub fn head_proof_message(session: &str, unix_secs: i64) -> Vec<u8> {
    format!("custos-head-v1\n{session}\n{unix_secs}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn public_keys_round_trip_as_text() {
        let key = HostKey::from_seed([7; 32]);
        let text = key.public().to_string();
        assert!(text.starts_with("ed25519:"), "{text}");
        let parsed: PublicKey = text.parse().unwrap();
        assert_eq!(parsed, key.public());
        assert_eq!(parsed.id(), key.public().id());
        assert_ne!(HostKey::from_seed([8; 32]).public().id(), key.public().id());
    }

    #[test]
    fn rfc8032_test_vector_1_signs_as_specified() {
        // RFC 8032, section 7.1, TEST 1: the empty message.
        let seed: [u8; 32] = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60".parse::<Digest>().unwrap().0;
        let key = HostKey::from_seed(seed);
        assert_eq!(
            hex(&key.public().to_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = key.sign(b"");
        assert_eq!(
            hex(&sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(key.public().verifies(b"", &sig));
        assert!(!key.public().verifies(b"x", &sig));
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn bad_public_keys_are_named_errors() {
        for (text, reason) in [
            ("ssh-ed25519 AAAA", "prefix"),
            ("ed25519:!!!", "base64"),
            ("ed25519:AAAA", "32 bytes"),
            // All zeros except the sign bit: a small-order point.
            ("ed25519:AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "weak"),
        ] {
            let err = text.parse::<PublicKey>().unwrap_err().to_string();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn save_then_load_gives_the_same_key_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.key");
        let key = HostKey::generate();
        key.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(HostKey::load(&path).unwrap().public(), key.public());
        // Saving again replaces it, and leaves no temporary files behind.
        HostKey::generate().save(&path).unwrap();
        assert_ne!(HostKey::load(&path).unwrap().public(), key.public());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.key");
        HostKey::generate().save(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = HostKey::load(&path).unwrap_err();
        assert!(matches!(err, KeyError::Exposed { mode: 0o640, .. }), "{err}");
    }

    #[test]
    fn a_symlinked_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.key");
        HostKey::generate().save(&path).unwrap();
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(HostKey::load(&link), Err(KeyError::NotAFile { .. })));
    }

    #[test]
    fn malformed_key_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        for (content, reason) in [
            ("", "expected one line"),
            ("ed25519:AAAA\n", "expected one line"),
            ("ed25519-secret:***\n", "base64"),
            ("ed25519-secret:AAAA\n", "32 bytes"),
        ] {
            let path = dir.path().join("k");
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let err = HostKey::load(&path).unwrap_err().to_string();
            assert!(err.contains(reason), "{content:?}: {err}");
        }
        assert!(matches!(HostKey::load(&dir.path().join("missing")), Err(KeyError::Read { .. })));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = HostKey::from_seed([42; 32]);
        let shown = format!("{key:?}");
        assert!(shown.contains("<secret>"));
        let secret = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
        assert!(!shown.contains(&secret));
    }
}
