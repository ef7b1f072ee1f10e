//! Password hashing (argon2id on a blocking thread) and the password policy.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

use crate::config::Argon2Settings;
use crate::domain::Password;
use crate::secrets::random_bytes;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes and verifies passwords with the configured argon2id parameters.
#[derive(Clone, Debug)]
pub struct PasswordHasher {
    params: Params,
    /// A well-formed hash of nothing anyone knows, verified against for unknown accounts so that
    /// they cost exactly what a known account costs.
    dummy: String,
}

impl PasswordHasher {
    pub fn new(cfg: Argon2Settings) -> Result<Self, HashError> {
        let params =
            Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None).map_err(|e| HashError(e.to_string()))?;
        let salt = SaltString::encode_b64(&[0x5a; 16]).map_err(|e| HashError(e.to_string()))?;
        let dummy = format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            cfg.memory_kib,
            cfg.iterations,
            cfg.parallelism,
            salt.as_str(),
            STANDARD_NO_PAD.encode([0xa5u8; 32])
        );
        Ok(Self { params, dummy })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes on a blocking thread; returns a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let argon2 = self.argon2();
        let secret = password.expose().to_owned();
        let salt_bytes = random_bytes::<16>().map_err(|e| HashError(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| HashError(e.to_string()))?;
            argon2.hash_password(secret.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| HashError(e.to_string()))
        })
        .await
        .map_err(|e| HashError(e.to_string()))?
    }

    /// Verifies on a blocking thread. `None` (unknown account) verifies against the dummy hash and
    /// returns false, at the same cost.
    pub async fn verify(&self, password: &Password, hash: Option<&str>) -> bool {
        let known = hash.is_some();
        let phc = hash.unwrap_or(&self.dummy).to_owned();
        let secret = password.expose().to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return false;
            };
            Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok()
        })
        .await
        .unwrap_or(false);
        known && ok
    }

    /// Whether a stored hash was made with other parameters than the configured ones.
    pub fn needs_rehash(&self, hash: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(hash) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || params.m_cost() != self.params.m_cost()
            || params.t_cost() != self.params.t_cost()
            || params.p_cost() != self.params.p_cost()
    }
}

/// The password policy: every failure is reported, Django-worded.
#[derive(Clone, Debug)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

const COMMON: &str = include_str!("common-passwords.txt");

/// The bundled common passwords (lower-case), indexed once per process.
fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect())
}

/// Largest similarity ratio accepted between a password and a personal attribute (Django's).
const MAX_SIMILARITY: f64 = 0.7;

impl PasswordPolicy {
    /// All the reasons `password` is refused, given the user's own attributes as
    /// `(name, value)` pairs ("email address", ...). Messages are Django's.
    pub fn check(&self, password: &Password, attributes: &[(&str, &str)]) -> Vec<String> {
        let p = password.expose();
        let mut errors = Vec::new();
        if p.chars().count() < self.min_length {
            errors.push(format!(
                "This password is too short. It must contain at least {} character{}.",
                self.min_length,
                if self.min_length == 1 { "" } else { "s" }
            ));
        }
        let lower = p.to_lowercase();
        if common().contains(lower.trim()) {
            errors.push("This password is too common.".to_owned());
        }
        if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) {
            errors.push("This password is entirely numeric.".to_owned());
        }
        if let Some((name, _)) = attributes.iter().find(|(_, value)| too_similar(&lower, value)) {
            errors.push(format!("The password is too similar to the {name}."));
        }
        errors
    }
}

/// Whether the password is too much like the attribute or one of its parts (split on
/// non-word characters), by the Ratcliff/Obershelp ratio Django's validator uses.
fn too_similar(password: &str, attribute: &str) -> bool {
    let attribute = attribute.to_lowercase();
    let p: Vec<char> = password.chars().collect();
    std::iter::once(attribute.as_str())
        .chain(attribute.split(|c: char| !c.is_alphanumeric() && c != '_'))
        .filter(|part| !part.is_empty())
        .any(|part| {
            let a: Vec<char> = part.chars().collect();
            // Upper bound first: no ratio can beat 2·min/(sum), so long passwords cost nothing.
            let bound = 2.0 * a.len().min(p.len()) as f64 / (a.len() + p.len()) as f64;
            bound >= MAX_SIMILARITY && 2.0 * matching(&p, &a) as f64 / (a.len() + p.len()) as f64 >= MAX_SIMILARITY
        })
}

/// Characters in matching blocks: the longest common run, then recursively left and right of it.
fn matching(a: &[char], b: &[char]) -> usize {
    if a.is_empty() || b.is_empty() {
        return 0;
    }
    let (mut best, mut at_a, mut at_b) = (0, 0, 0);
    let mut prev = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        let mut row = vec![0usize; b.len() + 1];
        for j in 1..=b.len() {
            if a[i - 1] == b[j - 1] {
                row[j] = prev[j - 1] + 1;
                if row[j] > best {
                    (best, at_a, at_b) = (row[j], i - row[j], j - row[j]);
                }
            }
        }
        prev = row;
    }
    if best == 0 {
        return 0;
    }
    best + matching(&a[..at_a], &b[..at_b]) + matching(&a[at_a + best..], &b[at_b + best..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::parse(s.to_owned()).unwrap()
    }

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(Argon2Settings { memory_kib: 64, iterations: 1, parallelism: 1 }).unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_and_differ_by_salt() {
        let h = cheap();
        let a = h.hash(&pw("correct horse")).await.unwrap();
        let b = h.hash(&pw("correct horse")).await.unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(h.verify(&pw("correct horse"), Some(&a)).await);
        assert!(!h.verify(&pw("correct horsE"), Some(&a)).await);
        assert!(!h.verify(&pw("correct horse"), None).await);
        assert!(!h.verify(&pw("x"), Some("not a phc string")).await);
    }

    #[tokio::test]
    async fn dummy_hash_is_well_formed_with_the_configured_cost() {
        let h = cheap();
        assert!(PasswordHash::new(&h.dummy).is_ok());
        assert!(!h.needs_rehash(&h.dummy));
    }

    #[tokio::test]
    async fn rehash_is_needed_when_parameters_change() {
        let old = cheap().hash(&pw("pw-123456")).await.unwrap();
        let newer = PasswordHasher::new(Argon2Settings { memory_kib: 128, iterations: 1, parallelism: 1 }).unwrap();
        assert!(newer.needs_rehash(&old));
        assert!(!cheap().needs_rehash(&old));
    }

    #[test]
    fn policy_lists_every_failure() {
        let policy = PasswordPolicy { min_length: 8 };
        assert_eq!(
            policy.check(&pw("1234"), &[]),
            vec![
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
                "This password is entirely numeric."
            ]
        );
        assert!(policy.check(&pw("Password"), &[]).contains(&"This password is too common.".to_owned()));
        let email = [("email address", "ada.lovelace@example.com")];
        assert!(policy.check(&pw("correct horse battery"), &email).is_empty());
        assert_eq!(policy.check(&pw("lovelace1"), &email), vec!["The password is too similar to the email address."]);
        assert_eq!(
            policy.check(&pw("Augusta!!"), &[("first name", "Augusta")]),
            vec!["The password is too similar to the first name."]
        );
        assert!(policy.check(&pw(&"x".repeat(4096)), &email).is_empty(), "long passwords are cheap to check");
        assert!(policy.check(&pw("DRAGON"), &[]).contains(&"This password is too common.".to_owned()));
        assert!(common().len() >= 10_000);
    }
}
