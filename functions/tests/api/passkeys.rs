//! Passkeys: registration (options, the credential, refusals), the list, renaming and removal
//! with their notices, passwordless sign-in with a discoverable credential, a passkey as the
//! second step of a password sign-in, and what tokens say of them. The authenticator is a
//! software one (`common::passkey`), checked against webauthn-rs itself in `passkey_harness`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::passkey::{SoftPasskey, Tweak};
use common::{spawn_app, TestApp, PASSWORD};
use gatehouse_core::ports::EmailKind;
use gatehouse_core::tokens::TokenType;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

const ADA: &str = "ada@example.com";
/// The test settings' frontend (`FRONTEND_DOMAIN` app.example.com over https).
const ORIGIN: &str = "https://app.example.com";

/// Registers a passkey of `soft` for the account of `access`: its id.
async fn register(t: &TestApp, access: &str, soft: &mut SoftPasskey, name: &str) -> String {
    let r = t.call("POST", "/auth/webauthn/register/options/", Some(json!({})), Some(access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let credential = soft.create(&r.body, ORIGIN);
    let r = t
        .call("POST", "/auth/webauthn/register/", Some(json!({"credential": credential, "name": name})), Some(access))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// Starts a passwordless sign-in: (options, login_token).
async fn login_options(t: &TestApp) -> (Value, String) {
    let r = t.post("/auth/webauthn/login/options/", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let token = r.body["login_token"].as_str().unwrap().to_owned();
    (r.body, token)
}

async fn list(t: &TestApp, access: &str) -> Vec<Value> {
    let r = t.call("GET", "/auth/webauthn/credentials/", None, Some(access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_passkey_is_registered_listed_renamed_and_removed_with_notices() {
    let t = spawn_app(&[]);
    let (access, _) = t.active_user(ADA).await;
    let r = t.call("POST", "/auth/webauthn/register/options/", Some(json!({})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let pk = &r.body["publicKey"];
    assert_eq!(pk["rp"]["id"], "app.example.com");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["user"]["name"], ADA);
    assert!(pk["pubKeyCredParams"].as_array().unwrap().iter().any(|p| p["alg"] == -7), "ES256 offered");
    let mut soft = SoftPasskey::new();
    let credential = soft.create(&r.body, ORIGIN);
    let body = json!({"credential": credential, "name": "Ada's phone"});
    let r = t.call("POST", "/auth/webauthn/register/", Some(body.clone()), Some(&access)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(id, soft.credential_ids()[0]);
    assert_eq!(r.body["name"], "Ada's phone");
    assert_eq!(t.last_mail(ADA).kind, EmailKind::PasskeyAdded);
    // The same answer again: its ceremony was taken.
    let r = t.call("POST", "/auth/webauthn/register/", Some(body), Some(&access)).await;
    assert_eq!(
        (r.status, r.body),
        (StatusCode::BAD_REQUEST, json!({"credential": [gatehouse_core::services::passkeys::NO_CEREMONY]}))
    );
    let listed = list(&t, &access).await;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0]["id"].as_str(), &listed[0]["last_used_at"]), (Some(id.as_str()), &Value::Null));
    // The next registration excludes it.
    let r = t.call("POST", "/auth/webauthn/register/options/", Some(json!({})), Some(&access)).await;
    assert_eq!(r.body["publicKey"]["excludeCredentials"][0]["id"], json!(id));

    let path = format!("/auth/webauthn/credentials/{id}/");
    let r = t.call("PATCH", &path, Some(json!({"name": "Work phone"})), Some(&access)).await;
    assert_eq!((r.status, r.body["name"].clone()), (StatusCode::OK, json!("Work phone")));
    let r = t.call("PATCH", &path, Some(json!({"name": ""})), Some(&access)).await;
    assert_eq!(r.body, json!({"name": ["This field may not be blank."]}));
    let r = t.call("PATCH", "/auth/webauthn/credentials/nope/", Some(json!({"name": "x"})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Another account cannot see, rename or remove it.
    let (bob, _) = t.active_user("bob@example.com").await;
    assert!(list(&t, &bob).await.is_empty());
    assert_eq!(t.call("PATCH", &path, Some(json!({"name": "mine"})), Some(&bob)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.call("DELETE", &path, Some(json!({})), Some(&bob)).await.status, StatusCode::NOT_FOUND);
    let r = t.call("DELETE", &path, Some(json!({})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(t.last_mail(ADA).kind, EmailKind::PasskeyRemoved);
    assert!(list(&t, &access).await.is_empty());
}

#[tokio::test]
async fn registration_refuses_a_wrong_origin_another_accounts_ceremony_and_an_old_sign_in() {
    let t = spawn_app(&[]);
    let (access, refresh) = t.active_user(ADA).await;
    let (bob, _) = t.active_user("bob@example.com").await;
    let mut soft = SoftPasskey::new();
    let r = t.call("POST", "/auth/webauthn/register/options/", Some(json!({})), Some(&access)).await;
    let phished = soft.create_with(
        &r.body,
        ORIGIN,
        Tweak { origin: Some("https://app.example.com.evil.test".into()), ..Tweak::default() },
    );
    let r = t.call("POST", "/auth/webauthn/register/", Some(json!({"credential": phished})), Some(&access)).await;
    assert_eq!(
        (r.status, r.body),
        (StatusCode::BAD_REQUEST, json!({"credential": [gatehouse_core::services::passkeys::NOT_VERIFIED]}))
    );
    // Ada's options, answered and sent by Bob: not his ceremony (and it is spent).
    let r = t.call("POST", "/auth/webauthn/register/options/", Some(json!({})), Some(&access)).await;
    let mut other = SoftPasskey::new();
    let credential = other.create(&r.body, ORIGIN);
    let r = t.call("POST", "/auth/webauthn/register/", Some(json!({"credential": credential})), Some(&bob)).await;
    assert_eq!(r.body, json!({"credential": [gatehouse_core::services::passkeys::NO_CEREMONY]}));
    assert!(list(&t, &bob).await.is_empty() && list(&t, &access).await.is_empty());
    for bad in [json!("not json"), json!(42), json!({"id": "x"})] {
        let r = t.call("POST", "/auth/webauthn/register/", Some(json!({"credential": bad})), Some(&access)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    }
    let r = t.call("POST", "/auth/webauthn/register/", Some(json!({})), Some(&access)).await;
    assert_eq!(r.body, json!({"credential": ["This field is required."]}));
    // Past REAUTH_WINDOW the password is asked again.
    t.clock.advance(601);
    let r = t.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await;
    let access = r.body["access"].as_str().unwrap().to_owned();
    let r = t.call("POST", "/auth/webauthn/register/options/", Some(json!({})), Some(&access)).await;
    assert_eq!(r.body, json!({"current_password": ["This field is required."]}));
    let r = t
        .call("POST", "/auth/webauthn/register/options/", Some(json!({"current_password": PASSWORD})), Some(&access))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn a_passkey_signs_in_without_a_password_once_per_token() {
    let t = spawn_app(&[]);
    let (access, _) = t.active_user(ADA).await;
    let mut soft = SoftPasskey::new();
    register(&t, &access, &mut soft, "phone").await;
    let (options, token) = login_options(&t).await;
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]), "discoverable: no username asked");
    assert_eq!(options["publicKey"]["userVerification"], "required");
    let assertion = soft.get(&options, ORIGIN);
    let body = json!({"login_token": token, "credential": assertion});
    let r = t.post("/auth/webauthn/login/", body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let claims =
        t.app.tokens.verify(r.body["access"].as_str().unwrap(), TokenType::Access, t.clock_now()).await.unwrap();
    assert_eq!(claims.amr, Some(vec!["swk".into(), "user".into(), "mfa".into()]));
    assert_eq!(claims.sub, t.user(ADA).await.id.to_string());
    assert!(list(&t, &access).await[0]["last_used_at"].is_string());
    let r = t.post("/auth/webauthn/login/", body).await;
    assert_eq!(
        (r.status, r.body["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("login_token_not_valid")),
        "replay"
    );
    let r = t
        .post("/auth/webauthn/login/", json!({"login_token": "made-up", "credential": soft.get(&options, ORIGIN)}))
        .await;
    assert_eq!(r.body["code"], "login_token_not_valid");
    // Five answers at most per token.
    let (options, token) = login_options(&t).await;
    for _ in 0..5 {
        let bad = soft.get_with(&options, ORIGIN, Tweak { bad_signature: true, ..Tweak::default() });
        let r = t.post("/auth/webauthn/login/", json!({"login_token": token, "credential": bad})).await;
        assert_eq!(r.body["code"], "no_active_account");
    }
    let r =
        t.post("/auth/webauthn/login/", json!({"login_token": token, "credential": soft.get(&options, ORIGIN)})).await;
    assert_eq!(r.body["code"], "login_token_not_valid", "used up");
    // It expires.
    let (options, token) = login_options(&t).await;
    t.clock.advance(301);
    let r =
        t.post("/auth/webauthn/login/", json!({"login_token": token, "credential": soft.get(&options, ORIGIN)})).await;
    assert_eq!(r.body["code"], "login_token_not_valid");
}

#[tokio::test]
async fn every_refused_passkey_sign_in_answers_alike() {
    let t = spawn_app(&[]);
    let (access, _) = t.active_user(ADA).await;
    let mut soft = SoftPasskey::new();
    let id = register(&t, &access, &mut soft, "phone").await;
    let no_account =
        json!({"detail": "No active account found with the given credentials", "code": "no_active_account"});
    t.active_user("bob@example.com").await;
    let tweaks = [
        Tweak { origin: Some("https://evil.example.net".into()), ..Tweak::default() },
        Tweak { challenge: Some("AAAAAAAAAAAAAAAAAAAAAA".into()), ..Tweak::default() },
        Tweak { bad_signature: true, ..Tweak::default() },
        Tweak { uv: Some(false), ..Tweak::default() },
        Tweak { client_data_type: Some("webauthn.create".into()), ..Tweak::default() },
        Tweak { user_handle: Some(None), ..Tweak::default() },
        Tweak {
            user_handle: Some(Some(uuid_bytes(&t.user("bob@example.com").await.id.to_string()))),
            ..Tweak::default()
        },
    ];
    for tweak in tweaks {
        let (options, token) = login_options(&t).await;
        let r = t
            .post(
                "/auth/webauthn/login/",
                json!({"login_token": token, "credential": soft.get_with(&options, ORIGIN, tweak)}),
            )
            .await;
        assert_eq!((r.status, r.body), (StatusCode::UNAUTHORIZED, no_account.clone()));
    }
    // A disabled account, and a removed passkey: the same answer.
    let mut user = t.user(ADA).await;
    let before = user.clone();
    user.is_active = false;
    t.app.store.update_user(&before, &user, t.clock_now()).await.unwrap();
    let (options, token) = login_options(&t).await;
    let r =
        t.post("/auth/webauthn/login/", json!({"login_token": token, "credential": soft.get(&options, ORIGIN)})).await;
    assert_eq!((r.status, r.body), (StatusCode::UNAUTHORIZED, no_account.clone()));
    let user2 = t.user(ADA).await;
    let mut active = user2.clone();
    active.is_active = true;
    t.app.store.update_user(&user2, &active, t.clock_now()).await.unwrap();
    assert!(t.app.store.delete_passkey(&active.id, &id).await.unwrap());
    let (options, token) = login_options(&t).await;
    let r =
        t.post("/auth/webauthn/login/", json!({"login_token": token, "credential": soft.get(&options, ORIGIN)})).await;
    assert_eq!((r.status, r.body), (StatusCode::UNAUTHORIZED, no_account));
}

fn uuid_bytes(id: &str) -> Vec<u8> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    (0..16).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect()
}

#[tokio::test]
async fn a_counter_that_goes_back_is_refused_as_a_cloned_authenticator() {
    let t = spawn_app(&[]);
    let (access, _) = t.active_user(ADA).await;
    let mut soft = SoftPasskey::new();
    soft.increment_counter = true;
    register(&t, &access, &mut soft, "key").await;
    for _ in 0..2 {
        let (options, token) = login_options(&t).await;
        let r = t
            .post("/auth/webauthn/login/", json!({"login_token": token, "credential": soft.get(&options, ORIGIN)}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let (options, token) = login_options(&t).await;
    let clone = soft.get_with(&options, ORIGIN, Tweak { counter: Some(1), ..Tweak::default() });
    let r = t.post("/auth/webauthn/login/", json!({"login_token": token, "credential": clone})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}

#[tokio::test]
async fn a_passkey_answers_the_second_step_of_a_password_sign_in() {
    let t = spawn_app(&[]);
    let (access, _, _) = crate::mfa::enrolled(&t).await;
    let mut soft = SoftPasskey::new();
    let id = register(&t, &access, &mut soft, "phone").await;
    let r = t.call("GET", "/auth/users/me/", None, Some(&access)).await;
    assert_eq!(r.body["mfa_methods"], json!(["totp", "recovery_code", "webauthn"]));
    let r = t.post("/auth/jwt/create/", json!({"email": ADA, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["methods"], json!(["totp", "recovery_code", "webauthn"]));
    assert_eq!(r.body["webauthn"]["publicKey"]["allowCredentials"][0]["id"], json!(id));
    let token = r.body["mfa_token"].as_str().unwrap().to_owned();
    let wrong = soft.get_with(&r.body["webauthn"], ORIGIN, Tweak { bad_signature: true, ..Tweak::default() });
    let v = t.post("/auth/mfa/verify/", json!({"mfa_token": token, "credential": wrong})).await;
    assert_eq!(
        (v.status, v.body),
        (StatusCode::BAD_REQUEST, json!({"credential": [gatehouse_core::services::passkeys::NOT_VERIFIED]}))
    );
    let v = t
        .post("/auth/mfa/verify/", json!({"mfa_token": token, "credential": soft.get(&r.body["webauthn"], ORIGIN)}))
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    let claims =
        t.app.tokens.verify(v.body["access"].as_str().unwrap(), TokenType::Access, t.clock_now()).await.unwrap();
    assert_eq!(claims.amr, Some(vec!["pwd".into(), "swk".into(), "mfa".into()]));
    // One answer at a time.
    let r = t.post("/auth/jwt/create/", json!({"email": ADA, "password": PASSWORD})).await;
    let v = t.post("/auth/mfa/verify/", json!({"mfa_token": r.body["mfa_token"], "code": "1", "credential": {}})).await;
    assert_eq!(v.body, json!({"non_field_errors": ["Give one of code, recovery_code or credential."]}));
}

#[tokio::test]
async fn without_a_webauthn_origin_passkeys_are_off_and_sign_ins_go_on() {
    let t = spawn_app(&[("FRONTEND_DOMAIN", "127.0.0.1:8000"), ("PROTOCOL", "http")]);
    let (access, _) = t.active_user(ADA).await;
    let r = t.call("POST", "/auth/webauthn/register/options/", Some(json!({})), Some(&access)).await;
    assert_eq!((r.status, r.body["code"].clone()), (StatusCode::FORBIDDEN, json!("passkeys_unavailable")));
    let r = t.post("/auth/webauthn/login/options/", json!({})).await;
    assert_eq!(r.body["code"], "passkeys_unavailable");
    assert!(list(&t, &access).await.is_empty());
}

#[tokio::test]
async fn passwordless_options_are_budgeted_per_ip_and_an_account_holds_at_most_twenty_passkeys() {
    let t = spawn_app(&[("RATE_PASSKEY_OPTIONS_IP", "2/1m")]);
    for _ in 0..2 {
        assert_eq!(t.post("/auth/webauthn/login/options/", json!({})).await.status, StatusCode::OK);
    }
    let r = t.post("/auth/webauthn/login/options/", json!({})).await;
    assert_eq!((r.status, r.body["code"].clone()), (StatusCode::TOO_MANY_REQUESTS, json!("throttled")));
    assert!(r.headers.contains_key("retry-after"));
    let r = t.post_from("198.51.100.30", "/auth/webauthn/login/options/", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "another address has its own budget");

    let (access, _) = t.active_user(ADA).await;
    for i in 0..gatehouse_core::services::passkeys::MAX_PASSKEYS {
        register(&t, &access, &mut SoftPasskey::new(), &format!("key {i}")).await;
    }
    let r = t.call("POST", "/auth/webauthn/register/options/", Some(json!({})), Some(&access)).await;
    assert_eq!(r.body, json!({"non_field_errors": [gatehouse_core::services::passkeys::TOO_MANY]}));
    let long = "x".repeat(65);
    let id = list(&t, &access).await[0]["id"].as_str().unwrap().to_owned();
    let r =
        t.call("PATCH", &format!("/auth/webauthn/credentials/{id}/"), Some(json!({"name": long})), Some(&access)).await;
    assert_eq!(r.body, json!({"name": ["Ensure this field has no more than 64 characters."]}));
}

#[tokio::test]
async fn a_wrong_passkey_at_the_second_step_is_audited_and_a_fresh_sign_in_needs_no_code_to_add_one() {
    let t = spawn_app(&[]);
    let (access, _, _) = crate::mfa::enrolled(&t).await;
    // Within REAUTH_WINDOW: a password given is checked, and no code is asked.
    let r = t
        .call("POST", "/auth/webauthn/register/options/", Some(json!({"current_password": "wrong one"})), Some(&access))
        .await;
    assert_eq!(r.body, json!({"current_password": ["Invalid password."]}));
    let r = t
        .call("POST", "/auth/webauthn/register/options/", Some(json!({"current_password": PASSWORD})), Some(&access))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut soft = SoftPasskey::new();
    register(&t, &access, &mut soft, "phone").await;
    let r = t.post("/auth/jwt/create/", json!({"email": ADA, "password": PASSWORD})).await;
    let bad = soft.get_with(&r.body["webauthn"], ORIGIN, Tweak { bad_signature: true, ..Tweak::default() });
    let v = t.post("/auth/mfa/verify/", json!({"mfa_token": r.body["mfa_token"], "credential": bad})).await;
    assert_eq!(v.status, StatusCode::BAD_REQUEST);
    let stream = gatehouse_core::domain::AuditStream::Account(t.user(ADA).await.id);
    let entries = t.app.store.audit_page(&stream, None, 0, 100, t.clock_now()).await.unwrap();
    assert!(
        entries.iter().any(|e| e.event == "mfa.failed" && e.object.as_deref() == Some("credential")),
        "{:?}",
        entries.iter().map(|e| (&e.event, &e.object)).collect::<Vec<_>>()
    );
    // The owner's own view lists the passkey among the second step's methods, after an edit too.
    let r = t.call("PATCH", "/auth/users/me/", Some(json!({"first_name": "Ada"})), Some(&access)).await;
    assert_eq!(r.body["mfa_methods"], json!(["totp", "recovery_code", "webauthn"]));
}

#[tokio::test]
async fn a_passkey_sign_in_carries_the_groups_of_the_account() {
    // The access token names the account's groups (read at sign-in): the one read a group
    // member's sign-in adds, which the function's role must allow.
    let t = spawn_app(&[]);
    let (access, _) = t.active_user(ADA).await;
    t.make_staff_with(ADA, &[]).await;
    let mut soft = SoftPasskey::new();
    register(&t, &access, &mut soft, "phone").await;
    let (options, token) = login_options(&t).await;
    let body = json!({"login_token": token, "credential": soft.get(&options, ORIGIN)});
    let r = t.post("/auth/webauthn/login/", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let claims =
        t.app.tokens.verify(r.body["access"].as_str().unwrap(), TokenType::Access, t.clock_now()).await.unwrap();
    assert_eq!(claims.groups, Some(vec![format!("holds-{ADA}")]));
}
