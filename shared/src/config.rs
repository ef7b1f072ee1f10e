//! Settings, read once per cold start from the environment.
//!
//! Variable names follow djoser / simplejwt where such a setting exists. Every value is checked
//! here, so a bad configuration fails the cold start with one line naming the variable.

use std::collections::HashMap;
use std::time::Duration;

use crate::tokens::{JwtAlgorithm, SigningKey, VerifyKey};

/// A configuration error: names the variable and says what is wrong, never echoes a secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self { var, reason: reason.into() }
    }
}

/// A budget: at most `limit` hits per `window` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u64,
    pub window: i64,
}

impl Rate {
    /// Parses `20/10m` (20 per 10 minutes); `off` disables.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        if raw.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (n, d) = raw.split_once('/').ok_or("must look like 20/10m, or off")?;
        let limit: u64 = n.trim().parse().map_err(|_| "the count must be a whole number")?;
        let window = parse_duration(d)?.as_secs() as i64;
        if limit == 0 || window == 0 {
            return Err("count and window must be above zero (use off to disable)".into());
        }
        Ok(Some(Self { limit, window }))
    }
}

/// How emailed one-time codes look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeFormat {
    /// A 256-bit URL-safe token inside a `{uid}/{token}` link.
    Link,
    /// A 6-digit code users type (the link carries it too); dies after 5 wrong guesses.
    Numeric,
}

/// What `DELETE /auth/users/me/` does to the caller's account (`DELETE_ME_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteMeMode {
    /// The account, its claims, codes and sessions are removed (djoser's behaviour).
    Delete,
    /// The account and its email/username claims are kept, inactive; every token and session is
    /// revoked. Only an admin makes it active again.
    Deactivate,
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    /// OWASP's recommendation for argon2id.
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

/// Where the JWT signing key comes from.
#[derive(Clone)]
pub enum JwtKeySource {
    /// `JWT_SIGNING_KEY`: the key itself (local stack, tests, `cargo lambda watch`).
    Inline(SigningKey),
    /// `JWT_SIGNING_KEY_SECRET_ARN` (+ `JWT_SIGNING_KEY_SECRET_VERSION`): read from Secrets Manager
    /// when first needed (the deployed functions).
    SecretsManager { arn: String, version: Option<String> },
}

/// Where the code key (`keys::CodeKey`) comes from.
#[derive(Clone, Debug)]
pub enum CodeKeySource {
    /// `CODE_KEY`, or for the local stack a key derived from an inline `JWT_SIGNING_KEY`.
    Inline(crate::keys::CodeKey),
    /// `CODE_KEY_SECRET_ARN`: read from Secrets Manager when first needed.
    SecretsManager { arn: String },
}

/// Everything the services need to know, validated.
#[derive(Clone)]
pub struct Settings {
    pub table_name: String,
    pub email_from: String,
    /// SES configuration set named on every email (`SES_CONFIGURATION_SET`).
    pub ses_configuration_set: Option<String>,
    pub site_name: String,
    /// The account pages' branding: a logo (`BRAND_LOGO_URL`, https or a path on the API's own
    /// domain) and an accent colour (`BRAND_ACCENT_COLOR`, `#rrggbb`).
    pub brand_logo_url: Option<String>,
    pub brand_accent_color: String,
    /// The opt-in refresh-token cookie for browsers (`JWT_COOKIE`): see README "Pages".
    pub jwt_cookie: bool,
    pub protocol: String,
    pub frontend_domain: String,
    /// The WebAuthn relying party id passkeys are bound to (`WEBAUTHN_RP_ID`; default the host of
    /// `FRONTEND_DOMAIN`).
    pub webauthn_rp_id: String,
    /// The origins passkey ceremonies may come from (`WEBAUTHN_ORIGINS`, comma-separated; default
    /// `{PROTOCOL}://{FRONTEND_DOMAIN}`), each the RP id or one of its subdomains. Empty: passkeys
    /// are off (the defaults do not make a WebAuthn origin).
    pub webauthn_origins: Vec<webauthn_rs::prelude::Url>,
    pub activation_url: String,
    pub password_reset_confirm_url: String,
    pub email_change_confirm_url: String,
    pub code_format: CodeFormat,
    pub send_activation_email: bool,
    pub send_confirmation_email: bool,
    pub user_create_password_retype: bool,
    pub set_password_retype: bool,
    pub password_reset_confirm_retype: bool,
    pub set_username_retype: bool,
    pub logout_on_password_change: bool,
    pub password_changed_email_confirmation: bool,
    pub password_reset_show_email_not_found: bool,
    pub email_change_verification: bool,
    pub login_after_activation: bool,
    pub hide_users: bool,
    pub update_last_login: bool,
    /// What deleting one's own account does.
    pub delete_me_mode: DeleteMeMode,
    /// A changed profile (by its owner or an admin) is notified to the account's address.
    pub profile_updated_email: bool,
    /// How long audit entries are kept (`AUDIT_RETENTION`).
    pub audit_retention: Duration,
    pub password_reset_timeout: Duration,
    pub email_change_timeout: Duration,
    /// reset_password and resend_activation answer no sooner than this, whatever they did,
    /// so known and unknown addresses take the same time.
    pub timing_floor: Duration,
    /// A failed login (wrong password or unknown account) answers no sooner than this after the
    /// request began (zero: off). Set above the slowest verification of imported (Django) hashes
    /// until every imported account has logged in once, so that a wrong password for a
    /// not-yet-upgraded account and an unknown address take the same time.
    pub login_failure_floor: Duration,
    /// Per-IP budgets (None: off).
    pub rate_login_failures_ip: Option<Rate>,
    pub rate_register_ip: Option<Rate>,
    pub rate_resend_ip: Option<Rate>,
    pub rate_reset_ip: Option<Rate>,
    /// Confirmations (activation, reset confirm, email-change confirm) per IP.
    pub rate_confirm_ip: Option<Rate>,
    /// Passwordless passkey sign-ins started per source IP (`RATE_PASSKEY_OPTIONS_IP`): each
    /// writes a challenge item.
    pub rate_passkey_options_ip: Option<Rate>,
    /// set_email requests per IP.
    pub rate_set_email_ip: Option<Rate>,
    /// Failed logins (and `current_password` checks) per account across every IP: bounds
    /// distributed guessing, far above one IP's lockout.
    pub rate_login_failures_account: Option<Rate>,
    /// Guesses at an account's numeric codes, per purpose, whatever the code: asking for a new
    /// code does not reset it.
    pub code_guess_budget: Option<Rate>,
    /// Failed logins on one account before it is locked out (doubling from 1 s, capped).
    pub login_lockout_threshold: u32,
    pub login_lockout_max: Duration,
    /// Least time between two emails to one address (resend, reset).
    pub email_cooldown: Duration,
    pub activation_token_lifetime: Duration,
    pub unactivated_account_lifetime: Duration,
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub session_lifetime: Duration,
    pub rotate_refresh_tokens: bool,
    pub jwt_algorithm: JwtAlgorithm,
    pub jwt_key: JwtKeySource,
    pub code_key: CodeKeySource,
    /// EdDSA: every public key that verifies tokens, published in the JWKS (`JWT_PUBLIC_KEYS`, or
    /// the inline key's own when that is unset). Empty for HS256.
    pub jwt_public_keys: Vec<VerifyKey>,
    /// How long the previous refresh token of a session still yields a pair (multi-tab apps).
    pub refresh_reuse_grace: Duration,
    /// How long after signing in a session may take a sensitive step (turning a second factor
    /// off, new recovery codes) without proving again who it is (`REAUTH_WINDOW`; `0`: always
    /// prove again).
    pub reauth_window: Duration,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub jwt_leeway: Duration,
    pub argon2: Argon2Settings,
    pub password_min_length: usize,
    /// A team's own email templates, djoser's layout (`EMAIL_TEMPLATES_DIR`), checked at load;
    /// empty when unset.
    pub email_templates: crate::mail::EmailTemplates,
    /// Social / OpenID Connect sign-in: the providers, the redirect URIs allowed, where their
    /// client secrets are, and the per-IP budget of sign-ins started.
    pub social: crate::social::SocialSettings,
    /// The language of responses whose request asks for none we speak, and of emails to users
    /// with no language stored (`LANGUAGE_CODE`, Django's setting; default `en`).
    pub language_code: &'static str,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The signing key is deliberately left out.
        f.debug_struct("Settings")
            .field("table_name", &self.table_name)
            .field("email_from", &self.email_from)
            .field("site_name", &self.site_name)
            .field("frontend_domain", &self.frontend_domain)
            .field("jwt_algorithm", &self.jwt_algorithm)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Reads the process environment (a variable whose name or value is not UTF-8 counts as not
    /// set). Looked up in a list, not a hash map: at every cold start a few dozen variables are
    /// read, and hashing each name cost more than comparing lengths.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        Self::from_lookup(&|name| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()))
    }

