//! [`GroupStore`]: group items, listed in name order through the list index.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;

use super::schema::{group_from_item, group_key, listed, s, Item, LIST_GROUPS};
use super::{store_err, DynamoStore};
use crate::domain::Group;
use crate::ports::{GroupStore, StoreResult};

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
