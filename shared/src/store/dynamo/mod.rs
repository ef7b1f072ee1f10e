//! The DynamoDB store: one table, keys `pk`/`sk`, TTL attribute `expires_at`.
//!
//! Uniqueness comes only from conditional writes on claim items inside the same transaction as
//! the user; single use of codes from a conditional delete; every read checks `expires_at`
//! itself, because DynamoDB removes expired items lazily.

mod audit;
mod codes;
mod counters;
/// `authctl doctor`: the table's consistency check and its repairs (feature `doctor`; also built
/// for the crate's own unit tests).
#[cfg(any(feature = "doctor", test))]
pub mod doctor;
mod groups;
mod identities;
mod mfa;
mod passkeys;
mod permissions;
mod schema;
mod sessions;
mod table;
mod users;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, KeysAndAttributes, Put, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;

use crate::domain::UserId;
use crate::ports::{StoreError, StoreResult};

use schema::{get_opt_s, get_s, key, s, user_pk, Item};
pub use schema::{list_entry, LIST_GROUPS, LIST_INDEX, LIST_PK, LIST_SK, LIST_USERS};

/// How often a transaction that lost to a concurrent one (`TransactionConflict`) is retried.
const CONFLICT_RETRIES: u32 = 8;

/// Keys per BatchGetItem request (DynamoDB's limit).
const BATCH_GET_MAX: usize = 100;
/// Bounds of the Limit of one Query of the list index (keys only: a page of a thousand is small).
const LIST_QUERY_MIN: usize = 100;
const LIST_QUERY_MAX: usize = 1000;

/// The DynamoDB-backed store. Cheap to clone; build once per cold start.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: crate::aws::LazyClient<Client>,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client: crate::aws::LazyClient::ready(client, Client::new), table: table.into() }
    }

    /// A store whose client is built on its first call (see [`crate::aws::LazyClient`]).
    pub fn lazy(client: crate::aws::LazyClient<Client>, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn client(&self) -> &Client {
        self.client.get()
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, pk: String, sk: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client()
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_err)?;
        Ok(out.item)
    }

    /// Deletes one item by key (absent items are fine).
    async fn delete_key(&self, key: Item) -> StoreResult<()> {
        self.client().delete_item().table_name(&self.table).set_key(Some(key)).send().await.map_err(store_err)?;
        Ok(())
    }

    /// Runs a transaction, retrying while it loses to a concurrent transaction on the same items.
    /// Returns the per-item cancellation codes when a condition failed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> StoreResult<Result<(), Vec<String>>> {
        let mut attempt = 0;
        loop {
            // A token per attempt of ours: the SDK's own retries of the attempt (after a 5xx, a
            // dropped connection or an attempt timeout) reuse it, so a transaction that committed
            // but whose reply was lost answers success instead of failing its own conditions.
            let token = crate::secrets::random_id().map_err(|e| StoreError::new(format!("random: {e}")))?;
            let result = self
                .client()
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(token)
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Ok(())),
                Err(e) => e,
            };
            let service = match err {
                SdkError::ServiceError(ctx) => ctx.into_err(),
                other => return Err(store_err(other)),
            };
            let TransactWriteItemsError::TransactionCanceledException(cancelled) = service else {
                return Err(StoreError::new(format!("TransactWriteItems: {}", service.code().unwrap_or("unknown"))));
            };
            let codes: Vec<String> =
                cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect();
            if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                return Ok(Err(codes));
            }
            if codes.iter().any(|c| c == "ThrottlingError" || c == "ProvisionedThroughputExceeded") {
                return Err(StoreError::throttled(format!("transaction cancelled: {}", codes.join(","))));
            }
            let conflict = codes.iter().any(|c| c == "TransactionConflict");
            if !conflict || attempt >= CONFLICT_RETRIES {
                return Err(StoreError::new(format!("transaction cancelled: {}", codes.join(","))));
            }
            attempt += 1;
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    fn put(&self, item: Item, condition: Option<(&str, Names, Values)>) -> StoreResult<TransactWriteItem> {
        let mut b = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some((expr, names, values)) = condition {
            b = b
                .condition_expression(expr)
                .set_expression_attribute_names(names.0)
                .set_expression_attribute_values(values.0);
        }
        Ok(TransactWriteItem::builder().put(b.build().map_err(build_err)?).build())
    }

    fn update(
        &self,
        key: Item,
        expr: &str,
        condition: &str,
        names: Names,
        values: Values,
    ) -> StoreResult<TransactWriteItem> {
        let u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expr)
            .condition_expression(condition)
            .set_expression_attribute_names(names.0)
            .set_expression_attribute_values(values.0)
            .build()
            .map_err(build_err)?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    fn delete(&self, key: Item, condition: Option<(&str, Names, Values)>) -> StoreResult<TransactWriteItem> {
        let mut b = Delete::builder().table_name(&self.table).set_key(Some(key));
        if let Some((expr, names, values)) = condition {
            b = b
                .condition_expression(expr)
                .set_expression_attribute_names(names.0)
                .set_expression_attribute_values(values.0);
        }
        Ok(TransactWriteItem::builder().delete(b.build().map_err(build_err)?).build())
    }

    /// Every item of a user's partition whose sort key starts with `sk_prefix`.
    async fn query_partition(&self, id: &UserId, sk_prefix: &str) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client()
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(user_pk(id)))
                .set_exclusive_start_key(start.take())
                .consistent_read(true);
            q = if sk_prefix.is_empty() {
                q.key_condition_expression("pk = :pk")
            } else {
                q.key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
                    .expression_attribute_values(":sk", s(sk_prefix))
            };
            let out = q.send().await.map_err(store_err)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// Deletes items by key, 25 per request, retrying what DynamoDB leaves unprocessed.
    async fn batch_delete(&self, keys: Vec<Item>) -> StoreResult<()> {
        let mut requests = Vec::new();
        for k in keys {
            let delete = DeleteRequest::builder().set_key(Some(k)).build().map_err(build_err)?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        self.batch_write(requests).await
    }

    /// Writes (puts or deletes), 25 per BatchWriteItem request, retrying what DynamoDB leaves
    /// unprocessed. Not a transaction: an error may leave some written.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        for chunk in requests.chunks(25) {
            let mut pending = HashMap::from([(self.table.clone(), chunk.to_vec())]);
            for attempt in 0.. {
                let out = self
                    .client()
                    .batch_write_item()
                    .set_request_items(Some(pending))
                    .send()
                    .await
                    .map_err(store_err)?;
                match out.unprocessed_items {
                    Some(rest) if !rest.is_empty() && attempt < 5 => {
                        pending = rest;
                        tokio::time::sleep(backoff(attempt + 1)).await;
                    }
                    Some(rest) if !rest.is_empty() => {
                        return Err(StoreError::throttled("BatchWriteItem left items unprocessed"))
                    }
                    _ => break,
                }
            }
        }
        Ok(())
    }
}

