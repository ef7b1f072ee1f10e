//! The permission registry and grants: the same rules as the admin API (`services::permissions`),
//! over the table directly.

use gatehouse_core::domain::{Email, Group, Permission, User};
use gatehouse_core::ports::{GroupStore, PermissionStore, UpdateUserError, UserStore};
use gatehouse_core::services::audit::{self, Event};
use gatehouse_core::services::me;
use gatehouse_core::services::permissions;
use gatehouse_core::store::DynamoStore;
use serde_json::json;

use crate::args::Args;
use crate::commands::{email_arg, not_found};
use crate::env::{self, now};
use crate::Fail;

/// Attempts at a write that lost an optimistic-locking race.
const RETRIES: usize = 5;
/// Longest permission name (Django's).
const NAME_MAX: usize = 255;
const DESCRIPTION_MAX: usize = 1000;

pub async fn run(name: &str, args: &Args) -> Result<(), Fail> {
    match name {
        "permissions" => list(args).await,
        "add-permission" => add(args).await,
        "remove-permission" => remove(args).await,
        "grant-group" => membership(args, true).await,
        "revoke-group" => membership(args, false).await,
        "group-add-permission" => group_permission(args, true).await,
        "group-remove-permission" => group_permission(args, false).await,
        "grant-permission" => own_permission(args, true).await,
        "revoke-permission" => own_permission(args, false).await,
        other => Err(Fail::usage(format!("unknown command '{other}'"))),
    }
}

fn service(e: gatehouse_core::services::ServiceError) -> Fail {
    match e {
        gatehouse_core::services::ServiceError::Unavailable(why) => Fail::runtime(format!("store unavailable: {why}")),
        other => Fail::runtime(other.to_string()),
    }
}

fn required<'a>(args: &'a Args, name: &str) -> Result<&'a str, Fail> {
    args.value(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Fail::usage(format!("--{name} is required")))
}

fn codename_arg(args: &Args) -> Result<String, Fail> {
    let codename = required(args, "codename")?;
    if !Permission::valid_codename(codename) {
        return Err(Fail::usage(format!(
            "--codename '{codename}': must be app_label.action (letters, digits and _, and - in the action; at most 100 characters each)"
        )));
    }
    Ok(codename.to_owned())
}

async fn list(args: &Args) -> Result<(), Fail> {
    let store = env::store().await?;
    let mut all: Vec<Permission> = Permission::builtins().collect();
    all.extend(store.list_permissions().await?.into_iter().filter(|p| !Permission::is_builtin(&p.codename)));
    all.sort_by(|a, b| a.codename.cmp(&b.codename));
    for p in &all {
        let builtin = Permission::is_builtin(&p.codename);
        if args.switch("json") {
            let line = serde_json::json!({"codename": p.codename, "name": p.name, "description": p.description, "builtin": builtin});
            println!("{line}");
        } else {
            println!("{}\t{}{}", p.codename, p.name, if builtin { "\t(built in)" } else { "" });
        }
    }
    Ok(())
}

async fn add(args: &Args) -> Result<(), Fail> {
    let codename = codename_arg(args)?;
    let name = required(args, "name")?.to_owned();
    if name.chars().count() > NAME_MAX {
        return Err(Fail::usage(format!("--name: at most {NAME_MAX} characters")));
    }
    let description = args.value("description").unwrap_or("").to_owned();
    if description.chars().count() > DESCRIPTION_MAX {
        return Err(Fail::usage(format!("--description: at most {DESCRIPTION_MAX} characters")));
    }
    let store = env::store().await?;
    let id = gatehouse_core::secrets::random_id().map_err(|e| Fail::runtime(format!("random: {e}")))?;
    let permission = Permission { codename: codename.clone(), name, description, id };
    if !permissions::register(&store, &permission).await.map_err(service)? {
        return Err(Fail::refused(format!("the permission {codename} exists already")));
    }
    println!("registered {codename}");
    let fields = [("name", json!(permission.name)), ("description", json!(permission.description))];
    let made = Event::new("admin.permission_created").object(&codename).changes(audit::changes(None, &fields));
    env::audit(&store, made).await;
    Ok(())
}

async fn remove(args: &Args) -> Result<(), Fail> {
    let codename = codename_arg(args)?;
    if Permission::is_builtin(&codename) {
        return Err(Fail::refused(format!("{codename} is built in: it cannot be removed")));
    }
    let store = env::store().await?;
    if !permissions::unregister(&store, &codename).await.map_err(service)? {
        return Err(Fail::refused(format!("no permission {codename} is registered")));
    }
    println!("removed {codename}; no group grants it any more");
    env::audit(&store, Event::new("admin.permission_deleted").object(&codename)).await;
    Ok(())
}

async fn group_arg(store: &DynamoStore, args: &Args) -> Result<Group, Fail> {
    let name = required(args, "group")?;
    let found = store.get_groups(&[name.to_owned()]).await?.pop();
    found.ok_or_else(|| Fail::refused(format!("no group is named {name}")))
}

