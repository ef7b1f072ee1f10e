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
