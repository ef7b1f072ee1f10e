//! [`GroupStore`]: group items, listed in name order through the list index.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::schema::{group_from_item, group_key, listed, s, LIST_GROUPS};
use super::{written, DynamoStore};
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
        written(put.send().await)
    }

    async fn get_groups(&self, names: &[String]) -> StoreResult<Vec<Group>> {
        let keys = names.iter().map(|n| group_key(n)).collect();
        self.get_existing(keys).await?.iter().map(group_from_item).collect()
    }

    async fn list_groups(&self) -> StoreResult<Vec<Group>> {
        self.list_all(LIST_GROUPS).await?.iter().map(group_from_item).collect()
    }

    async fn delete_group(&self, name: &str) -> StoreResult<bool> {
        self.delete_existing(group_key(name)).await
    }
}
