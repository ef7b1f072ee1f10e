//! Two-step sign-in (TOTP with recovery codes): enrolment, confirmation, the `mfa_required` answer
//! of a password login, `mfa/verify`, replay and attempt caps, turning it off, new recovery codes,
//! the step-up of sensitive actions, and what tokens say about the sign-in (`amr`, `auth_time`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{spawn_app, TestApp, PASSWORD};
use gatehouse_core::mfa::TotpSecret;
use gatehouse_core::ports::EmailKind;
use gatehouse_core::tokens::TokenType;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

const ADA: &str = "ada@example.com";

/// A user with two-step sign-in on: (access token of the enrolling session, the secret, the
/// recovery codes). The clock is moved one step on, so the enrolment's code is not the next one.
pub(crate) async fn enrolled(t: &TestApp) -> (String, TotpSecret, Vec<String>) {
    let (access, _, secret, codes) = enrolled_with_refresh(t).await;
    (access, secret, codes)
}

/// [`enrolled`], with the session's refresh token.
async fn enrolled_with_refresh(t: &TestApp) -> (String, String, TotpSecret, Vec<String>) {
    let (access, refresh) = t.active_user(ADA).await;
    let r = t.call("POST", "/auth/mfa/totp/", Some(json!({"current_password": PASSWORD})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let secret = TotpSecret::from_base32(r.body["secret"].as_str().unwrap()).unwrap();
    let code = secret.code_at(t.clock_now()).unwrap();
    let r = t.call("POST", "/auth/mfa/totp/confirm/", Some(json!({"code": code})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let codes = r.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    t.clock.advance(30);
    (access, refresh, secret, codes)
}

/// Moves the clock `secs` on and refreshes the session: the new (access, refresh) pair, which
/// still says when the session signed in.
async fn later(t: &TestApp, refresh: &str, secs: i64) -> (String, String) {
    t.clock.advance(secs);
    let r = t.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (r.body["access"].as_str().unwrap().to_owned(), r.body["refresh"].as_str().unwrap().to_owned())
}

/// A password login that must stop at the second step: its `mfa_token`.
pub(crate) async fn password_step(t: &TestApp) -> String {
    let r = t.post("/auth/jwt/create/", json!({"email": ADA, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.body["code"], "mfa_required");
    assert_eq!(r.body["methods"], json!(["totp", "recovery_code"]));
    assert!(r.body.get("access").is_none() && r.body.get("refresh").is_none(), "never tokens: {}", r.body);
    r.body["mfa_token"].as_str().unwrap().to_owned()
}

async fn verify(t: &TestApp, body: Value) -> common::Reply {
    t.post("/auth/mfa/verify/", body).await
}

async fn me(t: &TestApp, access: &str) -> Value {
    let r = t.call("GET", "/auth/users/me/", None, Some(access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn enrolment_confirmation_and_a_sign_in_with_the_second_step() {
    let t = spawn_app(&[]);
    let (access, _) = t.active_user(ADA).await;
    let r = t.call("POST", "/auth/mfa/totp/", Some(json!({"current_password": "wrong one"})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body, json!({"current_password": ["Invalid password."]}));
    let r = t.call("POST", "/auth/mfa/totp/", Some(json!({"current_password": PASSWORD})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let url = r.body["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/") && url.contains("ada%40example.com"), "{url}");
    assert!(url.contains(&format!("secret={}", r.body["secret"].as_str().unwrap())), "{url}");
    assert!(r.body["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = TotpSecret::from_base32(r.body["secret"].as_str().unwrap()).unwrap();
    assert_eq!(me(&t, &access).await["mfa_enabled"], false, "pending until confirmed");
    assert_eq!(t.post("/auth/jwt/create/", json!({"email": ADA, "password": PASSWORD})).await.status, StatusCode::OK);

    let wrong = format!("{:06}", (secret.code_at(t.clock_now()).unwrap().parse::<u32>().unwrap() + 1) % 1_000_000);
    let r = t.call("POST", "/auth/mfa/totp/confirm/", Some(json!({"code": wrong})), Some(&access)).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::BAD_REQUEST, json!({"code": ["Invalid code."]})));
    let code = secret.code_at(t.clock_now()).unwrap();
    let r = t.call("POST", "/auth/mfa/totp/confirm/", Some(json!({"code": code})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let codes = r.body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(t.last_mail(ADA).kind, EmailKind::MfaEnabled);
    let body = me(&t, &access).await;
    assert_eq!(
        (body["mfa_enabled"].clone(), body["mfa_methods"].clone()),
        (json!(true), json!(["totp", "recovery_code"]))
    );
    // The store keeps no secret or code in the clear.
    let mfa = t.app.store.get_mfa(&t.user(ADA).await.id, t.clock_now()).await.unwrap();
    assert!(!mfa.totp.unwrap().sealed_secret.contains(r.body["recovery_codes"][0].as_str().unwrap()));
    assert!(mfa.recovery.macs.iter().all(|m| codes.iter().all(|c| !m.contains(c.as_str().unwrap()))));
    assert_eq!(mfa.recovery.macs.len(), 10);

    let token = password_step(&t).await;
    let r = verify(&t, json!({"mfa_token": token, "code": code})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "the confirming code is not accepted again: {}", r.body);
    t.clock.advance(30);
    let r = verify(&t, json!({"mfa_token": token, "code": secret.code_at(t.clock_now()).unwrap()})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let claims =
        t.app.tokens.verify(r.body["access"].as_str().unwrap(), TokenType::Access, t.clock_now()).await.unwrap();
    assert_eq!(claims.amr, Some(vec!["pwd".into(), "otp".into(), "mfa".into()]));
    assert_eq!(claims.auth_time, Some(t.clock_now()));
    // A refresh passes the sign-in on.
    t.clock.advance(100);
    let r = t.post("/auth/jwt/refresh/", json!({"refresh": r.body["refresh"]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let again =
        t.app.tokens.verify(r.body["access"].as_str().unwrap(), TokenType::Access, t.clock_now()).await.unwrap();
    assert_eq!((again.amr, again.auth_time), (claims.amr, claims.auth_time));
    assert_eq!(
        verify(&t, json!({"mfa_token": token, "code": "000000"})).await.status,
        StatusCode::UNAUTHORIZED,
        "used"
    );
}

#[tokio::test]
async fn a_password_login_says_how_it_signed_in() {
    let t = spawn_app(&[]);
    let (access, _) = t.active_user(ADA).await;
    let claims = t.app.tokens.verify(&access, TokenType::Access, t.clock_now()).await.unwrap();
    assert_eq!((claims.amr, claims.auth_time), (Some(vec!["pwd".into()]), Some(t.clock_now())));
    let body = me(&t, &access).await;
    assert_eq!((body["mfa_enabled"].clone(), body["mfa_methods"].clone()), (json!(false), json!([])));
}

#[tokio::test]
async fn each_code_signs_in_once_and_recovery_codes_are_typed_loosely() {
    // Single use is tested here, not the lockout (see below): a threshold out of the way.
    let t = spawn_app(&[("LOGIN_LOCKOUT_THRESHOLD", "20")]);
    let (_, secret, codes) = enrolled(&t).await;
    let code = secret.code_at(t.clock_now()).unwrap();
    assert_eq!(verify(&t, json!({"mfa_token": password_step(&t).await, "code": code})).await.status, StatusCode::OK);
    let r = verify(&t, json!({"mfa_token": password_step(&t).await, "code": code})).await;
    assert_eq!((r.status, r.body), (StatusCode::BAD_REQUEST, json!({"code": ["Invalid code."]})), "a replay");
    // The previous step (within the skew) is older than the one accepted: refused too.
    let older = secret.code_at(t.clock_now() - 30).unwrap();
    let r = verify(&t, json!({"mfa_token": password_step(&t).await, "code": older})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let typed = format!(" {} ", codes[3].to_uppercase().replace('-', " "));
    let r = verify(&t, json!({"mfa_token": password_step(&t).await, "recovery_code": typed})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = verify(&t, json!({"mfa_token": password_step(&t).await, "recovery_code": codes[3]})).await;
    assert_eq!((r.status, r.body), (StatusCode::BAD_REQUEST, json!({"recovery_code": ["Invalid recovery code."]})));
    let r = verify(&t, json!({"mfa_token": password_step(&t).await, "code": "1", "recovery_code": codes[4]})).await;
    assert_eq!(r.body, json!({"non_field_errors": ["Give one of code, recovery_code or credential."]}));
    let r = verify(&t, json!({"mfa_token": "x"})).await;
    assert_eq!(r.body, json!({"code": ["This field is required."]}));
}

#[tokio::test]
async fn an_mfa_token_dies_after_five_wrong_answers_and_after_five_minutes() {
    let t = spawn_app(&[("LOGIN_LOCKOUT_THRESHOLD", "50")]);
    let (_, secret, _) = enrolled(&t).await;
    let token = password_step(&t).await;
    for _ in 0..5 {
        assert_eq!(verify(&t, json!({"mfa_token": token, "code": "000000"})).await.status, StatusCode::BAD_REQUEST);
    }
    let right = secret.code_at(t.clock_now()).unwrap();
    let r = verify(&t, json!({"mfa_token": token, "code": right})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the sixth answer, right or not: {}", r.body);
    assert_eq!(r.body["code"], "mfa_token_not_valid");

    let token = password_step(&t).await;
    t.clock.advance(301);
    let r = verify(&t, json!({"mfa_token": token, "code": secret.code_at(t.clock_now()).unwrap()})).await;
    assert_eq!(r.body["code"], "mfa_token_not_valid", "expired");
    let r = verify(&t, json!({"mfa_token": "made-up", "code": "123456"})).await;
    assert_eq!((r.status, r.body["code"].clone()), (StatusCode::UNAUTHORIZED, json!("mfa_token_not_valid")));
}

#[tokio::test]
async fn wrong_second_factors_count_against_the_account_like_wrong_passwords() {
    let t = spawn_app(&[("LOGIN_LOCKOUT_THRESHOLD", "3")]);
    let (_, secret, _) = enrolled(&t).await;
    // A stranger who knows the password guesses codes: each wrong one is a failed login.
    let token = password_step(&t).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(verify(&t, json!({"mfa_token": token, "code": "000000"})).await.status.as_u16());
    }
    // The password step counts until the second step is right: two wrong codes reach the threshold.
    assert_eq!(statuses, [400, 400, 429, 429, 429], "the account's lockout stops the guessing");
    let r = t.post("/auth/jwt/create/", json!({"email": ADA, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "and a new mfa_token from there: {}", r.body);
    // The owner, from their own network, is not locked out and signs in.
    let r = t.post_from("198.51.100.20", "/auth/jwt/create/", json!({"email": ADA, "password": PASSWORD})).await;
    let token = r.body["mfa_token"].as_str().unwrap().to_owned();
    let body = json!({"mfa_token": token, "code": secret.code_at(t.clock_now()).unwrap()});
    let r = common::reply(
        common::dispatch(
            &t.app,
            common::request_from(
                "198.51.100.20",
                "POST",
                "/auth/mfa/verify/",
                &[("content-type", "application/json")],
                lambda_http::Body::Text(body.to_string()),
            ),
        )
        .await,
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn an_account_disabled_between_the_steps_does_not_sign_in() {
    let t = spawn_app(&[]);
    let (_, secret, _) = enrolled(&t).await;
    let token = password_step(&t).await;
    let mut user = t.user(ADA).await;
    let before = user.clone();
    user.is_active = false;
    t.app.store.update_user(&before, &user, t.clock_now()).await.unwrap();
    let r = verify(&t, json!({"mfa_token": token, "code": secret.code_at(t.clock_now()).unwrap()})).await;
    assert_eq!((r.status, r.body["code"].clone()), (StatusCode::UNAUTHORIZED, json!("mfa_token_not_valid")));
}

#[tokio::test]
async fn turning_it_off_needs_the_factor_and_the_password_once_the_sign_in_is_old() {
    let t = spawn_app(&[]);
    let (access, refresh, secret, codes) = enrolled_with_refresh(&t).await;
    // Within REAUTH_WINDOW (10 min) of the sign-in: the factor alone.
    let r = t.call("DELETE", "/auth/mfa/totp/", Some(json!({})), Some(&access)).await;
    assert_eq!((r.status, r.body), (StatusCode::BAD_REQUEST, json!({"code": ["This field is required."]})));
    let (access, _) = later(&t, &refresh, 601).await;
    let code = secret.code_at(t.clock_now()).unwrap();
    let r = t.call("DELETE", "/auth/mfa/totp/", Some(json!({"code": code})), Some(&access)).await;
    assert_eq!((r.status, r.body), (StatusCode::BAD_REQUEST, json!({"current_password": ["This field is required."]})));
    let r = t
        .call("DELETE", "/auth/mfa/totp/", Some(json!({"current_password": PASSWORD, "code": "000000"})), Some(&access))
        .await;
    assert_eq!((r.status, r.body), (StatusCode::BAD_REQUEST, json!({"code": ["Invalid code."]})));
    assert!(t.user(ADA).await.mfa_enabled);
    let body = json!({"current_password": PASSWORD, "recovery_code": codes[0]});
    let r = t.call("DELETE", "/auth/mfa/totp/", Some(body), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(t.last_mail(ADA).kind, EmailKind::MfaDisabled);
    assert!(!t.user(ADA).await.mfa_enabled);
    let mfa = t.app.store.get_mfa(&t.user(ADA).await.id, t.clock_now()).await.unwrap();
    assert_eq!((mfa.totp, mfa.recovery.macs.len()), (None, 0), "factor and codes gone");
    let r = t.post("/auth/jwt/create/", json!({"email": ADA, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::OK, "a password alone signs in again: {}", r.body);
    let r = t.call("DELETE", "/auth/mfa/totp/", Some(json!({})), Some(&access)).await;
    assert_eq!(r.body, json!({"non_field_errors": ["Two-step sign-in is not on for this account."]}));
}

#[tokio::test]
async fn new_recovery_codes_replace_the_old_set() {
    let t = spawn_app(&[]);
    let (access, refresh, secret, old) = enrolled_with_refresh(&t).await;
    let r = t.call("POST", "/auth/mfa/recovery_codes/", Some(json!({"code": "000000"})), Some(&access)).await;
    assert_eq!((r.status, r.body), (StatusCode::BAD_REQUEST, json!({"code": ["Invalid code."]})));
    let code = secret.code_at(t.clock_now()).unwrap();
    let r = t.call("POST", "/auth/mfa/recovery_codes/", Some(json!({"code": code})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(t.last_mail(ADA).kind, EmailKind::RecoveryCodesReplaced);
    let new: Vec<String> =
        r.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(new.len(), 10);
    let r = verify(&t, json!({"mfa_token": password_step(&t).await, "recovery_code": old[0]})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "the old set died");
    let r = verify(&t, json!({"mfa_token": password_step(&t).await, "recovery_code": new[0]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // An old sign-in needs the password too.
    let (access, _) = later(&t, &refresh, 601).await;
    let code = secret.code_at(t.clock_now()).unwrap();
    let r = t.call("POST", "/auth/mfa/recovery_codes/", Some(json!({"code": code})), Some(&access)).await;
    assert_eq!(r.body, json!({"current_password": ["This field is required."]}));
}

#[tokio::test]
async fn enrolling_twice_and_confirming_without_an_enrolment_are_refused() {
    let t = spawn_app(&[]);
    let (access, _) = t.active_user(ADA).await;
    let r = t.call("POST", "/auth/mfa/totp/confirm/", Some(json!({"code": "123456"})), Some(&access)).await;
    assert_eq!(r.body, json!({"non_field_errors": ["No two-step sign-in set-up is waiting for a code: start again."]}));
    // A new enrolment replaces a pending one: only the newest secret confirms.
    let first = t.call("POST", "/auth/mfa/totp/", Some(json!({"current_password": PASSWORD})), Some(&access)).await;
    let second = t.call("POST", "/auth/mfa/totp/", Some(json!({"current_password": PASSWORD})), Some(&access)).await;
    let old = TotpSecret::from_base32(first.body["secret"].as_str().unwrap()).unwrap();
    let new = TotpSecret::from_base32(second.body["secret"].as_str().unwrap()).unwrap();
    let r = t
        .call(
            "POST",
            "/auth/mfa/totp/confirm/",
            Some(json!({"code": old.code_at(t.clock_now()).unwrap()})),
            Some(&access),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = t
        .call(
            "POST",
            "/auth/mfa/totp/confirm/",
            Some(json!({"code": new.code_at(t.clock_now()).unwrap()})),
            Some(&access),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = t.call("POST", "/auth/mfa/totp/", Some(json!({"current_password": PASSWORD})), Some(&access)).await;
    assert_eq!(r.body, json!({"non_field_errors": ["Two-step sign-in is already on for this account."]}));
    // A pending enrolment expires (after 15 minutes, within the access token's life here).
    let t = spawn_app(&[("ACCESS_TOKEN_LIFETIME", "3600s")]);
    let (access, _) = t.active_user(ADA).await;
    let r = t.call("POST", "/auth/mfa/totp/", Some(json!({"current_password": PASSWORD})), Some(&access)).await;
    let secret = TotpSecret::from_base32(r.body["secret"].as_str().unwrap()).unwrap();
    t.clock.advance(901);
    let r = t
        .call(
            "POST",
            "/auth/mfa/totp/confirm/",
            Some(json!({"code": secret.code_at(t.clock_now()).unwrap()})),
            Some(&access),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(!t.user(ADA).await.mfa_enabled);
}

#[tokio::test]
async fn an_old_sign_in_proves_the_second_factor_again_for_djoser_s_sensitive_actions() {
    let t = spawn_app(&[]);
    let (access, refresh, secret, _) = enrolled_with_refresh(&t).await;
    // Fresh: djoser's body as is.
    let body = json!({"current_password": PASSWORD, "new_password": "another fine passphrase"});
    let r = t.call("POST", "/auth/users/set_password/", Some(body), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (access, _) = later(&t, &refresh, 601).await;
    let body = json!({"current_password": "another fine passphrase", "new_password": "a third passphrase here"});
    let r = t.call("POST", "/auth/users/set_password/", Some(body.clone()), Some(&access)).await;
    assert_eq!((r.status, r.body), (StatusCode::BAD_REQUEST, json!({"code": ["This field is required."]})));
    let mut with_code = body;
    with_code["code"] = json!(secret.code_at(t.clock_now()).unwrap());
    let r = t.call("POST", "/auth/users/set_password/", Some(with_code), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // Deleting the account too.
    let r = t
        .call("DELETE", "/auth/users/me/", Some(json!({"current_password": "a third passphrase here"})), Some(&access))
        .await;
    assert_eq!(r.body, json!({"code": ["This field is required."]}));
}

#[tokio::test]
async fn mfa_required_is_translated_but_its_data_is_not() {
    let t = spawn_app(&[]);
    enrolled(&t).await;
    let r = t
        .raw(
            "POST",
            "/auth/jwt/create/",
            &[("content-type", "application/json"), ("accept-language", "fr")],
            lambda_http::Body::Text(json!({"email": ADA, "password": PASSWORD}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["methods"], json!(["totp", "recovery_code"]));
    assert_eq!(r.body["code"], "mfa_required");
    assert_ne!(r.body["detail"], gatehouse_core::services::mfa::MFA_REQUIRED_DETAIL, "translated: {}", r.body);
}

#[tokio::test]
async fn staff_with_change_user_reset_a_lost_second_factor_and_nobody_else_does() {
    let t = spawn_app(&[]);
    let (ada_access, _, _) = enrolled(&t).await;
    let ada = t.user(ADA).await.id.to_string();
    let path = format!("/auth/admin/users/{ada}/mfa/");
    password_step(&t).await;
    let (viewer, _) = t.active_user("viewer@example.com").await;
    t.make_staff_with("viewer@example.com", &["auth.view_user"]).await;
    let (bob, _) = t.active_user("bob@example.com").await;
    assert_eq!(t.call("DELETE", &path, None, Some(&viewer)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        t.call("DELETE", &path, None, Some(&bob)).await.status,
        StatusCode::NOT_FOUND,
        "not staff: no such route"
    );
    assert_eq!(t.call("DELETE", &path, None, None).await.status, StatusCode::UNAUTHORIZED);
    assert!(t.user(ADA).await.mfa_enabled, "refusals change nothing");

    let (staff, _) = t.active_user("staff@example.com").await;
    t.make_staff_with("staff@example.com", &["auth.change_user"]).await;
    let r = t.call("DELETE", &path, None, Some(&staff)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(!t.user(ADA).await.mfa_enabled);
    assert_eq!(t.last_mail(ADA).kind, EmailKind::MfaDisabled);
    assert_eq!(
        t.call("GET", "/auth/users/me/", None, Some(&ada_access)).await.status,
        StatusCode::UNAUTHORIZED,
        "signed out"
    );
    assert_eq!(t.post("/auth/jwt/create/", json!({"email": ADA, "password": PASSWORD})).await.status, StatusCode::OK);
    let r = t.call("DELETE", &path, None, Some(&staff)).await;
    assert_eq!(r.body, json!({"non_field_errors": ["Two-step sign-in is not on for this account."]}));
    let stream = gatehouse_core::domain::AuditStream::Account(t.user(ADA).await.id);
    let events: Vec<String> = t
        .app
        .store
        .audit_page(&stream, None, 0, 100, t.clock_now())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    for e in ["mfa.enabled", "login.second_factor_required", "mfa.reset"] {
        assert!(events.iter().any(|x| x == e), "{e} not in the audit trail: {events:?}");
    }

    // Staff cannot take a second factor off a superuser, nor their own through this route.
    let (root, _) = t.active_user("root@example.com").await;
    t.make_superuser("root@example.com").await;
    let r = t.call("POST", "/auth/mfa/totp/", Some(json!({"current_password": PASSWORD})), Some(&root)).await;
    let secret = TotpSecret::from_base32(r.body["secret"].as_str().unwrap()).unwrap();
    let code = secret.code_at(t.clock_now()).unwrap();
    assert_eq!(
        t.call("POST", "/auth/mfa/totp/confirm/", Some(json!({"code": code})), Some(&root)).await.status,
        StatusCode::OK
    );
    let root_id = t.user("root@example.com").await.id.to_string();
    let r = t.call("DELETE", &format!("/auth/admin/users/{root_id}/mfa/"), None, Some(&staff)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = t.call("DELETE", &format!("/auth/admin/users/{root_id}/mfa/"), None, Some(&root)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "own account: {}", r.body);
    assert!(t.user("root@example.com").await.mfa_enabled);
}
