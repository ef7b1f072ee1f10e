//! The table's consistency check (`authctl doctor`), and repairs that are safe beside live traffic.
//!
//! What is checked, from one paginated, consistent scan of the whole table:
//! - every live email / username claim belongs to a live user whose current address / username is
//!   the claimed one (else the claim is an *orphan*: user missing or past its expiry; or *stale*:
//!   the user has another address / username now);
//! - every live user holds a live claim on its address (and username): a claim that is absent or
//!   expired is *missing*; a live claim of another user is *foreign*;
//! - every one-time code and session belongs to a live user;
//! - every live user and every group carries the keys of the list index (`list_pk` / `list_sk`,
//!   see [`super::dynamo::LIST_INDEX`]) that the staff listings read: an item written before the
//!   index existed is *not listed* (staff listings do not show it);
//! - items past `expires_at` that DynamoDB has not removed yet are counted by kind (that is normal:
//!   TTL deletes lazily, up to about two days late), and are not inconsistencies.
//!
//! A scan is not a snapshot: under live traffic it may see a user but not the claim written in the
//! same transaction a moment later. So every finding is read again (consistent `GetItem`s of the
//! items involved) and kept only if the fresh items still show it.
//!
//! Repairs (only when asked) are each one conditional write, or one `TransactWriteItems` of a
//! conditional write and a `ConditionCheck` on the user item, re-asserting at write time what the
//! fresh read saw; a repair whose condition no longer holds is left alone and reported:
//! - orphan claim: deleted if it still names the same user and that user is still missing or
//!   expired. Users and claims are written in one transaction, so a claim without its user is
//!   never a registration in flight; an expiry takeover rewrites `user_id`, and the delete fails;
//! - stale claim: deleted if it still names the same user and that user is still at the version
//!   read (every email or username change bumps the version, and moves claims in one transaction);
//! - missing claim: written with the registration's own condition (absent, or expired), together
//!   with a check that the user is still at the version read and unexpired. When another user
//!   holds a live claim on the address, nothing is written: a human must decide (reported);
//! - orphan code / session: deleted if its user is still missing or expired;
//! - item not listed: `list_pk` / `list_sk` set (they follow from the item's keys alone) if the item
//!   still exists (an update never creates a deleted user again), still has the `list_pk` /
//!   `list_sk` read, and, for a user, is still unexpired;
//! - expired item: deleted if `expires_at <= now` still holds (a counter restarted, a code
//!   replaced or a claim taken over meanwhile has a later `expires_at` and is kept).
//!
//! The check works on the DynamoDB store only: the memory store keeps users and claims under one
//! lock, so it cannot hold any of these inconsistencies, and the check is about the raw items.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem};
use serde::Serialize;

use super::dynamo::{list_entry, LIST_PK, LIST_SK};
use super::DynamoStore;
use crate::ports::{Clock, StoreError, StoreResult};

type Item = HashMap<String, AttributeValue>;

/// Attempts at a repair transaction that lost to a concurrent one.
const CONFLICT_RETRIES: u32 = 5;

/// What is wrong with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A live email claim whose user is missing or past its expiry.
    OrphanEmailClaim,
    /// A live email claim whose user has another address now.
    StaleEmailClaim,
    /// A live username claim whose user is missing or past its expiry.
    OrphanUsernameClaim,
    /// A live username claim whose user has another username (or none) now.
    StaleUsernameClaim,
    /// A live user without a live claim on its address.
    MissingEmailClaim,
    /// A live user whose address is claimed by another user.
    ForeignEmailClaim,
    /// A live user with a username but no live claim on it.
    MissingUsernameClaim,
    /// A live user whose username is claimed by another user.
    ForeignUsernameClaim,
    /// A one-time code whose user is missing or past its expiry.
    OrphanCode,
    /// A session whose user is missing or past its expiry.
    OrphanSession,
    /// A live user or a group without the list index's keys (or with wrong ones): staff listings
    /// do not show it (written before the index existed).
    NotListed,
    /// An item the check cannot read (keys or required attributes missing or malformed).
    Malformed,
}

impl ProblemKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::OrphanEmailClaim => "orphan email claim",
            Self::StaleEmailClaim => "stale email claim",
            Self::OrphanUsernameClaim => "orphan username claim",
            Self::StaleUsernameClaim => "stale username claim",
            Self::MissingEmailClaim => "user without its email claim",
            Self::ForeignEmailClaim => "user whose email is claimed by another",
            Self::MissingUsernameClaim => "user without its username claim",
            Self::ForeignUsernameClaim => "user whose username is claimed by another",
            Self::OrphanCode => "code of a missing user",
            Self::OrphanSession => "session of a missing user",
            Self::NotListed => "not listed",
            Self::Malformed => "malformed item",
        }
    }

    fn is_claim(self) -> bool {
        matches!(
            self,
            Self::OrphanEmailClaim | Self::StaleEmailClaim | Self::OrphanUsernameClaim | Self::StaleUsernameClaim
        )
    }

    fn is_user(self) -> bool {
        matches!(
            self,
            Self::MissingEmailClaim | Self::ForeignEmailClaim | Self::MissingUsernameClaim | Self::ForeignUsernameClaim
        )
    }
}

