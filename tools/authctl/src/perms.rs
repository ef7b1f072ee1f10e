//! The permission registry and grants: the same rules as the admin API (`services::permissions`),
//! over the table directly.

use gatehouse_core::domain::{Group, Permission, User};
use gatehouse_core::ports::{GroupStore, PermissionStore, UpdateUserError, UserStore};
use gatehouse_core::services::permissions;
use gatehouse_core::store::DynamoStore;

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
    for _ in 0..RETRIES {
        let now = now();
        let current = store.find_user_by_email(&email, now).await?.ok_or_else(|| not_found(&email))?;
        let mut updated: User = current.clone();
        updated.groups.retain(|g| g != &group.name);
        updated.group_ids.remove(&group.name);
        if grant {
            updated.groups.push(group.name.clone());
            updated.group_ids.insert(group.name.clone(), group.id.clone());
        }
        if updated == current {
            println!("nothing to do: {email} is {}a member of {}", if grant { "" } else { "not " }, group.name);
            return Ok(());
        }
        match store.update_user(&current, &updated, now).await {
            Ok(_) => {
                let done = if grant { "now a member of" } else { "no longer a member of" };
                println!("{email} is {done} {}", group.name);
                return Ok(());
            }
            Err(UpdateUserError::Conflict) => continue,
            Err(UpdateUserError::UsernameTaken) => return Err(Fail::runtime("unexpected username conflict")),
            Err(UpdateUserError::Store(e)) => return Err(e.into()),
        }
    }
    Err(Fail::runtime("the account kept changing under concurrent writes; try again"))
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
    for _ in 0..RETRIES {
        let now = now();
        let current = store.find_user_by_email(&email, now).await?.ok_or_else(|| not_found(&email))?;
        let mut updated: User = current.clone();
        updated.user_permissions.remove(&codename);
        if let (true, Some(p)) = (grant, &permission) {
            updated.user_permissions.insert(codename.clone(), p.id.clone());
        }
        if updated == current {
            println!("nothing to do: {email} {} {codename}", if grant { "holds" } else { "does not hold" });
            return Ok(());
        }
        match store.update_user(&current, &updated, now).await {
            Ok(_) => {
                let done = if grant { "now holds" } else { "no longer holds" };
                println!("{email} {done} {codename}");
                return Ok(());
            }
            Err(UpdateUserError::Conflict) => continue,
            Err(UpdateUserError::UsernameTaken) => return Err(Fail::runtime("unexpected username conflict")),
            Err(UpdateUserError::Store(e)) => return Err(e.into()),
        }
    }
    Err(Fail::runtime("the account kept changing under concurrent writes; try again"))
}
