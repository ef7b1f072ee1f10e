//! Social / OpenID Connect sign-in (djoser's `/auth/o/{provider}/`) and an account's links to
//! providers. A sign-in's `state` is the id of a short-lived item holding what the sign-in is
//! bound to (provider, redirect URI, PKCE verifier, nonce) with a MAC under the deployment's code
//! key; nothing is kept in a session, so single-page and mobile apps lose nothing between the two
//! calls. The item is taken (a conditional delete) before the provider is asked anything: a state
//! is good for one attempt, whatever its outcome.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::domain::{Challenge, ChallengeKind, Email, Identity, User, UserId};
use crate::ports::{CreateUserError, EmailKind};
use crate::social::{FederationError, Pending, Profile, Provider};
use crate::tokens::Authn;

use super::auth::Caller;
use super::{throttle, App, ClientInfo, FieldErrors, Form, ServiceError, TokenPair};

/// How long a sign-in may stay at the provider.
pub const STATE_LIFETIME: i64 = 600;
pub const INVALID_STATE: &str = "Invalid state has been provided.";
pub const PROVIDER_FAILED: &str = "Authentication with the provider failed.";
pub const NO_VERIFIED_EMAIL: &str = "The provider did not confirm an email address for this account.";
pub const LINKED_ELSEWHERE: &str = "This account is already linked to another account of this provider.";
pub const LAST_WAY: &str = "This is the only way left to sign in to this account: set a password first.";
pub const REDIRECT_NOT_ALLOWED: &str = "This redirect URI is not allowed.";
pub const ADDRESS_NOT_PROVEN: &str =
    "An account with this email address exists already: sign in to it with its password.";
/// Linking or creating races with another writer: tries before giving up (503).
const TRIES: usize = 3;

fn provider<'a>(app: &'a App, name: &str) -> Result<&'a Provider, ServiceError> {
    app.settings.social.provider(name).ok_or(ServiceError::NotFound)
}

/// The account pages' own sign-in page, where a provider may always return (its domain is the
/// one API Gateway reports for the request, never a client's `Host`).
fn pages_login(app: &App) -> Option<String> {
    crate::site::api_domain().map(|d| format!("{}://{d}/login", app.settings.protocol))
}

/// The MAC a state carries: the sign-in item's id under the code key, for this provider.
async fn state_mac(app: &App, provider: &str, id: &str) -> Result<String, ServiceError> {
    let key = app.keys.code_key().await?;
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key.derive("oauth_state"));
    let tag = aws_lc_rs::hmac::sign(&key, format!("{provider}\n{id}").as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16]))
}

/// `GET /auth/o/{provider}/?redirect_uri=`: the provider's authorization URL for a new sign-in.
pub async fn begin(
    app: &App,
    provider_name: &str,
    redirect_uri: Option<&str>,
    client: &ClientInfo,
) -> Result<String, ServiceError> {
    let provider = provider(app, provider_name)?;
    let redirect_uri = redirect_uri.map(str::trim).unwrap_or_default();
    let allowed = !redirect_uri.is_empty()
        && (app.settings.social.redirect_uris.iter().any(|u| u == redirect_uri)
            || pages_login(app).as_deref() == Some(redirect_uri));
    if !allowed {
        return Err(FieldErrors::single("redirect_uri", REDIRECT_NOT_ALLOWED));
    }
    throttle::spend_ip(app, "social", app.settings.social.rate_ip, client.ip.as_deref()).await?;
    let now = app.now();
    let pending = Pending {
        provider: provider.name.clone(),
        redirect_uri: redirect_uri.to_owned(),
        // 256 bits, 43 characters: the least RFC 7636 allows.
        verifier: URL_SAFE_NO_PAD.encode(crate::secrets::random_bytes::<32>()?),
        nonce: crate::secrets::random_id()?,
    };
    let challenge = Challenge {
        id: crate::secrets::random_id()?,
        kind: ChallengeKind::OauthState,
        user_id: None,
        data: serde_json::to_string(&pending).map_err(|e| ServiceError::Internal(format!("state: {e}")))?,
        attempts: 0,
        expires_at: now + STATE_LIFETIME,
    };
    let state = format!("{}.{}", challenge.id, state_mac(app, &provider.name, &challenge.id).await?);
    let url = app.federation.authorization_url(provider, &pending, &state, now).await.map_err(unavailable)?;
    if !app.store.put_challenge(&challenge).await? {
        return Err(ServiceError::Internal("a new challenge id was taken".into()));
    }
    tracing::info!(event = "social", outcome = "started", provider = %provider.name);
    Ok(url)
}

