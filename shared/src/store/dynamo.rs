//! The DynamoDB store: one table, keys `pk`/`sk`, TTL attribute `expires_at`.
//!
//! Uniqueness comes only from conditional writes on claim items inside the same transaction as
//! the user; single use of codes from a conditional delete; every read checks `expires_at`
//! itself, because DynamoDB removes expired items lazily.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, DeleteRequest, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;

use crate::domain::Group;
use crate::domain::{CodePurpose, Email, User, UserId, Username};
use crate::ports::{
    ActivateError, ChangeEmailError, CodeRecord, CodeStore, CreateUserError, Reservation, Rotation, Session,
    SessionStore, StoreError, StoreResult, UpdateUserError, UserStore, MAX_CODE_ATTEMPTS,
};
use crate::ports::{CounterKey, CounterState, GiveBack, GroupStore, Limiter};

type Item = HashMap<String, AttributeValue>;

/// How often a transaction that lost to a concurrent one (`TransactionConflict`) is retried.
const CONFLICT_RETRIES: u32 = 8;

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

/// The `list_pk` / `list_sk` an item with these table keys must carry, if it is listed at all.
pub fn list_entry<'a>(pk: &'a str, sk: &str) -> Option<(&'static str, &'a str)> {
    match sk {
        PROFILE => pk.strip_prefix("USER#").map(|id| (LIST_USERS, id)),
        GROUP => pk.strip_prefix("GROUP#").map(|name| (LIST_GROUPS, name)),
        _ => None,
    }
}

/// Keys per BatchGetItem request (DynamoDB's limit).
const BATCH_GET_MAX: usize = 100;
/// Bounds of the Limit of one Query of the list index (keys only: a page of a thousand is small).
const LIST_QUERY_MIN: usize = 100;
const LIST_QUERY_MAX: usize = 1000;

/// The DynamoDB-backed store. Cheap to clone; build once per cold start.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: crate::LazyClient<Client>,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client: crate::LazyClient::ready(client, Client::new), table: table.into() }
    }

    /// A store whose client is built on its first call (see [`crate::LazyClient`]).
    pub fn lazy(client: crate::LazyClient<Client>, table: impl Into<String>) -> Self {
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
            let token = crate::secrets::random_id().map_err(|e| StoreError(format!("random: {e}")))?;
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
                return Err(StoreError(format!("TransactWriteItems: {}", service.code().unwrap_or("unknown"))));
            };
            let codes: Vec<String> =
                cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect();
            if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                return Ok(Err(codes));
            }
            let conflict = codes.iter().any(|c| c == "TransactionConflict");
            if !conflict || attempt >= CONFLICT_RETRIES {
                return Err(StoreError(format!("transaction cancelled: {}", codes.join(","))));
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

    /// The transaction items of [`Limiter::give_back`]: one unit back to each counter of
    /// `refund` that is still there (the condition fails otherwise), `forget` deleted.
    fn give_back_items(&self, refund: &[CounterKey], forget: &[CounterKey]) -> StoreResult<Vec<TransactWriteItem>> {
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

    /// A transaction item consuming a one-time code: right hash, unexpired, guesses left.
    /// The condition under which a code accepts `code_hash` (as [`CodeRecord::usable`]).
    fn usable_code(code_hash: &str, now: i64) -> (&'static str, Names, Values) {
        (
            "#code_hash = :h AND #expires_at > :now AND (attribute_not_exists(#attempts) OR #attempts <= :max) \
             AND (attribute_not_exists(#spent) OR #spent = :f)",
            Names::of(&["code_hash", "expires_at", "attempts", "spent"]),
            Values::default()
                .with(":h", s(code_hash))
                .with(":now", n(now))
                .with(":max", n(MAX_CODE_ATTEMPTS))
                .with(":f", AttributeValue::Bool(false)),
        )
    }

    fn consume_code(
        &self,
        id: &UserId,
        purpose: CodePurpose,
        code_hash: &str,
        now: i64,
    ) -> StoreResult<TransactWriteItem> {
        self.delete(key(user_pk(id), &code_sk(purpose)), Some(Self::usable_code(code_hash, now)))
    }

    /// Unconditional deletes of the user's codes of every purpose but `keep` (absent ones are
    /// fine): no code sent before a security event works after it.
    fn delete_codes(&self, id: &UserId, keep: Option<CodePurpose>) -> StoreResult<Vec<TransactWriteItem>> {
        CodePurpose::ALL
            .into_iter()
            .filter(|p| Some(*p) != keep)
            .map(|p| self.delete(key(user_pk(id), &code_sk(p)), None))
            .collect()
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
        for chunk in keys.chunks(25) {
            let mut requests = Vec::new();
            for k in chunk {
                let delete = DeleteRequest::builder().set_key(Some(k.clone())).build().map_err(build_err)?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            let mut pending = HashMap::from([(self.table.clone(), requests)]);
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
                        return Err(StoreError("BatchWriteItem left items unprocessed".into()))
                    }
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// Creates the table with TTL on `expires_at` and the [`LIST_INDEX`] index if it does not exist
    /// (local stack, tests, authctl).
    pub async fn create_table(&self) -> StoreResult<()> {
        let created = self
            .client()
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr_def("pk")?)
            .attribute_definitions(attr_def("sk")?)
            .attribute_definitions(attr_def(LIST_PK)?)
            .attribute_definitions(attr_def(LIST_SK)?)
            .key_schema(key_schema("pk", KeyType::Hash)?)
            .key_schema(key_schema("sk", KeyType::Range)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(LIST_INDEX)
                    .key_schema(key_schema(LIST_PK, KeyType::Hash)?)
                    .key_schema(key_schema(LIST_SK, KeyType::Range)?)
                    .projection(Projection::builder().projection_type(ProjectionType::KeysOnly).build())
                    .build()
                    .map_err(build_err)?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => return Ok(()),
            Err(e) => return Err(store_err(e)),
        }
        let ttl =
            TimeToLiveSpecification::builder().enabled(true).attribute_name("expires_at").build().map_err(build_err)?;
        self.client()
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// Every item of one partition kind (`USER#`, `EMAIL#`, ...), expired or not: for tests and
    /// consistency checks, never on a request path.
    pub async fn scan_prefix(&self, prefix: &str) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client()
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :p)")
                .expression_attribute_values(":p", s(prefix))
                .set_exclusive_start_key(start.take())
                .consistent_read(true)
                .send()
                .await
                .map_err(store_err)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }
}

/// A condition: the claim belongs to this user.
fn owned_by(id: &UserId) -> (&'static str, Names, Values) {
    ("#user_id = :uid", Names::of(&["user_id"]), Values::default().with(":uid", s(id.as_str())))
}

fn attr_def(name: &str) -> StoreResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_err)
}

