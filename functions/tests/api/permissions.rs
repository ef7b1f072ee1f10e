//! The permission registry and access to the admin API by permission: each route is a
//! superuser's, or a staff member's holding that route's permission; deleting a permission makes
//! it grant nothing at once, and nothing brings old grants back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use common::denied;

use common::{spawn_app, TestApp};
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

/// A superuser (staff too, as `authctl createsuperuser` makes them) and its token.
async fn superuser(t: &TestApp, email: &str) -> String {
    let (token, _) = t.active_user(email).await;
    t.make_superuser(email).await;
    token
}

#[tokio::test]
async fn superusers_register_change_list_and_delete_permissions() {
    let t = spawn_app(&[]);
    let root = superuser(&t, "root@example.com").await;
    let refund = json!({"codename": "shop.refund_order", "name": "Can refund orders", "description": "Money back"});
    let r = t.call("POST", "/auth/admin/permissions/", Some(refund.clone()), Some(&root)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mut stored = refund.clone();
    stored["builtin"] = json!(false);
    assert_eq!(r.body, stored);
    let p = t.app.store.get_permissions(&["shop.refund_order".into()]).await.unwrap();
    assert_eq!((p.len(), p[0].name.as_str(), p[0].description.as_str()), (1, "Can refund orders", "Money back"));

    // Refusals, each a DRF field error naming the field, and nothing written.
    let taken = json!({"codename": ["permission with this codename already exists."]});
    let cases = [
        (refund.clone(), taken.clone()),
        (json!({"codename": "auth.view_user", "name": "Mine"}), taken),
        (json!({"name": "No codename"}), json!({"codename": ["This field is required."]})),
        (json!({"codename": "shop.ship"}), json!({"name": ["This field is required."]})),
    ];
    for (body, expected) in cases {
        let r = t.call("POST", "/auth/admin/permissions/", Some(body.clone()), Some(&root)).await;
        assert_eq!((r.status, &r.body), (StatusCode::BAD_REQUEST, &expected), "{body}");
    }
    for bad in ["shop", "shop.", ".refund", "1shop.refund", "shop.refund order", "shop/x.refund"] {
        let r =
            t.call("POST", "/auth/admin/permissions/", Some(json!({"codename": bad, "name": "x"})), Some(&root)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.body["codename"][0].as_str().unwrap().starts_with("Enter a codename"), "{bad}: {}", r.body);
    }
    let long = "x".repeat(256);
    let r = t
        .call("POST", "/auth/admin/permissions/", Some(json!({"codename": "shop.x", "name": long})), Some(&root))
        .await;
    assert_eq!(r.body, json!({"name": ["Ensure this field has no more than 255 characters."]}));
    assert_eq!(t.app.store.list_permissions().await.unwrap().len(), 1, "only the first registration was written");

    // The list: built-in ones and registered ones, in codename order.
    let r = t.call("GET", "/auth/admin/permissions/", None, Some(&root)).await;
    let list = r.body.as_array().unwrap();
    let codenames: Vec<&str> = list.iter().map(|p| p["codename"].as_str().unwrap()).collect();
    let mut sorted = codenames.clone();
    sorted.sort();
    assert_eq!(codenames, sorted);
    assert_eq!(list.len(), gatehouse_core::domain::Permission::builtins().count() + 1);
    assert!(list.iter().any(|p| p == &stored));
    let view = list.iter().find(|p| p["codename"] == "auth.view_group").unwrap();
    assert_eq!(
        view,
        &json!({"codename": "auth.view_group", "name": "Can view group", "description": "", "builtin": true})
    );

    // One permission, changed.
    let path = "/auth/admin/permissions/shop.refund_order/";
    assert_eq!(t.call("GET", path, None, Some(&root)).await.body, stored);
    let r = t.call("PATCH", path, Some(json!({"name": "Can refund", "codename": "shop.other"})), Some(&root)).await;
    assert_eq!(
        (r.status, &r.body["name"], &r.body["codename"]),
        (StatusCode::OK, &json!("Can refund"), &json!("shop.refund_order"))
    );
    assert_eq!(r.body["description"], "Money back", "PATCH keeps what it is not sent");
    let r = t.call("PUT", path, Some(json!({"name": "Refunds"})), Some(&root)).await;
    assert_eq!(
        r.body,
        json!({"codename": "shop.refund_order", "name": "Refunds", "description": "", "builtin": false})
    );
    let r = t.call("PUT", path, Some(json!({"description": "no name"})), Some(&root)).await;
    assert_eq!(r.body, json!({"name": ["This field is required."]}));
    assert_eq!(
        t.call("GET", "/auth/admin/permissions/shop.nope/", None, Some(&root)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.call("PATCH", "/auth/admin/permissions/shop.nope/", Some(json!({})), Some(&root)).await.status,
        StatusCode::NOT_FOUND
    );

    // Built-in permissions are never changed or deleted, not even by a superuser.
    let builtin = json!({"detail": "Built-in permissions cannot be changed or deleted.", "code": "builtin_permission"});
    for (method, body) in [("PUT", Some(json!({"name": "x"}))), ("PATCH", Some(json!({"name": "x"}))), ("DELETE", None)]
    {
        let r = t.call(method, "/auth/admin/permissions/auth.view_user/", body, Some(&root)).await;
        assert_eq!((r.status, &r.body), (StatusCode::FORBIDDEN, &builtin), "{method}");
    }
    assert_eq!(
        t.call("GET", "/auth/admin/permissions/auth.view_user", None, Some(&root)).await.body["name"],
        "Can view user"
    );

    assert_eq!(t.call("DELETE", path, None, Some(&root)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(t.call("DELETE", path, None, Some(&root)).await.status, StatusCode::NOT_FOUND);
    assert!(t.app.store.list_permissions().await.unwrap().is_empty());
}

/// Every admin route of groups and permissions, with the permission it needs and a body that
/// passes it (`{name}` and `{codename}` exist in [`access_world`]).
fn admin_routes() -> Vec<(&'static str, &'static str, Option<Value>, &'static str)> {
    vec![
        ("GET", "/auth/admin/groups/", None, "auth.view_group"),
        ("POST", "/auth/admin/groups/", Some(json!({"name": "new"})), "auth.add_group"),
        ("GET", "/auth/admin/groups/open/", None, "auth.view_group"),
        ("PUT", "/auth/admin/groups/open/", Some(json!({"description": "x"})), "auth.change_group"),
        ("PATCH", "/auth/admin/groups/open/", Some(json!({"description": "x"})), "auth.change_group"),
        ("DELETE", "/auth/admin/groups/open/", None, "auth.delete_group"),
        ("GET", "/auth/admin/permissions/", None, "auth.view_permission"),
        (
            "POST",
            "/auth/admin/permissions/",
            Some(json!({"codename": "shop.new", "name": "New"})),
            "auth.add_permission",
        ),
        ("GET", "/auth/admin/permissions/shop.refund/", None, "auth.view_permission"),
        ("PUT", "/auth/admin/permissions/shop.refund/", Some(json!({"name": "x"})), "auth.change_permission"),
        ("PATCH", "/auth/admin/permissions/shop.refund/", Some(json!({"name": "x"})), "auth.change_permission"),
        ("DELETE", "/auth/admin/permissions/shop.refund/", None, "auth.delete_permission"),
    ]
}

/// A registered `shop.refund`, a group `open` granting nothing, and staff holding `perms`.
async fn access_world(perms: &[&str]) -> (TestApp, String) {
    let t = spawn_app(&[]);
    t.register_permissions(&["shop.refund"]).await;
    let open = gatehouse_core::domain::Group {
        name: "open".into(),
        description: String::new(),
        permissions: vec![],
        id: "g-open".into(),
    };
    assert!(t.app.store.put_group(&open, true).await.unwrap());
    let (staff, _) = t.active_user("staff@example.com").await;
    t.make_staff_with("staff@example.com", perms).await;
    (t, staff)
}

#[tokio::test]
async fn each_admin_route_needs_its_own_permission() {
    let all: Vec<&str> = admin_routes().iter().map(|r| r.3).collect();
    for (method, path, body, perm) in admin_routes() {
        // Staff holding exactly the route's permission get through.
        let (t, staff) = access_world(&[perm]).await;
        let r = t.call(method, path, body.clone(), Some(&staff)).await;
        assert!(r.status.is_success(), "{method} {path} with {perm}: {} {}", r.status, r.body);
        // Staff holding every other permission do not, and nothing is written.
        let others: Vec<&str> = all.iter().copied().filter(|p| *p != perm).collect();
        let (t, staff) = access_world(&others).await;
        let before = (t.app.store.list_groups().await.unwrap(), t.app.store.list_permissions().await.unwrap());
        let r = t.call(method, path, body.clone(), Some(&staff)).await;
        assert_eq!((r.status, &r.body), (StatusCode::FORBIDDEN, &denied()), "{method} {path} without {perm}");
        let after = (t.app.store.list_groups().await.unwrap(), t.app.store.list_permissions().await.unwrap());
        assert_eq!(before, after, "{method} {path}: a refusal wrote something");
    }
}

#[tokio::test]
async fn a_permission_held_by_a_deleted_group_or_not_registered_opens_nothing() {
    for perms in [&["auth.view_group"][..], &["auth.view_group", "shop.refund"][..]] {
        let (t, staff) = access_world(perms).await;
        assert_eq!(t.call("GET", "/auth/admin/groups/", None, Some(&staff)).await.status, StatusCode::OK);
        // The group that grants it is deleted (by a superuser): the same token opens nothing.
        let root = superuser(&t, "root@example.com").await;
        let holder = "/auth/admin/groups/holds-staff@example.com/";
        assert_eq!(t.call("DELETE", holder, None, Some(&root)).await.status, StatusCode::NO_CONTENT);
        let r = t.call("GET", "/auth/admin/groups/", None, Some(&staff)).await;
        assert_eq!((r.status, r.body), (StatusCode::FORBIDDEN, denied()));
    }
    // A custom permission in a group, never registered (written straight into the store, as an
    // old table might hold it): has_permission answers false, and no staff route opens.
    let (t, staff) = access_world(&[]).await;
    let u = t.user("staff@example.com").await;
    let mut g = t.app.store.get_groups(&u.groups).await.unwrap().pop().unwrap();
    g.permissions = vec!["shop.unregistered".into()];
    assert!(t.app.store.put_group(&g, false).await.unwrap());
    let r = t.call("GET", "/auth/users/me/has_permission/shop.unregistered/", None, Some(&staff)).await;
    assert_eq!(r.body, json!({"has_permission": false}));
    let root = superuser(&t, "root@example.com").await;
    let r = t.call("GET", "/auth/users/me/has_permission/shop.unregistered/", None, Some(&root)).await;
    assert_eq!(r.body, json!({"has_permission": true}), "superusers hold every permission, registered or not");
}

#[tokio::test]
async fn deleting_a_permission_grants_nothing_at_once_and_registering_it_again_gives_nothing_back() {
    let t = spawn_app(&[]);
    let root = superuser(&t, "root@example.com").await;
    for body in [json!({"codename": "shop.refund", "name": "Refund"}), json!({"codename": "shop.ship", "name": "Ship"})]
    {
        assert_eq!(
            t.call("POST", "/auth/admin/permissions/", Some(body), Some(&root)).await.status,
            StatusCode::CREATED
        );
    }
    let desk = json!({"name": "desk", "permissions": ["shop.refund", "shop.ship"]});
    assert_eq!(t.call("POST", "/auth/admin/groups/", Some(desk), Some(&root)).await.status, StatusCode::CREATED);
    let (ada, _) = t.active_user("ada@example.com").await;
    let id = t.user("ada@example.com").await.id;
    let r = t.call("PATCH", &format!("/auth/users/{id}/"), Some(json!({"groups": ["desk"]})), Some(&root)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let has = |perm: &'static str| {
        let (t, ada) = (&t, ada.clone());
        async move { t.call("GET", &format!("/auth/users/me/has_permission/{perm}/"), None, Some(&ada)).await.body }
    };
    assert_eq!(has("shop.refund").await, json!({"has_permission": true}));

    assert_eq!(
        t.call("DELETE", "/auth/admin/permissions/shop.refund/", None, Some(&root)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(has("shop.refund").await, json!({"has_permission": false}));
    assert_eq!(has("shop.ship").await, json!({"has_permission": true}), "other grants stay");
    let r = t.call("GET", "/auth/admin/groups/desk/", None, Some(&root)).await;
    assert_eq!(r.body["permissions"], json!(["shop.ship"]), "taken from the group");

    // A sweep cut short (the group still names it), then the codename registered again: the
    // registration finishes the sweep first, so Ada does not get it back.
    let mut g = t.app.store.get_groups(&["desk".into()]).await.unwrap().pop().unwrap();
    g.permissions.push("shop.refund".into());
    assert!(t.app.store.put_group(&g, false).await.unwrap());
    let again = json!({"codename": "shop.refund", "name": "Refund, again"});
    assert_eq!(t.call("POST", "/auth/admin/permissions/", Some(again), Some(&root)).await.status, StatusCode::CREATED);
    assert_eq!(has("shop.refund").await, json!({"has_permission": false}));
    let r = t.call("GET", "/auth/admin/groups/desk/", None, Some(&root)).await;
    assert_eq!(r.body["permissions"], json!(["shop.ship"]));
}

#[tokio::test]
async fn staff_with_the_registry_permissions_cannot_climb() {
    // Staff that may add permissions and change groups still pass on only what they hold.
    let (t, staff) = access_world(&["auth.add_permission", "auth.change_group", "auth.view_group"]).await;
    let r = t
        .call("POST", "/auth/admin/permissions/", Some(json!({"codename": "shop.fly", "name": "Fly"})), Some(&staff))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "registering grants nothing by itself");
    for perm in ["shop.fly", "auth.delete_permission", "auth.add_group"] {
        let r = t.call("PATCH", "/auth/admin/groups/open/", Some(json!({"permissions": [perm]})), Some(&staff)).await;
        assert_eq!((r.status, &r.body), (StatusCode::FORBIDDEN, &denied()), "{perm}");
    }
    let r = t
        .call("PATCH", "/auth/admin/groups/open/", Some(json!({"permissions": ["auth.view_group"]})), Some(&staff))
        .await;
    assert_eq!(r.status, StatusCode::OK, "what it holds it may pass on: {}", r.body);
    let r = t.call("GET", "/auth/users/me/has_permission/shop.fly/", None, Some(&staff)).await;
    assert_eq!(r.body, json!({"has_permission": false}));
}

#[tokio::test]
async fn ordinary_users_and_strangers_see_no_registry_route() {
    let (t, _) = access_world(&[]).await;
    let (ada, _) = t.active_user("ada@example.com").await;
    for (method, path, body, _) in admin_routes() {
        let r = t.call(method, path, body.clone(), Some(&ada)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}: {}", r.body);
        assert_eq!(t.call(method, path, body, None).await.status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    assert_eq!(t.app.store.list_permissions().await.unwrap().len(), 1);
}

/// The admin API's path of the account with this email.
async fn admin_path(t: &TestApp, email: &str) -> String {
    format!("/auth/admin/users/{}/", t.user(email).await.id)
}

#[tokio::test]
async fn a_users_own_grants_count_while_that_very_permission_is_registered() {
    let t = spawn_app(&[]);
    let root = superuser(&t, "root@example.com").await;
    t.register_permissions(&["shop.refund"]).await;
    let (ada, _) = t.active_user("ada@example.com").await;
    let path = admin_path(&t, "ada@example.com").await;
    let has = |perm: &'static str| {
        let (t, ada) = (&t, ada.clone());
        async move { t.call("GET", &format!("/auth/users/me/has_permission/{perm}/"), None, Some(&ada)).await.body }
    };
    assert_eq!(has("shop.refund").await, json!({"has_permission": false}));

    // Unknown and malformed codenames are field errors naming them, and nothing is written.
    for (body, named) in [
        (json!({"user_permissions": ["shop.refund", "shop.nope"]}), "shop.nope"),
        (json!({"user_permissions": ["not a codename"]}), "not a codename"),
    ] {
        let r = t.call("PATCH", &path, Some(body), Some(&root)).await;
        let expected = format!("Invalid permission \"{named}\" - object does not exist.");
        assert_eq!((r.status, r.body), (StatusCode::BAD_REQUEST, json!({"user_permissions": [expected]})));
    }
    assert!(t.user("ada@example.com").await.user_permissions.is_empty());

    let r = t
        .call("PATCH", &path, Some(json!({"user_permissions": ["shop.refund", "auth.view_group"]})), Some(&root))
        .await;
    assert_eq!((r.status, &r.body["user_permissions"]), (StatusCode::OK, &json!(["auth.view_group", "shop.refund"])));
    assert_eq!(has("shop.refund").await, json!({"has_permission": true}));
    // Ada is not staff: her grant of auth.view_group opens no admin route.
    assert_eq!(t.call("GET", "/auth/admin/groups/", None, Some(&ada)).await.status, StatusCode::NOT_FOUND);
    // The owner cannot grant herself anything: the field is read-only on /auth/users/me/.
    let r = t.call("PATCH", "/auth/users/me/", Some(json!({"user_permissions": ["shop.refund"]})), Some(&ada)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.user("ada@example.com").await.user_permissions.len(), 2);

    // Deleted: it grants nothing at once and is not shown; registered again, it stays dead.
    assert_eq!(
        t.call("DELETE", "/auth/admin/permissions/shop.refund/", None, Some(&root)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(has("shop.refund").await, json!({"has_permission": false}));
    assert_eq!(t.call("GET", &path, None, Some(&root)).await.body["user_permissions"], json!(["auth.view_group"]));
    let again = json!({"codename": "shop.refund", "name": "Refund again"});
    assert_eq!(t.call("POST", "/auth/admin/permissions/", Some(again), Some(&root)).await.status, StatusCode::CREATED);
    assert_eq!(has("shop.refund").await, json!({"has_permission": false}), "an old grant never comes back");
    assert_eq!(t.call("GET", &path, None, Some(&root)).await.body["user_permissions"], json!(["auth.view_group"]));
    // Granted again, it counts.
    let r = t.call("PATCH", &path, Some(json!({"user_permissions": ["shop.refund"]})), Some(&root)).await;
    assert_eq!(r.body["user_permissions"], json!(["shop.refund"]));
    assert_eq!(has("shop.refund").await, json!({"has_permission": true}));
}

#[tokio::test]
async fn staff_grant_and_take_only_what_they_hold_and_their_own_grants_open_routes() {
    let (t, staff) = access_world(&["auth.change_user", "shop.refund"]).await;
    t.register_permissions(&["shop.ship"]).await;
    let root = superuser(&t, "root@example.com").await;
    t.active_user("ada@example.com").await;
    let path = admin_path(&t, "ada@example.com").await;
    let grant = |perms: Value| Some(json!({"user_permissions": perms}));
    let r = t.call("PATCH", &path, grant(json!(["shop.refund"])), Some(&staff)).await;
    assert_eq!((r.status, &r.body["user_permissions"]), (StatusCode::OK, &json!(["shop.refund"])), "held: passed on");
    for perms in [json!(["shop.refund", "shop.ship"]), json!(["auth.delete_user"])] {
        let before = t.user("ada@example.com").await;
        let r = t.call("PATCH", &path, grant(perms.clone()), Some(&staff)).await;
        assert_eq!((r.status, &r.body), (StatusCode::FORBIDDEN, &denied()), "{perms}");
        assert_eq!(t.user("ada@example.com").await, before, "{perms}: nothing written");
    }
    // A grant the staff member does not hold is not theirs to take away either.
    let r = t.call("PATCH", &path, grant(json!(["shop.refund", "shop.ship"])), Some(&root)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t.call("PATCH", &path, grant(json!(["shop.refund"])), Some(&staff)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t.call("PATCH", &path, grant(json!(["shop.ship"])), Some(&staff)).await;
    assert_eq!((r.status, &r.body["user_permissions"]), (StatusCode::OK, &json!(["shop.ship"])), "its own: taken away");

    // Staff whose own grant is a route's permission pass that route.
    let (t, staff) = access_world(&[]).await;
    let root = superuser(&t, "root@example.com").await;
    assert_eq!(t.call("GET", "/auth/admin/groups/", None, Some(&staff)).await.status, StatusCode::FORBIDDEN);
    let path = admin_path(&t, "staff@example.com").await;
    let r = t.call("PATCH", &path, grant(json!(["auth.view_group"])), Some(&root)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(t.call("GET", "/auth/admin/groups/", None, Some(&staff)).await.status, StatusCode::OK);
}
