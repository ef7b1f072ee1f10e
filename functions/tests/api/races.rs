//! Races, under a seeded scheduler. The local emulator serves one request at a time, so races
//! never show against it; here concurrent handler invocations run on one thread and interleave
//! their store calls in an order a seed decides (`gatehouse_core::store::Scheduler`: every store
//! call yields to the other invocations a seeded number of times before and after it, and a
//! seeded share of calls fails, before reaching the store or after writing, as a DynamoDB
//! transaction that kept meeting conflicts would). Password hashing runs on the calling task,
//! so nothing is left to other threads: a seed replays its interleaving exactly.
//!
//! Every scenario runs `SEEDS` schedules and checks its invariants in each; a failure names the
//! seed and the invariant (`RACE_SEED=N` runs one schedule).
//!
//! The scenarios after them line their contenders up instead (`Faults::hold`): every request is
//! parked at the contested write after it made all its checks, then they are let go, so the
//! store's conditional write is the only thing left to decide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use common::{reply, Reply, PASSWORD};
use gatehouse_core::domain::{CodePurpose, Email};
use gatehouse_core::mail::CaptureMailer;
use gatehouse_core::ports::{Clock, EmailKind, FixedClock, IdentityStore, UserStore};
use gatehouse_core::store::{Faults, FaultyStore, MemoryStore, Op, Scheduler};
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use serde_json::{json, Value};

/// Schedules per scenario; `make test` runs them all.
const SEEDS: u64 = 400;
/// Most yields around one store call.
const MAX_YIELDS: u64 = 3;

struct Race {
    app: Arc<App>,
    /// The store itself, read around the faults and the scheduler.
    memory: Arc<MemoryStore>,
    faults: Faults,
    mail: Arc<CaptureMailer>,
    clock: Arc<FixedClock>,
}

impl Race {
    /// A fresh app (memory store, inline hashing); the scheduler is armed by [`Race::go`].
    fn new(overrides: &[(&str, &str)]) -> Self {
        let memory = Arc::new(MemoryStore::new());
        let (store, faults) = FaultyStore::new(memory.clone());
        let mail = Arc::new(CaptureMailer::new());
        let clock = Arc::new(FixedClock::new(common::T0));
        let mut app =
            common::instrumented_app(common::settings(overrides), Arc::new(store), mail.clone(), clock.clone(), None);
        app.hasher = app.hasher.clone().inline();
        Self { app: Arc::new(app), memory, faults, mail, clock }
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(request("POST", path, Some(body), None, "203.0.113.7")).await
    }

    async fn send(&self, req: lambda_http::Request) -> Reply {
        reply(common::dispatch(&self.app, req).await)
    }