fn key_schema(name: &str, kind: KeyType) -> StoreResult<KeySchemaElement> {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(build_err)
}

/// Exponential backoff with full jitter, capped at 200 ms.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = (10u64 << attempt.min(5)).min(200);
    let mut b = [0u8; 2];
    let jitter = if getrandom::fill(&mut b).is_ok() { u64::from(u16::from_le_bytes(b)) } else { 0 };
    Duration::from_millis(1 + jitter % cap_ms)
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
    StoreError(format!("dynamodb: {detail}"))
}

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError(format!("dynamodb request build: {e}"))
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

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn user_pk(id: &UserId) -> String {
    format!("USER#{id}")
}
fn email_pk(email: &Email) -> String {
    format!("EMAIL#{}", email.normalised())
}
fn username_pk(key: &str) -> String {
    format!("USERNAME#{key}")
}
fn code_sk(purpose: CodePurpose) -> String {
    format!("CODE#{}", purpose.as_str())
}
fn session_sk(sid: &str) -> String {
    format!("SESSION#{sid}")
}

const PROFILE: &str = "PROFILE";
const GROUP: &str = "GROUP";

/// Puts the item in its list: `list_pk` / `list_sk` as [`list_entry`] says (nothing otherwise).
fn listed(mut item: Item) -> Item {
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

fn get_s(item: &Item, k: &str) -> StoreResult<String> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError(format!("item attribute {k} missing or not a string"))),
    }
}
fn get_opt_s(item: &Item, k: &str) -> Option<String> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}
fn get_opt_n<T: std::str::FromStr>(item: &Item, k: &str) -> StoreResult<Option<T>> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => {
            v.parse().map(Some).map_err(|_| StoreError(format!("item attribute {k} is not a number")))
        }
        None | Some(AttributeValue::Null(_)) => Ok(None),
        _ => Err(StoreError(format!("item attribute {k} is not a number"))),
    }
}
fn get_n<T: std::str::FromStr>(item: &Item, k: &str) -> StoreResult<T> {
    get_opt_n(item, k)?.ok_or_else(|| StoreError(format!("item attribute {k} missing")))
}
fn get_bool(item: &Item, k: &str) -> bool {
    matches!(item.get(k), Some(AttributeValue::Bool(true)))
}

/// Whether an item is past its TTL.
fn expired(item: &Item, now: i64) -> bool {
    matches!(get_opt_n::<i64>(item, "expires_at"), Ok(Some(t)) if t <= now)
}

