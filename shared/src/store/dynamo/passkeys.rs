//! [`PasskeyStore`]: `USER#<id>` / `WEBAUTHN#<credential id>` with `name`, `credential` (the
//! WebAuthn library's JSON of the credential: public key, sign counter, flags), `created_at` and
//! `last_used_at`. In the user's partition, so deleting the account removes them. No claim item
//! across users: a discoverable sign-in finds the user by the credential's user handle (the user
//! id) and the credential in that user's partition, and a second factor looks only in the signing
//! user's, so a credential id repeated in another account (which an attacker could only make
//! with a key of their own) never stands for anyone but its own account.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::schema::{get_opt_n, get_opt_s, get_s, key, n, s, user_pk, Item, PASSKEY_PREFIX};
use super::{written, DynamoStore, Names, Values};
use crate::domain::{PasskeyRecord, UserId};
use crate::ports::{PasskeyStore, StoreResult};

fn sk(id: &str) -> String {
    format!("{PASSKEY_PREFIX}{id}")
}

fn passkey_item(p: &PasskeyRecord) -> Item {
    let mut item = key(user_pk(&p.user_id), &sk(&p.id));
    item.insert("name".into(), s(&p.name));
    item.insert("credential".into(), s(&p.credential));
    item.insert("created_at".into(), n(p.created_at));
    if let Some(at) = p.last_used_at {
        item.insert("last_used_at".into(), n(at));
    }
    item
}

fn passkey_from_item(user: &UserId, item: &Item) -> StoreResult<Option<PasskeyRecord>> {
    let Some(id) = get_opt_s(item, "sk").and_then(|k| k.strip_prefix(PASSKEY_PREFIX).map(str::to_owned)) else {
        return Ok(None);
    };
    Ok(Some(PasskeyRecord {
        user_id: user.clone(),
        id,
        name: get_s(item, "name")?,
        credential: get_s(item, "credential")?,
        created_at: get_opt_n(item, "created_at")?.unwrap_or_default(),
        last_used_at: get_opt_n(item, "last_used_at")?,
    }))
}

impl DynamoStore {
    /// A conditional update of an existing passkey: whether it was there.
    async fn update_passkey(
        &self,
        user: &UserId,
        id: &str,
        set: &str,
        names: &[&str],
        values: Values,
    ) -> StoreResult<bool> {
        let update = self
            .client()
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), &sk(id))))
            .update_expression(set)
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Names::of(names).0)
            .set_expression_attribute_values(values.0);
        written(update.send().await)
    }
}

#[async_trait]
impl PasskeyStore for DynamoStore {
    async fn put_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool> {
        let put = self
            .client()
            .put_item()
            .table_name(&self.table)
            .set_item(Some(passkey_item(passkey)))
            .condition_expression("attribute_not_exists(pk)");
        written(put.send().await)
    }

    async fn list_passkeys(&self, user: &UserId) -> StoreResult<Vec<PasskeyRecord>> {
        let mut out = Vec::new();
        for item in self.query_partition(user, PASSKEY_PREFIX).await? {
            out.extend(passkey_from_item(user, &item)?);
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn record_passkey_use(&self, user: &UserId, id: &str, credential: &str, at: i64) -> StoreResult<bool> {
        let values = Values::default().with(":c", s(credential)).with(":at", n(at));
        self.update_passkey(
            user,
            id,
            "SET #credential = :c, #last_used_at = :at",
            &["credential", "last_used_at"],
            values,
        )
        .await
    }

    async fn rename_passkey(&self, user: &UserId, id: &str, name: &str) -> StoreResult<bool> {
        let values = Values::default().with(":name", AttributeValue::S(name.to_owned()));
        self.update_passkey(user, id, "SET #name = :name", &["name"], values).await
    }

    async fn delete_passkey(&self, user: &UserId, id: &str) -> StoreResult<bool> {
        let delete = self
            .client()
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), &sk(id))))
            .condition_expression("attribute_exists(pk)");
        written(delete.send().await)
    }
}