impl DynamoStore {
    /// One consistent BatchGetItem (up to 100 keys), retrying what DynamoDB leaves unprocessed.
    async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let request =
            KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().map_err(build_err)?;
        let mut request = HashMap::from([(self.table.clone(), request)]);
        let mut found: Vec<Item> = Vec::new();
        for attempt in 0..5 {
            let out =
                self.client().batch_get_item().set_request_items(Some(request)).send().await.map_err(store_err)?;
            if let Some(mut responses) = out.responses {
                found.extend(responses.remove(&self.table).unwrap_or_default());
            }
            match out.unprocessed_keys {
                Some(rest) if !rest.is_empty() => {
                    request = rest;
                    tokio::time::sleep(backoff(attempt + 1)).await;
                }
                _ => return Ok(found),
            }
        }
        // DynamoDB leaves keys unprocessed when their partitions are over their read rate.
        Err(StoreError::throttled("BatchGetItem left keys unprocessed"))
    }

    /// The items of `keys`, in the order of `keys` (None where absent): consistent BatchGetItems of
    /// at most [`BATCH_GET_MAX`] keys each.
    async fn get_in_order(&self, keys: &[Item]) -> StoreResult<Vec<Option<Item>>> {
        let table_key = |i: &Item| (get_opt_s(i, "pk"), get_opt_s(i, "sk"));
        let mut found = HashMap::new();
        for chunk in keys.chunks(BATCH_GET_MAX) {
            for item in self.batch_get(chunk.to_vec()).await? {
                found.insert(table_key(&item), item);
            }
        }
        Ok(keys.iter().map(|k| found.remove(&table_key(k))).collect())
    }

    /// Every item of the list `list` of the [`LIST_INDEX`] index, in list order: the keys from the
    /// index, then the items themselves (consistent reads; an item deleted meanwhile is skipped).
    async fn list_all(&self, list: &str) -> StoreResult<Vec<Item>> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = self.list_page(list, None, start.take(), None).await?;
            keys.extend(page);
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(self.get_in_order(&keys).await?.into_iter().flatten().collect())
    }

    /// The items of `keys` that exist, each once, in the order of `keys`.
    async fn get_existing(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let mut unique: Vec<Item> = Vec::new();
        for k in keys {
            if !unique.contains(&k) {
                unique.push(k);
            }
        }
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.get_in_order(&unique).await?.into_iter().flatten().collect())
    }

    /// Deletes the item at `key`; whether there was one.
    async fn delete_existing(&self, key: Item) -> StoreResult<bool> {
        let out = self
            .client()
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_err)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// One page of the [`LIST_INDEX`] index (an eventually consistent Query, ascending): the table
    /// keys of the items in `list` whose `list_sk` is after `after`, and where the next page starts.
    async fn list_page(
        &self,
        list: &str,
        after: Option<&str>,
        start: Option<Item>,
        limit: Option<usize>,
    ) -> StoreResult<(Vec<Item>, Option<Item>)> {
        let mut q = self
            .client()
            .query()
            .table_name(&self.table)
            .index_name(LIST_INDEX)
            .expression_attribute_names("#list_pk", LIST_PK)
            .expression_attribute_values(":list", s(list))
            .scan_index_forward(true)
            .set_limit(limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX)))
            .set_exclusive_start_key(start);
        q = match after {
            Some(after) => q
                .key_condition_expression("#list_pk = :list AND #list_sk > :after")
                .expression_attribute_names("#list_sk", LIST_SK)
                .expression_attribute_values(":after", s(after)),
            None => q.key_condition_expression("#list_pk = :list"),
        };
        let out = q.send().await.map_err(store_err)?;
        let keys = out
            .items
            .unwrap_or_default()
            .iter()
            .map(|i| Ok(key(get_s(i, "pk")?, &get_s(i, "sk")?)))
            .collect::<StoreResult<_>>()?;
        Ok((keys, out.last_evaluated_key.filter(|k| !k.is_empty())))
    }
}

