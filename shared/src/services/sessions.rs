//! Logout on one device (`jwt/blacklist`), the session list, revoking one session, and
//! "log out everywhere".

use crate::domain::{User, UserId};
use crate::ports::{Clock, Session, SessionStore, UpdateUserError, UserStore};
use crate::tokens::TokenType;

use super::auth::Caller;
use super::{App, FieldErrors, Form, ServiceError};

/// Attempts at a revocation that keeps losing optimistic-locking races.
const REVOKE_RETRIES: usize = 5;

/// Ends the session a refresh token belongs to (simplejwt's blacklist, per device).
pub async fn blacklist(app: &App, form: &Form) -> Result<(), ServiceError> {
    let mut errors = FieldErrors::default();
    let token = form.required("refresh", &mut errors);
    errors.finish()?;
    let token = token.ok_or_else(|| ServiceError::Internal("validated field missing".into()))?;
    let now = app.now();
    let claims = app.tokens.verify(&token, TokenType::Refresh, now).await?;
    let id = UserId::parse(&claims.user_id).ok_or(ServiceError::TokenNotValid)?;
    let (_, session) = app.store.get_user_and_session(&id, &claims.sid, now).await?;
    let Some(session) = session else { return Err(ServiceError::TokenNotValid) };
    if session.current_jti != claims.jti && session.previous_jti.as_deref() != Some(claims.jti.as_str()) {
        return Err(ServiceError::TokenNotValid);
    }
    app.store.delete_session(&id, &session.id).await?;
    tracing::info!(event = "logout", outcome = "ok", user_id = %id, session_id = %session.id);
    let ended = super::audit::Event::new("session.revoked").to(&id).object(session.id.as_str());
    super::audit::record(app, super::audit::Event { actor: Some(id.clone()), ..ended }).await;
    Ok(())
}

/// The caller's live sessions, oldest first; `current` marks the one calling.
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<(Session, bool)>, ServiceError> {
    let sessions = app.store.list_sessions(&caller.user.id, app.now()).await?;
    Ok(sessions
        .into_iter()
        .map(|s| {
            let current = s.id == caller.session.id;
            (s, current)
        })
        .collect())
}

/// Ends one of the caller's sessions (404 for anything else).
pub async fn revoke(app: &App, caller: &Caller, sid: &str) -> Result<(), ServiceError> {
    let (_, session) = app.store.get_user_and_session(&caller.user.id, sid, app.now()).await?;
    if session.is_none() {
        return Err(ServiceError::NotFound);
    }
    app.store.delete_session(&caller.user.id, sid).await?;
    tracing::info!(event = "logout", outcome = "session_revoked", user_id = %caller.user.id, session_id = %sid);
    super::audit::record(app, super::audit::Event::new("session.revoked").own(&caller.user).object(sid)).await;
    Ok(())
}

/// Logs out everywhere: every session ends and every token issued before now is refused by our
/// endpoints at once.
pub async fn revoke_all(app: &App, caller: &Caller) -> Result<(), ServiceError> {
    let user = revoke_user(&*app.store, &*app.clock, caller.user.clone(), |_| {}).await.map_err(|e| match e {
        ServiceError::NotFound => ServiceError::TokenNotValid,
        other => other,
    })?;
    tracing::info!(event = "logout", outcome = "everywhere", user_id = %user.id);
    super::audit::record(app, super::audit::Event::new("sessions.revoked").own(&caller.user)).await;
    Ok(())
}

/// Applies `change` to the account and revokes everything it holds, for the API and for authctl
/// alike: `tokens_valid_after` moves past every token issued so far (see
/// [`crate::policy::revocation_stamp`]), which also kills every outstanding one-time code, in the
/// same optimistic-locking write as `change`; then every session item is removed. A write that
/// loses to a concurrent one reads the account again and reapplies `change` (so, say, a
/// deactivation never undoes a concurrent profile edit). [`ServiceError::NotFound`] when the
/// account is gone. Returns the account as written.
pub async fn revoke_user<S: UserStore + SessionStore + ?Sized>(
    store: &S,
    clock: &dyn Clock,
    user: User,
    change: impl Fn(&mut User),
) -> Result<User, ServiceError> {
    let mut current = user;
    for _ in 0..REVOKE_RETRIES {
        let now = clock.now();
        let mut updated = current.clone();
        change(&mut updated);
        updated.tokens_valid_after = crate::policy::revocation_stamp(current.tokens_valid_after, now);
        match store.update_user(&current, &updated, now).await {
            Ok(version) => {
                updated.version = version;
                store.delete_sessions(&updated.id, None).await?;
                tracing::info!(event = "sessions_revoked", user_id = %updated.id, kept = false);
                return Ok(updated);
            }
            Err(UpdateUserError::Conflict) => {
                current = store.get_user(&current.id, now).await?.ok_or(ServiceError::NotFound)?;
            }
            Err(UpdateUserError::UsernameTaken) => {
                return Err(ServiceError::Internal("unexpected username conflict".into()))
            }
            Err(UpdateUserError::Store(e)) => return Err(e.into()),
        }
    }
    Err(ServiceError::Unavailable("account kept changing under concurrent writes".into()))
}
