//! Accounts imported from Django: their password hashes, as Django wrote them, verify at login
//! (every format of Django's default hashers); the first successful login replaces the hash
//! with argon2id at the configured parameters; hashes that never verify (unusable, unsupported)
//! answer exactly as an unknown account; `LOGIN_FAILURE_FLOOR` holds failed logins back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{spawn_app, TestApp, PASSWORD};
use gatehouse_core::domain::User;
use gatehouse_core::password::{stored_hash_format, HashFormat};
use lambda_http::http::StatusCode;
use serde_json::json;

// Made by Django 5.2.19 (with bcrypt 5.0.0 and argon2-cffi 25.1.0) for the password
// "correct horse battery" (common::PASSWORD), with low work factors except where named: see the
// unit tests of shared/src/password/django.rs for how each was made.
const HASHES: &[(&str, HashFormat)] = &[
    (
        "pbkdf2_sha256$1000$GW99tOtVGrc8L5EgOPzIPk$N7Lgf6Q6BKRrnV0eCc3lZHaDBccSYLjuM885IAUXb0k=",
        HashFormat::DjangoPbkdf2Sha256,
    ),
    // Django 5.2's default hasher at its default 1,000,000 iterations.
    (
        "pbkdf2_sha256$1000000$wkxUEYSjeLHqr2uBejfrQI$7045Qq/8UmDSQq8QGqWp7JbCG0LI0zh+ksrM61P+mL8=",
        HashFormat::DjangoPbkdf2Sha256,
    ),
    ("pbkdf2_sha1$1000$VbvLwqC7sYDyTjonyWVEYG$S1tcJLC0xRNBq9lVxRzmVadtzqw=", HashFormat::DjangoPbkdf2Sha1),
    (
        "argon2$argon2id$v=19$m=1024,t=1,p=2$QVlrMTNzSk85WmVaUnFLUVh1ZjlJQg$yDeprgQAI7tJq7xVGSpmbSIexIcvk22gHuu2rXGQ26A",
        HashFormat::DjangoArgon2,
    ),
    (
        "argon2$argon2i$v=19$m=1024,t=1,p=2$fIpq9liK3lNtvY37z6qe0w$TtDzfUwHQt1A5eZyuDpZwld9qJnab2OAffJ79zkw0Wk",
        HashFormat::DjangoArgon2,
    ),
    ("argon2$argon2i$m=64,t=1,p=1$c29tZVNhbHRWYWx1ZTE2Yg$hwoUQAbh/Ys0vfnOuLRPx2CkU6MCIjr4Dw8WraAYclo", HashFormat::DjangoArgon2),
    ("bcrypt_sha256$$2b$05$SjXFvtUGnYWjWEArVDyJI.psuHKo9KhcxP0pSPEYXdOuATiXZFTXa", HashFormat::DjangoBcryptSha256),
    ("bcrypt$$2b$05$AaTDfeNXYPjBmM3OzST18.fuTprKvtmyCok7evNT9KOwjsCcEjLxO", HashFormat::DjangoBcrypt),
    (
        "scrypt$1024$xbB6GpmJ7oJGs1M0gxlgEd$8$5$6iaajCENlf5nKktLj2jUf9+ZyLgoLw2pjSBP98bnq8bGlor/u1gkxUr2zX9l+7k0xz6z1kEgWGKTTAHcthNCBw==",
        HashFormat::DjangoScrypt,
    ),
];

/// The argon2id parameters of the test settings (common::settings).
const CONFIGURED: &str = "$argon2id$v=19$m=64,t=1,p=1$";

/// An active account written straight to the store, as an import writes it.
async fn imported(t: &TestApp, email: &str, password_hash: &str) {
    let mut user = User::fixture(email);
    password_hash.clone_into(&mut user.password_hash);
    user.date_joined = t.clock_now();
    t.app.store.create_user(&user, None, t.clock_now()).await.unwrap();
}

async fn login(t: &TestApp, email: &str, password: &str) -> common::Reply {
    t.post("/auth/jwt/create/", json!({"email": email, "password": password})).await
}

