//! Gatehouse core: everything that is neither HTTP nor Lambda.

pub mod config;
pub mod domain;
pub mod mail;
pub mod password;
pub mod ports;
pub mod secrets;
pub mod services;
pub mod store;
pub mod tokens;

pub use config::Settings;
pub use services::App;

/// Builds the AWS SDK configuration from the environment (credential chain, region, and
/// `AWS_ENDPOINT_URL` for the local emulator). Once per cold start.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The app over DynamoDB and SES, configured from the environment. No network call is made
/// here: clients connect on first use. The error is one line naming the bad variable.
pub async fn app_from_env() -> Result<App, String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let sdk = aws_config().await.to_builder().timeout_config(sdk_timeouts()).build();
    app_over_aws(settings, &sdk)
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

/// The app over DynamoDB and SES with the given SDK configuration.
pub fn app_over_aws(settings: Settings, sdk: &aws_config::SdkConfig) -> Result<App, String> {
    let store = store::DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), settings.table_name.clone());
    let mailer = mail::SesMailer::new(aws_sdk_sesv2::Client::new(sdk), settings.email_from.clone());
    App::new(settings, std::sync::Arc::new(store), std::sync::Arc::new(mailer), std::sync::Arc::new(ports::SystemClock))
        .map_err(|e| e.to_string())
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
