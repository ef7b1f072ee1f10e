//! `POST /auth/jwt/refresh/` (rotating, with reuse detection) and `POST /auth/jwt/verify/`.

use crate::domain::UserId;
use crate::policy::{self, RefreshVerdict};
use crate::ports::Rotation;
use crate::secrets::random_id;
use crate::tokens::{Authn, TokenType};

use crate::mail;
use crate::ports::EmailKind;

use super::{deliver, App, FieldErrors, Form, ServiceError, TokenPair};

fn token_field(form: &Form, field: &str) -> Result<String, ServiceError> {
    let mut errors = FieldErrors::default();
    let token = form.required(field, &mut errors);
    errors.finish()?;
    token.ok_or_else(|| ServiceError::Internal("validated field missing".into()))
}

/// Exchanges a refresh token for a new access token (and, when rotating, a new refresh token).
///
/// Each refresh token works once. Replaying the session's previous token within
/// `REFRESH_REUSE_GRACE` yields a pair for the same session (several tabs refreshing at once),
/// never a fork. A request that lost the rotation to a concurrent one is refused without harm:
/// one that found its token current and then lost the conditional rotation, or one that presents
/// the previous token within [`policy::RACE_WINDOW`] of the rotation. Any other replay means the token
/// was copied: the session is revoked and its owner alerted.
pub async fn refresh(app: &App, form: &Form) -> Result<TokenPair, ServiceError> {
    let token = token_field(form, "refresh")?;
    let now = app.now();
    let claims = app.tokens.verify(&token, TokenType::Refresh, now).await?;
    let id = UserId::parse(&claims.user_id).ok_or(ServiceError::TokenNotValid)?;
    let (user, session) = app.store.get_user_and_session(&id, &claims.sid, now).await?;
    let (Some(user), Some(mut session)) = (user, session) else { return Err(ServiceError::TokenNotValid) };
    if !user.is_active || claims.iat < user.tokens_valid_after {
        return Err(ServiceError::TokenNotValid);
    }
    // The access token carries the groups the account is a member of now.
    let mut member = user.clone();
    super::groups::current_memberships(app, std::slice::from_mut(&mut member)).await?;
    // The sign-in's time and methods pass on to every token of the session.
    let authn = Authn::of(&claims, session.created_at);
    let access = app.tokens.issue_access(&member, &session.id, random_id()?, now, &authn).await?;
    let grace = app.settings.refresh_reuse_grace.as_secs() as i64;
    let rotate = app.settings.rotate_refresh_tokens;
    let verdict_for = |session: &crate::ports::Session, lost_rotation: bool| {
        policy::refresh_verdict(
            &claims.jti,
            &session.current_jti,
            session.previous_jti.as_deref(),
            lost_rotation,
            session.rotated_at.map(|at| now - at),
            grace,
            rotate,
        )
    };
    let mut verdict = verdict_for(&session, false);
    match verdict {
        RefreshVerdict::KeepCurrent => return Ok(TokenPair { access, refresh: None }),
        RefreshVerdict::Rotate => {
            let new_jti = random_id()?;
            match app.store.rotate_session(&id, &session.id, &claims.jti, &new_jti, now).await? {
                Rotation::Rotated => {
                    tracing::info!(event = "refresh", outcome = "ok", user_id = %id, session_id = %session.id);
                    let refresh =
                        app.tokens.issue_refresh(&user, &session.id, new_jti, now, session.expires_at, &authn).await?;
                    return Ok(TokenPair { access, refresh: Some(refresh) });
                }
                Rotation::Stale => {
                    // Another request rotated first, while this one held the current token: a
                    // race (two tabs), never a replay (the store's verdict that the two were
                    // concurrent, whatever the clock says). Within the grace window it still
                    // gets a pair.
                    let (_, current) = app.store.get_user_and_session(&id, &claims.sid, now).await?;
                    session = current.ok_or(ServiceError::TokenNotValid)?;
                    verdict = verdict_for(&session, true);
                }
            }
        }
        RefreshVerdict::Grace | RefreshVerdict::LostRace | RefreshVerdict::Reuse => {}
    }
    match verdict {
        RefreshVerdict::Grace => {
            tracing::info!(event = "refresh", outcome = "grace", user_id = %id, session_id = %session.id);
            let refresh = app
                .tokens
                .issue_refresh(&user, &session.id, session.current_jti.clone(), now, session.expires_at, &authn)
                .await?;
            return Ok(TokenPair { access, refresh: Some(refresh) });
        }
        // A verdict on a lost rotation is never to rotate again.
        RefreshVerdict::LostRace | RefreshVerdict::Rotate | RefreshVerdict::KeepCurrent => {
            tracing::info!(event = "refresh", outcome = "lost_race", user_id = %id, session_id = %session.id);
            return Err(ServiceError::TokenNotValid);
        }
        RefreshVerdict::Reuse => {}
    }
    tracing::warn!(event = "refresh", outcome = "reuse", user_id = %id, session_id = %session.id, "refresh token replayed; session revoked");
    app.store.delete_session(&id, &session.id).await?;
    super::audit::record(app, super::audit::Event::new("session.reuse_detected").to(&id).object(session.id.as_str()))
        .await;
    let alert = mail::render(&app.settings, EmailKind::SessionReuse, &user, mail::Extras::default());
    deliver(app, &alert, &id).await;
    Err(ServiceError::TokenNotValid)
}

/// Checks a token's signature, type and lifetime (either type), as simplejwt's verify does.
///
/// An access token is judged on those alone (stateless, as simplejwt). A refresh token must also
/// still be usable, as simplejwt refuses a blacklisted one: its session live (not blacklisted,
/// revoked or ended by "log out everywhere"), its account active and the token not issued before
/// the account's `tokens_valid_after`, and the token the session's current one (or its previous
/// one within `REFRESH_REUSE_GRACE`): a token spent by rotation is refused, without the
/// revocation its replay at `/auth/jwt/refresh/` would cause. One store round trip.
pub async fn verify(app: &App, form: &Form) -> Result<(), ServiceError> {
    let token = token_field(form, "token")?;
    let now = app.now();
    match app.tokens.verify(&token, TokenType::Access, now).await {
        Err(crate::tokens::TokenError::Invalid) => {}
        other => return other.map(|_| ()).map_err(ServiceError::from),
    }
    let claims = app.tokens.verify(&token, TokenType::Refresh, now).await?;
    let id = UserId::parse(&claims.user_id).ok_or(ServiceError::TokenNotValid)?;
    let (user, session) = app.store.get_user_and_session(&id, &claims.sid, now).await?;
    let (Some(user), Some(session)) = (user, session) else { return Err(ServiceError::TokenNotValid) };
    if !user.is_active || claims.iat < user.tokens_valid_after {
        return Err(ServiceError::TokenNotValid);
    }
    let live = policy::refresh_token_live(
        &claims.jti,
        &session.current_jti,
        session.previous_jti.as_deref(),
        session.rotated_at.map(|at| now - at),
        app.settings.refresh_reuse_grace.as_secs() as i64,
    );
    if !live {
        return Err(ServiceError::TokenNotValid);
    }
    Ok(())
}
