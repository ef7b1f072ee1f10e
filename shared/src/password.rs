//! Password hashing (argon2id on a blocking thread) and the password policy. Verification also
//! takes the hashes of accounts imported from Django ([`django`]), replaced with argon2id on
//! their first login.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

use crate::config::Argon2Settings;
use crate::domain::Password;
use crate::secrets::random_bytes;

mod django;

use django::Stored;
pub use django::{stored_hash_format, HashFormat};

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
    memory: Arc<MemoryPool>,
    /// Verifications made so far, known account or not (tests hold limits to it).
    verifications: Arc<std::sync::atomic::AtomicU64>,
    /// Hash on the calling task instead of a blocking thread (deterministic race tests).
    inline: bool,
}

/// argon2id's working memory (`m` KiB: 19 MiB by default), kept from one hash to the next.
/// Allocating it per hash means zeroing it and, on a blocking thread whose allocator arena gave
/// it back, a page fault per 4 KiB page: about a tenth of the hash's own time (`make bench`,
/// section 5). Argon2 writes every block in its first pass, so what a buffer held before never
/// reaches a result. At most [`MemoryPool::KEPT`] buffers are kept; a Lambda function, which
/// serves one request at a time, keeps one.
#[derive(Debug, Default)]
struct MemoryPool(Mutex<Vec<Vec<Block>>>);

impl MemoryPool {
    const KEPT: usize = 2;

    fn take(&self, blocks: usize) -> Vec<Block> {
        let found = {
            let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            kept.iter().position(|m| m.len() == blocks).map(|i| kept.swap_remove(i))
        };
        found.unwrap_or_else(|| vec![Block::default(); blocks])
    }

    fn give(&self, memory: Vec<Block>) {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() >= Self::KEPT {
            kept.remove(0);
        }
        kept.push(memory);
    }

    /// The raw argon2 output of `password` and `salt` into `out`, in pooled memory.
    fn hash_into(
        &self,
        (algorithm, version, params): (Algorithm, Version, Params),
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), argon2::Error> {
        self.hash_into_kept((algorithm, version, params), password, salt, out, true)
    }

    /// As [`Self::hash_into`]; with `keep` false the memory is neither taken from the pool nor
    /// given back (a one-off cost, such as an imported hash's, does not stay in the pool).
    fn hash_into_kept(
        &self,
        (algorithm, version, params): (Algorithm, Version, Params),
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
        keep: bool,
    ) -> Result<(), argon2::Error> {
        let blocks = params.block_count();
        let mut memory = if keep { self.take(blocks) } else { vec![Block::default(); blocks] };
        let result =
            Argon2::new(algorithm, version, params).hash_password_into_with_memory(password, salt, out, &mut memory);
        if keep {
            self.give(memory);
        }
        result
    }

