//! The auth actions' rules, grouped by topic (registration, activation, login, refresh,
//! passwords, email change, profile, users, sessions, groups) with the helpers they share (codes,
//! throttling, input): pure logic over the ports, no HTTP. See docs/ARCHITECTURE.md.

pub mod activation;
pub mod admin_users;
pub mod audit;
pub mod auth;
pub mod codes;
pub mod email_change;
pub mod groups;
pub mod input;
pub mod login;
pub mod me;
pub mod mfa;
pub mod passkeys;
pub mod passwords;
pub mod permissions;
pub mod refresh;
pub mod register;
pub mod sessions;
pub mod social;
pub mod throttle;
pub mod users;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Settings;
use crate::password::{PasswordHasher, PasswordPolicy};
use crate::ports::{Clock, Mailer, SecretKeys, Store, StoreError};
use crate::tokens::{TokenError, TokenService};

pub use input::Form;

/// Everything an action needs, built once per cold start and lent to every request.
pub struct App {
    pub settings: Settings,
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub policy: PasswordPolicy,
    pub tokens: TokenService,
    /// The signing and code keys (the token service holds the same).
    pub keys: Arc<dyn SecretKeys>,
    /// The sign-in providers' client, discovery documents and keys (social sign-in).
    pub federation: Arc<crate::social::Federation>,
    /// IP budgets this container saw spent, until their windows end (no more writes to them).
    pub spent: throttle::SpentBudgets,
}

/// Why an app could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Hash(#[from] crate::password::HashError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl App {
    /// The app with the signing key given in the settings (`JWT_SIGNING_KEY`).
    pub fn new(
        settings: Settings,
        store: Arc<dyn Store>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AppError> {
        let keys = settings.inline_key().ok_or_else(|| {
            crate::config::ConfigError::new(
                "JWT_SIGNING_KEY_SECRET_ARN",
                "a key in Secrets Manager needs the AWS clients: use aws::app_over_aws, or give JWT_SIGNING_KEY",
            )
        })?;
        Self::with_keys(settings, store, mailer, clock, keys)
    }

    /// The app with the signing key from `keys`.
    pub fn with_keys(
        settings: Settings,
        store: Arc<dyn Store>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        keys: Arc<dyn SecretKeys>,
    ) -> Result<Self, AppError> {
        Ok(Self {
            hasher: PasswordHasher::new(settings.argon2)?,
            policy: PasswordPolicy { min_length: settings.password_min_length },
            tokens: TokenService::new(&settings, keys.clone()),
            keys,
            federation: Arc::new(crate::social::Federation::new()),
            spent: throttle::SpentBudgets::default(),
            settings,
            store,
            mailer,
            clock,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

/// DRF-shaped field errors: field name -> messages.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.entry(field.to_owned()).or_default().push(message.into());
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }
    /// `Err(Invalid)` when any error was recorded.
    pub fn finish(self) -> Result<(), ServiceError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid(self))
        }
    }
    pub fn single(field: &str, message: impl Into<String>) -> ServiceError {
        let mut e = Self::default();
        e.add(field, message);
        ServiceError::Invalid(e)
    }
}

/// Every way an action can fail; the HTTP edge turns each into a DRF-shaped response.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("not authenticated")]
    NotAuthenticated,
    #[error("token not valid")]
    TokenNotValid,
    #[error("user inactive")]
    UserInactive,
    #[error("no active account")]
    NoActiveAccount,
    #[error("forbidden: {code}")]
    Forbidden { code: &'static str, detail: &'static str },
    /// 401 with its own code (e.g. an expired `mfa_token`).
    #[error("unauthorized: {code}")]
    Unauthorized { code: &'static str, detail: &'static str },
    /// The password was right and the account has a second factor: 401 `mfa_required`, with the
    /// token `mfa/verify` takes and the methods it accepts (never tokens).
    #[error("second factor required")]
    MfaRequired { mfa_token: String, methods: Vec<&'static str>, webauthn: Option<serde_json::Value> },
    #[error("not found")]
    NotFound,
    /// Too many requests; retry after this many seconds.
    #[error("throttled for {0} s")]
    Throttled(u64),
    /// DynamoDB throttled a rate counter of this request (a flood at its IP or account makes the
    /// item hot): answered as [`ServiceError::Throttled`], without its verdict that a budget is
    /// spent (see `throttle::limiter_err`).
    #[error("rate counter congested, retry after {0} s")]
    Congested(u64),
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.message)
    }
}

impl From<TokenError> for ServiceError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid => Self::TokenNotValid,
            TokenError::Signing(m) => Self::Internal(m),
            TokenError::KeyUnavailable(m) => Self::Unavailable(m),
        }
    }
}

impl From<crate::password::HashError> for ServiceError {
    fn from(e: crate::password::HashError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<getrandom::Error> for ServiceError {
    fn from(e: getrandom::Error) -> Self {
        Self::Internal(format!("random: {e}"))
    }
}

/// Who is calling, as far as sessions record it.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// An access/refresh pair (refresh absent when rotation is off and this was a refresh).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    pub access: String,
    pub refresh: Option<String>,
}

/// Sends an email; a failure is logged, and the action decides what it means (each action
/// documents how its user recovers). True when the mailer accepted it.
pub(crate) async fn deliver(app: &App, email: &crate::ports::OutgoingEmail, user: &crate::domain::UserId) -> bool {
    match app.mailer.send(email).await {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(event = "email", outcome = "failed", kind = ?email.kind, user_id = %user, error = %e);
            false
        }
    }
}

/// Ends every session of the user (but `except`) and, without an exception, refuses every token
/// issued before now: used by password reset, account disabling and "log out everywhere".
pub(crate) async fn revoke_sessions(
    app: &App,
    user: &crate::domain::UserId,
    except: Option<&str>,
) -> Result<(), ServiceError> {
    app.store.delete_sessions(user, except).await?;
    tracing::info!(event = "sessions_revoked", user_id = %user, kept = except.is_some());
    Ok(())
}

/// RFC 3339 UTC timestamp of unix seconds, as DRF renders datetimes.
pub fn iso8601(secs: i64) -> String {
    use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
    DateTime::from_secs(secs).fmt(DateTimeFormat::DateTime).unwrap_or_default()
}
