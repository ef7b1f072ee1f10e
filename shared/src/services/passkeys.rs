//! Passkeys (WebAuthn Level 3) through kanidm's `webauthn-rs`: registering one, listing, renaming
//! and removing them, a passwordless sign-in with a discoverable credential, and a passkey as the
//! second step of a password sign-in. See README "Passkeys".
//!
//! - Options go out in the JSON forms `PublicKeyCredential.parseCreationOptionsFromJSON` and
//!   `parseRequestOptionsFromJSON` take (`{"publicKey": ...}`, base64url), and credentials come
//!   back as `PublicKeyCredential.toJSON()` writes them.
//! - A ceremony's state waits in a challenge item (`CHALLENGE#<id>`, 5 minutes) and is taken
//!   once: a registration's by the challenge it sent (read back from the credential's client
//!   data), a sign-in's by its `login_token`, a second step's by its `mfa_token`.
//! - Registration requires a resident (discoverable) key and user verification; sign-ins require
//!   user verification. The relying party is `WEBAUTHN_RP_ID` and the origins `WEBAUTHN_ORIGINS`.
//! - The user handle is the account's id: a passwordless sign-in finds the account from it and
//!   the credential among that account's passkeys.
//! - Sign counters: `webauthn-rs` refuses a counter that went backwards (a cloned authenticator);
//!   the new counter is stored with `last_used_at`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
};

use crate::domain::{Challenge, ChallengeKind, PasskeyRecord, User, UserId};
use crate::mail::{self, Extras};
use crate::ports::EmailKind;
use crate::secrets::random_id;
use crate::tokens::Authn;

use super::auth::Caller;
use super::{deliver, input, throttle, App, ClientInfo, FieldErrors, Form, ServiceError, TokenPair};

/// How long a ceremony's options stay answerable (WebAuthn's recommended timeout).
pub const CEREMONY_LIFETIME: i64 = 300;
/// Answers a passwordless sign-in's `login_token` takes.
pub const LOGIN_TOKEN_ATTEMPTS: u32 = 5;
/// Longest passkey name.
pub const MAX_NAME: usize = 64;
/// Most passkeys an account holds (each one is a way in, listed on every second step).
pub const MAX_PASSKEYS: usize = 20;
/// What a passkey sign-in says of itself (RFC 8176): a key the user unlocked (user verification
/// is required), counted as two factors.
pub const PASSKEY_AMR: [&str; 3] = ["swk", "user", "mfa"];

pub const NOT_VERIFIED: &str = "The passkey could not be verified.";
pub const NO_CEREMONY: &str = "This passkey request has expired or was used: start again.";
pub const ALREADY_REGISTERED: &str = "This passkey is registered already.";
pub const NOT_AN_OBJECT: &str = "Expected a credential object.";
pub const TOO_MANY: &str = "This account has the most passkeys it may hold: remove one first.";
pub const LOGIN_TOKEN_NOT_VALID: ServiceError = ServiceError::Unauthorized {
    code: "login_token_not_valid",
    detail: "This passkey sign-in has expired or was used up: start again.",
};

fn internal(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("webauthn {what}: {e}"))
}

pub const UNAVAILABLE: ServiceError =
    ServiceError::Forbidden { code: "passkeys_unavailable", detail: "Passkeys are not set up on this server." };

/// Whether passkeys work for the request being served (an origin is configured, or the API's
/// own domain makes one).
pub fn available(app: &App) -> bool {
    !app.settings.relying_party().1.is_empty()
}

/// The relying party of the settings (checked at start-up by `Settings`); 403
/// `passkeys_unavailable` when no origin is configured.
pub fn relying_party(app: &App) -> Result<Webauthn, ServiceError> {
    let s = &app.settings;
    let (rp_id, origins) = s.relying_party();
    let mut origins = origins.iter();
    let first = origins.next().ok_or(UNAVAILABLE)?;
    let mut builder = WebauthnBuilder::new(&rp_id, first)
        .map_err(|e| internal("config", e))?
        .rp_name(&s.site_name)
        .timeout(std::time::Duration::from_secs(CEREMONY_LIFETIME as u64));
    for o in origins {
        builder = builder.append_allowed_origin(o);
    }
    builder.build().map_err(|e| internal("config", e))
}

