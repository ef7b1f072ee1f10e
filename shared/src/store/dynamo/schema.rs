//! The table's layout: keys and key prefixes, the list index's attributes, and the codecs
//! between domain values and items.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::{AuditEntry, AuditPosition, AuditStream, Group, Permission, DAY};
use crate::domain::{CodePurpose, Email, User, UserId, Username};
use crate::ports::{CodeRecord, CounterKey, CounterState, Session, StoreError, StoreResult};

pub(super) type Item = HashMap<String, AttributeValue>;

/// The sparse global secondary index that lists users and groups without scanning the table
/// (which rate counters, sessions and codes from unauthenticated traffic fill). Only the user item
/// (`USER#<id>` / `PROFILE`) and the group item (`GROUP#<name>` / `GROUP`) carry its keys; its
/// projection is KEYS_ONLY, so updates of other attributes (last_login stamps...) never write to
/// it, and a listing reads the items themselves with a consistent BatchGetItem.
pub const LIST_INDEX: &str = "list";
/// The index's partition key: which list the item is in, [`LIST_USERS`] or [`LIST_GROUPS`].
pub const LIST_PK: &str = "list_pk";
/// The index's sort key: the user id (UUIDv7: creation order) or the group name.
pub const LIST_SK: &str = "list_sk";
/// The `list_pk` of user items.
pub const LIST_USERS: &str = "USER";
/// The `list_pk` of group items.
pub const LIST_GROUPS: &str = "GROUP";
/// The `list_pk` of the permission registry's items.
pub const LIST_PERMISSIONS: &str = "PERM";

/// The `list_pk` / `list_sk` an item with these table keys must carry, if it is listed at all.
pub fn list_entry<'a>(pk: &'a str, sk: &str) -> Option<(&'static str, &'a str)> {
    match sk {
        PROFILE => pk.strip_prefix(USER_PREFIX).map(|id| (LIST_USERS, id)),
        GROUP => pk.strip_prefix(GROUP_PREFIX).map(|name| (LIST_GROUPS, name)),
        PERMISSION => pk.strip_prefix(PERMISSION_PREFIX).map(|codename| (LIST_PERMISSIONS, codename)),
        _ => None,
    }
}

/// A user's partition (`USER#<id>`): its profile, its codes and its sessions.
pub(super) const USER_PREFIX: &str = "USER#";
/// An email claim: `EMAIL#<normalised address>` / [`EMAIL`].
pub(super) const EMAIL_PREFIX: &str = "EMAIL#";
/// A username claim: `USERNAME#<username key>` / [`USERNAME`].
pub(super) const USERNAME_PREFIX: &str = "USERNAME#";
/// A one-time code in its user's partition: `CODE#<purpose>`.
pub(super) const CODE_PREFIX: &str = "CODE#";
/// A session in its user's partition: `SESSION#<sid>`.
pub(super) const SESSION_PREFIX: &str = "SESSION#";
/// A rate counter: `RATE#<scope>#<key>` / `<slot>`.
pub(super) const RATE_PREFIX: &str = "RATE#";
/// A group: `GROUP#<name>` / [`GROUP`].
pub(super) const GROUP_PREFIX: &str = "GROUP#";
/// A registered permission: `PERM#<codename>` / [`PERMISSION`].
pub(super) const PERMISSION_PREFIX: &str = "PERM#";
/// The audit trail: a day's stream `AUDIT#<yyyy-mm-dd>` and an account's `AUDIT#USER#<id>`,
/// sorted by [`AuditPosition::sort_key`]. Outside the user's partition, so deleting an account
/// leaves its trail until the retention ends.
pub(super) const AUDIT_PREFIX: &str = "AUDIT#";
/// A user's second factors, in its partition: `MFA#TOTP` and `MFA#RECOVERY`.
pub(super) const MFA_PREFIX: &str = "MFA#";
pub(super) const MFA_TOTP: &str = "MFA#TOTP";
pub(super) const MFA_RECOVERY: &str = "MFA#RECOVERY";
/// A passkey in its user's partition: `WEBAUTHN#<credential id>`.
pub(super) const PASSKEY_PREFIX: &str = "WEBAUTHN#";
/// A short-lived challenge: `CHALLENGE#<id>` / `CHALLENGE`.
pub(super) const CHALLENGE_PREFIX: &str = "CHALLENGE#";
pub(super) const CHALLENGE: &str = "CHALLENGE";
/// A provider link: the claim `IDENTITY#<provider>#<subject>` / `IDENTITY`, and the account's side
/// `IDENTITY#<provider>` in its partition.
pub(super) const IDENTITY_PREFIX: &str = "IDENTITY#";
pub(super) const IDENTITY: &str = "IDENTITY";

