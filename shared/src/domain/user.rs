use std::fmt;

use unicode_normalization::UnicodeNormalization;

use super::Email;

/// A user id: a UUIDv7 in its canonical hyphenated form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// The all-zero id, which no user ever has (UUIDv7 ids carry a timestamp).
    pub fn nil() -> Self {
        Self(uuid::Uuid::nil().to_string())
    }

    /// Parses the canonical form; anything else is not a user id.
    pub fn parse(raw: &str) -> Option<Self> {
        let id = uuid::Uuid::try_parse(raw).ok()?;
        let canonical = id.to_string();
        (canonical == raw).then_some(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.0)
    }
}

/// A username as Django validates it: letters, digits and `@.+-_`, at most 150 characters, in
/// Unicode NFKC (Django's `AbstractBaseUser.normalize_username`), so a full-width or otherwise
/// compatibility-equivalent spelling ("ａｄａ", "ﬁ") is the same username as its plain form.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Username(String);

impl Username {
    /// Normalises `raw` to NFKC, then validates the normalised form (which is what is stored).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name: String = raw.nfkc().collect();
        if name.chars().count() > 150 {
            return Err("Ensure this field has no more than 150 characters.");
        }
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || "@.+-_".contains(c)) {
            return Err(
                "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
            );
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Case-folded key for the uniqueness claim: the lower-cased NFKC form, normalised again
    /// (lower-casing may leave a string that is not in NFKC).
    pub fn key(&self) -> String {
        self.0.to_lowercase().nfkc().collect()
    }
}

/// A password exactly as sent: never trimmed or normalised, at most 4096 bytes, never printed.
#[derive(Clone)]
pub struct Password(String);

/// Longest password accepted, in bytes (argon2 would take more; nobody needs more).
pub const MAX_PASSWORD_BYTES: usize = 4096;

impl Password {
    pub fn parse(raw: String) -> Result<Self, &'static str> {
        if raw.is_empty() {
            return Err("This field may not be blank.");
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err("Ensure this field has no more than 4096 bytes.");
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(****)")
    }
}

/// What a one-time code is for; a code of one purpose never serves another.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CodePurpose {
    Activation,
    PasswordReset,
    EmailChange,
}

impl CodePurpose {
    /// Every purpose.
    pub const ALL: [CodePurpose; 3] = [CodePurpose::Activation, CodePurpose::PasswordReset, CodePurpose::EmailChange];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activation => "activation",
            Self::PasswordReset => "password_reset",
            Self::EmailChange => "email_change",
        }
    }
}

/// A user account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub username: Option<Username>,
    pub first_name: String,
    pub last_name: String,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub groups: Vec<String>,
    /// The id of each group in `groups` when the account was made a member. A membership counts
    /// only while the group of that name is still the one that was granted ([`User::member_of`]):
    /// a group deleted and made again under the same name grants its former members nothing.
    pub group_ids: std::collections::BTreeMap<String, String>,
    /// Unix seconds.
    pub date_joined: i64,
    pub last_login: Option<i64>,
    /// Access tokens issued before this instant (unix seconds) are refused by our endpoints.
    pub tokens_valid_after: i64,
    /// Optimistic-locking counter, bumped by every write.
    pub version: u64,
    /// Set only while the account has never been activated.
    pub expires_at: Option<i64>,
    /// When the account last went from active to inactive (disabled by an admin, `authctl
    /// deactivate`, or deleted by its owner under `DELETE_ME_MODE=deactivate`); cleared when an
    /// admin makes it active again. A deactivated account is never activated by email again
    /// ([`User::activatable_by_email`]).
    pub deactivated_at: Option<i64>,
    /// Permissions granted to the account itself (Django's `user_permissions`): codename → the
    /// id of the permission granted. A grant counts while that very permission is registered
    /// ([`User::grants`]).
    pub user_permissions: std::collections::BTreeMap<String, String>,
    /// Whether a confirmed second factor guards the account's sign-ins (written only with the
    /// factor itself, by `MfaStore`; `update_user` never changes it).
    pub mfa_enabled: bool,
    /// The language the user's emails are written in (the `Accept-Language` of registration, or
    /// what the user chose since); `None`: `LANGUAGE_CODE`.
    pub language: Option<String>,
}

impl User {
    /// A new active account with a fresh id, made at `now`: no username, no name, no staff
    /// rights, groups or permissions, no second factor. Callers set what differs.
    pub fn new(email: Email, password_hash: String, now: i64) -> Self {
        Self {
            id: UserId::generate(),
            email,
            username: None,
            first_name: String::new(),
            last_name: String::new(),
            password_hash,
            is_active: true,
            is_staff: false,
            is_superuser: false,
            groups: Vec::new(),
            group_ids: Default::default(),
            date_joined: now,
            last_login: None,
            tokens_valid_after: now,
            version: 1,
            expires_at: None,
            deactivated_at: None,
            user_permissions: Default::default(),
            mfa_enabled: false,
            language: None,
        }
    }

    /// Whether the stored item is past its TTL (DynamoDB deletes lazily, so we check ourselves).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Whether the account's own grant of `permission` is a grant of that very permission (not
    /// of an earlier one of that codename, deleted since).
    pub fn grants(&self, permission: &super::Permission) -> bool {
        self.user_permissions.get(&permission.codename) == Some(&permission.id)
    }

    /// Whether the activation email (`resend_activation`, `activation`) may make this account
    /// active: only an account that has never been active, which is inactive and still carries
    /// its registration's expiry. An account that was active once and then deactivated (marked
    /// by `deactivated_at`, or, for one deactivated before that marker existed, inactive without
    /// an expiry) comes back only through an admin.
    pub fn activatable_by_email(&self) -> bool {
        !self.is_active && self.expires_at.is_some() && self.deactivated_at.is_none()
    }

