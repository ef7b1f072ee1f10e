//! The permission registry (`/auth/admin/permissions/`) and access to the admin API by permission,
//! as Django's admin grants it: a superuser holds every permission, registered or not; a staff
//! member holds the registered permissions of the live groups it is a member of and its own live
//! grants ([`held_among`], the one computation of what an account holds); anybody else holds none
//! of the admin API.
//!
//! Deleting a permission makes it grant nothing at once (a permission counts only while it is
//! registered), then takes it from every group that names it. Registering a codename first takes
//! it from any group that still names it (a sweep cut short), so old grants never come back.

use std::collections::BTreeSet;

use crate::domain::{Group, Permission, User};
use crate::ports::{GroupStore, PermissionStore};

use super::auth::Caller;
use super::users::PERMISSION_DENIED;
use super::{App, FieldErrors, Form, ServiceError};

pub const VIEW_USER: &str = "auth.view_user";
pub const ADD_USER: &str = "auth.add_user";
pub const CHANGE_USER: &str = "auth.change_user";
pub const DELETE_USER: &str = "auth.delete_user";
pub const VIEW_GROUP: &str = "auth.view_group";
pub const ADD_GROUP: &str = "auth.add_group";
pub const CHANGE_GROUP: &str = "auth.change_group";
pub const DELETE_GROUP: &str = "auth.delete_group";
pub const VIEW_PERMISSION: &str = "auth.view_permission";
pub const ADD_PERMISSION: &str = "auth.add_permission";
pub const CHANGE_PERMISSION: &str = "auth.change_permission";
pub const DELETE_PERMISSION: &str = "auth.delete_permission";
pub const VIEW_AUDIT: &str = "auth.view_auditentry";

pub const PERMISSION_TAKEN: &str = "permission with this codename already exists.";
const CODENAME_FORMAT: &str =
    "Enter a codename of the form app_label.action: letters, digits and '_' (and '-' in the action), at most 100 characters each.";
const NAME_MAX: usize = 255;
const DESCRIPTION_MAX: usize = 1000;
/// Attempts at taking a deleted permission from a group that keeps changing meanwhile.
const SWEEP_RETRIES: usize = 3;

pub const BUILTIN_REFUSED: ServiceError = ServiceError::Forbidden {
    code: "builtin_permission",
    detail: "Built-in permissions cannot be changed or deleted.",
};

/// The registered permissions among `codenames`: the built-in ones, and those in the registry
/// (one store call, none when every one is built in).
pub(crate) async fn registered<'a>(
    app: &App,
    codenames: impl IntoIterator<Item = &'a String>,
) -> Result<BTreeSet<String>, ServiceError> {
    registered_in(&*app.store, codenames).await
}

/// [`registered`] over a store (authctl has no [`App`]).
pub async fn registered_in<'a, S: PermissionStore + ?Sized>(
    store: &S,
    codenames: impl IntoIterator<Item = &'a String>,
) -> Result<BTreeSet<String>, ServiceError> {
    Ok(registry_in(store, codenames).await?.into_iter().map(|p| p.codename).collect())
}

/// The registered permissions among `codenames`, as registered (with their ids): the built-in
/// ones, and those in the registry (one store call, none when every one is built in).
pub async fn registry_in<'a, S: PermissionStore + ?Sized>(
    store: &S,
    codenames: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<Permission>, ServiceError> {
    let mut found = Vec::new();
    let mut ask: Vec<String> = Vec::new();
    for c in codenames {
        if let Some(p) = Permission::builtin(c) {
            if !found.contains(&p) {
                found.push(p);
            }
        } else if !ask.contains(c) {
            ask.push(c.clone());
        }
    }
    if !ask.is_empty() {
        found.extend(store.get_permissions(&ask).await?);
    }
    Ok(found)
}

