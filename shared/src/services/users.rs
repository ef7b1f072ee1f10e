//! `GET /auth/users/`, `GET/PUT/PATCH/DELETE /auth/users/{id}/` and `DELETE /auth/users/me/`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::config::DeleteMeMode;
use crate::domain::{Email, User, UserId};
use crate::ports::UpdateUserError;

use super::auth::Caller;
use super::me::{self, Editor};
use super::passwords::check_current_password;
use super::{App, ClientInfo, FieldErrors, Form, ServiceError};

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 200;

pub const PERMISSION_DENIED: ServiceError =
    ServiceError::Forbidden { code: "permission_denied", detail: "You do not have permission to perform this action." };

/// A refusal of an admin action (403 `permission_denied`), logged with its reason.
pub(crate) fn refused(by: &User, reason: &'static str) -> ServiceError {
    tracing::warn!(event = "admin", outcome = "refused", reason, by = %by.id);
    PERMISSION_DENIED
}

/// A page of users.
pub struct Page {
    pub users: Vec<User>,
    /// Cursor of the next page, if any.
    pub next: Option<String>,
    pub limit: usize,
}

/// The query of a listing.
#[derive(Default)]
pub struct ListQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
    pub email: Option<String>,
}

pub(crate) fn encode_cursor(id: &UserId) -> String {
    URL_SAFE_NO_PAD.encode(id.as_str())
}

fn decode_cursor(raw: &str) -> Option<UserId> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    UserId::parse(std::str::from_utf8(&bytes).ok()?)
}

/// The page size and the position of a listing from its `limit` and `cursor` (400 naming each
/// bad one in `errors`): the default size when `limit` is absent, the start when `cursor` is.
pub(crate) fn page_bounds(
    limit: Option<&str>,
    cursor: Option<&str>,
    errors: &mut FieldErrors,
) -> (usize, Option<UserId>) {
    page_bounds_by(limit, cursor, errors, decode_cursor)
}

/// [`page_bounds`] for a listing whose cursor `decode` reads.
pub(crate) fn page_bounds_by<T>(
    limit: Option<&str>,
    cursor: Option<&str>,
    errors: &mut FieldErrors,
    decode: impl Fn(&str) -> Option<T>,
) -> (usize, Option<T>) {
    let limit = match limit.map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            errors.add("limit", format!("Ensure this value is an integer between 1 and {MAX_LIMIT}."));
            0
        }
    };
    let after = match cursor {
        None | Some("") => None,
        Some(raw) => match decode(raw) {
            Some(position) => Some(position),
            None => {
                errors.add("cursor", "Invalid cursor.");
                None
            }
        },
    };
    (limit, after)
}

/// Staff see every user; others see only themselves under `HIDE_USERS` (default), as djoser.
pub async fn list(app: &App, caller: &Caller, q: &ListQuery) -> Result<Page, ServiceError> {
    let mut errors = FieldErrors::default();
    let (limit, after) = page_bounds(q.limit.as_deref(), q.cursor.as_deref(), &mut errors);
    errors.finish()?;
    let now = app.now();
    let sees_all = caller.user.is_privileged() || !app.settings.hide_users;
    if let Some(raw) = q.email.as_deref().filter(|e| !e.is_empty()) {
        let found = match Email::parse(raw) {
            Ok(e) => app.store.find_user_by_email(&e, now).await?,
            Err(_) => None,
        };
        let users = found.into_iter().filter(|u| sees_all || u.id == caller.user.id).collect();
        return Ok(Page { users, next: None, limit });
    }
    if !sees_all {
        let users = if after.is_none() { vec![caller.user.clone()] } else { Vec::new() };
        return Ok(Page { users, next: None, limit });
    }
    let (users, next) = app.store.list_users(after.as_ref(), limit, now).await?;
    Ok(Page { users, next: next.as_ref().map(encode_cursor), limit })
}

/// The user `id`, if the caller may see it: staff (or superusers), or themselves. Others get 404
/// under `HIDE_USERS` (nothing tells them the account exists), 403 otherwise, whether or not it
/// exists.
pub async fn target(app: &App, caller: &Caller, id: &str) -> Result<User, ServiceError> {
    let Some(id) = UserId::parse(id) else {
        return Err(ServiceError::NotFound);
    };
    if id == caller.user.id {
        return Ok(caller.user.clone());
    }
    if !caller.user.is_privileged() {
        return Err(if app.settings.hide_users { ServiceError::NotFound } else { PERMISSION_DENIED });
    }
    app.store.get_user(&id, app.now()).await?.ok_or(ServiceError::NotFound)
}

