//! The store contract: the same suite against the memory store and against DynamoDB through the
//! local emulator (`GATEHOUSE_TEST_DYNAMODB_ENDPOINT`, set by `make test`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use gatehouse_core::domain::{AuditEntry, AuditPosition, AuditStream, DAY};
use gatehouse_core::domain::{Challenge, ChallengeKind, Mfa, PasskeyRecord, RecoveryCodes, TotpFactor};
use gatehouse_core::domain::{CodePurpose, Email, Group, Identity, Permission, User, UserId, Username};
use gatehouse_core::ports::{
    ActivateError, ChangeEmailError, CodeRecord, CounterKey, CounterState, CreateUserError, GiveBack, Reservation,
    Rotation, Session, Store, UpdateUserError, MAX_CODE_ATTEMPTS,
};
use gatehouse_core::secrets::sha256_hex;
use gatehouse_core::store::{DynamoStore, MemoryStore};

const NOW: i64 = 1_800_000_000;

struct Harness {
    store: Arc<dyn Store>,
    dynamo: Option<DynamoStore>,
    memory: Option<Arc<MemoryStore>>,
}

impl Harness {
    fn memory() -> Self {
        let m = Arc::new(MemoryStore::new());
        Self { store: m.clone(), dynamo: None, memory: Some(m) }
    }

    async fn dynamo() -> Self {
        let endpoint = std::env::var("GATEHOUSE_TEST_DYNAMODB_ENDPOINT").expect(
            "GATEHOUSE_TEST_DYNAMODB_ENDPOINT is not set: run the DynamoDB contract through `make test`, which starts the emulator",
        );
        let sdk = gatehouse_core::aws::local_aws_config(&endpoint).await;
        let table = format!("c-{}", gatehouse_core::secrets::random_id().unwrap().replace(['-', '_'], "x"));
        // IAM evidence: the client records the AWS operations of every store call, which the
        // FaultyStore wrapper (no faults armed) names (see gatehouse_core::iam).
        let config =
            aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(gatehouse_core::iam::Interceptor).build();
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), table);
        store.create_table().await.unwrap();
        let (named, _) = gatehouse_core::store::FaultyStore::new(Arc::new(store.clone()));
        Self { store: Arc::new(named), dynamo: Some(store), memory: None }
    }

    /// Email claim items stored, expired or not.
    async fn email_claims(&self) -> usize {
        match (&self.dynamo, &self.memory) {
            (Some(d), _) => d.scan_prefix("EMAIL#").await.unwrap().len(),
            (_, Some(m)) => m.email_claim_count(),
            _ => unreachable!(),
        }
    }

    /// User items stored, expired or not.
    async fn users(&self) -> usize {
        match (&self.dynamo, &self.memory) {
            (Some(d), _) => {
                d.scan_prefix("USER#").await.unwrap().iter().filter(|i| i["sk"].as_s().unwrap() == "PROFILE").count()
            }
            (_, Some(m)) => m.user_count(),
            _ => unreachable!(),
        }
    }
}

fn user(email: &str, username: Option<&str>, expires_at: Option<i64>) -> User {
    User {
        username: username.map(|u| Username::parse(u).unwrap()),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        is_active: expires_at.is_none(),
        groups: vec!["editors".into()],
        date_joined: NOW,
        tokens_valid_after: NOW,
        expires_at,
        ..User::fixture(email)
    }
}

fn code(user: &User, secret: &str, expires_at: i64) -> CodeRecord {
    code_for(user, CodePurpose::Activation, secret, expires_at, None)
}

fn code_for(user: &User, purpose: CodePurpose, secret: &str, expires_at: i64, data: Option<&str>) -> CodeRecord {
    CodeRecord {
        user_id: user.id.clone(),
        purpose,
        hash: sha256_hex(secret),
        expires_at,
        attempts: 0,
        data: data.map(str::to_owned),
        spent: false,
    }
}

fn session(user: &User, sid: &str, jti: &str) -> Session {
    Session {
        user_id: user.id.clone(),
        id: sid.into(),
        current_jti: jti.into(),
        counter: 0,
        previous_jti: None,
        rotated_at: None,
        created_at: NOW,
        last_used_at: NOW,
        user_agent: Some("test-agent".into()),
        ip: Some("203.0.113.7".into()),
        expires_at: NOW + 1000,
    }
}

async fn create_then_read_back(h: Harness) {
    let u = user("Ada@Example.com", Some("Ada"), Some(NOW + 100));
    h.store.create_user(&u, Some(&code(&u, "s3cret", NOW + 50)), NOW).await.unwrap();
    assert_eq!(h.store.get_user(&u.id, NOW).await.unwrap(), Some(u.clone()));
    let by_email = h.store.find_user_by_email(&Email::parse("ada@EXAMPLE.com").unwrap(), NOW).await.unwrap();
    assert_eq!(by_email, Some(u.clone()));
    let c = h.store.get_code(&u.id, CodePurpose::Activation, NOW).await.unwrap().unwrap();
    assert_eq!(c.hash, sha256_hex("s3cret"));
    assert_eq!(h.store.get_code(&u.id, CodePurpose::PasswordReset, NOW).await.unwrap(), None);
    assert_eq!(h.store.get_user(&UserId::generate(), NOW).await.unwrap(), None);
}

async fn duplicates_are_refused_and_nothing_half_written(h: Harness) {
    let a = user("ada@example.com", Some("ada"), None);
    h.store.create_user(&a, None, NOW).await.unwrap();
    let same_email = user("ADA@example.com", None, None);
    assert!(matches!(h.store.create_user(&same_email, None, NOW).await, Err(CreateUserError::EmailTaken)));
    let same_name = user("grace@example.com", Some("ADA"), None);
    assert!(matches!(h.store.create_user(&same_name, None, NOW).await, Err(CreateUserError::UsernameTaken)));
    assert_eq!(h.store.get_user(&same_name.id, NOW).await.unwrap(), None);
    // The loser's email claim was not left behind.
    let retry = user("grace@example.com", Some("grace"), None);
    h.store.create_user(&retry, None, NOW).await.unwrap();
    assert_eq!(h.users().await, 2);
    assert_eq!(h.email_claims().await, 2);
}

async fn expired_items_are_invisible_and_claims_reusable(h: Harness) {
    let old = user("ada@example.com", Some("ada"), Some(NOW + 10));
    h.store.create_user(&old, Some(&code(&old, "c", NOW + 5)), NOW).await.unwrap();
    assert!(h.store.get_code(&old.id, CodePurpose::Activation, NOW + 4).await.unwrap().is_some());
    assert_eq!(h.store.get_code(&old.id, CodePurpose::Activation, NOW + 5).await.unwrap(), None);
    assert!(matches!(
        h.store.create_user(&user("ada@example.com", None, None), None, NOW + 9).await,
        Err(CreateUserError::EmailTaken)
    ));
    // At expiry the item may still be in the table, but it is gone for us and its claims are free.
    assert_eq!(h.store.get_user(&old.id, NOW + 10).await.unwrap(), None);
    assert_eq!(h.store.find_user_by_email(&old.email, NOW + 10).await.unwrap(), None);
    let new = user("ada@example.com", Some("ada"), None);
    h.store.create_user(&new, None, NOW + 10).await.unwrap();
    assert_eq!(h.store.find_user_by_email(&old.email, NOW + 10).await.unwrap().map(|u| u.id), Some(new.id.clone()));
    let mut s = session(&new, "s1", "j1");
    s.expires_at = NOW + 20;
    h.store.create_session(&s, None, &GiveBack::default()).await.unwrap();
    assert!(h.store.get_user_and_session(&new.id, "s1", NOW + 19).await.unwrap().1.is_some());
    assert_eq!(h.store.get_user_and_session(&new.id, "s1", NOW + 20).await.unwrap().1, None);
    assert_eq!(h.store.rotate_session(&new.id, "s1", "j1", "j2", NOW + 20).await.unwrap(), Rotation::Stale);
}

async fn activation_consumes_the_code_once(h: Harness) {
    let u = user("ada@example.com", Some("ada"), Some(NOW + 100));
    h.store.create_user(&u, Some(&code(&u, "right", NOW + 50)), NOW).await.unwrap();
    assert!(matches!(h.store.activate(&u.id, &sha256_hex("wrong"), NOW).await, Err(ActivateError::InvalidCode)));
    h.store.activate(&u.id, &sha256_hex("right"), NOW).await.unwrap();
    assert!(matches!(h.store.activate(&u.id, &sha256_hex("right"), NOW).await, Err(ActivateError::NotActivatable)));
    let stored = h.store.get_user(&u.id, NOW).await.unwrap().unwrap();
    assert!(stored.is_active);
    assert_eq!(stored.expires_at, None);
    assert_eq!(stored.version, 2);
    // The spent code stays, marked, until it would have expired: recognised, never accepted.
    let spent = h.store.get_code(&u.id, CodePurpose::Activation, NOW).await.unwrap().unwrap();
    assert!(spent.spent && spent.matches(&sha256_hex("right")));
    assert_eq!(h.store.get_code(&u.id, CodePurpose::Activation, NOW + 50).await.unwrap(), None);
    assert_eq!(h.store.reserve_guess(&u.id, CodePurpose::Activation, NOW).await.unwrap(), None);
    // Neither the user nor its claims expire any more.
    let later = NOW + 10_000;
    assert_eq!(h.store.find_user_by_email(&u.email, later).await.unwrap().map(|x| x.id), Some(u.id.clone()));
    let squatter = user("other@example.com", Some("ADA"), None);
    assert!(matches!(h.store.create_user(&squatter, None, later).await, Err(CreateUserError::UsernameTaken)));
}

async fn an_expired_code_does_not_activate(h: Harness) {
    let u = user("ada@example.com", None, Some(NOW + 100));
    h.store.create_user(&u, Some(&code(&u, "right", NOW + 50)), NOW).await.unwrap();
    assert!(matches!(h.store.activate(&u.id, &sha256_hex("right"), NOW + 50).await, Err(ActivateError::InvalidCode)));
    assert!(!h.store.get_user(&u.id, NOW + 50).await.unwrap().unwrap().is_active);
}

async fn concurrent_creates_of_one_email_make_one_user(h: Harness) {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move {
            let u = user("race@example.com", Some(&format!("racer{i}")), Some(NOW + 100));
            store.create_user(&u, Some(&code(&u, "c", NOW + 50)), NOW).await
        }));
    }
    let (mut wins, mut lost) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => wins += 1,
            Err(CreateUserError::EmailTaken) => lost += 1,
            Err(e) => panic!("a losing registration answered {e:?}, want EmailTaken"),
        }
    }
    assert_eq!((wins, lost), (1, 19));
    assert_eq!(h.users().await, 1);
    assert_eq!(h.email_claims().await, 1);
}

async fn concurrent_activations_succeed_once(h: Harness) {
    let u = user("ada@example.com", None, Some(NOW + 100));
    h.store.create_user(&u, Some(&code(&u, "right", NOW + 50)), NOW).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (store, id) = (h.store.clone(), u.id.clone());
        tasks.push(tokio::spawn(async move { store.activate(&id, &sha256_hex("right"), NOW).await }));
    }
    // Every loser finds the account active already: NotActivatable (the activation service
    // answers stale_token to it), never InvalidCode (the right code) nor a store error.
    let (mut wins, mut lost) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => wins += 1,
            Err(ActivateError::NotActivatable) => lost += 1,
            Err(e) => panic!("a losing activation answered {e:?}, want NotActivatable"),
        }
    }
    assert_eq!((wins, lost), (1, 9));
}

