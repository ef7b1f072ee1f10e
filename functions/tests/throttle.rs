//! Throttling: login lockout per account (doubling, capped, unknown accounts alike, lifted by a
//! password reset), per-IP budgets with 429 + Retry-After, and the per-address email cooldown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

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
