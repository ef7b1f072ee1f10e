//! A software passkey for the API tests: authenticator and WebAuthn client (browser) in one,
//! ported from `tools/blackbox/soft_passkey.py` (the part the tests need).
//!
//! It plays the browser (clientDataJSON, the RP ID check, the JSON forms of
//! `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON` and
//! `toJSON()`) and a platform authenticator holding synced passkeys: ES256 on P-256, attestation
//! format "none", AAGUID all zeros, flags BE and BS set, every credential discoverable.
//!
//! ```ignore
//! let mut pk = SoftPasskey::new();
//! let credential = pk.create(&register_options, "https://app.example.com");
//! let assertion = pk.get(&login_options, "https://app.example.com");
//! ```
//!
//! Options are the server's answer as sent (`{"publicKey": {...}}`, as webauthn-rs serialises
//! them, or the inner object); what comes back is ready to send. Binary values are base64url
//! without padding, in and out (padding is accepted in).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde_json::{json, Value};

/// COSE algorithm ES256: ECDSA with SHA-256 on P-256.
pub const ES256: i64 = -7;

// Authenticator data flags (WebAuthn Level 3, 6.1).
pub const FLAG_UP: u8 = 0x01;
pub const FLAG_UV: u8 = 0x04;
pub const FLAG_BE: u8 = 0x08;
pub const FLAG_BS: u8 = 0x10;
pub const FLAG_AT: u8 = 0x40;

/// The DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, a 66-byte BIT
/// STRING): followed by the uncompressed point, it is `AuthenticatorAttestationResponse.getPublicKey()`.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

const B64U: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// base64url without padding, as WebAuthn's JSON forms use.
pub fn b64u(data: &[u8]) -> String {
    B64U.encode(data)
}

/// Decode base64url, with or without padding.
pub fn unb64u(text: &str) -> Vec<u8> {
    B64U.decode(text.trim()).unwrap_or_else(|e| panic!("not base64url ({e}): {text:?}"))
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, data).as_ref());
    out
}

// --- CBOR (RFC 8949), the subset WebAuthn needs --------------------------------------------------

/// A CBOR value, enough for a COSE key and an attestation object.
pub enum Cbor {
    Int(i64),
    Bytes(Vec<u8>),
    Text(String),
    Map(Vec<(Cbor, Cbor)>),
}

