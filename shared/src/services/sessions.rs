//! Logout on one device (`jwt/blacklist`), the session list, revoking one session, and
//! "log out everywhere".

use crate::domain::UserId;
use crate::ports::{Session, UpdateUserError};
use crate::tokens::TokenType;

use super::auth::Caller;
use super::{revoke_sessions, App, FieldErrors, Form, ServiceError};

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
    Ok(())
}

/// Logs out everywhere: every session ends and every token issued before now is refused by our
/// endpoints at once.
pub async fn revoke_all(app: &App, caller: &Caller) -> Result<(), ServiceError> {
    let mut current = caller.user.clone();
    for _ in 0..3 {
        let now = app.now();
        let mut updated = current.clone();
        // Always moves, even twice in one second: a revocation (which also kills every
        // outstanding code) must never be a no-op.
        updated.tokens_valid_after = now.max(current.tokens_valid_after + 1);
        match app.store.update_user(&current, &updated, now).await {
            Ok(_) => {
                revoke_sessions(app, &current.id, None).await?;
                tracing::info!(event = "logout", outcome = "everywhere", user_id = %current.id);
                return Ok(());
            }
            Err(UpdateUserError::Conflict) => {
                current = app.store.get_user(&current.id, now).await?.ok_or(ServiceError::TokenNotValid)?;
            }
            Err(UpdateUserError::UsernameTaken) => {
                return Err(ServiceError::Internal("unexpected username conflict".into()))
            }
            Err(UpdateUserError::Store(e)) => return Err(e.into()),
        }
    }
    Err(ServiceError::Unavailable("account kept changing under concurrent writes".into()))
}
