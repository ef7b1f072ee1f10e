//! Second factors (TOTP with recovery codes): enrolment, confirmation, turning off, new recovery
//! codes, and the second step of a sign-in (`mfa/verify`). See README "Two-step sign-in".
//!
//! Every answer (a TOTP code, a recovery code) is judged only after an attempt was reserved in
//! the account's password budgets (the lockout of [`throttle::PasswordGuard`]): a wrong code
//! costs what a wrong password costs, and a right one gives the attempt back. A sign-in's
//! `mfa_token` is a challenge item whose answers are counted by a conditional write before they
//! are judged (at most [`MFA_TOKEN_ATTEMPTS`]) and which is taken once, by a conditional delete.
//! A TOTP step is accepted once per account (no replay within its window), a recovery code once.

use crate::domain::{Challenge, ChallengeKind, RecoveryCodes, TotpFactor, User, UserId};
use crate::mail::{self, Extras};
use crate::mfa::{self, TotpSecret};
use crate::ports::EmailKind;
use crate::secrets::random_id;
use crate::tokens::Authn;

use super::auth::Caller;
use super::passwords::check_current_password;
use super::{deliver, input, throttle, App, ClientInfo, FieldErrors, Form, ServiceError, TokenPair};

/// How long a sign-in's second step stays open.
pub const MFA_TOKEN_LIFETIME: i64 = 300;
/// Answers a sign-in's second step takes before it dies.
pub const MFA_TOKEN_ATTEMPTS: u32 = 5;
/// How long an enrolment waits for its first code.
pub const PENDING_LIFETIME: i64 = 900;

pub const INVALID_CODE: &str = "Invalid code.";
pub const INVALID_RECOVERY_CODE: &str = "Invalid recovery code.";
pub const ALREADY_ENABLED: &str = "Two-step sign-in is already on for this account.";
pub const NOTHING_PENDING: &str = "No two-step sign-in set-up is waiting for a code: start again.";
pub const NOT_ENABLED: &str = "Two-step sign-in is not on for this account.";
pub const ONE_ANSWER: &str = "Give either code or recovery_code.";
pub const ONE_ANSWER_OR_PASSKEY: &str = "Give one of code, recovery_code or credential.";

pub const MFA_REQUIRED_DETAIL: &str = "A second factor is required to sign in.";
pub const MFA_TOKEN_NOT_VALID: ServiceError = ServiceError::Unauthorized {
    code: "mfa_token_not_valid",
    detail: "This sign-in step has expired or was used up: sign in again.",
};

/// What enrolment shows: the secret to type in, or the URL (and its QR code) to scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrolment {
    pub secret: String,
    pub otpauth_url: String,
    pub qr_svg: String,
}

/// The methods a user's second step accepts, as `mfa_required` lists them.
pub fn methods(user: &User) -> Vec<&'static str> {
    if user.mfa_enabled {
        vec!["totp", "recovery_code"]
    } else {
        Vec::new()
    }
}

fn internal(e: mfa::MfaError) -> ServiceError {
    ServiceError::Internal(format!("mfa: {e}"))
}

/// Whether the caller's sign-in is recent enough (`REAUTH_WINDOW`) to skip proving again.
pub fn recent(app: &App, caller: &Caller) -> bool {
    let window = app.settings.reauth_window.as_secs() as i64;
    let at = caller.claims.auth_time.unwrap_or(caller.session.created_at);
    window > 0 && app.now() - at <= window
}

/// Step-up: a sign-in within `REAUTH_WINDOW`, or the caller's `current_password` (checked when
/// given, even within the window).
async fn password_or_recent(
    app: &App,
    caller: &Caller,
    client: &ClientInfo,
    form: &Form,
    errors: &mut FieldErrors,
) -> Result<(), ServiceError> {
    if recent(app, caller) && !form.contains("current_password") {
        return Ok(());
    }
    check_current_password(app, caller, client, form, errors).await
}

/// The step-up of sensitive steps that carry no factor of their own (adding or removing a
/// passkey): a sign-in within `REAUTH_WINDOW`; otherwise `current_password` and, with two-step
/// sign-in on, the second factor (`code` or `recovery_code`).
pub async fn step_up(app: &App, caller: &Caller, client: &ClientInfo, form: &Form) -> Result<(), ServiceError> {
    let mut errors = FieldErrors::default();
    // A password given is checked, even within the window; the factor only outside it.
    password_or_recent(app, caller, client, form, &mut errors).await?;
    if errors.is_empty() && !recent(app, caller) {
        check_second_factor(app, caller, client, form, &mut errors).await?;
    }
    errors.finish()
}

