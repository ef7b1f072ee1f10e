//! OpenID Connect (discovery, keys, the token exchange and the ID token's verification), Sign in
//! with Apple's client secret, and GitHub's OAuth 2.0 profile.

use std::sync::Arc;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::config::{allowed_url, Kind, Provider};
use super::http::HttpClient;
use super::{Cached, ClientSecrets, Federation, FederationError, Pending, Profile, CACHE_TTL, REFETCH_AFTER};

/// The parts of a discovery document Gatehouse uses.
#[derive(Debug, Deserialize)]
pub(super) struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

/// Whether two URLs are on the same host.
fn same_host(a: &str, b: &str) -> bool {
    let host = |u: &str| url::Url::parse(u).ok().and_then(|u| u.host_str().map(str::to_owned));
    host(a).is_some() && host(a) == host(b)
}

/// RFC 6749's HTTP Basic client authentication: both parts form-urlencoded first.
fn basic_auth(client_id: &str, secret: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret))))
}

/// How far a provider's clock may be from ours.
const LEEWAY: i64 = 60;
/// Microsoft's tenant of personal accounts.
const MICROSOFT_CONSUMERS: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
/// The algorithms an ID token may be signed with: the provider's public keys, never a shared
/// secret (HS*) and never none.
const ALGORITHMS: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn refused(why: impl Into<String>) -> FederationError {
    FederationError::Refused(why.into())
}

/// The claims of an ID token that Gatehouse reads.
#[derive(Debug, Deserialize)]
struct IdClaims {
    iss: String,
    sub: String,
    #[serde(default)]
    aud: Value,
    exp: i64,
    iat: i64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    email: Option<String>,
    /// A boolean, or (Apple) the string "true" / "false".
    #[serde(default)]
    email_verified: Option<Value>,
    /// Microsoft: the address's domain is verified by the tenant that owns it (optional claim).
    #[serde(default)]
    xms_edov: Option<Value>,
    /// Microsoft: the tenant the account signed in from.
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    family_name: Option<String>,
}

fn truthy(v: &Option<Value>) -> bool {
    matches!(v, Some(Value::Bool(true))) || matches!(v, Some(Value::String(s)) if s == "true")
}

impl Federation {
    /// The provider's discovery document (cached).
    pub(super) async fn discovery(&self, provider: &Provider, now: i64) -> Result<Arc<Discovery>, FederationError> {
        if let Some(c) = self.discovery.lock().ok().and_then(|m| m.get(&provider.name).cloned()) {
            if now - c.fetched_at < CACHE_TTL {
                return Ok(c.value);
            }
        }
        let url = format!("{}/.well-known/openid-configuration", provider.issuer.trim_end_matches('/'));
        let doc: Discovery = self.http.get(&url, &[]).await?.json("discovery document")?;
        let endpoints = [&doc.authorization_endpoint, &doc.token_endpoint, &doc.jwks_uri];
        if endpoints.iter().any(|u| !allowed_url(u)) {
            return Err(FederationError::Unavailable(format!(
                "{}: discovery names an endpoint that is not https",
                provider.name
            )));
        }
        // The document must be the issuer's own. Microsoft's name the tenant by its id (a tenant
        // configured by domain name or as `consumers`), or as `{tenantid}` for `common` and
        // `organizations`: any issuer on the host asked, each token then held to it.
        let issuer_ok = doc.issuer == provider.issuer
            || provider.kind == Kind::Microsoft && same_host(&doc.issuer, &provider.issuer);
        if !issuer_ok {
            return Err(FederationError::Unavailable(format!(
                "{}: discovery document of another issuer",
                provider.name
            )));
        }
        let doc = Arc::new(doc);
        if let Ok(mut m) = self.discovery.lock() {
            m.insert(provider.name.clone(), Cached { value: doc.clone(), fetched_at: now });
        }
        Ok(doc)
    }

    /// The key set at `uri` (cached); `fresh`: fetched again unless it was a minute ago.
    async fn key_set(&self, uri: &str, fresh: bool, now: i64) -> Result<Arc<JwkSet>, FederationError> {
        if let Some(c) = self.keys.lock().ok().and_then(|m| m.get(uri).cloned()) {
            let age = now - c.fetched_at;
            if age < CACHE_TTL && (!fresh || age < REFETCH_AFTER) {
                return Ok(c.value);
            }
        }
        let set: JwkSet = self.http.get(uri, &[]).await?.json("key set")?;
        let set = Arc::new(set);
        if let Ok(mut m) = self.keys.lock() {
            m.insert(uri.to_owned(), Cached { value: set.clone(), fetched_at: now });
        }
        Ok(set)
    }

