//! A store that fails on command, for fault-injection tests: it wraps any [`Store`] and, per
//! named operation, lets calls through or fails them with a [`StoreError`], as a throttled,
//! unreachable or erroring DynamoDB would.
//!
//! Faults are armed through a [`Faults`] handle shared with the test:
//! - [`Faults::fail_next`]: the next `n` calls of an operation fail, later ones pass;
//! - [`Faults::fail_after`]: `k` calls pass, every later one fails;
//! - [`Faults::fail_all`]: every call of every operation fails;
//! - [`Faults::lose_reply`]: the next `n` calls are applied to the inner store and then reported
//!   as failed (the write happened, the reply was lost: a timeout after the commit);
//! - [`Faults::heal`]: everything passes again;
//! - [`Faults::hold`]: calls of an operation park before reaching the
//!   inner store until [`Faults::release`]d, so a race test can line every contender up at the
//!   write after each has made its checks.
//!
//! A failed call (other than a lost reply) never reaches the inner store: nothing is written.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::domain::{AuditEntry, AuditPosition, AuditStream, CodePurpose, Email, Group, Permission, User, UserId};
use crate::domain::{Challenge, Identity, Mfa, PasskeyRecord, RecoveryCodes, TotpFactor};
use crate::ports::{
    ActivateError, AuditStore, ChallengeStore, ChangeEmailError, CodeRecord, CodeStore, CounterKey, CounterState,
    CreateUserError, GiveBack, GroupStore, IdentityStore, Limiter, MfaStore, PasskeyStore, PermissionStore,
    Reservation, Rotation, Session, SessionStore, Store, StoreError, StoreResult, UpdateUserError, UserStore,
};