    /// Reads settings from a map of variables (a test's, or a tool's).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(&|name| vars.get(name).map(String::as_str))
    }

    fn from_lookup<'a>(vars: &'a dyn Fn(&str) -> Option<&'a str>) -> Result<Self, ConfigError> {
        let env = Env(vars);
        let jwt_algorithm = match env.get("JWT_ALGORITHM").unwrap_or("EdDSA") {
            "EdDSA" => JwtAlgorithm::EdDsa,
            "HS256" => JwtAlgorithm::Hs256,
            other => {
                return Err(ConfigError::new(
                    "JWT_ALGORITHM",
                    format!("\"{other}\" is not supported (use EdDSA or HS256)"),
                ))
            }
        };
        let (jwt_key, jwt_public_keys) = jwt_keys(&env, jwt_algorithm)?;
        let code_key = match (env.get("CODE_KEY"), env.get("CODE_KEY_SECRET_ARN"), env.get("JWT_SIGNING_KEY")) {
            (Some(_), Some(_), _) => {
                return Err(ConfigError::new("CODE_KEY", "set either CODE_KEY or CODE_KEY_SECRET_ARN, not both"))
            }
            (Some(raw), None, _) => {
                CodeKeySource::Inline(crate::keys::CodeKey::parse(raw).map_err(|r| ConfigError::new("CODE_KEY", r))?)
            }
            (None, Some(arn), _) => {
                if !(arn.starts_with("arn:") && arn.split(':').nth(2) == Some("secretsmanager")) {
                    return Err(ConfigError::new("CODE_KEY_SECRET_ARN", "not the ARN of a Secrets Manager secret"));
                }
                CodeKeySource::SecretsManager { arn: arn.to_owned() }
            }
            (None, None, Some(raw)) => CodeKeySource::Inline(crate::keys::CodeKey::derived_from(raw)),
            (None, None, None) => {
                return Err(ConfigError::new(
                    "CODE_KEY_SECRET_ARN",
                    "is required with JWT_SIGNING_KEY_SECRET_ARN (the key one-time codes are stored under)",
                ))
            }
        };

        let email_from = env.required("EMAIL_FROM")?.to_owned();
        if crate::domain::Email::parse(&email_from).is_err() {
            return Err(ConfigError::new("EMAIL_FROM", "not a valid email address"));
        }
        let protocol = env.get("PROTOCOL").unwrap_or("https").to_owned();
        if protocol != "https" && protocol != "http" {
            return Err(ConfigError::new("PROTOCOL", "must be http or https"));
        }
        // Unset: the API's own domain, request by request (see `Settings::link_domain`).
        let frontend_domain = env.get("FRONTEND_DOMAIN").unwrap_or("").to_owned();
        let (webauthn_rp_id, webauthn_origins) = webauthn(&env, &protocol, &frontend_domain)?;
        let activation_url = env.get("ACTIVATION_URL").unwrap_or("activate/{uid}/{token}").to_owned();
        if !activation_url.contains("{uid}") || !activation_url.contains("{token}") {
            return Err(ConfigError::new("ACTIVATION_URL", "must contain {uid} and {token}"));
        }
        let url = |var: &'static str, default: &str| -> Result<String, ConfigError> {
            let v = env.get(var).unwrap_or(default).to_owned();
            if !v.contains("{uid}") || !v.contains("{token}") {
                return Err(ConfigError::new(var, "must contain {uid} and {token}"));
            }
            Ok(v)
        };
        let code_format = match env.get("CODE_FORMAT").unwrap_or("link") {
            "link" => CodeFormat::Link,
            "numeric" => CodeFormat::Numeric,
            _ => return Err(ConfigError::new("CODE_FORMAT", "must be link or numeric")),
        };
        let delete_me_mode = match env.get("DELETE_ME_MODE").unwrap_or("delete") {
            "delete" => DeleteMeMode::Delete,
            "deactivate" => DeleteMeMode::Deactivate,
            _ => return Err(ConfigError::new("DELETE_ME_MODE", "must be delete or deactivate")),
        };
        let argon2 = Argon2Settings {
            memory_kib: env.number("ARGON2_MEMORY_KIB", 19_456, 8, 4 * 1024 * 1024)?,
            iterations: env.number("ARGON2_ITERATIONS", 2, 1, 100)?,
            parallelism: env.number("ARGON2_PARALLELISM", 1, 1, 16)?,
        };
        if argon2.memory_kib < 8 * argon2.parallelism {
            return Err(ConfigError::new("ARGON2_MEMORY_KIB", "must be at least 8 × ARGON2_PARALLELISM"));
        }
        let settings = Self {
            table_name: env.get("TABLE_NAME").unwrap_or("gatehouse").to_owned(),
            email_from,
            ses_configuration_set: match env.get("SES_CONFIGURATION_SET") {
                Some(name)
                    if name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
                {
                    Some(name.to_owned())
                }
                Some(_) => return Err(ConfigError::new("SES_CONFIGURATION_SET", "not a configuration set name")),
                None => None,
            },
            site_name: env.get("SITE_NAME").unwrap_or("Gatehouse").to_owned(),
            brand_logo_url: brand_logo_url(&env)?,
            brand_accent_color: brand_accent_color(&env)?,
            jwt_cookie: env.flag("JWT_COOKIE", false)?,
            protocol,
            frontend_domain,
            webauthn_rp_id,
            webauthn_origins,
            activation_url,
            password_reset_confirm_url: url("PASSWORD_RESET_CONFIRM_URL", "password/reset/confirm/{uid}/{token}")?,
            email_change_confirm_url: url("EMAIL_CHANGE_CONFIRM_URL", "email/change/confirm/{uid}/{token}")?,
            code_format,
            send_activation_email: env.flag("SEND_ACTIVATION_EMAIL", true)?,
            send_confirmation_email: env.flag("SEND_CONFIRMATION_EMAIL", false)?,
            user_create_password_retype: env.flag("USER_CREATE_PASSWORD_RETYPE", false)?,
            set_password_retype: env.flag("SET_PASSWORD_RETYPE", false)?,
            password_reset_confirm_retype: env.flag("PASSWORD_RESET_CONFIRM_RETYPE", false)?,
            set_username_retype: env.flag("SET_USERNAME_RETYPE", false)?,
            logout_on_password_change: env.flag("LOGOUT_ON_PASSWORD_CHANGE", false)?,
            password_changed_email_confirmation: env.flag("PASSWORD_CHANGED_EMAIL_CONFIRMATION", false)?,
            password_reset_show_email_not_found: env.flag("PASSWORD_RESET_SHOW_EMAIL_NOT_FOUND", false)?,
            email_change_verification: env.flag("EMAIL_CHANGE_VERIFICATION", true)?,
            login_after_activation: env.flag("LOGIN_AFTER_ACTIVATION", false)?,
            hide_users: env.flag("HIDE_USERS", true)?,
            update_last_login: env.flag("UPDATE_LAST_LOGIN", true)?,
            delete_me_mode,
            profile_updated_email: env.flag("PROFILE_UPDATED_EMAIL", false)?,
            audit_retention: env.duration("AUDIT_RETENTION", 90 * DAY)?,
            password_reset_timeout: env.duration("PASSWORD_RESET_TIMEOUT", 3600)?,
            email_change_timeout: env.duration("EMAIL_CHANGE_TIMEOUT", DAY)?,
            timing_floor: env.duration_allow_zero("TIMING_FLOOR", Duration::from_millis(400))?,
            login_failure_floor: {
                let floor = env.duration_allow_zero("LOGIN_FAILURE_FLOOR", Duration::ZERO)?;
                // Well within the functions' 10 s timeout (the handler's deadline is 500 ms before).
                if floor > Duration::from_secs(5) {
                    return Err(ConfigError::new("LOGIN_FAILURE_FLOOR", "must be at most 5s"));
                }
                floor
            },
            rate_login_failures_ip: env.rate("RATE_LOGIN_FAILURES_IP", "30/5m")?,
            rate_register_ip: env.rate("RATE_REGISTER_IP", "20/1h")?,
            rate_resend_ip: env.rate("RATE_RESEND_IP", "10/1h")?,
            rate_reset_ip: env.rate("RATE_RESET_IP", "10/1h")?,
            rate_confirm_ip: env.rate("RATE_CONFIRM_IP", "30/1h")?,
            rate_passkey_options_ip: env.rate("RATE_PASSKEY_OPTIONS_IP", "60/1m")?,
            rate_set_email_ip: env.rate("RATE_SET_EMAIL_IP", "10/1h")?,
            rate_login_failures_account: env.rate("RATE_LOGIN_FAILURES_ACCOUNT", "100/1h")?,
            code_guess_budget: env.rate("CODE_GUESS_BUDGET", "10/1h")?,
            login_lockout_threshold: env.number("LOGIN_LOCKOUT_THRESHOLD", 5, 1, 1000)?,
            login_lockout_max: env.duration("LOGIN_LOCKOUT_MAX", 900)?,
            email_cooldown: env.duration_allow_zero("EMAIL_COOLDOWN", Duration::from_secs(60))?,
            activation_token_lifetime: env.duration("ACTIVATION_TOKEN_LIFETIME", 3 * DAY)?,
            unactivated_account_lifetime: env.duration("UNACTIVATED_ACCOUNT_LIFETIME", 7 * DAY)?,
            access_token_lifetime: env.duration("ACCESS_TOKEN_LIFETIME", 5 * MINUTE)?,
            refresh_token_lifetime: env.duration("REFRESH_TOKEN_LIFETIME", DAY)?,
            session_lifetime: env.duration("SESSION_LIFETIME", 30 * DAY)?,
            rotate_refresh_tokens: env.flag("ROTATE_REFRESH_TOKENS", true)?,
            jwt_algorithm,
            jwt_key,
            code_key,
            jwt_public_keys,
            refresh_reuse_grace: {
                let g = env.duration_allow_zero("REFRESH_REUSE_GRACE", Duration::ZERO)?;
                if g > Duration::from_secs(60) {
                    return Err(ConfigError::new("REFRESH_REUSE_GRACE", "must be at most 60s"));
                }
                g
            },
            reauth_window: env.duration_allow_zero("REAUTH_WINDOW", Duration::from_secs(10 * MINUTE))?,
            jwt_issuer: env.get("JWT_ISSUER").unwrap_or("gatehouse").to_owned(),
            jwt_audience: env.get("JWT_AUDIENCE").unwrap_or("gatehouse").to_owned(),
            jwt_leeway: env.duration_allow_zero("JWT_LEEWAY", Duration::ZERO)?,
            argon2,
            password_min_length: env.number("PASSWORD_MIN_LENGTH", 8, 1, 4096)? as usize,
            email_templates: match env.get("EMAIL_TEMPLATES_DIR") {
                Some(dir) => {
                    crate::mail::EmailTemplates::load(std::path::Path::new(dir), code_format == CodeFormat::Numeric)
                        .map_err(|reason| ConfigError::new("EMAIL_TEMPLATES_DIR", reason))?
                }
                None => crate::mail::EmailTemplates::default(),
            },
            social: {
                let providers = crate::social::config::providers(env.get("SOCIAL_PROVIDERS"))?;
                crate::social::SocialSettings {
                    redirect_uris: crate::social::config::redirect_uris(env.get("SOCIAL_REDIRECT_URIS"))?,
                    secrets: crate::social::config::secrets(
                        env.get("SOCIAL_CLIENT_SECRETS"),
                        env.get("SOCIAL_CLIENT_SECRETS_SECRET_ARN"),
                        &providers,
                    )?,
                    rate_ip: env.rate("RATE_SOCIAL_IP", "60/1m")?,
                    providers,
                }
            },
            language_code: {
                let raw = env.get("LANGUAGE_CODE").unwrap_or(crate::i18n::SOURCE);
                crate::i18n::known(raw).ok_or_else(|| {
                    ConfigError::new(
                        "LANGUAGE_CODE",
                        format!("not a language Gatehouse speaks (it speaks {})", crate::i18n::languages().join(", ")),
                    )
                })?
            },
        };
        if settings.unactivated_account_lifetime < settings.activation_token_lifetime {
            return Err(ConfigError::new(
                "UNACTIVATED_ACCOUNT_LIFETIME",
                "must not be shorter than ACTIVATION_TOKEN_LIFETIME",
            ));
        }
        if settings.session_lifetime < settings.refresh_token_lifetime {
            return Err(ConfigError::new("SESSION_LIFETIME", "must not be shorter than REFRESH_TOKEN_LIFETIME"));
        }
        Ok(settings)
    }
}

