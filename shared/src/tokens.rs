//! JWTs with simplejwt's claims plus `sub`, `iss`, `aud` and `sid`.
//!
//! Verification is strict: one algorithm (the configured one), the expected `typ` per token type,
//! `iss` and `aud`, and `exp`/`nbf` checked against our own clock with the configured leeway.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::User;
use crate::ports::{KeyUse, SecretKeys};

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtAlgorithm {
    EdDsa,
    Hs256,
}

impl JwtAlgorithm {
    fn jwt(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Hs256 => Algorithm::HS256,
        }
    }
}

/// The signing key and the matching verification key.
#[derive(Clone)]
pub struct SigningKey {
    alg: JwtAlgorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: Option<String>,
    /// base64url Ed25519 public key (the JWK `x`), for asymmetric keys.
    public_x: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// EdDSA: a PKCS#8 PEM Ed25519 private key (`openssl genpkey -algorithm ed25519`), with
    /// literal `\n` accepted for newlines; its `kid` is derived from the public key until
    /// [`SigningKey::listed_in`] gives it the one the configuration names. HS256: a secret of at
    /// least 32 bytes, without a `kid`. Errors never include the key.
    pub fn parse(alg: JwtAlgorithm, raw: &str) -> Result<Self, String> {
        match alg {
            JwtAlgorithm::Hs256 => {
                if raw.len() < 32 {
                    return Err("an HS256 secret must be at least 32 bytes".into());
                }
                Ok(Self {
                    alg,
                    encoding: EncodingKey::from_secret(raw.as_bytes()),
                    decoding: DecodingKey::from_secret(raw.as_bytes()),
                    kid: None,
                    public_x: None,
                })
            }
            JwtAlgorithm::EdDsa => {
                let pem = raw.replace("\\n", "\n");
                let encoding = EncodingKey::from_ed_pem(pem.as_bytes())
                    .map_err(|_| "not a PEM-encoded PKCS#8 Ed25519 private key".to_owned())?;
                let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(encoding.inner())
                    .map_err(|_| "not a valid Ed25519 private key".to_owned())?;
                let public = aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref().to_vec();
                let x = URL_SAFE_NO_PAD.encode(&public);
                let decoding =
                    DecodingKey::from_ed_components(&x).map_err(|_| "could not derive the public key".to_owned())?;
                let kid = URL_SAFE_NO_PAD.encode(&Sha256::digest(&public)[..12]);
                Ok(Self { alg, encoding, decoding, kid: Some(kid), public_x: Some(x) })
            }
        }
    }

