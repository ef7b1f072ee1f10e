//! Password hashing (argon2id on a blocking thread) and the password policy.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
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
            argon2
                .hash_password(secret.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError(e.to_string()))
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

impl PasswordPolicy {
    /// All the reasons `password` is refused, given the user's own attributes (email, names).
    pub fn check(&self, password: &Password, attributes: &[&str]) -> Vec<String> {
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
        if COMMON.lines().any(|c| c == lower) {
            errors.push("This password is too common.".to_owned());
        }
        if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) {
            errors.push("This password is entirely numeric.".to_owned());
        }
        if attributes.iter().any(|a| too_similar(&lower, a)) {
            errors.push("The password is too similar to your personal information.".to_owned());
        }
        errors
    }
}

/// Whether the password is, or mostly consists of, one of the user's attributes or their parts.
fn too_similar(password: &str, attribute: &str) -> bool {
    let attribute = attribute.to_lowercase();
    let mut parts: Vec<&str> = attribute
        .split(|c: char| !c.is_alphanumeric())
        .filter(|s| s.len() >= 3)
        .collect();
    parts.push(&attribute);
    parts.iter().any(|part| {
        !part.is_empty() && password.contains(part) && part.chars().count() * 10 >= password.chars().count() * 7
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::parse(s.to_owned()).unwrap()
    }

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(Argon2Settings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
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
        let newer = PasswordHasher::new(Argon2Settings {
            memory_kib: 128,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
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
        assert!(policy
            .check(&pw("Password"), &[])
            .contains(&"This password is too common.".to_owned()));
        assert!(policy
            .check(&pw("correct horse battery"), &["ada@example.com"])
            .is_empty());
        assert_eq!(
            policy.check(&pw("lovelace1"), &["ada.lovelace@example.com"]),
            vec!["The password is too similar to your personal information."]
        );
    }
}
