//! [`CodeStore`], and the transaction items that consume and delete one-time codes.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};

use super::schema::{code_from_item, code_sk, code_to_item, expired, key, n, s, user_pk};
use super::{store_err, DynamoStore, Names, Values};
use crate::domain::{CodePurpose, UserId};
use crate::ports::{CodeRecord, CodeStore, StoreError, StoreResult, MAX_CODE_ATTEMPTS};

impl DynamoStore {
    /// The condition under which a code accepts `code_hash` (as [`CodeRecord::usable`]).
    pub(super) fn usable_code(code_hash: &str, now: i64) -> (&'static str, Names, Values) {
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

    /// A transaction item consuming a one-time code: right hash, unexpired, guesses left.
    pub(super) fn consume_code(
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
    pub(super) fn delete_codes(&self, id: &UserId, keep: Option<CodePurpose>) -> StoreResult<Vec<TransactWriteItem>> {
        CodePurpose::ALL
            .into_iter()
            .filter(|p| Some(*p) != keep)
            .map(|p| self.delete(key(user_pk(id), &code_sk(p)), None))
            .collect()
    }
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
                None => Err(StoreError::new("UpdateItem returned no attributes")),
            },
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }
}
