//! Throttling: per-IP budgets, per-account login lockout (Cognito-style doubling), and a
//! cooldown between emails to one address. All state lives in atomic counters with TTLs.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::Rate;
use crate::policy;
use crate::ports::{CounterKey, CounterState, GiveBack, Reservation, StoreError};

use super::{App, ServiceError};

/// How long a caller whose rate counter DynamoDB throttled is asked to wait.
pub const CONGESTED_RETRY_AFTER: u64 = 1;

/// A limiter call's failure: 429 ([`ServiceError::Congested`]) when DynamoDB throttled it, for
/// the counters it names are this request's own (its IP, its account) and a flood at them is
/// what makes one item hot; 503 otherwise. Fails closed for that key, and only for it: other
/// keys live on other partitions and are served as usual.
pub fn limiter_err(e: StoreError) -> ServiceError {
    if e.throttled {
        tracing::warn!(event = "throttle", outcome = "hot_key", error = %e.message);
        return ServiceError::Congested(CONGESTED_RETRY_AFTER);
    }
    e.into()
}

/// The counter of `scope` for `key` (an IP, an account) in the fixed window of `rate` holding
/// `now`, and that window's end. The slot names the window, so a counter never outlives it.
pub fn ip_window(scope: &'static str, key: &str, rate: Rate, now: i64) -> (CounterKey, i64) {
    window(scope, key, rate.window, now)
}

fn window(scope: &'static str, key: &str, secs: i64, now: i64) -> (CounterKey, i64) {
    let start = policy::window_start(now, secs);
    (CounterKey { scope, key: key.to_owned(), slot: start.to_string() }, start + secs)
}

/// Counts one request against the caller's IP budget; 429 once the budget is spent.
///
/// A flood from one address lands on one counter item, and DynamoDB serves about 1,000 writes a
/// second to one item. So once this container has seen the budget spent, it answers 429 without
/// writing to the counter again until its window ends (a window's count only grows, so the
/// answer cannot change); and a write DynamoDB throttles answers 429 too, and is remembered the
/// same way. Nothing assumes one container: each one writes until it sees the budget spent.
pub async fn spend_ip(
    app: &App,
    scope: &'static str,
    rate: Option<Rate>,
    ip: Option<&str>,
) -> Result<(), ServiceError> {
    let (Some(rate), Some(ip)) = (rate, ip) else { return Ok(()) };
    let now = app.now();
    let (counter, end) = ip_window(scope, ip, rate, now);
    if app.spent.holds(&counter, now) {
        tracing::info!(event = "throttle", scope, outcome = "ip_budget_spent", known = true);
        return Err(ServiceError::Throttled(policy::retry_after(end, now)));
    }
    let state = match app.store.hit(&counter, end, now).await {
        Ok(state) => state,
        Err(e) if e.throttled => {
            app.spent.remember(counter, end, now);
            return Err(limiter_err(e));
        }
        Err(e) => return Err(e.into()),
    };
    if policy::over_budget(state.count, rate.limit) {
        tracing::info!(event = "throttle", scope, outcome = "ip_budget_spent");
        app.spent.remember(counter, end, now);
        return Err(ServiceError::Throttled(policy::retry_after(end, now)));
    }
    Ok(())
}

/// The IP budgets ([`spend_ip`]) one container has seen spent, each until its window ends: a
/// cache of what the counters already said, bounded so a flood of addresses cannot grow it.
#[derive(Default)]
pub struct SpentBudgets(Mutex<HashMap<CounterKey, i64>>);

impl SpentBudgets {
    /// At most this many budgets are remembered; past it, the ended ones are dropped first, then
    /// all (forgetting only costs a write each).
    pub const CAPACITY: usize = 4096;

    /// Whether `counter`'s budget is known spent at `now`.
    pub fn holds(&self, counter: &CounterKey, now: i64) -> bool {
        self.0.lock().map(|m| m.get(counter).is_some_and(|end| now < *end)).unwrap_or(false)
    }

    /// Remembers `counter` spent until `end`.
    pub fn remember(&self, counter: CounterKey, end: i64, now: i64) {
        let Ok(mut m) = self.0.lock() else { return };
        if m.len() >= Self::CAPACITY {
            m.retain(|_, e| now < *e);
            if m.len() >= Self::CAPACITY {
                m.clear();
            }
        }
        m.insert(counter, end);
    }
}

