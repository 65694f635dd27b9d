//! The network half of identity: discovery, the device authorization grant
//! (RFC 8628), refresh, client credentials, and ID token verification, on
//! the `openidconnect` crate. Reached only from the `custos` binary (the
//! `identity` helper, `login`, the collector), never from `custos-shell`.
//!
//! Verification is the one piece both sides share: the helper checks what
//! the provider just gave it, and the collector re-checks the token in a
//! session header against the issuer's published keys, at the time the
//! session started (a session outlives its ID token; what matters is that
//! the token was valid when the shell began). A token signed by a key the
//! issuer does not list triggers one re-fetch of the key set, so a key
//! rotation at the provider is followed without a restart.

use std::str::FromStr as _;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreDeviceAuthorizationResponse,
    CoreGrantType, CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClaimsVerificationError, ClientId, ClientSecret, DeviceAuthorizationUrl, IssuerUrl,
    JsonWebKeySet, Nonce, OAuth2TokenResponse as _, ProviderMetadata, RefreshToken, Scope, SignatureVerificationError,
};
use serde::{Deserialize, Serialize};

use super::{Identity, Obtained};

#[derive(Clone, Debug, Deserialize, Serialize)]
struct DeviceEndpoint {
    device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
}
impl AdditionalProviderMetadata for DeviceEndpoint {}

type Metadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Why the provider could not give or confirm an identity.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("cannot reach the identity provider {issuer}: {reason}")]
    Unreachable { issuer: String, reason: String },
    #[error("the identity provider {issuer} does not offer the device authorization grant")]
    NoDeviceFlow { issuer: String },
    #[error("the identity provider refused: {0}")]
    Refused(String),
    #[error("sign-in was not completed within {0} seconds")]
    TimedOut(u64),
    #[error("the provider's answer has no ID token (is \"openid\" among the scopes?)")]
    NoIdToken,
    #[error(transparent)]
    Rejected(#[from] VerifyError),
}

/// Why an ID token was not accepted. Each names the check that failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("ID token rejected: it is not a well-formed signed JWT ({0})")]
    Malformed(String),
    #[error("ID token rejected: wrong issuer ({0})")]
    WrongIssuer(String),
    #[error("ID token rejected: wrong audience, it was not issued to this client ({0})")]
    WrongAudience(String),
    #[error("ID token rejected: expired ({0})")]
    Expired(String),
    #[error("ID token rejected: signed by a key the issuer does not publish")]
    UnknownKey,
    #[error("ID token rejected: the signature does not verify ({0})")]
    BadSignature(String),
    #[error("ID token rejected: {0}")]
    Other(String),
}

impl From<ClaimsVerificationError> for VerifyError {
    fn from(e: ClaimsVerificationError) -> Self {
        match e {
            ClaimsVerificationError::Expired(m) => Self::Expired(m),
            ClaimsVerificationError::InvalidAudience(m) => Self::WrongAudience(m),
            ClaimsVerificationError::InvalidIssuer(m) => Self::WrongIssuer(m),
            ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey) => Self::UnknownKey,
            ClaimsVerificationError::SignatureVerification(s) => Self::BadSignature(s.to_string()),
            other => Self::Other(other.to_string()),
        }
    }
}

/// What the provider hands back after a sign-in or a refresh.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub id_token: String,
    pub refresh_token: Option<String>,
}

/// What the user is shown to sign in.
#[derive(Clone, Debug)]
pub struct Prompt {
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
}

/// A discovered provider, for one client.
pub struct Provider {
    issuer: String,
    client_id: String,
    meta: Metadata,
    http: reqwest::Client,
}

fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        // Redirects from a provider's endpoints are an SSRF vector.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .build()
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

impl Provider {
    /// Fetches the discovery document and the key set of `issuer`.
    pub async fn discover(issuer: &str, client_id: &str) -> Result<Self, OidcError> {
        let unreachable = |reason: String| OidcError::Unreachable { issuer: issuer.to_owned(), reason };
        let url = IssuerUrl::new(issuer.to_owned()).map_err(|e| unreachable(e.to_string()))?;
        let http = http_client().map_err(|e| unreachable(e.to_string()))?;
        let meta = Metadata::discover_async(url, &http).await.map_err(|e| unreachable(chain(&e)))?;
        Ok(Self { issuer: issuer.to_owned(), client_id: client_id.to_owned(), meta, http })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn client(&self) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(self.meta.clone(), ClientId::new(self.client_id.clone()), None)
    }

    fn refused(e: &dyn std::error::Error) -> OidcError {
        OidcError::Refused(chain(e))
    }