    /// Registers and activates `email` (before any race): its (access, refresh).
    async fn active_user(&self, email: &str) -> (String, String) {
        let r = self.post("/auth/users/", json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let (uid, token) = self.link(email);
        let r = self.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        let r = self.post("/auth/jwt/create/", json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        (r.body["access"].as_str().unwrap().to_owned(), r.body["refresh"].as_str().unwrap().to_owned())
    }

    /// (uid, token) of the newest link emailed to `email`.
    fn link(&self, email: &str) -> (String, String) {
        let link = self.mail.last_to(email).and_then(|m| m.link).expect("an email with a link");
        let mut parts = link.rsplit('/');
        let token = parts.next().unwrap().to_owned();
        (parts.next().unwrap().to_owned(), token)
    }

    /// Runs every request concurrently under the seed's schedule; their replies, in order.
    async fn go(&self, seed: u64, fail_per_mille: u64, requests: Vec<lambda_http::Request>) -> Vec<Reply> {
        self.faults.schedule(Arc::new(Scheduler::new(seed, MAX_YIELDS, fail_per_mille)));
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|req| {
                let app = self.app.clone();
                tokio::spawn(async move { reply(common::dispatch(&app, req).await) })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }
}

/// A JSON request from `ip`, with a bearer token if given.
fn request(method: &str, path: &str, body: Option<Value>, bearer: Option<&str>, ip: &str) -> lambda_http::Request {
    let mut b =
        lambda_http::http::Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let body = body.map(|v| Body::Text(v.to_string())).unwrap_or(Body::Empty);
    let mut ctx = lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    ctx.http.source_ip = Some(ip.to_owned());
    b.body(body).unwrap().with_request_context(RequestContext::ApiGatewayV2(ctx))
}

fn seeds() -> Vec<u64> {
    match std::env::var("RACE_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (0..SEEDS).collect(),
    }
}

/// A seeded pick in `0..n` (which position hides the right guess).
fn pick(seed: u64, n: usize) -> usize {
    (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33) as usize % n
}

fn statuses(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.status.as_u16()).collect()
}

#[tokio::test]
async fn parallel_guesses_at_a_numeric_code_are_judged_at_most_the_cap() {
    const GUESSES: usize = 20;
    for seed in seeds() {
        let race = Race::new(&[("CODE_FORMAT", "numeric")]);
        let r = race.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let (_, code) = race.link("ada@example.com");
        let right = pick(seed, GUESSES);
        let requests = (0..GUESSES)
            .map(|i| {
                let guess = if i == right {
                    code.clone()
                } else {
                    format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i as u32) % 1_000_000)
                };
                request(
                    "POST",
                    "/auth/users/activation/",
                    Some(json!({"email": "ada@example.com", "code": guess})),
                    None,
                    "198.51.100.9",
                )
            })
            .collect();
        gatehouse_core::probes::reset();
        let replies = race.go(seed, 20, requests).await;
        let judged = gatehouse_core::probes::code_judgements();
        assert!(
            judged <= u64::from(gatehouse_core::ports::MAX_CODE_ATTEMPTS),
            "seed {seed}: {judged} guesses judged, more than the cap of {} (statuses {:?})",
            gatehouse_core::ports::MAX_CODE_ATTEMPTS,
            statuses(&replies)
        );
        let wins = replies.iter().filter(|r| r.status == StatusCode::NO_CONTENT).count();
        assert!(wins <= 1, "seed {seed}: {wins} activations");
        if wins == 1 {
            assert_eq!(
                replies[right].status,
                StatusCode::NO_CONTENT,
                "seed {seed}: a wrong guess activated the account"
            );
        }
    }
}

#[tokio::test]
async fn a_burst_of_wrong_passwords_gets_at_most_the_threshold_verified() {
    const BURST: usize = 20;
    for seed in seeds() {
        let race = Race::new(&[]);
        race.active_user("ada@example.com").await;
        let before = race.app.hasher.verifications();
        let requests = (0..BURST)
            .map(|i| {
                let body = json!({"email": "ada@example.com", "password": format!("wrong guess {i}")});
                request("POST", "/auth/jwt/create/", Some(body), None, "198.51.100.9")
            })
            .collect();
        let replies = race.go(seed, 20, requests).await;
        let verified = race.app.hasher.verifications() - before;
        let threshold = u64::from(race.app.settings.login_lockout_threshold);
        assert!(
            verified <= threshold,
            "seed {seed}: {verified} wrong passwords verified, more than the lockout threshold of {threshold} (statuses {:?})",
            statuses(&replies)
        );
        assert!(replies.iter().all(|r| r.status != StatusCode::OK), "seed {seed}: a wrong password logged in");
    }
}

