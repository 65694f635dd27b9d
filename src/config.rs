//! Configuration: raw TOML in, a validated [`Config`] out.
//!
//! Parsing is kept apart from use (ripgrep's lowargs/hiargs split): nothing
//! downstream re-checks what [`Config::parse`] accepted. Unknown keys are
//! errors, so a typo cannot silently turn a control off.
//!
//! Where the file comes from is a security decision, made in one place,
//! [`Config::load`]: a privileged (setuid) `custos-shell` reads only
//! `/etc/custos/custos.toml`, and only if root owns it and nobody else can
//! write it. `CUSTOS_CONFIG` is honoured only when the binary is not
//! privileged (development, tests, `custos demo`). With no file at all, the
//! built-in defaults apply; they are the same values `DEFAULT_CONFIG` shows.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::evidence::{ChunkerConfig, WhenFull};
use crate::mask::{MaskingConfig, RawMasking};

/// Where a privileged shell reads its configuration.
pub const SYSTEM_CONFIG: &str = "/etc/custos/custos.toml";

/// The commented default configuration `install.sh` writes. Every value in it
/// is also the built-in default.
pub const DEFAULT_CONFIG: &str = include_str!("../defaults/custos.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {field}: {reason}")]
    Invalid { path: PathBuf, field: String, reason: String },
    #[error("{path} is not safe to trust: {reason} (it must be owned by root and writable only by root)")]
    Unsafe { path: PathBuf, reason: String },
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub shell: ShellConfig,
    pub status_line: bool,
    pub recording: RecordingConfig,
    /// `[masking]`: which secrets are masked on screen and in recordings.
    pub masking: MaskingConfig,
    /// `[gate]`: the command gate in interactive sessions.
    pub gate: GateConfig,
    /// `[collector]`: where `custos upload` delivers chunks.
    pub collector: CollectorConfig,
    /// `[approvals]`: the approvals pane inside `custos-shell`.
    pub approvals: ApprovalsConfig,
    /// `[evidence]`: the host key, chunking, the spool quota.
    pub evidence: EvidenceConfig,
    /// `[identity]`: the OpenID provider and who must sign in.
    pub identity: crate::identity::config::IdentityConfig,
    /// `[session]`: what happens to the session's processes at its end.
    pub session: SessionConfig,
    /// The file this came from, `None` for built-in defaults.
    pub source: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShellConfig {
    pub default: PathBuf,
    pub users: BTreeMap<String, PathBuf>,
    pub groups: BTreeMap<String, PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingConfig {
    /// custos-owned directory: recordings, session locks.
    pub spool_dir: PathBuf,
    /// Record keystrokes (never while the terminal's ECHO is off).
    pub record_input: bool,
    /// What a run of binary bytes on a session without a terminal leaves
    /// in the recording.
    pub binary: crate::channel::stream::BinaryPolicy,
    /// How long chunks the collector acknowledged stay in the spool
    /// (`keep_local`); `None`: deleted once acknowledged.
    pub keep_local: Option<std::time::Duration>,
}

/// `[recording] binary`: `"hash"` (length and SHA-256 only) or
/// `"content"` (also the bytes, up to `binary_cap` per run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawBinary {
    Hash,
    Content,
}

/// The largest `binary_cap`: a run's content is kept in memory until the
/// run ends.
pub const MAX_BINARY_CAP: u64 = 16 * 1024 * 1024;

/// `[session]`: the session's processes and the privileged stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// What happens to processes still running when the session ends.
    pub leftovers: Leftovers,
    /// The privileged stage writes each privileged act it performs to
    /// stderr (for operators checking an installation, and for tests).
    pub debug: bool,
}

/// Processes of the session still running when it ends (`nohup`,
/// `setsid`, a tmux server): the recording names them either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Leftovers {
    /// Killed: nothing outlives the session unrecorded.
    Kill,
    /// Left running, and the recording says so.
    Keep,
}

/// `[gate]`: the command gate's hooks in interactive bash and zsh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateConfig {
    /// Install the hooks in interactive bash and zsh sessions.
    pub enabled: bool,
    /// What a degraded session (hooks removed or bypassed) does.
    pub on_degraded: OnDegraded,
    /// What a shell without a terminal (a script, `bash -s`) does after a
    /// refused command.
    pub on_refusal_noninteractive: OnRefusal,
    /// `exec`: the exec backstop's mode (see `backstop`), and per user and
    /// per group (`[gate.exec_users]`, `[gate.exec_groups]`).
    pub exec: crate::backstop::Mode,
    pub exec_users: BTreeMap<String, crate::backstop::Mode>,
    pub exec_groups: BTreeMap<String, crate::backstop::Mode>,
}