/// Updates a user the caller may see, within what the caller may change (`me::Editor`): an
/// ordinary user its names and username; staff also `is_active` and `groups` of ordinary
/// accounts (not their own: staff accounts are changed only by superusers); superusers anything
/// but `is_superuser`.
pub async fn update(app: &App, caller: &Caller, id: &str, form: &Form) -> Result<User, ServiceError> {
    let user = target(app, caller, id).await?;
    me::update(app, &user, form, Editor::admin(&caller.user)).await
}

/// Deletes a user the caller may see; the caller confirms with their own `current_password`.
/// Staff delete only ordinary accounts (a staff or superuser account, their own included, only
/// a superuser deletes here); the refusal comes before the password is checked.
pub async fn delete(
    app: &App,
    caller: &Caller,
    client: &ClientInfo,
    id: &str,
    form: &Form,
) -> Result<(), ServiceError> {
    let user = target(app, caller, id).await?;
    Editor::admin(&caller.user).may_change(&user)?;
    remove(app, caller, client, &user, form).await
}

/// `DELETE /auth/users/me/`: anyone, staff included, may delete their own account.
pub async fn delete_me(app: &App, caller: &Caller, client: &ClientInfo, form: &Form) -> Result<(), ServiceError> {
    remove(app, caller, client, &caller.user, form).await
}

/// Deletes `user` once the caller's `current_password` is confirmed: the user, its claims, codes
/// and sessions go. A caller removing their own account (through `/auth/users/me/` or their own
/// id) under `DELETE_ME_MODE=deactivate` is deactivated instead: the account and its claims are
/// kept, inactive and marked deactivated, and every token, session and code of it is revoked.
async fn remove(app: &App, caller: &Caller, client: &ClientInfo, user: &User, form: &Form) -> Result<(), ServiceError> {
    let mut errors = FieldErrors::default();
    check_current_password(app, caller, client, form, &mut errors).await?;
    if errors.is_empty() {
        super::mfa::step_up_second_factor(app, caller, client, form, &mut errors).await?;
    }
    errors.finish()?;
    if user.id == caller.user.id && app.settings.delete_me_mode == DeleteMeMode::Deactivate {
        return deactivate_self(app, user).await;
    }
    erase(app, user, &caller.user).await
}

/// Removes `user` with its claims, codes and sessions, as `by` asked (a deletion already
/// authorised). An account changed since it was read is not removed (503: the retry judges it
/// again).
pub(crate) async fn erase(app: &App, user: &User, by: &User) -> Result<(), ServiceError> {
    match app.store.delete_user(user).await {
        Ok(()) => {}
        Err(UpdateUserError::Conflict) => {
            return Err(ServiceError::Unavailable("account changed during the deletion".into()))
        }
        Err(UpdateUserError::UsernameTaken) => {
            return Err(ServiceError::Internal("unexpected username conflict".into()))
        }
        Err(UpdateUserError::Store(e)) => return Err(e.into()),
    }
    tracing::info!(event = "account_deleted", user_id = %user.id, by = %by.id);
    let name = if user.id == by.id { "account.deleted" } else { "admin.user_deleted" };
    let gone = serde_json::json!({"email": {"from": user.email.as_str(), "to": null}});
    super::audit::record(app, super::audit::Event::new(name).by(by).to(&user.id).changes(gone)).await;
    Ok(())
}

/// `DELETE_ME_MODE=deactivate`: the account turns inactive and is marked deactivated in one
/// optimistic-locking write that also moves `tokens_valid_after` (every token and code of it is
/// refused from now on), then every session of it is removed. Its claims stay: the address and
/// username remain taken, and only an admin makes the account active again.
async fn deactivate_self(app: &App, user: &User) -> Result<(), ServiceError> {
    let now = app.now();
    let kept = super::sessions::revoke_user(&*app.store, &*app.clock, user.clone(), |u| {
        u.is_active = false;
        u.deactivated_at = Some(now);
    })
    .await
    .map_err(|e| match e {
        // Deleted meanwhile (by an admin): the caller's token no longer names an account.
        ServiceError::NotFound => ServiceError::TokenNotValid,
        other => other,
    })?;
    tracing::info!(event = "account_deactivated", user_id = %kept.id, by = "self");
    let off = serde_json::json!({"is_active": {"from": true, "to": false}});
    super::audit::record(app, super::audit::Event::new("account.deactivated").own(&kept).changes(off)).await;
    Ok(())
}
