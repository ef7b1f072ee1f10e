//! The deployment's secret keys and where they come from: the JWT signing key, and the key of
//! the MACs one-time codes are stored as. Each is given in the configuration (local stack,
//! tests) or read from its Secrets Manager secret on first use: no network call at init, one
//! `GetSecretValue` per container, and only in the functions that need that key.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use aws_lc_rs::hmac;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::Client;
use sha2::{Digest, Sha256};

use crate::domain::{CodePurpose, UserId};
use crate::ports::{KeyUse, SecretKeys};
use crate::tokens::{JwtAlgorithm, SigningKey, TokenError, VerifyKey};

/// The SDK configuration for reading `arn`: the secret's own region (an ARN names it), which may
/// differ from the function's.
pub fn sdk_for_secret(sdk: &aws_config::SdkConfig, arn: &str) -> aws_config::SdkConfig {
    match arn.split(':').nth(3).filter(|r| !r.is_empty()) {
        Some(region) if sdk.region().map(|r| r.as_ref()) != Some(region) => {
            sdk.to_builder().region(aws_config::Region::new(region.to_owned())).build()
        }
        _ => sdk.clone(),
    }
}

/// The key of the MACs that one-time codes are stored as. It lives outside the table, so the
/// table alone reveals no live code (a six-digit code stored as a plain hash falls to a million
/// hashes).
/// The key is built when first used (the functions that never handle a code never build it).
#[derive(Clone)]
pub struct CodeKey(Arc<LazyCodeKey>);

struct LazyCodeKey {
    material: Material,
    key: OnceLock<hmac::Key>,
}

enum Material {
    /// The key itself.
    Raw(String),
    /// A signing key the code key is derived from.
    DerivedFrom(String),
}

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(..)")
    }
}

/// Shortest code key accepted.
pub const CODE_KEY_MIN: usize = 32;

impl CodeKey {
    /// A key of at least [`CODE_KEY_MIN`] bytes (`CODE_KEY`, or the secret's string). Errors
    /// never include the key.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() < CODE_KEY_MIN {
            return Err(format!("the code key must be at least {CODE_KEY_MIN} bytes"));
        }
        Ok(Self::lazy(Material::Raw(raw.to_owned())))
    }

    /// For the local stack only: a key derived from an inline signing key, so that a local
    /// configuration needs no second secret.
    pub fn derived_from(signing_key: &str) -> Self {
        Self::lazy(Material::DerivedFrom(signing_key.to_owned()))
    }

    fn lazy(material: Material) -> Self {
        Self(Arc::new(LazyCodeKey { material, key: OnceLock::new() }))
    }

    fn key(&self) -> &hmac::Key {
        self.0.key.get_or_init(|| match &self.0.material {
            Material::Raw(raw) => hmac::Key::new(hmac::HMAC_SHA256, raw.as_bytes()),
            Material::DerivedFrom(signing_key) => {
                let seed = Sha256::new()
                    .chain_update(b"gatehouse code key v1\0")
                    .chain_update(signing_key.as_bytes())
                    .finalize();
                hmac::Key::new(hmac::HMAC_SHA256, &seed)
            }
        })
    }

    /// A key derived for `purpose` (e.g. sealing second-factor secrets): HMAC of the purpose under
    /// the code key, so that one secret in the deployment serves every use without any two uses
    /// sharing a key.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let tag = hmac::sign(self.key(), format!("gatehouse derived key v1\0{purpose}").as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(&tag.as_ref()[..32]);
        out
    }

    /// The MAC a code is stored as: bound to its user and purpose, so that a MAC copied to
    /// another user's or another purpose's item matches nothing. Hex.
    pub fn mac(&self, user: &UserId, purpose: CodePurpose, code: &str) -> String {
        self.mac_labelled(purpose.as_str(), user, code)
    }

    /// [`Self::mac`] under any label (a code purpose, or `mfa_recovery` for recovery codes): a
    /// value MAC'd under one label matches nothing under another.
    pub fn mac_labelled(&self, label: &str, user: &UserId, code: &str) -> String {
        let mut ctx = hmac::Context::with_key(self.key());
        for part in [label.as_bytes(), b"\0", user.as_str().as_bytes(), b"\0", code.as_bytes()] {
            ctx.update(part);
        }
        ctx.sign().as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Turns a secret's string into the key it holds; the error never includes the value.
type Parser<T> = Box<dyn Fn(&str) -> Result<T, String> + Send + Sync>;

/// A secret read from Secrets Manager when first needed, parsed, and kept for the life of the
/// process. A failed read (or an unusable value) is a [`TokenError::KeyUnavailable`] and is tried
/// again by the next request: nothing failed is cached.
pub struct ManagedSecret<T> {
    client: crate::aws::LazyClient<Client>,
    arn: String,
    version: Option<String>,
    /// The variable naming the secret, for errors (which never include the value).
    var: &'static str,
    parse: Parser<T>,
    value: tokio::sync::OnceCell<Arc<T>>,
}

impl<T> std::fmt::Debug for ManagedSecret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedSecret")
            .field("var", &self.var)
            .field("arn", &self.arn)
            .field("version", &self.version)
            .field("read", &self.value.initialized())
            .finish_non_exhaustive()
    }
}