impl GateConfig {
    /// The exec backstop's mode for `user` in `groups`: the user's own
    /// setting, else the strictest of their groups' (so being in a second
    /// group never loosens it), else `exec`.
    pub fn exec_mode(&self, user: &str, groups: &[String]) -> crate::backstop::Mode {
        use crate::backstop::Mode;
        if let Some(m) = self.exec_users.get(user) {
            return *m;
        }
        let strictness = |m: &Mode| match m {
            Mode::Enforce => 2,
            Mode::Audit => 1,
            Mode::Off => 0,
        };
        self.exec_groups.iter().filter(|(g, _)| groups.iter().any(|ug| ug == *g)).map(|(_, m)| *m).max_by_key(strictness).unwrap_or(self.exec)
    }
}

/// `[gate] on_refusal_noninteractive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRefusal {
    /// The shell stops with status 126: a script never runs half.
    Exit,
    /// The refused command is skipped and the script goes on.
    Continue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDegraded {
    /// Show it on the status line and record it; the session goes on.
    Mark,
    /// Also end the session, with a message.
    End,
}

/// `[collector]`: the collector this host uploads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorConfig {
    /// `http://` or `https://` base URL; `None`: recordings stay in the spool.
    pub url: Option<String>,
    /// When the oldest chunk still waiting in the spool is older than this,
    /// the status line says how much waits (the collector is not reached).
    pub backlog_warn: std::time::Duration,
}

/// The default of `[collector] backlog_warn_seconds`: a few chunk spans
/// plus a retry or two.
pub const BACKLOG_WARN_SECS: f64 = 30.0;

