//! What the services need from the outside world, as traits: a store, a mailer and a clock.
//! The DynamoDB store and SES mailer implement them for real; the memory store and capture
//! mailer implement them for tests and for the embedded dev mode.

#[cfg(feature = "test-util")]
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;

use crate::domain::{AuditEntry, AuditPosition, AuditStream, CodePurpose, Email, Group, Permission, User, UserId};

/// Unix seconds from a clock the caller chooses (tests never sleep).
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default()
    }
}

/// A clock that only moves when told to (tests, feature `test-util`).
#[cfg(feature = "test-util")]
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

#[cfg(feature = "test-util")]
impl FixedClock {
    pub fn new(now: i64) -> Self {
        Self(AtomicI64::new(now))
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }
}

#[cfg(feature = "test-util")]
impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A store failure that is not the caller's fault (throttling, network, service error).
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {message}")]
pub struct StoreError {
    pub message: String,
    /// DynamoDB refused the call for the request rate on its items (a hot key: one item takes
    /// about 1,000 writes and 3,000 reads a second), after the SDK's own retries. The caller
    /// answers 429 instead of 503: whoever floods one key is told to slow down, and nothing of
    /// the request happened.
    pub throttled: bool,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), throttled: false }
    }

    /// A call refused for the request rate on its items (see [`StoreError::throttled`]).
    pub fn throttled(message: impl Into<String>) -> Self {
        Self { message: message.into(), throttled: true }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A one-time code as stored: a keyed MAC of it, never the code itself (see
/// `services::codes::mac`: the table alone reveals no live code).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRecord {
    pub user_id: UserId,
    pub purpose: CodePurpose,
    /// Hex MAC of the code.
    pub hash: String,
    pub expires_at: i64,
    /// Guesses reserved so far (numeric codes only): a guess is judged only after it took one of
    /// the [`MAX_CODE_ATTEMPTS`] (see [`CodeStore::reserve_guess`]).
    pub attempts: u32,
    /// What the code confirms, when that is not implied (the new address of an email change).
    pub data: Option<String>,
    /// Used already; kept until it would have expired so that the spent code is recognised
    /// (activation answers djoser's `stale_token` to it), never accepted again.
    pub spent: bool,
}

pub use crate::policy::MAX_CODE_ATTEMPTS;

impl CodeRecord {
    /// Whether this code accepts `hash` at `now`: right hash, unexpired, unspent, and no more
    /// guesses reserved than it takes (see [`crate::policy::code_usable`]).
    pub fn usable(&self, hash: &str, now: i64) -> bool {
        crate::policy::code_usable(self.facts(hash), now)
    }

    /// What judging `hash` against this code looks at (judging it: see [`CodeRecord::matches`]).
    pub fn facts(&self, hash: &str) -> crate::policy::CodeFacts {
        crate::policy::CodeFacts {
            matches: self.matches(hash),
            expires_at: self.expires_at,
            spent: self.spent,
            attempts: self.attempts,
        }
    }

    /// Whether `hash` is this code's (constant time): judging a presented code.
    pub fn matches(&self, hash: &str) -> bool {
        #[cfg(feature = "test-util")]
        crate::probes::code_judged();
        crate::secrets::constant_time_eq(self.hash.as_bytes(), hash.as_bytes())
    }

    /// [`CodeRecord::usable`] as the consuming write re-checks it, for a guess judged already
    /// (a store's condition, not a judgement of its own).
    pub fn still_usable(&self, hash: &str, now: i64) -> bool {
        let matches = crate::secrets::constant_time_eq(self.hash.as_bytes(), hash.as_bytes());
        let code = crate::policy::CodeFacts {
            matches,
            expires_at: self.expires_at,
            spent: self.spent,
            attempts: self.attempts,
        };
        crate::policy::code_usable(code, now)
    }
}

/// A refresh-token session (one per login on one device).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub user_id: UserId,
    pub id: String,
    /// jti of the refresh token that may be used next.
    pub current_jti: String,
    /// How many times the session was rotated.
    pub counter: u64,
    pub previous_jti: Option<String>,
    pub rotated_at: Option<i64>,
    pub created_at: i64,
    pub last_used_at: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// Absolute end of the session.
    pub expires_at: i64,
}

