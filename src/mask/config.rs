//! The `[masking]` section: raw TOML in, a validated [`MaskingConfig`] out.
//!
//! Built-in detectors are on unless listed in `disabled`, so a detector added
//! in a later release protects existing installations without anyone editing
//! their config (an allow-list would silently leave it off). `email` is the
//! one detector that is off by default, because addresses are rarely secret
//! and appear in prompts and git logs; it has its own switch.
//!
//! Custom rules are compiled here once to reject a bad pattern at load time
//! with the rule's name and line, rather than when the first session starts.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use unicode_width::UnicodeWidthChar as _;

/// Longest hold-back window accepted. A longer hold would make typing over a
/// slow link feel broken, and the hold only guards against secrets arriving
/// in pieces a few milliseconds apart.
pub const MAX_HOLD_MS: u64 = 500;

/// Longest custom pattern accepted, and the compiled-size cap: a rule is
/// applied to every line of every session, so an accidental exponential
/// pattern must fail at load, not slow every frame.
pub const MAX_RULE_LEN: usize = 1024;
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A built-in detector, named in config and in findings by its snake_case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DetectorId {
    Card,
    UsSsn,
    Iban,
    AwsAccessKeyId,
    AwsSecretAccessKey,
    GithubToken,
    SlackToken,
    StripeKey,
    GoogleApiKey,
    Jwt,
    PemPrivateKey,
    UrlPassword,
    Assignment,
    K8sSecretData,
    Email,
    AiApiKey,
    RegistryToken,
    CiToken,
    MessagingApiKey,
    ChatToken,
    CliPassword,
    ConnectionString,
}

impl DetectorId {
    /// Every built-in, in the order the docs list them.
    pub const ALL: [DetectorId; 22] = [
        Self::Card,
        Self::UsSsn,
        Self::Iban,
        Self::AwsAccessKeyId,
        Self::AwsSecretAccessKey,
        Self::GithubToken,
        Self::SlackToken,
        Self::StripeKey,
        Self::GoogleApiKey,
        Self::Jwt,
        Self::PemPrivateKey,
        Self::UrlPassword,
        Self::Assignment,
        Self::K8sSecretData,
        Self::Email,
        Self::AiApiKey,
        Self::RegistryToken,
        Self::CiToken,
        Self::MessagingApiKey,
        Self::ChatToken,
        Self::CliPassword,
        Self::ConnectionString,
    ];

    /// The name used in config, in findings and by `custos mask --explain`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::UsSsn => "us_ssn",
            Self::Iban => "iban",
            Self::AwsAccessKeyId => "aws_access_key_id",
            Self::AwsSecretAccessKey => "aws_secret_access_key",
            Self::GithubToken => "github_token",
            Self::SlackToken => "slack_token",
            Self::StripeKey => "stripe_key",
            Self::GoogleApiKey => "google_api_key",
            Self::Jwt => "jwt",
            Self::PemPrivateKey => "pem_private_key",
            Self::UrlPassword => "url_password",
            Self::Assignment => "assignment",
            Self::K8sSecretData => "k8s_secret_data",
            Self::Email => "email",
            Self::AiApiKey => "ai_api_key",
            Self::RegistryToken => "registry_token",
            Self::CiToken => "ci_token",
            Self::MessagingApiKey => "messaging_api_key",
            Self::ChatToken => "chat_token",
            Self::CliPassword => "cli_password",
            Self::ConnectionString => "connection_string",
        }
    }

    /// The built-ins on when nothing is configured: all but `email`.
    pub fn defaults() -> BTreeSet<DetectorId> {
        Self::ALL.into_iter().filter(|d| *d != Self::Email).collect()
    }
}

impl fmt::Display for DetectorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DetectorId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|d| d.name() == s).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|d| d.name()).collect();
            format!("unknown detector {s:?} (known: {})", known.join(", "))
        })
    }
}

/// A checksum a custom rule's masked text must pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksum {
    /// Luhn mod 10 over the digits (separators ' ' and '-' are skipped).
    Luhn,
    /// ISO 7064 mod 97-10 as IBANs use it (spaces are skipped).
    Mod97,
}

/// Which part of a custom rule's match is masked.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Group {
    Index(usize),
    Name(String),
}

/// An operator's own detector from `[[masking.rules]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomRule {
    /// Shown in findings; must be unique and non-empty.
    pub name: String,
    /// A `regex` crate pattern.
    pub regex: String,
    pub checksum: Option<Checksum>,
    /// A word that must appear on the same line (ASCII case-insensitive).
    pub context: Option<String>,
    /// Capture group to mask; `None` masks the whole match.
    pub group: Option<Group>,
}

/// Validated masking configuration (`config::Config::masking`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskingConfig {
    pub enabled: bool,
    /// One glyph per masked cell; a printable character one cell wide.
    pub glyph: char,
    /// How long a tail that may still grow into a secret is held back.
    pub hold_ms: u64,
    /// The enabled built-ins (`email` included only when `email = true`).
    pub detectors: BTreeSet<DetectorId>,
    pub custom: Vec<CustomRule>,
    pub email: bool,
}