/// A second-factor answer as a request gives it.
enum Answer {
    Code(String),
    Recovery(String),
    /// A passkey's assertion (`credential`), at `mfa/verify` only.
    Passkey,
}

impl Answer {
    fn field(&self) -> &'static str {
        match self {
            Self::Code(_) => "code",
            Self::Recovery(_) => "recovery_code",
            Self::Passkey => "credential",
        }
    }
    fn invalid(&self) -> &'static str {
        match self {
            Self::Code(_) => INVALID_CODE,
            Self::Recovery(_) => INVALID_RECOVERY_CODE,
            Self::Passkey => super::passkeys::NOT_VERIFIED,
        }
    }
}

/// `code` or `recovery_code` (exactly one; `recovery` false: only `code`), or with `passkey` a
/// `credential`.
fn answer(form: &Form, recovery: bool, passkey: bool, errors: &mut FieldErrors) -> Option<Answer> {
    let has = |f: &str| form.0.get(f).is_some_and(|v| !v.is_null());
    let given = [has("code"), recovery && has("recovery_code"), passkey && has("credential")];
    match given {
        [false, false, true] => Some(Answer::Passkey),
        [false, true, false] => form.required("recovery_code", errors).map(Answer::Recovery),
        [_, false, false] => form.required("code", errors).map(Answer::Code),
        _ => {
            errors.add("non_field_errors", if passkey { ONE_ANSWER_OR_PASSKEY } else { ONE_ANSWER });
            None
        }
    }
}

/// Judges `answer` for `user` (whose factor is confirmed): a TOTP code's step is accepted once,
/// a recovery code spent once. True when it was right and is now used.
async fn judge(app: &App, user: &UserId, answer: &Answer, now: i64) -> Result<bool, ServiceError> {
    #[cfg(feature = "test-util")]
    crate::probes::code_judged();
    let key = app.keys.code_key().await?;
    match answer {
        Answer::Code(code) => {
            let mfa = app.store.get_mfa(user, now).await?;
            let Some(factor) = mfa.totp.filter(|f| f.confirmed) else { return Ok(false) };
            let secret = mfa::unseal(&key, user, &factor.sealed_secret).map_err(internal)?;
            match secret.check(code, now) {
                Some(step) => Ok(app.store.accept_totp_step(user, step).await?),
                None => Ok(false),
            }
        }
        Answer::Recovery(raw) => match mfa::normalise_recovery_code(raw) {
            Some(code) => Ok(app.store.spend_recovery_code(user, &mfa::recovery_code_mac(&key, user, &code)).await?),
            None => Ok(false),
        },
        // Judged by `verify` against its challenge's state.
        Answer::Passkey => Ok(false),
    }
}

/// Reserves an attempt in `user`'s password budgets, then judges `answer`; the attempt is given
/// back (in `give_back`'s write, or on its own) when it was right.
async fn guarded_judge(
    app: &App,
    user: &User,
    client: &ClientInfo,
    answer: &Answer,
) -> Result<(bool, throttle::PasswordGuard), ServiceError> {
    let now = app.now();
    let guard = throttle::PasswordGuard::reserved(app, user.email.as_str(), client.ip.as_deref(), now).await?;
    let ok = judge(app, &user.id, answer, now).await?;
    if !ok {
        failed(app, &user.id, answer).await;
    }
    Ok((ok, guard))
}

/// A wrong second-factor answer, logged and audited.
async fn failed(app: &App, user: &UserId, answer: &Answer) {
    tracing::info!(event = "mfa", outcome = "wrong_answer", method = answer.field(), user_id = %user);
    super::audit::record(app, super::audit::Event::new("mfa.failed").to(user).object(answer.field())).await;
}

/// The signed-in caller's second factor (`code` or `recovery_code`), when their account has one:
/// recorded in `errors` when missing or wrong. The step-up of sensitive actions.
pub async fn check_second_factor(
    app: &App,
    caller: &Caller,
    client: &ClientInfo,
    form: &Form,
    errors: &mut FieldErrors,
) -> Result<(), ServiceError> {
    if !caller.user.mfa_enabled {
        return Ok(());
    }
    let Some(answer) = answer(form, true, false, errors) else { return Ok(()) };
    let (ok, guard) = guarded_judge(app, &caller.user, client, &answer).await?;
    if ok {
        give_back(app, &guard).await;
    } else {
        errors.add(answer.field(), answer.invalid());
    }
    Ok(())
}

