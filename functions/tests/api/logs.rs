//! Secrets never reach the logs. The logs are captured through the functions' own subscriber
//! (`boot::log_subscriber`, what `init_tracing` installs) at the most verbose filter `RUST_LOG`
//! can ask for (`trace`), over the memory store and DynamoDB at the emulator, with link and
//! numeric codes, through every flow that handles a secret and through the failure paths that log
//! errors (store faults, mail faults). No password, token, code, `uid`, signing or code key,
//! password hash or code MAC may appear; and the logs must hold the lines the flows are known to
//! write (among them error lines), so that a silent subscriber cannot pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{settings, Reply, TestApp, PASSWORD, T0};
use gatehouse_core::domain::{CodePurpose, UserId};
use gatehouse_core::mail::{CaptureMailer, FaultyMailer, MailFault, MailFaults};
use gatehouse_core::ports::{FixedClock, OutgoingEmail, Store};
use gatehouse_core::store::faulty::INJECTED;
use gatehouse_core::store::{Faults, FaultyStore, MemoryStore, Op};
use gatehouse_functions::boot;
use lambda_http::http::StatusCode;
use serde_json::json;

const SIGNING_KEY: &str = "log-test-signing-key-log-test-signing-key!";
const CODE_KEY: &str = "log-test-code-key-log-test-code-key-log-test!";
const WRONG_PASSWORD: &str = "a wrong password, typed by mistake";
const NEW_PASSWORD: &str = "the newest passphrase of all";
const NEWER_PASSWORD: &str = "an even newer passphrase here";

/// A log sink for one test.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Captures this thread's logs (the tests run on a current-thread runtime) through the
/// functions' own subscriber, as `RUST_LOG=trace` would configure it.
fn capture() -> (Sink, tracing::subscriber::DefaultGuard) {
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = boot::log_subscriber(tracing_subscriber::EnvFilter::new("trace"), move || writer.clone());
    (sink, tracing::subscriber::set_default(subscriber))
}

/// Every key the app holds, in the settings each test app runs with.
const KEYS: [(&str, &str); 2] = [("JWT_SIGNING_KEY", SIGNING_KEY), ("CODE_KEY", CODE_KEY)];

fn overrides<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    KEYS.iter().copied().chain(extra.iter().copied()).collect()
}

/// What must never be logged, gathered as the test goes.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: &str, secret: impl Into<String>) {
        let secret = secret.into();
        assert!(secret.len() >= 6, "{what}: too short to look for: {secret:?}");
        self.0.push((what.to_owned(), secret));
    }

    /// The `uid`, token and (numeric) code of an email, and the MAC its code is stored as.
    async fn of_email(&mut self, t: &TestApp, m: &OutgoingEmail) {
        let Some(link) = &m.link else { return };
        let mut parts = link.rsplit('/');
        let (token, uid) = (parts.next().unwrap(), parts.next().unwrap());
        self.add(&format!("{:?} link", m.kind), link.clone());
        self.add(&format!("{:?} token", m.kind), token);
        self.add(&format!("{:?} uid", m.kind), uid);
        if let Some((_, code)) = m.text.split_once("Or type this code: ") {
            self.add(&format!("{:?} code", m.kind), code.split_whitespace().next().unwrap());
        }
        let user = gatehouse_core::secrets::decode_uid(uid).unwrap();
        let purpose = match m.kind {
            gatehouse_core::ports::EmailKind::Activation => CodePurpose::Activation,
            gatehouse_core::ports::EmailKind::PasswordReset => CodePurpose::PasswordReset,
            gatehouse_core::ports::EmailKind::EmailChange => CodePurpose::EmailChange,
            other => panic!("a link in a {other:?} email"),
        };
        self.add_mac(t, &user, purpose, token).await;
    }

    async fn add_mac(&mut self, t: &TestApp, user: &UserId, purpose: CodePurpose, code: &str) {
        let mac = gatehouse_core::services::codes::mac(&t.app, user, purpose, code).await.unwrap();
        self.add(&format!("{purpose:?} MAC"), mac);
    }

    /// Both tokens of a login or refresh answer.
    fn tokens(&mut self, what: &str, r: &Reply) {
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.body);
        self.add(&format!("{what} access"), r.body["access"].as_str().unwrap());
        self.add(&format!("{what} refresh"), r.body["refresh"].as_str().unwrap());
    }

    /// The keys of the settings, the password hash of every stored account.
    async fn standing(&mut self, t: &TestApp, emails: &[&str]) {
        for (var, key) in KEYS {
            self.add(var, key);
        }
        for email in emails {
            self.add("password hash", t.user(email).await.password_hash);
        }
    }

    /// Fails if any secret is in `logs`. An all-digit secret (a numeric code) counts only as a
    /// number of its own, not as digits inside a longer one.
    fn assert_absent_from(&self, logs: &str) {
        for (what, secret) in &self.0 {
            let found = if secret.bytes().all(|b| b.is_ascii_digit()) {
                logs.match_indices(secret.as_str()).any(|(at, _)| {
                    let before = logs[..at].chars().next_back();
                    let after = logs[at + secret.len()..].chars().next();
                    !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
                })
            } else {
                logs.contains(secret.as_str())
            };
            assert!(!found, "{what} reached the logs: {secret}");
        }
    }
}

