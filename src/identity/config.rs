//! `[identity]` in `custos.toml`: which OpenID provider, which client, and
//! whether a verified identity is required, optional or off for each user.
//!
//! ```toml
//! [identity]
//! issuer = "https://idp.example.com"   # no issuer: identity is off
//! client_id = "custos"                 # a public client with the device grant
//! scopes = ["openid", "email", "profile", "groups", "offline_access"]
//! groups_claim = "groups"              # the ID token claim holding groups
//! mode = "required"                    # required | optional | off
//! login_timeout_secs = 300
//! [identity.users]
//! deploy = "optional"
//! [identity.groups]
//! breakglass = "off"
//! [identity.machine]                   # for -c, CI and scp with no cached login
//! token_file = "/etc/custos/machine.jwt"   # an ID token, readable only by custos
//! # or: client_id = "custos-ci" and client_secret_file = "/etc/custos/ci.secret"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};


/// Whether a session needs a verified identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// No verified identity, no shell.
    Required,
    /// Without one the session goes on, marked unverified.
    Optional,
    /// Identity is not asked for.
    Off,
}

/// How a host without a human at the keyboard proves who runs the job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineIdentity {
    /// An ID token in a file only custos can read (a workload identity).
    TokenFile(PathBuf),
    /// The client credentials grant with a confidential client.
    ClientCredentials { client_id: String, secret_file: PathBuf },
}

/// The validated `[identity]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityConfig {
    /// `None`: OIDC is not configured and every mode is `off`.
    pub issuer: Option<String>,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    pub mode: Mode,
    pub users: BTreeMap<String, Mode>,
    pub groups: BTreeMap<String, Mode>,
    pub machine: Option<MachineIdentity>,
    pub login_timeout_secs: u64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            client_id: "custos".into(),
            scopes: ["openid", "email", "profile", "groups", "offline_access"].map(String::from).to_vec(),
            groups_claim: "groups".into(),
            mode: Mode::Off,
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            machine: None,
            login_timeout_secs: 300,
        }
    }
}