/// The kind of an item, by its table keys alone (what `authctl doctor` counts and checks).
#[cfg(any(feature = "doctor", test))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ItemKind {
    User,
    EmailClaim,
    UsernameClaim,
    Code,
    Session,
    RateCounter,
    Group,
    Permission,
    Audit,
    Mfa,
    Challenge,
    Identity,
    Other,
}

#[cfg(any(feature = "doctor", test))]
impl ItemKind {
    pub(super) fn of(pk: &str, sk: &str) -> Self {
        if pk.starts_with(USER_PREFIX) {
            match sk {
                PROFILE => Self::User,
                s if s.starts_with(CODE_PREFIX) => Self::Code,
                s if s.starts_with(SESSION_PREFIX) => Self::Session,
                MFA_TOTP | MFA_RECOVERY => Self::Mfa,
                s if s.starts_with(PASSKEY_PREFIX) => Self::Mfa,
                s if s.starts_with(IDENTITY_PREFIX) => Self::Identity,
                _ => Self::Other,
            }
        } else if pk.starts_with(EMAIL_PREFIX) && sk == EMAIL {
            Self::EmailClaim
        } else if pk.starts_with(USERNAME_PREFIX) && sk == USERNAME {
            Self::UsernameClaim
        } else if pk.starts_with(RATE_PREFIX) {
            Self::RateCounter
        } else if pk.starts_with(GROUP_PREFIX) {
            Self::Group
        } else if pk.starts_with(PERMISSION_PREFIX) && sk == PERMISSION {
            Self::Permission
        } else if pk.starts_with(AUDIT_PREFIX) {
            Self::Audit
        } else if pk.starts_with(CHALLENGE_PREFIX) && sk == CHALLENGE {
            Self::Challenge
        } else if pk.starts_with(IDENTITY_PREFIX) && sk == IDENTITY {
            Self::Identity
        } else {
            Self::Other
        }
    }
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(super) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// The partition key of a user (a [`UserId`], or an id as stored).
pub(super) fn user_pk(id: &(impl std::fmt::Display + ?Sized)) -> String {
    format!("{USER_PREFIX}{id}")
}
pub(super) fn email_pk(email: &Email) -> String {
    email_pk_normalised(email.normalised())
}
/// The partition key of the claim on an address, given normalised.
pub(super) fn email_pk_normalised(normalised: &str) -> String {
    format!("{EMAIL_PREFIX}{normalised}")
}
pub(super) fn username_pk(key: &str) -> String {
    format!("{USERNAME_PREFIX}{key}")
}
pub(super) fn code_sk(purpose: CodePurpose) -> String {
    format!("{CODE_PREFIX}{}", purpose.as_str())
}
pub(super) fn session_sk(sid: &str) -> String {
    format!("{SESSION_PREFIX}{sid}")
}

/// The sort key of a user's profile item (`USER#<id>`).
pub(super) const PROFILE: &str = "PROFILE";
/// The sort key of a group item (`GROUP#<name>`).
pub(super) const GROUP: &str = "GROUP";
/// The sort key of a permission item (`PERM#<codename>`).
pub(super) const PERMISSION: &str = "PERM";
/// The sort key of an email claim (`EMAIL#<normalised address>`).
pub(super) const EMAIL: &str = "EMAIL";
/// The sort key of a username claim (`USERNAME#<username key>`).
pub(super) const USERNAME: &str = "USERNAME";

/// Puts the item in its list: `list_pk` / `list_sk` as [`list_entry`] says (nothing otherwise).
pub(super) fn listed(mut item: Item) -> Item {
    let entry = match (item.get("pk"), item.get("sk")) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => {
            list_entry(pk, sk).map(|(list, sk)| (list, sk.to_owned()))
        }
        _ => None,
    };
    if let Some((list, sk)) = entry {
        item.insert(LIST_PK.into(), s(list));
        item.insert(LIST_SK.into(), s(sk));
    }
    item
}

