//! The collector's configuration: raw TOML in, a validated [`ServeConfig`]
//! out (the same split as `crate::config`). Unknown keys are errors that name
//! the file and the line, so a typo cannot silently fall back to a default.
//!
//! ```toml
//! listen = "127.0.0.1:8470"          # loopback by default
//! data_dir = "/var/lib/custos-collector"
//! max_chunk_bytes = 8388608          # larger request bodies answer 413
//! enroll_token_ttl_secs = 86400      # lifetime of an enrollment token
//!
//! [identity]                         # OIDC: verify session identities, roles
//! issuer = "https://idp.example.com"
//! client_id = "custos"               # the audience of hosts' and clients' ID tokens
//! groups_claim = "groups"
//! admin_token = true                 # false: the break-glass admin token is refused
//! [identity.roles]
//! auditor = ["auditors"]             # read every session
//! approver = ["approvers"]           # decide approvals
//! admin = ["custos-admins"]          # everything
//! approval_webhook = "https://chat.example/hook"  # optional: JSON POST per approval event
//! metrics_token = "a long random string" # GET /metrics with this bearer token
//! metrics_listen = "127.0.0.1:9470"  # or: /metrics without a token, on this address only
//! ```
//!
//! `/metrics` on the main address always needs a token (the metrics token,
//! or a caller with the auditor role): the counts say how busy the
//! collector is and how many uploads it refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where the embedded collector listens unless told otherwise: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// The default data directory (chunk files and the SQLite database).
pub const DEFAULT_DATA_DIR: &str = "/var/lib/custos-collector";
/// A chunk is bounded in size by the recorder (a few seconds of output,
/// compressed); 8 MiB leaves room for a flood without letting one request
/// hold unbounded memory.
pub const DEFAULT_MAX_CHUNK_BYTES: usize = 8 * 1024 * 1024;
pub const DEFAULT_ENROLL_TOKEN_TTL_SECS: u64 = 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum ServeConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {field}: {reason}")]
    Invalid { path: PathBuf, field: &'static str, reason: String },
}

/// The validated collector configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub max_chunk_bytes: usize,
    pub enroll_token_ttl_secs: u64,
    pub identity: Option<super::identity::ServeIdentity>,
    /// Approval requests and decisions are POSTed here as JSON, if set.
    pub approval_webhook: Option<String>,
    /// The bearer token `GET /metrics` accepts (besides auditors).
    pub metrics_token: Option<String>,
    /// A second address serving only `/metrics`, without a token.
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServeIdentity {
    issuer: String,
    client_id: Option<String>,
    groups_claim: Option<String>,
    admin_token: Option<bool>,
    #[serde(default)]
    roles: crate::identity::roles::RoleGroups,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServeConfig {
    listen: Option<String>,
    data_dir: Option<String>,
    max_chunk_bytes: Option<usize>,
    enroll_token_ttl_secs: Option<u64>,
    identity: Option<RawServeIdentity>,
    approval_webhook: Option<String>,
    metrics_token: Option<String>,
    metrics_listen: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8470)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            max_chunk_bytes: DEFAULT_MAX_CHUNK_BYTES,
            enroll_token_ttl_secs: DEFAULT_ENROLL_TOKEN_TTL_SECS,
            identity: None,
            approval_webhook: None,
            metrics_token: None,
            metrics_listen: None,
        }
    }
}