/// Every store operation, by the name of its trait method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    CreateUser,
    GetUser,
    FindUserByEmail,
    FindUserForLogin,
    Activate,
    UpdateUser,
    ResetPassword,
    ChangeEmail,
    DeleteUser,
    ListUsers,
    ReplacePasswordHash,
    PutCode,
    GetCode,
    ReserveGuess,
    CreateSession,
    GetUserAndSession,
    RotateSession,
    DeleteSession,
    ListSessions,
    DeleteSessions,
    Hit,
    Read,
    Reserve,
    GiveBack,
    Clear,
    TakeCooldown,
    PutGroup,
    GetGroups,
    ListGroups,
    DeleteGroup,
    PutPermission,
    GetPermissions,
    ListPermissions,
    DeletePermission,
    AppendAudit,
    AuditPage,
    PutPendingTotp,
    GetMfa,
    ConfirmTotp,
    AcceptTotpStep,
    SpendRecoveryCode,
    ReplaceRecoveryCodes,
    RemoveMfa,
    PutPasskey,
    ListPasskeys,
    RecordPasskeyUse,
    RenamePasskey,
    DeletePasskey,
    PutChallenge,
    ReserveChallenge,
    TakeChallenge,
    GetIdentity,
    ListIdentities,
    LinkIdentity,
    CreateUserWithIdentity,
    TouchIdentity,
    UnlinkIdentity,
    ForgetIdentity,
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 58] = [
        Op::CreateUser,
        Op::GetUser,
        Op::FindUserByEmail,
        Op::FindUserForLogin,
        Op::Activate,
        Op::UpdateUser,
        Op::ResetPassword,
        Op::ChangeEmail,
        Op::DeleteUser,
        Op::ListUsers,
        Op::ReplacePasswordHash,
        Op::PutCode,
        Op::GetCode,
        Op::ReserveGuess,
        Op::CreateSession,
        Op::GetUserAndSession,
        Op::RotateSession,
        Op::DeleteSession,
        Op::ListSessions,
        Op::DeleteSessions,
        Op::Hit,
        Op::Read,
        Op::Reserve,
        Op::GiveBack,
        Op::Clear,
        Op::TakeCooldown,
        Op::PutGroup,
        Op::GetGroups,
        Op::ListGroups,
        Op::DeleteGroup,
        Op::PutPermission,
        Op::GetPermissions,
        Op::ListPermissions,
        Op::DeletePermission,
        Op::AppendAudit,
        Op::AuditPage,
        Op::PutPendingTotp,
        Op::GetMfa,
        Op::ConfirmTotp,
        Op::AcceptTotpStep,
        Op::SpendRecoveryCode,
        Op::ReplaceRecoveryCodes,
        Op::RemoveMfa,
        Op::PutPasskey,
        Op::ListPasskeys,
        Op::RecordPasskeyUse,
        Op::RenamePasskey,
        Op::DeletePasskey,
        Op::PutChallenge,
        Op::ReserveChallenge,
        Op::TakeChallenge,
        Op::GetIdentity,
        Op::ListIdentities,
        Op::LinkIdentity,
        Op::CreateUserWithIdentity,
        Op::TouchIdentity,
        Op::UnlinkIdentity,
        Op::ForgetIdentity,
    ];

    /// The trait method's name (`create_user`, `rotate_session`, `hit`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Op::CreateUser => "create_user",
            Op::GetUser => "get_user",
            Op::FindUserByEmail => "find_user_by_email",
            Op::FindUserForLogin => "find_user_for_login",
            Op::Activate => "activate",
            Op::UpdateUser => "update_user",
            Op::ResetPassword => "reset_password",
            Op::ChangeEmail => "change_email",
            Op::DeleteUser => "delete_user",
            Op::ListUsers => "list_users",
            Op::ReplacePasswordHash => "replace_password_hash",
            Op::PutCode => "put_code",
            Op::GetCode => "get_code",
            Op::ReserveGuess => "reserve_guess",
            Op::CreateSession => "create_session",
            Op::GetUserAndSession => "get_user_and_session",
            Op::RotateSession => "rotate_session",
            Op::DeleteSession => "delete_session",
            Op::ListSessions => "list_sessions",
            Op::DeleteSessions => "delete_sessions",
            Op::Hit => "hit",
            Op::Read => "read",
            Op::Reserve => "reserve",
            Op::GiveBack => "give_back",
            Op::Clear => "clear",
            Op::TakeCooldown => "take_cooldown",
            Op::PutGroup => "put_group",
            Op::GetGroups => "get_groups",
            Op::ListGroups => "list_groups",
            Op::DeleteGroup => "delete_group",
            Op::PutPermission => "put_permission",
            Op::GetPermissions => "get_permissions",
            Op::ListPermissions => "list_permissions",
            Op::DeletePermission => "delete_permission",
            Op::AppendAudit => "append_audit",
            Op::AuditPage => "audit_page",
            Op::PutPendingTotp => "put_pending_totp",
            Op::GetMfa => "get_mfa",
            Op::ConfirmTotp => "confirm_totp",
            Op::AcceptTotpStep => "accept_totp_step",
            Op::SpendRecoveryCode => "spend_recovery_code",
            Op::ReplaceRecoveryCodes => "replace_recovery_codes",
            Op::RemoveMfa => "remove_mfa",
            Op::PutPasskey => "put_passkey",
            Op::ListPasskeys => "list_passkeys",
            Op::RecordPasskeyUse => "record_passkey_use",
            Op::RenamePasskey => "rename_passkey",
            Op::DeletePasskey => "delete_passkey",
            Op::PutChallenge => "put_challenge",
            Op::ReserveChallenge => "reserve_challenge",
            Op::TakeChallenge => "take_challenge",
            Op::GetIdentity => "get_identity",
            Op::ListIdentities => "list_identities",
            Op::LinkIdentity => "link_identity",
            Op::CreateUserWithIdentity => "create_user_with_identity",
            Op::TouchIdentity => "touch_identity",
            Op::UnlinkIdentity => "unlink_identity",
            Op::ForgetIdentity => "forget_identity",
        }
    }

    /// The operation of that name.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When a rule fails a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Fail before the inner store sees the call.
    Refuse,
    /// Apply the call to the inner store, then report a failure.
    LoseReply,
}

#[derive(Clone, Debug)]
struct Rule {
    /// `None`: every operation.
    op: Option<Op>,
    /// Matching calls still let through before the rule starts failing.
    skip: u64,
    /// Failures left; `None`: unlimited.
    remaining: Option<u64>,
    mode: Mode,
}

#[derive(Default)]
struct FaultState {
    rules: Vec<Rule>,
    calls: HashMap<Op, u64>,
    failures: HashMap<Op, u64>,
    scheduler: Option<Arc<Scheduler>>,
    holds: HashMap<Op, Arc<Hold>>,
    /// Counter keys DynamoDB throttles ([`Faults::throttle_key`]).
    hot_keys: Vec<String>,
}

/// A gate parking the calls of one operation (see [`Faults::hold`]).
struct Hold {
    /// One permit per call let through; closed when the hold is lifted.
    gate: tokio::sync::Semaphore,
    /// Calls waiting at the gate now.
    parked: std::sync::atomic::AtomicUsize,
}

