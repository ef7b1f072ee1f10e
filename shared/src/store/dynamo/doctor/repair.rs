//! The check's reads (the scan, the fresh reads of a finding) and writes (the repairs), through the
//! adapter's own helpers: every repair transaction goes through [`DynamoStore`]'s `transact`.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};

use super::snapshot::{claim_key, Snapshot};
use super::{Outcome, Problem, ProblemKind};
use crate::ports::StoreResult;
use crate::store::dynamo::schema::{
    claim_item, get_opt_s, key, list_entry, n, s, user_pk, Item, LIST_PK, LIST_SK, PROFILE, USER_PREFIX,
};
use crate::store::dynamo::{build_err, store_err, written, DynamoStore, Names, Values, FREE_CLAIM};

/// The condition under which a user counts as gone: absent, or past its expiry (the condition under
/// which a claim is free).
const USER_GONE: &str = FREE_CLAIM;

/// The cancellation code of a transaction item whose condition failed.
const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// One consistent scan of the whole table, page by page: the snapshot and the requests made.
pub(super) async fn scan(store: &DynamoStore, now: i64, page_size: Option<i32>) -> StoreResult<(Snapshot, u64)> {
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
            .map_err(store_err)?;
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

/// One item, read consistently (None when absent).
async fn get(store: &DynamoStore, pk: &str, sk: &str) -> StoreResult<Option<Item>> {
    Ok(store.get(pk.to_owned(), sk).await?.filter(|i| !i.is_empty()))
}

/// Reads again the items a finding involves: the item itself, and its user or its claims.
pub(super) async fn reread(store: &DynamoStore, p: &Problem, now: i64) -> StoreResult<Snapshot> {
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
        if let Some(u) = fresh.users.get(p.pk.trim_start_matches(USER_PREFIX)).cloned() {
            let claim = match p.kind {
                ProblemKind::MissingEmailClaim | ProblemKind::ForeignEmailClaim => Some(claim_key(true, &u.email)),
                _ => u.username.map(|name| claim_key(false, &name)),
            };
            if let Some((pk, sk)) = claim {
                if let Some(c) = get(store, &pk, sk).await? {
                    fresh.add(&c, now);
                }
            }
        }
    } else {
        // A claim names its user in user_id; a code or session in its partition key.
        let user = match get_opt_s(&item, "user_id") {
            Some(id) if p.kind.is_claim() => id,
            _ => p.pk.trim_start_matches(USER_PREFIX).to_owned(),
        };
        if let Some(u) = get(store, &user_pk(&user), PROFILE).await? {
            fresh.add(&u, now);
        }
    }
    Ok(fresh)
}

/// Deletes an item still past its expiry; false when it was renewed or is gone meanwhile.
pub(super) async fn delete_expired(store: &DynamoStore, pk: &str, sk: &str, now: i64) -> StoreResult<bool> {
    let result = store
        .client()
        .delete_item()
        .table_name(store.table())
        .set_key(Some(key(pk.to_owned(), sk)))
        .condition_expression("#expires_at <= :now")
        .set_expression_attribute_names(Names::of(&["expires_at"]).0)
        .set_expression_attribute_values(Values::default().with(":now", n(now)).0)
        .send()
        .await;
    written(result)
}

/// A `ConditionCheck` on one item, as a transaction item.
fn check(
    store: &DynamoStore,
    key: Item,
    condition: &str,
    names: Names,
    values: Values,
) -> StoreResult<TransactWriteItem> {
    let c = ConditionCheck::builder()
        .table_name(store.table())
        .set_key(Some(key))
        .condition_expression(condition)
        .set_expression_attribute_names(names.0)
        .set_expression_attribute_values(values.0)
        .build()
        .map_err(build_err)?;
    Ok(TransactWriteItem::builder().condition_check(c).build())
}