/// Why a registration could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email already claimed")]
    EmailTaken,
    #[error("username already claimed")]
    UsernameTaken,
    /// The provider's subject was linked to an account meanwhile.
    #[error("identity already linked")]
    IdentityTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an activation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    /// No such code, wrong code, expired code, or already consumed.
    #[error("invalid code")]
    InvalidCode,
    /// The account is active already (or vanished meanwhile).
    #[error("account not activatable")]
    NotActivatable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an email change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ChangeEmailError {
    #[error("invalid code")]
    InvalidCode,
    #[error("email already claimed")]
    EmailTaken,
    /// The user changed (or vanished) since it was read.
    #[error("user changed meanwhile")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a profile update did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpdateUserError {
    /// Somebody else wrote the user since it was read.
    #[error("user changed meanwhile")]
    Conflict,
    #[error("username already claimed")]
    UsernameTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Outcome of a conditional session rotation.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    Rotated,
    /// The presented jti was no longer current (another request rotated first), or the
    /// session is gone or expired.
    Stale,
}

/// Users and their uniqueness claims.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Writes the user, its email claim, its username claim (if any) and, optionally, its first
    /// one-time code, all or nothing. An email claim left by an expired, never-activated
    /// account may be taken over.
    async fn create_user(&self, user: &User, code: Option<&CodeRecord>, now: i64) -> Result<(), CreateUserError>;

    /// The user, unless absent or past its TTL.
    async fn get_user(&self, id: &UserId, now: i64) -> StoreResult<Option<User>>;

    /// The user holding this email's claim, unless absent or expired.
    async fn find_user_by_email(&self, email: &Email, now: i64) -> StoreResult<Option<User>>;

    /// [`UserStore::find_user_by_email`] and the states of some counters (lockout, budgets),
    /// with the claim and the counters read in one round trip.
    async fn find_user_for_login(
        &self,
        email: &Email,
        counters: &[CounterKey],
        now: i64,
    ) -> StoreResult<(Option<User>, Vec<CounterState>)>;

    /// Spends the activation code whose hash is given and activates the account, atomically: the
    /// code is single-use under races and must be usable ([`CodeRecord::usable`]), the account
    /// must be inactive. Clears `expires_at` from the user and its claims. The spent code is kept,
    /// marked spent, until it would have expired.
    async fn activate(&self, id: &UserId, code_hash: &str, now: i64) -> Result<(), ActivateError>;

    /// Writes the mutable fields of `updated` (names, username, password hash, flags, groups,
    /// `tokens_valid_after`) if the stored version is still `current.version`; moves the username
    /// claim in the same transaction. Returns the new version. The email is changed only by
    /// [`UserStore::change_email`]. A security change ([`User::security_change`]: a new password,
    /// a revocation, a deactivation) also deletes every outstanding code of the user, in the same
    /// transaction: no link sent before it works after it.
    async fn update_user(&self, current: &User, updated: &User, now: i64) -> Result<u64, UpdateUserError>;

    /// Consumes the password-reset code whose hash is given and sets the new password hash and
    /// `tokens_valid_after = now`, atomically, deleting every other outstanding code of the user.
    /// The account must be active or never activated: a never-activated account is activated by
    /// it (whoever controls the mailbox owns the address; what a stranger who registered it set
    /// dies), a deactivated one is refused ([`ActivateError::NotActivatable`]).
    async fn reset_password(&self, user: &User, code_hash: &str, new_hash: &str, now: i64)
        -> Result<(), ActivateError>;

    /// Moves `current` to `new_email` atomically: the old claim is released, the new one taken
    /// (an expired claim may be taken over), and, with `code_hash`, the email-change code is
    /// consumed in the same transaction; every other outstanding code of the user is deleted.
    async fn change_email(
        &self,
        current: &User,
        new_email: &Email,
        code_hash: Option<&str>,
        now: i64,
    ) -> Result<(), ChangeEmailError>;

    /// Deletes the user and its claims atomically (if still at `user.version`), then its codes
    /// and sessions.
    async fn delete_user(&self, user: &User) -> Result<(), UpdateUserError>;

    /// Up to `limit` live users after the cursor `after`, and the cursor for the next page.
    async fn list_users(
        &self,
        after: Option<&UserId>,
        limit: usize,
        now: i64,
    ) -> StoreResult<(Vec<User>, Option<UserId>)>;

    /// Swaps the password hash if it is still `old_hash` (rehash on login); false otherwise.
    async fn replace_password_hash(&self, id: &UserId, old_hash: &str, new_hash: &str) -> StoreResult<bool>;
}