    /// Whether going from `self` to `updated` is a security event after which no code sent
    /// before may work: a new password, tokens revoked (`tokens_valid_after` moved), or the
    /// account deactivated.
    pub fn security_change(&self, updated: &User) -> bool {
        self.password_hash != updated.password_hash
            || self.tokens_valid_after != updated.tokens_valid_after
            || (self.is_active && !updated.is_active)
    }

    /// Whether this account is a member of `group` as it is now: named in `groups`, and granted
    /// this very group (not an earlier one of the same name).
    pub fn member_of(&self, group: &Group) -> bool {
        self.groups.contains(&group.name) && self.group_ids.get(&group.name) == Some(&group.id)
    }

    /// Staff or superuser: may use the admin routes, and only a superuser may change the account.
    pub fn is_privileged(&self) -> bool {
        self.is_staff || self.is_superuser
    }

    /// A test account (feature `test-util`): active and ordinary (neither staff nor superuser),
    /// with a fresh id, this email (which must be valid), no username, names, groups or grants,
    /// joined at 0, and a well-formed argon2id hash that no password matches. Change what a test
    /// needs with struct-update syntax: `User { is_staff: true, ..User::fixture("a@example.com") }`.
    #[cfg(any(test, feature = "test-util"))]
    #[allow(clippy::expect_used)]
    pub fn fixture(email: &str) -> User {
        let hash = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        User::new(Email::parse(email).expect("a fixture's email is valid"), hash.into(), 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_canonical_uuids() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(UserId::parse(&id.as_str().to_uppercase()), None);
        assert_eq!(UserId::parse("1"), None);
        assert_eq!(UserId::parse("../etc"), None);
    }

    #[test]
    fn usernames_follow_django() {
        assert!(Username::parse("ada.l+test@x").is_ok());
        assert!(Username::parse("Zoë").is_ok());
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse("").is_err());
        assert!(Username::parse(&"a".repeat(151)).is_err());
        assert_eq!(Username::parse("Ada").unwrap().key(), "ada");
    }

    #[test]
    fn usernames_are_nfkc_normalised_before_validation_and_keying() {
        // Full-width letters are the plain ones: same stored form, same claim key.
        let wide = Username::parse("\u{FF41}\u{FF44}\u{FF41}").unwrap();
        assert_eq!(wide.as_str(), "ada");
        assert_eq!(wide.key(), Username::parse("ada").unwrap().key());
        assert_eq!(Username::parse("\u{FF21}\u{FF44}\u{FF41}").unwrap().key(), "ada");
        // Ligatures, superscripts and decomposed accents take their NFKC form.
        assert_eq!(Username::parse("\u{FB01}x").unwrap().as_str(), "fix");
        assert_eq!(Username::parse("x\u{00B2}").unwrap().as_str(), "x2");
        assert_eq!(Username::parse("Zoe\u{0308}").unwrap().as_str(), "Zo\u{00EB}");
        assert_eq!(Username::parse("Zoe\u{0308}").unwrap().key(), Username::parse("zo\u{00EB}").unwrap().key());
        // Full-width punctuation becomes the allowed ASCII one; a full-width space is still a space.
        assert_eq!(Username::parse("ada\u{FF20}x\u{FF0E}y").unwrap().as_str(), "ada@x.y");
        assert!(Username::parse("ada\u{3000}x").is_err());
        // Validation is of the normalised form: the length counts what is stored.
        assert!(Username::parse(&"\u{FF41}".repeat(150)).is_ok());
        assert!(Username::parse(&"\u{337F}".repeat(37)).is_ok(), "U+337F is 4 letters in NFKC: 148");
        assert!(Username::parse(&"\u{337F}".repeat(38)).is_err(), "152 once normalised");
        // Normalising is idempotent: a stored username parses to itself.
        let stored = Username::parse("\u{FB01}\u{FF21}\u{00B2}").unwrap();
        assert_eq!(Username::parse(stored.as_str()).unwrap(), stored);
    }

    #[test]
    fn only_a_never_activated_account_is_activatable_by_email() {
        let never = User { is_active: false, expires_at: Some(100), ..User::fixture("ada@example.com") };
        assert!(never.activatable_by_email());
        let active = User { is_active: true, expires_at: None, ..never.clone() };
        assert!(!active.activatable_by_email());
        let marked = User { expires_at: None, deactivated_at: Some(50), ..never.clone() };
        assert!(!marked.activatable_by_email(), "deactivated");
        let legacy = User { expires_at: None, ..never.clone() };
        assert!(!legacy.activatable_by_email(), "deactivated before the mark existed: inactive, no expiry");
        let admin_activated_then_disabled = User { deactivated_at: Some(50), ..never.clone() };
        assert!(!admin_activated_then_disabled.activatable_by_email(), "the mark wins over a leftover expiry");
    }

    #[test]
    fn passwords_are_kept_exactly_and_never_printed() {
        let p = Password::parse("  pässwörd \u{1F600} ".into()).unwrap();
        assert_eq!(p.expose(), "  pässwörd \u{1F600} ");
        assert_eq!(format!("{p:?}"), "Password(****)");
        assert!(Password::parse("x".repeat(4097)).is_err());
        assert!(Password::parse(String::new()).is_err());
    }
}

/// A group: a name, a description and the permissions its members get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    /// Made when the group is created and kept through its changes: memberships name it.
    pub id: String,
}

impl Group {
    /// Checks a group or permission name: 1 to 150 characters, no control characters, no `/`.
    pub fn valid_name(name: &str) -> bool {
        !name.trim().is_empty() && name.chars().count() <= 150 && !name.chars().any(|c| c.is_control() || c == '/')
    }
}