/// The step-up of the djoser actions that already ask for `current_password` (set_password,
/// set_email, deleting the account): with a second factor on and a sign-in older than
/// `REAUTH_WINDOW`, the factor too.
pub async fn step_up_second_factor(
    app: &App,
    caller: &Caller,
    client: &ClientInfo,
    form: &Form,
    errors: &mut FieldErrors,
) -> Result<(), ServiceError> {
    if recent(app, caller) {
        return Ok(());
    }
    check_second_factor(app, caller, client, form, errors).await
}

async fn give_back(app: &App, guard: &throttle::PasswordGuard) {
    if let Err(e) = guard.succeeded(app).await {
        tracing::warn!(event = "mfa", outcome = "attempt_not_given_back", error = %e);
    }
}

/// `POST /auth/mfa/totp/`: a new pending TOTP factor (replacing a pending one), to be confirmed
/// by its first code within [`PENDING_LIFETIME`].
pub async fn enrol(app: &App, caller: &Caller, client: &ClientInfo, form: &Form) -> Result<Enrolment, ServiceError> {
    let user = &caller.user;
    if user.mfa_enabled {
        return Err(FieldErrors::single("non_field_errors", ALREADY_ENABLED));
    }
    let mut errors = FieldErrors::default();
    password_or_recent(app, caller, client, form, &mut errors).await?;
    errors.finish()?;
    let now = app.now();
    let secret = TotpSecret::generate().map_err(internal)?;
    let key = app.keys.code_key().await?;
    let factor = TotpFactor {
        user_id: user.id.clone(),
        sealed_secret: mfa::seal(&key, &user.id, &secret).map_err(internal)?,
        confirmed: false,
        created_at: now,
        last_step: None,
        expires_at: Some(now + PENDING_LIFETIME),
    };
    if !app.store.put_pending_totp(&factor).await? {
        return Err(FieldErrors::single("non_field_errors", ALREADY_ENABLED));
    }
    let otpauth_url = secret.otpauth_url(&app.settings.site_name, user.email.as_str()).map_err(internal)?;
    tracing::info!(event = "mfa", outcome = "enrolment_started", user_id = %user.id);
    Ok(Enrolment { secret: secret.base32(), qr_svg: mfa::qr_svg(&otpauth_url).map_err(internal)?, otpauth_url })
}

fn new_codes(
    key: &crate::keys::CodeKey,
    user: &UserId,
    now: i64,
) -> Result<(Vec<String>, RecoveryCodes), ServiceError> {
    let codes = mfa::recovery_codes().map_err(internal)?;
    let macs = codes.iter().map(|c| mfa::recovery_code_mac(key, user, c)).collect();
    Ok((codes, RecoveryCodes { user_id: Some(user.clone()), macs, created_at: now }))
}

/// `POST /auth/mfa/totp/confirm/`: the pending factor's first code turns two-step sign-in on;
/// answers the recovery codes, shown this once.
pub async fn confirm(
    app: &App,
    caller: &Caller,
    client: &ClientInfo,
    form: &Form,
) -> Result<Vec<String>, ServiceError> {
    let user = &caller.user;
    let mut errors = FieldErrors::default();
    let code = form.required("code", &mut errors);
    errors.finish()?;
    let code = code.ok_or_else(|| FieldErrors::single("code", input::REQUIRED))?;
    let now = app.now();
    let pending = app.store.get_mfa(&user.id, now).await?.totp.filter(|f| !f.confirmed && f.is_live(now));
    let Some(pending) = pending else { return Err(FieldErrors::single("non_field_errors", NOTHING_PENDING)) };
    let guard = throttle::PasswordGuard::reserved(app, user.email.as_str(), client.ip.as_deref(), now).await?;
    let key = app.keys.code_key().await?;
    let secret = mfa::unseal(&key, &user.id, &pending.sealed_secret).map_err(internal)?;
    let Some(step) = secret.check(&code, now) else {
        tracing::info!(event = "mfa", outcome = "wrong_answer", method = "code", user_id = %user.id);
        return Err(FieldErrors::single("code", INVALID_CODE));
    };
    let (shown, stored) = new_codes(&key, &user.id, now)?;
    if !app.store.confirm_totp(&user.id, &pending.sealed_secret, step, &stored, now).await? {
        give_back(app, &guard).await;
        return Err(FieldErrors::single("non_field_errors", NOTHING_PENDING));
    }
    give_back(app, &guard).await;
    tracing::info!(event = "mfa", outcome = "enabled", user_id = %user.id);
    super::audit::record(app, super::audit::Event::new("mfa.enabled").own(user).object("totp")).await;
    deliver(app, &mail::render(&app.settings, EmailKind::MfaEnabled, user, Extras::default()), &user.id).await;
    Ok(shown)
}