/// One-time codes.
#[async_trait]
pub trait CodeStore: Send + Sync {
    /// Stores (or replaces) the user's code for that purpose.
    async fn put_code(&self, code: &CodeRecord) -> StoreResult<()>;

    /// The code record (spent or not), unless absent or expired.
    async fn get_code(&self, user: &UserId, purpose: CodePurpose, now: i64) -> StoreResult<Option<CodeRecord>>;

    /// Takes one guess from the user's code for `purpose`, atomically: only an unexpired, unspent
    /// code with fewer than [`MAX_CODE_ATTEMPTS`] guesses taken gives one. The code as it is after
    /// that, or `None`: the guess must then be refused without being judged.
    async fn reserve_guess(&self, user: &UserId, purpose: CodePurpose, now: i64) -> StoreResult<Option<CodeRecord>>;
}

/// Refresh-token sessions.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Writes a new session; with `last_login`, also stamps the user's last login, and gives
    /// back `give_back` (the attempt a successful login reserved), in the same transaction. A
    /// counter to refund that is gone meanwhile does not keep the session from being written:
    /// the rest is then given back as [`Limiter::give_back`] does.
    async fn create_session(&self, session: &Session, last_login: Option<i64>, give_back: &GiveBack)
        -> StoreResult<()>;

    /// The user and one of its sessions, in one round trip; either may be absent or expired.
    async fn get_user_and_session(
        &self,
        user: &UserId,
        sid: &str,
        now: i64,
    ) -> StoreResult<(Option<User>, Option<Session>)>;

    /// Moves the session from `expected_jti` to `new_jti` if `expected_jti` is still current and
    /// the session unexpired (a conditional write: two racing refreshes cannot both win).
    async fn rotate_session(
        &self,
        user: &UserId,
        sid: &str,
        expected_jti: &str,
        new_jti: &str,
        now: i64,
    ) -> StoreResult<Rotation>;

    /// Deletes a session (logout / revocation); absent sessions are fine.
    async fn delete_session(&self, user: &UserId, sid: &str) -> StoreResult<()>;

    /// The user's live sessions, oldest first.
    async fn list_sessions(&self, user: &UserId, now: i64) -> StoreResult<Vec<Session>>;

    /// Deletes every session of the user but `except`.
    async fn delete_sessions(&self, user: &UserId, except: Option<&str>) -> StoreResult<()>;
}

/// A rate-limit counter: `RATE#<scope>#<key>` / `<slot>` (a window start, or `STATE`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CounterKey {
    pub scope: &'static str,
    pub key: String,
    pub slot: String,
}

/// A counter's value: how many hits, the last one when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterState {
    pub count: u64,
    pub last_at: i64,
}

/// What a reservation that turned out not to count returns ([`Limiter::give_back`]): one unit
/// to each of `refund`, and `forget` deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GiveBack {
    pub refund: Vec<CounterKey>,
    pub forget: Vec<CounterKey>,
}

/// One unit to take from a budget ([`Limiter::reserve`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// A counter that never outlives its window (its slot names the window), so that a counter
    /// found is never a stale one.
    pub counter: CounterKey,
    /// The counter must be below this for the unit to be taken...
    pub limit: u64,
    /// ...or still exactly at this state (one more try once a lockout read at that state ended).
    pub or_at: Option<CounterState>,
    /// The counter lives until then.
    pub expires_at: i64,
}