/// What became of a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Found; no repair was asked for.
    Found,
    Repaired,
    /// The repair's condition no longer held when it was written (live traffic changed the items);
    /// nothing was written. Run the check again.
    ChangedMeanwhile,
    /// The address or username is held by another live user: a human must decide.
    HeldByAnother,
    /// Never repaired automatically (malformed items).
    NotRepairable,
}

/// One inconsistency, confirmed by a fresh read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// Key of the item at fault (the claim, the user, the code or the session).
    pub pk: String,
    pub sk: String,
    /// The user concerned: the claim's owner, or the user itself.
    pub user_id: Option<String>,
    pub detail: String,
    pub outcome: Outcome,
}

/// Items seen, by kind (expired ones included).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub items: u64,
    pub users: u64,
    pub email_claims: u64,
    pub username_claims: u64,
    pub codes: u64,
    pub sessions: u64,
    pub rate_counters: u64,
    pub groups: u64,
    pub other: u64,
}

/// The outcome of one check.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Unix seconds the check judged expiry by.
    pub now: i64,
    pub repair: bool,
    pub scanned: Counts,
    /// Scan requests made (pages).
    pub pages: u64,
    /// Items past `expires_at` still in the table, by kind.
    pub expired: BTreeMap<&'static str, u64>,
    pub expired_total: u64,
    /// Expired items deleted by the repair.
    pub expired_deleted: u64,
    pub problems: Vec<Problem>,
}

impl Report {
    /// Problems left as they were (all of them without a repair).
    pub fn unresolved(&self) -> usize {
        self.problems.iter().filter(|p| p.outcome != Outcome::Repaired).count()
    }

    /// Whether the table is consistent now: nothing found, or everything found repaired.
    /// Expired items do not count (TTL removes them late by design).
    pub fn consistent(&self) -> bool {
        self.unresolved() == 0
    }
}

/// How to run the check.
#[derive(Clone, Copy, Debug, Default)]
pub struct DoctorOptions {
    /// Repair what is found (and delete expired items).
    pub repair: bool,
    /// Items per scan request (DynamoDB's own 1 MB page limit applies anyway).
    pub page_size: Option<i32>,
}

/// A user as the check needs it.
#[derive(Clone, Debug)]
struct UserRow {
    email: String,
    username: Option<String>,
    expires_at: Option<i64>,
    version: u64,
}

#[derive(Clone, Debug)]
struct ClaimRow {
    user_id: String,
}

/// A user or group item whose `list_pk` / `list_sk` are not what its keys say they must be.
#[derive(Clone, Debug)]
struct Unlisted {
    pk: String,
    sk: String,
    /// The user's id (None for a group).
    user_id: Option<String>,
    /// `list_pk` and `list_sk` as read (None: absent).
    seen: [Option<AttributeValue>; 2],
}

/// The item's list index entry, unless it is the one its keys call for.
fn unlisted(item: &Item, pk: &str, sk: &str) -> Option<Unlisted> {
    let (list, list_sk) = list_entry(pk, sk)?;
    let seen = [item.get(LIST_PK).cloned(), item.get(LIST_SK).cloned()];
    if seen == [Some(s(list)), Some(s(list_sk))] {
        return None;
    }
    let user_id = (sk == "PROFILE").then(|| list_sk.to_owned());
    Some(Unlisted { pk: pk.to_owned(), sk: sk.to_owned(), user_id, seen })
}

