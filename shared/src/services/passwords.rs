//! `set_password`, `reset_password` and `reset_password_confirm`.

use std::time::Instant;

use crate::domain::{CodePurpose, Password, User};
use crate::mail::{self, Extras};
use crate::ports::{ActivateError, EmailKind, UpdateUserError};

use super::auth::Caller;
use super::codes::{self, claimant};
use super::register::PASSWORDS_DIFFER;
use super::{deliver, revoke_sessions, throttle, App, ClientInfo, FieldErrors, Form, ServiceError};

pub const INVALID_PASSWORD: &str = "Invalid password.";
pub const EMAIL_NOT_FOUND: &str = "User with given email does not exist.";

/// What an account without a password is told when its sign-in is too old for a sensitive step.
pub const NO_PASSWORD_SIGN_IN_AGAIN: &str =
    "This account has no password yet: sign in again to confirm it is you, or set one with a password reset.";

/// Checks the signed-in caller's `current_password` (recording the error in `errors`) against the
/// same budgets as a login (see [`throttle::PasswordGuard`]): an attempt is reserved before the
/// password is verified. Once the budget is spent the session that is guessing is ended and the
/// answer is 429: a stolen access token is not a way to guess the password. An account without a
/// password (made through a sign-in provider) proves itself by a sign-in within `REAUTH_WINDOW`.
pub async fn check_current_password(
    app: &App,
    caller: &Caller,
    client: &ClientInfo,
    form: &Form,
    errors: &mut FieldErrors,
) -> Result<(), ServiceError> {
    // An account made through a sign-in provider has no password to give: a sign-in within
    // `REAUTH_WINDOW` proves it is its owner instead (and sets its first password, if asked).
    if !crate::password::usable(&caller.user.password_hash) {
        if !super::mfa::recent(app, caller) {
            errors.add("current_password", NO_PASSWORD_SIGN_IN_AGAIN);
        }
        return Ok(());
    }
    let Some(raw) = form.required("current_password", errors) else {
        return Ok(());
    };
    let user = &caller.user;
    let now = app.now();
    let guard = match throttle::PasswordGuard::reserved(app, user.email.as_str(), client.ip.as_deref(), now).await {
        Ok(guard) => guard,
        Err(e) => {
            if matches!(e, ServiceError::Throttled(_)) {
                tracing::info!(event = "current_password", outcome = "budget_spent", user_id = %user.id);
                app.store.delete_session(&user.id, &caller.session.id).await?;
            }
            return Err(e);
        }
    };
    let ok = match Password::parse(raw) {
        Ok(p) => app.hasher.verify(&p, Some(&user.password_hash)).await,
        Err(_) => false,
    };
    if ok {
        if let Err(e) = guard.succeeded(app).await {
            tracing::warn!(event = "current_password", outcome = "attempt_not_given_back", error = %e);
        }
    } else {
        errors.add("current_password", INVALID_PASSWORD);
    }
    Ok(())
}

/// Reads a new password from `field` (and its retype from `retype`, when required) and checks it
/// against the policy and the user's own attributes.
pub fn new_password(
    app: &App,
    user: &User,
    form: &Form,
    field: &str,
    retype: Option<&str>,
    errors: &mut FieldErrors,
) -> Option<Password> {
    let password = match form.required(field, errors).map(Password::parse) {
        Some(Ok(p)) => Some(p),
        Some(Err(msg)) => {
            errors.add(field, msg);
            None
        }
        None => None,
    };
    if let Some(p) = &password {
        let mut attributes = vec![
            ("username", user.username.as_ref().map(|u| u.as_str()).unwrap_or("")),
            ("first name", user.first_name.as_str()),
            ("last name", user.last_name.as_str()),
            ("email address", user.email.as_str()),
        ];
        attributes.retain(|(_, v)| !v.is_empty());
        for msg in app.policy.check(p, &attributes) {
            errors.add(field, msg);
        }
    }
    if let Some(retype) = retype {
        let again = form.required(retype, errors);
        if let (Some(p), Some(r)) = (&password, again) {
            if p.expose() != r {
                errors.add("non_field_errors", PASSWORDS_DIFFER);
            }
        }
    }
    password
}

