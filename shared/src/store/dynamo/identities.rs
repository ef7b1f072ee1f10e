//! [`IdentityStore`]: a provider link is two items written and removed in one transaction, the
//! claim `IDENTITY#<provider>#<subject>` / `IDENTITY` (`user_id`: one account per provider
//! account, found at sign-in by a consistent get) and the account's side `USER#<id>` /
//! `IDENTITY#<provider>` (`subject`: one link per provider per account, listed with the
//! partition and removed with it when the account is deleted, its claim then removed by
//! [`DynamoStore::delete_identity_claims`]).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};

use super::schema::{get_opt_n, get_opt_s, get_s, key, n, s, user_pk, Item, IDENTITY, IDENTITY_PREFIX, PROFILE};
use super::users::{failed, owned_by};
use super::{build_err, written, DynamoStore, Names, Values};
use crate::domain::{Identity, User, UserId};
use crate::ports::{CreateUserError, IdentityStore, StoreError, StoreResult};

fn claim_pk(provider: &str, subject: &str) -> String {
    format!("{IDENTITY_PREFIX}{provider}#{subject}")
}

fn side_sk(provider: &str) -> String {
    format!("{IDENTITY_PREFIX}{provider}")
}

fn claim_item(i: &Identity) -> Item {
    let mut item = key(claim_pk(&i.provider, &i.subject), IDENTITY);
    item.insert("user_id".into(), s(i.user_id.as_str()));
    item.insert("provider".into(), s(&i.provider));
    item.insert("subject".into(), s(&i.subject));
    item.insert("created_at".into(), n(i.created_at));
    item
}

fn side_item(i: &Identity) -> Item {
    let mut item = key(user_pk(&i.user_id), &side_sk(&i.provider));
    item.insert("subject".into(), s(&i.subject));
    if let Some(email) = &i.email {
        item.insert("email".into(), s(email));
    }
    item.insert("created_at".into(), n(i.created_at));
    if let Some(at) = i.last_used_at {
        item.insert("last_used_at".into(), n(at));
    }
    item
}

fn side_from_item(user: &UserId, item: &Item) -> StoreResult<Option<Identity>> {
    let Some(provider) = get_opt_s(item, "sk").and_then(|k| k.strip_prefix(IDENTITY_PREFIX).map(str::to_owned)) else {
        return Ok(None);
    };
    Ok(Some(Identity {
        provider,
        subject: get_s(item, "subject")?,
        user_id: user.clone(),
        email: get_opt_s(item, "email"),
        created_at: get_opt_n(item, "created_at")?.unwrap_or_default(),
        last_used_at: get_opt_n(item, "last_used_at")?,
    }))
}

fn new_item() -> Option<(&'static str, Names, Values)> {
    Some(("attribute_not_exists(pk)", Names::default(), Values::default()))
}

impl DynamoStore {
    /// The link's two items, each conditional on being new.
    fn identity_items(&self, identity: &Identity) -> StoreResult<Vec<TransactWriteItem>> {
        Ok(vec![self.put(claim_item(identity), new_item())?, self.put(side_item(identity), new_item())?])
    }

    /// Removes the claims of a deleted account's links (`sides`: its `IDENTITY#` items), each
    /// only while it still names that account. Best effort: a claim left behind names an account
    /// that is gone, which a sign-in treats as no link (and removes).
    pub(super) async fn delete_identity_claims(&self, user: &UserId, sides: &[Item]) {
        for item in sides {
            let Ok(Some(identity)) = side_from_item(user, item) else { continue };
            if let Err(e) = self.forget_identity(&identity).await {
                tracing::warn!(event = "account_deleted", outcome = "identity_claim_left", user_id = %user, error = %e);
            }
        }
    }
}

