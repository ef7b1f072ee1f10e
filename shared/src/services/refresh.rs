//! `POST /auth/jwt/refresh/` (rotating, with reuse detection) and `POST /auth/jwt/verify/`.

use crate::domain::UserId;
use crate::ports::Rotation;
use crate::secrets::random_id;
use crate::tokens::TokenType;

use super::{App, FieldErrors, Form, ServiceError, TokenPair};

fn token_field(form: &Form, field: &str) -> Result<String, ServiceError> {
    let mut errors = FieldErrors::default();
    let token = form.required(field, &mut errors);
    errors.finish()?;
    token.ok_or_else(|| ServiceError::Internal("validated field missing".into()))
}

/// Exchanges a refresh token for a new access token (and, when rotating, a new refresh token).
/// A refresh token that is no longer the session's current one is a replay: the session is
/// revoked.
pub async fn refresh(app: &App, form: &Form) -> Result<TokenPair, ServiceError> {
    let token = token_field(form, "refresh")?;
    let now = app.now();
    let claims = app.tokens.verify(&token, TokenType::Refresh, now)?;
    let id = UserId::parse(&claims.user_id).ok_or(ServiceError::TokenNotValid)?;
    let (user, session) = app.store.get_user_and_session(&id, &claims.sid, now).await?;
    let (Some(user), Some(session)) = (user, session) else {
        return Err(ServiceError::TokenNotValid);
    };
    if !user.is_active || claims.iat < user.tokens_valid_after {
        return Err(ServiceError::TokenNotValid);
    }
    if session.current_jti != claims.jti {
        tracing::warn!(event = "refresh", outcome = "reuse", user_id = %id, session_id = %session.id, "refresh token replayed; session revoked");
        app.store.delete_session(&id, &session.id).await?;
        return Err(ServiceError::TokenNotValid);
    }
    let access = app.tokens.issue_access(&user, &session.id, random_id()?, now)?;
    if !app.settings.rotate_refresh_tokens {
        return Ok(TokenPair { access, refresh: None });
    }
    let new_jti = random_id()?;
    match app.store.rotate_session(&id, &session.id, &claims.jti, &new_jti, now).await? {
        Rotation::Rotated => {}
        Rotation::Stale => {
            tracing::info!(event = "refresh", outcome = "lost_race", user_id = %id, session_id = %session.id);
            return Err(ServiceError::TokenNotValid);
        }
    }
    tracing::info!(event = "refresh", outcome = "ok", user_id = %id, session_id = %session.id);
    let refresh = app.tokens.issue_refresh(&user, &session.id, new_jti, now, session.expires_at)?;
    Ok(TokenPair { access, refresh: Some(refresh) })
}

/// Checks a token's signature, type and lifetime (either type), as simplejwt's verify does.
pub fn verify(app: &App, form: &Form) -> Result<(), ServiceError> {
    let token = token_field(form, "token")?;
    let now = app.now();
    app.tokens
        .verify(&token, TokenType::Access, now)
        .or_else(|_| app.tokens.verify(&token, TokenType::Refresh, now))?;
    Ok(())
}
