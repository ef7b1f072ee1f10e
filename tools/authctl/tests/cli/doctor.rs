//! `authctl doctor` end to end: the built binary against the local emulator, one table per test.
//! Inconsistencies are planted directly in the table through the SDK, beside consistent data
//! written through the store.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use gatehouse_core::domain::Group;
use gatehouse_core::domain::{CodePurpose, Email, User, UserId, Username};
use gatehouse_core::ports::{CodeRecord, CodeStore, GiveBack, GroupStore, SessionStore, SystemClock, UserStore};
use gatehouse_core::store::dynamo::doctor;
use gatehouse_core::store::dynamo::{LIST_GROUPS, LIST_PK, LIST_SK, LIST_USERS};
use gatehouse_core::store::DynamoStore;
use gatehouse_core::testing::emulator_control;
use serde_json::{json, Value};

use crate::common::{endpoint, now, session, stderr, Table, BIN};

/// What only these tests ask of a table.
impl Table {
    /// `doctor --json [extra]`: exit code and the parsed report.
    fn doctor(&self, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["doctor", "--json"];
        args.extend_from_slice(extra);
        let o = self.run(&args, &[]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        let report = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e}): {stdout} / {}", stderr(&o)));
        (o.status.code().expect("exited"), report)
    }

    async fn put(&self, pairs: &[(&str, AttributeValue)]) {
        let item: HashMap<String, AttributeValue> = pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        self.store.client().put_item().table_name(&self.name).set_item(Some(item)).send().await.unwrap();
    }

    async fn get(&self, pk: &str, sk: &str) -> Option<HashMap<String, AttributeValue>> {
        self.store
            .client()
            .get_item()
            .table_name(&self.name)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    async fn delete(&self, pk: &str, sk: &str) {
        self.store
            .client()
            .delete_item()
            .table_name(&self.name)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .send()
            .await
            .unwrap();
    }

    /// A user written the way registration writes it (user and claims in one transaction).
    async fn add_user(&self, email: &str, username: Option<&str>, active: bool, expires_at: Option<i64>) -> User {
        let user =
            User { username: username.map(|u| Username::parse(u).unwrap()), ..unsaved(email, active, expires_at) };
        self.store.create_user(&user, None, now()).await.unwrap();
        user
    }

    /// Takes the item off the list index, as items written before the index are.
    async fn unlist(&self, pk: &str, sk: &str) {
        self.store
            .client()
            .update_item()
            .table_name(&self.name)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(format!("REMOVE {LIST_PK}, {LIST_SK}"))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .unwrap();
    }

    /// Every live user the store lists, page by page.
    async fn listed_users(&self, now: i64) -> Vec<UserId> {
        let (mut all, mut after) = (Vec::new(), None);
        loop {
            let (page, next) = self.store.list_users(after.as_ref(), 2, now).await.unwrap();
            all.extend(page.into_iter().map(|u| u.id));
            match next {
                Some(n) => after = Some(n),
                None => return all,
            }
        }
    }

    async fn owner(&self, pk: &str, sk: &str) -> Option<String> {
        self.get(pk, sk).await.and_then(|i| i.get("user_id").and_then(|v| v.as_s().ok().cloned()))
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The report's problems as (kind, pk, sk) and their outcomes.
fn problems(report: &Value) -> (BTreeSet<(String, String, String)>, BTreeSet<String>) {
    let list = report["problems"].as_array().unwrap();
    let keys = list
        .iter()
        .map(|p| {
            (p["kind"].as_str().unwrap().into(), p["pk"].as_str().unwrap().into(), p["sk"].as_str().unwrap().into())
        })
        .collect();
    let outcomes = list.iter().map(|p| p["outcome"].as_str().unwrap().to_owned()).collect();
    (keys, outcomes)
}

fn key(kind: &str, pk: &str, sk: &str) -> (String, String, String) {
    (kind.to_owned(), pk.to_owned(), sk.to_owned())
}

#[tokio::test]
async fn doctor_reports_each_planted_inconsistency_repairs_it_and_leaves_live_data_alone() {
    let t = Table::new("doctor-repair").await;
    let now = now();

    // Consistent data that must come through untouched.
    let live = t.add_user("Live@Example.com", Some("LiveOne"), true, None).await;
    t.store.create_session(&session(&live.id, "s1"), Some(now), &GiveBack::default()).await.unwrap();
    let reset = CodeRecord {
        user_id: live.id.clone(),
        purpose: CodePurpose::PasswordReset,
        hash: "ab".repeat(32),
        expires_at: now + 3600,
        attempts: 0,
        data: None,
        spent: false,
    };
    t.store.put_code(&reset).await.unwrap();
    let pending = t.add_user("pending@example.com", Some("pending"), false, Some(now + 86_400)).await;
    t.put(&[("pk", s("RATE#login#127.0.0.1")), ("sk", s("60")), ("count", n(3)), ("expires_at", n(now + 60))]).await;
    t.put(&[
        ("pk", s("GROUP#editors")),
        ("sk", s("GROUP")),
        ("name", s("editors")),
        (LIST_PK, s(LIST_GROUPS)),
        (LIST_SK, s("editors")),
    ])
    .await;

    // Orphan claims: their user never existed.
    let ghost = UserId::generate();
    t.put(&[("pk", s("EMAIL#ghost@example.com")), ("sk", s("EMAIL")), ("user_id", s(ghost.as_str()))]).await;
    t.put(&[("pk", s("USERNAME#ghost")), ("sk", s("USERNAME")), ("user_id", s(ghost.as_str()))]).await;
    // A code and a session of that missing user.
    t.put(&[
        ("pk", s(format!("USER#{ghost}"))),
        ("sk", s("CODE#activation")),
        ("code_hash", s("cd".repeat(32))),
        ("expires_at", n(now + 3600)),
    ])
    .await;
    t.put(&[
        ("pk", s(format!("USER#{ghost}"))),
        ("sk", s("SESSION#orphan")),
        ("current_jti", s("j")),
        ("expires_at", n(now + 3600)),
    ])
    .await;
    // Stale claims: their user has another address and username now.
    let mover = t.add_user("mover-new@example.com", Some("mover_new"), true, None).await;
    t.put(&[("pk", s("EMAIL#mover-old@example.com")), ("sk", s("EMAIL")), ("user_id", s(mover.id.as_str()))]).await;
    t.put(&[("pk", s("USERNAME#mover_old")), ("sk", s("USERNAME")), ("user_id", s(mover.id.as_str()))]).await;
    // Users whose claims are gone: deleted, or expired while the user is live.
    let bare = t.add_user("bare@example.com", Some("Bare"), true, None).await;
    t.delete("EMAIL#bare@example.com", "EMAIL").await;
    t.delete("USERNAME#bare", "USERNAME").await;
    let lapsed = t.add_user("lapsed@example.com", None, true, None).await;
    t.put(&[
        ("pk", s("EMAIL#lapsed@example.com")),
        ("sk", s("EMAIL")),
        ("user_id", s(lapsed.id.as_str())),
        ("expires_at", n(now - 100)),
    ])
    .await;
    // A user whose claim names a user that does not exist.
    let hijacked = t.add_user("hijacked@example.com", None, true, None).await;
    t.put(&[("pk", s("EMAIL#hijacked@example.com")), ("sk", s("EMAIL")), ("user_id", s(ghost.as_str()))]).await;
    // Expired items TTL has not removed yet: a never-activated account (user and claim), a counter.
    t.add_user("expired@example.com", None, false, Some(now - 10)).await;
    t.put(&[("pk", s("RATE#register#10.0.0.1")), ("sk", s("0")), ("count", n(1)), ("expires_at", n(now - 5))]).await;

    let want: BTreeSet<_> = [
        key("orphan_email_claim", "EMAIL#ghost@example.com", "EMAIL"),
        key("orphan_email_claim", "EMAIL#hijacked@example.com", "EMAIL"),
        key("orphan_username_claim", "USERNAME#ghost", "USERNAME"),
        key("stale_email_claim", "EMAIL#mover-old@example.com", "EMAIL"),
        key("stale_username_claim", "USERNAME#mover_old", "USERNAME"),
        key("missing_email_claim", &format!("USER#{}", bare.id), "PROFILE"),
        key("missing_username_claim", &format!("USER#{}", bare.id), "PROFILE"),
        key("missing_email_claim", &format!("USER#{}", lapsed.id), "PROFILE"),
        key("foreign_email_claim", &format!("USER#{}", hijacked.id), "PROFILE"),
        key("orphan_code", &format!("USER#{ghost}"), "CODE#activation"),
        key("orphan_session", &format!("USER#{ghost}"), "SESSION#orphan"),
    ]
    .into_iter()
    .collect();

    // Found, nothing written.
    let (code, report) = t.doctor(&[]);
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["consistent"], false);
    let (found, outcomes) = problems(&report);
    assert_eq!(found, want);
    assert_eq!(outcomes, BTreeSet::from(["found".to_owned()]));
    assert_eq!(report["expired_total"], 4, "{report}");
    assert_eq!(report["expired"]["user"], 1);
    assert_eq!(report["expired"]["email claim"], 2, "the lapsed claim and the expired account's");
    assert_eq!(report["expired"]["rate counter"], 1);
    assert_eq!(report["scanned"]["users"], 7);
    assert_eq!(report["scanned"]["groups"], 1);
    assert_eq!(report["pages"], 1);
    assert!(t.get("EMAIL#ghost@example.com", "EMAIL").await.is_some(), "a check without --repair writes nothing");

    // Small pages: the same findings over many scan requests.
    let (code, paged) = t.doctor(&["--page-size", "3"]);
    assert_eq!(code, 3);
    assert_eq!(problems(&paged).0, want);
    assert!(paged["pages"].as_u64().unwrap() >= 8, "{}", paged["pages"]);
    assert_eq!(paged["scanned"], report["scanned"]);

    // The human summary names the problems and says it is inconsistent.
    let o = t.run(&["doctor"], &[]);
    assert_eq!(o.status.code(), Some(3));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("INCONSISTENT: 11 problems found"), "{text}");
    assert!(text.contains("orphan email claim: EMAIL#ghost@example.com / EMAIL: its user is missing"), "{text}");
    assert!(text.contains("expired items still present: 4"), "{text}");
    assert!(stderr(&o).contains("11 inconsistencies left; authctl doctor --repair"), "{}", stderr(&o));

    // Repaired.
    let (code, repaired) = t.doctor(&["--repair"]);
    assert_eq!(code, 0, "{repaired}");
    assert_eq!(repaired["consistent"], true);
    let (found, outcomes) = problems(&repaired);
    assert_eq!(found, want);
    assert_eq!(outcomes, BTreeSet::from(["repaired".to_owned()]));
    assert_eq!(repaired["expired_deleted"], 4);

    // Clean on the next run, and nothing expired is left.
    let (code, again) = t.doctor(&[]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["problems"], Value::Array(Vec::new()));
    assert_eq!(again["expired_total"], 0);
    let o = t.run(&["doctor"], &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("consistent: no problems found"));

    // What the repairs did, item by item.
    for (pk, sk) in [
        ("EMAIL#ghost@example.com", "EMAIL"),
        ("USERNAME#ghost", "USERNAME"),
        ("EMAIL#mover-old@example.com", "EMAIL"),
        ("USERNAME#mover_old", "USERNAME"),
        ("EMAIL#expired@example.com", "EMAIL"),
        ("RATE#register#10.0.0.1", "0"),
    ] {
        assert!(t.get(pk, sk).await.is_none(), "{pk} should be gone");
    }
    assert!(t.get(&format!("USER#{ghost}"), "CODE#activation").await.is_none());
    assert!(t.get(&format!("USER#{ghost}"), "SESSION#orphan").await.is_none());
    assert_eq!(t.owner("EMAIL#bare@example.com", "EMAIL").await.as_deref(), Some(bare.id.as_str()));
    assert_eq!(t.owner("USERNAME#bare", "USERNAME").await.as_deref(), Some(bare.id.as_str()));
    assert_eq!(t.owner("EMAIL#hijacked@example.com", "EMAIL").await.as_deref(), Some(hijacked.id.as_str()));
    let lapsed_claim = t.get("EMAIL#lapsed@example.com", "EMAIL").await.unwrap();
    assert!(!lapsed_claim.contains_key("expires_at"), "the live user's claim does not expire: {lapsed_claim:?}");
    for email in ["bare@example.com", "lapsed@example.com", "hijacked@example.com", "mover-new@example.com"] {
        assert!(t.store.find_user_by_email(&Email::parse(email).unwrap(), now).await.unwrap().is_some(), "{email}");
    }

    // The consistent data is as it was.
    assert_eq!(t.owner("EMAIL#live@example.com", "EMAIL").await.as_deref(), Some(live.id.as_str()));
    assert_eq!(t.owner("USERNAME#liveone", "USERNAME").await.as_deref(), Some(live.id.as_str()));
    assert_eq!(t.store.list_sessions(&live.id, now).await.unwrap().len(), 1);
    assert_eq!(t.store.get_code(&live.id, CodePurpose::PasswordReset, now).await.unwrap(), Some(reset));
    let p = t.store.get_user(&pending.id, now).await.unwrap().unwrap();
    assert_eq!(p.expires_at, pending.expires_at);
    assert_eq!(t.owner("EMAIL#pending@example.com", "EMAIL").await.as_deref(), Some(pending.id.as_str()));
    assert!(t.get("RATE#login#127.0.0.1", "60").await.is_some());
    assert!(t.get("GROUP#editors", "GROUP").await.is_some());
    assert_eq!(t.store.get_user(&live.id, now).await.unwrap().unwrap().version, live.version);
}