#[async_trait]
impl IdentityStore for DynamoStore {
    async fn get_identity(&self, provider: &str, subject: &str) -> StoreResult<Option<Identity>> {
        let Some(item) = self.get(claim_pk(provider, subject), IDENTITY).await? else { return Ok(None) };
        let user_id = UserId::parse(&get_s(&item, "user_id")?)
            .ok_or_else(|| StoreError::new("identity claim user id malformed"))?;
        Ok(Some(Identity {
            provider: provider.to_owned(),
            subject: subject.to_owned(),
            user_id,
            email: None,
            created_at: get_opt_n(&item, "created_at")?.unwrap_or_default(),
            last_used_at: None,
        }))
    }

    async fn list_identities(&self, user: &UserId) -> StoreResult<Vec<Identity>> {
        let mut out = Vec::new();
        for item in self.query_partition(user, IDENTITY_PREFIX).await? {
            out.extend(side_from_item(user, &item)?);
        }
        out.sort_by(|a, b| a.provider.cmp(&b.provider));
        Ok(out)
    }

    async fn link_identity(&self, user: &User, identity: &Identity) -> StoreResult<bool> {
        // The account as read: still there, unchanged (not deleted, disabled or re-addressed
        // since the sign-in looked at it).
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(&user.id), PROFILE)))
            .condition_expression("#version = :v")
            .set_expression_attribute_names(Names::of(&["version"]).0)
            .set_expression_attribute_values(Values::default().with(":v", n(user.version)).0)
            .build()
            .map_err(build_err)?;
        let mut items = vec![TransactWriteItem::builder().condition_check(check).build()];
        items.extend(self.identity_items(identity)?);
        Ok(self.transact(items).await?.is_ok())
    }

    async fn create_user_with_identity(
        &self,
        user: &User,
        identity: &Identity,
        now: i64,
    ) -> Result<(), CreateUserError> {
        let mut items = self.new_user_items(user, now)?;
        items.extend(self.identity_items(identity)?);
        self.create_user_with(user, items, "create_user_with_identity").await
    }

    async fn touch_identity(&self, identity: &Identity, at: i64) -> StoreResult<()> {
        let update = self
            .client()
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(&identity.user_id), &side_sk(&identity.provider))))
            .update_expression("SET #last_used_at = :at")
            .condition_expression("#subject = :sub")
            .set_expression_attribute_names(Names::of(&["last_used_at", "subject"]).0)
            .set_expression_attribute_values(Values::default().with(":at", n(at)).with(":sub", s(&identity.subject)).0);
        written(update.send().await)?;
        Ok(())
    }

    async fn unlink_identity(&self, user: &UserId, provider: &str) -> StoreResult<Option<Identity>> {
        let Some(item) = self.get(user_pk(user), &side_sk(provider)).await? else { return Ok(None) };
        let Some(identity) = side_from_item(user, &item)? else { return Ok(None) };
        let items = vec![
            self.delete(
                key(user_pk(user), &side_sk(provider)),
                Some((
                    "#subject = :sub",
                    Names::of(&["subject"]),
                    Values::default().with(":sub", s(&identity.subject)),
                )),
            )?,
            self.delete(key(claim_pk(provider, &identity.subject), IDENTITY), Some(owned_by(user)))?,
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(Some(identity)),
            // Removed meanwhile by a concurrent unlink; a claim already gone (left by a failed
            // write) must not keep the account's side forever.
            Err(codes) if failed(&codes, 0) => Ok(None),
            Err(_) => {
                self.delete_key(key(user_pk(user), &side_sk(provider))).await?;
                Ok(Some(identity))
            }
        }
    }

    async fn forget_identity(&self, identity: &Identity) -> StoreResult<bool> {
        let (expr, names, values) = owned_by(&identity.user_id);
        let delete = self
            .client()
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(claim_pk(&identity.provider, &identity.subject), IDENTITY)))
            .condition_expression(expr)
            .set_expression_attribute_names(names.0)
            .set_expression_attribute_values(values.0);
        written(delete.send().await)
    }
}
