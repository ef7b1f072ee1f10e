//! The providers' settings: `SOCIAL_PROVIDERS`, `SOCIAL_REDIRECT_URIS`, and where the client
//! secrets are (`SOCIAL_CLIENT_SECRETS` or `SOCIAL_CLIENT_SECRETS_SECRET_ARN`).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::config::ConfigError;

/// How a provider is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Any OpenID Connect provider, by its issuer's discovery document.
    Oidc,
    Google,
    /// Microsoft identity platform (v2.0): a tenant's issuer, or `common` / `organizations` /
    /// `consumers` with the issuer checked against the token's own tenant.
    Microsoft,
    /// Sign in with Apple: `form_post`, an ES256 JWT as the client secret, the name only on the
    /// first sign-in (in the `user` field the browser posts).
    Apple,
    /// GitHub's OAuth 2.0 (not OpenID Connect): the user and its verified primary address from
    /// its API.
    Github,
}

impl Kind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "oidc" => Self::Oidc,
            "google" => Self::Google,
            "microsoft" => Self::Microsoft,
            "apple" => Self::Apple,
            "github" => Self::Github,
            _ => return None,
        })
    }

    pub fn is_oidc(self) -> bool {
        self != Self::Github
    }
}

/// One configured provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    pub kind: Kind,
    pub client_id: String,
    /// OpenID Connect: the issuer whose discovery document is read (Microsoft: with `{tenantid}`
    /// standing for the token's tenant when the tenant is not a fixed one).
    pub issuer: String,
    pub scope: String,
    pub label: String,
    /// Whether the provider's `email_verified` may be believed (never for a provider that does
    /// not verify addresses: it then never finds an account by address).
    pub trust_email: bool,
    /// Microsoft's tenant (`common`, `organizations`, `consumers` or a tenant id).
    pub tenant: String,
    /// Apple: the team and key ids the client secret JWT is made with.
    pub team_id: String,
    pub key_id: String,
    /// GitHub's endpoints (overridable for tests and GitHub Enterprise).
    pub authorize_url: String,
    pub token_url: String,
    pub api_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    client_id: String,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    trust_email: Option<bool>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    authorize_url: Option<String>,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    api_url: Option<String>,
}

const VAR: &str = "SOCIAL_PROVIDERS";

/// Whether `url` may be called: https, or http to this machine (the tests' local provider).
pub fn allowed_url(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else { return false };
    match parsed.scheme() {
        "https" => parsed.host().is_some(),
        "http" => matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
        _ => false,
    }
}

fn url_setting(name: &str, field: &str, value: Option<String>, default: &str) -> Result<String, ConfigError> {
    // Kept as given: an issuer is compared exactly (Auth0's ends with `/`).
    let v = value.unwrap_or_else(|| default.to_owned());
    if !allowed_url(&v) {
        return Err(ConfigError::new(
            VAR,
            format!("{name}: {field} {v:?} is not an https URL (http only for 127.0.0.1 or localhost)"),
        ));
    }
    Ok(v)
}

/// Parses `SOCIAL_PROVIDERS` (unset or empty: no providers).
pub fn providers(raw: Option<&str>) -> Result<Vec<Provider>, ConfigError> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(Vec::new()) };
    let map: BTreeMap<String, Raw> = serde_json::from_str(raw)
        .map_err(|e| ConfigError::new(VAR, format!("not a JSON object of provider name to settings ({e})")))?;
    let mut out = Vec::new();
    for (name, r) in map {
        let name_ok = !name.is_empty()
            && name.len() <= 32
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(ConfigError::new(VAR, format!("provider name {name:?}: use 1 to 32 of a-z, 0-9, _ and -")));
        }
        let kind_name =
            r.kind.clone().unwrap_or_else(|| if Kind::parse(&name).is_some() { name.clone() } else { "oidc".into() });
        let kind = Kind::parse(&kind_name).ok_or_else(|| {
            ConfigError::new(
                VAR,
                format!("{name}: type {kind_name:?} is not one of oidc, google, microsoft, apple, github"),
            )
        })?;
        if r.client_id.trim().is_empty() {
            return Err(ConfigError::new(VAR, format!("{name}: client_id is empty")));
        }
        let tenant = r.tenant.clone().unwrap_or_else(|| "common".into());
        if kind == Kind::Microsoft
            && (tenant.is_empty() || !tenant.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        {
            return Err(ConfigError::new(VAR, format!("{name}: tenant {tenant:?} is not a tenant id or name")));
        }
        let issuer = match kind {
            Kind::Oidc => {
                let Some(issuer) = r.issuer.clone() else {
                    return Err(ConfigError::new(
                        VAR,
                        format!("{name}: issuer is required for an OpenID Connect provider"),
                    ));
                };
                url_setting(&name, "issuer", Some(issuer), "")?
            }
            Kind::Google => url_setting(&name, "issuer", r.issuer.clone(), "https://accounts.google.com")?,
            Kind::Microsoft => url_setting(
                &name,
                "issuer",
                r.issuer.clone(),
                &format!("https://login.microsoftonline.com/{tenant}/v2.0"),
            )?,
            Kind::Apple => url_setting(&name, "issuer", r.issuer.clone(), "https://appleid.apple.com")?,
            Kind::Github => String::new(),
        };
        if kind == Kind::Apple
            && (r.team_id.as_deref().unwrap_or("").is_empty() || r.key_id.as_deref().unwrap_or("").is_empty())
        {
            return Err(ConfigError::new(
                VAR,
                format!("{name}: team_id and key_id are required for Sign in with Apple"),
            ));
        }
        let (default_scope, default_label) = match kind {
            Kind::Oidc => ("openid email profile", name.as_str()),
            Kind::Google => ("openid email profile", "Google"),
            Kind::Microsoft => ("openid email profile", "Microsoft"),
            Kind::Apple => ("name email", "Apple"),
            Kind::Github => ("read:user user:email", "GitHub"),
        };
        let github = kind == Kind::Github;
        out.push(Provider {
            kind,
            client_id: r.client_id.trim().to_owned(),
            issuer,
            scope: r.scope.unwrap_or_else(|| default_scope.into()),
            label: r.label.unwrap_or_else(|| default_label.into()),
            trust_email: r.trust_email.unwrap_or(true),
            tenant,
            team_id: r.team_id.unwrap_or_default(),
            key_id: r.key_id.unwrap_or_default(),
            authorize_url: if github {
                url_setting(&name, "authorize_url", r.authorize_url, "https://github.com/login/oauth/authorize")?
            } else {
                String::new()
            },
            token_url: if github {
                url_setting(&name, "token_url", r.token_url, "https://github.com/login/oauth/access_token")?
            } else {
                String::new()
            },
            api_url: if github {
                url_setting(&name, "api_url", r.api_url, "https://api.github.com")?
            } else {
                String::new()
            },
            name,
        });
    }
    Ok(out)
}