fn unavailable(e: FederationError) -> ServiceError {
    match e {
        FederationError::Unavailable(m) => ServiceError::Unavailable(m),
        FederationError::Refused(_) => ServiceError::Invalid(failed()),
    }
}

fn failed() -> FieldErrors {
    let mut e = FieldErrors::default();
    e.add("non_field_errors", PROVIDER_FAILED);
    e
}

fn refusal(message: &str) -> ServiceError {
    FieldErrors::single("non_field_errors", message)
}

/// Takes the sign-in `state` names, if it is one of this provider's, live and not yet used.
async fn take_state(app: &App, provider: &Provider, state: &str) -> Result<Pending, ServiceError> {
    let invalid = || refusal(INVALID_STATE);
    let (id, mac) = state.split_once('.').ok_or_else(invalid)?;
    let expected = state_mac(app, &provider.name, id).await?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(mac.as_bytes(), expected.as_bytes()).is_err() {
        return Err(invalid());
    }
    let Some(Challenge { kind: ChallengeKind::OauthState, data, .. }) = app.store.take_challenge(id, app.now()).await?
    else {
        return Err(invalid());
    };
    let pending: Pending = serde_json::from_str(&data).map_err(|e| ServiceError::Internal(format!("state: {e}")))?;
    if pending.provider != provider.name {
        return Err(invalid());
    }
    Ok(pending)
}

/// What a provider sign-in ended with.
#[derive(Debug)]
pub struct SignedIn {
    pub tokens: TokenPair,
    pub user: User,
}

/// `POST /auth/o/{provider}/` with `code` and `state`: the account the provider vouches for,
/// found by its link, else by its verified address (linked then), else created; tokens for a new
/// session, or the second step when the account has a second factor.
pub async fn complete(
    app: &App,
    provider_name: &str,
    form: &Form,
    client: &ClientInfo,
) -> Result<SignedIn, ServiceError> {
    let provider = provider(app, provider_name)?;
    let mut errors = FieldErrors::default();
    let code = form.required("code", &mut errors);
    let state = form.required("state", &mut errors);
    errors.finish()?;
    let (Some(code), Some(state)) = (code, state) else {
        return Err(ServiceError::Internal("validated fields missing".into()));
    };
    let pending = take_state(app, provider, &state).await?;
    if form.contains("redirect_uri")
        && form.0.get("redirect_uri").and_then(|v| v.as_str()) != Some(&pending.redirect_uri)
    {
        return Err(refusal(INVALID_STATE));
    }
    let secrets = app.keys.client_secrets().await?;
    let apple_user = form.0.get("user").and_then(|v| v.as_str()).map(str::to_owned);
    let now = app.now();
    let profile = match app.federation.profile(provider, &secrets, &pending, &code, apple_user.as_deref(), now).await {
        Ok(p) => p,
        Err(FederationError::Refused(why)) => {
            tracing::info!(event = "social", outcome = "refused", provider = %provider.name, reason = %why);
            super::audit::record(
                app,
                super::audit::Event::new("login.failed").object(format!("provider {}", provider.name)),
            )
            .await;
            return Err(ServiceError::Invalid(failed()));
        }
        Err(e) => return Err(unavailable(e)),
    };
    let user = account(app, provider, &profile).await?;
    // After the provider's answer and the account's writes: a token issued before the account's
    // `tokens_valid_after` (a new account's creation) would be refused.
    let now = app.now();
    if !user.is_active {
        tracing::info!(event = "social", outcome = "inactive", provider = %provider.name, user_id = %user.id);
        super::audit::record(app, super::audit::Event::new("login.inactive").to(&user.id)).await;
        return Err(super::login::ACCOUNT_INACTIVE);
    }
    if user.mfa_enabled {
        return Err(super::mfa::challenge(app, &user, now, ChallengeKind::MfaFederated).await?);
    }
    let tokens =
        super::login::open_session(app, &user, client, now, &Default::default(), &Authn::new(now, &["fed"])).await?;
    tracing::info!(event = "login", outcome = "ok", method = "provider", provider = %provider.name, user_id = %user.id);
    super::audit::record(
        app,
        super::audit::Event::new("login.succeeded").own(&user).object(format!("provider {}", provider.name)),
    )
    .await;
    Ok(SignedIn { tokens, user })
}