pub(super) fn get_s(item: &Item, k: &str) -> StoreResult<String> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::new(format!("item attribute {k} missing or not a string"))),
    }
}
pub(super) fn get_opt_s(item: &Item, k: &str) -> Option<String> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}
pub(super) fn get_opt_n<T: std::str::FromStr>(item: &Item, k: &str) -> StoreResult<Option<T>> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => {
            v.parse().map(Some).map_err(|_| StoreError::new(format!("item attribute {k} is not a number")))
        }
        None | Some(AttributeValue::Null(_)) => Ok(None),
        _ => Err(StoreError::new(format!("item attribute {k} is not a number"))),
    }
}
pub(super) fn get_n<T: std::str::FromStr>(item: &Item, k: &str) -> StoreResult<T> {
    get_opt_n(item, k)?.ok_or_else(|| StoreError::new(format!("item attribute {k} missing")))
}
pub(super) fn get_bool(item: &Item, k: &str) -> bool {
    matches!(item.get(k), Some(AttributeValue::Bool(true)))
}

/// Whether an item is past its TTL.
pub(super) fn expired(item: &Item, now: i64) -> bool {
    matches!(get_opt_n::<i64>(item, "expires_at"), Ok(Some(t)) if t <= now)
}

pub(super) fn user_to_item(u: &User) -> Item {
    let mut item = key(user_pk(&u.id), PROFILE);
    item.insert("id".into(), s(u.id.as_str()));
    item.insert("email".into(), s(u.email.as_str()));
    item.insert("email_normalised".into(), s(u.email.normalised()));
    if let Some(name) = &u.username {
        item.insert("username".into(), s(name.as_str()));
    }
    item.insert("first_name".into(), s(&u.first_name));
    item.insert("last_name".into(), s(&u.last_name));
    item.insert("password_hash".into(), s(&u.password_hash));
    item.insert("is_active".into(), AttributeValue::Bool(u.is_active));
    item.insert("is_staff".into(), AttributeValue::Bool(u.is_staff));
    item.insert("is_superuser".into(), AttributeValue::Bool(u.is_superuser));
    item.insert("groups".into(), AttributeValue::L(u.groups.iter().map(s).collect()));
    item.insert("group_ids".into(), group_ids(&u.group_ids));
    item.insert("date_joined".into(), n(u.date_joined));
    if let Some(t) = u.last_login {
        item.insert("last_login".into(), n(t));
    }
    item.insert("tokens_valid_after".into(), n(u.tokens_valid_after));
    item.insert("version".into(), n(u.version));
    if let Some(t) = u.expires_at {
        item.insert("expires_at".into(), n(t));
    }
    if let Some(t) = u.deactivated_at {
        item.insert("deactivated_at".into(), n(t));
    }
    item.insert("user_permissions".into(), group_ids(&u.user_permissions));
    if u.mfa_enabled {
        item.insert("mfa_enabled".into(), AttributeValue::Bool(true));
    }
    if let Some(lang) = &u.language {
        item.insert("language".into(), s(lang));
    }
    listed(item)
}

