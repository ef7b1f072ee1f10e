//! The audit trail (`GET /auth/admin/audit/`): what each security event records (who, to whom,
//! what changed, from where), who may read it, its filters and pages across days, its retention,
//! and that recording never fails or holds up the action it records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;

use common::{denied, settings, spawn_app, TestApp, IP, PASSWORD, T0};
use gatehouse_core::mail::CaptureMailer;
use gatehouse_core::ports::{AuditStore, FixedClock};
use gatehouse_core::store::{FaultyStore, MemoryStore, Op};
use lambda_http::http::StatusCode;
use lambda_http::Body;
use serde_json::{json, Value};

const DAY: i64 = 86_400;

async fn audit(t: &TestApp, token: &str, query: &str) -> common::Reply {
    t.call("GET", &format!("/auth/admin/audit/{query}"), None, Some(token)).await
}

/// The events of a page, in the order listed.
fn events(body: &Value) -> Vec<String> {
    body["results"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap().to_owned()).collect()
}

/// A superuser's token (an active account made superuser in the store).
async fn superuser(t: &TestApp, email: &str) -> String {
    t.active_user(email).await;
    t.make_superuser(email).await;
    t.login(email).await.0
}

/// Follows `next` from the start, collecting every entry's id (and checking none repeats).
async fn walk(t: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..500 {
        let mut q = format!("?limit=2{query}");
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let r = audit(t, token, &q).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        seen.extend(r.body["results"].as_array().unwrap().iter().cloned());
        match r.body["next"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => {
                let ids: HashSet<&str> = seen.iter().map(|e| e["id"].as_str().unwrap()).collect();
                assert_eq!(ids.len(), seen.len(), "an entry was listed twice");
                return seen;
            }
        }
    }
    panic!("the listing never ended");
}

