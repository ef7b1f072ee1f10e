//! Sessions and token security: rotation with reuse detection and its grace window, logout on
//! one device, the session list, log out everywhere, the JWKS. (Secrets kept out of logs: `logs.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use common::{reply, spawn_app, PASSWORD};
use gatehouse_core::ports::EmailKind;
use lambda_http::http::StatusCode;
use lambda_http::Body;
use serde_json::json;

async fn refresh(t: &common::TestApp, token: &str) -> common::Reply {
    t.post("/auth/jwt/refresh/", json!({"refresh": token})).await
}

/// The jti of a refresh token.
async fn jti(t: &common::TestApp, token: &str) -> String {
    t.app.tokens.verify(token, gatehouse_core::tokens::TokenType::Refresh, t.clock_now()).await.unwrap().jti
}

async fn session_count(t: &common::TestApp, access: &str) -> usize {
    let r = t.call("GET", "/auth/sessions/", None, Some(access)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body.as_array().unwrap().len()
}

#[tokio::test]
async fn a_replay_outside_the_grace_window_revokes_the_session_and_alerts_the_owner() {
    let t = spawn_app(&[]);
    let (_, first) = t.active_user("ada@example.com").await;
    let r = refresh(&t, &first).await;
    let (access, second) =
        (r.body["access"].as_str().unwrap().to_owned(), r.body["refresh"].as_str().unwrap().to_owned());
    // Past the race window (one second: `gatehouse_core::services::refresh::RACE_WINDOW`).
    t.clock.advance(2);
    assert_eq!(refresh(&t, &first).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.last_mail("ada@example.com").kind, EmailKind::SessionReuse);
    assert_eq!(refresh(&t, &second).await.status, StatusCode::UNAUTHORIZED, "the whole session is gone");
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn inside_the_grace_window_the_previous_token_gets_the_same_session() {
    let t = spawn_app(&[("REFRESH_REUSE_GRACE", "10s")]);
    let (_, first) = t.active_user("ada@example.com").await;
    let second = refresh(&t, &first).await.body["refresh"].as_str().unwrap().to_owned();
    t.clock.advance(5);
    let r = refresh(&t, &first).await;
    assert_eq!(r.status, StatusCode::OK, "a second tab refreshing at once is fine");
    let from_grace = r.body["refresh"].as_str().unwrap().to_owned();
    let access = r.body["access"].as_str().unwrap().to_owned();
    assert_eq!(session_count(&t, &access).await, 1, "no fork");
    // Both tabs now hold the session's current token; the next rotation moves on from it.
    let third = refresh(&t, &from_grace).await.body["refresh"].as_str().unwrap().to_owned();
    t.clock.advance(11);
    assert_eq!(refresh(&t, &second).await.status, StatusCode::UNAUTHORIZED, "older than previous: a replay");
    assert_eq!(refresh(&t, &third).await.status, StatusCode::UNAUTHORIZED, "and the session was revoked");
    assert!(t.mail.sent().iter().any(|m| m.kind == EmailKind::SessionReuse));
}

#[tokio::test]
async fn the_previous_token_replayed_after_its_rotation_is_judged_by_the_time_since() {
    // (REFRESH_REUSE_GRACE, seconds from the rotation to the replay, whether that is reuse).
    // Within a second of the rotation (stamps one apart when a second boundary falls between two
    // tabs' requests) the replay is a tab that lost the race: refused without harm, or given a
    // pair for the same session within the grace window. Later, it is a copied token.
    let cases = [("0", 0, false), ("0", 1, false), ("0", 2, true), ("0", 30, true)].into_iter().chain([
        ("10s", 0, false),
        ("10s", 1, false),
        ("10s", 10, false),
        ("10s", 11, true),
    ]);
    for (grace, after, reuse) in cases {
        let what = format!("REFRESH_REUSE_GRACE={grace}, replayed {after}s after the rotation");
        let t = spawn_app(&[("REFRESH_REUSE_GRACE", grace)]);
        let (_, first) = t.active_user("ada@example.com").await;
        let rotated = refresh(&t, &first).await;
        assert_eq!(rotated.status, StatusCode::OK, "{what}: {}", rotated.body);
        let second = rotated.body["refresh"].as_str().unwrap().to_owned();
        t.clock.advance(after);
        let replay = refresh(&t, &first).await;
        let alerted = t.mail.sent().iter().any(|m| m.kind == EmailKind::SessionReuse);
        if reuse {
            assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{what}: {}", replay.body);
            assert!(alerted, "{what}: the owner is alerted");
            assert_eq!(refresh(&t, &second).await.status, StatusCode::UNAUTHORIZED, "{what}: the session is revoked");
            continue;
        }
        assert!(!alerted, "{what}: an alert was mailed");
        if grace == "0" {
            assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{what}: {}", replay.body);
            assert_eq!(replay.body["code"], "token_not_valid", "{what}");
        } else {
            assert_eq!(replay.status, StatusCode::OK, "{what}: {}", replay.body);
            assert_eq!(
                jti(&t, replay.body["refresh"].as_str().unwrap()).await,
                jti(&t, &second).await,
                "{what}: the same session's current token"
            );
        }
        let next = refresh(&t, &second).await;
        assert_eq!(next.status, StatusCode::OK, "{what}: the session lives on: {}", next.body);
    }
}

async fn race(t: &common::TestApp, token: &str, n: usize) -> Vec<common::Reply> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let app = t.app.clone();
        let body = json!({"refresh": token}).to_string();
        tasks.push(tokio::spawn(async move {
            let req = common::request(
                "POST",
                "/auth/jwt/refresh/",
                &[("content-type", "application/json")],
                Body::Text(body),
            );
            reply(common::dispatch(&app, req).await)
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_refreshes_leave_one_live_session_strict() {
    let t = spawn_app(&[]);
    let (access, token) = t.active_user("ada@example.com").await;
    let replies = race(&t, &token, 20).await;
    let winners: Vec<_> = replies.iter().filter(|r| r.status == StatusCode::OK).collect();
    assert_eq!(winners.len(), 1, "strict: one rotation wins");
    assert!(replies.iter().all(|r| r.status == StatusCode::OK || r.status == StatusCode::UNAUTHORIZED));
    assert_eq!(session_count(&t, &access).await, 1, "the losers did not revoke the winner's session");
    let next = refresh(&t, winners[0].body["refresh"].as_str().unwrap()).await;
    assert_eq!(next.status, StatusCode::OK);
    assert!(!t.mail.sent().iter().any(|m| m.kind == EmailKind::SessionReuse), "a race is not a theft");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_refreshes_within_grace_all_continue_one_session() {
    let t = spawn_app(&[("REFRESH_REUSE_GRACE", "30s")]);
    let (access, token) = t.active_user("ada@example.com").await;
    let replies = race(&t, &token, 20).await;
    assert!(
        replies.iter().all(|r| r.status == StatusCode::OK),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(session_count(&t, &access).await, 1);
    // Every tab got the same, current refresh token: none of them forks the session.
    let mut tokens: Vec<&str> = replies.iter().map(|r| r.body["refresh"].as_str().unwrap()).collect();
    tokens.sort();
    tokens.dedup();
    let mut jtis = std::collections::HashSet::new();
    for tok in tokens {
        jtis.insert(
            t.app.tokens.verify(tok, gatehouse_core::tokens::TokenType::Refresh, t.clock_now()).await.unwrap().jti,
        );
    }
    assert_eq!(jtis.len(), 1);
}

#[tokio::test]
async fn blacklist_logs_out_this_device_only() {
    let t = spawn_app(&[]);
    let (phone_access, phone) = t.active_user("ada@example.com").await;
    let (laptop_access, _) = t.login("ada@example.com").await;
    assert_eq!(t.post("/auth/jwt/blacklist/", json!({})).await.body, json!({"refresh": ["This field is required."]}));
    assert_eq!(t.post("/auth/jwt/blacklist/", json!({"refresh": "garbage"})).await.status, StatusCode::UNAUTHORIZED);
    let r = t.post("/auth/jwt/blacklist/", json!({"refresh": phone})).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!({})));
    assert_eq!(refresh(&t, &phone).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&phone_access)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&laptop_access)).await.status, StatusCode::OK);
    assert_eq!(t.post("/auth/jwt/blacklist/", json!({"refresh": phone})).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_one_by_one() {
    let t = spawn_app(&[]);
    let (a, _) = t.active_user("ada@example.com").await;
    let (b, _) = t.login("ada@example.com").await;
    let r = t.call("GET", "/auth/sessions/", None, Some(&a)).await;
    let list = r.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(list[0]["ip"], "203.0.113.7");
    let other = list.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.call("DELETE", &format!("/auth/sessions/{other}/"), None, Some(&a)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&b)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.call("DELETE", &format!("/auth/sessions/{other}/"), None, Some(&a)).await.status,
        StatusCode::NOT_FOUND
    );
    // Someone else's session id is just as unknown.
    let (g, _) = t.active_user("grace@example.com").await;
    let mine = t.call("GET", "/auth/sessions/", None, Some(&a)).await.body[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.call("DELETE", &format!("/auth/sessions/{mine}/"), None, Some(&g)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(t.call("GET", "/auth/sessions/", None, None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logging_out_everywhere_refuses_every_earlier_token_at_once() {
    let t = spawn_app(&[]);
    let (a, a_refresh) = t.active_user("ada@example.com").await;
    let (b, _) = t.login("ada@example.com").await;
    assert_eq!(t.call("DELETE", "/auth/sessions/", None, Some(&a)).await.status, StatusCode::NO_CONTENT);
    for token in [&a, &b] {
        assert_eq!(t.call("GET", "/auth/users/me/", None, Some(token)).await.status, StatusCode::UNAUTHORIZED);
        let body = json!({"current_password": PASSWORD, "new_password": "another fine passphrase"});
        assert_eq!(
            t.call("POST", "/auth/users/set_password/", Some(body), Some(token)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(refresh(&t, &a_refresh).await.status, StatusCode::UNAUTHORIZED);
    t.clock.advance(1);
    let (fresh, _) = t.login("ada@example.com").await;
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&fresh)).await.status, StatusCode::OK);
}

/// Moves the account's `tokens_valid_after` far into the past (an account made long ago), so
/// that a revocation which failed to move it cannot pass for one that did.
async fn age_the_account(t: &common::TestApp, email: &str) {
    let u = t.user(email).await;
    let mut old = u.clone();
    old.tokens_valid_after = common::T0 - 400 * 86_400;
    t.app.store.update_user(&u, &old, t.clock_now()).await.unwrap();
}

/// The one live session of `email`.
async fn only_session(t: &common::TestApp, email: &str) -> gatehouse_core::ports::Session {
    let u = t.user(email).await;
    let sessions = t.app.store.list_sessions(&u.id, t.clock_now()).await.unwrap();
    assert_eq!(sessions.len(), 1);
    sessions[0].clone()
}

/// Tokens issued before a revocation, their session put back in the store (as a login racing the
/// revocation could leave it): `tokens_valid_after` alone must refuse them.
async fn assert_refused_by_the_stamp_alone(
    t: &common::TestApp,
    session: &gatehouse_core::ports::Session,
    access: &str,
    refresh_token: &str,
) {
    let none = gatehouse_core::ports::GiveBack::default();
    t.app.store.create_session(session, None, &none).await.unwrap();
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(access)).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refresh(t, refresh_token).await.status, StatusCode::UNAUTHORIZED);
    assert_token_not_valid(&verify(t, refresh_token).await, "a refresh token issued before the stamp");
}

#[tokio::test]
async fn logging_out_everywhere_stamps_the_account_now_and_only_later_tokens_work() {
    let t = spawn_app(&[]);
    let (before, before_refresh) = t.active_user("ada@example.com").await;
    let session = only_session(&t, "ada@example.com").await;
    age_the_account(&t, "ada@example.com").await;
    t.clock.advance(100);
    assert_eq!(verify(&t, &before_refresh).await.status, StatusCode::OK, "still valid");
    assert_eq!(t.call("DELETE", "/auth/sessions/", None, Some(&before)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(t.user("ada@example.com").await.tokens_valid_after, t.clock_now(), "stamped with the clock's now");
    assert_refused_by_the_stamp_alone(&t, &session, &before, &before_refresh).await;
    // A token issued afterwards, in that same second included, works.
    let (after, after_refresh) = t.login("ada@example.com").await;
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&after)).await.status, StatusCode::OK);
    assert_eq!(verify(&t, &after_refresh).await.status, StatusCode::OK);
    assert_eq!(refresh(&t, &after_refresh).await.status, StatusCode::OK);
    // Twice in one second it still moves: the second revocation is never a no-op.
    assert_eq!(t.call("DELETE", "/auth/sessions/", None, Some(&after)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(t.user("ada@example.com").await.tokens_valid_after, t.clock_now() + 1);
}

#[tokio::test]
async fn a_password_reset_stamps_the_account_now_and_only_later_tokens_work() {
    let t = spawn_app(&[]);
    let (before, before_refresh) = t.active_user("ada@example.com").await;
    let session = only_session(&t, "ada@example.com").await;
    age_the_account(&t, "ada@example.com").await;
    t.clock.advance(100);
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&before)).await.status, StatusCode::OK, "still valid");
    assert_eq!(verify(&t, &before_refresh).await.status, StatusCode::OK, "still valid");
    assert_eq!(
        t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await.status,
        StatusCode::NO_CONTENT
    );
    let (uid, token) = t.link_parts("ada@example.com");
    let new = "a brand new passphrase";
    let body = json!({"uid": uid, "token": token, "new_password": new});
    assert_eq!(t.post("/auth/users/reset_password_confirm/", body).await.status, StatusCode::NO_CONTENT);
    assert_eq!(t.user("ada@example.com").await.tokens_valid_after, t.clock_now(), "stamped with the clock's now");
    assert_refused_by_the_stamp_alone(&t, &session, &before, &before_refresh).await;
    let r = t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": new})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let after = r.body["access"].as_str().unwrap();
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(after)).await.status, StatusCode::OK);
    assert_eq!(refresh(&t, r.body["refresh"].as_str().unwrap()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn jwks_publishes_the_verification_key() {
    let pem = gatehouse_core::tokens::generate_ed25519_pem().unwrap();
    let t = spawn_app(&[("JWT_ALGORITHM", "EdDSA"), ("JWT_SIGNING_KEY", &pem)]);
    let (access, _) = t.active_user("ada@example.com").await;
    let r = t.call("GET", "/auth/.well-known/jwks.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let keys = r.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0]["kty"].as_str(), keys[0]["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.kid.as_deref(), keys[0]["kid"].as_str());
    // The published key really verifies the token.
    let key = jsonwebtoken::DecodingKey::from_ed_components(keys[0]["x"].as_str().unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    v.validate_exp = false;
    v.set_audience(&["gatehouse"]);
    assert!(jsonwebtoken::decode::<serde_json::Value>(&access, &key, &v).is_ok());

    let hs = spawn_app(&[]);
    assert_eq!(hs.call("GET", "/auth/.well-known/jwks.json", None, None).await.body, json!({"keys": []}));
}

async fn verify(t: &common::TestApp, token: &str) -> common::Reply {
    t.post("/auth/jwt/verify/", json!({"token": token})).await
}

#[track_caller]
fn assert_token_not_valid(r: &common::Reply, what: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.body);
    assert_eq!(
        r.body,
        json!({"detail": "Given token not valid for any token type", "code": "token_not_valid"}),
        "{what}"
    );
}

/// The session id of the session `access` belongs to.
async fn current_session(t: &common::TestApp, access: &str) -> String {
    let r = t.call("GET", "/auth/sessions/", None, Some(access)).await;
    let list = r.body.as_array().unwrap();
    list.iter().find(|s| s["current"] == true).unwrap()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn verify_refuses_a_refresh_token_whose_session_is_gone_and_access_tokens_stay_stateless() {
    let t = spawn_app(&[]);
    // Blacklisted (logout on this device).
    let (phone_access, phone) = t.active_user("ada@example.com").await;
    assert_eq!(verify(&t, &phone).await.status, StatusCode::OK);
    assert_eq!(t.post("/auth/jwt/blacklist/", json!({"refresh": phone})).await.status, StatusCode::OK);
    assert_token_not_valid(&verify(&t, &phone).await, "blacklisted");
    // Its access token is still judged on signature and lifetime alone, as simplejwt does.
    let r = verify(&t, &phone_access).await;
    assert_eq!((r.status, r.body), (StatusCode::OK, json!({})));

    // Revoked from another device.
    let (laptop_access, laptop) = t.login("ada@example.com").await;
    let (tablet_access, tablet) = t.login("ada@example.com").await;
    let tablet_sid = current_session(&t, &tablet_access).await;
    let r = t.call("DELETE", &format!("/auth/sessions/{tablet_sid}/"), None, Some(&laptop_access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_token_not_valid(&verify(&t, &tablet).await, "revoked session");
    assert_eq!(verify(&t, &laptop).await.status, StatusCode::OK, "other sessions are untouched");

    // Log out everywhere.
    assert_eq!(t.call("DELETE", "/auth/sessions/", None, Some(&laptop_access)).await.status, StatusCode::NO_CONTENT);
    assert_token_not_valid(&verify(&t, &laptop).await, "logged out everywhere");

    // The account deactivated, its session left in place (as authctl or a direct edit could).
    t.clock.advance(1);
    let (_, desk) = t.login("ada@example.com").await;
    assert_eq!(verify(&t, &desk).await.status, StatusCode::OK);
    let u = t.user("ada@example.com").await;
    let mut inactive = u.clone();
    inactive.is_active = false;
    t.app.store.update_user(&u, &inactive, t.clock_now()).await.unwrap();
    assert_token_not_valid(&verify(&t, &desk).await, "deactivated");
    let u = t.user("ada@example.com").await;
    let mut active = u.clone();
    active.is_active = true;
    t.app.store.update_user(&u, &active, t.clock_now()).await.unwrap();
    assert_eq!(verify(&t, &desk).await.status, StatusCode::OK, "reactivated, the session still lives");

    // Tokens issued before tokens_valid_after (a password reset) and deleted accounts.
    let u = t.user("ada@example.com").await;
    let mut reset = u.clone();
    reset.tokens_valid_after = t.clock_now() + 1;
    t.app.store.update_user(&u, &reset, t.clock_now()).await.unwrap();
    assert_token_not_valid(&verify(&t, &desk).await, "issued before tokens_valid_after");
    t.clock.advance(2);
    let (access, last) = t.login("ada@example.com").await;
    let r = t.call("DELETE", "/auth/users/me/", Some(json!({"current_password": PASSWORD})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_token_not_valid(&verify(&t, &last).await, "deleted account");
}

#[tokio::test]
async fn verify_refuses_a_refresh_token_spent_by_rotation_without_revoking_its_session() {
    let t = spawn_app(&[]);
    let (_, first) = t.active_user("ada@example.com").await;
    let second = refresh(&t, &first).await.body["refresh"].as_str().unwrap().to_owned();
    t.clock.advance(1);
    assert_token_not_valid(&verify(&t, &first).await, "spent by rotation");
    assert_eq!(verify(&t, &second).await.status, StatusCode::OK);
    // Verifying is not a replay: the session lives on, and no alert went out.
    assert_eq!(refresh(&t, &second).await.status, StatusCode::OK);
    assert!(!t.mail.sent().iter().any(|m| m.kind == EmailKind::SessionReuse));

    // Within REFRESH_REUSE_GRACE the previous token still refreshes, so it still verifies.
    let t = spawn_app(&[("REFRESH_REUSE_GRACE", "10s")]);
    let (_, first) = t.active_user("ada@example.com").await;
    assert_eq!(refresh(&t, &first).await.status, StatusCode::OK);
    t.clock.advance(10);
    assert_eq!(verify(&t, &first).await.status, StatusCode::OK, "within the grace window");
    t.clock.advance(1);
    assert_token_not_valid(&verify(&t, &first).await, "after the grace window");
}

#[tokio::test]
async fn verify_reads_the_store_once_for_a_refresh_token_and_never_for_an_access_token() {
    use gatehouse_core::store::{FaultyStore, MemoryStore, Op};
    let (store, faults) = FaultyStore::new(Arc::new(MemoryStore::new()));
    let mail = Arc::new(gatehouse_core::mail::CaptureMailer::new());
    let clock = Arc::new(gatehouse_core::ports::FixedClock::new(common::T0));
    let app = common::instrumented_app(common::settings(&[]), Arc::new(store), mail.clone(), clock.clone(), None);
    let t = common::TestApp { app: Arc::new(app), mail, clock, memory: None, dynamo: None };
    let (access, refresh_token) = t.active_user("ada@example.com").await;
    let total = || Op::ALL.iter().map(|op| faults.calls(*op)).sum::<u64>();

    let (before, reads) = (total(), faults.calls(Op::GetUserAndSession));
    assert_eq!(verify(&t, &access).await.status, StatusCode::OK);
    assert_eq!(total(), before, "an access token is verified without the store");
    assert_eq!(verify(&t, &refresh_token).await.status, StatusCode::OK);
    assert_eq!(total(), before + 1, "one store call for a refresh token");
    assert_eq!(faults.calls(Op::GetUserAndSession), reads + 1, "and it is get_user_and_session");

    // A store failure on that read is a 503, not a verdict on the token.
    faults.fail_next(Op::GetUserAndSession, 1);
    assert_eq!(verify(&t, &refresh_token).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(verify(&t, &refresh_token).await.status, StatusCode::OK);
}
