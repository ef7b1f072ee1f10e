//! Throttling: per-IP budgets, per-account login lockout (Cognito-style doubling), and a
//! cooldown between emails to one address. All state lives in atomic counters with TTLs.

use crate::config::Rate;
use crate::ports::{CounterKey, CounterState};

use super::{App, ServiceError};

/// The counter of `scope` for `ip` in the fixed window holding `now`, and that window's end.
pub fn ip_window(scope: &'static str, ip: &str, rate: Rate, now: i64) -> (CounterKey, i64) {
    let start = now - now.rem_euclid(rate.window);
    (CounterKey { scope, key: ip.to_owned(), slot: start.to_string() }, start + rate.window)
}

/// Counts one request against the caller's IP budget; 429 once the budget is spent.
pub async fn spend_ip(
    app: &App,
    scope: &'static str,
    rate: Option<Rate>,
    ip: Option<&str>,
) -> Result<(), ServiceError> {
    let (Some(rate), Some(ip)) = (rate, ip) else { return Ok(()) };
    let now = app.now();
    let (counter, end) = ip_window(scope, ip, rate, now);
    let state = app.store.hit(&counter, end, now).await?;
    if state.count > rate.limit {
        tracing::info!(event = "throttle", scope, outcome = "ip_budget_spent");
        return Err(ServiceError::Throttled((end - now).max(1) as u64));
    }
    Ok(())
}

/// 429 if a budget read earlier is already spent.
pub fn check_ip(rate: Option<Rate>, state: CounterState, now: i64) -> Result<(), ServiceError> {
    match rate {
        Some(rate) if state.count >= rate.limit => {
            let end = now - now.rem_euclid(rate.window) + rate.window;
            Err(ServiceError::Throttled((end - now).max(1) as u64))
        }
        _ => Ok(()),
    }
}

/// The lockout counter of the account a login names: the normalised address when it parses,
/// the lower-cased text otherwise, so unknown accounts behave exactly like known ones.
pub fn lockout_counter(login: &str) -> CounterKey {
    let key = match crate::domain::Email::parse(login) {
        Ok(e) => e.normalised().to_owned(),
        Err(_) => login.trim().to_lowercase().chars().take(254).collect(),
    };
    CounterKey { scope: "login", key, slot: "STATE".into() }
}

/// How long the account stays locked after `state` failures, from the last one: nothing below
/// the threshold, then 1 s, 2 s, 4 s ... capped at `LOGIN_LOCKOUT_MAX`.
pub fn lockout_secs(app: &App, state: CounterState) -> i64 {
    let threshold = u64::from(app.settings.login_lockout_threshold);
    if state.count < threshold {
        return 0;
    }
    let doublings = (state.count - threshold).min(20) as u32;
    (1i64 << doublings).min(app.settings.login_lockout_max.as_secs() as i64)
}

/// 429 while the account is locked out.
pub fn check_lockout(app: &App, state: CounterState, now: i64) -> Result<(), ServiceError> {
    let until = state.last_at + lockout_secs(app, state);
    if until > now {
        tracing::info!(event = "login", outcome = "locked_out");
        return Err(ServiceError::Throttled((until - now) as u64));
    }
    Ok(())
}

fn cooldown_counter(address: &str) -> CounterKey {
    CounterKey { scope: "mail", key: address.to_lowercase(), slot: "COOLDOWN".into() }
}

/// Whether an email may go to `address` now (at most one per `EMAIL_COOLDOWN`).
pub async fn email_allowed(app: &App, address: &str) -> Result<bool, ServiceError> {
    let cooldown = app.settings.email_cooldown.as_secs() as i64;
    if cooldown == 0 {
        return Ok(true);
    }
    let now = app.now();
    let ok = app.store.take_cooldown(&cooldown_counter(address), now + cooldown, now).await?;
    if !ok {
        tracing::info!(event = "email", outcome = "cooldown");
    }
    Ok(ok)
}

/// Gives back the cooldown slot [`email_allowed`] took, when the email could not be sent: a
/// failed send must not make its retry wait. Best effort (the slot expires on its own).
pub async fn release_email(app: &App, address: &str) {
    if app.settings.email_cooldown.is_zero() {
        return;
    }
    if let Err(e) = app.store.clear(&cooldown_counter(address)).await {
        tracing::warn!(event = "email", outcome = "cooldown_not_released", error = %e);
    }
}