async fn sessions_rotate_conditionally(h: Harness) {
    let u = user("ada@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    h.store.create_session(&session(&u, "s1", "j1"), Some(NOW + 1), &GiveBack::default()).await.unwrap();
    let (got_user, got) = h.store.get_user_and_session(&u.id, "s1", NOW + 1).await.unwrap();
    assert_eq!(got_user.unwrap().last_login, Some(NOW + 1));
    assert_eq!(got, Some(session(&u, "s1", "j1")));
    assert_eq!(h.store.get_user_and_session(&u.id, "nope", NOW).await.unwrap().1, None);
    assert_eq!(h.store.rotate_session(&u.id, "s1", "j1", "j2", NOW + 5).await.unwrap(), Rotation::Rotated);
    assert_eq!(h.store.rotate_session(&u.id, "s1", "j1", "j3", NOW + 6).await.unwrap(), Rotation::Stale);
    let s = h.store.get_user_and_session(&u.id, "s1", NOW + 6).await.unwrap().1.unwrap();
    assert_eq!((s.current_jti.as_str(), s.previous_jti.as_deref(), s.counter), ("j2", Some("j1"), 1));
    assert_eq!((s.rotated_at, s.last_used_at), (Some(NOW + 5), NOW + 5));
    h.store.delete_session(&u.id, "s1").await.unwrap();
    h.store.delete_session(&u.id, "s1").await.unwrap();
    assert_eq!(h.store.get_user_and_session(&u.id, "s1", NOW).await.unwrap().1, None);
    assert_eq!(h.store.rotate_session(&u.id, "s1", "j2", "j4", NOW).await.unwrap(), Rotation::Stale);
}

async fn concurrent_rotations_of_one_token_fork_nothing(h: Harness) {
    let u = user("ada@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    h.store.create_session(&session(&u, "s1", "j0"), None, &GiveBack::default()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (store, id) = (h.store.clone(), u.id.clone());
        tasks.push(tokio::spawn(
            async move { store.rotate_session(&id, "s1", "j0", &format!("n{i}"), NOW).await.unwrap() },
        ));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let wins = outcomes.iter().filter(|o| **o == Rotation::Rotated).count();
    let stale = outcomes.iter().filter(|o| **o == Rotation::Stale).count();
    assert_eq!((wins, stale), (1, 9), "{outcomes:?}");
    let s = h.store.get_user_and_session(&u.id, "s1", NOW).await.unwrap().1.unwrap();
    assert_eq!(s.counter, 1);
}

async fn profile_updates_are_optimistic(h: Harness) {
    let a = user("ada@example.com", Some("ada"), None);
    let g = user("grace@example.com", Some("grace"), None);
    h.store.create_user(&a, None, NOW).await.unwrap();
    h.store.create_user(&g, None, NOW).await.unwrap();
    let mut renamed = a.clone();
    renamed.username = Some(Username::parse("countess").unwrap());
    renamed.first_name = "Augusta".into();
    assert_eq!(h.store.update_user(&a, &renamed, NOW).await.unwrap(), 2);
    // A stale copy loses.
    assert!(matches!(h.store.update_user(&a, &renamed, NOW).await, Err(UpdateUserError::Conflict)));
    let stored = h.store.get_user(&a.id, NOW).await.unwrap().unwrap();
    assert_eq!((stored.first_name.as_str(), stored.version), ("Augusta", 2));
    // The old username is free, the new one taken.
    let mut g2 = g.clone();
    g2.username = Some(Username::parse("Countess").unwrap());
    assert!(matches!(h.store.update_user(&g, &g2, NOW).await, Err(UpdateUserError::UsernameTaken)));
    g2.username = Some(Username::parse("ADA").unwrap());
    h.store.update_user(&g, &g2, NOW).await.unwrap();
    // Dropping a username frees it.
    let current = h.store.get_user(&g.id, NOW).await.unwrap().unwrap();
    let mut none = current.clone();
    none.username = None;
    h.store.update_user(&current, &none, NOW).await.unwrap();
    assert_eq!(h.store.get_user(&g.id, NOW).await.unwrap().unwrap().username, None);
    h.store.create_user(&user("x@example.com", Some("ada"), None), None, NOW).await.unwrap();
    // The deactivation mark is written, and removed, with the rest of the profile.
    let current = h.store.get_user(&a.id, NOW).await.unwrap().unwrap();
    let mut off = current.clone();
    off.is_active = false;
    off.deactivated_at = Some(NOW);
    h.store.update_user(&current, &off, NOW).await.unwrap();
    let stored = h.store.get_user(&a.id, NOW).await.unwrap().unwrap();
    assert_eq!((stored.is_active, stored.deactivated_at), (false, Some(NOW)));
    let mut on = stored.clone();
    on.is_active = true;
    on.deactivated_at = None;
    h.store.update_user(&stored, &on, NOW).await.unwrap();
    let stored = h.store.get_user(&a.id, NOW).await.unwrap().unwrap();
    assert_eq!((stored.is_active, stored.deactivated_at), (true, None));
}

async fn password_hash_replacement_is_conditional(h: Harness) {
    let u = user("ada@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    assert!(!h.store.replace_password_hash(&u.id, "not-current", "new").await.unwrap());
    assert!(h.store.replace_password_hash(&u.id, &u.password_hash, "new").await.unwrap());
    assert_eq!(h.store.get_user(&u.id, NOW).await.unwrap().unwrap().password_hash, "new");
}

async fn guesses_are_reserved_up_to_the_cap(h: Harness) {
    let u = user("ada@example.com", None, Some(NOW + 100));
    h.store.create_user(&u, Some(&code(&u, "right", NOW + 50)), NOW).await.unwrap();
    for taken in 1..=MAX_CODE_ATTEMPTS {
        let r = h.store.reserve_guess(&u.id, CodePurpose::Activation, NOW).await.unwrap().expect("a guess left");
        assert_eq!((r.attempts, r.hash.as_str()), (taken, sha256_hex("right").as_str()));
    }
    assert_eq!(h.store.reserve_guess(&u.id, CodePurpose::Activation, NOW).await.unwrap(), None, "past the cap");
    assert_eq!(
        h.store.get_code(&u.id, CodePurpose::Activation, NOW).await.unwrap().unwrap().attempts,
        MAX_CODE_ATTEMPTS
    );
    // The guess that took the last unit may still be the right one.
    h.store.activate(&u.id, &sha256_hex("right"), NOW).await.unwrap();
    // Missing, expired and spent codes give no guess.
    assert_eq!(h.store.reserve_guess(&u.id, CodePurpose::PasswordReset, NOW).await.unwrap(), None);
    assert_eq!(h.store.reserve_guess(&u.id, CodePurpose::Activation, NOW).await.unwrap(), None);
    let g = user("grace@example.com", None, Some(NOW + 100));
    h.store.create_user(&g, Some(&code(&g, "x", NOW + 50)), NOW).await.unwrap();
    assert_eq!(h.store.reserve_guess(&g.id, CodePurpose::Activation, NOW + 50).await.unwrap(), None);
}

async fn parallel_guesses_get_exactly_the_cap(h: Harness) {
    let u = user("ada@example.com", None, Some(NOW + 100));
    h.store.create_user(&u, Some(&code(&u, "right", NOW + 50)), NOW).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, id) = (h.store.clone(), u.id.clone());
            tokio::spawn(async move { store.reserve_guess(&id, CodePurpose::Activation, NOW).await })
        })
        .collect();
    // A guess past the cap is refused without an error: `None`, not a store failure.
    let (mut granted, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(Some(_)) => granted += 1,
            Ok(None) => refused += 1,
            Err(e) => panic!("a guess past the cap failed with {e:?}, want None"),
        }
    }
    assert_eq!((granted, refused), (MAX_CODE_ATTEMPTS, 20 - MAX_CODE_ATTEMPTS));
}

async fn security_changes_kill_every_code(h: Harness) {
    let u = user("ada@example.com", Some("ada"), None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    let put_all = |u: &User| {
        let (store, u) = (h.store.clone(), u.clone());
        async move {
            for p in CodePurpose::ALL {
                store.put_code(&code_for(&u, p, p.as_str(), NOW + 500, Some("new@example.com"))).await.unwrap();
            }
        }
    };
    let codes_left = |u: &User| {
        let (store, id) = (h.store.clone(), u.id.clone());
        async move {
            let mut n = 0;
            for p in CodePurpose::ALL {
                n += usize::from(store.get_code(&id, p, NOW).await.unwrap().is_some());
            }
            n
        }
    };
    put_all(&u).await;
    // A profile edit keeps them.
    let mut renamed = u.clone();
    renamed.first_name = "Ada".into();
    renamed.version = h.store.update_user(&u, &renamed, NOW).await.unwrap();
    assert_eq!(codes_left(&u).await, 3);
    // A new password, a revocation, a deactivation: every code dies, in the same write.
    let mut current = renamed;
    for change in [
        |x: &mut User| x.password_hash = "another".into(),
        |x: &mut User| x.tokens_valid_after += 10,
        |x: &mut User| x.is_active = false,
    ] {
        put_all(&u).await;
        let mut next = current.clone();
        change(&mut next);
        next.version = h.store.update_user(&current, &next, NOW).await.unwrap();
        assert_eq!(codes_left(&u).await, 0);
        current = next;
    }
    // An email change takes every other code with it.
    let g = user("grace@example.com", None, None);
    h.store.create_user(&g, None, NOW).await.unwrap();
    put_all(&g).await;
    let new = Email::parse("new@example.com").unwrap();
    h.store.change_email(&g, &new, Some(&sha256_hex("email_change")), NOW).await.unwrap();
    assert_eq!(codes_left(&g).await, 0);
}

async fn a_reset_activates_a_never_activated_account_but_not_a_deactivated_one(h: Harness) {
    let squatted = user("owner@example.com", Some("owner"), Some(NOW + 100));
    h.store.create_user(&squatted, Some(&code(&squatted, "stranger's", NOW + 50)), NOW).await.unwrap();
    h.store.put_code(&code_for(&squatted, CodePurpose::PasswordReset, "owner's", NOW + 50, None)).await.unwrap();
    h.store.reset_password(&squatted, &sha256_hex("owner's"), "owner-hash", NOW + 1).await.unwrap();
    let stored = h.store.get_user(&squatted.id, NOW + 1_000).await.unwrap().expect("no longer expires");
    assert!(stored.is_active && stored.expires_at.is_none());
    assert_eq!(stored.password_hash, "owner-hash");
    assert_eq!(
        h.store.get_code(&squatted.id, CodePurpose::Activation, NOW).await.unwrap(),
        None,
        "stranger's link dead"
    );
    let later = NOW + 1_000;
    assert_eq!(
        h.store.find_user_by_email(&squatted.email, later).await.unwrap().map(|x| x.id),
        Some(squatted.id.clone())
    );
    let rival = user("rival@example.com", Some("OWNER"), None);
    assert!(matches!(h.store.create_user(&rival, None, later).await, Err(CreateUserError::UsernameTaken)));

    let mut disabled = user("gone@example.com", None, None);
    h.store.create_user(&disabled, None, NOW).await.unwrap();
    let mut off = disabled.clone();
    off.is_active = false;
    disabled.version = h.store.update_user(&disabled, &off, NOW).await.unwrap();
    h.store.put_code(&code_for(&disabled, CodePurpose::PasswordReset, "r", NOW + 50, None)).await.unwrap();
    assert!(matches!(
        h.store.reset_password(&disabled, &sha256_hex("r"), "h", NOW).await,
        Err(ActivateError::NotActivatable)
    ));
}

fn budget(key: &str, limit: u64) -> Reservation {
    Reservation {
        counter: CounterKey { scope: "test", key: key.into(), slot: NOW.to_string() },
        limit,
        or_at: None,
        expires_at: NOW + 3600,
    }
}

async fn reservations_hold_limits_all_or_none(h: Harness) {
    let (a, b) = (budget("a", 2), budget("b", 1));
    assert_eq!(h.store.reserve(&[a.clone(), b.clone()], NOW).await.unwrap(), Ok(()));
    // b is full: nothing is taken from a either.
    assert_eq!(h.store.reserve(&[a.clone(), b.clone()], NOW + 1).await.unwrap(), Err(1));
    let state = |c: &Reservation| {
        let (store, c) = (h.store.clone(), c.counter.clone());
        async move { store.read(&[c], NOW + 2).await.unwrap()[0] }
    };
    assert_eq!(state(&a).await, CounterState { count: 1, last_at: NOW });
    assert_eq!(h.store.reserve(std::slice::from_ref(&a), NOW + 2).await.unwrap(), Ok(()));
    assert_eq!(h.store.reserve(std::slice::from_ref(&a), NOW + 3).await.unwrap(), Err(0));
    // Past the limit, one more only while the counter is still at the state read.
    let at = state(&a).await;
    let again = Reservation { or_at: Some(at), ..a.clone() };
    assert_eq!(h.store.reserve(std::slice::from_ref(&again), NOW + 4).await.unwrap(), Ok(()));
    assert_eq!(h.store.reserve(std::slice::from_ref(&again), NOW + 5).await.unwrap(), Err(0), "state moved");
    // Refunds and forgetting.
    h.store.give_back(std::slice::from_ref(&a.counter), std::slice::from_ref(&b.counter)).await.unwrap();
    assert_eq!(state(&a).await.count, 2);
    assert_eq!(state(&b).await, CounterState::default());
    h.store.give_back(std::slice::from_ref(&budget("never", 1).counter), &[]).await.unwrap();
    assert_eq!(state(&budget("never", 1)).await, CounterState::default(), "no counter made by a refund");
}

async fn a_new_session_gives_back_the_attempt_in_its_own_write(h: Harness) {
    let u = user("ada@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    let (budget_a, lock) = (budget("login-ip", 10), budget("login-lock", 10));
    let count = |c: &Reservation| {
        let (store, c) = (h.store.clone(), c.counter.clone());
        async move { store.read(&[c], NOW + 2).await.unwrap()[0].count }
    };
    for at in [NOW, NOW + 1] {
        assert_eq!(h.store.reserve(&[budget_a.clone(), lock.clone()], at).await.unwrap(), Ok(()));
    }
    let back = GiveBack { refund: vec![budget_a.counter.clone()], forget: vec![lock.counter.clone()] };
    h.store.create_session(&session(&u, "s1", "j1"), Some(NOW + 2), &back).await.unwrap();
    assert!(h.store.get_user_and_session(&u.id, "s1", NOW + 2).await.unwrap().1.is_some());
    assert_eq!((count(&budget_a).await, count(&lock).await), (1, 0));
    // A counter to refund that is gone (its window ended, a reset lifted it) keeps neither the
    // session from being written nor the rest from being given back, and is not made again.
    let gone = budget("gone", 10);
    let back = GiveBack { refund: vec![gone.counter.clone(), budget_a.counter.clone()], forget: vec![] };
    h.store.create_session(&session(&u, "s2", "j1"), Some(NOW + 3), &back).await.unwrap();
    let (got_user, got) = h.store.get_user_and_session(&u.id, "s2", NOW + 3).await.unwrap();
    assert_eq!((got.is_some(), got_user.unwrap().last_login), (true, Some(NOW + 3)));
    assert_eq!((count(&budget_a).await, count(&gone).await), (0, 0));
    // The user gone: no session, nothing given back.
    h.store.reserve(std::slice::from_ref(&budget_a), NOW + 4).await.unwrap().unwrap();
    h.store.delete_user(&u).await.unwrap();
    let back = GiveBack { refund: vec![budget_a.counter.clone()], forget: vec![] };
    assert!(h.store.create_session(&session(&u, "s3", "j1"), Some(NOW + 5), &back).await.is_err());
    assert_eq!(h.store.get_user_and_session(&u.id, "s3", NOW + 5).await.unwrap().1, None);
    assert_eq!(count(&budget_a).await, 1, "the attempt stays counted");
}

async fn parallel_reservations_never_pass_the_limit(h: Harness) {
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = h.store.clone();
            let res = vec![budget("shared", 5), budget(&format!("own{i}"), 100)];
            tokio::spawn(async move { store.reserve(&res, NOW).await })
        })
        .collect();
    // A refused reservation names the full budget: index 0, the shared one (each own budget has
    // room), and is not a store error.
    let (mut granted, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(Ok(())) => granted += 1,
            Ok(Err(0)) => refused += 1,
            other => panic!("a refused reservation answered {other:?}, want Ok(Err(0))"),
        }
    }
    assert_eq!((granted, refused), (5, 15));
    assert_eq!(h.store.read(&[budget("shared", 5).counter], NOW).await.unwrap()[0].count, 5);
}