/// Atomic counters with TTL, for throttling, lockout and email cooldowns.
#[async_trait]
pub trait Limiter: Send + Sync {
    /// Takes one unit from every reservation's counter (and stamps `last_at = now`), all or none.
    /// `Ok(Err(i))` when reservation `i` had no room: nothing was taken. This is how a limit is
    /// held under concurrency: the unit is taken before the costly or secret-revealing step it
    /// guards, never counted after it.
    async fn reserve(&self, reservations: &[Reservation], now: i64) -> StoreResult<Result<(), usize>>;

    /// Gives one unit back to each of `refund` (a reservation that turned out not to count, such
    /// as a successful login's) and forgets `forget` entirely, together. Counters already gone
    /// are left alone.
    async fn give_back(&self, refund: &[CounterKey], forget: &[CounterKey]) -> StoreResult<()>;

    /// Adds one (an atomic ADD) and returns the new state; the counter lives until `expires_at`.
    async fn hit(&self, counter: &CounterKey, expires_at: i64, now: i64) -> StoreResult<CounterState>;

    /// The counters' current states (absent or expired ones count zero), in one round trip.
    async fn read(&self, counters: &[CounterKey], now: i64) -> StoreResult<Vec<CounterState>>;

    /// Forgets a counter.
    async fn clear(&self, counter: &CounterKey) -> StoreResult<()>;

    /// Takes a cooldown slot until `until` if it is free (a conditional write); false while an
    /// earlier one runs.
    async fn take_cooldown(&self, counter: &CounterKey, until: i64, now: i64) -> StoreResult<bool>;
}

/// Groups and their permissions.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Writes a group; with `create`, only if no group has that name (false otherwise).
    async fn put_group(&self, group: &Group, create: bool) -> StoreResult<bool>;
    async fn get_groups(&self, names: &[String]) -> StoreResult<Vec<Group>>;
    async fn list_groups(&self) -> StoreResult<Vec<Group>>;
    /// Deletes a group; false when there was none.
    async fn delete_group(&self, name: &str) -> StoreResult<bool>;
}

/// The permission registry (the built-in permissions are not stored: see
/// [`Permission::builtins`]).
#[async_trait]
pub trait PermissionStore: Send + Sync {
    /// Writes a permission; with `create`, only if none has that codename, otherwise only if one
    /// does (false when the condition fails).
    async fn put_permission(&self, permission: &Permission, create: bool) -> StoreResult<bool>;
    /// The stored permissions among `codenames` (consistent reads), in no particular order.
    async fn get_permissions(&self, codenames: &[String]) -> StoreResult<Vec<Permission>>;
    /// Every stored permission, in codename order.
    async fn list_permissions(&self) -> StoreResult<Vec<Permission>>;
    /// Deletes a permission; false when there was none.
    async fn delete_permission(&self, codename: &str) -> StoreResult<bool>;
}

/// The audit trail: entries appended, read back newest first by day or by account.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Writes the entry into each of its streams ([`AuditEntry::streams`]). Not a transaction:
    /// an error may leave it in some streams and not others.
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;

    /// Up to `limit` live entries of `stream` strictly before `before` (from the newest when
    /// `None`) and not before `since` (unix seconds), newest first. Fewer than `limit` means the
    /// stream holds no more in that range.
    async fn audit_page(
        &self,
        stream: &AuditStream,
        before: Option<&AuditPosition>,
        since: i64,
        limit: usize,
        now: i64,
    ) -> StoreResult<Vec<AuditEntry>>;
}

