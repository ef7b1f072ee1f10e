//! `POST /auth/users/activation/` and `POST /auth/users/resend_activation/`.

use crate::domain::CodePurpose;
use crate::mail::{self, Extras};
use crate::ports::{ActivateError, EmailKind, GiveBack};

use super::codes::{self, claimant};
use super::{deliver, login, throttle, App, ClientInfo, FieldErrors, Form, ServiceError, TokenPair};

pub use super::codes::{INVALID_TOKEN, INVALID_UID};

pub const STALE: ServiceError = ServiceError::Forbidden { code: "stale_token", detail: "Stale token for given user." };

/// Activates the account named by `{uid, token}` (or, with numeric codes, `{email, code}`). The
/// code is judged before the account's state is looked at: a wrong code gets the same answer
/// whatever the account's state or existence, and only the right code, already spent, on an
/// active account gets djoser's 403 `stale_token`. Only an account that has never been active is
/// activated here: a deactivated one (by an admin, or by its owner under
/// `DELETE_ME_MODE=deactivate`) gets the answer of a wrong code, whatever code it presents, and
/// comes back only through an admin. Single use, even under races. With
/// `LOGIN_AFTER_ACTIVATION`, returns a token pair for a new session.
pub async fn activate(app: &App, form: &Form, client: &ClientInfo) -> Result<Option<TokenPair>, ServiceError> {
    throttle::spend_ip(app, "confirm", app.settings.rate_confirm_ip, client.ip.as_deref()).await?;
    let mut errors = FieldErrors::default();
    let found = claimant(app, form, &mut errors).await?;
    errors.finish()?;
    let Some(claim) = found else {
        return Err(ServiceError::Internal("validated fields missing".into()));
    };
    if claim.user.is_active {
        return if codes::is_spent_activation(app, &claim).await? { Err(STALE) } else { Err(claim.via.invalid()) };
    }
    if !claim.user.activatable_by_email() {
        tracing::warn!(event = "activation", outcome = "refused", reason = "deactivated", user_id = %claim.user.id);
        return Err(claim.via.invalid());
    }
    let mac = codes::judge(app, &claim, CodePurpose::Activation).await?;
    let now = app.now();
    let user = claim.user;
    match app.store.activate(&user.id, &mac, now).await {
        Ok(()) => {}
        Err(ActivateError::InvalidCode) => {
            // Spent meanwhile by a concurrent confirmation with the same code.
            return match app.store.get_user(&user.id, now).await? {
                Some(u) if u.is_active => Err(STALE),
                _ => Err(claim.via.invalid()),
            };
        }
        Err(ActivateError::NotActivatable) => {
            // Lost a race to another activation, or the account expired meanwhile.
            return match app.store.get_user(&user.id, now).await? {
                Some(u) if u.is_active => Err(STALE),
                _ => Err(FieldErrors::single("uid", INVALID_UID)),
            };
        }
        Err(ActivateError::Store(e)) => return Err(e.into()),
    }
    tracing::info!(event = "activation", outcome = "ok", user_id = %user.id);
    super::audit::record(app, super::audit::Event::new("account.activated").to(&user.id)).await;
    if app.settings.send_confirmation_email {
        deliver(app, &mail::render(&app.settings, EmailKind::Confirmation, &user, Extras::default()), &user.id).await;
    }
    if !app.settings.login_after_activation {
        return Ok(None);
    }
    let mut active = user;
    active.is_active = true;
    active.expires_at = None;
    login::open_session(app, &active, client, now, &GiveBack::default(), &crate::tokens::Authn::new(now, &[]))
        .await
        .map(Some)
}

/// Sends a fresh activation code to an account that has never been active; answers the same for
/// every address, and no sooner than `TIMING_FLOOR`, whatever happens once the account is found.
/// An active or deactivated account gets nothing, and the answer given for an unknown address.
/// The new code replaces the previous one. A code that could not be stored or sent does not spend
/// the email cooldown: the caller may retry at once.
pub async fn resend(app: &App, form: &Form, client: &ClientInfo) -> Result<(), ServiceError> {
    let started = std::time::Instant::now();
    let outcome = resend_now(app, form, client).await;
    if let Some(rest) = app.settings.timing_floor.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    outcome
}

async fn resend_now(app: &App, form: &Form, client: &ClientInfo) -> Result<(), ServiceError> {
    throttle::spend_ip(app, "resend", app.settings.rate_resend_ip, client.ip.as_deref()).await?;
    let email = form.email("email")?;
    let s = &app.settings;
    let Some(user) = app.store.find_user_by_email(&email, app.now()).await? else {
        return Ok(());
    };
    if !user.activatable_by_email() || !s.send_activation_email {
        return Ok(());
    }
    if let Err(e) = email_activation(app, &user).await {
        tracing::warn!(event = "resend_activation", outcome = "not_sent", user_id = %user.id, error = %e);
    }
    Ok(())
}

async fn email_activation(app: &App, user: &crate::domain::User) -> Result<(), ServiceError> {
    let address = user.email.normalised();
    if !throttle::email_allowed(app, address).await? {
        return Ok(());
    }
    let code = match codes::issue(app, user, CodePurpose::Activation, None).await {
        Ok(code) => code,
        Err(e) => {
            throttle::release_email(app, address).await;
            return Err(e);
        }
    };
    let email = codes::email(app, EmailKind::Activation, user, &app.settings.activation_url, &code);
    if !deliver(app, &email, &user.id).await {
        throttle::release_email(app, address).await;
    }
    Ok(())
}
