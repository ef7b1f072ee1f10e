//! Reading and editing a user: `/auth/users/me/` and, for staff, `/auth/users/{id}/`.

use std::collections::BTreeMap;

use crate::domain::{Email, Group, User, Username};
use crate::mail::{self, Extras};
use crate::ports::{EmailKind, UpdateUserError};

use super::groups::{check_exist, lookup};
use super::permissions::{self, Held};
use super::register::{NAME_MAX, USERNAME_TAKEN};
use super::users::refused;
use super::{deliver, revoke_sessions, App, FieldErrors, Form, ServiceError};

/// Who edits an account, which decides what the edit may change.
#[derive(Clone, Copy, Debug)]
pub enum Editor<'a> {
    /// The account's owner (`/auth/users/me/`, or an ordinary user through its own id): names
    /// and username; `is_active`, `is_staff` and `groups` are read-only, hence ignored.
    Owner,
    /// A staff member (not superuser): also `is_active` and `groups`, of ordinary accounts only,
    /// and only for groups whose every permission it holds. It never changes `is_staff`, and
    /// never changes a staff or superuser account (its own included) at all.
    Staff(&'a User),
    /// A superuser: also `is_staff`, of any account.
    Superuser(&'a User),
}

impl<'a> Editor<'a> {
    /// The editor `actor` is through `/auth/users/{id}/`: a superuser, a staff member, or else
    /// the owner (an ordinary user reaches only its own account there).
    pub fn admin(actor: &'a User) -> Self {
        if actor.is_superuser {
            Self::Superuser(actor)
        } else if actor.is_staff {
            Self::Staff(actor)
        } else {
            Self::Owner
        }
    }

    /// Whether this editor may change `target` at all: staff never change staff or superusers.
    pub fn may_change(self, target: &User) -> Result<(), ServiceError> {
        match self {
            Self::Staff(actor) if target.is_privileged() => Err(refused(actor, "privileged_target")),
            _ => Ok(()),
        }
    }
}

pub const EMAIL_READ_ONLY: &str = "Use /auth/users/set_email/ to change the email address.";
pub const NOT_A_BOOL: &str = "Must be a valid boolean.";
pub const NOT_A_LIST: &str = "Expected a list of items but got type \"{kind}\".";

/// How often an update is re-applied after losing to a concurrent write.
const RETRIES: usize = 3;

/// A boolean as DRF's `BooleanField` spells it in text (any case): true/1/yes/on, false/0/no/off.
pub(crate) fn drf_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

pub(crate) fn flag(form: &Form, field: &str, errors: &mut FieldErrors) -> Option<bool> {
    match form.0.get(field)? {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::String(s) => match drf_bool(s) {
            Some(b) => Some(b),
            None => {
                errors.add(field, NOT_A_BOOL);
                None
            }
        },
        serde_json::Value::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => Some(n.as_u64() == Some(1)),
        _ => {
            errors.add(field, NOT_A_BOOL);
            None
        }
    }
}

pub(crate) fn group_names(form: &Form, errors: &mut FieldErrors) -> Option<Vec<String>> {
    let serde_json::Value::Array(items) = form.0.get("groups")? else {
        errors.add("groups", "Expected a list of items.");
        return None;
    };
    let mut names = Vec::new();
    for item in items {
        match item.as_str().map(str::trim) {
            Some(name) if !name.is_empty() && name.len() <= 150 && !name.chars().any(char::is_control) => {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
            _ => {
                errors.add("groups", "Each group must be a name of 1 to 150 characters.");
                return None;
            }
        }
    }
    Some(names)
}

/// The codenames of `user_permissions`, each once (a malformed one is an unknown permission).
pub(crate) fn codenames(form: &Form, errors: &mut FieldErrors) -> Option<Vec<String>> {
    let serde_json::Value::Array(items) = form.0.get("user_permissions")? else {
        errors.add("user_permissions", "Expected a list of items.");
        return None;
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        match item.as_str() {
            Some(c) if crate::domain::Permission::valid_codename(c) => {
                if !out.iter().any(|o| o == c) {
                    out.push(c.to_owned());
                }
            }
            Some(c) => {
                errors.add("user_permissions", format!("Invalid permission \"{c}\" - object does not exist."));
                return None;
            }
            None => {
                errors.add("user_permissions", "Each item must be a permission codename.");
                return None;
            }
        }
    }
    Some(out)
}

/// Settles a change of `user_permissions` sent by an admin: [`settle_grants`] from the grants
/// `current` has to those of `updated`.
async fn authorise_grants(
    app: &App,
    editor: Editor<'_>,
    current: &User,
    updated: &mut User,
    held: &mut Option<Held>,
) -> Result<(), ServiceError> {
    let admin = match editor {
        Editor::Owner => return Err(ServiceError::Internal("an owner changed permissions".into())),
        Editor::Staff(actor) | Editor::Superuser(actor) => actor,
    };
    settle_grants(app, admin, Some(current), &mut updated.user_permissions, held).await
}

/// Settles the grants `admin` gives an account (`grants`: codename to id, as sent), which holds
/// those of `current` now (`None`: a new account, holding none): each must be registered (400 on
/// `user_permissions` naming the others); a staff admin grants or takes away only permissions it
/// holds itself (403 `permission_not_held`); the grants then name the permissions as registered
/// now. A grant of `current` that no longer counts (its permission deleted, or deleted and
/// registered again) is no grant: sending its codename again is granting it, under the same rule.
/// `held` is what `admin` holds, when known already; computed here otherwise (and kept).
pub(crate) async fn settle_grants(
    app: &App,
    admin: &User,
    current: Option<&User>,
    grants: &mut BTreeMap<String, String>,
    held: &mut Option<Held>,
) -> Result<(), ServiceError> {
    let now_granted = current.map(|c| &c.user_permissions).into_iter().flat_map(BTreeMap::keys);
    let asked: Vec<String> = grants.keys().chain(now_granted).cloned().collect();
    let registry = permissions::registry_in(&*app.store, &asked).await?;
    let mut errors = FieldErrors::default();
    for c in grants.keys().filter(|c| !registry.iter().any(|p| &p.codename == *c)) {
        errors.add("user_permissions", format!("Invalid permission \"{c}\" - object does not exist."));
    }
    errors.finish()?;
    if held.is_none() {
        *held = Some(permissions::held(app, admin, None).await?);
    }
    let Some(held) = held.as_ref() else {
        return Err(ServiceError::Internal("what the admin holds went missing".into()));
    };
    for p in &registry {
        let granted_now = current.is_some_and(|c| c.grants(p));
        if granted_now != grants.contains_key(&p.codename) && !held.holds(&p.codename) {
            return Err(refused(admin, "permission_not_held"));
        }
    }
    for (codename, id) in grants.iter_mut() {
        if let Some(p) = registry.iter().find(|p| &p.codename == codename) {
            id.clone_from(&p.id);
        }
    }
    Ok(())
}

/// The user after applying the form: names and username for everyone; `is_active`, `is_staff`
/// and `groups` too for staff and superusers (read-only, hence ignored, for owners; whether the
/// change is allowed is `authorise`'s call). `is_superuser` is read-only for everyone: superusers
/// are made with `authctl`, never through the API.
fn apply(user: &User, form: &Form, editor: Editor<'_>) -> Result<User, ServiceError> {
    let admin = !matches!(editor, Editor::Owner);
    let mut errors = FieldErrors::default();
    let mut updated = user.clone();
    if let Some(v) = form.optional("first_name", NAME_MAX, &mut errors) {
        updated.first_name = v;
    }
    if let Some(v) = form.optional("last_name", NAME_MAX, &mut errors) {
        updated.last_name = v;
    }
    if let Some(v) = form.language(&mut errors) {
        updated.language = v;
    }
    if form.contains("username") {
        match form.optional("username", 150, &mut errors) {
            Some(raw) if !raw.is_empty() => match Username::parse(&raw) {
                Ok(u) => updated.username = Some(u),
                Err(msg) => errors.add("username", msg),
            },
            _ if !errors.has("username") => updated.username = None,
            _ => {}
        }
    }
    if let Some(raw) = form.optional("email", 254, &mut errors) {
        // A frontend may send the whole user back; the unchanged address is fine.
        if Email::parse(&raw).map(|e| e.normalised() != user.email.normalised()).unwrap_or(true) {
            errors.add("email", EMAIL_READ_ONLY);
        }
    }
    if admin {
        if let Some(v) = flag(form, "is_active", &mut errors) {
            updated.is_active = v;
        }
        if let Some(v) = flag(form, "is_staff", &mut errors) {
            updated.is_staff = v;
        }
        if let Some(v) = group_names(form, &mut errors) {
            updated.groups = v;
        }
        if let Some(v) = codenames(form, &mut errors) {
            // Ids are settled by `authorise_grants`: a grant kept keeps its own.
            updated.user_permissions = v
                .into_iter()
                .map(|c| (c.clone(), user.user_permissions.get(&c).cloned().unwrap_or_default()))
                .collect();
        }
    }
    errors.finish()?;
    Ok(updated)
}

/// Refuses (403) a change `editor` may not make, and (400) groups that do not exist; reads the
/// groups involved and the editor's own in one store call, only when groups were sent, keeping
/// what the editor holds in `held`. Returns the groups read: the memberships of `updated` are
/// granted those very groups. A membership of a group deleted (or deleted and made again) since
/// it was granted is no membership: naming that group again is joining it, under the same rule as
/// any other.
async fn authorise(
    app: &App,
    editor: Editor<'_>,
    current: &User,
    updated: &User,
    groups_sent: bool,
    held: &mut Option<Held>,
) -> Result<Option<Vec<Group>>, ServiceError> {
    if let Editor::Staff(actor) = editor {
        if updated.is_staff != current.is_staff || updated.is_superuser != current.is_superuser {
            return Err(refused(actor, "sets_staff_or_superuser"));
        }
    }
    if !groups_sent {
        return Ok(None);
    }
    let admin = match editor {
        Editor::Owner => return Err(ServiceError::Internal("an owner changed groups".into())),
        Editor::Staff(actor) | Editor::Superuser(actor) => actor,
    };
    let removed = current.groups.iter().filter(|g| !updated.groups.contains(g));
    let names: Vec<String> = updated.groups.iter().chain(removed).cloned().collect();
    let (found, admin_holds) = lookup(app, admin, &names).await?;
    // Joining or leaving a group: only one the editor could have made.
    let member_now = |name: &String| found.iter().any(|g| &g.name == name && current.member_of(g));
    let changed = |name: &String| member_now(name) != updated.groups.contains(name);
    let refuse = found.iter().any(|g| changed(&g.name) && !admin_holds.covers(g));
    *held = Some(admin_holds);
    if refuse {
        return Err(refused(admin, "permission_not_held"));
    }
    check_exist(&found, &updated.groups)?;
    Ok(Some(found))
}

/// The profile fields an edit may change, with their values (groups and grants in name order):
/// what a profile notice names and what the audit trail records.
pub fn profile_fields(u: &User) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    let mut groups = u.groups.clone();
    groups.sort();
    vec![
        ("first_name", json!(u.first_name)),
        ("last_name", json!(u.last_name)),
        ("username", json!(u.username.as_ref().map_or("", |n| n.as_str()))),
        ("language", json!(u.language)),
        ("is_active", json!(u.is_active)),
        ("is_staff", json!(u.is_staff)),
        ("groups", json!(groups)),
        ("user_permissions", json!(u.user_permissions.keys().collect::<Vec<_>>())),
    ]
}

/// The names of the profile fields that differ between `before` and `after`, in a fixed order:
/// what a profile notice names (never their values). Groups count as changed when the set of
/// names differs, not their order.
pub fn changed_fields(before: &User, after: &User) -> Vec<&'static str> {
    profile_fields(before)
        .into_iter()
        .zip(profile_fields(after))
        .filter_map(|((name, was), (_, is))| (was != is).then_some(name))
        .collect()
}