/// `DELETE /auth/mfa/totp/`: turns two-step sign-in off. Needs the factor (`code` or
/// `recovery_code`) and `current_password` (unless the sign-in is within `REAUTH_WINDOW`).
pub async fn disable(app: &App, caller: &Caller, client: &ClientInfo, form: &Form) -> Result<(), ServiceError> {
    let user = &caller.user;
    if !user.mfa_enabled {
        return Err(FieldErrors::single("non_field_errors", NOT_ENABLED));
    }
    let mut errors = FieldErrors::default();
    password_or_recent(app, caller, client, form, &mut errors).await?;
    if errors.is_empty() {
        check_second_factor(app, caller, client, form, &mut errors).await?;
    }
    errors.finish()?;
    app.store.remove_mfa(&user.id).await?;
    tracing::info!(event = "mfa", outcome = "disabled", user_id = %user.id);
    super::audit::record(app, super::audit::Event::new("mfa.disabled").own(user).object("totp")).await;
    deliver(app, &mail::render(&app.settings, EmailKind::MfaDisabled, user, Extras::default()), &user.id).await;
    Ok(())
}

/// Turns `user`'s second factors off for staff (`mfa-reset`): factors gone, sessions ended,
/// the owner told. False when the user is gone.
pub async fn reset(app: &App, user: &User) -> Result<bool, ServiceError> {
    if !app.store.remove_mfa(&user.id).await? {
        return Ok(false);
    }
    super::revoke_sessions(app, &user.id, None).await?;
    tracing::info!(event = "mfa", outcome = "reset", user_id = %user.id);
    deliver(app, &mail::render(&app.settings, EmailKind::MfaDisabled, user, Extras::default()), &user.id).await;
    Ok(true)
}

/// `POST /auth/mfa/recovery_codes/`: a new set of recovery codes (the old set dies). Needs a TOTP
/// `code` and `current_password` (unless the sign-in is within `REAUTH_WINDOW`).
pub async fn regenerate(
    app: &App,
    caller: &Caller,
    client: &ClientInfo,
    form: &Form,
) -> Result<Vec<String>, ServiceError> {
    let user = &caller.user;
    if !user.mfa_enabled {
        return Err(FieldErrors::single("non_field_errors", NOT_ENABLED));
    }
    let mut errors = FieldErrors::default();
    password_or_recent(app, caller, client, form, &mut errors).await?;
    let code = answer(form, false, false, &mut errors);
    errors.finish()?;
    let Some(code) = code else { return Err(FieldErrors::single("code", input::REQUIRED)) };
    let (ok, guard) = guarded_judge(app, user, client, &code).await?;
    if !ok {
        return Err(FieldErrors::single("code", INVALID_CODE));
    }
    give_back(app, &guard).await;
    let now = app.now();
    let key = app.keys.code_key().await?;
    let (shown, stored) = new_codes(&key, &user.id, now)?;
    if !app.store.replace_recovery_codes(&user.id, &stored).await? {
        return Err(FieldErrors::single("non_field_errors", NOT_ENABLED));
    }
    tracing::info!(event = "mfa", outcome = "recovery_codes_replaced", user_id = %user.id);
    super::audit::record(app, super::audit::Event::new("mfa.recovery_codes_replaced").own(user)).await;
    deliver(app, &mail::render(&app.settings, EmailKind::RecoveryCodesReplaced, user, Extras::default()), &user.id)
        .await;
    Ok(shown)
}