/// The account a login names: the normalised address when it parses, the lower-cased text
/// otherwise, so unknown accounts behave exactly like known ones.
fn account_key(login: &str) -> String {
    match crate::domain::Email::parse(login) {
        Ok(e) => e.normalised().to_owned(),
        Err(_) => login.trim().to_lowercase().chars().take(254).collect(),
    }
}

/// Lockouts are counted per (account, source IP) and UTC day.
const LOCKOUT_WINDOW: i64 = 86_400;

/// The lockout counter of (account, source IP) for today, and when it ends. Keyed on the source
/// as well as the account, as Auth0's brute-force protection is: a stranger hammering an account
/// locks themselves out, not its owner, who keeps logging in from their own network.
pub fn lockout_counter(login: &str, ip: Option<&str>, now: i64) -> (CounterKey, i64) {
    window("login", &format!("{}|{}", account_key(login), ip.unwrap_or("-")), LOCKOUT_WINDOW, now)
}

/// How long the account stays locked after `state` failures, from the last one (see
/// [`policy::lockout_secs`]).
pub fn lockout_secs(app: &App, state: CounterState) -> i64 {
    let s = &app.settings;
    policy::lockout_secs(state.count, s.login_lockout_threshold, s.login_lockout_max.as_secs() as i64)
}

/// 429 while the account is locked out.
pub fn check_lockout(app: &App, state: CounterState, now: i64) -> Result<(), ServiceError> {
    let s = &app.settings;
    let max = s.login_lockout_max.as_secs() as i64;
    if let Some(secs) = policy::locked_for(state.count, state.last_at, now, s.login_lockout_threshold, max) {
        tracing::info!(event = "login", outcome = "locked_out");
        return Err(ServiceError::Throttled(secs));
    }
    Ok(())
}

/// The budgets a password check draws on (a login, or the `current_password` of a signed-in
/// account): the (account, IP) lockout, the account's failures across every IP
/// (`RATE_LOGIN_FAILURES_ACCOUNT`) and the IP's failures (`RATE_LOGIN_FAILURES_IP`). An attempt
/// is reserved in each before the password is verified, and given back when it was right: a
/// burst of parallel guesses gets at most the lockout threshold verified.
pub struct PasswordGuard {
    lock: (CounterKey, i64),
    account: Option<(CounterKey, i64, Rate)>,
    ip: Option<(CounterKey, i64, Rate)>,
}

impl PasswordGuard {
    pub fn new(app: &App, login: &str, ip: Option<&str>, now: i64) -> Self {
        let s = &app.settings;
        let account = s.rate_login_failures_account.map(|rate| {
            let (c, end) = ip_window("login_account", &account_key(login), rate, now);
            (c, end, rate)
        });
        let budget = match (s.rate_login_failures_ip, ip) {
            (Some(rate), Some(ip)) => {
                let (c, end) = ip_window("login_fail", ip, rate, now);
                Some((c, end, rate))
            }
            _ => None,
        };
        Self { lock: lockout_counter(login, ip, now), account, ip: budget }
    }

    /// A guard for `login` from `ip` with its attempt reserved: the counters read, then
    /// [`PasswordGuard::reserve`] (for a signed-in account, whose address needs no lookup).
    pub async fn reserved(app: &App, login: &str, ip: Option<&str>, now: i64) -> Result<Self, ServiceError> {
        let guard = Self::new(app, login, ip, now);
        let states = app.store.read(&guard.counters(), now).await.map_err(limiter_err)?;
        guard.reserve(app, &states, now).await?;
        Ok(guard)
    }

    /// The counters to read (with the account, in one round trip) before [`PasswordGuard::reserve`].
    pub fn counters(&self) -> Vec<CounterKey> {
        let mut out = vec![self.lock.0.clone()];
        out.extend(self.account.iter().map(|(c, _, _)| c.clone()));
        out.extend(self.ip.iter().map(|(c, _, _)| c.clone()));
        out
    }