/// Second factors: a user's TOTP factor and recovery codes, in the user's partition. Every
/// single-use rule is a conditional write: an enrolment is confirmed once, a TOTP step is
/// accepted once, a recovery code is spent once, whatever runs concurrently.
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// Writes a pending enrolment (`confirmed` false, with `expires_at`), replacing a pending or
    /// expired one; false (nothing written) while a confirmed factor exists.
    async fn put_pending_totp(&self, factor: &crate::domain::TotpFactor) -> StoreResult<bool>;
    /// The user's factor and recovery codes, in one read; a pending factor past `expires_at`
    /// is left out.
    async fn get_mfa(&self, user: &UserId, now: i64) -> StoreResult<crate::domain::Mfa>;
    /// Confirms the live pending enrolment holding `sealed` with its first accepted `step`, stores
    /// `codes` and sets `mfa_enabled` on the user (its version moves on), all or nothing. False
    /// when there is no such enrolment any more (expired, replaced, or confirmed by a concurrent
    /// request) or the user is gone.
    async fn confirm_totp(
        &self,
        user: &UserId,
        sealed: &str,
        step: u64,
        codes: &crate::domain::RecoveryCodes,
        now: i64,
    ) -> StoreResult<bool>;
    /// Accepts `step` for the confirmed factor: true only when it is later than the last step
    /// accepted (each code once, and never an older one after a newer).
    async fn accept_totp_step(&self, user: &UserId, step: u64) -> StoreResult<bool>;
    /// Spends the recovery code of this MAC: true for exactly one caller.
    async fn spend_recovery_code(&self, user: &UserId, mac: &str) -> StoreResult<bool>;
    /// Replaces the recovery codes while the factor is confirmed (the old set dies); false
    /// without a confirmed factor.
    async fn replace_recovery_codes(&self, user: &UserId, codes: &crate::domain::RecoveryCodes) -> StoreResult<bool>;
    /// Removes the factor and the codes and clears `mfa_enabled` (its version moves on), all or
    /// nothing; true when the user still exists.
    async fn remove_mfa(&self, user: &UserId) -> StoreResult<bool>;
}

/// A user's passkeys (`USER#<id>` / `WEBAUTHN#<credential id>`), in its partition.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// Stores a new passkey; false (nothing written) when the user already has this credential.
    async fn put_passkey(&self, passkey: &crate::domain::PasskeyRecord) -> StoreResult<bool>;
    /// The user's passkeys, oldest first.
    async fn list_passkeys(&self, user: &UserId) -> StoreResult<Vec<crate::domain::PasskeyRecord>>;
    /// Records a sign-in with the passkey: its updated `credential` (the sign counter) and
    /// `last_used_at`; false when it was removed meanwhile.
    async fn record_passkey_use(&self, user: &UserId, id: &str, credential: &str, at: i64) -> StoreResult<bool>;
    /// Renames a passkey; false when the user has no such passkey.
    async fn rename_passkey(&self, user: &UserId, id: &str, name: &str) -> StoreResult<bool>;
    /// Removes a passkey; true for exactly one caller.
    async fn delete_passkey(&self, user: &UserId, id: &str) -> StoreResult<bool>;
}

/// Accounts' links to sign-in providers ([`crate::domain::Identity`]): a claim per provider
/// subject and the account's side, always written and removed together.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The link a provider's subject has, if any (its account may since have been deleted).
    async fn get_identity(&self, provider: &str, subject: &str) -> StoreResult<Option<crate::domain::Identity>>;
    /// An account's links, by provider name.
    async fn list_identities(&self, user: &UserId) -> StoreResult<Vec<crate::domain::Identity>>;
    /// Links the subject to `user` as read (its `version` unchanged, so a deleted or changed
    /// account is never linked): false when the subject is linked already, the account has a
    /// link to this provider already, or the account changed.
    async fn link_identity(&self, user: &User, identity: &crate::domain::Identity) -> StoreResult<bool>;
    /// Creates an account with its email claim and its first link in one write.
    async fn create_user_with_identity(
        &self,
        user: &User,
        identity: &crate::domain::Identity,
        now: i64,
    ) -> Result<(), CreateUserError>;
    /// Records a sign-in through the link (best effort).
    async fn touch_identity(&self, identity: &crate::domain::Identity, at: i64) -> StoreResult<()>;
    /// Removes the account's link to `provider`: the link removed, if there was one.
    async fn unlink_identity(&self, user: &UserId, provider: &str) -> StoreResult<Option<crate::domain::Identity>>;
    /// Removes a claim whose account is gone (still naming that account): whether it was.
    async fn forget_identity(&self, identity: &crate::domain::Identity) -> StoreResult<bool>;
}