/// The account `profile` signs in to (see [`complete`]).
async fn account(app: &App, provider: &Provider, profile: &Profile) -> Result<User, ServiceError> {
    for _ in 0..TRIES {
        let now = app.now();
        if let Some(identity) = app.store.get_identity(&provider.name, &profile.subject).await? {
            match app.store.get_user(&identity.user_id, now).await? {
                Some(user) => {
                    if let Err(e) = app.store.touch_identity(&identity, now).await {
                        tracing::warn!(event = "social", outcome = "last_use_not_recorded", error = %e);
                    }
                    return Ok(user);
                }
                // Its account was deleted and the claim left behind: not a link any more.
                None => {
                    app.store.forget_identity(&identity).await?;
                }
            }
        }
        // No link: only an address the provider verified may find or make an account.
        let email = match (&profile.email, profile.email_verified) {
            (Some(email), true) => Email::parse(email).map_err(|_| refusal(NO_VERIFIED_EMAIL))?,
            _ => return Err(refusal(NO_VERIFIED_EMAIL)),
        };
        let identity = |user_id: &UserId| Identity {
            provider: provider.name.clone(),
            subject: profile.subject.clone(),
            user_id: user_id.clone(),
            email: Some(email.as_str().to_owned()),
            created_at: now,
            last_used_at: Some(now),
        };
        match app.store.find_user_by_email(&email, now).await? {
            None => {
                let user = new_account(&email, profile, now);
                match app.store.create_user_with_identity(&user, &identity(&user.id), now).await {
                    Ok(()) => {
                        tracing::info!(event = "register", outcome = "ok", method = "provider", provider = %provider.name, user_id = %user.id);
                        super::audit::record(
                            app,
                            super::audit::Event::new("account.registered")
                                .to(&user.id)
                                .object(format!("provider {}", provider.name)),
                        )
                        .await;
                        return Ok(user);
                    }
                    // Registered or linked meanwhile: look again.
                    Err(CreateUserError::EmailTaken | CreateUserError::IdentityTaken) => continue,
                    Err(CreateUserError::UsernameTaken) => {
                        return Err(ServiceError::Internal("no username was claimed".into()))
                    }
                    Err(CreateUserError::Store(e)) => return Err(e.into()),
                }
            }
            // Registration that sends no activation email leaves addresses unproven: an active
            // account may have been made with someone else's address, waiting for its owner to
            // sign in through a provider and so hand it over. Never linked then.
            Some(user) if user.is_active && !app.settings.send_activation_email => {
                return Err(refusal(ADDRESS_NOT_PROVEN));
            }
            Some(user) if user.is_active => {
                if app.store.link_identity(&user, &identity(&user.id)).await? {
                    tracing::info!(event = "social", outcome = "linked", provider = %provider.name, user_id = %user.id);
                    super::audit::record(
                        app,
                        super::audit::Event::new("identity.linked")
                            .own(&user)
                            .object(format!("provider {}", provider.name)),
                    )
                    .await;
                    notify(app, &user, EmailKind::IdentityLinked, provider).await;
                    return Ok(user);
                }
                if app.store.list_identities(&user.id).await?.iter().any(|i| i.provider == provider.name) {
                    return Err(refusal(LINKED_ELSEWHERE));
                }
                // The account changed meanwhile: look again.
            }
            // Registered, never activated: whoever registered it never proved the address,
            // which the provider just did. It is replaced, never linked, so an account made in
            // advance with someone else's address cannot be taken over through a provider.
            Some(user) if user.activatable_by_email() => match app.store.delete_user(&user).await {
                Ok(()) => {
                    tracing::info!(event = "social", outcome = "unactivated_account_replaced", user_id = %user.id);
                    super::audit::record(
                        app,
                        super::audit::Event::new("account.deleted")
                            .to(&user.id)
                            .object("replaced by a provider sign-in"),
                    )
                    .await;
                }
                Err(crate::ports::UpdateUserError::Store(e)) => return Err(e.into()),
                Err(_) => {}
            },
            // Disabled: found, and refused by the caller.
            Some(user) => return Ok(user),
        }
    }
    Err(ServiceError::Unavailable("the account kept changing during a provider sign-in".into()))
}