const FREE_CLAIM: &str = "attribute_not_exists(pk) OR #expires_at <= :now";

/// Exponential backoff with full jitter, capped at 200 ms.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = (10u64 << attempt.min(5)).min(200);
    let mut b = [0u8; 2];
    let jitter = if getrandom::fill(&mut b).is_ok() { u64::from(u16::from_le_bytes(b)) } else { 0 };
    Duration::from_millis(1 + jitter % cap_ms)
}

/// A conditional write's outcome: true when written, false when its condition failed.
fn written<O, E, R>(result: Result<O, SdkError<E, R>>) -> StoreResult<bool>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(store_err(e)),
    }
}

/// A conditional write that returns an item (`ReturnValues`): the item when written, `None` when
/// its condition failed.
fn returned<E, R>(result: Result<Option<Item>, SdkError<E, R>>) -> StoreResult<Option<Item>>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(item) => Ok(item),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
        Err(e) => Err(store_err(e)),
    }
}

fn store_err<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = e.code().unwrap_or("").to_owned();
    let detail = match &e {
        SdkError::ServiceError(_) => format!("service error {code}: {}", e.message().unwrap_or("")),
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(_) => "dispatch failure".to_owned(),
        other => format!("{other}"),
    };
    let message = format!("dynamodb: {detail}");
    if THROTTLING_CODES.contains(&code.as_str()) {
        return StoreError::throttled(message);
    }
    StoreError::new(message)
}

/// The error codes with which DynamoDB refuses a call for its request rate: on an item or
/// partition (`ProvisionedThroughputExceededException`, `ThrottlingException`) or on the
/// account (`RequestLimitExceeded`). The SDK has retried them by then.
const THROTTLING_CODES: [&str; 3] =
    ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"];

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::new(format!("dynamodb request build: {e}"))
}

/// Expression attribute names, built fluently.
#[derive(Default)]
struct Names(Option<HashMap<String, String>>);
impl Names {
    fn of(names: &[&str]) -> Self {
        Self(Some(names.iter().map(|n| (format!("#{n}"), (*n).to_owned())).collect()))
    }
}

/// Expression attribute values, built fluently.
#[derive(Default)]
struct Values(Option<HashMap<String, AttributeValue>>);
impl Values {
    fn with(mut self, k: &str, v: AttributeValue) -> Self {
        self.0.get_or_insert_with(HashMap::new).insert(k.to_owned(), v);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_and_positive() {
        for attempt in 0..20 {
            let d = backoff(attempt);
            assert!(d >= Duration::from_millis(1) && d <= Duration::from_millis(201), "{d:?}");
        }
    }
}