    /// 429 while locked out or when a budget is spent (read in `states`, in the order of
    /// [`PasswordGuard::counters`]); otherwise one attempt is taken from every budget, atomically,
    /// or 429 when a concurrent attempt took the last of one.
    pub async fn reserve(&self, app: &App, states: &[CounterState], now: i64) -> Result<(), ServiceError> {
        let lock_state = states.first().copied().unwrap_or_default();
        check_lockout(app, lock_state, now)?;
        let threshold = u64::from(app.settings.login_lockout_threshold);
        let mut reservations = vec![Reservation {
            counter: self.lock.0.clone(),
            limit: threshold,
            // Past the threshold, one attempt once the lockout read has ended.
            or_at: policy::lockout_reached(lock_state.count, app.settings.login_lockout_threshold)
                .then_some(lock_state),
            expires_at: self.lock.1,
        }];
        let mut ends =
            vec![lock_state.last_at + lockout_secs(app, CounterState { count: lock_state.count + 1, ..lock_state })];
        let budgets = self.account.iter().chain(self.ip.iter());
        for ((counter, end, rate), state) in budgets.zip(states.iter().skip(1)) {
            if policy::budget_spent(state.count, rate.limit) {
                tracing::info!(event = "login", outcome = "budget_spent", scope = counter.scope);
                return Err(ServiceError::Throttled(policy::retry_after(*end, now)));
            }
            reservations.push(Reservation {
                counter: counter.clone(),
                limit: rate.limit,
                or_at: None,
                expires_at: *end,
            });
            ends.push(*end);
        }
        match app.store.reserve(&reservations, now).await.map_err(limiter_err)? {
            Ok(()) => Ok(()),
            Err(i) => {
                tracing::info!(event = "login", outcome = "reservation_refused", scope = reservations[i].counter.scope);
                Err(ServiceError::Throttled(policy::retry_after(ends.get(i).copied().unwrap_or(now), now)))
            }
        }
    }

    /// Whether one more failure after `states` (read for [`PasswordGuard::reserve`]) locks the
    /// (account, IP) out: what the audit trail records as a lockout.
    pub fn failure_locks(&self, app: &App, states: &[CounterState]) -> bool {
        let lock_state = states.first().copied().unwrap_or_default();
        lockout_secs(app, CounterState { count: lock_state.count + 1, ..lock_state }) > 0
    }

    /// What a right password gives back: the attempt does not count against the account or the
    /// IP, and the (account, IP) lockout is lifted. A login writes it with the new session.
    pub fn give_back(&self) -> GiveBack {
        GiveBack {
            refund: self.account.iter().chain(self.ip.iter()).map(|(c, _, _)| c.clone()).collect(),
            forget: vec![self.lock.0.clone()],
        }
    }

    /// The password was right: [`PasswordGuard::give_back`], on its own.
    pub async fn succeeded(&self, app: &App) -> Result<(), ServiceError> {
        let GiveBack { refund, forget } = self.give_back();
        Ok(app.store.give_back(&refund, &forget).await?)
    }
}

/// After a password reset: the resetter's (account, IP) lockout and the account's failures are
/// forgotten (whoever reset holds the mailbox). Best effort.
pub async fn lift(app: &App, login: &str, ip: Option<&str>) {
    let now = app.now();
    let mut forget = vec![lockout_counter(login, ip, now).0];
    if let Some(rate) = app.settings.rate_login_failures_account {
        forget.push(ip_window("login_account", &account_key(login), rate, now).0);
    }
    if let Err(e) = app.store.give_back(&[], &forget).await {
        tracing::warn!(event = "password_reset", outcome = "lockout_not_cleared", error = %e);
    }
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

/// Takes the cooldown slot `key` for `EMAIL_COOLDOWN` (a conditional write): `None` when taken,
/// or the seconds until the current one ends.
pub async fn email_cooldown(app: &App, key: &str) -> Result<Option<u64>, ServiceError> {
    let cooldown = app.settings.email_cooldown.as_secs() as i64;
    if cooldown == 0 {
        return Ok(None);
    }
    let now = app.now();
    let counter = CounterKey { scope: "mail", key: key.to_owned(), slot: "COOLDOWN".into() };
    if app.store.take_cooldown(&counter, now + cooldown, now).await? {
        return Ok(None);
    }
    tracing::info!(event = "email", outcome = "cooldown", scope = "set_email");
    Ok(Some(cooldown.max(1) as u64))
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
