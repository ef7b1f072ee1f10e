//! Faults at the AWS edge, through the emulator's fault injector (`tools/emulator.py`, path
//! `/_fault`; `make test` starts the emulator and sets GATEHOUSE_TEST_DYNAMODB_ENDPOINT). Each
//! fault is scoped to this test's own table or recipient address, so tests sharing the emulator
//! do not see each other's faults. The injector counts the requests each fault matched, which is
//! how these tests see the SDK's retries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{emulator_endpoint, settings, spawn_app_dynamo, Reply, TestApp, PASSWORD, T0};
use gatehouse_core::mail::{FaultyMailer, MailFaults, SesMailer};
use gatehouse_core::ports::FixedClock;
use gatehouse_core::store::DynamoStore;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

/// Requests the SDK makes for one call in its standard retry mode: the first and two retries.
const SDK_MAX_ATTEMPTS: u64 = 3;
/// Requests the store makes for one transaction that keeps losing to a concurrent one: the first
/// and `CONFLICT_RETRIES` (8) of its own, jittered retries.
const STORE_TRANSACTION_ATTEMPTS: u64 = 9;

const BATCH_GET: &str = "DynamoDB_20120810.BatchGetItem";
const TRANSACT_WRITE: &str = "DynamoDB_20120810.TransactWriteItems";
const SES_SEND: &str = "POST /v2/email/outbound-emails";

/// One call to the injector's control path, over plain HTTP/1.1.
fn control(method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    gatehouse_core::testing::emulator_control(&emulator_endpoint(), method, path, body)
}

/// An armed fault; disarmed when dropped.
struct Fault(u64);

impl Fault {
    fn arm(spec: Value) -> Fault {
        let reply = control("POST", "/_fault", Some(&spec)).unwrap_or_else(|e| {
            panic!("the emulator's fault injector refused {spec}: {e} (is this tools/emulator.py?)")
        });
        Fault(reply["id"].as_u64().unwrap())
    }

    fn state(&self) -> Value {
        control("GET", &format!("/_fault/{}", self.0), None).unwrap()
    }

    /// Requests that matched: failed ones and those let through once it was spent.
    fn seen(&self) -> u64 {
        self.state()["seen"].as_u64().unwrap()
    }

    /// Requests it failed.
    fn fired(&self) -> u64 {
        self.state()["fired"].as_u64().unwrap()
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        let _ = control("DELETE", &format!("/_fault/{}", self.0), None);
    }
}

fn table(t: &TestApp) -> String {
    t.dynamo.as_ref().unwrap().table().to_owned()
}

