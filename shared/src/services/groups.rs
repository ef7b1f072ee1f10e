//! Groups and permissions: the staff admin API and the permission checks other services call.

use serde_json::Value;

use crate::domain::Group;

use super::auth::Caller;
use super::users::PERMISSION_DENIED;
use super::{App, FieldErrors, Form, ServiceError};

pub const GROUP_TAKEN: &str = "group with this name already exists.";

/// Staff only; others get 404 under `HIDE_USERS` (nothing tells them the route exists), else 403.
pub fn require_staff(app: &App, caller: &Caller) -> Result<(), ServiceError> {
    if caller.user.is_staff || caller.user.is_superuser {
        Ok(())
    } else if app.settings.hide_users {
        Err(ServiceError::NotFound)
    } else {
        Err(PERMISSION_DENIED)
    }
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
    require_staff(app, caller)?;
    Ok(app.store.list_groups().await?)
}

pub async fn create(app: &App, caller: &Caller, form: &Form) -> Result<Group, ServiceError> {
    require_staff(app, caller)?;
    let mut errors = FieldErrors::default();
    let name = form.required("name", &mut errors).map(|n| n.trim().to_owned());
    if name.as_deref().is_some_and(|n| !Group::valid_name(n)) {
        errors.add("name", "Enter a name of 1 to 150 characters, without '/'.");
    }
    errors.finish()?;
    let name = name.ok_or_else(|| ServiceError::Internal("validated name missing".into()))?;
    let group = apply(Group { name, description: String::new(), permissions: Vec::new() }, form, true)?;
    if !app.store.put_group(&group, true).await? {
        return Err(FieldErrors::single("name", GROUP_TAKEN));
    }
    tracing::info!(event = "group", outcome = "created", by = %caller.user.id);
    Ok(group)
}

pub async fn get(app: &App, caller: &Caller, name: &str) -> Result<Group, ServiceError> {
    require_staff(app, caller)?;
    app.store.get_groups(&[name.to_owned()]).await?.pop().ok_or(ServiceError::NotFound)
}

/// PUT (`partial = false`: omitted fields reset) or PATCH.
pub async fn update(app: &App, caller: &Caller, name: &str, form: &Form, partial: bool) -> Result<Group, ServiceError> {
    let current = get(app, caller, name).await?;
    let group = apply(current, form, !partial)?;
    app.store.put_group(&group, false).await?;
    tracing::info!(event = "group", outcome = "updated", by = %caller.user.id);
    Ok(group)
}

pub async fn delete(app: &App, caller: &Caller, name: &str) -> Result<(), ServiceError> {
    require_staff(app, caller)?;
    if !app.store.delete_group(name).await? {
        return Err(ServiceError::NotFound);
    }
    tracing::info!(event = "group", outcome = "deleted", by = %caller.user.id);
    Ok(())
}

/// Every permission named by any group, sorted.
pub async fn permissions(app: &App, caller: &Caller) -> Result<Vec<String>, ServiceError> {
    require_staff(app, caller)?;
    let mut all: Vec<String> = app.store.list_groups().await?.into_iter().flat_map(|g| g.permissions).collect();
    all.sort();
    all.dedup();
    Ok(all)
}

/// Whether the caller belongs to a group that exists.
pub async fn has_group(app: &App, caller: &Caller, name: &str) -> Result<bool, ServiceError> {
    if !caller.user.groups.iter().any(|g| g == name) {
        return Ok(false);
    }
    Ok(!app.store.get_groups(&[name.to_owned()]).await?.is_empty())
}

/// Whether one of the caller's groups grants `perm`; superusers have every permission.
pub async fn has_permission(app: &App, caller: &Caller, perm: &str) -> Result<bool, ServiceError> {
    if caller.user.is_superuser {
        return Ok(true);
    }
    let groups = app.store.get_groups(&caller.user.groups).await?;
    Ok(groups.iter().any(|g| g.permissions.iter().any(|p| p == perm)))
}

/// Checks that every group named exists (staff assigning groups).
pub async fn check_exist(app: &App, names: &[String]) -> Result<(), ServiceError> {
    let found = app.store.get_groups(names).await?;
    let mut errors = FieldErrors::default();
    for n in names {
        if !found.iter().any(|g| &g.name == n) {
            errors.add("groups", format!("Invalid group \"{n}\" - object does not exist."));
        }
    }
    errors.finish()
}