impl Default for Hold {
    fn default() -> Self {
        Self { gate: tokio::sync::Semaphore::new(0), parked: std::sync::atomic::AtomicUsize::new(0) }
    }
}

impl Hold {
    /// Waits for a permit (first come, first served), or for the hold to be lifted.
    async fn pass(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.parked.fetch_add(1, SeqCst);
        if let Ok(permit) = self.gate.acquire().await {
            permit.forget();
        }
        self.parked.fetch_sub(1, SeqCst);
    }
}

/// A seeded scheduler for race tests: around every store call it yields
/// to the other tasks of a single-threaded runtime a seeded number of times, so concurrent handler
/// invocations interleave their store calls in an order the seed decides (the same seed, the same
/// interleaving); and it fails a seeded share of calls, before they reach the store or after (a
/// reply lost after the write, as a DynamoDB transaction that kept meeting conflicts, or a
/// timeout, would end), so that every limit is seen to fail closed.
pub struct Scheduler {
    rng: Mutex<u64>,
    max_yields: u64,
    fail_per_mille: u64,
}

impl Scheduler {
    pub fn new(seed: u64, max_yields: u64, fail_per_mille: u64) -> Self {
        Self { rng: Mutex::new(seed), max_yields, fail_per_mille }
    }

    /// splitmix64.
    fn next(&self) -> u64 {
        let mut state = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    async fn pause(&self) {
        for _ in 0..self.next() % (self.max_yields + 1) {
            tokio::task::yield_now().await;
        }
    }

    fn fate(&self) -> Option<Mode> {
        let roll = self.next() % 1000;
        (roll < self.fail_per_mille).then_some(if roll.is_multiple_of(2) { Mode::Refuse } else { Mode::LoseReply })
    }
}

/// The handle arming a [`FaultyStore`]'s faults; cheap to clone, shared with the test.
#[derive(Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

/// The text of an injected failure: it reads like an SDK error naming a table, so tests can check
/// that no such text ever reaches a response body.
pub const INJECTED: &str = "injected fault";

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        // A test that panicked while holding the lock cannot leave the rules half-written.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn arm(&self, rule: Rule) {
        self.lock().rules.push(rule);
    }

    /// The next `n` calls of `op` fail; later ones pass.
    pub fn fail_next(&self, op: Op, n: u64) {
        self.arm(Rule { op: Some(op), skip: 0, remaining: Some(n), mode: Mode::Refuse });
    }

    /// The next `k` calls of `op` pass, every later one fails (until [`Faults::heal`]).
    pub fn fail_after(&self, op: Op, k: u64) {
        self.arm(Rule { op: Some(op), skip: k, remaining: None, mode: Mode::Refuse });
    }

    /// Every call of every operation fails (until [`Faults::heal`]).
    pub fn fail_all(&self) {
        self.arm(Rule { op: None, skip: 0, remaining: None, mode: Mode::Refuse });
    }

    /// The next `n` calls of `op` are applied, then reported as failed: the write happened but
    /// its reply was lost (a timeout after the commit).
    pub fn lose_reply(&self, op: Op, n: u64) {
        self.arm(Rule { op: Some(op), skip: 0, remaining: Some(n), mode: Mode::LoseReply });
    }

    /// Interleaves and fails calls as `scheduler` decides (see [`Scheduler`]).
    pub fn schedule(&self, scheduler: Arc<Scheduler>) {
        self.lock().scheduler = Some(scheduler);
    }

    fn scheduler(&self) -> Option<Arc<Scheduler>> {
        self.lock().scheduler.clone()
    }

    /// Parks every later call of `op` before it reaches the inner store, until let through by
    /// [`Faults::release`] (or [`Faults::unhold`]): a race test lines its contenders up at the
    /// write, each having made every check before it, then lets them go.
    pub fn hold(&self, op: Op) {
        self.lock().holds.entry(op).or_default();
    }

    /// Calls of `op` parked by [`Faults::hold`] right now.
    pub fn parked(&self, op: Op) -> usize {
        self.lock().holds.get(&op).map_or(0, |h| h.parked.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Lets `n` calls of `op` through its hold, parked ones first, in the order they arrived.
    pub fn release(&self, op: Op, n: usize) {
        if let Some(hold) = self.lock().holds.get(&op) {
            hold.gate.add_permits(n);
        }
    }

    /// Lifts the hold on `op`: parked calls and every later one go through.
    pub fn unhold(&self, op: Op) {
        if let Some(hold) = self.lock().holds.remove(&op) {
            hold.gate.close();
        }
    }

    fn hold_of(&self, op: Op) -> Option<Arc<Hold>> {
        self.lock().holds.get(&op).cloned()
    }

    /// Every limiter call touching a counter of `key` (an IP, an account) fails as DynamoDB
    /// throttles a hot item ([`StoreError::throttled`]), before reaching the inner store; calls
    /// on other counters pass. Until [`Faults::heal`].
    pub fn throttle_key(&self, key: &str) {
        self.lock().hot_keys.push(key.to_owned());
    }

    /// The throttling error of a limiter call of `op` on `counters`, when one is hot (counted as
    /// a call and a failure of `op`).
    fn hot<'a>(&self, op: Op, mut counters: impl Iterator<Item = &'a CounterKey>) -> Option<StoreError> {
        let mut s = self.lock();
        let hot = counters.find(|c| s.hot_keys.contains(&c.key))?;
        *s.calls.entry(op).or_insert(0) += 1;
        *s.failures.entry(op).or_insert(0) += 1;
        Some(StoreError::throttled(format!(
            "{INJECTED}: {op}: ProvisionedThroughputExceededException: the counter {} {} is hot",
            hot.scope, hot.key
        )))
    }

    /// Disarms every fault (the counts stay).
    pub fn heal(&self) {
        let mut s = self.lock();
        s.rules.clear();
        s.hot_keys.clear();
    }

    /// Calls of `op` so far, failed or not.
    pub fn calls(&self, op: Op) -> u64 {
        self.lock().calls.get(&op).copied().unwrap_or(0)
    }

    /// Injected failures of `op` so far.
    pub fn failures(&self, op: Op) -> u64 {
        self.lock().failures.get(&op).copied().unwrap_or(0)
    }

    /// Injected failures of every operation so far.
    pub fn total_failures(&self) -> u64 {
        self.lock().failures.values().sum()
    }

    /// Counts a call of `op` and decides its fate: `None` to let it through.
    fn decide(&self, op: Op) -> Option<Mode> {
        let mut s = self.lock();
        *s.calls.entry(op).or_insert(0) += 1;
        if let Some(mode) = s.scheduler.as_ref().and_then(|sched| sched.fate()) {
            *s.failures.entry(op).or_insert(0) += 1;
            return Some(mode);
        }
        let mut fired = None;
        for (i, rule) in s.rules.iter_mut().enumerate() {
            if rule.op.is_some_and(|o| o != op) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            if let Some(left) = rule.remaining.as_mut() {
                *left = left.saturating_sub(1);
            }
            fired = Some((i, rule.mode, rule.remaining == Some(0)));
            break;
        }
        let (index, mode, spent) = fired?;
        if spent {
            s.rules.remove(index);
        }
        *s.failures.entry(op).or_insert(0) += 1;
        Some(mode)
    }

    fn error(op: Op) -> StoreError {
        StoreError::new(format!(
            "{INJECTED}: {op}: ProvisionedThroughputExceededException: Throughput exceeded for table gatehouse-prod-users"
        ))
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("Faults").field("rules", &s.rules).field("failures", &s.failures).finish()
    }
}