/// What the check knows of the table (or of the few items read again).
#[derive(Default)]
struct Snapshot {
    users: HashMap<String, UserRow>,
    expired_users: HashSet<String>,
    emails: HashMap<String, ClaimRow>,
    usernames: HashMap<String, ClaimRow>,
    /// Codes and sessions: (pk, sk, user id, is a session).
    dependents: Vec<(String, String, String, bool)>,
    /// Expired items: (pk, sk, kind).
    expired: Vec<(String, String, &'static str)>,
    /// Live users and groups without the right list index keys.
    unlisted: Vec<Unlisted>,
    malformed: Vec<(String, String, String)>,
    counts: Counts,
}

fn get_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn get_n<T: std::str::FromStr>(item: &Item, k: &str) -> Result<Option<T>, ()> {
    match item.get(k) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

fn user_row(item: &Item) -> Result<UserRow, String> {
    let email = match (get_s(item, "email_normalised"), get_s(item, "email")) {
        (Some(e), _) => e.to_owned(),
        (None, Some(e)) => e.to_ascii_lowercase(),
        (None, None) => return Err("user without an email".into()),
    };
    let version = get_n(item, "version").ok().flatten().ok_or("user without a numeric version")?;
    let expires_at = get_n(item, "expires_at").map_err(|()| "expires_at is not a number")?;
    Ok(UserRow { email, username: get_s(item, "username").map(str::to_lowercase), expires_at, version })
}

fn claim_row(item: &Item) -> Result<ClaimRow, String> {
    let user_id = get_s(item, "user_id").ok_or("claim without a user_id")?.to_owned();
    Ok(ClaimRow { user_id })
}

impl Snapshot {
    fn add(&mut self, item: &Item, now: i64) {
        self.counts.items += 1;
        let (Some(pk), Some(sk)) = (get_s(item, "pk"), get_s(item, "sk")) else {
            self.counts.other += 1;
            self.malformed.push(("?".into(), "?".into(), "item without string keys pk/sk".into()));
            return;
        };
        let kind = item_kind(pk, sk);
        match kind {
            "user" => self.counts.users += 1,
            "email claim" => self.counts.email_claims += 1,
            "username claim" => self.counts.username_claims += 1,
            "code" => self.counts.codes += 1,
            "session" => self.counts.sessions += 1,
            "rate counter" => self.counts.rate_counters += 1,
            "group" => self.counts.groups += 1,
            _ => self.counts.other += 1,
        }
        let expires_at = match get_n::<i64>(item, "expires_at") {
            Ok(t) => t,
            Err(()) => {
                self.malformed.push((pk.into(), sk.into(), "expires_at is not a number".into()));
                return;
            }
        };
        if expires_at.is_some_and(|t| t <= now) {
            self.expired.push((pk.into(), sk.into(), kind));
            if kind == "user" {
                if let Some(id) = pk.strip_prefix("USER#") {
                    self.expired_users.insert(id.to_owned());
                }
            }
            return;
        }
        let bad = |s: &mut Self, why: String| s.malformed.push((pk.into(), sk.into(), why));
        match kind {
            "user" => match user_row(item) {
                Ok(row) => {
                    self.users.insert(pk.trim_start_matches("USER#").to_owned(), row);
                    self.unlisted.extend(unlisted(item, pk, sk));
                }
                Err(why) => bad(self, why),
            },
            "group" => self.unlisted.extend(unlisted(item, pk, sk)),
            "email claim" | "username claim" => match claim_row(item) {
                Ok(row) => {
                    let (map, prefix) = if kind == "email claim" {
                        (&mut self.emails, "EMAIL#")
                    } else {
                        (&mut self.usernames, "USERNAME#")
                    };
                    map.insert(pk.trim_start_matches(prefix).to_owned(), row);
                }
                Err(why) => bad(self, why),
            },
            "code" | "session" => {
                let user = pk.trim_start_matches("USER#").to_owned();
                self.dependents.push((pk.into(), sk.into(), user, kind == "session"));
            }
            _ => {}
        }
    }

    /// Whether this user is gone: "missing" or "expired", or None when it is live.
    fn gone(&self, id: &str) -> Option<&'static str> {
        if self.users.contains_key(id) {
            None
        } else if self.expired_users.contains(id) {
            Some("expired")
        } else {
            Some("missing")
        }
    }

    /// Every inconsistency this snapshot shows, sorted.
    fn findings(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let problem = |kind, pk: String, sk: &str, user: &str, detail: String| Problem {
            kind,
            pk,
            sk: sk.to_owned(),
            user_id: Some(user.to_owned()),
            detail,
            outcome: Outcome::Found,
        };
        for (is_email, claims) in [(true, &self.emails), (false, &self.usernames)] {
            let (pk_prefix, sk, orphan, stale) = if is_email {
                ("EMAIL#", "EMAIL", ProblemKind::OrphanEmailClaim, ProblemKind::StaleEmailClaim)
            } else {
                ("USERNAME#", "USERNAME", ProblemKind::OrphanUsernameClaim, ProblemKind::StaleUsernameClaim)
            };
            for (value, claim) in claims {
                let pk = format!("{pk_prefix}{value}");
                match self.users.get(&claim.user_id) {
                    None => {
                        let why = self.gone(&claim.user_id).unwrap_or("missing");
                        out.push(problem(orphan, pk, sk, &claim.user_id, format!("its user is {why}")));
                    }
                    Some(u) => {
                        let current = if is_email { Some(&u.email) } else { u.username.as_ref() };
                        if current != Some(value) {
                            let what = if is_email { "address" } else { "username" };
                            let detail = match current {
                                Some(c) => format!("its user's {what} is '{c}' now"),
                                None => format!("its user has no {what} now"),
                            };
                            out.push(problem(stale, pk, sk, &claim.user_id, detail));
                        }
                    }
                }
            }
        }
        for (id, u) in &self.users {
            let pk = format!("USER#{id}");
            let checks = [
                (
                    Some(&u.email),
                    &self.emails,
                    ProblemKind::MissingEmailClaim,
                    ProblemKind::ForeignEmailClaim,
                    "EMAIL#",
                ),
                (
                    u.username.as_ref(),
                    &self.usernames,
                    ProblemKind::MissingUsernameClaim,
                    ProblemKind::ForeignUsernameClaim,
                    "USERNAME#",
                ),
            ];
            for (value, claims, missing, foreign, prefix) in checks {
                let Some(value) = value else { continue };
                match claims.get(value) {
                    None => {
                        out.push(problem(missing, pk.clone(), "PROFILE", id, format!("no live claim {prefix}{value}")))
                    }
                    Some(c) if &c.user_id != id => out.push(problem(
                        foreign,
                        pk.clone(),
                        "PROFILE",
                        id,
                        format!("{prefix}{value} is held by user {}", c.user_id),
                    )),
                    Some(_) => {}
                }
            }
        }
        for (pk, sk, user, is_session) in &self.dependents {
            if let Some(why) = self.gone(user) {
                let kind = if *is_session { ProblemKind::OrphanSession } else { ProblemKind::OrphanCode };
                out.push(problem(kind, pk.clone(), sk, user, format!("its user is {why}")));
            }
        }
        for u in &self.unlisted {
            let detail = match &u.seen {
                [None, None] => format!("no {LIST_PK} / {LIST_SK}: staff listings do not show it"),
                [a, b] => format!("{LIST_PK} / {LIST_SK} are {} / {}, not its own", shown(a), shown(b)),
            };
            out.push(Problem {
                kind: ProblemKind::NotListed,
                pk: u.pk.clone(),
                sk: u.sk.clone(),
                user_id: u.user_id.clone(),
                detail,
                outcome: Outcome::Found,
            });
        }
        for (pk, sk, why) in &self.malformed {
            out.push(Problem {
                kind: ProblemKind::Malformed,
                pk: pk.clone(),
                sk: sk.clone(),
                user_id: None,
                detail: why.clone(),
                outcome: Outcome::NotRepairable,
            });
        }
        out.sort_by(|a, b| (a.kind, &a.pk, &a.sk).cmp(&(b.kind, &b.pk, &b.sk)));
        out
    }
}

/// An attribute value in a finding's detail.
fn shown(v: &Option<AttributeValue>) -> String {
    match v {
        None => "absent".to_owned(),
        Some(AttributeValue::S(s)) => format!("'{s}'"),
        Some(other) => format!("{other:?}"),
    }
}

/// The kind of an item, by its keys.
fn item_kind(pk: &str, sk: &str) -> &'static str {
    if pk.starts_with("USER#") {
        match sk {
            "PROFILE" => "user",
            s if s.starts_with("CODE#") => "code",
            s if s.starts_with("SESSION#") => "session",
            _ => "other",
        }
    } else if pk.starts_with("EMAIL#") && sk == "EMAIL" {
        "email claim"
    } else if pk.starts_with("USERNAME#") && sk == "USERNAME" {
        "username claim"
    } else if pk.starts_with("RATE#") {
        "rate counter"
    } else if pk.starts_with("GROUP#") {
        "group"
    } else {
        "other"
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn names(list: &[&str]) -> HashMap<String, String> {
    list.iter().map(|n| (format!("#{n}"), (*n).to_owned())).collect()
}

fn err<E, R>(what: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let detail = match &e {
        SdkError::ServiceError(_) => {
            format!("service error {}: {}", e.code().unwrap_or(""), e.message().unwrap_or(""))
        }
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(_) => "dispatch failure".to_owned(),
        other => format!("{other}"),
    };
    StoreError(format!("dynamodb {what}: {detail}"))
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError(format!("dynamodb request build: {e}"))
}

/// The condition under which a user counts as gone: absent, or past its expiry.
const USER_GONE: &str = "attribute_not_exists(pk) OR #expires_at <= :now";

/// Runs the check over the whole table (and the repairs, with `options.repair`).
pub async fn run(store: &DynamoStore, clock: &dyn Clock, options: DoctorOptions) -> StoreResult<Report> {
    let now = clock.now();
    let (snapshot, pages) = scan(store, now, options.page_size).await?;
    let mut expired = BTreeMap::new();
    for (_, _, kind) in &snapshot.expired {
        *expired.entry(*kind).or_insert(0u64) += 1;
    }
    let mut report = Report {
        now,
        repair: options.repair,
        scanned: snapshot.counts.clone(),
        pages,
        expired_total: snapshot.expired.len() as u64,
        expired,
        expired_deleted: 0,
        problems: Vec::new(),
    };
    // Confirm each finding with a fresh read of the items involved.
    let mut confirmed = Vec::new();
    for candidate in snapshot.findings() {
        if candidate.kind == ProblemKind::Malformed {
            confirmed.push((candidate, Snapshot::default()));
            continue;
        }
        let fresh = reread(store, &candidate, clock.now()).await?;
        if let Some(p) = fresh.findings().into_iter().find(|p| same(p, &candidate)) {
            confirmed.push((p, fresh));
        }
    }
    if options.repair {
        for (pk, sk, _) in &snapshot.expired {
            if delete_expired(store, pk, sk, clock.now()).await? {
                report.expired_deleted += 1;
            }
        }
        // Claims first: a user's claim can only be written once an orphan or stale one is gone.
        confirmed.sort_by_key(|(p, _)| (p.kind.is_user(), p.kind));
        for (problem, fresh) in &mut confirmed {
            problem.outcome = repair(store, problem, fresh, clock.now()).await?;
        }
        confirmed.sort_by(|(a, _), (b, _)| (a.kind, &a.pk, &a.sk).cmp(&(b.kind, &b.pk, &b.sk)));
    }
    report.problems = confirmed.into_iter().map(|(p, _)| p).collect();
    Ok(report)
}

fn same(a: &Problem, b: &Problem) -> bool {
    a.kind == b.kind && a.pk == b.pk && a.sk == b.sk && a.user_id == b.user_id
}

/// One consistent scan of the whole table, page by page.
async fn scan(store: &DynamoStore, now: i64, page_size: Option<i32>) -> StoreResult<(Snapshot, u64)> {
    let mut snapshot = Snapshot::default();
    let mut start: Option<Item> = None;
    let mut pages = 0;
    loop {
        let out = store
            .client()
            .scan()
            .table_name(store.table())
            .consistent_read(true)
            .set_limit(page_size)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| err("Scan", e))?;
        pages += 1;
        for item in out.items() {
            snapshot.add(item, now);
        }
        match out.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok((snapshot, pages)),
        }
    }
}