impl Default for MaskingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            glyph: '*',
            hold_ms: 30,
            detectors: DetectorId::defaults(),
            custom: Vec::new(),
            email: false,
        }
    }
}

/// A rejected `[masking]` value: which key and why. `config.rs` adds the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMasking {
    enabled: Option<bool>,
    glyph: Option<String>,
    hold_ms: Option<i64>,
    disabled: Option<Vec<String>>,
    email: Option<bool>,
    #[serde(default)]
    rules: Vec<toml::Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    regex: String,
    checksum: Option<String>,
    context: Option<String>,
    group: Option<Group>,
}

impl RawMasking {
    /// Validates; `text` is the whole file, used only to turn a rule's byte
    /// span into a line number for the error.
    pub(crate) fn validate(self, text: &str) -> Result<MaskingConfig, FieldError> {
        let defaults = MaskingConfig::default();
        let err = |field: String, reason: String| FieldError { field, reason };
        let glyph = match self.glyph {
            None => defaults.glyph,
            Some(g) => parse_glyph(&g).map_err(|r| err("masking.glyph".into(), r))?,
        };
        let hold_ms = match self.hold_ms {
            None => defaults.hold_ms,
            Some(ms) => u64::try_from(ms).ok().filter(|ms| *ms <= MAX_HOLD_MS).ok_or_else(|| {
                err("masking.hold_ms".into(), format!("{ms} is outside 0..={MAX_HOLD_MS}"))
            })?,
        };
        let email = self.email.unwrap_or(defaults.email);
        let mut detectors = DetectorId::defaults();
        for name in self.disabled.unwrap_or_default() {
            let id: DetectorId = name.parse().map_err(|r| err("masking.disabled".into(), r))?;
            if id == DetectorId::Email {
                return Err(err(
                    "masking.disabled".into(),
                    "\"email\" is off unless `email = true`; set `email = false` instead".into(),
                ));
            }
            detectors.remove(&id);
        }
        if email {
            detectors.insert(DetectorId::Email);
        }
        let mut custom: Vec<CustomRule> = Vec::new();
        for (i, spanned) in self.rules.into_iter().enumerate() {
            let line = line_of(text, spanned.span().start);
            let raw = spanned.into_inner();
            let field = format!("masking.rules[{i}] {:?} (line {line})", raw.name);
            let rule = raw.validate().map_err(|r| err(field.clone(), r))?;
            if custom.iter().any(|c| c.name == rule.name)
                || DetectorId::ALL.iter().any(|d| d.name() == rule.name)
            {
                return Err(err(field, "name is already used by another rule or a built-in detector".into()));
            }
            custom.push(rule);
        }
        Ok(MaskingConfig { enabled: self.enabled.unwrap_or(defaults.enabled), glyph, hold_ms, detectors, custom, email })
    }
}

impl RawRule {
    fn validate(self) -> Result<CustomRule, String> {
        let rule = CustomRule {
            name: self.name,
            regex: self.regex,
            checksum: match self.checksum.as_deref() {
                None => None,
                Some("luhn") => Some(Checksum::Luhn),
                Some("mod97") => Some(Checksum::Mod97),
                Some(other) => return Err(format!("checksum {other:?} is not one of \"luhn\", \"mod97\"")),
            },
            context: self.context,
            group: self.group,
        };
        check_rule(&rule)?;
        Ok(rule)
    }
}

/// Everything about a custom rule that can be wrong, checked by compiling
/// it. Shared by config validation and `Detectors::new` (a `MaskingConfig`
/// can be built in code too). Returns the compiled pattern.
pub(crate) fn check_rule(rule: &CustomRule) -> Result<regex::Regex, String> {
    if rule.name.trim().is_empty() || rule.name.chars().any(char::is_control) {
        return Err("name must be non-empty printable text".into());
    }
    if rule.context.as_deref().is_some_and(|c| c.trim().is_empty()) {
        return Err("context must not be empty (leave it out instead)".into());
    }
    if rule.regex.len() > MAX_RULE_LEN {
        return Err(format!("regex is longer than {MAX_RULE_LEN} bytes"));
    }
    let re = regex::RegexBuilder::new(&rule.regex)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("regex does not compile: {}", one_line(&e.to_string())))?;
    if re.is_match("") {
        return Err("regex matches the empty string, so it would match everywhere".into());
    }
    match &rule.group {
        None => {}
        Some(Group::Index(n)) if *n < re.captures_len() => {}
        Some(Group::Index(n)) => {
            return Err(format!("group {n} does not exist (the regex has {} groups)", re.captures_len() - 1));
        }
        Some(Group::Name(name)) if re.capture_names().any(|g| g == Some(name.as_str())) => {}
        Some(Group::Name(name)) => return Err(format!("the regex has no group named {name:?}")),
    }
    Ok(re)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_glyph(g: &str) -> Result<char, String> {
    let mut chars = g.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return Err(format!("{g:?} must be exactly one character"));
    };
    if c.is_control() {
        return Err(format!("{c:?} is a control character"));
    }
    match c.width() {
        Some(1) => Ok(c),
        _ => Err(format!("{c:?} is not one cell wide, so masked text would shift the layout")),
    }
}