fn user_handle(user: &UserId) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(user.as_str()).map_err(|e| internal("user handle", e))
}

fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<String, ServiceError> {
    serde_json::to_string(v).map_err(|e| internal(what, e))
}

fn passkey_of(record: &PasskeyRecord) -> Result<Passkey, ServiceError> {
    serde_json::from_str(&record.credential).map_err(|e| internal("stored passkey", e))
}

/// The `credential` field: a JSON object (or, in a form body, its JSON text).
fn credential_field<T: serde::de::DeserializeOwned>(form: &Form, errors: &mut FieldErrors) -> Option<T> {
    let value = match form.0.get("credential") {
        None | Some(Value::Null) => {
            errors.add("credential", input::REQUIRED);
            return None;
        }
        Some(Value::String(text)) => serde_json::from_str::<Value>(text).ok(),
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => None,
    };
    match value.filter(Value::is_object).map(serde_json::from_value::<T>) {
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => {
            errors.add("credential", NOT_VERIFIED);
            None
        }
        None => {
            errors.add("credential", NOT_AN_OBJECT);
            None
        }
    }
}

/// The challenge a credential answers, as its client data says (base64url text).
fn answered_challenge(client_data_json: &[u8]) -> Option<String> {
    let data: Value = serde_json::from_slice(client_data_json).ok()?;
    data.get("challenge")?.as_str().map(str::to_owned)
}

/// Request options as they go out: `{"publicKey": ...}` only. The page decides on mediation
/// (conditional UI or a button).
fn request_options(options: &webauthn_rs::prelude::RequestChallengeResponse) -> Result<Value, ServiceError> {
    let public_key = serde_json::to_value(options).map_err(|e| internal("options", e))?["publicKey"].take();
    Ok(json!({ "publicKey": public_key }))
}

fn challenge_id_of(options: &Value) -> Option<String> {
    options.pointer("/publicKey/challenge")?.as_str().map(|c| format!("wr-{c}"))
}

/// `POST /auth/webauthn/register/options/`: creation options for a new passkey of the caller
/// (resident key and user verification required, the caller's passkeys excluded). A sensitive
/// step: the sign-in within `REAUTH_WINDOW`, or `current_password` (and the second factor).
pub async fn register_options(
    app: &App,
    caller: &Caller,
    client: &ClientInfo,
    form: &Form,
) -> Result<Value, ServiceError> {
    super::mfa::step_up(app, caller, client, form).await?;
    let user = &caller.user;
    let rp = relying_party(app)?;
    let existing = app.store.list_passkeys(&user.id).await?;
    if existing.len() >= MAX_PASSKEYS {
        return Err(FieldErrors::single("non_field_errors", TOO_MANY));
    }
    let exclude = existing.iter().map(passkey_of).map(|p| p.map(|p| p.cred_id().clone())).collect::<Result<_, _>>()?;
    let display = format!("{} {}", user.first_name, user.last_name).trim().to_owned();
    let display = if display.is_empty() { user.email.as_str().to_owned() } else { display };
    let (options, state) = rp
        .start_passkey_registration(user_handle(&user.id)?, user.email.as_str(), &display, Some(exclude))
        .map_err(|e| internal("registration options", e))?;
    let mut options = serde_json::to_value(&options).map_err(|e| internal("options", e))?;
    // A passkey that signs in without a username must live on the authenticator.
    if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(Value::as_object_mut) {
        sel.insert("residentKey".into(), json!("required"));
        sel.insert("requireResidentKey".into(), json!(true));
    }
    let id = challenge_id_of(&options).ok_or_else(|| internal("options", "no challenge"))?;
    let challenge = Challenge {
        id,
        kind: ChallengeKind::WebauthnRegister,
        user_id: Some(user.id.clone()),
        data: to_json("registration state", &state)?,
        attempts: 0,
        expires_at: app.now() + CEREMONY_LIFETIME,
    };
    if !app.store.put_challenge(&challenge).await? {
        return Err(ServiceError::Internal("a new challenge was taken".into()));
    }
    Ok(options)
}