/// Takes from each user's `user_permissions` the grants that no longer count (the permission
/// deleted, or deleted and registered again): what the admin API shows. One registry read for
/// all of them, none when nobody has a grant.
pub async fn current_grants(app: &App, users: &mut [User]) -> Result<(), ServiceError> {
    let asked: Vec<String> = users.iter().flat_map(|u| u.user_permissions.keys().cloned()).collect();
    if asked.is_empty() {
        return Ok(());
    }
    let registry = registry_in(&*app.store, &asked).await?;
    for u in users.iter_mut() {
        let live: Vec<String> = registry.iter().filter(|p| u.grants(p)).map(|p| p.codename.clone()).collect();
        u.user_permissions.retain(|c, _| live.contains(c));
    }
    Ok(())
}

/// What an account holds: every permission (a superuser), or these codenames. The one answer to
/// "may this admin use, grant or take away that permission", computed by [`held_among`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Held {
    All,
    These(BTreeSet<String>),
}

impl Held {
    /// Whether every permission of `group` is held: the group is one the admin could have made.
    pub(crate) fn covers(&self, group: &Group) -> bool {
        group.permissions.iter().all(|p| self.holds(p))
    }

    /// Whether the permission `codename` is held: one the admin may use, grant or take away.
    pub(crate) fn holds(&self, codename: &str) -> bool {
        match self {
            Self::All => true,
            Self::These(held) => held.contains(codename),
        }
    }
}

/// What `user` holds, given groups read from the store (its own among them; any other group is
/// ignored): a superuser every permission, registered or not; anyone else the permissions of its
/// live groups and its own live grants (for a grant: that very permission), while registered.
/// With `only`, just that permission is looked at (held or not). One registry read, none when
/// there is nothing to look up or every permission looked up is built in.
pub(crate) async fn held_among(
    app: &App,
    user: &User,
    groups: &[Group],
    only: Option<&str>,
) -> Result<Held, ServiceError> {
    if user.is_superuser {
        return Ok(Held::All);
    }
    let wanted = |c: &String| only.is_none_or(|o| o == c);
    let via_groups: BTreeSet<String> = groups
        .iter()
        .filter(|g| user.member_of(g))
        .flat_map(|g| g.permissions.iter())
        .filter(|c| wanted(c))
        .cloned()
        .collect();
    let asked: Vec<&String> = via_groups.iter().chain(user.user_permissions.keys().filter(|c| wanted(c))).collect();
    let registry = registry_in(&*app.store, asked).await?;
    Ok(Held::These(
        registry
            .into_iter()
            .filter(|p| via_groups.contains(&p.codename) || user.grants(p))
            .map(|p| p.codename)
            .collect(),
    ))
}

/// What `user` holds (see [`held_among`]), reading its groups: one store call for them, none for
/// a superuser or an account in no group.
pub(crate) async fn held(app: &App, user: &User, only: Option<&str>) -> Result<Held, ServiceError> {
    if user.is_superuser {
        return Ok(Held::All);
    }
    let groups = if user.groups.is_empty() { Vec::new() } else { app.store.get_groups(&user.groups).await? };
    held_among(app, user, &groups, only).await
}

/// Whether `user` holds `perm` (see [`held_among`]).
pub(crate) async fn holds(app: &App, user: &User, perm: &str) -> Result<bool, ServiceError> {
    Ok(held(app, user, Some(perm)).await?.holds(perm))
}

/// Access to an admin route: a superuser, or a staff member holding `perm`. Anybody else gets
/// 404 under `HIDE_USERS` (nothing tells them the route exists), 403 otherwise; staff without the
/// permission 403.
pub async fn require(app: &App, caller: &Caller, perm: &'static str) -> Result<(), ServiceError> {
    if caller.user.is_superuser {
        return Ok(());
    }
    if !caller.user.is_staff {
        return Err(if app.settings.hide_users { ServiceError::NotFound } else { PERMISSION_DENIED });
    }
    if holds(app, &caller.user, perm).await? {
        Ok(())
    } else {
        tracing::warn!(event = "admin", outcome = "refused", reason = "permission_missing", perm, by = %caller.user.id);
        Err(PERMISSION_DENIED)
    }
}