/// Parses `SOCIAL_REDIRECT_URIS`: absolute URIs without a fragment, compared exactly.
pub fn redirect_uris(raw: Option<&str>) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for uri in raw.unwrap_or("").split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let ok = url::Url::parse(uri).is_ok_and(|u| u.fragment().is_none());
        if !ok {
            return Err(ConfigError::new(
                "SOCIAL_REDIRECT_URIS",
                format!("{uri:?} is not an absolute URI without a fragment"),
            ));
        }
        out.push(uri.to_owned());
    }
    Ok(out)
}

/// The providers' client secrets, by provider name: a client secret, or for Apple the PEM of
/// the private key its client secret is signed with. Never printed.
#[derive(Clone, Default)]
pub struct ClientSecrets(pub BTreeMap<String, String>);

impl std::fmt::Debug for ClientSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ClientSecrets").field(&self.0.keys().collect::<Vec<_>>()).finish()
    }
}

impl ClientSecrets {
    /// Parses the JSON object of provider name to secret (the error never includes a value).
    pub fn parse(raw: &str) -> Result<Self, String> {
        serde_json::from_str::<BTreeMap<String, String>>(raw)
            .map(Self)
            .map_err(|_| "not a JSON object of provider name to secret string".to_owned())
    }

    pub fn get(&self, provider: &str) -> Option<&str> {
        self.0.get(provider).map(String::as_str).filter(|s| !s.is_empty())
    }
}

/// Where the client secrets come from.
#[derive(Clone, Debug)]
pub enum SecretsSource {
    None,
    Inline(Arc<ClientSecrets>),
    SecretsManager { arn: String },
}

/// Parses `SOCIAL_CLIENT_SECRETS` / `SOCIAL_CLIENT_SECRETS_SECRET_ARN`, checking that every
/// secret named is a provider's.
pub fn secrets(inline: Option<&str>, arn: Option<&str>, providers: &[Provider]) -> Result<SecretsSource, ConfigError> {
    match (inline.filter(|v| !v.trim().is_empty()), arn.filter(|v| !v.trim().is_empty())) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "SOCIAL_CLIENT_SECRETS",
            "set either SOCIAL_CLIENT_SECRETS or SOCIAL_CLIENT_SECRETS_SECRET_ARN, not both",
        )),
        (Some(raw), None) => {
            let secrets = ClientSecrets::parse(raw).map_err(|e| ConfigError::new("SOCIAL_CLIENT_SECRETS", e))?;
            if let Some(unknown) = secrets.0.keys().find(|k| !providers.iter().any(|p| &p.name == *k)) {
                return Err(ConfigError::new(
                    "SOCIAL_CLIENT_SECRETS",
                    format!("names {unknown:?}, which SOCIAL_PROVIDERS does not configure"),
                ));
            }
            Ok(SecretsSource::Inline(Arc::new(secrets)))
        }
        (None, Some(arn)) => {
            if !arn.starts_with("arn:") || !arn.contains(":secretsmanager:") {
                return Err(ConfigError::new(
                    "SOCIAL_CLIENT_SECRETS_SECRET_ARN",
                    "not the ARN of a Secrets Manager secret",
                ));
            }
            Ok(SecretsSource::SecretsManager { arn: arn.to_owned() })
        }
        (None, None) => Ok(SecretsSource::None),
    }
}