/// A [`Store`] failing on command; see the module documentation.
pub struct FaultyStore<S: ?Sized> {
    inner: Arc<S>,
    faults: Faults,
}

impl<S: Store + ?Sized> FaultyStore<S> {
    /// Wraps `inner`; returns the store and the handle arming its faults.
    pub fn new(inner: Arc<S>) -> (Self, Faults) {
        let faults = Faults::new();
        (Self { inner, faults: faults.clone() }, faults)
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }
}

/// Runs `$call` on the inner store unless a fault says otherwise; the injected [`StoreError`]
/// becomes the operation's error type through its `From<StoreError>`.
/// The call is also IAM evidence (see [`crate::iam`]).
macro_rules! guarded {
    ($self:ident, $op:expr, $call:expr) => {
        guarded!($self, $op, $op.name(), $call)
    };
    // `$name` names the call in the IAM evidence when what it asks of AWS depends on its arguments.
    ($self:ident, $op:expr, $name:expr, $call:expr) => {{
        if let Some(hold) = $self.faults.hold_of($op) {
            hold.pass().await;
        }
        let scheduler = $self.faults.scheduler();
        if let Some(s) = &scheduler {
            s.pause().await;
        }
        let call = {
            crate::iam::used("store", $name);
            crate::iam::scoped("store", $name, $call)
        };
        let result = match $self.faults.decide($op) {
            None => call.await,
            Some(Mode::Refuse) => Err(Faults::error($op).into()),
            Some(Mode::LoseReply) => {
                let _applied = call.await;
                Err(Faults::error($op).into())
            }
        };
        if let Some(s) = &scheduler {
            s.pause().await;
        }
        result
    }};
}

