//! Faults: the real handlers over a store and a mailer that fail on command. For each fault, the
//! documented outcome (503 `service_unavailable` + `Retry-After` for a store failure, with no
//! internal text in the body; the action's own answer for a mail failure), what the store holds
//! afterwards (no half-written state, every user with exactly its email claim), and how a retry
//! recovers: once, and only once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::ops::Deref;
use std::sync::Arc;

use common::{settings, Reply, TestApp, PASSWORD, T0};
use gatehouse_core::domain::{CodePurpose, Email, User};
use gatehouse_core::mail::{CaptureMailer, FaultyMailer, MailFault, MailFaults};
use gatehouse_core::ports::{Clock, CodeStore, EmailKind, FixedClock, GroupStore, Limiter, SessionStore, UserStore};
use gatehouse_core::services::throttle;
use gatehouse_core::store::faulty::INJECTED;
use gatehouse_core::store::{Faults, FaultyStore, MemoryStore, Op};
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

const NEW_PASSWORD: &str = "a much better passphrase";

/// The test app over `FaultyStore<MemoryStore>` and `FaultyMailer<CaptureMailer>`.
struct Rig {
    t: TestApp,
    /// Arms store faults.
    store: Faults,
    /// Arms mail faults (`t.mail` is the capture mailer behind them).
    mailer: MailFaults,
    /// The store behind the faults, to look at what was really written.
    memory: Arc<MemoryStore>,
}

impl Deref for Rig {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.t
    }
}

fn rig(overrides: &[(&str, &str)]) -> Rig {
    let memory = Arc::new(MemoryStore::new());
    let (store, faults) = FaultyStore::new(memory.clone());
    let capture = Arc::new(CaptureMailer::new());
    let (mailer, mail) = FaultyMailer::new(capture.clone());
    let clock = Arc::new(FixedClock::new(T0));
    let app = common::instrumented_app(settings(overrides), Arc::new(store), Arc::new(mailer), clock.clone(), None);
    let t = TestApp { app: Arc::new(app), mail: capture, clock, memory: Some(memory.clone()), dynamo: None };
    Rig { t, store: faults, mailer: mail, memory }
}