/// Checks that every permission named is registered (groups and users may hold only those):
/// 400 on `field` naming each unknown one.
pub(crate) async fn check_registered(app: &App, field: &str, codenames: &[String]) -> Result<(), ServiceError> {
    let known = registered(app, codenames).await?;
    let mut errors = FieldErrors::default();
    for c in codenames.iter().filter(|c| !known.contains(*c)) {
        errors.add(field, format!("Invalid permission \"{c}\" - object does not exist."));
    }
    errors.finish()
}

/// Every registered permission, built-in ones included, in codename order.
pub async fn list(app: &App, caller: &Caller) -> Result<Vec<Permission>, ServiceError> {
    require(app, caller, VIEW_PERMISSION).await?;
    let mut all: Vec<Permission> = Permission::builtins().collect();
    all.extend(app.store.list_permissions().await?.into_iter().filter(|p| !Permission::is_builtin(&p.codename)));
    all.sort_by(|a, b| a.codename.cmp(&b.codename));
    Ok(all)
}

/// `name` and `description` from the form onto `base` (PUT: an omitted description is reset).
fn apply(base: Permission, form: &Form, require_all: bool) -> Result<Permission, ServiceError> {
    let mut errors = FieldErrors::default();
    let mut p = base;
    if require_all || form.contains("name") {
        if let Some(name) = form.required("name", &mut errors) {
            if name.chars().count() > NAME_MAX {
                errors.add("name", format!("Ensure this field has no more than {NAME_MAX} characters."));
            }
            p.name = name.trim().to_owned();
        }
    }
    match form.optional("description", DESCRIPTION_MAX, &mut errors) {
        Some(d) => p.description = d,
        None if require_all && !form.contains("description") => p.description = String::new(),
        None => {}
    }
    errors.finish()?;
    Ok(p)
}

pub async fn create(app: &App, caller: &Caller, form: &Form) -> Result<Permission, ServiceError> {
    require(app, caller, ADD_PERMISSION).await?;
    let mut errors = FieldErrors::default();
    let codename = form.required("codename", &mut errors);
    if codename.as_deref().is_some_and(|c| !Permission::valid_codename(c)) {
        errors.add("codename", CODENAME_FORMAT);
    }
    let base = Permission {
        codename: codename.clone().unwrap_or_default(),
        name: String::new(),
        description: String::new(),
        id: crate::secrets::random_id()?,
    };
    let applied = apply(base, form, true);
    errors.finish()?;
    let permission = applied?;
    if !register(&*app.store, &permission).await? {
        return Err(FieldErrors::single("codename", PERMISSION_TAKEN));
    }
    tracing::info!(event = "permission", outcome = "created", codename = %permission.codename, by = %caller.user.id);
    let made = super::audit::Event::new("admin.permission_created").by(&caller.user).object(&permission.codename);
    super::audit::record(app, made.changes(super::audit::changes(None, &audited(&permission)))).await;
    Ok(permission)
}

/// The registered permission `codename` (404 for any other).
async fn find(app: &App, codename: &str) -> Result<Permission, ServiceError> {
    find_in(&*app.store, codename).await?.ok_or(ServiceError::NotFound)
}

/// The registered permission `codename`, built in or in the registry.
pub async fn find_in<S: PermissionStore + ?Sized>(
    store: &S,
    codename: &str,
) -> Result<Option<Permission>, ServiceError> {
    if let Some(p) = Permission::builtin(codename) {
        return Ok(Some(p));
    }
    Ok(store.get_permissions(&[codename.to_owned()]).await?.pop())
}

/// Registers `permission`, for the API and authctl alike: false when the codename is built in or
/// registered already. Grants left by an earlier permission of this codename (a deletion's sweep
/// cut short) are taken from their groups first, so they do not come back with the new one.
pub async fn register<S: PermissionStore + GroupStore + ?Sized>(
    store: &S,
    permission: &Permission,
) -> Result<bool, ServiceError> {
    if find_in(store, &permission.codename).await?.is_some() {
        return Ok(false);
    }
    sweep(store, &permission.codename).await?;
    Ok(store.put_permission(permission, true).await?)
}