#[async_trait]
impl<S: Store + ?Sized> UserStore for FaultyStore<S> {
    async fn create_user(&self, user: &User, code: Option<&CodeRecord>, now: i64) -> Result<(), CreateUserError> {
        guarded!(self, Op::CreateUser, self.inner.create_user(user, code, now))
    }

    async fn get_user(&self, id: &UserId, now: i64) -> StoreResult<Option<User>> {
        guarded!(self, Op::GetUser, self.inner.get_user(id, now))
    }

    async fn find_user_by_email(&self, email: &Email, now: i64) -> StoreResult<Option<User>> {
        guarded!(self, Op::FindUserByEmail, self.inner.find_user_by_email(email, now))
    }

    async fn find_user_for_login(
        &self,
        email: &Email,
        counters: &[CounterKey],
        now: i64,
    ) -> StoreResult<(Option<User>, Vec<CounterState>)> {
        if let Some(e) = self.faults.hot(Op::FindUserForLogin, counters.iter()) {
            return Err(e);
        }
        guarded!(self, Op::FindUserForLogin, self.inner.find_user_for_login(email, counters, now))
    }

    async fn activate(&self, id: &UserId, code_hash: &str, now: i64) -> Result<(), ActivateError> {
        guarded!(self, Op::Activate, self.inner.activate(id, code_hash, now))
    }

    async fn update_user(&self, current: &User, updated: &User, now: i64) -> Result<u64, UpdateUserError> {
        guarded!(self, Op::UpdateUser, self.inner.update_user(current, updated, now))
    }

    async fn reset_password(
        &self,
        user: &User,
        code_hash: &str,
        new_hash: &str,
        now: i64,
    ) -> Result<(), ActivateError> {
        guarded!(self, Op::ResetPassword, self.inner.reset_password(user, code_hash, new_hash, now))
    }

    async fn change_email(
        &self,
        current: &User,
        new_email: &Email,
        code_hash: Option<&str>,
        now: i64,
    ) -> Result<(), ChangeEmailError> {
        guarded!(self, Op::ChangeEmail, self.inner.change_email(current, new_email, code_hash, now))
    }

    async fn delete_user(&self, user: &User) -> Result<(), UpdateUserError> {
        guarded!(self, Op::DeleteUser, self.inner.delete_user(user))
    }

    async fn list_users(
        &self,
        after: Option<&UserId>,
        limit: usize,
        now: i64,
    ) -> StoreResult<(Vec<User>, Option<UserId>)> {
        guarded!(self, Op::ListUsers, self.inner.list_users(after, limit, now))
    }

    async fn replace_password_hash(&self, id: &UserId, old_hash: &str, new_hash: &str) -> StoreResult<bool> {
        guarded!(self, Op::ReplacePasswordHash, self.inner.replace_password_hash(id, old_hash, new_hash))
    }
}

#[async_trait]
impl<S: Store + ?Sized> CodeStore for FaultyStore<S> {
    async fn put_code(&self, code: &CodeRecord) -> StoreResult<()> {
        guarded!(self, Op::PutCode, self.inner.put_code(code))
    }

    async fn get_code(&self, user: &UserId, purpose: CodePurpose, now: i64) -> StoreResult<Option<CodeRecord>> {
        guarded!(self, Op::GetCode, self.inner.get_code(user, purpose, now))
    }

    async fn reserve_guess(&self, user: &UserId, purpose: CodePurpose, now: i64) -> StoreResult<Option<CodeRecord>> {
        guarded!(self, Op::ReserveGuess, self.inner.reserve_guess(user, purpose, now))
    }
}

#[async_trait]
impl<S: Store + ?Sized> SessionStore for FaultyStore<S> {
    async fn create_session(
        &self,
        session: &Session,
        last_login: Option<i64>,
        give_back: &GiveBack,
    ) -> StoreResult<()> {
        // Giving an attempt back writes and deletes counters: a call of its own for IAM.
        let name =
            if *give_back == GiveBack::default() { Op::CreateSession.name() } else { "create_session_giving_back" };
        guarded!(self, Op::CreateSession, name, self.inner.create_session(session, last_login, give_back))
    }

    async fn get_user_and_session(
        &self,
        user: &UserId,
        sid: &str,
        now: i64,
    ) -> StoreResult<(Option<User>, Option<Session>)> {
        guarded!(self, Op::GetUserAndSession, self.inner.get_user_and_session(user, sid, now))
    }

