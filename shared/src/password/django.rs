//! Stored password hashes: Gatehouse's own (a PHC argon2 string) and the formats of Django's
//! default hashers (`django.contrib.auth.hashers`, Django 5.2), which accounts imported from a
//! Django site keep until their first login. Django's are recognised and verified exactly as
//! Django verifies them, never written: the first successful login replaces them with argon2id
//! (`needs_rehash` is true for every one of them).
//!
//! Django verifies by encoding the password again with the stored parameters and comparing the
//! whole string, so only the canonical form of each format verifies there; the parsers below
//! accept that form only (decimal numbers without sign, blank or leading zero, padded standard
//! base64 with no stray bits, a digest of the hasher's length). Every cost parameter is capped so
//! that a forged hash cannot stall or exhaust a function: beyond the cap the hash is
//! [`HashFormat::Unsupported`].

use std::num::NonZeroU32;

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Params, Version};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::MemoryPool;
use crate::secrets::constant_time_eq;

/// The format of a stored password hash (see [`stored_hash_format`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashFormat {
    /// Gatehouse's own: a PHC argon2 string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
    Argon2,
    /// `pbkdf2_sha256$<iterations>$<salt>$<base64 of the 32-byte key>` (Django's default).
    DjangoPbkdf2Sha256,
    /// `pbkdf2_sha1$<iterations>$<salt>$<base64 of the 20-byte key>`.
    DjangoPbkdf2Sha1,
    /// `argon2` followed by a PHC string (`argon2$argon2id$v=19$...`, older `argon2$argon2i$...`).
    DjangoArgon2,
    /// `bcrypt_sha256$` followed by the bcrypt of the hex SHA-256 of the password.
    DjangoBcryptSha256,
    /// `bcrypt$` followed by the bcrypt of the password (truncated at 72 bytes).
    DjangoBcrypt,
    /// `scrypt$<n>$<salt>$<r>$<p>$<base64 of the 64-byte key>`.
    DjangoScrypt,
    /// Django's unusable password (`set_unusable_password`): starts with `!`. Never verifies.
    Unusable,
    /// Anything else: Django's legacy hashers (`md5`, `unsalted_md5`, `sha1`, `unsalted_sha1`,
    /// `crypt`), an empty string, a malformed hash of a known format, or one whose cost is over
    /// the caps. Never verifies.
    Unsupported,
}

impl HashFormat {
    /// Whether a password can ever verify against a hash of this format.
    pub fn verifiable(self) -> bool {
        !matches!(self, Self::Unusable | Self::Unsupported)
    }

    /// Django's name of the format's algorithm (the hash's prefix); `phc_argon2` for
    /// Gatehouse's own, `unusable` and `unsupported` for the two that never verify.
    pub fn name(self) -> &'static str {
        match self {
            Self::Argon2 => "phc_argon2",
            Self::DjangoPbkdf2Sha256 => "pbkdf2_sha256",
            Self::DjangoPbkdf2Sha1 => "pbkdf2_sha1",
            Self::DjangoArgon2 => "argon2",
            Self::DjangoBcryptSha256 => "bcrypt_sha256",
            Self::DjangoBcrypt => "bcrypt",
            Self::DjangoScrypt => "scrypt",
            Self::Unusable => "unusable",
            Self::Unsupported => "unsupported",
        }
    }
}

/// The format of a stored password hash: a well-formed hash of a verifiable format within the
/// caps, or [`HashFormat::Unusable`] / [`HashFormat::Unsupported`].
pub fn stored_hash_format(stored: &str) -> HashFormat {
    match Stored::parse(stored) {
        Ok(parsed) => parsed.format(),
        Err(format) => format,
    }
}

/// Most PBKDF2 iterations accepted (Django 5.2's default is 1,000,000).
pub(super) const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// Most argon2 memory accepted in a Django hash, KiB (Django's default is 102,400).
const MAX_ARGON2_MEMORY_KIB: u32 = 256 * 1024;
/// Most argon2 passes accepted in a Django hash (Django's default is 2).
const MAX_ARGON2_ITERATIONS: u32 = 16;
/// Most argon2 memory × passes accepted in a Django hash, KiB (5 × Django's default).
const MAX_ARGON2_WORK_KIB: u64 = 1024 * 1024;
/// Most argon2 lanes accepted in a Django hash (Django's default is 8).
const MAX_ARGON2_PARALLELISM: u32 = 64;
/// Highest bcrypt cost accepted (Django's default is 12; each step doubles the time).
const MAX_BCRYPT_COST: u32 = 16;
/// Most scrypt memory accepted, bytes: 128·r·(n + p) (Django's default n = 2^14, r = 8, p = 5
/// needs 16 MiB; Django itself refuses more than OpenSSL's 32 MiB unless `maxmem` is raised).
const MAX_SCRYPT_MEMORY: u64 = 64 * 1024 * 1024;
/// Most scrypt work accepted, n·r·p (Django's default is 2^14 · 8 · 5 = 655,360).
const MAX_SCRYPT_WORK: u64 = 1 << 21;

