//! [`MfaStore`]: a user's second factors in its partition. `MFA#TOTP` holds the sealed secret,
//! `confirmed`, `created_at`, `last_step` and, while pending, `expires_at`; `MFA#RECOVERY` holds
//! the MACs of the unspent recovery codes as a string set (`macs`, absent once all are spent) and
//! `created_at`. The user's `mfa_enabled` changes only here, in the same transaction as the factor,
//! and moves the user's `version` on so that a concurrent profile write retries.
//!
//! [`ChallengeStore`]: `CHALLENGE#<id>` / `CHALLENGE` with `kind`, `user_id`, `data`, `attempts`
//! and `expires_at`; answers are counted by a conditional `ADD` before they are judged, and the
//! right one takes the item by a conditional delete (single use).

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, ReturnValue, TransactWriteItem};

use super::schema::{expired, get_bool, get_opt_n, get_opt_s, get_s, key, n, s, user_pk, Item};
use super::schema::{CHALLENGE, CHALLENGE_PREFIX, MFA_PREFIX, MFA_RECOVERY, MFA_TOTP, PROFILE};
use super::{build_err, returned, written, DynamoStore, Names, Values};
use crate::domain::{Challenge, ChallengeKind, Mfa, RecoveryCodes, TotpFactor, UserId};
use crate::ports::{ChallengeStore, MfaStore, StoreError, StoreResult};

fn totp_item(f: &TotpFactor) -> Item {
    let mut item = key(user_pk(&f.user_id), MFA_TOTP);
    item.insert("sealed".into(), s(&f.sealed_secret));
    item.insert("confirmed".into(), AttributeValue::Bool(f.confirmed));
    item.insert("created_at".into(), n(f.created_at));
    if let Some(step) = f.last_step {
        item.insert("last_step".into(), n(step));
    }
    if let Some(t) = f.expires_at {
        item.insert("expires_at".into(), n(t));
    }
    item
}

fn totp_from_item(user: &UserId, item: &Item) -> StoreResult<TotpFactor> {
    Ok(TotpFactor {
        user_id: user.clone(),
        sealed_secret: get_s(item, "sealed")?,
        confirmed: get_bool(item, "confirmed"),
        created_at: get_opt_n(item, "created_at")?.unwrap_or_default(),
        last_step: get_opt_n(item, "last_step")?,
        expires_at: get_opt_n(item, "expires_at")?,
    })
}

fn recovery_item(user: &UserId, codes: &RecoveryCodes) -> Item {
    let mut item = key(user_pk(user), MFA_RECOVERY);
    if !codes.macs.is_empty() {
        item.insert("macs".into(), AttributeValue::Ss(codes.macs.iter().cloned().collect()));
    }
    item.insert("created_at".into(), n(codes.created_at));
    item
}

fn recovery_from_item(user: &UserId, item: &Item) -> StoreResult<RecoveryCodes> {
    let macs: BTreeSet<String> = match item.get("macs") {
        Some(AttributeValue::Ss(set)) => set.iter().cloned().collect(),
        _ => BTreeSet::new(),
    };
    Ok(RecoveryCodes {
        user_id: Some(user.clone()),
        macs,
        created_at: get_opt_n(item, "created_at")?.unwrap_or_default(),
    })
}

impl DynamoStore {
    /// The user's `mfa_enabled` set to `on`, its version moved on, while the user exists.
    fn set_mfa_flag(&self, user: &UserId, on: bool) -> StoreResult<TransactWriteItem> {
        self.update(
            key(user_pk(user), PROFILE),
            "SET #mfa_enabled = :on ADD #version :one",
            "attribute_exists(pk)",
            Names::of(&["mfa_enabled", "version"]),
            Values::default().with(":on", AttributeValue::Bool(on)).with(":one", n(1)),
        )
    }
}