#[tokio::test]
async fn an_address_held_by_another_live_user_is_left_for_a_human() {
    let t = Table::new("doctor-dup").await;
    let first = t.add_user("same@example.com", None, true, None).await;
    // A second user with the same address, written around the claim.
    let second = UserId::generate();
    t.put(&[
        ("pk", s(format!("USER#{second}"))),
        ("sk", s("PROFILE")),
        ("id", s(second.as_str())),
        ("email", s("Same@example.com")),
        ("email_normalised", s("same@example.com")),
        ("version", n(1)),
        (LIST_PK, s(LIST_USERS)),
        (LIST_SK, s(second.as_str())),
    ])
    .await;

    let (code, report) = t.doctor(&["--repair"]);
    assert_eq!(code, 3, "{report}");
    let (found, outcomes) = problems(&report);
    assert_eq!(found, BTreeSet::from([key("foreign_email_claim", &format!("USER#{second}"), "PROFILE")]));
    assert_eq!(outcomes, BTreeSet::from(["held_by_another".to_owned()]));
    assert_eq!(report["problems"][0]["detail"], format!("EMAIL#same@example.com is held by user {}", first.id));
    assert_eq!(t.owner("EMAIL#same@example.com", "EMAIL").await.as_deref(), Some(first.id.as_str()));

    let o = t.run(&["doctor", "--repair"], &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stdout).contains("held by another user, needs a human"));
    assert!(stderr(&o).contains("1 inconsistency left"), "{}", stderr(&o));
}