fn cbor_head(major: u8, value: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if value < 24 {
        out.push(m | value as u8);
    } else if let Ok(v) = u8::try_from(value) {
        out.extend_from_slice(&[m | 24, v]);
    } else if let Ok(v) = u16::try_from(value) {
        out.push(m | 25);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(value) {
        out.push(m | 26);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Encode `value`; maps in CTAP2 canonical order (keys sorted by their encoded form, shorter
/// first, then bytewise), so a COSE key is 1, 3, -1, -2, -3 and an attestation object "fmt",
/// "attStmt", "authData", as authenticators write them.
pub fn cbor_encode(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    match value {
        Cbor::Int(n) if *n >= 0 => cbor_head(0, n.unsigned_abs(), &mut out),
        // -1 - n for negative n, without overflow at i64::MIN.
        Cbor::Int(n) => cbor_head(1, n.unsigned_abs() - 1, &mut out),
        Cbor::Bytes(b) => {
            cbor_head(2, b.len() as u64, &mut out);
            out.extend_from_slice(b);
        }
        Cbor::Text(s) => {
            cbor_head(3, s.len() as u64, &mut out);
            out.extend_from_slice(s.as_bytes());
        }
        Cbor::Map(entries) => {
            let mut items: Vec<(Vec<u8>, Vec<u8>)> =
                entries.iter().map(|(k, v)| (cbor_encode(k), cbor_encode(v))).collect();
            items.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
            cbor_head(5, items.len() as u64, &mut out);
            for (k, v) in items {
                out.extend_from_slice(&k);
                out.extend_from_slice(&v);
            }
        }
    }
    out
}

// --- refusals ------------------------------------------------------------------------------------

/// Why the browser / authenticator refused (nothing would reach the server), named after the
/// DOMException a browser raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// create(): a credential of excludeCredentials is already held.
    InvalidState,
    /// create(): no ES256 (-7) in a non-empty pubKeyCredParams.
    NotSupported,
    /// The RP ID is neither the origin's host nor a parent domain of it.
    Security,
    /// get(): no held credential fits the request.
    NotAllowed,
}

// --- the authenticator + client ------------------------------------------------------------------

/// Changes to what an honest client and authenticator would send, for negative tests.
#[derive(Default)]
pub struct Tweak {
    /// The origin written in clientDataJSON (the RP ID check still uses the real origin).
    pub origin: Option<String>,
    /// The challenge written in clientDataJSON, as is (base64url).
    pub challenge: Option<String>,
    /// The sign count reported this once (the stored counter is left alone).
    pub counter: Option<u32>,
    /// get only: a well-formed signature over other bytes.
    pub bad_signature: bool,
    /// The UV flag, instead of `SoftPasskey::uv`.
    pub uv: Option<bool>,
    /// get only: `Some(None)` sends `userHandle: null`, `Some(Some(bytes))` those bytes.
    pub user_handle: Option<Option<Vec<u8>>>,
    /// clientDataJSON's `type` (default "webauthn.create" / "webauthn.get").
    pub client_data_type: Option<String>,
}

/// One passkey held.
struct Credential {
    id: Vec<u8>,
    rp_id: String,
    user_handle: Vec<u8>,
    key: EcdsaKeyPair,
    counter: u32,
}

impl Credential {
    /// The uncompressed point 0x04 || x || y.
    fn public_point(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.public_point();
        assert_eq!(point.len(), 65, "P-256 public key not an uncompressed point");
        cbor_encode(&Cbor::Map(vec![
            (Cbor::Int(1), Cbor::Int(2)),     // kty: EC2
            (Cbor::Int(3), Cbor::Int(ES256)), // alg
            (Cbor::Int(-1), Cbor::Int(1)),    // crv: P-256
            (Cbor::Int(-2), Cbor::Bytes(point[1..33].to_vec())),
            (Cbor::Int(-3), Cbor::Bytes(point[33..65].to_vec())),
        ]))
    }

    fn spki_der(&self) -> Vec<u8> {
        [&P256_SPKI_PREFIX[..], self.public_point()].concat()
    }
}

/// A platform authenticator holding synced passkeys, with the browser side built in.
pub struct SoftPasskey {
    credentials: Vec<Credential>,
    rng: SystemRandom,
    /// False (default): every signature reports the stored counter (0 unless set, as Apple and
    /// Google passkeys do). True: add 1 before each signature, registration included (the
    /// registration reports 1, the first sign-in 2).
    pub increment_counter: bool,
    /// Set the UV flag (default true: passkeys verify the user).
    pub uv: bool,
}

impl Default for SoftPasskey {
    fn default() -> Self {
        Self::new()
    }
}

fn unwrap_options(options: &Value) -> &Value {
    match options.get("publicKey") {
        Some(inner) if inner.is_object() => inner,
        _ => options,
    }
}

fn origin_host(origin: &str) -> String {
    let url = url::Url::parse(origin).unwrap_or_else(|e| panic!("origin {origin:?} is not a URL: {e}"));
    url.host_str().unwrap_or_else(|| panic!("origin {origin:?} has no host")).to_owned()
}

/// The browser's check: the RP ID is the origin's host or a parent domain of it.
fn check_rp_id(rp_id: &str, origin: &str) -> Result<(), Refusal> {
    let host = origin_host(origin);
    if !rp_id.is_empty() && (host == rp_id || host.ends_with(&format!(".{rp_id}"))) {
        Ok(())
    } else {
        Err(Refusal::Security)
    }
}

fn rp_id_for(given: Option<&str>, origin: &str) -> Result<String, Refusal> {
    let rp_id = match given {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => origin_host(origin),
    };
    check_rp_id(&rp_id, origin)?;
    Ok(rp_id)
}

/// clientDataJSON as browsers write it: these four members in this order, no whitespace.
fn client_data(type_: &str, challenge: &str, origin: &str) -> Vec<u8> {
    let s = |v: &str| serde_json::to_string(v).unwrap();
    format!(r#"{{"type":{},"challenge":{},"origin":{},"crossOrigin":false}}"#, s(type_), s(challenge), s(origin))
        .into_bytes()
}

/// The challenge as the browser re-encodes it (base64url, no padding), unless tweaked.
fn challenge_of(opts: &Value, tweak: &Tweak) -> String {
    match &tweak.challenge {
        Some(c) => c.clone(),
        None => b64u(&unb64u(opts["challenge"].as_str().expect("options without a challenge"))),
    }
}

/// The ids (bytes) of a list of credential descriptors of type "public-key".
fn descriptor_ids(list: Option<&Value>) -> Vec<Vec<u8>> {
    list.and_then(Value::as_array)
        .map(|descs| {
            descs
                .iter()
                .filter(|d| d.get("type").and_then(Value::as_str).unwrap_or("public-key") == "public-key")
                .map(|d| unb64u(d["id"].as_str().expect("credential descriptor without an id")))
                .collect()
        })
        .unwrap_or_default()
}

impl SoftPasskey {
    /// No credentials; counters fixed at 0 (like synced passkeys); UV set.
    pub fn new() -> Self {
        Self { credentials: Vec::new(), rng: SystemRandom::new(), increment_counter: false, uv: true }
    }

    /// Registration (`navigator.credentials.create()`): `PublicKeyCredential.toJSON()` of a new
    /// passkey. Panics where a browser refuses (see [`Refusal`]).
    pub fn create(&mut self, options: &Value, origin: &str) -> Value {
        self.create_with(options, origin, Tweak::default())
    }

    /// [`create`](Self::create) with overrides: `origin`, `challenge`, `uv`, `client_data_type`,
    /// `counter` (`bad_signature` and `user_handle` have no meaning here and panic).
    pub fn create_with(&mut self, options: &Value, origin: &str, tweak: Tweak) -> Value {
        self.try_create_with(options, origin, tweak).unwrap_or_else(|r| panic!("the browser refused create(): {r:?}"))
    }

    /// [`create_with`](Self::create_with), the refusal as an error.
    pub fn try_create_with(&mut self, options: &Value, origin: &str, tweak: Tweak) -> Result<Value, Refusal> {
        assert!(
            !tweak.bad_signature && tweak.user_handle.is_none(),
            "bad_signature / user_handle are assertion tweaks (\"none\" attestation signs nothing)"
        );
        let opts = unwrap_options(options);
        let rp_id = rp_id_for(opts["rp"].get("id").and_then(Value::as_str), origin)?;
        let user_handle = unb64u(opts["user"]["id"].as_str().expect("options without user.id"));
        assert!((1..=64).contains(&user_handle.len()), "user.id must be 1 to 64 bytes");

        // An empty (or absent) list means the defaults, ES256 among them.
        if let Some(params) = opts.get("pubKeyCredParams").and_then(Value::as_array) {
            if !params.is_empty()
                && !params.iter().any(|p| p["type"] == "public-key" && p["alg"].as_i64() == Some(ES256))
            {
                return Err(Refusal::NotSupported);
            }
        }
        for excluded in descriptor_ids(opts.get("excludeCredentials")) {
            if self.credentials.iter().any(|c| c.rp_id == rp_id && c.id == excluded) {
                return Err(Refusal::InvalidState);
            }
        }

        let type_ = tweak.client_data_type.as_deref().unwrap_or("webauthn.create");
        let client_data = client_data(type_, &challenge_of(opts, &tweak), tweak.origin.as_deref().unwrap_or(origin));

        // A discoverable credential: a new one for the same (rp, user) replaces the old one.
        self.credentials.retain(|c| !(c.rp_id == rp_id && c.user_handle == user_handle));
        let mut id = vec![0u8; 32];
        aws_lc_rs::rand::fill(&mut id).expect("random credential id");
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &self.rng).expect("P-256 key");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).expect("P-256 key");
        let mut cred = Credential { id, rp_id, user_handle, key, counter: 0 };
        let sign_count = match tweak.counter {
            Some(n) => n,
            None => self.next_count(&mut cred),
        };

        let mut auth_data = self.auth_data(&cred.rp_id, tweak.uv, FLAG_AT, sign_count);
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID
        auth_data.extend_from_slice(&u16::try_from(cred.id.len()).unwrap().to_be_bytes());
        auth_data.extend_from_slice(&cred.id);
        auth_data.extend_from_slice(&cred.cose_key());
        let attestation_object = cbor_encode(&Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text("none".into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(vec![])),
            (Cbor::Text("authData".into()), Cbor::Bytes(auth_data.clone())),
        ]));

        let mut extension_results = json!({});
        if opts.get("extensions").and_then(|e| e.get("credProps")).and_then(Value::as_bool) == Some(true) {
            extension_results["credProps"] = json!({"rk": true});
        }
        let id = b64u(&cred.id);
        let out = json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64u(&client_data),
                "attestationObject": b64u(&attestation_object),
                "transports": ["internal"],
                "publicKeyAlgorithm": ES256,
                "publicKey": b64u(&cred.spki_der()),
                "authenticatorData": b64u(&auth_data),
            },
            "clientExtensionResults": extension_results,
            "authenticatorAttachment": "platform",
        });
        self.credentials.push(cred);
        Ok(out)
    }

    /// Sign-in (`navigator.credentials.get()`): `PublicKeyCredential.toJSON()` of an assertion.
    /// The credential: the first listed in allowCredentials that is held, or with that list empty
    /// the newest held for the RP (discoverable). Panics where a browser refuses.
    pub fn get(&mut self, options: &Value, origin: &str) -> Value {
        self.get_with(options, origin, Tweak::default())
    }

    /// [`get`](Self::get) with overrides (see [`Tweak`]).
    pub fn get_with(&mut self, options: &Value, origin: &str, tweak: Tweak) -> Value {
        self.try_get_with(options, origin, tweak).unwrap_or_else(|r| panic!("the browser refused get(): {r:?}"))
    }

    /// [`get_with`](Self::get_with), the refusal as an error.
    pub fn try_get_with(&mut self, options: &Value, origin: &str, tweak: Tweak) -> Result<Value, Refusal> {
        let opts = unwrap_options(options);
        let rp_id = rp_id_for(opts.get("rpId").and_then(Value::as_str), origin)?;
        let allow = descriptor_ids(opts.get("allowCredentials"));
        let index = if allow.is_empty() {
            self.credentials.iter().rposition(|c| c.rp_id == rp_id)
        } else {
            allow.iter().find_map(|a| self.credentials.iter().position(|c| c.rp_id == rp_id && &c.id == a))
        }
        .ok_or(Refusal::NotAllowed)?;

        let type_ = tweak.client_data_type.as_deref().unwrap_or("webauthn.get");
        let client_data = client_data(type_, &challenge_of(opts, &tweak), tweak.origin.as_deref().unwrap_or(origin));

        let mut cred = self.credentials.remove(index);
        let sign_count = match tweak.counter {
            Some(n) => n,
            None => self.next_count(&mut cred),
        };
        let auth_data = self.auth_data(&rp_id, tweak.uv, 0, sign_count);
        let mut signed = [&auth_data[..], &sha256(&client_data)[..]].concat();
        if tweak.bad_signature {
            signed.push(0);
        }
        let signature = cred.key.sign(&self.rng, &signed).expect("ECDSA signature");
        let user_handle = match &tweak.user_handle {
            None => Value::String(b64u(&cred.user_handle)),
            Some(None) => Value::Null,
            Some(Some(bytes)) => Value::String(b64u(bytes)),
        };
        let id = b64u(&cred.id);
        self.credentials.insert(index, cred);
        Ok(json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64u(&client_data),
                "authenticatorData": b64u(&auth_data),
                "signature": b64u(signature.as_ref()),
                "userHandle": user_handle,
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }))
    }

    /// Force the stored counter of every held credential: the next signature reports `n` with
    /// the counter fixed, `n + 1` with `increment_counter`.
    pub fn set_counter(&mut self, n: u32) {
        for c in &mut self.credentials {
            c.counter = n;
        }
    }

    /// The held credentials' ids, base64url, newest last.
    pub fn credential_ids(&self) -> Vec<String> {
        self.credentials.iter().map(|c| b64u(&c.id)).collect()
    }

    fn next_count(&self, cred: &mut Credential) -> u32 {
        if self.increment_counter {
            cred.counter = cred.counter.wrapping_add(1);
        }
        cred.counter
    }

    /// rpIdHash || flags || signCount (attested credential data appended by the caller).
    fn auth_data(&self, rp_id: &str, uv: Option<bool>, extra_flags: u8, sign_count: u32) -> Vec<u8> {
        let mut flags = FLAG_UP | FLAG_BE | FLAG_BS | extra_flags;
        if uv.unwrap_or(self.uv) {
            flags |= FLAG_UV;
        }
        let mut out = sha256(rp_id.as_bytes()).to_vec();
        out.push(flags);
        out.extend_from_slice(&sign_count.to_be_bytes());
        out
    }
}