async fn get(store: &DynamoStore, pk: &str, sk: &str) -> StoreResult<Option<Item>> {
    let out = store
        .client()
        .get_item()
        .table_name(store.table())
        .set_key(Some(key(pk, sk)))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| err("GetItem", e))?;
    Ok(out.item.filter(|i| !i.is_empty()))
}

/// Reads again the items a finding involves: the item itself, and its user or its claims.
async fn reread(store: &DynamoStore, p: &Problem, now: i64) -> StoreResult<Snapshot> {
    let mut fresh = Snapshot::default();
    let Some(item) = get(store, &p.pk, &p.sk).await? else {
        return Ok(fresh);
    };
    fresh.add(&item, now);
    if p.kind == ProblemKind::NotListed {
        // The item alone: its list index keys follow from its own keys.
        return Ok(fresh);
    }
    if p.kind.is_user() {
        if let Some(u) = fresh.users.get(p.pk.trim_start_matches("USER#")).cloned() {
            let claim = match p.kind {
                ProblemKind::MissingEmailClaim | ProblemKind::ForeignEmailClaim => {
                    Some((format!("EMAIL#{}", u.email), "EMAIL"))
                }
                _ => u.username.map(|name| (format!("USERNAME#{name}"), "USERNAME")),
            };
            if let Some((pk, sk)) = claim {
                if let Some(c) = get(store, &pk, sk).await? {
                    fresh.add(&c, now);
                }
            }
        }
    } else {
        // A claim names its user in user_id; a code or session in its partition key.
        let user = match get_s(&item, "user_id") {
            Some(id) if p.kind.is_claim() => id.to_owned(),
            _ => p.pk.trim_start_matches("USER#").to_owned(),
        };
        if let Some(u) = get(store, &format!("USER#{user}"), "PROFILE").await? {
            fresh.add(&u, now);
        }
    }
    Ok(fresh)
}