impl Default for CollectorConfig {
    fn default() -> Self {
        Self { url: None, backlog_warn: std::time::Duration::from_secs_f64(BACKLOG_WARN_SECS) }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGate {
    enabled: Option<bool>,
    on_degraded: Option<OnDegraded>,
    on_refusal_noninteractive: Option<OnRefusal>,
    exec: Option<crate::backstop::Mode>,
    exec_users: Option<BTreeMap<String, crate::backstop::Mode>>,
    exec_groups: Option<BTreeMap<String, crate::backstop::Mode>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCollector {
    url: Option<String>,
    insecure_http: Option<bool>,
    backlog_warn_seconds: Option<f64>,
}

/// Whether `url` (`http://…`) names this host: 127.0.0.0/8, `::1` or
/// `localhost`. Plain http anywhere else can be read and changed on the
/// path, approvals and acknowledgements included.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// `[approvals]`: the approvals pane (see `pane`). It needs `[collector]
/// url`; without one the prefix key is not intercepted at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalsConfig {
    /// The prefix byte (`pane_key = "C-]"`, the default); `None` for
    /// `"none"`: no pane.
    pub pane_key: Option<u8>,
    /// The collector's attestation key, pinned (`collector_key`): the only
    /// key besides pinned approver keys a decision may be signed with.
    pub collector_key: Option<crate::evidence::PublicKey>,
    /// A root-owned file of pinned approver keys (`trusted_keys`; format
    /// in `approval::trust`).
    pub trusted_keys: Option<PathBuf>,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self { pane_key: Some(DEFAULT_PREFIX), collector_key: None, trusted_keys: None }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApprovals {
    pane_key: Option<String>,
    collector_key: Option<String>,
    trusted_keys: Option<String>,
}

/// The default prefix: Ctrl-] (0x1d), as `[approvals] pane_key = "C-]"`.
pub const DEFAULT_PREFIX: u8 = 0x1d;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaneKeyError {
    #[error("{0:?} is not a control key: write it as C-x, where x is a letter or one of @ [ \\ ] ^ _ (or \"none\")")]
    NotControl(String),
}

/// Parses `[approvals] pane_key`: `C-]`, `C-a`, `^]`, or `none` (no pane).
pub fn parse_pane_key(text: &str) -> Result<Option<u8>, PaneKeyError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let rest = t.strip_prefix("C-").or_else(|| t.strip_prefix("c-")).or_else(|| t.strip_prefix('^'));
    let mut chars = rest.map(str::chars).into_iter().flatten();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() || "@[\\]^_".contains(c) => Ok(Some((c.to_ascii_uppercase() as u8) & 0x1f)),
        _ => Err(PaneKeyError::NotControl(text.to_owned())),
    }
}

pub use crate::evidence::EvidenceConfig;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    shell: RawShell,
    #[serde(default)]
    status_line: RawStatusLine,
    #[serde(default)]
    recording: RawRecording,
    #[serde(default)]
    masking: RawMasking,
    #[serde(default)]
    gate: RawGate,
    #[serde(default)]
    collector: RawCollector,
    #[serde(default)]
    approvals: RawApprovals,
    #[serde(default)]
    evidence: RawEvidence,
    #[serde(default)]
    identity: crate::identity::config::RawIdentity,
    #[serde(default)]
    session: RawSession,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    key: Option<String>,
    chunk_seconds: Option<f64>,
    chunk_bytes: Option<u64>,
    spool_quota_bytes: Option<u64>,
    when_full: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawShell {
    default: Option<String>,
    #[serde(default)]
    users: BTreeMap<String, String>,
    #[serde(default)]
    groups: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStatusLine {
    enabled: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSession {
    leftovers: Option<Leftovers>,
    debug: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRecording {
    spool_dir: Option<String>,
    record_input: Option<bool>,
    binary: Option<RawBinary>,
    binary_cap: Option<u64>,
    keep_local: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            shell: ShellConfig {
                default: PathBuf::from("/bin/bash"),
                users: BTreeMap::new(),
                groups: BTreeMap::new(),
            },
            status_line: true,
            recording: RecordingConfig {
                spool_dir: PathBuf::from("/var/lib/custos"),
                record_input: false,
                binary: crate::channel::stream::BinaryPolicy::Hash,
                keep_local: None,
            },
            masking: MaskingConfig::default(),
            gate: GateConfig {
                enabled: true,
                on_degraded: OnDegraded::Mark,
                on_refusal_noninteractive: OnRefusal::Exit,
                exec: crate::backstop::Mode::Enforce,
                exec_users: BTreeMap::new(),
                exec_groups: BTreeMap::new(),
            },
            collector: CollectorConfig::default(),
            approvals: ApprovalsConfig::default(),
            evidence: EvidenceConfig {
                key: PathBuf::from("/var/lib/custos/host.key"),
                chunking: ChunkerConfig::default(),
                spool_quota_bytes: 1 << 30,
                when_full: WhenFull::Throttle,
            },
            identity: crate::identity::config::IdentityConfig::default(),
            session: SessionConfig { leftovers: Leftovers::Kill, debug: false },
            source: None,
        }
    }
}

impl Config {
    /// Validates TOML text; `path` is only used to name the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        let defaults = Config::default();
        let invalid = |field: &str, reason: &str| ConfigError::Invalid {
            path: path.to_owned(),
            field: field.to_owned(),
            reason: reason.to_owned(),
        };
        let shell_path = |field: &str, value: &str| -> Result<PathBuf, ConfigError> {
            let p = PathBuf::from(value);
            if !p.is_absolute() {
                return Err(invalid(field, &format!("{value:?} is not an absolute path")));
            }
            Ok(p)
        };
        let default = match raw.shell.default {
            Some(v) => shell_path("shell.default", &v)?,
            None => defaults.shell.default,
        };
        let mut users = BTreeMap::new();
        for (user, v) in raw.shell.users {
            users.insert(user.clone(), shell_path(&format!("shell.users.{user}"), &v)?);
        }
        let mut groups = BTreeMap::new();
        for (group, v) in raw.shell.groups {
            groups.insert(group.clone(), shell_path(&format!("shell.groups.{group}"), &v)?);
        }
        let spool_dir = match raw.recording.spool_dir {
            Some(v) if Path::new(&v).is_absolute() => PathBuf::from(v),
            Some(v) => return Err(invalid("recording.spool_dir", &format!("{v:?} is not an absolute path"))),
            None => defaults.recording.spool_dir,
        };
        let masking = raw
            .masking
            .validate(text)
            .map_err(|e| ConfigError::Invalid { path: path.to_owned(), field: e.field, reason: e.reason })?;
        let collector_url = match raw.collector.url {
            Some(v) if v.starts_with("https://") => Some(v),
            Some(v) if v.starts_with("http://") && (is_loopback_url(&v) || raw.collector.insecure_http == Some(true)) => Some(v),
            Some(v) if v.starts_with("http://") => {
                return Err(invalid(
                    "collector.url",
                    &format!("{v:?} is plain http to another host: anyone on the path could read the recordings and forge approvals; use https://, or set insecure_http = true if the network is yours"),
                ))
            }
            Some(v) => return Err(invalid("collector.url", &format!("{v:?} is not an http:// or https:// URL"))),
            None => None,
        };
        let evidence = raw.evidence.validate(&defaults.evidence, &invalid)?;
        let binary = match (raw.recording.binary, raw.recording.binary_cap) {
            (None | Some(RawBinary::Hash), None) => crate::channel::stream::BinaryPolicy::Hash,
            (None | Some(RawBinary::Hash), Some(_)) => {
                return Err(invalid("recording.binary_cap", "applies only with binary = \"content\""));
            }
            (Some(RawBinary::Content), cap) => {
                let cap = cap.unwrap_or(64 * 1024);
                if cap == 0 || cap > MAX_BINARY_CAP {
                    return Err(invalid("recording.binary_cap", &format!("{cap} is not between 1 and {MAX_BINARY_CAP} bytes")));
                }
                crate::channel::stream::BinaryPolicy::Content { cap: cap as usize }
            }
        };
        let pane_key = match raw.approvals.pane_key {
            Some(v) => parse_pane_key(&v).map_err(|e| invalid("approvals.pane_key", &e.to_string()))?,
            None => defaults.approvals.pane_key,
        };
        let collector_key = match raw.approvals.collector_key {
            Some(v) => Some(v.trim().parse().map_err(|e| {
                invalid("approvals.collector_key", &format!("{v:?} is not a public key ({e}); copy the collector's key as printed by `custos serve attestation-key`"))
            })?),
            None => None,
        };
        let trusted_keys = match raw.approvals.trusted_keys {
            Some(v) if Path::new(&v).is_absolute() => Some(PathBuf::from(v)),
            Some(v) => return Err(invalid("approvals.trusted_keys", &format!("{v:?} is not an absolute path"))),
            None => None,
        };
        Ok(Self {
            shell: ShellConfig { default, users, groups },
            status_line: raw.status_line.enabled.unwrap_or(defaults.status_line),
            recording: RecordingConfig {
                spool_dir,
                record_input: raw.recording.record_input.unwrap_or(defaults.recording.record_input),
                binary,
                keep_local: match raw.recording.keep_local.as_deref() {
                    None => None,
                    Some(v) => Some(crate::when::parse_duration(v).map_err(|e| invalid("recording.keep_local", &e))?),
                },
            },
            masking,
            gate: GateConfig {
                enabled: raw.gate.enabled.unwrap_or(defaults.gate.enabled),
                on_degraded: raw.gate.on_degraded.unwrap_or(defaults.gate.on_degraded),
                on_refusal_noninteractive: raw.gate.on_refusal_noninteractive.unwrap_or(defaults.gate.on_refusal_noninteractive),
                exec: raw.gate.exec.unwrap_or(defaults.gate.exec),
                exec_users: raw.gate.exec_users.unwrap_or_default(),
                exec_groups: raw.gate.exec_groups.unwrap_or_default(),
            },
            collector: CollectorConfig {
                url: collector_url,
                backlog_warn: match raw.collector.backlog_warn_seconds {
                    None => defaults.collector.backlog_warn,
                    Some(s) if (1.0..=86_400.0).contains(&s) => std::time::Duration::from_secs_f64(s),
                    Some(s) => return Err(invalid("collector.backlog_warn_seconds", &format!("{s} is not between 1 and 86400"))),
                },
            },
            approvals: ApprovalsConfig { pane_key, collector_key, trusted_keys },
            evidence,
            identity: raw
                .identity
                .validate()
                .map_err(|e| ConfigError::Invalid { path: path.to_owned(), field: e.field, reason: e.reason })?,
            session: SessionConfig {
                leftovers: raw.session.leftovers.unwrap_or(defaults.session.leftovers),
                debug: raw.session.debug.unwrap_or(defaults.session.debug),
            },
            source: Some(path.to_owned()),
        })
    }

    /// Reads and validates a file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    /// The configuration this process must obey. `privileged` is true for a
    /// setuid shell; `env_override` is the value of `CUSTOS_CONFIG`.
    pub fn load(privileged: bool, env_override: Option<&str>) -> Result<Self, ConfigError> {
        if !privileged {
            if let Some(p) = env_override.filter(|p| !p.is_empty()) {
                return Self::read(Path::new(p));
            }
        }
        let path = Path::new(SYSTEM_CONFIG);
        match std::fs::metadata(path) {
            Ok(meta) => {
                if privileged {
                    check_root_owned(path, &meta)?;
                }
                Self::read(path)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read { path: path.to_owned(), source }),
        }
    }

    /// The real shell for `user`, a member of `groups`: a per-user entry wins,
    /// then the first group (in config order) the user belongs to, then the
    /// default.
    pub fn shell_for(&self, user: &str, groups: &[String]) -> &Path {
        if let Some(p) = self.shell.users.get(user) {
            return p;
        }
        self.shell
            .groups
            .iter()
            .find(|(g, _)| groups.iter().any(|ug| ug == *g))
            .map_or(self.shell.default.as_path(), |(_, p)| p.as_path())
    }
}

impl RawEvidence {
    fn validate(
        self,
        defaults: &EvidenceConfig,
        invalid: &dyn Fn(&str, &str) -> ConfigError,
    ) -> Result<EvidenceConfig, ConfigError> {
        let key = match self.key {
            Some(v) if Path::new(&v).is_absolute() => PathBuf::from(v),
            Some(v) => return Err(invalid("evidence.key", &format!("{v:?} is not an absolute path"))),
            None => defaults.key.clone(),
        };
        let span_us = match self.chunk_seconds {
            Some(s) if s.is_finite() && (0.1..=3600.0).contains(&s) => {
                // In range, so the conversion is exact enough and cannot overflow.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let us = (s * 1e6).round() as u64;
                us
            }
            Some(s) => return Err(invalid("evidence.chunk_seconds", &format!("{s} is not between 0.1 and 3600"))),
            None => defaults.chunking.max_span_us(),
        };
        let max_bytes = match self.chunk_bytes {
            Some(b) => usize::try_from(b).unwrap_or(usize::MAX),
            None => defaults.chunking.max_bytes(),
        };
        if !(4096..=crate::evidence::envelope::MAX_CAST).contains(&max_bytes) {
            return Err(invalid(
                "evidence.chunk_bytes",
                &format!("must be between 4096 and {} bytes", crate::evidence::envelope::MAX_CAST),
            ));
        }
        let chunking = ChunkerConfig::new(span_us, max_bytes).map_err(|e| invalid("evidence", &e.to_string()))?;
        let spool_quota_bytes = self.spool_quota_bytes.unwrap_or(defaults.spool_quota_bytes);
        // The quota must hold at least a few of the largest chunks this
        // configuration can cut (compressed input never grows by more than
        // a small fraction, plus the envelope), or a session would throttle
        // forever on its first big chunk.
        let largest = u64::try_from(max_bytes + max_bytes / 128 + 4096).unwrap_or(u64::MAX);
        let min_quota = largest.saturating_mul(4);
        if spool_quota_bytes < min_quota {
            return Err(invalid(
                "evidence.spool_quota_bytes",
                &format!("must be at least {min_quota} bytes (four of the largest chunks `chunk_bytes` allows)"),
            ));
        }
        let when_full = match self.when_full.as_deref() {
            None => defaults.when_full,
            Some("throttle") => WhenFull::Throttle,
            Some("end") => WhenFull::End,
            Some(other) => return Err(invalid("evidence.when_full", &format!("{other:?} is not \"throttle\" or \"end\""))),
        };
        Ok(EvidenceConfig { key, chunking, spool_quota_bytes, when_full })
    }
}

/// A file root could trust: owned by root, not writable by group or others,
/// and the same for its directory.
pub fn check_root_owned(path: &Path, meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    use std::os::unix::fs::MetadataExt as _;
    let unsafe_because = |reason: String| ConfigError::Unsafe { path: path.to_owned(), reason };
    if meta.uid() != 0 {
        return Err(unsafe_because(format!("it is owned by uid {}", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_because(format!("its mode is {:o}", meta.mode() & 0o7777)));
    }
    if let Some(dir) = path.parent() {
        if let Ok(dmeta) = std::fs::metadata(dir) {
            if dmeta.uid() != 0 || dmeta.mode() & 0o022 != 0 {
                return Err(unsafe_because(format!(
                    "its directory {} is owned by uid {} with mode {:o}",
                    dir.display(),
                    dmeta.uid(),
                    dmeta.mode() & 0o7777
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn the_commented_default_file_is_the_builtin_default() {
        let parsed = Config::parse(DEFAULT_CONFIG, Path::new("default.toml")).unwrap();
        assert_eq!(Config { source: None, ..parsed }, Config::default());
    }

    #[test]
    fn the_pane_key_defaults_to_ctrl_bracket_and_can_be_changed_or_turned_off() {
        assert_eq!(Config::parse("", Path::new("c.toml")).unwrap().approvals.pane_key, Some(0x1d));
        assert_eq!(Config::parse("[approvals]\npane_key = \"C-b\"\n", Path::new("c.toml")).unwrap().approvals.pane_key, Some(0x02));
        assert_eq!(Config::parse("[approvals]\npane_key = \"none\"\n", Path::new("c.toml")).unwrap().approvals.pane_key, None);
    }

    #[test]
    fn shells_resolve_user_then_group_then_default() {
        let c = Config::parse(
            "[shell]\ndefault = \"/bin/bash\"\n[shell.users]\nalice = \"/bin/zsh\"\n[shell.groups]\ndba = \"/usr/bin/fish\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.shell_for("alice", &["dba".into()]), Path::new("/bin/zsh"));
        assert_eq!(c.shell_for("bob", &["wheel".into(), "dba".into()]), Path::new("/usr/bin/fish"));
        assert_eq!(c.shell_for("carol", &[]), Path::new("/bin/bash"));
    }

    #[rstest]
    #[case::unknown_key("[shell]\ndefualt = \"/bin/bash\"\n", "unknown field `defualt`")]
    #[case::unknown_section("[shel]\n", "unknown field `shel`")]
    #[case::backlog_too_soon("[collector]\nbacklog_warn_seconds = 0.5\n", "collector.backlog_warn_seconds: 0.5 is not between 1 and 86400")]
    #[case::wrong_type("[status_line]\nenabled = \"yes\"\n", "invalid type")]
    #[case::relative_shell("[shell]\ndefault = \"bash\"\n", "shell.default: \"bash\" is not an absolute path")]
    #[case::relative_group_shell("[shell.groups]\nops = \"zsh\"\n", "shell.groups.ops")]
    #[case::relative_spool("[recording]\nspool_dir = \"spool\"\n", "recording.spool_dir")]
    #[case::keep_local_unit("[recording]\nkeep_local = \"7 days\"\n", "recording.keep_local: \"7 days\": unknown unit \" days\"")]
    #[case::keep_local_zero("[recording]\nkeep_local = \"0d\"\n", "recording.keep_local: must be more than zero")]
    #[case::not_toml("[shell\n", "line 1")]
    #[case::gate_bad_action("[gate]\non_degraded = \"explode\"\n", "unknown variant `explode`")]
    #[case::session_bad_leftovers("[session]\nleftovers = \"orphan\"\n", "unknown variant `orphan`")]
    #[case::binary_bad("[recording]\nbinary = \"raw\"\n", "unknown variant `raw`")]
    #[case::binary_cap_without_content("[recording]\nbinary_cap = 10\n", "recording.binary_cap: applies only")]
    #[case::binary_cap_too_big("[recording]\nbinary = \"content\"\nbinary_cap = 99999999999\n", "recording.binary_cap: 99999999999 is not between")]
    #[case::refusal_bad("[gate]\non_refusal_noninteractive = \"shrug\"\n", "unknown variant `shrug`")]
    #[case::gate_unknown_key("[gate]\nenable = true\n", "unknown field `enable`")]
    #[case::collector_not_a_url("[collector]\nurl = \"collector:8470\"\n", "collector.url")]
    #[case::collector_plain_http_elsewhere("[collector]\nurl = \"http://10.0.0.5:8470\"\n", "plain http to another host")]
    #[case::collector_plain_http_insecure_false("[collector]\nurl = \"http://collector.example.com\"\ninsecure_http = false\n", "plain http to another host")]
    #[case::collector_loopback_lookalike("[collector]\nurl = \"http://127.0.0.1.evil.example:80\"\n", "plain http to another host")]
    #[case::collector_unknown_key("[collector]\nurl = \"http://c\"\nurll = 1\n", "unknown field `urll`")]
    #[case::approvals_bad_pane_key("[approvals]\npane_key = \"M-x\"\n", "approvals.pane_key: \"M-x\" is not a control key")]
    #[case::approvals_bad_collector_key("[approvals]\ncollector_key = \"ed25519:short\"\n", "approvals.collector_key: \"ed25519:short\" is not a public key")]
    #[case::approvals_relative_trusted_keys("[approvals]\ntrusted_keys = \"approvers\"\n", "approvals.trusted_keys: \"approvers\" is not an absolute path")]
    #[case::approvals_unknown_key("[approvals]\npanekey = \"C-a\"\n", "unknown field `panekey`")]
    #[case::masking_unknown_key("[masking]\nglpyh = \"*\"\n", "unknown field `glpyh`")]
    #[case::masking_unknown_detector("[masking]\ndisabled = [\"visa\"]\n", "masking.disabled: unknown detector \"visa\"")]
    #[case::masking_bad_rule(
        "[masking]\n\n[[masking.rules]]\nname = \"ticket\"\nregex = 'TKT-['\n",
        "masking.rules[0] \"ticket\" (line 3): regex does not compile"
    )]
    #[case::evidence_relative_key("[evidence]\nkey = \"host.key\"\n", "evidence.key: \"host.key\" is not an absolute path")]
    #[case::evidence_zero_seconds("[evidence]\nchunk_seconds = 0\n", "evidence.chunk_seconds")]
    #[case::evidence_tiny_chunks("[evidence]\nchunk_bytes = 10\n", "evidence.chunk_bytes")]
    #[case::evidence_tiny_quota("[evidence]\nspool_quota_bytes = 1000\n", "evidence.spool_quota_bytes")]
    #[case::evidence_when_full("[evidence]\nwhen_full = \"drop\"\n", "evidence.when_full: \"drop\" is not")]
    #[case::masking_unknown_rule_key("[[masking.rules]]\nname = \"t\"\nregex = 'a'\ngruop = 1\n", "unknown field `gruop`")]
    fn bad_config_is_a_clear_error(#[case] text: &str, #[case] expected: &str) {
        let err = Config::parse(text, Path::new("/etc/custos/custos.toml")).unwrap_err().to_string();
        assert!(err.starts_with("/etc/custos/custos.toml"), "{err}");
        assert!(err.contains(expected), "{err:?} should mention {expected:?}");
    }

    #[rstest]
    #[case("https://collector.example.com:8470", "")]
    #[case("http://127.0.0.1:8470", "")]
    #[case("http://127.9.9.9/", "")]
    #[case("http://localhost:8470", "")]
    #[case("http://[::1]:8470/v1", "")]
    #[case("http://user@127.0.0.1:1", "")]
    #[case("http://collector.internal:8470", "insecure_http = true\n")]
    fn collector_urls_that_are_accepted(#[case] url: &str, #[case] extra: &str) {
        let text = format!("[collector]\nurl = \"{url}\"\n{extra}");
        let c = Config::parse(&text, Path::new("c.toml")).unwrap();
        assert_eq!(c.collector.url.as_deref(), Some(url));
    }

    #[test]
    fn env_override_is_ignored_when_privileged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[status_line]\nenabled = false\n").unwrap();
        let unprivileged = Config::load(false, p.to_str()).unwrap();
        assert!(!unprivileged.status_line);
        let privileged = Config::load(true, p.to_str()).unwrap();
        assert_ne!(privileged.source.as_deref(), Some(p.as_path()));
    }

    #[rstest]
    #[case("C-]", Some(0x1d))]
    #[case("C-a", Some(0x01))]
    #[case("C-A", Some(0x01))]
    #[case("^b", Some(0x02))]
    #[case("C-\\", Some(0x1c))]
    #[case("none", None)]
    fn pane_keys_parse(#[case] text: &str, #[case] want: Option<u8>) {
        assert_eq!(parse_pane_key(text), Ok(want));
    }

    #[rstest]
    #[case("]")]
    #[case("C-")]
    #[case("C-ab")]
    #[case("C-1")]
    #[case("M-a")]
    fn bad_pane_keys_are_named(#[case] text: &str) {
        let err = parse_pane_key(text).unwrap_err();
        assert!(err.to_string().contains(text), "{err}");
    }
}
