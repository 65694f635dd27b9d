//! Enrollment: registers a host's public key with a collector, using a
//! single-use enrollment token from the collector's admin (`custos serve
//! token` or `POST /v1/enroll-tokens`).
//!
//! The request carries a signature of the token by the host key
//! ([`enroll_proof_message`]), so a token can only enroll a key whose
//! secret half the enrolling host holds. The flags and the message are
//! `cmd::enroll`. The collector answers its attestation key, which is
//! pinned beside the host key ([`pin_collector`]): the recorder verifies
//! attested approval decisions with it and with nothing the decision says.

use anyhow::Context as _;

use crate::client::Collector;
use crate::evidence::key::enroll_proof_message;
use crate::evidence::HostKey;

/// Enrolls `key`'s public half with the collector at `server` as `name`;
/// answers the collector's attestation key, if it has one.
pub fn enroll(server: &str, token: &str, key: &HostKey, name: &str) -> anyhow::Result<Option<crate::evidence::PublicKey>> {
    use base64::Engine as _;
    let public = key.public();
    let proof = base64::engine::general_purpose::STANDARD.encode(key.sign(&enroll_proof_message(token)));
    let collector = Collector::new(server, None)?;
    let runtime = crate::client::runtime()?;
    let answer = runtime
        .block_on(collector.enroll(token, &public.to_string(), &proof, name))
        .with_context(|| format!("enrolling key {} with {server}", public.id()))?;
    match answer.get("attestation_key").and_then(serde_json::Value::as_str) {
        Some(k) => Ok(Some(k.parse().with_context(|| format!("the collector's attestation key {k:?}"))?)),
        None => Ok(None),
    }
}

/// Pins the collector's attestation key beside the host key (the file
/// `approval::trust` reads), mode 0644. Answers the key it replaced, if a
/// different one was pinned.
pub fn pin_collector(host_key: &std::path::Path, key: &crate::evidence::PublicKey) -> anyhow::Result<(std::path::PathBuf, Option<String>)> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = crate::approval::trust::enrolled_pin_path(host_key);
    let before = std::fs::read_to_string(&path).ok();
    let text = format!("# the collector's attestation key, pinned by custos enroll\ncollector {key}\n");
    let tmp = path.with_extension("pub.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    let replaced = before.filter(|b| *b != text).and_then(|b| b.lines().find_map(|l| l.strip_prefix("collector ").map(str::to_owned)));
    Ok((path, replaced))
}
