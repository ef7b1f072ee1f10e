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
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
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
                let kid = kid
                    .map(str::to_owned)
                    .unwrap_or_else(|| URL_SAFE_NO_PAD.encode(&Sha256::digest(&public)[..12]));
                Ok(Self {
                    alg,
                    encoding,
                    decoding,
                    kid: Some(kid),
                    public_x: Some(x),
                })
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

/// Issues and verifies tokens.
#[derive(Clone, Debug)]
pub struct TokenService {
    key: SigningKey,
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
        self.sign(
            TokenType::Refresh,
            &self.base_claims(TokenType::Refresh, user, sid, jti, now, exp),
        )
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
        if self.key.kid.is_some() && header.kid != self.key.kid {
            return Err(TokenError::Invalid);
        }
        let mut validation = Validation::new(self.key.alg.jwt());
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key.decoding, &validation).map_err(|_| TokenError::Invalid)?;
        let c = data.claims;
        let fresh =
            c.exp + self.leeway > now && c.iat <= now + self.leeway && c.nbf.is_none_or(|nbf| nbf <= now + self.leeway);
        if !fresh || c.token_type != expected.as_str() || c.sub != c.user_id {
            return Err(TokenError::Invalid);
        }
        Ok(c)
    }
}
