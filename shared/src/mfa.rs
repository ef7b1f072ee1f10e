//! Second-factor primitives (issue 19's groundwork; the routes build on them): TOTP secrets and
//! codes, their sealing at rest, and recovery codes.
//!
//! - TOTP is RFC 6238 as every authenticator app speaks it: SHA-1, 6 digits, 30-second steps,
//!   one step of skew either way, computed and compared (in constant time) by the `totp-rs`
//!   crate. [`TotpSecret::check`] returns the step that matched, so the caller can accept each
//!   step once (a conditional write of the last accepted step: no replay within the window).
//! - A TOTP secret is never stored in the clear: [`seal`] encrypts it with AES-256-GCM (aws-lc-rs)
//!   under a key derived from the deployment's code key, bound to its user (the associated data),
//!   so a sealed secret copied to another account opens nothing.
//! - Recovery codes are 10 random codes of 10 characters from an alphabet without look-alikes,
//!   shown once and stored as MACs (the code key, bound to the user), like one-time codes.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use totp_rs::{Builder, Secret, Totp};

use crate::domain::UserId;
use crate::keys::CodeKey;

/// Seconds per TOTP step.
pub const STEP: u64 = 30;
/// Digits of a TOTP code.
pub const DIGITS: u8 = 6;
/// Steps accepted either side of now.
pub const SKEW: u16 = 1;
/// Bytes of a TOTP secret (RFC 4226 recommends 160 bits).
pub const SECRET_LEN: usize = 20;
/// Recovery codes per set.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code (shown as two groups of five).
pub const RECOVERY_CODE_LEN: usize = 10;
/// The recovery codes' alphabet: lower-case letters and digits without `0 o 1 l i`.
const ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// Why a second-factor operation failed (never carries a secret).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MfaError {
    #[error("random: {0}")]
    Random(String),
    #[error("totp: {0}")]
    Totp(String),
    #[error("sealed secret unreadable")]
    Unseal,
}

/// A TOTP secret in memory (20 bytes). Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret([u8; SECRET_LEN]);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(****)")
    }
}

impl TotpSecret {
    /// A new secret from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, MfaError> {
        crate::secrets::random_bytes::<SECRET_LEN>().map(Self).map_err(|e| MfaError::Random(e.to_string()))
    }

    /// A secret as [`TotpSecret::base32`] writes it (what an authenticator app was given).
    pub fn from_base32(text: &str) -> Option<Self> {
        let secret = Secret::try_from_base32(text).ok()?;
        <[u8; SECRET_LEN]>::try_from(secret.as_bytes()).ok().map(Self)
    }

    /// The secret as authenticator apps take it typed in: unpadded RFC 4648 base32.
    pub fn base32(&self) -> String {
        Secret::new_stack(self.0).to_base32()
    }

    fn totp(&self, issuer: Option<&str>, account: &str) -> Result<Totp, MfaError> {
        // The otpauth label is `issuer:account`: a `:` in either would split it elsewhere.
        let clean = |s: &str| s.replace(':', " ");
        Builder::new()
            .with_digits(DIGITS)
            .with_skew(SKEW)
            .with_step_duration(STEP)
            .with_secret(Secret::new_stack(self.0))
            .with_issuer(issuer.map(clean))
            .with_account_name(clean(account))
            .build()
            .map_err(|e| MfaError::Totp(e.to_string()))
    }

    /// The `otpauth://totp/...` URL an authenticator app scans (as a QR code) to add the account.
    pub fn otpauth_url(&self, issuer: &str, account: &str) -> Result<String, MfaError> {
        self.totp(Some(issuer), account)?.to_url().map_err(|e| MfaError::Totp(e.to_string()))
    }

    /// The code for unix time `at` (what an authenticator app shows then).
    pub fn code_at(&self, at: i64) -> Result<String, MfaError> {
        Ok(self.totp(None, "")?.generate(u64::try_from(at).unwrap_or(0)).to_string())
    }

    /// The step `code` belongs to when it is right at `now` (within one step of skew), compared
    /// in constant time; `None` for a wrong or malformed code. Accepting each step once is the
    /// caller's (stored last step, conditional write).
    pub fn check(&self, code: &str, now: i64) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        self.totp(None, "").ok()?.check(&code, u64::try_from(now).ok()?)
    }
}

