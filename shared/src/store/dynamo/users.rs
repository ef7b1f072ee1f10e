//! [`UserStore`]: the user item, its email and username claims, and its partition.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::schema::{
    claim_item, code_sk, code_to_item, email_pk, expired, get_s, group_ids, key, n, s, user_from_item, user_pk,
    user_to_item, username_pk, EMAIL, IDENTITY_PREFIX, LIST_USERS, PROFILE, USERNAME,
};
use super::{written, DynamoStore, Names, Values, BATCH_GET_MAX, FREE_CLAIM, LIST_QUERY_MAX, LIST_QUERY_MIN};
use crate::domain::{CodePurpose, Email, User, UserId};
use crate::ports::{
    ActivateError, ChangeEmailError, CodeRecord, CounterKey, CounterState, CreateUserError, StoreError, StoreResult,
    UpdateUserError, UserStore,
};

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User, code: Option<&CodeRecord>, now: i64) -> Result<(), CreateUserError> {
        let mut items = self.new_user_items(user, now)?;
        if let Some(code) = code {
            items.push(self.put(code_to_item(code), None)?);
        }
        self.create_user_with(user, items, "create_user").await
    }

    async fn get_user(&self, id: &UserId, now: i64) -> StoreResult<Option<User>> {
        match self.get(user_pk(id), PROFILE).await? {
            Some(item) if !expired(&item, now) => user_from_item(&item).map(Some),
            _ => Ok(None),
        }
    }

    async fn find_user_by_email(&self, email: &Email, now: i64) -> StoreResult<Option<User>> {
        let Some(claim) = self.get(email_pk(email), EMAIL).await? else {
            return Ok(None);
        };
        if expired(&claim, now) {
            return Ok(None);
        }
        let id = UserId::parse(&get_s(&claim, "user_id")?).ok_or_else(|| StoreError::new("claim user id malformed"))?;
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
                    .ok_or_else(|| StoreError::new("claim user id malformed"))?;
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
        let mut claims = vec![(email_pk(&user.email), EMAIL)];
        if let Some(name) = &user.username {
            claims.push((username_pk(&name.key()), USERNAME));
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
            "#user_permissions = :up",
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
            .with(":up", group_ids(&updated.user_permissions))
            .with(":tva", n(updated.tokens_valid_after))
            .with(":v", n(version))
            .with(":old", n(current.version))
            .with(":now", n(now));
        let mut remove = Vec::new();
        match &updated.username {
            Some(name) => {
                set.push("#username = :un");
                values = values.with(":un", s(name.as_str()));
            }
            None => remove.push("#username"),
        }
        match updated.deactivated_at {
            Some(t) => {
                set.push("#deactivated_at = :da");
                values = values.with(":da", n(t));
            }
            None => remove.push("#deactivated_at"),
        }
        match &updated.language {
            Some(lang) => {
                set.push("#language = :lang");
                values = values.with(":lang", s(lang));
            }
            None => remove.push("#language"),
        }
        let expr = if remove.is_empty() {
            format!("SET {}", set.join(", "))
        } else {
            format!("SET {} REMOVE {}", set.join(", "), remove.join(", "))
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
            "user_permissions",
            "tokens_valid_after",
            "version",
            "expires_at",
            "username",
            "deactivated_at",
            "language",
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
                    claim_item(username_pk(k), USERNAME, &current.id, current.expires_at),
                    Some((
                        "attribute_not_exists(pk) OR #expires_at <= :now OR #user_id = :uid",
                        Names::of(&["expires_at", "user_id"]),
                        Values::default().with(":now", n(now)).with(":uid", s(current.id.as_str())),
                    )),
                )?);
            }
            if let Some(k) = &old_key {
                items.push(self.delete(key(username_pk(k), USERNAME), Some(owned_by(&current.id)))?);
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
            let mut claims = vec![(email_pk(&user.email), EMAIL)];
            if let Some(name) = &user.username {
                claims.push((username_pk(&name.key()), USERNAME));
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
                claim_item(email_pk(new_email), EMAIL, &current.id, current.expires_at),
                Some((FREE_CLAIM, Names::of(&["expires_at"]), Values::default().with(":now", n(now)))),
            )?);
            items.push(self.delete(key(email_pk(&current.email), EMAIL), Some(owned_by(&current.id)))?);
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
            self.delete(key(email_pk(&user.email), EMAIL), Some(owned_by(&user.id)))?,
        ];
        if let Some(name) = &user.username {
            items.push(self.delete(key(username_pk(&name.key()), USERNAME), Some(owned_by(&user.id)))?);
        }
        // Its codes go with it: no link outlives the account.
        items.extend(self.delete_codes(&user.id, None)?);
        if let Err(codes) = self.transact(items).await? {
            return Err(if failed(&codes, 0) {
                UpdateUserError::Conflict
            } else {
                StoreError::new(format!("delete_user cancelled: {}", codes.join(","))).into()
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
        let sides: Vec<_> =
            rest.iter().filter(|i| get_s(i, "sk").is_ok_and(|sk| sk.starts_with(IDENTITY_PREFIX))).cloned().collect();
        self.delete_identity_claims(&user.id, &sides).await;
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
        written(result)
    }
}

impl DynamoStore {
    /// A new account's items, first in a transaction: the user, its email claim and its username
    /// claim, each conditional on being new (or an expired claim).
    pub(super) fn new_user_items(
        &self,
        user: &User,
        now: i64,
    ) -> StoreResult<Vec<aws_sdk_dynamodb::types::TransactWriteItem>> {
        let free = || (FREE_CLAIM, Names::of(&["expires_at"]), Values::default().with(":now", n(now)));
        let mut items = vec![
            self.put(user_to_item(user), Some(("attribute_not_exists(pk)", Names::default(), Values::default())))?,
            self.put(claim_item(email_pk(&user.email), EMAIL, &user.id, user.expires_at), Some(free()))?,
        ];
        if let Some(name) = &user.username {
            items.push(
                self.put(claim_item(username_pk(&name.key()), USERNAME, &user.id, user.expires_at), Some(free()))?,
            );
        }
        Ok(items)
    }

    /// Writes a new account's transaction (the [`Self::new_user_items`] first): which claim
    /// was taken when a condition failed (an item after those is the caller's own, reported as
    /// [`CreateUserError::IdentityTaken`]).
    pub(super) async fn create_user_with(
        &self,
        user: &User,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
        call: &str,
    ) -> Result<(), CreateUserError> {
        let own = if user.username.is_some() { 3 } else { 2 };
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(codes) if failed(&codes, 1) => Err(CreateUserError::EmailTaken),
            Err(codes) if failed(&codes, 2) && user.username.is_some() => Err(CreateUserError::UsernameTaken),
            Err(codes) if codes.iter().skip(own).any(|c| c == "ConditionalCheckFailed") => {
                Err(CreateUserError::IdentityTaken)
            }
            Err(codes) => Err(StoreError::new(format!("{call} cancelled: {}", codes.join(","))).into()),
        }
    }
}

/// Whether the transaction item at `index` failed its condition.
pub(super) fn failed(codes: &[String], index: usize) -> bool {
    codes.get(index).is_some_and(|c| c == "ConditionalCheckFailed")
}

/// A condition: the claim belongs to this user.
pub(super) fn owned_by(id: &UserId) -> (&'static str, Names, Values) {
    ("#user_id = :uid", Names::of(&["user_id"]), Values::default().with(":uid", s(id.as_str())))
}
