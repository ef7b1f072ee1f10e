//! `set_email` and `set_email_confirm`: a verified change of address.

use crate::domain::{CodePurpose, Email};
use crate::mail::{self, Extras};
use crate::ports::{ChangeEmailError, EmailKind};
use crate::secrets::encode_uid;

use super::auth::Caller;
use super::codes::{self, Via};
use super::passwords::check_current_password;
use super::register::EMAIL_TAKEN;
use super::{deliver, throttle, App, ClientInfo, FieldErrors, Form, ServiceError};

pub const EMAILS_DIFFER: &str = "The two email fields didn't match.";

/// Starts a change of the caller's address (current password required). With
/// `EMAIL_CHANGE_VERIFICATION` (default) nothing changes until the link sent to the new address
/// is used; the old address gets a notice either way. When the link cannot be sent the answer is
/// 503: the pending change stays (a timed-out send may still arrive, and its link works), the
/// notice still goes to the old address, and a retry issues a fresh link (the earlier one dies).
/// Mail cannot be sprayed through it: a per-IP budget (`RATE_SET_EMAIL_IP`), and one request per
/// account per `EMAIL_COOLDOWN` (later ones answer 429), and the mail to the unverified address
/// carries nothing the account wrote, only the site's name and the link.
pub async fn set_email(app: &App, caller: &Caller, client: &ClientInfo, form: &Form) -> Result<(), ServiceError> {
    let s = &app.settings;
    let user = &caller.user;
    throttle::spend_ip(app, "set_email", s.rate_set_email_ip, client.ip.as_deref()).await?;
    let mut errors = FieldErrors::default();
    check_current_password(app, caller, client, form, &mut errors).await?;
    if errors.is_empty() {
        super::mfa::step_up_second_factor(app, caller, client, form, &mut errors).await?;
    }
    let new_email = form.required("new_email", &mut errors).and_then(|raw| match Email::parse(&raw) {
        Ok(e) => Some(e),
        Err(msg) => {
            errors.add("new_email", msg);
            None
        }
    });
    if s.set_username_retype {
        let again = form.required("re_new_email", &mut errors);
        if let (Some(e), Some(r)) = (&new_email, again) {
            if Email::parse(&r).map(|r| r.normalised() != e.normalised()).unwrap_or(true) {
                errors.add("non_field_errors", EMAILS_DIFFER);
            }
        }
    }
    errors.finish()?;
    let Some(new_email) = new_email else {
        return Err(ServiceError::Internal("validated email missing".into()));
    };
    let now = app.now();
    let taken = new_email.normalised() != user.email.normalised()
        && app.store.find_user_by_email(&new_email, now).await?.is_some();
    if taken {
        return Err(FieldErrors::single("new_email", EMAIL_TAKEN));
    }
    let notice = Extras { other_address: Some(new_email.to_string()), ..Extras::default() };
    if !s.email_change_verification {
        apply(app, user, &new_email, None, Via::Link).await?;
        deliver(app, &mail::render(s, EmailKind::EmailChanged, user, notice), &user.id).await;
        return Ok(());
    }
    let cooldown = throttle::email_cooldown(app, &format!("set_email:{}", user.id)).await?;
    if let Some(wait) = cooldown {
        return Err(ServiceError::Throttled(wait));
    }
    let code = codes::issue(app, user, CodePurpose::EmailChange, Some(new_email.as_str().to_owned())).await?;
    let link = mail::action_link(s, &s.email_change_confirm_url, &encode_uid(&user.id), &code);
    let extras = Extras { link: Some(link), other_address: Some(new_email.to_string()), ..Extras::default() };
    // To an address nobody has verified yet: nothing of the account (no name, no old address).
    let mut addressee = user.clone();
    (addressee.email, addressee.first_name, addressee.last_name) = (new_email.clone(), String::new(), String::new());
    let confirm = mail::render(s, EmailKind::EmailChange, &addressee, extras);
    let sent = deliver(app, &confirm, &user.id).await;
    deliver(app, &mail::render(s, EmailKind::EmailChanged, user, notice), &user.id).await;
    if !sent {
        return Err(ServiceError::Unavailable("email change link not sent".into()));
    }
    tracing::info!(event = "email_change", outcome = "requested", user_id = %user.id);
    let asked = serde_json::json!({"email": {"from": user.email.as_str(), "to": new_email.as_str()}});
    super::audit::record(app, super::audit::Event::new("email.change_requested").own(user).changes(asked)).await;
    Ok(())
}

/// Confirms an email change with the link's `{uid, token}`: the old claim is released and the
/// new one taken in one transaction, and every other outstanding code of the user dies.
pub async fn set_email_confirm(app: &App, form: &Form, client: &ClientInfo) -> Result<(), ServiceError> {
    throttle::spend_ip(app, "confirm", app.settings.rate_confirm_ip, client.ip.as_deref()).await?;
    let mut errors = FieldErrors::default();
    let found = codes::claimant(app, form, &mut errors).await?;
    errors.finish()?;
    let Some(claim) = found else {
        return Err(ServiceError::Internal("validated fields missing".into()));
    };
    let mac = codes::judge(app, &claim, CodePurpose::EmailChange).await?;
    let stored = app.store.get_code(&claim.user.id, CodePurpose::EmailChange, app.now()).await?;
    let new_email = match stored.as_ref().filter(|c| c.matches(&mac)).and_then(|c| c.data.as_deref()) {
        Some(raw) => Email::parse(raw).map_err(|_| ServiceError::Internal("stored new email malformed".into()))?,
        None => return Err(claim.via.invalid()),
    };
    apply(app, &claim.user, &new_email, Some(&mac), claim.via).await?;
    tracing::info!(event = "email_change", outcome = "confirmed", user_id = %claim.user.id);
    let moved = serde_json::json!({"email": {"from": claim.user.email.as_str(), "to": new_email.as_str()}});
    super::audit::record(app, super::audit::Event::new("email.changed").to(&claim.user.id).changes(moved)).await;
    Ok(())
}

async fn apply(
    app: &App,
    user: &crate::domain::User,
    new_email: &Email,
    code_hash: Option<&str>,
    via: Via,
) -> Result<(), ServiceError> {
    match app.store.change_email(user, new_email, code_hash, app.now()).await {
        Ok(()) => Ok(()),
        Err(ChangeEmailError::EmailTaken) => {
            Err(FieldErrors::single(if code_hash.is_some() { "non_field_errors" } else { "new_email" }, EMAIL_TAKEN))
        }
        Err(ChangeEmailError::InvalidCode) => Err(via.invalid()),
        Err(ChangeEmailError::Conflict) => {
            Err(ServiceError::Unavailable("account changed during the email change".into()))
        }
        Err(ChangeEmailError::Store(e)) => Err(e.into()),
    }
}
