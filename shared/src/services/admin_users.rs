//! The admin API's users (`/auth/admin/users/`), as Django's admin has them: list with filters,
//! create, read, change and delete any account.
//!
//! Each route needs a superuser or a staff member holding its permission (`auth.view_user`,
//! `auth.add_user`, `auth.change_user`, `auth.delete_user`; see [`super::permissions`]). On top of
//! that staff cannot climb: they never make an account staff, never change or delete a staff or
//! superuser account (their own included), give or take only groups whose every permission they
//! hold (the rules of `me::update` and `groups::lookup`), and grant or take away only permissions
//! they hold (`me::settle_grants`). `is_superuser` is read-only: superusers are made with
//! `authctl`. Every refusal is decided before anything is written.

use std::collections::BTreeMap;

use crate::domain::{Email, Group, User, UserId};

use super::auth::Caller;
use super::groups::{check_exist, lookup};
use super::me::{self, drf_bool, flag, group_names, Editor};
use super::permissions::{self, ADD_USER, CHANGE_USER, DELETE_USER, VIEW_USER};
use super::register::{self, Start};
use super::users::{self, encode_cursor, page_bounds, refused, Page, MAX_LIMIT};
use super::{App, FieldErrors, Form, ServiceError};

/// The most accounts one listing request examines: a filter that matches few accounts returns a
/// short page (even an empty one) with a `next` rather than walking the whole table in one request.
pub const SCAN_BUDGET: usize = 5 * MAX_LIMIT;

/// The query of `GET /auth/admin/users/`, as sent (empty values are no filter).
#[derive(Default, Debug, Clone)]
pub struct AdminListQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
    pub email: Option<String>,
    pub is_active: Option<String>,
    pub is_staff: Option<String>,
    pub group: Option<String>,
}

/// The filters of a listing, parsed.
struct Filters {
    is_active: Option<bool>,
    is_staff: Option<bool>,
    /// The live group named (`None`: no group filter).
    group: Option<Group>,
}

impl Filters {
    fn any(&self) -> bool {
        self.is_active.is_some() || self.is_staff.is_some() || self.group.is_some()
    }

    fn admit(&self, u: &User) -> bool {
        self.is_active.is_none_or(|a| u.is_active == a)
            && self.is_staff.is_none_or(|s| u.is_staff == s)
            && self.group.as_ref().is_none_or(|g| u.member_of(g))
    }
}

fn bool_filter(raw: Option<&str>, field: &str, errors: &mut FieldErrors) -> Option<bool> {
    let raw = raw.filter(|r| !r.is_empty())?;
    let parsed = drf_bool(raw);
    if parsed.is_none() {
        errors.add(field, me::NOT_A_BOOL);
    }
    parsed
}

/// Lists accounts matching every filter given, in id order, `limit` at a time. The filters apply
/// to the underlying listing page by page: pages are read from the cursor on until `limit`
/// accounts match, the listing ends, or [`SCAN_BUDGET`] accounts were examined; `next` is the
/// cursor of the last account examined (`None` at the end), so following it never skips or
/// repeats an account, and a page may hold fewer than `limit` accounts (even none) while `next`
/// is not `None`. `email` (normalised as login normalises it) reads that one account's claim
/// instead; an address that cannot be one, or a group that does not exist, matches nobody.
pub async fn list(app: &App, caller: &Caller, q: &AdminListQuery) -> Result<Page, ServiceError> {
    permissions::require(app, caller, VIEW_USER).await?;
    let mut errors = FieldErrors::default();
    let (limit, after) = page_bounds(q.limit.as_deref(), q.cursor.as_deref(), &mut errors);
    let is_active = bool_filter(q.is_active.as_deref(), "is_active", &mut errors);
    let is_staff = bool_filter(q.is_staff.as_deref(), "is_staff", &mut errors);
    errors.finish()?;
    let nobody = Page { users: Vec::new(), next: None, limit };
    let group = match q.group.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
        None => None,
        Some(name) if !Group::valid_name(name) => return Ok(nobody),
        Some(name) => match app.store.get_groups(&[name.to_owned()]).await?.pop() {
            Some(g) => Some(g),
            None => return Ok(nobody),
        },
    };
    let filters = Filters { is_active, is_staff, group };
    let now = app.now();
    if let Some(raw) = q.email.as_deref().filter(|e| !e.is_empty()) {
        let Ok(email) = Email::parse(raw) else {
            return Ok(nobody);
        };
        let found = app.store.find_user_by_email(&email, now).await?;
        let users =
            found.into_iter().filter(|u| after.as_ref().is_none_or(|a| &u.id > a) && filters.admit(u)).collect();
        return Ok(Page { users, next: None, limit });
    }
    // Unfiltered, a page of the listing is the page; filtered, read the most a request may.
    let read = if filters.any() { MAX_LIMIT } else { limit };
    let mut position = after;
    let mut users = Vec::new();
    let mut examined = 0;
    let mut reads = 0;
    loop {
        let (page, more) = app.store.list_users(position.as_ref(), read, now).await?;
        reads += 1;
        let last_of_page = page.len();
        for (i, u) in page.into_iter().enumerate() {
            examined += 1;
            position = Some(u.id.clone());
            if filters.admit(&u) {
                users.push(u);
            }
            if users.len() == limit || examined >= SCAN_BUDGET {
                let at_end = i + 1 == last_of_page && more.is_none();
                let next = if at_end { None } else { position.as_ref().map(encode_cursor) };
                return Ok(Page { users, next, limit });
            }
        }
        match more {
            // Pages emptied by expired accounts count too: one request reads a bounded amount.
            Some(id) if reads * read >= SCAN_BUDGET => {
                return Ok(Page { users, next: Some(encode_cursor(&id)), limit })
            }
            Some(id) => position = Some(id),
            None => return Ok(Page { users, next: None, limit }),
        }
    }
}