/// A stored hash, parsed: what verifying it takes, owned (it moves to a blocking thread).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Stored {
    /// Gatehouse's own PHC argon2 string, as stored.
    Phc(String),
    Pbkdf2 {
        sha1: bool,
        iterations: NonZeroU32,
        salt: String,
        key: Vec<u8>,
    },
    /// Django's argon2: the PHC string after the `argon2` prefix (it starts with `$`).
    Argon2(String),
    /// The bcrypt string after Django's prefix (`$2b$12$...`); `sha256`: bcrypt_sha256.
    Bcrypt {
        sha256: bool,
        hash: String,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: String,
        key: Vec<u8>,
    },
}

impl Stored {
    /// The parsed hash, or why it never verifies.
    pub(super) fn parse(stored: &str) -> Result<Self, HashFormat> {
        if stored.starts_with('!') {
            return Err(HashFormat::Unusable);
        }
        let parsed = if stored.starts_with('$') {
            own_phc(stored).then(|| Self::Phc(stored.to_owned()))
        } else {
            let Some((algorithm, rest)) = stored.split_once('$') else {
                return Err(HashFormat::Unsupported);
            };
            match algorithm {
                "pbkdf2_sha256" => pbkdf2(rest, false),
                "pbkdf2_sha1" => pbkdf2(rest, true),
                // Django strips the PHC string's leading `$`: it is the one after `argon2`.
                "argon2" => {
                    let phc = &stored[algorithm.len()..];
                    django_argon2(phc).then(|| Self::Argon2(phc.to_owned()))
                }
                "bcrypt_sha256" => bcrypt_hash(rest).then(|| Self::Bcrypt { sha256: true, hash: rest.to_owned() }),
                "bcrypt" => bcrypt_hash(rest).then(|| Self::Bcrypt { sha256: false, hash: rest.to_owned() }),
                "scrypt" => scrypt_hash(rest),
                _ => None,
            }
        };
        parsed.ok_or(HashFormat::Unsupported)
    }

    pub(super) fn format(&self) -> HashFormat {
        match self {
            Self::Phc(_) => HashFormat::Argon2,
            Self::Pbkdf2 { sha1: false, .. } => HashFormat::DjangoPbkdf2Sha256,
            Self::Pbkdf2 { sha1: true, .. } => HashFormat::DjangoPbkdf2Sha1,
            Self::Argon2(_) => HashFormat::DjangoArgon2,
            Self::Bcrypt { sha256: true, .. } => HashFormat::DjangoBcryptSha256,
            Self::Bcrypt { sha256: false, .. } => HashFormat::DjangoBcrypt,
            Self::Scrypt { .. } => HashFormat::DjangoScrypt,
        }
    }

    /// Whether `password` matches, compared in constant time. Blocking: run it off the runtime.
    pub(super) fn verify(&self, memory: &MemoryPool, password: &[u8]) -> bool {
        match self {
            Self::Phc(phc) => memory.verify(password, phc),
            Self::Pbkdf2 { sha1, iterations, salt, key } => {
                let algorithm =
                    if *sha1 { aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA1 } else { aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256 };
                // aws-lc-rs derives as many bytes as `key` has and compares in constant time;
                // the parser held the key to the hasher's length.
                aws_lc_rs::pbkdf2::verify(algorithm, *iterations, salt.as_bytes(), password, key).is_ok()
            }
            // Django's argon2 hashes predate the version field (argon2-cffi reads its absence as
            // 0x10); their memory (100 MiB by default) is not kept in the pool.
            Self::Argon2(phc) => memory.verify_with(password, phc, Version::V0x10, false),
            Self::Bcrypt { sha256, hash } => {
                let result = if *sha256 {
                    // Django: bcrypt of the hex (lower-case, ASCII) SHA-256 digest of the password.
                    use sha2::Digest as _;
                    let digest = sha2::Sha256::digest(password);
                    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                    ::bcrypt::verify(hex.as_bytes(), hash)
                } else {
                    // bcrypt keeps the first 72 bytes, as Django's bcrypt did (before bcrypt 5).
                    ::bcrypt::verify(password, hash)
                };
                // The crate compares the digests in constant time.
                result.unwrap_or(false)
            }
            Self::Scrypt { log_n, r, p, salt, key } => {
                let Ok(params) = scrypt::Params::new(*log_n, *r, *p) else {
                    return false;
                };
                let mut out = [0u8; 64];
                scrypt::scrypt(password, salt.as_bytes(), &params, &mut out).is_ok() && constant_time_eq(&out, key)
            }
        }
    }
}