/// Deletes an item still past its expiry; false when it was renewed or is gone meanwhile.
async fn delete_expired(store: &DynamoStore, pk: &str, sk: &str, now: i64) -> StoreResult<bool> {
    let result = store
        .client()
        .delete_item()
        .table_name(store.table())
        .set_key(Some(key(pk, sk)))
        .condition_expression("#expires_at <= :now")
        .set_expression_attribute_names(Some(names(&["expires_at"])))
        .expression_attribute_values(":now", n(now))
        .send()
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(err("DeleteItem", e)),
    }
}

/// Applies the repair of one confirmed problem; `fresh` holds the items as re-read.
async fn repair(store: &DynamoStore, p: &Problem, fresh: &Snapshot, now: i64) -> StoreResult<Outcome> {
    if p.kind == ProblemKind::NotListed {
        return list(store, p, fresh, now).await;
    }
    let table = store.table();
    let Some(user) = p.user_id.as_deref() else {
        return Ok(Outcome::NotRepairable);
    };
    let user_key = key(&format!("USER#{user}"), "PROFILE");
    let check =
        |condition: &str, attrs: &[&str], values: Vec<(&str, AttributeValue)>| -> StoreResult<TransactWriteItem> {
            let c = ConditionCheck::builder()
                .table_name(table)
                .set_key(Some(user_key.clone()))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names(attrs)))
                .set_expression_attribute_values(Some(values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
                .build()
                .map_err(build_err)?;
            Ok(TransactWriteItem::builder().condition_check(c).build())
        };
    let delete = |condition: &str,
                  attrs: &[&str],
                  values: Vec<(&str, AttributeValue)>|
     -> StoreResult<TransactWriteItem> {
        let mut d =
            Delete::builder().table_name(table).set_key(Some(key(&p.pk, &p.sk))).condition_expression(condition);
        if !attrs.is_empty() {
            d = d.set_expression_attribute_names(Some(names(attrs)));
        }
        if !values.is_empty() {
            d = d.set_expression_attribute_values(Some(values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
        }
        Ok(TransactWriteItem::builder().delete(d.build().map_err(build_err)?).build())
    };
    let items = match p.kind {
        ProblemKind::OrphanEmailClaim | ProblemKind::OrphanUsernameClaim => vec![
            delete("#user_id = :seen", &["user_id"], vec![(":seen", s(user))])?,
            check(USER_GONE, &["expires_at"], vec![(":now", n(now))])?,
        ],
        ProblemKind::StaleEmailClaim | ProblemKind::StaleUsernameClaim => {
            let Some(u) = fresh.users.get(user) else { return Ok(Outcome::ChangedMeanwhile) };
            vec![
                delete("#user_id = :seen", &["user_id"], vec![(":seen", s(user))])?,
                check("#version = :v", &["version"], vec![(":v", n(u.version))])?,
            ]
        }
        ProblemKind::OrphanCode | ProblemKind::OrphanSession => vec![
            delete("attribute_exists(pk)", &[], vec![])?,
            check(USER_GONE, &["expires_at"], vec![(":now", n(now))])?,
        ],
        ProblemKind::MissingEmailClaim
        | ProblemKind::ForeignEmailClaim
        | ProblemKind::MissingUsernameClaim
        | ProblemKind::ForeignUsernameClaim => {
            let Some(u) = fresh.users.get(user) else { return Ok(Outcome::ChangedMeanwhile) };
            let email = matches!(p.kind, ProblemKind::MissingEmailClaim | ProblemKind::ForeignEmailClaim);
            let (pk, sk) = match (email, &u.username) {
                (true, _) => (format!("EMAIL#{}", u.email), "EMAIL"),
                (false, Some(name)) => (format!("USERNAME#{name}"), "USERNAME"),
                (false, None) => return Ok(Outcome::ChangedMeanwhile),
            };
            let mut claim = key(&pk, sk);
            claim.insert("user_id".into(), s(user));
            if let Some(t) = u.expires_at {
                claim.insert("expires_at".into(), n(t));
            }
            // The registration's own condition: the claim is free (absent or expired).
            let put = Put::builder()
                .table_name(table)
                .set_item(Some(claim))
                .condition_expression("attribute_not_exists(pk) OR #expires_at <= :now")
                .set_expression_attribute_names(Some(names(&["expires_at"])))
                .expression_attribute_values(":now", n(now))
                .build()
                .map_err(build_err)?;
            vec![
                TransactWriteItem::builder().put(put).build(),
                check(
                    "#version = :v AND (attribute_not_exists(#expires_at) OR #expires_at > :now)",
                    &["version", "expires_at"],
                    vec![(":v", n(u.version)), (":now", n(now))],
                )?,
            ]
        }
        ProblemKind::NotListed | ProblemKind::Malformed => return Ok(Outcome::NotRepairable),
    };
    Ok(match transact(store, items).await? {
        None => Outcome::Repaired,
        Some(failed) if p.kind.is_user() && failed.first().copied() == Some(true) => Outcome::HeldByAnother,
        Some(_) => Outcome::ChangedMeanwhile,
    })
}

/// Sets the list index keys of an item found not listed, if it is still as read: present, with the
/// `list_pk` / `list_sk` read, and (a user) unexpired. Nothing else of the item is written.
async fn list(store: &DynamoStore, p: &Problem, fresh: &Snapshot, now: i64) -> StoreResult<Outcome> {
    let Some(seen) = fresh.unlisted.iter().find(|u| u.pk == p.pk && u.sk == p.sk) else {
        return Ok(Outcome::ChangedMeanwhile);
    };
    let Some((list, list_sk)) = list_entry(&p.pk, &p.sk) else {
        return Ok(Outcome::NotRepairable);
    };
    let mut condition = vec!["attribute_exists(pk)".to_owned()];
    let mut values = HashMap::from([(":list".to_owned(), s(list)), (":list_sk".to_owned(), s(list_sk))]);
    for (name, value) in [(LIST_PK, &seen.seen[0]), (LIST_SK, &seen.seen[1])] {
        match value {
            None => condition.push(format!("attribute_not_exists(#{name})")),
            Some(v) => {
                condition.push(format!("#{name} = :seen_{name}"));
                values.insert(format!(":seen_{name}"), v.clone());
            }
        }
    }
    let mut attrs = vec![LIST_PK, LIST_SK];
    if seen.user_id.is_some() {
        condition.push("(attribute_not_exists(#expires_at) OR #expires_at > :now)".to_owned());
        values.insert(":now".to_owned(), n(now));
        attrs.push("expires_at");
    }
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(key(&p.pk, &p.sk)))
        .update_expression(format!("SET #{LIST_PK} = :list, #{LIST_SK} = :list_sk"))
        .condition_expression(condition.join(" AND "))
        .set_expression_attribute_names(Some(names(&attrs)))
        .set_expression_attribute_values(Some(values))
        .send()
        .await;
    match result {
        Ok(_) => Ok(Outcome::Repaired),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(Outcome::ChangedMeanwhile),
        Err(e) => Err(err("UpdateItem", e)),
    }
}

/// Runs a transaction; `None` when written, else which items failed their condition.
async fn transact(store: &DynamoStore, items: Vec<TransactWriteItem>) -> StoreResult<Option<Vec<bool>>> {
    for attempt in 0..=CONFLICT_RETRIES {
        let result = store.client().transact_write_items().set_transact_items(Some(items.clone())).send().await;
        let e = match result {
            Ok(_) => return Ok(None),
            Err(e) => e,
        };
        let service = match e {
            SdkError::ServiceError(ctx) => ctx.into_err(),
            other => return Err(err("TransactWriteItems", other)),
        };
        let TransactWriteItemsError::TransactionCanceledException(cancelled) = service else {
            return Err(StoreError(format!("dynamodb TransactWriteItems: {}", service.code().unwrap_or("unknown"))));
        };
        let codes: Vec<&str> = cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
        if codes.contains(&"ConditionalCheckFailed") {
            return Ok(Some(codes.iter().map(|c| *c == "ConditionalCheckFailed").collect()));
        }
        if !codes.contains(&"TransactionConflict") || attempt == CONFLICT_RETRIES {
            return Err(StoreError(format!("dynamodb transaction cancelled: {}", codes.join(","))));
        }
        tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
    }
    Ok(Some(Vec::new()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn user(id: &str, email: &str, username: Option<&str>, expires: Option<i64>) -> Item {
        let mut i = item(&[
            ("pk", s(format!("USER#{id}"))),
            ("sk", s("PROFILE")),
            ("email", s(email)),
            ("email_normalised", s(email.to_lowercase())),
            ("version", n(1)),
            (LIST_PK, s("USER")),
            (LIST_SK, s(id)),
        ]);
        if let Some(u) = username {
            i.insert("username".into(), s(u));
        }
        if let Some(t) = expires {
            i.insert("expires_at".into(), n(t));
        }
        i
    }

    fn claim(pk: &str, sk: &str, id: &str, expires: Option<i64>) -> Item {
        let mut i = item(&[("pk", s(pk)), ("sk", s(sk)), ("user_id", s(id))]);
        if let Some(t) = expires {
            i.insert("expires_at".into(), n(t));
        }
        i
    }

    fn snapshot(items: &[Item]) -> Snapshot {
        let mut snap = Snapshot::default();
        for i in items {
            snap.add(i, 1000);
        }
        snap
    }

    fn kinds(snap: &Snapshot) -> Vec<(ProblemKind, String)> {
        snap.findings().into_iter().map(|p| (p.kind, p.pk)).collect()
    }

    #[test]
    fn a_consistent_table_has_no_findings() {
        let snap = snapshot(&[
            user("a", "A@x.io", Some("Ann"), None),
            claim("EMAIL#a@x.io", "EMAIL", "a", None),
            claim("USERNAME#ann", "USERNAME", "a", None),
            user("b", "b@x.io", None, Some(5000)),
            claim("EMAIL#b@x.io", "EMAIL", "b", Some(5000)),
            item(&[("pk", s("USER#a")), ("sk", s("SESSION#1")), ("expires_at", n(2000))]),
            item(&[("pk", s("RATE#login#ip")), ("sk", s("60")), ("expires_at", n(2000))]),
        ]);
        assert_eq!(kinds(&snap), vec![]);
        assert_eq!(snap.counts.items, 7);
        assert_eq!(snap.counts.users, 2);
        assert_eq!(snap.counts.sessions, 1);
        assert_eq!(snap.counts.rate_counters, 1);
    }

    #[test]
    fn each_inconsistency_is_named() {
        let snap = snapshot(&[
            claim("EMAIL#gone@x.io", "EMAIL", "gone", None),
            user("old", "new@x.io", Some("newname"), None),
            claim("EMAIL#new@x.io", "EMAIL", "old", None),
            claim("EMAIL#old@x.io", "EMAIL", "old", None),
            claim("USERNAME#oldname", "USERNAME", "old", None),
            user("bare", "bare@x.io", None, None),
            user("dup", "dup@x.io", None, None),
            claim("EMAIL#dup@x.io", "EMAIL", "other", None),
            item(&[("pk", s("USER#gone")), ("sk", s("CODE#activation")), ("expires_at", n(2000))]),
            item(&[("pk", s("USER#gone")), ("sk", s("SESSION#s")), ("expires_at", n(2000))]),
            user("late", "late@x.io", None, Some(999)),
            claim("EMAIL#late2@x.io", "EMAIL", "late", None),
            item(&[("pk", s("RATE#x#y")), ("sk", s("1")), ("expires_at", n(10))]),
            item(&[("pk", s("USER#z")), ("sk", s("PROFILE"))]),
        ]);
        assert_eq!(
            kinds(&snap),
            vec![
                (ProblemKind::OrphanEmailClaim, "EMAIL#dup@x.io".into()),
                (ProblemKind::OrphanEmailClaim, "EMAIL#gone@x.io".into()),
                (ProblemKind::OrphanEmailClaim, "EMAIL#late2@x.io".into()),
                (ProblemKind::StaleEmailClaim, "EMAIL#old@x.io".into()),
                (ProblemKind::StaleUsernameClaim, "USERNAME#oldname".into()),
                (ProblemKind::MissingEmailClaim, "USER#bare".into()),
                (ProblemKind::ForeignEmailClaim, "USER#dup".into()),
                (ProblemKind::MissingUsernameClaim, "USER#old".into()),
                (ProblemKind::OrphanCode, "USER#gone".into()),
                (ProblemKind::OrphanSession, "USER#gone".into()),
                (ProblemKind::Malformed, "USER#z".into()),
            ]
        );
        let late = snap.findings().into_iter().find(|p| p.pk == "EMAIL#late2@x.io").unwrap();
        assert_eq!(late.detail, "its user is expired");
        let stale = snap.findings().into_iter().find(|p| p.pk == "USERNAME#oldname").unwrap();
        assert_eq!(stale.detail, "its user's username is 'newname' now");
        assert_eq!(snap.expired.len(), 2);
    }

    #[test]
    fn users_and_groups_without_their_list_keys_are_not_listed() {
        let mut bare = user("a", "a@x.io", None, None);
        bare.remove(LIST_PK);
        bare.remove(LIST_SK);
        let mut wrong = user("b", "b@x.io", None, None);
        wrong.insert(LIST_SK.into(), s("c"));
        let mut expired = user("e", "e@x.io", None, Some(999));
        expired.remove(LIST_PK);
        let group = |name: &str, listed: bool| {
            let mut g = item(&[("pk", s(format!("GROUP#{name}"))), ("sk", s("GROUP")), ("name", s(name))]);
            if listed {
                g.insert(LIST_PK.into(), s("GROUP"));
                g.insert(LIST_SK.into(), s(name));
            }
            g
        };
        let snap = snapshot(&[
            bare,
            claim("EMAIL#a@x.io", "EMAIL", "a", None),
            wrong,
            claim("EMAIL#b@x.io", "EMAIL", "b", None),
            expired,
            user("d", "d@x.io", None, None),
            claim("EMAIL#d@x.io", "EMAIL", "d", None),
            group("editors", false),
            group("readers", true),
            item(&[("pk", s("RATE#x#y")), ("sk", s("1")), ("expires_at", n(2000))]),
        ]);
        let found = snap.findings();
        assert_eq!(
            found.iter().map(|p| (p.kind, p.pk.as_str(), p.user_id.as_deref())).collect::<Vec<_>>(),
            vec![
                (ProblemKind::NotListed, "GROUP#editors", None),
                (ProblemKind::NotListed, "USER#a", Some("a")),
                (ProblemKind::NotListed, "USER#b", Some("b")),
            ]
        );
        assert_eq!(found[1].detail, "no list_pk / list_sk: staff listings do not show it");
        assert_eq!(found[2].detail, "list_pk / list_sk are 'USER' / 'c', not its own");
    }

    #[test]
    fn an_expired_claim_of_a_live_user_is_a_missing_claim() {
        let snap = snapshot(&[user("a", "a@x.io", None, None), claim("EMAIL#a@x.io", "EMAIL", "a", Some(900))]);
        assert_eq!(kinds(&snap), vec![(ProblemKind::MissingEmailClaim, "USER#a".into())]);
        assert_eq!(snap.expired, vec![("EMAIL#a@x.io".to_owned(), "EMAIL".to_owned(), "email claim")]);
    }
}
