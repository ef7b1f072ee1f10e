//! [`PermissionStore`]: the permission registry's items (`PERM#<codename>` / `PERM`), listed in
//! codename order through the list index.

use async_trait::async_trait;

use super::schema::{permission_from_item, permission_item, permission_key, LIST_PERMISSIONS};
use super::{written, DynamoStore};
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
        written(put.send().await)
    }

    async fn get_permissions(&self, codenames: &[String]) -> StoreResult<Vec<Permission>> {
        let keys = codenames.iter().map(|c| permission_key(c)).collect();
        self.get_existing(keys).await?.iter().map(permission_from_item).collect()
    }

    async fn list_permissions(&self) -> StoreResult<Vec<Permission>> {
        self.list_all(LIST_PERMISSIONS).await?.iter().map(permission_from_item).collect()
    }

    async fn delete_permission(&self, codename: &str) -> StoreResult<bool> {
        self.delete_existing(permission_key(codename)).await
    }
}