/// What follows a written change: the audit entry (`account.updated` by the owner,
/// `admin.user_updated` by an admin, with both values of each changed field) and the notice.
async fn changed(app: &App, editor: Editor<'_>, before: &User, after: &User) {
    use super::audit::{self, Event};
    let changes = audit::changes(Some(&profile_fields(before)), &profile_fields(after));
    if changes.as_object().is_some_and(|c| !c.is_empty()) {
        let event = match editor {
            Editor::Staff(admin) | Editor::Superuser(admin) if admin.id != after.id => {
                Event::new("admin.user_updated").by(admin)
            }
            Editor::Staff(admin) | Editor::Superuser(admin) => Event::new("account.updated").by(admin),
            Editor::Owner => Event::new("account.updated").by(after),
        };
        audit::record(app, event.to(&after.id).changes(changes)).await;
    }
    notify(app, before, after).await;
}

/// With `PROFILE_UPDATED_EMAIL`, tells the account's owner which fields of its profile changed,
/// at the address it has after the change. A failed send is logged and changes nothing else.
async fn notify(app: &App, before: &User, after: &User) {
    if !app.settings.profile_updated_email {
        return;
    }
    let fields = changed_fields(before, after);
    if fields.is_empty() {
        return;
    }
    let extras = Extras { changed_fields: Some(fields.join(", ")), ..Extras::default() };
    deliver(app, &mail::render(&app.settings, EmailKind::ProfileUpdated, after, extras), &after.id).await;
}

