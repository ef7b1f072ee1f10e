//! JWTs with simplejwt's claims plus `sub`, `iss`, `aud` and `sid`.
//!
//! Verification is strict: one algorithm (the configured one), the expected `typ` per token type,
//! `iss` and `aud`, and `exp`/`nbf` checked against our own clock with the configured leeway.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::User;

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
    /// literal `\n` accepted for newlines. HS256: a secret of at least 32 bytes.
    /// Errors never include the key.
    pub fn parse(alg: JwtAlgorithm, raw: &str, kid: Option<&str>) -> Result<Self, String> {
        match alg {
            JwtAlgorithm::Hs256 => {
                if raw.len() < 32 {
                    return Err("an HS256 secret must be at least 32 bytes".into());
                }
                Ok(Self {
                    alg,
                    encoding: EncodingKey::from_secret(raw.as_bytes()),
                    decoding: DecodingKey::from_secret(raw.as_bytes()),
                    kid: kid.map(str::to_owned),
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
                let kid =
                    kid.map(str::to_owned).unwrap_or_else(|| URL_SAFE_NO_PAD.encode(&Sha256::digest(&public)[..12]));
                Ok(Self { alg, encoding, decoding, kid: Some(kid), public_x: Some(x) })
            }
        }
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public JWK, for asymmetric keys.
    pub fn public_jwk(&self) -> Option<serde_json::Value> {
        let x = self.public_x.as_ref()?;
        Some(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid, "x": x}))
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
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token not valid")]
    Invalid,
    #[error("token could not be signed: {0}")]
    Signing(String),
}

/// A retired Ed25519 public key that still verifies (key rotation without logging anyone out).
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
    /// Parses `kid=x` pairs separated by commas, as `JWT_PREVIOUS_KEYS` holds them (the `kid`
    /// and `x` of the key's JWKS entry).
    pub fn parse_list(raw: &str) -> Result<Vec<Self>, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|pair| {
                let (kid, x) = pair.split_once('=').ok_or("each entry must be kid=x")?;
                let bytes = URL_SAFE_NO_PAD.decode(x.trim()).map_err(|_| format!("key {kid}: x is not base64url"))?;
                if bytes.len() != 32 {
                    return Err(format!("key {kid}: x must be a 32-byte Ed25519 public key"));
                }
                let decoding = DecodingKey::from_ed_components(x.trim()).map_err(|_| format!("key {kid}: unusable"))?;
                Ok(Self { kid: kid.trim().to_owned(), x: x.trim().to_owned(), decoding })
            })
            .collect()
    }

    fn jwk(&self) -> serde_json::Value {
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid, "x": self.x})
    }
}

/// Issues and verifies tokens.
#[derive(Clone, Debug)]
pub struct TokenService {
    key: SigningKey,
    previous: Vec<VerifyKey>,
    issuer: String,
    audience: String,
    leeway: i64,
    pub access_ttl: i64,
    pub refresh_ttl: i64,
}

impl TokenService {
    pub fn new(settings: &crate::config::Settings) -> Self {
        Self {
            key: settings.jwt_signing_key.clone(),
            previous: settings.jwt_previous_keys.clone(),
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            leeway: settings.jwt_leeway.as_secs() as i64,
            access_ttl: settings.access_token_lifetime.as_secs() as i64,
            refresh_ttl: settings.refresh_token_lifetime.as_secs() as i64,
        }
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The JWKS document: the current public key and every previous one (empty for HS256).
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> =
            self.key.public_jwk().into_iter().chain(self.previous.iter().map(VerifyKey::jwk)).collect();
        serde_json::json!({ "keys": keys })
    }

