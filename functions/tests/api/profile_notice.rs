//! `PROFILE_UPDATED_EMAIL`: a profile change that changed something, by its owner
//! (`/auth/users/me/`, or its own id) or by an admin (`/auth/users/{id}/`), emails the account a
//! notice naming the changed fields (never their values) at the address it has after the change;
//! nothing when nothing changed or when the setting is off; a failed send fails nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use common::{settings, spawn_app, TestApp, PASSWORD, T0};
use gatehouse_core::mail::{CaptureMailer, FaultyMailer, MailFault};
use gatehouse_core::ports::{EmailKind, FixedClock, OutgoingEmail};
use gatehouse_core::store::MemoryStore;
use lambda_http::http::StatusCode;
use serde_json::json;

const ON: (&str, &str) = ("PROFILE_UPDATED_EMAIL", "true");

fn notices(t: &TestApp) -> Vec<OutgoingEmail> {
    t.mail.sent().into_iter().filter(|m| m.kind == EmailKind::ProfileUpdated).collect()
}

/// The changed fields a notice names, as its text part lists them.
fn named(m: &OutgoingEmail) -> String {
    let after = m.text.split("was just changed: ").nth(1).unwrap_or_else(|| panic!("{}", m.text));
    after.split(".\n").next().unwrap().to_owned()
}

/// A staff member's access token; `superuser` makes it a superuser too.
async fn admin(t: &TestApp, email: &str, superuser: bool) -> String {
    t.active_user(email).await;
    t.make_staff(email).await;
    if superuser {
        let u = t.user(email).await;
        let root = gatehouse_core::domain::User { is_superuser: true, ..u.clone() };
        t.app.store.update_user(&u, &root, t.clock_now()).await.unwrap();
    }
    t.login(email).await.0
}