#[tokio::test]
async fn an_empty_table_is_consistent_and_unreadable_items_are_reported_not_touched() {
    let t = Table::new("doctor-odd").await;
    let (code, report) = t.doctor(&[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["scanned"]["items"], 0);

    // A user item without an email: reported, never repaired.
    t.put(&[("pk", s("USER#broken")), ("sk", s("PROFILE")), ("version", n(1))]).await;
    let (code, report) = t.doctor(&["--repair"]);
    assert_eq!(code, 3);
    let (found, outcomes) = problems(&report);
    assert_eq!(found, BTreeSet::from([key("malformed", "USER#broken", "PROFILE")]));
    assert_eq!(outcomes, BTreeSet::from(["not_repairable".to_owned()]));
    assert!(t.get("USER#broken", "PROFILE").await.is_some());
}

#[test]
fn doctor_is_in_the_help_with_its_options_and_usage_errors_exit_2() {
    let o = Command::new(BIN).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("doctor"));
    let o = Command::new(BIN).args(["doctor", "--help"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout);
    for word in ["--repair", "--json", "--page-size N", "changed meanwhile", "3 inconsistencies found"] {
        assert!(help.contains(word), "{word}: {help}");
    }
    let o = Command::new(BIN).args(["doctor", "--page-size", "0"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = Command::new(BIN).args(["doctor", "--fix"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

/// A clock that runs a write (live traffic) on its `at`-th reading: the check reads the clock once
/// to scan, once per finding to read it again, and once before each repair.
struct TrafficClock {
    calls: std::sync::atomic::AtomicUsize,
    at: usize,
    traffic: std::sync::Mutex<Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>>,
    fired: std::sync::atomic::AtomicBool,
}

impl TrafficClock {
    fn new(at: usize, traffic: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        Self {
            calls: Default::default(),
            at,
            traffic: std::sync::Mutex::new(Some(Box::pin(traffic))),
            fired: Default::default(),
        }
    }
}

impl gatehouse_core::ports::Clock for TrafficClock {
    fn now(&self) -> i64 {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n == self.at {
            if let Some(write) = self.traffic.lock().unwrap().take() {
                tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(write));
                self.fired.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        now()
    }
}

/// A clock stopped at a time.
struct Stopped(i64);

impl gatehouse_core::ports::Clock for Stopped {
    fn now(&self) -> i64 {
        self.0
    }
}

fn repair() -> doctor::DoctorOptions {
    doctor::DoctorOptions { repair: true, page_size: None }
}

/// A user as registration writes it, not yet stored.
fn unsaved(email: &str, active: bool, expires_at: Option<i64>) -> User {
    User { is_active: active, date_joined: now(), tokens_valid_after: now(), expires_at, ..User::fixture(email) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_claim_taken_over_by_a_registration_during_the_repair_is_kept() {
    let t = Table::new("doctor-takeover").await;
    // A never-activated account past its expiry: user and claim still in the table.
    let late = t.add_user("late@example.com", None, false, Some(now() - 60)).await;
    // Right after the scan, a registration takes the address over (the claim is free once expired).
    let newcomer = unsaved("Late@example.com", false, Some(now() + 86_400));
    let (store, registered) = (t.store.clone(), newcomer.clone());
    let clock = TrafficClock::new(2, async move { store.create_user(&registered, None, now()).await.unwrap() });

    let report = doctor::run(&t.store, &clock, repair()).await.unwrap();
    assert!(clock.fired.load(std::sync::atomic::Ordering::SeqCst), "the registration ran during the repair");
    assert_eq!(report.expired_total, 2, "{report:?}");
    assert_eq!(report.expired_deleted, 1, "only the expired user: the claim was renewed meanwhile");
    assert!(t.get(&format!("USER#{}", late.id), "PROFILE").await.is_none());
    assert_eq!(t.owner("EMAIL#late@example.com", "EMAIL").await.as_deref(), Some(newcomer.id.as_str()));
    let (code, again) = t.doctor(&[]);
    assert_eq!(code, 0, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_claim_registered_by_another_user_during_the_repair_is_not_overwritten() {
    let t = Table::new("doctor-race").await;
    let bare = t.add_user("race@example.com", None, true, None).await;
    t.delete("EMAIL#race@example.com", "EMAIL").await;
    // Between the fresh read and the repair, somebody registers the free address.
    let other = unsaved("race@example.com", false, Some(now() + 86_400));
    let (store, registered) = (t.store.clone(), other.clone());
    let clock = TrafficClock::new(3, async move { store.create_user(&registered, None, now()).await.unwrap() });

    let report = doctor::run(&t.store, &clock, repair()).await.unwrap();
    assert!(clock.fired.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].kind, doctor::ProblemKind::MissingEmailClaim);
    assert_eq!(report.problems[0].pk, format!("USER#{}", bare.id));
    assert_eq!(report.problems[0].outcome, doctor::Outcome::HeldByAnother);
    assert!(!report.consistent());
    assert_eq!(t.owner("EMAIL#race@example.com", "EMAIL").await.as_deref(), Some(other.id.as_str()));
}

#[tokio::test]
async fn expiry_is_judged_by_the_clock_given() {
    let t = Table::new("doctor-clock").await;
    let pending = t.add_user("pending@example.com", None, false, Some(now() + 3600)).await;
    let report = doctor::run(&t.store, &Stopped(now()), repair()).await.unwrap();
    assert_eq!((report.expired_total, report.problems.len()), (0, 0));
    // Two hours on, the never-activated account and its claim are past their expiry.
    let later = Stopped(now() + 7200);
    let report = doctor::run(&t.store, &later, repair()).await.unwrap();
    assert_eq!(report.expired_total, 2, "{report:?}");
    assert_eq!(report.expired_deleted, 2);
    assert!(report.consistent());
    assert!(t.get(&format!("USER#{}", pending.id), "PROFILE").await.is_none());
    assert!(t.get("EMAIL#pending@example.com", "EMAIL").await.is_none());
}

#[tokio::test]
async fn users_and_groups_written_before_the_list_index_are_found_and_listed_by_the_repair() {
    let t = Table::new("doctor-unlisted").await;
    let now = now();
    let mut users = vec![
        t.add_user("a@example.com", Some("ann"), true, None).await,
        t.add_user("b@example.com", None, true, None).await,
        t.add_user("pending@example.com", None, false, Some(now + 3600)).await,
        t.add_user("c@example.com", None, true, None).await,
    ];
    users.sort_by(|a, b| a.id.cmp(&b.id));
    let expired = t.add_user("expired@example.com", None, false, Some(now - 10)).await;
    let group = |name: &str| Group {
        name: name.into(),
        description: format!("about {name}"),
        permissions: vec![],
        id: format!("g-{name}"),
    };
    for name in ["editors", "readers"] {
        t.store.put_group(&group(name), true).await.unwrap();
    }
    // Written before the index: three of the users (one of them pending), the expired one, a group.
    let (a, pending, c) = (&users[0], users.iter().find(|u| u.expires_at.is_some()).unwrap(), &users[3]);
    let unlisted_users = [a, pending, c];
    for u in unlisted_users.iter().copied().chain([&expired]) {
        t.unlist(&format!("USER#{}", u.id), "PROFILE").await;
    }
    t.unlist("GROUP#editors", "GROUP").await;
    // And one listed under another id.
    let b = users.iter().find(|u| !unlisted_users.iter().any(|x| x.id == u.id)).unwrap();
    t.store
        .client()
        .update_item()
        .table_name(&t.name)
        .key("pk", s(format!("USER#{}", b.id)))
        .key("sk", s("PROFILE"))
        .update_expression(format!("SET {LIST_SK} = :other"))
        .expression_attribute_values(":other", s(UserId::nil().as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(t.listed_users(now).await, vec![b.id.clone()], "only b is in the index (under the nil id)");
    assert_eq!(t.store.list_groups().await.unwrap(), vec![group("readers")]);

    let mut want: BTreeSet<_> =
        unlisted_users.iter().map(|u| key("not_listed", &format!("USER#{}", u.id), "PROFILE")).collect();
    want.insert(key("not_listed", &format!("USER#{}", b.id), "PROFILE"));
    want.insert(key("not_listed", "GROUP#editors", "GROUP"));
    let (code, report) = t.doctor(&[]);
    assert_eq!(code, 3, "{report}");
    let (found, outcomes) = problems(&report);
    assert_eq!(found, want, "the expired user is not a finding: TTL removes it");
    assert_eq!(outcomes, BTreeSet::from(["found".to_owned()]));
    let group_problem = report["problems"].as_array().unwrap().iter().find(|p| p["pk"] == "GROUP#editors").unwrap();
    assert_eq!(group_problem["user_id"], Value::Null);
    let o = t.run(&["doctor"], &[]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!(
            "not listed: USER#{} / PROFILE: no list_pk / list_sk: staff listings do not show it",
            a.id
        )),
        "{text}"
    );
    assert!(text.contains(&format!("list_pk / list_sk are 'USER' / '{}', not its own", UserId::nil())), "{text}");
    assert_eq!(t.listed_users(now).await, vec![b.id.clone()], "a check without --repair writes nothing");

    let (code, repaired) = t.doctor(&["--repair"]);
    assert_eq!(code, 0, "{repaired}");
    let (found, outcomes) = problems(&repaired);
    assert_eq!(found, want);
    assert_eq!(outcomes, BTreeSet::from(["repaired".to_owned()]));
    assert_eq!(t.listed_users(now).await, users.iter().map(|u| u.id.clone()).collect::<Vec<_>>());
    assert_eq!(t.store.list_groups().await.unwrap(), vec![group("editors"), group("readers")]);
    // Nothing else of the items was written.
    for u in &users {
        assert_eq!(t.store.get_user(&u.id, now).await.unwrap().as_ref(), Some(u));
    }
    let pending_item = t.get(&format!("USER#{}", pending.id), "PROFILE").await.unwrap();
    assert_eq!(pending_item[LIST_PK], s(LIST_USERS));
    assert_eq!(pending_item[LIST_SK], s(pending.id.as_str()));
    let (code, again) = t.doctor(&[]);
    assert_eq!((code, &again["problems"]), (0, &Value::Array(Vec::new())), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_deleted_before_its_listing_repair_is_not_written_again() {
    let t = Table::new("doctor-unlistgone").await;
    let gone = t.add_user("gone@example.com", None, true, None).await;
    t.unlist(&format!("USER#{}", gone.id), "PROFILE").await;
    // The check reads the clock to scan, to read the finding again, then to repair it: the user
    // is deleted between the fresh read and the repair.
    let (store, deleted) = (t.store.clone(), gone.clone());
    let clock = TrafficClock::new(3, async move { store.delete_user(&deleted).await.unwrap() });

    let report = doctor::run(&t.store, &clock, repair()).await.unwrap();
    assert!(clock.fired.load(std::sync::atomic::Ordering::SeqCst), "the deletion ran during the repair");
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].kind, doctor::ProblemKind::NotListed);
    assert_eq!(report.problems[0].outcome, doctor::Outcome::ChangedMeanwhile);
    assert!(t.get(&format!("USER#{}", gone.id), "PROFILE").await.is_none(), "no item brought back by the repair");
    let (code, again) = t.doctor(&[]);
    assert_eq!(code, 0, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_listed_meanwhile_is_left_as_it_is() {
    let t = Table::new("doctor-unlistraced").await;
    let u = t.add_user("raced@example.com", None, true, None).await;
    t.unlist(&format!("USER#{}", u.id), "PROFILE").await;
    // Between the fresh read and the repair, something else lists the user (under another id):
    // the repair's condition (the list keys as read: absent) no longer holds, and it writes nothing.
    let (client, table, pk) = (t.store.client().clone(), t.name.clone(), format!("USER#{}", u.id));
    let clock = TrafficClock::new(3, async move {
        client
            .update_item()
            .table_name(table)
            .key("pk", s(pk))
            .key("sk", s("PROFILE"))
            .update_expression(format!("SET {LIST_PK} = :u, {LIST_SK} = :other"))
            .expression_attribute_values(":u", s(LIST_USERS))
            .expression_attribute_values(":other", s("elsewhere"))
            .send()
            .await
            .unwrap();
    });
    let report = doctor::run(&t.store, &clock, repair()).await.unwrap();
    assert!(clock.fired.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].outcome, doctor::Outcome::ChangedMeanwhile);
    let item = t.get(&format!("USER#{}", u.id), "PROFILE").await.unwrap();
    assert_eq!(item[LIST_SK], s("elsewhere"));
}

const TRANSACT_WRITE: &str = "DynamoDB_20120810.TransactWriteItems";

/// One call to the emulator's fault injector (`tools/emulator.py`, path `/_fault`).
fn fault_control(method: &str, path: &str, body: Option<&Value>) -> Value {
    emulator_control(&endpoint(), method, path, body).unwrap_or_else(|e| panic!("{e} (is this tools/emulator.py?)"))
}

/// A fault armed on this table's TransactWriteItems requests; disarmed when dropped.
struct Fault(u64);

impl Fault {
    fn arm(t: &Table, mut spec: Value) -> Self {
        spec["target"] = TRANSACT_WRITE.into();
        spec["contains"] = t.name.clone().into();
        Fault(fault_control("POST", "/_fault", Some(&spec))["id"].as_u64().unwrap())
    }

    /// (requests it failed, requests that matched).
    fn counts(&self) -> (u64, u64) {
        let state = fault_control("GET", &format!("/_fault/{}", self.0), None);
        (state["fired"].as_u64().unwrap(), state["seen"].as_u64().unwrap())
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        fault_control("DELETE", &format!("/_fault/{}", self.0), None);
    }
}

/// An SDK interceptor keeping the ClientRequestToken of every TransactWriteItems attempt a client
/// sends (None: the attempt had none).
#[derive(Clone, Debug, Default)]
struct Tokens(Arc<Mutex<Vec<Option<String>>>>);

impl Tokens {
    fn take(&self) -> Vec<Option<String>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Tokens {
    fn name(&self) -> &'static str {
        "transaction-tokens"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        if request.headers().get("x-amz-target") == Some(TRANSACT_WRITE) {
            let body: Value = serde_json::from_slice(request.body().bytes().unwrap_or_default())?;
            self.0.lock().unwrap().push(body["ClientRequestToken"].as_str().map(str::to_owned));
        }
        Ok(())
    }
}

/// A table holding one orphan email claim, and a store over it whose client keeps the tokens of
/// the transactions it sends.
async fn orphan_claim(test: &str) -> (Table, DynamoStore, Tokens) {
    let t = Table::new(test).await;
    let ghost = UserId::generate();
    t.put(&[("pk", s("EMAIL#ghost@example.com")), ("sk", s("EMAIL")), ("user_id", s(ghost.as_str()))]).await;
    let tokens = Tokens::default();
    let sdk = gatehouse_core::aws::local_aws_config(&t.endpoint).await;
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(tokens.clone()).build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), t.name.clone());
    (t, store, tokens)
}

/// A repair transaction that committed but whose reply was lost is retried by the SDK with the
/// attempt's own ClientRequestToken: on DynamoDB that retry answers success and the repair is
/// reported repaired. The emulator ignores the token, so here the retry meets its own write and
/// the repair is reported changed meanwhile; the table is repaired either way.
#[tokio::test]
async fn a_repair_whose_reply_is_lost_is_retried_with_its_client_request_token() {
    let (t, store, tokens) = orphan_claim("doctor-lostreply").await;
    let fault = Fault::arm(&t, json!({"count": 1, "status": 500, "code": "InternalServerError", "after": true}));

    let report = doctor::run(&store, &SystemClock, repair()).await.unwrap();
    assert_eq!(fault.counts(), (1, 2), "applied, reply lost, retried by the SDK");
    let sent = tokens.take();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].as_deref().is_some_and(|token| !token.is_empty()), "the repair carries a token: {sent:?}");
    assert_eq!(sent[1], sent[0], "the SDK's retry carries the same token");
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].kind, doctor::ProblemKind::OrphanEmailClaim);
    assert_eq!(report.problems[0].outcome, doctor::Outcome::ChangedMeanwhile, "the emulator ignores the token");
    assert!(t.get("EMAIL#ghost@example.com", "EMAIL").await.is_none(), "the repair was applied");
    drop(fault);
    let (code, again) = t.doctor(&[]);
    assert_eq!(code, 0, "{again}");
}

/// A repair transaction that keeps losing to concurrent transactions is retried as every
/// transaction of the store is: up to 8 times more, each attempt with a token of its own.
#[tokio::test]
async fn a_repair_that_loses_to_concurrent_transactions_is_retried_as_the_stores_own() {
    let (t, store, tokens) = orphan_claim("doctor-conflicts").await;
    let conflicts = json!({
        "count": 7, "status": 400, "code": "TransactionCanceledException", "reasons": ["None", "TransactionConflict"],
    });
    let fault = Fault::arm(&t, conflicts);

    let report = doctor::run(&store, &SystemClock, repair()).await.unwrap();
    assert_eq!(fault.counts(), (7, 8), "seven conflicts, then the eighth attempt");
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].outcome, doctor::Outcome::Repaired);
    let sent = tokens.take();
    let distinct: HashSet<String> = sent.iter().flatten().cloned().collect();
    assert_eq!((sent.len(), distinct.len()), (8, 8), "a token per attempt: {sent:?}");
    assert!(t.get("EMAIL#ghost@example.com", "EMAIL").await.is_none());
}