    fn sign(&self, ty: TokenType, claims: &Claims) -> Result<String, TokenError> {
        let mut header = Header::new(self.key.alg.jwt());
        header.typ = Some(ty.typ().to_owned());
        header.kid = self.key.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.key.encoding).map_err(|e| TokenError::Signing(e.to_string()))
    }

    fn base_claims(&self, ty: TokenType, user: &User, sid: &str, jti: String, now: i64, exp: i64) -> Claims {
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
        }
    }

    /// An access token for this user and session.
    pub fn issue_access(&self, user: &User, sid: &str, jti: String, now: i64) -> Result<String, TokenError> {
        let mut claims = self.base_claims(TokenType::Access, user, sid, jti, now, now + self.access_ttl);
        claims.email = Some(user.email.to_string());
        claims.is_staff = Some(user.is_staff);
        claims.groups = Some(user.groups.clone());
        self.sign(TokenType::Access, &claims)
    }

    /// A refresh token; it never outlives `session_expires_at`.
    pub fn issue_refresh(
        &self,
        user: &User,
        sid: &str,
        jti: String,
        now: i64,
        session_expires_at: i64,
    ) -> Result<String, TokenError> {
        let exp = (now + self.refresh_ttl).min(session_expires_at);
        self.sign(TokenType::Refresh, &self.base_claims(TokenType::Refresh, user, sid, jti, now, exp))
    }

    /// Verifies signature, algorithm, `typ`, `iss`, `aud`, `exp`, `nbf` and `token_type`.
    pub fn verify(&self, token: &str, expected: TokenType, now: i64) -> Result<Claims, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != self.key.alg.jwt() || header.typ.as_deref() != Some(expected.typ()) {
            return Err(TokenError::Invalid);
        }
        let decoding = if self.key.kid.is_none() || header.kid == self.key.kid {
            &self.key.decoding
        } else {
            match self.previous.iter().find(|k| Some(&k.kid) == header.kid.as_ref()) {
                Some(k) => &k.decoding,
                None => return Err(TokenError::Invalid),
            }
        };
        let mut validation = Validation::new(self.key.alg.jwt());
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

    use super::*;
    use crate::domain::{Email, UserId};
    use crate::Settings;

    const NOW: i64 = 1_800_000_000;

    fn settings(alg: &str, key: &str) -> Settings {
        let vars: HashMap<String, String> = [
            ("EMAIL_FROM", "no-reply@example.com"),
            ("JWT_ALGORITHM", alg),
            ("JWT_SIGNING_KEY", key),
            ("JWT_LEEWAY", "10"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Settings::from_map(&vars).unwrap()
    }

    fn ed() -> TokenService {
        TokenService::new(&settings("EdDSA", &generate_ed25519_pem().unwrap()))
    }

    fn user() -> User {
        User {
            id: UserId::generate(),
            email: Email::parse("ada@example.com").unwrap(),
            username: None,
            first_name: String::new(),
            last_name: String::new(),
            password_hash: String::new(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            groups: vec!["editors".into()],
            date_joined: NOW,
            last_login: None,
            tokens_valid_after: NOW,
            version: 1,
            expires_at: None,
        }
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn issued_tokens_carry_simplejwt_claims_and_verify() {
        let t = ed();
        let u = user();
        let access = t.issue_access(&u, "sid1", "jti1".into(), NOW).unwrap();
        let c = t.verify(&access, TokenType::Access, NOW + 1).unwrap();
        assert_eq!(c.token_type, "access");
        assert_eq!(c.user_id, u.id.to_string());
        assert_eq!(c.sub, c.user_id);
        assert_eq!(c.sid, "sid1");
        assert_eq!(c.exp, NOW + 300);
        assert_eq!(c.email.as_deref(), Some("ada@example.com"));
        assert_eq!(c.groups, Some(vec!["editors".to_owned()]));
        let header = jsonwebtoken::decode_header(&access).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), t.key().kid());
        let refresh = t.issue_refresh(&u, "sid1", "r1".into(), NOW, NOW + 100).unwrap();
        let rc = t.verify(&refresh, TokenType::Refresh, NOW).unwrap();
        assert_eq!(rc.exp, NOW + 100, "refresh never outlives its session");
        assert_eq!(rc.email, None);
    }

    #[test]
    fn each_type_is_refused_where_the_other_is_expected() {
        let t = ed();
        let u = user();
        let access = t.issue_access(&u, "s", "j".into(), NOW).unwrap();
        let refresh = t.issue_refresh(&u, "s", "j".into(), NOW, NOW + 1000).unwrap();
        assert_eq!(t.verify(&access, TokenType::Refresh, NOW), Err(TokenError::Invalid));
        assert_eq!(t.verify(&refresh, TokenType::Access, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn expiry_is_checked_against_our_clock_with_leeway() {
        let t = ed();
        let access = t.issue_access(&user(), "s", "j".into(), NOW).unwrap();
        assert!(t.verify(&access, TokenType::Access, NOW + 300 + 9).is_ok());
        assert_eq!(t.verify(&access, TokenType::Access, NOW + 300 + 10), Err(TokenError::Invalid));
        assert_eq!(t.verify(&access, TokenType::Access, NOW - 11), Err(TokenError::Invalid), "issued in the future");
    }

    #[test]
    fn attacks_are_refused() {
        let t = ed();
        let u = user();
        let access = t.issue_access(&u, "s", "j".into(), NOW).unwrap();
        let parts: Vec<&str> = access.split('.').collect();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        // alg none
        let none = format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "typ": "at+jwt"})), parts[1]);
        assert_eq!(t.verify(&none, TokenType::Access, NOW), Err(TokenError::Invalid));
        // HS256 signed with the public key (algorithm confusion)
        let x = t.key().public_jwk().unwrap()["x"].as_str().unwrap().to_owned();
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = t.key().kid().map(str::to_owned);
        let confused = jsonwebtoken::encode(&h, &claims, &EncodingKey::from_secret(x.as_bytes())).unwrap();
        assert_eq!(t.verify(&confused, TokenType::Access, NOW), Err(TokenError::Invalid));
        // a tampered payload
        let mut evil = claims.clone();
        evil["is_staff"] = serde_json::json!(true);
        let tampered = format!("{}.{}.{}", parts[0], b64(&evil), parts[2]);
        assert_eq!(t.verify(&tampered, TokenType::Access, NOW), Err(TokenError::Invalid));
        // another key, another issuer, another audience
        assert_eq!(ed().verify(&access, TokenType::Access, NOW), Err(TokenError::Invalid));
        let mut other = settings("EdDSA", &generate_ed25519_pem().unwrap());
        other.jwt_signing_key = t.key().clone();
        other.jwt_issuer = "someone-else".into();
        assert_eq!(TokenService::new(&other).verify(&access, TokenType::Access, NOW), Err(TokenError::Invalid));
        other.jwt_issuer = "gatehouse".into();
        other.jwt_audience = "another-api".into();
        assert_eq!(TokenService::new(&other).verify(&access, TokenType::Access, NOW), Err(TokenError::Invalid));
        // oversized and garbage
        assert_eq!(t.verify(&"a".repeat(MAX_TOKEN_LEN + 1), TokenType::Access, NOW), Err(TokenError::Invalid));
        assert_eq!(t.verify("not.a.jwt", TokenType::Access, NOW), Err(TokenError::Invalid));
        assert_eq!(t.verify("", TokenType::Access, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn previous_keys_still_verify_and_are_published() {
        let old = ed();
        let u = user();
        let token = old.issue_access(&u, "s", "j".into(), NOW).unwrap();
        let jwk = old.key().public_jwk().unwrap();
        let entry = format!("{}={}", jwk["kid"].as_str().unwrap(), jwk["x"].as_str().unwrap());
        let mut s = settings("EdDSA", &generate_ed25519_pem().unwrap());
        s.jwt_previous_keys = VerifyKey::parse_list(&entry).unwrap();
        let new = TokenService::new(&s);
        assert_eq!(new.verify(&token, TokenType::Access, NOW).unwrap().sub, u.id.to_string());
        let jwks = new.jwks();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert_eq!(jwks["keys"][1], jwk);
        // An unknown kid is refused; so is a token signed by another key under the old kid.
        let stranger = ed().issue_access(&u, "s", "j".into(), NOW).unwrap();
        assert_eq!(new.verify(&stranger, TokenType::Access, NOW), Err(TokenError::Invalid));
        assert!(VerifyKey::parse_list("nokid").is_err());
        assert!(VerifyKey::parse_list("k=short").is_err());
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        // Found by fuzz/fuzz_targets/jwt.rs: `exp + leeway` overflowed (a panic in debug builds).
        let t = ed();
        let u = user();
        let mut claims = t.base_claims(TokenType::Access, &u, "s", "j".into(), NOW, i64::MAX);
        let token = t.sign(TokenType::Access, &claims).unwrap();
        assert_eq!(t.verify(&token, TokenType::Access, NOW).unwrap().exp, i64::MAX);
        claims.exp = NOW + 300;
        claims.iat = i64::MAX;
        claims.nbf = Some(i64::MIN);
        let token = t.sign(TokenType::Access, &claims).unwrap();
        assert_eq!(t.verify(&token, TokenType::Access, NOW), Err(TokenError::Invalid), "issued in the future");
    }

    #[test]
    fn hs256_works_and_refuses_eddsa_tokens() {
        let hs = TokenService::new(&settings("HS256", "0123456789abcdef0123456789abcdef"));
        let u = user();
        let token = hs.issue_access(&u, "s", "j".into(), NOW).unwrap();
        assert!(hs.verify(&token, TokenType::Access, NOW).is_ok());
        assert!(hs.key().public_jwk().is_none());
        let ed_token = ed().issue_access(&u, "s", "j".into(), NOW).unwrap();
        assert_eq!(hs.verify(&ed_token, TokenType::Access, NOW), Err(TokenError::Invalid));
    }

    #[test]
    fn generated_pem_round_trips_and_bad_keys_are_refused() {
        let pem = generate_ed25519_pem().unwrap();
        assert!(SigningKey::parse(JwtAlgorithm::EdDsa, &pem, None).is_ok());
        assert!(SigningKey::parse(JwtAlgorithm::EdDsa, &pem.replace('\n', "\\n"), None).is_ok());
        assert!(SigningKey::parse(JwtAlgorithm::EdDsa, "not a key", None).is_err());
        assert!(SigningKey::parse(JwtAlgorithm::Hs256, "short", None).is_err());
    }
}