#[tokio::test]
async fn a_stranger_hammering_an_account_cannot_lock_its_owner_out() {
    for seed in seeds() {
        let race = Race::new(&[]);
        race.active_user("ada@example.com").await;
        // The stranger has already failed often from their address, and keeps going.
        for i in 0..8 {
            let body = json!({"email": "ada@example.com", "password": format!("wrong guess {i}")});
            race.send(request("POST", "/auth/jwt/create/", Some(body), None, "198.51.100.9")).await;
        }
        race.clock.advance(1);
        let mut requests: Vec<_> = (0..6)
            .map(|i| {
                let body = json!({"email": "ada@example.com", "password": format!("more wrong {i}")});
                request("POST", "/auth/jwt/create/", Some(body), None, "198.51.100.9")
            })
            .collect();
        let owner = pick(seed, requests.len() + 1);
        let body = json!({"email": "ada@example.com", "password": PASSWORD});
        requests.insert(owner, request("POST", "/auth/jwt/create/", Some(body), None, "203.0.113.50"));
        let replies = race.go(seed, 0, requests).await;
        assert_eq!(
            replies[owner].status,
            StatusCode::OK,
            "seed {seed}: the owner, from their own address, was refused: {} (statuses {:?})",
            replies[owner].body,
            statuses(&replies)
        );
    }
}

#[tokio::test]
async fn wrong_current_passwords_in_parallel_are_verified_at_most_the_threshold() {
    const BURST: usize = 12;
    for seed in seeds() {
        let race = Race::new(&[]);
        let (access, _) = race.active_user("ada@example.com").await;
        let before = race.app.hasher.verifications();
        let requests = (0..BURST)
            .map(|i| {
                let body =
                    json!({"current_password": format!("wrong guess {i}"), "new_password": "another horse battery"});
                request("POST", "/auth/users/set_password/", Some(body), Some(&access), "198.51.100.9")
            })
            .collect();
        let replies = race.go(seed, 20, requests).await;
        let verified = race.app.hasher.verifications() - before;
        let threshold = u64::from(race.app.settings.login_lockout_threshold);
        assert!(
            verified <= threshold,
            "seed {seed}: {verified} current passwords verified, more than the threshold of {threshold} (statuses {:?})",
            statuses(&replies)
        );
        assert!(
            replies.iter().all(|r| r.status != StatusCode::NO_CONTENT),
            "seed {seed}: a wrong password was accepted"
        );
    }
}

#[tokio::test]
async fn one_winner_per_code_per_email_and_per_rotation() {
    for seed in seeds() {
        let race = Race::new(&[]);
        // Ten confirmations of one activation link.
        let r = race.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let (uid, token) = race.link("ada@example.com");
        let requests = (0..10)
            .map(|_| {
                request(
                    "POST",
                    "/auth/users/activation/",
                    Some(json!({"uid": uid, "token": token})),
                    None,
                    "198.51.100.9",
                )
            })
            .collect();
        let replies = race.go(seed, 20, requests).await;
        let wins = replies.iter().filter(|r| r.status == StatusCode::NO_CONTENT).count();
        assert!(wins <= 1, "seed {seed}: one link activated {wins} times: {:?}", statuses(&replies));

        // Ten registrations of one address, in two spellings.
        let race = Race::new(&[]);
        let requests = (0..10)
            .map(|i| {
                let email = if i % 2 == 0 { "race@example.com" } else { "RACE@Example.com" };
                request(
                    "POST",
                    "/auth/users/",
                    Some(json!({"email": email, "password": PASSWORD})),
                    None,
                    "198.51.100.9",
                )
            })
            .collect();
        let replies = race.go(seed, 20, requests).await;
        let created = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
        assert!(created <= 1, "seed {seed}: {created} accounts for one address: {:?}", statuses(&replies));

        // Ten refreshes with one refresh token (no grace): one rotation at most.
        let race = Race::new(&[]);
        let (_, refresh) = race.active_user("ada@example.com").await;
        race.clock.advance(1);
        let requests = (0..10)
            .map(|_| request("POST", "/auth/jwt/refresh/", Some(json!({"refresh": refresh})), None, "198.51.100.9"))
            .collect();
        let replies = race.go(seed, 20, requests).await;
        let rotated = replies.iter().filter(|r| r.status == StatusCode::OK).count();
        assert!(rotated <= 1, "seed {seed}: one refresh token rotated {rotated} times: {:?}", statuses(&replies));
        let _ = race.clock.now();
    }
}