/// Short-lived single-use challenges (`CHALLENGE#<id>`): an MFA sign-in step, a WebAuthn
/// ceremony. Every read checks `expires_at`.
#[async_trait]
pub trait ChallengeStore: Send + Sync {
    /// Writes a new challenge (its id never reused).
    async fn put_challenge(&self, challenge: &crate::domain::Challenge) -> StoreResult<bool>;
    /// Counts one more answer to a live challenge before it is judged: the challenge (attempts
    /// counted) while fewer than `max_attempts` were tried, `None` once expired, taken or used up.
    async fn reserve_challenge(
        &self,
        id: &str,
        max_attempts: u32,
        now: i64,
    ) -> StoreResult<Option<crate::domain::Challenge>>;
    /// Takes (deletes) a live challenge: `Some` for exactly one caller.
    async fn take_challenge(&self, id: &str, now: i64) -> StoreResult<Option<crate::domain::Challenge>>;
}

/// Everything a handler may need from storage.
pub trait Store:
    UserStore
    + CodeStore
    + SessionStore
    + Limiter
    + GroupStore
    + PermissionStore
    + AuditStore
    + MfaStore
    + PasskeyStore
    + ChallengeStore
    + IdentityStore
{
}
impl<T> Store for T where
    T: UserStore
        + CodeStore
        + SessionStore
        + Limiter
        + GroupStore
        + PermissionStore
        + AuditStore
        + MfaStore
        + PasskeyStore
        + ChallengeStore
        + IdentityStore
{
}

/// What the signing key is wanted for. Only signing needs it with EdDSA; with HS256 the shared
/// secret also verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    Sign,
    Verify,
}

/// The deployment's secret keys: the JWT signing key and the code key (`keys::CodeKey`). Each
/// comes from the configuration itself (local stack, tests) or from Secrets Manager, read on first
/// use and kept for the life of the process.
#[async_trait]
pub trait SecretKeys: Send + Sync {
    async fn signing_key(
        &self,
        purpose: KeyUse,
    ) -> Result<std::sync::Arc<crate::tokens::SigningKey>, crate::tokens::TokenError>;

    async fn code_key(&self) -> Result<std::sync::Arc<crate::keys::CodeKey>, crate::tokens::TokenError>;

    /// The sign-in providers' client secrets (`SOCIAL_CLIENT_SECRETS` or its secret), asked for
    /// only by a provider sign-in; none unless configured.
    async fn client_secrets(&self) -> Result<std::sync::Arc<crate::social::ClientSecrets>, crate::tokens::TokenError> {
        Ok(std::sync::Arc::default())
    }
}

/// The kinds of email Gatehouse sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmailKind {
    Activation,
    Confirmation,
    PasswordReset,
    PasswordChanged,
    EmailChange,
    EmailChanged,
    SessionReuse,
    /// A notice that the profile was changed (`PROFILE_UPDATED_EMAIL`), naming the fields.
    ProfileUpdated,
    /// A notice that two-step sign-in (a TOTP second factor) was turned on.
    MfaEnabled,
    /// A notice that two-step sign-in was turned off, by the owner or by staff (`mfa-reset`).
    MfaDisabled,
    /// A notice that a new set of recovery codes replaced the old one.
    RecoveryCodesReplaced,
    /// A notice that a passkey (a WebAuthn credential) was added, naming it.
    PasskeyAdded,
    /// A notice that a passkey was removed, naming it.
    PasskeyRemoved,
    /// A notice that a sign-in provider was linked to the account, naming it.
    IdentityLinked,
    /// A notice that a sign-in provider was unlinked from the account, naming it.
    IdentityUnlinked,
}

/// An email ready to go: multipart text + HTML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub kind: EmailKind,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The action link it carries, if any (the dev server prints it).
    pub link: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("mail not sent: {0}")]
pub struct MailError(pub String);

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError>;
}