/// A decimal as Django writes one with `%d` (no sign, blank or leading zero).
fn decimal(s: &str) -> Option<u64> {
    let canonical =
        !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// Padded standard base64, as Python's `base64.b64encode`, of exactly `len` bytes.
fn base64_of(s: &str, len: usize) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok().filter(|key| key.len() == len)
}

/// Django's salts: not empty (Django refuses to encode with one); `$` cannot occur (split on it).
fn salt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// `<iterations>$<salt>$<base64 key>`.
fn pbkdf2(rest: &str, sha1: bool) -> Option<Stored> {
    let mut fields = rest.splitn(3, '$');
    let (iterations, salt_field, key) = (fields.next()?, fields.next()?, fields.next()?);
    let iterations = u32::try_from(decimal(iterations)?).ok().filter(|i| *i <= MAX_PBKDF2_ITERATIONS)?;
    let key = base64_of(key, if sha1 { 20 } else { 32 })?;
    Some(Stored::Pbkdf2 { sha1, iterations: NonZeroU32::new(iterations)?, salt: salt(salt_field)?, key })
}

/// The parts of an argon2 PHC string, when it is complete and of a known algorithm and version.
fn argon2_parts(phc: &str) -> Option<(Algorithm, Option<Version>, Params)> {
    let parsed = PasswordHash::new(phc).ok()?;
    parsed.salt?;
    parsed.hash?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = match parsed.version {
        Some(v) => Some(Version::try_from(v).ok()?),
        None => None,
    };
    Some((algorithm, version, Params::try_from(&parsed).ok()?))
}

/// Gatehouse's own: a complete PHC argon2 string (its cost is the configured one, not capped).
fn own_phc(stored: &str) -> bool {
    argon2_parts(stored).is_some()
}

/// Django's argon2 after its prefix: a PHC string within the caps.
fn django_argon2(phc: &str) -> bool {
    argon2_parts(phc).is_some_and(|(_, _, params)| {
        params.m_cost() <= MAX_ARGON2_MEMORY_KIB
            && params.t_cost() <= MAX_ARGON2_ITERATIONS
            && u64::from(params.m_cost()) * u64::from(params.t_cost()) <= MAX_ARGON2_WORK_KIB
            && params.p_cost() <= MAX_ARGON2_PARALLELISM
    })
}

