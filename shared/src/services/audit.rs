//! The audit trail: security events (logins and failures, lockouts, password and email changes,
//! session revocations, every admin action) recorded with who did it, to whom, what changed and
//! from where, and listed by `GET /auth/admin/audit/`.
//!
//! Recording never fails or holds up the action it records ([`record`]): the entry is first
//! written to the log as one structured line (`"event":"audit"`, the whole entry), then to the
//! table under a deadline. A table write that fails or times out is logged again at error level
//! (`"outcome":"not_written"`, with the entry's id) and counted in the CloudWatch metric
//! `Gatehouse/AuditNotWritten`, which the template alarms on: the entry is then in the logs, not
//! lost, and somebody is told.

use std::future::Future;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::domain::{AuditEntry, AuditPosition, AuditStream, User, UserId, DAY};
use crate::ports::AuditStore;

use super::auth::Caller;
use super::permissions::{self, VIEW_AUDIT};
use super::users::{page_bounds_by, MAX_LIMIT};
use super::{App, FieldErrors, ServiceError};

/// The longest a table write of an entry may take before the action goes on without it.
pub const WRITE_DEADLINE: Duration = Duration::from_millis(1000);
/// The longest user agent kept.
const MAX_USER_AGENT: usize = 256;
/// The most entries one listing request examines (see [`list`]).
pub const SCAN_BUDGET: usize = 5 * MAX_LIMIT;
/// The most streams (days) one listing request reads.
pub const QUERY_BUDGET: usize = 32;

/// Where the request came from: set per request by the HTTP edge (and by `authctl`).
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `api` or `authctl`.
    pub via: &'static str,
}

tokio::task_local! {
    static ORIGIN: Origin;
}

/// Runs `fut` (one request) with its origin, which every entry it records carries.
pub async fn within<F: Future>(origin: Origin, fut: F) -> F::Output {
    ORIGIN.scope(origin, fut).await
}

fn origin() -> Origin {
    ORIGIN.try_with(Origin::clone).unwrap_or(Origin { via: "api", ..Origin::default() })
}

/// An event to record: what happened, and to whom.
#[derive(Clone, Debug)]
pub struct Event {
    pub name: &'static str,
    pub actor: Option<UserId>,
    pub target: Option<UserId>,
    pub object: Option<String>,
    pub changes: Value,
}

impl Event {
    pub fn new(name: &'static str) -> Self {
        Self { name, actor: None, target: None, object: None, changes: Value::Null }
    }
    /// Done by `user`.
    pub fn by(mut self, user: &User) -> Self {
        self.actor = Some(user.id.clone());
        self
    }
    /// Done to `user`.
    pub fn to(mut self, user: &UserId) -> Self {
        self.target = Some(user.clone());
        self
    }
    /// Done by the account to itself.
    pub fn own(self, user: &User) -> Self {
        let id = user.id.clone();
        self.by(user).to(&id)
    }
    /// Done to a group or permission.
    pub fn object(mut self, name: impl Into<String>) -> Self {
        self.object = Some(name.into());
        self
    }
    pub fn changes(mut self, changes: Value) -> Self {
        self.changes = changes;
        self
    }
}

/// `{field: {"from": old, "to": new}}` of the fields that differ between `before` (`None`: the
/// account is new) and `after`, from `fields` (a name and a value per field, in a fixed order).
pub fn changes(before: Option<&[(&'static str, Value)]>, after: &[(&'static str, Value)]) -> Value {
    let mut out = serde_json::Map::new();
    for (i, (name, to)) in after.iter().enumerate() {
        let from = before.and_then(|b| b.get(i)).map(|(_, v)| v.clone()).unwrap_or(Value::Null);
        if &from != to {
            out.insert((*name).to_owned(), json!({"from": from, "to": to}));
        }
    }
    Value::Object(out)
}

/// The changes of a new account: its address, flags and every profile field that is not empty.
pub fn created(user: &User) -> Value {
    let mut fields = vec![("email", json!(user.email.as_str())), ("is_superuser", json!(user.is_superuser))];
    fields.extend(super::me::profile_fields(user).into_iter().filter(|(_, v)| v.as_str() != Some("")));
    changes(None, &fields)
}

/// Records `event` ([`record_in`] with the app's store, clock and retention).
pub async fn record(app: &App, event: Event) {
    record_in(&*app.store, app.now(), app.settings.audit_retention, event).await;
}

/// What `authctl` records: who ran it is not known (no actor), only that it was authctl.
pub fn authctl_origin() -> Origin {
    Origin { ip: None, user_agent: Some(format!("authctl {}", env!("CARGO_PKG_VERSION"))), via: "authctl" }
}

