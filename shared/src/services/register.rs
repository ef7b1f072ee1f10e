//! `POST /auth/users/`: create an account, inactive until its emailed link is used.

use crate::domain::{CodePurpose, Email, Password, User, Username};
use crate::mail::{self, Extras};
use crate::ports::{CreateUserError, EmailKind};

use super::{codes, deliver, throttle, App, ClientInfo, FieldErrors, Form, ServiceError};

pub const EMAIL_TAKEN: &str = "user with this email address already exists.";
pub const USERNAME_TAKEN: &str = "A user with that username already exists.";
pub const PASSWORDS_DIFFER: &str = "The two password fields didn't match.";

/// Longest first/last name (Django's `AbstractUser`).
pub const NAME_MAX: usize = 150;

/// A registration's fields, validated.
pub(crate) struct Registration {
    email: Email,
    password: Password,
    username: Option<Username>,
    first_name: String,
    last_name: String,
    /// Asked for in the form; otherwise a registration keeps its request's `Accept-Language`.
    language: Option<String>,
}

/// How a new account starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// As registration makes it: with `SEND_ACTIVATION_EMAIL`, inactive (expiring after
    /// `UNACTIVATED_ACCOUNT_LIFETIME`) with an activation code and email; otherwise active, with
    /// the confirmation email if `SEND_CONFIRMATION_EMAIL`.
    Registration,
    /// Active at once, no code, no expiry, no email (an admin's choice).
    Active,
    /// Inactive, no code, no expiry, no email: only an admin activates it (an admin's choice
    /// while activation emails are off).
    Inactive,
}

/// Reads and validates a registration (`POST /auth/users/`, and an admin's
/// `POST /auth/admin/users/`); every problem is reported at once.
pub(crate) fn parse(app: &App, form: &Form) -> Result<Registration, ServiceError> {
    let mut errors = FieldErrors::default();
    let parsed = parse_into(app, form, &mut errors);
    errors.finish()?;
    parsed.ok_or_else(|| ServiceError::Internal("validated registration incomplete".into()))
}

/// [`parse`], adding its errors to `errors` (a caller with more fields reports them all at once);
/// `None` when any of the registration's fields was refused.
pub(crate) fn parse_into(app: &App, form: &Form, errors: &mut FieldErrors) -> Option<Registration> {
    let (parsed, own) = parse_fields(app, form);
    if own.is_empty() {
        return parsed;
    }
    for (field, messages) in own.0 {
        for m in messages {
            errors.add(&field, m);
        }
    }
    None
}

fn parse_fields(app: &App, form: &Form) -> (Option<Registration>, FieldErrors) {
    let mut errors = FieldErrors::default();
    let email = form.required("email", &mut errors).and_then(|raw| match Email::parse(&raw) {
        Ok(e) => Some(e),
        Err(msg) => {
            errors.add("email", msg);
            None
        }
    });
    let username = match form.optional("username", 150, &mut errors) {
        Some(raw) if !raw.is_empty() => match Username::parse(&raw) {
            Ok(u) => Some(u),
            Err(msg) => {
                errors.add("username", msg);
                None
            }
        },
        _ => None,
    };
    let first_name = form.optional("first_name", NAME_MAX, &mut errors).unwrap_or_default();
    let last_name = form.optional("last_name", NAME_MAX, &mut errors).unwrap_or_default();
    let language = form.language(&mut errors).flatten();
    let password = form.required("password", &mut errors).and_then(|raw| match Password::parse(raw) {
        Ok(p) => Some(p),
        Err(msg) => {
            errors.add("password", msg);
            None
        }
    });
    if let Some(p) = &password {
        let mut attributes = vec![
            ("username", username.as_ref().map(|u| u.as_str()).unwrap_or("")),
            ("first name", first_name.as_str()),
            ("last name", last_name.as_str()),
            ("email address", email.as_ref().map(|e| e.as_str()).unwrap_or("")),
        ];
        attributes.retain(|(_, v)| !v.is_empty());
        for msg in app.policy.check(p, &attributes) {
            errors.add("password", msg);
        }
    }
    if app.settings.user_create_password_retype {
        let retyped = form.required("re_password", &mut errors);
        if let (Some(p), Some(r)) = (&password, retyped) {
            if p.expose() != r {
                errors.add("non_field_errors", PASSWORDS_DIFFER);
            }
        }
    }
    let parsed = match (email, password) {
        (Some(email), Some(password)) => {
            Some(Registration { email, password, username, first_name, last_name, language })
        }
        _ => None,
    };
    (parsed, errors)
}

/// Creates the user (and its activation code) atomically, then sends the activation email.
/// A failed email does not undo the registration: `resend_activation` recovers it.
pub async fn register(app: &App, form: &Form, client: &ClientInfo) -> Result<User, ServiceError> {
    throttle::spend_ip(app, "register", app.settings.rate_register_ip, client.ip.as_deref()).await?;
    let mut r = parse(app, form)?;
    // The registration's own Accept-Language (an admin's, on `POST /auth/admin/users/`, is not
    // the new user's: there only a `language` field gives one).
    r.language = r.language.or_else(|| crate::i18n::asked().map(str::to_owned));
    create(app, r, Start::Registration, |_| {}).await
}

/// Creates the account of a validated registration as `start` says, `shape` setting what an admin
/// adds (staff, groups) on the new user first: the user (and its activation code) atomically, then
/// the email `start` calls for. A failed email does not undo the creation: `resend_activation`
/// recovers it. A taken address or username is a 400 naming the field, with nothing written.
pub(crate) async fn create(
    app: &App,
    r: Registration,
    start: Start,
    shape: impl FnOnce(&mut User),
) -> Result<User, ServiceError> {
    let password_hash = app.hasher.hash(&r.password).await?;
    let now = app.now();
    let s = &app.settings;
    let activate_by_email = start == Start::Registration && s.send_activation_email;
    let mut user = User {
        username: r.username,
        first_name: r.first_name,
        last_name: r.last_name,
        is_active: match start {
            Start::Registration => !activate_by_email,
            Start::Active => true,
            Start::Inactive => false,
        },
        expires_at: activate_by_email.then(|| now + s.unactivated_account_lifetime.as_secs() as i64),
        language: r.language,
        ..User::new(r.email, password_hash, now)
    };
    shape(&mut user);
    let (token, code) = match activate_by_email {
        true => {
            let (token, record) = codes::record(app, &user.id, CodePurpose::Activation, None).await?;
            (Some(token), Some(record))
        }
        false => (None, None),
    };
    match app.store.create_user(&user, code.as_ref(), now).await {
        Ok(()) => {}
        Err(CreateUserError::EmailTaken) => return Err(FieldErrors::single("email", EMAIL_TAKEN)),
        Err(CreateUserError::UsernameTaken) => return Err(FieldErrors::single("username", USERNAME_TAKEN)),
        Err(CreateUserError::Store(e)) => return Err(e.into()),
        Err(CreateUserError::IdentityTaken) => return Err(ServiceError::Internal("no identity was written".into())),
    }
    tracing::info!(event = "register", outcome = "ok", user_id = %user.id, "account created");
    if start == Start::Registration {
        super::audit::record(app, super::audit::Event::new("account.registered").to(&user.id)).await;
    }
    let email = match &token {
        Some(t) => Some(codes::email(app, EmailKind::Activation, &user, &s.activation_url, t)),
        None if start == Start::Registration && s.send_confirmation_email => {
            Some(mail::render(s, EmailKind::Confirmation, &user, Extras::default()))
        }
        None => None,
    };
    if let Some(email) = email {
        deliver(app, &email, &user.id).await;
    }
    Ok(user)
}
