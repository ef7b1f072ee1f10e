//! The JWT signing key's sources: the configuration itself, or a Secrets Manager secret read on
//! first use (no network call at init, one `GetSecretValue` per container, and only in the
//! functions that sign; with HS256 also in those that verify).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::Client;

use crate::ports::{KeyUse, SigningKeys};
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

/// A key given in the configuration (`JWT_SIGNING_KEY`).
#[derive(Clone, Debug)]
pub struct StaticKey(pub Arc<SigningKey>);

#[async_trait]
impl SigningKeys for StaticKey {
    async fn signing_key(&self, _purpose: KeyUse) -> Result<Arc<SigningKey>, TokenError> {
        Ok(self.0.clone())
    }
}

/// The key in a Secrets Manager secret (`JWT_SIGNING_KEY_SECRET_ARN`, optionally pinned to a
/// version with `JWT_SIGNING_KEY_SECRET_VERSION`), as a plain `SecretString`: the PEM of an
/// Ed25519 private key, or an HS256 secret. Read once; a failed read is retried by the next
/// request, never cached.
pub struct SecretsManagerKey {
    client: crate::LazyClient<Client>,
    arn: String,
    version: Option<String>,
    alg: JwtAlgorithm,
    public: Vec<VerifyKey>,
    key: tokio::sync::OnceCell<Arc<SigningKey>>,
}

impl std::fmt::Debug for SecretsManagerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerKey")
            .field("arn", &self.arn)
            .field("version", &self.version)
            .field("read", &self.key.initialized())
            .finish_non_exhaustive()
    }
}

impl SecretsManagerKey {
    /// `public`: the configured verification keys; an EdDSA key must be one of them.
    pub fn new(
        client: crate::LazyClient<Client>,
        arn: impl Into<String>,
        version: Option<String>,
        alg: JwtAlgorithm,
        public: Vec<VerifyKey>,
    ) -> Self {
        Self { client, arn: arn.into(), version, alg, public, key: tokio::sync::OnceCell::new() }
    }

    async fn read(&self) -> Result<Arc<SigningKey>, TokenError> {
        let unavailable = |why: String| TokenError::KeyUnavailable(why);
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
        // Errors name the variable, never the key.
        let key = SigningKey::parse(self.alg, raw.trim())
            .and_then(|k| k.listed_in(&self.public))
            .map_err(|why| unavailable(format!("JWT_SIGNING_KEY_SECRET_ARN: {why}")))?;
        tracing::info!(event = "signing_key_read", kid = key.kid().unwrap_or(""));
        Ok(Arc::new(key))
    }
}

#[async_trait]
impl SigningKeys for SecretsManagerKey {
    async fn signing_key(&self, _purpose: KeyUse) -> Result<Arc<SigningKey>, TokenError> {
        self.key.get_or_try_init(|| self.read()).await.cloned()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_secret_is_read_in_its_own_region() {
        let sdk = aws_config::SdkConfig::builder().region(aws_config::Region::new("us-east-1")).build();
        let region = |arn: &str| super::sdk_for_secret(&sdk, arn).region().map(|r| r.as_ref().to_owned());
        assert_eq!(
            region("arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region("arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf").as_deref(),
            Some("us-east-1")
        );
    }
}
