//! Social / OpenID Connect sign-in through a local provider (common/idp.rs) over real HTTP: the
//! authorization URL, the code exchange with PKCE, every check of the ID token, the state's single
//! use, the rules that find, link, replace or create the account, the second factor after a
//! provider, GitHub's API, and unlinking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use crate::common;

use common::idp::{GithubPerson, Idp, Person, Tamper, REDIRECT};
use common::{spawn_app, TestApp, PASSWORD};
use gatehouse_core::ports::EmailKind;
use gatehouse_core::tokens::TokenType;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

const GRACE: &str = "grace@example.com";
const INVALID_STATE: &str = "Invalid state has been provided.";
const FAILED: &str = "Authentication with the provider failed.";
const NO_EMAIL: &str = "The provider did not confirm an email address for this account.";

async fn setup_with(extra: &[(&str, &str)]) -> (TestApp, Idp) {
    let idp = Idp::start().await;
    let (providers, secrets) = (idp.providers(), idp.secrets());
    let mut settings = vec![
        ("SOCIAL_PROVIDERS", providers.as_str()),
        ("SOCIAL_CLIENT_SECRETS", secrets.as_str()),
        ("SOCIAL_REDIRECT_URIS", REDIRECT),
    ];
    settings.extend_from_slice(extra);
    (spawn_app(&settings), idp)
}