/// Applies the repair of one confirmed problem; `fresh` holds the items as re-read.
pub(super) async fn repair(store: &DynamoStore, p: &Problem, fresh: &Snapshot, now: i64) -> StoreResult<Outcome> {
    if p.kind == ProblemKind::NotListed {
        return list(store, p, fresh, now).await;
    }
    let Some(user) = p.user_id.as_deref() else {
        return Ok(Outcome::NotRepairable);
    };
    // A condition on the user item, and one on the item at fault.
    let on_user = |condition: &str, names: Names, values: Values| {
        check(store, key(user_pk(user), PROFILE), condition, names, values)
    };
    let user_gone = || on_user(USER_GONE, Names::of(&["expires_at"]), Values::default().with(":now", n(now)));
    let delete = |condition: &str, names: Names, values: Values| {
        store.delete(key(p.pk.clone(), &p.sk), Some((condition, names, values)))
    };
    let still_owned = || delete("#user_id = :seen", Names::of(&["user_id"]), Values::default().with(":seen", s(user)));
    let items = match p.kind {
        ProblemKind::OrphanEmailClaim | ProblemKind::OrphanUsernameClaim => vec![still_owned()?, user_gone()?],
        ProblemKind::StaleEmailClaim | ProblemKind::StaleUsernameClaim => {
            let Some(u) = fresh.users.get(user) else { return Ok(Outcome::ChangedMeanwhile) };
            vec![
                still_owned()?,
                on_user("#version = :v", Names::of(&["version"]), Values::default().with(":v", n(u.version)))?,
            ]
        }
        ProblemKind::OrphanCode | ProblemKind::OrphanSession => {
            vec![delete("attribute_exists(pk)", Names::default(), Values::default())?, user_gone()?]
        }
        ProblemKind::MissingEmailClaim
        | ProblemKind::ForeignEmailClaim
        | ProblemKind::MissingUsernameClaim
        | ProblemKind::ForeignUsernameClaim => {
            let Some(u) = fresh.users.get(user) else { return Ok(Outcome::ChangedMeanwhile) };
            let email = matches!(p.kind, ProblemKind::MissingEmailClaim | ProblemKind::ForeignEmailClaim);
            let (pk, sk) = match (email, &u.username) {
                (true, _) => claim_key(true, &u.email),
                (false, Some(name)) => claim_key(false, name),
                (false, None) => return Ok(Outcome::ChangedMeanwhile),
            };
            // The registration's own condition: the claim is free (absent or expired).
            let free = (FREE_CLAIM, Names::of(&["expires_at"]), Values::default().with(":now", n(now)));
            vec![
                store.put(claim_item(pk, sk, user, u.expires_at), Some(free))?,
                on_user(
                    "#version = :v AND (attribute_not_exists(#expires_at) OR #expires_at > :now)",
                    Names::of(&["version", "expires_at"]),
                    Values::default().with(":v", n(u.version)).with(":now", n(now)),
                )?,
            ]
        }
        ProblemKind::NotListed | ProblemKind::Malformed => return Ok(Outcome::NotRepairable),
    };
    Ok(match store.transact(items).await? {
        Ok(()) => Outcome::Repaired,
        Err(codes) if p.kind.is_user() && codes.first().is_some_and(|c| c == CONDITION_FAILED) => {
            Outcome::HeldByAnother
        }
        Err(_) => Outcome::ChangedMeanwhile,
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
    let mut values = Values::default().with(":list", s(list)).with(":list_sk", s(list_sk));
    for (name, value) in [(LIST_PK, &seen.seen[0]), (LIST_SK, &seen.seen[1])] {
        match value {
            None => condition.push(format!("attribute_not_exists(#{name})")),
            Some(v) => {
                condition.push(format!("#{name} = :seen_{name}"));
                values = values.with(&format!(":seen_{name}"), v.clone());
            }
        }
    }
    let mut attrs = vec![LIST_PK, LIST_SK];
    if seen.user_id.is_some() {
        condition.push("(attribute_not_exists(#expires_at) OR #expires_at > :now)".to_owned());
        values = values.with(":now", n(now));
        attrs.push("expires_at");
    }
    let result = store
        .client()
        .update_item()
        .table_name(store.table())
        .set_key(Some(key(p.pk.clone(), &p.sk)))
        .update_expression(format!("SET #{LIST_PK} = :list, #{LIST_SK} = :list_sk"))
        .condition_expression(condition.join(" AND "))
        .set_expression_attribute_names(Names::of(&attrs).0)
        .set_expression_attribute_values(values.0)
        .send()
        .await;
    match result {
        Ok(_) => Ok(Outcome::Repaired),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(Outcome::ChangedMeanwhile),
        Err(e) => Err(store_err(e)),
    }
}