    /// The device authorization grant: asks for a user code, calls `show`
    /// with what the user must open, then polls until the user has signed
    /// in, the code expires, or `timeout` passes.
    pub async fn device_login(
        &self,
        scopes: &[String],
        timeout: Duration,
        show: impl FnOnce(&Prompt),
    ) -> Result<Tokens, OidcError> {
        let device_url = self
            .meta
            .additional_metadata()
            .device_authorization_endpoint
            .clone()
            .ok_or_else(|| OidcError::NoDeviceFlow { issuer: self.issuer.clone() })?;
        let client = self.client().set_device_authorization_url(device_url);
        let details: CoreDeviceAuthorizationResponse = client
            .exchange_device_code()
            // The client adds "openid" itself.
            .add_scopes(scopes.iter().filter(|s| *s != "openid").map(|s| Scope::new(s.clone())))
            .request_async(&self.http)
            .await
            .map_err(|e| Self::refused(&e))?;
        show(&Prompt {
            verification_uri: details.verification_uri().to_string(),
            verification_uri_complete: details.verification_uri_complete().map(|u| u.secret().clone()),
            user_code: details.user_code().secret().clone(),
        });
        let request = client.exchange_device_access_token(&details).map_err(|e| Self::refused(&e))?;
        let poll = request.request_async(&self.http, tokio::time::sleep, Some(timeout));
        let token = tokio::time::timeout(timeout + Duration::from_secs(1), poll)
            .await
            .map_err(|_| OidcError::TimedOut(timeout.as_secs()))?
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(ref r)
                    if r.error().to_string() == "expired_token" =>
                {
                    OidcError::TimedOut(timeout.as_secs())
                }
                other => Self::refused(&other),
            })?;
        let id_token = token.extra_fields().id_token().ok_or(OidcError::NoIdToken)?.to_string();
        Ok(Tokens { id_token, refresh_token: token.refresh_token().map(|r| r.secret().clone()) })
    }

    /// Trades a refresh token for fresh tokens, with no prompt.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, OidcError> {
        let rt = RefreshToken::new(refresh_token.to_owned());
        let client = self.client();
        let token = client
            .exchange_refresh_token(&rt)
            .map_err(|e| Self::refused(&e))?
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::Request(ref r) => {
                    OidcError::Unreachable { issuer: self.issuer.clone(), reason: chain(r) }
                }
                other => Self::refused(&other),
            })?;
        let id_token = token.extra_fields().id_token().ok_or(OidcError::NoIdToken)?.to_string();
        // Providers may rotate the refresh token; keep the old one if not.
        let refresh = token.refresh_token().map_or_else(|| refresh_token.to_owned(), |r| r.secret().clone());
        Ok(Tokens { id_token, refresh_token: Some(refresh) })
    }

    /// The client credentials grant: proves a machine client, not a person.
    /// Returns the access token's lifetime end, if the provider said.
    pub async fn client_credentials(&self, client_id: &str, secret: &str) -> Result<Option<u64>, OidcError> {
        let client = CoreClient::from_provider_metadata(
            self.meta.clone(),
            ClientId::new(client_id.to_owned()),
            Some(ClientSecret::new(secret.to_owned())),
        );
        let token = client
            .exchange_client_credentials()
            .map_err(|e| Self::refused(&e))?
            .request_async(&self.http)
            .await
            .map_err(|e| Self::refused(&e))?;
        Ok(token.expires_in().map(|d| crate::when::unix_now() + d.as_secs()))
    }

    fn verifier(&self, keys: JsonWebKeySet<CoreJsonWebKey>, at: u64) -> CoreIdTokenVerifier<'static> {
        let at = chrono_at(at);
        CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.client_id.clone()),
            self.meta.issuer().clone(),
            keys,
        )
        .set_time_fn(move || at)
    }

    /// Verifies `raw` (signature, issuer, audience, expiry at `at`, unix
    /// seconds) and reads the identity from it. An unknown key re-fetches the
    /// issuer's key set once.
    pub async fn verify(&mut self, raw: &str, at: u64, groups_claim: &str, obtained: Obtained) -> Result<Identity, VerifyError> {
        let token = CoreIdToken::from_str(raw).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        let no_nonce = |_: Option<&Nonce>| -> Result<(), String> { Ok(()) };
        let first = token.claims(&self.verifier(self.meta.jwks().clone(), at), no_nonce).map(|_| ()).map_err(VerifyError::from);
        match first {
            Ok(()) => {}
            Err(VerifyError::UnknownKey) => {
                // A fresh connection: a provider that rotated its key may
                // have restarted, leaving pooled connections dead.
                let http = http_client().map_err(|e| VerifyError::Other(e.to_string()))?;
                let keys = JsonWebKeySet::fetch_async(self.meta.jwks_uri(), &http)
                    .await
                    .map_err(|e| VerifyError::Other(format!("cannot re-fetch the issuer's keys: {}", chain(&e))))?;
                self.meta = self.meta.clone().set_jwks(keys);
                token.claims(&self.verifier(self.meta.jwks().clone(), at), no_nonce).map_err(VerifyError::from)?;
            }
            Err(e) => return Err(e),
        }
        identity_from_payload(raw, groups_claim, obtained, true).map_err(VerifyError::Malformed)
    }
}

fn chrono_at(at: u64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(i64::try_from(at).unwrap_or(i64::MAX), 0).unwrap_or_default()
}

/// Reads issuer, subject, email, name, groups and expiry from a JWT's
/// payload. Verification is the caller's business; this only decodes.
pub fn identity_from_payload(raw: &str, groups_claim: &str, obtained: Obtained, verified: bool) -> Result<Identity, String> {
    use base64::Engine as _;
    let payload = raw.split('.').nth(1).ok_or("no payload part")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| format!("payload is not base64url: {e}"))?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("payload is not JSON: {e}"))?;
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let groups = match claims.get(groups_claim) {
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    Ok(Identity {
        verified,
        issuer: text("iss").ok_or("no iss claim")?,
        subject: text("sub").ok_or("no sub claim")?,
        email: text("email"),
        name: text("name"),
        groups,
        obtained,
        id_token: Some(raw.to_owned()),
        expires_at: claims.get("exp").and_then(serde_json::Value::as_u64),
    })
}
