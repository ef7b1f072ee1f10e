//! The handlers over DynamoDB at the local emulator (`make test` starts it): the flow, the
//! registration race decided by the table's conditional writes, and the admin users routes with
//! the DynamoDB requests each sends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use common::{reply, spawn_app_dynamo, TestApp, PASSWORD};
use gatehouse_core::domain::Group;
use lambda_http::http::StatusCode;
use lambda_http::Body;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_registrations_leave_one_user_in_the_table() {
    let t = spawn_app_dynamo(&[]).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let app = t.app.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"email": if i % 2 == 0 { "race@example.com" } else { "RACE@Example.com" }, "password": PASSWORD});
            let req = common::request("POST", "/auth/users/", &[("content-type", "application/json")], Body::Text(body.to_string()));
            reply(common::dispatch(&app, req).await)
        }));
    }
    let mut created = 0;
    for task in tasks {
        let r = task.await.unwrap();
        match r.status {
            StatusCode::CREATED => created += 1,
            StatusCode::BAD_REQUEST => {
                assert_eq!(r.body, json!({"email": ["user with this email address already exists."]}))
            }
            other => panic!("unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(created, 1);
    let store = t.dynamo.as_ref().unwrap();
    let profiles = store.scan_prefix("USER#").await.unwrap();
    assert_eq!(profiles.iter().filter(|i| i["sk"].as_s().unwrap() == "PROFILE").count(), 1);
    let claims = store.scan_prefix("EMAIL#").await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0]["pk"].as_s().unwrap(), "EMAIL#race@example.com");
    assert_eq!(t.mail.sent().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_over_dynamodb() {
    let t = spawn_app_dynamo(&[]).await;
    let (access, refresh) = t.active_user("ada@example.com").await;
    let me = t.call("GET", "/auth/users/me/", None, Some(&access)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["email"], "ada@example.com");
    let r = t
        .call("PATCH", "/auth/users/me/", Some(json!({"username": "ada", "last_name": "Lovelace"})), Some(&access))
        .await;
    assert_eq!(r.body["username"], "ada");
    let r = t.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await;
    assert_eq!(r.status, StatusCode::OK);
    // Two seconds on: past the window in which a replay of the previous token is taken for a
    // concurrent request that lost the race, so this one is reuse and revokes the session.
    t.clock.advance(2);
    assert_eq!(t.post("/auth/jwt/refresh/", json!({"refresh": refresh})).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&access)).await.status, StatusCode::UNAUTHORIZED);
    // The activated user no longer carries a TTL, nor does its claim: exactly one of each is
    // there to check (an empty scan must not pass for "no TTL").
    let store = t.dynamo.as_ref().unwrap();
    let users = store.scan_prefix("USER#").await.unwrap();
    let profiles: Vec<_> = users.iter().filter(|i| i["sk"].as_s().unwrap() == "PROFILE").collect();
    let claims = store.scan_prefix("EMAIL#").await.unwrap();
    assert_eq!((profiles.len(), claims.len()), (1, 1), "profiles {profiles:?}, claims {claims:?}");
    assert_eq!(claims[0]["sk"].as_s().unwrap(), "EMAIL");
    assert_eq!(claims[0]["user_id"], profiles[0]["id"]);
    for item in profiles.into_iter().chain(&claims) {
        assert!(!item.contains_key("expires_at"), "{item:?}");
    }
}

