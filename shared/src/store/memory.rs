//! An in-process store with the same semantics as the DynamoDB one: one lock stands in for
//! DynamoDB's transactions, and expired items linger until read, as they do under TTL.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::domain::{AuditEntry, AuditPosition, AuditStream};
use crate::domain::{Challenge, Identity, Mfa, PasskeyRecord, RecoveryCodes, TotpFactor};
use crate::domain::{CodePurpose, Email, User, UserId};
use crate::domain::{Group, Permission};
use crate::ports::{
    ActivateError, ChangeEmailError, CodeRecord, CodeStore, CreateUserError, Reservation, Rotation, Session,
    SessionStore, StoreError, StoreResult, UpdateUserError, UserStore, MAX_CODE_ATTEMPTS,
};
use crate::ports::{
    AuditStore, ChallengeStore, CounterKey, CounterState, GiveBack, GroupStore, IdentityStore, Limiter, MfaStore,
    PasskeyStore, PermissionStore,
};

#[derive(Clone, Debug)]
struct Claim {
    user_id: UserId,
    expires_at: Option<i64>,
}

impl Claim {
    fn live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

#[derive(Default)]
struct State {
    users: HashMap<UserId, User>,
    emails: HashMap<String, Claim>,
    usernames: HashMap<String, Claim>,
    codes: HashMap<(UserId, CodePurpose), CodeRecord>,
    sessions: HashMap<(UserId, String), Session>,
    counters: HashMap<CounterKey, (CounterState, i64)>,
    groups: std::collections::BTreeMap<String, Group>,
    permissions: std::collections::BTreeMap<String, Permission>,
    /// The audit trail, by position (each entry once; its streams are computed on reading).
    audit: std::collections::BTreeMap<AuditPosition, AuditEntry>,
    totp: HashMap<UserId, TotpFactor>,
    recovery: HashMap<UserId, RecoveryCodes>,
    challenges: HashMap<String, Challenge>,
    passkeys: HashMap<(UserId, String), PasskeyRecord>,
    /// Provider links: the claims by (provider, subject), the accounts' side by (user, provider).
    identity_claims: HashMap<(String, String), Identity>,
    identities: HashMap<(UserId, String), Identity>,
}

impl State {
    /// What a new account's write would be refused for (its address or username claimed, its
    /// id taken).
    fn check_new_user(&self, user: &User, now: i64) -> Result<(), CreateUserError> {
        if self.emails.get(user.email.normalised()).is_some_and(|c| c.live(now)) {
            return Err(CreateUserError::EmailTaken);
        }
        if let Some(key) = user.username.as_ref().map(|u| u.key()) {
            if self.usernames.get(&key).is_some_and(|c| c.live(now)) {
                return Err(CreateUserError::UsernameTaken);
            }
        }
        if self.users.contains_key(&user.id) {
            return Err(StoreError::new("user id collision").into());
        }
        Ok(())
    }

    /// The account and its claims.
    fn insert_user(&mut self, user: &User) {
        let claim = Claim { user_id: user.id.clone(), expires_at: user.expires_at };
        self.emails.insert(user.email.normalised().to_owned(), claim.clone());
        if let Some(key) = user.username.as_ref().map(|u| u.key()) {
            self.usernames.insert(key, claim);
        }
        self.users.insert(user.id.clone(), user.clone());
    }

    /// Whether the link can be written (neither the subject nor the account's slot taken).
    fn identity_free(&self, identity: &Identity) -> bool {
        !self.identity_claims.contains_key(&(identity.provider.clone(), identity.subject.clone()))
            && !self.identities.contains_key(&(identity.user_id.clone(), identity.provider.clone()))
    }

    fn insert_identity(&mut self, identity: &Identity) {
        self.identity_claims.insert((identity.provider.clone(), identity.subject.clone()), identity.clone());
        self.identities.insert((identity.user_id.clone(), identity.provider.clone()), identity.clone());
    }
}

/// The memory store.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| StoreError::new("memory store lock poisoned"))
    }

    /// Number of users stored, expired or not (for tests).
    pub fn user_count(&self) -> usize {
        self.lock().map(|s| s.users.len()).unwrap_or_default()
    }

    /// Number of email claims stored, expired or not (for tests).
    pub fn email_claim_count(&self) -> usize {
        self.lock().map(|s| s.emails.len()).unwrap_or_default()
    }
}