/// `POST /auth/webauthn/register/`: the new passkey (`credential`, the `toJSON()` of what
/// `navigator.credentials.create()` returned) under `name`; the owner is told by email.
pub async fn register(app: &App, caller: &Caller, form: &Form) -> Result<PasskeyRecord, ServiceError> {
    let user = &caller.user;
    let mut errors = FieldErrors::default();
    let name = form.optional("name", 4 * MAX_NAME, &mut errors).map(|n| n.trim().to_owned());
    if name.as_ref().is_some_and(|n| n.chars().count() > MAX_NAME) {
        errors.add("name", format!("Ensure this field has no more than {MAX_NAME} characters."));
    }
    let credential: Option<RegisterPublicKeyCredential> = credential_field(form, &mut errors);
    errors.finish()?;
    let credential = credential.ok_or_else(|| FieldErrors::single("credential", input::REQUIRED))?;
    let now = app.now();
    let answered = answered_challenge(credential.response.client_data_json.as_ref());
    let taken = match answered {
        Some(c) => app.store.take_challenge(&format!("wr-{c}"), now).await?,
        None => None,
    };
    let state = match taken {
        Some(Challenge { kind: ChallengeKind::WebauthnRegister, user_id: Some(owner), data, .. })
            if owner == user.id =>
        {
            serde_json::from_str::<PasskeyRegistration>(&data).map_err(|e| internal("registration state", e))?
        }
        _ => return Err(FieldErrors::single("credential", NO_CEREMONY)),
    };
    let passkey = relying_party(app)?.finish_passkey_registration(&credential, &state).map_err(|e| {
        tracing::info!(event = "passkey", outcome = "registration_refused", user_id = %user.id, reason = %e);
        FieldErrors::single("credential", NOT_VERIFIED)
    })?;
    let record = PasskeyRecord {
        user_id: user.id.clone(),
        id: URL_SAFE_NO_PAD.encode::<&[u8]>(passkey.cred_id().as_ref()),
        name: name.filter(|n| !n.is_empty()).unwrap_or_else(|| "Passkey".to_owned()),
        credential: to_json("passkey", &passkey)?,
        created_at: now,
        last_used_at: None,
    };
    if app.store.list_passkeys(&user.id).await?.len() >= MAX_PASSKEYS {
        return Err(FieldErrors::single("non_field_errors", TOO_MANY));
    }
    if !app.store.put_passkey(&record).await? {
        return Err(FieldErrors::single("credential", ALREADY_REGISTERED));
    }
    tracing::info!(event = "passkey", outcome = "added", user_id = %user.id);
    super::audit::record(app, super::audit::Event::new("passkey.added").own(user).object(record.name.clone())).await;
    let extras = Extras { passkey_name: Some(record.name.clone()), ..Extras::default() };
    deliver(app, &mail::render(&app.settings, EmailKind::PasskeyAdded, user, extras), &user.id).await;
    Ok(record)
}

/// The caller's passkeys, oldest first.
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<PasskeyRecord>, ServiceError> {
    Ok(app.store.list_passkeys(&caller.user.id).await?)
}

/// Renames one of the caller's passkeys (404 for any other id).
pub async fn rename(app: &App, caller: &Caller, id: &str, form: &Form) -> Result<PasskeyRecord, ServiceError> {
    let mut errors = FieldErrors::default();
    let name = form.required("name", &mut errors).map(|n| n.trim().to_owned());
    if name.as_ref().is_some_and(|n| n.chars().count() > MAX_NAME) {
        errors.add("name", format!("Ensure this field has no more than {MAX_NAME} characters."));
    }
    errors.finish()?;
    let name = name.ok_or_else(|| FieldErrors::single("name", input::REQUIRED))?;
    if !app.store.rename_passkey(&caller.user.id, id, &name).await? {
        return Err(ServiceError::NotFound);
    }
    let found = app.store.list_passkeys(&caller.user.id).await?.into_iter().find(|p| p.id == id);
    found.ok_or(ServiceError::NotFound)
}