    pub fn alg(&self) -> JwtAlgorithm {
        self.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public JWK, for asymmetric keys.
    pub fn public_jwk(&self) -> Option<serde_json::Value> {
        self.public().map(|k| k.jwk())
    }

    /// The public half as a verification key under this key's `kid` (asymmetric keys).
    pub fn public(&self) -> Option<VerifyKey> {
        let (kid, x) = (self.kid.clone()?, self.public_x.clone()?);
        let decoding = DecodingKey::from_ed_components(&x).ok()?;
        Some(VerifyKey { kid, x, decoding })
    }

    /// This key under the `kid` that `public` (the configured verification keys) gives its public
    /// half. An EdDSA key whose public half is not listed is refused: every token it signed
    /// would be refused by the functions that verify with that list. HS256 keys pass unchanged.
    pub fn listed_in(mut self, public: &[VerifyKey]) -> Result<Self, String> {
        let Some(x) = &self.public_x else {
            return Ok(self);
        };
        match public.iter().find(|k| &k.x == x) {
            Some(k) => {
                self.kid = Some(k.kid.clone());
                Ok(self)
            }
            None => Err("the signing key's public key is not one of JWT_PUBLIC_KEYS".into()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Access,
    Refresh,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
    fn typ(self) -> &'static str {
        match self {
            Self::Access => "at+jwt",
            Self::Refresh => "rt+jwt",
        }
    }
}

/// The claims of every token; `email`, `is_staff` and `groups` only in access tokens.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub token_type: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub user_id: String,
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_staff: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// When the session's sign-in happened (OpenID Connect's `auth_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// How the sign-in was authenticated (RFC 8176 values: `pwd`, `otp`, `mfa`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
}

/// How and when a session's sign-in was authenticated: carried by every token of the session
/// (a refresh passes it on), so a sensitive step can ask how fresh and how strong it was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authn {
    pub auth_time: i64,
    /// RFC 8176 authentication method references; empty when none applies (a sign-in by an
    /// emailed activation link).
    pub amr: Vec<&'static str>,
}

/// The RFC 8176 values Gatehouse issues.
pub const AMR_VALUES: [&str; 7] = ["pwd", "otp", "mfa", "hwk", "swk", "user", "fed"];

impl Authn {
    pub fn new(auth_time: i64, amr: &[&'static str]) -> Self {
        Self { auth_time, amr: amr.to_vec() }
    }

    /// What a verified token says (tokens issued before these claims existed: a password sign-in
    /// at `fallback_time`, the session's start).
    pub fn of(claims: &Claims, fallback_time: i64) -> Self {
        let amr = match &claims.amr {
            Some(v) => v.iter().filter_map(|m| AMR_VALUES.iter().find(|k| **k == m.as_str()).copied()).collect(),
            None => vec!["pwd"],
        };
        Self { auth_time: claims.auth_time.unwrap_or(fallback_time), amr }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token not valid")]
    Invalid,
    #[error("token could not be signed: {0}")]
    Signing(String),
    /// The signing key could not be had (Secrets Manager failed, or holds an unusable key).
    #[error("signing key unavailable: {0}")]
    KeyUnavailable(String),
}

/// An Ed25519 public key that verifies tokens (`JWT_PUBLIC_KEYS`): the signing key's, and during
/// a rotation the previous or the next one, so nobody is logged out.
#[derive(Clone)]
pub struct VerifyKey {
    pub kid: String,
    /// base64url raw public key (the JWK `x`).
    pub x: String,
    decoding: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl VerifyKey {
    /// Parses `kid=x` pairs separated by commas, as `JWT_PUBLIC_KEYS` holds them (the `kid`
    /// and `x` of the key's JWKS entry). A `kid` may appear once.
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, String> {
        let keys: Vec<Self> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|pair| {
                let (kid, x) = pair.split_once('=').ok_or("each entry must be kid=x")?;
                let bytes = URL_SAFE_NO_PAD.decode(x.trim()).map_err(|_| format!("key {kid}: x is not base64url"))?;
                if bytes.len() != 32 {
                    return Err(format!("key {kid}: x must be a 32-byte Ed25519 public key"));
                }
                let decoding = DecodingKey::from_ed_components(x.trim()).map_err(|_| format!("key {kid}: unusable"))?;
                let kid = kid.trim();
                if kid.is_empty() || kid.len() > 128 || !kid.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(format!(
                        "key \"{}\": a kid is 1 to 128 visible ASCII characters",
                        kid.escape_default()
                    ));
                }
                Ok(Self { kid: kid.to_owned(), x: x.trim().to_owned(), decoding })
            })
            .collect::<Result<_, String>>()?;
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.kid == k.kid) {
                return Err(format!("kid {} is listed twice", k.kid));
            }
        }
        Ok(keys)
    }

    /// The `kid=x` pair of this key, as `JWT_PUBLIC_KEYS` lists it.
    pub fn pair(&self) -> String {
        format!("{}={}", self.kid, self.x)
    }

    fn jwk(&self) -> serde_json::Value {
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid, "x": self.x})
    }
}

/// Issues and verifies tokens. The private key is asked of a [`SecretKeys`] source only to sign
/// (and, for HS256, whose secret is also the verification key, to verify): with EdDSA a function
/// that only verifies never holds it.
#[derive(Clone)]
pub struct TokenService {
    alg: JwtAlgorithm,
    keys: Arc<dyn SecretKeys>,
    /// EdDSA: every key that verifies, by `kid` (empty for HS256).
    public: Vec<VerifyKey>,
    issuer: String,
    audience: String,
    leeway: i64,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService").field("alg", &self.alg).field("public", &self.public).finish_non_exhaustive()
    }
}

impl TokenService {
    pub fn new(settings: &crate::config::Settings, keys: Arc<dyn SecretKeys>) -> Self {
        Self {
            alg: settings.jwt_algorithm,
            keys,
            public: settings.jwt_public_keys.clone(),
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            leeway: settings.jwt_leeway.as_secs() as i64,
            access_ttl: settings.access_token_lifetime.as_secs() as i64,
            refresh_ttl: settings.refresh_token_lifetime.as_secs() as i64,
        }
    }