/// The signing key's source and the verification keys. Exactly one of `JWT_SIGNING_KEY` and
/// `JWT_SIGNING_KEY_SECRET_ARN`. EdDSA verifies with `JWT_PUBLIC_KEYS`, required when the key is
/// in Secrets Manager (the functions that do not sign never see it) and, when the key is inline,
/// derived from it if unset; an inline key must be one of them.
fn jwt_keys(env: &Env<'_>, alg: JwtAlgorithm) -> Result<(JwtKeySource, Vec<VerifyKey>), ConfigError> {
    let public = match env.get("JWT_PUBLIC_KEYS") {
        None => None,
        Some(_) if alg != JwtAlgorithm::EdDsa => {
            return Err(ConfigError::new("JWT_PUBLIC_KEYS", "only applies to EdDSA (HS256 verifies with its secret)"))
        }
        Some(raw) => Some(VerifyKey::parse_list(raw).map_err(|r| ConfigError::new("JWT_PUBLIC_KEYS", r))?),
    };
    let version = env.get("JWT_SIGNING_KEY_SECRET_VERSION").map(str::to_owned);
    match (env.get("JWT_SIGNING_KEY"), env.get("JWT_SIGNING_KEY_SECRET_ARN")) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "JWT_SIGNING_KEY",
            "set either JWT_SIGNING_KEY or JWT_SIGNING_KEY_SECRET_ARN, not both",
        )),
        (None, None) => Err(ConfigError::new(
            "JWT_SIGNING_KEY_SECRET_ARN",
            "is required but not set (or give the key itself in JWT_SIGNING_KEY)",
        )),
        (Some(raw), None) => {
            if version.is_some() {
                return Err(ConfigError::new(
                    "JWT_SIGNING_KEY_SECRET_VERSION",
                    "only applies with JWT_SIGNING_KEY_SECRET_ARN",
                ));
            }
            let key = SigningKey::parse(alg, raw).map_err(|reason| ConfigError::new("JWT_SIGNING_KEY", reason))?;
            let (key, public) = match public {
                Some(list) => (key.listed_in(&list).map_err(|r| ConfigError::new("JWT_SIGNING_KEY", r))?, list),
                None => {
                    let own = key.public().into_iter().collect();
                    (key, own)
                }
            };
            Ok((JwtKeySource::Inline(key), public))
        }
        (None, Some(arn)) => {
            let arn_ok = arn.starts_with("arn:") && arn.split(':').nth(2) == Some("secretsmanager");
            if !arn_ok {
                return Err(ConfigError::new("JWT_SIGNING_KEY_SECRET_ARN", "not the ARN of a Secrets Manager secret"));
            }
            if version
                .as_deref()
                .is_some_and(|v| v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            {
                return Err(ConfigError::new("JWT_SIGNING_KEY_SECRET_VERSION", "not a secret version id"));
            }
            let public = match (alg, public) {
                (JwtAlgorithm::EdDsa, Some(list)) if !list.is_empty() => list,
                (JwtAlgorithm::EdDsa, _) => {
                    return Err(ConfigError::new(
                        "JWT_PUBLIC_KEYS",
                        "is required with JWT_SIGNING_KEY_SECRET_ARN and EdDSA: the functions that do not sign verify with it",
                    ))
                }
                (JwtAlgorithm::Hs256, _) => Vec::new(),
            };
            Ok((JwtKeySource::SecretsManager { arn: arn.to_owned(), version }, public))
        }
    }
}