/// Removes one of the caller's passkeys (404 for any other id): a sensitive step, as adding one.
pub async fn remove(
    app: &App,
    caller: &Caller,
    client: &ClientInfo,
    id: &str,
    form: &Form,
) -> Result<(), ServiceError> {
    let user = &caller.user;
    let Some(record) = app.store.list_passkeys(&user.id).await?.into_iter().find(|p| p.id == id) else {
        return Err(ServiceError::NotFound);
    };
    super::mfa::step_up(app, caller, client, form).await?;
    if !app.store.delete_passkey(&user.id, id).await? {
        return Err(ServiceError::NotFound);
    }
    tracing::info!(event = "passkey", outcome = "removed", user_id = %user.id);
    super::audit::record(app, super::audit::Event::new("passkey.removed").own(user).object(record.name.clone())).await;
    let extras = Extras { passkey_name: Some(record.name), ..Extras::default() };
    deliver(app, &mail::render(&app.settings, EmailKind::PasskeyRemoved, user, extras), &user.id).await;
    Ok(())
}

/// `POST /auth/webauthn/login/options/`: request options for a passwordless sign-in with any
/// passkey of this site (discoverable; user verification required) and the `login_token` that
/// `webauthn/login` takes back. Costs a challenge item: budgeted per IP (`RATE_PASSKEY_OPTIONS_IP`).
pub async fn login_options(app: &App, client: &ClientInfo) -> Result<(Value, String), ServiceError> {
    throttle::spend_ip(app, "passkey_options", app.settings.rate_passkey_options_ip, client.ip.as_deref()).await?;
    let (options, state) =
        relying_party(app)?.start_discoverable_authentication().map_err(|e| internal("login options", e))?;
    let challenge = Challenge {
        id: random_id()?,
        kind: ChallengeKind::WebauthnLogin,
        user_id: None,
        data: to_json("login state", &state)?,
        attempts: 0,
        expires_at: app.now() + CEREMONY_LIFETIME,
    };
    if !app.store.put_challenge(&challenge).await? {
        return Err(ServiceError::Internal("a new challenge id was taken".into()));
    }
    Ok((request_options(&options)?, challenge.id))
}

/// Judges `credential` against `state` with the stored passkey it names, among `records`; the
/// passkey's new counter is stored. `None`: not one of them, or not verified.
async fn assert_with<F>(
    app: &App,
    user: &UserId,
    records: &[PasskeyRecord],
    credential: &PublicKeyCredential,
    finish: F,
) -> Result<Option<PasskeyRecord>, ServiceError>
where
    F: FnOnce(
        &Webauthn,
        &Passkey,
    ) -> Result<webauthn_rs::prelude::AuthenticationResult, webauthn_rs::prelude::WebauthnError>,
{
    let id = URL_SAFE_NO_PAD.encode(credential.get_credential_id());
    let Some(record) = records.iter().find(|r| r.id == id) else { return Ok(None) };
    let mut passkey = passkey_of(record)?;
    let result = match finish(&relying_party(app)?, &passkey) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(event = "passkey", outcome = "assertion_refused", user_id = %user, reason = %e);
            return Ok(None);
        }
    };
    passkey.update_credential(&result);
    let now = app.now();
    if !app.store.record_passkey_use(user, &record.id, &to_json("passkey", &passkey)?, now).await? {
        return Ok(None);
    }
    Ok(Some(record.clone()))
}