    async fn rotate_session(
        &self,
        user: &UserId,
        sid: &str,
        expected_jti: &str,
        new_jti: &str,
        now: i64,
    ) -> StoreResult<Rotation> {
        guarded!(self, Op::RotateSession, self.inner.rotate_session(user, sid, expected_jti, new_jti, now))
    }

    async fn delete_session(&self, user: &UserId, sid: &str) -> StoreResult<()> {
        guarded!(self, Op::DeleteSession, self.inner.delete_session(user, sid))
    }

    async fn list_sessions(&self, user: &UserId, now: i64) -> StoreResult<Vec<Session>> {
        guarded!(self, Op::ListSessions, self.inner.list_sessions(user, now))
    }

    async fn delete_sessions(&self, user: &UserId, except: Option<&str>) -> StoreResult<()> {
        guarded!(self, Op::DeleteSessions, self.inner.delete_sessions(user, except))
    }
}

#[async_trait]
impl<S: Store + ?Sized> Limiter for FaultyStore<S> {
    async fn hit(&self, counter: &CounterKey, expires_at: i64, now: i64) -> StoreResult<CounterState> {
        if let Some(e) = self.faults.hot(Op::Hit, std::iter::once(counter)) {
            return Err(e);
        }
        guarded!(self, Op::Hit, self.inner.hit(counter, expires_at, now))
    }

    async fn read(&self, counters: &[CounterKey], now: i64) -> StoreResult<Vec<CounterState>> {
        if let Some(e) = self.faults.hot(Op::Read, counters.iter()) {
            return Err(e);
        }
        guarded!(self, Op::Read, self.inner.read(counters, now))
    }

    async fn clear(&self, counter: &CounterKey) -> StoreResult<()> {
        if let Some(e) = self.faults.hot(Op::Clear, std::iter::once(counter)) {
            return Err(e);
        }
        guarded!(self, Op::Clear, self.inner.clear(counter))
    }

    async fn reserve(&self, reservations: &[Reservation], now: i64) -> StoreResult<Result<(), usize>> {
        if let Some(e) = self.faults.hot(Op::Reserve, reservations.iter().map(|r| &r.counter)) {
            return Err(e);
        }
        guarded!(self, Op::Reserve, self.inner.reserve(reservations, now))
    }

    async fn give_back(&self, refund: &[CounterKey], forget: &[CounterKey]) -> StoreResult<()> {
        if let Some(e) = self.faults.hot(Op::GiveBack, refund.iter().chain(forget)) {
            return Err(e);
        }
        guarded!(self, Op::GiveBack, self.inner.give_back(refund, forget))
    }

    async fn take_cooldown(&self, counter: &CounterKey, until: i64, now: i64) -> StoreResult<bool> {
        if let Some(e) = self.faults.hot(Op::TakeCooldown, std::iter::once(counter)) {
            return Err(e);
        }
        guarded!(self, Op::TakeCooldown, self.inner.take_cooldown(counter, until, now))
    }
}

#[async_trait]
impl<S: Store + ?Sized> GroupStore for FaultyStore<S> {
    async fn put_group(&self, group: &Group, create: bool) -> StoreResult<bool> {
        guarded!(self, Op::PutGroup, self.inner.put_group(group, create))
    }

    async fn get_groups(&self, names: &[String]) -> StoreResult<Vec<Group>> {
        guarded!(self, Op::GetGroups, self.inner.get_groups(names))
    }

    async fn list_groups(&self) -> StoreResult<Vec<Group>> {
        guarded!(self, Op::ListGroups, self.inner.list_groups())
    }

    async fn delete_group(&self, name: &str) -> StoreResult<bool> {
        guarded!(self, Op::DeleteGroup, self.inner.delete_group(name))
    }
}

#[async_trait]
impl<S: Store + ?Sized> PermissionStore for FaultyStore<S> {
    async fn put_permission(&self, permission: &Permission, create: bool) -> StoreResult<bool> {
        guarded!(self, Op::PutPermission, self.inner.put_permission(permission, create))
    }

    async fn get_permissions(&self, codenames: &[String]) -> StoreResult<Vec<Permission>> {
        guarded!(self, Op::GetPermissions, self.inner.get_permissions(codenames))
    }

    async fn list_permissions(&self) -> StoreResult<Vec<Permission>> {
        guarded!(self, Op::ListPermissions, self.inner.list_permissions())
    }

    async fn delete_permission(&self, codename: &str) -> StoreResult<bool> {
        guarded!(self, Op::DeletePermission, self.inner.delete_permission(codename))
    }
}