/// The challenge a sign-in answers with the account's second factor: the `mfa_token` of the 401,
/// with request options for the account's passkeys when it has some (their state kept with it).
/// `kind`: [`ChallengeKind::Mfa`] after a password, [`ChallengeKind::MfaFederated`] after a
/// provider.
pub async fn challenge(app: &App, user: &User, now: i64, kind: ChallengeKind) -> Result<ServiceError, ServiceError> {
    let passkeys = super::passkeys::second_factor_options(app, user).await?;
    let (webauthn, data) = match passkeys {
        Some((options, state)) => (Some(options), state),
        None => (None, String::new()),
    };
    let challenge = Challenge {
        id: random_id()?,
        kind,
        user_id: Some(user.id.clone()),
        data,
        attempts: 0,
        expires_at: now + MFA_TOKEN_LIFETIME,
    };
    if !app.store.put_challenge(&challenge).await? {
        return Err(ServiceError::Internal("a new challenge id was taken".into()));
    }
    tracing::info!(event = "login", outcome = "second_factor_required", user_id = %user.id);
    super::audit::record(app, super::audit::Event::new("login.second_factor_required").to(&user.id)).await;
    let mut methods = methods(user);
    if webauthn.is_some() {
        methods.push("webauthn");
    }
    Ok(ServiceError::MfaRequired { mfa_token: challenge.id, methods, webauthn })
}

/// `POST /auth/mfa/verify/`: the second step of a sign-in. The answer is counted against the
/// `mfa_token` and the account's password budgets before it is judged; the right one takes the
/// token (once) and opens the session.
pub async fn verify(app: &App, form: &Form, client: &ClientInfo) -> Result<TokenPair, ServiceError> {
    let mut errors = FieldErrors::default();
    let token = form.required("mfa_token", &mut errors);
    let answer = answer(form, true, true, &mut errors);
    errors.finish()?;
    let (Some(token), Some(answer)) = (token, answer) else {
        return Err(ServiceError::Internal("validated fields missing".into()));
    };
    let now = app.now();
    let challenge = app.store.reserve_challenge(&token, MFA_TOKEN_ATTEMPTS, now).await?;
    let (federated, user_id, data) = match challenge {
        Some(Challenge { kind: ChallengeKind::Mfa, user_id: Some(u), data, .. }) => (false, u, data),
        Some(Challenge { kind: ChallengeKind::MfaFederated, user_id: Some(u), data, .. }) => (true, u, data),
        _ => return Err(MFA_TOKEN_NOT_VALID),
    };
    let user = app.store.get_user(&user_id, now).await?.filter(|u| u.is_active && u.mfa_enabled);
    let Some(user) = user else {
        // Disabled, deleted or its factor turned off since the password step.
        app.store.take_challenge(&token, now).await?;
        return Err(MFA_TOKEN_NOT_VALID);
    };
    let (ok, guard) = match answer {
        Answer::Passkey => {
            let guard = throttle::PasswordGuard::reserved(app, user.email.as_str(), client.ip.as_deref(), now).await?;
            let ok = super::passkeys::second_factor(app, &user, &data, form).await?;
            if !ok {
                failed(app, &user.id, &answer).await;
            }
            (ok, guard)
        }
        _ => guarded_judge(app, &user, client, &answer).await?,
    };
    if !ok {
        return Err(FieldErrors::single(answer.field(), answer.invalid()));
    }
    if app.store.take_challenge(&token, now).await?.is_none() {
        // A concurrent right answer took it first.
        give_back(app, &guard).await;
        return Err(MFA_TOKEN_NOT_VALID);
    }
    let first = if federated { "fed" } else { "pwd" };
    let authn = match answer {
        Answer::Passkey => Authn::new(now, &[first, "swk", "mfa"]),
        _ => Authn::new(now, &[first, "otp", "mfa"]),
    };
    let pair = super::login::open_session(app, &user, client, now, &guard.give_back(), &authn).await?;
    // The password step's attempt too, which stayed counted until the second factor was right
    // (a provider's first step took none).
    let refund = guard.give_back().refund;
    if !refund.is_empty() && !federated {
        if let Err(e) = app.store.give_back(&refund, &[]).await {
            tracing::warn!(event = "mfa", outcome = "attempt_not_given_back", error = %e);
        }
    }
    tracing::info!(event = "login", outcome = "ok", method = answer.field(), user_id = %user.id);
    super::audit::record(app, super::audit::Event::new("login.succeeded").own(&user).object(answer.field())).await;
    Ok(pair)
}