/// `POST /auth/webauthn/login/`: a passwordless sign-in. The account comes from the credential's
/// user handle and must be active; every failure answers as a wrong password does (401
/// `no_active_account`), whatever the account's state.
pub async fn login(app: &App, form: &Form, client: &ClientInfo) -> Result<TokenPair, ServiceError> {
    let mut errors = FieldErrors::default();
    let token = form.required("login_token", &mut errors);
    let credential: Option<PublicKeyCredential> = credential_field(form, &mut errors);
    errors.finish()?;
    let (Some(token), Some(credential)) = (token, credential) else {
        return Err(ServiceError::Internal("validated fields missing".into()));
    };
    let now = app.now();
    let state = match app.store.reserve_challenge(&token, LOGIN_TOKEN_ATTEMPTS, now).await? {
        Some(Challenge { kind: ChallengeKind::WebauthnLogin, data, .. }) => {
            serde_json::from_str::<DiscoverableAuthentication>(&data).map_err(|e| internal("login state", e))?
        }
        _ => return Err(LOGIN_TOKEN_NOT_VALID),
    };
    let user_id = credential
        .get_user_unique_id()
        .and_then(|b| Uuid::from_slice(b).ok())
        .and_then(|u| UserId::parse(&u.hyphenated().to_string()));
    let user = match &user_id {
        Some(id) => app.store.get_user(id, now).await?.filter(|u| u.is_active),
        None => None,
    };
    let Some(user) = user else {
        tracing::info!(event = "passkey_login", outcome = "unknown_or_inactive");
        return Err(ServiceError::NoActiveAccount);
    };
    let records = app.store.list_passkeys(&user.id).await?;
    let used = assert_with(app, &user.id, &records, &credential, |rp, passkey| {
        rp.finish_discoverable_authentication_v2(&credential, state, passkey)
    })
    .await?;
    let Some(used) = used else {
        super::audit::record(app, super::audit::Event::new("login.failed").to(&user.id).object("passkey")).await;
        return Err(ServiceError::NoActiveAccount);
    };
    if app.store.take_challenge(&token, now).await?.is_none() {
        return Err(LOGIN_TOKEN_NOT_VALID);
    }
    let authn = Authn::new(now, &PASSKEY_AMR);
    let pair = super::login::open_session(app, &user, client, now, &Default::default(), &authn).await?;
    tracing::info!(event = "login", outcome = "ok", method = "passkey", user_id = %user.id);
    super::audit::record(
        app,
        super::audit::Event::new("login.succeeded").own(&user).object(format!("passkey {}", used.name)),
    )
    .await;
    Ok(pair)
}

/// For the second step of a password sign-in: request options for `user`'s passkeys and the
/// state to keep, or `None` when the user has none.
pub async fn second_factor_options(app: &App, user: &User) -> Result<Option<(Value, String)>, ServiceError> {
    if !available(app) {
        return Ok(None);
    }
    let records = app.store.list_passkeys(&user.id).await?;
    if records.is_empty() {
        return Ok(None);
    }
    let passkeys = records.iter().map(passkey_of).collect::<Result<Vec<_>, _>>()?;
    let (options, state) =
        relying_party(app)?.start_passkey_authentication(&passkeys).map_err(|e| internal("mfa options", e))?;
    Ok(Some((request_options(&options)?, to_json("mfa state", &state)?)))
}

/// The second step answered with a passkey: whether `credential` verifies against the state kept
/// with the `mfa_token` (its counter is then stored).
pub async fn second_factor(app: &App, user: &User, state: &str, form: &Form) -> Result<bool, ServiceError> {
    let mut errors = FieldErrors::default();
    let credential: Option<PublicKeyCredential> = credential_field(form, &mut errors);
    errors.finish()?;
    let Some(credential) = credential else { return Ok(false) };
    let Ok(state) = serde_json::from_str::<PasskeyAuthentication>(state) else { return Ok(false) };
    let records = app.store.list_passkeys(&user.id).await?;
    let used = assert_with(app, &user.id, &records, &credential, |rp, _| {
        rp.finish_passkey_authentication(&credential, &state)
    })
    .await?;
    Ok(used.is_some())
}

/// The methods `user`'s second step takes now: `mfa::methods`, and `webauthn` when the account
/// has a passkey (one read, only for accounts with two-step sign-in on).
pub async fn second_step_methods(app: &App, user: &User) -> Result<Vec<&'static str>, ServiceError> {
    let mut methods = super::mfa::methods(user);
    let passkeys_on = available(app);
    if user.mfa_enabled && passkeys_on && !app.store.list_passkeys(&user.id).await?.is_empty() {
        methods.push("webauthn");
    }
    Ok(methods)
}

/// A passkey as the API shows it.
pub fn body(p: &PasskeyRecord) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "created_at": super::iso8601(p.created_at),
        "last_used_at": p.last_used_at.map(super::iso8601),
    })
}