impl ManagedSecret<SigningKey> {
    /// The JWT signing key (`JWT_SIGNING_KEY_SECRET_ARN`, `JWT_SIGNING_KEY_SECRET_VERSION`): the
    /// PEM of an Ed25519 private key, or an HS256 secret. An EdDSA key must be one of `public`
    /// (the configured verification keys).
    pub fn signing_key(
        client: crate::aws::LazyClient<Client>,
        arn: impl Into<String>,
        version: Option<String>,
        alg: JwtAlgorithm,
        public: Vec<VerifyKey>,
    ) -> Self {
        let parse = move |raw: &str| SigningKey::parse(alg, raw).and_then(|k| k.listed_in(&public));
        Self::new(client, arn, version, "JWT_SIGNING_KEY_SECRET_ARN", Box::new(parse))
    }
}

impl ManagedSecret<CodeKey> {
    /// The code key (`CODE_KEY_SECRET_ARN`): a string of at least [`CODE_KEY_MIN`] bytes.
    pub fn code_key(client: crate::aws::LazyClient<Client>, arn: impl Into<String>) -> Self {
        Self::new(client, arn, None, "CODE_KEY_SECRET_ARN", Box::new(CodeKey::parse))
    }
}

impl ManagedSecret<crate::social::ClientSecrets> {
    /// The providers' client secrets (`SOCIAL_CLIENT_SECRETS_SECRET_ARN`): a JSON object of
    /// provider name to secret.
    pub fn client_secrets(client: crate::aws::LazyClient<Client>, arn: impl Into<String>) -> Self {
        let parse = |raw: &str| crate::social::ClientSecrets::parse(raw);
        Self::new(client, arn, None, "SOCIAL_CLIENT_SECRETS_SECRET_ARN", Box::new(parse))
    }
}

impl<T: Send + Sync> ManagedSecret<T> {
    fn new(
        client: crate::aws::LazyClient<Client>,
        arn: impl Into<String>,
        version: Option<String>,
        var: &'static str,
        parse: Parser<T>,
    ) -> Self {
        Self { client, arn: arn.into(), version, var, parse, value: tokio::sync::OnceCell::new() }
    }

    async fn read(&self) -> Result<Arc<T>, TokenError> {
        let unavailable = |why: String| TokenError::KeyUnavailable(format!("{}: {why}", self.var));
        let out = self
            .client
            .get()
            .get_secret_value()
            .secret_id(&self.arn)
            .set_version_id(self.version.clone())
            .send()
            .await
            .map_err(|e| unavailable(format!("GetSecretValue: {}", e.code().unwrap_or("no answer"))))?;
        let raw = out.secret_string().ok_or_else(|| unavailable("the secret holds no SecretString".into()))?;
        let value = (self.parse)(raw.trim()).map_err(unavailable)?;
        tracing::info!(event = "secret_read", var = self.var);
        Ok(Arc::new(value))
    }

    /// The value, read on the first call.
    pub async fn get(&self) -> Result<Arc<T>, TokenError> {
        self.value.get_or_try_init(|| self.read()).await.cloned()
    }
}