impl Settings {
    /// The keys, when both are given in the configuration; `None` when one is in Secrets Manager.
    pub fn inline_key(&self) -> Option<std::sync::Arc<dyn crate::ports::SecretKeys>> {
        use crate::keys::{Keys, Source};
        match (&self.jwt_key, &self.code_key) {
            (JwtKeySource::Inline(signing), CodeKeySource::Inline(code)) => Some(std::sync::Arc::new(Keys {
                signing: Source::Inline(std::sync::Arc::new(signing.clone())),
                code: Source::Inline(std::sync::Arc::new(code.clone())),
                social: Source::Inline(self.social.secrets.inline()),
            })),
            _ => None,
        }
    }
}

/// `WEBAUTHN_RP_ID` and `WEBAUTHN_ORIGINS`, checked as browsers check them: every origin is
/// http(s) on a domain that is the RP id or ends with `.` and the RP id (http only for localhost).
impl Settings {
    /// The domain of emailed links (djoser's `domain`): `FRONTEND_DOMAIN`, or when it is unset
    /// the domain the request came to, where the account pages answer (`localhost:3000` outside
    /// a request, which only tests and tools are).
    pub fn link_domain(&self) -> String {
        if !self.frontend_domain.is_empty() {
            return self.frontend_domain.clone();
        }
        crate::site::api_domain().unwrap_or_else(|| "localhost:3000".into())
    }