/// Changes the caller's password. With `LOGOUT_ON_PASSWORD_CHANGE`, every other session ends
/// first: should the password write then fail, the account is logged out elsewhere with its old
/// password (fail closed, and the retry completes), never on its new password with the other
/// sessions alive.
pub async fn set_password(app: &App, caller: &Caller, client: &ClientInfo, form: &Form) -> Result<(), ServiceError> {
    let s = &app.settings;
    let mut errors = FieldErrors::default();
    check_current_password(app, caller, client, form, &mut errors).await?;
    if errors.is_empty() {
        super::mfa::step_up_second_factor(app, caller, client, form, &mut errors).await?;
    }
    let retype = s.set_password_retype.then_some("re_new_password");
    let password = new_password(app, &caller.user, form, "new_password", retype, &mut errors);
    errors.finish()?;
    let Some(password) = password else {
        return Err(ServiceError::Internal("validated password missing".into()));
    };
    let hash = app.hasher.hash(&password).await?;
    let mut updated = caller.user.clone();
    updated.password_hash = hash;
    if s.logout_on_password_change {
        revoke_sessions(app, &caller.user.id, Some(&caller.session.id)).await?;
    }
    match app.store.update_user(&caller.user, &updated, app.now()).await {
        Ok(_) => {}
        Err(UpdateUserError::Conflict) => {
            return Err(ServiceError::Unavailable("account changed during the password change".into()))
        }
        Err(UpdateUserError::UsernameTaken) => {
            return Err(ServiceError::Internal("username moved during set_password".into()))
        }
        Err(UpdateUserError::Store(e)) => return Err(e.into()),
    }
    tracing::info!(event = "password_change", outcome = "ok", user_id = %caller.user.id);
    super::audit::record(app, super::audit::Event::new("password.changed").own(&caller.user)).await;
    if s.password_changed_email_confirmation {
        deliver(app, &mail::render(s, EmailKind::PasswordChanged, &updated, Extras::default()), &updated.id).await;
    }
    Ok(())
}

