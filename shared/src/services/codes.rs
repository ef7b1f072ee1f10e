//! One-time codes: making them, emailing them, and finding whom a confirmation is for
//! (`{uid, token}` from a link, or `{email, code}` typed into an app).

use crate::config::CodeFormat;
use crate::domain::{CodePurpose, Email, User, UserId};
use crate::mail::{self, Extras};
use crate::ports::{CodeRecord, EmailKind};
use crate::secrets::{decode_uid, encode_uid, random_bytes, random_token, sha256_hex};

use super::{App, FieldErrors, Form, ServiceError};

pub const INVALID_UID: &str = "Invalid user id or user doesn't exist.";
pub const INVALID_TOKEN: &str = "Invalid token for given user.";
pub const INVALID_CODE: &str = "Invalid or expired code.";

/// Longest token we bother hashing.
const MAX_TOKEN_LEN: usize = 256;

/// A fresh code in the configured format.
pub fn fresh(format: CodeFormat) -> Result<String, ServiceError> {
    match format {
        CodeFormat::Link => Ok(random_token()?),
        CodeFormat::Numeric => loop {
            // Rejection sampling keeps the six digits uniform.
            let n = u32::from_le_bytes(random_bytes::<4>()?);
            if n < 4_294_000_000 {
                return Ok(format!("{:06}", n % 1_000_000));
            }
        },
    }
}

/// A new code for `user` and `purpose`, stored (replacing any earlier one) and returned in clear
/// for the email.
pub async fn issue(app: &App, user: &User, purpose: CodePurpose, data: Option<String>) -> Result<String, ServiceError> {
    let (code, record) = record(app, &user.id, purpose, data)?;
    app.store.put_code(&record).await?;
    Ok(code)
}

/// A new code and its record, not yet stored (registration writes it in its own transaction).
pub fn record(
    app: &App,
    user: &UserId,
    purpose: CodePurpose,
    data: Option<String>,
) -> Result<(String, CodeRecord), ServiceError> {
    let s = &app.settings;
    let code = fresh(s.code_format)?;
    let lifetime = match purpose {
        CodePurpose::Activation => s.activation_token_lifetime,
        CodePurpose::PasswordReset => s.password_reset_timeout,
        CodePurpose::EmailChange => s.email_change_timeout,
    };
    let record = CodeRecord {
        user_id: user.clone(),
        purpose,
        hash: sha256_hex(&code),
        expires_at: app.now() + lifetime.as_secs() as i64,
        attempts: 0,
        data,
    };
    Ok((code, record))
}

/// The email carrying a code: link always, the code itself too when codes are numeric.
pub fn email(app: &App, kind: EmailKind, user: &User, url_pattern: &str, code: &str) -> crate::ports::OutgoingEmail {
    let s = &app.settings;
    let link = mail::action_link(s, url_pattern, &encode_uid(&user.id), code);
    let code = (s.code_format == CodeFormat::Numeric).then(|| code.to_owned());
    mail::render(s, kind, user, Extras { link: Some(link), code, other_address: None })
}

/// How the caller named the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `{uid, token}`
    Link,
    /// `{email, code}`
    Typed,
}

impl Via {
    /// The 400 for a wrong, expired or spent code.
    pub fn invalid(self) -> ServiceError {
        match self {
            Via::Link => FieldErrors::single("token", INVALID_TOKEN),
            Via::Typed => FieldErrors::single("code", INVALID_CODE),
        }
    }
}

/// Whom a confirmation is for, and the code they presented. `{uid, token}` errors name `uid`
/// or `token`, as djoser's do; `{email, code}` errors never tell whether the address exists.
pub async fn claimant(
    app: &App,
    form: &Form,
    errors: &mut FieldErrors,
) -> Result<Option<(User, String, Via)>, ServiceError> {
    let now = app.now();
    if !form.contains("uid") && form.contains("email") {
        let email = form.required("email", errors);
        let code = form.required("code", errors);
        let (Some(email), Some(code)) = (email, code) else {
            return Ok(None);
        };
        if !errors.is_empty() {
            return Ok(None);
        }
        let user = match Email::parse(&email) {
            Ok(e) => app.store.find_user_by_email(&e, now).await?,
            Err(_) => None,
        };
        return match user {
            Some(u) if code.len() <= MAX_TOKEN_LEN => Ok(Some((u, code, Via::Typed))),
            _ => Err(Via::Typed.invalid()),
        };
    }
    let uid = form.required("uid", errors);
    let token = form.required("token", errors);
    let (Some(uid), Some(token)) = (uid, token) else {
        return Ok(None);
    };
    if !errors.is_empty() {
        return Ok(None);
    }
    let Some(id) = decode_uid(&uid) else {
        return Err(FieldErrors::single("uid", INVALID_UID));
    };
    let Some(user) = app.store.get_user(&id, now).await? else {
        return Err(FieldErrors::single("uid", INVALID_UID));
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err(Via::Link.invalid());
    }
    Ok(Some((user, token, Via::Link)))
}

/// Counts a wrong guess against the user's code (it dies after five) and answers the 400.
pub async fn wrong_guess(app: &App, user: &UserId, purpose: CodePurpose, via: Via) -> ServiceError {
    if let Err(e) = app.store.record_code_failure(user, purpose).await {
        return e.into();
    }
    tracing::info!(event = "code", outcome = "invalid", purpose = purpose.as_str(), user_id = %user);
    via.invalid()
}