    /// The WebAuthn relying party id and origins of the request being served: the configured
    /// ones, or with neither `WEBAUTHN_*` nor `FRONTEND_DOMAIN` set, the ones the API's own domain
    /// makes. No origins: passkeys are off.
    pub fn relying_party(&self) -> (String, Vec<webauthn_rs::prelude::Url>) {
        if !self.webauthn_origins.is_empty() || !self.frontend_domain.is_empty() || !self.webauthn_rp_id.is_empty() {
            return (self.webauthn_rp_id.clone(), self.webauthn_origins.clone());
        }
        match crate::site::api_domain() {
            // Nothing explicit to refuse: only the defaults' rules apply.
            Some(domain) => webauthn(&Env(&|_| None), &self.protocol, &domain).unwrap_or_default(),
            None => (String::new(), Vec::new()),
        }
    }
}

/// `BRAND_LOGO_URL`: an https URL, or an absolute path on the API's own domain. The pages' CSP
/// lets images come from its origin and no other.
fn brand_logo_url(env: &Env) -> Result<Option<String>, ConfigError> {
    let Some(raw) = env.get("BRAND_LOGO_URL").map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let bad = || ConfigError::new("BRAND_LOGO_URL", "must be an https URL or a path starting with /");
    if raw.starts_with('/') && !raw.starts_with("//") {
        return match raw.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '\\')) {
            true => Ok(Some(raw.to_owned())),
            false => Err(bad()),
        };
    }
    match webauthn_rs::prelude::Url::parse(raw) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() && u.username().is_empty() => Ok(Some(u.to_string())),
        _ => Err(bad()),
    }
}

/// `BRAND_ACCENT_COLOR`: `#rrggbb` (or `#rgb`), lower-cased; default a blue that white text reads
/// well on.
fn brand_accent_color(env: &Env) -> Result<String, ConfigError> {
    let raw = env.get("BRAND_ACCENT_COLOR").map(str::trim).filter(|v| !v.is_empty()).unwrap_or("#1d4ed8");
    let hex = raw.strip_prefix('#').unwrap_or("");
    if !matches!(hex.len(), 3 | 6) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ConfigError::new("BRAND_ACCENT_COLOR", "must be a colour as #rrggbb"));
    }
    let full: String = if hex.len() == 3 { hex.chars().flat_map(|c| [c, c]).collect() } else { hex.to_owned() };
    Ok(format!("#{}", full.to_ascii_lowercase()))
}

/// Values given and wrong stop the start; defaults (from `PROTOCOL` and `FRONTEND_DOMAIN`) that
/// WebAuthn cannot use (an IP address, plain http off localhost) leave passkeys off (no origins)
/// instead, so a deployment that never meant to offer them starts as before.
fn webauthn(
    env: &Env<'_>,
    protocol: &str,
    frontend_domain: &str,
) -> Result<(String, Vec<webauthn_rs::prelude::Url>), ConfigError> {
    let host = frontend_domain.rsplit_once(':').map_or(frontend_domain, |(h, _)| h).to_ascii_lowercase();
    let explicit_rp = env.get("WEBAUTHN_RP_ID").map(str::to_ascii_lowercase);
    let rp_id = explicit_rp.clone().unwrap_or(host);
    let rp_ok = !rp_id.is_empty() && rp_id.parse::<std::net::IpAddr>().is_err() && !rp_id.contains(['/', ':', ' ']);
    if !rp_ok {
        if explicit_rp.is_some() {
            return Err(ConfigError::new("WEBAUTHN_RP_ID", "must be a domain name (WebAuthn refuses IP addresses)"));
        }
        return Ok((rp_id, Vec::new()));
    }
    let default = format!("{protocol}://{frontend_domain}");
    let explicit = env.get("WEBAUTHN_ORIGINS");
    let mut origins = Vec::new();
    for o in explicit.unwrap_or(&default).split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let parsed = webauthn_rs::prelude::Url::parse(o).ok().filter(|url| {
            let domain = url.domain().map(str::to_ascii_lowercase).unwrap_or_default();
            let within = domain == rp_id || domain.ends_with(&format!(".{rp_id}"));
            let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && domain == "localhost");
            within && scheme_ok && url.path() == "/" && url.query().is_none()
        });
        match parsed {
            Some(url) => origins.push(url),
            None if explicit.is_none() && explicit_rp.is_some() => {
                return Err(ConfigError::new(
                    "WEBAUTHN_ORIGINS",
                    format!("must be set: the default origin {o:?} is not an https origin on WEBAUTHN_RP_ID {rp_id}"),
                ))
            }
            None if explicit.is_none() => return Ok((rp_id, Vec::new())),
            None => {
                return Err(ConfigError::new(
                    "WEBAUTHN_ORIGINS",
                    format!("{o:?} is not an https origin (http only for localhost) on {rp_id} or a subdomain of it"),
                ))
            }
        }
    }
    if origins.is_empty() && explicit.is_some() {
        return Err(ConfigError::new("WEBAUTHN_ORIGINS", "must name at least one origin"));
    }
    Ok((rp_id, origins))
}

