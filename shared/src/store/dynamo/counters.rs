//! [`Limiter`]: rate counters, reservations, give-backs and cooldowns.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::TransactWriteItem;

use super::schema::{counter_key, counter_state, email_pk, expired, key, n, Item, EMAIL};
use super::{store_err, written, DynamoStore, Names, Values, FREE_CLAIM};
use crate::domain::Email;
use crate::ports::{CounterKey, CounterState, Limiter, Reservation, StoreError, StoreResult};

impl DynamoStore {
    /// The transaction items of [`Limiter::give_back`]: one unit back to each counter of
    /// `refund` that is still there (the condition fails otherwise), `forget` deleted.
    pub(super) fn give_back_items(
        &self,
        refund: &[CounterKey],
        forget: &[CounterKey],
    ) -> StoreResult<Vec<TransactWriteItem>> {
        let mut items = refund
            .iter()
            .map(|c| {
                self.update(
                    counter_key(c),
                    "ADD #count :minus",
                    "attribute_exists(#count) AND #count > :zero",
                    Names::of(&["count"]),
                    Values::default().with(":minus", n(-1)).with(":zero", n(0)),
                )
            })
            .collect::<StoreResult<Vec<_>>>()?;
        for c in forget {
            items.push(self.delete(counter_key(c), None)?);
        }
        Ok(items)
    }

    /// One BatchGetItem for counters and, with `email`, that email's claim (returned apart).
    pub(super) async fn read_items(
        &self,
        counters: &[CounterKey],
        email: Option<&Email>,
        now: i64,
    ) -> StoreResult<(Option<Item>, Vec<CounterState>)> {
        let claim_key = email.map(|e| key(email_pk(e), EMAIL));
        let mut keys: Vec<Item> = claim_key.iter().cloned().collect();
        keys.extend(counters.iter().map(counter_key));
        let found = self.batch_get(keys).await?;
        let same = |i: &Item, k: &Item| i.get("pk") == k.get("pk") && i.get("sk") == k.get("sk");
        let claim = claim_key.as_ref().and_then(|k| found.iter().find(|i| same(i, k)).cloned());
        let states = counters
            .iter()
            .map(|c| {
                let k = counter_key(c);
                found.iter().find(|i| same(i, &k) && !expired(i, now)).map(counter_state).unwrap_or_default()
            })
            .collect();
        Ok((claim, states))
    }
}

