//! `DELETE_ME_MODE` and deactivated accounts: deleting one's own account removes it (`delete`,
//! djoser's) or keeps it inactive with every token and session revoked (`deactivate`); and an
//! account that was active and then deactivated (by itself or by an admin) never activates itself
//! again through `resend_activation` / `activation` (or a reset link): only an admin brings it
//! back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{spawn_app, spawn_app_dynamo, Reply, TestApp, PASSWORD};
use gatehouse_core::ports::EmailKind;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

const DEACTIVATE: (&str, &str) = ("DELETE_ME_MODE", "deactivate");
const EMAIL_TAKEN: &str = "user with this email address already exists.";

fn answer(r: &Reply) -> (StatusCode, Value) {
    (r.status, r.body.clone())
}

/// A staff member's access token (`root@example.com`).
async fn staff(t: &TestApp) -> String {
    t.active_user("root@example.com").await;
    t.make_staff("root@example.com").await;
    t.login("root@example.com").await.0
}

async fn delete_me(t: &TestApp, access: &str) -> Reply {
    t.call("DELETE", "/auth/users/me/", Some(json!({"current_password": PASSWORD})), Some(access)).await
}

async fn login_answer(t: &TestApp, email: &str) -> (StatusCode, Value) {
    answer(&t.post("/auth/jwt/create/", json!({"email": email, "password": PASSWORD})).await)
}

/// Emails sent to `to` so far.
fn mail_count(t: &TestApp, to: &str) -> usize {
    t.mail.sent().iter().filter(|m| m.to.eq_ignore_ascii_case(to)).count()
}

/// Asks for a new activation link for `email` as the account's owner would, then tries every
/// link ever mailed to it; returns the resend's answer and each activation's.
async fn try_to_self_reactivate(t: &TestApp, email: &str) -> ((StatusCode, Value), Vec<(StatusCode, Value)>) {
    let resend = answer(&t.post("/auth/users/resend_activation/", json!({"email": email})).await);
    let mut tries = Vec::new();
    for link in t.mail.sent().into_iter().filter(|m| m.to.eq_ignore_ascii_case(email)).filter_map(|m| m.link) {
        if !link.contains("/activate/") {
            continue;
        }
        let mut parts = link.rsplit('/');
        let (token, uid) = (parts.next().unwrap(), parts.next().unwrap());
        tries.push(answer(&t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await));
    }
    (resend, tries)
}

#[tokio::test]
async fn delete_me_mode_delete_removes_the_account_as_djoser_does() {
    let t = spawn_app(&[("DELETE_ME_MODE", "delete")]);
    let (access, refresh) = t.active_user("ada@example.com").await;
    let r = delete_me(&t, &access).await;
    assert_eq!((r.status, &r.body), (StatusCode::NO_CONTENT, &Value::Null));
    let store = t.memory.as_ref().unwrap();
    assert_eq!((store.user_count(), store.email_claim_count()), (0, 0));
    assert_eq!(t.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await.status, StatusCode::UNAUTHORIZED);
    let again = t.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(again.status, StatusCode::CREATED, "the address is free again");
}

