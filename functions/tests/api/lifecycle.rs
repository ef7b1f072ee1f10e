//! The account lifecycle of API.md: set/reset password, verified email change, typed codes,
//! delete, and the user admin views, in process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{reply, spawn_app, PASSWORD};
use gatehouse_core::ports::EmailKind;
use lambda_http::http::StatusCode;
use lambda_http::Body;
use serde_json::json;

const NEW: &str = "a much better passphrase";

#[tokio::test]
async fn set_password_checks_the_current_one_and_the_policy() {
    let t = spawn_app(&[("SET_PASSWORD_RETYPE", "true"), ("PASSWORD_CHANGED_EMAIL_CONFIRMATION", "true")]);
    let (access, _) = t.active_user("ada@example.com").await;
    let r = t.call("POST", "/auth/users/set_password/", Some(json!({})), Some(&access)).await;
    assert_eq!(
        r.body,
        json!({"current_password": ["This field is required."], "new_password": ["This field is required."], "re_new_password": ["This field is required."]})
    );
    let body = json!({"current_password": "wrong", "new_password": "123", "re_new_password": "124"});
    let r = t.call("POST", "/auth/users/set_password/", Some(body), Some(&access)).await;
    assert_eq!(r.body["current_password"], json!(["Invalid password."]));
    assert_eq!(r.body["new_password"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["non_field_errors"], json!(["The two password fields didn't match."]));
    let body = json!({"current_password": PASSWORD, "new_password": NEW, "re_new_password": NEW});
    let r = t.call("POST", "/auth/users/set_password/", Some(body), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(t.last_mail("ada@example.com").kind, EmailKind::PasswordChanged);
    let old = t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new = t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": NEW})).await;
    assert_eq!(new.status, StatusCode::OK);
    // Without LOGOUT_ON_PASSWORD_CHANGE the session that changed it lives on.
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.status, StatusCode::OK);
    assert_eq!(
        t.call("POST", "/auth/users/set_password/", Some(json!({})), None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_on_password_change_ends_the_other_sessions() {
    let t = spawn_app(&[("LOGOUT_ON_PASSWORD_CHANGE", "true")]);
    let (mine, _) = t.active_user("ada@example.com").await;
    let (other, other_refresh) = t.login("ada@example.com").await;
    let body = json!({"current_password": PASSWORD, "new_password": NEW});
    assert_eq!(
        t.call("POST", "/auth/users/set_password/", Some(body), Some(&mine)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&mine)).await.status, StatusCode::OK);
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&other)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.post("/auth/jwt/refresh/", json!({"refresh": other_refresh})).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn reset_password_answers_alike_and_emails_only_active_and_never_activated_accounts() {
    let t = spawn_app(&[]);
    t.active_user("ada@example.com").await;
    t.active_user("disabled@example.com").await;
    let disabled = t.user("disabled@example.com").await;
    let mut off = disabled.clone();
    off.is_active = false;
    t.app.store.update_user(&disabled, &off, t.clock_now()).await.unwrap();
    let before = t.mail.sent().len();
    for email in ["nobody@example.com", "disabled@example.com"] {
        let r = t.post("/auth/users/reset_password/", json!({"email": email})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    }
    assert_eq!(t.mail.sent().len(), before, "nothing to unknown or deactivated accounts");
    let r = t.post("/auth/users/reset_password/", json!({"email": "ADA@example.com"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let mail = t.last_mail("ada@example.com");
    assert_eq!(mail.kind, EmailKind::PasswordReset);
    assert!(mail.link.unwrap().starts_with("https://app.example.com/password/reset/confirm/"));
    let r = t.post("/auth/users/reset_password/", json!({"email": "bad"})).await;
    assert_eq!(r.body, json!({"email": ["Enter a valid email address."]}));

    let shown = spawn_app(&[("PASSWORD_RESET_SHOW_EMAIL_NOT_FOUND", "true")]);
    let r = shown.post("/auth/users/reset_password/", json!({"email": "nobody@example.com"})).await;
    assert_eq!(r.body, json!({"email": ["User with given email does not exist."]}));
}

#[tokio::test]
async fn reset_confirm_sets_the_password_and_ends_every_session() {
    let t = spawn_app(&[("PASSWORD_RESET_CONFIRM_RETYPE", "true")]);
    let (access, refresh) = t.active_user("ada@example.com").await;
    t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    let (uid, token) = t.link_parts("ada@example.com");
    let r =
        t.post("/auth/users/reset_password_confirm/", json!({"uid": uid, "token": token, "new_password": NEW})).await;
    assert_eq!(r.body, json!({"re_new_password": ["This field is required."]}));
    let body = json!({"uid": uid, "token": token, "new_password": "short", "re_new_password": "short"});
    let r = t.post("/auth/users/reset_password_confirm/", body).await;
    assert!(r.body["new_password"].is_array(), "{}", r.body);
    let r = t
        .post(
            "/auth/users/reset_password_confirm/",
            json!({"uid": "x", "token": token, "new_password": NEW, "re_new_password": NEW}),
        )
        .await;
    assert_eq!(r.body, json!({"uid": ["Invalid user id or user doesn't exist."]}));
    let body = json!({"uid": uid, "token": token, "new_password": NEW, "re_new_password": NEW});
    let r = t.post("/auth/users/reset_password_confirm/", body.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(t.last_mail("ada@example.com").kind, EmailKind::PasswordChanged);
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await.status, StatusCode::UNAUTHORIZED);
    let r = t.post("/auth/users/reset_password_confirm/", body).await;
    assert_eq!(r.body, json!({"token": ["Invalid token for given user."]}), "a reset code works once");
    let r = t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": NEW})).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn reset_codes_expire_by_the_clock() {
    let t = spawn_app(&[]);
    t.active_user("ada@example.com").await;
    t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    let (uid, token) = t.link_parts("ada@example.com");
    t.clock.advance(3600);
    let r =
        t.post("/auth/users/reset_password_confirm/", json!({"uid": uid, "token": token, "new_password": NEW})).await;
    assert_eq!(r.body, json!({"token": ["Invalid token for given user."]}));
}

#[tokio::test]
async fn codes_are_bound_to_their_purpose() {
    let t = spawn_app(&[]);
    // An activation code does not reset a password...
    let (uid, activation_token) = t.register("ada@example.com").await;
    let r = t
        .post(
            "/auth/users/reset_password_confirm/",
            json!({"uid": uid, "token": activation_token, "new_password": NEW}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // ...nor confirm an email change, and a reset code does not activate.
    let r = t.post("/auth/users/set_email_confirm/", json!({"uid": uid, "token": activation_token})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        t.post("/auth/users/activation/", json!({"uid": uid, "token": activation_token})).await.status,
        StatusCode::NO_CONTENT
    );
    t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    let (_, reset_token) = t.link_parts("ada@example.com");
    let r = t.post("/auth/users/set_email_confirm/", json!({"uid": uid, "token": reset_token})).await;
    assert_eq!(r.body, json!({"token": ["Invalid token for given user."]}));
}

#[tokio::test]
async fn ten_concurrent_reset_confirms_succeed_once() {
    let t = spawn_app(&[]);
    t.active_user("ada@example.com").await;
    t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    let (uid, token) = t.link_parts("ada@example.com");
    let mut tasks = Vec::new();
    for i in 0..10 {
        let app = t.app.clone();
        let body = json!({"uid": uid, "token": token, "new_password": format!("{NEW} {i}")}).to_string();
        tasks.push(tokio::spawn(async move {
            let req = common::request(
                "POST",
                "/auth/users/reset_password_confirm/",
                &[("content-type", "application/json")],
                Body::Text(body),
            );
            reply(common::dispatch(&app, req).await).status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::NO_CONTENT).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::BAD_REQUEST).count(), 9);
}

fn typed_code(t: &common::TestApp, to: &str) -> String {
    let text = t.last_mail(to).text;
    let line = text.lines().find(|l| l.starts_with("Or type this code: ")).expect("the email carries a code");
    let code = line.trim_start_matches("Or type this code: ").to_owned();
    assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()), "{code}");
    code
}

#[tokio::test]
async fn numeric_codes_activate_and_reset_by_email_and_die_after_five_misses() {
    let t = spawn_app(&[("CODE_FORMAT", "numeric")]);
    t.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    let code = typed_code(&t, "ada@example.com");
    let r = t.post("/auth/users/activation/", json!({"email": "ada@example.com"})).await;
    assert_eq!(r.body, json!({"code": ["This field is required."]}));
    let r = t.post("/auth/users/activation/", json!({"email": "nobody@example.com", "code": code})).await;
    assert_eq!(r.body, json!({"code": ["Invalid or expired code."]}));
    let r = t.post("/auth/users/activation/", json!({"email": "ADA@example.com", "code": code})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    let code = typed_code(&t, "ada@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let r = t
            .post(
                "/auth/users/reset_password_confirm/",
                json!({"email": "ada@example.com", "code": wrong, "new_password": NEW}),
            )
            .await;
        assert_eq!(r.body, json!({"code": ["Invalid or expired code."]}));
    }
    let r = t
        .post(
            "/auth/users/reset_password_confirm/",
            json!({"email": "ada@example.com", "code": code, "new_password": NEW}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "the code died after five wrong guesses");

    t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    let code = typed_code(&t, "ada@example.com");
    let r = t
        .post(
            "/auth/users/reset_password_confirm/",
            json!({"email": "ada@example.com", "code": code, "new_password": NEW}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

#[tokio::test]
async fn email_change_waits_for_the_new_address() {
    let t = spawn_app(&[]);
    let (access, _) = t.active_user("ada@example.com").await;
    t.active_user("grace@example.com").await;
    let r = t
        .call(
            "POST",
            "/auth/users/set_email/",
            Some(json!({"current_password": "nope", "new_email": "x"})),
            Some(&access),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"current_password": ["Invalid password."], "new_email": ["Enter a valid email address."]})
    );
    let taken = json!({"current_password": PASSWORD, "new_email": "GRACE@example.com"});
    let r = t.call("POST", "/auth/users/set_email/", Some(taken), Some(&access)).await;
    assert_eq!(r.body, json!({"new_email": ["user with this email address already exists."]}));

    let body = json!({"current_password": PASSWORD, "new_email": "countess@example.com"});
    let r = t.call("POST", "/auth/users/set_email/", Some(body), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let confirm = t.last_mail("countess@example.com");
    assert_eq!(confirm.kind, EmailKind::EmailChange);
    assert!(confirm.link.as_deref().unwrap().starts_with("https://app.example.com/email/change/confirm/"));
    let notice = t.last_mail("ada@example.com");
    assert_eq!(notice.kind, EmailKind::EmailChanged);
    assert!(notice.text.contains("countess@example.com") && notice.link.is_none());
    // Nothing changed yet.
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.body["email"], "ada@example.com");

    let (uid, token) = t.link_parts("countess@example.com");
    let r = t.post("/auth/users/set_email_confirm/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.body["email"], "countess@example.com");
    let r = t.post("/auth/users/set_email_confirm/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.body, json!({"token": ["Invalid token for given user."]}));
    assert_eq!(
        t.post("/auth/jwt/create/", json!({"email": "countess@example.com", "password": PASSWORD})).await.status,
        StatusCode::OK
    );
    assert_eq!(
        t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD})).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The old address is free.
    assert_eq!(
        t.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn email_change_loses_to_a_registration_that_took_the_address_meanwhile() {
    let t = spawn_app(&[("SET_USERNAME_RETYPE", "true")]);
    let (access, _) = t.active_user("ada@example.com").await;
    let body =
        json!({"current_password": PASSWORD, "new_email": "countess@example.com", "re_new_email": "other@example.com"});
    let r = t.call("POST", "/auth/users/set_email/", Some(body), Some(&access)).await;
    assert_eq!(r.body, json!({"non_field_errors": ["The two email fields didn't match."]}));
    let body = json!({"current_password": PASSWORD, "new_email": "countess@example.com", "re_new_email": "Countess@example.com"});
    assert_eq!(
        t.call("POST", "/auth/users/set_email/", Some(body), Some(&access)).await.status,
        StatusCode::NO_CONTENT
    );
    let (uid, token) = t.link_parts("countess@example.com");
    assert_eq!(
        t.post("/auth/users/", json!({"email": "countess@example.com", "password": PASSWORD})).await.status,
        StatusCode::CREATED
    );
    let r = t.post("/auth/users/set_email_confirm/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.body, json!({"non_field_errors": ["user with this email address already exists."]}));
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.body["email"], "ada@example.com");
    assert_eq!(t.memory.as_ref().unwrap().email_claim_count(), 2, "no orphan claim");
}

#[tokio::test]
async fn email_change_without_verification_is_immediate() {
    let t = spawn_app(&[("EMAIL_CHANGE_VERIFICATION", "false")]);
    let (access, _) = t.active_user("ada@example.com").await;
    let body = json!({"current_password": PASSWORD, "new_email": "countess@example.com"});
    assert_eq!(
        t.call("POST", "/auth/users/set_email/", Some(body), Some(&access)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.body["email"], "countess@example.com");
    assert_eq!(t.last_mail("ada@example.com").kind, EmailKind::EmailChanged);
}

#[tokio::test]
async fn deleting_me_needs_the_password_and_removes_everything() {
    let t = spawn_app(&[]);
    let (access, refresh) = t.active_user("ada@example.com").await;
    let r = t.call("DELETE", "/auth/users/me/", Some(json!({})), Some(&access)).await;
    assert_eq!(r.body, json!({"current_password": ["This field is required."]}));
    let r = t.call("DELETE", "/auth/users/me/", Some(json!({"current_password": "nope"})), Some(&access)).await;
    assert_eq!(r.body, json!({"current_password": ["Invalid password."]}));
    let r = t.call("DELETE", "/auth/users/me/", Some(json!({"current_password": PASSWORD})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let store = t.memory.as_ref().unwrap();
    assert_eq!((store.user_count(), store.email_claim_count()), (0, 0));
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn users_are_listed_to_staff_and_hidden_from_others() {
    let t = spawn_app(&[]);
    let (ada, _) = t.active_user("ada@example.com").await;
    for i in 0..4 {
        t.active_user(&format!("user{i}@example.com")).await;
    }
    let r = t.call("GET", "/auth/users/", None, Some(&ada)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["results"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["results"][0]["email"], "ada@example.com");
    assert_eq!(r.body["next"], json!(null));
    assert_eq!(t.call("GET", "/auth/users/", None, None).await.status, StatusCode::UNAUTHORIZED);

    t.make_staff("ada@example.com").await;
    let mut seen = Vec::new();
    let mut path = "/auth/users/?limit=2".to_owned();
    loop {
        let r = t.call("GET", &path, None, Some(&ada)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let results = r.body["results"].as_array().unwrap();
        assert!(results.len() <= 2);
        seen.extend(results.iter().map(|u| u["email"].as_str().unwrap().to_owned()));
        match r.body["next"].as_str() {
            Some(next) => path = next.to_owned(),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen.len(), 5);
    let r = t.call("GET", "/auth/users/?email=USER2@example.com", None, Some(&ada)).await;
    assert_eq!(r.body["results"][0]["email"], "user2@example.com");
    assert_eq!(t.call("GET", "/auth/users/?limit=0", None, Some(&ada)).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(t.call("GET", "/auth/users/?cursor=%%%", None, Some(&ada)).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn user_detail_is_for_staff_or_self() {
    let t = spawn_app(&[]);
    let (ada, _) = t.active_user("ada@example.com").await;
    let (grace, grace_refresh) = t.active_user("grace@example.com").await;
    let grace_id = t.user("grace@example.com").await.id.to_string();
    let ada_id = t.user("ada@example.com").await.id.to_string();
    let path = format!("/auth/users/{grace_id}/");
    assert_eq!(t.call("GET", &path, None, Some(&ada)).await.status, StatusCode::NOT_FOUND, "HIDE_USERS hides others");
    assert_eq!(t.call("GET", &path, None, Some(&grace)).await.body["id"], grace_id.as_str());
    let r = t.call("PATCH", &path, Some(json!({"is_staff": true, "first_name": "Grace"})), Some(&grace)).await;
    assert_eq!(
        (r.body["is_staff"].clone(), r.body["first_name"].clone()),
        (json!(false), json!("Grace")),
        "flags are read-only to non-staff"
    );
    assert_eq!(t.call("GET", "/auth/users/not-a-uuid/", None, Some(&ada)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.call("GET", "/auth/users/activation/", None, Some(&ada)).await.status, StatusCode::METHOD_NOT_ALLOWED);

    t.make_staff_with("ada@example.com", &["auth.add_group"]).await;
    for name in ["editors", "reviewers"] {
        let r = t.call("POST", "/auth/admin/groups/", Some(json!({"name": name})), Some(&ada)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = t.call("PATCH", &path, Some(json!({"groups": ["nope"]})), Some(&ada)).await;
    assert_eq!(r.body, json!({"groups": ["Invalid group \"nope\" - object does not exist."]}));
    let r = t
        .call(
            "PATCH",
            &path,
            Some(json!({"groups": ["editors", "editors", "reviewers"], "is_staff": false})),
            Some(&ada),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["groups"], json!(["editors", "reviewers"]));
    assert_eq!(r.body["is_staff"], false, "sending back the flag as it is is fine; setting it is a superuser's");
    let r = t.call("PATCH", &path, Some(json!({"groups": "editors"})), Some(&ada)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Disabling ends the account's sessions at once.
    let r = t.call("PATCH", &path, Some(json!({"is_active": false})), Some(&ada)).await;
    assert_eq!(r.body["is_active"], false);
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&grace)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.post("/auth/jwt/refresh/", json!({"refresh": grace_refresh})).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.post("/auth/jwt/create/", json!({"email": "grace@example.com", "password": PASSWORD})).await.status,
        StatusCode::FORBIDDEN
    );
    // Staff delete with their own password.
    let r = t.call("DELETE", &path, Some(json!({"current_password": PASSWORD})), Some(&ada)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(t.call("GET", &path, None, Some(&ada)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.call("GET", &format!("/auth/users/{ada_id}"), None, Some(&ada)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn without_hide_users_others_get_403() {
    let t = spawn_app(&[("HIDE_USERS", "false")]);
    let (ada, _) = t.active_user("ada@example.com").await;
    t.active_user("grace@example.com").await;
    let grace_id = t.user("grace@example.com").await.id;
    let r = t.call("GET", &format!("/auth/users/{grace_id}/"), None, Some(&ada)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["code"], "permission_denied");
    assert_eq!(t.call("GET", "/auth/users/", None, Some(&ada)).await.body["results"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn login_after_activation_and_confirmation_email() {
    let t = spawn_app(&[("LOGIN_AFTER_ACTIVATION", "true"), ("SEND_CONFIRMATION_EMAIL", "true")]);
    let (uid, token) = t.register("ada@example.com").await;
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(t.last_mail("ada@example.com").kind, EmailKind::Confirmation);
    let me = t.call("GET", "/auth/users/me/", None, r.body["access"].as_str()).await;
    assert_eq!(me.body["is_active"], true);
}

#[tokio::test]
async fn the_sign_in_of_an_activation_carries_the_groups_an_admin_gave_before() {
    // Staff may put an account in a group before it is activated: the activation's tokens name
    // it (the group read the function's role must allow).
    let t = spawn_app(&[("LOGIN_AFTER_ACTIVATION", "true")]);
    let (uid, token) = t.register("ada@example.com").await;
    t.make_staff_with("ada@example.com", &[]).await;
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let claims = t
        .app
        .tokens
        .verify(r.body["access"].as_str().unwrap(), gatehouse_core::tokens::TokenType::Access, t.clock_now())
        .await
        .unwrap();
    assert_eq!(claims.groups, Some(vec!["holds-ada@example.com".to_owned()]));
}

#[tokio::test]
async fn the_owner_of_an_address_a_stranger_registered_takes_it_over_by_resetting() {
    let t = spawn_app(&[]);
    // A stranger registers the owner's address with a password of their own.
    let r = t.post("/auth/users/", json!({"email": "owner@example.com", "password": "strangers horse battery"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let (uid, strangers_token) = t.link_parts("owner@example.com");
    // Registering again keeps djoser's 400; the owner resets instead, from the mailbox.
    let again = t.post("/auth/users/", json!({"email": "owner@example.com", "password": PASSWORD})).await;
    assert_eq!(again.body, json!({"email": ["user with this email address already exists."]}));
    assert_eq!(
        t.post("/auth/users/reset_password/", json!({"email": "owner@example.com"})).await.status,
        StatusCode::NO_CONTENT
    );
    let mail = t.last_mail("owner@example.com");
    assert_eq!(mail.kind, EmailKind::PasswordReset);
    let (uid2, token) = t.link_parts("owner@example.com");
    assert_eq!(uid2, uid);
    let r =
        t.post("/auth/users/reset_password_confirm/", json!({"uid": uid, "token": token, "new_password": NEW})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // The account is the owner's: active, no expiry, the owner's password; the stranger's password
    // and activation link are dead.
    let stored = t.user("owner@example.com").await;
    assert!(stored.is_active && stored.expires_at.is_none());
    let login = |password: &'static str| {
        t.post("/auth/jwt/create/", json!({"email": "owner@example.com", "password": password}))
    };
    assert_eq!(login("strangers horse battery").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(login(NEW).await.status, StatusCode::OK);
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": strangers_token})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

/// The `{uid, token}` of the newest link emailed to `to`, as a JSON body.
fn link_body(t: &common::TestApp, to: &str) -> serde_json::Value {
    let (uid, token) = t.link_parts(to);
    json!({"uid": uid, "token": token})
}

#[tokio::test]
async fn link_tokens_are_never_burned_and_codes_are_typed_only_when_numeric() {
    let t = spawn_app(&[]);
    let (uid, token) = t.register("ada@example.com").await;
    // Anyone can post wrong tokens at Ada's uid: her link keeps working.
    for i in 0..20 {
        let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": format!("guess{i}")})).await;
        assert_eq!(r.body, json!({"token": ["Invalid token for given user."]}));
    }
    // {email, code} is not a way in with 256-bit links: it is a request without uid and token.
    let r = t.post("/auth/users/activation/", json!({"email": "ada@example.com", "code": token})).await;
    assert_eq!(r.body, json!({"uid": ["This field is required."], "token": ["This field is required."]}));
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

#[tokio::test]
async fn asking_for_new_codes_does_not_reset_the_guess_budget() {
    let t = spawn_app(&[("CODE_FORMAT", "numeric"), ("CODE_GUESS_BUDGET", "6/1h")]);
    t.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    let wrong = |code: &str| if code == "000000" { "111111".to_owned() } else { "000000".to_owned() };
    // Three codes in a row, two wrong guesses at each: the account's budget of six is spent.
    for _ in 0..3 {
        t.clock.advance(61);
        t.post("/auth/users/resend_activation/", json!({"email": "ada@example.com"})).await;
        let code = typed_code(&t, "ada@example.com");
        for _ in 0..2 {
            let r = t.post("/auth/users/activation/", json!({"email": "ada@example.com", "code": wrong(&code)})).await;
            assert_eq!(r.body, json!({"code": ["Invalid or expired code."]}));
        }
    }
    t.clock.advance(61);
    t.post("/auth/users/resend_activation/", json!({"email": "ada@example.com"})).await;
    let code = typed_code(&t, "ada@example.com");
    let right = json!({"email": "ada@example.com", "code": code});
    let r = t.post("/auth/users/activation/", right.clone()).await;
    assert_eq!(r.body, json!({"code": ["Invalid or expired code."]}), "refused unseen, like a wrong code");
    assert!(!t.user("ada@example.com").await.is_active);
    t.clock.advance(3600);
    assert_eq!(t.post("/auth/users/activation/", right).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn activation_answers_a_wrong_code_alike_for_every_account_state() {
    let t = spawn_app(&[("CODE_FORMAT", "numeric")]);
    t.post("/auth/users/", json!({"email": "active@example.com", "password": PASSWORD})).await;
    let spent = typed_code(&t, "active@example.com");
    let r = t.post("/auth/users/activation/", json!({"email": "active@example.com", "code": spent})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    t.post("/auth/users/", json!({"email": "pending@example.com", "password": PASSWORD})).await;
    let wrong = |code: &str| if code == "000000" { "111111".to_owned() } else { "000000".to_owned() };
    let answers: Vec<_> = ["active@example.com", "pending@example.com", "nobody@example.com"]
        .into_iter()
        .map(|email| json!({"email": email, "code": wrong(&spent)}))
        .collect();
    let mut seen = Vec::new();
    for body in answers {
        let r = t.post("/auth/users/activation/", body).await;
        seen.push((r.status, r.body));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    assert_eq!(seen[0].0, StatusCode::BAD_REQUEST);
    // Only the right code, spent already, tells an active account: djoser's stale_token.
    let r = t.post("/auth/users/activation/", json!({"email": "active@example.com", "code": spent})).await;
    assert_eq!(r.body, json!({"detail": "Stale token for given user.", "code": "stale_token"}));
}

#[tokio::test]
async fn reset_confirm_judges_the_code_before_the_password_and_a_refused_password_spends_nothing() {
    let t = spawn_app(&[("CODE_FORMAT", "numeric")]);
    t.active_user("ada@example.com").await;
    t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    let code = typed_code(&t, "ada@example.com");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // A weak password with a wrong code: the same answer for a known and an unknown address.
    let known = t
        .post(
            "/auth/users/reset_password_confirm/",
            json!({"email": "ada@example.com", "code": wrong, "new_password": "123"}),
        )
        .await;
    let unknown = t
        .post(
            "/auth/users/reset_password_confirm/",
            json!({"email": "nobody@example.com", "code": wrong, "new_password": "123"}),
        )
        .await;
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    assert_eq!(known.body, json!({"code": ["Invalid or expired code."]}));
    // The right code with a weak password: the policy speaks, and the code is still good.
    let r = t
        .post(
            "/auth/users/reset_password_confirm/",
            json!({"email": "ada@example.com", "code": code, "new_password": "123"}),
        )
        .await;
    assert!(r.body["new_password"].as_array().is_some_and(|m| !m.is_empty()), "{}", r.body);
    let r = t
        .post(
            "/auth/users/reset_password_confirm/",
            json!({"email": "ada@example.com", "code": code, "new_password": NEW}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

#[tokio::test]
async fn resend_and_reset_answer_no_sooner_than_the_timing_floor_whatever_the_address() {
    let t = spawn_app(&[("TIMING_FLOOR", "60ms")]);
    t.active_user("active@example.com").await;
    t.register("pending@example.com").await;
    for path in ["/auth/users/resend_activation/", "/auth/users/reset_password/"] {
        for email in ["active@example.com", "pending@example.com", "nobody@example.com"] {
            let started = std::time::Instant::now();
            let r = t.post(path, json!({"email": email})).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
            assert!(
                started.elapsed() >= std::time::Duration::from_millis(60),
                "{path} {email}: {:?}",
                started.elapsed()
            );
        }
    }
}

#[tokio::test]
async fn set_email_cannot_spray_mail_and_its_mail_carries_nothing_of_the_account() {
    let t = spawn_app(&[("EMAIL_COOLDOWN", "60s"), ("RATE_SET_EMAIL_IP", "3/1h")]);
    let (access, _) = t.active_user("ada@example.com").await;
    let r = t
        .call(
            "PATCH",
            "/auth/users/me/",
            Some(json!({"first_name": "Buy <b>pills</b> at spam.example"})),
            Some(&access),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let change = |to: &str| json!({"current_password": PASSWORD, "new_email": to});
    let r = t.call("POST", "/auth/users/set_email/", Some(change("victim1@example.com")), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let mail = t.last_mail("victim1@example.com");
    for leak in ["pills", "spam.example", "ada@example.com"] {
        assert!(!mail.text.contains(leak) && !mail.html.contains(leak) && !mail.subject.contains(leak), "{leak}");
    }
    // One request per account per cooldown.
    let r = t.call("POST", "/auth/users/set_email/", Some(change("victim2@example.com")), Some(&access)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(t.mail.last_to("victim2@example.com").is_none());
    // And a budget per IP, whatever the account.
    t.clock.advance(60);
    t.call("POST", "/auth/users/set_email/", Some(change("victim3@example.com")), Some(&access)).await;
    t.clock.advance(60);
    let r = t.call("POST", "/auth/users/set_email/", Some(change("victim4@example.com")), Some(&access)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(t.mail.last_to("victim4@example.com").is_none());
}

/// What kills a user's outstanding codes.
#[derive(Clone, Copy, Debug)]
enum SecurityEvent {
    PasswordReset,
    PasswordChange,
    LogOutEverywhere,
    Deactivation,
}

async fn befall(t: &common::TestApp, access: &str, event: SecurityEvent) {
    match event {
        SecurityEvent::PasswordReset => {
            t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
            let (uid, token) = t.link_parts("ada@example.com");
            let body = json!({"uid": uid, "token": token, "new_password": NEW});
            let r = t.post("/auth/users/reset_password_confirm/", body).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        }
        SecurityEvent::PasswordChange => {
            let body = json!({"current_password": PASSWORD, "new_password": NEW});
            let r = t.call("POST", "/auth/users/set_password/", Some(body), Some(access)).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        }
        SecurityEvent::LogOutEverywhere => {
            assert_eq!(t.call("DELETE", "/auth/sessions/", None, Some(access)).await.status, StatusCode::NO_CONTENT);
        }
        SecurityEvent::Deactivation => {
            let u = t.user("ada@example.com").await;
            let mut off = u.clone();
            off.is_active = false;
            t.app.store.update_user(&u, &off, t.clock_now()).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_pending_email_change_link_dies_at_every_security_event() {
    use SecurityEvent::*;
    for event in [PasswordReset, PasswordChange, LogOutEverywhere, Deactivation] {
        let t = spawn_app(&[]);
        let (access, _) = t.active_user("ada@example.com").await;
        let body = json!({"current_password": PASSWORD, "new_email": "new@example.com"});
        assert_eq!(
            t.call("POST", "/auth/users/set_email/", Some(body), Some(&access)).await.status,
            StatusCode::NO_CONTENT
        );
        let link = link_body(&t, "new@example.com");
        befall(&t, &access, event).await;
        let r = t.post("/auth/users/set_email_confirm/", link).await;
        assert_eq!(r.body, json!({"token": ["Invalid token for given user."]}), "after {event:?}");
        assert_eq!(t.user("ada@example.com").await.email.as_str(), "ada@example.com", "after {event:?}");
    }
}