fn sealing_key(key: &CodeKey) -> Result<LessSafeKey, MfaError> {
    let raw = key.derive("mfa totp seal");
    UnboundKey::new(&AES_256_GCM, &raw).map(LessSafeKey::new).map_err(|_| MfaError::Unseal)
}

/// The secret sealed for `user`: base64url of nonce ‖ ciphertext ‖ tag.
pub fn seal(key: &CodeKey, user: &UserId, secret: &TotpSecret) -> Result<String, MfaError> {
    let nonce_bytes = crate::secrets::random_bytes::<NONCE_LEN>().map_err(|e| MfaError::Random(e.to_string()))?;
    let mut sealed = secret.0.to_vec();
    sealing_key(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(user.as_str().as_bytes()),
            &mut sealed,
        )
        .map_err(|_| MfaError::Unseal)?;
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&sealed);
    Ok(URL_SAFE_NO_PAD.encode(out))
}

/// The secret [`seal`] sealed for `user`; [`MfaError::Unseal`] when it was sealed for another
/// user, under another key, or altered.
pub fn unseal(key: &CodeKey, user: &UserId, sealed: &str) -> Result<TotpSecret, MfaError> {
    let raw = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| MfaError::Unseal)?;
    if raw.len() != NONCE_LEN + SECRET_LEN + AES_256_GCM.tag_len() {
        return Err(MfaError::Unseal);
    }
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| MfaError::Unseal)?;
    let mut buf = rest.to_vec();
    let plain = sealing_key(key)?
        .open_in_place(nonce, Aad::from(user.as_str().as_bytes()), &mut buf)
        .map_err(|_| MfaError::Unseal)?;
    let mut secret = [0u8; SECRET_LEN];
    secret.copy_from_slice(plain);
    Ok(TotpSecret(secret))
}

/// `text` (an otpauth URL) as a QR code in SVG, for a page to show as is (`<img src="data:...">`
/// or inline): medium error correction, a quiet zone, at least 200 px square.
pub fn qr_svg(text: &str) -> Result<String, MfaError> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| MfaError::Totp(format!("qr: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

/// A new set of recovery codes, as shown to the user once (`abcde-fghjk`).
pub fn recovery_codes() -> Result<Vec<String>, MfaError> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes =
                crate::secrets::random_bytes::<RECOVERY_CODE_LEN>().map_err(|e| MfaError::Random(e.to_string()))?;
            // 31 symbols: rejection would be exact, but 256 % 31 = 8 biases 8 symbols by 1/256,
            // far below what a guess at 50 bits of code can use.
            let chars: String = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
            Ok(format!("{}-{}", &chars[..5], &chars[5..]))
        })
        .collect()
}

/// A recovery code as typed (any case, spaces or dashes anywhere) in its stored form, or `None`
/// when it cannot be one.
pub fn normalise_recovery_code(raw: &str) -> Option<String> {
    let chars: String =
        raw.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_lowercase()).collect();
    (chars.len() == RECOVERY_CODE_LEN && chars.bytes().all(|b| ALPHABET.contains(&b)))
        .then(|| format!("{}-{}", &chars[..5], &chars[5..]))
}

