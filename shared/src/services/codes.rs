//! One-time codes: making them, emailing them, and finding whom a confirmation is for
//! (`{uid, token}` from a link, or `{email, code}` typed into an app).

use crate::config::CodeFormat;
use crate::domain::{CodePurpose, Email, User, UserId};
use crate::mail::{self, Extras};
use crate::policy::{self, CodeVerdict};
use crate::ports::{CodeRecord, EmailKind, Reservation};
use crate::secrets::{decode_uid, encode_uid, random_bytes, random_token};

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

/// The MAC `code` is stored as (see [`crate::keys::CodeKey`]).
pub async fn mac(app: &App, user: &UserId, purpose: CodePurpose, code: &str) -> Result<String, ServiceError> {
    Ok(app.keys.code_key().await?.mac(user, purpose, code))
}

/// A new code for `user` and `purpose`, stored (replacing any earlier one) and returned in clear
/// for the email.
pub async fn issue(app: &App, user: &User, purpose: CodePurpose, data: Option<String>) -> Result<String, ServiceError> {
    let (code, record) = record(app, &user.id, purpose, data).await?;
    app.store.put_code(&record).await?;
    Ok(code)
}

/// A new code and its record, not yet stored (registration writes it in its own transaction).
pub async fn record(
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
        hash: mac(app, user, purpose, &code).await?,
        expires_at: app.now() + lifetime.as_secs() as i64,
        attempts: 0,
        data,
        spent: false,
    };
    Ok((code, record))
}

/// The email carrying a code: link always, the code itself too when codes are numeric.
pub fn email(app: &App, kind: EmailKind, user: &User, url_pattern: &str, code: &str) -> crate::ports::OutgoingEmail {
    let s = &app.settings;
    let link = mail::action_link(s, url_pattern, &encode_uid(&user.id), code);
    let code = (s.code_format == CodeFormat::Numeric).then(|| code.to_owned());
    mail::render(s, kind, user, Extras { link: Some(link), code, ..Extras::default() })
}

/// How the caller named the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// `{uid, token}`
    Link,
    /// `{email, code}` (numeric codes only)
    Typed,
}

impl Via {
    /// The 400 for a wrong, expired, spent or unjudged code: one answer for all of them.
    pub fn invalid(self) -> ServiceError {
        match self {
            Via::Link => FieldErrors::single("token", INVALID_TOKEN),
            Via::Typed => FieldErrors::single("code", INVALID_CODE),
        }
    }
}

/// A confirmation: whom it is for and the code presented.
pub struct Claim {
    pub user: User,
    pub code: String,
    pub via: Via,
}

/// Whom a confirmation is for. `{uid, token}` errors name `uid` or `token`, as djoser's do;
/// `{email, code}` (accepted only with `CODE_FORMAT=numeric`: a 256-bit link token is never typed)
/// answers an unknown address exactly as a wrong code. Missing fields are recorded in `errors`
/// (`Ok(None)`), and so may be reported with the caller's other field errors.
pub async fn claimant(app: &App, form: &Form, errors: &mut FieldErrors) -> Result<Option<Claim>, ServiceError> {
    let now = app.now();
    let typed = app.settings.code_format == CodeFormat::Numeric && !form.contains("uid") && form.contains("email");
    if typed {
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
            Some(user) if code.len() <= MAX_TOKEN_LEN => Ok(Some(Claim { user, code, via: Via::Typed })),
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
    Ok(Some(Claim { user, code: token, via: Via::Link }))
}

/// Takes one guess from the account's budget of guesses at its `purpose` codes (per window,
/// whatever the code: asking for a new code does not reset it). False when it is spent.
async fn take_budget(app: &App, user: &UserId, purpose: CodePurpose) -> Result<bool, ServiceError> {
    let Some(rate) = app.settings.code_guess_budget else { return Ok(true) };
    let now = app.now();
    let (counter, end) = super::throttle::ip_window("code_guess", &format!("{user}:{}", purpose.as_str()), rate, now);
    let reservation = Reservation { counter, limit: rate.limit, or_at: None, expires_at: end };
    Ok(app.store.reserve(&[reservation], now).await?.is_ok())
}

/// Judges a presented code for `purpose`, without spending it: its MAC when it is right. Numeric
/// codes are reserved first: the guess takes one unit of the account's guess budget and one of
/// the code's own [`crate::ports::MAX_CODE_ATTEMPTS`] guesses, atomically, and is judged only if it
/// got both; every guess beyond them is refused unseen, and a guess is never judged without being
/// counted. A store failure on the way is a 503 (fail closed). Link codes (256 bits) are judged
/// at once, never counted, never burned: nobody can spend someone else's link by guessing.
pub async fn judge(app: &App, claim: &Claim, purpose: CodePurpose) -> Result<String, ServiceError> {
    let (user, now) = (&claim.user.id, app.now());
    let mac = mac(app, user, purpose, &claim.code).await?;
    let numeric = app.settings.code_format == CodeFormat::Numeric;
    let budget_left = if numeric { take_budget(app, user, purpose).await? } else { true };
    let record = match (budget_left, numeric) {
        (false, _) => None,
        (true, true) => app.store.reserve_guess(user, purpose, now).await?,
        (true, false) => app.store.get_code(user, purpose, now).await?,
    };
    match policy::code_verdict(budget_left, record.map(|r| r.facts(&mac)), now) {
        CodeVerdict::Accept => Ok(mac),
        CodeVerdict::BudgetSpent => {
            tracing::info!(event = "code", outcome = "budget_spent", purpose = purpose.as_str(), user_id = %user);
            Err(claim.via.invalid())
        }
        CodeVerdict::Invalid => {
            tracing::info!(event = "code", outcome = "invalid", purpose = purpose.as_str(), user_id = %user);
            Err(claim.via.invalid())
        }
    }
}

/// Whether the presented code is the account's activation code, already spent (djoser's
/// `stale_token`). A numeric guess takes a unit of the account's guess budget first.
pub async fn is_spent_activation(app: &App, claim: &Claim) -> Result<bool, ServiceError> {
    let (user, purpose) = (&claim.user.id, CodePurpose::Activation);
    if app.settings.code_format == CodeFormat::Numeric && !take_budget(app, user, purpose).await? {
        return Ok(false);
    }
    let mac = mac(app, user, purpose, &claim.code).await?;
    let record = app.store.get_code(user, purpose, app.now()).await?;
    Ok(record.is_some_and(|r| r.spent && r.matches(&mac)))
}