/// [`Limiter::give_back`] under the lock: counters already gone are left alone.
fn give_back_locked(s: &mut State, refund: &[CounterKey], forget: &[CounterKey]) {
    for c in refund {
        if let Some((state, _)) = s.counters.get_mut(c) {
            state.count = state.count.saturating_sub(1);
        }
    }
    for c in forget {
        s.counters.remove(c);
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, user: &User, code: Option<&CodeRecord>, now: i64) -> Result<(), CreateUserError> {
        let mut s = self.lock()?;
        s.check_new_user(user, now)?;
        if let Some(code) = code {
            s.codes.insert((code.user_id.clone(), code.purpose), code.clone());
        }
        s.insert_user(user);
        Ok(())
    }

    async fn get_user(&self, id: &UserId, now: i64) -> StoreResult<Option<User>> {
        let s = self.lock()?;
        Ok(s.users.get(id).filter(|u| !u.is_expired(now)).cloned())
    }

    async fn find_user_by_email(&self, email: &Email, now: i64) -> StoreResult<Option<User>> {
        let s = self.lock()?;
        let Some(claim) = s.emails.get(email.normalised()).filter(|c| c.live(now)) else {
            return Ok(None);
        };
        Ok(s.users.get(&claim.user_id).filter(|u| !u.is_expired(now)).cloned())
    }

    async fn find_user_for_login(
        &self,
        email: &Email,
        counters: &[CounterKey],
        now: i64,
    ) -> StoreResult<(Option<User>, Vec<CounterState>)> {
        let user = self.find_user_by_email(email, now).await?;
        Ok((user, self.read(counters, now).await?))
    }

    async fn activate(&self, id: &UserId, code_hash: &str, now: i64) -> Result<(), ActivateError> {
        let mut s = self.lock()?;
        let key = (id.clone(), CodePurpose::Activation);
        let code_ok = s.codes.get(&key).is_some_and(|c| c.still_usable(code_hash, now));
        let Some(user) = s.users.get(id).filter(|u| !u.is_expired(now)) else {
            return Err(ActivateError::NotActivatable);
        };
        if user.is_active {
            return Err(ActivateError::NotActivatable);
        }
        if !code_ok {
            return Err(ActivateError::InvalidCode);
        }
        let email_key = user.email.normalised().to_owned();
        if s.emails.get(&email_key).is_none_or(|c| &c.user_id != id) {
            return Err(ActivateError::NotActivatable);
        }
        if let Some(code) = s.codes.get_mut(&key) {
            code.spent = true;
        }
        if let Some(user) = s.users.get_mut(id) {
            user.is_active = true;
            user.expires_at = None;
            user.version += 1;
            let username_key = user.username.as_ref().map(|u| u.key());
            if let Some(claim) = s.emails.get_mut(&email_key) {
                claim.expires_at = None;
            }
            if let Some(claim) = username_key.and_then(|k| s.usernames.get_mut(&k)) {
                claim.expires_at = None;
            }
        }
        Ok(())
    }

    async fn update_user(&self, current: &User, updated: &User, now: i64) -> Result<u64, UpdateUserError> {
        let mut s = self.lock()?;
        let stored_version = s.users.get(&current.id).filter(|u| !u.is_expired(now)).map(|u| u.version);
        if stored_version != Some(current.version) {
            return Err(UpdateUserError::Conflict);
        }
        let old_key = current.username.as_ref().map(|u| u.key());
        let new_key = updated.username.as_ref().map(|u| u.key());
        if new_key != old_key {
            if let Some(key) = &new_key {
                if s.usernames.get(key).is_some_and(|c| c.live(now) && c.user_id != current.id) {
                    return Err(UpdateUserError::UsernameTaken);
                }
            }
            if let Some(key) = &old_key {
                s.usernames.remove(key);
            }
            if let Some(key) = new_key {
                s.usernames.insert(key, Claim { user_id: current.id.clone(), expires_at: current.expires_at });
            }
        }
        let version = current.version + 1;
        if current.security_change(updated) {
            s.codes.retain(|(id, _), _| id != &current.id);
        }
        if let Some(user) = s.users.get_mut(&current.id) {
            let email = user.email.clone();
            let (date_joined, last_login, expires_at) = (user.date_joined, user.last_login, user.expires_at);
            // `mfa_enabled` is the factor's to change (MfaStore), as in DynamoDB.
            let mfa_enabled = user.mfa_enabled;
            *user = User { email, date_joined, last_login, expires_at, version, mfa_enabled, ..updated.clone() };
        }
        Ok(version)
    }

    async fn reset_password(
        &self,
        user: &User,
        code_hash: &str,
        new_hash: &str,
        now: i64,
    ) -> Result<(), ActivateError> {
        let mut s = self.lock()?;
        let id = &user.id;
        let key = (id.clone(), CodePurpose::PasswordReset);
        // Active, or never activated (and unexpired); a deactivated account is refused.
        if !s.users.get(id).is_some_and(|u| !u.is_expired(now) && (u.is_active || u.expires_at.is_some())) {
            return Err(ActivateError::NotActivatable);
        }
        if !s.codes.get(&key).is_some_and(|c| c.still_usable(code_hash, now)) {
            return Err(ActivateError::InvalidCode);
        }
        s.codes.retain(|(owner, _), _| owner != id);
        let mut claims = None;
        if let Some(stored) = s.users.get_mut(id) {
            stored.password_hash = new_hash.to_owned();
            stored.tokens_valid_after = now;
            stored.version += 1;
            stored.is_active = true;
            if stored.expires_at.take().is_some() {
                claims = Some((stored.email.normalised().to_owned(), stored.username.as_ref().map(|u| u.key())));
            }
        }
        if let Some((email_key, username_key)) = claims {
            if let Some(claim) = s.emails.get_mut(&email_key).filter(|c| &c.user_id == id) {
                claim.expires_at = None;
            }
            if let Some(claim) = username_key.and_then(|k| s.usernames.get_mut(&k)).filter(|c| &c.user_id == id) {
                claim.expires_at = None;
            }
        }
        Ok(())
    }

    async fn change_email(
        &self,
        current: &User,
        new_email: &Email,
        code_hash: Option<&str>,
        now: i64,
    ) -> Result<(), ChangeEmailError> {
        let mut s = self.lock()?;
        if s.users.get(&current.id).filter(|u| !u.is_expired(now)).map(|u| u.version) != Some(current.version) {
            return Err(ChangeEmailError::Conflict);
        }
        let code_key = (current.id.clone(), CodePurpose::EmailChange);
        if let Some(hash) = code_hash {
            if !s.codes.get(&code_key).is_some_and(|c| c.still_usable(hash, now)) {
                return Err(ChangeEmailError::InvalidCode);
            }
        }
        let old_key = current.email.normalised().to_owned();
        let new_key = new_email.normalised().to_owned();
        if new_key != old_key {
            if s.emails.get(&new_key).is_some_and(|c| c.live(now)) {
                return Err(ChangeEmailError::EmailTaken);
            }
            s.emails.remove(&old_key);
            s.emails.insert(new_key, Claim { user_id: current.id.clone(), expires_at: current.expires_at });
        }
        s.codes.retain(|(owner, _), _| owner != &current.id);
        if let Some(user) = s.users.get_mut(&current.id) {
            user.email = new_email.clone();
            user.version += 1;
        }
        Ok(())
    }

    async fn delete_user(&self, user: &User) -> Result<(), UpdateUserError> {
        let mut s = self.lock()?;
        if s.users.get(&user.id).map(|u| u.version) != Some(user.version) {
            return Err(UpdateUserError::Conflict);
        }
        s.users.remove(&user.id);
        s.emails.retain(|_, c| c.user_id != user.id);
        s.usernames.retain(|_, c| c.user_id != user.id);
        s.codes.retain(|(id, _), _| id != &user.id);
        s.sessions.retain(|(id, _), _| id != &user.id);
        s.totp.remove(&user.id);
        s.recovery.remove(&user.id);
        s.passkeys.retain(|(id, _), _| id != &user.id);
        s.identities.retain(|(id, _), _| id != &user.id);
        s.identity_claims.retain(|_, i| i.user_id != user.id);
        Ok(())
    }

    async fn list_users(
        &self,
        after: Option<&UserId>,
        limit: usize,
        now: i64,
    ) -> StoreResult<(Vec<User>, Option<UserId>)> {
        let s = self.lock()?;
        let mut live: Vec<&User> =
            s.users.values().filter(|u| !u.is_expired(now) && after.is_none_or(|a| &u.id > a)).collect();
        live.sort_by(|a, b| a.id.cmp(&b.id));
        let more = live.len() > limit;
        let page: Vec<User> = live.into_iter().take(limit).cloned().collect();
        let next = if more { page.last().map(|u| u.id.clone()) } else { None };
        Ok((page, next))
    }

    async fn replace_password_hash(&self, id: &UserId, old_hash: &str, new_hash: &str) -> StoreResult<bool> {
        let mut s = self.lock()?;
        match s.users.get_mut(id) {
            Some(user) if user.password_hash == old_hash => {
                user.password_hash = new_hash.to_owned();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl CodeStore for MemoryStore {
    async fn put_code(&self, code: &CodeRecord) -> StoreResult<()> {
        self.lock()?.codes.insert((code.user_id.clone(), code.purpose), code.clone());
        Ok(())
    }

    async fn get_code(&self, user: &UserId, purpose: CodePurpose, now: i64) -> StoreResult<Option<CodeRecord>> {
        let s = self.lock()?;
        Ok(s.codes.get(&(user.clone(), purpose)).filter(|c| c.expires_at > now).cloned())
    }

    async fn reserve_guess(&self, user: &UserId, purpose: CodePurpose, now: i64) -> StoreResult<Option<CodeRecord>> {
        let mut s = self.lock()?;
        match s.codes.get_mut(&(user.clone(), purpose)) {
            Some(code) if code.expires_at > now && !code.spent && code.attempts < MAX_CODE_ATTEMPTS => {
                code.attempts += 1;
                Ok(Some(code.clone()))
            }
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(
        &self,
        session: &Session,
        last_login: Option<i64>,
        give_back: &GiveBack,
    ) -> StoreResult<()> {
        let mut s = self.lock()?;
        if let Some(at) = last_login {
            let Some(user) = s.users.get_mut(&session.user_id) else {
                return Err(StoreError::new("user vanished during login"));
            };
            user.last_login = Some(at);
        }
        s.sessions.insert((session.user_id.clone(), session.id.clone()), session.clone());
        give_back_locked(&mut s, &give_back.refund, &give_back.forget);
        Ok(())
    }

    async fn get_user_and_session(
        &self,
        user: &UserId,
        sid: &str,
        now: i64,
    ) -> StoreResult<(Option<User>, Option<Session>)> {
        let s = self.lock()?;
        let u = s.users.get(user).filter(|u| !u.is_expired(now)).cloned();
        let session = s.sessions.get(&(user.clone(), sid.to_owned())).filter(|x| x.expires_at > now).cloned();
        Ok((u, session))
    }

    async fn rotate_session(
        &self,
        user: &UserId,
        sid: &str,
        expected_jti: &str,
        new_jti: &str,
        now: i64,
    ) -> StoreResult<Rotation> {
        let mut s = self.lock()?;
        match s.sessions.get_mut(&(user.clone(), sid.to_owned())) {
            Some(session) if session.current_jti == expected_jti && session.expires_at > now => {
                session.previous_jti = Some(std::mem::replace(&mut session.current_jti, new_jti.to_owned()));
                session.counter += 1;
                session.rotated_at = Some(now);
                session.last_used_at = now;
                Ok(Rotation::Rotated)
            }
            _ => Ok(Rotation::Stale),
        }
    }

    async fn delete_session(&self, user: &UserId, sid: &str) -> StoreResult<()> {
        self.lock()?.sessions.remove(&(user.clone(), sid.to_owned()));
        Ok(())
    }

    async fn list_sessions(&self, user: &UserId, now: i64) -> StoreResult<Vec<Session>> {
        let s = self.lock()?;
        let mut out: Vec<Session> =
            s.sessions.values().filter(|x| &x.user_id == user && x.expires_at > now).cloned().collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn delete_sessions(&self, user: &UserId, except: Option<&str>) -> StoreResult<()> {
        self.lock()?.sessions.retain(|(id, sid), _| id != user || except == Some(sid.as_str()));
        Ok(())
    }
}

#[async_trait]
impl Limiter for MemoryStore {
    async fn hit(&self, counter: &CounterKey, expires_at: i64, now: i64) -> StoreResult<CounterState> {
        let mut s = self.lock()?;
        let entry = s.counters.entry(counter.clone()).or_insert((CounterState::default(), expires_at));
        if entry.1 <= now {
            *entry = (CounterState::default(), expires_at);
        }
        entry.0.count += 1;
        entry.0.last_at = now;
        entry.1 = expires_at;
        Ok(entry.0)
    }

    async fn read(&self, counters: &[CounterKey], now: i64) -> StoreResult<Vec<CounterState>> {
        let s = self.lock()?;
        Ok(counters
            .iter()
            .map(|c| s.counters.get(c).filter(|(_, exp)| *exp > now).map(|(st, _)| *st).unwrap_or_default())
            .collect())
    }

    async fn clear(&self, counter: &CounterKey) -> StoreResult<()> {
        self.lock()?.counters.remove(counter);
        Ok(())
    }

    async fn reserve(&self, reservations: &[Reservation], now: i64) -> StoreResult<Result<(), usize>> {
        let mut s = self.lock()?;
        for (i, r) in reservations.iter().enumerate() {
            let state = s.counters.get(&r.counter).filter(|(_, exp)| *exp > now).map(|(st, _)| *st).unwrap_or_default();
            if state.count >= r.limit && r.or_at != Some(state) {
                return Ok(Err(i));
            }
        }
        for r in reservations {
            let entry = s.counters.entry(r.counter.clone()).or_insert((CounterState::default(), r.expires_at));
            if entry.1 <= now {
                *entry = (CounterState::default(), r.expires_at);
            }
            entry.0.count += 1;
            entry.0.last_at = now;
            entry.1 = r.expires_at;
        }
        Ok(Ok(()))
    }

    async fn give_back(&self, refund: &[CounterKey], forget: &[CounterKey]) -> StoreResult<()> {
        give_back_locked(&mut *self.lock()?, refund, forget);
        Ok(())
    }

    async fn take_cooldown(&self, counter: &CounterKey, until: i64, now: i64) -> StoreResult<bool> {
        let mut s = self.lock()?;
        if s.counters.get(counter).is_some_and(|(_, exp)| *exp > now) {
            return Ok(false);
        }
        s.counters.insert(counter.clone(), (CounterState { count: 1, last_at: now }, until));
        Ok(true)
    }
}

#[async_trait]
impl GroupStore for MemoryStore {
    async fn put_group(&self, group: &Group, create: bool) -> StoreResult<bool> {
        let mut s = self.lock()?;
        let stored_id = s.groups.get(&group.name).map(|g| g.id.clone());
        let allowed = if create { stored_id.is_none() } else { stored_id.as_ref() == Some(&group.id) };
        if !allowed {
            return Ok(false);
        }
        s.groups.insert(group.name.clone(), group.clone());
        Ok(true)
    }

    async fn get_groups(&self, names: &[String]) -> StoreResult<Vec<Group>> {
        let s = self.lock()?;
        Ok(names.iter().filter_map(|n| s.groups.get(n).cloned()).collect())
    }

    async fn list_groups(&self) -> StoreResult<Vec<Group>> {
        Ok(self.lock()?.groups.values().cloned().collect())
    }

    async fn delete_group(&self, name: &str) -> StoreResult<bool> {
        Ok(self.lock()?.groups.remove(name).is_some())
    }
}

#[async_trait]
impl PermissionStore for MemoryStore {
    async fn put_permission(&self, permission: &Permission, create: bool) -> StoreResult<bool> {
        let mut s = self.lock()?;
        if s.permissions.contains_key(&permission.codename) == create {
            return Ok(false);
        }
        s.permissions.insert(permission.codename.clone(), permission.clone());
        Ok(true)
    }

    async fn get_permissions(&self, codenames: &[String]) -> StoreResult<Vec<Permission>> {
        let s = self.lock()?;
        let mut found: Vec<Permission> = Vec::new();
        for c in codenames {
            if let Some(p) = s.permissions.get(c).filter(|p| !found.contains(p)) {
                found.push(p.clone());
            }
        }
        Ok(found)
    }

    async fn list_permissions(&self) -> StoreResult<Vec<Permission>> {
        Ok(self.lock()?.permissions.values().cloned().collect())
    }

    async fn delete_permission(&self, codename: &str) -> StoreResult<bool> {
        Ok(self.lock()?.permissions.remove(codename).is_some())
    }
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        self.lock()?.audit.insert(entry.position(), entry.clone());
        Ok(())
    }

    async fn audit_page(
        &self,
        stream: &AuditStream,
        before: Option<&AuditPosition>,
        since: i64,
        limit: usize,
        now: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        let s = self.lock()?;
        Ok(s.audit
            .values()
            .rev()
            .filter(|e| before.is_none_or(|b| &e.position() < b) && e.at >= since && e.live(now))
            .filter(|e| e.streams().contains(stream))
            .take(limit)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl MfaStore for MemoryStore {
    async fn put_pending_totp(&self, factor: &TotpFactor) -> StoreResult<bool> {
        let mut s = self.lock()?;
        if s.totp.get(&factor.user_id).is_some_and(|t| t.confirmed) {
            return Ok(false);
        }
        s.totp.insert(factor.user_id.clone(), factor.clone());
        Ok(true)
    }

    async fn get_mfa(&self, user: &UserId, now: i64) -> StoreResult<Mfa> {
        let s = self.lock()?;
        let totp = s.totp.get(user).filter(|t| t.is_live(now)).cloned();
        let confirmed = totp.as_ref().is_some_and(|t| t.confirmed);
        let recovery =
            if confirmed { s.recovery.get(user).cloned().unwrap_or_default() } else { RecoveryCodes::default() };
        Ok(Mfa { totp, recovery })
    }

    async fn confirm_totp(
        &self,
        user: &UserId,
        sealed: &str,
        step: u64,
        codes: &RecoveryCodes,
        now: i64,
    ) -> StoreResult<bool> {
        let mut s = self.lock()?;
        let pending = s.totp.get(user).is_some_and(|t| !t.confirmed && t.sealed_secret == sealed && t.is_live(now));
        if !pending || !s.users.contains_key(user) {
            return Ok(false);
        }
        if let Some(t) = s.totp.get_mut(user) {
            t.confirmed = true;
            t.last_step = Some(step);
            t.expires_at = None;
        }
        s.recovery.insert(user.clone(), RecoveryCodes { user_id: Some(user.clone()), ..codes.clone() });
        if let Some(u) = s.users.get_mut(user) {
            u.mfa_enabled = true;
            u.version += 1;
        }
        Ok(true)
    }

    async fn accept_totp_step(&self, user: &UserId, step: u64) -> StoreResult<bool> {
        let mut s = self.lock()?;
        match s.totp.get_mut(user) {
            Some(t) if t.confirmed && t.last_step.is_none_or(|last| last < step) => {
                t.last_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn spend_recovery_code(&self, user: &UserId, mac: &str) -> StoreResult<bool> {
        let mut s = self.lock()?;
        Ok(s.recovery.get_mut(user).is_some_and(|r| r.macs.remove(mac)))
    }

    async fn replace_recovery_codes(&self, user: &UserId, codes: &RecoveryCodes) -> StoreResult<bool> {
        let mut s = self.lock()?;
        if !s.totp.get(user).is_some_and(|t| t.confirmed) {
            return Ok(false);
        }
        s.recovery.insert(user.clone(), RecoveryCodes { user_id: Some(user.clone()), ..codes.clone() });
        Ok(true)
    }

    async fn remove_mfa(&self, user: &UserId) -> StoreResult<bool> {
        let mut s = self.lock()?;
        let Some(u) = s.users.get_mut(user) else { return Ok(false) };
        u.mfa_enabled = false;
        u.version += 1;
        s.totp.remove(user);
        s.recovery.remove(user);
        Ok(true)
    }
}

#[async_trait]
impl PasskeyStore for MemoryStore {
    async fn put_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool> {
        let mut s = self.lock()?;
        let k = (passkey.user_id.clone(), passkey.id.clone());
        if s.passkeys.contains_key(&k) {
            return Ok(false);
        }
        s.passkeys.insert(k, passkey.clone());
        Ok(true)
    }

    async fn list_passkeys(&self, user: &UserId) -> StoreResult<Vec<PasskeyRecord>> {
        let s = self.lock()?;
        let mut out: Vec<PasskeyRecord> = s.passkeys.values().filter(|p| &p.user_id == user).cloned().collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn record_passkey_use(&self, user: &UserId, id: &str, credential: &str, at: i64) -> StoreResult<bool> {
        let mut s = self.lock()?;
        Ok(s.passkeys
            .get_mut(&(user.clone(), id.to_owned()))
            .map(|p| {
                p.credential = credential.to_owned();
                p.last_used_at = Some(at);
            })
            .is_some())
    }

    async fn rename_passkey(&self, user: &UserId, id: &str, name: &str) -> StoreResult<bool> {
        let mut s = self.lock()?;
        Ok(s.passkeys.get_mut(&(user.clone(), id.to_owned())).map(|p| p.name = name.to_owned()).is_some())
    }

    async fn delete_passkey(&self, user: &UserId, id: &str) -> StoreResult<bool> {
        let mut s = self.lock()?;
        Ok(s.passkeys.remove(&(user.clone(), id.to_owned())).is_some())
    }
}

#[async_trait]
impl ChallengeStore for MemoryStore {
    async fn put_challenge(&self, challenge: &Challenge) -> StoreResult<bool> {
        let mut s = self.lock()?;
        if s.challenges.contains_key(&challenge.id) {
            return Ok(false);
        }
        s.challenges.insert(challenge.id.clone(), challenge.clone());
        Ok(true)
    }

    async fn reserve_challenge(&self, id: &str, max_attempts: u32, now: i64) -> StoreResult<Option<Challenge>> {
        let mut s = self.lock()?;
        match s.challenges.get_mut(id) {
            Some(c) if c.expires_at > now && c.attempts < max_attempts => {
                c.attempts += 1;
                Ok(Some(c.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn take_challenge(&self, id: &str, now: i64) -> StoreResult<Option<Challenge>> {
        let mut s = self.lock()?;
        if s.challenges.get(id).is_some_and(|c| c.expires_at > now) {
            return Ok(s.challenges.remove(id));
        }
        Ok(None)
    }
}

#[async_trait]
impl IdentityStore for MemoryStore {
    async fn get_identity(&self, provider: &str, subject: &str) -> StoreResult<Option<Identity>> {
        let s = self.lock()?;
        // The claim as DynamoDB keeps it: who, and since when (the account's side has the rest).
        Ok(s.identity_claims.get(&(provider.to_owned(), subject.to_owned())).map(|i| Identity {
            email: None,
            last_used_at: None,
            ..i.clone()
        }))
    }

    async fn list_identities(&self, user: &UserId) -> StoreResult<Vec<Identity>> {
        let s = self.lock()?;
        let mut out: Vec<Identity> = s.identities.values().filter(|i| &i.user_id == user).cloned().collect();
        out.sort_by(|a, b| a.provider.cmp(&b.provider));
        Ok(out)
    }

    async fn link_identity(&self, user: &User, identity: &Identity) -> StoreResult<bool> {
        let mut s = self.lock()?;
        if s.users.get(&user.id).map(|u| u.version) != Some(user.version) || !s.identity_free(identity) {
            return Ok(false);
        }
        s.insert_identity(identity);
        Ok(true)
    }

    async fn create_user_with_identity(
        &self,
        user: &User,
        identity: &Identity,
        now: i64,
    ) -> Result<(), CreateUserError> {
        let mut s = self.lock()?;
        s.check_new_user(user, now)?;
        if !s.identity_free(identity) {
            return Err(CreateUserError::IdentityTaken);
        }
        s.insert_user(user);
        s.insert_identity(identity);
        Ok(())
    }

    async fn touch_identity(&self, identity: &Identity, at: i64) -> StoreResult<()> {
        let mut s = self.lock()?;
        if let Some(i) = s.identities.get_mut(&(identity.user_id.clone(), identity.provider.clone())) {
            if i.subject == identity.subject {
                i.last_used_at = Some(at);
            }
        }
        Ok(())
    }

    async fn unlink_identity(&self, user: &UserId, provider: &str) -> StoreResult<Option<Identity>> {
        let mut s = self.lock()?;
        let Some(identity) = s.identities.remove(&(user.clone(), provider.to_owned())) else { return Ok(None) };
        // The claim only while it names this account (as DynamoDB's conditional delete): one
        // left behind and since taken by another account stays that account's.
        let k = (identity.provider.clone(), identity.subject.clone());
        if s.identity_claims.get(&k).is_some_and(|i| &i.user_id == user) {
            s.identity_claims.remove(&k);
        }
        Ok(Some(identity))
    }

    async fn forget_identity(&self, identity: &Identity) -> StoreResult<bool> {
        let mut s = self.lock()?;
        let k = (identity.provider.clone(), identity.subject.clone());
        if s.identity_claims.get(&k).is_some_and(|i| i.user_id == identity.user_id) {
            s.identity_claims.remove(&k);
            return Ok(true);
        }
        Ok(false)
    }
}
