//! The handlers over DynamoDB at the local emulator (`make test` starts it): the flow, and the
//! registration race decided by the table's conditional writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{reply, spawn_app_dynamo, PASSWORD};
use lambda_http::http::StatusCode;
use lambda_http::Body;
use serde_json::json;

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