const MINUTE: u64 = 60;
const DAY: u64 = 86_400;

struct Env<'a>(&'a dyn Fn(&str) -> Option<&'a str>);

impl Env<'_> {
    fn get(&self, var: &'static str) -> Option<&str> {
        (self.0)(var).map(str::trim).filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str) -> Result<&str, ConfigError> {
        self.get(var).ok_or_else(|| ConfigError::new(var, "is required but not set"))
    }

    fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(_) => Err(ConfigError::new(var, "must be true or false")),
        }
    }

    fn number(&self, var: &'static str, default: u32, min: u32, max: u32) -> Result<u32, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        let value: u32 = raw.parse().map_err(|_| ConfigError::new(var, "must be a whole number"))?;
        if value < min || value > max {
            return Err(ConfigError::new(var, format!("must be between {min} and {max}")));
        }
        Ok(value)
    }

    fn rate(&self, var: &'static str, default: &str) -> Result<Option<Rate>, ConfigError> {
        Rate::parse(self.get(var).unwrap_or(default)).map_err(|r| ConfigError::new(var, r))
    }

    fn duration(&self, var: &'static str, default_secs: u64) -> Result<Duration, ConfigError> {
        let d = self.duration_allow_zero(var, Duration::from_secs(default_secs))?;
        if d.is_zero() {
            return Err(ConfigError::new(var, "must be longer than zero"));
        }
        Ok(d)
    }

    fn duration_allow_zero(&self, var: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => parse_duration(raw).map_err(|reason| ConfigError::new(var, reason)),
        }
    }
}