/// Deletes a registered (not built-in) permission and takes it from every group, for the API and
/// authctl alike: false when there was none.
pub async fn unregister<S: PermissionStore + GroupStore + ?Sized>(
    store: &S,
    codename: &str,
) -> Result<bool, ServiceError> {
    if !store.delete_permission(codename).await? {
        return Ok(false);
    }
    sweep(store, codename).await?;
    Ok(true)
}

pub async fn get(app: &App, caller: &Caller, codename: &str) -> Result<Permission, ServiceError> {
    require(app, caller, VIEW_PERMISSION).await?;
    find(app, codename).await
}

/// PUT (`partial = false`: `name` required, an omitted `description` reset) or PATCH. The
/// codename is the permission's identity and never changes (a `codename` in the body is ignored).
pub async fn update(
    app: &App,
    caller: &Caller,
    codename: &str,
    form: &Form,
    partial: bool,
) -> Result<Permission, ServiceError> {
    require(app, caller, CHANGE_PERMISSION).await?;
    let current = find(app, codename).await?;
    if Permission::is_builtin(codename) {
        return Err(BUILTIN_REFUSED);
    }
    let updated = apply(current.clone(), form, !partial)?;
    if updated == current {
        return Ok(current);
    }
    if !app.store.put_permission(&updated, false).await? {
        // Deleted since it was read.
        return Err(ServiceError::NotFound);
    }
    tracing::info!(event = "permission", outcome = "updated", codename = %codename, by = %caller.user.id);
    let changes = super::audit::changes(Some(&audited(&current)), &audited(&updated));
    let event = super::audit::Event::new("admin.permission_updated").by(&caller.user).object(codename);
    super::audit::record(app, event.changes(changes)).await;
    Ok(updated)
}

/// Deletes a permission: from then on it grants nothing (it is no longer registered), and it is
/// taken from every group that names it.
pub async fn delete(app: &App, caller: &Caller, codename: &str) -> Result<(), ServiceError> {
    require(app, caller, DELETE_PERMISSION).await?;
    if Permission::is_builtin(codename) {
        // Only after the permission check: a stranger learns nothing about the codename.
        return Err(BUILTIN_REFUSED);
    }
    if !unregister(&*app.store, codename).await? {
        return Err(ServiceError::NotFound);
    }
    tracing::info!(event = "permission", outcome = "deleted", codename = %codename, by = %caller.user.id);
    let gone = super::audit::Event::new("admin.permission_deleted").by(&caller.user).object(codename);
    super::audit::record(app, gone).await;
    Ok(())
}

/// Takes `codename` from every group that names it (each a conditional write on the group as read,
/// re-read and retried when the group changed meanwhile). A failure leaves the permission deleted,
/// and so granting nothing; registering the codename again finishes the sweep first.
async fn sweep<S: PermissionStore + GroupStore + ?Sized>(store: &S, codename: &str) -> Result<(), ServiceError> {
    for group in store.list_groups().await? {
        let mut current = group;
        for _ in 0..SWEEP_RETRIES {
            if !current.permissions.iter().any(|p| p == codename) {
                break;
            }
            let mut updated = current.clone();
            updated.permissions.retain(|p| p != codename);
            if store.put_group(&updated, false).await? {
                break;
            }
            match store.get_groups(std::slice::from_ref(&current.name)).await?.pop() {
                Some(g) => current = g,
                None => break,
            }
        }
    }
    Ok(())
}

/// A permission's fields as the audit trail records them.
fn audited(p: &Permission) -> Vec<(&'static str, serde_json::Value)> {
    vec![("name", serde_json::json!(p.name)), ("description", serde_json::json!(p.description))]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_permissions_are_the_builtin_ones() {
        let routes = [
            VIEW_USER,
            ADD_USER,
            CHANGE_USER,
            DELETE_USER,
            VIEW_GROUP,
            ADD_GROUP,
            CHANGE_GROUP,
            DELETE_GROUP,
            VIEW_PERMISSION,
            ADD_PERMISSION,
            CHANGE_PERMISSION,
            DELETE_PERMISSION,
            VIEW_AUDIT,
        ];
        let builtin: Vec<String> = Permission::builtins().map(|p| p.codename).collect();
        assert_eq!(routes.to_vec(), builtin);
    }
}