/// The documented answer to a store failure, with nothing of the failure's text in it.
#[track_caller]
fn assert_unavailable(r: &Reply) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"detail": "Service temporarily unavailable, try again soon.", "code": "service_unavailable"})
    );
    assert_eq!(r.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(r.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    let text = r.body.to_string();
    for leak in [INJECTED, "Throughput", "gatehouse-prod", "dynamodb", "table"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
}

fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

impl Rig {
    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The stored user with this address, read from the store behind the faults.
    async fn stored(&self, address: &str) -> Option<User> {
        self.memory.find_user_by_email(&email(address), self.now()).await.unwrap()
    }

    async fn sessions(&self, user: &User) -> usize {
        self.memory.list_sessions(&user.id, self.now()).await.unwrap().len()
    }

    /// Whether the user has an unspent code for `purpose`.
    async fn code(&self, user: &User, purpose: CodePurpose) -> bool {
        self.memory.get_code(&user.id, purpose, self.now()).await.unwrap().is_some_and(|c| !c.spent)
    }

    /// Every user has exactly its email claim and every claim its user: `expected` users, each
    /// found through its own address, and as many claims as users.
    async fn assert_consistent(&self, expected: usize) {
        let (users, _) = self.memory.list_users(None, 1000, self.now()).await.unwrap();
        assert_eq!(users.len(), expected, "live users");
        assert_eq!(self.memory.user_count(), expected, "stored users");
        assert_eq!(self.memory.email_claim_count(), expected, "email claims");
        for u in &users {
            let found = self.memory.find_user_by_email(&u.email, self.now()).await.unwrap();
            assert_eq!(found.map(|f| f.id), Some(u.id.clone()), "the claim of {} names its user", u.email);
        }
    }

    async fn me(&self, access: &str) -> Reply {
        self.call("GET", "/auth/users/me/", None, Some(access)).await
    }

    fn sent_kinds(&self, to: &str) -> Vec<EmailKind> {
        self.mail.sent().into_iter().filter(|m| m.to.eq_ignore_ascii_case(to)).map(|m| m.kind).collect()
    }
}

fn register_body(address: &str) -> Value {
    json!({"email": address, "password": PASSWORD})
}

// ---- store failures -------------------------------------------------------------------------

#[tokio::test]
async fn every_route_answers_a_store_outage_with_503_never_500() {
    let r = rig(&[]);
    let (access, refresh) = r.active_user("ada@example.com").await;
    let (uid, _) = r.link_parts("ada@example.com");
    let ada = r.stored("ada@example.com").await.unwrap();
    r.store.fail_all();
    let calls: Vec<(&str, String, Option<Value>, bool)> = vec![
        ("POST", "/auth/users/".into(), Some(register_body("bob@example.com")), false),
        ("POST", "/auth/users/activation/".into(), Some(json!({"uid": uid, "token": "x"})), false),
        ("POST", "/auth/users/resend_activation/".into(), Some(json!({"email": "ada@example.com"})), false),
        ("GET", "/auth/users/me/".into(), None, true),
        ("PATCH", "/auth/users/me/".into(), Some(json!({"first_name": "Ada"})), true),
        ("DELETE", "/auth/users/me/".into(), Some(json!({"current_password": PASSWORD})), true),
        ("POST", "/auth/users/set_password/".into(), Some(json!({"current_password": PASSWORD})), true),
        ("POST", "/auth/users/reset_password/".into(), Some(json!({"email": "ada@example.com"})), false),
        (
            "POST",
            "/auth/users/reset_password_confirm/".into(),
            Some(json!({"uid": uid, "token": "x", "new_password": NEW_PASSWORD})),
            false,
        ),
        ("POST", "/auth/users/set_email/".into(), Some(json!({"new_email": "new@example.com"})), true),
        ("POST", "/auth/users/set_email_confirm/".into(), Some(json!({"uid": uid, "token": "x"})), false),
        ("GET", "/auth/users/".into(), None, true),
        ("GET", format!("/auth/users/{}/", ada.id.as_str()), None, true),
        ("POST", "/auth/jwt/create/".into(), Some(register_body("ada@example.com")), false),
        ("POST", "/auth/jwt/refresh/".into(), Some(json!({"refresh": refresh})), false),
        ("POST", "/auth/jwt/blacklist/".into(), Some(json!({"refresh": refresh})), false),
        ("GET", "/auth/sessions/".into(), None, true),
        ("DELETE", "/auth/sessions/".into(), None, true),
        ("DELETE", "/auth/sessions/abc/".into(), None, true),
        ("GET", "/auth/users/me/has_group/ops/".into(), None, true),
        ("GET", "/auth/admin/groups/".into(), None, true),
    ];
    for (method, path, body, auth) in calls {
        let reply = r.call(method, &path, body, auth.then_some(access.as_str())).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{method} {path}: {}", reply.body);
        assert_unavailable(&reply);
    }
    // What needs no store still works.
    let verify = r.post("/auth/jwt/verify/", json!({"token": access})).await;
    assert_eq!(verify.status, StatusCode::OK);
    assert_eq!(r.call("GET", "/auth/.well-known/jwks.json", None, None).await.status, StatusCode::OK);
    r.store.heal();
    assert_eq!(r.me(&access).await.status, StatusCode::OK);
    r.assert_consistent(1).await;
}

#[tokio::test]
async fn register_store_failure_writes_nothing_and_the_retry_creates_one_account() {
    let r = rig(&[]);
    r.store.fail_next(Op::CreateUser, 1);
    let first = r.post("/auth/users/", register_body("ada@example.com")).await;
    assert_unavailable(&first);
    r.assert_consistent(0).await;
    assert!(r.mailer.attempts().is_empty(), "no email for an account that was not written");
    let retry = r.post("/auth/users/", register_body("ada@example.com")).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    let again = r.post("/auth/users/", register_body("ada@example.com")).await;
    assert_eq!(again.body, json!({"email": ["user with this email address already exists."]}));
    r.assert_consistent(1).await;
    assert_eq!(r.sent_kinds("ada@example.com"), [EmailKind::Activation]);
}

#[tokio::test]
async fn register_rate_counter_failure_is_503_before_anything_is_written() {
    let r = rig(&[("RATE_REGISTER_IP", "5/1h")]);
    r.store.fail_next(Op::Hit, 1);
    assert_unavailable(&r.post("/auth/users/", register_body("ada@example.com")).await);
    assert_eq!(r.store.calls(Op::CreateUser), 0);
    r.assert_consistent(0).await;
    assert_eq!(r.post("/auth/users/", register_body("ada@example.com")).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn register_whose_reply_is_lost_keeps_the_account_and_resend_recovers_it() {
    // The write committed but the Lambda timed out before answering: the client's retry finds the
    // address taken, and resend_activation delivers a working link.
    let r = rig(&[]);
    r.store.lose_reply(Op::CreateUser, 1);
    assert_unavailable(&r.post("/auth/users/", register_body("ada@example.com")).await);
    r.assert_consistent(1).await;
    assert!(r.mailer.attempts().is_empty());
    let retry = r.post("/auth/users/", register_body("ada@example.com")).await;
    assert_eq!(retry.body, json!({"email": ["user with this email address already exists."]}));
    r.assert_consistent(1).await;
    let resend = r.post("/auth/users/resend_activation/", json!({"email": "ada@example.com"})).await;
    assert_eq!(resend.status, StatusCode::NO_CONTENT);
    let (uid, token) = r.link_parts("ada@example.com");
    let done = r.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    assert!(r.stored("ada@example.com").await.unwrap().is_active);
}

#[tokio::test]
async fn activation_store_failure_spends_nothing_and_the_retry_activates_once() {
    let r = rig(&[]);
    let (uid, token) = r.register("ada@example.com").await;
    let body = json!({"uid": uid, "token": token});
    r.store.fail_next(Op::Activate, 1);
    assert_unavailable(&r.post("/auth/users/activation/", body.clone()).await);
    let ada = r.stored("ada@example.com").await.unwrap();
    assert!(!ada.is_active);
    assert!(ada.expires_at.is_some(), "still an unactivated account with its TTL");
    assert!(r.code(&ada, CodePurpose::Activation).await, "the code was not spent");
    let retry = r.post("/auth/users/activation/", body.clone()).await;
    assert_eq!(retry.status, StatusCode::NO_CONTENT, "{}", retry.body);
    let twice = r.post("/auth/users/activation/", body).await;
    assert_eq!(twice.status, StatusCode::FORBIDDEN);
    assert_eq!(twice.body, json!({"detail": "Stale token for given user.", "code": "stale_token"}));
    let ada = r.stored("ada@example.com").await.unwrap();
    assert!(ada.is_active && ada.expires_at.is_none());
    assert!(!r.code(&ada, CodePurpose::Activation).await);
    r.assert_consistent(1).await;
}

#[tokio::test]
async fn activation_lookup_failure_is_503_and_counts_no_wrong_guess() {
    let r = rig(&[]);
    let (uid, token) = r.register("ada@example.com").await;
    r.store.fail_next(Op::GetUser, 1);
    assert_unavailable(&r.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await);
    assert_eq!(r.store.calls(Op::ReserveGuess), 0);
    let ada = r.stored("ada@example.com").await.unwrap();
    let code = r.memory.get_code(&ada.id, CodePurpose::Activation, r.now()).await.unwrap().unwrap();
    assert_eq!(code.attempts, 0);
}

#[tokio::test]
async fn activation_whose_reply_is_lost_is_active_and_the_retry_is_told_so() {
    let r = rig(&[]);
    let (uid, token) = r.register("ada@example.com").await;
    r.store.lose_reply(Op::Activate, 1);
    assert_unavailable(&r.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await);
    assert!(r.stored("ada@example.com").await.unwrap().is_active);
    let retry = r.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!((retry.status, retry.body["code"].as_str()), (StatusCode::FORBIDDEN, Some("stale_token")));
    r.login("ada@example.com").await;
    r.assert_consistent(1).await;
}

#[tokio::test]
async fn login_session_write_failure_opens_no_session_and_counts_no_failure() {
    let r = rig(&[]);
    r.active_user("ada@example.com").await;
    let ada = r.stored("ada@example.com").await.unwrap();
    assert_eq!(r.sessions(&ada).await, 1);
    r.store.fail_next(Op::CreateSession, 1);
    let body = json!({"email": "ada@example.com", "password": PASSWORD});
    let first = r.post("/auth/jwt/create/", body.clone()).await;
    assert_unavailable(&first);
    assert!(first.body.get("access").is_none());
    assert_eq!(r.sessions(&ada).await, 1, "no session was opened");
    let (counter, _) = throttle::lockout_counter("ada@example.com", Some("203.0.113.7"), r.now());
    let lock = r.memory.read(&[counter], r.now()).await.unwrap();
    assert_eq!(lock[0].count, 0, "a store failure is not a wrong password");
    let retry = r.post("/auth/jwt/create/", body).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(r.sessions(&ada).await, 2);
    assert_eq!(r.me(retry.body["access"].as_str().unwrap()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn login_lookup_failure_is_503_for_known_and_unknown_accounts_alike() {
    let r = rig(&[]);
    r.active_user("ada@example.com").await;
    for address in ["ada@example.com", "nobody@example.com"] {
        r.store.fail_next(Op::FindUserForLogin, 1);
        let reserved = r.store.calls(Op::Reserve);
        let reply = r.post("/auth/jwt/create/", json!({"email": address, "password": "wrong password!"})).await;
        assert_unavailable(&reply);
        assert_eq!(r.store.calls(Op::Reserve), reserved, "nothing counted against {address}");
    }
}

#[tokio::test]
async fn a_wrong_password_that_cannot_be_counted_is_refused_with_503_not_401() {
    // Fail closed: during an outage of counter writes, guesses are not even verified.
    let r = rig(&[]);
    r.active_user("ada@example.com").await;
    r.store.fail_next(Op::Reserve, 1);
    let guess = r.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": "not the password"})).await;
    assert_unavailable(&guess);
    r.login("ada@example.com").await;
}

#[tokio::test]
async fn refresh_rotation_failure_keeps_the_token_usable_and_the_retry_rotates_once() {
    let r = rig(&[]);
    let (_, refresh) = r.active_user("ada@example.com").await;
    let ada = r.stored("ada@example.com").await.unwrap();
    let before = r.memory.list_sessions(&ada.id, r.now()).await.unwrap();
    r.store.fail_next(Op::RotateSession, 1);
    assert_unavailable(&r.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await);
    assert_eq!(r.memory.list_sessions(&ada.id, r.now()).await.unwrap(), before, "session untouched");
    r.clock.advance(5);
    let retry = r.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    let after = r.memory.list_sessions(&ada.id, r.now()).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].counter, before[0].counter + 1, "rotated exactly once");
    assert!(r.mailer.attempts().iter().all(|a| a.email.kind != EmailKind::SessionReuse), "no reuse alarm");
    let next = r.post("/auth/jwt/refresh/", json!({"refresh": retry.body["refresh"]})).await;
    assert_eq!(next.status, StatusCode::OK);
}

#[tokio::test]
async fn refresh_whose_reply_is_lost_retried_in_the_grace_window_gets_the_same_session() {
    let r = rig(&[("REFRESH_REUSE_GRACE", "10s")]);
    let (_, refresh) = r.active_user("ada@example.com").await;
    let ada = r.stored("ada@example.com").await.unwrap();
    let sid = r.memory.list_sessions(&ada.id, r.now()).await.unwrap()[0].id.clone();
    r.store.lose_reply(Op::RotateSession, 1);
    assert_unavailable(&r.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await);
    r.clock.advance(3);
    let retry = r.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    let sessions = r.memory.list_sessions(&ada.id, r.now()).await.unwrap();
    assert_eq!(sessions.len(), 1, "no second session");
    assert_eq!(sessions[0].id, sid);
    assert_eq!(sessions[0].counter, 1, "the lost rotation is the only one");
    // The pair from the retry carries on the same session.
    let next = r.post("/auth/jwt/refresh/", json!({"refresh": retry.body["refresh"]})).await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.body);
    assert_eq!(r.memory.list_sessions(&ada.id, r.now()).await.unwrap()[0].id, sid);
}

#[tokio::test]
async fn refresh_whose_reply_is_lost_retried_without_a_grace_window_is_a_reuse() {
    // REFRESH_REUSE_GRACE defaults to 0: the retry presents a spent token, as a thief would.
    let r = rig(&[]);
    let (_, refresh) = r.active_user("ada@example.com").await;
    let ada = r.stored("ada@example.com").await.unwrap();
    r.store.lose_reply(Op::RotateSession, 1);
    assert_unavailable(&r.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await);
    r.clock.advance(2);
    let retry = r.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(retry.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.sessions(&ada).await, 0, "the session was revoked");
    assert_eq!(r.last_mail("ada@example.com").kind, EmailKind::SessionReuse);
}

#[tokio::test]
async fn reset_confirm_store_failure_keeps_the_code_and_the_retry_resets_once() {
    let r = rig(&[]);
    let (_, old_refresh) = r.active_user("ada@example.com").await;
    assert_eq!(
        r.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await.status,
        StatusCode::NO_CONTENT
    );
    let (uid, token) = r.link_parts("ada@example.com");
    let body = json!({"uid": uid, "token": token, "new_password": NEW_PASSWORD});
    r.store.fail_next(Op::ResetPassword, 1);
    assert_unavailable(&r.post("/auth/users/reset_password_confirm/", body.clone()).await);
    let ada = r.stored("ada@example.com").await.unwrap();
    assert!(r.code(&ada, CodePurpose::PasswordReset).await, "the code was not spent");
    r.login("ada@example.com").await; // the old password still works
    let retry = r.post("/auth/users/reset_password_confirm/", body.clone()).await;
    assert_eq!(retry.status, StatusCode::NO_CONTENT, "{}", retry.body);
    let twice = r.post("/auth/users/reset_password_confirm/", body).await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
    assert_eq!(twice.body, json!({"token": ["Invalid token for given user."]}));
    let login = r.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": NEW_PASSWORD})).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(r.post("/auth/jwt/refresh/", json!({"refresh": old_refresh})).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.sent_kinds("ada@example.com").iter().filter(|k| **k == EmailKind::PasswordChanged).count(), 1);
    r.assert_consistent(1).await;
}

#[tokio::test]
async fn reset_confirm_committed_but_session_cleanup_failing_still_reports_success() {
    // The new password and `tokens_valid_after` are written atomically with the code's
    // consumption; what follows is cleanup. Answering 503 there would send the client into a
    // retry that can only fail (the code is spent) although the reset took effect.
    let r = rig(&[]);
    let (old_access, old_refresh) = r.active_user("ada@example.com").await;
    r.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    let (uid, token) = r.link_parts("ada@example.com");
    r.clock.advance(1);
    r.store.fail_next(Op::DeleteSessions, 1);
    r.store.fail_next(Op::GiveBack, 1);
    let reply = r
        .post("/auth/users/reset_password_confirm/", json!({"uid": uid, "token": token, "new_password": NEW_PASSWORD}))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(r.store.failures(Op::DeleteSessions), 1);
    // The old session's item may linger, but none of its tokens is accepted.
    assert_eq!(r.me(&old_access).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.post("/auth/jwt/refresh/", json!({"refresh": old_refresh})).await.status, StatusCode::UNAUTHORIZED);
    let login = r.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": NEW_PASSWORD})).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(r.last_mail("ada@example.com").kind, EmailKind::PasswordChanged);
}

#[tokio::test]
async fn reset_confirm_whose_reply_is_lost_has_the_new_password_and_the_retry_is_refused() {
    let r = rig(&[]);
    r.active_user("ada@example.com").await;
    r.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    let (uid, token) = r.link_parts("ada@example.com");
    let body = json!({"uid": uid, "token": token, "new_password": NEW_PASSWORD});
    r.store.lose_reply(Op::ResetPassword, 1);
    assert_unavailable(&r.post("/auth/users/reset_password_confirm/", body.clone()).await);
    let retry = r.post("/auth/users/reset_password_confirm/", body).await;
    assert_eq!(retry.body, json!({"token": ["Invalid token for given user."]}));
    let login = r.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": NEW_PASSWORD})).await;
    assert_eq!(login.status, StatusCode::OK);
}

#[tokio::test]
async fn set_password_with_logout_revokes_the_other_sessions_before_the_new_password_counts() {
    let r = rig(&[("LOGOUT_ON_PASSWORD_CHANGE", "true")]);
    let (mine, _) = r.active_user("ada@example.com").await;
    let (other, _) = r.login("ada@example.com").await;
    let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    // The session cleanup fails: the password must not change with the other sessions alive.
    r.store.fail_next(Op::DeleteSessions, 1);
    assert_unavailable(&r.call("POST", "/auth/users/set_password/", Some(body.clone()), Some(&mine)).await);
    assert_eq!(r.me(&other).await.status, StatusCode::OK, "nothing happened");
    r.login("ada@example.com").await; // old password still in force
                                      // The password write fails after the sessions went: fail closed, and the retry completes.
    r.store.fail_next(Op::UpdateUser, 1);
    assert_unavailable(&r.call("POST", "/auth/users/set_password/", Some(body.clone()), Some(&mine)).await);
    assert_eq!(r.me(&other).await.status, StatusCode::UNAUTHORIZED);
    let retry = r.call("POST", "/auth/users/set_password/", Some(body), Some(&mine)).await;
    assert_eq!(retry.status, StatusCode::NO_CONTENT, "{}", retry.body);
    let ada = r.stored("ada@example.com").await.unwrap();
    assert_eq!(r.sessions(&ada).await, 1, "only the caller's session is left");
    assert_eq!(r.me(&mine).await.status, StatusCode::OK);
    let login = r.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": NEW_PASSWORD})).await;
    assert_eq!(login.status, StatusCode::OK);
}

#[tokio::test]
async fn set_email_confirm_store_failure_keeps_the_code_and_the_retry_moves_the_claim_once() {
    let r = rig(&[]);
    let (access, _) = r.active_user("ada@example.com").await;
    let body = json!({"current_password": PASSWORD, "new_email": "lovelace@example.com"});
    let asked = r.call("POST", "/auth/users/set_email/", Some(body), Some(&access)).await;
    assert_eq!(asked.status, StatusCode::NO_CONTENT, "{}", asked.body);
    let (uid, token) = r.link_parts("lovelace@example.com");
    let confirm = json!({"uid": uid, "token": token});
    r.store.fail_next(Op::ChangeEmail, 1);
    assert_unavailable(&r.post("/auth/users/set_email_confirm/", confirm.clone()).await);
    let ada = r.stored("ada@example.com").await.expect("the old address still names the account");
    assert!(r.stored("lovelace@example.com").await.is_none());
    assert!(r.code(&ada, CodePurpose::EmailChange).await);
    r.assert_consistent(1).await;
    let retry = r.post("/auth/users/set_email_confirm/", confirm.clone()).await;
    assert_eq!(retry.status, StatusCode::NO_CONTENT, "{}", retry.body);
    let twice = r.post("/auth/users/set_email_confirm/", confirm).await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
    assert_eq!(twice.body, json!({"token": ["Invalid token for given user."]}));
    assert!(r.stored("ada@example.com").await.is_none(), "the old claim was released");
    assert_eq!(r.stored("lovelace@example.com").await.unwrap().id, ada.id);
    r.assert_consistent(1).await;
}

#[tokio::test]
async fn set_email_confirm_whose_reply_is_lost_is_changed_and_the_retry_is_refused() {
    let r = rig(&[]);
    let (access, _) = r.active_user("ada@example.com").await;
    let body = json!({"current_password": PASSWORD, "new_email": "lovelace@example.com"});
    r.call("POST", "/auth/users/set_email/", Some(body), Some(&access)).await;
    let (uid, token) = r.link_parts("lovelace@example.com");
    r.store.lose_reply(Op::ChangeEmail, 1);
    assert_unavailable(&r.post("/auth/users/set_email_confirm/", json!({"uid": uid, "token": token})).await);
    let retry = r.post("/auth/users/set_email_confirm/", json!({"uid": uid, "token": token})).await;
    assert_eq!(retry.body, json!({"token": ["Invalid token for given user."]}));
    assert!(r.stored("lovelace@example.com").await.is_some());
    r.assert_consistent(1).await;
}

#[tokio::test]
async fn set_email_code_write_failure_sends_nothing() {
    let r = rig(&[]);
    let (access, _) = r.active_user("ada@example.com").await;
    let before = r.mailer.attempts().len();
    r.store.fail_next(Op::PutCode, 1);
    let body = json!({"current_password": PASSWORD, "new_email": "lovelace@example.com"});
    assert_unavailable(&r.call("POST", "/auth/users/set_email/", Some(body.clone()), Some(&access)).await);
    assert_eq!(r.mailer.attempts().len(), before, "no link and no notice for a change that was not recorded");
    let retry = r.call("POST", "/auth/users/set_email/", Some(body), Some(&access)).await;
    assert_eq!(retry.status, StatusCode::NO_CONTENT);
    assert_eq!(r.sent_kinds("lovelace@example.com"), [EmailKind::EmailChange]);
}

#[tokio::test]
async fn delete_me_store_failure_keeps_everything_and_the_retry_removes_everything() {
    let r = rig(&[]);
    let (access, _) = r.active_user("ada@example.com").await;
    r.active_user("bob@example.com").await;
    let ada = r.stored("ada@example.com").await.unwrap();
    let body = json!({"current_password": PASSWORD});
    r.store.fail_next(Op::DeleteUser, 1);
    assert_unavailable(&r.call("DELETE", "/auth/users/me/", Some(body.clone()), Some(&access)).await);
    r.assert_consistent(2).await;
    assert_eq!(r.sessions(&ada).await, 1);
    assert_eq!(r.me(&access).await.status, StatusCode::OK);
    let retry = r.call("DELETE", "/auth/users/me/", Some(body.clone()), Some(&access)).await;
    assert_eq!(retry.status, StatusCode::NO_CONTENT, "{}", retry.body);
    r.assert_consistent(1).await;
    assert_eq!(r.sessions(&ada).await, 0);
    assert!(r.stored("bob@example.com").await.is_some());
    let twice = r.call("DELETE", "/auth/users/me/", Some(body), Some(&access)).await;
    assert_eq!(twice.status, StatusCode::UNAUTHORIZED);
    // The address is free again.
    assert_eq!(r.post("/auth/users/", register_body("ada@example.com")).await.status, StatusCode::CREATED);
    r.assert_consistent(2).await;
}

#[tokio::test]
async fn delete_me_whose_reply_is_lost_is_gone_and_the_retry_is_unauthenticated() {
    let r = rig(&[]);
    let (access, _) = r.active_user("ada@example.com").await;
    r.store.lose_reply(Op::DeleteUser, 1);
    let body = json!({"current_password": PASSWORD});
    assert_unavailable(&r.call("DELETE", "/auth/users/me/", Some(body.clone()), Some(&access)).await);
    r.assert_consistent(0).await;
    let retry = r.call("DELETE", "/auth/users/me/", Some(body), Some(&access)).await;
    assert_eq!(retry.status, StatusCode::UNAUTHORIZED);
}

// ---- mail failures --------------------------------------------------------------------------

#[tokio::test]
async fn register_with_the_activation_email_rejected_keeps_the_account_and_resend_recovers_it() {
    for fault in [MailFault::Rejected, MailFault::TimedOut] {
        let r = rig(&[("EMAIL_COOLDOWN", "60s")]);
        r.mailer.fail_next(fault, 1);
        let created = r.post("/auth/users/", register_body("ada@example.com")).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        assert_eq!(created.body["email"], "ada@example.com");
        assert_eq!(r.mailer.failed().len(), 1);
        assert!(r.mail.sent().is_empty());
        let ada = r.stored("ada@example.com").await.unwrap();
        assert!(!ada.is_active);
        r.assert_consistent(1).await;
        // Registering again is refused (the account is kept) ...
        let again = r.post("/auth/users/", register_body("ada@example.com")).await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
        // ... and resend_activation delivers a fresh, working link.
        let resend = r.post("/auth/users/resend_activation/", json!({"email": "ada@example.com"})).await;
        assert_eq!(resend.status, StatusCode::NO_CONTENT);
        assert_eq!(r.sent_kinds("ada@example.com"), [EmailKind::Activation]);
        let (uid, token) = r.link_parts("ada@example.com");
        let done = r.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
        assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
        r.login("ada@example.com").await;
    }
}

#[tokio::test]
async fn resend_activation_whose_email_fails_can_be_retried_at_once() {
    let r = rig(&[("EMAIL_COOLDOWN", "60s")]);
    r.register("ada@example.com").await;
    r.mailer.fail_next(MailFault::TimedOut, 1);
    let resend = json!({"email": "ada@example.com"});
    assert_eq!(r.post("/auth/users/resend_activation/", resend.clone()).await.status, StatusCode::NO_CONTENT);
    assert_eq!(r.post("/auth/users/resend_activation/", resend.clone()).await.status, StatusCode::NO_CONTENT);
    assert_eq!(r.sent_kinds("ada@example.com"), [EmailKind::Activation, EmailKind::Activation]);
    // The cooldown holds after a delivered email.
    assert_eq!(r.post("/auth/users/resend_activation/", resend).await.status, StatusCode::NO_CONTENT);
    assert_eq!(r.sent_kinds("ada@example.com").len(), 2);
    let (uid, token) = r.link_parts("ada@example.com");
    let done = r.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn reset_password_with_the_email_failing_answers_as_ever_and_a_retry_sends_it() {
    let r = rig(&[("EMAIL_COOLDOWN", "60s")]);
    r.active_user("ada@example.com").await;
    let unknown = r.post("/auth/users/reset_password/", json!({"email": "nobody@example.com"})).await;
    for fault in [MailFault::Rejected, MailFault::TimedOut] {
        r.mailer.fail_next(fault, 1);
        let reply = r.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
        assert_eq!((reply.status, &reply.body), (unknown.status, &unknown.body), "same answer as for nobody");
        assert_eq!(reply.headers.get("content-length"), unknown.headers.get("content-length"));
    }
    assert_eq!(r.mailer.failed().len(), 2);
    assert!(r.sent_kinds("ada@example.com").iter().all(|k| *k != EmailKind::PasswordReset));
    // A failed send did not spend the cooldown: the retry goes out at once.
    let retry = r.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    assert_eq!(retry.status, StatusCode::NO_CONTENT);
    assert_eq!(r.last_mail("ada@example.com").kind, EmailKind::PasswordReset);
    let (uid, token) = r.link_parts("ada@example.com");
    let done = r
        .post("/auth/users/reset_password_confirm/", json!({"uid": uid, "token": token, "new_password": NEW_PASSWORD}))
        .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
}

#[tokio::test]
async fn reset_password_store_failures_past_the_lookup_answer_as_for_an_unknown_address() {
    let r = rig(&[("EMAIL_COOLDOWN", "60s")]);
    r.active_user("ada@example.com").await;
    let reset = |address: &str| json!({"email": address});
    let unknown = r.post("/auth/users/reset_password/", reset("nobody@example.com")).await;
    let before = r.mailer.attempts().len();
    for op in [Op::TakeCooldown, Op::PutCode] {
        r.store.fail_next(op, 1);
        let reply = r.post("/auth/users/reset_password/", reset("ada@example.com")).await;
        assert_eq!((reply.status, &reply.body), (unknown.status, &unknown.body), "{op}: same answer as for nobody");
        assert_eq!(r.store.failures(op), 1);
    }
    assert_eq!(r.mailer.attempts().len(), before, "nothing was sent");
    // The cooldown taken before the failed code write was given back: the retry goes out.
    let retry = r.post("/auth/users/reset_password/", reset("ada@example.com")).await;
    assert_eq!(retry.status, StatusCode::NO_CONTENT);
    assert_eq!(r.last_mail("ada@example.com").kind, EmailKind::PasswordReset);
    // The lookup itself failing is a 503 for every address alike.
    for address in ["ada@example.com", "nobody@example.com"] {
        r.store.fail_next(Op::FindUserByEmail, 1);
        assert_unavailable(&r.post("/auth/users/reset_password/", reset(address)).await);
    }
}

#[tokio::test]
async fn resend_activation_store_failures_past_the_lookup_answer_as_for_an_unknown_address() {
    let r = rig(&[("EMAIL_COOLDOWN", "60s")]);
    r.register("ada@example.com").await;
    let unknown = r.post("/auth/users/resend_activation/", json!({"email": "nobody@example.com"})).await;
    let before = r.mailer.attempts().len();
    for op in [Op::TakeCooldown, Op::PutCode] {
        r.store.fail_next(op, 1);
        let reply = r.post("/auth/users/resend_activation/", json!({"email": "ada@example.com"})).await;
        assert_eq!((reply.status, &reply.body), (unknown.status, &unknown.body), "{op}");
    }
    assert_eq!(r.mailer.attempts().len(), before);
    let retry = r.post("/auth/users/resend_activation/", json!({"email": "ada@example.com"})).await;
    assert_eq!(retry.status, StatusCode::NO_CONTENT);
    assert_eq!(r.sent_kinds("ada@example.com"), [EmailKind::Activation, EmailKind::Activation]);
    let (uid, token) = r.link_parts("ada@example.com");
    let done = r.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn set_email_whose_link_cannot_be_sent_answers_503_and_the_retry_resends() {
    let r = rig(&[]);
    let (access, _) = r.active_user("ada@example.com").await;
    let body = json!({"current_password": PASSWORD, "new_email": "lovelace@example.com"});
    r.mailer.fail_next(MailFault::Rejected, 1);
    let first = r.call("POST", "/auth/users/set_email/", Some(body.clone()), Some(&access)).await;
    assert_unavailable(&first);
    let ada = r.stored("ada@example.com").await.unwrap();
    assert_eq!(ada.email.as_str(), "ada@example.com", "nothing changed");
    // The old address is told either way: a timed-out send may still arrive and be used.
    assert_eq!(r.last_mail("ada@example.com").kind, EmailKind::EmailChanged);
    let retry = r.call("POST", "/auth/users/set_email/", Some(body), Some(&access)).await;
    assert_eq!(retry.status, StatusCode::NO_CONTENT, "{}", retry.body);
    assert_eq!(r.sent_kinds("lovelace@example.com"), [EmailKind::EmailChange]);
    let (uid, token) = r.link_parts("lovelace@example.com");
    let done = r.post("/auth/users/set_email_confirm/", json!({"uid": uid, "token": token})).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    assert_eq!(r.stored("lovelace@example.com").await.unwrap().id, ada.id);
    r.assert_consistent(1).await;
}

#[tokio::test]
async fn set_email_whose_notice_to_the_old_address_fails_still_succeeds() {
    let r = rig(&[]);
    let (access, _) = r.active_user("ada@example.com").await;
    let body = json!({"current_password": PASSWORD, "new_email": "lovelace@example.com"});
    r.mailer.fail_after(MailFault::Rejected, 1); // the link goes out, the notice fails
    let reply = r.call("POST", "/auth/users/set_email/", Some(body), Some(&access)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(r.sent_kinds("lovelace@example.com"), [EmailKind::EmailChange]);
    assert_eq!(r.mailer.failed().iter().map(|m| m.kind).collect::<Vec<_>>(), [EmailKind::EmailChanged]);
    let (uid, token) = r.link_parts("lovelace@example.com");
    let done = r.post("/auth/users/set_email_confirm/", json!({"uid": uid, "token": token})).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn set_password_whose_notice_fails_still_changes_the_password() {
    let r = rig(&[("PASSWORD_CHANGED_EMAIL_CONFIRMATION", "true")]);
    let (access, _) = r.active_user("ada@example.com").await;
    r.mailer.fail_all(MailFault::Throttled);
    let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    let reply = r.call("POST", "/auth/users/set_password/", Some(body), Some(&access)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.body);
    assert_eq!(r.mailer.failed().last().map(|m| m.kind), Some(EmailKind::PasswordChanged));
    let login = r.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": NEW_PASSWORD})).await;
    assert_eq!(login.status, StatusCode::OK);
}

#[tokio::test]
async fn session_reuse_alert_failing_still_revokes_the_session() {
    let r = rig(&[]);
    let (_, refresh) = r.active_user("ada@example.com").await;
    let ada = r.stored("ada@example.com").await.unwrap();
    let rotated = r.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(rotated.status, StatusCode::OK);
    r.clock.advance(5);
    r.mailer.fail_next(MailFault::Rejected, 1);
    let replay = r.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.body["code"], "token_not_valid");
    assert_eq!(r.sessions(&ada).await, 0);
    assert_eq!(r.mailer.failed().iter().map(|m| m.kind).collect::<Vec<_>>(), [EmailKind::SessionReuse]);
    let fresh = r.post("/auth/jwt/refresh/", json!({"refresh": rotated.body["refresh"]})).await;
    assert_eq!(fresh.status, StatusCode::UNAUTHORIZED, "the whole session is gone");
}

#[tokio::test]
async fn activation_confirmation_email_failing_still_activates() {
    let r = rig(&[("SEND_CONFIRMATION_EMAIL", "true")]);
    let (uid, token) = r.register("ada@example.com").await;
    r.mailer.fail_next(MailFault::TimedOut, 1);
    let done = r.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);
    assert_eq!(r.mailer.failed()[0].kind, EmailKind::Confirmation);
    r.login("ada@example.com").await;
}

// ---- the same request twice (a Lambda retried after a timeout) -------------------------------

#[tokio::test]
async fn the_same_confirmations_sent_twice_succeed_once() {
    let r = rig(&[("REFRESH_REUSE_GRACE", "10s")]);
    let (uid, token) = r.register("ada@example.com").await;
    let activation = json!({"uid": uid, "token": token});
    let replies = [
        r.post("/auth/users/activation/", activation.clone()).await,
        r.post("/auth/users/activation/", activation).await,
    ];
    assert_eq!(replies[0].status, StatusCode::NO_CONTENT);
    assert_eq!(replies[1].body, json!({"detail": "Stale token for given user.", "code": "stale_token"}));

    let (access, refresh) = r.login("ada@example.com").await;
    r.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    let (uid, token) = r.link_parts("ada@example.com");
    let reset = json!({"uid": uid, "token": token, "new_password": NEW_PASSWORD});
    assert_eq!(r.post("/auth/users/reset_password_confirm/", reset.clone()).await.status, StatusCode::NO_CONTENT);
    let again = r.post("/auth/users/reset_password_confirm/", reset).await;
    assert_eq!(again.body, json!({"token": ["Invalid token for given user."]}));
    assert_eq!(r.sent_kinds("ada@example.com").iter().filter(|k| **k == EmailKind::PasswordChanged).count(), 1);
    assert_eq!(r.me(&access).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await.status, StatusCode::UNAUTHORIZED);

    r.clock.advance(1);
    let login = r.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": NEW_PASSWORD})).await;
    let access = login.body["access"].as_str().unwrap().to_owned();
    let body = json!({"current_password": NEW_PASSWORD, "new_email": "lovelace@example.com"});
    r.call("POST", "/auth/users/set_email/", Some(body), Some(&access)).await;
    let (uid, token) = r.link_parts("lovelace@example.com");
    let confirm = json!({"uid": uid, "token": token});
    assert_eq!(r.post("/auth/users/set_email_confirm/", confirm.clone()).await.status, StatusCode::NO_CONTENT);
    let again = r.post("/auth/users/set_email_confirm/", confirm).await;
    assert_eq!(again.body, json!({"token": ["Invalid token for given user."]}));
    r.assert_consistent(1).await;
}

#[tokio::test]
async fn the_same_refresh_sent_twice_in_the_grace_window_stays_on_one_session() {
    let r = rig(&[("REFRESH_REUSE_GRACE", "10s")]);
    let (_, refresh) = r.active_user("ada@example.com").await;
    let ada = r.stored("ada@example.com").await.unwrap();
    let first = r.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await;
    r.clock.advance(2);
    let second = r.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await;
    assert_eq!((first.status, second.status), (StatusCode::OK, StatusCode::OK), "{}", second.body);
    let sessions = r.memory.list_sessions(&ada.id, r.now()).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].counter, 1, "the duplicate did not rotate again");
    // Both replies carry on the one session: the first rotates it, the second is then the
    // previous token, still inside the grace window.
    for reply in [first, second] {
        let next = r.post("/auth/jwt/refresh/", json!({"refresh": reply.body["refresh"]})).await;
        assert_eq!(next.status, StatusCode::OK, "{}", next.body);
        r.clock.advance(1);
    }
    assert_eq!(r.memory.list_sessions(&ada.id, r.now()).await.unwrap().len(), 1);
    assert!(r.mailer.attempts().iter().all(|a| a.email.kind != EmailKind::SessionReuse));
}

// ---- an unknown account costs what a known one does -------------------------------------------

/// What one login with a wrong password costs: argon2 verifications, store calls by operation
/// (those made), and the answer.
async fn login_cost(r: &Rig, email: &str) -> (u64, std::collections::BTreeMap<&'static str, u64>, Reply) {
    let calls: Vec<u64> = Op::ALL.iter().map(|op| r.store.calls(*op)).collect();
    let verified = r.app.hasher.verifications();
    let reply = r.post("/auth/jwt/create/", json!({"email": email, "password": "a wrong password"})).await;
    let made = Op::ALL
        .iter()
        .zip(calls)
        .map(|(op, before)| (op.name(), r.store.calls(*op) - before))
        .filter(|(_, n)| *n > 0)
        .collect();
    (r.app.hasher.verifications() - verified, made, reply)
}

#[tokio::test]
async fn a_login_costs_one_verify_and_the_same_store_calls_whether_or_not_the_account_exists() {
    let r = rig(&[]);
    r.active_user("ada@example.com").await;
    r.register("ina@example.com").await; // never activated
    let (verified, calls, reply) = login_cost(&r, "nobody@example.com").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(verified, 1, "one verify against the dummy hash for an unknown address");
    for email in ["ada@example.com", "ina@example.com"] {
        let (v, c, rep) = login_cost(&r, email).await;
        assert_eq!((rep.status, &rep.body), (reply.status, &reply.body), "{email}: answered apart");
        assert_eq!(v, verified, "{email}: argon2 verifications differ from an unknown address's");
        assert_eq!(c, calls, "{email}: store calls differ from an unknown address's");
    }
}

// ---- the admin users routes -------------------------------------------------------------------

/// The admin users routes' world: a registered permission `shop.refund`, a group `till` granting
/// it, an ordinary active account `target` (with a session), and staff holding the four user
/// permissions and `shop.refund` through a group of its own, so that every permission check reads
/// the store.
struct AdminWorld {
    r: Rig,
    staff: String,
    target: User,
}

async fn admin_world() -> AdminWorld {
    let r = rig(&[]);
    r.register_permissions(&["shop.refund"]).await;
    let till = gatehouse_core::domain::Group {
        name: "till".into(),
        description: String::new(),
        permissions: vec!["shop.refund".into()],
        id: "g-till".into(),
    };
    assert!(r.memory.put_group(&till, true).await.unwrap());
    r.active_user("target@example.com").await;
    let (staff, _) = r.active_user("staff@example.com").await;
    let perms = ["auth.view_user", "auth.add_user", "auth.change_user", "auth.delete_user", "shop.refund"];
    r.make_staff_with("staff@example.com", &perms).await;
    let target = r.stored("target@example.com").await.unwrap();
    AdminWorld { r, staff, target }
}

/// What a fault must leave alone when nothing was written: every account as it was, the claims,
/// the target's sessions and codes, and the emails tried.
async fn admin_snapshot(w: &AdminWorld) -> (Vec<User>, usize, usize, bool, usize) {
    let r = &w.r;
    let (users, _) = r.memory.list_users(None, 1000, r.now()).await.unwrap();
    (
        users,
        r.memory.email_claim_count(),
        r.sessions(&w.target).await,
        r.code(&w.target, CodePurpose::Activation).await,
        r.mailer.attempts().len(),
    )
}

/// One admin users request, and what it looks like once it was applied in full.
struct AdminCase {
    name: &'static str,
    method: &'static str,
    /// `{target}` stands for the target's id.
    path: &'static str,
    body: Option<Value>,
    /// The answer of a request that went through.
    ok: StatusCode,
    /// The answer to the same request once the first one was applied (the client's retry).
    again: StatusCode,
}

fn admin_cases() -> Vec<AdminCase> {
    let case = |name, method, path, body, ok, again| AdminCase { name, method, path, body, ok, again };
    vec![
        case("list", "GET", "/auth/admin/users/?is_active=true", None, StatusCode::OK, StatusCode::OK),
        case(
            "create",
            "POST",
            "/auth/admin/users/",
            Some(json!({
                "email": "new@example.com", "password": PASSWORD, "username": "newbie",
                "groups": ["till"], "user_permissions": ["shop.refund"],
            })),
            StatusCode::CREATED,
            StatusCode::BAD_REQUEST,
        ),
        case("view", "GET", "/auth/admin/users/{target}/", None, StatusCode::OK, StatusCode::OK),
        case(
            "change",
            "PATCH",
            "/auth/admin/users/{target}/",
            Some(json!({
                "first_name": "Changed", "is_active": false, "groups": ["till"], "user_permissions": ["shop.refund"],
            })),
            StatusCode::OK,
            StatusCode::OK,
        ),
        case("delete", "DELETE", "/auth/admin/users/{target}/", None, StatusCode::NO_CONTENT, StatusCode::NOT_FOUND),
    ]
}

/// Whether the case's change is in the store, whole: `None` for a case that writes nothing.
async fn admin_applied(w: &AdminWorld, case: &AdminCase) -> Option<bool> {
    let r = &w.r;
    match case.name {
        "create" => Some(match r.stored("new@example.com").await {
            None => false,
            Some(u) => {
                assert_eq!(u.username.as_ref().map(|n| n.as_str()), Some("newbie"));
                assert_eq!(
                    (u.groups.clone(), u.group_ids.get("till").cloned()),
                    (vec!["till".into()], Some("g-till".into()))
                );
                assert_eq!(u.user_permissions.get("shop.refund").map(String::as_str), Some("p-shop.refund"));
                assert!(!u.is_active && r.code(&u, CodePurpose::Activation).await, "created with its activation code");
                true
            }
        }),
        "change" => {
            let u = r.stored("target@example.com").await.unwrap();
            let changed = (
                u.first_name == "Changed",
                !u.is_active,
                u.groups == ["till"],
                u.user_permissions.get("shop.refund").map(String::as_str) == Some("p-shop.refund"),
            );
            assert!(
                changed == (true, true, true, true) || changed == (false, false, false, false),
                "half-changed: {changed:?}"
            );
            Some(changed.0)
        }
        "delete" => Some(r.stored("target@example.com").await.is_none()),
        _ => None,
    }
}

/// Runs `case` as staff on `w`: the reply, and the store calls it made by operation.
async fn admin_call(w: &AdminWorld, case: &AdminCase) -> (Reply, Vec<(Op, u64)>) {
    let before: Vec<u64> = Op::ALL.iter().map(|op| w.r.store.calls(*op)).collect();
    let path = case.path.replace("{target}", w.target.id.as_str());
    let reply = w.r.call(case.method, &path, case.body.clone(), Some(&w.staff)).await;
    let made =
        Op::ALL.iter().zip(before).map(|(op, b)| (*op, w.r.store.calls(*op) - b)).filter(|(_, n)| *n > 0).collect();
    (reply, made)
}

#[tokio::test]
async fn admin_users_routes_answer_a_failure_at_each_store_call_with_503_and_write_nothing_half() {
    for case in admin_cases() {
        // The calls the request makes when nothing fails.
        let w = admin_world().await;
        let (reply, calls) = admin_call(&w, &case).await;
        assert_eq!(reply.status, case.ok, "{}: {}", case.name, reply.body);
        assert!(admin_applied(&w, &case).await.unwrap_or(true), "{}", case.name);
        let groups_read = calls.iter().find(|(op, _)| *op == Op::GetGroups).map_or(0, |(_, n)| *n);
        // What the staff member holds is read once per request: by the route's permission check,
        // then once more with the groups named (never again for `user_permissions`); the answer
        // of a listing, view or change reads the groups it shows.
        let expected_groups = match case.name {
            "list" | "create" => 2,
            "change" => 3,
            _ => 1,
        };
        assert_eq!(groups_read, expected_groups, "{}: {calls:?}", case.name);

        let faults: Vec<(Op, u64, bool)> = calls
            .iter()
            .flat_map(|(op, n)| (0..*n).map(move |i| (*op, i, false)).chain((*n == 1).then_some((*op, 0, true))))
            .collect();
        assert!(faults.len() >= 3, "{}: {calls:?}", case.name);
        for (op, skip, lost) in faults {
            let what = format!("{} with call {} of {op} {}", case.name, skip + 1, if lost { "lost" } else { "failed" });
            let w = admin_world().await;
            let before = admin_snapshot(&w).await;
            let users = before.0.len();
            if lost {
                w.r.store.lose_reply(op, 1);
            } else {
                w.r.store.fail_after(op, skip);
            }
            let (reply, _) = admin_call(&w, &case).await;
            w.r.store.heal();
            assert!(w.r.store.failures(op) >= 1, "{what}: the fault never fired");
            let applied = admin_applied(&w, &case).await;
            if op.name().contains("audit") && reply.status == case.ok {
                // An audit record that cannot be written is the audit trail's to judge: if the
                // action still answers as it would have, it was applied whole.
                assert_ne!(applied, Some(false), "{what}: answered {} but not applied", reply.body);
                continue;
            }
            assert_unavailable(&reply);
            if applied != Some(true) {
                assert_eq!(admin_snapshot(&w).await, before, "{what}: something was written or sent");
            }
            let expected_users = match (case.name, applied) {
                ("create", Some(true)) => users + 1,
                ("delete", Some(true)) => users - 1,
                _ => users,
            };
            w.r.assert_consistent(expected_users).await;
            // The client's retry: once, and only once.
            let (retry, _) = admin_call(&w, &case).await;
            let expected = if applied == Some(true) { case.again } else { case.ok };
            assert_eq!(retry.status, expected, "{what}: the retry answered {}", retry.body);
            assert_ne!(admin_applied(&w, &case).await, Some(false), "{what}: the retry did not apply");
            let done = match case.name {
                "create" => users + 1,
                "delete" => users - 1,
                _ => users,
            };
            w.r.assert_consistent(done).await;
            if case.name == "create" && applied == Some(true) {
                // Created, but its reply lost before the email: resend_activation recovers it.
                assert!(w.r.sent_kinds("new@example.com").is_empty(), "{what}");
                let resend = w.r.post("/auth/users/resend_activation/", json!({"email": "new@example.com"})).await;
                assert_eq!(resend.status, StatusCode::NO_CONTENT, "{what}");
            }
            if case.name == "create" {
                assert_eq!(w.r.sent_kinds("new@example.com"), [EmailKind::Activation], "{what}: one activation email");
            }
        }
    }
}

// ---- hot keys: a flood at one key -----------------------------------------------------------

/// The 429 a flooder gets: the documented throttle body and a Retry-After, no internal text.
#[track_caller]
fn assert_throttled(r: &Reply) {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.body["code"], "throttled", "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    let text = r.body.to_string();
    for leak in [INJECTED, "Throughput", "hot", "dynamodb"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
}

const FLOODER: &str = "198.51.100.66";

#[tokio::test]
async fn a_throttled_ip_counter_answers_429_to_its_ip_and_nobody_else_is_refused() {
    let r = rig(&[("RATE_REGISTER_IP", "1000/1h")]);
    r.store.throttle_key(FLOODER);
    let flood = r.post_from(FLOODER, "/auth/users/", register_body("flood@example.com")).await;
    assert_throttled(&flood);
    assert_eq!(r.store.calls(Op::CreateUser), 0, "nothing of the request happened");
    assert!(r.stored("flood@example.com").await.is_none());
    // Everyone else, on other counters, registers as usual.
    let other = r.post_from("192.0.2.10", "/auth/users/", register_body("ada@example.com")).await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    r.assert_consistent(1).await;
}

#[tokio::test]
async fn a_spent_ip_budget_stops_costing_writes_until_its_window_ends() {
    // Window of one minute starting at T0's minute.
    let r = rig(&[("RATE_REGISTER_IP", "3/1m")]);
    for i in 0..3 {
        let ok = r.post_from(FLOODER, "/auth/users/", register_body(&format!("u{i}@example.com"))).await;
        assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    }
    let first = r.post_from(FLOODER, "/auth/users/", register_body("u3@example.com")).await;
    assert_throttled(&first);
    assert_eq!(r.store.calls(Op::Hit), 4, "the fourth request learnt the budget was spent");
    for i in 0..50 {
        assert_throttled(&r.post_from(FLOODER, "/auth/users/", register_body(&format!("f{i}@example.com"))).await);
    }
    assert_eq!(r.store.calls(Op::Hit), 4, "no write to a counter known to be spent");
    // The counter itself says the same: spent, and not written to since.
    let (counter, end) =
        throttle::ip_window("register", FLOODER, gatehouse_core::config::Rate { limit: 3, window: 60 }, r.now());
    let state = r.memory.read(std::slice::from_ref(&counter), r.now()).await.unwrap();
    assert_eq!(state[0].count, 4);
    // Another address is counted as usual meanwhile.
    let other = r.post_from("192.0.2.10", "/auth/users/", register_body("ada@example.com")).await;
    assert_eq!(other.status, StatusCode::CREATED);
    assert_eq!(r.store.calls(Op::Hit), 5);
    // Once the window ends, the flooder's requests are counted (and served) again.
    r.clock.set(end);
    let again = r.post_from(FLOODER, "/auth/users/", register_body("later@example.com")).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(r.store.calls(Op::Hit), 6);
    r.assert_consistent(5).await;
}

#[tokio::test]
async fn a_login_flood_at_one_account_answers_429_there_and_others_log_in() {
    let r = rig(&[]);
    r.active_user("victim@example.com").await;
    r.active_user("ada@example.com").await;
    // The account's failure budget (RATE_LOGIN_FAILURES_ACCOUNT) is the counter every attempt
    // at it, from any address, reads and writes.
    r.store.throttle_key("victim@example.com");
    let sessions = r.store.calls(Op::CreateSession);
    for ip in [FLOODER, "192.0.2.10"] {
        let body = json!({"email": "victim@example.com", "password": "guess"});
        assert_throttled(&r.post_from(ip, "/auth/jwt/create/", body).await);
    }
    assert_eq!(r.store.calls(Op::CreateSession), sessions, "no session opened");
    let ok = r.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    // Once DynamoDB serves the key again, the owner logs in.
    r.store.heal();
    let owner = r.post("/auth/jwt/create/", json!({"email": "victim@example.com", "password": PASSWORD})).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
}

#[tokio::test]
async fn a_reset_flood_at_one_address_answers_as_for_any_address_and_sends_nothing() {
    let r = rig(&[("EMAIL_COOLDOWN", "60s"), ("TIMING_FLOOR", "0s")]);
    r.active_user("victim@example.com").await;
    let before = r.sent_kinds("victim@example.com").len();
    // The address's email cooldown is the hot item: a 429 here would tell that it has an account.
    r.store.throttle_key("victim@example.com");
    let known = r.post("/auth/users/reset_password/", json!({"email": "victim@example.com"})).await;
    let unknown = r.post("/auth/users/reset_password/", json!({"email": "nobody@example.com"})).await;
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    assert_eq!(known.status, StatusCode::NO_CONTENT);
    assert_eq!(r.sent_kinds("victim@example.com").len(), before, "no email while the address is hot");
    assert_eq!(r.store.failures(Op::TakeCooldown), 1, "the cooldown was what DynamoDB refused");
    r.store.heal();
    assert_eq!(
        r.post("/auth/users/reset_password/", json!({"email": "victim@example.com"})).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(r.sent_kinds("victim@example.com").last(), Some(&EmailKind::PasswordReset));
}

#[tokio::test]
async fn a_hot_account_counter_refuses_a_password_check_without_ending_the_owners_session() {
    let r = rig(&[]);
    let (access, _) = r.active_user("victim@example.com").await;
    let victim = r.stored("victim@example.com").await.unwrap();
    assert_eq!(r.sessions(&victim).await, 1);
    // A flood of logins at the account from elsewhere makes its failure budget hot: the owner's
    // own password check is refused for now, but that is no verdict on the owner's session.
    r.store.throttle_key("victim@example.com");
    let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    let refused = r.call("POST", "/auth/users/set_password/", Some(body.clone()), Some(&access)).await;
    assert_throttled(&refused);
    assert_eq!(r.sessions(&victim).await, 1, "the session stays");
    r.store.heal();
    let done = r.call("POST", "/auth/users/set_password/", Some(body), Some(&access)).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
}
