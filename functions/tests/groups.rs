//! Groups, permissions and the staff admin API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::spawn_app;
use lambda_http::http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn staff_manage_groups_and_members_get_their_permissions() {
    let t = spawn_app(&[]);
    let (admin, _) = t.active_user("admin@example.com").await;
    let (ada, _) = t.active_user("ada@example.com").await;
    t.make_staff("admin@example.com").await;

    let body = json!({"name": "editors", "description": "Edit articles", "permissions": ["articles.edit", "articles.publish"]});
    let r = t.call("POST", "/auth/admin/groups/", Some(body.clone()), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body, body);
    let r = t.call("POST", "/auth/admin/groups/", Some(body), Some(&admin)).await;
    assert_eq!(r.body, json!({"name": ["group with this name already exists."]}));
    let r = t.call("POST", "/auth/admin/groups/", Some(json!({"name": "a/b", "permissions": "x"})), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let body = json!({"name": "readers", "permissions": ["articles.read"]});
    assert_eq!(t.call("POST", "/auth/admin/groups", Some(body), Some(&admin)).await.status, StatusCode::CREATED);

    let r = t.call("GET", "/auth/admin/groups/", None, Some(&admin)).await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    let r = t.call("GET", "/auth/admin/permissions/", None, Some(&admin)).await;
    assert_eq!(r.body, json!(["articles.edit", "articles.publish", "articles.read"]));
    let r = t.call("PATCH", "/auth/admin/groups/readers/", Some(json!({"description": "Read"})), Some(&admin)).await;
    assert_eq!(r.body, json!({"name": "readers", "description": "Read", "permissions": ["articles.read"]}));
    let r = t.call("PUT", "/auth/admin/groups/readers/", Some(json!({"description": "Nothing"})), Some(&admin)).await;
    assert_eq!(r.body["permissions"], json!([]), "PUT resets omitted fields");
    assert_eq!(t.call("GET", "/auth/admin/groups/nope/", None, Some(&admin)).await.status, StatusCode::NOT_FOUND);

    // Membership through /auth/users/{id}/, checks through /me/has_*.
    let id = t.user("ada@example.com").await.id;
    let r = t.call("PATCH", &format!("/auth/users/{id}/"), Some(json!({"groups": ["editors"]})), Some(&admin)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (ada, _) = (t.login("ada@example.com").await.0, ada);
    let has = |path: &'static str| {
        let t = &t;
        let ada = ada.clone();
        async move { t.call("GET", path, None, Some(&ada)).await.body }
    };
    assert_eq!(has("/auth/users/me/has_group/editors/").await, json!({"has_group": true}));
    assert_eq!(has("/auth/users/me/has_group/readers/").await, json!({"has_group": false}));
    assert_eq!(has("/auth/users/me/has_permission/articles.publish/").await, json!({"has_permission": true}));
    assert_eq!(has("/auth/users/me/has_permission/articles.read").await, json!({"has_permission": false}));
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&ada)).await.body["groups"], json!(["editors"]));
    let claims = t.app.tokens.verify(&ada, gatehouse_core::tokens::TokenType::Access, t.clock_now()).await.unwrap();
    assert_eq!(claims.groups, Some(vec!["editors".to_owned()]), "groups travel in access tokens");

    // A deleted group grants nothing any more.
    assert_eq!(
        t.call("DELETE", "/auth/admin/groups/editors/", None, Some(&admin)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(has("/auth/users/me/has_permission/articles.publish/").await, json!({"has_permission": false}));
    assert_eq!(has("/auth/users/me/has_group/editors/").await, json!({"has_group": false}));
    assert_eq!(t.call("DELETE", "/auth/admin/groups/editors/", None, Some(&admin)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn superusers_have_every_permission() {
    let t = spawn_app(&[]);
    t.active_user("root@example.com").await;
    let u = t.user("root@example.com").await;
    let mut su = u.clone();
    su.is_superuser = true;
    t.app.store.update_user(&u, &su, t.clock_now()).await.unwrap();
    let (root, _) = t.login("root@example.com").await;
    let r = t.call("GET", "/auth/users/me/has_permission/anything.at_all/", None, Some(&root)).await;
    assert_eq!(r.body, json!({"has_permission": true}));
}

#[tokio::test]
async fn non_staff_get_404_on_every_admin_route_or_403_without_hide_users() {
    for (hide, expected) in [("true", StatusCode::NOT_FOUND), ("false", StatusCode::FORBIDDEN)] {
        let t = spawn_app(&[("HIDE_USERS", hide)]);
        let (ada, _) = t.active_user("ada@example.com").await;
        let calls = [
            ("GET", "/auth/admin/groups/", None),
            ("POST", "/auth/admin/groups/", Some(json!({"name": "x"}))),
            ("GET", "/auth/admin/groups/x/", None),
            ("PUT", "/auth/admin/groups/x/", Some(json!({}))),
            ("PATCH", "/auth/admin/groups/x/", Some(json!({}))),
            ("DELETE", "/auth/admin/groups/x/", None),
            ("GET", "/auth/admin/permissions/", None),
        ];
        for (method, path, body) in calls {
            let r = t.call(method, path, body, Some(&ada)).await;
            assert_eq!(r.status, expected, "{method} {path} with HIDE_USERS={hide}");
            assert_eq!(t.call(method, path, None, None).await.status, StatusCode::UNAUTHORIZED);
        }
    }
}

#[tokio::test]
async fn group_names_with_percent_signs_are_decoded_exactly_once() {
    let t = spawn_app(&[]);
    let (admin, _) = t.active_user("admin@example.com").await;
    t.make_staff("admin@example.com").await;
    for name in ["50%41", "100%", "café"] {
        let r = t.call("POST", "/auth/admin/groups/", Some(json!({"name": name})), Some(&admin)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{name}: {}", r.body);
    }
    // Through the router, as a browser would encode the name in the URL.
    let r = t.call("GET", "/auth/admin/groups/50%2541/", None, Some(&admin)).await;
    assert_eq!((r.status, r.body["name"].clone()), (StatusCode::OK, json!("50%41")));
    let r = t.call("GET", "/auth/admin/groups/100%25", None, Some(&admin)).await;
    assert_eq!(r.body["name"], "100%");
    let r = t.call("GET", "/auth/admin/groups/caf%C3%A9", None, Some(&admin)).await;
    assert_eq!(r.body["name"], "café");
    // "50A" exists nowhere: a second decoding of 50%41 would have found nothing or the wrong group.
    assert_eq!(t.call("GET", "/auth/admin/groups/50A", None, Some(&admin)).await.status, StatusCode::NOT_FOUND);

    // Straight to the function, as API Gateway invokes it: pathParameters arrive decoded.
    let req = common::request(
        "GET",
        "/auth/admin/groups/50%2541",
        &[("authorization", &format!("Bearer {admin}"))],
        lambda_http::Body::Empty,
    );
    let params = std::collections::HashMap::from([("name".to_owned(), "50%41".to_owned())]);
    let req = lambda_http::RequestExt::with_path_parameters(req, params);
    let r = common::reply(gatehouse_functions::handlers::admin_groups_detail::handle(&t.app, req).await);
    assert_eq!((r.status, r.body["name"].clone()), (StatusCode::OK, json!("50%41")));
}