pub(super) fn user_from_item(item: &Item) -> StoreResult<User> {
    let id = UserId::parse(&get_s(item, "id")?).ok_or_else(|| StoreError::new("stored user id malformed"))?;
    let email = Email::parse(&get_s(item, "email")?).map_err(|_| StoreError::new("stored email malformed"))?;
    let username = match get_opt_s(item, "username") {
        Some(u) => Some(Username::parse(&u).map_err(|_| StoreError::new("stored username malformed"))?),
        None => None,
    };
    let groups = match item.get("groups") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .filter_map(|v| match v {
                AttributeValue::S(g) => Some(g.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(User {
        id,
        email,
        username,
        first_name: get_opt_s(item, "first_name").unwrap_or_default(),
        last_name: get_opt_s(item, "last_name").unwrap_or_default(),
        password_hash: get_s(item, "password_hash")?,
        is_active: get_bool(item, "is_active"),
        is_staff: get_bool(item, "is_staff"),
        is_superuser: get_bool(item, "is_superuser"),
        groups,
        group_ids: group_ids_from(item),
        date_joined: get_n(item, "date_joined")?,
        last_login: get_opt_n(item, "last_login")?,
        tokens_valid_after: get_n(item, "tokens_valid_after")?,
        version: get_n(item, "version")?,
        expires_at: get_opt_n(item, "expires_at")?,
        deactivated_at: get_opt_n(item, "deactivated_at")?,
        user_permissions: string_map(item, "user_permissions"),
        mfa_enabled: get_bool(item, "mfa_enabled"),
        language: get_opt_s(item, "language"),
    })
}

/// A claim on `pk` by `user` (a [`UserId`], or an id as stored).
pub(super) fn claim_item(
    pk: String,
    sk: &str,
    user: &(impl std::fmt::Display + ?Sized),
    expires_at: Option<i64>,
) -> Item {
    let mut item = key(pk, sk);
    item.insert("user_id".into(), s(user.to_string()));
    if let Some(t) = expires_at {
        item.insert("expires_at".into(), n(t));
    }
    item
}

pub(super) fn code_to_item(c: &CodeRecord) -> Item {
    let mut item = key(user_pk(&c.user_id), &code_sk(c.purpose));
    item.insert("code_hash".into(), s(&c.hash));
    item.insert("expires_at".into(), n(c.expires_at));
    item.insert("attempts".into(), n(c.attempts));
    if let Some(d) = &c.data {
        item.insert("data".into(), s(d));
    }
    if c.spent {
        item.insert("spent".into(), AttributeValue::Bool(true));
    }
    item
}

pub(super) fn code_from_item(user: &UserId, purpose: CodePurpose, item: &Item) -> StoreResult<CodeRecord> {
    Ok(CodeRecord {
        user_id: user.clone(),
        purpose,
        hash: get_s(item, "code_hash")?,
        expires_at: get_n(item, "expires_at")?,
        attempts: get_opt_n(item, "attempts")?.unwrap_or(0),
        data: get_opt_s(item, "data"),
        spent: get_bool(item, "spent"),
    })
}

pub(super) fn session_to_item(x: &Session) -> Item {
    let mut item = key(user_pk(&x.user_id), &session_sk(&x.id));
    item.insert("current_jti".into(), s(&x.current_jti));
    item.insert("counter".into(), n(x.counter));
    if let Some(p) = &x.previous_jti {
        item.insert("previous_jti".into(), s(p));
    }
    if let Some(t) = x.rotated_at {
        item.insert("rotated_at".into(), n(t));
    }
    item.insert("created_at".into(), n(x.created_at));
    item.insert("last_used_at".into(), n(x.last_used_at));
    if let Some(ua) = &x.user_agent {
        item.insert("user_agent".into(), s(ua));
    }
    if let Some(ip) = &x.ip {
        item.insert("ip".into(), s(ip));
    }
    item.insert("expires_at".into(), n(x.expires_at));
    item
}

pub(super) fn session_from_item(user: &UserId, item: &Item) -> StoreResult<Session> {
    let sk = get_s(item, "sk")?;
    Ok(Session {
        user_id: user.clone(),
        id: sk.strip_prefix(SESSION_PREFIX).unwrap_or(&sk).to_owned(),
        current_jti: get_s(item, "current_jti")?,
        counter: get_n(item, "counter")?,
        previous_jti: get_opt_s(item, "previous_jti"),
        rotated_at: get_opt_n(item, "rotated_at")?,
        created_at: get_n(item, "created_at")?,
        last_used_at: get_n(item, "last_used_at")?,
        user_agent: get_opt_s(item, "user_agent"),
        ip: get_opt_s(item, "ip"),
        expires_at: get_n(item, "expires_at")?,
    })
}

pub(super) fn counter_key(c: &CounterKey) -> Item {
    key(format!("{RATE_PREFIX}{}#{}", c.scope, c.key), &c.slot)
}

pub(super) fn counter_state(item: &Item) -> CounterState {
    CounterState {
        count: get_opt_n(item, "count").ok().flatten().unwrap_or(0),
        last_at: get_opt_n(item, "last_at").ok().flatten().unwrap_or(0),
    }
}

pub(super) fn group_key(name: &str) -> Item {
    key(format!("{GROUP_PREFIX}{name}"), GROUP)
}

pub(super) fn group_from_item(item: &Item) -> StoreResult<Group> {
    let permissions = match item.get("permissions") {
        Some(AttributeValue::L(list)) => list.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
        _ => Vec::new(),
    };
    Ok(Group {
        name: get_s(item, "name")?,
        description: get_opt_s(item, "description").unwrap_or_default(),
        permissions,
        id: get_opt_s(item, "group_id").unwrap_or_default(),
    })
}

pub(super) fn group_ids(ids: &std::collections::BTreeMap<String, String>) -> AttributeValue {
    AttributeValue::M(ids.iter().map(|(k, v)| (k.clone(), s(v))).collect())
}

pub(super) fn group_ids_from(item: &Item) -> std::collections::BTreeMap<String, String> {
    string_map(item, "group_ids")
}

/// A map of strings (`group_ids`, `user_permissions`); absent or malformed: empty.
fn string_map(item: &Item, attribute: &str) -> std::collections::BTreeMap<String, String> {
    match item.get(attribute) {
        Some(AttributeValue::M(m)) => m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone()))).collect(),
        _ => Default::default(),
    }
}

