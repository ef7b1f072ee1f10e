//! `POST /auth/users/activation/` and `POST /auth/users/resend_activation/`.

use crate::domain::{CodePurpose, Email};
use crate::mail;
use crate::ports::{ActivateError, CodeRecord, EmailKind};
use crate::secrets::{decode_uid, random_token, sha256_hex};

use super::register::activation_link;
use super::{App, FieldErrors, Form, ServiceError};

pub const INVALID_UID: &str = "Invalid user id or user doesn't exist.";
pub const INVALID_TOKEN: &str = "Invalid token for given user.";
pub const STALE: ServiceError = ServiceError::Forbidden {
    code: "stale_token",
    detail: "Stale token for given user.",
};

/// Longest token we bother hashing.
const MAX_TOKEN_LEN: usize = 256;

/// Activates the account named by `uid` with the emailed `token`. Single use, even under races.
pub async fn activate(app: &App, form: &Form) -> Result<(), ServiceError> {
    let mut errors = FieldErrors::default();
    let uid = form.required("uid", &mut errors);
    let token = form.required("token", &mut errors);
    errors.finish()?;
    let (Some(uid), Some(token)) = (uid, token) else {
        return Err(ServiceError::Internal("validated fields missing".into()));
    };
    let now = app.now();
    let Some(id) = decode_uid(&uid) else {
        return Err(FieldErrors::single("uid", INVALID_UID));
    };
    let Some(user) = app.store.get_user(&id, now).await? else {
        return Err(FieldErrors::single("uid", INVALID_UID));
    };
    if user.is_active {
        return Err(STALE);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(FieldErrors::single("token", INVALID_TOKEN));
    }
    match app.store.activate(&id, &sha256_hex(&token), now).await {
        Ok(()) => {}
        Err(ActivateError::InvalidCode) => {
            tracing::info!(event = "activation", outcome = "invalid_token", user_id = %id);
            return Err(FieldErrors::single("token", INVALID_TOKEN));
        }
        Err(ActivateError::NotActivatable) => {
            // Lost a race to another activation, or the account expired meanwhile.
            return match app.store.get_user(&id, now).await? {
                Some(u) if u.is_active => Err(STALE),
                _ => Err(FieldErrors::single("uid", INVALID_UID)),
            };
        }
        Err(ActivateError::Store(e)) => return Err(e.into()),
    }
    tracing::info!(event = "activation", outcome = "ok", user_id = %id);
    if app.settings.send_confirmation_email {
        let email = mail::render(&app.settings, EmailKind::Confirmation, &user, None);
        if let Err(e) = app.mailer.send(&email).await {
            tracing::error!(event = "email", outcome = "failed", user_id = %id, error = %e, "confirmation email not sent");
        }
    }
    Ok(())
}

/// Sends a fresh activation link to an inactive account; answers the same for every address.
/// The new link replaces the previous one.
pub async fn resend(app: &App, form: &Form) -> Result<(), ServiceError> {
    let mut errors = FieldErrors::default();
    let raw = form.required("email", &mut errors);
    errors.finish()?;
    let email = match raw.as_deref().map(Email::parse) {
        Some(Ok(e)) => e,
        Some(Err(msg)) => return Err(FieldErrors::single("email", msg)),
        None => return Err(FieldErrors::single("email", super::input::REQUIRED)),
    };
    let now = app.now();
    let s = &app.settings;
    let Some(user) = app.store.find_user_by_email(&email, now).await? else {
        return Ok(());
    };
    if user.is_active || !s.send_activation_email {
        return Ok(());
    }
    let token = random_token()?;
    let expires_at = (now + s.activation_token_lifetime.as_secs() as i64).min(user.expires_at.unwrap_or(i64::MAX));
    app.store
        .put_code(&CodeRecord {
            user_id: user.id.clone(),
            purpose: CodePurpose::Activation,
            hash: sha256_hex(&token),
            expires_at,
            attempts: 0,
        })
        .await?;
    let email = mail::render(
        s,
        EmailKind::Activation,
        &user,
        Some(activation_link(app, &user.id, &token)),
    );
    if let Err(e) = app.mailer.send(&email).await {
        tracing::error!(event = "email", outcome = "failed", user_id = %user.id, error = %e, "activation email not sent");
    }
    Ok(())
}