/// Where one key comes from.
#[derive(Debug)]
pub enum Source<T> {
    Inline(Arc<T>),
    Managed(ManagedSecret<T>),
}

impl<T: Send + Sync> Source<T> {
    pub async fn get(&self) -> Result<Arc<T>, TokenError> {
        match self {
            Self::Inline(v) => Ok(v.clone()),
            Self::Managed(m) => m.get().await,
        }
    }
}

/// The deployment's keys.
#[derive(Debug)]
pub struct Keys {
    pub signing: Source<SigningKey>,
    pub code: Source<CodeKey>,
    pub social: Source<crate::social::ClientSecrets>,
}

#[async_trait]
impl SecretKeys for Keys {
    async fn signing_key(&self, _purpose: KeyUse) -> Result<Arc<SigningKey>, TokenError> {
        self.signing.get().await
    }

    async fn code_key(&self) -> Result<Arc<CodeKey>, TokenError> {
        self.code.get().await
    }

    async fn client_secrets(&self) -> Result<Arc<crate::social::ClientSecrets>, TokenError> {
        self.social.get().await
    }
}

impl Keys {
    /// The keys the settings name: given inline, or read from their secrets (each in its own
    /// region) with clients that `client` builds, on first use.
    pub fn from_settings(
        settings: &crate::config::Settings,
        sdk: &aws_config::SdkConfig,
        client: fn(&aws_config::SdkConfig) -> Client,
    ) -> Self {
        use crate::config::{CodeKeySource, JwtKeySource};
        let lazy = |arn: &str| crate::aws::LazyClient::new(&sdk_for_secret(sdk, arn), client);
        let signing = match &settings.jwt_key {
            JwtKeySource::Inline(key) => Source::Inline(Arc::new(key.clone())),
            JwtKeySource::SecretsManager { arn, version } => Source::Managed(ManagedSecret::signing_key(
                lazy(arn),
                arn.clone(),
                version.clone(),
                settings.jwt_algorithm,
                settings.jwt_public_keys.clone(),
            )),
        };
        let code = match &settings.code_key {
            CodeKeySource::Inline(key) => Source::Inline(Arc::new(key.clone())),
            CodeKeySource::SecretsManager { arn } => Source::Managed(ManagedSecret::code_key(lazy(arn), arn.clone())),
        };
        let social = match &settings.social.secrets {
            crate::social::SecretsSource::SecretsManager { arn } => {
                Source::Managed(ManagedSecret::client_secrets(lazy(arn), arn.clone()))
            }
            other => Source::Inline(other.inline()),
        };
        Self { signing, code, social }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_read_in_its_own_region() {
        let sdk = aws_config::SdkConfig::builder().region(aws_config::Region::new("us-east-1")).build();
        let region = |arn: &str| sdk_for_secret(&sdk, arn).region().map(|r| r.as_ref().to_owned());
        assert_eq!(
            region("arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region("arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf").as_deref(),
            Some("us-east-1")
        );
    }

    #[test]
    fn code_macs_depend_on_the_key_the_user_and_the_purpose() {
        let key = CodeKey::parse(&"k".repeat(32)).unwrap();
        let (ada, bob) = (UserId::generate(), UserId::generate());
        let mac = key.mac(&ada, CodePurpose::Activation, "123456");
        assert_eq!(mac.len(), 64);
        assert_eq!(mac, key.mac(&ada, CodePurpose::Activation, "123456"));
        assert_ne!(mac, key.mac(&ada, CodePurpose::Activation, "123457"));
        assert_ne!(mac, key.mac(&bob, CodePurpose::Activation, "123456"));
        assert_ne!(mac, key.mac(&ada, CodePurpose::PasswordReset, "123456"));
        assert_ne!(mac, CodeKey::parse(&"j".repeat(32)).unwrap().mac(&ada, CodePurpose::Activation, "123456"));
        assert_ne!(mac, crate::secrets::sha256_hex("123456"), "not a plain hash");
        assert!(CodeKey::parse("short").is_err());
        assert_ne!(
            CodeKey::derived_from("a").mac(&ada, CodePurpose::Activation, "1"),
            CodeKey::derived_from("b").mac(&ada, CodePurpose::Activation, "1")
        );
    }
}