async fn codes_are_purpose_bound(h: Harness) {
    let u = user("ada@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    h.store.put_code(&code_for(&u, CodePurpose::PasswordReset, "reset", NOW + 50, None)).await.unwrap();
    // A reset code does not activate, an activation code does not reset.
    let inactive = user("grace@example.com", None, Some(NOW + 100));
    h.store.create_user(&inactive, Some(&code(&inactive, "act", NOW + 50)), NOW).await.unwrap();
    h.store.put_code(&code_for(&inactive, CodePurpose::PasswordReset, "reset2", NOW + 50, None)).await.unwrap();
    assert!(matches!(
        h.store.activate(&inactive.id, &sha256_hex("reset2"), NOW).await,
        Err(ActivateError::InvalidCode)
    ));
    assert!(matches!(h.store.reset_password(&u, &sha256_hex("act"), "h", NOW).await, Err(ActivateError::InvalidCode)));
    h.store.reset_password(&u, &sha256_hex("reset"), "new-hash", NOW + 1).await.unwrap();
    let stored = h.store.get_user(&u.id, NOW).await.unwrap().unwrap();
    assert_eq!((stored.password_hash.as_str(), stored.tokens_valid_after, stored.version), ("new-hash", NOW + 1, 2));
    assert!(matches!(
        h.store.reset_password(&u, &sha256_hex("reset"), "again", NOW).await,
        Err(ActivateError::InvalidCode)
    ));
}

async fn concurrent_resets_succeed_once(h: Harness) {
    let u = user("ada@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    h.store.put_code(&code_for(&u, CodePurpose::PasswordReset, "reset", NOW + 50, None)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (store, u) = (h.store.clone(), u.clone());
        tasks.push(tokio::spawn(
            async move { store.reset_password(&u, &sha256_hex("reset"), &format!("h{i}"), NOW).await },
        ));
    }
    // The losers find the code spent (InvalidCode); the account itself was fine for each of them.
    let (mut wins, mut lost) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => wins += 1,
            Err(ActivateError::InvalidCode) => lost += 1,
            Err(e) => panic!("a losing reset answered {e:?}, want InvalidCode"),
        }
    }
    assert_eq!((wins, lost), (1, 9));
}

async fn email_changes_swap_claims_atomically(h: Harness) {
    let u = user("ada@example.com", Some("ada"), None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    h.store
        .put_code(&code_for(&u, CodePurpose::EmailChange, "chg", NOW + 50, Some("countess@example.com")))
        .await
        .unwrap();
    let new = Email::parse("Countess@example.com").unwrap();
    assert!(matches!(
        h.store.change_email(&u, &new, Some(&sha256_hex("bad")), NOW).await,
        Err(ChangeEmailError::InvalidCode)
    ));
    h.store.change_email(&u, &new, Some(&sha256_hex("chg")), NOW).await.unwrap();
    let stored = h.store.find_user_by_email(&new, NOW).await.unwrap().unwrap();
    assert_eq!((stored.id.clone(), stored.email.as_str()), (u.id.clone(), "Countess@example.com"));
    assert_eq!(h.store.find_user_by_email(&u.email, NOW).await.unwrap(), None);
    assert_eq!(h.email_claims().await, 1);
    // The old address is free again; the new one is taken.
    h.store.create_user(&user("ada@example.com", None, None), None, NOW).await.unwrap();
    let other = user("grace@example.com", None, None);
    h.store.create_user(&other, None, NOW).await.unwrap();
    assert!(matches!(h.store.change_email(&other, &new, None, NOW).await, Err(ChangeEmailError::EmailTaken)));
    // A stale copy of the user loses.
    assert!(matches!(
        h.store.change_email(&u, &Email::parse("x@example.com").unwrap(), None, NOW).await,
        Err(ChangeEmailError::Conflict)
    ));
    // Only the case changes: one claim, updated display address.
    let current = h.store.get_user(&u.id, NOW).await.unwrap().unwrap();
    h.store.change_email(&current, &Email::parse("COUNTESS@example.com").unwrap(), None, NOW).await.unwrap();
    assert_eq!(h.store.get_user(&u.id, NOW).await.unwrap().unwrap().email.as_str(), "COUNTESS@example.com");
    assert_eq!(h.email_claims().await, 3);
}

async fn an_email_swap_racing_a_registration_has_one_winner(h: Harness) {
    for round in 0..5 {
        let target = format!("wanted{round}@example.com");
        let u = user(&format!("mover{round}@example.com"), None, None);
        h.store.create_user(&u, None, NOW).await.unwrap();
        let (s1, s2) = (h.store.clone(), h.store.clone());
        let (t1, t2) = (target.clone(), target.clone());
        let mover = u.clone();
        let swap = tokio::spawn(async move { s1.change_email(&mover, &Email::parse(&t1).unwrap(), None, NOW).await });
        let register = tokio::spawn(async move { s2.create_user(&user(&t2, None, None), None, NOW).await });
        // The loser is told the address is taken, not that something else went wrong.
        let a = match swap.await.unwrap() {
            Ok(()) => true,
            Err(ChangeEmailError::EmailTaken) => false,
            Err(e) => panic!("round {round}: the losing swap answered {e:?}, want EmailTaken"),
        };
        let b = match register.await.unwrap() {
            Ok(()) => true,
            Err(CreateUserError::EmailTaken) => false,
            Err(e) => panic!("round {round}: the losing registration answered {e:?}, want EmailTaken"),
        };
        assert!(a ^ b, "exactly one of the swap ({a}) and the registration ({b}) wins");
        let holder = h.store.find_user_by_email(&Email::parse(&target).unwrap(), NOW).await.unwrap().unwrap();
        assert_eq!(holder.id == u.id, a);
        // No orphan: the mover still owns exactly one address.
        let old = h.store.find_user_by_email(&u.email, NOW).await.unwrap();
        assert_eq!(old.is_some(), !a);
    }
    assert_eq!(h.email_claims().await, h.users().await);
}

async fn deleting_a_user_removes_everything(h: Harness) {
    let u = user("ada@example.com", Some("ada"), None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    h.store.put_code(&code_for(&u, CodePurpose::PasswordReset, "r", NOW + 50, None)).await.unwrap();
    h.store.create_session(&session(&u, "s1", "j"), None, &GiveBack::default()).await.unwrap();
    h.store.create_session(&session(&u, "s2", "j"), None, &GiveBack::default()).await.unwrap();
    let stale = u.clone();
    let mut current = u.clone();
    current.first_name = "Augusta".into();
    h.store.update_user(&u, &current, NOW).await.unwrap();
    assert!(matches!(h.store.delete_user(&stale).await, Err(UpdateUserError::Conflict)));
    let current = h.store.get_user(&u.id, NOW).await.unwrap().unwrap();
    h.store.delete_user(&current).await.unwrap();
    assert_eq!(h.store.get_user(&u.id, NOW).await.unwrap(), None);
    assert_eq!(h.store.list_sessions(&u.id, NOW).await.unwrap(), vec![]);
    assert_eq!(h.store.get_code(&u.id, CodePurpose::PasswordReset, NOW).await.unwrap(), None);
    assert_eq!((h.users().await, h.email_claims().await), (0, 0));
    h.store.create_user(&user("ada@example.com", Some("ada"), None), None, NOW).await.unwrap();
}

async fn sessions_are_listed_and_revoked_in_bulk(h: Harness) {
    let u = user("ada@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    for (i, sid) in ["a", "b", "c"].iter().enumerate() {
        let mut s = session(&u, sid, "j");
        s.created_at = NOW + i as i64;
        h.store.create_session(&s, None, &GiveBack::default()).await.unwrap();
    }
    let ids: Vec<String> = h.store.list_sessions(&u.id, NOW).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, vec!["a", "b", "c"]);
    h.store.delete_sessions(&u.id, Some("b")).await.unwrap();
    let ids: Vec<String> = h.store.list_sessions(&u.id, NOW).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, vec!["b"]);
    h.store.delete_sessions(&u.id, None).await.unwrap();
    assert!(h.store.list_sessions(&u.id, NOW).await.unwrap().is_empty());
}