/// Creates an account with registration's validation and messages (`email`, `password` under the
/// password policy, `username`, `first_name`, `last_name`, `re_password` with
/// `USER_CREATE_PASSWORD_RETYPE`), plus `is_active`, `is_staff`, `groups` and `user_permissions`.
/// `is_active: true` makes it active at once, with no code and no email; otherwise it starts as
/// registration starts it (inactive, with the activation email; while `SEND_ACTIVATION_EMAIL` is
/// off, inactive until an admin activates it). `is_staff: true` only by a superuser; `groups` only
/// existing ones, and for staff only groups whose every permission they hold; `user_permissions`
/// only registered ones, and for staff only permissions they hold (the rules of
/// `me::settle_grants`, as a change of the account's grants). What the caller holds is read at
/// most once. `is_superuser` is read-only (ignored).
pub async fn create(app: &App, caller: &Caller, form: &Form) -> Result<User, ServiceError> {
    permissions::require(app, caller, ADD_USER).await?;
    let mut errors = FieldErrors::default();
    let registration = register::parse_into(app, form, &mut errors);
    let is_active = flag(form, "is_active", &mut errors).unwrap_or(false);
    let is_staff = flag(form, "is_staff", &mut errors).unwrap_or(false);
    let names = group_names(form, &mut errors).unwrap_or_default();
    let codenames = me::codenames(form, &mut errors).unwrap_or_default();
    errors.finish()?;
    let registration =
        registration.ok_or_else(|| ServiceError::Internal("validated registration incomplete".into()))?;
    if is_staff && !caller.user.is_superuser {
        return Err(refused(&caller.user, "sets_staff_or_superuser"));
    }
    let mut held = None;
    let found = if names.is_empty() {
        Vec::new()
    } else {
        let (found, caller_holds) = lookup(app, &caller.user, &names).await?;
        if found.iter().any(|g| !caller_holds.covers(g)) {
            return Err(refused(&caller.user, "permission_not_held"));
        }
        check_exist(&found, &names)?;
        held = Some(caller_holds);
        found
    };
    let mut grants: BTreeMap<String, String> = codenames.into_iter().map(|c| (c, String::new())).collect();
    if !grants.is_empty() {
        me::settle_grants(app, &caller.user, None, &mut grants, &mut held).await?;
    }
    let start = match (is_active, app.settings.send_activation_email) {
        (true, _) => Start::Active,
        (false, true) => Start::Registration,
        (false, false) => Start::Inactive,
    };
    let user = register::create(app, registration, start, |u| {
        u.is_staff = is_staff;
        u.group_ids = found.iter().map(|g| (g.name.clone(), g.id.clone())).collect();
        u.groups = names;
        u.user_permissions = grants;
    })
    .await?;
    tracing::info!(event = "admin_user", outcome = "created", user_id = %user.id, by = %caller.user.id);
    let made = super::audit::Event::new("admin.user_created").by(&caller.user).to(&user.id);
    super::audit::record(app, made.changes(super::audit::created(&user))).await;
    Ok(user)
}

/// The account `id`: 404 for an unknown or malformed id.
async fn find(app: &App, id: &str) -> Result<User, ServiceError> {
    let id = UserId::parse(id).ok_or(ServiceError::NotFound)?;
    app.store.get_user(&id, app.now()).await?.ok_or(ServiceError::NotFound)
}

pub async fn get(app: &App, caller: &Caller, id: &str) -> Result<User, ServiceError> {
    permissions::require(app, caller, VIEW_USER).await?;
    find(app, id).await
}

/// PUT and PATCH alike (every field optional; omitted fields are kept), with the rules of
/// `/auth/users/{id}/` for an admin: `me::update` as `Editor::admin(caller)`.
pub async fn update(app: &App, caller: &Caller, id: &str, form: &Form) -> Result<User, ServiceError> {
    permissions::require(app, caller, CHANGE_USER).await?;
    let user = find(app, id).await?;
    me::update(app, &user, form, Editor::admin(&caller.user)).await
}

/// Deletes an account with its claims, codes and sessions. No password is asked: the route's
/// permission is the authority. Staff delete only ordinary accounts; nobody deletes their own
/// account here (`DELETE /auth/users/me/` is for that).
pub async fn delete(app: &App, caller: &Caller, id: &str) -> Result<(), ServiceError> {
    permissions::require(app, caller, DELETE_USER).await?;
    let user = find(app, id).await?;
    if user.id == caller.user.id {
        return Err(refused(&caller.user, "own_account"));
    }
    Editor::admin(&caller.user).may_change(&user)?;
    users::erase(app, &user, &caller.user).await
}

/// Turns an account's second factors off (its owner lost the authenticator and the recovery
/// codes): factors gone, every session ended, the owner told. `auth.change_user`, within the
/// staff rules of updates; never one's own account (that is `DELETE /auth/mfa/totp/`, with its
/// step-up).
pub async fn reset_mfa(app: &App, caller: &Caller, id: &str) -> Result<(), ServiceError> {
    permissions::require(app, caller, CHANGE_USER).await?;
    let user = find(app, id).await?;
    if user.id == caller.user.id {
        return Err(refused(&caller.user, "own_account"));
    }
    Editor::admin(&caller.user).may_change(&user)?;
    if !user.mfa_enabled {
        return Err(super::FieldErrors::single("non_field_errors", super::mfa::NOT_ENABLED));
    }
    if !super::mfa::reset(app, &user).await? {
        return Err(ServiceError::NotFound);
    }
    super::audit::record(app, super::audit::Event::new("mfa.reset").by(&caller.user).to(&user.id)).await;
    Ok(())
}