#[async_trait]
impl<S: Store + ?Sized> AuditStore for FaultyStore<S> {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        guarded!(self, Op::AppendAudit, self.inner.append_audit(entry))
    }

    async fn audit_page(
        &self,
        stream: &AuditStream,
        before: Option<&AuditPosition>,
        since: i64,
        limit: usize,
        now: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        guarded!(self, Op::AuditPage, self.inner.audit_page(stream, before, since, limit, now))
    }
}

#[async_trait]
impl<S: Store + ?Sized> PasskeyStore for FaultyStore<S> {
    async fn put_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<bool> {
        guarded!(self, Op::PutPasskey, self.inner.put_passkey(passkey))
    }

    async fn list_passkeys(&self, user: &UserId) -> StoreResult<Vec<PasskeyRecord>> {
        guarded!(self, Op::ListPasskeys, self.inner.list_passkeys(user))
    }

    async fn record_passkey_use(&self, user: &UserId, id: &str, credential: &str, at: i64) -> StoreResult<bool> {
        guarded!(self, Op::RecordPasskeyUse, self.inner.record_passkey_use(user, id, credential, at))
    }

    async fn rename_passkey(&self, user: &UserId, id: &str, name: &str) -> StoreResult<bool> {
        guarded!(self, Op::RenamePasskey, self.inner.rename_passkey(user, id, name))
    }

    async fn delete_passkey(&self, user: &UserId, id: &str) -> StoreResult<bool> {
        guarded!(self, Op::DeletePasskey, self.inner.delete_passkey(user, id))
    }
}

#[async_trait]
impl<S: Store + ?Sized> MfaStore for FaultyStore<S> {
    async fn put_pending_totp(&self, factor: &TotpFactor) -> StoreResult<bool> {
        guarded!(self, Op::PutPendingTotp, self.inner.put_pending_totp(factor))
    }

    async fn get_mfa(&self, user: &UserId, now: i64) -> StoreResult<Mfa> {
        guarded!(self, Op::GetMfa, self.inner.get_mfa(user, now))
    }

    async fn confirm_totp(
        &self,
        user: &UserId,
        sealed: &str,
        step: u64,
        codes: &RecoveryCodes,
        now: i64,
    ) -> StoreResult<bool> {
        guarded!(self, Op::ConfirmTotp, self.inner.confirm_totp(user, sealed, step, codes, now))
    }

    async fn accept_totp_step(&self, user: &UserId, step: u64) -> StoreResult<bool> {
        guarded!(self, Op::AcceptTotpStep, self.inner.accept_totp_step(user, step))
    }

    async fn spend_recovery_code(&self, user: &UserId, mac: &str) -> StoreResult<bool> {
        guarded!(self, Op::SpendRecoveryCode, self.inner.spend_recovery_code(user, mac))
    }

    async fn replace_recovery_codes(&self, user: &UserId, codes: &RecoveryCodes) -> StoreResult<bool> {
        guarded!(self, Op::ReplaceRecoveryCodes, self.inner.replace_recovery_codes(user, codes))
    }

    async fn remove_mfa(&self, user: &UserId) -> StoreResult<bool> {
        guarded!(self, Op::RemoveMfa, self.inner.remove_mfa(user))
    }
}

#[async_trait]
impl<S: Store + ?Sized> ChallengeStore for FaultyStore<S> {
    async fn put_challenge(&self, challenge: &Challenge) -> StoreResult<bool> {
        guarded!(self, Op::PutChallenge, self.inner.put_challenge(challenge))
    }

    async fn reserve_challenge(&self, id: &str, max_attempts: u32, now: i64) -> StoreResult<Option<Challenge>> {
        guarded!(self, Op::ReserveChallenge, self.inner.reserve_challenge(id, max_attempts, now))
    }

    async fn take_challenge(&self, id: &str, now: i64) -> StoreResult<Option<Challenge>> {
        guarded!(self, Op::TakeChallenge, self.inner.take_challenge(id, now))
    }
}

#[async_trait]
impl<S: Store + ?Sized> IdentityStore for FaultyStore<S> {
    async fn get_identity(&self, provider: &str, subject: &str) -> StoreResult<Option<Identity>> {
        guarded!(self, Op::GetIdentity, self.inner.get_identity(provider, subject))
    }

    async fn list_identities(&self, user: &UserId) -> StoreResult<Vec<Identity>> {
        guarded!(self, Op::ListIdentities, self.inner.list_identities(user))
    }