async fn users_page_through_every_live_user_once(h: Harness) {
    let mut ids = Vec::new();
    for i in 0..7 {
        let u = user(&format!("u{i}@example.com"), None, None);
        ids.push(u.id.clone());
        h.store.create_user(&u, None, NOW).await.unwrap();
    }
    h.store.create_user(&user("expired@example.com", None, Some(NOW - 1)), None, NOW - 10).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = h.store.list_users(cursor.as_ref(), 3, NOW).await.unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.into_iter().map(|u| u.id));
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);
}

async fn counters_count_expire_and_cool_down(h: Harness) {
    let c = CounterKey { scope: "test", key: "203.0.113.7".into(), slot: "0".into() };
    assert_eq!(h.store.hit(&c, NOW + 10, NOW).await.unwrap(), CounterState { count: 1, last_at: NOW });
    assert_eq!(h.store.hit(&c, NOW + 10, NOW + 1).await.unwrap(), CounterState { count: 2, last_at: NOW + 1 });
    let other = CounterKey { scope: "test", key: "other".into(), slot: "0".into() };
    assert_eq!(
        h.store.read(&[c.clone(), other.clone()], NOW + 2).await.unwrap(),
        vec![CounterState { count: 2, last_at: NOW + 1 }, CounterState::default()]
    );
    // Expired but still stored: reads as zero and starts again from one.
    assert_eq!(h.store.read(std::slice::from_ref(&c), NOW + 10).await.unwrap(), vec![CounterState::default()]);
    assert_eq!(h.store.hit(&c, NOW + 30, NOW + 10).await.unwrap().count, 1);
    h.store.clear(&c).await.unwrap();
    assert_eq!(h.store.read(std::slice::from_ref(&c), NOW).await.unwrap(), vec![CounterState::default()]);
    // Concurrent hits are all counted.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (store, c) = (h.store.clone(), other.clone());
        tasks.push(tokio::spawn(async move { store.hit(&c, NOW + 100, NOW).await.unwrap() }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap().count);
    }
    // Each hit saw its own count: none lost, none read the same value as another.
    counts.sort_unstable();
    assert_eq!(counts, (1..=10).collect::<Vec<u64>>());
    assert_eq!(h.store.read(&[other], NOW).await.unwrap()[0].count, 10);
    let cool = CounterKey { scope: "mail", key: "ada@example.com".into(), slot: "COOLDOWN".into() };
    assert!(h.store.take_cooldown(&cool, NOW + 60, NOW).await.unwrap());
    assert!(!h.store.take_cooldown(&cool, NOW + 61, NOW + 1).await.unwrap());
    assert!(h.store.take_cooldown(&cool, NOW + 120, NOW + 60).await.unwrap());
}

async fn login_lookup_reads_claim_and_counters_together(h: Harness) {
    let u = user("ada@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    let lock = CounterKey { scope: "login", key: "ada@example.com".into(), slot: "STATE".into() };
    h.store.hit(&lock, NOW + 100, NOW).await.unwrap();
    let (found, states) = h.store.find_user_for_login(&u.email, std::slice::from_ref(&lock), NOW).await.unwrap();
    assert_eq!((found.map(|x| x.id), states[0].count), (Some(u.id.clone()), 1));
    let (none, states) =
        h.store.find_user_for_login(&Email::parse("nobody@example.com").unwrap(), &[lock], NOW).await.unwrap();
    assert_eq!((none, states.len()), (None, 1));
}

async fn groups_are_created_once_listed_and_deleted(h: Harness) {
    let g = Group {
        name: "editors".into(),
        description: "Edit".into(),
        permissions: vec!["a.edit".into(), "a.publish".into()],
        id: "g-editors".into(),
    };
    assert!(h.store.put_group(&g, true).await.unwrap());
    assert!(!h.store.put_group(&g, true).await.unwrap(), "create refuses a taken name");
    let mut changed = g.clone();
    changed.permissions = vec![];
    assert!(h.store.put_group(&changed, false).await.unwrap());
    let r = Group {
        name: "readers".into(),
        description: String::new(),
        permissions: vec!["a.read".into()],
        id: "g-readers".into(),
    };
    h.store.put_group(&r, true).await.unwrap();
    assert_eq!(h.store.list_groups().await.unwrap(), vec![changed.clone(), r.clone()]);
    assert_eq!(h.store.get_groups(&["readers".into(), "nope".into()]).await.unwrap(), vec![r]);
    assert!(h.store.delete_group("editors").await.unwrap());
    assert!(!h.store.delete_group("editors").await.unwrap());
    // An update is of the group that was read: not of one deleted, nor of one made again since.
    assert!(!h.store.put_group(&changed, false).await.unwrap(), "deleted meanwhile");
    let again = Group { id: "g-editors-2".into(), ..g.clone() };
    assert!(h.store.put_group(&again, true).await.unwrap());
    assert!(!h.store.put_group(&changed, false).await.unwrap(), "made again meanwhile");
    assert_eq!(h.store.get_groups(&["editors".into()]).await.unwrap(), vec![again]);
    assert_eq!(h.store.list_groups().await.unwrap().len(), 2);
}

async fn permissions_are_registered_once_changed_listed_and_deleted(h: Harness) {
    let perm = |codename: &str, name: &str| Permission {
        codename: codename.into(),
        name: name.into(),
        description: String::new(),
        id: format!("p-{codename}"),
    };
    let publish = perm("articles.publish", "Can publish");
    assert!(h.store.put_permission(&publish, true).await.unwrap());
    assert!(!h.store.put_permission(&publish, true).await.unwrap(), "create refuses a taken codename");
    let missing = perm("articles.nope", "Nope");
    assert!(!h.store.put_permission(&missing, false).await.unwrap(), "an update never creates");
    let changed = Permission { description: "Put it online".into(), ..publish.clone() };
    assert!(h.store.put_permission(&changed, false).await.unwrap());
    let edit = perm("articles.edit", "Can edit");
    assert!(h.store.put_permission(&edit, true).await.unwrap());
    assert_eq!(h.store.list_permissions().await.unwrap(), vec![edit.clone(), changed.clone()], "codename order");
    let asked = ["articles.publish".into(), "articles.nope".into(), "articles.publish".into()];
    assert_eq!(h.store.get_permissions(&asked).await.unwrap(), vec![changed.clone()]);
    assert!(h.store.get_permissions(&[]).await.unwrap().is_empty());
    assert!(h.store.delete_permission("articles.publish").await.unwrap());
    assert!(!h.store.delete_permission("articles.publish").await.unwrap());
    assert!(h.store.get_permissions(&["articles.publish".into()]).await.unwrap().is_empty());
    assert!(!h.store.put_permission(&changed, false).await.unwrap(), "deleted meanwhile");
    assert_eq!(h.store.list_permissions().await.unwrap(), vec![edit]);
}

async fn concurrent_registrations_of_one_codename_make_one(h: Harness) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move {
            let p = Permission {
                codename: "shop.refund".into(),
                name: format!("Refund {i}"),
                description: String::new(),
                id: format!("p-{i}"),
            };
            store.put_permission(&p, true).await.unwrap().then_some(p)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "exactly one registration wins");
    assert_eq!(h.store.list_permissions().await.unwrap(), winners, "and what is stored is the winner's");
}

/// `count` users, returned in id order; those at positions where `expired` says so were never
/// activated and are past their expiry at `NOW`. They are written last first: the order of writing
/// is not the order of ids.
async fn users_by_position(h: &Harness, count: usize, expired: impl Fn(usize) -> bool) -> Vec<User> {
    let mut users: Vec<User> = (0..count).map(|i| user(&format!("u{i}@example.com"), None, None)).collect();
    users.sort_by(|a, b| a.id.cmp(&b.id));
    for (i, u) in users.iter_mut().enumerate() {
        if expired(i) {
            u.expires_at = Some(NOW - 1);
            u.is_active = false;
        }
    }
    for u in users.iter().rev() {
        h.store.create_user(u, None, NOW - 10).await.unwrap();
    }
    users
}

fn ids(users: &[User]) -> Vec<UserId> {
    users.iter().map(|u| u.id.clone()).collect()
}

/// Every page from `after` on with this limit, checking each page's cursor on the way.
async fn pages(h: &Harness, after: Option<&UserId>, limit: usize) -> Vec<Vec<UserId>> {
    let mut out = Vec::new();
    let mut cursor = after.cloned();
    loop {
        let (page, next) = h.store.list_users(cursor.as_ref(), limit, NOW).await.unwrap();
        assert!(page.len() <= limit, "{} users on a page of {limit}", page.len());
        let page = ids(&page);
        match next {
            Some(c) => {
                assert_eq!(Some(&c), page.last(), "the cursor is the last user returned");
                assert_eq!(page.len(), limit, "only a full page says more may follow");
                out.push(page);
                cursor = Some(c);
            }
            None => {
                out.push(page);
                return out;
            }
        }
        assert!(out.len() <= 1000, "listing does not end");
    }
}

