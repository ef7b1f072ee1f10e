//! [`SessionStore`]: session items in their user's partition.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;

use super::schema::{
    expired, get_s, key, n, s, session_from_item, session_sk, session_to_item, user_from_item, user_pk, PROFILE,
    SESSION_PREFIX,
};
use super::{store_err, DynamoStore, Names, Values};
use crate::domain::{User, UserId};
use crate::ports::{GiveBack, Limiter, Rotation, Session, SessionStore, StoreError, StoreResult};

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
            return Err(StoreError::new(format!("create_session cancelled: {}", codes.join(","))));
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
        for item in self.query_partition(user, SESSION_PREFIX).await? {
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
            .query_partition(user, SESSION_PREFIX)
            .await?
            .iter()
            .filter_map(|i| get_s(i, "sk").ok())
            .filter(|sk| Some(sk) != keep.as_ref())
            .map(|sk| key(user_pk(user), &sk))
            .collect();
        self.batch_delete(keys).await
    }
}