/// Parses `300`, `300s`, `5m`, `12h`, `7d` or `250ms` (seconds when no unit is given).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (digits, unit) = match raw.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => raw.split_at(i),
        None => (raw, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| format!("\"{raw}\" is not a duration like 300, 5m, 12h or 7d"))?;
    if unit == "ms" {
        return if n > 60_000 { Err("must be at most 60000ms".into()) } else { Ok(Duration::from_millis(n)) };
    }
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(MINUTE),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(DAY),
        _ => return Err(format!("\"{raw}\" is not a duration like 300, 5m, 12h or 7d")),
    };
    if secs > 400 * DAY {
        return Err("must be at most 400 days".into());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn base() -> HashMap<String, String> {
        [
            ("EMAIL_FROM", "no-reply@example.com"),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SIGNING_KEY", "0123456789abcdef0123456789abcdef"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn err_var(mut vars: HashMap<String, String>, var: &str, value: &str) -> &'static str {
        vars.insert(var.to_owned(), value.to_owned());
        match Settings::from_map(&vars) {
            Err(e) => e.var,
            Ok(_) => "accepted",
        }
    }

    #[test]
    fn the_process_environment_is_read_and_a_value_that_is_not_utf8_counts_as_unset() {
        use std::os::unix::ffi::OsStrExt;
        // nextest runs every test in a process of its own, so these variables reach no other test.
        for (name, value) in base() {
            std::env::set_var(name, value);
        }
        std::env::set_var("TABLE_NAME", "  users-prod ");
        std::env::set_var("JWT_ISSUER", std::ffi::OsStr::from_bytes(b"bad\xff"));
        let s = Settings::from_env().unwrap();
        assert_eq!(s.table_name, "users-prod", "trimmed");
        assert_eq!(s.email_from, "no-reply@example.com");
        assert_eq!(s.jwt_issuer, "gatehouse", "the default, not a panic");
        std::env::set_var("ACCESS_TOKEN_LIFETIME", "never");
        assert_eq!(Settings::from_env().unwrap_err().var, "ACCESS_TOKEN_LIFETIME");
    }

    #[test]
    fn defaults_follow_djoser_and_simplejwt() {
        let s = Settings::from_map(&base()).unwrap();
        assert_eq!(s.access_token_lifetime, Duration::from_secs(300));
        assert_eq!(s.refresh_token_lifetime, Duration::from_secs(86_400));
        assert!(s.rotate_refresh_tokens);
        assert!(s.send_activation_email);
        assert!(!s.user_create_password_retype);
        assert_eq!(s.activation_url, "activate/{uid}/{token}");
        assert_eq!(s.argon2, Argon2Settings::default());
        assert_eq!(s.table_name, "gatehouse");
        assert_eq!(s.delete_me_mode, DeleteMeMode::Delete);
        assert!(!s.profile_updated_email);
        assert_eq!(s.audit_retention, Duration::from_secs(90 * 86_400));
    }

    #[test]
    fn audit_retention_takes_a_duration_and_refuses_zero_or_nonsense() {
        for bad in ["0", "ninety", "-1d"] {
            assert_eq!(err_var(base(), "AUDIT_RETENTION", bad), "AUDIT_RETENTION", "{bad}");
        }
        let mut vars = base();
        vars.insert("AUDIT_RETENTION".into(), "365d".into());
        assert_eq!(Settings::from_map(&vars).unwrap().audit_retention, Duration::from_secs(365 * 86_400));
    }

    #[test]
    fn delete_me_mode_and_profile_notices_are_read_and_bad_values_named() {
        for bad in ["Deactivate", "soft", "remove", "1"] {
            assert_eq!(err_var(base(), "DELETE_ME_MODE", bad), "DELETE_ME_MODE", "{bad}");
        }
        for bad in ["maybe", "2", "enabled"] {
            assert_eq!(err_var(base(), "PROFILE_UPDATED_EMAIL", bad), "PROFILE_UPDATED_EMAIL", "{bad}");
        }
        let mut vars = base();
        vars.insert("DELETE_ME_MODE".into(), "deactivate".into());
        vars.insert("PROFILE_UPDATED_EMAIL".into(), "true".into());
        let s = Settings::from_map(&vars).unwrap();
        assert_eq!(s.delete_me_mode, DeleteMeMode::Deactivate);
        assert!(s.profile_updated_email);
        vars.insert("DELETE_ME_MODE".into(), "delete".into());
        vars.insert("PROFILE_UPDATED_EMAIL".into(), "false".into());
        let s = Settings::from_map(&vars).unwrap();
        assert_eq!(s.delete_me_mode, DeleteMeMode::Delete);
        assert!(!s.profile_updated_email);
        let msg = Settings::from_map(&{
            let mut v = base();
            v.insert("DELETE_ME_MODE".into(), "soft".into());
            v
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert_eq!(msg, "invalid configuration: DELETE_ME_MODE: must be delete or deactivate");
    }

    #[test]
    fn each_bad_variable_is_named() {
        assert_eq!(err_var(base(), "ACCESS_TOKEN_LIFETIME", "five"), "ACCESS_TOKEN_LIFETIME");
        assert_eq!(err_var(base(), "ACCESS_TOKEN_LIFETIME", "0"), "ACCESS_TOKEN_LIFETIME");
        assert_eq!(err_var(base(), "ROTATE_REFRESH_TOKENS", "maybe"), "ROTATE_REFRESH_TOKENS");
        assert_eq!(err_var(base(), "JWT_ALGORITHM", "none"), "JWT_ALGORITHM");
        assert_eq!(err_var(base(), "JWT_SIGNING_KEY", "short"), "JWT_SIGNING_KEY");
        assert_eq!(err_var(base(), "EMAIL_FROM", "not-an-address"), "EMAIL_FROM");
        assert_eq!(err_var(base(), "ARGON2_MEMORY_KIB", "1"), "ARGON2_MEMORY_KIB");
        assert_eq!(err_var(base(), "PROTOCOL", "ftp"), "PROTOCOL");
        assert_eq!(err_var(base(), "ACTIVATION_URL", "activate/{uid}"), "ACTIVATION_URL");
        assert_eq!(err_var(base(), "RATE_REGISTER_IP", "20"), "RATE_REGISTER_IP");
        assert_eq!(err_var(base(), "RATE_REGISTER_IP", "0/1m"), "RATE_REGISTER_IP");
        assert_eq!(err_var(base(), "REFRESH_REUSE_GRACE", "2m"), "REFRESH_REUSE_GRACE");
        assert_eq!(Rate::parse("20/10m"), Ok(Some(Rate { limit: 20, window: 600 })));
        assert_eq!(Rate::parse("off"), Ok(None));
        let mut no_from = base();
        no_from.remove("EMAIL_FROM");
        assert_eq!(Settings::from_map(&no_from).err().map(|e| e.var), Some("EMAIL_FROM"));
    }

    #[test]
    fn the_signing_key_comes_from_one_place_and_eddsa_from_secrets_manager_needs_its_public_keys() {
        const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gatehouse/jwt-AbCdEf";
        let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            let mut v = base();
            v.remove("JWT_SIGNING_KEY");
            v.insert("CODE_KEY".into(), "c".repeat(32));
            v.extend(pairs.iter().map(|(k, x)| ((*k).to_owned(), (*x).to_owned())));
            v
        };
        let outcome = |pairs: &[(&str, &str)]| match Settings::from_map(&vars(pairs)) {
            Ok(_) => "accepted",
            Err(e) => e.var,
        };
        let pem = crate::tokens::generate_ed25519_pem().unwrap();
        let public = crate::tokens::SigningKey::parse(JwtAlgorithm::EdDsa, &pem).unwrap().public().unwrap().pair();
        assert_eq!(outcome(&[]), "JWT_SIGNING_KEY_SECRET_ARN", "no key at all");
        assert_eq!(
            outcome(&[("JWT_SIGNING_KEY_SECRET_ARN", ARN), ("JWT_SIGNING_KEY", &"k".repeat(32))]),
            "JWT_SIGNING_KEY"
        );
        assert_eq!(outcome(&[("JWT_SIGNING_KEY_SECRET_ARN", "gatehouse/jwt")]), "JWT_SIGNING_KEY_SECRET_ARN");
        assert_eq!(outcome(&[("JWT_SIGNING_KEY_SECRET_ARN", ARN)]), "accepted", "HS256 verifies with the secret");
        assert_eq!(
            outcome(&[("JWT_SIGNING_KEY_SECRET_ARN", ARN), ("JWT_PUBLIC_KEYS", &public)]),
            "JWT_PUBLIC_KEYS",
            "HS256 has no public keys"
        );
        let ed = [("JWT_ALGORITHM", "EdDSA"), ("JWT_SIGNING_KEY_SECRET_ARN", ARN)];
        assert_eq!(outcome(&ed), "JWT_PUBLIC_KEYS", "EdDSA from Secrets Manager needs the public keys");
        let mut with_public = ed.to_vec();
        with_public.push(("JWT_PUBLIC_KEYS", &public));
        assert_eq!(outcome(&with_public), "accepted");
        let s = Settings::from_map(&vars(&with_public)).unwrap();
        assert!(matches!(&s.jwt_key, JwtKeySource::SecretsManager { arn, version: None } if arn == ARN));
        assert!(s.inline_key().is_none());
        with_public.push(("JWT_SIGNING_KEY_SECRET_VERSION", "not a version!"));
        assert_eq!(outcome(&with_public), "JWT_SIGNING_KEY_SECRET_VERSION");
        with_public.pop();
        with_public.push(("JWT_SIGNING_KEY_SECRET_VERSION", "a1b2c3d4-0000-4000-8000-000000000001"));
        assert_eq!(outcome(&with_public), "accepted");
        assert_eq!(
            outcome(&[("JWT_SIGNING_KEY", &"k".repeat(32)), ("JWT_SIGNING_KEY_SECRET_VERSION", "v1")]),
            "JWT_SIGNING_KEY_SECRET_VERSION"
        );
        // An inline EdDSA key publishes its own public key when none are listed.
        let s = Settings::from_map(&vars(&[("JWT_ALGORITHM", "EdDSA"), ("JWT_SIGNING_KEY", &pem)])).unwrap();
        assert_eq!(s.jwt_public_keys.iter().map(|k| k.pair()).collect::<Vec<_>>(), vec![public.clone()]);
        // The code key: inline, from Secrets Manager, or (local only) derived from an inline key.
        let mut no_code_key = vars(&with_public[..3]);
        no_code_key.remove("CODE_KEY");
        assert_eq!(Settings::from_map(&no_code_key).err().map(|e| e.var), Some("CODE_KEY_SECRET_ARN"));
        no_code_key.insert("CODE_KEY_SECRET_ARN".into(), ARN.into());
        let s = Settings::from_map(&no_code_key).unwrap();
        assert!(matches!(&s.code_key, CodeKeySource::SecretsManager { arn } if arn == ARN));
        no_code_key.insert("CODE_KEY".into(), "c".repeat(32));
        assert_eq!(Settings::from_map(&no_code_key).err().map(|e| e.var), Some("CODE_KEY"), "both");
        assert_eq!(err_var(base(), "CODE_KEY", "short"), "CODE_KEY");
        assert!(matches!(Settings::from_map(&base()).unwrap().code_key, CodeKeySource::Inline(_)), "derived");
        assert_eq!(err_var(base(), "SES_CONFIGURATION_SET", "no spaces allowed"), "SES_CONFIGURATION_SET");
        assert_eq!(err_var(base(), "SES_CONFIGURATION_SET", "gatehouse-prod"), "accepted");
    }

    #[test]
    fn errors_never_echo_the_key() {
        let mut vars = base();
        vars.insert("JWT_SIGNING_KEY".into(), "tiny-secret".into());
        let msg = Settings::from_map(&vars).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("JWT_SIGNING_KEY"));
        assert!(!msg.contains("tiny-secret"));
    }

    #[test]
    fn login_failure_floor_is_off_by_default_and_takes_a_duration() {
        assert_eq!(Settings::from_map(&base()).unwrap().login_failure_floor, Duration::ZERO);
        for (raw, expected) in
            [("0", Duration::ZERO), ("1500ms", Duration::from_millis(1500)), ("2", Duration::from_secs(2))]
        {
            let mut vars = base();
            vars.insert("LOGIN_FAILURE_FLOOR".into(), raw.into());
            assert_eq!(Settings::from_map(&vars).unwrap().login_failure_floor, expected, "{raw}");
        }
        for bad in ["-1", "two seconds", "1.5s", "90000ms", "6s", "1m"] {
            assert_eq!(err_var(base(), "LOGIN_FAILURE_FLOOR", bad), "LOGIN_FAILURE_FLOOR", "{bad}");
        }
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("1000d").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn passkeys_follow_the_frontend_unless_told_and_refuse_origins_outside_the_rp_id() {
        let with = |pairs: &[(&str, &str)]| {
            let mut vars = base();
            for (k, v) in pairs {
                vars.insert((*k).to_owned(), (*v).to_owned());
            }
            Settings::from_map(&vars)
        };
        let origins = |s: &Settings| s.webauthn_origins.iter().map(|u| u.as_str().to_owned()).collect::<Vec<_>>();
        let s = with(&[("FRONTEND_DOMAIN", "app.example.com")]).unwrap();
        assert_eq!(
            (s.webauthn_rp_id.as_str(), origins(&s)),
            ("app.example.com", vec!["https://app.example.com/".into()])
        );
        let s = with(&[("PROTOCOL", "http"), ("FRONTEND_DOMAIN", "localhost:3000")]).unwrap();
        assert_eq!((s.webauthn_rp_id.as_str(), origins(&s)), ("localhost", vec!["http://localhost:3000/".into()]));
        let s = with(&[
            ("WEBAUTHN_RP_ID", "example.com"),
            ("WEBAUTHN_ORIGINS", "https://app.example.com, https://example.com"),
        ])
        .unwrap();
        assert_eq!(origins(&s), ["https://app.example.com/", "https://example.com/"]);
        // Defaults WebAuthn cannot use: passkeys off, the rest starts.
        for frontend in [("FRONTEND_DOMAIN", "127.0.0.1:8000"), ("FRONTEND_DOMAIN", "app.test")] {
            let s = with(&[frontend, ("PROTOCOL", "http")]).unwrap();
            assert!(s.webauthn_origins.is_empty(), "{frontend:?}");
        }
        // Values given and wrong: refused at start.
        assert_eq!(err_var(base(), "WEBAUTHN_RP_ID", "10.0.0.1"), "WEBAUTHN_RP_ID");
        assert_eq!(err_var(base(), "WEBAUTHN_RP_ID", "example.com"), "WEBAUTHN_ORIGINS", "localhost is not on it");
        for bad in [
            "https://evil.com",
            "http://app.example.com",
            "https://notexample.com",
            "https://app.example.com/path",
            "nonsense",
        ] {
            let mut vars = base();
            vars.insert("WEBAUTHN_RP_ID".into(), "example.com".into());
            assert_eq!(err_var(vars, "WEBAUTHN_ORIGINS", bad), "WEBAUTHN_ORIGINS", "{bad}");
        }
    }

    #[tokio::test]
    async fn without_a_frontend_links_and_passkeys_follow_the_api_own_domain() {
        let s = Settings::from_map(&base()).unwrap();
        assert_eq!(s.frontend_domain, "");
        let origins = |(rp, o): (String, Vec<webauthn_rs::prelude::Url>)| {
            (rp, o.iter().map(|u| u.to_string()).collect::<Vec<_>>())
        };
        // Outside a request (tools): no passkeys, the local default for links.
        assert_eq!(origins(s.relying_party()), (String::new(), vec![]));
        assert_eq!(s.link_domain(), "localhost:3000");
        let api = "a1b2c3.execute-api.eu-west-1.amazonaws.com";
        let (link, rp) = crate::site::within(Some(api.into()), async { (s.link_domain(), s.relying_party()) }).await;
        assert_eq!(link, api);
        assert_eq!(origins(rp), (api.to_owned(), vec![format!("https://{api}/")]));
        // A domain WebAuthn cannot use leaves passkeys off, as the start-up defaults do.
        let plain = Settings::from_map(&{
            let mut v = base();
            v.insert("PROTOCOL".into(), "http".into());
            v
        })
        .unwrap();
        let rp = crate::site::within(Some(api.into()), async { plain.relying_party() }).await;
        assert!(rp.1.is_empty());
        // A frontend of its own: the request's domain changes nothing.
        let own = Settings::from_map(&{
            let mut v = base();
            v.insert("FRONTEND_DOMAIN".into(), "app.example.com".into());
            v
        })
        .unwrap();
        let (link, rp) =
            crate::site::within(Some(api.into()), async { (own.link_domain(), own.relying_party()) }).await;
        assert_eq!((link.as_str(), rp.0.as_str()), ("app.example.com", "app.example.com"));
    }
}