/// 1-based line number of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).map_or(0, |t| t.bytes().filter(|b| *b == b'\n').count()) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn parse(text: &str) -> Result<MaskingConfig, FieldError> {
        #[derive(Deserialize)]
        struct Wrap {
            masking: RawMasking,
        }
        let w: Wrap = toml::from_str(text).unwrap();
        w.masking.validate(text)
    }

    #[test]
    fn disabled_removes_and_email_adds() {
        let c = parse("[masking]\ndisabled = [\"card\", \"iban\"]\nemail = true\n").unwrap();
        assert!(!c.detectors.contains(&DetectorId::Card));
        assert!(!c.detectors.contains(&DetectorId::Iban));
        assert!(c.detectors.contains(&DetectorId::Email));
        assert!(c.detectors.contains(&DetectorId::Jwt));
    }

    #[test]
    fn a_custom_rule_is_kept_as_written() {
        let c = parse("[masking]\n[[masking.rules]]\nname = \"ticket\"\nregex = 'TKT-([0-9A-F]{16})'\nchecksum = \"luhn\"\ncontext = \"tkt\"\ngroup = 1\n").unwrap();
        assert_eq!(
            c.custom,
            vec![CustomRule {
                name: "ticket".into(),
                regex: "TKT-([0-9A-F]{16})".into(),
                checksum: Some(Checksum::Luhn),
                context: Some("tkt".into()),
                group: Some(Group::Index(1)),
            }]
        );
    }

    #[rstest]
    #[case::wide_glyph("glyph = \"漢\"", "masking.glyph", "not one cell wide")]
    #[case::two_glyphs("glyph = \"**\"", "masking.glyph", "exactly one character")]
    #[case::control_glyph("glyph = \"\\u0007\"", "masking.glyph", "control character")]
    #[case::combining_glyph("glyph = \"\\u0301\"", "masking.glyph", "not one cell wide")]
    #[case::hold_too_long("hold_ms = 501", "masking.hold_ms", "outside 0..=500")]
    #[case::hold_negative("hold_ms = -1", "masking.hold_ms", "outside")]
    #[case::unknown_detector("disabled = [\"crad\"]", "masking.disabled", "unknown detector \"crad\" (known: card,")]
    #[case::email_in_disabled("disabled = [\"email\"]", "masking.disabled", "email = false")]
    #[case::bad_regex(
        "\n\n[[masking.rules]]\nname = \"t\"\nregex = 'TKT-[0-9'\n",
        "masking.rules[0] \"t\" (line 4)",
        "regex does not compile"
    )]
    #[case::empty_match("[[masking.rules]]\nname = \"t\"\nregex = 'a*'\n", "masking.rules[0]", "empty string")]
    #[case::bad_group("[[masking.rules]]\nname = \"t\"\nregex = 'a(b)'\ngroup = 2\n", "masking.rules[0]", "group 2 does not exist")]
    #[case::bad_named_group("[[masking.rules]]\nname = \"t\"\nregex = 'a(?P<v>b)'\ngroup = \"w\"\n", "masking.rules[0]", "no group named \"w\"")]
    #[case::bad_checksum("[[masking.rules]]\nname = \"t\"\nregex = 'a'\nchecksum = \"crc\"\n", "masking.rules[0]", "checksum \"crc\"")]
    #[case::builtin_name("[[masking.rules]]\nname = \"card\"\nregex = 'a'\n", "masking.rules[0]", "already used")]
    #[case::duplicate_name(
        "[[masking.rules]]\nname = \"t\"\nregex = 'a'\n[[masking.rules]]\nname = \"t\"\nregex = 'b'\n",
        "masking.rules[1] \"t\" (line 5)",
        "already used"
    )]
    fn bad_masking_config_names_the_key(#[case] body: &str, #[case] field: &str, #[case] reason: &str) {
        let err = parse(&format!("[masking]\n{body}\n")).unwrap_err();
        assert!(err.field.starts_with(field), "{err:?} should name {field:?}");
        assert!(err.reason.contains(reason), "{err:?} should say {reason:?}");
    }

    #[rstest]
    #[case("*")]
    #[case("•")]
    #[case("#")]
    #[case("█")]
    fn narrow_glyphs_are_accepted(#[case] g: &str) {
        assert_eq!(parse(&format!("[masking]\nglyph = \"{g}\"\n")).unwrap().glyph.to_string(), g);
    }
}