/// Emails a reset code to an active account. Answers alike, and no sooner than `TIMING_FLOOR`,
/// for every address (400 for an unknown one only with `PASSWORD_RESET_SHOW_EMAIL_NOT_FOUND`).
pub async fn reset_password(app: &App, form: &Form, client: &ClientInfo) -> Result<(), ServiceError> {
    let started = Instant::now();
    let outcome = match throttle::spend_ip(app, "reset", app.settings.rate_reset_ip, client.ip.as_deref()).await {
        Ok(()) => send_reset(app, form).await,
        Err(e) => Err(e),
    };
    if let Some(rest) = app.settings.timing_floor.checked_sub(started.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    outcome
}

async fn send_reset(app: &App, form: &Form) -> Result<(), ServiceError> {
    let email = form.email("email")?;
    let s = &app.settings;
    // Active accounts, and never-activated ones: whoever holds the mailbox can take an address
    // that a stranger registered (confirming the reset activates it, with the owner's password).
    // A deactivated account is neither: it comes back only through an admin.
    let user =
        app.store.find_user_by_email(&email, app.now()).await?.filter(|u| u.is_active || u.activatable_by_email());
    let Some(user) = user else {
        tracing::info!(event = "password_reset", outcome = "unknown_email");
        if s.password_reset_show_email_not_found {
            return Err(FieldErrors::single("email", EMAIL_NOT_FOUND));
        }
        return Ok(());
    };
    // The address is an active account from here on: a failure must answer as an unknown address
    // does, or an outage of writes (or of SES) would tell accounts apart.
    if let Err(e) = email_reset(app, &user).await {
        tracing::warn!(event = "password_reset", outcome = "not_sent", user_id = %user.id, error = %e);
    }
    Ok(())
}

/// Issues a reset code and emails it, unless the email cooldown holds. A code that could not be
/// stored or sent gives the cooldown back: the retry is not held back.
async fn email_reset(app: &App, user: &User) -> Result<(), ServiceError> {
    let address = user.email.normalised();
    if !throttle::email_allowed(app, address).await? {
        return Ok(());
    }
    let code = match codes::issue(app, user, CodePurpose::PasswordReset, None).await {
        Ok(code) => code,
        Err(e) => {
            throttle::release_email(app, address).await;
            return Err(e);
        }
    };
    let email = codes::email(app, EmailKind::PasswordReset, user, &app.settings.password_reset_confirm_url, &code);
    if !deliver(app, &email, &user.id).await {
        throttle::release_email(app, address).await;
        return Ok(());
    }
    tracing::info!(event = "password_reset", outcome = "sent", user_id = %user.id);
    super::audit::record(app, super::audit::Event::new("password.reset_requested").to(&user.id)).await;
    Ok(())
}

/// Sets a new password with an emailed reset code. The code is judged first: a wrong code gets
/// the same answer whatever the account, and the password policy is reported only once the code
/// is right (a refused password does not spend the code). Then every session ends, every token
/// issued before now is refused, and every outstanding code of the user dies; a never-activated
/// account is activated. The reset itself is one atomic write; what follows is cleanup that
/// cannot undo it, so a failure there is logged and the answer is still 204: a 503 would send the
/// client into a retry that can only fail on the spent code.
pub async fn reset_password_confirm(app: &App, form: &Form, client: &ClientInfo) -> Result<(), ServiceError> {
    let s = &app.settings;
    throttle::spend_ip(app, "confirm", s.rate_confirm_ip, client.ip.as_deref()).await?;
    let mut errors = FieldErrors::default();
    // Which fields are missing tells nothing about the account: reported with the code's errors.
    let found = claimant(app, form, &mut errors).await;
    form.required("new_password", &mut errors);
    let retype = s.password_reset_confirm_retype.then_some("re_new_password");
    if let Some(r) = retype {
        form.required(r, &mut errors);
    }
    errors.finish()?;
    let Some(claim) = found? else {
        return Err(ServiceError::Internal("validated fields missing".into()));
    };
    let mac = codes::judge(app, &claim, CodePurpose::PasswordReset).await?;
    if !claim.user.is_active && !claim.user.activatable_by_email() {
        // A code that reached a deactivated account (issued as it was being deactivated) would
        // activate it: refused as a spent code is.
        tracing::warn!(event = "password_reset", outcome = "refused", reason = "deactivated", user_id = %claim.user.id);
        return Err(claim.via.invalid());
    }
    let mut errors = FieldErrors::default();
    let password = new_password(app, &claim.user, form, "new_password", retype, &mut errors);
    errors.finish()?;
    let Some(password) = password else {
        return Err(ServiceError::Internal("validated password missing".into()));
    };
    let user = claim.user;
    let hash = app.hasher.hash(&password).await?;
    let now = app.now();
    match app.store.reset_password(&user, &mac, &hash, now).await {
        Ok(()) => {}
        Err(ActivateError::InvalidCode | ActivateError::NotActivatable) => return Err(claim.via.invalid()),
        Err(ActivateError::Store(e)) => return Err(e.into()),
    }
    // The sessions' tokens are refused already (`tokens_valid_after`); this removes their items.
    if let Err(e) = revoke_sessions(app, &user.id, None).await {
        tracing::warn!(event = "password_reset", outcome = "sessions_not_removed", user_id = %user.id, error = %e);
    }
    throttle::lift(app, user.email.as_str(), client.ip.as_deref()).await;
    tracing::info!(event = "password_reset", outcome = "confirmed", user_id = %user.id, activated = !user.is_active);
    super::audit::record(app, super::audit::Event::new("password.reset").to(&user.id)).await;
    deliver(app, &mail::render(s, EmailKind::PasswordChanged, &user, Extras::default()), &user.id).await;
    Ok(())
}
