//! The wiring to AWS: the SDK configuration (credentials, region, timeouts, retries), the app over
//! DynamoDB, SES and Secrets Manager built from the environment once per cold start, and clients
//! built on first use.

use crate::{keys, mail, ports, store, App, Settings};

/// Builds the AWS SDK configuration of the tools (authctl, the dev server) from the environment
/// through `aws_config`'s loader: the whole credential chain (profiles, SSO excepted, web
/// identity, ECS, instance metadata), the region chain and `AWS_ENDPOINT_URL` for the local
/// emulator. The functions build theirs without the loader: [`functions_sdk_config`].
///
/// When the environment holds credentials only the environment is asked: the default chain would
/// build an STS client for web identity, which loads the system root certificates before the
/// first request. Likewise a region in `AWS_REGION` is taken as it is: the default region chain
/// would build an instance-metadata client it never calls.
pub async fn aws_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        loader = loader.credentials_provider(aws_config::environment::EnvironmentVariableCredentialsProvider::new());
    }
    if let Some(region) = std::env::var("AWS_REGION").ok().filter(|r| !r.trim().is_empty()) {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader.load().await
}

/// The app over DynamoDB and SES, configured from the environment. No network call is made
/// here: clients connect on first use. The error is one line naming the bad variable.
pub async fn app_from_env() -> Result<App, String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    app_over_aws(settings, &functions_sdk_config()?)
}

/// The SDK configuration of the Lambda functions, built from the environment Lambda gives every
/// function and nothing else: `AWS_REGION`, the execution role's credentials in
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, `AWS_ENDPOINT_URL` when
/// set (the local emulator), and [`sdk_timeouts`] and [`sdk_retries`].
///
/// It does not go through `aws_config`'s loader. The loader looks in a dozen environment
/// variables and the shared config files for settings Lambda never sets, and it keeps the whole
/// default credential chain (profiles, web identity through an STS client, ECS, instance metadata)
/// linked into every binary, where the dynamic loader relocates it at each cold start.
/// A missing variable is a configuration error naming it: outside Lambda, export credentials
/// into the environment (e.g. `aws configure export-credentials --format env`).
pub fn functions_sdk_config() -> Result<aws_config::SdkConfig, String> {
    functions_sdk_config_from(|name| std::env::var(name).ok())
}

fn functions_sdk_config_from(var: impl Fn(&str) -> Option<String>) -> Result<aws_config::SdkConfig, String> {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let region = set("AWS_REGION").ok_or("AWS_REGION is not set: the functions' AWS region")?;
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        if set(name).is_none() {
            return Err(format!(
                "{name} is not set: the functions take their AWS credentials from the environment, as Lambda gives them"
            ));
        }
    }
    let credentials = aws_config::environment::EnvironmentVariableCredentialsProvider::new();
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(credentials))
        .timeout_config(sdk_timeouts())
        .retry_config(sdk_retries());
    if let Some(endpoint) = set("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(builder.build())
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

    fn lambda_env(name: &str) -> Option<String> {
        let value = match name {
            "AWS_REGION" => "eu-west-3",
            "AWS_ACCESS_KEY_ID" => "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY" => "secret",
            "AWS_SESSION_TOKEN" => "token",
            _ => return None,
        };
        Some(value.to_string())
    }

    #[test]
    fn the_functions_sdk_config_takes_region_and_credentials_from_the_environment_with_our_policies() {
        let sdk = super::functions_sdk_config_from(lambda_env).unwrap();
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-3"));
        assert!(sdk.credentials_provider().is_some());
        assert_eq!(sdk.endpoint_url(), None, "no endpoint set: the service's own");
        let timeouts =
            sdk.timeout_config().map(|t| (t.connect_timeout(), t.operation_attempt_timeout(), t.operation_timeout()));
        let secs = |s| Some(std::time::Duration::from_secs(s));
        assert_eq!(timeouts, Some((secs(1), secs(2), secs(5))));
        // What the clients are built with: the policies survive the client's own defaults.
        for retry in [
            aws_sdk_dynamodb::Config::from(&sdk).retry_config().cloned(),
            aws_sdk_sesv2::Config::from(&sdk).retry_config().cloned(),
            aws_sdk_secretsmanager::Config::from(&sdk).retry_config().cloned(),
        ] {
            let retry = retry.map(|r| (r.max_attempts(), r.initial_backoff(), r.max_backoff()));
            assert_eq!(retry, Some((3, std::time::Duration::from_millis(50), std::time::Duration::from_secs(1))));
        }
        assert_eq!(aws_sdk_dynamodb::Config::from(&sdk).region().map(|r| r.as_ref()), Some("eu-west-3"));
    }

    #[tokio::test]
    async fn the_functions_credentials_are_the_environments() {
        use aws_sdk_dynamodb::config::ProvideCredentials;
        // nextest runs every test in a process of its own, so these variables reach no other test.
        for name in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
            std::env::set_var(name, lambda_env(name).unwrap());
        }
        let sdk = super::functions_sdk_config().unwrap();
        let credentials = sdk.credentials_provider().unwrap().provide_credentials().await.unwrap();
        assert_eq!(credentials.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(credentials.session_token(), Some("token"));
    }

    #[test]
    fn the_emulators_endpoint_is_taken_from_aws_endpoint_url() {
        let env = |name: &str| match name {
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:4566".to_string()),
            _ => lambda_env(name),
        };
        let sdk = super::functions_sdk_config_from(env).unwrap();
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:4566"));
    }

    #[test]
    fn a_missing_region_or_credential_is_a_configuration_error_naming_it() {
        for missing in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            let env = |name: &str| if name == missing { Some("  ".to_string()) } else { lambda_env(name) };
            let error = super::functions_sdk_config_from(env).unwrap_err();
            assert!(error.starts_with(&format!("{missing} is not set")), "{error}");
        }
        let no_token = |name: &str| if name == "AWS_SESSION_TOKEN" { None } else { lambda_env(name) };
        assert!(super::functions_sdk_config_from(no_token).is_ok(), "long-term keys need no session token");
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
