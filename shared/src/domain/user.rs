use std::fmt;

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

/// A username as Django validates it: letters, digits and `@.+-_`, at most 150 characters.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.chars().count() > 150 {
            return Err("Ensure this field has no more than 150 characters.");
        }
        if raw.is_empty() || !raw.chars().all(|c| c.is_alphanumeric() || "@.+-_".contains(c)) {
            return Err(
                "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
            );
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Case-folded key for the uniqueness claim.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
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
    /// Unix seconds.
    pub date_joined: i64,
    pub last_login: Option<i64>,
    /// Access tokens issued before this instant (unix seconds) are refused by our endpoints.
    pub tokens_valid_after: i64,
    /// Optimistic-locking counter, bumped by every write.
    pub version: u64,
    /// Set only while the account has never been activated.
    pub expires_at: Option<i64>,
}

impl User {
    /// Whether the stored item is past its TTL (DynamoDB deletes lazily, so we check ourselves).
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
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
}

impl Group {
    /// Checks a group or permission name: 1 to 150 characters, no control characters, no `/`.
    pub fn valid_name(name: &str) -> bool {
        !name.trim().is_empty() && name.chars().count() <= 150 && !name.chars().any(|c| c.is_control() || c == '/')
    }
}
