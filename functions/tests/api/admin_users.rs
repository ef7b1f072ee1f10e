//! The admin API's users (`/auth/admin/users/`): listing with filters and cursor pages, creation
//! with registration's rules, reading, changing and deleting accounts; each route's own
//! permission, and no climbing for staff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use common::denied;

use common::{spawn_app, TestApp, PASSWORD};
use gatehouse_core::domain::{Group, User};
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

/// A superuser (staff too, as `authctl createsuperuser` makes them) and its token, whatever the
/// registration settings (retype, activation email).
async fn superuser(t: &TestApp, email: &str) -> String {
    let body = json!({"email": email, "password": PASSWORD, "re_password": PASSWORD});
    assert_eq!(t.post("/auth/users/", body).await.status, StatusCode::CREATED);
    if t.mail.last_to(email).and_then(|m| m.link).is_some() {
        let (uid, token) = t.link_parts(email);
        let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    }
    let (token, _) = t.login(email).await;
    t.make_superuser(email).await;
    token
}

async fn put_group(t: &TestApp, name: &str, perms: &[&str]) {
    let g = Group {
        name: name.into(),
        description: String::new(),
        permissions: perms.iter().map(|p| (*p).to_owned()).collect(),
        id: format!("g-{name}"),
    };
    assert!(t.app.store.put_group(&g, true).await.unwrap());
}

/// Every stored account, in id order.
async fn everyone(t: &TestApp) -> Vec<User> {
    t.app.store.list_users(None, 10_000, t.clock_now()).await.unwrap().0
}

fn detail(id: &impl std::fmt::Display) -> String {
    format!("/auth/admin/users/{id}/")
}

fn ids(body: &Value) -> Vec<String> {
    body["results"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect()
}

/// Follows `next` from the start with `query` (and `limit`), collecting every id.
async fn walk(t: &TestApp, token: &str, query: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..200 {
        let mut path = format!("/auth/admin/users/?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = t.call("GET", &path, None, Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert!(r.body["results"].as_array().unwrap().len() <= limit);
        seen.extend(ids(&r.body));
        match r.body["next"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return seen,
        }
    }
    panic!("the listing never ended");
}

#[tokio::test]
async fn superusers_list_with_each_filter() {
    let t = spawn_app(&[]);
    let root = superuser(&t, "root@example.com").await;
    t.active_user("ada@example.com").await;
    t.register("bob@example.com").await; // inactive
    t.active_user("carol@example.com").await;
    t.make_staff("carol@example.com").await;
    t.active_user("dave@example.com").await;
    put_group(&t, "desk", &[]).await;
    let dave = t.user("dave@example.com").await;
    let r = t.call("PATCH", &detail(&dave.id), Some(json!({"groups": ["desk"]})), Some(&root)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let id = |email: &'static str| {
        let t = &t;
        async move { t.user(email).await.id.to_string() }
    };
    let (root_id, ada, bob, carol, dave) = (
        id("root@example.com").await,
        id("ada@example.com").await,
        id("bob@example.com").await,
        id("carol@example.com").await,
        id("dave@example.com").await,
    );
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };

    let r = t.call("GET", "/auth/admin/users/", None, Some(&root)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(ids(&r.body), sorted(vec![root_id.clone(), ada.clone(), bob.clone(), carol.clone(), dave.clone()]));
    assert_eq!(r.body["next"], Value::Null);
    let me = r.body["results"].as_array().unwrap().iter().find(|u| u["id"] == json!(root_id)).unwrap();
    let keys: Vec<&str> = me.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "date_joined",
        "email",
        "first_name",
        "groups",
        "id",
        "is_active",
        "is_staff",
        "is_superuser",
        "language",
        "last_login",
        "last_name",
        "mfa_enabled",
        "mfa_methods",
        "user_permissions",
        "username",
    ];
    want.sort();
    assert_eq!(keys, want);
    assert_eq!((&me["is_superuser"], &me["is_staff"]), (&json!(true), &json!(true)));

    let cases: Vec<(&str, Vec<String>)> = vec![
        ("email=ADA@Example.com", vec![ada.clone()]),
        ("email=%20ada%40example.com%20", vec![ada.clone()]),
        ("email=nobody@example.com", vec![]),
        ("email=not-an-address", vec![]),
        ("is_active=false", vec![bob.clone()]),
        ("is_active=0", vec![bob.clone()]),
        ("is_active=True", sorted(vec![root_id.clone(), ada.clone(), carol.clone(), dave.clone()])),
        ("is_staff=yes", sorted(vec![root_id.clone(), carol.clone()])),
        ("is_staff=off", sorted(vec![ada.clone(), bob.clone(), dave.clone()])),
        ("is_staff=false&is_active=true", sorted(vec![ada.clone(), dave.clone()])),
        ("group=desk", vec![dave.clone()]),
        ("group=desk&is_active=false", vec![]),
        ("group=nope", vec![]),
        ("email=dave@example.com&group=desk", vec![dave.clone()]),
        ("email=ada@example.com&group=desk", vec![]),
        ("is_active=&is_staff=&group=&email=", sorted(vec![root_id, ada, bob, carol, dave.clone()])),
    ];
    for (query, expected) in cases {
        let r = t.call("GET", &format!("/auth/admin/users/?{query}"), None, Some(&root)).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        assert_eq!(ids(&r.body), expected, "{query}");
    }

    // A member of a group deleted and made again is no member of the new one.
    let mut g = t.app.store.get_groups(&["desk".into()]).await.unwrap().pop().unwrap();
    assert!(t.app.store.delete_group("desk").await.unwrap());
    g.id = "g-desk-2".into();
    assert!(t.app.store.put_group(&g, true).await.unwrap());
    let r = t.call("GET", "/auth/admin/users/?group=desk", None, Some(&root)).await;
    assert_eq!(ids(&r.body), Vec::<String>::new());

    let bad = [
        ("limit=0", json!({"limit": ["Ensure this value is an integer between 1 and 200."]})),
        ("limit=201", json!({"limit": ["Ensure this value is an integer between 1 and 200."]})),
        ("cursor=%21%21", json!({"cursor": ["Invalid cursor."]})),
        ("is_active=maybe", json!({"is_active": ["Must be a valid boolean."]})),
        (
            "is_staff=2&is_active=x",
            json!({"is_staff": ["Must be a valid boolean."], "is_active": ["Must be a valid boolean."]}),
        ),
    ];
    for (query, expected) in bad {
        let r = t.call("GET", &format!("/auth/admin/users/?{query}"), None, Some(&root)).await;
        assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &expected), "{query}");
    }
}