    /// The key that signed a token with header `kid`.
    async fn decoding_key(&self, uri: &str, kid: Option<&str>, now: i64) -> Result<DecodingKey, FederationError> {
        for fresh in [false, true] {
            let set = self.key_set(uri, fresh, now).await?;
            let jwk = match kid {
                Some(kid) => set.find(kid),
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            };
            if let Some(jwk) = jwk {
                return DecodingKey::from_jwk(jwk).map_err(|e| refused(format!("provider key unusable: {e}")));
            }
        }
        Err(refused("the ID token's key is not among the provider's keys"))
    }

    /// The code exchanged at the token endpoint, and its ID token verified.
    pub(super) async fn oidc_profile(
        &self,
        provider: &Provider,
        secrets: &ClientSecrets,
        pending: &Pending,
        code: &str,
        now: i64,
    ) -> Result<Profile, FederationError> {
        let doc = self.discovery(provider, now).await?;
        let secret = match provider.kind {
            Kind::Apple => {
                let pem = secrets.get(&provider.name).ok_or_else(|| {
                    FederationError::Unavailable(format!("{}: no private key in the client secrets", provider.name))
                })?;
                Some(apple_client_secret(provider, pem, now)?)
            }
            _ => secrets.get(&provider.name).map(str::to_owned),
        };
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("client_id", provider.client_id.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        // The client authenticates as the provider allows: in the form when it says so, else with
        // HTTP Basic (OpenID Connect's default when the document names no method).
        let by_post = doc.token_endpoint_auth_methods_supported.iter().any(|m| m == "client_secret_post");
        let mut basic = None;
        match &secret {
            Some(secret) if by_post => form.push(("client_secret", secret.as_str())),
            Some(secret) => basic = Some(basic_auth(&provider.client_id, secret)),
            None => {}
        }
        let headers: Vec<(&str, &str)> = basic.iter().map(|b| ("authorization", b.as_str())).collect();
        let answer = self.http.post_form(&doc.token_endpoint, &form, &headers).await?;
        if (400..500).contains(&answer.status) {
            return Err(refused(format!("token endpoint refused the code: HTTP {}", answer.status)));
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            id_token: Option<String>,
        }
        let tokens: TokenAnswer = answer.json("token answer")?;
        let id_token = tokens.id_token.ok_or_else(|| refused("the token answer has no ID token"))?;
        self.verify_id_token(provider, &doc, &id_token, &pending.nonce, now).await
    }

    /// Verifies an ID token fully and reads the profile from it.
    async fn verify_id_token(
        &self,
        provider: &Provider,
        doc: &super::oidc::Discovery,
        token: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Profile, FederationError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| refused("the ID token is malformed"))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(refused(format!("ID token algorithm {:?} not accepted", header.alg)));
        }
        let key = self.decoding_key(&doc.jwks_uri, header.kid.as_deref(), now).await?;
        let mut validation = Validation::new(header.alg);
        // Time is checked below against the app's clock; the audience here.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        validation.set_audience(&[provider.client_id.as_str()]);
        let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
            .map_err(|e| refused(format!("ID token refused: {e}")))?
            .claims;
        let expected_iss = match (provider.kind, &claims.tid) {
            (Kind::Microsoft, Some(tid)) => {
                // A fixed tenant (by id or domain name) is held by the issuer, which names it.
                let tenant_ok = match provider.tenant.as_str() {
                    "consumers" => tid == MICROSOFT_CONSUMERS,
                    "organizations" => tid != MICROSOFT_CONSUMERS,
                    _ => true,
                };
                if !tenant_ok {
                    return Err(refused("the ID token is from a tenant this provider does not accept"));
                }
                doc.issuer.replace("{tenantid}", tid)
            }
            _ => doc.issuer.clone(),
        };
        if claims.iss != expected_iss {
            return Err(refused("the ID token's issuer is not the provider's"));
        }
        if claims.exp + LEEWAY <= now {
            return Err(refused("the ID token has expired"));
        }
        if claims.iat - LEEWAY > now {
            return Err(refused("the ID token was issued in the future"));
        }
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(refused("the ID token's nonce is not the sign-in's"));
        }
        let several_audiences = claims.aud.as_array().is_some_and(|a| a.len() > 1);
        match &claims.azp {
            Some(azp) if azp != &provider.client_id => return Err(refused("the ID token was issued to another party")),
            None if several_audiences => return Err(refused("the ID token names several audiences and no azp")),
            _ => {}
        }
        if claims.sub.is_empty() {
            return Err(refused("the ID token has no subject"));
        }
        let verified = match provider.kind {
            // Microsoft's `email` is whatever the tenant typed: believed only when the tenant
            // owns the domain (`xms_edov`) or the token says it is verified.
            Kind::Microsoft => truthy(&claims.email_verified) || truthy(&claims.xms_edov),
            _ => provider.trust_email && truthy(&claims.email_verified),
        };
        Ok(Profile {
            subject: claims.sub,
            email: claims.email.filter(|e| !e.is_empty()),
            email_verified: verified,
            first_name: claims.given_name.unwrap_or_default(),
            last_name: claims.family_name.unwrap_or_default(),
        })
    }
}