/// Updates `target` (PUT and PATCH alike: every field is optional) as `editor` may; a refusal is
/// decided before anything is written. Disabling an account ends all its sessions at once and
/// marks it deactivated (`deactivated_at`: it never activates itself by email again); making it
/// active again clears the mark. With `PROFILE_UPDATED_EMAIL`, a change is notified to the owner.
pub async fn update(app: &App, target: &User, form: &Form, editor: Editor<'_>) -> Result<User, ServiceError> {
    let mut current = target.clone();
    // The account before an activation by this change (see below), for the notice.
    let mut before_activation: Option<User> = None;
    for _ in 0..RETRIES {
        // Judged again on every attempt: the account may have become staff meanwhile.
        editor.may_change(&current)?;
        let mut updated = apply(&current, form, editor)?;
        let groups_sent = !matches!(editor, Editor::Owner) && form.contains("groups");
        // What the editor holds: read at most once per attempt, by whichever check needs it first.
        let mut held = None;
        if let Some(found) = authorise(app, editor, &current, &updated, groups_sent, &mut held).await? {
            updated.group_ids = updated
                .groups
                .iter()
                .filter_map(|n| found.iter().find(|g| &g.name == n).map(|g| (n.clone(), g.id.clone())))
                .collect();
        }
        if !matches!(editor, Editor::Owner) && form.contains("user_permissions") {
            authorise_grants(app, editor, &current, &mut updated, &mut held).await?;
        }
        if updated == current {
            if let Some(before) = &before_activation {
                changed(app, editor, before, &current).await;
            }
            return Ok(current);
        }
        let now = app.now();
        if !current.is_active && updated.is_active && current.expires_at.is_some() {
            // A never-activated account, activated by an admin: through the activation's own
            // atomic write, which also ends the expiry of the account and of its email and
            // username claims (an update alone would leave DynamoDB's TTL to delete the account,
            // and its address to be claimed again). The rest of the change is then applied to
            // the account as it is after that.
            activate_pending(app, &current, now).await?;
            before_activation = Some(current.clone());
            current = app.store.get_user(&current.id, now).await?.ok_or(ServiceError::NotFound)?;
            continue;
        }
        let disabling = current.is_active && !updated.is_active;
        if disabling {
            updated.tokens_valid_after = crate::policy::revocation_stamp(current.tokens_valid_after, now);
            updated.deactivated_at = Some(now);
        } else if updated.is_active {
            updated.deactivated_at = None;
        }
        match app.store.update_user(&current, &updated, now).await {
            Ok(version) => {
                updated.version = version;
                let revoked = if disabling { revoke_sessions(app, &current.id, None).await } else { Ok(()) };
                tracing::info!(event = "profile_update", outcome = "ok", user_id = %current.id, disabled = disabling);
                // Written, so notified, even if ending the sessions has to be retried.
                changed(app, editor, before_activation.as_ref().unwrap_or(&current), &updated).await;
                revoked?;
                return Ok(updated);
            }
            Err(UpdateUserError::UsernameTaken) => return Err(FieldErrors::single("username", USERNAME_TAKEN)),
            Err(UpdateUserError::Conflict) => {
                current = app.store.get_user(&current.id, now).await?.ok_or(ServiceError::NotFound)?;
            }
            Err(UpdateUserError::Store(e)) => return Err(e.into()),
        }
    }
    Err(ServiceError::Unavailable("account kept changing under concurrent writes".into()))
}

/// Activates a never-activated account as the activation link would (a fresh single-use code,
/// consumed at once by the store's atomic activation). An account activated meanwhile is fine.
async fn activate_pending(app: &App, user: &User, now: i64) -> Result<(), ServiceError> {
    let hash = crate::secrets::random_token()?;
    let code = crate::ports::CodeRecord {
        user_id: user.id.clone(),
        purpose: crate::domain::CodePurpose::Activation,
        hash: hash.clone(),
        expires_at: now + 60,
        attempts: 0,
        data: None,
        spent: false,
    };
    app.store.put_code(&code).await?;
    match app.store.activate(&user.id, &hash, now).await {
        Ok(()) | Err(crate::ports::ActivateError::NotActivatable) => Ok(()),
        Err(crate::ports::ActivateError::InvalidCode) => {
            Err(ServiceError::Unavailable("the activation did not take: try again".into()))
        }
        Err(crate::ports::ActivateError::Store(e)) => Err(e.into()),
    }
}