/// Asserts that `logs` holds a line with each of these JSON fragments, so that a subscriber which
/// writes nothing (or another format) cannot pass.
#[track_caller]
fn assert_logged(logs: &str, fragments: &[&str]) {
    assert!(!logs.trim().is_empty(), "nothing was logged");
    for line in logs.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
    }
    for fragment in fragments {
        assert!(logs.lines().any(|l| l.contains(fragment)), "no log line with {fragment}:\n{logs}");
    }
}

/// Every flow that handles a secret, the way a user goes through them; returns what was sent
/// and issued. With `numeric`, codes are typed as `{email, code}` where the API takes them.
async fn every_flow(t: &TestApp, numeric: bool) -> Secrets {
    let mut s = Secrets::default();
    s.add("password", PASSWORD);
    let r = t.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (uid, token) = t.link_parts("ada@example.com");

    // Wrong codes are logged as such, without the code.
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": "wrong-token-value-000"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = if numeric {
        t.post("/auth/users/activation/", json!({"email": "ada@example.com", "code": token})).await
    } else {
        t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await
    };
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    let r = t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": WRONG_PASSWORD})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    s.add("wrong password", WRONG_PASSWORD);
    let login = t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    s.tokens("login", &login);
    let first_refresh = login.body["refresh"].as_str().unwrap().to_owned();
    let rotated = t.post("/auth/jwt/refresh/", json!({"refresh": first_refresh})).await;
    s.tokens("refresh", &rotated);
    t.clock.advance(60);
    // A replay: the session is revoked, and the owner alerted.
    let r = t.post("/auth/jwt/refresh/", json!({"refresh": first_refresh})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = t.post("/auth/jwt/verify/", json!({"token": first_refresh})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);

    let login = t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    s.tokens("second login", &login);
    let access = login.body["access"].as_str().unwrap().to_owned();
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.status, StatusCode::OK);
    let r = t.post("/auth/jwt/verify/", json!({"token": access})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // A change of address, confirmed by the link sent to the new one.
    let r = t
        .call(
            "POST",
            "/auth/users/set_email/",
            Some(json!({"current_password": PASSWORD, "new_email": "lovelace@example.com"})),
            Some(&access),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (uid, token) = t.link_parts("lovelace@example.com");
    let r = t.post("/auth/users/set_email_confirm/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // A password reset, then a password change.
    let r = t.post("/auth/users/reset_password/", json!({"email": "lovelace@example.com"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (uid, token) = t.link_parts("lovelace@example.com");
    let confirm = if numeric {
        json!({"email": "lovelace@example.com", "code": token, "new_password": NEW_PASSWORD})
    } else {
        json!({"uid": uid, "token": token, "new_password": NEW_PASSWORD})
    };
    let r = t.post("/auth/users/reset_password_confirm/", confirm).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    s.add("reset password", NEW_PASSWORD);
    let login = t.post("/auth/jwt/create/", json!({"email": "lovelace@example.com", "password": NEW_PASSWORD})).await;
    s.tokens("login after reset", &login);
    let access = login.body["access"].as_str().unwrap().to_owned();
    let change = json!({"current_password": NEW_PASSWORD, "new_password": NEWER_PASSWORD});
    let r = t.call("POST", "/auth/users/set_password/", Some(change), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    s.add("changed password", NEWER_PASSWORD);
    let r = t.call("DELETE", "/auth/sessions/", None, Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    for m in t.mail.sent() {
        s.of_email(t, &m).await;
    }
    s.standing(t, &["lovelace@example.com"]).await;
    s
}

/// The lines every run of `every_flow` must have written.
const FLOW_LINES: [&str; 11] = [
    r#""event":"register","outcome":"ok""#,
    r#""event":"code","outcome":"invalid""#,
    r#""event":"activation","outcome":"ok""#,
    r#""event":"login","outcome":"failed""#,
    r#""event":"login","outcome":"ok""#,
    r#""event":"refresh","outcome":"ok""#,
    r#""event":"refresh","outcome":"reuse""#,
    r#""event":"email_change","outcome":"confirmed""#,
    r#""event":"password_reset","outcome":"confirmed""#,
    r#""event":"password_change","outcome":"ok""#,
    r#""event":"logout","outcome":"everywhere""#,
];

#[tokio::test]
async fn no_secret_of_any_flow_reaches_the_logs_memory_store_link_codes() {
    let (sink, _guard) = capture();
    let t = common::spawn_app(&overrides(&[]));
    let secrets = every_flow(&t, false).await;
    let logs = sink.text();
    assert_logged(&logs, &FLOW_LINES);
    secrets.assert_absent_from(&logs);
}

#[tokio::test]
async fn no_secret_of_any_flow_reaches_the_logs_memory_store_numeric_codes() {
    let (sink, _guard) = capture();
    let t = common::spawn_app(&overrides(&[("CODE_FORMAT", "numeric")]));
    let secrets = every_flow(&t, true).await;
    let logs = sink.text();
    assert_logged(&logs, &FLOW_LINES);
    secrets.assert_absent_from(&logs);
}

#[tokio::test]
async fn no_secret_of_any_flow_reaches_the_logs_dynamodb_link_codes() {
    let (sink, _guard) = capture();
    let t = common::spawn_app_dynamo(&overrides(&[])).await;
    let secrets = every_flow(&t, false).await;
    let logs = sink.text();
    assert_logged(&logs, &FLOW_LINES);
    secrets.assert_absent_from(&logs);
}

#[tokio::test]
async fn no_secret_of_any_flow_reaches_the_logs_dynamodb_numeric_codes() {
    let (sink, _guard) = capture();
    let t = common::spawn_app_dynamo(&overrides(&[("CODE_FORMAT", "numeric")])).await;
    let secrets = every_flow(&t, true).await;
    let logs = sink.text();
    assert_logged(&logs, &FLOW_LINES);
    secrets.assert_absent_from(&logs);
}

/// The test app over `store` behind a `FaultyStore`, and a `FaultyMailer` before the capture
/// mailer.
fn rig(store: Arc<dyn Store>, extra: &[(&str, &str)]) -> (TestApp, Faults, MailFaults) {
    let (store, faults) = FaultyStore::new(store);
    let capture = Arc::new(CaptureMailer::new());
    let (mailer, mail) = FaultyMailer::new(capture.clone());
    let clock = Arc::new(FixedClock::new(T0));
    let settings = settings(&overrides(extra));
    let app = common::instrumented_app(settings, Arc::new(store), Arc::new(mailer), clock.clone(), None);
    (TestApp { app: Arc::new(app), mail: capture, clock, memory: None, dynamo: None }, faults, mail)
}

#[track_caller]
fn assert_unavailable(r: &Reply, what: &str) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {}", r.body);
}

/// Store and mail failures on every path that handles a secret: each is logged (at error or warn
/// level, with the failure's text), and none with the secret.
async fn failure_paths(t: &TestApp, store: &Faults, mail: &MailFaults) -> Secrets {
    let mut s = Secrets::default();
    s.add("password", PASSWORD);

    // Registration: the store fails once, then the activation email cannot be sent.
    let body = json!({"email": "ada@example.com", "password": PASSWORD});
    store.fail_next(Op::CreateUser, 1);
    assert_unavailable(&t.post("/auth/users/", body.clone()).await, "register");
    mail.fail_next(MailFault::Rejected, 1);
    let r = t.post("/auth/users/", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = t.post("/auth/users/resend_activation/", json!({"email": "ada@example.com"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (uid, token) = t.link_parts("ada@example.com");
    store.fail_next(Op::Activate, 1);
    assert_unavailable(&t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await, "activation");
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    // Login and refresh with the store down.
    store.fail_next(Op::FindUserForLogin, 1);
    let login = json!({"email": "ada@example.com", "password": PASSWORD});
    assert_unavailable(&t.post("/auth/jwt/create/", login.clone()).await, "login");
    store.fail_next(Op::CreateSession, 1);
    assert_unavailable(&t.post("/auth/jwt/create/", login.clone()).await, "login, session write");
    let r = t.post("/auth/jwt/create/", login.clone()).await;
    s.tokens("login", &r);
    let (access, refresh) =
        (r.body["access"].as_str().unwrap().to_owned(), r.body["refresh"].as_str().unwrap().to_owned());
    store.fail_next(Op::RotateSession, 1);
    assert_unavailable(&t.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await, "refresh");
    store.fail_all();
    assert_unavailable(&t.post("/auth/jwt/verify/", json!({"token": refresh})).await, "verify");
    assert_unavailable(&t.call("GET", "/auth/users/me/", None, Some(&access)).await, "me");
    store.heal();

    // A change of address whose link cannot be sent.
    mail.fail_next(MailFault::TimedOut, 1);
    let change = json!({"current_password": PASSWORD, "new_email": "lovelace@example.com"});
    let r = t.call("POST", "/auth/users/set_email/", Some(change), Some(&access)).await;
    assert_unavailable(&r, "set_email, link not sent");

    // A reset whose email fails, then a confirmation the store fails, then one whose sessions
    // are not removed.
    mail.fail_next(MailFault::Throttled, 1);
    let r = t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = t.post("/auth/users/reset_password/", json!({"email": "ada@example.com"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (uid, token) = t.link_parts("ada@example.com");
    let confirm = json!({"uid": uid, "token": token, "new_password": NEW_PASSWORD});
    store.fail_next(Op::ResetPassword, 1);
    assert_unavailable(&t.post("/auth/users/reset_password_confirm/", confirm.clone()).await, "reset confirm");
    store.fail_next(Op::DeleteSessions, 1);
    let r = t.post("/auth/users/reset_password_confirm/", confirm).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    s.add("reset password", NEW_PASSWORD);

    // A password change the store fails.
    let r = t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": NEW_PASSWORD})).await;
    s.tokens("login after reset", &r);
    let access = r.body["access"].as_str().unwrap().to_owned();
    store.fail_next(Op::UpdateUser, 1);
    let change = json!({"current_password": NEW_PASSWORD, "new_password": NEWER_PASSWORD});
    let r = t.call("POST", "/auth/users/set_password/", Some(change), Some(&access)).await;
    assert_unavailable(&r, "set_password");
    s.add("new password, not set", NEWER_PASSWORD);

    // Every email tried, delivered or not.
    for attempt in mail.attempts() {
        s.of_email(t, &attempt.email).await;
    }
    s.standing(t, &["ada@example.com"]).await;
    s
}

/// The lines `failure_paths` must have written: errors with the injected failure's text.
const FAILURE_LINES: [&str; 5] = [
    r#""level":"ERROR""#,
    r#""outcome":"unavailable""#,
    INJECTED,
    r#""event":"email","outcome":"failed""#,
    r#""event":"password_reset","outcome":"sessions_not_removed""#,
];

#[tokio::test]
async fn failures_are_logged_without_secrets_memory_store() {
    let (sink, _guard) = capture();
    let (t, store, mail) = rig(Arc::new(MemoryStore::new()), &[]);
    let secrets = failure_paths(&t, &store, &mail).await;
    let logs = sink.text();
    assert_logged(&logs, &FAILURE_LINES);
    assert!(logs.lines().filter(|l| l.contains(r#""level":"ERROR""#)).count() >= 10, "{logs}");
    secrets.assert_absent_from(&logs);
}

#[tokio::test]
async fn failures_are_logged_without_secrets_dynamodb() {
    let (sink, _guard) = capture();
    let dynamo = common::spawn_app_dynamo(&[]).await.dynamo.unwrap();
    let (t, store, mail) = rig(Arc::new(dynamo), &[("CODE_FORMAT", "numeric")]);
    let secrets = failure_paths(&t, &store, &mail).await;
    let logs = sink.text();
    assert_logged(&logs, &FAILURE_LINES);
    assert!(logs.lines().filter(|l| l.contains(r#""level":"ERROR""#)).count() >= 10, "{logs}");
    secrets.assert_absent_from(&logs);
}

#[test]
fn the_trace_output_of_other_crates_never_reaches_the_logs_whatever_rust_log_says() {
    let (sink, _guard) = capture();
    // What lambda_runtime writes at TRACE for each invocation, and the AWS SDK for each response.
    tracing::trace!(
        target: "lambda_runtime::layers::api_response",
        body = r#"{"body": "{\"password\": \"correct horse battery\"}"}"#,
        "raw JSON event received from Lambda"
    );
    tracing::trace!(
        target: "aws_smithy_runtime::client::orchestrator::http",
        response = r#"{"Item": {"password_hash": {"S": "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA"}}}"#,
        "read HTTP response body"
    );
    // Their other levels, and our own TRACE, still go out.
    tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "beginning attempt #1");
    tracing::trace!(target: "gatehouse_core::services", event = "probe", "our own trace line");
    let logs = sink.text();
    assert_logged(&logs, &["beginning attempt #1", "our own trace line"]);
    assert!(!logs.contains("raw JSON event") && !logs.contains(PASSWORD), "{logs}");
    assert!(!logs.contains("read HTTP response body") && !logs.contains("argon2id"), "{logs}");
}

const ADMIN_MADE_PASSWORD: &str = "a passphrase the admin chose";
const ACTIVE_MADE_PASSWORD: &str = "another passphrase, active at once";

/// Accounts made through `POST /auth/admin/users/` with passwords (sent twice, as `password` and
/// `re_password`, which only `USER_CREATE_PASSWORD_RETYPE` reads): refused by
/// the password policy, failed by the store, made inactive with an activation email that cannot
/// be sent and then resent, and made active at once; returns what was sent and issued.
async fn admin_creations(t: &TestApp, store: &Faults, mail: &MailFaults) -> Secrets {
    let mut s = Secrets::default();
    s.add("password", PASSWORD);
    let (access, refresh) = t.active_user("root@example.com").await;
    t.make_superuser("root@example.com").await;
    s.add("admin access", access.clone());
    s.add("admin refresh", refresh);
    let create = |email: &str, password: &str, extra: serde_json::Value| {
        let mut body = json!({"email": email, "password": password, "re_password": password});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let post = |body: serde_json::Value| t.call("POST", "/auth/admin/users/", Some(body), Some(&access));

    // Refused by the password policy: a common password, an entirely numeric one.
    for refused in ["password1234", "8675309123"] {
        let r = post(create("desk@example.com", refused, json!({}))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        s.add("refused password", refused);
    }
    // The store fails the write.
    store.fail_next(Op::CreateUser, 1);
    let body = create(
        "desk@example.com",
        ADMIN_MADE_PASSWORD,
        json!({"username": "desk", "user_permissions": ["auth.view_group"]}),
    );
    assert_unavailable(&post(body.clone()).await, "admin create");
    // Made inactive, its activation email rejected, then resent.
    mail.fail_next(MailFault::Rejected, 1);
    let r = post(body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = t.post("/auth/users/resend_activation/", json!({"email": "desk@example.com"})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    s.add("admin-made password", ADMIN_MADE_PASSWORD);
    // Made active at once: no email, and it logs in.
    let r = post(create("till@example.com", ACTIVE_MADE_PASSWORD, json!({"is_active": true}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    s.add("active-made password", ACTIVE_MADE_PASSWORD);
    let login =
        t.post("/auth/jwt/create/", json!({"email": "till@example.com", "password": ACTIVE_MADE_PASSWORD})).await;
    s.tokens("login of the account made", &login);

    for attempt in mail.attempts() {
        s.of_email(t, &attempt.email).await;
    }
    s.standing(t, &["root@example.com", "desk@example.com", "till@example.com"]).await;
    s
}

/// The lines `admin_creations` must have written.
const ADMIN_CREATION_LINES: [&str; 5] = [
    r#""event":"admin_user","outcome":"created""#,
    r#""level":"ERROR""#,
    r#""outcome":"unavailable""#,
    INJECTED,
    r#""event":"email","outcome":"failed""#,
];

#[tokio::test]
async fn no_password_or_token_of_an_admin_creation_reaches_the_logs_memory_store() {
    let (sink, _guard) = capture();
    let (t, store, mail) = rig(Arc::new(MemoryStore::new()), &[]);
    let secrets = admin_creations(&t, &store, &mail).await;
    let logs = sink.text();
    assert_logged(&logs, &ADMIN_CREATION_LINES);
    secrets.assert_absent_from(&logs);
}

#[tokio::test]
async fn no_password_or_token_of_an_admin_creation_reaches_the_logs_dynamodb() {
    let (sink, _guard) = capture();
    let dynamo = common::spawn_app_dynamo(&[]).await.dynamo.unwrap();
    let (t, store, mail) = rig(Arc::new(dynamo), &[("CODE_FORMAT", "numeric")]);
    let secrets = admin_creations(&t, &store, &mail).await;
    let logs = sink.text();
    assert_logged(&logs, &ADMIN_CREATION_LINES);
    secrets.assert_absent_from(&logs);
}

#[tokio::test]
async fn every_audit_entry_is_logged_first_and_a_lost_write_is_logged_again() {
    let (sink, _guard) = capture();
    let (t, faults, _) = rig(Arc::new(MemoryStore::new()), &[]);
    t.active_user("ada@example.com").await;
    let ada = t.user("ada@example.com").await.id;
    faults.fail_next(Op::AppendAudit, 1);
    let wrong = json!({"email": "ada@example.com", "password": WRONG_PASSWORD});
    assert_eq!(t.post("/auth/jwt/create/", wrong).await.status, StatusCode::UNAUTHORIZED);
    let logs = sink.text();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains(r#""event":"audit""#)).collect();
    let entry = lines.iter().find(|l| l.contains(r#""action":"login.failed""#)).expect("the entry is logged");
    assert!(entry.contains(&format!(r#""target":"{ada}""#)), "{entry}");
    assert!(entry.contains(&format!(r#""ip":"{}""#, common::IP)), "{entry}");
    let id = entry.split(r#""audit_id":""#).nth(1).and_then(|r| r.split('"').next()).unwrap();
    let lost = lines.iter().find(|l| l.contains(r#""outcome":"not_written""#)).expect("the lost write is logged");
    assert!(lost.contains(id) && lost.contains(r#""level":"ERROR""#), "{id}: {lost}\n{entry}");
    for secret in [WRONG_PASSWORD, PASSWORD] {
        assert!(!logs.contains(secret), "{secret} in the logs");
    }
}
