//! The registry and grant commands: the same rules as the admin API, over the table.

use gatehouse_core::domain::{Email, Group};
use gatehouse_core::ports::{GroupStore, PermissionStore, UserStore};

use crate::common::{code, now, stderr, stdout, Table};

const GOOD: &str = "correct horse battery";

fn group(name: &str, permissions: &[&str]) -> Group {
    Group {
        name: name.into(),
        description: String::new(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        id: format!("g-{name}"),
    }
}

async fn groups_of(t: &Table, email: &str) -> Vec<String> {
    t.store.find_user_by_email(&Email::parse(email).unwrap(), now()).await.unwrap().unwrap().groups
}

async fn permissions_of(t: &Table, name: &str) -> Vec<String> {
    t.store.get_groups(&[name.to_owned()]).await.unwrap().pop().unwrap().permissions
}

#[tokio::test]
async fn permissions_are_registered_listed_and_removed_as_the_api_does() {
    let t = Table::new("perms").await;
    let add = ["add-permission", "--codename", "shop.refund", "--name", "Can refund", "--description", "Money back"];
    let o = t.run(&add, &[]);
    assert_eq!((code(&o), stdout(&o).trim()), (0, "registered shop.refund"), "{}", stderr(&o));
    let stored = t.store.get_permissions(&["shop.refund".into()]).await.unwrap();
    assert_eq!((stored[0].name.as_str(), stored[0].description.as_str()), ("Can refund", "Money back"));
    // Taken, built in, malformed, incomplete.
    let o = t.run(&add, &[]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("exists already"), "{}", stderr(&o));
    let o = t.run(&["add-permission", "--codename", "auth.view_user", "--name", "Mine"], &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    for bad in
        [&["add-permission", "--codename", "shop", "--name", "x"][..], &["add-permission", "--codename", "shop.x"]]
    {
        assert_eq!(code(&t.run(bad, &[])), 2, "{bad:?}");
    }
    assert_eq!(t.store.list_permissions().await.unwrap().len(), 1);

    let o = t.run(&["permissions", "--json"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let listed: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let refund = listed.iter().find(|p| p["codename"] == "shop.refund").unwrap();
    assert_eq!(refund["builtin"], false);
    let builtin = listed.iter().filter(|p| p["builtin"] == true).count();
    assert_eq!(builtin, gatehouse_core::domain::Permission::builtins().count());
    let o = t.run(&["permissions"], &[]);
    assert!(stdout(&o).contains("auth.view_group\tCan view group\t(built in)"), "{}", stdout(&o));

    // Removing takes it from every group; built-in ones stay.
    assert!(t.store.put_group(&group("desk", &["shop.refund", "auth.view_group"]), true).await.unwrap());
    let o = t.run(&["remove-permission", "--codename", "auth.view_group"], &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let o = t.run(&["remove-permission", "--codename", "shop.refund"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(t.store.list_permissions().await.unwrap().is_empty());
    assert_eq!(permissions_of(&t, "desk").await, ["auth.view_group"]);
    assert_eq!(code(&t.run(&["remove-permission", "--codename", "shop.refund"], &[])), 3);
}

#[tokio::test]
async fn groups_grant_registered_permissions_and_accounts_join_and_leave_them() {
    let t = Table::new("grants").await;
    let o = t.run(&["createuser", "--email", "ada@example.com", "--password", GOOD], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(t.store.put_group(&group("desk", &[]), true).await.unwrap());

    // A permission must be registered before a group grants it.
    let grant = ["group-add-permission", "--group", "desk", "--codename", "shop.refund"];
    let o = t.run(&grant, &[]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("no permission shop.refund is registered"), "{}", stderr(&o));
    assert!(permissions_of(&t, "desk").await.is_empty());
    assert_eq!(code(&t.run(&["add-permission", "--codename", "shop.refund", "--name", "Refund"], &[])), 0);
    assert_eq!(code(&t.run(&grant, &[])), 0);
    let o = t.run(&grant, &[]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).starts_with("nothing to do"), "{}", stdout(&o));
    assert_eq!(permissions_of(&t, "desk").await, ["shop.refund"]);
    let o = t.run(&["group-add-permission", "--group", "desk", "--codename", "auth.view_group"], &[]);
    assert_eq!(code(&o), 0, "built-in permissions are registered: {}", stderr(&o));
    let o = t.run(&["group-remove-permission", "--group", "desk", "--codename", "shop.refund"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(permissions_of(&t, "desk").await, ["auth.view_group"]);
    assert_eq!(code(&t.run(&["group-add-permission", "--group", "nope", "--codename", "shop.refund"], &[])), 3);

    // Membership, with the group's id (a group made again later under that name grants nothing).
    let o = t.run(&["grant-group", "--email", "ADA@example.com", "--group", "desk"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(groups_of(&t, "ada@example.com").await, ["desk"]);
    let ada = t.store.find_user_by_email(&Email::parse("ada@example.com").unwrap(), now()).await.unwrap().unwrap();
    assert_eq!(ada.group_ids.get("desk").map(String::as_str), Some("g-desk"));
    assert!(stdout(&t.run(&["grant-group", "--email", "ada@example.com", "--group", "desk"], &[]))
        .starts_with("nothing to do"));
    assert_eq!(code(&t.run(&["grant-group", "--email", "ada@example.com", "--group", "nope"], &[])), 3);
    assert_eq!(code(&t.run(&["grant-group", "--email", "ghost@example.com", "--group", "desk"], &[])), 3);
    let o = t.run(&["revoke-group", "--email", "ada@example.com", "--group", "desk"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(groups_of(&t, "ada@example.com").await.is_empty());
    assert_eq!(code(&t.run(&["revoke-group", "--email", "ada@example.com"], &[])), 2, "--group is required");
}

#[tokio::test]
async fn an_accounts_own_permissions_are_granted_and_revoked() {
    let t = Table::new("ownperms").await;
    let o = t.run(&["createuser", "--email", "ada@example.com", "--password", GOOD], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let own = |t: &Table| {
        let store = t.store.clone();
        async move {
            let u = store.find_user_by_email(&Email::parse("ada@example.com").unwrap(), now()).await.unwrap().unwrap();
            u.user_permissions
        }
    };
    let grant = ["grant-permission", "--email", "ada@example.com", "--codename", "shop.refund"];
    let o = t.run(&grant, &[]);
    assert_eq!(code(&o), 3, "unregistered: {}", stderr(&o));
    assert!(own(&t).await.is_empty());
    assert_eq!(code(&t.run(&["add-permission", "--codename", "shop.refund", "--name", "Refund"], &[])), 0);
    assert_eq!(code(&t.run(&grant, &[])), 0);
    let registered = t.store.get_permissions(&["shop.refund".into()]).await.unwrap().pop().unwrap();
    assert_eq!(own(&t).await.get("shop.refund"), Some(&registered.id), "the grant names that very permission");
    assert!(stdout(&t.run(&grant, &[])).starts_with("nothing to do"));
    let o = t.run(&["grant-permission", "--email", "ada@example.com", "--codename", "auth.view_user"], &[]);
    assert_eq!(code(&o), 0, "built in: {}", stderr(&o));
    assert_eq!(
        code(&t.run(&["grant-permission", "--email", "ghost@example.com", "--codename", "shop.refund"], &[])),
        3
    );
    let o = t.run(&["revoke-permission", "--email", "ada@example.com", "--codename", "shop.refund"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(own(&t).await.keys().collect::<Vec<_>>(), ["auth.view_user"]);
    let o = t.run(&["revoke-permission", "--email", "ada@example.com", "--codename", "shop.refund"], &[]);
    assert!(stdout(&o).starts_with("nothing to do"), "{}", stdout(&o));
}

#[tokio::test]
async fn what_authctl_changes_is_in_the_audit_trail_as_authctls() {
    use gatehouse_core::domain::{AuditEntry, AuditStream};
    use gatehouse_core::ports::AuditStore;

    let t = Table::new("audit").await;
    let o = t.run(&["createuser", "--email", "ada@example.com", "--password", GOOD], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = t.run(&["add-permission", "--codename", "shop.refund", "--name", "Can refund"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = t.run(&["grant-permission", "--email", "ada@example.com", "--codename", "shop.refund"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Nothing to do: nothing recorded.
    let o = t.run(&["grant-permission", "--email", "ada@example.com", "--codename", "shop.refund"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = t.run(&["deactivate", "--email", "ada@example.com"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let ada = t.store.find_user_by_email(&Email::parse("ada@example.com").unwrap(), now()).await.unwrap().unwrap();
    let trail: Vec<AuditEntry> =
        t.store.audit_page(&AuditStream::Account(ada.id.clone()), None, 0, 100, now()).await.unwrap();
    let events: Vec<&str> = trail.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(events, ["admin.user_updated", "admin.user_updated", "admin.user_created"]);
    assert!(trail.iter().all(|e| e.via == "authctl" && e.actor.is_none() && e.target.as_ref() == Some(&ada.id)));
    assert_eq!(trail[0].changes, serde_json::json!({"is_active": {"from": true, "to": false}}));
    assert_eq!(trail[1].changes, serde_json::json!({"user_permissions": {"from": [], "to": ["shop.refund"]}}));
    assert!(trail[2].user_agent.as_deref().is_some_and(|ua| ua.starts_with("authctl ")));
    let today = AuditStream::Day(now().div_euclid(gatehouse_core::domain::DAY));
    let all = t.store.audit_page(&today, None, 0, 100, now()).await.unwrap();
    assert!(all.iter().any(|e| e.event == "admin.permission_created" && e.object.as_deref() == Some("shop.refund")));

    // A retention that is no duration is refused before anything is done.
    let o = t.run(&["logout-everywhere", "--email", "ada@example.com"], &[("AUDIT_RETENTION", "forever")]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("AUDIT_RETENTION"), "{}", stderr(&o));
}