/// Records `event` at `now`, kept for `retention`: logged first, then written to `store` under
/// [`WRITE_DEADLINE`]. Never fails: a write that does not happen is logged and counted (see the
/// module's documentation), and false is returned.
pub async fn record_in(store: &dyn AuditStore, now: i64, retention: Duration, event: Event) -> bool {
    let origin = origin();
    let entry = AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: now,
        event: event.name.to_owned(),
        actor: event.actor,
        target: event.target,
        object: event.object,
        changes: event.changes,
        ip: origin.ip,
        user_agent: origin.user_agent.map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
        via: origin.via.to_owned(),
        expires_at: now.saturating_add(retention.as_secs() as i64),
    };
    tracing::info!(
        event = "audit",
        audit_id = %entry.id,
        action = %entry.event,
        actor = entry.actor.as_ref().map(UserId::as_str),
        target = entry.target.as_ref().map(UserId::as_str),
        object = entry.object.as_deref(),
        changes = %entry.changes,
        ip = entry.ip.as_deref(),
        via = %entry.via,
    );
    let failure = match tokio::time::timeout(WRITE_DEADLINE, store.append_audit(&entry)).await {
        Ok(Ok(())) => return true,
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {} ms", WRITE_DEADLINE.as_millis()),
    };
    tracing::error!(event = "audit", outcome = "not_written", audit_id = %entry.id, action = %entry.event, error = %failure);
    count_not_written();
    false
}

/// One `AuditNotWritten` in CloudWatch's embedded metric format, which Lambda turns into a metric
/// from the log line itself (no API call, no permission). Outside Lambda, nothing.
fn count_not_written() {
    let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") else {
        return;
    };
    let table = std::env::var("TABLE_NAME").unwrap_or_default();
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let line = json!({
        "_aws": {
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": "Gatehouse",
                "Dimensions": [["Table"]],
                "Metrics": [{"Name": "AuditNotWritten", "Unit": "Count"}],
            }],
        },
        "Table": table,
        "function": function,
        "AuditNotWritten": 1,
    });
    println!("{line}");
}

/// The query of `GET /auth/admin/audit/`, as sent (empty values are no filter).
#[derive(Default, Debug, Clone)]
pub struct AuditQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
    /// Entries about this account (as target).
    pub user: Option<String>,
    /// Entries by this account.
    pub actor: Option<String>,
    /// `family.action`, or a family (`login`) for all its actions.
    pub event: Option<String>,
    /// Not before this: unix seconds, a date (`2026-12-01`, UTC) or an RFC 3339 date-time.
    pub since: Option<String>,
}

/// A page of entries, newest first.
#[derive(Debug)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<String>,
}

const NOT_A_UUID: &str = "Must be a valid UUID.";
const NOT_A_DATETIME: &str =
    "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].";

fn encode_cursor(p: &AuditPosition) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", p.at, p.id))
}

fn decode_cursor(raw: &str) -> Option<AuditPosition> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let (at, id) = text.split_once('.')?;
    let at: i64 = at.parse().ok().filter(|a| *a >= 0)?;
    if !(id.is_empty() || uuid::Uuid::try_parse(id).is_ok()) {
        return None;
    }
    Some(AuditPosition { at, id: id.to_owned() })
}

/// Unix seconds from `since` as [`AuditQuery::since`] takes it.
pub fn parse_since(raw: &str) -> Option<i64> {
    use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
    let raw = raw.trim();
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw.parse().ok();
    }
    if raw.len() == 10 {
        return DateTime::from_str(&format!("{raw}T00:00:00Z"), DateTimeFormat::DateTime).ok().map(|d| d.secs());
    }
    // A numeric offset (`+01:00`), which the parser below does not take: as UTC, then shifted.
    let (utc, offset) = match raw.len().checked_sub(6).and_then(|i| Some((i, raw.get(i..)?))) {
        Some((i, tail)) if tail.starts_with(['+', '-']) && tail.get(3..4) == Some(":") => {
            let hours: i64 = tail.get(1..3)?.parse().ok()?;
            let minutes: i64 = tail.get(4..6)?.parse().ok()?;
            let sign = if tail.starts_with('-') { -1 } else { 1 };
            (format!("{}Z", raw.get(..i)?), sign * (hours * 3600 + minutes * 60))
        }
        _ => (raw.to_owned(), 0),
    };
    DateTime::from_str(&utc, DateTimeFormat::DateTime).ok().map(|d| d.secs() - offset)
}

fn user_filter(raw: Option<&str>, field: &str, errors: &mut FieldErrors) -> Option<UserId> {
    let raw = raw.map(str::trim).filter(|r| !r.is_empty())?;
    let id = UserId::parse(raw);
    if id.is_none() {
        errors.add(field, NOT_A_UUID);
    }
    id
}

/// Whether `event` is named by `filter`: the same name, or the family of the name.
fn event_matches(filter: &str, event: &str) -> bool {
    event == filter || (!filter.contains('.') && event.strip_prefix(filter).is_some_and(|rest| rest.starts_with('.')))
}