/// Makes the account a member of the group, or takes it out; nothing to do is fine (exit 0).
async fn membership(args: &Args, grant: bool) -> Result<(), Fail> {
    let email = email_arg(args)?;
    let store = env::store().await?;
    let group = group_arg(&store, args).await?;
    let updated = update_by_email(&store, &email, |u| {
        u.groups.retain(|g| g != &group.name);
        u.group_ids.remove(&group.name);
        if grant {
            u.groups.push(group.name.clone());
            u.group_ids.insert(group.name.clone(), group.id.clone());
        }
    })
    .await?;
    match (updated, grant) {
        (None, _) => {
            println!("nothing to do: {email} is {}a member of {}", if grant { "" } else { "not " }, group.name)
        }
        (Some(_), true) => println!("{email} is now a member of {}", group.name),
        (Some(_), false) => println!("{email} is no longer a member of {}", group.name),
    }
    Ok(())
}

/// Adds a registered permission to a group, or takes one from it; nothing to do is fine.
async fn group_permission(args: &Args, add: bool) -> Result<(), Fail> {
    let codename = codename_arg(args)?;
    let store = env::store().await?;
    if add && !permissions::registered_in(&store, [&codename]).await.map_err(service)?.contains(&codename) {
        return Err(Fail::refused(format!("no permission {codename} is registered (authctl add-permission)")));
    }
    for _ in 0..RETRIES {
        let current = group_arg(&store, args).await?;
        if current.permissions.contains(&codename) == add {
            println!("nothing to do: {} {} {codename}", current.name, if add { "grants" } else { "does not grant" });
            return Ok(());
        }
        let mut updated = current.clone();
        updated.permissions.retain(|p| p != &codename);
        if add {
            updated.permissions.push(codename.clone());
        }
        // Conditional on the group as read: not one deleted (and perhaps made again) meanwhile.
        if store.put_group(&updated, false).await? {
            let done = if add { "now grants" } else { "no longer grants" };
            println!("{} {done} {codename}", current.name);
            let sorted = |g: &Group| {
                let mut p = g.permissions.clone();
                p.sort();
                [("permissions", json!(p))]
            };
            let changes = audit::changes(Some(&sorted(&current)), &sorted(&updated));
            env::audit(&store, Event::new("admin.group_updated").object(&current.name).changes(changes)).await;
            return Ok(());
        }
    }
    Err(Fail::runtime("the group kept changing under concurrent writes; try again"))
}

/// Grants a registered permission to the account itself (its `user_permissions`), or takes it
/// away; nothing to do is fine.
async fn own_permission(args: &Args, grant: bool) -> Result<(), Fail> {
    let email = email_arg(args)?;
    let codename = codename_arg(args)?;
    let store = env::store().await?;
    let registered = permissions::registry_in(&store, [&codename]).await.map_err(service)?.pop();
    let permission = match (grant, registered) {
        (true, None) => {
            return Err(Fail::refused(format!("no permission {codename} is registered (authctl add-permission)")))
        }
        (_, p) => p,
    };
    let updated = update_by_email(&store, &email, |u| {
        u.user_permissions.remove(&codename);
        if let (true, Some(p)) = (grant, &permission) {
            u.user_permissions.insert(codename.clone(), p.id.clone());
        }
    })
    .await?;
    match (updated, grant) {
        (None, _) => println!("nothing to do: {email} {} {codename}", if grant { "holds" } else { "does not hold" }),
        (Some(_), true) => println!("{email} now holds {codename}"),
        (Some(_), false) => println!("{email} no longer holds {codename}"),
    }
    Ok(())
}

/// Applies `change` to the account with this email by an optimistic-locking write, re-read and
/// re-applied when somebody else wrote first (up to [`RETRIES`] attempts), and records it in the
/// audit trail; an account the change leaves as it is is not written (`None`). The account as
/// written otherwise.
async fn update_by_email(store: &DynamoStore, email: &Email, change: impl Fn(&mut User)) -> Result<Option<User>, Fail> {
    for _ in 0..RETRIES {
        let now = now();
        let current = store.find_user_by_email(email, now).await?.ok_or_else(|| not_found(email))?;
        let mut updated = current.clone();
        change(&mut updated);
        if updated == current {
            return Ok(None);
        }
        match store.update_user(&current, &updated, now).await {
            Ok(_) => {
                let changes = audit::changes(Some(&me::profile_fields(&current)), &me::profile_fields(&updated));
                env::audit(store, Event::new("admin.user_updated").to(&updated.id).changes(changes)).await;
                return Ok(Some(updated));
            }
            Err(UpdateUserError::Conflict) => continue,
            Err(UpdateUserError::UsernameTaken) => return Err(Fail::runtime("unexpected username conflict")),
            Err(UpdateUserError::Store(e)) => return Err(e.into()),
        }
    }
    Err(Fail::runtime("the account kept changing under concurrent writes; try again"))
}