/// What a recovery code is stored as: its MAC under the code key, bound to the user.
pub fn recovery_code_mac(key: &CodeKey, user: &UserId, code: &str) -> String {
    key.mac_labelled("mfa_recovery", user, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CodeKey {
        CodeKey::parse("a-code-key-of-at-least-thirty-two-bytes").unwrap()
    }

    #[test]
    fn codes_follow_rfc_6238s_sha1_test_vectors() {
        // RFC 6238 appendix B: the ASCII secret "12345678901234567890", 8-digit codes; ours are
        // their last 6 digits (the same truncation, modulo 10^6).
        let secret = TotpSecret(*b"12345678901234567890");
        for (t, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(secret.code_at(t).unwrap(), eight[2..], "t={t}");
        }
        assert_eq!(secret.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_names_its_step() {
        let secret = TotpSecret::generate().unwrap();
        let now = 1_800_000_015;
        let step = (now as u64) / STEP;
        assert_eq!(secret.check(&secret.code_at(now).unwrap(), now), Some(step));
        assert_eq!(secret.check(&secret.code_at(now - 30).unwrap(), now), Some(step - 1));
        assert_eq!(secret.check(&secret.code_at(now + 30).unwrap(), now), Some(step + 1));
        let old = secret.code_at(now - 60).unwrap();
        if old != secret.code_at(now).unwrap() && old != secret.code_at(now - 30).unwrap() {
            assert_eq!(secret.check(&old, now), None, "two steps back is too old");
        }
        let spaced = secret.code_at(now).unwrap();
        assert_eq!(secret.check(&format!("{} {}", &spaced[..3], &spaced[3..]), now), Some(step));
        for bad in ["", "12345", "1234567", "+12345", "abcdef", "１２３４５６"] {
            assert_eq!(secret.check(bad, now), None, "{bad:?}");
        }
        assert_eq!(format!("{secret:?}"), "TotpSecret(****)");
    }

    #[test]
    fn the_otpauth_url_names_issuer_account_and_parameters() {
        let secret = TotpSecret(*b"12345678901234567890");
        let url = secret.otpauth_url("Gate:house", "ada@example.com").unwrap();
        assert!(url.starts_with("otpauth://totp/Gate%20house:ada%40example.com?"), "{url}");
        assert!(url.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{url}");
        assert!(url.contains("issuer=Gate%20house"), "{url}");
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_under_its_key() {
        let ada = UserId::generate();
        let bob = UserId::generate();
        let secret = TotpSecret::generate().unwrap();
        let sealed = seal(&key(), &ada, &secret).unwrap();
        assert!(!sealed.contains(&secret.base32()));
        assert_ne!(sealed, seal(&key(), &ada, &secret).unwrap(), "a fresh nonce each time");
        assert_eq!(unseal(&key(), &ada, &sealed).unwrap(), secret);
        assert_eq!(unseal(&key(), &bob, &sealed), Err(MfaError::Unseal), "bound to its user");
        let other = CodeKey::parse("another-code-key-of-at-least-32-bytes!").unwrap();
        assert_eq!(unseal(&other, &ada, &sealed), Err(MfaError::Unseal), "bound to its key");
        let mut tampered = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        tampered[NONCE_LEN] ^= 1;
        assert_eq!(unseal(&key(), &ada, &URL_SAFE_NO_PAD.encode(tampered)), Err(MfaError::Unseal));
        assert_eq!(unseal(&key(), &ada, "short"), Err(MfaError::Unseal));
    }

    #[test]
    fn recovery_codes_are_distinct_readable_and_typed_loosely() {
        let codes = recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        for c in &codes {
            assert_eq!(c.len(), RECOVERY_CODE_LEN + 1);
            assert_eq!(normalise_recovery_code(c).as_deref(), Some(c.as_str()));
            let typed = format!(" {} ", c.to_uppercase().replace('-', " "));
            assert_eq!(normalise_recovery_code(&typed).as_deref(), Some(c.as_str()));
        }
        for bad in ["", "abcde-fghj", "abcde-fghjkm", "abcde-fghj0", "abcde-fghjl"] {
            assert_eq!(normalise_recovery_code(bad), None, "{bad:?}");
        }
        let ada = UserId::generate();
        let mac = recovery_code_mac(&key(), &ada, &codes[0]);
        assert_ne!(mac, recovery_code_mac(&key(), &UserId::generate(), &codes[0]), "bound to its user");
        assert!(!mac.contains(&codes[0]));
    }

    #[test]
    fn a_secret_reads_back_from_its_base32_and_its_qr_code_is_an_svg() {
        let secret = TotpSecret::generate().unwrap();
        let again = TotpSecret::from_base32(&secret.base32()).unwrap();
        assert_eq!(again, secret);
        assert_eq!(again.code_at(1_800_000_000).unwrap(), secret.code_at(1_800_000_000).unwrap());
        assert_eq!(TotpSecret::from_base32("AAAA"), None, "too short for a secret");
        assert_eq!(TotpSecret::from_base32("not base32!"), None);
        let url = secret.otpauth_url("Gatehouse", "ada@example.com").unwrap();
        let svg = qr_svg(&url).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("<path"), "{svg:.80}");
        assert_ne!(svg, qr_svg("otpauth://totp/other").unwrap(), "the picture depends on the URL");
    }
}
