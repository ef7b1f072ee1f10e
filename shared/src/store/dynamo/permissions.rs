//! [`PermissionStore`]: the permission registry's items (`PERM#<codename>` / `PERM`), listed in
//! codename order through the list index.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;

use super::schema::{permission_from_item, permission_item, permission_key, Item, LIST_PERMISSIONS};
use super::{store_err, DynamoStore};
use crate::domain::Permission;
use crate::ports::{PermissionStore, StoreResult};

#[async_trait]
impl PermissionStore for DynamoStore {
    async fn put_permission(&self, permission: &Permission, create: bool) -> StoreResult<bool> {
        let condition = if create { "attribute_not_exists(pk)" } else { "attribute_exists(pk)" };
        let put = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(permission_item(permission)))
            .condition_expression(condition);
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(store_err(e)),
        }
    }

    async fn get_permissions(&self, codenames: &[String]) -> StoreResult<Vec<Permission>> {
        let mut unique: Vec<&String> = Vec::new();
        for c in codenames {
            if !unique.contains(&c) {
                unique.push(c);
            }
        }
        let keys: Vec<Item> = unique.iter().map(|c| permission_key(c)).collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.get_in_order(&keys).await?.iter().flatten().map(permission_from_item).collect()
    }

    async fn list_permissions(&self) -> StoreResult<Vec<Permission>> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = self.list_page(LIST_PERMISSIONS, None, start.take(), None).await?;
            keys.extend(page);
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        self.get_in_order(&keys).await?.iter().flatten().map(permission_from_item).collect()
    }

    async fn delete_permission(&self, codename: &str) -> StoreResult<bool> {
        let out = self
            .client()
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(permission_key(codename)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_err)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}