// ---- contenders lined up at the write ---------------------------------------------------------

impl Race {
    /// Starts `req` as a concurrent invocation.
    fn spawn(&self, req: lambda_http::Request) -> tokio::task::JoinHandle<Reply> {
        let app = self.app.clone();
        tokio::spawn(async move { reply(common::dispatch(&app, req).await) })
    }

    /// Yields to the invocations in flight until `n` calls of `op` wait at its hold.
    async fn until_parked(&self, op: Op, n: usize) {
        for _ in 0..100_000 {
            if self.faults.parked(op) >= n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("only {} of {n} requests reached {op}", self.faults.parked(op));
    }

    fn kinds_to(&self, email: &str) -> Vec<EmailKind> {
        self.mail.sent().iter().filter(|m| m.to == email).map(|m| m.kind).collect()
    }
}

fn stale() -> Value {
    json!({"detail": "Stale token for given user.", "code": "stale_token"})
}

fn token_not_valid() -> Value {
    json!({"detail": "Given token not valid for any token type", "code": "token_not_valid"})
}

#[tokio::test]
async fn ten_confirmations_of_one_link_that_all_passed_their_checks_activate_once() {
    const N: usize = 10;
    let race = Race::new(&[("SEND_CONFIRMATION_EMAIL", "true")]);
    let r = race.post("/auth/users/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let (uid, token) = race.link("ada@example.com");
    race.faults.hold(Op::Activate);
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let body = json!({"uid": uid, "token": token});
            race.spawn(request("POST", "/auth/users/activation/", Some(body), None, "198.51.100.9"))
        })
        .collect();
    // Every one of them found the account inactive and the code right and unspent: only the
    // store's conditional write is left to tell them apart.
    race.until_parked(Op::Activate, N).await;
    race.faults.unhold(Op::Activate);
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    assert_eq!(race.faults.calls(Op::Activate), N as u64, "every confirmation reached the write");
    let wins = replies.iter().filter(|r| r.status == StatusCode::NO_CONTENT).count();
    assert_eq!(wins, 1, "one link activated {wins} times: {:?}", statuses(&replies));
    for r in replies.iter().filter(|r| r.status != StatusCode::NO_CONTENT) {
        assert_eq!((r.status, &r.body), (StatusCode::FORBIDDEN, &stale()), "the losers are told the link is spent");
    }
    assert_eq!(
        race.kinds_to("ada@example.com"),
        [EmailKind::Activation, EmailKind::Confirmation],
        "one confirmation email"
    );
    // The store: active for good, the code spent, the claim kept.
    let now = race.clock.now();
    let email = Email::parse("ada@example.com").unwrap();
    let user = race.app.store.find_user_by_email(&email, now).await.unwrap().expect("the account");
    assert!(user.is_active && user.expires_at.is_none(), "{user:?}");
    let code = race.app.store.get_code(&user.id, CodePurpose::Activation, now).await.unwrap().expect("the code");
    assert!(code.spent, "the code is spent");
    let again = race.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
    assert_eq!((again.status, again.body), (StatusCode::FORBIDDEN, stale()));
    race.clock.advance(30 * 86_400);
    assert!(race.app.store.find_user_by_email(&email, race.clock.now()).await.unwrap().is_some(), "never expires");
    let login = race.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
}

/// Two refreshes with one token, as two tabs send them: both read the session while the token
/// is current and wait at the rotation; the first started `gap` seconds before the second (a
/// second boundary falls between them when `gap` is 1) and rotates first.
async fn two_tabs(race: &Race, refresh: &str, gap: i64) -> (Reply, Reply) {
    let send = || request("POST", "/auth/jwt/refresh/", Some(json!({"refresh": refresh})), None, "203.0.113.7");
    race.faults.hold(Op::RotateSession);
    let first = race.spawn(send());
    race.until_parked(Op::RotateSession, 1).await;
    race.clock.advance(gap);
    let second = race.spawn(send());
    race.until_parked(Op::RotateSession, 2).await;
    race.faults.release(Op::RotateSession, 1);
    let first = first.await.unwrap();
    race.faults.unhold(Op::RotateSession);
    (first, second.await.unwrap())
}