    /// The JWKS document: every verification key (empty for HS256). Needs no private key.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self.public.iter().map(VerifyKey::jwk).collect();
        serde_json::json!({ "keys": keys })
    }

    async fn key(&self, purpose: KeyUse) -> Result<Arc<SigningKey>, TokenError> {
        let key = self.keys.signing_key(purpose).await?;
        if key.alg != self.alg {
            return Err(TokenError::KeyUnavailable("the signing key is not of JWT_ALGORITHM".into()));
        }
        Ok(key)
    }

    async fn sign(&self, ty: TokenType, claims: &Claims) -> Result<String, TokenError> {
        let key = self.key(KeyUse::Sign).await?;
        let mut header = Header::new(key.alg.jwt());
        header.typ = Some(ty.typ().to_owned());
        header.kid = key.kid.clone();
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(|e| TokenError::Signing(e.to_string()))
    }

    #[allow(clippy::too_many_arguments)]
    fn base_claims(
        &self,
        ty: TokenType,
        user: &User,
        sid: &str,
        jti: String,
        now: i64,
        exp: i64,
        authn: &Authn,
    ) -> Claims {
        Claims {
            token_type: ty.as_str().to_owned(),
            exp,
            iat: now,
            jti,
            user_id: user.id.to_string(),
            sub: user.id.to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sid: sid.to_owned(),
            nbf: None,
            email: None,
            is_staff: None,
            groups: None,
            auth_time: Some(authn.auth_time),
            amr: Some(authn.amr.iter().map(|m| (*m).to_owned()).collect()),
        }
    }

    /// An access token for this user and session.
    pub async fn issue_access(
        &self,
        user: &User,
        sid: &str,
        jti: String,
        now: i64,
        authn: &Authn,
    ) -> Result<String, TokenError> {
        let mut claims = self.base_claims(TokenType::Access, user, sid, jti, now, now + self.access_ttl, authn);
        claims.email = Some(user.email.to_string());
        claims.is_staff = Some(user.is_staff);
        claims.groups = Some(user.groups.clone());
        self.sign(TokenType::Access, &claims).await
    }

    /// A refresh token; it never outlives `session_expires_at`.
    pub async fn issue_refresh(
        &self,
        user: &User,
        sid: &str,
        jti: String,
        now: i64,
        session_expires_at: i64,
        authn: &Authn,
    ) -> Result<String, TokenError> {
        let exp = (now + self.refresh_ttl).min(session_expires_at);
        self.sign(TokenType::Refresh, &self.base_claims(TokenType::Refresh, user, sid, jti, now, exp, authn)).await
    }

    /// Verifies signature, algorithm, `typ`, `iss`, `aud`, `exp`, `nbf` and `token_type`. What
    /// can be judged without a key is judged first: a malformed token never costs a key fetch.
    pub async fn verify(&self, token: &str, expected: TokenType, now: i64) -> Result<Claims, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != self.alg.jwt() || header.typ.as_deref() != Some(expected.typ()) {
            return Err(TokenError::Invalid);
        }
        let secret;
        let decoding = match self.alg {
            JwtAlgorithm::EdDsa => match self.public.iter().find(|k| Some(&k.kid) == header.kid.as_ref()) {
                Some(k) => &k.decoding,
                None => return Err(TokenError::Invalid),
            },
            JwtAlgorithm::Hs256 => {
                secret = self.key(KeyUse::Verify).await?;
                &secret.decoding
            }
        };
        let mut validation = Validation::new(self.alg.jwt());
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, decoding, &validation).map_err(|_| TokenError::Invalid)?;
        let c = data.claims;
        // Saturating: `exp` is whatever the signer put there, up to i64::MAX.
        let late = now.saturating_add(self.leeway);
        let fresh = c.exp.saturating_add(self.leeway) > now && c.iat <= late && c.nbf.is_none_or(|nbf| nbf <= late);
        if !fresh || c.token_type != expected.as_str() || c.sub != c.user_id {
            return Err(TokenError::Invalid);
        }
        Ok(c)
    }
}

