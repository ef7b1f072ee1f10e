//! Groups, permissions and the staff admin API, and what staff may not do: climb above staff.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use common::denied;

use common::{spawn_app, TestApp, PASSWORD};
use gatehouse_core::domain::{Group, User};
use gatehouse_core::ports::Session;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};

/// Changes the stored user with this address, directly in the store.
async fn set_user(t: &TestApp, email: &str, change: impl FnOnce(&mut User)) {
    let u = t.user(email).await;
    let mut changed = u.clone();
    change(&mut changed);
    t.app.store.update_user(&u, &changed, t.clock_now()).await.unwrap();
}

#[tokio::test]
async fn admins_manage_groups_and_members_get_their_permissions() {
    let t = spawn_app(&[]);
    let (admin, _) = t.active_user("admin@example.com").await;
    let (ada, _) = t.active_user("ada@example.com").await;
    // A superuser: it grants permissions it does not get from a group.
    t.make_superuser("admin@example.com").await;
    // Groups hold registered permissions only.
    let body = json!({"name": "editors", "permissions": ["articles.edit", "articles.publish"]});
    let r = t.call("POST", "/auth/admin/groups/", Some(body), Some(&admin)).await;
    let unknown = |c: &str| format!("Invalid permission \"{c}\" - object does not exist.");
    assert_eq!(r.body, json!({"permissions": [unknown("articles.edit"), unknown("articles.publish")]}));
    for codename in ["articles.edit", "articles.publish", "articles.read"] {
        let r = t
            .call(
                "POST",
                "/auth/admin/permissions/",
                Some(json!({"codename": codename, "name": codename})),
                Some(&admin),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }

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
    let custom: Vec<&Value> =
        r.body.as_array().unwrap().iter().filter(|p| p["builtin"] == false).map(|p| &p["codename"]).collect();
    assert_eq!(custom, [&json!("articles.edit"), &json!("articles.publish"), &json!("articles.read")]);
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
async fn group_names_with_percent_signs_are_decoded_exactly_once() {
    let t = spawn_app(&[]);
    let (admin, _) = t.active_user("admin@example.com").await;
    t.make_superuser("admin@example.com").await;
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

// --- Staff cannot climb above staff -------------------------------------------------------------
//
// The world every case starts from: registered permissions tickets.read, tickets.write,
// vault.open and vault.close; groups `desk` (tickets.read, tickets.write), `held`
// (tickets.read), `vault` (vault.open), `empty` and `admins` (the group routes' permissions and
// auth.view_permission); accounts as `Who` says. `Staff` holds tickets.read and tickets.write
// (through `desk`), not vault.open.

/// Who acts, or is acted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    /// Staff and superuser, as `authctl createsuperuser` makes them.
    Root,
    /// A superuser without `is_staff`.
    OtherRoot,
    /// Staff, member of `desk` and `admins`.
    Staff,
    /// Another staff member, member of `vault` and `admins`.
    OtherStaff,
    /// An ordinary user in no group.
    Ada,
    /// An ordinary user in `vault`.
    Vic,
    /// The actor itself.
    Myself,
    /// No account: an id nobody has.
    Nobody,
}
use Who::*;

const ACCOUNTS: [Who; 6] = [Root, OtherRoot, Staff, OtherStaff, Ada, Vic];

impl Who {
    fn email(self) -> &'static str {
        match self {
            Root => "root@example.com",
            OtherRoot => "other-root@example.com",
            Staff => "staff@example.com",
            OtherStaff => "other-staff@example.com",
            Ada => "ada@example.com",
            Vic => "vic@example.com",
            Myself | Nobody => unreachable!("{self:?} has no address of its own"),
        }
    }
}

struct World {
    t: TestApp,
    tokens: Vec<(Who, String)>,
}

/// Makes `u` a member of the groups `names` as [`group`] makes them (ids `g-<name>`).
fn join(u: &mut gatehouse_core::domain::User, names: &[&str]) {
    u.groups = names.iter().map(|n| (*n).to_owned()).collect();
    u.group_ids = names.iter().map(|n| ((*n).to_owned(), format!("g-{n}"))).collect();
}

fn group(name: &str, permissions: &[&str]) -> Group {
    Group {
        name: name.to_owned(),
        description: String::new(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        id: format!("g-{name}"),
    }
}

/// What the `admins` group grants: the group routes and the registry's listing.
const GROUP_ADMIN: [&str; 5] =
    ["auth.view_group", "auth.add_group", "auth.change_group", "auth.delete_group", "auth.view_permission"];

async fn world(overrides: &[(&str, &str)]) -> World {
    let t = spawn_app(overrides);
    t.register_permissions(&["tickets.read", "tickets.write", "vault.open", "vault.close"]).await;
    for g in [
        group("desk", &["tickets.read", "tickets.write"]),
        group("held", &["tickets.read"]),
        group("vault", &["vault.open"]),
        group("empty", &[]),
        group("admins", &GROUP_ADMIN),
    ] {
        assert!(t.app.store.put_group(&g, true).await.unwrap());
    }
    let mut tokens = Vec::new();
    for who in ACCOUNTS {
        tokens.push((who, t.active_user(who.email()).await.0));
    }
    // Set after the tokens were issued: rights come from the stored account, not the claims.
    t.make_superuser(Root.email()).await;
    set_user(&t, OtherRoot.email(), |u| u.is_superuser = true).await;
    set_user(&t, Staff.email(), |u| {
        u.is_staff = true;
        join(u, &["desk", "admins"]);
    })
    .await;
    set_user(&t, OtherStaff.email(), |u| {
        u.is_staff = true;
        join(u, &["vault", "admins"]);
    })
    .await;
    set_user(&t, Vic.email(), |u| join(u, &["vault"])).await;
    World { t, tokens }
}

impl World {
    fn token(&self, who: Who) -> &str {
        &self.tokens.iter().find(|(w, _)| *w == who).unwrap().1
    }

    async fn id(&self, target: Who, actor: Who) -> String {
        match target {
            Nobody => gatehouse_core::domain::UserId::nil().to_string(),
            Myself => self.t.user(actor.email()).await.id.to_string(),
            who => self.t.user(who.email()).await.id.to_string(),
        }
    }

    /// Every user, group and session in the store.
    async fn snapshot(&self) -> (Vec<User>, Vec<Group>, Vec<Session>) {
        let now = self.t.clock_now();
        let (users, _) = self.t.app.store.list_users(None, 100, now).await.unwrap();
        let mut groups = self.t.app.store.list_groups().await.unwrap();
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        let mut sessions = Vec::new();
        for u in &users {
            sessions.extend(self.t.app.store.list_sessions(&u.id, now).await.unwrap());
        }
        (users, groups, sessions)
    }
}

fn not_found() -> Value {
    json!({"detail": "Not found.", "code": "not_found"})
}

/// A refusal: the DRF body (403, 404, or field errors for a 400), and nothing in the store changed.
async fn assert_refused(w: &World, r: &common::Reply, before: &(Vec<User>, Vec<Group>, Vec<Session>), what: &str) {
    match r.status {
        StatusCode::FORBIDDEN => assert_eq!(r.body, denied(), "{what}"),
        StatusCode::NOT_FOUND => assert_eq!(r.body, not_found(), "{what}"),
        _ => assert!(r.body.as_object().unwrap().values().all(Value::is_array), "{what}: {}", r.body),
    }
    assert!(w.snapshot().await == *before, "{what}: the store changed on a refusal");
}

#[tokio::test]
async fn non_staff_get_404_on_every_admin_route_or_403_without_hide_users_and_change_nothing() {
    for (hide, expected) in [("true", StatusCode::NOT_FOUND), ("false", StatusCode::FORBIDDEN)] {
        let w = world(&[("HIDE_USERS", hide)]).await;
        // A group staff made through the API, granting nothing: holding no permission is enough
        // to change it, so only the staff check stands between an ordinary user and it.
        let open = json!({"name": "open", "description": "Made by staff", "permissions": []});
        let r = w.t.call("POST", "/auth/admin/groups/", Some(open.clone()), Some(w.token(Staff))).await;
        assert_eq!((r.status, &r.body), (StatusCode::CREATED, &open));
        let (ada, vic, staff) = (w.id(Ada, Root).await, w.id(Vic, Root).await, w.id(Staff, Root).await);
        // Ada is in no group; Vic holds vault.open through `vault`, which is not staff either.
        for (actor, other) in [(Ada, &vic), (Vic, &ada)] {
            let user = |id: &str| format!("/auth/users/{id}/");
            let calls: Vec<(&str, String, Option<Value>)> = vec![
                ("GET", "/auth/admin/groups/".into(), None),
                ("GET", "/auth/admin/permissions/".into(), None),
                ("GET", "/auth/admin/groups/open/".into(), None),
                ("POST", "/auth/admin/groups/".into(), Some(json!({"name": "mine", "permissions": []}))),
                ("PUT", "/auth/admin/groups/open/".into(), Some(json!({"description": "Mine"}))),
                ("PATCH", "/auth/admin/groups/open/".into(), Some(json!({"description": "Mine"}))),
                ("DELETE", "/auth/admin/groups/open/".into(), None),
                ("PATCH", "/auth/admin/groups/vault/".into(), Some(json!({"description": "Mine"}))),
                ("DELETE", "/auth/admin/groups/vault/".into(), None),
                // Memberships and the other admin writes on accounts.
                ("PATCH", user(other), Some(json!({"groups": ["open"]}))),
                ("PATCH", user(other), Some(json!({"groups": []}))),
                ("PATCH", user(&staff), Some(json!({"groups": ["open", "desk"]}))),
                ("PATCH", user(other), Some(json!({"is_active": false}))),
                ("PATCH", user(other), Some(json!({"is_staff": true}))),
                ("PUT", user(other), Some(json!({"first_name": "Mine", "groups": ["open"]}))),
                ("DELETE", user(other), Some(json!({"current_password": PASSWORD}))),
                ("DELETE", user(&staff), Some(json!({"current_password": PASSWORD}))),
            ];
            for (method, path, body) in calls {
                let what = format!("{actor:?}: {method} {path} with HIDE_USERS={hide}");
                let before = w.snapshot().await;
                let r = w.t.call(method, &path, body, Some(w.token(actor))).await;
                assert_eq!(r.status, expected, "{what}: {}", r.body);
                assert_refused(&w, &r, &before, &what).await;
                assert_eq!(w.t.call(method, &path, None, None).await.status, StatusCode::UNAUTHORIZED, "{what}");
            }
        }
        // Read back: the group as staff made it, the accounts as the world made them.
        let stored = w.t.app.store.get_groups(&["open".to_owned(), "mine".to_owned()]).await.unwrap();
        assert_eq!(stored.len(), 1, "no group was made");
        assert_eq!((stored[0].description.as_str(), stored[0].permissions.len()), ("Made by staff", 0));
        let r = w.t.call("GET", "/auth/admin/groups/open/", None, Some(w.token(Staff))).await;
        assert_eq!((r.status, r.body), (StatusCode::OK, open));
        for who in [Ada, Vic, Staff] {
            let u = w.t.user(who.email()).await;
            assert!(u.is_active && u.first_name.is_empty() && !u.is_superuser, "{who:?}: {u:?}");
            assert!(!u.groups.contains(&"open".to_owned()), "{who:?} joined open");
        }
        assert!(!w.t.user(Ada.email()).await.is_staff);
        assert_eq!(w.t.user(Vic.email()).await.groups, ["vault"]);
        assert_eq!(w.t.user(Staff.email()).await.groups, ["desk", "admins"]);
    }
}

/// One request to `/auth/users/{id}/`.
#[derive(Debug)]
struct UserCase {
    actor: Who,
    method: &'static str,
    target: Who,
    body: Value,
    status: StatusCode,
}

fn uc(actor: Who, method: &'static str, target: Who, body: Value, status: u16) -> UserCase {
    let body = if method == "DELETE" { json!({"current_password": PASSWORD}) } else { body };
    UserCase { actor, method, target, body, status: StatusCode::from_u16(status).unwrap() }
}

async fn run_user_cases(cases: &[UserCase], overrides: &[(&str, &str)]) {
    for case in cases {
        let w = world(overrides).await;
        let what = format!("{case:?} with {overrides:?}");
        let path = format!("/auth/users/{}/", w.id(case.target, case.actor).await);
        let target_email = match case.target {
            Myself => Some(case.actor.email()),
            Nobody => None,
            who => Some(who.email()),
        };
        let before = w.snapshot().await;
        let r = w.t.call(case.method, &path, Some(case.body.clone()), Some(w.token(case.actor))).await;
        assert_eq!(r.status, case.status, "{what}: {}", r.body);
        if r.status.is_client_error() {
            assert_refused(&w, &r, &before, &what).await;
            continue;
        }
        let email = target_email.unwrap();
        if case.method == "DELETE" {
            let e = gatehouse_core::domain::Email::parse(email).unwrap();
            assert!(w.t.app.store.find_user_by_email(&e, w.t.clock_now()).await.unwrap().is_none(), "{what}");
            continue;
        }
        // What was asked is what is stored.
        let stored = w.t.user(email).await;
        for (field, value) in case.body.as_object().unwrap() {
            let got = match field.as_str() {
                "first_name" => json!(stored.first_name),
                "is_active" => json!(stored.is_active),
                "is_staff" => json!(stored.is_staff),
                "groups" => json!(stored.groups),
                other => panic!("{what}: no check for {other}"),
            };
            assert_eq!(&got, value, "{what}: {field}");
        }
    }
}

#[tokio::test]
async fn staff_edit_ordinary_accounts_within_what_they_hold() {
    run_user_cases(
        &[
            uc(Staff, "PATCH", Ada, json!({"first_name": "Ada"}), 200),
            uc(Staff, "PUT", Ada, json!({"first_name": "Ada"}), 200),
            uc(Staff, "PATCH", Ada, json!({"is_active": false}), 200),
            uc(Staff, "PATCH", Ada, json!({"is_staff": false}), 200), // unchanged: sending it back is fine
            uc(Staff, "PATCH", Ada, json!({"groups": ["held"]}), 200),
            uc(Staff, "PATCH", Ada, json!({"groups": ["desk", "empty"]}), 200),
            uc(Staff, "PATCH", Vic, json!({"first_name": "Vic"}), 200),
            uc(Staff, "PATCH", Vic, json!({"groups": ["vault", "held"]}), 200), // vault is not touched
            uc(Staff, "DELETE", Ada, Value::Null, 204),
            // Never is_staff, never a group carrying a permission not held, in or out.
            uc(Staff, "PATCH", Ada, json!({"is_staff": true}), 403),
            uc(Staff, "PUT", Ada, json!({"first_name": "Ada", "is_staff": true}), 403),
            uc(Staff, "PATCH", Ada, json!({"groups": ["vault"]}), 403),
            uc(Staff, "PATCH", Ada, json!({"groups": ["held", "vault"]}), 403),
            uc(Staff, "PATCH", Vic, json!({"groups": []}), 403),
            uc(Staff, "PATCH", Vic, json!({"groups": ["held"]}), 403),
            uc(Staff, "PATCH", Nobody, json!({"is_staff": true}), 404),
        ],
        &[],
    )
    .await;
}

#[tokio::test]
async fn staff_never_change_staff_or_superuser_accounts_their_own_included() {
    run_user_cases(
        &[
            uc(Staff, "PATCH", OtherStaff, json!({"first_name": "Other"}), 403),
            uc(Staff, "PATCH", OtherStaff, json!({"is_active": false}), 403),
            uc(Staff, "PATCH", OtherStaff, json!({"is_staff": false}), 403),
            uc(Staff, "PATCH", OtherStaff, json!({"groups": []}), 403),
            uc(Staff, "PUT", OtherStaff, json!({}), 403),
            uc(Staff, "DELETE", OtherStaff, Value::Null, 403),
            uc(Staff, "PATCH", Root, json!({"is_active": false}), 403),
            uc(Staff, "PATCH", Root, json!({"is_staff": false}), 403),
            uc(Staff, "PATCH", Root, json!({"first_name": "x\u{0}"}), 403), // refused before validation
            uc(Staff, "DELETE", Root, Value::Null, 403),
            uc(Staff, "PATCH", OtherRoot, json!({"is_active": false}), 403),
            uc(Staff, "DELETE", OtherRoot, Value::Null, 403),
            uc(Staff, "PATCH", Myself, json!({"first_name": "Me"}), 403),
            uc(Staff, "PATCH", Myself, json!({"groups": ["desk", "vault"]}), 403),
            uc(Staff, "PATCH", Myself, json!({"groups": ["desk", "held"]}), 403),
            uc(Staff, "PATCH", Myself, json!({"is_staff": false}), 403),
            uc(Staff, "DELETE", Myself, Value::Null, 403),
        ],
        &[],
    )
    .await;
}

#[tokio::test]
async fn superusers_change_anyone_and_grant_anything() {
    run_user_cases(
        &[
            uc(Root, "PATCH", Ada, json!({"is_staff": true}), 200),
            uc(Root, "PATCH", Ada, json!({"groups": ["vault"]}), 200),
            uc(Root, "PATCH", Vic, json!({"groups": []}), 200),
            uc(Root, "PATCH", OtherStaff, json!({"is_active": false}), 200),
            uc(Root, "PATCH", OtherStaff, json!({"is_staff": false, "groups": ["desk"]}), 200),
            uc(Root, "DELETE", OtherStaff, Value::Null, 204),
            uc(Root, "PATCH", OtherRoot, json!({"is_staff": true, "first_name": "Other"}), 200),
            uc(Root, "DELETE", OtherRoot, Value::Null, 204),
            uc(Root, "PATCH", Myself, json!({"groups": ["vault"]}), 200),
            // A superuser without is_staff is an admin too.
            uc(OtherRoot, "PATCH", Staff, json!({"is_staff": false}), 200),
            uc(OtherRoot, "PATCH", Ada, json!({"groups": ["vault", "desk"]}), 200),
            uc(OtherRoot, "DELETE", Root, Value::Null, 204),
            uc(Root, "PATCH", Ada, json!({"groups": ["nope"]}), 400),
        ],
        &[],
    )
    .await;
}

#[tokio::test]
async fn ordinary_users_reach_only_themselves_and_others_are_hidden_whether_or_not_they_exist() {
    let others = |status| {
        [Staff, Root, OtherRoot, Vic, Nobody]
            .into_iter()
            .flat_map(move |target| {
                [
                    uc(Ada, "PATCH", target, json!({"first_name": "x"}), status),
                    uc(Ada, "PATCH", target, json!({"is_staff": true}), status),
                    uc(Ada, "DELETE", target, Value::Null, status),
                ]
            })
            .collect::<Vec<_>>()
    };
    let mut own = others(404);
    own.push(uc(Ada, "PATCH", Myself, json!({"first_name": "Ada"}), 200));
    own.push(uc(Ada, "DELETE", Myself, Value::Null, 204));
    run_user_cases(&own, &[]).await;
    run_user_cases(&others(403), &[("HIDE_USERS", "false")]).await;
}

#[tokio::test]
async fn is_active_is_staff_groups_and_is_superuser_are_read_only_where_they_do_not_apply() {
    let w = world(&[]).await;
    let sent =
        json!({"first_name": "New", "is_active": false, "is_staff": true, "is_superuser": true, "groups": ["vault"]});
    // Through /me/ nobody sets them, superusers included (they are ignored, as DRF ignores
    // read-only fields); nor do ordinary users through their own id.
    for actor in [Ada, Staff, Root, OtherRoot] {
        let before = w.t.user(actor.email()).await;
        for method in ["PATCH", "PUT"] {
            let r = w.t.call(method, "/auth/users/me/", Some(sent.clone()), Some(w.token(actor))).await;
            assert_eq!(r.status, StatusCode::OK, "{actor:?} {method}: {}", r.body);
        }
        let after = w.t.user(actor.email()).await;
        assert_eq!(after.first_name, "New");
        assert_eq!(
            (after.is_active, after.is_staff, after.is_superuser, after.groups),
            (before.is_active, before.is_staff, before.is_superuser, before.groups),
            "{actor:?} through /me/"
        );
    }
    let ada = w.id(Ada, Ada).await;
    let r = w.t.call("PATCH", &format!("/auth/users/{ada}/"), Some(sent.clone()), Some(w.token(Ada))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stored = w.t.user(Ada.email()).await;
    assert!(stored.is_active && !stored.is_staff && !stored.is_superuser && stored.groups.is_empty());
    // is_superuser is made and unmade with authctl only: no one sets it through the API.
    let vic = w.id(Vic, Root).await;
    let other_root = w.id(OtherRoot, Root).await;
    for (actor, path, value) in [(Root, &vic, true), (Root, &other_root, false), (Staff, &vic, true)] {
        let r = w
            .t
            .call("PATCH", &format!("/auth/users/{path}/"), Some(json!({"is_superuser": value})), Some(w.token(actor)))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert!(!w.t.user(Vic.email()).await.is_superuser);
    assert!(w.t.user(OtherRoot.email()).await.is_superuser);
    // Deleting one's own account stays open to staff, through /me/.
    let r =
        w.t.call("DELETE", "/auth/users/me/", Some(json!({"current_password": PASSWORD})), Some(w.token(Staff))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

/// One request to the group admin routes: POST to the list (the name in the body), or to `group`.
#[derive(Debug)]
struct GroupCase {
    actor: Who,
    method: &'static str,
    group: &'static str,
    body: Option<Value>,
    status: StatusCode,
}

fn gc(actor: Who, method: &'static str, group: &'static str, body: Option<Value>, status: u16) -> GroupCase {
    GroupCase { actor, method, group, body, status: StatusCode::from_u16(status).unwrap() }
}

async fn run_group_cases(cases: &[GroupCase]) {
    for case in cases {
        let w = world(&[]).await;
        let what = format!("{case:?}");
        let path = if case.method == "POST" {
            "/auth/admin/groups/".to_owned()
        } else {
            format!("/auth/admin/groups/{}/", case.group)
        };
        let name = case.body.as_ref().and_then(|b| b["name"].as_str()).unwrap_or(case.group).to_owned();
        let before = w.snapshot().await;
        let r = w.t.call(case.method, &path, case.body.clone(), Some(w.token(case.actor))).await;
        assert_eq!(r.status, case.status, "{what}: {}", r.body);
        if r.status.is_client_error() {
            assert_refused(&w, &r, &before, &what).await;
            continue;
        }
        let stored = w.t.app.store.get_groups(&[name]).await.unwrap();
        match case.method {
            "DELETE" => assert!(stored.is_empty(), "{what}"),
            "GET" => {}
            _ => assert_eq!(r.body["permissions"], json!(stored[0].permissions), "{what}"),
        }
    }
}

#[tokio::test]
async fn staff_create_and_change_only_groups_whose_permissions_they_hold() {
    let perms = |p: &[&str], name: &str| Some(json!({"name": name, "permissions": p}));
    run_group_cases(&[
        gc(Staff, "POST", "", perms(&["tickets.read"], "new"), 201),
        gc(Staff, "POST", "", perms(&["tickets.read", "tickets.write"], "new"), 201),
        gc(Staff, "POST", "", Some(json!({"name": "new"})), 201),
        gc(Staff, "POST", "", perms(&["vault.open"], "new"), 403),
        gc(Staff, "POST", "", perms(&["tickets.read", "vault.open"], "new"), 403),
        gc(Staff, "POST", "", perms(&["vault.open"], "vault"), 403), // refused before the name is judged
        gc(Staff, "GET", "vault", None, 200),
        gc(Staff, "PATCH", "held", Some(json!({"description": "Readers"})), 200),
        gc(Staff, "PATCH", "held", Some(json!({"permissions": ["tickets.write"]})), 200),
        gc(Staff, "PUT", "held", Some(json!({"description": "Nothing"})), 200),
        gc(Staff, "PATCH", "held", Some(json!({"permissions": ["tickets.read", "vault.open"]})), 403),
        gc(Staff, "PUT", "held", Some(json!({"permissions": ["vault.open"]})), 403),
        gc(Staff, "PATCH", "desk", Some(json!({"permissions": ["tickets.read", "tickets.write", "vault.open"]})), 403),
        gc(Staff, "PATCH", "vault", Some(json!({"description": "Mine now"})), 403),
        gc(Staff, "PATCH", "vault", Some(json!({"permissions": []})), 403),
        gc(Staff, "PUT", "vault", Some(json!({})), 403),
        gc(Staff, "PATCH", "nope", Some(json!({})), 404),
        gc(Staff, "DELETE", "held", None, 204),
        gc(Staff, "DELETE", "empty", None, 204),
        gc(Staff, "DELETE", "vault", None, 403),
        gc(Staff, "DELETE", "nope", None, 404),
        // OtherStaff holds vault.open (through vault), and nothing else.
        gc(OtherStaff, "PATCH", "vault", Some(json!({"description": "Vault"})), 200),
        gc(OtherStaff, "POST", "", perms(&["vault.open"], "new"), 201),
        gc(OtherStaff, "DELETE", "held", None, 403),
        // Superusers hold every permission, but groups hold registered ones only.
        gc(Root, "POST", "", perms(&["vault.open", "anything.at_all"], "new"), 400),
        gc(Root, "POST", "", perms(&["vault.open", "tickets.read"], "new"), 201),
        gc(Root, "PATCH", "vault", Some(json!({"permissions": ["vault.open", "vault.close"]})), 200),
        gc(Root, "PUT", "desk", Some(json!({})), 200),
        gc(Root, "DELETE", "vault", None, 204),
        gc(OtherRoot, "PATCH", "held", Some(json!({"permissions": ["vault.open"]})), 200),
        // Ordinary users see no admin route (HIDE_USERS).
        gc(Ada, "POST", "", perms(&[], "new"), 404),
        gc(Ada, "PATCH", "held", Some(json!({})), 404),
        gc(Vic, "DELETE", "vault", None, 404),
    ])
    .await;
}

#[tokio::test]
async fn staff_hold_what_their_groups_grant_now_not_what_their_token_says() {
    let w = world(&[]).await;
    let staff = w.token(Staff).to_owned();
    let ada = w.id(Ada, Staff).await;
    let new = |name: &str| json!({"name": name, "permissions": ["tickets.read"]});
    assert_eq!(w.t.call("POST", "/auth/admin/groups/", Some(new("a")), Some(&staff)).await.status, StatusCode::CREATED);
    // A superuser takes Staff out of desk (not out of admins): the same token now holds no
    // tickets permission.
    let staff_id = w.id(Staff, Root).await;
    let r = w
        .t
        .call("PATCH", &format!("/auth/users/{staff_id}/"), Some(json!({"groups": ["admins"]})), Some(w.token(Root)))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let before = w.snapshot().await;
    let r = w.t.call("POST", "/auth/admin/groups/", Some(new("b")), Some(&staff)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = w.t.call("PATCH", &format!("/auth/users/{ada}/"), Some(json!({"groups": ["held"]})), Some(&staff)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_refused(&w, &r, &before, "after leaving desk").await;
    // A membership of a group that does not exist grants nothing.
    set_user(&w.t, Staff.email(), |u| join(u, &["ghost", "admins"])).await;
    assert_eq!(
        w.t.call("POST", "/auth/admin/groups/", Some(new("b")), Some(&staff)).await.status,
        StatusCode::FORBIDDEN
    );
    // Nor does a group made later under that name: a membership names the group it was granted.
    let r = w.t.call("POST", "/auth/admin/groups/", Some(new("ghost")), Some(w.token(Root))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        w.t.call("POST", "/auth/admin/groups/", Some(new("b")), Some(&staff)).await.status,
        StatusCode::FORBIDDEN
    );
    // Granted by a superuser, it counts.
    let staff_id = w.t.user(Staff.email()).await.id;
    let r =
        w.t.call(
            "PATCH",
            &format!("/auth/users/{staff_id}/"),
            Some(json!({"groups": ["ghost", "admins"]})),
            Some(w.token(Root)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(w.t.call("POST", "/auth/admin/groups/", Some(new("b")), Some(&staff)).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn deleting_a_group_takes_it_from_every_member_and_a_group_made_again_grants_them_nothing() {
    let t = spawn_app(&[]);
    let (root, _) = t.active_user("root@example.com").await;
    t.make_superuser("root@example.com").await;
    let (root, _) = (t.login("root@example.com").await.0, root);
    t.active_user("ada@example.com").await;
    let ada_id = t.user("ada@example.com").await.id;
    t.register_permissions(&["articles.publish"]).await;
    let editors = json!({"name": "editors", "permissions": ["articles.publish"]});
    assert_eq!(
        t.call("POST", "/auth/admin/groups/", Some(editors.clone()), Some(&root)).await.status,
        StatusCode::CREATED
    );
    let r = t.call("PATCH", &format!("/auth/users/{ada_id}/"), Some(json!({"groups": ["editors"]})), Some(&root)).await;
    assert_eq!(r.body["groups"], json!(["editors"]));
    let ada = t.login("ada@example.com").await.0;
    let has = |token: String, path: &'static str| {
        let t = &t;
        async move { t.call("GET", path, None, Some(&token)).await.body }
    };
    assert_eq!(
        has(ada.clone(), "/auth/users/me/has_permission/articles.publish/").await,
        json!({"has_permission": true})
    );

    // Deleted, then made again under the same name with the same permission.
    assert_eq!(t.call("DELETE", "/auth/admin/groups/editors/", None, Some(&root)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(t.call("POST", "/auth/admin/groups/", Some(editors), Some(&root)).await.status, StatusCode::CREATED);
    // Ada is a member of nothing: not in her profile, not in new tokens, not in any check.
    assert_eq!(t.call("GET", "/auth/users/me/", None, Some(&ada)).await.body["groups"], json!([]));
    assert_eq!(t.call("GET", &format!("/auth/users/{ada_id}/"), None, Some(&root)).await.body["groups"], json!([]));
    let listed = t.call("GET", "/auth/users/", None, Some(&root)).await.body;
    let row = listed["results"].as_array().unwrap().iter().find(|u| u["id"] == ada_id.as_str()).unwrap().clone();
    assert_eq!(row["groups"], json!([]));
    assert_eq!(
        has(ada.clone(), "/auth/users/me/has_permission/articles.publish/").await,
        json!({"has_permission": false})
    );
    assert_eq!(has(ada.clone(), "/auth/users/me/has_group/editors/").await, json!({"has_group": false}));
    let fresh = t.login("ada@example.com").await.0;
    let claims = t.app.tokens.verify(&fresh, gatehouse_core::tokens::TokenType::Access, t.clock_now()).await.unwrap();
    assert_eq!(claims.groups, Some(vec![]), "tokens issued afterwards do not carry it");
    // Granted again, it counts again.
    let r = t.call("PATCH", &format!("/auth/users/{ada_id}/"), Some(json!({"groups": ["editors"]})), Some(&root)).await;
    assert_eq!(r.body["groups"], json!(["editors"]));
    assert_eq!(has(fresh, "/auth/users/me/has_permission/articles.publish/").await, json!({"has_permission": true}));
}