/// Sign in with Apple's client secret: a JWT the team signs with its key (ES256), valid for five
/// minutes.
fn apple_client_secret(provider: &Provider, pem: &str, now: i64) -> Result<String, FederationError> {
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|_| {
        FederationError::Unavailable(format!("{}: the private key is not an EC key in PEM", provider.name))
    })?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(provider.key_id.clone());
    let claims = serde_json::json!({
        "iss": provider.team_id,
        "iat": now,
        "exp": now + 300,
        "aud": "https://appleid.apple.com",
        "sub": provider.client_id,
    });
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|e| FederationError::Unavailable(format!("{}: client secret not signed: {e}", provider.name)))
}

/// The name in the `user` JSON Apple posts with a first sign-in.
pub(super) fn apple_name(raw: &str) -> Option<(String, String)> {
    let v: Value = serde_json::from_str(raw).ok()?;
    let name = v.get("name")?;
    let part = |k: &str| name.get(k).and_then(Value::as_str).unwrap_or_default().chars().take(150).collect::<String>();
    Some((part("firstName"), part("lastName")))
}

/// GitHub: the code exchanged for an access token, then the user and its verified primary
/// address from the API.
pub(super) async fn github_profile(
    http: &HttpClient,
    provider: &Provider,
    secret: Option<&str>,
    pending: &Pending,
    code: &str,
) -> Result<Profile, FederationError> {
    let mut form = vec![
        ("client_id", provider.client_id.as_str()),
        ("code", code),
        ("redirect_uri", pending.redirect_uri.as_str()),
        ("code_verifier", pending.verifier.as_str()),
    ];
    if let Some(secret) = secret {
        form.push(("client_secret", secret));
    }
    let answer = http.post_form(&provider.token_url, &form, &[]).await?;
    if (400..500).contains(&answer.status) {
        return Err(refused(format!("GitHub refused the code: HTTP {}", answer.status)));
    }
    #[derive(Deserialize)]
    struct TokenAnswer {
        access_token: Option<String>,
    }
    // GitHub answers a bad code with 200 and an `error` field.
    let token = answer
        .json::<TokenAnswer>("GitHub token answer")?
        .access_token
        .ok_or_else(|| refused("GitHub refused the code"))?;
    let bearer = format!("Bearer {token}");
    let headers = [("authorization", bearer.as_str()), ("x-github-api-version", "2022-11-28")];
    #[derive(Deserialize)]
    struct GithubUser {
        id: u64,
        #[serde(default)]
        name: Option<String>,
    }
    let user: GithubUser = http.get(&format!("{}/user", provider.api_url), &headers).await?.json("GitHub user")?;
    #[derive(Deserialize)]
    struct GithubEmail {
        email: String,
        #[serde(default)]
        primary: bool,
        #[serde(default)]
        verified: bool,
    }
    let emails: Vec<GithubEmail> =
        http.get(&format!("{}/user/emails", provider.api_url), &headers).await?.json("GitHub emails")?;
    let primary = emails.into_iter().find(|e| e.primary && e.verified);
    let name = user.name.unwrap_or_default();
    let (first, last) = name.trim().split_once(' ').map_or((name.trim(), ""), |(f, l)| (f, l.trim()));
    Ok(Profile {
        subject: user.id.to_string(),
        email_verified: primary.is_some(),
        email: primary.map(|e| e.email),
        first_name: first.chars().take(150).collect(),
        last_name: last.chars().take(150).collect(),
    })
}