/// Counts a table's DynamoDB requests at the emulator, by operation, through its fault injector
/// (`tools/emulator.py`, `/_fault`): a fault that never fires (`count: 0`) still counts the
/// requests it matches, and naming the table keeps other tests' requests out. Disarmed on drop.
struct Calls(Vec<(&'static str, u64)>);

/// The operations counted: every one the store sends but `BatchWriteItem`, which the audit trail
/// (counted by its own tests) appends its records with; here it would be a partition's leftovers
/// after a deletion, and the account deleted below leaves none.
const OPERATIONS: [&str; 9] = [
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "TransactGetItems",
    "TransactWriteItems",
];

/// One call to the emulator's control path.
fn control(method: &str, path: &str, body: Option<&Value>) -> Value {
    gatehouse_core::testing::emulator_control(&common::emulator_endpoint(), method, path, body)
        .unwrap_or_else(|e| panic!("{e}"))
}

impl Calls {
    fn arm(table: &str) -> Calls {
        Calls(
            OPERATIONS
                .iter()
                .map(|op| {
                    let spec = json!({
                        "target": format!("DynamoDB_20120810.{op}"), "contains": table, "count": 0, "code": "NeverSent",
                    });
                    (*op, control("POST", "/_fault", Some(&spec))["id"].as_u64().unwrap())
                })
                .collect(),
        )
    }

    /// The requests seen so far, by operation.
    fn seen(&self) -> BTreeMap<&'static str, u64> {
        self.0
            .iter()
            .map(|(op, id)| (*op, control("GET", &format!("/_fault/{id}"), None)["seen"].as_u64().unwrap()))
            .collect()
    }

    /// The requests `during` sent, by operation (those sent only).
    async fn of<T>(&self, during: impl std::future::Future<Output = T>) -> (T, BTreeMap<&'static str, u64>) {
        let before = self.seen();
        let out = during.await;
        let made = self.seen().into_iter().map(|(op, n)| (op, n - before[op])).filter(|(_, n)| *n > 0).collect();
        (out, made)
    }
}

impl Drop for Calls {
    fn drop(&mut self) {
        for (_, id) in &self.0 {
            let _ = std::panic::catch_unwind(|| control("DELETE", &format!("/_fault/{id}"), None));
        }
    }
}

fn calls(list: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
    list.iter().copied().collect()
}

/// The items of `prefix` whose sort key is `sk`.
async fn items(t: &TestApp, prefix: &str, sk: &str) -> Vec<HashMap<String, AttributeValue>> {
    let all = t.dynamo.as_ref().unwrap().scan_prefix(prefix).await.unwrap();
    all.into_iter().filter(|i| i["sk"].as_s().unwrap() == sk).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_users_routes_over_dynamodb_and_their_calls() {
    let t = spawn_app_dynamo(&[]).await;
    let table = t.dynamo.as_ref().unwrap().table().to_owned();
    t.register_permissions(&["shop.refund"]).await;
    let till = Group {
        name: "till".into(),
        description: String::new(),
        permissions: vec!["shop.refund".into()],
        id: "g-till".into(),
    };
    assert!(t.app.store.put_group(&till, true).await.unwrap());
    let (staff, _) = t.active_user("staff@example.com").await;
    let perms =
        ["auth.view_user", "auth.add_user", "auth.change_user", "auth.delete_user", "auth.view_group", "shop.refund"];
    t.make_staff_with("staff@example.com", &perms).await;
    let counter = Calls::arm(&table);
    let call = |method: &'static str, path: String, body: Option<Value>| {
        let (t, staff) = (&t, staff.clone());
        async move { t.call(method, &path, body, Some(&staff)).await }
    };

    // Each route's DynamoDB requests, by operation, and what it leaves in the table.
    // Create, inactive (the activation code in the same transaction), with a group and grants:
    // the caller and its session, its groups (for the route's permission), the group named with
    // its own again, the registry twice (what it holds, then the grants), one transaction.
    let body = json!({
        "email": "Desk@Example.com", "password": PASSWORD, "username": "desk",
        "groups": ["till"], "user_permissions": ["shop.refund", "auth.view_group"],
    });
    let (r, made) = counter.of(call("POST", "/auth/admin/users/".into(), Some(body))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(made, calls(&[("BatchGetItem", 5), ("TransactWriteItems", 1)]), "create");
    let profile = items(&t, &format!("USER#{id}"), "PROFILE").await;
    assert_eq!(profile.len(), 1);
    let p = &profile[0];
    assert_eq!(p["is_active"].as_bool().unwrap(), &false);
    assert!(p.contains_key("expires_at"), "unactivated: expires as a registration");
    assert_eq!(p["groups"].as_l().unwrap().len(), 1);
    let grants = p["user_permissions"].as_m().unwrap();
    assert_eq!(grants["shop.refund"].as_s().unwrap(), "p-shop.refund");
    assert!(grants.contains_key("auth.view_group"));
    assert_eq!(items(&t, &format!("USER#{id}"), "CODE#activation").await.len(), 1, "its activation code");
    assert_eq!(items(&t, "EMAIL#desk@example.com", "EMAIL").await.len(), 1);
    assert_eq!(items(&t, "USERNAME#desk", "USERNAME").await.len(), 1);

    let (r, made) = counter.of(call("GET", "/auth/admin/users/?is_active=false&group=till".into(), None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["results"].as_array().unwrap().len(), 1, "{}", r.body);
    // The caller, its groups, the group filtered on, the list index and its page of accounts, then
    // what the page shows: the groups and the grants that still count.
    assert_eq!(made, calls(&[("BatchGetItem", 6), ("Query", 1)]), "list");

    let (r, made) = counter.of(call("GET", format!("/auth/admin/users/{id}/"), None)).await;
    assert_eq!((r.status, &r.body["user_permissions"]), (StatusCode::OK, &json!(["auth.view_group", "shop.refund"])));
    assert_eq!(made, calls(&[("BatchGetItem", 4), ("GetItem", 1)]), "view");

    let body = json!({"is_active": true, "first_name": "Front", "groups": [], "user_permissions": ["shop.refund"]});
    let (r, made) = counter.of(call("PATCH", format!("/auth/admin/users/{id}/"), Some(body))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Activating a pending account goes through the activation's own write (a code, then the
    // transaction), after which the change is judged again on the account as it is now: what the
    // caller holds is read once per attempt (groups with its own, then the registry), never again
    // for the grants.
    assert_eq!(
        made,
        calls(&[("BatchGetItem", 9), ("GetItem", 3), ("PutItem", 1), ("TransactWriteItems", 2)]),
        "change"
    );
    let p = &items(&t, &format!("USER#{id}"), "PROFILE").await[0];
    assert!(!p.contains_key("expires_at"), "activated by the admin: no expiry");
    assert_eq!(p["first_name"].as_s().unwrap(), "Front");

    let (r, made) = counter.of(call("DELETE", format!("/auth/admin/users/{id}/"), None)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // The account, its claims and codes in one transaction, then what is left of its partition
    // (nothing: it never logged in, and its code was spent).
    assert_eq!(made, calls(&[("BatchGetItem", 2), ("GetItem", 1), ("TransactWriteItems", 1), ("Query", 1)]), "delete");
    assert!(t.dynamo.as_ref().unwrap().scan_prefix(&format!("USER#{id}")).await.unwrap().is_empty(), "its partition");
    assert!(items(&t, "EMAIL#desk@example.com", "EMAIL").await.is_empty());
    assert!(items(&t, "USERNAME#desk", "USERNAME").await.is_empty());
}