#[tokio::test]
async fn the_trail_records_who_did_what_to_whom_and_from_where() {
    let t = spawn_app(&[]);
    let admin = superuser(&t, "root@example.com").await;
    let admin_id = t.user("root@example.com").await.id;
    t.active_user("ada@example.com").await;
    let ada = t.user("ada@example.com").await.id;
    let wrong = json!({"email": "ada@example.com", "password": "not her password at all"});
    assert_eq!(t.post("/auth/jwt/create/", wrong).await.status, StatusCode::UNAUTHORIZED);
    let unknown = json!({"email": "nobody@example.com", "password": "whatever it is now"});
    assert_eq!(t.post("/auth/jwt/create/", unknown).await.status, StatusCode::UNAUTHORIZED);
    let login = json!({"email": "ada@example.com", "password": PASSWORD});
    let headers = [("content-type", "application/json"), ("user-agent", "Firefox/140 (test)")];
    let r = t.raw("POST", "/auth/jwt/create/", &headers, Body::Text(login.to_string())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let path = format!("/auth/admin/users/{ada}/");
    let r = t.call("PATCH", &path, Some(json!({"first_name": "Ada", "is_active": false})), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let r = audit(&t, &admin, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let listed = events(&r.body);
    // Newest first; ada's registration, activation and first login came before.
    let expected = ["admin.user_updated", "login.succeeded", "login.failed", "login.failed", "login.succeeded"];
    assert_eq!(listed[..5], expected, "{listed:?}");
    for older in ["account.activated", "account.registered"] {
        assert!(listed.contains(&older.to_owned()), "{older} missing: {listed:?}");
    }
    let entries = r.body["results"].as_array().unwrap();
    let update = &entries[0];
    assert_eq!(update["actor"], admin_id.as_str());
    assert_eq!(update["target"], ada.as_str());
    assert_eq!(update["ip"], IP);
    assert_eq!(update["via"], "api");
    assert_eq!(
        update["changes"],
        json!({"first_name": {"from": "", "to": "Ada"}, "is_active": {"from": true, "to": false}})
    );
    let login = &entries[1];
    assert_eq!((&login["actor"], &login["target"]), (&json!(ada.as_str()), &json!(ada.as_str())));
    assert_eq!(login["user_agent"], "Firefox/140 (test)");
    // The unknown address names nobody; the wrong password names the account it was tried on.
    assert_eq!((&entries[2]["target"], &entries[2]["actor"]), (&Value::Null, &Value::Null));
    assert_eq!(entries[3]["target"], ada.as_str());
    assert!(entries[0]["at"].as_str().unwrap().ends_with('Z'));
    // Nothing in an entry is a secret: no password, hash or token.
    let text = r.body.to_string();
    for secret in [PASSWORD, "not her password", "$argon2", &admin] {
        assert!(!text.contains(secret), "{secret} in the trail");
    }
}

#[tokio::test]
async fn reading_the_trail_needs_view_auditentry_or_a_superuser() {
    let t = spawn_app(&[]);
    let (user, _) = t.active_user("user@example.com").await;
    t.active_user("staff@example.com").await;
    t.make_staff("staff@example.com").await;
    let (staff, _) = t.login("staff@example.com").await;
    t.active_user("auditor@example.com").await;
    t.make_staff_with("auditor@example.com", &["auth.view_auditentry"]).await;
    let (auditor, _) = t.login("auditor@example.com").await;
    t.active_user("viewer@example.com").await;
    t.make_staff_with("viewer@example.com", &["auth.view_user", "auth.change_user"]).await;
    let (viewer, _) = t.login("viewer@example.com").await;

    let r = t.call("GET", "/auth/admin/audit/", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Not staff: the admin API is not there for them (HIDE_USERS, as every admin route).
    assert_eq!(audit(&t, &user, "").await.status, StatusCode::NOT_FOUND);
    for token in [&staff, &viewer] {
        let r = audit(&t, token, "").await;
        assert_eq!((r.status, &r.body), (StatusCode::FORBIDDEN, &denied()));
    }
    let r = audit(&t, &auditor, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(events(&r.body).contains(&"login.succeeded".to_owned()));
    // The permission taken away: refused from the next request on.
    t.app.store.delete_group("holds-auditor@example.com").await.unwrap();
    assert_eq!(audit(&t, &auditor, "").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn filters_by_account_actor_event_and_time_and_refuse_bad_values() {
    let t = spawn_app(&[]);
    superuser(&t, "root@example.com").await;
    let root = t.user("root@example.com").await.id;
    t.active_user("ada@example.com").await;
    let ada = t.user("ada@example.com").await.id;
    t.clock.advance(3600);
    let since = t.clock_now();
    let admin = t.login("root@example.com").await.0;
    let ada_token = t.login("ada@example.com").await.0;
    let r = t.call("PATCH", "/auth/users/me/", Some(json!({"last_name": "Lovelace"})), Some(&ada_token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let path = format!("/auth/admin/users/{ada}/");
    let r = t.call("PATCH", &path, Some(json!({"first_name": "Ada"})), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let about_ada = events(&audit(&t, &admin, &format!("?user={ada}")).await.body);
    assert_eq!(
        about_ada,
        [
            "admin.user_updated",
            "account.updated",
            "login.succeeded",
            "login.succeeded",
            "account.activated",
            "account.registered"
        ]
    );
    let by_root = events(&audit(&t, &admin, &format!("?actor={root}")).await.body);
    assert_eq!(by_root[0], "admin.user_updated");
    assert!(!by_root.contains(&"account.updated".to_owned()), "{by_root:?}");
    let both = events(&audit(&t, &admin, &format!("?user={ada}&actor={ada}")).await.body);
    assert_eq!(both, ["account.updated", "login.succeeded", "login.succeeded"]);
    let recent = events(&audit(&t, &admin, &format!("?user={ada}&since={since}")).await.body);
    assert_eq!(recent, ["admin.user_updated", "account.updated", "login.succeeded"]);
    let family = events(&audit(&t, &admin, "?event=login").await.body);
    assert!(family.len() >= 2 && family.iter().all(|e| e == "login.succeeded"), "{family:?}");
    let exact = events(&audit(&t, &admin, "?event=account.updated").await.body);
    assert_eq!(exact, ["account.updated"]);
    assert!(events(&audit(&t, &admin, "?event=login.succ").await.body).is_empty());
    // An RFC 3339 time and a date are taken as well as seconds.
    let iso = gatehouse_core::services::iso8601(since);
    let r = audit(&t, &admin, &format!("?user={ada}&since={}", iso.replace('+', "%2B"))).await;
    assert_eq!(events(&r.body).len(), 3, "{}", r.body);
    assert_eq!(audit(&t, &admin, "?since=2027-01-15").await.status, StatusCode::OK);

    for (query, field) in [
        ("?user=42", "user"),
        ("?actor=not-a-uuid", "actor"),
        ("?since=last%20tuesday", "since"),
        ("?cursor=%21%21", "cursor"),
        ("?limit=0", "limit"),
    ] {
        let r = audit(&t, &admin, query).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        assert!(r.body[field].is_array(), "{query}: {}", r.body);
    }
    // Empty values are no filter.
    let r = audit(&t, &admin, "?user=&actor=&event=&since=").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn pages_walk_every_day_newest_first_and_the_retention_ends_entries() {
    let t = spawn_app(&[("AUDIT_RETENTION", "30d")]);
    superuser(&t, "root@example.com").await;
    // Logins spread over ten days, with quiet days between.
    for day in 0..10 {
        if day % 3 != 1 {
            t.login("root@example.com").await;
        }
        t.clock.advance(DAY);
    }
    let admin = t.login("root@example.com").await.0;
    let all = walk(&t, &admin, "").await;
    let times: Vec<&str> = all.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "not newest first");
    let logins = all.iter().filter(|e| e["event"] == "login.succeeded").count();
    // Two logins by `superuser`, the seven of the loop and the last one.
    assert_eq!(logins, 2 + 7 + 1, "{all:?}");
    let first_day = gatehouse_core::services::iso8601(T0);
    assert!(times.last().unwrap().starts_with(&first_day[..10]));

    // The account's stream pages the same way.
    let root = t.user("root@example.com").await.id;
    let by_root: Vec<&Value> = all.iter().filter(|e| e["actor"] == root.as_str()).collect();
    let walked = walk(&t, &admin, &format!("&actor={root}")).await;
    assert_eq!(walked.iter().collect::<Vec<_>>(), by_root);
    assert!(walked.len() >= 10, "{walked:?}");

    // Past the retention, the first days' entries are gone, even before DynamoDB's TTL runs.
    t.clock.advance(25 * DAY);
    let admin = t.login("root@example.com").await.0;
    let kept = walk(&t, &admin, "").await;
    assert!(kept.len() < all.len(), "{} of {}", kept.len(), all.len());
    let oldest = gatehouse_core::services::iso8601(t.clock_now() - 30 * DAY);
    assert!(kept.iter().all(|e| e["at"].as_str().unwrap() > oldest.as_str()), "{kept:?}");
}

#[tokio::test]
async fn lockouts_password_email_and_session_changes_are_recorded() {
    let t = spawn_app(&[("LOGIN_LOCKOUT_THRESHOLD", "3")]);
    let admin = superuser(&t, "root@example.com").await;
    let (token, refresh) = t.active_user("ada@example.com").await;
    let ada = t.user("ada@example.com").await.id;
    let body = json!({"current_password": PASSWORD, "new_password": "another good passphrase"});
    assert_eq!(
        t.call("POST", "/auth/users/set_password/", Some(body), Some(&token)).await.status,
        StatusCode::NO_CONTENT
    );
    let body = json!({"current_password": "another good passphrase", "new_email": "lovelace@example.com"});
    assert_eq!(t.call("POST", "/auth/users/set_email/", Some(body), Some(&token)).await.status, StatusCode::NO_CONTENT);
    let (uid, code) = t.link_parts("lovelace@example.com");
    let r = t.post("/auth/users/set_email_confirm/", json!({"uid": uid, "token": code})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = t.post("/auth/jwt/blacklist/", json!({"refresh": refresh})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    for _ in 0..3 {
        let wrong = json!({"email": "lovelace@example.com", "password": "not the password at all"});
        assert_eq!(t.post("/auth/jwt/create/", wrong).await.status, StatusCode::UNAUTHORIZED);
    }
    let page = audit(&t, &admin, &format!("?user={ada}")).await.body;
    let listed = events(&page);
    assert_eq!(
        listed[..8],
        [
            "login.locked_out",
            "login.failed",
            "login.failed",
            "login.failed",
            "session.revoked",
            "email.changed",
            "email.change_requested",
            "password.changed"
        ],
        "{listed:?}"
    );
    let changed = &page["results"][5]["changes"];
    assert_eq!(*changed, json!({"email": {"from": "ada@example.com", "to": "lovelace@example.com"}}));
}

#[tokio::test]
async fn a_deleted_accounts_trail_stays_until_the_retention_ends() {
    let t = spawn_app(&[]);
    let admin = superuser(&t, "root@example.com").await;
    t.active_user("ada@example.com").await;
    let ada = t.user("ada@example.com").await.id;
    let r = t.call("DELETE", &format!("/auth/admin/users/{ada}/"), None, Some(&admin)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let listed = events(&audit(&t, &admin, &format!("?user={ada}")).await.body);
    assert_eq!(listed[0], "admin.user_deleted");
    assert!(listed.contains(&"account.registered".to_owned()), "{listed:?}");
}

/// The app over a store whose audit writes can be made to fail or hang.
fn faulty() -> (TestApp, gatehouse_core::store::Faults, Arc<MemoryStore>) {
    let memory = Arc::new(MemoryStore::new());
    let (store, faults) = FaultyStore::new(memory.clone());
    let mail = Arc::new(CaptureMailer::new());
    let clock = Arc::new(FixedClock::new(T0));
    let app = common::instrumented_app(settings(&[]), Arc::new(store), mail.clone(), clock.clone(), None);
    (TestApp { app: Arc::new(app), mail, clock, memory: Some(memory.clone()), dynamo: None }, faults, memory)
}

async fn stored_events(memory: &MemoryStore, now: i64) -> usize {
    let stream = gatehouse_core::domain::AuditStream::Day(now.div_euclid(DAY));
    memory.audit_page(&stream, None, 0, 1000, now).await.unwrap().len()
}

#[tokio::test]
async fn a_failed_audit_write_never_fails_the_action() {
    let (t, faults, memory) = faulty();
    t.active_user("ada@example.com").await;
    let before = stored_events(&memory, t.clock_now()).await;
    faults.fail_next(Op::AppendAudit, 2);
    let (access, _) = t.login("ada@example.com").await;
    let r = t.call("DELETE", "/auth/sessions/", None, Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(faults.failures(Op::AppendAudit), 2);
    assert_eq!(stored_events(&memory, t.clock_now()).await, before, "nothing written, nothing failed");
    // Healed: the next one is written.
    t.login("ada@example.com").await;
    assert_eq!(stored_events(&memory, t.clock_now()).await, before + 1);
}

#[tokio::test(start_paused = true)]
async fn a_hung_audit_write_is_given_up_at_its_deadline() {
    let (t, faults, memory) = faulty();
    t.active_user("ada@example.com").await;
    let before = stored_events(&memory, t.clock_now()).await;
    let (access, _) = t.login("ada@example.com").await;
    faults.hold(Op::AppendAudit);
    let started = tokio::time::Instant::now();
    let r = t.call("DELETE", "/auth/sessions/", None, Some(&access)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let waited = started.elapsed();
    assert!(waited >= gatehouse_core::services::audit::WRITE_DEADLINE, "{waited:?}");
    assert!(waited < gatehouse_core::services::audit::WRITE_DEADLINE * 2, "{waited:?}");
    assert_eq!(stored_events(&memory, t.clock_now()).await, before + 1, "only the login's entry");
}