/// A fresh Ed25519 private key as PKCS#8 PEM (for local development and `authctl`).
pub fn generate_ed25519_pem() -> Result<String, String> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let doc =
        aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| "key generation failed".to_owned())?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
    Ok(format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::domain::Email;
    use crate::Settings;

    const NOW: i64 = 1_800_000_000;

    fn settings_with(alg: &str, key: &str, extra: &[(&str, &str)]) -> Settings {
        let mut vars: HashMap<String, String> = [
            ("EMAIL_FROM", "no-reply@example.com"),
            ("JWT_ALGORITHM", alg),
            ("JWT_SIGNING_KEY", key),
            ("JWT_LEEWAY", "10"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Settings::from_map(&vars).unwrap()
    }

    fn settings(alg: &str, key: &str) -> Settings {
        settings_with(alg, key, &[])
    }

    /// A service over the settings' own (inline) key.
    fn service(s: &Settings) -> TokenService {
        TokenService::new(s, s.inline_key().unwrap())
    }

    fn ed() -> TokenService {
        service(&settings("EdDSA", &generate_ed25519_pem().unwrap()))
    }

    fn pair_of(pem: &str) -> String {
        SigningKey::parse(JwtAlgorithm::EdDsa, pem).unwrap().public().unwrap().pair()
    }

    /// A key source that counts what it is asked for, and can fail.
    struct Counting {
        key: Arc<SigningKey>,
        asked: Mutex<Vec<KeyUse>>,
        fail: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl SecretKeys for Counting {
        async fn signing_key(&self, purpose: KeyUse) -> Result<Arc<SigningKey>, TokenError> {
            self.asked.lock().unwrap().push(purpose);
            if self.fail.load(Ordering::SeqCst) > 0 {
                return Err(TokenError::KeyUnavailable("GetSecretValue: ServiceUnavailable".into()));
            }
            Ok(self.key.clone())
        }

        async fn code_key(&self) -> Result<Arc<crate::keys::CodeKey>, TokenError> {
            Err(TokenError::KeyUnavailable("tokens never ask for the code key".into()))
        }
    }

    fn counting(s: &Settings) -> (TokenService, Arc<Counting>) {
        let key = match &s.jwt_key {
            crate::config::JwtKeySource::Inline(k) => Arc::new(k.clone()),
            crate::config::JwtKeySource::SecretsManager { .. } => unreachable!(),
        };
        let source = Arc::new(Counting { key, asked: Mutex::default(), fail: AtomicUsize::new(0) });
        (TokenService::new(s, source.clone()), source)
    }

    fn pwd() -> Authn {
        Authn::new(NOW, &["pwd"])
    }

    fn user() -> User {
        User {
            groups: vec!["editors".into()],
            ..User::new(Email::parse("ada@example.com").unwrap(), String::new(), NOW)
        }
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    /// The claims of a token, as JSON.
    fn claims_of(token: &str) -> serde_json::Value {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    /// A token signed (EdDSA) by the key `pem` with the header's `kid` and `typ` as given.
    fn forge(pem: &str, kid: Option<&str>, typ: Option<&str>, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = kid.map(str::to_owned);
        header.typ = typ.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_pem(pem.as_bytes()).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn issued_tokens_carry_simplejwt_claims_and_verify() {
        let s = settings("EdDSA", &generate_ed25519_pem().unwrap());
        let t = service(&s);
        let u = user();
        let access = t.issue_access(&u, "sid1", "jti1".into(), NOW, &pwd()).await.unwrap();
        let c = t.verify(&access, TokenType::Access, NOW + 1).await.unwrap();
        assert_eq!(c.token_type, "access");
        assert_eq!(c.user_id, u.id.to_string());
        assert_eq!(c.sub, c.user_id);
        assert_eq!(c.sid, "sid1");
        assert_eq!(c.exp, NOW + 300);
        assert_eq!(c.email.as_deref(), Some("ada@example.com"));
        assert_eq!(c.groups, Some(vec!["editors".to_owned()]));
        assert_eq!((c.auth_time, c.amr.as_deref()), (Some(NOW), Some(&["pwd".to_owned()][..])));
        let header = jsonwebtoken::decode_header(&access).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(s.jwt_public_keys[0].kid.as_str()));
        let refresh = t.issue_refresh(&u, "sid1", "r1".into(), NOW, NOW + 100, &pwd()).await.unwrap();
        let rc = t.verify(&refresh, TokenType::Refresh, NOW).await.unwrap();
        assert_eq!(rc.exp, NOW + 100, "refresh never outlives its session");
        assert_eq!(Authn::of(&rc, 0), pwd(), "a refresh token passes its sign-in on");
        let legacy = Claims { auth_time: None, amr: None, ..rc.clone() };
        assert_eq!(Authn::of(&legacy, 7), Authn::new(7, &["pwd"]), "tokens from before amr: a password sign-in");
        let odd = Claims { amr: Some(vec!["otp".into(), "made-up".into()]), ..rc.clone() };
        assert_eq!(Authn::of(&odd, 0).amr, ["otp"], "only values Gatehouse issues pass on");
        assert_eq!(rc.email, None);
    }

    #[tokio::test]
    async fn each_type_is_refused_where_the_other_is_expected_by_its_typ_and_by_its_claim() {
        let pem = generate_ed25519_pem().unwrap();
        let s = settings("EdDSA", &pem);
        let t = service(&s);
        let kid = s.jwt_public_keys[0].kid.as_str();
        let u = user();
        let access = t.issue_access(&u, "s", "j".into(), NOW, &pwd()).await.unwrap();
        let refresh = t.issue_refresh(&u, "s", "j".into(), NOW, NOW + 1000, &pwd()).await.unwrap();
        assert_eq!(t.verify(&access, TokenType::Refresh, NOW).await, Err(TokenError::Invalid));
        assert_eq!(t.verify(&refresh, TokenType::Access, NOW).await, Err(TokenError::Invalid));
        let (access_claims, refresh_claims) = (claims_of(&access), claims_of(&refresh));
        // The forger's tokens are good as such (the key signs, the kid is listed)...
        assert!(t
            .verify(&forge(&pem, Some(kid), Some("at+jwt"), &access_claims), TokenType::Access, NOW)
            .await
            .is_ok());
        assert!(t
            .verify(&forge(&pem, Some(kid), Some("rt+jwt"), &refresh_claims), TokenType::Refresh, NOW)
            .await
            .is_ok());
        // ...so each refusal below is the one check it names. The header's `typ` alone wrong:
        for typ in [Some("rt+jwt"), Some("JWT"), Some("AT+JWT"), None] {
            let token = forge(&pem, Some(kid), typ, &access_claims);
            assert_eq!(t.verify(&token, TokenType::Access, NOW).await, Err(TokenError::Invalid), "typ {typ:?}");
        }
        // The `token_type` claim alone wrong, under the right `typ`:
        let as_refresh = forge(&pem, Some(kid), Some("rt+jwt"), &access_claims);
        assert_eq!(t.verify(&as_refresh, TokenType::Refresh, NOW).await, Err(TokenError::Invalid));
        let as_access = forge(&pem, Some(kid), Some("at+jwt"), &refresh_claims);
        assert_eq!(t.verify(&as_access, TokenType::Access, NOW).await, Err(TokenError::Invalid));
    }

    #[tokio::test]
    async fn expiry_is_checked_against_our_clock_with_leeway() {
        let t = ed();
        let access = t.issue_access(&user(), "s", "j".into(), NOW, &pwd()).await.unwrap();
        assert!(t.verify(&access, TokenType::Access, NOW + 300 + 9).await.is_ok());
        assert_eq!(t.verify(&access, TokenType::Access, NOW + 300 + 10).await, Err(TokenError::Invalid));
        assert_eq!(
            t.verify(&access, TokenType::Access, NOW - 11).await,
            Err(TokenError::Invalid),
            "issued in the future"
        );
    }

    #[tokio::test]
    async fn attacks_are_refused() {
        let pem = generate_ed25519_pem().unwrap();
        let s = settings("EdDSA", &pem);
        let t = service(&s);
        let u = user();
        let access = t.issue_access(&u, "s", "j".into(), NOW, &pwd()).await.unwrap();
        let parts: Vec<&str> = access.split('.').collect();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        // alg none
        let none = format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "typ": "at+jwt"})), parts[1]);
        assert_eq!(t.verify(&none, TokenType::Access, NOW).await, Err(TokenError::Invalid));
        // HS256 signed with the public key (algorithm confusion)
        let jwk = &t.jwks()["keys"][0];
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = jwk["kid"].as_str().map(str::to_owned);
        let x = jwk["x"].as_str().unwrap();
        let confused = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(x.as_bytes())).unwrap();
        assert_eq!(t.verify(&confused, TokenType::Access, NOW).await, Err(TokenError::Invalid));
        // a tampered payload
        let mut evil = claims.clone();
        evil["is_staff"] = serde_json::json!(true);
        let tampered = format!("{}.{}.{}", parts[0], b64(&evil), parts[2]);
        assert_eq!(t.verify(&tampered, TokenType::Access, NOW).await, Err(TokenError::Invalid));
        // no kid, or one nobody listed
        let mut header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        header.as_object_mut().unwrap().remove("kid");
        let kidless = format!("{}.{}.{}", b64(&header), parts[1], parts[2]);
        assert_eq!(t.verify(&kidless, TokenType::Access, NOW).await, Err(TokenError::Invalid));
        let kid = jwk["kid"].as_str().unwrap();
        assert!(t.verify(&forge(&pem, Some(kid), Some("at+jwt"), &claims), TokenType::Access, NOW).await.is_ok());
        let kidless = forge(&pem, None, Some("at+jwt"), &claims);
        assert_eq!(t.verify(&kidless, TokenType::Access, NOW).await, Err(TokenError::Invalid), "signed, no kid");
        let unlisted = forge(&pem, Some("nobody"), Some("at+jwt"), &claims);
        assert_eq!(t.verify(&unlisted, TokenType::Access, NOW).await, Err(TokenError::Invalid), "kid nobody listed");
        // The signature: a stranger's key signing under our kid, with our typ and our claims.
        let stranger = forge(&generate_ed25519_pem().unwrap(), Some(kid), Some("at+jwt"), &claims);
        assert_eq!(t.verify(&stranger, TokenType::Access, NOW).await, Err(TokenError::Invalid), "a stranger's key");
        // Our signature over other bytes: the header re-encoded (same fields, another order).
        let mut reordered = serde_json::Map::new();
        for (k, v) in header.as_object().unwrap().iter().rev() {
            reordered.insert(k.clone(), v.clone());
        }
        reordered.insert("kid".into(), serde_json::json!(kid));
        let rewrapped = format!("{}.{}.{}", b64(&serde_json::Value::Object(reordered)), parts[1], parts[2]);
        assert_eq!(t.verify(&rewrapped, TokenType::Access, NOW).await, Err(TokenError::Invalid));
        // another verifier's key list, another issuer, another audience
        assert_eq!(ed().verify(&access, TokenType::Access, NOW).await, Err(TokenError::Invalid));
        let other = service(&settings_with("EdDSA", &pem, &[("JWT_ISSUER", "someone-else")]));
        assert_eq!(other.verify(&access, TokenType::Access, NOW).await, Err(TokenError::Invalid));
        let other = service(&settings_with("EdDSA", &pem, &[("JWT_AUDIENCE", "another-api")]));
        assert_eq!(other.verify(&access, TokenType::Access, NOW).await, Err(TokenError::Invalid));
        // oversized and garbage
        assert_eq!(t.verify(&"a".repeat(MAX_TOKEN_LEN + 1), TokenType::Access, NOW).await, Err(TokenError::Invalid));
        assert_eq!(t.verify("not.a.jwt", TokenType::Access, NOW).await, Err(TokenError::Invalid));
        assert_eq!(t.verify("", TokenType::Access, NOW).await, Err(TokenError::Invalid));
    }

    #[tokio::test]
    async fn a_two_phase_rotation_logs_nobody_out_at_any_point_of_either_rollout() {
        let (old_pem, new_pem) = (generate_ed25519_pem().unwrap(), generate_ed25519_pem().unwrap());
        // The pairs as an operator would list them, under kids of their choosing.
        let renamed = |pem: &str, kid: &str| format!("{kid}={}", pair_of(pem).split_once('=').unwrap().1);
        let (old_pair, new_pair) = (renamed(&old_pem, "k1"), renamed(&new_pem, "k2"));
        let both = format!("{old_pair},{new_pair}");
        // Before: old key, old list. Phase 1 adds the next key to the list. Phase 2 signs with it.
        // Phase 3, a refresh lifetime later, drops the old key.
        let before = service(&settings_with("EdDSA", &old_pem, &[("JWT_PUBLIC_KEYS", &old_pair)]));
        let phase1 = service(&settings_with("EdDSA", &old_pem, &[("JWT_PUBLIC_KEYS", &both)]));
        let phase2 = service(&settings_with("EdDSA", &new_pem, &[("JWT_PUBLIC_KEYS", &both)]));
        let phase3 = service(&settings_with("EdDSA", &new_pem, &[("JWT_PUBLIC_KEYS", &new_pair)]));
        let u = user();
        let mut tokens = Vec::new();
        for t in [&before, &phase1, &phase2] {
            tokens.push(t.issue_access(&u, "s", "j".into(), NOW, &pwd()).await.unwrap());
        }
        // During phase 1's rollout, functions run `before` or `phase1`: both sign with the old key.
        for t in [&before, &phase1] {
            for token in &tokens[..2] {
                assert!(t.verify(token, TokenType::Access, NOW).await.is_ok());
            }
        }
        // During phase 2's rollout (and its rollback), functions run `phase1` or `phase2`: every
        // token either signs is accepted by both.
        for t in [&phase1, &phase2] {
            for token in &tokens {
                assert!(t.verify(token, TokenType::Access, NOW).await.is_ok());
            }
        }
        assert_eq!(jsonwebtoken::decode_header(&tokens[2]).unwrap().kid.as_deref(), Some("k2"));
        assert_eq!(phase2.jwks()["keys"].as_array().unwrap().len(), 2);
        // Phase 3: the old key's tokens are refused, the new key's accepted. Skipping phase 1
        // is what breaks: `before` refuses what `phase2` signs.
        assert_eq!(phase3.verify(&tokens[0], TokenType::Access, NOW).await, Err(TokenError::Invalid));
        assert!(phase3.verify(&tokens[2], TokenType::Access, NOW).await.is_ok());
        assert_eq!(before.verify(&tokens[2], TokenType::Access, NOW).await, Err(TokenError::Invalid));
        assert_eq!(phase3.jwks()["keys"][0]["kid"], "k2");
        // A kid names a key, it does not stand for one: a stranger signing under the old kid or the
        // new one, with claims and typ as ours, is refused at every phase that lists that kid.
        let stranger = generate_ed25519_pem().unwrap();
        let claims = claims_of(&tokens[0]);
        for (kid, listing) in [("k1", [&before, &phase1, &phase2]), ("k2", [&phase1, &phase2, &phase3])] {
            let own = if kid == "k1" { &old_pem } else { &new_pem };
            let forged = forge(&stranger, Some(kid), Some("at+jwt"), &claims);
            for (i, t) in listing.into_iter().enumerate() {
                assert!(t
                    .verify(&forge(own, Some(kid), Some("at+jwt"), &claims), TokenType::Access, NOW)
                    .await
                    .is_ok());
                assert_eq!(
                    t.verify(&forged, TokenType::Access, NOW).await,
                    Err(TokenError::Invalid),
                    "a stranger's key under {kid} accepted by verifier {i} listing it"
                );
            }
        }
    }

    #[tokio::test]
    async fn eddsa_verifies_without_the_private_key_and_hs256_asks_for_it() {
        let ed_settings = settings("EdDSA", &generate_ed25519_pem().unwrap());
        let (t, source) = counting(&ed_settings);
        let access = t.issue_access(&user(), "s", "j".into(), NOW, &pwd()).await.unwrap();
        // The key's source fails from now on: EdDSA still verifies (the functions that only
        // verify never read the secret), signing fails closed.
        source.fail.store(1, Ordering::SeqCst);
        assert!(t.verify(&access, TokenType::Access, NOW).await.is_ok());
        assert!(matches!(
            t.issue_access(&user(), "s", "j".into(), NOW, &pwd()).await,
            Err(TokenError::KeyUnavailable(_))
        ));
        assert_eq!(*source.asked.lock().unwrap(), vec![KeyUse::Sign, KeyUse::Sign]);

        let (hs, source) = counting(&settings("HS256", "0123456789abcdef0123456789abcdef"));
        let token = hs.issue_access(&user(), "s", "j".into(), NOW, &pwd()).await.unwrap();
        assert!(hs.verify(&token, TokenType::Access, NOW).await.is_ok());
        // A malformed token is refused before any key is asked for.
        assert_eq!(hs.verify("garbage", TokenType::Access, NOW).await, Err(TokenError::Invalid));
        assert_eq!(*source.asked.lock().unwrap(), vec![KeyUse::Sign, KeyUse::Verify]);
        source.fail.store(1, Ordering::SeqCst);
        assert!(matches!(hs.verify(&token, TokenType::Access, NOW).await, Err(TokenError::KeyUnavailable(_))));
    }

    #[test]
    fn public_keys_are_checked_and_must_list_the_inline_key() {
        let pem = generate_ed25519_pem().unwrap();
        let stranger = pair_of(&generate_ed25519_pem().unwrap());
        let refused = |extra: &[(&str, &str)]| {
            let mut vars: HashMap<String, String> =
                [("EMAIL_FROM", "no-reply@example.com"), ("JWT_ALGORITHM", "EdDSA"), ("JWT_SIGNING_KEY", pem.as_str())]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
            vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
            Settings::from_map(&vars).err().map(|e| e.var)
        };
        assert_eq!(refused(&[("JWT_PUBLIC_KEYS", &stranger)]), Some("JWT_SIGNING_KEY"), "key not listed");
        let own = pair_of(&pem);
        assert_eq!(refused(&[("JWT_PUBLIC_KEYS", &format!("{own},{stranger}"))]), None);
        let dup = format!("a={},a={}", own.split_once('=').unwrap().1, stranger.split_once('=').unwrap().1);
        assert_eq!(refused(&[("JWT_PUBLIC_KEYS", &dup)]), Some("JWT_PUBLIC_KEYS"), "a kid twice");
        assert_eq!(refused(&[("JWT_PUBLIC_KEYS", "k=short")]), Some("JWT_PUBLIC_KEYS"));
        assert_eq!(refused(&[("JWT_PUBLIC_KEYS", "nokid")]), Some("JWT_PUBLIC_KEYS"));
        assert!(VerifyKey::parse_list(&format!("bad kid={}", own.split_once('=').unwrap().1)).is_err());
    }

    #[tokio::test]
    async fn extreme_timestamps_do_not_overflow() {
        // Found by fuzz/fuzz_targets/jwt.rs: `exp + leeway` overflowed (a panic in debug builds).
        let t = ed();
        let u = user();
        let mut claims = t.base_claims(TokenType::Access, &u, "s", "j".into(), NOW, i64::MAX, &pwd());
        let token = t.sign(TokenType::Access, &claims).await.unwrap();
        assert_eq!(t.verify(&token, TokenType::Access, NOW).await.unwrap().exp, i64::MAX);
        claims.exp = NOW + 300;
        claims.iat = i64::MAX;
        claims.nbf = Some(i64::MIN);
        let token = t.sign(TokenType::Access, &claims).await.unwrap();
        assert_eq!(t.verify(&token, TokenType::Access, NOW).await, Err(TokenError::Invalid), "issued in the future");
    }

    #[tokio::test]
    async fn hs256_works_and_refuses_eddsa_tokens() {
        let hs = service(&settings("HS256", "0123456789abcdef0123456789abcdef"));
        let u = user();
        let token = hs.issue_access(&u, "s", "j".into(), NOW, &pwd()).await.unwrap();
        assert!(hs.verify(&token, TokenType::Access, NOW).await.is_ok());
        assert_eq!(hs.jwks(), serde_json::json!({"keys": []}));
        assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid, None);
        let ed_token = ed().issue_access(&u, "s", "j".into(), NOW, &pwd()).await.unwrap();
        assert_eq!(hs.verify(&ed_token, TokenType::Access, NOW).await, Err(TokenError::Invalid));
    }

    #[test]
    fn generated_pem_round_trips_and_bad_keys_are_refused() {
        let pem = generate_ed25519_pem().unwrap();
        assert!(SigningKey::parse(JwtAlgorithm::EdDsa, &pem).is_ok());
        assert!(SigningKey::parse(JwtAlgorithm::EdDsa, &pem.replace('\n', "\\n")).is_ok());
        assert!(SigningKey::parse(JwtAlgorithm::EdDsa, "not a key").is_err());
        assert!(SigningKey::parse(JwtAlgorithm::Hs256, "short").is_err());
    }
}
