//! `POST /auth/jwt/create/`: email + password for a new session and its token pair.

// Tokio's clock: the real one, except in tests that pause it.
use tokio::time::Instant;

use crate::domain::{Email, Password, User};
use crate::ports::{GiveBack, Session};
use crate::secrets::random_id;
use crate::tokens::Authn;

use super::{throttle, App, ClientInfo, FieldErrors, ServiceError, TokenPair};

pub const ACCOUNT_INACTIVE: ServiceError =
    ServiceError::Forbidden { code: "account_inactive", detail: "This account has not been activated yet." };

/// Longest user agent kept on a session.
const MAX_USER_AGENT: usize = 256;

/// Checks the credentials and opens a session. A wrong password and an unknown account cost the
/// same (one argon2 verify) and answer the same; the right password on an inactive account is
/// told apart (403) so the frontend can offer to resend the activation email. An account imported
/// from Django keeps its Django hash until its first successful login, which replaces it with
/// argon2id; verifying such a hash can cost more than the unknown account's argon2, so a failed
/// login answers no sooner than `LOGIN_FAILURE_FLOOR` after the request began. An account with a
/// second factor gets no tokens here: the right password answers `mfa_required` with the
/// `mfa_token` that `mfa/verify` takes with the factor.
pub async fn login(
    app: &App,
    email: Option<String>,
    password: Option<String>,
    client: &ClientInfo,
) -> Result<TokenPair, ServiceError> {
    let started = Instant::now();
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
    // The (account, IP) lockout and the failure budgets come with the email claim; an attempt is
    // reserved in each before the password is verified.
    let guard = throttle::PasswordGuard::new(app, &email, client.ip.as_deref(), now);
    let (user, states) = match Email::parse(&email) {
        Ok(e) => app.store.find_user_for_login(&e, &guard.counters(), now).await.map_err(throttle::limiter_err)?,
        Err(_) => (None, app.store.read(&guard.counters(), now).await.map_err(throttle::limiter_err)?),
    };
    guard.reserve(app, &states, now).await?;
    let ok = app.hasher.verify(&password, user.as_ref().map(|u| u.password_hash.as_str())).await;
    let user = match user {
        Some(u) if ok => u,
        known => {
            // The reserved attempt stays: it was a failure.
            tracing::info!(event = "login", outcome = "failed");
            let id = known.map(|u| u.id);
            let failed = super::audit::Event { target: id.clone(), ..super::audit::Event::new("login.failed") };
            super::audit::record(app, failed).await;
            if guard.failure_locks(app, &states) {
                let locked = super::audit::Event { target: id, ..super::audit::Event::new("login.locked_out") };
                super::audit::record(app, locked).await;
            }
            if !app.settings.login_failure_floor.is_zero() {
                tokio::time::sleep_until(started + app.settings.login_failure_floor).await;
            }
            return Err(ServiceError::NoActiveAccount);
        }
    };
    if !user.is_active {
        if let Err(e) = guard.succeeded(app).await {
            // The attempt stays counted: stricter, never looser.
            tracing::warn!(event = "login", outcome = "attempt_not_given_back", error = %e);
        }
        tracing::info!(event = "login", outcome = "inactive", user_id = %user.id);
        super::audit::record(app, super::audit::Event::new("login.inactive").to(&user.id)).await;
        return Err(ACCOUNT_INACTIVE);
    }
    if user.mfa_enabled {
        // The password was right and the second step begins. Its attempt stays counted until
        // the second factor is right too (`mfa/verify` gives the attempts back): were it given
        // back here, whoever knows the password could guess codes without end, a fresh sign-in
        // lifting the lockout each time.
        rehash(app, &user, &password).await;
        return Err(super::mfa::challenge(app, &user, now, crate::domain::ChallengeKind::Mfa).await?);
    }
    // The attempt is given back in the session's own write.
    let pair = open_session(app, &user, client, now, &guard.give_back(), &Authn::new(now, &["pwd"])).await?;
    rehash(app, &user, &password).await;
    tracing::info!(event = "login", outcome = "ok", user_id = %user.id);
    super::audit::record(app, super::audit::Event::new("login.succeeded").own(&user)).await;
    Ok(pair)
}

/// Replaces a hash of older parameters (or a Django hash) by one of today's, once the password
/// was right. Best effort: the next login tries again.
async fn rehash(app: &App, user: &User, password: &Password) {
    if app.hasher.needs_rehash(&user.password_hash) {
        match app.hasher.hash(password).await {
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
}

/// Opens a new session for an active user and issues its first token pair, carrying how it was
/// authenticated (`authn`); `give_back` goes back in the same write (see
/// [`throttle::PasswordGuard::give_back`]).
pub async fn open_session(
    app: &App,
    user: &User,
    client: &ClientInfo,
    now: i64,
    give_back: &GiveBack,
    authn: &Authn,
) -> Result<TokenPair, ServiceError> {
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
    if let Err(e) = app.store.create_session(&session, s.update_last_login.then_some(now), give_back).await {
        // A store failure is not a wrong password: the attempt is given back on its own. (Were the
        // write done after all, only someone who knew the password gained one attempt.)
        if *give_back != GiveBack::default() {
            if let Err(e) = app.store.give_back(&give_back.refund, &give_back.forget).await {
                tracing::warn!(event = "login", outcome = "attempt_not_given_back", error = %e);
            }
        }
        return Err(e.into());
    }
    tracing::info!(event = "session", outcome = "opened", user_id = %user.id, session_id = %session.id);
    // The access token carries the groups the account is a member of now.
    let mut member = user.clone();
    super::groups::current_memberships(app, std::slice::from_mut(&mut member)).await?;
    Ok(TokenPair {
        access: app.tokens.issue_access(&member, &session.id, random_id()?, now, authn).await?,
        refresh: Some(
            app.tokens
                .issue_refresh(user, &session.id, session.current_jti.clone(), now, session.expires_at, authn)
                .await?,
        ),
    })
}
