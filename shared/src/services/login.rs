//! `POST /auth/jwt/create/`: email + password for a new session and its token pair.

use crate::domain::{Email, Password, User};
use crate::ports::Session;
use crate::secrets::random_id;

use super::{throttle, App, ClientInfo, FieldErrors, ServiceError, TokenPair};

pub const ACCOUNT_INACTIVE: ServiceError =
    ServiceError::Forbidden { code: "account_inactive", detail: "This account has not been activated yet." };

/// Longest user agent kept on a session.
const MAX_USER_AGENT: usize = 256;

/// Checks the credentials and opens a session. A wrong password and an unknown account cost the
/// same (one argon2 verify) and answer the same; the right password on an inactive account is
/// told apart (403) so the frontend can offer to resend the activation email.
pub async fn login(
    app: &App,
    email: Option<String>,
    password: Option<String>,
    client: &ClientInfo,
) -> Result<TokenPair, ServiceError> {
    let mut errors = FieldErrors::default();
    if email.as_deref().is_none_or(|e| e.trim().is_empty()) {
        errors.add("email", if email.is_none() { super::input::REQUIRED } else { super::input::BLANK });
    }
    let password = match password.map(Password::parse) {
        None => {
            errors.add("password", super::input::REQUIRED);
            None
        }
        Some(Err(msg)) => {
            errors.add("password", msg);
            None
        }
        Some(Ok(p)) => Some(p),
    };
    errors.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(ServiceError::Internal("validated fields missing".into()));
    };
    let now = app.now();
    // The account's lockout state and the caller's failure budget come with the email claim.
    let lock = throttle::lockout_counter(&email);
    let ip_rate = app.settings.rate_login_failures_ip;
    let ip_window = match (ip_rate, client.ip.as_deref()) {
        (Some(rate), Some(ip)) => Some(throttle::ip_window("login_fail", ip, rate, now)),
        _ => None,
    };
    let mut counters = vec![lock.clone()];
    counters.extend(ip_window.iter().map(|(c, _)| c.clone()));
    let (user, states) = match Email::parse(&email) {
        Ok(e) => app.store.find_user_for_login(&e, &counters, now).await?,
        Err(_) => (None, app.store.read(&counters, now).await?),
    };
    let lock_state = states.first().copied().unwrap_or_default();
    throttle::check_lockout(app, lock_state, now)?;
    throttle::check_ip(ip_rate, states.get(1).copied().unwrap_or_default(), now)?;
    let ok = app.hasher.verify(&password, user.as_ref().map(|u| u.password_hash.as_str())).await;
    let user = match user {
        Some(u) if ok => u,
        _ => {
            tracing::info!(event = "login", outcome = "failed");
            app.store.hit(&lock, now + 86_400, now).await?;
            if let Some((counter, end)) = &ip_window {
                app.store.hit(counter, *end, now).await?;
            }
            return Err(ServiceError::NoActiveAccount);
        }
    };
    if lock_state.count > 0 {
        app.store.clear(&lock).await?;
    }
    if !user.is_active {
        tracing::info!(event = "login", outcome = "inactive", user_id = %user.id);
        return Err(ACCOUNT_INACTIVE);
    }
    let pair = open_session(app, &user, client, now).await?;
    if app.hasher.needs_rehash(&user.password_hash) {
        match app.hasher.hash(&password).await {
            Ok(new_hash) => {
                if let Err(e) = app.store.replace_password_hash(&user.id, &user.password_hash, &new_hash).await {
                    tracing::warn!(event = "rehash", outcome = "failed", user_id = %user.id, error = %e);
                }
            }
            Err(e) => {
                tracing::warn!(event = "rehash", outcome = "failed", user_id = %user.id, error = %e)
            }
        }
    }
    tracing::info!(event = "login", outcome = "ok", user_id = %user.id);
    Ok(pair)
}

/// Opens a new session for an active user and issues its first token pair.
pub async fn open_session(app: &App, user: &User, client: &ClientInfo, now: i64) -> Result<TokenPair, ServiceError> {
    let s = &app.settings;
    let session = Session {
        user_id: user.id.clone(),
        id: random_id()?,
        current_jti: random_id()?,
        counter: 0,
        previous_jti: None,
        rotated_at: None,
        created_at: now,
        last_used_at: now,
        user_agent: client.user_agent.as_ref().map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
        ip: client.ip.clone(),
        expires_at: now + s.session_lifetime.as_secs() as i64,
    };
    app.store.create_session(&session, s.update_last_login.then_some(now)).await?;
    tracing::info!(event = "session", outcome = "opened", user_id = %user.id, session_id = %session.id);
    Ok(TokenPair {
        access: app.tokens.issue_access(user, &session.id, random_id()?, now).await?,
        refresh: Some(
            app.tokens.issue_refresh(user, &session.id, session.current_jti.clone(), now, session.expires_at).await?,
        ),
    })
}