#[tokio::test]
async fn pages_with_filters_skip_and_repeat_nobody() {
    let t = spawn_app(&[]);
    let root = superuser(&t, "root@example.com").await;
    for i in 0..13 {
        let email = format!("u{i}@example.com");
        let r = t
            .call(
                "POST",
                "/auth/admin/users/",
                Some(json!({"email": email, "password": PASSWORD, "is_active": i % 3 != 0})),
                Some(&root),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let all = everyone(&t).await;
    let expect = |f: &dyn Fn(&User) -> bool| all.iter().filter(|u| f(u)).map(|u| u.id.to_string()).collect::<Vec<_>>();
    let active = expect(&|u| u.is_active);
    let inactive = expect(&|u| !u.is_active);
    let everybody = expect(&|_| true);
    assert_eq!((active.len(), inactive.len()), (9, 5));
    for limit in [1, 2, 3, 5, 50] {
        assert_eq!(walk(&t, &root, "&is_active=true", limit).await, active, "active, limit {limit}");
        assert_eq!(walk(&t, &root, "&is_active=false", limit).await, inactive, "inactive, limit {limit}");
        assert_eq!(walk(&t, &root, "", limit).await, everybody, "everyone, limit {limit}");
        assert_eq!(walk(&t, &root, "&is_staff=true&is_active=false", limit).await, Vec::<String>::new());
    }
    // A full page of matches stops at its last match: the next page starts right after it.
    let r = t.call("GET", "/auth/admin/users/?limit=2&is_active=false", None, Some(&root)).await;
    assert_eq!(ids(&r.body), inactive[..2].to_vec());
    let next = r.body["next"].as_str().unwrap();
    let r = t.call("GET", &format!("/auth/admin/users/?limit=2&cursor={next}"), None, Some(&root)).await;
    let after: Vec<String> = everybody.iter().filter(|id| **id > inactive[1]).take(2).cloned().collect();
    assert_eq!(ids(&r.body), after, "the cursor is the last account examined");
}

#[tokio::test]
async fn an_active_account_is_made_without_mail_and_logs_in_at_once() {
    let t = spawn_app(&[]);
    let root = superuser(&t, "root@example.com").await;
    put_group(&t, "desk", &["auth.view_group"]).await;
    let sent = t.mail.sent().len();
    let body = json!({
        "email": "Desk@Example.com", "password": PASSWORD, "is_active": "true", "username": "desk",
        "first_name": "Front", "last_name": "Desk", "groups": ["desk"], "is_superuser": true,
    });
    let r = t.call("POST", "/auth/admin/users/", Some(body), Some(&root)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let b = &r.body;
    assert_eq!(
        (&b["email"], &b["username"], &b["first_name"], &b["is_active"], &b["is_staff"], &b["is_superuser"]),
        (&json!("Desk@example.com"), &json!("desk"), &json!("Front"), &json!(true), &json!(false), &json!(false))
    );
    assert_eq!(b["groups"], json!(["desk"]));
    assert_eq!(t.mail.sent().len(), sent, "no email");
    let stored = t.user("desk@example.com").await;
    assert_eq!((stored.is_active, stored.expires_at, stored.is_superuser), (true, None, false));
    assert!(t
        .app
        .store
        .get_code(&stored.id, gatehouse_core::domain::CodePurpose::Activation, t.clock_now())
        .await
        .unwrap()
        .is_none());
    let (access, _) = t.login("desk@example.com").await;
    let r = t.call("GET", "/auth/users/me/has_permission/auth.view_group/", None, Some(&access)).await;
    assert_eq!(r.body, json!({"has_permission": true}), "a member of the group given");
    let r = t.call("GET", &detail(&stored.id), None, Some(&root)).await;
    assert_eq!((r.status, &r.body["id"]), (StatusCode::OK, &json!(stored.id.to_string())));
}

#[tokio::test]
async fn an_inactive_account_is_made_as_registration_makes_it() {
    let t = spawn_app(&[]);
    let root = superuser(&t, "root@example.com").await;
    for (email, extra) in [("pending@example.com", json!({})), ("later@example.com", json!({"is_active": false}))] {
        let mut body = json!({"email": email, "password": PASSWORD});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let r = t.call("POST", "/auth/admin/users/", Some(body), Some(&root)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["is_active"], json!(false));
        let stored = t.user(email).await;
        assert!(stored.expires_at.is_some(), "expires unless activated, as a registration");
        let r = t.post("/auth/jwt/create/", json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "inactive: {}", r.body);
        let (uid, token) = t.link_parts(email);
        let r = t.post("/auth/users/activation/", json!({"uid": uid, "token": token})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        t.login(email).await;
    }
}

#[tokio::test]
async fn without_activation_emails_an_inactive_account_waits_for_an_admin() {
    let t = spawn_app(&[("SEND_ACTIVATION_EMAIL", "false")]);
    let root = superuser(&t, "root@example.com").await;
    let sent = t.mail.sent().len();
    let r = t
        .call("POST", "/auth/admin/users/", Some(json!({"email": "w@example.com", "password": PASSWORD})), Some(&root))
        .await;
    assert_eq!((r.status, &r.body["is_active"]), (StatusCode::CREATED, &json!(false)), "{}", r.body);
    assert_eq!(t.mail.sent().len(), sent);
    let stored = t.user("w@example.com").await;
    assert_eq!((stored.is_active, stored.expires_at), (false, None));
    let r = t.call("PATCH", &detail(&stored.id), Some(json!({"is_active": true})), Some(&root)).await;
    assert_eq!(r.body["is_active"], json!(true));
    t.login("w@example.com").await;
}

#[tokio::test]
async fn creation_refusals_are_registrations_and_write_nothing() {
    let t = spawn_app(&[("USER_CREATE_PASSWORD_RETYPE", "true")]);
    let root = superuser(&t, "root@example.com").await;
    superuser(&t, "taken@example.com").await;
    let u = t.user("taken@example.com").await;
    let mut named = u.clone();
    named.username = Some(gatehouse_core::domain::Username::parse("taken").unwrap());
    t.app.store.update_user(&u, &named, t.clock_now()).await.unwrap();
    let before = everyone(&t).await;
    let ok = |extra: Value| {
        let mut body = json!({"email": "new@example.com", "password": PASSWORD, "re_password": PASSWORD});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        (
            json!({}),
            json!({"email": ["This field is required."], "password": ["This field is required."], "re_password": ["This field is required."]}),
        ),
        (ok(json!({"email": "TAKEN@example.com"})), json!({"email": ["user with this email address already exists."]})),
        (ok(json!({"username": "Taken"})), json!({"username": ["A user with that username already exists."]})),
        (
            ok(json!({"re_password": "something else"})),
            json!({"non_field_errors": ["The two password fields didn't match."]}),
        ),
        (ok(json!({"groups": ["nope"]})), json!({"groups": ["Invalid group \"nope\" - object does not exist."]})),
        (ok(json!({"groups": "desk"})), json!({"groups": ["Expected a list of items."]})),
        (
            ok(json!({"is_active": "maybe", "is_staff": 7})),
            json!({"is_active": ["Must be a valid boolean."], "is_staff": ["Must be a valid boolean."]}),
        ),
    ];
    for (body, expected) in cases {
        let r = t.call("POST", "/auth/admin/users/", Some(body.clone()), Some(&root)).await;
        assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &expected), "{body}");
    }
    for (password, field) in [("12345678901", "password"), ("short", "password"), ("new@example.com", "password")] {
        let r = t
            .call(
                "POST",
                "/auth/admin/users/",
                Some(ok(json!({"password": password, "re_password": password}))),
                Some(&root),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{password}");
        assert!(r.body[field].as_array().is_some_and(|m| !m.is_empty()), "{password}: {}", r.body);
    }
    let r = t.call("POST", "/auth/admin/users/", Some(ok(json!({"email": "not an address"}))), Some(&root)).await;
    assert!(r.body["email"].is_array(), "{}", r.body);
    assert_eq!(everyone(&t).await, before, "a refusal wrote nothing");
    let r = t.call("POST", "/auth/admin/users/", Some(ok(json!({}))), Some(&root)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// Every admin users route, with the permission it needs and a body that passes it; `{target}`
/// is an ordinary account made for the case.
fn routes() -> Vec<(&'static str, &'static str, Option<Value>, &'static str)> {
    vec![
        ("GET", "/auth/admin/users/", None, "auth.view_user"),
        (
            "POST",
            "/auth/admin/users/",
            Some(json!({"email": "made@example.com", "password": PASSWORD})),
            "auth.add_user",
        ),
        ("GET", "/auth/admin/users/{target}/", None, "auth.view_user"),
        ("PUT", "/auth/admin/users/{target}/", Some(json!({"first_name": "Changed"})), "auth.change_user"),
        ("PATCH", "/auth/admin/users/{target}/", Some(json!({"is_active": false})), "auth.change_user"),
        ("DELETE", "/auth/admin/users/{target}/", None, "auth.delete_user"),
    ]
}

/// An ordinary account `target`, and staff holding `perms`: (app, staff token, target id).
async fn access_world(perms: &[&str]) -> (TestApp, String, String) {
    let t = spawn_app(&[]);
    t.active_user("target@example.com").await;
    let (staff, _) = t.active_user("staff@example.com").await;
    t.make_staff_with("staff@example.com", perms).await;
    let target = t.user("target@example.com").await.id.to_string();
    (t, staff, target)
}

#[tokio::test]
async fn each_route_needs_its_own_permission() {
    let all = ["auth.view_user", "auth.add_user", "auth.change_user", "auth.delete_user"];
    for (method, path, body, perm) in routes() {
        let (t, staff, target) = access_world(&[perm]).await;
        let path = path.replace("{target}", &target);
        let r = t.call(method, &path, body.clone(), Some(&staff)).await;
        assert!(r.status.is_success(), "{method} {path} with {perm}: {} {}", r.status, r.body);

        let mut others: Vec<&str> = all.iter().copied().filter(|p| *p != perm).collect();
        others.extend(["auth.view_group", "auth.change_group", "auth.add_group", "auth.delete_group"]);
        let (t, staff, target) = access_world(&others).await;
        let path = path.replace("{target}", &target);
        let (before, mails) = (everyone(&t).await, t.mail.sent().len());
        let r = t.call(method, &path, body.clone(), Some(&staff)).await;
        assert_eq!((r.status, &r.body), (StatusCode::FORBIDDEN, &denied()), "{method} {path} without {perm}");
        assert_eq!(everyone(&t).await, before, "{method} {path}: a refusal wrote something");
        assert_eq!(t.mail.sent().len(), mails, "{method} {path}: a refusal sent mail");
    }
}

#[tokio::test]
async fn ordinary_users_and_strangers_see_no_admin_users_route() {
    let (t, _, target) = access_world(&[]).await;
    let (ada, _) = t.active_user("ada@example.com").await;
    let ada_id = t.user("ada@example.com").await.id.to_string();
    let before = everyone(&t).await;
    for (method, path, body, _) in routes() {
        // Another user's id, or the caller's own: the same 404.
        for id in [&target, &ada_id] {
            let path = path.replace("{target}", id);
            let r = t.call(method, &path, body.clone(), Some(&ada)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}: {}", r.body);
            let r = t.call(method, &path, body.clone(), None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        }
    }
    assert_eq!(everyone(&t).await, before);
    // Without HIDE_USERS the refusal says so.
    let t = spawn_app(&[("HIDE_USERS", "false")]);
    let (ada, _) = t.active_user("ada@example.com").await;
    let r = t.call("GET", "/auth/admin/users/", None, Some(&ada)).await;
    assert_eq!((r.status, r.body), (StatusCode::FORBIDDEN, denied()));
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let t = spawn_app(&[]);
    let root = superuser(&t, "root@example.com").await;
    for id in ["0192d7b0-0000-7000-8000-000000000001", "not-an-id", "%00", "..", "a%2Fb"] {
        for (method, body) in
            [("GET", None), ("PUT", Some(json!({}))), ("PATCH", Some(json!({"first_name": "x"}))), ("DELETE", None)]
        {
            let r = t.call(method, &format!("/auth/admin/users/{id}/"), body, Some(&root)).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {id}: {}", r.body);
        }
    }
}

#[tokio::test]
async fn staff_cannot_climb_and_superusers_can() {
    let perms = ["auth.view_user", "auth.add_user", "auth.change_user", "auth.delete_user"];
    let (t, staff, target) = access_world(&perms).await;
    let root = superuser(&t, "root@example.com").await;
    t.active_user("colleague@example.com").await;
    t.make_staff("colleague@example.com").await;
    let colleague = t.user("colleague@example.com").await.id.to_string();
    let root_id = t.user("root@example.com").await.id.to_string();
    let staff_id = t.user("staff@example.com").await.id.to_string();
    put_group(&t, "vault", &["auth.delete_group"]).await;
    put_group(&t, "open", &["auth.view_user"]).await;

    let new = |extra: Value| {
        let mut body = json!({"email": "climber@example.com", "password": PASSWORD, "is_active": true});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let refusals: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", "/auth/admin/users/".into(), Some(new(json!({"is_staff": true})))),
        ("POST", "/auth/admin/users/".into(), Some(new(json!({"is_staff": "on", "is_superuser": true})))),
        ("POST", "/auth/admin/users/".into(), Some(new(json!({"groups": ["open", "vault"]})))),
        ("PATCH", detail(&target), Some(json!({"is_staff": true}))),
        ("PATCH", detail(&target), Some(json!({"groups": ["vault"]}))),
        ("PUT", detail(&target), Some(json!({"groups": ["vault"]}))),
        // Itself: a staff account, changed only by superusers.
        ("PATCH", detail(&staff_id), Some(json!({"is_superuser": true, "groups": ["vault"]}))),
        ("PATCH", detail(&staff_id), Some(json!({"first_name": "Me"}))),
        ("DELETE", detail(&staff_id), None),
        // Other staff and superusers.
        ("PATCH", detail(&colleague), Some(json!({"is_active": false}))),
        ("PUT", detail(&colleague), Some(json!({"is_staff": false}))),
        ("DELETE", detail(&colleague), None),
        ("PATCH", detail(&root_id), Some(json!({"is_active": false}))),
        ("DELETE", detail(&root_id), None),
    ];
    for (method, path, body) in refusals {
        let (before, mails) = (everyone(&t).await, t.mail.sent().len());
        let r = t.call(method, &path, body.clone(), Some(&staff)).await;
        assert_eq!((r.status, &r.body), (StatusCode::FORBIDDEN, &denied()), "{method} {path} {body:?}");
        assert_eq!(everyone(&t).await, before, "{method} {path}: a refusal wrote something");
        assert_eq!(t.mail.sent().len(), mails);
    }

    // What staff may do: ordinary accounts, groups they could have made.
    let r = t.call("POST", "/auth/admin/users/", Some(new(json!({"groups": ["open"]}))), Some(&staff)).await;
    assert_eq!((r.status, &r.body["groups"]), (StatusCode::CREATED, &json!(["open"])), "{}", r.body);
    let r = t.call("PATCH", &detail(&target), Some(json!({"groups": ["open"], "last_name": "T"})), Some(&staff)).await;
    assert_eq!((r.status, &r.body["groups"]), (StatusCode::OK, &json!(["open"])), "{}", r.body);
    let r = t.call("PUT", &detail(&target), Some(json!({"is_staff": false})), Some(&staff)).await;
    assert_eq!(r.status, StatusCode::OK, "sending back the current is_staff is fine: {}", r.body);
    assert_eq!(r.body["last_name"], json!("T"), "PUT keeps omitted fields");

    // A superuser may do all of it.
    let r = t
        .call(
            "POST",
            "/auth/admin/users/",
            Some(json!({"email": "boss@example.com", "password": PASSWORD, "is_staff": true, "groups": ["vault"]})),
            Some(&root),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["is_staff"], &r.body["groups"]),
        (StatusCode::CREATED, &json!(true), &json!(["vault"])),
        "{}",
        r.body
    );
    let r = t
        .call(
            "PATCH",
            &detail(&target),
            Some(json!({"is_staff": true, "groups": ["vault"], "is_superuser": true})),
            Some(&root),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["is_staff"], &r.body["is_superuser"]),
        (StatusCode::OK, &json!(true), &json!(false)),
        "{}",
        r.body
    );
    let r = t.call("PATCH", &detail(&colleague), Some(json!({"is_active": false})), Some(&root)).await;
    assert_eq!((r.status, &r.body["is_active"]), (StatusCode::OK, &json!(false)));
    assert_eq!(t.call("DELETE", &detail(&colleague), None, Some(&root)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(t.call("DELETE", &detail(&staff_id), None, Some(&root)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(t.call("GET", &detail(&staff_id), None, Some(&root)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_asks_no_password_and_never_the_callers_own_account() {
    let (t, staff, target) = access_world(&["auth.delete_user", "auth.view_user"]).await;
    let root = superuser(&t, "root@example.com").await;
    let root_id = t.user("root@example.com").await.id.to_string();
    let (target_token, _) = t.login("target@example.com").await;

    for token in [&root, &staff] {
        let before = everyone(&t).await;
        let id = if token == &root { root_id.clone() } else { t.user("staff@example.com").await.id.to_string() };
        let r = t.call("DELETE", &detail(&id), None, Some(token)).await;
        assert_eq!((r.status, &r.body), (StatusCode::FORBIDDEN, &denied()), "own account");
        assert_eq!(everyone(&t).await, before);
    }

    let r = t.call("DELETE", &detail(&target), None, Some(&staff)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(t.call("GET", &detail(&target), None, Some(&staff)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(t.call("DELETE", &detail(&target), None, Some(&staff)).await.status, StatusCode::NOT_FOUND);
    let r = t.call("GET", "/auth/users/me/", None, Some(&target_token)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "its tokens stop working");
    // The address is free again.
    let r = t.post("/auth/users/", json!({"email": "target@example.com", "password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn an_admin_change_activates_a_pending_account_and_is_notified() {
    let t = spawn_app(&[("PROFILE_UPDATED_EMAIL", "true")]);
    let root = superuser(&t, "root@example.com").await;
    t.register("pending@example.com").await;
    let pending = t.user("pending@example.com").await;
    assert!(pending.expires_at.is_some());
    let r = t.call("PATCH", &detail(&pending.id), Some(json!({"is_active": true})), Some(&root)).await;
    assert_eq!((r.status, &r.body["is_active"]), (StatusCode::OK, &json!(true)), "{}", r.body);
    let stored = t.user("pending@example.com").await;
    assert_eq!((stored.is_active, stored.expires_at), (true, None), "its expiry ended");
    let notice = t.last_mail("pending@example.com");
    assert_eq!(notice.kind, gatehouse_core::ports::EmailKind::ProfileUpdated, "the activation is notified too");
    assert!(notice.text.contains("is_active"), "{}", notice.text);
    t.login("pending@example.com").await;
    let r = t.call("PUT", &detail(&pending.id), Some(json!({"first_name": "Pat"})), Some(&root)).await;
    assert_eq!((r.status, &r.body["first_name"], &r.body["is_active"]), (StatusCode::OK, &json!("Pat"), &json!(true)));
    let notice = t.last_mail("pending@example.com");
    assert_eq!(notice.kind, gatehouse_core::ports::EmailKind::ProfileUpdated);
}

/// The account with this address as the listing's `email` filter finds it: its ids (none, or one).
async fn listed(t: &TestApp, token: &str, email: &str) -> Vec<String> {
    let r = t.call("GET", &format!("/auth/admin/users/?email={email}"), None, Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    ids(&r.body)
}

#[tokio::test]
async fn a_superuser_creates_an_account_with_grants_of_its_own_that_open_routes() {
    let t = spawn_app(&[]);
    let root = superuser(&t, "root@example.com").await;
    t.register_permissions(&["shop.refund"]).await;
    let body = json!({
        "email": "desk@example.com", "password": PASSWORD, "is_active": true, "is_staff": true,
        "user_permissions": ["shop.refund", "auth.view_group", "shop.refund"],
    });
    let r = t.call("POST", "/auth/admin/users/", Some(body), Some(&root)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["user_permissions"], json!(["auth.view_group", "shop.refund"]));
    let stored = t.user("desk@example.com").await;
    let builtin = gatehouse_core::domain::Permission::builtin("auth.view_group").unwrap();
    let want: std::collections::BTreeMap<String, String> =
        [("auth.view_group".to_owned(), builtin.id), ("shop.refund".to_owned(), "p-shop.refund".to_owned())].into();
    assert_eq!(stored.user_permissions, want, "each grant names the permission as registered");
    let r = t.call("GET", &detail(&stored.id), None, Some(&root)).await;
    assert_eq!(r.body["user_permissions"], json!(["auth.view_group", "shop.refund"]));

    // Staff (made so by the superuser), its own grant of auth.view_group opens that route only.
    let (desk, _) = t.login("desk@example.com").await;
    assert_eq!(t.call("GET", "/auth/admin/groups/", None, Some(&desk)).await.status, StatusCode::OK);
    let r = t.call("GET", "/auth/admin/users/", None, Some(&desk)).await;
    assert_eq!((r.status, r.body), (StatusCode::FORBIDDEN, denied()));
    let r = t.call("GET", "/auth/users/me/has_permission/shop.refund/", None, Some(&desk)).await;
    assert_eq!(r.body, json!({"has_permission": true}));
    // An empty list grants nothing, and is no error.
    let body = json!({"email": "plain@example.com", "password": PASSWORD, "user_permissions": []});
    let r = t.call("POST", "/auth/admin/users/", Some(body), Some(&root)).await;
    assert_eq!((r.status, &r.body["user_permissions"]), (StatusCode::CREATED, &json!([])), "{}", r.body);
}

#[tokio::test]
async fn creating_with_an_unknown_permission_is_a_400_naming_it_and_creates_nothing() {
    let t = spawn_app(&[]);
    let root = superuser(&t, "root@example.com").await;
    t.register_permissions(&["shop.refund"]).await;
    let unknown = |c: &str| format!("Invalid permission \"{c}\" - object does not exist.");
    let cases = [
        (json!(["shop.refund", "shop.nope"]), json!({"user_permissions": [unknown("shop.nope")]})),
        // Every unknown one, in codename order.
        (json!(["shop.nope", "auth.nope"]), json!({"user_permissions": [unknown("auth.nope"), unknown("shop.nope")]})),
        (json!(["not a codename"]), json!({"user_permissions": [unknown("not a codename")]})),
        (json!("shop.refund"), json!({"user_permissions": ["Expected a list of items."]})),
        (json!([7]), json!({"user_permissions": ["Each item must be a permission codename."]})),
    ];
    let before = (everyone(&t).await, t.mail.sent().len());
    for (perms, expected) in cases {
        let body = json!({"email": "new@example.com", "password": PASSWORD, "user_permissions": perms});
        let r = t.call("POST", "/auth/admin/users/", Some(body), Some(&root)).await;
        assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &expected), "{perms}");
        assert_eq!((everyone(&t).await, t.mail.sent().len()), before, "{perms}: something was written or sent");
        assert_eq!(listed(&t, &root, "new@example.com").await, Vec::<String>::new());
    }
    // With other field errors, every one at once.
    let body = json!({"email": "new@example.com", "password": PASSWORD, "is_active": "maybe", "user_permissions": {}});
    let r = t.call("POST", "/auth/admin/users/", Some(body), Some(&root)).await;
    assert_eq!(
        (r.status, r.body),
        (
            StatusCode::BAD_REQUEST,
            json!({"is_active": ["Must be a valid boolean."], "user_permissions": ["Expected a list of items."]})
        )
    );
    assert_eq!((everyone(&t).await, t.mail.sent().len()), before);
}

#[tokio::test]
async fn staff_create_accounts_with_only_the_permissions_they_hold() {
    let (t, staff, _) = access_world(&["auth.add_user", "auth.view_user", "shop.refund"]).await;
    t.register_permissions(&["shop.refund", "shop.ship"]).await;
    put_group(&t, "till", &["shop.refund"]).await;
    put_group(&t, "dock", &["shop.ship"]).await;
    let new = |email: &str, extra: Value| {
        let mut body = json!({"email": email, "password": PASSWORD});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for extra in [
        json!({"user_permissions": ["shop.ship"]}),
        json!({"user_permissions": ["shop.refund", "shop.ship"]}),
        json!({"user_permissions": ["auth.delete_user"], "is_active": true}),
        json!({"user_permissions": ["shop.ship"], "groups": ["till"]}),
        json!({"user_permissions": ["shop.refund"], "groups": ["dock"]}),
    ] {
        let (before, mails) = (everyone(&t).await, t.mail.sent().len());
        let r =
            t.call("POST", "/auth/admin/users/", Some(new("climber@example.com", extra.clone())), Some(&staff)).await;
        assert_eq!((r.status, &r.body), (StatusCode::FORBIDDEN, &denied()), "{extra}");
        assert_eq!(everyone(&t).await, before, "{extra}: a refusal wrote something");
        assert_eq!(t.mail.sent().len(), mails, "{extra}: a refusal sent mail");
        assert_eq!(listed(&t, &staff, "climber@example.com").await, Vec::<String>::new());
    }
    // An unknown permission is a 400 for staff too, before the privilege rule.
    let r = t
        .call(
            "POST",
            "/auth/admin/users/",
            Some(new("x@example.com", json!({"user_permissions": ["shop.nope"]}))),
            Some(&staff),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    let r = t
        .call(
            "POST",
            "/auth/admin/users/",
            Some(new("till@example.com", json!({"user_permissions": ["shop.refund"], "groups": ["till"]}))),
            Some(&staff),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!((&r.body["user_permissions"], &r.body["groups"]), (&json!(["shop.refund"]), &json!(["till"])));
    assert_eq!(t.user("till@example.com").await.user_permissions.get("shop.refund").unwrap(), "p-shop.refund");

    // What staff hold through their own grants counts too.
    let root = superuser(&t, "root@example.com").await;
    let staff_id = t.user("staff@example.com").await.id;
    let r = t.call("PATCH", &detail(&staff_id), Some(json!({"user_permissions": ["shop.ship"]})), Some(&root)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (staff, _) = t.login("staff@example.com").await;
    let r = t
        .call(
            "POST",
            "/auth/admin/users/",
            Some(new("dock@example.com", json!({"user_permissions": ["shop.ship"]}))),
            Some(&staff),
        )
        .await;
    assert_eq!((r.status, &r.body["user_permissions"]), (StatusCode::CREATED, &json!(["shop.ship"])), "{}", r.body);
}