    async fn link_identity(&self, user: &User, identity: &Identity) -> StoreResult<bool> {
        guarded!(self, Op::LinkIdentity, self.inner.link_identity(user, identity))
    }

    async fn create_user_with_identity(
        &self,
        user: &User,
        identity: &Identity,
        now: i64,
    ) -> Result<(), CreateUserError> {
        guarded!(self, Op::CreateUserWithIdentity, self.inner.create_user_with_identity(user, identity, now))
    }

    async fn touch_identity(&self, identity: &Identity, at: i64) -> StoreResult<()> {
        guarded!(self, Op::TouchIdentity, self.inner.touch_identity(identity, at))
    }

    async fn unlink_identity(&self, user: &UserId, provider: &str) -> StoreResult<Option<Identity>> {
        guarded!(self, Op::UnlinkIdentity, self.inner.unlink_identity(user, provider))
    }

    async fn forget_identity(&self, identity: &Identity) -> StoreResult<bool> {
        guarded!(self, Op::ForgetIdentity, self.inner.forget_identity(identity))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn counter() -> CounterKey {
        CounterKey { scope: "t", key: "k".into(), slot: "s".into() }
    }

    #[tokio::test]
    async fn fail_next_fails_that_many_calls_of_that_operation_only() {
        let (store, faults) = FaultyStore::new(Arc::new(MemoryStore::new()));
        faults.fail_next(Op::Hit, 2);
        assert!(store.hit(&counter(), 100, 1).await.is_err());
        assert!(store.read(&[counter()], 1).await.is_ok());
        let e = store.hit(&counter(), 100, 1).await.unwrap_err();
        assert!(e.message.starts_with(INJECTED), "{e}");
        // Refused calls never reached the inner store.
        assert_eq!(store.hit(&counter(), 100, 1).await.unwrap().count, 1);
        assert_eq!((faults.calls(Op::Hit), faults.failures(Op::Hit)), (3, 2));
    }

    #[tokio::test]
    async fn fail_after_lets_k_calls_through_then_fails_until_healed() {
        let (store, faults) = FaultyStore::new(Arc::new(MemoryStore::new()));
        faults.fail_after(Op::Hit, 2);
        assert!(store.hit(&counter(), 100, 1).await.is_ok());
        assert!(store.hit(&counter(), 100, 1).await.is_ok());
        for _ in 0..3 {
            assert!(store.hit(&counter(), 100, 1).await.is_err());
        }
        faults.heal();
        assert_eq!(store.hit(&counter(), 100, 1).await.unwrap().count, 3);
    }

    #[tokio::test]
    async fn fail_all_fails_every_operation_and_lose_reply_applies_first() {
        let (store, faults) = FaultyStore::new(Arc::new(MemoryStore::new()));
        faults.fail_all();
        assert!(store.list_groups().await.is_err());
        assert!(store.read(&[counter()], 1).await.is_err());
        faults.heal();
        faults.lose_reply(Op::Hit, 1);
        assert!(store.hit(&counter(), 100, 1).await.is_err());
        assert_eq!(store.read(&[counter()], 1).await.unwrap()[0].count, 1, "the lost reply's write happened");
        assert_eq!(faults.total_failures(), 3);
    }

    #[tokio::test]
    async fn held_calls_wait_at_the_gate_and_go_through_in_order_when_released() {
        let (store, faults) = FaultyStore::new(Arc::new(MemoryStore::new()));
        let store = Arc::new(store);
        faults.hold(Op::Hit);
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.hit(&counter(), 100, 1).await.unwrap().count })
            })
            .collect();
        while faults.parked(Op::Hit) < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(store.read(&[counter()], 1).await.unwrap()[0].count, 0, "nothing reached the store");
        faults.release(Op::Hit, 1);
        while faults.parked(Op::Hit) > 2 {
            tokio::task::yield_now().await;
        }
        faults.unhold(Op::Hit);
        let mut counts = Vec::new();
        for t in tasks {
            counts.push(t.await.unwrap());
        }
        assert_eq!(counts[0], 1, "the first parked went first");
        counts.sort_unstable();
        assert_eq!(counts, [1, 2, 3]);
        assert_eq!(store.hit(&counter(), 100, 1).await.unwrap().count, 4, "no hold any more");
    }

    #[test]
    fn every_operation_has_a_distinct_name_that_parses_back() {
        for op in Op::ALL {
            assert_eq!(Op::from_name(op.name()), Some(op));
        }
        let names: std::collections::HashSet<_> = Op::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), Op::ALL.len());
    }
}
