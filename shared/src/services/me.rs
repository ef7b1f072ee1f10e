//! `GET/PUT/PATCH /auth/users/me/`.

use crate::domain::{Email, User, Username};
use crate::ports::UpdateUserError;

use super::auth::Caller;
use super::register::{NAME_MAX, USERNAME_TAKEN};
use super::{App, FieldErrors, Form, ServiceError};

pub const EMAIL_READ_ONLY: &str = "Use /auth/users/set_email/ to change the email address.";

/// How often a profile update is re-applied after losing to a concurrent write.
const RETRIES: usize = 3;

fn apply(user: &User, form: &Form) -> Result<User, ServiceError> {
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
        if Email::parse(&raw)
            .map(|e| e.normalised() != user.email.normalised())
            .unwrap_or(true)
        {
            errors.add("email", EMAIL_READ_ONLY);
        }
    }
    errors.finish()?;
    Ok(updated)
}

/// Updates the caller's names and username (PUT and PATCH alike: every field is optional).
pub async fn update(app: &App, caller: &Caller, form: &Form) -> Result<User, ServiceError> {
    let mut current = caller.user.clone();
    for _ in 0..RETRIES {
        let mut updated = apply(&current, form)?;
        if updated == current {
            return Ok(current);
        }
        let now = app.now();
        match app.store.update_profile(&current, &updated, now).await {
            Ok(version) => {
                updated.version = version;
                tracing::info!(event = "profile_update", outcome = "ok", user_id = %current.id);
                return Ok(updated);
            }
            Err(UpdateUserError::UsernameTaken) => return Err(FieldErrors::single("username", USERNAME_TAKEN)),
            Err(UpdateUserError::Conflict) => {
                current = app
                    .store
                    .get_user(&current.id, now)
                    .await?
                    .ok_or(ServiceError::TokenNotValid)?;
            }
            Err(UpdateUserError::Store(e)) => return Err(e.into()),
        }
    }
    Err(ServiceError::Unavailable(
        "profile kept changing under concurrent writes".into(),
    ))
}