/// A new active account for a provider's verified address: no usable password (a reset sets
/// one), the provider's name.
fn new_account(email: &Email, profile: &Profile, now: i64) -> User {
    User {
        first_name: profile.first_name.chars().take(150).collect(),
        last_name: profile.last_name.chars().take(150).collect(),
        language: crate::i18n::asked().map(str::to_owned),
        ..User::new(email.clone(), crate::password::unusable(), now)
    }
}

/// Tells the owner a provider was linked to or unlinked from the account.
async fn notify(app: &App, user: &User, kind: EmailKind, provider: &Provider) {
    let extras = crate::mail::Extras { provider_name: Some(provider.label.clone()), ..Default::default() };
    super::deliver(app, &crate::mail::render(&app.settings, kind, user, extras), &user.id).await;
}

/// `GET /auth/users/me/identities/`: the caller's links.
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<Identity>, ServiceError> {
    Ok(app.store.list_identities(&caller.user.id).await?)
}

/// The label a provider's link is shown with (its name when no longer configured).
pub fn label(app: &App, provider: &str) -> String {
    app.settings.social.provider(provider).map_or_else(|| provider.to_owned(), |p| p.label.clone())
}

/// `DELETE /auth/users/me/identities/{provider}/`: removes the caller's link to `provider`,
/// unless it is the last way to sign in (no usable password, no passkey, no other link). A
/// sensitive step, as removing a passkey is: a sign-in within `REAUTH_WINDOW`, or the password
/// (and the second factor).
pub async fn unlink(
    app: &App,
    caller: &Caller,
    client: &ClientInfo,
    form: &Form,
    provider: &str,
) -> Result<(), ServiceError> {
    let user = &caller.user;
    let links = app.store.list_identities(&user.id).await?;
    if !links.iter().any(|i| i.provider == provider) {
        return Err(ServiceError::NotFound);
    }
    super::mfa::step_up(app, caller, client, form).await?;
    let other_way = |links: &[Identity], passkeys: usize| {
        crate::password::usable(&user.password_hash) || passkeys > 0 || links.iter().any(|i| i.provider != provider)
    };
    if !other_way(&links, app.store.list_passkeys(&user.id).await?.len()) {
        return Err(refusal(LAST_WAY));
    }
    let Some(removed) = app.store.unlink_identity(&user.id, provider).await? else {
        return Err(ServiceError::NotFound);
    };
    // Two links removed at once could each have counted on the other: looked at again after,
    // and put back when nothing else is left.
    let (rest, passkeys) = (app.store.list_identities(&user.id).await?, app.store.list_passkeys(&user.id).await?.len());
    let fresh = app.store.get_user(&user.id, app.now()).await?;
    let usable = fresh.as_ref().is_some_and(|u| crate::password::usable(&u.password_hash));
    if !usable && passkeys == 0 && rest.is_empty() {
        if let Some(fresh) = fresh {
            if !app.store.link_identity(&fresh, &removed).await? {
                tracing::warn!(event = "social", outcome = "last_link_not_restored", user_id = %user.id);
            }
        }
        return Err(refusal(LAST_WAY));
    }
    tracing::info!(event = "social", outcome = "unlinked", provider, user_id = %user.id);
    super::audit::record(
        app,
        super::audit::Event::new("identity.unlinked").own(user).object(format!("provider {provider}")),
    )
    .await;
    if let Some(p) = app.settings.social.provider(provider) {
        notify(app, user, EmailKind::IdentityUnlinked, p).await;
    }
    Ok(())
}