/// The jti of a refresh token.
async fn jti(race: &Race, refresh: &Value) -> String {
    let token = refresh.as_str().expect("a refresh token");
    let now = race.clock.now();
    race.app.tokens.verify(token, gatehouse_core::tokens::TokenType::Refresh, now).await.unwrap().jti
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_keep_the_session_on_either_side_of_a_second_boundary() {
    for gap in [0, 1, 3] {
        let what = format!("no grace, the second tab {gap}s behind");
        let race = Race::new(&[]);
        let (_, refresh) = race.active_user("ada@example.com").await;
        let ada = race
            .app
            .store
            .find_user_by_email(&Email::parse("ada@example.com").unwrap(), race.clock.now())
            .await
            .unwrap();
        let ada = ada.unwrap().id;
        let (first, second) = two_tabs(&race, &refresh, gap).await;
        assert_eq!(first.status, StatusCode::OK, "{what}: {}", first.body);
        assert_eq!((second.status, &second.body), (StatusCode::UNAUTHORIZED, &token_not_valid()), "{what}");
        // Lost a race, not a theft: the session lives on and nobody is alerted.
        assert!(!race.kinds_to("ada@example.com").contains(&EmailKind::SessionReuse), "{what}: alert mailed");
        let sessions = race.app.store.list_sessions(&ada, race.clock.now()).await.unwrap();
        assert_eq!(sessions.len(), 1, "{what}: the session was revoked");
        assert_eq!(sessions[0].counter, 1, "{what}: rotated once");
        let next = race.post("/auth/jwt/refresh/", json!({"refresh": first.body["refresh"]})).await;
        assert_eq!(next.status, StatusCode::OK, "{what}: the winner's token no longer works: {}", next.body);
    }
    for gap in [0, 1] {
        let what = format!("10s grace, the second tab {gap}s behind");
        let race = Race::new(&[("REFRESH_REUSE_GRACE", "10s")]);
        let (_, refresh) = race.active_user("ada@example.com").await;
        let (first, second) = two_tabs(&race, &refresh, gap).await;
        assert_eq!((first.status, second.status), (StatusCode::OK, StatusCode::OK), "{what}: {}", second.body);
        assert_eq!(
            jti(&race, &first.body["refresh"]).await,
            jti(&race, &second.body["refresh"]).await,
            "{what}: both tabs hold the session's one current token"
        );
        assert!(!race.kinds_to("ada@example.com").contains(&EmailKind::SessionReuse), "{what}: alert mailed");
        let next = race.post("/auth/jwt/refresh/", json!({"refresh": second.body["refresh"]})).await;
        assert_eq!(next.status, StatusCode::OK, "{what}: {}", next.body);
    }
}

/// Turns two-step sign-in on for the account signed in as `access`: its secret and recovery codes.
async fn enrol(race: &Race, access: &str) -> (gatehouse_core::mfa::TotpSecret, Vec<Value>) {
    let body = json!({"current_password": PASSWORD});
    let r = race.send(request("POST", "/auth/mfa/totp/", Some(body), Some(access), "203.0.113.7")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let secret = gatehouse_core::mfa::TotpSecret::from_base32(r.body["secret"].as_str().unwrap()).unwrap();
    let body = json!({"code": secret.code_at(race.clock.now()).unwrap()});
    let r = race.send(request("POST", "/auth/mfa/totp/confirm/", Some(body), Some(access), "203.0.113.7")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    race.clock.advance(30);
    (secret, r.body["recovery_codes"].as_array().unwrap().clone())
}

#[tokio::test]
async fn parallel_answers_to_one_mfa_token_are_judged_at_most_its_cap_and_sign_in_once() {
    const ANSWERS: usize = 12;
    for seed in seeds() {
        // The account's lockout is set high: the token's own cap is what is tested.
        let race = Race::new(&[("LOGIN_LOCKOUT_THRESHOLD", "50")]);
        let (access, _) = race.active_user("ada@example.com").await;
        let (secret, _) = enrol(&race, &access).await;
        let r = race.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        let token = r.body["mfa_token"].as_str().unwrap().to_owned();
        let code = secret.code_at(race.clock.now()).unwrap();
        // A third of the answers are the right code (one step: accepted once), the rest wrong.
        let requests = (0..ANSWERS)
            .map(|i| {
                let guess = if i % 3 == pick(seed, 3) {
                    code.clone()
                } else {
                    format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i as u32) % 1_000_000)
                };
                let body = json!({"mfa_token": token, "code": guess});
                request("POST", "/auth/mfa/verify/", Some(body), None, "198.51.100.9")
            })
            .collect();
        gatehouse_core::probes::reset();
        let replies = race.go(seed, 20, requests).await;
        let judged = gatehouse_core::probes::code_judgements();
        assert!(
            judged <= u64::from(gatehouse_core::services::mfa::MFA_TOKEN_ATTEMPTS),
            "seed {seed}: {judged} answers judged, more than the cap (statuses {:?})",
            statuses(&replies)
        );
        let wins: Vec<usize> = (0..ANSWERS).filter(|i| replies[*i].status == StatusCode::OK).collect();
        assert!(wins.len() <= 1, "seed {seed}: {} sign-ins from one mfa_token", wins.len());
        for i in wins {
            assert_eq!(i % 3, pick(seed, 3), "seed {seed}: a wrong code signed in");
        }
    }
}

#[tokio::test]
async fn one_recovery_code_used_in_parallel_signs_in_once() {
    for seed in seeds() {
        let race = Race::new(&[("LOGIN_LOCKOUT_THRESHOLD", "50")]);
        let (access, _) = race.active_user("ada@example.com").await;
        let (_, codes) = enrol(&race, &access).await;
        let recovery = &codes[0];
        // Four sign-ins, each with its own mfa_token, all with the same recovery code.
        let mut requests = Vec::new();
        for _ in 0..4 {
            let r = race.post("/auth/jwt/create/", json!({"email": "ada@example.com", "password": PASSWORD})).await;
            let body = json!({"mfa_token": r.body["mfa_token"], "recovery_code": recovery});
            requests.push(request("POST", "/auth/mfa/verify/", Some(body), None, "198.51.100.9"));
        }
        let replies = race.go(seed, 20, requests).await;
        let wins = replies.iter().filter(|r| r.status == StatusCode::OK).count();
        assert!(wins <= 1, "seed {seed}: one recovery code signed in {wins} times ({:?})", statuses(&replies));
    }
}

#[tokio::test]
async fn one_passkey_sign_in_per_login_token_however_many_answer_at_once() {
    use common::passkey::SoftPasskey;
    const ORIGIN: &str = "https://app.example.com";
    for seed in seeds().into_iter().step_by(4) {
        let race = Race::new(&[]);
        let (access, _) = race.active_user("ada@example.com").await;
        let mut soft = SoftPasskey::new();
        let r = race
            .send(request("POST", "/auth/webauthn/register/options/", Some(json!({})), Some(&access), "203.0.113.7"))
            .await;
        let body = json!({"credential": soft.create(&r.body, ORIGIN)});
        let r = race.send(request("POST", "/auth/webauthn/register/", Some(body), Some(&access), "203.0.113.7")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let r = race.post("/auth/webauthn/login/options/", json!({})).await;
        // The same signed answer sent six times at once (a replay racing the original).
        let body = json!({"login_token": r.body["login_token"], "credential": soft.get(&r.body, ORIGIN)});
        let requests = (0..6)
            .map(|_| request("POST", "/auth/webauthn/login/", Some(body.clone()), None, "198.51.100.9"))
            .collect();
        let replies = race.go(seed, 20, requests).await;
        let wins = replies.iter().filter(|r| r.status == StatusCode::OK).count();
        assert!(wins <= 1, "seed {seed}: {wins} sessions from one login_token ({:?})", statuses(&replies));
    }
}

/// A race app with the local identity provider configured (`corp`), and the provider.
async fn social_race() -> (Race, common::idp::Idp) {
    let idp = common::idp::Idp::start().await;
    let (providers, secrets) = (idp.providers(), idp.secrets());
    let race = Race::new(&[
        ("SOCIAL_PROVIDERS", &providers),
        ("SOCIAL_CLIENT_SECRETS", &secrets),
        ("SOCIAL_REDIRECT_URIS", common::idp::REDIRECT),
        ("RATE_SOCIAL_IP", "off"),
    ]);
    (race, idp)
}

/// A provider sign-in started and authorized for `person`: the body of its second call.
async fn authorized(race: &Race, idp: &common::idp::Idp, person: common::idp::Person) -> Value {
    let redirect: String = url::form_urlencoded::byte_serialize(common::idp::REDIRECT.as_bytes()).collect();
    let r =
        race.send(request("GET", &format!("/auth/o/corp/?redirect_uri={redirect}"), None, None, "203.0.113.7")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let url = r.body["authorization_url"].as_str().unwrap();
    let (code, state) = idp.authorize(url, person, common::idp::Tamper::None, race.clock.now());
    json!({"code": code, "state": state})
}

#[tokio::test]
async fn one_provider_sign_in_per_state_however_many_send_it_at_once() {
    for seed in seeds().into_iter().step_by(8) {
        let (race, idp) = social_race().await;
        // The provider would take the code any number of times: the state alone must hold.
        idp.reuse_codes();
        let body = authorized(&race, &idp, common::idp::Person::verified("sub-1", "grace@example.com")).await;
        let requests =
            (0..6).map(|_| request("POST", "/auth/o/corp/", Some(body.clone()), None, "198.51.100.9")).collect();
        let replies = race.go(seed, 20, requests).await;
        let wins = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
        assert!(wins <= 1, "seed {seed}: {wins} sessions from one state ({:?})", statuses(&replies));
    }
}

#[tokio::test]
async fn first_sign_ins_of_one_provider_account_at_once_make_one_account() {
    for seed in seeds().into_iter().step_by(8) {
        let (race, idp) = social_race().await;
        let person = || common::idp::Person::verified("sub-1", "grace@example.com");
        let mut requests = Vec::new();
        for _ in 0..4 {
            let body = authorized(&race, &idp, person()).await;
            requests.push(request("POST", "/auth/o/corp/", Some(body), None, "198.51.100.9"));
        }
        let replies = race.go(seed, 20, requests).await;
        let email = Email::parse("grace@example.com").unwrap();
        let user = race.memory.find_user_by_email(&email, race.clock.now()).await.unwrap();
        let link = race.memory.get_identity("corp", "sub-1").await.unwrap();
        let wins: Vec<&Reply> = replies.iter().filter(|r| r.status == StatusCode::CREATED).collect();
        if let Some(user) = &user {
            assert_eq!(link.map(|l| l.user_id), Some(user.id.clone()), "seed {seed}: the link names the account");
            let listed = race.memory.list_identities(&user.id).await.unwrap();
            assert_eq!(listed.len(), 1, "seed {seed}: {listed:?}");
        } else {
            assert!(wins.is_empty() && link.is_none(), "seed {seed}: a sign-in without an account");
        }
        for r in &wins {
            assert_eq!(r.body["user"], "grace@example.com", "seed {seed}");
        }
        // Every success opened the one account: their tokens name the same user.
        let ids: std::collections::BTreeSet<String> = wins
            .iter()
            .map(|r| {
                let access = r.body["access"].as_str().unwrap();
                use base64::Engine;
                let payload = access.split('.').nth(1).unwrap();
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
                let claims: Value = serde_json::from_slice(&bytes).unwrap();
                claims["user_id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert!(ids.len() <= 1, "seed {seed}: sign-ins into {} accounts ({:?})", ids.len(), statuses(&replies));
        assert!(race.memory.user_count() <= 1, "seed {seed}: {} accounts", race.memory.user_count());
    }
}

#[tokio::test]
async fn two_links_removed_at_once_never_leave_an_account_without_a_way_in() {
    let (race, idp) = social_race().await;
    // An account made by a provider (no password), with a second provider linked to it.
    let body = authorized(&race, &idp, common::idp::Person::verified("sub-1", "grace@example.com")).await;
    let r = race.post("/auth/o/corp/", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let access = r.body["access"].as_str().unwrap().to_owned();
    let redirect: String = url::form_urlencoded::byte_serialize(common::idp::REDIRECT.as_bytes()).collect();
    let r =
        race.send(request("GET", &format!("/auth/o/github/?redirect_uri={redirect}"), None, None, "203.0.113.7")).await;
    let person = common::idp::GithubPerson {
        id: 7,
        name: "Grace".into(),
        emails: vec![("grace@example.com".into(), true, true)],
    };
    let (code, state) = idp.authorize_github(r.body["authorization_url"].as_str().unwrap(), person);
    let r = race.post("/auth/o/github/", json!({"code": code, "state": state})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Each unlink finds the other link there, then both reach the removal together.
    race.faults.hold(Op::UnlinkIdentity);
    let tasks: Vec<_> = ["corp", "github"]
        .iter()
        .map(|p| {
            let path = format!("/auth/users/me/identities/{p}/");
            race.spawn(request("DELETE", &path, Some(json!({})), Some(&access), "198.51.100.9"))
        })
        .collect();
    race.until_parked(Op::UnlinkIdentity, 2).await;
    race.faults.unhold(Op::UnlinkIdentity);
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    let user = race.memory.find_user_by_email(&Email::parse("grace@example.com").unwrap(), race.clock.now()).await;
    let links = race.memory.list_identities(&user.unwrap().unwrap().id).await.unwrap();
    assert!(!links.is_empty(), "both links removed: {:?}", statuses(&replies));
    let removed = replies.iter().filter(|r| r.status == StatusCode::NO_CONTENT).count();
    assert_eq!(links.len() + removed, 2, "a link removed and reported kept, or kept and reported removed");
    for r in replies.iter().filter(|r| r.status != StatusCode::NO_CONTENT) {
        let last = json!({"non_field_errors": ["This is the only way left to sign in to this account: set a password first."]});
        assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &last));
    }
}

#[tokio::test]
async fn a_first_provider_sign_in_that_takes_a_while_still_gets_tokens_its_account_accepts() {
    let (race, idp) = social_race().await;
    // A registration never activated, which the sign-in replaces.
    let r = race.post("/auth/users/", json!({"email": "grace@example.com", "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let body = authorized(&race, &idp, common::idp::Person::verified("sub-1", "grace@example.com")).await;
    // The clock moves on while the old account is removed (a slow store, a retry).
    race.faults.hold(Op::DeleteUser);
    let task = race.spawn(request("POST", "/auth/o/corp/", Some(body), None, "198.51.100.9"));
    race.until_parked(Op::DeleteUser, 1).await;
    race.clock.advance(5);
    race.faults.unhold(Op::DeleteUser);
    let r = task.await.unwrap();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let me = race.send(request("GET", "/auth/users/me/", None, r.body["access"].as_str(), "198.51.100.9")).await;
    assert_eq!(me.status, StatusCode::OK, "the new account refused its own first token: {}", me.body);
}