async fn users_are_listed_in_id_order_across_pages(h: Harness) {
    // A leading expired user, two live ones, a run of seven expired ones (more than a page), three
    // live ones, a trailing expired one.
    let all = users_by_position(&h, 14, |i| i == 0 || (3..=9).contains(&i) || i == 13).await;
    let live: Vec<UserId> = [1, 2, 10, 11, 12].iter().map(|&i| all[i].id.clone()).collect();
    let chunks = |sizes: &[usize]| {
        let mut rest = live.as_slice();
        sizes
            .iter()
            .map(|&n| {
                let (page, tail) = rest.split_at(n);
                rest = tail;
                page.to_vec()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(pages(&h, None, 3).await, chunks(&[3, 2]));
    assert_eq!(pages(&h, None, 2).await, chunks(&[2, 2, 1]));
    assert_eq!(pages(&h, None, 4).await, chunks(&[4, 1]));
    // Exactly the live users: the expired one after them does not announce another page.
    assert_eq!(pages(&h, None, 5).await, chunks(&[5]));
    assert_eq!(pages(&h, None, 100).await, chunks(&[5]));
    // The whole users, not only their ids.
    let (page, _) = h.store.list_users(None, 1, NOW).await.unwrap();
    assert_eq!(page, vec![all[1].clone()]);
    // A cursor may be any id: an expired user's, or one no user has.
    assert_eq!(pages(&h, Some(&all[5].id), 10).await, vec![live[2..].to_vec()]);
    assert_eq!(pages(&h, Some(&UserId::nil()), 10).await, vec![live.clone()]);
    assert_eq!(pages(&h, Some(&all[12].id), 10).await, vec![vec![]]);
    assert_eq!(h.store.list_users(None, 0, NOW).await.unwrap(), (vec![], None));
    // Before their expiry, the pending accounts are listed too.
    let (before, next) = h.store.list_users(None, 20, NOW - 2).await.unwrap();
    assert_eq!((ids(&before), next), (ids(&all), None));
}

async fn a_page_limit_of_one_walks_every_user(h: Harness) {
    let all = users_by_position(&h, 7, |i| i == 2 || i == 3 || i == 6).await;
    let want: Vec<Vec<UserId>> = [0, 1, 4, 5].iter().map(|&i| vec![all[i].id.clone()]).collect();
    assert_eq!(pages(&h, None, 1).await, want);
}

async fn more_than_a_hundred_users_are_listed_completely(h: Harness) {
    // More than one BatchGetItem (100 keys) and, with the expired ones, more than one index page.
    let all = users_by_position(&h, 230, |i| i % 10 == 3).await;
    let live: Vec<UserId> = all.iter().filter(|u| u.expires_at.is_none()).map(|u| u.id.clone()).collect();
    assert_eq!(live.len(), 207);
    assert_eq!(pages(&h, None, 500).await, vec![live.clone()]);
    assert_eq!(pages(&h, None, 150).await, vec![live[..150].to_vec(), live[150..].to_vec()]);
    let by_hundred = pages(&h, None, 100).await;
    assert_eq!(by_hundred.iter().map(Vec::len).collect::<Vec<_>>(), vec![100, 100, 7]);
    assert_eq!(by_hundred.concat(), live);
    let by_seven = pages(&h, None, 7).await;
    assert_eq!(by_seven.len(), 30);
    assert_eq!(by_seven.concat(), live);
}

async fn groups_are_listed_in_name_order(h: Harness) {
    // More than one BatchGetItem's worth, written out of order, mixed case (byte order: upper first).
    let mut names: Vec<String> = (0..105).map(|i| format!("g{:03}", (i * 37) % 105)).collect();
    names.extend(["Zeta", "alpha", "Alpha", "beta-2", "beta"].map(String::from));
    for name in &names {
        let g = Group {
            name: name.clone(),
            description: format!("about {name}"),
            permissions: vec![format!("{name}.x")],
            id: format!("g-{name}"),
        };
        assert!(h.store.put_group(&g, true).await.unwrap());
    }
    // A rewrite keeps the group listed.
    let changed =
        Group { name: "beta".into(), description: "changed".into(), permissions: vec![], id: "g-beta".into() };
    assert!(h.store.put_group(&changed, false).await.unwrap());
    let listed = h.store.list_groups().await.unwrap();
    let mut want = names.clone();
    want.sort();
    assert_eq!(listed.iter().map(|g| g.name.clone()).collect::<Vec<_>>(), want);
    assert_eq!(&want[..6], ["Alpha", "Zeta", "alpha", "beta", "beta-2", "g000"]);
    assert_eq!(listed[3], changed);
    assert_eq!(
        listed[0],
        Group {
            name: "Alpha".into(),
            description: "about Alpha".into(),
            permissions: vec!["Alpha.x".into()],
            id: "g-Alpha".into()
        }
    );
    assert!(h.store.delete_group("g050").await.unwrap());
    assert_eq!(h.store.list_groups().await.unwrap().len(), 109);
}

/// One call to the emulator's fault injector (tools/emulator.py).
fn emulator(method: &str, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
    let endpoint = std::env::var("GATEHOUSE_TEST_DYNAMODB_ENDPOINT").unwrap();
    gatehouse_core::testing::emulator_control(&endpoint, method, path, body.as_ref()).unwrap_or_else(|e| panic!("{e}"))
}

/// Watches the requests of one DynamoDB operation on one table through the emulator's fault
/// injector: a fault that fails none of them (count 0) still counts them. With a delay, the first
/// one is held that long before it is served. Disarmed when dropped.
struct Watch(u64);

impl Watch {
    fn new(table: &str, operation: &str, delay: Option<f64>) -> Self {
        let mut spec = serde_json::json!({
            "target": format!("DynamoDB_20120810.{operation}"), "contains": table, "count": 0,
            "code": "InternalServerError", "status": 500,
        });
        if let Some(delay) = delay {
            spec = serde_json::json!({
                "target": format!("DynamoDB_20120810.{operation}"), "contains": table, "count": 1, "delay": delay,
            });
        }
        Self(emulator("POST", "/_fault", Some(spec))["id"].as_u64().unwrap())
    }

    /// Requests seen since armed.
    fn seen(&self) -> u64 {
        emulator("GET", &format!("/_fault/{}", self.0), None)["seen"].as_u64().unwrap()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| emulator("DELETE", &format!("/_fault/{}", self.0), None));
    }
}

async fn listing_reads_only_users_and_groups_however_full_the_table(h: Harness) {
    let all = users_by_position(&h, 4, |i| i == 1).await;
    for u in &all {
        h.store.create_session(&session(u, "s1", "j"), Some(NOW), &GiveBack::default()).await.unwrap();
        h.store.put_code(&code_for(u, CodePurpose::PasswordReset, "r", NOW + 50, None)).await.unwrap();
    }
    // What unauthenticated traffic leaves behind, far more than the users.
    for i in 0..300 {
        let c = CounterKey { scope: "register", key: format!("198.51.100.{i}"), slot: "60".into() };
        h.store.hit(&c, NOW + 60, NOW).await.unwrap();
    }
    let editors = Group { name: "editors".into(), description: String::new(), permissions: vec![], id: "g-e".into() };
    h.store.put_group(&editors, true).await.unwrap();
    let watches =
        h.dynamo.as_ref().map(|d| ["Scan", "Query", "BatchGetItem"].map(|op| Watch::new(d.table(), op, None)));

    let (users, next) = h.store.list_users(None, 10, NOW).await.unwrap();
    assert_eq!((ids(&users), next), (vec![all[0].id.clone(), all[2].id.clone(), all[3].id.clone()], None));
    assert_eq!(users[0].last_login, Some(NOW), "a login stamp shows in the listing");
    assert_eq!(h.store.list_groups().await.unwrap(), vec![editors]);
    if let Some([scan, query, batch_get]) = &watches {
        assert_eq!(scan.seen(), 0, "listing must not scan the table");
        // One Query of the list index and one BatchGetItem each, for the users and for the groups.
        assert_eq!((query.seen(), batch_get.seen()), (2, 2));
    }
}

async fn a_user_deleted_while_being_listed_is_skipped(h: Harness) {
    let all = users_by_position(&h, 3, |_| false).await;
    let victim = h.store.get_user(&all[1].id, NOW).await.unwrap().unwrap();
    let Some(d) = &h.dynamo else {
        h.store.delete_user(&victim).await.unwrap();
        assert_eq!(h.store.list_users(None, 2, NOW).await.unwrap(), (vec![all[0].clone(), all[2].clone()], None));
        return;
    };
    // Hold the BatchGetItem that follows the index Query, delete the user meanwhile.
    let held = Watch::new(d.table(), "BatchGetItem", Some(3.0));
    let store = h.store.clone();
    let listing = tokio::spawn(async move { store.list_users(None, 2, NOW).await.unwrap() });
    while held.seen() == 0 && !listing.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    h.store.delete_user(&victim).await.unwrap();
    assert_eq!(listing.await.unwrap(), (vec![all[0].clone(), all[2].clone()], None));
}

fn entry(at: i64, event: &str, actor: Option<&UserId>, target: Option<&UserId>) -> AuditEntry {
    AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at,
        event: event.into(),
        actor: actor.cloned(),
        target: target.cloned(),
        object: None,
        changes: serde_json::json!({"first_name": {"from": "Ada", "to": "Augusta"}}),
        ip: Some("203.0.113.7".into()),
        user_agent: Some("test".into()),
        via: "api".into(),
        expires_at: at + 30 * DAY,
    }
}

async fn audit_entries_are_kept_in_their_day_and_account_streams(h: Harness) {
    let (ada, root) = (UserId::generate(), UserId::generate());
    let day = NOW.div_euclid(DAY);
    let login = entry(NOW, "login.succeeded", Some(&ada), Some(&ada));
    let edit = entry(NOW + 5, "admin.user_updated", Some(&root), Some(&ada));
    let anonymous = entry(NOW + 6, "login.failed", None, None);
    let tomorrow = entry((day + 1) * DAY + 1, "login.failed", None, Some(&ada));
    for e in [&login, &edit, &anonymous, &tomorrow] {
        h.store.append_audit(e).await.unwrap();
    }
    let later = tomorrow.at + 1;
    let page = |s: AuditStream, before: Option<AuditPosition>, since: i64, limit: usize| {
        let store = h.store.clone();
        async move { store.audit_page(&s, before.as_ref(), since, limit, later).await.unwrap() }
    };
    // Newest first, each entry as written.
    assert_eq!(page(AuditStream::Day(day), None, 0, 10).await, vec![anonymous.clone(), edit.clone(), login.clone()]);
    assert_eq!(page(AuditStream::Day(day + 1), None, 0, 10).await, vec![tomorrow.clone()]);
    let of_ada = page(AuditStream::Account(ada.clone()), None, 0, 10).await;
    assert_eq!(of_ada, vec![tomorrow.clone(), edit.clone(), login.clone()]);
    assert_eq!(page(AuditStream::Account(root.clone()), None, 0, 10).await, vec![edit.clone()]);
    // Strictly before a position, not before `since`, at most `limit`.
    let after_edit = page(AuditStream::Account(ada.clone()), Some(edit.position()), 0, 10).await;
    assert_eq!(after_edit, vec![login.clone()]);
    assert_eq!(page(AuditStream::Account(ada.clone()), None, NOW + 1, 10).await, vec![tomorrow.clone(), edit.clone()]);
    assert_eq!(page(AuditStream::Day(day), None, 0, 2).await, vec![anonymous.clone(), edit.clone()]);
    let from_boundary = page(AuditStream::Day(day), Some(AuditPosition::end_of_day_before(day + 1)), 0, 1).await;
    assert_eq!(from_boundary, vec![anonymous.clone()]);
    // Entries past their retention are gone, whether or not TTL deleted them.
    let expired = h.store.audit_page(&AuditStream::Account(ada.clone()), None, 0, 10, login.expires_at).await.unwrap();
    assert_eq!(expired, vec![tomorrow.clone(), edit.clone()]);
    // Deleting the account leaves its trail.
    let u = User { id: ada.clone(), ..user("ada@example.com", None, None) };
    h.store.create_user(&u, None, NOW).await.unwrap();
    let stored = h.store.get_user(&ada, NOW).await.unwrap().unwrap();
    h.store.delete_user(&stored).await.unwrap();
    assert_eq!(page(AuditStream::Account(ada), None, 0, 10).await.len(), 3);
}

async fn a_busy_day_pages_completely(h: Harness) {
    let ada = UserId::generate();
    // Many in one second: the id orders them.
    let mut written = Vec::new();
    for i in 0..130 {
        let e = entry(NOW + i / 50, "login.failed", None, Some(&ada));
        h.store.append_audit(&e).await.unwrap();
        written.push(e);
    }
    written.reverse();
    let mut seen = Vec::new();
    let mut before: Option<AuditPosition> = None;
    loop {
        let got = h.store.audit_page(&AuditStream::Account(ada.clone()), before.as_ref(), 0, 40, NOW).await.unwrap();
        before = got.last().map(AuditEntry::position);
        let done = got.len() < 40;
        seen.extend(got);
        if done {
            break;
        }
    }
    assert_eq!(seen, written);
}

fn pending(u: &User, sealed: &str, expires_at: i64) -> TotpFactor {
    TotpFactor {
        user_id: u.id.clone(),
        sealed_secret: sealed.into(),
        confirmed: false,
        created_at: NOW,
        last_step: None,
        expires_at: Some(expires_at),
    }
}

fn codes(macs: &[&str]) -> RecoveryCodes {
    RecoveryCodes { user_id: None, macs: macs.iter().map(|m| (*m).to_owned()).collect(), created_at: NOW }
}

/// An active user with a confirmed factor (last accepted step 100) and recovery codes a, b, c.
async fn with_factor(h: &Harness, email: &str) -> User {
    let u = user(email, None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    assert!(h.store.put_pending_totp(&pending(&u, "sealed-1", NOW + 600)).await.unwrap());
    assert!(h.store.confirm_totp(&u.id, "sealed-1", 100, &codes(&["a", "b", "c"]), NOW).await.unwrap());
    u
}

async fn a_totp_enrolment_is_pending_until_confirmed_once(h: Harness) {
    let u = user("mfa@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    assert_eq!(h.store.get_mfa(&u.id, NOW).await.unwrap(), Mfa::default());
    // Pending: seen until it expires, replaced by a new enrolment.
    assert!(h.store.put_pending_totp(&pending(&u, "sealed-1", NOW + 600)).await.unwrap());
    let m = h.store.get_mfa(&u.id, NOW).await.unwrap();
    assert_eq!(m.totp.as_ref().map(|t| (t.confirmed, t.sealed_secret.as_str())), Some((false, "sealed-1")));
    assert_eq!(h.store.get_mfa(&u.id, NOW + 600).await.unwrap().totp, None, "expired: its own reads hide it");
    assert!(h.store.put_pending_totp(&pending(&u, "sealed-2", NOW + 600)).await.unwrap());
    // Confirming the replaced enrolment, or after expiry, or before it exists: nothing.
    assert!(!h.store.confirm_totp(&u.id, "sealed-1", 7, &codes(&["a"]), NOW).await.unwrap());
    assert!(!h.store.confirm_totp(&u.id, "sealed-2", 7, &codes(&["a"]), NOW + 600).await.unwrap());
    assert!(!h.store.get_user(&u.id, NOW).await.unwrap().unwrap().mfa_enabled);
    // Confirmed: the flag is set, the user's version moved on, the codes are stored.
    let before = h.store.get_user(&u.id, NOW).await.unwrap().unwrap();
    assert!(h.store.confirm_totp(&u.id, "sealed-2", 7, &codes(&["a", "b"]), NOW).await.unwrap());
    let after = h.store.get_user(&u.id, NOW).await.unwrap().unwrap();
    assert!(after.mfa_enabled);
    assert!(after.version > before.version, "a profile write that read the old user must retry");
    let m = h.store.get_mfa(&u.id, NOW + 10_000).await.unwrap();
    let t = m.totp.unwrap();
    assert!(t.confirmed && t.expires_at.is_none() && t.last_step == Some(7));
    assert_eq!(m.recovery.macs.len(), 2);
    // Once confirmed: never again, and no pending enrolment may replace it.
    assert!(!h.store.confirm_totp(&u.id, "sealed-2", 8, &codes(&["x"]), NOW).await.unwrap());
    assert!(!h.store.put_pending_totp(&pending(&u, "sealed-3", NOW + 600)).await.unwrap());
    assert_eq!(h.store.get_mfa(&u.id, NOW).await.unwrap().totp.unwrap().sealed_secret, "sealed-2");
    // An old read of the user loses its profile write.
    let renamed = User { first_name: "Augusta".into(), ..before.clone() };
    assert!(matches!(h.store.update_user(&before, &renamed, NOW).await, Err(UpdateUserError::Conflict)));
    // A profile write never clears the flag.
    let renamed = User { first_name: "Augusta".into(), mfa_enabled: false, ..after.clone() };
    h.store.update_user(&after, &renamed, NOW).await.unwrap();
    assert!(h.store.get_user(&u.id, NOW).await.unwrap().unwrap().mfa_enabled);
    // No user: nothing confirmed.
    let ghost = user("ghost@example.com", None, None);
    assert!(h.store.put_pending_totp(&pending(&ghost, "s", NOW + 600)).await.unwrap());
    assert!(!h.store.confirm_totp(&ghost.id, "s", 1, &codes(&["a"]), NOW).await.unwrap());
}

async fn totp_steps_and_recovery_codes_are_accepted_once(h: Harness) {
    let u = with_factor(&h, "once@example.com").await;
    assert!(!h.store.accept_totp_step(&u.id, 100).await.unwrap(), "the confirming step is spent");
    assert!(!h.store.accept_totp_step(&u.id, 99).await.unwrap(), "never an older step");
    assert!(h.store.accept_totp_step(&u.id, 101).await.unwrap());
    assert!(!h.store.accept_totp_step(&u.id, 101).await.unwrap(), "a replay");
    assert!(h.store.accept_totp_step(&u.id, 103).await.unwrap());
    assert!(!h.store.accept_totp_step(&u.id, 102).await.unwrap());
    assert!(h.store.spend_recovery_code(&u.id, "b").await.unwrap());
    assert!(!h.store.spend_recovery_code(&u.id, "b").await.unwrap());
    assert!(!h.store.spend_recovery_code(&u.id, "zz").await.unwrap());
    assert_eq!(h.store.get_mfa(&u.id, NOW).await.unwrap().recovery.macs.into_iter().collect::<Vec<_>>(), ["a", "c"]);
    assert!(h.store.spend_recovery_code(&u.id, "a").await.unwrap());
    assert!(h.store.spend_recovery_code(&u.id, "c").await.unwrap());
    assert!(h.store.get_mfa(&u.id, NOW).await.unwrap().recovery.macs.is_empty());
    assert!(!h.store.spend_recovery_code(&u.id, "c").await.unwrap(), "an empty set spends nothing");
    // A new set replaces the old one whole.
    assert!(h.store.replace_recovery_codes(&u.id, &codes(&["x", "y"])).await.unwrap());
    assert!(!h.store.spend_recovery_code(&u.id, "a").await.unwrap());
    assert!(h.store.spend_recovery_code(&u.id, "x").await.unwrap());
    // Another user's codes and steps are not this user's.
    let other = with_factor(&h, "other@example.com").await;
    assert!(!h.store.spend_recovery_code(&u.id, "b").await.unwrap());
    assert!(h.store.spend_recovery_code(&other.id, "b").await.unwrap());
    // A pending factor accepts no step and takes no recovery codes.
    let p = user("pending@example.com", None, None);
    h.store.create_user(&p, None, NOW).await.unwrap();
    assert!(h.store.put_pending_totp(&pending(&p, "s", NOW + 600)).await.unwrap());
    assert!(!h.store.accept_totp_step(&p.id, 5).await.unwrap());
    assert!(!h.store.replace_recovery_codes(&p.id, &codes(&["q"])).await.unwrap());
    assert!(h.store.get_mfa(&p.id, NOW).await.unwrap().recovery.macs.is_empty());
}

async fn concurrent_uses_of_one_code_or_step_succeed_once(h: Harness) {
    let u = with_factor(&h, "race-mfa@example.com").await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = h.store.clone();
        let id = u.id.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                ("step", store.accept_totp_step(&id, 200).await.unwrap())
            } else {
                ("code", store.spend_recovery_code(&id, "b").await.unwrap())
            }
        }));
    }
    let (mut steps, mut spent) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            ("step", true) => steps += 1,
            ("code", true) => spent += 1,
            _ => {}
        }
    }
    assert_eq!((steps, spent), (1, 1), "one of 8 parallel uses of a step, and of a code, wins");
    // Parallel confirmations of one enrolment: one.
    let v = user("race-confirm@example.com", None, None);
    h.store.create_user(&v, None, NOW).await.unwrap();
    assert!(h.store.put_pending_totp(&pending(&v, "s", NOW + 600)).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let store = h.store.clone();
        let id = v.id.clone();
        tasks.push(tokio::spawn(async move { store.confirm_totp(&id, "s", i, &codes(&["a"]), NOW).await.unwrap() }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    let after = h.store.get_user(&v.id, NOW).await.unwrap().unwrap();
    assert_eq!(after.version, v.version + 1, "the flag was set once");
}

async fn removing_mfa_removes_the_factor_and_codes_and_deleting_the_user_too(h: Harness) {
    let u = with_factor(&h, "remove@example.com").await;
    let before = h.store.get_user(&u.id, NOW).await.unwrap().unwrap();
    assert!(h.store.remove_mfa(&u.id).await.unwrap());
    let after = h.store.get_user(&u.id, NOW).await.unwrap().unwrap();
    assert!(!after.mfa_enabled && after.version > before.version);
    assert_eq!(h.store.get_mfa(&u.id, NOW).await.unwrap(), Mfa::default());
    assert!(!h.store.spend_recovery_code(&u.id, "a").await.unwrap());
    assert!(!h.store.accept_totp_step(&u.id, 500).await.unwrap());
    // A new enrolment may start again.
    assert!(h.store.put_pending_totp(&pending(&u, "again", NOW + 600)).await.unwrap());
    // Deleting the account takes its factors with it.
    let v = with_factor(&h, "gone@example.com").await;
    let v = h.store.get_user(&v.id, NOW).await.unwrap().unwrap();
    h.store.delete_user(&v).await.unwrap();
    assert_eq!(h.store.get_mfa(&v.id, NOW).await.unwrap(), Mfa::default());
    assert!(!h.store.remove_mfa(&v.id).await.unwrap(), "no user: nothing to remove");
}

fn challenge(id: &str, user: Option<&User>, expires_at: i64) -> Challenge {
    Challenge {
        id: id.into(),
        kind: ChallengeKind::Mfa,
        user_id: user.map(|u| u.id.clone()),
        data: r#"{"methods":["totp"]}"#.into(),
        attempts: 0,
        expires_at,
    }
}

async fn challenges_count_answers_before_judging_and_are_taken_once(h: Harness) {
    let u = user("challenge@example.com", None, None);
    let c = challenge("ch-1", Some(&u), NOW + 300);
    assert!(h.store.put_challenge(&c).await.unwrap());
    assert!(!h.store.put_challenge(&c).await.unwrap(), "an id is never reused");
    for n in 1..=5 {
        let got = h.store.reserve_challenge("ch-1", 5, NOW).await.unwrap().unwrap();
        assert_eq!((got.attempts, got.user_id.as_ref(), got.data.as_str()), (n, Some(&u.id), c.data.as_str()));
    }
    assert_eq!(h.store.reserve_challenge("ch-1", 5, NOW).await.unwrap(), None, "used up");
    assert_eq!(h.store.reserve_challenge("unknown", 5, NOW).await.unwrap(), None);
    // Taken once; then gone for every use.
    assert!(h.store.take_challenge("ch-1", NOW).await.unwrap().is_some());
    assert_eq!(h.store.take_challenge("ch-1", NOW).await.unwrap(), None);
    assert_eq!(h.store.reserve_challenge("ch-1", 9, NOW).await.unwrap(), None);
    // Expired: neither reserved nor taken, though the item lingers until TTL removes it.
    assert!(h.store.put_challenge(&challenge("ch-2", None, NOW + 300)).await.unwrap());
    assert_eq!(h.store.reserve_challenge("ch-2", 5, NOW + 300).await.unwrap(), None);
    assert_eq!(h.store.take_challenge("ch-2", NOW + 300).await.unwrap(), None);
    let other = h.store.take_challenge("ch-2", NOW).await.unwrap().unwrap();
    assert_eq!((other.kind, other.user_id), (ChallengeKind::Mfa, None));
}

async fn parallel_answers_to_one_challenge_pass_the_cap_never_and_take_it_once(h: Harness) {
    assert!(h.store.put_challenge(&challenge("ch-race", None, NOW + 300)).await.unwrap());
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move { store.reserve_challenge("ch-race", 5, NOW).await.unwrap().is_some() }));
    }
    let mut reserved = 0;
    for t in tasks {
        reserved += usize::from(t.await.unwrap());
    }
    assert_eq!(reserved, 5, "16 parallel answers, a cap of 5");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move { store.take_challenge("ch-race", NOW).await.unwrap().is_some() }));
    }
    let mut taken = 0;
    for t in tasks {
        taken += usize::from(t.await.unwrap());
    }
    assert_eq!(taken, 1);
}

