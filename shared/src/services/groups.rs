//! Groups: the admin API (`/auth/admin/groups/`) and the membership checks other services call.
//!
//! Each route needs a superuser or a staff member holding its permission (`auth.view_group`,
//! `auth.add_group`, `auth.change_group`, `auth.delete_group`; see [`super::permissions`]). On
//! top of that staff cannot climb above what they hold: a staff member creates, alters or deletes
//! only groups whose every permission it holds itself (through a group it is a member of), before
//! and after the change, and adds or removes members (see `me::update`) only for such groups.
//! Superusers hold every permission. A group may hold registered permissions only.

use serde_json::Value;

use crate::domain::{Group, User};

use super::audit;
use super::auth::Caller;
use super::permissions::{self, Held};
use super::users::refused;
use super::{App, FieldErrors, Form, ServiceError};

pub const GROUP_TAKEN: &str = "group with this name already exists.";

/// A group's fields as the audit trail records them (permissions in codename order).
fn audited(g: &Group) -> Vec<(&'static str, Value)> {
    let mut permissions = g.permissions.clone();
    permissions.sort();
    vec![("description", Value::from(g.description.as_str())), ("permissions", Value::from(permissions))]
}

/// The groups of `names` that exist, and what `admin` holds ([`permissions::held_among`]), its
/// groups read in the same store call (none when nothing is to be read). `admin` is the acting
/// staff member or superuser.
pub(crate) async fn lookup(app: &App, admin: &User, names: &[String]) -> Result<(Vec<Group>, Held), ServiceError> {
    let mut wanted: Vec<String> = Vec::new();
    let own: &[String] = if admin.is_superuser { &[] } else { &admin.groups };
    for n in names.iter().chain(own) {
        if !wanted.contains(n) {
            wanted.push(n.clone());
        }
    }
    let found = if wanted.is_empty() { Vec::new() } else { app.store.get_groups(&wanted).await? };
    let held = permissions::held_among(app, admin, &found, None).await?;
    let named = found.into_iter().filter(|g| names.contains(&g.name)).collect();
    Ok((named, held))
}

fn names(value: &Value, field: &str, errors: &mut FieldErrors) -> Option<Vec<String>> {
    let Value::Array(items) = value else {
        errors.add(field, "Expected a list of items.");
        return None;
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        match item.as_str().map(str::trim) {
            Some(n) if Group::valid_name(n) => {
                if !out.iter().any(|o| o == n) {
                    out.push(n.to_owned());
                }
            }
            _ => {
                errors.add(field, "Each item must be a name of 1 to 150 characters, without '/'.");
                return None;
            }
        }
    }
    Some(out)
}

/// The group after applying the form to `base` (a new, empty group for POST).
fn apply(base: Group, form: &Form, require_all: bool) -> Result<Group, ServiceError> {
    let mut errors = FieldErrors::default();
    let mut group = base;
    if let Some(d) = form.optional("description", 1000, &mut errors) {
        group.description = d;
    }
    match form.0.get("permissions") {
        Some(v) => {
            if let Some(p) = names(v, "permissions", &mut errors) {
                group.permissions = p;
            }
        }
        None if require_all => group.permissions = Vec::new(),
        None => {}
    }
    errors.finish()?;
    Ok(group)
}

pub async fn list(app: &App, caller: &Caller) -> Result<Vec<Group>, ServiceError> {
    permissions::require(app, caller, permissions::VIEW_GROUP).await?;
    Ok(app.store.list_groups().await?)
}

pub async fn create(app: &App, caller: &Caller, form: &Form) -> Result<Group, ServiceError> {
    permissions::require(app, caller, permissions::ADD_GROUP).await?;
    let mut errors = FieldErrors::default();
    let name = form.required("name", &mut errors).map(|n| n.trim().to_owned());
    if name.as_deref().is_some_and(|n| !Group::valid_name(n)) {
        errors.add("name", "Enter a name of 1 to 150 characters, without '/'.");
    }
    errors.finish()?;
    let name = name.ok_or_else(|| ServiceError::Internal("validated name missing".into()))?;
    let id = crate::secrets::random_id()?;
    let group = apply(Group { name, description: String::new(), permissions: Vec::new(), id }, form, true)?;
    permissions::check_registered(app, "permissions", &group.permissions).await?;
    if !caller.user.is_superuser && !group.permissions.is_empty() {
        let held = permissions::held(app, &caller.user, None).await?;
        if !held.covers(&group) {
            return Err(refused(&caller.user, "permission_not_held"));
        }
    }
    if !app.store.put_group(&group, true).await? {
        return Err(FieldErrors::single("name", GROUP_TAKEN));
    }
    tracing::info!(event = "group", outcome = "created", by = %caller.user.id);
    let made = audit::Event::new("admin.group_created").by(&caller.user).object(&group.name);
    audit::record(app, made.changes(audit::changes(None, &audited(&group)))).await;
    Ok(group)
}