#[tokio::test]
async fn an_owners_edit_is_notified_naming_only_what_changed() {
    let t = spawn_app(&[ON]);
    let (ada, _) = t.active_user("ada@example.com").await;
    let r = t.call("PATCH", "/auth/users/me/", Some(json!({"first_name": "Augusta"})), Some(&ada)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let sent = notices(&t);
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(m.to, "ada@example.com");
    assert_eq!(named(m), "first_name");
    assert!(!named(m).contains("Augusta"), "values are never listed");
    assert!(m.html.contains("was just changed: first_name."), "{}", m.html);
    assert_eq!(m.link, None);
    // PUT with every name field, the first name unchanged: only what changed is named.
    let body = json!({"first_name": "Augusta", "last_name": "King", "username": "countess"});
    let r = t.call("PUT", "/auth/users/me/", Some(body), Some(&ada)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let sent = notices(&t);
    assert_eq!(sent.len(), 2);
    assert_eq!(named(&sent[1]), "last_name, username");
    assert!(!sent[1].text.contains("King") && !sent[1].text.contains("countess"), "{}", sent[1].text);
    // Through the owner's own id, the same.
    let id = t.user("ada@example.com").await.id;
    let r = t.call("PATCH", &format!("/auth/users/{id}/"), Some(json!({"username": ""})), Some(&ada)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(named(notices(&t).last().unwrap()), "username");
}

#[tokio::test]
async fn nothing_changed_sends_nothing() {
    let t = spawn_app(&[ON]);
    let (ada, _) = t.active_user("ada@example.com").await;
    let root = admin(&t, "root@example.com", false).await;
    let id = t.user("ada@example.com").await.id;
    t.call("PATCH", "/auth/users/me/", Some(json!({"first_name": "Ada"})), Some(&ada)).await;
    let before = notices(&t).len();
    assert_eq!(before, 1);
    let same = [
        json!({}),
        json!({"first_name": "Ada"}),
        json!({"email": "ada@example.com", "is_staff": true, "is_active": false}),
    ];
    for body in same {
        let r = t.call("PATCH", "/auth/users/me/", Some(body.clone()), Some(&ada)).await;
        assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.body);
    }
    let r = t
        .call("PATCH", &format!("/auth/users/{id}/"), Some(json!({"is_active": true, "groups": []})), Some(&root))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A refused edit sends nothing either.
    let r = t
        .call("PATCH", "/auth/users/me/", Some(json!({"first_name": "Bad", "username": "has space"})), Some(&ada))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(notices(&t).len(), before);
}

#[tokio::test]
async fn no_notice_without_the_setting() {
    for off in [&[][..], &[("PROFILE_UPDATED_EMAIL", "false")][..]] {
        let t = spawn_app(off);
        let (ada, _) = t.active_user("ada@example.com").await;
        let root = admin(&t, "root@example.com", true).await;
        let id = t.user("ada@example.com").await.id;
        t.call("PATCH", "/auth/users/me/", Some(json!({"first_name": "Augusta"})), Some(&ada)).await;
        let body = json!({"last_name": "King", "is_staff": true, "is_active": false});
        let r = t.call("PATCH", &format!("/auth/users/{id}/"), Some(body), Some(&root)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(notices(&t).is_empty(), "{off:?}");
    }
}

#[tokio::test]
async fn an_admins_edit_is_notified_to_the_account_at_its_current_address() {
    let t = spawn_app(&[ON, ("EMAIL_CHANGE_VERIFICATION", "false")]);
    let (ada, _) = t.active_user("ada@example.com").await;
    let staff = admin(&t, "staff@example.com", false).await;
    let root = admin(&t, "root@example.com", true).await;
    for name in ["editors", "reviewers"] {
        let r = t.call("POST", "/auth/admin/groups/", Some(json!({"name": name})), Some(&root)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    // The account's address changes first: the notice goes where the account now is.
    let body = json!({"current_password": PASSWORD, "new_email": "countess@example.com"});
    let r = t.call("POST", "/auth/users/set_email/", Some(body), Some(&ada)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let id = t.user("countess@example.com").await.id;
    let path = format!("/auth/users/{id}/");

    let r = t
        .call("PATCH", &path, Some(json!({"groups": ["reviewers", "editors"], "first_name": "A"})), Some(&staff))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let sent = notices(&t);
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].to.as_str(), named(&sent[0]).as_str()), ("countess@example.com", "first_name, groups"));
    assert!(t.mail.sent().iter().all(|m| m.kind != EmailKind::ProfileUpdated || m.to == "countess@example.com"));
    // Groups in another order are the same groups: nothing changed, nothing sent.
    let r = t.call("PATCH", &path, Some(json!({"groups": ["editors", "reviewers"]})), Some(&staff)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(notices(&t).len(), 1);
    // Disabling, by staff; then a superuser makes it staff and active again.
    let r = t.call("PATCH", &path, Some(json!({"is_active": false})), Some(&staff)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(named(notices(&t).last().unwrap()), "is_active");
    let r = t.call("PUT", &path, Some(json!({"is_active": true, "is_staff": true, "groups": []})), Some(&root)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let sent = notices(&t);
    assert_eq!(sent.len(), 3);
    assert_eq!(
        (sent[2].to.as_str(), named(&sent[2]).as_str()),
        ("countess@example.com", "is_active, is_staff, groups")
    );
    assert!(sent.iter().all(|m| !m.text.contains("reviewers") && !m.text.contains("editors")), "names, never values");
    assert!(t.mail.last_to("ada@example.com").is_none_or(|m| m.kind != EmailKind::ProfileUpdated));
}

#[tokio::test]
async fn a_notice_that_cannot_be_sent_does_not_fail_the_update() {
    let capture = Arc::new(CaptureMailer::new());
    let (mailer, faults) = FaultyMailer::new(capture.clone());
    let memory = Arc::new(MemoryStore::new());
    let clock = Arc::new(FixedClock::new(T0));
    let app = common::instrumented_app(settings(&[ON]), memory.clone(), Arc::new(mailer), clock.clone(), None);
    let t = TestApp { app: Arc::new(app), mail: capture, clock, memory: Some(memory), dynamo: None };
    let (ada, _) = t.active_user("ada@example.com").await;
    let root = admin(&t, "root@example.com", false).await;
    let id = t.user("ada@example.com").await.id;
    for fault in [MailFault::Rejected, MailFault::TimedOut, MailFault::Throttled] {
        faults.fail_next(fault, 1);
        let name = format!("{fault:?}");
        let r = t.call("PATCH", "/auth/users/me/", Some(json!({"first_name": name})), Some(&ada)).await;
        assert_eq!((r.status, &r.body["first_name"]), (StatusCode::OK, &json!(name)), "{}", r.body);
        assert_eq!(t.user("ada@example.com").await.first_name, name);
    }
    faults.fail_next(MailFault::Rejected, 1);
    let r = t.call("PATCH", &format!("/auth/users/{id}/"), Some(json!({"is_active": false})), Some(&root)).await;
    assert_eq!((r.status, &r.body["is_active"]), (StatusCode::OK, &json!(false)), "{}", r.body);
    assert!(!t.user("ada@example.com").await.is_active);
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&ada)).await.status, StatusCode::UNAUTHORIZED);
    let failed = faults.failed();
    assert_eq!(failed.len(), 4);
    assert!(failed.iter().all(|m| m.kind == EmailKind::ProfileUpdated && m.to == "ada@example.com"));
    assert!(notices(&t).is_empty(), "nothing was delivered");
}