fn passkey(u: &User, id: &str, created_at: i64) -> PasskeyRecord {
    PasskeyRecord {
        user_id: u.id.clone(),
        id: id.into(),
        name: format!("key {id}"),
        credential: format!("{{\"cred\":\"{id}\",\"counter\":0}}"),
        created_at,
        last_used_at: None,
    }
}

async fn passkeys_are_added_once_listed_used_renamed_and_removed(h: Harness) {
    let u = user("keys@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    let other = user("other-keys@example.com", None, None);
    h.store.create_user(&other, None, NOW).await.unwrap();
    assert!(h.store.put_passkey(&passkey(&u, "k2", NOW + 5)).await.unwrap());
    assert!(h.store.put_passkey(&passkey(&u, "k1", NOW)).await.unwrap());
    assert!(!h.store.put_passkey(&PasskeyRecord { name: "again".into(), ..passkey(&u, "k1", NOW + 9) }).await.unwrap());
    // The same credential id in another account is that account's own.
    assert!(h.store.put_passkey(&passkey(&other, "k1", NOW)).await.unwrap());
    let listed = h.store.list_passkeys(&u.id).await.unwrap();
    assert_eq!(listed, vec![passkey(&u, "k1", NOW), passkey(&u, "k2", NOW + 5)], "oldest first, as written");
    assert!(h.store.record_passkey_use(&u.id, "k1", "{\"counter\":3}", NOW + 60).await.unwrap());
    assert!(h.store.rename_passkey(&u.id, "k1", "Ada's phone").await.unwrap());
    let k1 = h.store.list_passkeys(&u.id).await.unwrap().remove(0);
    assert_eq!(
        (k1.credential.as_str(), k1.last_used_at, k1.name.as_str()),
        ("{\"counter\":3}", Some(NOW + 60), "Ada's phone")
    );
    assert_eq!(h.store.list_passkeys(&other.id).await.unwrap(), vec![passkey(&other, "k1", NOW)], "untouched");
    for (what, ok) in [
        ("rename", h.store.rename_passkey(&u.id, "nope", "x").await.unwrap()),
        ("use", h.store.record_passkey_use(&u.id, "nope", "{}", NOW).await.unwrap()),
        ("delete", h.store.delete_passkey(&u.id, "nope").await.unwrap()),
    ] {
        assert!(!ok, "{what} of a passkey that is not there");
    }
    assert!(h.store.list_passkeys(&u.id).await.unwrap().iter().all(|p| p.id != "nope"), "nothing made by a miss");
    // Removed once, even in parallel.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, id) = (h.store.clone(), u.id.clone());
        tasks.push(tokio::spawn(async move { store.delete_passkey(&id, "k2").await.unwrap() }));
    }
    let mut removed = 0;
    for t in tasks {
        removed += usize::from(t.await.unwrap());
    }
    assert_eq!(removed, 1);
    assert!(!h.store.record_passkey_use(&u.id, "k2", "{}", NOW).await.unwrap(), "a removed passkey signs nothing");
    // Deleting the account takes its passkeys with it; two-step sign-in going off does not.
    assert!(h.store.remove_mfa(&u.id).await.unwrap());
    assert_eq!(h.store.list_passkeys(&u.id).await.unwrap().len(), 1);
    let current = h.store.get_user(&u.id, NOW).await.unwrap().unwrap();
    h.store.delete_user(&current).await.unwrap();
    assert!(h.store.list_passkeys(&u.id).await.unwrap().is_empty());
}

