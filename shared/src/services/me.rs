//! Reading and editing a user: `/auth/users/me/` and, for staff, `/auth/users/{id}/`.

use crate::domain::{Email, User, Username};
use crate::ports::UpdateUserError;

use super::register::{NAME_MAX, USERNAME_TAKEN};
use super::{revoke_sessions, App, FieldErrors, Form, ServiceError};

pub const EMAIL_READ_ONLY: &str = "Use /auth/users/set_email/ to change the email address.";
pub const NOT_A_BOOL: &str = "Must be a valid boolean.";
pub const NOT_A_LIST: &str = "Expected a list of items but got type \"{kind}\".";

/// How often an update is re-applied after losing to a concurrent write.
const RETRIES: usize = 3;

fn flag(form: &Form, field: &str, errors: &mut FieldErrors) -> Option<bool> {
    match form.0.get(field)? {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => {
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

fn group_names(form: &Form, errors: &mut FieldErrors) -> Option<Vec<String>> {
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

/// The user after applying the form: names and username for everyone; `is_active`, `is_staff`
/// and `groups` too when `admin` (read-only, hence ignored, otherwise).
fn apply(user: &User, form: &Form, admin: bool) -> Result<User, ServiceError> {
    let mut errors = FieldErrors::default();
    let mut updated = user.clone();
    if let Some(v) = form.optional("first_name", NAME_MAX, &mut errors) {
        updated.first_name = v;
    }
    if let Some(v) = form.optional("last_name", NAME_MAX, &mut errors) {
        updated.last_name = v;
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
    }
    errors.finish()?;
    Ok(updated)
}

/// Updates `target` (PUT and PATCH alike: every field is optional). Disabling an account ends
/// all its sessions at once.
pub async fn update(app: &App, target: &User, form: &Form, admin: bool) -> Result<User, ServiceError> {
    let mut current = target.clone();
    for _ in 0..RETRIES {
        let mut updated = apply(&current, form, admin)?;
        if updated == current {
            return Ok(current);
        }
        if updated.groups != current.groups {
            super::groups::check_exist(app, &updated.groups).await?;
        }
        let now = app.now();
        let disabling = current.is_active && !updated.is_active;
        if disabling {
            updated.tokens_valid_after = now;
        }
        match app.store.update_user(&current, &updated, now).await {
            Ok(version) => {
                updated.version = version;
                if disabling {
                    revoke_sessions(app, &current.id, None).await?;
                }
                tracing::info!(event = "profile_update", outcome = "ok", user_id = %current.id, disabled = disabling);
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
