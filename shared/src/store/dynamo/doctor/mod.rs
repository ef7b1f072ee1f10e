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
//!   see [`super::LIST_INDEX`]) that the staff listings read: an item written before the
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
//! lock, so it cannot hold any of these inconsistencies, and the check is about the raw items. It
//! reads and writes through the adapter's own helpers: the table's keys from `dynamo/schema.rs`,
//! and every repair transaction through [`DynamoStore`]'s one `transact` (a ClientRequestToken per
//! attempt, which the SDK's own retries reuse; jittered retries of a transaction that lost to a
//! concurrent one), like every transaction of the store.
//!
//! Compiled only with the crate feature `doctor` (authctl enables it; the Lambda functions do not)
//! and for the crate's own unit tests.

mod repair;
mod snapshot;

use std::collections::BTreeMap;

use serde::Serialize;

use super::DynamoStore;
use crate::ports::{Clock, StoreResult};
use repair::{delete_expired, repair, reread, scan};
use snapshot::Snapshot;

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
    pub permissions: u64,
    pub audit_entries: u64,
    /// TOTP factors and recovery-code sets.
    pub second_factors: u64,
    /// MFA sign-in steps and WebAuthn ceremonies under way.
    pub challenges: u64,
    /// Provider links: claims and accounts' sides, two items per link.
    pub identity_items: u64,
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