fn identity(u: &User, provider: &str, subject: &str, created_at: i64) -> Identity {
    Identity {
        provider: provider.into(),
        subject: subject.into(),
        user_id: u.id.clone(),
        email: Some(u.email.as_str().to_owned()),
        created_at,
        last_used_at: None,
    }
}

/// The claim of a provider's subject: the account it names and when it was made (all a claim
/// holds in both stores; the email and last use are the account's side, see `list_identities`).
async fn claim(h: &Harness, provider: &str, subject: &str) -> Option<(UserId, i64)> {
    let got = h.store.get_identity(provider, subject).await.unwrap()?;
    assert_eq!((got.provider.as_str(), got.subject.as_str()), (provider, subject));
    Some((got.user_id, got.created_at))
}

async fn a_user_created_with_an_identity_is_linked_once(h: Harness) {
    let u = user("social@example.com", None, None);
    let link = Identity { last_used_at: Some(NOW), ..identity(&u, "google", "g-1", NOW) };
    h.store.create_user_with_identity(&u, &link, NOW).await.unwrap();
    assert_eq!(h.store.get_user(&u.id, NOW).await.unwrap(), Some(u.clone()));
    let by_email = h.store.find_user_by_email(&Email::parse("SOCIAL@example.com").unwrap(), NOW).await.unwrap();
    assert_eq!(by_email.map(|x| x.id), Some(u.id.clone()));
    assert_eq!(claim(&h, "google", "g-1").await, Some((u.id.clone(), NOW)));
    assert_eq!(h.store.list_identities(&u.id).await.unwrap(), vec![link.clone()]);
    assert_eq!(claim(&h, "github", "g-1").await, None, "a subject is the provider's own");
    assert_eq!(claim(&h, "google", "g-2").await, None);
    assert_eq!((h.users().await, h.email_claims().await), (1, 1));

    // The same address: EmailTaken, and nothing of the second account written.
    let same_email = user("Social@EXAMPLE.com", None, None);
    let r = h.store.create_user_with_identity(&same_email, &identity(&same_email, "google", "g-2", NOW), NOW).await;
    assert!(matches!(r, Err(CreateUserError::EmailTaken)), "{r:?}");
    assert_eq!(h.store.get_user(&same_email.id, NOW).await.unwrap(), None);
    assert_eq!(claim(&h, "google", "g-2").await, None, "no claim left by the loser");
    assert!(h.store.list_identities(&same_email.id).await.unwrap().is_empty());

    // The same subject with another address (with or without a username): IdentityTaken, and
    // neither the account nor its email or username claim left behind.
    for (email, name) in [("other@example.com", None), ("named@example.com", Some("named"))] {
        let second = user(email, name, None);
        let r = h.store.create_user_with_identity(&second, &identity(&second, "google", "g-1", NOW + 1), NOW).await;
        assert!(matches!(r, Err(CreateUserError::IdentityTaken)), "{email}: {r:?}");
        assert_eq!(h.store.get_user(&second.id, NOW).await.unwrap(), None);
        assert_eq!(h.store.find_user_by_email(&second.email, NOW).await.unwrap(), None, "{email}");
        assert!(h.store.list_identities(&second.id).await.unwrap().is_empty());
    }
    assert_eq!(claim(&h, "google", "g-1").await, Some((u.id.clone(), NOW)), "the first link untouched");
    assert_eq!(h.store.list_identities(&u.id).await.unwrap(), vec![link]);
    assert_eq!((h.users().await, h.email_claims().await), (1, 1));
    // Their address and username are free indeed.
    h.store.create_user(&user("named@example.com", Some("NAMED"), None), None, NOW).await.unwrap();
    let other = user("other@example.com", None, None);
    h.store.create_user_with_identity(&other, &identity(&other, "google", "g-3", NOW), NOW).await.unwrap();
    assert_eq!(claim(&h, "google", "g-3").await, Some((other.id.clone(), NOW)));
    assert_eq!((h.users().await, h.email_claims().await), (3, 3));
}

async fn a_link_is_made_only_to_the_account_as_read(h: Harness) {
    let a = user("a@example.com", None, None);
    let b = user("b@example.com", None, None);
    h.store.create_user(&a, None, NOW).await.unwrap();
    h.store.create_user(&b, None, NOW).await.unwrap();
    let google = identity(&a, "google", "s-a", NOW);
    assert!(h.store.link_identity(&a, &google).await.unwrap());
    assert_eq!(claim(&h, "google", "s-a").await, Some((a.id.clone(), NOW)));
    assert_eq!(h.store.list_identities(&a.id).await.unwrap(), vec![google.clone()]);
    // Linking does not change the account: the same copy links another provider.
    let apple = identity(&a, "apple", "s-apple", NOW + 1);
    assert!(h.store.link_identity(&a, &apple).await.unwrap());
    assert_eq!(h.store.list_identities(&a.id).await.unwrap(), vec![apple.clone(), google.clone()]);

    // Changed since it was read: refused, nothing written.
    let mut renamed = a.clone();
    renamed.first_name = "Augusta".into();
    h.store.update_user(&a, &renamed, NOW).await.unwrap();
    let github = identity(&a, "github", "s-gh", NOW + 2);
    assert!(!h.store.link_identity(&a, &github).await.unwrap(), "a stale copy of the account");
    assert_eq!(claim(&h, "github", "s-gh").await, None);
    assert_eq!(h.store.list_identities(&a.id).await.unwrap(), vec![apple.clone(), google.clone()]);
    let fresh = h.store.get_user(&a.id, NOW).await.unwrap().unwrap();
    assert!(h.store.link_identity(&fresh, &github).await.unwrap());
    assert_eq!(claim(&h, "github", "s-gh").await, Some((a.id.clone(), NOW + 2)));

    // The subject linked to another account: refused, neither side written for b.
    assert!(!h.store.link_identity(&b, &identity(&b, "google", "s-a", NOW + 3)).await.unwrap());
    assert_eq!(claim(&h, "google", "s-a").await, Some((a.id.clone(), NOW)));
    assert!(h.store.list_identities(&b.id).await.unwrap().is_empty());

    // The account has a link to this provider already (another subject): refused, the other
    // subject left unclaimed and the account's link unchanged.
    assert!(!h.store.link_identity(&fresh, &identity(&a, "google", "s-a2", NOW + 4)).await.unwrap());
    assert_eq!(claim(&h, "google", "s-a2").await, None);
    assert_eq!(h.store.list_identities(&a.id).await.unwrap(), vec![apple, github, google]);
    // ... and b can still take that other subject.
    assert!(h.store.link_identity(&b, &identity(&b, "google", "s-a2", NOW + 5)).await.unwrap());
    assert_eq!(claim(&h, "google", "s-a2").await, Some((b.id.clone(), NOW + 5)));

    // A deleted account: refused, nothing written.
    let c = user("c@example.com", None, None);
    h.store.create_user(&c, None, NOW).await.unwrap();
    h.store.delete_user(&c).await.unwrap();
    assert!(!h.store.link_identity(&c, &identity(&c, "google", "s-c", NOW)).await.unwrap());
    assert_eq!(claim(&h, "google", "s-c").await, None);
    assert!(h.store.list_identities(&c.id).await.unwrap().is_empty());
    // Never stored at all: refused too.
    let ghost = user("ghost@example.com", None, None);
    assert!(!h.store.link_identity(&ghost, &identity(&ghost, "google", "s-ghost", NOW)).await.unwrap());
    assert_eq!(claim(&h, "google", "s-ghost").await, None);
    assert!(h.store.list_identities(&ghost.id).await.unwrap().is_empty());
}