/// A bcrypt string as Django's `bcrypt` library (pyca) verifies: `$2a$`, `$2b$` or `$2y$`, a
/// two-digit cost within the cap, 53 characters of bcrypt's base64 (salt then digest).
fn bcrypt_hash(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 60
        && ["$2a$", "$2b$", "$2y$"].iter().any(|prefix| s.starts_with(prefix))
        && b[6] == b'$'
        // Two digits, zero-padded.
        && b[4..6].iter().all(u8::is_ascii_digit)
        && s.get(4..6).and_then(|c| c.parse::<u32>().ok()).is_some_and(|cost| (4..=MAX_BCRYPT_COST).contains(&cost))
        && b[7..].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

/// `<n>$<salt>$<r>$<p>$<base64 key>`.
fn scrypt_hash(rest: &str) -> Option<Stored> {
    let fields: Vec<&str> = rest.split('$').collect();
    let [n, salt_field, r, p, key] = fields.as_slice() else {
        return None;
    };
    let (n, r, p) = (decimal(n)?, decimal(r)?, decimal(p)?);
    if n < 2 || !n.is_power_of_two() || r == 0 || p == 0 {
        return None;
    }
    let memory = 128u64.checked_mul(r)?.checked_mul(n.checked_add(p)?)?;
    let work = n.checked_mul(r)?.checked_mul(p)?;
    if memory > MAX_SCRYPT_MEMORY || work > MAX_SCRYPT_WORK {
        return None;
    }
    Some(Stored::Scrypt {
        log_n: u8::try_from(n.trailing_zeros()).ok()?,
        r: u32::try_from(r).ok()?,
        p: u32::try_from(p).ok()?,
        salt: salt(salt_field)?,
        key: base64_of(key, 64)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Argon2Settings;
    use crate::domain::Password;
    use crate::password::PasswordHasher;

    // Made by Django 5.2.19 itself (pip install Django==5.2.19 bcrypt==5.0.0 argon2-cffi==25.1.0),
    // after settings.configure(PASSWORD_HASHERS=[the six default hashers, and subclasses with a low
    // work factor: Argon2PasswordHasher with time_cost=1, memory_cost=1024, parallelism=2;
    // ScryptPasswordHasher with work_factor=2**10; BCrypt(SHA256)PasswordHasher with rounds=5]):
    //   pbkdf2:  PBKDF2PasswordHasher().encode(PW, hasher.salt(), 1000) (and the SHA1 hasher)
    //   others:  hasher.encode(PW, hasher.salt()); `_DEFAULT`: make_password(PW, hasher=name)
    //   ARGON2I: "argon2" + argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=2,
    //            type=Type.I).hash(PW), as Django <= 3.1 wrote them
    //   ARGON2I_NO_VERSION: argon2.low_level.hash_secret(..., type=Type.I, version=0x10) with
    //            its "v=16$" removed, as argon2-cffi < 16 wrote them
    //   BCRYPT_LONG: "bcrypt$" + bcrypt.hashpw(LONG[:72], salt) (bcrypt 5 refuses to hash more
    //            than 72 bytes; bcrypt < 5, which made such hashes, truncated at 72)
    // Each was checked with django.contrib.auth.hashers.check_password: true for its password,
    // false for the password + "!".
    const PW: &str = "correct horse battery";
    const LONG: &str =
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxcorrect horse batteryyyyyyyy";
    const UNICODE: &str = "ünïcødé pässwörd ✓";

    const PBKDF2_SHA256: &str =
        "pbkdf2_sha256$1000$GW99tOtVGrc8L5EgOPzIPk$N7Lgf6Q6BKRrnV0eCc3lZHaDBccSYLjuM885IAUXb0k=";
    const PBKDF2_SHA1: &str = "pbkdf2_sha1$1000$VbvLwqC7sYDyTjonyWVEYG$S1tcJLC0xRNBq9lVxRzmVadtzqw=";
    const ARGON2ID: &str = "argon2$argon2id$v=19$m=1024,t=1,p=2$QVlrMTNzSk85WmVaUnFLUVh1ZjlJQg$yDeprgQAI7tJq7xVGSpmbSIexIcvk22gHuu2rXGQ26A";
    const ARGON2I: &str =
        "argon2$argon2i$v=19$m=1024,t=1,p=2$fIpq9liK3lNtvY37z6qe0w$TtDzfUwHQt1A5eZyuDpZwld9qJnab2OAffJ79zkw0Wk";
    const ARGON2I_NO_VERSION: &str =
        "argon2$argon2i$m=64,t=1,p=1$c29tZVNhbHRWYWx1ZTE2Yg$hwoUQAbh/Ys0vfnOuLRPx2CkU6MCIjr4Dw8WraAYclo";
    const BCRYPT_SHA256: &str = "bcrypt_sha256$$2b$05$SjXFvtUGnYWjWEArVDyJI.psuHKo9KhcxP0pSPEYXdOuATiXZFTXa";
    const BCRYPT: &str = "bcrypt$$2b$05$AaTDfeNXYPjBmM3OzST18.fuTprKvtmyCok7evNT9KOwjsCcEjLxO";
    const SCRYPT: &str = "scrypt$1024$xbB6GpmJ7oJGs1M0gxlgEd$8$5$6iaajCENlf5nKktLj2jUf9+ZyLgoLw2pjSBP98bnq8bGlor/u1gkxUr2zX9l+7k0xz6z1kEgWGKTTAHcthNCBw==";
    const BCRYPT_SHA256_LONG: &str = "bcrypt_sha256$$2b$05$10hUQHNZBLEYvSwRxNs5meyv44/XGW3n8/b6PrIIqb7RyBu9Cha0K";
    const BCRYPT_LONG: &str = "bcrypt$$2b$05$bRn2fdOcXU2NPlOprx3XleNZguoHes3.prKGm0KvEcZ9BhJONgcKy";
    const PBKDF2_SHA256_UNICODE: &str =
        "pbkdf2_sha256$1000$wlPQgzjBxoWS1v4SBN3J7X$EJSyEd5lLfgfJYBlMKx/L0wyeC3mQrwJyIIPtj0oTw4=";
    const SCRYPT_UNICODE: &str = "scrypt$1024$8vb1rAApADUCZrreFxcITQ$8$5$QKW7XcD8AHo8JWaw9iKF9U5eZzYEyoAfuWwOB/6idY/a6XOmdE6m3q9zC0ReGa4iyczmav6US6sFxvqVnEr5bw==";
    const BCRYPT_SHA256_UNICODE: &str = "bcrypt_sha256$$2b$05$/yF1LLmEaAzMP.9LGBq4YOOH9riu.LXJQDw7YWg8OiqU7TEH1d9PW";
    /// Django 5.2's own defaults: PBKDF2 at 1,000,000 iterations, argon2id m=102400 t=2 p=8,
    /// bcrypt cost 12.
    const PBKDF2_SHA256_DEFAULT: &str =
        "pbkdf2_sha256$1000000$wkxUEYSjeLHqr2uBejfrQI$7045Qq/8UmDSQq8QGqWp7JbCG0LI0zh+ksrM61P+mL8=";
    const ARGON2_DEFAULT: &str = "argon2$argon2id$v=19$m=102400,t=2,p=8$VnJ5UTdnSnc1QWFIOEpkSHlsUlptNA$9kThcon3JBE7OxJqyOmBUYY4/hSedyWjFgYgzIDf0fw";
    const BCRYPT_SHA256_DEFAULT: &str = "bcrypt_sha256$$2b$12$QCZacMF8AVr888JAMHC/8uSErtnLXlj7WEOCJau/MKvTZk5wRS7cK";
    /// make_password(None).
    const UNUSABLE: &str = "!LcxPjWT2IGMccI2VYaYiwScpHO4Q58KpBsQf0HfY";

    /// (hash, its format, its password); BCRYPT_LONG, which any password that starts as its own
    /// does verifies, is in its own test.
    const VECTORS: &[(&str, HashFormat, &str)] = &[
        (PBKDF2_SHA256, HashFormat::DjangoPbkdf2Sha256, PW),
        (PBKDF2_SHA1, HashFormat::DjangoPbkdf2Sha1, PW),
        (ARGON2ID, HashFormat::DjangoArgon2, PW),
        (ARGON2I, HashFormat::DjangoArgon2, PW),
        (ARGON2I_NO_VERSION, HashFormat::DjangoArgon2, PW),
        (BCRYPT_SHA256, HashFormat::DjangoBcryptSha256, PW),
        (BCRYPT, HashFormat::DjangoBcrypt, PW),
        (SCRYPT, HashFormat::DjangoScrypt, PW),
        (BCRYPT_SHA256_LONG, HashFormat::DjangoBcryptSha256, LONG),
        (PBKDF2_SHA256_UNICODE, HashFormat::DjangoPbkdf2Sha256, UNICODE),
        (SCRYPT_UNICODE, HashFormat::DjangoScrypt, UNICODE),
        (BCRYPT_SHA256_UNICODE, HashFormat::DjangoBcryptSha256, UNICODE),
    ];

    fn verify(stored: &str, password: &str) -> bool {
        Stored::parse(stored).is_ok_and(|s| s.verify(&MemoryPool::default(), password.as_bytes()))
    }

    fn pw(s: &str) -> Password {
        Password::parse(s.to_owned()).unwrap()
    }

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(Argon2Settings { memory_kib: 64, iterations: 1, parallelism: 1 }).unwrap()
    }

    #[test]
    fn every_django_format_verifies_its_password_and_no_other() {
        for &(stored, format, password) in VECTORS {
            assert_eq!(stored_hash_format(stored), format, "{stored}");
            assert!(format.verifiable());
            assert!(verify(stored, password), "right password: {stored}");
            assert!(!verify(stored, &format!("{password}!")), "wrong password: {stored}");
            assert!(
                !verify(stored, &password[..password.len() - password.chars().last().map_or(0, char::len_utf8)]),
                "shorter password: {stored}"
            );
            assert!(!verify(stored, ""), "empty password: {stored}");
        }
    }

    #[test]
    fn django_defaults_are_within_the_caps_and_verify() {
        for (stored, format) in [
            (PBKDF2_SHA256_DEFAULT, HashFormat::DjangoPbkdf2Sha256),
            (ARGON2_DEFAULT, HashFormat::DjangoArgon2),
            (BCRYPT_SHA256_DEFAULT, HashFormat::DjangoBcryptSha256),
        ] {
            assert_eq!(stored_hash_format(stored), format, "{stored}");
            assert!(verify(stored, PW), "{stored}");
            assert!(!verify(stored, "correct horse batterY"), "{stored}");
        }
    }

    #[test]
    fn long_passwords_behave_as_in_django() {
        // bcrypt_sha256 hashes the whole password: its first 72 bytes are not it.
        assert!(verify(BCRYPT_SHA256_LONG, LONG));
        assert!(!verify(BCRYPT_SHA256_LONG, &LONG[..72]));
        assert!(!verify(BCRYPT_SHA256_LONG, &format!("{}zzz", &LONG[..72])));
        // bcrypt keeps the first 72 bytes: Django with bcrypt < 5 accepted any password that
        // starts with them (bcrypt 5 raises on more than 72 bytes instead; such a hash can only
        // have been made by an older one, which truncated).
        assert_eq!(stored_hash_format(BCRYPT_LONG), HashFormat::DjangoBcrypt);
        assert!(verify(BCRYPT_LONG, LONG));
        assert!(verify(BCRYPT_LONG, &format!("{LONG}!")));
        assert!(verify(BCRYPT_LONG, &LONG[..72]));
        assert!(verify(BCRYPT_LONG, &format!("{}zzz", &LONG[..72])));
        assert!(!verify(BCRYPT_LONG, &LONG[..71]));
    }

    /// `stored` with the character at byte `at` replaced by `with`.
    fn tamper(stored: &str, at: usize, with: char) -> String {
        let mut s = stored.to_owned();
        s.replace_range(at..at + 1, &with.to_string());
        s
    }

    #[test]
    fn a_changed_digest_or_salt_verifies_false() {
        for &(stored, format, password) in VECTORS {
            // A digest character near the start of the digest (its last may carry padding bits).
            let digest_at = stored.rfind('$').unwrap() + 3;
            let digest_at = if matches!(format, HashFormat::DjangoBcrypt | HashFormat::DjangoBcryptSha256) {
                stored.len() - 10
            } else {
                digest_at
            };
            let original = stored.as_bytes()[digest_at] as char;
            let changed = tamper(stored, digest_at, if original == 'A' { 'B' } else { 'A' });
            assert_eq!(stored_hash_format(&changed), format, "still well-formed: {changed}");
            assert!(!verify(&changed, password), "changed digest: {changed}");
        }
        // The salt is part of the input.
        let salted = PBKDF2_SHA256.replace("GW99tOtVGrc8L5EgOPzIPk", "GW99tOtVGrc8L5EgOPzIPl");
        assert!(!verify(&salted, PW));
        let salted = SCRYPT.replace("xbB6GpmJ7oJGs1M0gxlgEd", "xbB6GpmJ7oJGs1M0gxlgEe");
        assert!(!verify(&salted, PW));
        // Another iteration count or cost is another hash.
        assert!(!verify(&PBKDF2_SHA256.replace("$1000$", "$1001$"), PW));
        assert!(!verify(&BCRYPT.replace("$05$", "$06$"), PW));
        assert!(!verify(&SCRYPT.replace("$8$5$", "$8$4$"), PW));
        assert!(!verify(&ARGON2ID.replace("t=1", "t=2"), PW));
        // Another algorithm of the same shape.
        assert!(!verify(&PBKDF2_SHA1.replace("pbkdf2_sha1$", "pbkdf2_sha256$"), PW));
        assert!(!verify(&BCRYPT.replace("bcrypt$", "bcrypt_sha256$"), PW));
        assert!(!verify(&BCRYPT_SHA256.replace("bcrypt_sha256$", "bcrypt$"), PW));
        assert!(!verify(&ARGON2ID.replace("$argon2id$", "$argon2i$"), PW));
    }

    #[test]
    fn malformed_or_over_the_caps_is_unsupported_and_never_verifies() {
        let key32 = "N7Lgf6Q6BKRrnV0eCc3lZHaDBccSYLjuM885IAUXb0k=";
        let scrypt_key = "6iaajCENlf5nKktLj2jUf9+ZyLgoLw2pjSBP98bnq8bGlor/u1gkxUr2zX9l+7k0xz6z1kEgWGKTTAHcthNCBw==";
        let bcrypt_tail = "AaTDfeNXYPjBmM3OzST18.fuTprKvtmyCok7evNT9KOwjsCcEjLxO";
        let cases = [
            // PBKDF2: iterations absurd, zero, signed, padded, not a number; no salt; a key that
            // is not base64, not padded, of another length; missing fields.
            format!("pbkdf2_sha256$4294967295$salt${key32}"),
            format!("pbkdf2_sha256$10000001$salt${key32}"),
            format!("pbkdf2_sha256$99999999999999999999$salt${key32}"),
            format!("pbkdf2_sha256$0$salt${key32}"),
            format!("pbkdf2_sha256$+1000$salt${key32}"),
            format!("pbkdf2_sha256$01000$salt${key32}"),
            format!("pbkdf2_sha256$ 1000$salt${key32}"),
            format!("pbkdf2_sha256$1_000$salt${key32}"),
            format!("pbkdf2_sha256$1000$${key32}"),
            "pbkdf2_sha256$1000$salt$not*base64".to_owned(),
            format!("pbkdf2_sha256$1000$salt${}", key32.trim_end_matches('=')),
            "pbkdf2_sha256$1000$salt$S1tcJLC0xRNBq9lVxRzmVadtzqw=".to_owned(),
            format!("pbkdf2_sha1$1000$salt${key32}"),
            "pbkdf2_sha256$1000$salt".to_owned(),
            "pbkdf2_sha256$".to_owned(),
            // argon2: over the caps, no hash, not PHC, unknown variant, unknown version.
            "argon2$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
            "argon2$argon2id$v=19$m=65536,t=100,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
            "argon2$argon2id$v=19$m=262144,t=8,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
            "argon2$argon2id$v=19$m=65536,t=2,p=1000$c29tZXNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
            "argon2$argon2id$v=19$m=1024,t=1,p=2$QVlrMTNzSk85WmVaUnFLUVh1ZjlJQg".to_owned(),
            "argon2$$argon2id$v=19$m=1024,t=1,p=2$QVlrMTNzSk85WmVaUnFLUVh1ZjlJQg$aGFzaGhhc2hoYXNo".to_owned(),
            "argon2argon2id$v=19$m=1024,t=1,p=2$c29tZXNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
            "argon2$argon2x$v=19$m=1024,t=1,p=2$c29tZXNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
            "argon2$argon2id$v=18$m=1024,t=1,p=2$c29tZXNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
            // bcrypt: cost over the cap or under bcrypt's minimum, other prefixes, lengths, alphabet.
            format!("bcrypt$$2b$31${bcrypt_tail}"),
            format!("bcrypt$$2b$17${bcrypt_tail}"),
            format!("bcrypt$$2b$03${bcrypt_tail}"),
            format!("bcrypt$$2b$5x${bcrypt_tail}"),
            format!("bcrypt$$2x$05${bcrypt_tail}"),
            format!("bcrypt$$2$05${bcrypt_tail}"),
            format!("bcrypt$$2b$05${}", &bcrypt_tail[1..]),
            format!("bcrypt$$2b$05${bcrypt_tail}A"),
            format!("bcrypt$$2b$05${}+", &bcrypt_tail[1..]),
            format!("bcrypt_sha256$2b$05${bcrypt_tail}"),
            format!("bcrypt_sha256$$2b$05${}é", &bcrypt_tail[2..]),
            // scrypt: n not a power of two, too large, r or p zero or too large, fields missing
            // or extra, another key length, no salt.
            format!("scrypt$1000$salt$8$1${scrypt_key}"),
            format!("scrypt$1$salt$8$1${scrypt_key}"),
            format!("scrypt$1073741824$salt$8$1${scrypt_key}"),
            format!("scrypt$65536$salt$8$1${scrypt_key}"),
            format!("scrypt$16384$salt$8$100${scrypt_key}"),
            format!("scrypt$16384$salt$0$1${scrypt_key}"),
            format!("scrypt$16384$salt$8$0${scrypt_key}"),
            format!("scrypt$16384$salt$4294967296$1${scrypt_key}"),
            format!("scrypt$16384$salt$8${scrypt_key}"),
            format!("scrypt$16384$salt$8$1${scrypt_key}$"),
            format!("scrypt$16384$$8$1${scrypt_key}"),
            format!("scrypt$16384$salt$8$1${key32}"),
            // The brief's order (salt first) is not Django's.
            format!("scrypt$salt$16384$8$1${scrypt_key}"),
        ];
        for stored in &cases {
            assert_eq!(stored_hash_format(stored), HashFormat::Unsupported, "{stored}");
            assert!(!verify(stored, PW), "{stored}");
        }
    }

    #[test]
    fn classifies_what_an_import_may_hold() {
        let own = "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        let cases = [
            (own, HashFormat::Argon2),
            (PBKDF2_SHA256, HashFormat::DjangoPbkdf2Sha256),
            (ARGON2ID, HashFormat::DjangoArgon2),
            (UNUSABLE, HashFormat::Unusable),
            ("!xyz", HashFormat::Unusable),
            ("!", HashFormat::Unusable),
            ("", HashFormat::Unsupported),
            ("garbage", HashFormat::Unsupported),
            ("$$$", HashFormat::Unsupported),
            // Django's legacy hashers.
            ("md5$seasalt$a1b2c3d4e5f60718293a4b5c6d7e8f90", HashFormat::Unsupported),
            ("md5$$a1b2c3d4e5f60718293a4b5c6d7e8f90", HashFormat::Unsupported),
            ("a1b2c3d4e5f60718293a4b5c6d7e8f90", HashFormat::Unsupported),
            ("sha1$seasalt$cff36ea83f5706ce9aa7454e63e431fc726b2dc8", HashFormat::Unsupported),
            ("sha1$$cff36ea83f5706ce9aa7454e63e431fc726b2dc8", HashFormat::Unsupported),
            ("unsalted_md5$$a1b2c3d4e5f60718293a4b5c6d7e8f90", HashFormat::Unsupported),
            ("crypt$$ab1Hv2Lg7ltQo", HashFormat::Unsupported),
            // Our own, incomplete.
            ("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzYWx0$", HashFormat::Unsupported),
            ("$argon2id$v=19$m=64,t=1,p=1", HashFormat::Unsupported),
            ("$scrypt$ln=4,r=8,p=1$c29tZXNhbHRzYWx0$aGFzaA", HashFormat::Unsupported),
        ];
        for (stored, format) in cases {
            assert_eq!(stored_hash_format(stored), format, "{stored:?}");
            assert_eq!(format.verifiable(), !matches!(format, HashFormat::Unusable | HashFormat::Unsupported));
        }
        let names: Vec<&str> = [
            HashFormat::Argon2,
            HashFormat::DjangoPbkdf2Sha256,
            HashFormat::DjangoPbkdf2Sha1,
            HashFormat::DjangoArgon2,
            HashFormat::DjangoBcryptSha256,
            HashFormat::DjangoBcrypt,
            HashFormat::DjangoScrypt,
            HashFormat::Unusable,
            HashFormat::Unsupported,
        ]
        .iter()
        .map(|f| f.name())
        .collect();
        assert_eq!(
            names,
            [
                "phc_argon2",
                "pbkdf2_sha256",
                "pbkdf2_sha1",
                "argon2",
                "bcrypt_sha256",
                "bcrypt",
                "scrypt",
                "unusable",
                "unsupported"
            ]
        );
        // Each Django hash's name is its prefix.
        for &(stored, format, _) in VECTORS {
            assert!(stored.starts_with(&format!("{}$", format.name())), "{stored}");
        }
    }

    #[tokio::test]
    async fn the_hasher_verifies_django_hashes_and_wants_them_rehashed() {
        for hasher in [cheap(), cheap().inline()] {
            for &(stored, _, password) in VECTORS {
                assert!(hasher.verify(&pw(password), Some(stored)).await, "{stored}");
                assert!(!hasher.verify(&pw("wrong password"), Some(stored)).await, "{stored}");
                assert!(hasher.needs_rehash(stored), "{stored}");
            }
            for stored in [UNUSABLE, "!", "", "md5$salt$a1b2c3d4e5f60718293a4b5c6d7e8f90", "pbkdf2_sha256$0$s$x"] {
                let before = hasher.verifications();
                assert!(!hasher.verify(&pw(PW), Some(stored)).await, "{stored}");
                assert_eq!(hasher.verifications(), before + 1, "the dummy is verified: {stored:?}");
                assert!(hasher.needs_rehash(stored), "{stored:?}");
            }
        }
        // Gatehouse's own at other parameters, or argon2id of another version, is rehashed too.
        let own = cheap().hash(&pw(PW)).await.unwrap();
        assert!(!cheap().needs_rehash(&own));
        assert!(cheap().needs_rehash(&own.replace("$argon2id$", "$argon2i$")));
        assert!(cheap().needs_rehash(&own.replace("$v=19$", "$v=16$")));
        // Django's argon2id with exactly the configured parameters is still Django's.
        let django_shaped = format!("argon2{own}");
        assert_eq!(stored_hash_format(&django_shaped), HashFormat::DjangoArgon2);
        assert!(cheap().needs_rehash(&django_shaped));
        assert!(cheap().verify(&pw(PW), Some(&django_shaped)).await);
    }

    /// A hash that never verifies costs what an unknown account costs: the configured argon2
    /// verification of the dummy hash, not less.
    #[test]
    fn unusable_and_unsupported_hashes_cost_what_an_unknown_account_costs() {
        // Not timed (a shared machine's clock proves nothing): what is verified is the same
        // dummy argon2id hash an unknown account is verified against, and a match never counts.
        let hasher = cheap();
        let unknown = hasher.target(None);
        assert!(!unknown.0);
        for hash in [UNUSABLE, "", "md5$salt$a1b2c3d4e5f60718293a4b5c6d7e8f90", "pbkdf2_sha256$99999999999$s$x"] {
            assert_eq!(hasher.target(Some(hash)), unknown, "{hash:?}");
        }
        assert_ne!(hasher.target(Some(VECTORS[0].0)), unknown);
    }
}
