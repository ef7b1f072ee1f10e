//! Random one-time codes, their hashes, and djoser-style `uid`s.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::domain::UserId;

/// Random bytes from the OS.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)?;
    Ok(buf)
}

/// A 256-bit URL-safe token for email links.
pub fn random_token() -> Result<String, getrandom::Error> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// A random identifier (session ids, jtis): 128 bits, URL-safe.
pub fn random_id() -> Result<String, getrandom::Error> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<16>()?))
}

/// Hex SHA-256: what is stored instead of a code.
pub fn sha256_hex(code: &str) -> String {
    Sha256::digest(code.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The `uid` of an emailed link: the user id, base64url-encoded (as djoser encodes the pk).
pub fn encode_uid(id: &UserId) -> String {
    URL_SAFE_NO_PAD.encode(id.as_str())
}

/// Decodes a `uid`; `None` for anything that is not an encoded user id. Padding is tolerated.
pub fn decode_uid(uid: &str) -> Option<UserId> {
    if uid.len() > 128 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(uid.trim_end_matches('=')).ok()?;
    UserId::parse(std::str::from_utf8(&bytes).ok()?)
}

/// Constant-time equality for secrets of equal length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_round_trip_and_reject_garbage() {
        let id = UserId::generate();
        assert_eq!(decode_uid(&encode_uid(&id)), Some(id.clone()));
        assert_eq!(decode_uid(&format!("{}==", encode_uid(&id))), Some(id));
        assert_eq!(decode_uid("!!!"), None);
        assert_eq!(decode_uid("MQ"), None); // "1" is not a user id
        assert_eq!(decode_uid(&"A".repeat(1000)), None);
    }

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"diff"));
        assert!(!constant_time_eq(b"same", b"samee"));
    }
}