async fn identities_are_listed_by_provider_and_touched_by_their_subject(h: Harness) {
    let u = user("list@example.com", None, None);
    let v = user("other-list@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    h.store.create_user(&v, None, NOW).await.unwrap();
    for (i, provider) in ["microsoft", "apple", "oidc_b", "google", "github", "oidc_a"].iter().enumerate() {
        assert!(h
            .store
            .link_identity(&u, &identity(&u, provider, &format!("{provider}-u"), NOW + i as i64))
            .await
            .unwrap());
    }
    assert!(h.store.link_identity(&v, &identity(&v, "aaa", "aaa-v", NOW)).await.unwrap());
    let providers = |links: Vec<Identity>| links.into_iter().map(|i| i.provider).collect::<Vec<_>>();
    assert_eq!(
        providers(h.store.list_identities(&u.id).await.unwrap()),
        ["apple", "github", "google", "microsoft", "oidc_a", "oidc_b"]
    );
    assert_eq!(providers(h.store.list_identities(&v.id).await.unwrap()), ["aaa"]);

    let google = identity(&u, "google", "google-u", NOW + 3);
    h.store.touch_identity(&google, NOW + 60).await.unwrap();
    let used = |links: &[Identity]| links.iter().map(|i| (i.provider.clone(), i.last_used_at)).collect::<Vec<_>>();
    let listed = h.store.list_identities(&u.id).await.unwrap();
    let expect = |google_at: Option<i64>| {
        ["apple", "github", "google", "microsoft", "oidc_a", "oidc_b"]
            .iter()
            .map(|p| (p.to_string(), if *p == "google" { google_at } else { None }))
            .collect::<Vec<_>>()
    };
    assert_eq!(used(&listed), expect(Some(NOW + 60)));
    assert_eq!(listed[2], Identity { last_used_at: Some(NOW + 60), ..google.clone() }, "only last_used_at changed");
    // Another subject for the same account and provider (a link replaced meanwhile): untouched.
    h.store.touch_identity(&Identity { subject: "not-it".into(), ..google.clone() }, NOW + 90).await.unwrap();
    assert_eq!(used(&h.store.list_identities(&u.id).await.unwrap()), expect(Some(NOW + 60)));
    // An account without that link: nothing written (no link made by a touch).
    h.store.touch_identity(&identity(&v, "google", "google-u", NOW), NOW + 90).await.unwrap();
    assert_eq!(providers(h.store.list_identities(&v.id).await.unwrap()), ["aaa"]);
    assert_eq!(claim(&h, "google", "google-u").await, Some((u.id.clone(), NOW + 3)));
    let nobody = UserId::generate();
    h.store.touch_identity(&Identity { user_id: nobody.clone(), ..google }, NOW + 90).await.unwrap();
    assert!(h.store.list_identities(&nobody).await.unwrap().is_empty());
    assert!(h.store.list_identities(&UserId::generate()).await.unwrap().is_empty());
}

async fn unlinking_removes_both_sides_once(h: Harness) {
    let u = user("unlink@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    let google = identity(&u, "google", "g-u", NOW);
    let github = identity(&u, "github", "gh-u", NOW + 1);
    assert!(h.store.link_identity(&u, &google).await.unwrap());
    assert!(h.store.link_identity(&u, &github).await.unwrap());
    h.store.touch_identity(&google, NOW + 30).await.unwrap();
    let removed = h.store.unlink_identity(&u.id, "google").await.unwrap();
    assert_eq!(removed, Some(Identity { last_used_at: Some(NOW + 30), ..google.clone() }), "the link removed");
    assert_eq!(claim(&h, "google", "g-u").await, None);
    assert_eq!(h.store.list_identities(&u.id).await.unwrap(), vec![github.clone()]);
    assert_eq!(h.store.unlink_identity(&u.id, "google").await.unwrap(), None, "removed once");
    assert_eq!(h.store.unlink_identity(&u.id, "apple").await.unwrap(), None, "never linked");
    assert_eq!(h.store.unlink_identity(&UserId::generate(), "github").await.unwrap(), None, "not its link");
    assert_eq!(claim(&h, "github", "gh-u").await, Some((u.id.clone(), NOW + 1)));
    // Both sides are free again: the subject for another account, the provider for this one.
    let v = user("next@example.com", None, None);
    h.store.create_user(&v, None, NOW).await.unwrap();
    assert!(h.store.link_identity(&v, &identity(&v, "google", "g-u", NOW + 2)).await.unwrap());
    assert!(h.store.link_identity(&u, &identity(&u, "google", "g-u2", NOW + 3)).await.unwrap());
    // Removed once, even in parallel.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, id) = (h.store.clone(), u.id.clone());
        tasks.push(tokio::spawn(async move { store.unlink_identity(&id, "github").await.unwrap() }));
    }
    let mut removed = Vec::new();
    for t in tasks {
        removed.extend(t.await.unwrap());
    }
    assert_eq!(removed, vec![github]);
    assert_eq!(claim(&h, "github", "gh-u").await, None);
    assert_eq!(h.store.list_identities(&u.id).await.unwrap(), vec![identity(&u, "google", "g-u2", NOW + 3)]);
    assert_eq!(h.store.unlink_identity(&u.id, "google").await.unwrap().map(|i| i.subject), Some("g-u2".into()));
    assert!(h.store.list_identities(&u.id).await.unwrap().is_empty());
    assert_eq!(claim(&h, "google", "g-u2").await, None);
    assert_eq!(claim(&h, "google", "g-u").await, Some((v.id.clone(), NOW + 2)), "another account's link untouched");
}

async fn a_claim_is_forgotten_only_while_it_names_that_account(h: Harness) {
    let u = user("forget@example.com", None, None);
    let v = user("heir@example.com", None, None);
    h.store.create_user(&u, None, NOW).await.unwrap();
    h.store.create_user(&v, None, NOW).await.unwrap();
    let link = identity(&u, "google", "g-f", NOW);
    assert!(h.store.link_identity(&u, &link).await.unwrap());
    let not_its = Identity { user_id: v.id.clone(), ..link.clone() };
    assert!(!h.store.forget_identity(&not_its).await.unwrap(), "the claim names another account");
    assert_eq!(claim(&h, "google", "g-f").await, Some((u.id.clone(), NOW)));
    assert!(!h.store.forget_identity(&identity(&u, "google", "unknown", NOW)).await.unwrap(), "no such claim");
    assert!(h.store.forget_identity(&link).await.unwrap());
    assert_eq!(claim(&h, "google", "g-f").await, None);
    assert!(!h.store.forget_identity(&link).await.unwrap(), "forgotten once");
    // The subject is free for another account, whose link the first account's leftover side
    // can then never remove: unlinking it drops only the first account's own side.
    let heirs = identity(&v, "google", "g-f", NOW + 5);
    assert!(h.store.link_identity(&v, &heirs).await.unwrap());
    assert!(!h.store.forget_identity(&link).await.unwrap(), "now v's claim");
    assert_eq!(claim(&h, "google", "g-f").await, Some((v.id.clone(), NOW + 5)));
    h.store.unlink_identity(&u.id, "google").await.unwrap();
    assert!(h.store.list_identities(&u.id).await.unwrap().is_empty());
    assert_eq!(claim(&h, "google", "g-f").await, Some((v.id.clone(), NOW + 5)), "v's claim survives u's unlink");
    assert_eq!(h.store.list_identities(&v.id).await.unwrap(), vec![heirs]);
}

async fn deleting_a_user_removes_its_links(h: Harness) {
    let u = user("linked@example.com", Some("linked"), None);
    h.store.create_user_with_identity(&u, &identity(&u, "google", "g-del", NOW), NOW).await.unwrap();
    assert!(h.store.link_identity(&u, &identity(&u, "github", "gh-del", NOW)).await.unwrap());
    assert!(h.store.link_identity(&u, &identity(&u, "apple", "ap-del", NOW)).await.unwrap());
    let v = user("bystander@example.com", None, None);
    h.store.create_user_with_identity(&v, &identity(&v, "google", "g-keep", NOW), NOW).await.unwrap();
    // A stale copy deletes nothing.
    let mut renamed = u.clone();
    renamed.first_name = "Augusta".into();
    h.store.update_user(&u, &renamed, NOW).await.unwrap();
    assert!(matches!(h.store.delete_user(&u).await, Err(UpdateUserError::Conflict)));
    assert_eq!(h.store.list_identities(&u.id).await.unwrap().len(), 3);
    assert_eq!(claim(&h, "github", "gh-del").await, Some((u.id.clone(), NOW)));
    let current = h.store.get_user(&u.id, NOW).await.unwrap().unwrap();
    h.store.delete_user(&current).await.unwrap();
    for (provider, subject) in [("google", "g-del"), ("github", "gh-del"), ("apple", "ap-del")] {
        assert_eq!(claim(&h, provider, subject).await, None, "{provider} claim left by the deletion");
    }
    assert!(h.store.list_identities(&u.id).await.unwrap().is_empty());
    assert_eq!(claim(&h, "google", "g-keep").await, Some((v.id.clone(), NOW)), "another account's link untouched");
    assert_eq!(h.store.list_identities(&v.id).await.unwrap().len(), 1);
    // Its subjects are free for a new account.
    let again = user("linked@example.com", Some("linked"), None);
    h.store.create_user_with_identity(&again, &identity(&again, "google", "g-del", NOW + 9), NOW).await.unwrap();
    assert_eq!(claim(&h, "google", "g-del").await, Some((again.id.clone(), NOW + 9)));
}

async fn parallel_sign_ups_with_one_subject_make_one_account(h: Harness) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move {
            let u = user(&format!("racer{i}@example.com"), None, None);
            let r = store.create_user_with_identity(&u, &identity(&u, "google", "g-race", NOW), NOW).await;
            (u, r)
        }));
    }
    let (mut winners, mut lost) = (Vec::new(), Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            (u, Ok(())) => winners.push(u),
            (u, Err(CreateUserError::IdentityTaken)) => lost.push(u),
            (_, Err(e)) => panic!("a losing sign-up answered {e:?}, want IdentityTaken"),
        }
    }
    assert_eq!((winners.len(), lost.len()), (1, 7));
    let winner = &winners[0];
    assert_eq!(claim(&h, "google", "g-race").await, Some((winner.id.clone(), NOW)));
    assert_eq!(h.store.list_identities(&winner.id).await.unwrap().len(), 1);
    for u in &lost {
        assert_eq!(h.store.find_user_by_email(&u.email, NOW).await.unwrap(), None, "{}", u.email.as_str());
        assert!(h.store.list_identities(&u.id).await.unwrap().is_empty());
    }
    assert_eq!((h.users().await, h.email_claims().await), (1, 1));
}

async fn parallel_links_of_one_subject_link_one_account(h: Harness) {
    let mut users = Vec::new();
    for i in 0..8 {
        let u = user(&format!("linker{i}@example.com"), None, None);
        h.store.create_user(&u, None, NOW).await.unwrap();
        users.push(u);
    }
    let mut tasks = Vec::new();
    for u in users.clone() {
        let store = h.store.clone();
        tasks.push(tokio::spawn(async move {
            store.link_identity(&u, &identity(&u, "google", "g-shared", NOW)).await.unwrap()
        }));
    }
    let mut linked = Vec::new();
    for (u, t) in users.iter().zip(tasks) {
        if t.await.unwrap() {
            linked.push(u.id.clone());
        }
    }
    assert_eq!(linked.len(), 1, "exactly one account linked");
    assert_eq!(claim(&h, "google", "g-shared").await, Some((linked[0].clone(), NOW)));
    for u in &users {
        let sides = h.store.list_identities(&u.id).await.unwrap();
        assert_eq!(sides.len(), usize::from(u.id == linked[0]), "{}", u.email.as_str());
    }
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() { super::$case(super::Harness::memory()).await })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() { super::$case(super::Harness::dynamo().await).await })*
        }
    };
}

contract!(
    create_then_read_back,
    duplicates_are_refused_and_nothing_half_written,
    expired_items_are_invisible_and_claims_reusable,
    activation_consumes_the_code_once,
    an_expired_code_does_not_activate,
    concurrent_creates_of_one_email_make_one_user,
    concurrent_activations_succeed_once,
    sessions_rotate_conditionally,
    concurrent_rotations_of_one_token_fork_nothing,
    profile_updates_are_optimistic,
    password_hash_replacement_is_conditional,
    guesses_are_reserved_up_to_the_cap,
    parallel_guesses_get_exactly_the_cap,
    security_changes_kill_every_code,
    a_reset_activates_a_never_activated_account_but_not_a_deactivated_one,
    reservations_hold_limits_all_or_none,
    a_new_session_gives_back_the_attempt_in_its_own_write,
    parallel_reservations_never_pass_the_limit,
    codes_are_purpose_bound,
    concurrent_resets_succeed_once,
    email_changes_swap_claims_atomically,
    an_email_swap_racing_a_registration_has_one_winner,
    deleting_a_user_removes_everything,
    sessions_are_listed_and_revoked_in_bulk,
    users_page_through_every_live_user_once,
    counters_count_expire_and_cool_down,
    login_lookup_reads_claim_and_counters_together,
    groups_are_created_once_listed_and_deleted,
    permissions_are_registered_once_changed_listed_and_deleted,
    concurrent_registrations_of_one_codename_make_one,
    users_are_listed_in_id_order_across_pages,
    a_page_limit_of_one_walks_every_user,
    more_than_a_hundred_users_are_listed_completely,
    groups_are_listed_in_name_order,
    listing_reads_only_users_and_groups_however_full_the_table,
    a_user_deleted_while_being_listed_is_skipped,
    audit_entries_are_kept_in_their_day_and_account_streams,
    a_busy_day_pages_completely,
    a_totp_enrolment_is_pending_until_confirmed_once,
    totp_steps_and_recovery_codes_are_accepted_once,
    concurrent_uses_of_one_code_or_step_succeed_once,
    removing_mfa_removes_the_factor_and_codes_and_deleting_the_user_too,
    challenges_count_answers_before_judging_and_are_taken_once,
    parallel_answers_to_one_challenge_pass_the_cap_never_and_take_it_once,
    passkeys_are_added_once_listed_used_renamed_and_removed,
    a_user_created_with_an_identity_is_linked_once,
    a_link_is_made_only_to_the_account_as_read,
    identities_are_listed_by_provider_and_touched_by_their_subject,
    unlinking_removes_both_sides_once,
    a_claim_is_forgotten_only_while_it_names_that_account,
    deleting_a_user_removes_its_links,
    parallel_sign_ups_with_one_subject_make_one_account,
    parallel_links_of_one_subject_link_one_account,
);