impl ServeConfig {
    /// Validates TOML text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ServeConfigError> {
        let raw: RawServeConfig = toml::from_str(text).map_err(|e| ServeConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        let invalid = |field: &'static str, reason: String| ServeConfigError::Invalid {
            path: path.to_owned(),
            field,
            reason,
        };
        let defaults = Self::default();
        let listen = match raw.listen {
            Some(v) => v
                .parse()
                .map_err(|_| invalid("listen", format!("{v:?} is not an address like 127.0.0.1:8470")))?,
            None => defaults.listen,
        };
        let data_dir = match raw.data_dir {
            Some(v) if Path::new(&v).is_absolute() => PathBuf::from(v),
            Some(v) => return Err(invalid("data_dir", format!("{v:?} is not an absolute path"))),
            None => defaults.data_dir,
        };
        let max_chunk_bytes = match raw.max_chunk_bytes {
            Some(0) => return Err(invalid("max_chunk_bytes", "must be more than 0".into())),
            Some(v) => v,
            None => defaults.max_chunk_bytes,
        };
        let enroll_token_ttl_secs = match raw.enroll_token_ttl_secs {
            Some(0) => return Err(invalid("enroll_token_ttl_secs", "must be more than 0".into())),
            Some(v) => v,
            None => defaults.enroll_token_ttl_secs,
        };
        let identity = match raw.identity {
            None => None,
            Some(i) if i.issuer.starts_with("https://") || i.issuer.starts_with("http://") => {
                Some(super::identity::ServeIdentity {
                    issuer: i.issuer.trim_end_matches('/').to_owned(),
                    client_id: i.client_id.unwrap_or_else(|| "custos".into()),
                    groups_claim: i.groups_claim.unwrap_or_else(|| "groups".into()),
                    roles: i.roles,
                    admin_token: i.admin_token.unwrap_or(true),
                })
            }
            Some(i) => return Err(invalid("identity.issuer", format!("{:?} is not an https:// URL", i.issuer))),
        };
        let approval_webhook = match raw.approval_webhook {
            Some(v) if v.starts_with("http://") || v.starts_with("https://") => Some(v),
            Some(v) => return Err(invalid("approval_webhook", format!("{v:?} is not an http:// or https:// URL"))),
            None => None,
        };
        let metrics_token = match raw.metrics_token {
            Some(v) if v.len() < 16 || v.contains(char::is_whitespace) => {
                return Err(invalid("metrics_token", "must be at least 16 characters, without white space".into()))
            }
            other => other,
        };
        let metrics_listen = match raw.metrics_listen {
            Some(v) => Some(v.parse().map_err(|_| invalid("metrics_listen", format!("{v:?} is not an address like 127.0.0.1:9470")))?),
            None => None,
        };
        Ok(Self { listen, data_dir, max_chunk_bytes, enroll_token_ttl_secs, identity, approval_webhook, metrics_token, metrics_listen })
    }

    pub fn read(path: &Path) -> Result<Self, ServeConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ServeConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn a_full_file_parses() {
        let c = ServeConfig::parse(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"/srv/c\"\nmax_chunk_bytes = 1024\nenroll_token_ttl_secs = 60\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.data_dir, Path::new("/srv/c"));
        assert_eq!(c.max_chunk_bytes, 1024);
        assert_eq!(c.enroll_token_ttl_secs, 60);
        assert_eq!(ServeConfig::parse("", Path::new("c.toml")).unwrap(), ServeConfig::default());
    }

    #[rstest]
    #[case::unknown_key("listen = \"127.0.0.1:1\"\nlsiten = 1\n", "line 2")]
    #[case::unknown_key_named("datadir = \"/x\"\n", "unknown field `datadir`")]
    #[case::bad_address("listen = \"localhost\"\n", "listen: \"localhost\" is not an address")]
    #[case::relative_dir("data_dir = \"data\"\n", "data_dir: \"data\" is not an absolute path")]
    #[case::zero_limit("max_chunk_bytes = 0\n", "max_chunk_bytes: must be more than 0")]
    #[case::wrong_type("max_chunk_bytes = \"big\"\n", "invalid type")]
    #[case::not_toml("listen = \n", "line 1")]
    #[case::identity_not_a_url("[identity]\nissuer = \"idp\"\n", "identity.issuer: \"idp\" is not an https:// URL")]
    #[case::identity_unknown_role("[identity]\nissuer = \"https://i\"\n[identity.roles]\nauditors = []\n", "unknown field `auditors`")]
    #[case::metrics_token_short("metrics_token = \"abc\"\n", "metrics_token: must be at least 16")]
    #[case::metrics_listen_bad("metrics_listen = \"metrics\"\n", "metrics_listen: \"metrics\" is not an address")]
    #[case::webhook_not_a_url("approval_webhook = \"chat\"\n", "approval_webhook: \"chat\" is not an http")]
    fn bad_config_names_file_and_reason(#[case] text: &str, #[case] expected: &str) {
        let err = ServeConfig::parse(text, Path::new("/etc/custos/serve.toml")).unwrap_err().to_string();
        assert!(err.starts_with("/etc/custos/serve.toml: "), "{err}");
        assert!(err.contains(expected), "{err:?} should mention {expected:?}");
    }
}