/// The documented answer to a store failure; nothing of the AWS error in it.
#[track_caller]
fn assert_unavailable(r: &Reply, table: &str) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"detail": "Service temporarily unavailable, try again soon.", "code": "service_unavailable"})
    );
    assert_eq!(r.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let text = r.body.to_string();
    for leak in [table, "injected", "Exception", "InternalServerError", "dynamodb", "DynamoDB"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
}

async fn count_items(t: &TestApp, prefix: &str, sk: &str) -> usize {
    let items = t.dynamo.as_ref().unwrap().scan_prefix(prefix).await.unwrap();
    items.iter().filter(|i| i["sk"].as_s().unwrap() == sk).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried_by_the_sdk_and_pass_when_they_clear() {
    let t = spawn_app_dynamo(&[]).await;
    let (access, _) = t.active_user("ada@example.com").await;
    for (status, code) in [
        (400, "ProvisionedThroughputExceededException"),
        (400, "ThrottlingException"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
    ] {
        let fault =
            Fault::arm(json!({"target": BATCH_GET, "contains": table(&t), "count": 2, "status": status, "code": code}));
        let me = t.call("GET", "/auth/users/me/", None, Some(&access)).await;
        assert_eq!(me.status, StatusCode::OK, "{code}: {}", me.body);
        assert_eq!(me.body["email"], "ada@example.com");
        assert_eq!((fault.fired(), fault.seen()), (2, 3), "{code}: two failures, then the retry that passed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_outlasting_the_retries_is_a_503_after_a_bounded_number_of_attempts() {
    let t = spawn_app_dynamo(&[]).await;
    let (access, _) = t.active_user("ada@example.com").await;
    let message = format!("Internal error on table {}", table(&t));
    let fault = Fault::arm(json!({
        "target": BATCH_GET, "contains": table(&t), "count": 1000, "status": 500,
        "code": "InternalServerError", "message": message,
    }));
    let me = t.call("GET", "/auth/users/me/", None, Some(&access)).await;
    assert_unavailable(&me, &table(&t));
    assert_eq!(fault.seen(), SDK_MAX_ATTEMPTS, "bounded retries");
    drop(fault);
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_registration_writes_nothing_and_the_retry_creates_one_account() {
    let t = spawn_app_dynamo(&[]).await;
    let fault = Fault::arm(json!({
        "target": TRANSACT_WRITE, "contains": table(&t), "count": 1000, "status": 400,
        "code": "ProvisionedThroughputExceededException",
    }));
    let body = json!({"email": "ada@example.com", "password": PASSWORD});
    assert_unavailable(&t.post("/auth/users/", body.clone()).await, &table(&t));
    assert_eq!(fault.seen(), SDK_MAX_ATTEMPTS);
    assert_eq!(count_items(&t, "USER#", "PROFILE").await, 0);
    assert_eq!(count_items(&t, "EMAIL#", "EMAIL").await, 0);
    assert!(t.mail.sent().is_empty());
    drop(fault);
    let retry = t.post("/auth/users/", body).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    assert_eq!(count_items(&t, "USER#", "PROFILE").await, 1);
    assert_eq!(count_items(&t, "EMAIL#", "EMAIL").await, 1);
    assert_eq!(t.mail.sent().len(), 1);
}

/// A flood from one address keeps its rate counter hot: DynamoDB throttles that item (and only
/// it). The flooder gets 429 after the SDK's retries, then no call at all for the rest of the
/// window; nothing is written; everyone else registers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_rate_counter_is_429_for_its_address_and_costs_no_more_calls() {
    let t = spawn_app_dynamo(&[("RATE_REGISTER_IP", "1000/1h")]).await;
    let flooder = "198.51.100.77";
    let fault = Fault::arm(json!({
        "target": "DynamoDB_20120810.UpdateItem", "contains": format!("RATE#register#{flooder}"), "count": 1000,
        "status": 400, "code": "ProvisionedThroughputExceededException",
    }));
    for i in 0..3 {
        let body = json!({"email": format!("flood{i}@example.com"), "password": PASSWORD});
        let r = t.post_from(flooder, "/auth/users/", body).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        assert_eq!(r.body["code"], "throttled");
        assert!(!r.body.to_string().contains("Throughput"), "{}", r.body);
    }
    assert_eq!(fault.seen(), SDK_MAX_ATTEMPTS, "the SDK's attempts for the first request, none after");
    assert_eq!(count_items(&t, "USER#", "PROFILE").await, 0);
    let other =
        t.post_from("192.0.2.10", "/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);
    assert_eq!(count_items(&t, "USER#", "PROFILE").await, 1);
}

/// A rate counter costs one write per request: the ADD, not a failed conditional write first
/// (billed too, and the hot item's write rate doubled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_counter_hit_is_one_write() {
    let t = spawn_app_dynamo(&[("RATE_REGISTER_IP", "1000/1h")]).await;
    let ip = "192.0.2.111";
    let watch = Fault::arm(json!({
        "target": "DynamoDB_20120810.UpdateItem", "contains": format!("RATE#register#{ip}"), "count": 0,
        "status": 400, "code": "ValidationException",
    }));
    for i in 0..3 {
        let body = json!({"email": format!("one-write{i}@example.com"), "password": PASSWORD});
        assert_eq!(t.post_from(ip, "/auth/users/", body).await.status, StatusCode::CREATED);
    }
    assert_eq!((watch.seen(), watch.fired()), (3, 0));
}

/// A login's reservation is one transaction over its counters; DynamoDB cancels it with
/// `ThrottlingError` for the hot one. That login is refused with 429, opens no session, and an
/// account elsewhere logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_cancelled_for_throttling_is_429_and_opens_no_session() {
    let t = spawn_app_dynamo(&[("RATE_LOGIN_FAILURES_IP", "100/1h")]).await;
    t.active_user("victim@example.com").await;
    t.active_user("ada@example.com").await;
    let sessions = || async {
        let items = t.dynamo.as_ref().unwrap().scan_prefix("USER#").await.unwrap();
        items.iter().filter(|i| i["sk"].as_s().unwrap().starts_with("SESSION#")).count()
    };
    let before = sessions().await;
    let fault = Fault::arm(json!({
        "target": TRANSACT_WRITE, "contains": "RATE#login_account#victim@example.com", "count": 1000,
        "status": 400, "code": "TransactionCanceledException", "reasons": ["None", "ThrottlingError", "None"],
    }));
    let r = t.post("/auth/jwt/create/", json!({"email": "victim@example.com", "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(fault.fired(), 1, "not retried as a conflict would be");
    assert_eq!(sessions().await, before);
    let ok = t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_conflict_is_retried_by_the_store_itself() {
    let t = spawn_app_dynamo(&[]).await;
    let conflict = |count: u64| {
        json!({
            "target": TRANSACT_WRITE, "contains": table(&t), "count": count, "status": 400,
            "code": "TransactionCanceledException", "reasons": ["None", "TransactionConflict", "None"],
        })
    };
    // Three conflicts, then the transaction goes through: one account, one claim.
    let fault = Fault::arm(conflict(3));
    let r = t.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((fault.fired(), fault.seen()), (3, 4), "the SDK does not retry a cancelled transaction; we do");
    drop(fault);
    assert_eq!(count_items(&t, "USER#", "PROFILE").await, 1);
    assert_eq!(count_items(&t, "EMAIL#", "EMAIL").await, 1);
    // A conflict that never ends: bounded, then 503, nothing written.
    let fault = Fault::arm(conflict(1000));
    let r = t.post("/auth/users/", json!({"email": "bob@example.com", "password": PASSWORD})).await;
    assert_unavailable(&r, &table(&t));
    assert_eq!(fault.seen(), STORE_TRANSACTION_ATTEMPTS);
    assert_eq!(count_items(&t, "USER#", "PROFILE").await, 1);
    assert_eq!(count_items(&t, "EMAIL#", "EMAIL").await, 1);
}

/// The app over DynamoDB and SES at the emulator; SES behind a [`FaultyMailer`] that only watches
/// (what was tried, what SES accepted). With `function_timeouts`, the SDK clients have the
/// timeouts `app_from_env` gives the functions (tests that do not hang anything keep the
/// emulator's defaults: a busy emulator must not time out their writes).
async fn spawn_app_aws(function_timeouts: bool) -> (TestApp, MailFaults) {
    // The functions' retry policy (attempts and backoff), as `app_from_env` sets it.
    let mut sdk = gatehouse_core::aws::local_aws_config(&emulator_endpoint())
        .await
        .to_builder()
        .retry_config(gatehouse_core::aws::sdk_retries())
        .build();
    if function_timeouts {
        sdk = sdk.to_builder().timeout_config(gatehouse_core::aws::sdk_timeouts()).build();
    }
    let table = format!("t-{}", gatehouse_core::secrets::random_id().unwrap().to_lowercase().replace(['-', '_'], "x"));
    let store = DynamoStore::new(common::dynamodb_client(&sdk), table);
    store.create_table().await.unwrap();
    let settings = settings(&[]);
    let ses_client = aws_sdk_sesv2::Client::from_conf(
        aws_sdk_sesv2::config::Builder::from(&sdk).interceptor(gatehouse_core::iam::Interceptor).build(),
    );
    let ses = SesMailer::new(ses_client, settings.email_from.clone());
    ses.verify_sender().await.unwrap();
    let (mailer, watch) = FaultyMailer::new(Arc::new(ses));
    let clock = Arc::new(FixedClock::new(T0));
    let app = common::instrumented_app(settings, Arc::new(store.clone()), Arc::new(mailer), clock.clone(), None);
    let capture = Arc::new(gatehouse_core::mail::CaptureMailer::new());
    (TestApp { app: Arc::new(app), mail: capture, clock, memory: None, dynamo: Some(store) }, watch)
}

/// (uid, token) of the newest link SES accepted.
fn delivered_link(mail: &MailFaults) -> (String, String) {
    let link = mail.delivered().last().and_then(|m| m.link.clone()).expect("a delivered email with a link");
    let mut parts = link.rsplit('/');
    let token = parts.next().unwrap().to_owned();
    (parts.next().unwrap().to_owned(), token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_rejecting_the_activation_email_keeps_the_account_and_resend_recovers_it() {
    let (t, mail) = spawn_app_aws(false).await;
    let address = format!("{}@example.com", table(&t));
    let rejected = Fault::arm(json!({
        "path": SES_SEND, "contains": address, "count": 1, "status": 400, "code": "MessageRejected",
        "message": "Email address is not verified.",
    }));
    let r = t.post("/auth/users/", json!({"email": address, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((rejected.fired(), rejected.seen()), (1, 1), "a rejection is final: not retried");
    assert_eq!(mail.attempts().len(), 1);
    assert!(mail.delivered().is_empty());
    assert_eq!(count_items(&t, "USER#", "PROFILE").await, 1, "the account is kept");
    let again = t.post("/auth/users/", json!({"email": address, "password": PASSWORD})).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);

    let resend = t.post("/auth/users/resend_activation/", json!({"email": address})).await;
    assert_eq!(resend.status, StatusCode::NO_CONTENT);
    assert_eq!((rejected.fired(), rejected.seen()), (1, 2));
    assert_eq!(mail.delivered().len(), 1, "SES accepted the resent email");
    let (uid, token) = delivered_link(&mail);
    let done = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    let login = t.post("/auth/jwt/create/", json!({"email": address, "password": PASSWORD})).await;
    assert_eq!(login.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_failing_throughout_is_retried_a_bounded_number_of_times_and_the_account_is_kept() {
    let (t, mail) = spawn_app_aws(false).await;
    let address = format!("{}@example.com", table(&t));
    let down = Fault::arm(json!({
        "path": SES_SEND, "contains": address, "count": 1000, "status": 500, "code": "InternalFailure",
    }));
    let r = t.post("/auth/users/", json!({"email": address, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(down.seen(), SDK_MAX_ATTEMPTS);
    assert!(mail.delivered().is_empty());
    drop(down);
    let resend = t.post("/auth/users/resend_activation/", json!({"email": address})).await;
    assert_eq!(resend.status, StatusCode::NO_CONTENT);
    assert_eq!(mail.delivered().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_whose_partition_cleanup_fails_still_deletes_it() {
    let t = spawn_app_dynamo(&[]).await;
    let (access, _) = t.active_user("ada@example.com").await;
    t.login("ada@example.com").await;
    let fault = Fault::arm(json!({
        "target": "DynamoDB_20120810.Query", "contains": table(&t), "count": 1000, "status": 500,
        "code": "InternalServerError",
    }));
    let r = t.call("DELETE", "/auth/users/me/", Some(json!({"current_password": PASSWORD})), Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(fault.seen(), SDK_MAX_ATTEMPTS);
    drop(fault);
    // The user and its claim went in one transaction; what is left nothing can reach (its
    // sessions, which expire on their own and `authctl doctor` removes).
    assert_eq!(count_items(&t, "USER#", "PROFILE").await, 0);
    assert_eq!(count_items(&t, "EMAIL#", "EMAIL").await, 0);
    let left = t.dynamo.as_ref().unwrap().scan_prefix("USER#").await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|i| i["sk"].as_s().unwrap().starts_with("SESSION#")), "{left:?}");
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.status, StatusCode::UNAUTHORIZED);
    let again = t.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
}

/// A transaction whose reply is lost after the commit (a 500 from a request that was applied) is
/// retried by the SDK. On DynamoDB the store's ClientRequestToken makes that retry answer success;
/// the emulator ignores the token, so here the retry meets its own write: the worst case, still
/// consistent, with the documented error telling the client what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_transaction_whose_reply_is_lost_ends_in_the_documented_already_done_answers() {
    let t = spawn_app_dynamo(&[]).await;
    let lost = |count: u64| {
        json!({
            "target": TRANSACT_WRITE, "contains": table(&t), "count": count, "status": 500,
            "code": "InternalServerError", "after": true,
        })
    };
    let fault = Fault::arm(lost(1));
    let r = t.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!((fault.fired(), fault.seen()), (1, 2), "applied, reply lost, retried by the SDK");
    assert_eq!(r.body, json!({"email": ["user with this email address already exists."]}));
    drop(fault);
    assert_eq!(count_items(&t, "USER#", "PROFILE").await, 1);
    assert_eq!(count_items(&t, "EMAIL#", "EMAIL").await, 1);
    assert!(t.mail.sent().is_empty(), "the activation email was not sent");
    let resend = t.post("/auth/users/resend_activation/", json!({"email": "ada@example.com"})).await;
    assert_eq!(resend.status, StatusCode::NO_CONTENT);
    let (uid, token) = t.link_parts("ada@example.com");

    let fault = Fault::arm(lost(1));
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!((fault.fired(), fault.seen()), (1, 2));
    assert_eq!(r.body, json!({"detail": "Stale token for given user.", "code": "stale_token"}));
    drop(fault);
    t.login("ada@example.com").await;
}

/// The Lambda functions' own timeout (infra/template.yaml, Globals.Function.Timeout).
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_dynamodb_ends_in_a_503_well_before_the_lambda_timeout() {
    let (t, mail) = spawn_app_aws(true).await;
    let address = format!("{}@example.com", table(&t));
    let r = t.post("/auth/users/", json!({"email": address, "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (uid, token) = delivered_link(&mail);
    assert_eq!(
        t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await.status,
        StatusCode::NO_CONTENT
    );
    let login = t.post("/auth/jwt/create/", json!({"email": address, "password": PASSWORD})).await;
    let access = login.body["access"].as_str().unwrap().to_owned();
    let hung = Fault::arm(json!({
        "target": BATCH_GET, "contains": table(&t), "count": 1000, "delay": 30, "status": 500,
        "code": "InternalServerError",
    }));
    let started = Instant::now();
    let me = t.call("GET", "/auth/users/me/", None, Some(&access)).await;
    let took = started.elapsed();
    assert_unavailable(&me, &table(&t));
    assert!(took < LAMBDA_TIMEOUT - Duration::from_secs(2), "took {took:?}");
    assert!(hung.seen() >= 2, "a hung attempt is abandoned and retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_ses_still_registers_in_time_and_resend_recovers() {
    let (t, mail) = spawn_app_aws(true).await;
    let address = format!("{}@example.com", table(&t));
    let hung = Fault::arm(json!({
        "path": SES_SEND, "contains": address, "count": 1000, "delay": 30, "status": 500, "code": "InternalFailure",
    }));
    let started = Instant::now();
    let r = t.post("/auth/users/", json!({"email": address, "password": PASSWORD})).await;
    let took = started.elapsed();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(took < LAMBDA_TIMEOUT - Duration::from_secs(2), "took {took:?}");
    assert!(mail.delivered().is_empty());
    drop(hung);
    let resend = t.post("/auth/users/resend_activation/", json!({"email": address})).await;
    assert_eq!(resend.status, StatusCode::NO_CONTENT);
    assert_eq!(mail.delivered().len(), 1);
}

const GET_SECRET: &str = "secretsmanager.GetSecretValue";

/// A new secret in the emulator's Secrets Manager: (ARN, version id).
async fn secret(value: &str) -> (String, String) {
    let sdk = gatehouse_core::aws::local_aws_config(&emulator_endpoint()).await;
    let name = format!("gatehouse/test/{}", gatehouse_core::secrets::random_id().unwrap());
    let out =
        aws_sdk_secretsmanager::Client::new(&sdk).create_secret().name(name).secret_string(value).send().await.unwrap();
    (out.arn().unwrap().to_owned(), out.version_id().unwrap().to_owned())
}

/// Secrets Manager failing every read of this secret (500s), until dropped.
fn secrets_manager_down(arn: &str) -> Fault {
    Fault::arm(
        json!({"target": GET_SECRET, "contains": arn, "count": 100, "status": 500, "code": "InternalServiceError"}),
    )
}

/// Registers and activates ada@example.com (neither needs the signing key), then tries to log in.
async fn first_login(t: &TestApp) -> Reply {
    let (uid, token) = t.register("ada@example.com").await;
    let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    t.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD})).await
}

/// The `kid=x` pair of an Ed25519 PEM, under `kid`.
fn listed(pem: &str, kid: &str) -> String {
    let key = gatehouse_core::tokens::SigningKey::parse(gatehouse_core::tokens::JwtAlgorithm::EdDsa, pem).unwrap();
    format!("{kid}={}", key.public().unwrap().pair().split_once('=').unwrap().1)
}

/// A fresh "container": the app over the memory store, with its signing key read from the
/// emulator's Secrets Manager as the deployed functions read it (the functions' retry policy).
/// `memory`: the store of another "container" to share (what the table is to the functions).
async fn spawn_app_secret(overrides: &[(&str, &str)], memory: Option<&TestApp>) -> TestApp {
    let sdk = gatehouse_core::aws::local_aws_config(&emulator_endpoint())
        .await
        .to_builder()
        .retry_config(gatehouse_core::aws::sdk_retries())
        .build();
    let mut vars: Vec<(&str, &str)> = vec![("JWT_SIGNING_KEY", "")];
    let code_key = "c".repeat(32);
    if !overrides.iter().any(|(k, _)| *k == "CODE_KEY_SECRET_ARN") {
        vars.push(("CODE_KEY", &code_key));
    }
    vars.extend_from_slice(overrides);
    let settings = settings(&vars);
    assert!(settings.inline_key().is_none(), "a key must come from Secrets Manager here");
    let keys = gatehouse_core::keys::Keys::from_settings(&settings, &sdk, |sdk| {
        aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(sdk).interceptor(gatehouse_core::iam::Interceptor).build(),
        )
    });
    let memory = memory.and_then(|t| t.memory.clone()).unwrap_or_default();
    let mail = Arc::new(gatehouse_core::mail::CaptureMailer::new());
    let clock = Arc::new(FixedClock::new(T0));
    let app = common::instrumented_app(settings, memory.clone(), mail.clone(), clock.clone(), Some(Arc::new(keys)));
    TestApp { app: Arc::new(app), mail, clock, memory: Some(memory), dynamo: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signing_key_is_read_from_secrets_manager_once_and_only_to_sign() {
    let pem = gatehouse_core::tokens::generate_ed25519_pem().unwrap();
    let (arn, _) = secret(&pem).await;
    let public = listed(&pem, "sm-1");
    let config = [("JWT_ALGORITHM", "EdDSA"), ("JWT_SIGNING_KEY_SECRET_ARN", &arn), ("JWT_PUBLIC_KEYS", &public)];
    let t = spawn_app_secret(&config, None).await;

    // Secrets Manager down: registering and activating need no key; logging in fails closed.
    let outage = secrets_manager_down(&arn);
    let r = first_login(&t).await;
    assert_unavailable(&r, &arn);
    assert!(!r.body.to_string().contains("secretsmanager"));
    assert_eq!(outage.fired(), SDK_MAX_ATTEMPTS, "one read, retried by the SDK, nothing cached");
    drop(outage);

    // Back up: the key is read once and kept.
    let (access, _) = t.login("ada@example.com").await;
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.kid.as_deref(), Some("sm-1"), "signed under the kid JWT_PUBLIC_KEYS gives it");
    let again = secrets_manager_down(&arn);
    t.login("ada@example.com").await;
    assert_eq!(again.seen(), 0, "the key is not read again");

    // Another container while Secrets Manager is down: it verifies with the public keys alone.
    let verifier = spawn_app_secret(&config, Some(&t)).await;
    let me = verifier.call("GET", "/auth/users/me/", None, Some(&access)).await;
    assert_eq!((me.status, me.body["email"].clone()), (StatusCode::OK, json!("ada@example.com")));
    assert_eq!(verifier.post("/auth/jwt/verify/", json!({"token": access})).await.status, StatusCode::OK);
    assert_eq!(again.seen(), 0, "verifying never reads the secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_version_signs_and_an_unlisted_key_is_refused_at_first_use() {
    let (first, second) = (
        gatehouse_core::tokens::generate_ed25519_pem().unwrap(),
        gatehouse_core::tokens::generate_ed25519_pem().unwrap(),
    );
    let (arn, first_version) = secret(&first).await;
    let sdk = gatehouse_core::aws::local_aws_config(&emulator_endpoint()).await;
    aws_sdk_secretsmanager::Client::new(&sdk)
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(&second)
        .send()
        .await
        .unwrap();
    let both = format!("{},{}", listed(&first, "k1"), listed(&second, "k2"));
    let base = [("JWT_ALGORITHM", "EdDSA"), ("JWT_SIGNING_KEY_SECRET_ARN", arn.as_str()), ("JWT_PUBLIC_KEYS", &both)];

    // Pinned to the first version (as a rollback restores it), although the secret moved on.
    let mut pinned = base.to_vec();
    pinned.push(("JWT_SIGNING_KEY_SECRET_VERSION", &first_version));
    let t = spawn_app_secret(&pinned, None).await;
    let (access, _) = t.active_user("ada@example.com").await;
    assert_eq!(jsonwebtoken::decode_header(&access).unwrap().kid.as_deref(), Some("k1"));
    // Unpinned: the current version.
    let t = spawn_app_secret(&base, None).await;
    let (access, _) = t.active_user("ada@example.com").await;
    assert_eq!(jsonwebtoken::decode_header(&access).unwrap().kid.as_deref(), Some("k2"));

    // A secret whose key JWT_PUBLIC_KEYS does not list would sign tokens nobody accepts: refused.
    let only_first = listed(&first, "k1");
    let t = spawn_app_secret(
        &[("JWT_ALGORITHM", "EdDSA"), ("JWT_SIGNING_KEY_SECRET_ARN", &arn), ("JWT_PUBLIC_KEYS", &only_first)],
        None,
    )
    .await;
    let r = first_login(&t).await;
    assert_unavailable(&r, &arn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hs256_the_functions_that_verify_read_the_secret_too() {
    let (arn, _) = secret("an-hs256-secret-of-more-than-thirty-two-bytes").await;
    let config = [("JWT_ALGORITHM", "HS256"), ("JWT_SIGNING_KEY_SECRET_ARN", arn.as_str())];
    let t = spawn_app_secret(&config, None).await;
    let (access, _) = t.active_user("ada@example.com").await;
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.status, StatusCode::OK);
    let verifier = spawn_app_secret(&config, Some(&t)).await;
    let outage = secrets_manager_down(&arn);
    assert_unavailable(&verifier.call("GET", "/auth/users/me/", None, Some(&access)).await, &arn);
    assert_eq!(outage.fired(), SDK_MAX_ATTEMPTS);
    drop(outage);
    assert_eq!(verifier.call("GET", "/auth/users/me/", None, Some(&access)).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_key_is_read_from_secrets_manager_and_an_outage_writes_nothing() {
    let (arn, _) = secret(&"k".repeat(64)).await;
    let pem = gatehouse_core::tokens::generate_ed25519_pem().unwrap();
    let config = [("JWT_ALGORITHM", "EdDSA"), ("JWT_SIGNING_KEY", pem.as_str()), ("CODE_KEY_SECRET_ARN", arn.as_str())];
    let t = spawn_app_secret(&config, None).await;
    let outage = secrets_manager_down(&arn);
    let r = t.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_unavailable(&r, &arn);
    assert!(t.memory.as_ref().unwrap().user_count() == 0, "no account without its code");
    drop(outage);
    // Registration issues the code under the key read from the secret; activation checks it.
    let (access, _) = t.active_user("ada@example.com").await;
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.status, StatusCode::OK);
    // The stored code is a MAC under that key, not a plain hash of the token.
    let ada = t.user("ada@example.com").await;
    let stored =
        t.app.store.get_code(&ada.id, gatehouse_core::domain::CodePurpose::Activation, t.clock_now()).await.unwrap();
    let stored = stored.expect("the spent activation code is kept");
    let key = gatehouse_core::keys::CodeKey::parse(&"k".repeat(64)).unwrap();
    let token = t.link_parts("ada@example.com").1;
    assert_eq!(stored.hash, key.mac(&ada.id, gatehouse_core::domain::CodePurpose::Activation, &token));
    assert_ne!(stored.hash, gatehouse_core::secrets::sha256_hex(&token));
}

/// Every DynamoDB operation the store could send.
const DYNAMODB_OPERATIONS: [&str; 10] = [
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
];

/// What one login with a wrong password costs: argon2 verifications, the requests the emulator
/// served by operation (those made), and the answer.
async fn login_cost(
    t: &TestApp,
    counters: &[(&'static str, Fault)],
    email: &str,
) -> (u64, std::collections::BTreeMap<&'static str, u64>, Reply) {
    let seen: Vec<u64> = counters.iter().map(|(_, f)| f.seen()).collect();
    let verified = t.app.hasher.verifications();
    let reply = t.post("/auth/jwt/create/", json!({"email": email, "password": "a wrong password"})).await;
    let made =
        counters.iter().zip(seen).map(|((op, f), before)| (*op, f.seen() - before)).filter(|(_, n)| *n > 0).collect();
    (t.app.hasher.verifications() - verified, made, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_sends_dynamodb_the_same_requests_whether_or_not_the_account_exists() {
    let t = spawn_app_dynamo(&[]).await;
    t.active_user("ada@example.com").await;
    t.register("ina@example.com").await; // never activated
                                         // Counters only: a count of 0 never fails a request, and `seen` counts those it matched.
    let counters: Vec<_> = DYNAMODB_OPERATIONS
        .iter()
        .map(|op| {
            let target = format!("DynamoDB_20120810.{op}");
            (*op, Fault::arm(json!({"target": target, "contains": table(&t), "count": 0, "code": "NeverSent"})))
        })
        .collect();
    let (verified, requests, reply) = login_cost(&t, &counters, "nobody@example.com").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(verified, 1, "one verify against the dummy hash for an unknown address");
    assert!(!requests.is_empty(), "the counters saw nothing");
    for email in ["ada@example.com", "ina@example.com"] {
        let (v, r, rep) = login_cost(&t, &counters, email).await;
        assert_eq!((rep.status, &rep.body), (reply.status, &reply.body), "{email}: answered apart");
        assert_eq!(v, verified, "{email}: argon2 verifications differ from an unknown address's");
        assert_eq!(r, requests, "{email}: DynamoDB requests differ from an unknown address's");
    }
}

/// A "container" whose providers' client secrets are in the emulator's Secrets Manager (the
/// signing key inline).
async fn spawn_app_social_secret(idp: &common::idp::Idp, arn: &str) -> TestApp {
    let sdk = gatehouse_core::aws::local_aws_config(&emulator_endpoint())
        .await
        .to_builder()
        .retry_config(gatehouse_core::aws::sdk_retries())
        .build();
    let providers = idp.providers();
    let settings = settings(&[
        ("SOCIAL_PROVIDERS", &providers),
        ("SOCIAL_CLIENT_SECRETS_SECRET_ARN", arn),
        ("SOCIAL_REDIRECT_URIS", common::idp::REDIRECT),
    ]);
    let keys = gatehouse_core::keys::Keys::from_settings(&settings, &sdk, |sdk| {
        aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(sdk).interceptor(gatehouse_core::iam::Interceptor).build(),
        )
    });
    let memory = Arc::new(gatehouse_core::store::MemoryStore::new());
    let mail = Arc::new(gatehouse_core::mail::CaptureMailer::new());
    let clock = Arc::new(FixedClock::new(T0));
    let app = common::instrumented_app(settings, memory.clone(), mail.clone(), clock.clone(), Some(Arc::new(keys)));
    TestApp { app: Arc::new(app), mail, clock, memory: Some(memory), dynamo: None }
}

/// One provider sign-in for Grace: the reply of its second call.
async fn social_sign_in(t: &TestApp, idp: &common::idp::Idp) -> Reply {
    let path = format!(
        "/auth/o/corp/?redirect_uri={}",
        url::form_urlencoded::byte_serialize(common::idp::REDIRECT.as_bytes()).collect::<String>()
    );
    let r = t.call("GET", &path, None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let person = common::idp::Person::verified("sub-1", "grace@example.com");
    let (code, state) =
        idp.authorize(r.body["authorization_url"].as_str().unwrap(), person, common::idp::Tamper::None, t.clock_now());
    t.post("/auth/o/corp/", json!({"code": code, "state": state})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_client_secrets_are_read_from_secrets_manager_once_and_fail_closed() {
    let idp = common::idp::Idp::start().await;
    let (arn, _) = secret(&idp.secrets()).await;
    // Secrets Manager down: the sign-in fails closed (503), nothing is created.
    let t = spawn_app_social_secret(&idp, &arn).await;
    let outage = secrets_manager_down(&arn);
    let r = social_sign_in(&t, &idp).await;
    assert_unavailable(&r, &arn);
    assert_eq!(t.memory.as_ref().unwrap().user_count(), 0);
    drop(outage);
    // Back up: read once, then kept.
    let r = social_sign_in(&t, &idp).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let again = secrets_manager_down(&arn);
    assert_eq!(social_sign_in(&t, &idp).await.status, StatusCode::CREATED);
    assert_eq!(again.seen(), 0, "the secrets are not read again");
}
