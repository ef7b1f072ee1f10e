//! Throttling: login lockout per account (doubling, capped, unknown accounts alike, lifted by a
//! password reset), per-IP budgets with 429 + Retry-After, and the per-address email cooldown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{spawn_app, PASSWORD};
use lambda_http::http::StatusCode;
use serde_json::json;

async fn login(t: &common::TestApp, email: &str, password: &str) -> common::Reply {
    t.post("/auth/jwt/create/", json!({"email": email, "password": password})).await
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_doubling_delays() {
    let t = spawn_app(&[("LOGIN_LOCKOUT_THRESHOLD", "3"), ("LOGIN_LOCKOUT_MAX", "4s")]);
    t.active_user("ada@example.com").await;
    for _ in 0..3 {
        assert_eq!(login(&t, "ada@example.com", "wrong").await.status, StatusCode::UNAUTHORIZED);
    }
    // Locked for 1 s after the third failure: even the right password waits.
    let r = login(&t, "ada@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.body,
        json!({"detail": "Request was throttled. Expected available in 1 seconds.", "code": "throttled"})
    );
    assert_eq!(r.headers["retry-after"], "1");
    t.clock.advance(1);
    assert_eq!(login(&t, "ada@example.com", "wrong").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&t, "ADA@example.com", PASSWORD).await.headers["retry-after"], "2", "doubled");
    t.clock.advance(2);
    for _ in 0..3 {
        login(&t, "ada@example.com", "wrong").await;
        t.clock.advance(100);
    }
    let r = login(&t, "ada@example.com", "wrong").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&t, "ada@example.com", PASSWORD).await.headers["retry-after"], "4", "capped");
    t.clock.advance(4);
    assert_eq!(login(&t, "ada@example.com", PASSWORD).await.status, StatusCode::OK, "success clears the count");
    assert_eq!(login(&t, "ada@example.com", "wrong").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&t, "ada@example.com", PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_accounts_lock_exactly_like_known_ones() {
    let t = spawn_app(&[("LOGIN_LOCKOUT_THRESHOLD", "2")]);
    t.active_user("ada@example.com").await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..4 {
        known.push(login(&t, "ada@example.com", "wrong").await);
        unknown.push(login(&t, "nobody@example.com", "wrong").await);
    }
    for (k, u) in known.iter().zip(&unknown) {
        assert_eq!((k.status, &k.body), (u.status, &u.body));
        assert_eq!(k.headers.get("retry-after"), u.headers.get("retry-after"));
    }
    assert_eq!(known[3].status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_locked_victim_can_still_reset_and_the_reset_lifts_the_lock() {
    let t = spawn_app(&[("LOGIN_LOCKOUT_THRESHOLD", "2")]);
    t.active_user("ada@example.com").await;
    for _ in 0..3 {
        login(&t, "ada@example.com", "wrong").await;
    }
    assert_eq!(login(&t, "ada@example.com", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await.status,
        StatusCode::NO_CONTENT
    );
    let (uid, token) = t.link_parts("ada@example.com");
    let new = "a much better passphrase";
    let r =
        t.post("/auth/users/reset_password_confirm/", json!({"uid": uid, "token": token, "new_password": new})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(login(&t, "ada@example.com", new).await.status, StatusCode::OK);
}

#[tokio::test]
async fn per_ip_budgets_answer_429_with_retry_after() {
    let t = spawn_app(&[("RATE_REGISTER_IP", "2/1m"), ("RATE_LOGIN_FAILURES_IP", "3/1m")]);
    for i in 0..2 {
        let r = t.post("/auth/users/", json!({"email": format!("u{i}@example.com"), "password": PASSWORD})).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = t.post("/auth/users/", json!({"email": "u3@example.com", "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    t.clock.advance(retry);
    assert_eq!(
        t.post("/auth/users/", json!({"email": "u3@example.com", "password": PASSWORD})).await.status,
        StatusCode::CREATED
    );

    // Login failures from one address, spread over accounts, run out too.
    for i in 0..3 {
        assert_eq!(login(&t, &format!("x{i}@example.com"), "wrong").await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login(&t, "x9@example.com", "wrong").await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn emails_to_one_address_cool_down() {
    let t = spawn_app(&[("EMAIL_COOLDOWN", "60s")]);
    t.active_user("ada@example.com").await;
    let before = t.mail.sent().len();
    for _ in 0..3 {
        assert_eq!(
            t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await.status,
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(t.mail.sent().len(), before + 1, "one email per minute, same answer every time");
    t.clock.advance(60);
    t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    assert_eq!(t.mail.sent().len(), before + 2);
}

#[tokio::test]
async fn a_stranger_hammering_an_account_locks_out_only_their_own_address() {
    let t = spawn_app(&[("LOGIN_LOCKOUT_THRESHOLD", "3")]);
    t.active_user("ada@example.com").await;
    let stranger = "198.51.100.66";
    for _ in 0..3 {
        let r = t
            .post_from(stranger, "/auth/jwt/create/", json!({"email": "ada@example.com", "password": "x1x2x3x4"}))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = t.post_from(stranger, "/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "the stranger's address is locked out");
    // The owner, from their own network, is not.
    assert_eq!(login(&t, "ada@example.com", PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn failures_across_many_addresses_meet_the_account_wide_ceiling() {
    let t = spawn_app(&[("LOGIN_LOCKOUT_THRESHOLD", "3"), ("RATE_LOGIN_FAILURES_ACCOUNT", "5/1h")]);
    t.active_user("ada@example.com").await;
    for i in 0..5 {
        let ip = format!("198.51.100.{i}");
        let r =
            t.post_from(&ip, "/auth/jwt/create/", json!({"email": "ada@example.com", "password": "x1x2x3x4"})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Distributed guessing is bounded: past the ceiling every address waits, the owner's too
    // (documented: the ceiling is far above one address's lockout).
    let r =
        t.post_from("198.51.100.99", "/auth/jwt/create/", json!({"email": "ada@example.com", "password": "x"})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&wait));
    assert_eq!(login(&t, "ada@example.com", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    t.clock.advance(wait);
    assert_eq!(login(&t, "ada@example.com", PASSWORD).await.status, StatusCode::OK);
    // A right password does not count against the ceiling.
    for _ in 0..10 {
        assert_eq!(login(&t, "ada@example.com", PASSWORD).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn guessing_the_current_password_ends_the_guessing_session() {
    let t = spawn_app(&[("LOGIN_LOCKOUT_THRESHOLD", "3")]);
    let (access, _) = t.active_user("ada@example.com").await;
    let body = json!({"current_password": "not it at all", "new_password": "another horse battery"});
    for _ in 0..3 {
        let r = t.call("POST", "/auth/users/set_password/", Some(body.clone()), Some(&access)).await;
        assert_eq!(r.body, json!({"current_password": ["Invalid password."]}));
    }
    let r = t.call("POST", "/auth/users/set_password/", Some(body), Some(&access)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // The session that was guessing is over.
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.status, StatusCode::UNAUTHORIZED);
    // The same budget as logins: this address must wait there too; another address need not.
    assert_eq!(login(&t, "ada@example.com", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    let r = t
        .post_from("198.51.100.7", "/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn confirmations_have_a_per_ip_budget() {
    let t = spawn_app(&[("RATE_CONFIRM_IP", "3/1h")]);
    for _ in 0..3 {
        let r = t.post("/auth/users/activation/", json!({"uid": "x", "token": "y"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    for path in ["/auth/users/activation/", "/auth/users/reset_password_confirm/", "/auth/users/set_email_confirm/"] {
        let r = t.post(path, json!({"uid": "x", "token": "y", "new_password": "whatever horse"})).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
    }
    let r = t.post_from("198.51.100.7", "/auth/users/activation/", json!({"uid": "x", "token": "y"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