pub(super) fn permission_key(codename: &str) -> Item {
    key(format!("{PERMISSION_PREFIX}{codename}"), PERMISSION)
}

pub(super) fn permission_item(p: &Permission) -> Item {
    let mut item = permission_key(&p.codename);
    item.insert("codename".into(), s(&p.codename));
    item.insert("name".into(), s(&p.name));
    item.insert("description".into(), s(&p.description));
    item.insert("permission_id".into(), s(&p.id));
    listed(item)
}

pub(super) fn permission_from_item(item: &Item) -> StoreResult<Permission> {
    Ok(Permission {
        codename: get_s(item, "codename")?,
        name: get_opt_s(item, "name").unwrap_or_default(),
        description: get_opt_s(item, "description").unwrap_or_default(),
        id: get_opt_s(item, "permission_id").unwrap_or_default(),
    })
}

/// The partition key of an audit stream.
pub(super) fn audit_pk(stream: &AuditStream) -> String {
    use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
    match stream {
        AuditStream::Day(day) => {
            let date = DateTime::from_secs(day * DAY).fmt(DateTimeFormat::DateTime).unwrap_or_default();
            format!("{AUDIT_PREFIX}{}", date.get(..10).unwrap_or_default())
        }
        AuditStream::Account(id) => format!("{AUDIT_PREFIX}{USER_PREFIX}{id}"),
    }
}

/// The entry as stored in `stream`.
pub(super) fn audit_item(e: &AuditEntry, stream: &AuditStream) -> Item {
    let mut item = key(audit_pk(stream), &e.position().sort_key());
    item.insert("id".into(), s(&e.id));
    item.insert("at".into(), n(e.at));
    item.insert("event".into(), s(&e.event));
    let optional = [
        ("actor", e.actor.as_ref().map(|a| a.as_str().to_owned())),
        ("target", e.target.as_ref().map(|t| t.as_str().to_owned())),
        ("object", e.object.clone()),
        ("ip", e.ip.clone()),
        ("user_agent", e.user_agent.clone()),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            item.insert(name.into(), s(v));
        }
    }
    if !e.changes.is_null() {
        item.insert("changes".into(), s(e.changes.to_string()));
    }
    item.insert("via".into(), s(&e.via));
    item.insert("expires_at".into(), n(e.expires_at));
    item
}

pub(super) fn audit_from_item(item: &Item) -> StoreResult<AuditEntry> {
    let user = |k: &str| -> StoreResult<Option<UserId>> {
        get_opt_s(item, k)
            .map(|v| UserId::parse(&v).ok_or_else(|| StoreError::new(format!("audit attribute {k} is not a user id"))))
            .transpose()
    };
    let changes = match get_opt_s(item, "changes") {
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::new(format!("audit changes: {e}")))?,
        None => serde_json::Value::Null,
    };
    Ok(AuditEntry {
        id: get_s(item, "id")?,
        at: get_n(item, "at")?,
        event: get_s(item, "event")?,
        actor: user("actor")?,
        target: user("target")?,
        object: get_opt_s(item, "object"),
        changes,
        ip: get_opt_s(item, "ip"),
        user_agent: get_opt_s(item, "user_agent"),
        via: get_opt_s(item, "via").unwrap_or_default(),
        expires_at: get_n(item, "expires_at")?,
    })
}

/// The sort key just past every position of a stream.
pub(super) const AUDIT_SK_END: &str = "~";

/// The lowest sort key at or after `since`.
pub(super) fn audit_sk_since(since: i64) -> String {
    AuditPosition { at: since, id: String::new() }.sort_key()
}
