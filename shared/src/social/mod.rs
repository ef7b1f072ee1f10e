//! Social / OpenID Connect sign-in: the providers' settings ([`config`]), the HTTPS client that
//! talks to them ([`http`]), and [`Federation`], which turns a provider's authorization code into
//! what the provider vouches for ([`Profile`]): for OpenID Connect providers by a fully verified
//! ID token (signature by the issuer's published keys, `iss`, `aud`, `azp`, `exp`/`iat` with
//! leeway, `nonce`), for GitHub through its API. ID tokens are verified with `jsonwebtoken`, the
//! crate that already signs Gatehouse's own tokens (the `openidconnect` crate would bring its own
//! HTTP stack and twice the code for the same checks). Discovery documents and key sets are
//! kept for the life of the container, an hour at most; an unknown key id fetches the key set
//! again (at most once a minute), so a provider's key rotation is followed.

pub mod config;
pub mod http;
mod oidc;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use config::{ClientSecrets, Kind, Provider, SecretsSource};

/// The social sign-in settings.
#[derive(Clone, Debug)]
pub struct SocialSettings {
    pub providers: Vec<Provider>,
    /// Redirect URIs a sign-in may return to (`SOCIAL_REDIRECT_URIS`), compared exactly; the
    /// account pages' own `/login` is allowed besides.
    pub redirect_uris: Vec<String>,
    pub secrets: SecretsSource,
    /// Sign-ins started per IP (`RATE_SOCIAL_IP`): each writes a state item.
    pub rate_ip: Option<crate::config::Rate>,
}

impl SocialSettings {
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }
}

impl SecretsSource {
    /// The secrets when given in the settings (none when unset or in Secrets Manager).
    pub fn inline(&self) -> Arc<ClientSecrets> {
        match self {
            Self::Inline(s) => s.clone(),
            _ => Arc::default(),
        }
    }
}

/// What a provider vouches for about the account that signed in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// The provider's stable id of the account.
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider says it verified `email` (and is believed on that).
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
}

/// Why a provider sign-in did not give a profile.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// The provider refused (a wrong, used or expired code) or answered something that does not
    /// verify: the sign-in fails (400).
    #[error("refused: {0}")]
    Refused(String),
    /// The provider could not be reached or answered an error of its own (503).
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

impl From<http::HttpError> for FederationError {
    fn from(e: http::HttpError) -> Self {
        Self::Unavailable(e.0)
    }
}

/// What a sign-in under way is bound to (kept in its state item, never sent to the client but
/// the nonce and the PKCE challenge made from the verifier).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    pub provider: String,
    pub redirect_uri: String,
    pub verifier: String,
    pub nonce: String,
}

struct Cached<T> {
    value: Arc<T>,
    fetched_at: i64,
}

impl<T> Clone for Cached<T> {
    fn clone(&self) -> Self {
        Self { value: self.value.clone(), fetched_at: self.fetched_at }
    }
}

/// The providers' documents and keys as last fetched, and the HTTPS client: one per container.
#[derive(Default)]
pub struct Federation {
    http: http::HttpClient,
    discovery: Mutex<HashMap<String, Cached<oidc::Discovery>>>,
    keys: Mutex<HashMap<String, Cached<jsonwebtoken::jwk::JwkSet>>>,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation").field("http", &self.http).finish_non_exhaustive()
    }
}

/// How long a discovery document or key set is used before it is fetched again.
const CACHE_TTL: i64 = 3600;
/// Least time between two fetches of a key set for an unknown key id.
const REFETCH_AFTER: i64 = 60;

/// The S256 PKCE challenge of a verifier (RFC 7636).
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

impl Federation {
    pub fn new() -> Self {
        Self::default()
    }

    /// The provider's authorization URL for a sign-in bound to `pending`, carrying `state`.
    pub async fn authorization_url(
        &self,
        provider: &Provider,
        pending: &Pending,
        state: &str,
        now: i64,
    ) -> Result<String, FederationError> {
        let endpoint = match provider.kind {
            Kind::Github => provider.authorize_url.clone(),
            _ => self.discovery(provider, now).await?.authorization_endpoint.clone(),
        };
        let mut url = url::Url::parse(&endpoint)
            .map_err(|_| FederationError::Unavailable(format!("{}: authorization endpoint unusable", provider.name)))?;
        {
            let challenge = pkce_challenge(&pending.verifier);
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &provider.client_id)
                .append_pair("redirect_uri", &pending.redirect_uri)
                .append_pair("scope", &provider.scope)
                .append_pair("state", state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if provider.kind.is_oidc() {
                q.append_pair("nonce", &pending.nonce);
            }
            if provider.kind == Kind::Apple {
                // Apple posts the answer (and the name, on a first sign-in) to the redirect URI
                // when the scope asks for the name or the address.
                q.append_pair("response_mode", "form_post");
            }
        }
        Ok(url.into())
    }

    /// Exchanges the authorization code (with the PKCE verifier) and returns what the provider
    /// vouches for. `apple_user`: the `user` JSON Apple posts on a first sign-in (its name only
    /// is used).
    pub async fn profile(
        &self,
        provider: &Provider,
        secrets: &ClientSecrets,
        pending: &Pending,
        code: &str,
        apple_user: Option<&str>,
        now: i64,
    ) -> Result<Profile, FederationError> {
        match provider.kind {
            Kind::Github => {
                oidc::github_profile(&self.http, provider, secrets.get(&provider.name), pending, code).await
            }
            _ => {
                let mut profile = self.oidc_profile(provider, secrets, pending, code, now).await?;
                if provider.kind == Kind::Apple && profile.first_name.is_empty() {
                    if let Some((first, last)) = apple_user.and_then(oidc::apple_name) {
                        profile.first_name = first;
                        profile.last_name = last;
                    }
                }
                Ok(profile)
            }
        }
    }
}