    /// A PHC string of `password` with the given argon2id parameters and salt.
    fn phc(&self, params: &Params, password: &[u8], salt: &[u8]) -> Result<String, HashError> {
        let err = |e: &dyn std::fmt::Display| HashError(e.to_string());
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        self.hash_into((Algorithm::Argon2id, Version::V0x13, params.clone()), password, salt, &mut out)
            .map_err(|e| err(&e))?;
        let salt = SaltString::encode_b64(salt).map_err(|e| err(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(|e| err(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| err(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches a PHC string, with the algorithm, version and parameters the
    /// string names (a hash made before a parameter change still verifies). The comparison is
    /// constant-time.
    fn verify(&self, password: &[u8], phc: &str) -> bool {
        self.verify_with(password, phc, Version::default(), true)
    }

    /// As [`Self::verify`], with the version a string without `v=` stands for, and whether the
    /// working memory is kept in the pool.
    fn verify_with(&self, password: &[u8], phc: &str, default_version: Version, keep: bool) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
            return false;
        };
        let Ok(version) = parsed.version.map_or(Ok(default_version), Version::try_from) else {
            return false;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        self.hash_into_kept((algorithm, version, params), password, salt, &mut out, keep).is_ok()
            // Output's equality is constant-time.
            && Output::new(&out).is_ok_and(|computed| computed == expected)
    }
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
        Ok(Self { params, dummy, memory: Arc::default(), verifications: Arc::default(), inline: false })
    }

    /// This hasher, hashing on the calling task: a seeded race test then decides every
    /// interleaving itself, none is left to the blocking pool's threads.
    #[cfg(feature = "test-util")]
    pub fn inline(mut self) -> Self {
        self.inline = true;
        self
    }

    /// How many passwords this hasher (and its clones) verified so far, against real hashes or
    /// the dummy one.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Hashes on a blocking thread; returns a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let (params, memory) = (self.params.clone(), self.memory.clone());
        let secret = password.expose().to_owned();
        let salt = random_bytes::<16>().map_err(|e| HashError(e.to_string()))?;
        if self.inline {
            return memory.phc(&params, secret.as_bytes(), &salt);
        }
        tokio::task::spawn_blocking(move || memory.phc(&params, secret.as_bytes(), &salt))
            .await
            .map_err(|e| HashError(e.to_string()))?
    }

    /// Verifies on a blocking thread, against Gatehouse's own argon2 hashes and the formats of
    /// Django's default hashers (see [`HashFormat`]). `None` (unknown account), an unusable hash
    /// (`!...`) and an unsupported or malformed one verify against the dummy hash and return
    /// false, at the same cost.
    pub async fn verify(&self, password: &Password, hash: Option<&str>) -> bool {
        let (known, stored) = self.target(hash);
        let secret = password.expose().to_owned();
        let memory = self.memory.clone();
        self.verifications.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let ok = if self.inline {
            stored.verify(&memory, secret.as_bytes())
        } else {
            tokio::task::spawn_blocking(move || stored.verify(&memory, secret.as_bytes())).await.unwrap_or(false)
        };
        known && ok
    }

    /// What verifying `hash` computes, and whether a match may count: the stored hash when it
    /// is one Gatehouse verifies; otherwise (an unknown account, Django's unusable password, an
    /// unsupported or malformed hash) the dummy argon2id hash, at the same cost as any unknown
    /// account, never counting.
    fn target(&self, hash: Option<&str>) -> (bool, Stored) {
        match hash.map(Stored::parse) {
            Some(Ok(stored)) => (true, stored),
            _ => (false, Stored::Phc(self.dummy.clone())),
        }
    }

    /// Whether a stored hash is anything but argon2id (version 0x13) with the configured
    /// parameters: every Django format, and Gatehouse's own made with other parameters.
    pub fn needs_rehash(&self, hash: &str) -> bool {
        if stored_hash_format(hash) != HashFormat::Argon2 {
            return true;
        }
        let Ok(parsed) = PasswordHash::new(hash) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || parsed.version != Some(Version::V0x13.into())
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

/// A password hash no password verifies (Django's `set_unusable_password`): an account created
/// through a provider has one until a reset sets a password.
pub fn unusable() -> String {
    let tail = crate::secrets::random_id().unwrap_or_default();
    format!("!{tail}")
}

/// Whether a stored hash can verify a password (not unusable: neither empty nor `!...`).
pub fn usable(hash: &str) -> bool {
    !hash.is_empty() && !hash.starts_with('!')
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

    fn reference(algorithm: Algorithm, version: Version, params: Params, password: &[u8], salt: &[u8]) -> String {
        use argon2::password_hash::PasswordHasher as _;
        let salt = SaltString::encode_b64(salt).unwrap();
        Argon2::new(algorithm, version, params).hash_password(password, &salt).unwrap().to_string()
    }

    #[test]
    fn pooled_hashes_equal_the_argon2_crates_own_even_in_a_used_buffer() {
        let pool = MemoryPool::default();
        let params = Params::new(64, 1, 1, None).unwrap();
        let expected = reference(Algorithm::Argon2id, Version::V0x13, params.clone(), b"correct horse", &[7; 16]);
        assert_eq!(pool.phc(&params, b"correct horse", &[7; 16]).unwrap(), expected);
        // The kept buffer now holds the state of another password and salt.
        pool.phc(&params, b"something else", &[9; 16]).unwrap();
        assert_eq!(pool.phc(&params, b"correct horse", &[7; 16]).unwrap(), expected);
        assert_eq!(pool.0.lock().unwrap().len(), 1, "one buffer, reused");
    }

    #[test]
    fn verify_follows_the_algorithm_version_and_parameters_of_the_stored_hash() {
        let pool = MemoryPool::default();
        let cases = [
            (Algorithm::Argon2id, Version::V0x13, Params::new(64, 1, 1, None).unwrap()),
            (Algorithm::Argon2id, Version::V0x13, Params::new(128, 2, 2, Some(16)).unwrap()),
            (Algorithm::Argon2i, Version::V0x13, Params::new(64, 2, 1, None).unwrap()),
            (Algorithm::Argon2d, Version::V0x10, Params::new(64, 1, 1, None).unwrap()),
        ];
        for (algorithm, version, params) in cases {
            let phc = reference(algorithm, version, params, b"pw-123456", &[3; 16]);
            assert!(pool.verify(b"pw-123456", &phc), "{phc}");
            assert!(!pool.verify(b"pw-123457", &phc), "{phc}");
            assert!(!pool.verify(b"pw-123456", &phc[..phc.len() - 2]), "a shortened hash: {phc}");
            let (head, _) = phc.rsplit_once('$').unwrap();
            assert!(!pool.verify(b"pw-123456", head), "no hash: {head}");
        }
        assert!(!pool.verify(b"pw", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$"));
        assert!(!pool.verify(b"pw", "$scrypt$ln=4,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaA"));
        assert!(pool.0.lock().unwrap().len() <= MemoryPool::KEPT);
    }

    #[test]
    fn concurrent_hashes_keep_at_most_two_buffers() {
        let pool = std::sync::Arc::new(MemoryPool::default());
        let params = Params::new(256, 1, 1, None).unwrap();
        let threads: Vec<_> = (0u8..6)
            .map(|i| {
                let (pool, params) = (pool.clone(), params.clone());
                std::thread::spawn(move || pool.phc(&params, &[i; 8], &[i; 16]).unwrap())
            })
            .collect();
        for (i, t) in threads.into_iter().enumerate() {
            let got = t.join().unwrap();
            let i = i as u8;
            assert_eq!(got, reference(Algorithm::Argon2id, Version::V0x13, params.clone(), &[i; 8], &[i; 16]));
        }
        assert!((1..=MemoryPool::KEPT).contains(&pool.0.lock().unwrap().len()));
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