#[tokio::test]
async fn delete_me_mode_deactivate_keeps_the_account_inactive_and_revokes_everything() {
    let t = spawn_app(&[DEACTIVATE]);
    let root = staff(&t).await;
    let (access, refresh) = t.active_user("ada@example.com").await;
    let (other_access, other_refresh) = t.login("ada@example.com").await;
    // A never-activated account and one an admin disabled: what "inactive" answers look like.
    t.register("pending@example.com").await;
    t.active_user("disabled@example.com").await;
    let disabled_id = t.user("disabled@example.com").await.id;
    let r =
        t.call("PATCH", &format!("/auth/users/{disabled_id}/"), Some(json!({"is_active": false})), Some(&root)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The same checks as a deletion.
    let r = t.call("DELETE", "/auth/users/me/", Some(json!({})), Some(&access)).await;
    assert_eq!(r.body, json!({"current_password": ["This field is required."]}));
    let r = t.call("DELETE", "/auth/users/me/", Some(json!({"current_password": "nope"})), Some(&access)).await;
    assert_eq!(r.body, json!({"current_password": ["Invalid password."]}));
    assert!(t.user("ada@example.com").await.is_active, "a refused request changes nothing");

    t.clock.advance(5);
    let r = delete_me(&t, &access).await;
    assert_eq!((r.status, &r.body), (StatusCode::NO_CONTENT, &Value::Null));

    // Kept, inactive, marked, with its claims.
    let ada = t.user("ada@example.com").await;
    assert!(!ada.is_active);
    assert_eq!(ada.deactivated_at, Some(t.clock_now()));
    assert_eq!(ada.expires_at, None);
    assert!(ada.tokens_valid_after > common::T0, "every earlier token is refused");
    let again = t.post("/auth/users/", json!({"email": "ADA@example.com", "password": PASSWORD})).await;
    assert_eq!(again.body, json!({"email": [EMAIL_TAKEN]}), "the address stays taken");
    // Every session and token refused.
    assert!(t.app.store.list_sessions(&ada.id, t.clock_now()).await.unwrap().is_empty());
    for a in [&access, &other_access] {
        assert_eq!(t.call("GET", "/auth/users/me/", None, Some(a)).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(t.call("GET", "/auth/sessions/", None, Some(a)).await.status, StatusCode::UNAUTHORIZED);
    }
    for r in [&refresh, &other_refresh] {
        assert_eq!(t.post("/auth/jwt/refresh/", json!({"refresh": r})).await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(t.post("/auth/jwt/verify/", json!({"token": r})).await.status, StatusCode::UNAUTHORIZED);
    }
    // Logging in answers as for any inactive account.
    let inactive = login_answer(&t, "ada@example.com").await;
    assert_eq!(inactive.0, StatusCode::FORBIDDEN);
    assert_eq!(inactive.1["code"], "account_inactive");
    assert_eq!(login_answer(&t, "disabled@example.com").await, inactive);
    assert_eq!(login_answer(&t, "pending@example.com").await, inactive);
    let wrong = t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": "wrong one"})).await;
    let unknown = t.post("/auth/jwt/create/", json!({"email": "nobody@example.com", "password": "wrong one"})).await;
    assert_eq!(answer(&wrong), answer(&unknown));

    // No way back by email: resend answers as for an unknown address and sends nothing; the old
    // activation link answers as a wrong one.
    let mailed = mail_count(&t, "ada@example.com");
    let nobody = answer(&t.post("/auth/users/resend_activation/", json!({"email": "nobody@example.com"})).await);
    let (resend, tries) = try_to_self_reactivate(&t, "ada@example.com").await;
    assert_eq!(resend, nobody);
    assert_eq!(mail_count(&t, "ada@example.com"), mailed, "nothing sent");
    assert!(!tries.is_empty());
    let uid = gatehouse_core::secrets::encode_uid(&ada.id);
    let wrong_token = answer(&t.post("/auth/users/activation/", json!({"uid": uid, "token": "x".repeat(43)})).await);
    assert_eq!(wrong_token, (StatusCode::BAD_REQUEST, json!({"token": ["Invalid token for given user."]})));
    assert!(tries.iter().all(|a| *a == wrong_token), "{tries:?}");
    // Nor through a reset link (which activates a never-activated account).
    let r = t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(mail_count(&t, "ada@example.com"), mailed, "no reset link to a deactivated account");
    assert!(!t.user("ada@example.com").await.is_active);

    // An admin brings it back; the mark goes.
    let r = t.call("PATCH", &format!("/auth/users/{}/", ada.id), Some(json!({"is_active": true})), Some(&root)).await;
    assert_eq!((r.status, &r.body["is_active"]), (StatusCode::OK, &json!(true)), "{}", r.body);
    let back = t.user("ada@example.com").await;
    assert!(back.is_active && back.deactivated_at.is_none(), "{back:?}");
    let (access, _) = t.login("ada@example.com").await;
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.body["email"], "ada@example.com");
    // The old tokens stay dead.
    assert_eq!(t.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn deleting_ones_own_account_by_id_follows_the_mode_and_admins_still_delete_others() {
    let t = spawn_app(&[DEACTIVATE]);
    let root = staff(&t).await;
    let (ada, _) = t.active_user("ada@example.com").await;
    let ada_id = t.user("ada@example.com").await.id;
    let body = json!({"current_password": PASSWORD});
    let r = t.call("DELETE", &format!("/auth/users/{ada_id}/"), Some(body.clone()), Some(&ada)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let kept = t.user("ada@example.com").await;
    assert!(!kept.is_active && kept.deactivated_at.is_some(), "{kept:?}");
    // Staff deleting another account removes it, whatever the mode.
    let r = t.call("DELETE", &format!("/auth/users/{ada_id}/"), Some(body), Some(&root)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let e = gatehouse_core::domain::Email::parse("ada@example.com").unwrap();
    assert!(t.app.store.find_user_by_email(&e, t.clock_now()).await.unwrap().is_none());
}

/// The security fix: an account an admin disabled used to get a fresh activation link from
/// `resend_activation` and activate itself with it.
#[tokio::test]
async fn an_account_an_admin_disabled_cannot_reactivate_itself_by_email() {
    for format in ["link", "numeric"] {
        let t = spawn_app(&[("CODE_FORMAT", format)]);
        let root = staff(&t).await;
        t.active_user("ada@example.com").await;
        let id = t.user("ada@example.com").await.id;
        let r = t.call("PATCH", &format!("/auth/users/{id}/"), Some(json!({"is_active": false})), Some(&root)).await;
        assert_eq!(r.status, StatusCode::OK, "{format}: {}", r.body);
        let off = t.user("ada@example.com").await;
        assert!(!off.is_active && off.deactivated_at == Some(t.clock_now()), "{format}: {off:?}");

        let mailed = mail_count(&t, "ada@example.com");
        let nobody = answer(&t.post("/auth/users/resend_activation/", json!({"email": "nobody@example.com"})).await);
        let (resend, tries) = try_to_self_reactivate(&t, "ada@example.com").await;
        assert_eq!(resend, nobody, "{format}: answered as for an unknown address");
        assert_eq!(mail_count(&t, "ada@example.com"), mailed, "{format}: no activation email to a disabled account");
        assert!(tries.iter().all(|a| a.0 == StatusCode::BAD_REQUEST), "{format}: {tries:?}");
        if format == "numeric" {
            // Typing the last code mailed (the registration's, spent) is a wrong code too.
            let code = t.last_mail("ada@example.com").text.split("code: ").nth(1).unwrap()[..6].to_owned();
            let r = t.post("/auth/users/activation/", json!({"email": "ada@example.com", "code": code})).await;
            assert_eq!(r.body, json!({"code": ["Invalid or expired code."]}), "{format}");
        }
        assert!(!t.user("ada@example.com").await.is_active, "{format}: still disabled");
        assert_eq!(login_answer(&t, "ada@example.com").await.1["code"], "account_inactive", "{format}");
        // The admin's way back works.
        let r = t.call("PATCH", &format!("/auth/users/{id}/"), Some(json!({"is_active": true})), Some(&root)).await;
        assert_eq!(r.status, StatusCode::OK, "{format}: {}", r.body);
        t.login("ada@example.com").await;
    }
}

#[tokio::test]
async fn an_account_disabled_before_the_mark_existed_or_with_a_leftover_expiry_stays_disabled() {
    let t = spawn_app(&[]);
    let root = staff(&t).await;
    // Disabled before `deactivated_at` existed: inactive, no expiry, no mark.
    t.active_user("legacy@example.com").await;
    let u = t.user("legacy@example.com").await;
    let off = gatehouse_core::domain::User { is_active: false, ..u.clone() };
    t.app.store.update_user(&u, &off, t.clock_now()).await.unwrap();
    assert_eq!(t.user("legacy@example.com").await.deactivated_at, None);
    // Activated by an admin before it was ever activated by email, by an earlier version that left
    // the registration's expiry on it (written here straight into the store), then disabled.
    t.register("early@example.com").await;
    let pending = t.user("early@example.com").await;
    let on = gatehouse_core::domain::User { is_active: true, ..pending.clone() };
    t.app.store.update_user(&pending, &on, t.clock_now()).await.unwrap();
    let path = format!("/auth/users/{}/", pending.id);
    let r = t.call("PATCH", &path, Some(json!({"is_active": false})), Some(&root)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stored = t.user("early@example.com").await;
    assert!(!stored.is_active && stored.expires_at.is_some() && stored.deactivated_at.is_some(), "{stored:?}");
    for email in ["legacy@example.com", "early@example.com"] {
        let mailed = mail_count(&t, email);
        let (resend, tries) = try_to_self_reactivate(&t, email).await;
        assert_eq!(resend.0, StatusCode::NO_CONTENT, "{email}");
        assert_eq!(t.post("/auth/users/reset_password/", json!({"email": email})).await.status, StatusCode::NO_CONTENT);
        assert_eq!(mail_count(&t, email), mailed, "{email}: neither an activation nor a reset link");
        assert!(tries.iter().all(|a| a.0 == StatusCode::BAD_REQUEST), "{email}: {tries:?}");
        assert!(!t.user(email).await.is_active, "{email}");
    }
}

#[tokio::test]
async fn a_never_activated_account_still_gets_and_uses_a_new_activation_link() {
    let t = spawn_app(&[DEACTIVATE]);
    t.register("ada@example.com").await;
    let r = t.post("/auth/users/resend_activation/", json!({"email": "ada@example.com"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(t.mail.sent().iter().filter(|m| m.kind == EmailKind::Activation).count(), 2);
    let (uid, token) = t.link_parts("ada@example.com");
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    t.login("ada@example.com").await;
}

#[tokio::test]
async fn deactivation_is_stored_and_cleared_in_dynamodb() {
    let t = spawn_app_dynamo(&[DEACTIVATE]).await;
    let root = staff(&t).await;
    let (access, refresh) = t.active_user("ada@example.com").await;
    t.clock.advance(3);
    assert_eq!(delete_me(&t, &access).await.status, StatusCode::NO_CONTENT);
    let ada = t.user("ada@example.com").await;
    assert_eq!((ada.is_active, ada.deactivated_at), (false, Some(t.clock_now())));
    assert!(t.app.store.list_sessions(&ada.id, t.clock_now()).await.unwrap().is_empty());
    assert_eq!(t.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await.status, StatusCode::UNAUTHORIZED);
    let mailed = mail_count(&t, "ada@example.com");
    let (resend, tries) = try_to_self_reactivate(&t, "ada@example.com").await;
    assert_eq!(resend.0, StatusCode::NO_CONTENT);
    assert_eq!(mail_count(&t, "ada@example.com"), mailed);
    assert!(tries.iter().all(|a| a.0 == StatusCode::BAD_REQUEST), "{tries:?}");
    let again = t.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(again.body, json!({"email": [EMAIL_TAKEN]}));
    let r = t.call("PATCH", &format!("/auth/users/{}/", ada.id), Some(json!({"is_active": true})), Some(&root)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let back = t.user("ada@example.com").await;
    assert_eq!((back.is_active, back.deactivated_at), (true, None));
    t.login("ada@example.com").await;
}

#[tokio::test]
async fn an_admin_activating_a_pending_account_ends_its_expiry_and_its_claims_expiry() {
    // On the memory store and on DynamoDB: the store's own activation clears every expiry.
    for t in [spawn_app(&[]), spawn_app_dynamo(&[]).await] {
        let root = staff(&t).await;
        t.register("pending@example.com").await;
        let pending = t.user("pending@example.com").await;
        assert!(pending.expires_at.is_some(), "a registration expires until activated");
        let path = format!("/auth/users/{}/", pending.id);
        let r = t.call("PATCH", &path, Some(json!({"is_active": true, "first_name": "Pat"})), Some(&root)).await;
        assert_eq!(
            (r.status, &r.body["is_active"], &r.body["first_name"]),
            (StatusCode::OK, &json!(true), &json!("Pat"))
        );
        let stored = t.user("pending@example.com").await;
        assert_eq!((stored.is_active, stored.expires_at, stored.first_name.as_str()), (true, None, "Pat"));
        // Long after the registration would have expired, the account and its address are kept.
        t.clock.advance(30 * 86_400);
        assert_eq!(login_answer(&t, "pending@example.com").await.0, StatusCode::OK);
        let again = t.post("/auth/users/", json!({"email": "pending@example.com", "password": PASSWORD})).await;
        assert_eq!(again.body, json!({"email": [EMAIL_TAKEN]}));
    }
}