#[tokio::test]
async fn each_django_format_logs_in_and_becomes_argon2id_on_the_first_success() {
    let t = spawn_app(&[]);
    for (i, &(hash, format)) in HASHES.iter().enumerate() {
        assert_eq!(stored_hash_format(hash), format, "{hash}");
        let email = format!("imported{i}@example.com");
        imported(&t, &email, hash).await;

        let r = login(&t, &email, "correct horse batterY").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{hash}: {}", r.body);
        assert_eq!(r.body["code"], "no_active_account");
        assert_eq!(t.user(&email).await.password_hash, hash, "a failure leaves the hash as Django wrote it");

        let r = login(&t, &email, PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{hash}: {}", r.body);
        assert!(r.body["access"].is_string() && r.body["refresh"].is_string(), "{}", r.body);
        let upgraded = t.user(&email).await.password_hash;
        assert!(upgraded.starts_with(CONFIGURED), "{hash} became {upgraded}");
        assert_eq!(stored_hash_format(&upgraded), HashFormat::Argon2);
        assert!(!t.app.hasher.needs_rehash(&upgraded));

        // The same password goes on working, against the new hash, which stays as it is.
        let r = login(&t, &email, PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{hash}, again: {}", r.body);
        assert_eq!(t.user(&email).await.password_hash, upgraded);
        let r = login(&t, &email, "correct horse batterY").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{hash}, upgraded: {}", r.body);
    }
}

#[tokio::test]
async fn unusable_and_unsupported_hashes_answer_exactly_as_an_unknown_account() {
    let t = spawn_app(&[]);
    let unknown = login(&t, "nobody@example.com", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let never = [
        // make_password(None): Django's unusable password.
        "!LcxPjWT2IGMccI2VYaYiwScpHO4Q58KpBsQf0HfY",
        "!abc",
        // Django's legacy hashers, and a Django format beyond the caps.
        "md5$seasalt$a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "pbkdf2_sha256$4294967295$GW99tOtVGrc8L5EgOPzIPk$N7Lgf6Q6BKRrnV0eCc3lZHaDBccSYLjuM885IAUXb0k=",
    ];
    for (i, hash) in never.into_iter().enumerate() {
        let email = format!("never{i}@example.com");
        imported(&t, &email, hash).await;
        let verifications = t.app.hasher.verifications();
        let r = login(&t, &email, PASSWORD).await;
        assert_eq!((r.status, &r.body), (unknown.status, &unknown.body), "{hash}");
        assert_eq!(r.headers.len(), unknown.headers.len(), "{hash}");
        assert_eq!(t.app.hasher.verifications(), verifications + 1, "one (dummy) verification: {hash}");
        assert_eq!(t.user(&email).await.password_hash, hash, "left as it was");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_login_answers_no_sooner_than_the_floor_and_a_success_at_once() {
    let floor = std::time::Duration::from_secs(2);
    let t = spawn_app(&[("LOGIN_FAILURE_FLOOR", "2s")]);
    let (hash, _) = HASHES[0];
    imported(&t, "ada@example.com", hash).await;
    for (email, password) in
        [("ada@example.com", "correct horse batterY"), ("nobody@example.com", PASSWORD), ("ada@example.com", "")]
    {
        let started = tokio::time::Instant::now();
        let r = login(&t, email, password).await;
        let took = started.elapsed();
        if password.is_empty() {
            // A refused form is no login attempt: it answers at once.
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
            assert!(took < floor, "{took:?}");
        } else {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{email}: {}", r.body);
            assert!(took >= floor, "{email}: {took:?}");
            assert!(took < floor + std::time::Duration::from_millis(500), "{email}: {took:?}");
        }
    }
    // Success: the Django hash, then the argon2id one.
    for _ in 0..2 {
        let started = tokio::time::Instant::now();
        let r = login(&t, "ada@example.com", PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(started.elapsed() < floor, "{:?}", started.elapsed());
    }
    // Off by default: a failure answers at once.
    let t = spawn_app(&[]);
    let started = tokio::time::Instant::now();
    assert_eq!(login(&t, "nobody@example.com", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert!(started.elapsed() < floor, "{:?}", started.elapsed());
}