/// Lists entries, newest first, `limit` at a time, needing `auth.view_auditentry` (or a
/// superuser). With `user` or `actor`, the entries of that account's stream; otherwise the day
/// streams from today (or the cursor's day) back to `since` or the retention's start. A request
/// examines at most [`SCAN_BUDGET`] entries in at most [`QUERY_BUDGET`] streams: a page may hold
/// fewer than `limit` entries (even none) while `next` is not `None`; following `next` never
/// skips or repeats an entry.
pub async fn list(app: &App, caller: &Caller, q: &AuditQuery) -> Result<AuditPage, ServiceError> {
    permissions::require(app, caller, VIEW_AUDIT).await?;
    let mut errors = FieldErrors::default();
    let (limit, cursor) = page_bounds_by(q.limit.as_deref(), q.cursor.as_deref(), &mut errors, decode_cursor);
    let user = user_filter(q.user.as_deref(), "user", &mut errors);
    let actor = user_filter(q.actor.as_deref(), "actor", &mut errors);
    let since = match q.since.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => {
            let parsed = parse_since(raw);
            if parsed.is_none() {
                errors.add("since", NOT_A_DATETIME);
            }
            parsed
        }
    };
    errors.finish()?;
    let event = q.event.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let now = app.now();
    let oldest = now.saturating_sub(app.settings.audit_retention.as_secs() as i64);
    let since = since.unwrap_or(oldest).max(oldest);
    let admit = |e: &AuditEntry| {
        user.as_ref().is_none_or(|u| e.target.as_ref() == Some(u))
            && actor.as_ref().is_none_or(|a| e.actor.as_ref() == Some(a))
            && event.is_none_or(|f| event_matches(f, &e.event))
    };
    let account = user.clone().or_else(|| actor.clone());
    let mut position = cursor;
    let mut day = position.as_ref().map_or(now, |p| p.at).div_euclid(DAY);
    // An account's stream holds what it did and what was done to it: filtered either way.
    let read = if event.is_some() || account.is_some() { MAX_LIMIT } else { limit };
    let mut entries = Vec::new();
    let (mut examined, mut queries) = (0, 0);
    loop {
        let stream = match &account {
            Some(id) => AuditStream::Account(id.clone()),
            None => AuditStream::Day(day),
        };
        let page = app.store.audit_page(&stream, position.as_ref(), since, read, now).await?;
        queries += 1;
        let exhausted = page.len() < read;
        for e in page {
            examined += 1;
            position = Some(e.position());
            if admit(&e) {
                entries.push(e);
            }
            if entries.len() == limit || examined >= SCAN_BUDGET {
                return Ok(AuditPage { entries, next: position.as_ref().map(encode_cursor) });
            }
        }
        if exhausted {
            if account.is_some() || day <= since.div_euclid(DAY) {
                return Ok(AuditPage { entries, next: None });
            }
            position = Some(AuditPosition::end_of_day_before(day));
            day -= 1;
        }
        if queries >= QUERY_BUDGET {
            return Ok(AuditPage { entries, next: position.as_ref().map(encode_cursor) });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_seconds_dates_and_rfc3339() {
        assert_eq!(parse_since("1764633600"), Some(1_764_633_600));
        assert_eq!(parse_since("2025-12-02"), Some(1_764_633_600));
        assert_eq!(parse_since("2025-12-02T00:00:00Z"), Some(1_764_633_600));
        assert_eq!(parse_since("2025-12-02T01:00:00+01:00"), Some(1_764_633_600));
        for bad in ["yesterday", "2025-13-02", "-5", "2025-12-02 00:00"] {
            assert_eq!(parse_since(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_event_filter_names_one_event_or_a_family() {
        assert!(event_matches("login.failed", "login.failed"));
        assert!(event_matches("login", "login.failed"));
        assert!(!event_matches("login", "loginx.failed"));
        assert!(!event_matches("login.fail", "login.failed"));
        assert!(!event_matches("admin.user", "admin.user_created"));
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let p = AuditPosition { at: 1_700_000_000, id: uuid::Uuid::now_v7().to_string() };
        assert_eq!(decode_cursor(&encode_cursor(&p)), Some(p));
        let boundary = AuditPosition::end_of_day_before(19_000);
        assert_eq!(decode_cursor(&encode_cursor(&boundary)), Some(boundary));
        for bad in ["", "!!", &URL_SAFE_NO_PAD.encode("12.x"), &URL_SAFE_NO_PAD.encode("-1.")] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn changes_name_what_differs_with_both_values() {
        let before = [("first_name", json!("Ann")), ("is_staff", json!(false))];
        let after = [("first_name", json!("Anne")), ("is_staff", json!(false))];
        assert_eq!(changes(Some(&before), &after), json!({"first_name": {"from": "Ann", "to": "Anne"}}));
        assert_eq!(changes(None, &after)["is_staff"], json!({"from": null, "to": false}));
    }
}