#[async_trait]
impl Limiter for DynamoStore {
    async fn hit(&self, counter: &CounterKey, expires_at: i64, now: i64) -> StoreResult<CounterState> {
        // One write in the usual case (a hot counter is a throttling risk, and every write is
        // billed, a failed conditional one too): the ADD, on a counter that is absent or live. A
        // counter past its `expires_at` that TTL has not removed yet fails the condition and is
        // started again from one, unless a concurrent hit did that first (then it is added to).
        let names = || Names::of(&["count", "last_at", "expires_at"]).0;
        let values = || Values::default().with(":one", n(1)).with(":now", n(now)).with(":exp", n(expires_at)).0;
        for _ in 0..2 {
            let added = self
                .client()
                .update_item()
                .table_name(&self.table)
                .set_key(Some(counter_key(counter)))
                .update_expression("ADD #count :one SET #last_at = :now, #expires_at = :exp")
                .condition_expression("attribute_not_exists(pk) OR #expires_at > :now")
                .set_expression_attribute_names(names())
                .set_expression_attribute_values(values())
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                .send()
                .await;
            match added {
                Ok(out) => return Ok(out.attributes.as_ref().map(counter_state).unwrap_or_default()),
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => {}
                Err(e) => return Err(store_err(e)),
            }
            let restarted = self
                .client()
                .update_item()
                .table_name(&self.table)
                .set_key(Some(counter_key(counter)))
                .update_expression("SET #count = :one, #last_at = :now, #expires_at = :exp")
                .condition_expression("#expires_at <= :now")
                .set_expression_attribute_names(names())
                .set_expression_attribute_values(values())
                .send()
                .await;
            match restarted {
                Ok(_) => return Ok(CounterState { count: 1, last_at: now }),
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => {}
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(StoreError::new("hit: the counter kept changing"))
    }

    async fn read(&self, counters: &[CounterKey], now: i64) -> StoreResult<Vec<CounterState>> {
        if counters.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.read_items(counters, None, now).await?.1)
    }

    async fn reserve(&self, reservations: &[Reservation], now: i64) -> StoreResult<Result<(), usize>> {
        let item = |r: &Reservation| {
            let mut condition = "attribute_not_exists(#count) OR #count < :limit".to_owned();
            let mut values = Values::default()
                .with(":one", n(1))
                .with(":now", n(now))
                .with(":exp", n(r.expires_at))
                .with(":limit", n(r.limit));
            if let Some(at) = r.or_at {
                condition.push_str(" OR (#count = :at_count AND #last_at = :at_last)");
                values = values.with(":at_count", n(at.count)).with(":at_last", n(at.last_at));
            }
            (condition, values)
        };
        let names = || Names::of(&["count", "last_at", "expires_at"]);
        const EXPR: &str = "ADD #count :one SET #last_at = :now, #expires_at = :exp";
        if let [r] = reservations {
            let (condition, values) = item(r);
            let out = self
                .client()
                .update_item()
                .table_name(&self.table)
                .set_key(Some(counter_key(&r.counter)))
                .update_expression(EXPR)
                .condition_expression(condition)
                .set_expression_attribute_names(names().0)
                .set_expression_attribute_values(values.0)
                .send()
                .await;
            return match out {
                Ok(_) => Ok(Ok(())),
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(Err(0)),
                Err(e) => Err(store_err(e)),
            };
        }
        let items = reservations
            .iter()
            .map(|r| {
                let (condition, values) = item(r);
                self.update(counter_key(&r.counter), EXPR, &condition, names(), values)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        match self.transact(items).await? {
            Ok(()) => Ok(Ok(())),
            Err(codes) => match codes.iter().position(|c| c == "ConditionalCheckFailed") {
                Some(i) => Ok(Err(i)),
                None => Err(StoreError::new(format!("reserve cancelled: {}", codes.join(",")))),
            },
        }
    }

    async fn give_back(&self, refund: &[CounterKey], forget: &[CounterKey]) -> StoreResult<()> {
        // One round trip in the usual case; a counter gone meanwhile (its TTL, or a clear) fails
        // its condition, and the rest are then given back one by one, skipping the missing.
        let items = self.give_back_items(refund, forget)?;
        match items.len() {
            0 => return Ok(()),
            1 if forget.len() == 1 => return self.clear(&forget[0]).await,
            _ => {}
        }
        if self.transact(items).await?.is_ok() {
            return Ok(());
        }
        for c in refund {
            let out = self
                .client()
                .update_item()
                .table_name(&self.table)
                .set_key(Some(counter_key(c)))
                .update_expression("ADD #count :minus")
                .condition_expression("attribute_exists(#count) AND #count > :zero")
                .set_expression_attribute_names(Names::of(&["count"]).0)
                .set_expression_attribute_values(Values::default().with(":minus", n(-1)).with(":zero", n(0)).0)
                .send()
                .await;
            match out {
                Ok(_) => {}
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => {}
                Err(e) => return Err(store_err(e)),
            }
        }
        for c in forget {
            self.clear(c).await?;
        }
        Ok(())
    }

    async fn clear(&self, counter: &CounterKey) -> StoreResult<()> {
        self.delete_key(counter_key(counter)).await?;
        Ok(())
    }

    async fn take_cooldown(&self, counter: &CounterKey, until: i64, now: i64) -> StoreResult<bool> {
        let mut item = counter_key(counter);
        item.insert("count".into(), n(1));
        item.insert("last_at".into(), n(now));
        item.insert("expires_at".into(), n(until));
        let result = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(FREE_CLAIM)
            .set_expression_attribute_names(Names::of(&["expires_at"]).0)
            .set_expression_attribute_values(Values::default().with(":now", n(now)).0)
            .send()
            .await;
        written(result)
    }
}