pub async fn get(app: &App, caller: &Caller, name: &str) -> Result<Group, ServiceError> {
    permissions::require(app, caller, permissions::VIEW_GROUP).await?;
    app.store.get_groups(&[name.to_owned()]).await?.pop().ok_or(ServiceError::NotFound)
}

/// The group `name` for an admin who may change it: one whose every permission the admin holds
/// (404 if there is none, 403 if it may not be touched).
async fn changeable(app: &App, caller: &Caller, name: &str) -> Result<(Group, Held), ServiceError> {
    let (mut found, held) = lookup(app, &caller.user, &[name.to_owned()]).await?;
    let group = found.pop().ok_or(ServiceError::NotFound)?;
    if !held.covers(&group) {
        return Err(refused(&caller.user, "permission_not_held"));
    }
    Ok((group, held))
}

/// PUT (`partial = false`: omitted fields reset) or PATCH. Staff change only groups whose
/// permissions they hold, and only into such groups.
pub async fn update(app: &App, caller: &Caller, name: &str, form: &Form, partial: bool) -> Result<Group, ServiceError> {
    permissions::require(app, caller, permissions::CHANGE_GROUP).await?;
    let (current, held) = changeable(app, caller, name).await?;
    let before = audited(&current);
    let group = apply(current, form, !partial)?;
    permissions::check_registered(app, "permissions", &group.permissions).await?;
    if !held.covers(&group) {
        return Err(refused(&caller.user, "permission_not_held"));
    }
    if !app.store.put_group(&group, false).await? {
        // Deleted (and perhaps made again) since it was read.
        return Err(ServiceError::NotFound);
    }
    tracing::info!(event = "group", outcome = "updated", by = %caller.user.id);
    let changes = audit::changes(Some(&before), &audited(&group));
    if changes.as_object().is_some_and(|c| !c.is_empty()) {
        let event = audit::Event::new("admin.group_updated").by(&caller.user).object(&group.name);
        audit::record(app, event.changes(changes)).await;
    }
    Ok(group)
}

/// Staff delete only groups whose permissions they hold.
pub async fn delete(app: &App, caller: &Caller, name: &str) -> Result<(), ServiceError> {
    permissions::require(app, caller, permissions::DELETE_GROUP).await?;
    if !caller.user.is_superuser {
        changeable(app, caller, name).await?;
    }
    if !app.store.delete_group(name).await? {
        return Err(ServiceError::NotFound);
    }
    tracing::info!(event = "group", outcome = "deleted", by = %caller.user.id);
    audit::record(app, audit::Event::new("admin.group_deleted").by(&caller.user).object(name)).await;
    Ok(())
}

/// Whether the caller is a member of the group `name` as it is now (it exists, and it is the
/// group the caller was made a member of, not an earlier one of that name).
pub async fn has_group(app: &App, caller: &Caller, name: &str) -> Result<bool, ServiceError> {
    if !caller.user.groups.iter().any(|g| g == name) {
        return Ok(false);
    }
    Ok(app.store.get_groups(&[name.to_owned()]).await?.iter().any(|g| caller.user.member_of(g)))
}

/// Whether one of the caller's groups grants `perm` while it is registered; superusers have every
/// permission, registered or not, as in Django.
pub async fn has_permission(app: &App, caller: &Caller, perm: &str) -> Result<bool, ServiceError> {
    permissions::holds(app, &caller.user, perm).await
}

/// Takes from each user's `groups` the names it is no longer a member of (the group was deleted,
/// or deleted and made again): what tokens, and the API's user bodies, carry. One read of the
/// groups named, none when nobody is in a group.
pub async fn current_memberships(app: &App, users: &mut [User]) -> Result<(), ServiceError> {
    let mut names: Vec<String> = Vec::new();
    for n in users.iter().flat_map(|u| u.groups.iter()) {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    let live = app.store.get_groups(&names).await?;
    for u in users.iter_mut() {
        let keep: Vec<String> = live.iter().filter(|g| u.member_of(g)).map(|g| g.name.clone()).collect();
        u.groups.retain(|n| keep.contains(n));
        u.group_ids.retain(|n, _| keep.contains(n));
    }
    Ok(())
}

/// Checks that every group named is among `found` (staff assigning groups).
pub(crate) fn check_exist(found: &[Group], names: &[String]) -> Result<(), ServiceError> {
    let mut errors = FieldErrors::default();
    for n in names {
        if !found.iter().any(|g| &g.name == n) {
            errors.add("groups", format!("Invalid group \"{n}\" - object does not exist."));
        }
    }
    errors.finish()
}
