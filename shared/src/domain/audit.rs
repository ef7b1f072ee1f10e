//! The audit trail's entries: one security event each (a login, a failed one, a password change,
//! an admin's change to an account...), kept until `expires_at` (`AUDIT_RETENTION`).

use super::UserId;

/// Seconds in a day: the audit trail's day streams ([`AuditStream::Day`]) are UTC days.
pub const DAY: i64 = 86_400;

/// One security event.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// UUIDv7 (creation order within a second).
    pub id: String,
    /// When it happened (unix seconds).
    pub at: i64,
    /// What happened, `family.action` (`login.failed`, `admin.user_updated`...).
    pub event: String,
    /// Who did it: the signed-in account, or `None` (an anonymous request, `authctl`).
    pub actor: Option<UserId>,
    /// The account it happened to, if any.
    pub target: Option<UserId>,
    /// The group or permission it happened to, if any (its name or codename).
    pub object: Option<String>,
    /// What changed: `{field: {"from": old, "to": new}}` (never a secret), or null.
    pub changes: serde_json::Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Through what: `api` or `authctl`.
    pub via: String,
    pub expires_at: i64,
}

/// Where an entry sits in its streams: newest first is descending (`at`, `id`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AuditPosition {
    pub at: i64,
    pub id: String,
}

impl AuditPosition {
    /// The sort key of this position: it orders as (`at`, `id`) does.
    pub fn sort_key(&self) -> String {
        format!("{:012}#{}", self.at.max(0), self.id)
    }

    /// Before every entry of `day` and after every entry of earlier days.
    pub fn end_of_day_before(day: i64) -> Self {
        Self { at: day * DAY, id: String::new() }
    }
}

/// A sequence of entries the trail can be read by, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditStream {
    /// Every entry of one UTC day (day number since the epoch).
    Day(i64),
    /// Every entry naming the account, as actor or as target.
    Account(UserId),
}

impl AuditEntry {
    pub fn position(&self) -> AuditPosition {
        AuditPosition { at: self.at, id: self.id.clone() }
    }

    /// The UTC day it belongs to.
    pub fn day(&self) -> i64 {
        self.at.div_euclid(DAY)
    }

    /// Every stream the entry is in: its day's, its actor's and its target's (once each).
    pub fn streams(&self) -> Vec<AuditStream> {
        let mut out = vec![AuditStream::Day(self.day())];
        for id in self.actor.iter().chain(self.target.iter()) {
            let stream = AuditStream::Account(id.clone());
            if !out.contains(&stream) {
                out.push(stream);
            }
        }
        out
    }

    /// Whether the entry may still be shown at `now`.
    pub fn live(&self, now: i64) -> bool {
        self.expires_at > now
    }
}
