//! The wiring to AWS: the SDK configuration (credentials, region, timeouts, retries), the app over
//! DynamoDB, SES and Secrets Manager built from the environment once per cold start, and clients
//! built on first use.

use crate::{keys, mail, ports, store, App, Settings};

/// Builds the AWS SDK configuration from the environment (credential chain, region, and
/// `AWS_ENDPOINT_URL` for the local emulator). Once per cold start.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_loader().load().await
}

/// The loader [`aws_config`] uses, for callers that add settings of their own before loading.
///
/// When the environment holds credentials (as it always does in Lambda) only the environment is
/// asked: the default chain would build an STS client for web identity at init, which loads the
/// system root certificates before the first request. Likewise a region in `AWS_REGION` (always
/// set in Lambda) is taken as it is: the default region chain would build an instance-metadata
/// client it never calls, about a tenth of a function's work before its first poll.
fn aws_loader() -> aws_config::ConfigLoader {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        loader = loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    }
    if let Some(region) = std::env::var("AWS_REGION").ok().filter(|r| !r.trim().is_empty()) {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader
}

/// The app over DynamoDB and SES, configured from the environment. No network call is made
/// here: clients connect on first use. The error is one line naming the bad variable.
pub async fn app_from_env() -> Result<App, String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    app_over_aws(settings, &functions_sdk_config().await)
}

/// The SDK configuration of the Lambda functions: [`aws_config()`]'s, with [`sdk_timeouts`] and
/// [`sdk_retries`] given to the loader (so it does not look for its own in the environment).
pub async fn functions_sdk_config() -> aws_config::SdkConfig {
    aws_loader().timeout_config(sdk_timeouts()).retry_config(sdk_retries()).load().await
}

/// Timeouts of the functions' AWS calls. Without them only connecting is bounded (3.1 s): a
/// DynamoDB or SES that accepts the connection and never answers would hold the function to its
/// own timeout (10 s) and API Gateway would answer a bare 5xx. With them a hung attempt is
/// abandoned and retried, and the call gives up in time for the handler to answer 503.
pub fn sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(1))
        .operation_attempt_timeout(std::time::Duration::from_secs(2))
        .operation_timeout(std::time::Duration::from_secs(5))
        .build()
}

/// Retries of the functions' AWS calls: the SDK's standard mode (3 attempts, jittered exponential
/// backoff, throttling and transient errors only) with DynamoDB's usual first backoff (tens of ms,
/// not the SDK's 1 s default), so that retries fit inside [`sdk_timeouts`]' 5 s per call.
pub fn sdk_retries() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(std::time::Duration::from_millis(50))
        .with_max_backoff(std::time::Duration::from_secs(1))
}

/// The app over DynamoDB and SES with the given SDK configuration.
pub fn app_over_aws(settings: Settings, sdk: &aws_config::SdkConfig) -> Result<App, String> {
    let dynamodb = LazyClient::new(sdk, aws_sdk_dynamodb::Client::new);
    let store = store::DynamoStore::lazy(dynamodb, settings.table_name.clone());
    let mailer = mail::SesMailer::lazy(LazyClient::new(sdk, aws_sdk_sesv2::Client::new), settings.email_from.clone())
        .with_configuration_set(settings.ses_configuration_set.clone());
    let keys: std::sync::Arc<dyn ports::SecretKeys> =
        std::sync::Arc::new(keys::Keys::from_settings(&settings, sdk, aws_sdk_secretsmanager::Client::new));
    let (store, mailer, clock) =
        (std::sync::Arc::new(store), std::sync::Arc::new(mailer), std::sync::Arc::new(ports::SystemClock));
    App::with_keys(settings, store, mailer, clock, keys).map_err(|e| e.to_string())
}

/// SDK configuration for a local emulator at `endpoint` with dummy credentials (tests, dev).
pub async fn local_aws_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "local"))
        .load()
        .await
}

/// An AWS SDK client built on first use. Building one validates its configuration, which builds
/// the HTTPS connector and loads the system root certificates: several milliseconds of a cold
/// start, spent only by the invocations that really call AWS (`jwt/verify`, `jwks` never do).
#[derive(Clone)]
pub struct LazyClient<C> {
    cell: std::sync::Arc<std::sync::OnceLock<C>>,
    sdk: std::sync::Arc<aws_config::SdkConfig>,
    make: fn(&aws_config::SdkConfig) -> C,
}

impl<C> LazyClient<C> {
    /// A client that `make` builds from `sdk` when it is first needed.
    pub fn new(sdk: &aws_config::SdkConfig, make: fn(&aws_config::SdkConfig) -> C) -> Self {
        Self { cell: Default::default(), sdk: std::sync::Arc::new(sdk.clone()), make }
    }

    /// A client built already.
    pub fn ready(client: C, make: fn(&aws_config::SdkConfig) -> C) -> Self {
        let cell = std::sync::OnceLock::new();
        let _ = cell.set(client);
        Self {
            cell: std::sync::Arc::new(cell),
            sdk: std::sync::Arc::new(aws_config::SdkConfig::builder().build()),
            make,
        }
    }

    pub fn get(&self) -> &C {
        self.cell.get_or_init(|| (self.make)(&self.sdk))
    }
}

impl<C> std::fmt::Debug for LazyClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient").field("built", &self.cell.get().is_some()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::LazyClient;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn the_functions_sdk_config_takes_region_and_credentials_from_the_environment_with_our_policies() {
        // nextest runs every test in a process of its own, so these variables reach no other test.
        std::env::set_var("AWS_REGION", "eu-west-3");
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "secret");
        let sdk = super::functions_sdk_config().await;
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-3"));
        assert!(sdk.credentials_provider().is_some());
        let retry = sdk.retry_config().map(|r| (r.max_attempts(), r.initial_backoff(), r.max_backoff()));
        assert_eq!(retry, Some((3, std::time::Duration::from_millis(50), std::time::Duration::from_secs(1))));
        let timeouts =
            sdk.timeout_config().map(|t| (t.connect_timeout(), t.operation_attempt_timeout(), t.operation_timeout()));
        let secs = |s| Some(std::time::Duration::from_secs(s));
        assert_eq!(timeouts, Some((secs(1), secs(2), secs(5))));
    }

    static BUILT: AtomicUsize = AtomicUsize::new(0);

    fn build(_: &aws_config::SdkConfig) -> usize {
        BUILT.fetch_add(1, Ordering::SeqCst) + 100
    }

    #[test]
    fn lazy_client_is_built_once_on_first_use_and_shared_by_clones() {
        let lazy = LazyClient::new(&aws_config::SdkConfig::builder().build(), build);
        let clone = lazy.clone();
        assert_eq!(BUILT.load(Ordering::SeqCst), 0, "nothing is built before first use");
        assert_eq!(*clone.get(), 100);
        assert_eq!(*lazy.get(), 100);
        assert_eq!(BUILT.load(Ordering::SeqCst), 1);
        assert_eq!(*LazyClient::ready(7, build).get(), 7);
        assert_eq!(BUILT.load(Ordering::SeqCst), 1, "a ready client is never rebuilt");
    }
}
