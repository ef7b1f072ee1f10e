//! Gatehouse core: everything that is neither HTTP nor Lambda.

pub mod aws;
pub mod config;
pub mod domain;
pub mod i18n;
#[cfg(feature = "test-util")]
pub mod iam;
pub mod keys;
pub mod mail;
pub mod mfa;
pub mod password;
pub mod policy;
pub mod ports;
#[cfg(feature = "test-util")]
pub mod probes;
pub mod secrets;
pub mod services;
pub mod site;
pub mod social;
pub mod store;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod tokens;

pub use config::Settings;
pub use services::App;