#[async_trait]
impl MfaStore for DynamoStore {
    async fn put_pending_totp(&self, factor: &TotpFactor) -> StoreResult<bool> {
        let put = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(totp_item(factor)))
            .condition_expression("attribute_not_exists(pk) OR #confirmed = :f")
            .expression_attribute_names("#confirmed", "confirmed")
            .expression_attribute_values(":f", AttributeValue::Bool(false));
        written(put.send().await)
    }

    async fn get_mfa(&self, user: &UserId, now: i64) -> StoreResult<Mfa> {
        let mut mfa = Mfa::default();
        for item in self.query_partition(user, MFA_PREFIX).await? {
            match get_opt_s(&item, "sk").as_deref() {
                Some(MFA_TOTP) if !expired(&item, now) => mfa.totp = Some(totp_from_item(user, &item)?),
                Some(MFA_RECOVERY) => mfa.recovery = recovery_from_item(user, &item)?,
                _ => {}
            }
        }
        if !mfa.totp.as_ref().is_some_and(|t| t.confirmed) {
            mfa.recovery = RecoveryCodes::default();
        }
        Ok(mfa)
    }

    async fn confirm_totp(
        &self,
        user: &UserId,
        sealed: &str,
        step: u64,
        codes: &RecoveryCodes,
        now: i64,
    ) -> StoreResult<bool> {
        let items = vec![
            self.update(
                key(user_pk(user), MFA_TOTP),
                "SET #confirmed = :t, #last_step = :step REMOVE #expires_at",
                "#confirmed = :f AND #sealed = :sealed AND #expires_at > :now",
                Names::of(&["confirmed", "last_step", "expires_at", "sealed"]),
                Values::default()
                    .with(":t", AttributeValue::Bool(true))
                    .with(":f", AttributeValue::Bool(false))
                    .with(":step", n(step))
                    .with(":sealed", s(sealed))
                    .with(":now", n(now)),
            )?,
            self.put(recovery_item(user, codes), None)?,
            self.set_mfa_flag(user, true)?,
        ];
        Ok(self.transact(items).await?.is_ok())
    }

    async fn accept_totp_step(&self, user: &UserId, step: u64) -> StoreResult<bool> {
        let update = self
            .client()
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), MFA_TOTP)))
            .update_expression("SET #last_step = :step")
            .condition_expression("#confirmed = :t AND (attribute_not_exists(#last_step) OR #last_step < :step)")
            .expression_attribute_names("#last_step", "last_step")
            .expression_attribute_names("#confirmed", "confirmed")
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":t", AttributeValue::Bool(true));
        written(update.send().await)
    }

    async fn spend_recovery_code(&self, user: &UserId, mac: &str) -> StoreResult<bool> {
        let update = self
            .client()
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), MFA_RECOVERY)))
            .update_expression("DELETE #macs :spent")
            .condition_expression("contains(#macs, :mac)")
            .expression_attribute_names("#macs", "macs")
            .expression_attribute_values(":spent", AttributeValue::Ss(vec![mac.to_owned()]))
            .expression_attribute_values(":mac", s(mac));
        written(update.send().await)
    }

    async fn replace_recovery_codes(&self, user: &UserId, codes: &RecoveryCodes) -> StoreResult<bool> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), MFA_TOTP)))
            .condition_expression("#confirmed = :t")
            .expression_attribute_names("#confirmed", "confirmed")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .build()
            .map_err(build_err)?;
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            self.put(recovery_item(user, codes), None)?,
        ];
        Ok(self.transact(items).await?.is_ok())
    }

    async fn remove_mfa(&self, user: &UserId) -> StoreResult<bool> {
        let items = vec![
            self.delete(key(user_pk(user), MFA_TOTP), None)?,
            self.delete(key(user_pk(user), MFA_RECOVERY), None)?,
            self.set_mfa_flag(user, false)?,
        ];
        Ok(self.transact(items).await?.is_ok())
    }
}

fn challenge_item(c: &Challenge) -> Item {
    let mut item = key(format!("{CHALLENGE_PREFIX}{}", c.id), CHALLENGE);
    item.insert("kind".into(), s(c.kind.as_str()));
    if let Some(u) = &c.user_id {
        item.insert("user_id".into(), s(u.as_str()));
    }
    item.insert("data".into(), s(&c.data));
    item.insert("attempts".into(), n(c.attempts));
    item.insert("expires_at".into(), n(c.expires_at));
    item
}

fn challenge_from_item(id: &str, item: &Item) -> StoreResult<Challenge> {
    let kind = get_s(item, "kind")?;
    Ok(Challenge {
        id: id.to_owned(),
        kind: ChallengeKind::parse(&kind).ok_or_else(|| StoreError::new(format!("stored challenge kind {kind:?}")))?,
        user_id: match get_opt_s(item, "user_id") {
            Some(raw) => Some(UserId::parse(&raw).ok_or_else(|| StoreError::new("stored user id malformed"))?),
            None => None,
        },
        data: get_opt_s(item, "data").unwrap_or_default(),
        attempts: get_opt_n(item, "attempts")?.unwrap_or_default(),
        expires_at: get_opt_n(item, "expires_at")?.unwrap_or_default(),
    })
}

fn challenge_key(id: &str) -> Item {
    key(format!("{CHALLENGE_PREFIX}{id}"), CHALLENGE)
}

#[async_trait]
impl ChallengeStore for DynamoStore {
    async fn put_challenge(&self, challenge: &Challenge) -> StoreResult<bool> {
        let put = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(challenge_item(challenge)))
            .condition_expression("attribute_not_exists(pk)");
        written(put.send().await)
    }

    async fn reserve_challenge(&self, id: &str, max_attempts: u32, now: i64) -> StoreResult<Option<Challenge>> {
        let out = self
            .client()
            .update_item()
            .table_name(&self.table)
            .set_key(Some(challenge_key(id)))
            .update_expression("ADD #attempts :one")
            .condition_expression("attribute_exists(pk) AND #expires_at > :now AND #attempts < :max")
            .expression_attribute_names("#attempts", "attempts")
            .expression_attribute_names("#expires_at", "expires_at")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":max", n(max_attempts))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        returned(out.map(|o| o.attributes))?.map(|item| challenge_from_item(id, &item)).transpose()
    }

    async fn take_challenge(&self, id: &str, now: i64) -> StoreResult<Option<Challenge>> {
        let out = self
            .client()
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(challenge_key(id)))
            .condition_expression("attribute_exists(pk) AND #expires_at > :now")
            .expression_attribute_names("#expires_at", "expires_at")
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        returned(out.map(|o| o.attributes))?.map(|item| challenge_from_item(id, &item)).transpose()
    }
}