async fn setup() -> (TestApp, Idp) {
    setup_with(&[]).await
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /auth/o/{provider}/`: the authorization URL.
async fn begin(t: &TestApp, provider: &str) -> String {
    let r = t.call("GET", &format!("/auth/o/{provider}/?redirect_uri={}", encode(REDIRECT)), None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["authorization_url"].as_str().unwrap().to_owned()
}

async fn finish(t: &TestApp, provider: &str, code: &str, state: &str) -> common::Reply {
    t.post(&format!("/auth/o/{provider}/"), json!({"code": code, "state": state})).await
}

/// A whole sign-in through `corp` as `person`, its ID token spoiled as `tamper` says.
async fn sign_in_as(t: &TestApp, idp: &Idp, provider: &str, person: Person, tamper: Tamper) -> common::Reply {
    let url = begin(t, provider).await;
    let (code, state) = idp.authorize(&url, person, tamper, t.clock_now());
    finish(t, provider, &code, &state).await
}

async fn sign_in(t: &TestApp, idp: &Idp, person: Person) -> common::Reply {
    sign_in_as(t, idp, "corp", person, Tamper::None).await
}

fn refused(message: &str) -> Value {
    json!({"non_field_errors": [message]})
}

async fn amr(t: &TestApp, access: &str) -> Vec<String> {
    t.app.tokens.verify(access, TokenType::Access, t.clock_now()).await.unwrap().amr.unwrap()
}

async fn user_count(t: &TestApp) -> usize {
    t.memory.as_ref().unwrap().user_count()
}

#[tokio::test]
async fn the_authorization_url_carries_state_pkce_and_nonce_for_an_allowed_redirect_only() {
    let (t, idp) = setup().await;
    let url = url::Url::parse(&begin(&t, "corp").await).unwrap();
    assert!(url.as_str().starts_with(&format!("{}/authorize?", idp.issuer())), "{url}");
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(
        (q["response_type"].as_str(), q["client_id"].as_str(), q["redirect_uri"].as_str()),
        ("code", "gatehouse-test", REDIRECT)
    );
    assert_eq!((q["scope"].as_str(), q["code_challenge_method"].as_str()), ("openid email profile", "S256"));
    assert_eq!(q["code_challenge"].len(), 43, "S256 of the verifier, base64url");
    assert!(q["nonce"].len() >= 22 && q["state"].contains('.'), "{q:?}");
    // Two sign-ins never share a state, a nonce or a challenge.
    let other: HashMap<String, String> =
        url::Url::parse(&begin(&t, "corp").await).unwrap().query_pairs().into_owned().collect();
    assert!(["state", "nonce", "code_challenge"].iter().all(|k| q[*k] != other[*k]));
    // GitHub is OAuth 2.0: no nonce, its own scope.
    let gh: HashMap<String, String> =
        url::Url::parse(&begin(&t, "github").await).unwrap().query_pairs().into_owned().collect();
    assert_eq!((gh["scope"].as_str(), gh.contains_key("nonce")), ("read:user user:email", false));

    for (path, status, body) in [
        ("/auth/o/corp/", StatusCode::BAD_REQUEST, json!({"redirect_uri": ["This redirect URI is not allowed."]})),
        (
            "/auth/o/corp/?redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
            StatusCode::BAD_REQUEST,
            json!({"redirect_uri": ["This redirect URI is not allowed."]}),
        ),
        (
            // Exact match only: a longer path on the allowed one is another URI.
            "/auth/o/corp/?redirect_uri=https%3A%2F%2Fapp.example.com%2Fsocial%2Fcallback%2Fx",
            StatusCode::BAD_REQUEST,
            json!({"redirect_uri": ["This redirect URI is not allowed."]}),
        ),
        ("/auth/o/nobody/?redirect_uri=x", StatusCode::NOT_FOUND, json!({"detail": "Not found.", "code": "not_found"})),
    ] {
        let r = t.call("GET", path, None, None).await;
        assert_eq!((r.status, &r.body), (status, &body), "{path}");
    }
}

#[tokio::test]
async fn a_first_sign_in_creates_an_active_account_without_a_password_and_the_next_finds_it() {
    let (t, idp) = setup().await;
    let r = sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["user"], GRACE);
    let access = r.body["access"].as_str().unwrap();
    assert!(r.body["refresh"].is_string());
    assert_eq!(amr(&t, access).await, ["fed"]);
    let me = t.call("GET", "/auth/users/me/", None, Some(access)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(
        (&me.body["email"], &me.body["first_name"], &me.body["last_name"]),
        (&json!(GRACE), &json!("Grace"), &json!("Hopper"))
    );
    let stored = t.user(GRACE).await;
    assert!(stored.is_active && stored.password_hash.starts_with('!'), "active, no usable password");
    // No password opens it.
    let login = t.post("/auth/jwt/create/", json!({"email": GRACE, "password": stored.password_hash})).await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);

    let again = sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(t.user(GRACE).await.id, stored.id);
    assert_eq!(user_count(&t).await, 1);
    // The provider's address changed: the link, not the address, finds the account.
    let moved = sign_in(&t, &idp, Person::verified("sub-1", "grace.new@example.com")).await;
    assert_eq!((moved.status, &moved.body["user"]), (StatusCode::CREATED, &json!(GRACE)));

    let list = t.call("GET", "/auth/users/me/identities/", None, Some(access)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(
        (&list.body[0]["provider"], &list.body[0]["label"], &list.body[0]["email"]),
        (&json!("corp"), &json!("Corp SSO"), &json!(GRACE))
    );
    // The discovery document and the keys were fetched once for all three sign-ins.
    let seen = idp.seen();
    assert_eq!(seen.iter().filter(|s| s.ends_with("openid-configuration")).count(), 1, "{seen:?}");
    assert_eq!(seen.iter().filter(|s| s.ends_with("/jwks")).count(), 1, "{seen:?}");
}

#[tokio::test]
async fn a_state_is_good_once_for_its_own_provider_and_cannot_be_forged() {
    let (t, idp) = setup().await;
    let url = begin(&t, "corp").await;
    let (code, state) = idp.authorize(&url, Person::verified("sub-1", GRACE), Tamper::None, t.clock_now());
    // Another provider's route: refused, and the state is spent by that attempt.
    let r = finish(&t, "untrusted", &code, &state).await;
    assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &refused(INVALID_STATE)));

    let url = begin(&t, "corp").await;
    let (code, state) = idp.authorize(&url, Person::verified("sub-1", GRACE), Tamper::None, t.clock_now());
    let (id, mac) = state.split_once('.').unwrap();
    for forged in [format!("{id}.{}", "A".repeat(mac.len())), id.to_owned(), format!("x{id}.{mac}"), String::new()] {
        let r = finish(&t, "corp", &code, &forged).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{forged}: {}", r.body);
    }
    let ok = finish(&t, "corp", &code, &state).await;
    assert_eq!(ok.status, StatusCode::CREATED, "a forged state spends nothing: {}", ok.body);
    let replay = finish(&t, "corp", &code, &state).await;
    assert_eq!((replay.status, &replay.body), (StatusCode::BAD_REQUEST, &refused(INVALID_STATE)));

    // Expired after ten minutes.
    let url = begin(&t, "corp").await;
    let (code, state) = idp.authorize(&url, Person::verified("sub-1", GRACE), Tamper::None, t.clock_now());
    t.clock.advance(601);
    let late = finish(&t, "corp", &code, &state).await;
    assert_eq!((late.status, &late.body), (StatusCode::BAD_REQUEST, &refused(INVALID_STATE)));

    let missing = t.post("/auth/o/corp/", json!({})).await;
    assert_eq!(missing.body, json!({"code": ["This field is required."], "state": ["This field is required."]}));
}

#[tokio::test]
async fn the_code_and_state_may_come_as_a_form_or_in_the_query_as_djoser_reads_them() {
    let (t, idp) = setup().await;
    let url = begin(&t, "corp").await;
    let (code, state) = idp.authorize(&url, Person::verified("sub-1", GRACE), Tamper::None, t.clock_now());
    let body = format!("code={}&state={}", encode(&code), encode(&state));
    let r = t.raw("POST", "/auth/o/corp/", &[("content-type", "application/x-www-form-urlencoded")], body.into()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let url = begin(&t, "corp").await;
    let (code, state) = idp.authorize(&url, Person::verified("sub-1", GRACE), Tamper::None, t.clock_now());
    let path = format!("/auth/o/corp/?code={}&state={}", encode(&code), encode(&state));
    let r = t.raw("POST", &path, &[], lambda_http::Body::Empty).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn every_spoiled_id_token_is_refused_and_creates_nothing() {
    let (t, idp) = setup().await;
    for tamper in [
        Tamper::Nonce,
        Tamper::Audience,
        Tamper::Issuer,
        Tamper::Expired,
        Tamper::FutureIat,
        Tamper::Signature,
        Tamper::Azp,
        Tamper::AlgNone,
    ] {
        let r = sign_in_as(&t, &idp, "corp", Person::verified("sub-1", GRACE), tamper).await;
        assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &refused(FAILED)), "{tamper:?}");
    }
    assert_eq!(user_count(&t).await, 0);
    // A bad signature under a known key id is refused without fetching the keys again.
    let jwks = || idp.seen().iter().filter(|s| s.ends_with("/jwks")).count();
    assert_eq!(jwks(), 1, "{:?}", idp.seen());
    // An unknown key id fetches them again (a key rotation), once a minute at most.
    t.clock.advance(61);
    for _ in 0..2 {
        let r = sign_in_as(&t, &idp, "corp", Person::verified("sub-1", GRACE), Tamper::UnknownKid).await;
        assert_eq!(r.body, refused(FAILED));
    }
    assert_eq!(jwks(), 2, "{:?}", idp.seen());
    t.clock.advance(61);
    sign_in_as(&t, &idp, "corp", Person::verified("sub-1", GRACE), Tamper::UnknownKid).await;
    assert_eq!(jwks(), 3, "{:?}", idp.seen());
    // The token endpoint refuses a code the provider did not give.
    let url = begin(&t, "corp").await;
    let (_, state) = idp.authorize(&url, Person::verified("sub-1", GRACE), Tamper::None, t.clock_now());
    let r = finish(&t, "corp", "not-a-code", &state).await;
    assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &refused(FAILED)));
    // Within the leeway a slow clock is fine.
    let mut late = Person::verified("sub-1", GRACE);
    late.email_verified = json!("true");
    let url = begin(&t, "corp").await;
    let (code, state) = idp.authorize(&url, late, Tamper::None, t.clock_now() - 30);
    assert_eq!(finish(&t, "corp", &code, &state).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn an_address_the_provider_did_not_verify_never_finds_nor_makes_an_account() {
    let (t, idp) = setup().await;
    t.active_user(GRACE).await;
    let before = user_count(&t).await;
    let mut unverified = Person::verified("sub-1", GRACE);
    unverified.email_verified = json!(false);
    let r = sign_in(&t, &idp, unverified.clone()).await;
    assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &refused(NO_EMAIL)));
    let mut none = Person::verified("sub-2", GRACE);
    none.email = None;
    assert_eq!(sign_in(&t, &idp, none).await.body, refused(NO_EMAIL));
    // A provider whose word on addresses is not trusted: refused though it says verified.
    let r = sign_in_as(&t, &idp, "untrusted", Person::verified("sub-1", GRACE), Tamper::None).await;
    assert_eq!(r.body, refused(NO_EMAIL));
    // The same answer for an address nobody has.
    unverified.email = Some("nobody@example.com".into());
    assert_eq!(sign_in(&t, &idp, unverified).await.body, refused(NO_EMAIL));
    assert_eq!(user_count(&t).await, before);
    assert!(t.app.store.get_identity("corp", "sub-1").await.unwrap().is_none());
}

#[tokio::test]
async fn an_active_account_with_the_verified_address_is_linked_and_its_owner_told() {
    let (t, idp) = setup().await;
    let (access, _) = t.active_user(GRACE).await;
    let id = t.user(GRACE).await.id;
    let r = sign_in(&t, &idp, Person::verified("sub-1", "Grace@Example.com")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(t.user(GRACE).await.id, id);
    let notice = t.last_mail(GRACE);
    assert_eq!(notice.kind, EmailKind::IdentityLinked);
    assert!(notice.subject.contains("Corp SSO") && notice.text.contains("Corp SSO"), "{}", notice.text);
    // Its password still works, and the link is listed.
    t.login(GRACE).await;
    let list = t.call("GET", "/auth/users/me/identities/", None, Some(&access)).await;
    assert_eq!(list.body[0]["provider"], "corp");
    // Another account of the same provider with the same address cannot take the slot.
    let r = sign_in(&t, &idp, Person::verified("sub-2", GRACE)).await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::BAD_REQUEST, &refused("This account is already linked to another account of this provider."))
    );
}

#[tokio::test]
async fn an_account_never_activated_is_replaced_not_linked() {
    let (t, idp) = setup().await;
    // Someone registered Grace's address first (and cannot activate it).
    let (uid, token) = t.register(GRACE).await;
    let squatter = t.user(GRACE).await;
    let r = sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let owner = t.user(GRACE).await;
    assert!(owner.id != squatter.id && owner.is_active && owner.password_hash.starts_with('!'));
    assert!(t.app.store.get_user(&squatter.id, t.clock_now()).await.unwrap().is_none());
    // The squatter's password opens nothing, and the old activation link is dead.
    let login = t.post("/auth/jwt/create/", json!({"email": GRACE, "password": PASSWORD})).await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
    let activation = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(activation.status, StatusCode::BAD_REQUEST, "{}", activation.body);
    assert_eq!(user_count(&t).await, 1);
}

#[tokio::test]
async fn a_disabled_account_cannot_sign_in_through_a_provider() {
    let (t, idp) = setup().await;
    assert_eq!(sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await.status, StatusCode::CREATED);
    let u = t.user(GRACE).await;
    let mut off = u.clone();
    off.is_active = false;
    off.deactivated_at = Some(t.clock_now());
    t.app.store.update_user(&u, &off, t.clock_now()).await.unwrap();
    let inactive = json!({"detail": "This account has not been activated yet.", "code": "account_inactive"});
    let r = sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await;
    assert_eq!((r.status, &r.body), (StatusCode::FORBIDDEN, &inactive));
    // Nor by its address through another provider subject.
    let r = sign_in(&t, &idp, Person::verified("sub-9", GRACE)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
}

#[tokio::test]
async fn an_account_with_a_second_factor_gets_the_second_step_and_fed_in_amr() {
    let (t, idp) = setup().await;
    let (_, secret, _) = crate::mfa::enrolled(&t).await; // ada@example.com
    let r = sign_in(&t, &idp, Person::verified("sub-1", "ada@example.com")).await;
    assert_eq!((r.status, &r.body["code"]), (StatusCode::UNAUTHORIZED, &json!("mfa_required")), "{}", r.body);
    assert!(r.body.get("access").is_none());
    let code = secret.code_at(t.clock_now()).unwrap();
    let done = t.post("/auth/mfa/verify/", json!({"mfa_token": r.body["mfa_token"], "code": code})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(amr(&t, done.body["access"].as_str().unwrap()).await, ["fed", "otp", "mfa"]);
}

#[tokio::test]
async fn github_signs_in_with_its_verified_primary_address_only() {
    let (t, idp) = setup().await;
    let person =
        |emails: Vec<(String, bool, bool)>| GithubPerson { id: 4242, name: "Grace Brewster Hopper".into(), emails };
    // Only an unverified primary (and a verified secondary): no address to trust.
    let url = begin(&t, "github").await;
    let (code, state) = idp
        .authorize_github(&url, person(vec![(GRACE.into(), true, false), ("other@example.com".into(), false, true)]));
    assert_eq!(finish(&t, "github", &code, &state).await.body, refused(NO_EMAIL));
    let url = begin(&t, "github").await;
    let (code, state) = idp.authorize_github(&url, person(vec![(GRACE.into(), true, true)]));
    let r = finish(&t, "github", &code, &state).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let u = t.user(GRACE).await;
    assert_eq!((u.first_name.as_str(), u.last_name.as_str()), ("Grace", "Brewster Hopper"));
    assert_eq!(t.app.store.get_identity("github", "4242").await.unwrap().unwrap().user_id, u.id);
    assert_eq!(amr(&t, r.body["access"].as_str().unwrap()).await, ["fed"]);
}

#[tokio::test]
async fn the_last_way_to_sign_in_cannot_be_unlinked_until_a_password_is_set() {
    let (t, idp) = setup().await;
    let r = sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await;
    let access = r.body["access"].as_str().unwrap().to_owned();
    let last = t.call("DELETE", "/auth/users/me/identities/corp/", None, Some(&access)).await;
    assert_eq!(
        (last.status, &last.body),
        (
            StatusCode::BAD_REQUEST,
            &refused("This is the only way left to sign in to this account: set a password first.")
        )
    );
    let missing = t.call("DELETE", "/auth/users/me/identities/github/", None, Some(&access)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // A password through reset, then the link can go.
    let r = t.post("/auth/users/reset_password/", json!({"email": GRACE})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let (uid, token) = t.link_parts(GRACE);
    let r = t
        .post("/auth/users/reset_password_confirm/", json!({"uid": uid, "token": token, "new_password": PASSWORD}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (access, _) = t.login(GRACE).await;
    let r = t.call("DELETE", "/auth/users/me/identities/corp/", None, Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(t.last_mail(GRACE).kind, EmailKind::IdentityUnlinked);
    let list = t.call("GET", "/auth/users/me/identities/", None, Some(&access)).await;
    assert_eq!(list.body, json!([]));
    assert!(t.app.store.get_identity("corp", "sub-1").await.unwrap().is_none());
    // Signing in with it again links it again (the address is verified and the account active).
    assert_eq!(sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await.status, StatusCode::CREATED);
    // Unauthenticated: 401.
    assert_eq!(t.call("GET", "/auth/users/me/identities/", None, None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_deleted_account_leaves_no_link_behind() {
    let (t, idp) = setup().await;
    let r = sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await;
    let first = t.user(GRACE).await.id;
    let u = t.user(GRACE).await;
    t.app.store.delete_user(&u).await.unwrap();
    assert!(t.app.store.get_identity("corp", "sub-1").await.unwrap().is_none());
    let _ = r;
    let again = sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_ne!(t.user(GRACE).await.id, first, "a new account");
}

#[tokio::test]
async fn with_the_cookie_transport_the_refresh_token_goes_in_the_cookie() {
    let (t, idp) = setup_with(&[("JWT_COOKIE", "true")]).await;
    let url = begin(&t, "corp").await;
    let (code, state) = idp.authorize(&url, Person::verified("sub-1", GRACE), Tamper::None, t.clock_now());
    let body = json!({"code": code, "state": state}).to_string();
    let r = t
        .raw("POST", "/auth/o/corp/", &[("content-type", "application/json"), ("x-gatehouse-cookie", "1")], body.into())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body.get("refresh").is_none() && r.body["access"].is_string() && r.body["user"] == GRACE);
    let cookie = r.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.starts_with("gatehouse_refresh=") && cookie.contains("HttpOnly"), "{cookie}");
}

#[tokio::test]
async fn providers_are_checked_at_start() {
    let bad = [
        r#"{"corp": {"client_id": "x"}}"#,
        r#"{"corp": {"type": "oidc", "issuer": "http://idp.example.com", "client_id": "x"}}"#,
        r#"{"Corp": {"type": "oidc", "issuer": "https://idp.example.com", "client_id": "x"}}"#,
        r#"{"apple": {"client_id": "x"}}"#,
        r#"{"corp": {"type": "saml", "client_id": "x"}}"#,
        r#"{"google": {"client_id": ""}}"#,
        r#"{"google": {"client_id": "x", "colour": "red"}}"#,
        "[1]",
    ];
    for raw in bad {
        let mut vars: HashMap<String, String> = HashMap::from([
            ("EMAIL_FROM".into(), "a@example.com".into()),
            ("JWT_ALGORITHM".into(), "HS256".into()),
            ("JWT_SIGNING_KEY".into(), "k".repeat(32)),
        ]);
        vars.insert("SOCIAL_PROVIDERS".into(), raw.into());
        let err = gatehouse_core::Settings::from_map(&vars).err().unwrap_or_else(|| panic!("{raw} accepted"));
        assert!(err.to_string().contains("SOCIAL_PROVIDERS"), "{raw}: {err}");
    }
    let mut vars: HashMap<String, String> = HashMap::from([
        ("EMAIL_FROM".into(), "a@example.com".into()),
        ("JWT_ALGORITHM".into(), "HS256".into()),
        ("JWT_SIGNING_KEY".into(), "k".repeat(32)),
        ("SOCIAL_PROVIDERS".into(), r#"{"google": {"client_id": "g"}, "microsoft": {"client_id": "m", "tenant": "organizations"}, "github": {"client_id": "h"}}"#.into()),
    ]);
    let s = gatehouse_core::Settings::from_map(&vars).unwrap();
    let ms = s.social.provider("microsoft").unwrap();
    assert_eq!(ms.issuer, "https://login.microsoftonline.com/organizations/v2.0");
    assert_eq!(s.social.provider("google").unwrap().issuer, "https://accounts.google.com");
    vars.insert("SOCIAL_CLIENT_SECRETS".into(), r#"{"gitlab": "x"}"#.into());
    let err = gatehouse_core::Settings::from_map(&vars).err().unwrap();
    assert!(err.to_string().contains("SOCIAL_CLIENT_SECRETS"), "{err}");
}

#[tokio::test]
async fn an_account_without_a_password_proves_itself_by_a_recent_sign_in() {
    let (t, idp) = setup_with(&[("REAUTH_WINDOW", "60")]).await;
    let r = sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await;
    let access = r.body["access"].as_str().unwrap().to_owned();
    // Within REAUTH_WINDOW: its first password, with no current one to give.
    let set = t.call("POST", "/auth/users/set_password/", Some(json!({"new_password": PASSWORD})), Some(&access)).await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.body);
    t.login(GRACE).await;

    // Another account, signed in too long ago: told to sign in again, and nothing changes.
    let r = sign_in(&t, &idp, Person::verified("sub-2", "alan@example.com")).await;
    let access = r.body["access"].as_str().unwrap().to_owned();
    t.clock.advance(61);
    let late =
        t.call("POST", "/auth/users/set_password/", Some(json!({"new_password": PASSWORD})), Some(&access)).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        late.body,
        json!({"current_password": ["This account has no password yet: sign in again to confirm it is you, or set one with a password reset."]})
    );
    assert!(t.user("alan@example.com").await.password_hash.starts_with('!'));
    // A fresh sign-in lets it delete itself.
    let r = sign_in(&t, &idp, Person::verified("sub-2", "alan@example.com")).await;
    let access = r.body["access"].as_str().unwrap().to_owned();
    let gone = t.call("DELETE", "/auth/users/me/", Some(json!({})), Some(&access)).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    assert!(t.app.store.get_identity("corp", "sub-2").await.unwrap().is_none());
}

#[tokio::test]
async fn apple_gets_a_form_post_and_a_client_secret_signed_by_the_team_key() {
    let (t, idp) = setup().await;
    let url = begin(&t, "apple").await;
    let q: HashMap<String, String> = url::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
    assert_eq!((q["response_mode"].as_str(), q["scope"].as_str()), ("form_post", "name email"));
    let (code, state) = idp.authorize(&url, Person::verified("000123.abc", GRACE), Tamper::None, t.clock_now());
    // Apple's ID token carries no name: the first sign-in's `user` field does.
    let user = json!({"name": {"firstName": "Grace", "lastName": "Hopper"}, "email": "ignored@example.com"});
    let body = json!({"code": code, "state": state, "user": user.to_string()});
    let r = t.post("/auth/o/apple/", body).await;
    assert_eq!((r.status, &r.body["user"]), (StatusCode::CREATED, &json!(GRACE)), "{}", r.body);
    // The client secret: an ES256 JWT by the team's key, for Apple, about this client.
    let (how, secret) = idp.client_auth().last().cloned().unwrap();
    assert_eq!(how, "post", "Apple's client secret goes in the form");
    let header = jsonwebtoken::decode_header(&secret).unwrap();
    assert_eq!((header.alg, header.kid.as_deref()), (jsonwebtoken::Algorithm::ES256, Some("KEY1234567")));
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let key =
        jsonwebtoken::DecodingKey::from_ec_components(&b64(&idp.apple_public.0), &b64(&idp.apple_public.1)).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["https://appleid.apple.com"]);
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(&secret, &key, &v).unwrap().claims;
    assert_eq!((&claims["iss"], &claims["sub"]), (&json!("TEAM123456"), &json!(common::idp::APPLE_CLIENT)));
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300);
    let u = t.user(GRACE).await;
    assert_eq!((u.first_name.as_str(), u.last_name.as_str()), ("Grace", "Hopper"));
}

#[tokio::test]
async fn microsoft_holds_each_token_to_its_own_tenant_and_believes_only_a_verified_domain() {
    let (t, idp) = setup().await;
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let ms = |provider: &'static str, sub: &'static str, extra: Value| {
        let (t, idp) = (&t, &idp);
        async move {
            let url = begin(t, provider).await;
            let (code, state) = idp.authorize_with(&url, Person::verified(sub, GRACE), extra, t.clock_now());
            finish(t, provider, &code, &state).await
        }
    };
    // `email_verified` absent, as Microsoft sends it: the address is not believed ...
    let r = ms("microsoft", "ms-1", json!({"tid": tenant, "email_verified": null})).await;
    assert_eq!(r.body, refused(NO_EMAIL));
    // ... unless the tenant owns the domain (the optional claim xms_edov).
    let r = ms("microsoft", "ms-1", json!({"tid": tenant, "email_verified": null, "xms_edov": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The client secret went as HTTP Basic: the document names no method.
    assert_eq!(idp.client_auth().last().unwrap(), &("basic".to_owned(), common::idp::CLIENT_SECRET.to_owned()));
    // A token whose issuer is another tenant's than its `tid`: refused.
    let url = begin(&t, "microsoft").await;
    let (code, state) = idp.authorize_with(
        &url,
        Person::verified("ms-2", "alan@example.com"),
        json!({"tid": tenant, "xms_edov": true, "iss": format!("{}/ms/{}/v2.0", idp.base, common::idp::CONSUMERS)}),
        t.clock_now(),
    );
    assert_eq!(finish(&t, "microsoft", &code, &state).await.body, refused(FAILED));
    // `organizations` refuses personal accounts.
    let r = ms("msorg", "ms-3", json!({"tid": common::idp::CONSUMERS, "xms_edov": true})).await;
    assert_eq!(r.body, refused(FAILED));
    let r = ms("msorg", "ms-1", json!({"tid": tenant, "xms_edov": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn unlinking_after_the_reauth_window_takes_the_password() {
    let (t, idp) = setup_with(&[("REAUTH_WINDOW", "60")]).await;
    let (access, _) = t.active_user(GRACE).await;
    assert_eq!(sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await.status, StatusCode::CREATED);
    t.clock.advance(61);
    let path = "/auth/users/me/identities/corp/";
    let r = t.call("DELETE", path, Some(json!({})), Some(&access)).await;
    assert_eq!(
        (r.status, &r.body),
        (StatusCode::BAD_REQUEST, &json!({"current_password": ["This field is required."]}))
    );
    let r = t.call("DELETE", path, Some(json!({"current_password": "not it"})), Some(&access)).await;
    assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &json!({"current_password": ["Invalid password."]})));
    assert!(t.app.store.get_identity("corp", "sub-1").await.unwrap().is_some(), "still linked");
    let r = t.call("DELETE", path, Some(json!({"current_password": PASSWORD})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(t.app.store.get_identity("corp", "sub-1").await.unwrap().is_none());
}

#[tokio::test]
async fn a_provider_sign_in_carries_the_groups_of_the_account() {
    let (t, idp) = setup().await;
    assert_eq!(sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await.status, StatusCode::CREATED);
    t.make_staff_with(GRACE, &[]).await;
    let r = sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await;
    let claims =
        t.app.tokens.verify(r.body["access"].as_str().unwrap(), TokenType::Access, t.clock_now()).await.unwrap();
    assert_eq!(claims.groups, Some(vec![format!("holds-{GRACE}")]));
}

#[tokio::test]
async fn without_activation_emails_an_existing_account_is_never_linked() {
    // Registration proves no address here: whoever registered grace@ first may not be Grace.
    let (t, idp) = setup_with(&[("SEND_ACTIVATION_EMAIL", "false")]).await;
    let r = t.post("/auth/users/", json!({"email": GRACE, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(t.user(GRACE).await.is_active, "active at once, its address unproven");
    let r = sign_in(&t, &idp, Person::verified("sub-1", GRACE)).await;
    assert_eq!(
        (r.status, &r.body),
        (
            StatusCode::BAD_REQUEST,
            &refused("An account with this email address exists already: sign in to it with its password.")
        )
    );
    assert!(t.app.store.get_identity("corp", "sub-1").await.unwrap().is_none());
    // A new address still makes an account.
    assert_eq!(sign_in(&t, &idp, Person::verified("sub-2", "alan@example.com")).await.status, StatusCode::CREATED);
}
