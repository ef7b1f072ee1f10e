//! Table creation and scans: for the local stack, tests, authctl and consistency checks.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};

use super::schema::{s, Item, LIST_INDEX, LIST_PK, LIST_SK};
use super::{build_err, store_err, DynamoStore};
use crate::ports::StoreResult;

impl DynamoStore {
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