impl IdentityConfig {
    /// The mode for `user`, a member of unix `groups`: a per-user entry
    /// wins, then the first listed group the user is in, then the default.
    /// Without an issuer it is always `off`.
    pub fn mode_for(&self, user: &str, groups: &[String]) -> Mode {
        if self.issuer.is_none() {
            return Mode::Off;
        }
        if let Some(m) = self.users.get(user) {
            return *m;
        }
        self.groups.iter().find(|(g, _)| groups.iter().any(|ug| ug == *g)).map_or(self.mode, |(_, m)| *m)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdentity {
    issuer: Option<String>,
    client_id: Option<String>,
    scopes: Option<Vec<String>>,
    groups_claim: Option<String>,
    mode: Option<Mode>,
    #[serde(default)]
    users: BTreeMap<String, Mode>,
    #[serde(default)]
    groups: BTreeMap<String, Mode>,
    machine: Option<RawMachine>,
    login_timeout_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    token_file: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<String>,
}

/// A value in `[identity]` that is not valid: the dotted key and why.
/// `crate::config` turns it into its `ConfigError::Invalid`, with the path;
/// this module does not depend on `config`, so the dependency runs one way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl RawIdentity {
    /// Validates the section; `crate::config` names the file in the error.
    pub(crate) fn validate(self) -> Result<IdentityConfig, FieldError> {
        let invalid = |field: &str, reason: String| FieldError { field: format!("identity.{field}"), reason };
        let d = IdentityConfig::default();
        let issuer = match self.issuer {
            Some(v) if v.starts_with("https://") || v.starts_with("http://") => Some(v.trim_end_matches('/').to_owned()),
            Some(v) => return Err(invalid("issuer", format!("{v:?} is not an https:// URL"))),
            None => None,
        };
        let mode = self.mode.unwrap_or(if issuer.is_some() { Mode::Required } else { Mode::Off });
        if issuer.is_none() && (mode != Mode::Off || self.users.values().chain(self.groups.values()).any(|m| *m != Mode::Off)) {
            return Err(invalid("issuer", "a mode other than \"off\" needs an issuer".into()));
        }
        let client_id = self.client_id.unwrap_or(d.client_id);
        if client_id.is_empty() {
            return Err(invalid("client_id", "must not be empty".into()));
        }
        let scopes = self.scopes.unwrap_or(d.scopes);
        if !scopes.iter().any(|s| s == "openid") {
            return Err(invalid("scopes", "must include \"openid\"".into()));
        }
        let absolute = |field: &str, v: String| {
            if Path::new(&v).is_absolute() {
                Ok(PathBuf::from(v))
            } else {
                Err(invalid(field, format!("{v:?} is not an absolute path")))
            }
        };
        let machine = match self.machine {
            None => None,
            Some(RawMachine { token_file: Some(f), client_id: None, client_secret_file: None }) => {
                Some(MachineIdentity::TokenFile(absolute("machine.token_file", f)?))
            }
            Some(RawMachine { token_file: None, client_id: Some(id), client_secret_file: Some(f) }) => {
                Some(MachineIdentity::ClientCredentials { client_id: id, secret_file: absolute("machine.client_secret_file", f)? })
            }
            Some(_) => {
                return Err(invalid(
                    "machine",
                    "give either token_file, or client_id with client_secret_file".into(),
                ))
            }
        };
        let login_timeout_secs = match self.login_timeout_secs {
            Some(s) if (10..=3600).contains(&s) => s,
            Some(s) => return Err(invalid("login_timeout_secs", format!("{s} is not between 10 and 3600"))),
            None => d.login_timeout_secs,
        };
        Ok(IdentityConfig {
            issuer,
            client_id,
            scopes,
            groups_claim: self.groups_claim.unwrap_or(d.groups_claim),
            mode,
            users: self.users,
            groups: self.groups,
            machine,
            login_timeout_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use rstest::rstest;

    #[test]
    fn modes_resolve_user_then_group_then_default() {
        let c = Config::parse(
            "[identity]\nissuer = \"https://idp.test\"\nmode = \"required\"\n[identity.users]\nci = \"off\"\n[identity.groups]\ncontractors = \"optional\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let id = &c.identity;
        assert_eq!(id.mode_for("ci", &["contractors".into()]), Mode::Off);
        assert_eq!(id.mode_for("bob", &["contractors".into()]), Mode::Optional);
        assert_eq!(id.mode_for("alice", &[]), Mode::Required);
        assert_eq!(Config::default().identity.mode_for("alice", &[]), Mode::Off);
    }

    #[test]
    fn machine_identity_takes_one_of_two_forms() {
        let c = Config::parse(
            "[identity]\nissuer = \"https://idp.test\"\n[identity.machine]\ntoken_file = \"/etc/custos/m.jwt\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.identity.machine, Some(MachineIdentity::TokenFile("/etc/custos/m.jwt".into())));
        assert_eq!(c.identity.mode, Mode::Required);
    }

    #[rstest]
    #[case::mode_without_issuer("[identity]\nmode = \"required\"\n", "identity.issuer: a mode other than \"off\" needs an issuer")]
    #[case::not_a_url("[identity]\nissuer = \"idp.test\"\n", "identity.issuer: \"idp.test\" is not an https:// URL")]
    #[case::bad_mode("[identity]\nissuer = \"https://i\"\nmode = \"maybe\"\n", "unknown variant `maybe`")]
    #[case::no_openid("[identity]\nissuer = \"https://i\"\nscopes = [\"email\"]\n", "identity.scopes: must include \"openid\"")]
    #[case::both_machines(
        "[identity]\nissuer = \"https://i\"\n[identity.machine]\ntoken_file = \"/t\"\nclient_id = \"c\"\n",
        "identity.machine: give either token_file"
    )]
    #[case::relative_token("[identity]\nissuer = \"https://i\"\n[identity.machine]\ntoken_file = \"t\"\n", "identity.machine.token_file")]
    #[case::unknown_key("[identity]\nissuer = \"https://i\"\nclaim = \"g\"\n", "unknown field `claim`")]
    #[case::timeout("[identity]\nissuer = \"https://i\"\nlogin_timeout_secs = 1\n", "identity.login_timeout_secs")]
    fn bad_identity_config_is_a_clear_error(#[case] text: &str, #[case] expected: &str) {
        let err = Config::parse(text, Path::new("/etc/custos/custos.toml")).unwrap_err().to_string();
        assert!(err.contains(expected), "{err:?} should mention {expected:?}");
    }
}