fn user_to_item(u: &User) -> Item {
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
    listed(item)
}

fn user_from_item(item: &Item) -> StoreResult<User> {
    let id = UserId::parse(&get_s(item, "id")?).ok_or_else(|| StoreError("stored user id malformed".into()))?;
    let email = Email::parse(&get_s(item, "email")?).map_err(|_| StoreError("stored email malformed".into()))?;
    let username = match get_opt_s(item, "username") {
        Some(u) => Some(Username::parse(&u).map_err(|_| StoreError("stored username malformed".into()))?),
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
    })
}

fn claim_item(pk: String, sk: &str, user: &UserId, expires_at: Option<i64>) -> Item {
    let mut item = key(pk, sk);
    item.insert("user_id".into(), s(user.as_str()));
    if let Some(t) = expires_at {
        item.insert("expires_at".into(), n(t));
    }
    item
}

fn code_to_item(c: &CodeRecord) -> Item {
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

fn code_from_item(user: &UserId, purpose: CodePurpose, item: &Item) -> StoreResult<CodeRecord> {
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

fn session_to_item(x: &Session) -> Item {
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

fn session_from_item(user: &UserId, item: &Item) -> StoreResult<Session> {
    let sk = get_s(item, "sk")?;
    Ok(Session {
        user_id: user.clone(),
        id: sk.strip_prefix("SESSION#").unwrap_or(&sk).to_owned(),
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

const FREE_CLAIM: &str = "attribute_not_exists(pk) OR #expires_at <= :now";

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User, code: Option<&CodeRecord>, now: i64) -> Result<(), CreateUserError> {
        let free = || (FREE_CLAIM, Names::of(&["expires_at"]), Values::default().with(":now", n(now)));
        let mut items = vec![
            self.put(user_to_item(user), Some(("attribute_not_exists(pk)", Names::default(), Values::default())))?,
            self.put(claim_item(email_pk(&user.email), "EMAIL", &user.id, user.expires_at), Some(free()))?,
        ];
        if let Some(name) = &user.username {
            items.push(
                self.put(claim_item(username_pk(&name.key()), "USERNAME", &user.id, user.expires_at), Some(free()))?,
            );
        }
        if let Some(code) = code {
            items.push(self.put(code_to_item(code), None)?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(codes) if failed(&codes, 1) => Err(CreateUserError::EmailTaken),
            Err(codes) if failed(&codes, 2) && user.username.is_some() => Err(CreateUserError::UsernameTaken),
            Err(codes) => Err(StoreError(format!("create_user cancelled: {}", codes.join(","))).into()),
        }
    }

    async fn get_user(&self, id: &UserId, now: i64) -> StoreResult<Option<User>> {
        match self.get(user_pk(id), PROFILE).await? {
            Some(item) if !expired(&item, now) => user_from_item(&item).map(Some),
            _ => Ok(None),
        }
    }

    async fn find_user_by_email(&self, email: &Email, now: i64) -> StoreResult<Option<User>> {
        let Some(claim) = self.get(email_pk(email), "EMAIL").await? else {
            return Ok(None);
        };
        if expired(&claim, now) {
            return Ok(None);
        }
        let id =
            UserId::parse(&get_s(&claim, "user_id")?).ok_or_else(|| StoreError("claim user id malformed".into()))?;
        self.get_user(&id, now).await
    }

    async fn find_user_for_login(
        &self,
        email: &Email,
        counters: &[CounterKey],
        now: i64,
    ) -> StoreResult<(Option<User>, Vec<CounterState>)> {
        // One BatchGetItem for the claim and the counters, then the user.
        let (claim, states) = self.read_items(counters, Some(email), now).await?;
        let user = match claim {
            Some(item) if !expired(&item, now) => {
                let id = UserId::parse(&get_s(&item, "user_id")?)
                    .ok_or_else(|| StoreError("claim user id malformed".into()))?;
                self.get_user(&id, now).await?
            }
            _ => {
                // The same second read as for a known address, so that the answer's timing does
                // not tell whether the account exists.
                self.get(user_pk(&UserId::nil()), PROFILE).await?;
                None
            }
        };
        Ok((user, states))
    }

    async fn activate(&self, id: &UserId, code_hash: &str, now: i64) -> Result<(), ActivateError> {
        let Some(user) = self.get_user(id, now).await? else {
            return Err(ActivateError::NotActivatable);
        };
        if user.is_active {
            return Err(ActivateError::NotActivatable);
        }
        let (condition, names, values) = Self::usable_code(code_hash, now);
        let mut items = vec![
            // The spent code stays until it expires, so that it is recognised (stale_token).
            self.update(
                key(user_pk(id), &code_sk(CodePurpose::Activation)),
                "SET #spent = :t",
                condition,
                names,
                values.with(":t", AttributeValue::Bool(true)),
            )?,
            self.update(
                key(user_pk(id), PROFILE),
                "SET #is_active = :t, #version = #version + :one REMOVE #expires_at",
                "attribute_exists(pk) AND #is_active = :f AND (attribute_not_exists(#expires_at) OR #expires_at > :now)",
                Names::of(&["is_active", "version", "expires_at"]),
                Values::default()
                    .with(":t", AttributeValue::Bool(true))
                    .with(":f", AttributeValue::Bool(false))
                    .with(":one", n(1))
                    .with(":now", n(now)),
            )?,
        ];
        let mut claims = vec![(email_pk(&user.email), "EMAIL")];
        if let Some(name) = &user.username {
            claims.push((username_pk(&name.key()), "USERNAME"));
        }
        for (pk, sk) in claims {
            items.push(self.update(
                key(pk, sk),
                "REMOVE #expires_at",
                "#user_id = :uid",
                Names::of(&["expires_at", "user_id"]),
                Values::default().with(":uid", s(id.as_str())),
            )?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(codes) if failed(&codes, 1) => Err(ActivateError::NotActivatable),
            Err(codes) if failed(&codes, 0) => Err(ActivateError::InvalidCode),
            Err(_) => Err(ActivateError::NotActivatable),
        }
    }

    async fn update_user(&self, current: &User, updated: &User, now: i64) -> Result<u64, UpdateUserError> {
        let version = current.version + 1;
        let mut set = vec![
            "#first_name = :fn",
            "#last_name = :ln",
            "#password_hash = :ph",
            "#is_active = :ia",
            "#is_staff = :is",
            "#is_superuser = :su",
            "#groups = :g",
            "#group_ids = :gi",
            "#tokens_valid_after = :tva",
            "#version = :v",
        ];
        let mut values = Values::default()
            .with(":fn", s(&updated.first_name))
            .with(":ln", s(&updated.last_name))
            .with(":ph", s(&updated.password_hash))
            .with(":ia", AttributeValue::Bool(updated.is_active))
            .with(":is", AttributeValue::Bool(updated.is_staff))
            .with(":su", AttributeValue::Bool(updated.is_superuser))
            .with(":g", AttributeValue::L(updated.groups.iter().map(s).collect()))
            .with(":gi", group_ids(&updated.group_ids))
            .with(":tva", n(updated.tokens_valid_after))
            .with(":v", n(version))
            .with(":old", n(current.version))
            .with(":now", n(now));
        let expr = match &updated.username {
            Some(name) => {
                set.push("#username = :un");
                values = values.with(":un", s(name.as_str()));
                format!("SET {}", set.join(", "))
            }
            None => format!("SET {} REMOVE #username", set.join(", ")),
        };
        let names = [
            "first_name",
            "last_name",
            "password_hash",
            "is_active",
            "is_staff",
            "is_superuser",
            "groups",
            "group_ids",
            "tokens_valid_after",
            "version",
            "expires_at",
            "username",
        ];
        let condition =
            "attribute_exists(pk) AND #version = :old AND (attribute_not_exists(#expires_at) OR #expires_at > :now)";
        let old_key = current.username.as_ref().map(|u| u.key());
        let new_key = updated.username.as_ref().map(|u| u.key());
        let mut items =
            vec![self.update(key(user_pk(&current.id), PROFILE), &expr, condition, Names::of(&names), values)?];
        let security = current.security_change(updated);
        if old_key != new_key {
            if let Some(k) = &new_key {
                items.push(self.put(
                    claim_item(username_pk(k), "USERNAME", &current.id, current.expires_at),
                    Some((
                        "attribute_not_exists(pk) OR #expires_at <= :now OR #user_id = :uid",
                        Names::of(&["expires_at", "user_id"]),
                        Values::default().with(":now", n(now)).with(":uid", s(current.id.as_str())),
                    )),
                )?);
            }
            if let Some(k) = &old_key {
                items.push(self.delete(key(username_pk(k), "USERNAME"), Some(owned_by(&current.id)))?);
            }
        }
        if security {
            items.extend(self.delete_codes(&current.id, None)?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(version),
            Err(codes) if failed(&codes, 0) => Err(UpdateUserError::Conflict),
            Err(codes) if failed(&codes, 1) && new_key.is_some() => Err(UpdateUserError::UsernameTaken),
            Err(_) => Err(UpdateUserError::Conflict),
        }
    }

    async fn reset_password(
        &self,
        user: &User,
        code_hash: &str,
        new_hash: &str,
        now: i64,
    ) -> Result<(), ActivateError> {
        let id = &user.id;
        let mut items = vec![
            self.consume_code(id, CodePurpose::PasswordReset, code_hash, now)?,
            // Active, or never activated (unexpired): activated now. A deactivated account
            // (inactive, no expiry) is refused.
            self.update(
                key(user_pk(id), PROFILE),
                "SET #password_hash = :ph, #tokens_valid_after = :now, #version = #version + :one, #is_active = :t \
                 REMOVE #expires_at",
                "attribute_exists(pk) AND (#is_active = :t OR #expires_at > :now)",
                Names::of(&["password_hash", "tokens_valid_after", "version", "is_active", "expires_at"]),
                Values::default()
                    .with(":ph", s(new_hash))
                    .with(":now", n(now))
                    .with(":one", n(1))
                    .with(":t", AttributeValue::Bool(true)),
            )?,
        ];
        items.extend(self.delete_codes(id, Some(CodePurpose::PasswordReset))?);
        if user.expires_at.is_some() {
            let mut claims = vec![(email_pk(&user.email), "EMAIL")];
            if let Some(name) = &user.username {
                claims.push((username_pk(&name.key()), "USERNAME"));
            }
            for (pk, sk) in claims {
                items.push(self.update(
                    key(pk, sk),
                    "REMOVE #expires_at",
                    "#user_id = :uid",
                    Names::of(&["expires_at", "user_id"]),
                    Values::default().with(":uid", s(id.as_str())),
                )?);
            }
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(codes) if failed(&codes, 1) => Err(ActivateError::NotActivatable),
            Err(_) => Err(ActivateError::InvalidCode),
        }
    }

    async fn change_email(
        &self,
        current: &User,
        new_email: &Email,
        code_hash: Option<&str>,
        now: i64,
    ) -> Result<(), ChangeEmailError> {
        let mut items = vec![self.update(
            key(user_pk(&current.id), PROFILE),
            "SET #email = :e, #email_normalised = :en, #version = #version + :one",
            "attribute_exists(pk) AND #version = :old AND (attribute_not_exists(#expires_at) OR #expires_at > :now)",
            Names::of(&["email", "email_normalised", "version", "expires_at"]),
            Values::default()
                .with(":e", s(new_email.as_str()))
                .with(":en", s(new_email.normalised()))
                .with(":one", n(1))
                .with(":old", n(current.version))
                .with(":now", n(now)),
        )?];
        let moves_claim = new_email.normalised() != current.email.normalised();
        if moves_claim {
            items.push(self.put(
                claim_item(email_pk(new_email), "EMAIL", &current.id, current.expires_at),
                Some((FREE_CLAIM, Names::of(&["expires_at"]), Values::default().with(":now", n(now)))),
            )?);
            items.push(self.delete(key(email_pk(&current.email), "EMAIL"), Some(owned_by(&current.id)))?);
        }
        let code_at = items.len();
        match code_hash {
            Some(hash) => {
                items.push(self.consume_code(&current.id, CodePurpose::EmailChange, hash, now)?);
                items.extend(self.delete_codes(&current.id, Some(CodePurpose::EmailChange))?);
            }
            None => items.extend(self.delete_codes(&current.id, None)?),
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(codes) if failed(&codes, 0) => Err(ChangeEmailError::Conflict),
            Err(codes) if moves_claim && failed(&codes, 1) => Err(ChangeEmailError::EmailTaken),
            Err(codes) if code_hash.is_some() && failed(&codes, code_at) => Err(ChangeEmailError::InvalidCode),
            Err(_) => Err(ChangeEmailError::Conflict),
        }
    }

    async fn delete_user(&self, user: &User) -> Result<(), UpdateUserError> {
        let mut items = vec![
            self.delete(
                key(user_pk(&user.id), PROFILE),
                Some(("#version = :v", Names::of(&["version"]), Values::default().with(":v", n(user.version)))),
            )?,
            self.delete(key(email_pk(&user.email), "EMAIL"), Some(owned_by(&user.id)))?,
        ];
        if let Some(name) = &user.username {
            items.push(self.delete(key(username_pk(&name.key()), "USERNAME"), Some(owned_by(&user.id)))?);
        }
        // Its codes go with it: no link outlives the account.
        items.extend(self.delete_codes(&user.id, None)?);
        if let Err(codes) = self.transact(items).await? {
            return Err(if failed(&codes, 0) {
                UpdateUserError::Conflict
            } else {
                StoreError(format!("delete_user cancelled: {}", codes.join(","))).into()
            });
        }
        // The rest of the partition (codes, sessions) is unreachable now; remove it too. The
        // account is gone whatever happens here: a failure leaves items nothing can reach, which
        // expire on their own (and `authctl doctor` removes), not a failed deletion.
        let rest = match self.query_partition(&user.id, "").await {
            Ok(rest) => rest,
            Err(e) => {
                tracing::warn!(event = "account_deleted", outcome = "partition_left", user_id = %user.id, error = %e);
                return Ok(());
            }
        };
        let keys =
            rest.iter().map(|i| key(get_s(i, "pk").unwrap_or_default(), &get_s(i, "sk").unwrap_or_default())).collect();
        if let Err(e) = self.batch_delete(keys).await {
            tracing::warn!(event = "account_deleted", outcome = "partition_left", user_id = %user.id, error = %e);
        }
        Ok(())
    }

    async fn list_users(
        &self,
        after: Option<&UserId>,
        limit: usize,
        now: i64,
    ) -> StoreResult<(Vec<User>, Option<UserId>)> {
        if limit == 0 {
            return Ok((Vec::new(), None));
        }
        // The ids after the cursor from the list index (in id order), then the users themselves
        // with consistent reads, dropping those expired (or deleted since the index was read).
        // One user more than asked for is read to tell whether another page follows.
        let after = after.map(UserId::as_str);
        let query_limit = (limit + 1).clamp(LIST_QUERY_MIN, LIST_QUERY_MAX);
        let mut users: Vec<User> = Vec::new();
        let mut dead = 0;
        let mut start = None;
        loop {
            let (keys, next) = self.list_page(LIST_USERS, after, start.take(), Some(query_limit)).await?;
            let mut rest = keys.as_slice();
            while !rest.is_empty() {
                // Read what is missing; after expired users, as many more as were dead so far
                // (a long run of never-activated accounts costs few round trips).
                let want = (limit + 1 - users.len()).max(dead).min(BATCH_GET_MAX).min(rest.len());
                let (chunk, tail) = rest.split_at(want);
                rest = tail;
                for item in self.get_in_order(chunk).await? {
                    match item {
                        Some(item) if !expired(&item, now) => users.push(user_from_item(&item)?),
                        _ => dead += 1,
                    }
                }
                if users.len() > limit {
                    users.truncate(limit);
                    let cursor = users.last().map(|u| u.id.clone());
                    return Ok((users, cursor));
                }
            }
            match next {
                Some(k) => start = Some(k),
                None => return Ok((users, None)),
            }
        }
    }

    async fn replace_password_hash(&self, id: &UserId, old_hash: &str, new_hash: &str) -> StoreResult<bool> {
        let result = self
            .client()
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(id), PROFILE)))
            .update_expression("SET #password_hash = :new")
            .condition_expression("#password_hash = :old")
            .set_expression_attribute_names(Names::of(&["password_hash"]).0)
            .set_expression_attribute_values(Values::default().with(":new", s(new_hash)).with(":old", s(old_hash)).0)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(store_err(e)),
        }
    }
}

/// Whether the transaction item at `index` failed its condition.
fn failed(codes: &[String], index: usize) -> bool {
    codes.get(index).is_some_and(|c| c == "ConditionalCheckFailed")
}

#[async_trait]
impl CodeStore for DynamoStore {
    async fn put_code(&self, code: &CodeRecord) -> StoreResult<()> {
        self.client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(code_to_item(code)))
            .send()
            .await
            .map_err(store_err)?;
        Ok(())
    }

    async fn get_code(&self, user: &UserId, purpose: CodePurpose, now: i64) -> StoreResult<Option<CodeRecord>> {
        let Some(item) = self.get(user_pk(user), &code_sk(purpose)).await? else {
            return Ok(None);
        };
        if expired(&item, now) {
            return Ok(None);
        }
        Ok(Some(code_from_item(user, purpose, &item)?))
    }

    async fn reserve_guess(&self, user: &UserId, purpose: CodePurpose, now: i64) -> StoreResult<Option<CodeRecord>> {
        let result = self
            .client()
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), &code_sk(purpose))))
            .update_expression("ADD #attempts :one")
            .condition_expression(
                "attribute_exists(pk) AND #expires_at > :now AND (attribute_not_exists(#spent) OR #spent = :f) \
                 AND (attribute_not_exists(#attempts) OR #attempts < :max)",
            )
            .set_expression_attribute_names(Names::of(&["attempts", "expires_at", "spent"]).0)
            .set_expression_attribute_values(
                Values::default()
                    .with(":one", n(1))
                    .with(":now", n(now))
                    .with(":f", AttributeValue::Bool(false))
                    .with(":max", n(MAX_CODE_ATTEMPTS))
                    .0,
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes {
                Some(item) => Ok(Some(code_from_item(user, purpose, &item)?)),
                None => Err(StoreError("UpdateItem returned no attributes".into())),
            },
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn create_session(
        &self,
        session: &Session,
        last_login: Option<i64>,
        give_back: &GiveBack,
    ) -> StoreResult<()> {
        let mut items = vec![self.put(session_to_item(session), None)?];
        if let Some(at) = last_login {
            items.push(self.update(
                key(user_pk(&session.user_id), PROFILE),
                "SET #last_login = :t",
                "attribute_exists(pk)",
                Names::of(&["last_login"]),
                Values::default().with(":t", n(at)),
            )?);
        }
        let own = items.len();
        items.extend(self.give_back_items(&give_back.refund, &give_back.forget)?);
        if let [_] = items.as_slice() {
            self.client()
                .put_item()
                .table_name(&self.table)
                .set_item(Some(session_to_item(session)))
                .send()
                .await
                .map_err(store_err)?;
            return Ok(());
        }
        let codes = match self.transact(items).await? {
            Ok(()) => return Ok(()),
            Err(codes) => codes,
        };
        if codes.len() <= own || codes.iter().take(own).any(|c| c != "None") {
            return Err(StoreError(format!("create_session cancelled: {}", codes.join(","))));
        }
        // A counter to refund was gone (its window over, or lifted by a reset): the session is
        // written without the give-back, which then skips what is missing.
        self.create_session(session, last_login, &GiveBack::default()).await?;
        self.give_back(&give_back.refund, &give_back.forget).await
    }

    async fn get_user_and_session(
        &self,
        user: &UserId,
        sid: &str,
        now: i64,
    ) -> StoreResult<(Option<User>, Option<Session>)> {
        let found = self.batch_get(vec![key(user_pk(user), PROFILE), key(user_pk(user), &session_sk(sid))]).await?;
        let mut u = None;
        let mut x = None;
        for item in found.iter().filter(|i| !expired(i, now)) {
            if get_s(item, "sk")? == PROFILE {
                u = Some(user_from_item(item)?);
            } else {
                x = Some(session_from_item(user, item)?);
            }
        }
        Ok((u, x))
    }

    async fn rotate_session(
        &self,
        user: &UserId,
        sid: &str,
        expected_jti: &str,
        new_jti: &str,
        now: i64,
    ) -> StoreResult<Rotation> {
        let result = self.client()
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), &session_sk(sid))))
            .update_expression(
                "SET #previous_jti = #current_jti, #current_jti = :new, #counter = #counter + :one, #rotated_at = :now, #last_used_at = :now",
            )
            .condition_expression("#current_jti = :old AND #expires_at > :now")
            .set_expression_attribute_names(
                Names::of(&["previous_jti", "current_jti", "counter", "rotated_at", "last_used_at", "expires_at"]).0,
            )
            .set_expression_attribute_values(
                Values::default()
                    .with(":new", s(new_jti))
                    .with(":old", s(expected_jti))
                    .with(":one", n(1))
                    .with(":now", n(now))
                    .0,
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Rotation::Rotated),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(Rotation::Stale),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn delete_session(&self, user: &UserId, sid: &str) -> StoreResult<()> {
        self.delete_key(key(user_pk(user), &session_sk(sid))).await?;
        Ok(())
    }

    async fn list_sessions(&self, user: &UserId, now: i64) -> StoreResult<Vec<Session>> {
        let mut out = Vec::new();
        for item in self.query_partition(user, "SESSION#").await? {
            if !expired(&item, now) {
                out.push(session_from_item(user, &item)?);
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn delete_sessions(&self, user: &UserId, except: Option<&str>) -> StoreResult<()> {
        let keep = except.map(session_sk);
        let keys = self
            .query_partition(user, "SESSION#")
            .await?
            .iter()
            .filter_map(|i| get_s(i, "sk").ok())
            .filter(|sk| Some(sk) != keep.as_ref())
            .map(|sk| key(user_pk(user), &sk))
            .collect();
        self.batch_delete(keys).await
    }
}

fn counter_key(c: &CounterKey) -> Item {
    key(format!("RATE#{}#{}", c.scope, c.key), &c.slot)
}

fn counter_state(item: &Item) -> CounterState {
    CounterState {
        count: get_opt_n(item, "count").ok().flatten().unwrap_or(0),
        last_at: get_opt_n(item, "last_at").ok().flatten().unwrap_or(0),
    }
}

impl DynamoStore {
    /// One BatchGetItem for counters and, with `email`, that email's claim (returned apart).
    async fn read_items(
        &self,
        counters: &[CounterKey],
        email: Option<&Email>,
        now: i64,
    ) -> StoreResult<(Option<Item>, Vec<CounterState>)> {
        let claim_key = email.map(|e| key(email_pk(e), "EMAIL"));
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
        Err(StoreError("BatchGetItem left keys unprocessed".into()))
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

#[async_trait]
impl Limiter for DynamoStore {
    async fn hit(&self, counter: &CounterKey, expires_at: i64, now: i64) -> StoreResult<CounterState> {
        // An expired counter still in the table starts again from one.
        let fresh = self
            .client()
            .update_item()
            .table_name(&self.table)
            .set_key(Some(counter_key(counter)))
            .update_expression("SET #count = :one, #last_at = :now, #expires_at = :exp")
            .condition_expression("attribute_not_exists(pk) OR #expires_at <= :now")
            .set_expression_attribute_names(Names::of(&["count", "last_at", "expires_at"]).0)
            .set_expression_attribute_values(
                Values::default().with(":one", n(1)).with(":now", n(now)).with(":exp", n(expires_at)).0,
            )
            .send()
            .await;
        match fresh {
            Ok(_) => return Ok(CounterState { count: 1, last_at: now }),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {}
            Err(e) => return Err(store_err(e)),
        }
        let out = self
            .client()
            .update_item()
            .table_name(&self.table)
            .set_key(Some(counter_key(counter)))
            .update_expression("ADD #count :one SET #last_at = :now, #expires_at = :exp")
            .set_expression_attribute_names(Names::of(&["count", "last_at", "expires_at"]).0)
            .set_expression_attribute_values(
                Values::default().with(":one", n(1)).with(":now", n(now)).with(":exp", n(expires_at)).0,
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(store_err)?;
        Ok(out.attributes.as_ref().map(counter_state).unwrap_or_default())
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
                None => Err(StoreError(format!("reserve cancelled: {}", codes.join(",")))),
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
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(store_err(e)),
        }
    }
}

fn group_key(name: &str) -> Item {
    key(format!("GROUP#{name}"), GROUP)
}

fn group_from_item(item: &Item) -> StoreResult<Group> {
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

fn group_ids(ids: &std::collections::BTreeMap<String, String>) -> AttributeValue {
    AttributeValue::M(ids.iter().map(|(k, v)| (k.clone(), s(v))).collect())
}

fn group_ids_from(item: &Item) -> std::collections::BTreeMap<String, String> {
    match item.get("group_ids") {
        Some(AttributeValue::M(m)) => m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_s().ok()?.clone()))).collect(),
        _ => Default::default(),
    }
}

#[async_trait]
impl GroupStore for DynamoStore {
    async fn put_group(&self, group: &Group, create: bool) -> StoreResult<bool> {
        let mut item = group_key(&group.name);
        item.insert("name".into(), s(&group.name));
        item.insert("description".into(), s(&group.description));
        item.insert("permissions".into(), AttributeValue::L(group.permissions.iter().map(s).collect()));
        item.insert("group_id".into(), s(&group.id));
        let mut put = self.client().put_item().table_name(&self.table).set_item(Some(listed(item)));
        put = if create {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            // Still the group that was read: not one deleted and made again meanwhile.
            put.condition_expression("#group_id = :id")
                .expression_attribute_names("#group_id", "group_id")
                .expression_attribute_values(":id", s(&group.id))
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn get_groups(&self, names: &[String]) -> StoreResult<Vec<Group>> {
        let mut unique: Vec<&String> = Vec::new();
        for n in names {
            if !unique.contains(&n) {
                unique.push(n);
            }
        }
        let keys: Vec<Item> = unique.iter().map(|n| group_key(n)).collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.get_in_order(&keys).await?.iter().flatten().map(group_from_item).collect()
    }

    async fn list_groups(&self) -> StoreResult<Vec<Group>> {
        // Every group's key from the list index (in name order), then the groups themselves.
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = self.list_page(LIST_GROUPS, None, start.take(), None).await?;
            keys.extend(page);
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        self.get_in_order(&keys).await?.iter().flatten().map(group_from_item).collect()
    }

    async fn delete_group(&self, name: &str) -> StoreResult<bool> {
        let out = self
            .client()
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(group_key(name)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_err)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
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
