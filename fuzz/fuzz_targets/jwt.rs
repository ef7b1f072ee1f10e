//! `TokenService::verify` with an HS256 and an EdDSA service (the latter also trusting a retired
//! key), fed raw bytes, mutations and splices of real tokens, and tokens forged from fuzzed
//! headers and claims signed with right and wrong keys.
//!
//! Properties: raw, mutated and spliced input verifies only if it is byte-for-byte a token the
//! service (or its retired key) issued for that token type; a forged token verifies exactly when
//! an independent model of the rules says so (the configured algorithm, the `typ` of the token
//! type, the key named by `kid`, `iss`/`aud`, `token_type`, `sub` = `user_id`, `exp`/`iat`/`nbf`
//! against the clock with the leeway, every claim of the right type); nothing signed by another
//! key, with `alg: none` or with the public key as an HMAC secret is ever accepted.
#![no_main]

use std::collections::HashMap;
use std::future::Future;
use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gatehouse_core::domain::{Email, User, UserId};
use gatehouse_core::tokens::{Authn, Claims, JwtAlgorithm, SigningKey, TokenError, TokenService, TokenType};
use gatehouse_core::Settings;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

const NOW: i64 = 1_800_000_000;
const LEEWAY: i64 = 10;
const ISSUER: &str = "gatehouse";
const HS_SECRET: &str = "fuzz-secret-fuzz-secret-fuzz-secret!";
const HS_OTHER: &str = "another-secret-another-secret-another";
const USER_ID: &str = "01890a5d-ac96-774b-bcce-b302099a8057";
// Throwaway Ed25519 keys made for this target only (`openssl genpkey -algorithm ed25519`).
const PEM_CURRENT: &str =
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPPexUVbXXX2Kx2tCAMyBbjIFUZwG4VR9GKWPKsRRJ2w\n-----END PRIVATE KEY-----\n";
const PEM_PREVIOUS: &str =
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPSHtVclrGF25QKoabi8FI/AV+q4weCoUFGE8Q7tsiCQ\n-----END PRIVATE KEY-----\n";
const PEM_STRANGER: &str =
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIIkwfqkgog4oxLDpQQ1f2jRqAGaKMy+u/Z4kGNalUfMm\n-----END PRIVATE KEY-----\n";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Svc {
    Hs,
    Ed,
}

const TYPES: [TokenType; 2] = [TokenType::Access, TokenType::Refresh];

struct Issued {
    svc: Svc,
    ty: TokenType,
    token: String,
}

struct Fixture {
    hs: TokenService,
    ed: TokenService,
    /// Tokens the two services must accept (the EdDSA one also those of its retired key).
    issued: Vec<Issued>,
    /// The same tokens signed by keys neither service trusts.
    foreign: Vec<String>,
    current_kid: String,
    previous_kid: String,
    /// The current public key (base64url), the secret of an algorithm-confusion attack.
    current_x: String,
}

/// The token service's futures finish at their first poll here: its keys are given inline, and
/// nothing else it does waits.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the token service waited for something"),
    }
}

fn verify(t: &TokenService, token: &str, ty: TokenType) -> std::result::Result<Claims, TokenError> {
    now(t.verify(token, ty, NOW))
}

/// The `kid=x` entry of an EdDSA key, under its derived kid.
fn entry(pem: &str) -> String {
    SigningKey::parse(JwtAlgorithm::EdDsa, pem).expect("a key").public().expect("EdDSA").pair()
}

/// A service over `key`; `public` lists the EdDSA keys it trusts (default: the key's own).
fn service(alg: &str, key: &str, public: Option<&str>) -> TokenService {
    let mut vars: HashMap<String, String> = [
        ("EMAIL_FROM", "no-reply@example.com"),
        ("JWT_ALGORITHM", alg),
        ("JWT_SIGNING_KEY", key),
        ("JWT_LEEWAY", "10"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if let Some(p) = public {
        vars.insert("JWT_PUBLIC_KEYS".into(), p.into());
    }
    let settings = Settings::from_map(&vars).expect("fuzz settings");
    TokenService::new(&settings, settings.inline_key().expect("an inline key"))
}

fn user() -> User {
    User {
        id: UserId::parse(USER_ID).expect("a canonical UUID"),
        email: Email::parse("ada@example.com").expect("an address"),
        username: None,
        first_name: String::new(),
        last_name: String::new(),
        password_hash: String::new(),
        is_active: true,
        is_staff: false,
        is_superuser: false,
        groups: vec!["editors".into()],
        group_ids: Default::default(),
        date_joined: NOW,
        last_login: None,
        tokens_valid_after: NOW,
        version: 1,
        expires_at: None,
        deactivated_at: None,
        user_permissions: Default::default(),
        mfa_enabled: false,
        language: None,
    }
}

fn issue(t: &TokenService, ty: TokenType) -> String {
    let u = user();
    let authn = Authn::new(NOW - 5, &["pwd"]);
    match ty {
        TokenType::Access => now(t.issue_access(&u, "sid-1", "jti-a".into(), NOW - 5, &authn)),
        TokenType::Refresh => now(t.issue_refresh(&u, "sid-1", "jti-r".into(), NOW - 5, NOW + 1000, &authn)),
    }
    .expect("signing")
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let previous = service("EdDSA", PEM_PREVIOUS, None);
    let (current_entry, previous_entry) = (entry(PEM_CURRENT), entry(PEM_PREVIOUS));
    let kid = |e: &str| e.split_once('=').expect("kid=x").0.to_owned();
    let hs = service("HS256", HS_SECRET, None);
    let ed = service("EdDSA", PEM_CURRENT, Some(&format!("{current_entry},{previous_entry}")));
    let mut issued = Vec::new();
    for ty in TYPES {
        issued.push(Issued { svc: Svc::Hs, ty, token: issue(&hs, ty) });
        issued.push(Issued { svc: Svc::Ed, ty, token: issue(&ed, ty) });
        issued.push(Issued { svc: Svc::Ed, ty, token: issue(&previous, ty) });
    }
    let strangers = [service("EdDSA", PEM_STRANGER, None), service("HS256", HS_OTHER, None)];
    let foreign = strangers.iter().flat_map(|s| TYPES.map(|ty| issue(s, ty))).collect();
    Fixture {
        current_kid: kid(&current_entry),
        current_x: current_entry.split_once('=').expect("kid=x").1.to_owned(),
        hs,
        ed,
        issued,
        foreign,
        previous_kid: kid(&previous_entry),
    }
});

/// What an accepted token's claims must satisfy, whatever its origin.
fn check_claims(c: &Claims, ty: TokenType) {
    assert_eq!(c.token_type, ty.as_str());
    assert_eq!(c.iss, ISSUER);
    assert_eq!(c.aud, ISSUER);
    assert_eq!(c.sub, c.user_id);
    assert!(i128::from(c.exp) + i128::from(LEEWAY) > i128::from(NOW), "expired: {c:?}");
    assert!(c.iat <= NOW + LEEWAY, "issued in the future: {c:?}");
    assert!(c.nbf.is_none_or(|nbf| nbf <= NOW + LEEWAY), "not yet valid: {c:?}");
}

fn services(fx: &Fixture) -> [(Svc, &TokenService); 2] {
    [(Svc::Hs, &fx.hs), (Svc::Ed, &fx.ed)]
}

/// Untrusted text: accepted only if it is exactly a token issued for that service and type.
fn check_untrusted(fx: &Fixture, token: &str) {
    for (svc, t) in services(fx) {
        for ty in TYPES {
            if let Ok(c) = verify(t, token, ty) {
                let known = fx.issued.iter().any(|i| i.svc == svc && i.ty == ty && i.token == token);
                assert!(known, "{svc:?} accepted a {ty:?} token it never issued: {token}");
                check_claims(&c, ty);
            }
        }
    }
}

fn all_tokens(fx: &Fixture) -> Vec<&str> {
    fx.issued.iter().map(|i| i.token.as_str()).chain(fx.foreign.iter().map(String::as_str)).collect()
}

const BYTES: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \0\xff";

fn mutate(u: &mut Unstructured, base: &str) -> Result<String> {
    let mut b = base.as_bytes().to_vec();
    for _ in 0..u.int_in_range(1..=6)? {
        let at = u.choose_index(b.len() + 1)?;
        match u.int_in_range(0..=5)? {
            0 if at < b.len() => b[at] = *u.choose(BYTES)?,
            1 if at < b.len() => b[at] ^= 1 << u.int_in_range(0..=7)?,
            2 => b.insert(at, *u.choose(BYTES)?),
            3 if at < b.len() => {
                b.remove(at);
            }
            4 => b.truncate(at),
            _ => {
                // A segment's base64 re-padded, the way lenient decoders accept it.
                b.extend_from_slice(b"==");
            }
        }
    }
    Ok(String::from_utf8_lossy(&b).into_owned())
}

fn splice(u: &mut Unstructured, tokens: &[&str]) -> Result<String> {
    let mut parts = Vec::new();
    for i in 0..3 {
        let from: Vec<&str> = u.choose(tokens)?.split('.').collect();
        parts.push(from.get(i).copied().unwrap_or(""));
    }
    Ok(parts.join("."))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Signer {
    Hs,
    HsOther,
    EdCurrent,
    EdPrevious,
    EdStranger,
    /// HS256 keyed with the EdDSA public key (algorithm confusion).
    HsWithPublicKey,
    /// No signature at all.
    Unsigned,
}

const SIGNERS: [Signer; 7] = [
    Signer::Hs,
    Signer::HsOther,
    Signer::EdCurrent,
    Signer::EdPrevious,
    Signer::EdStranger,
    Signer::HsWithPublicKey,
    Signer::Unsigned,
];

fn timestamp(u: &mut Unstructured) -> Result<i64> {
    Ok(match u.int_in_range(0..=2)? {
        0 => NOW + i64::from(u.arbitrary::<i16>()?),
        1 => u.arbitrary::<i64>()?,
        _ => *u.choose(&[i64::MAX, i64::MAX - LEEWAY, i64::MIN, 0, -1, NOW + LEEWAY, NOW - LEEWAY])?,
    })
}

/// A claim value: the right one, a wrong one, a wrong type, or absent (`None`).
fn pick(u: &mut Unstructured, right: Value, wrong: Value) -> Result<Option<Value>> {
    Ok(match u.int_in_range(0..=4)? {
        0 | 1 => Some(right),
        2 => Some(wrong),
        3 => Some(u.choose(&[json!(7), json!(null), json!(["x"]), json!({}), json!(true), json!(1.5)])?.clone()),
        _ => None,
    })
}

struct Forged {
    alg: &'static str,
    typ: Option<&'static str>,
    kid: Option<String>,
    signer: Signer,
    claims: Map<String, Value>,
    token: String,
}

fn forge(u: &mut Unstructured, fx: &Fixture) -> Result<Forged> {
    let alg = *u.choose(&["HS256", "EdDSA", "none", "HS512", "RS256", "ES256", "hs256", "EDDSA"])?;
    let typ = *u.choose(&[Some("at+jwt"), Some("rt+jwt"), Some("JWT"), Some("AT+JWT"), None])?;
    let kids = [None, Some(fx.current_kid.as_str()), Some(fx.previous_kid.as_str()), Some("k1"), Some("")];
    let kid = u.choose(&kids)?;
    let kid = kid.map(str::to_owned);
    let signer = *u.choose(&SIGNERS)?;
    let mut header = Map::new();
    header.insert("alg".into(), json!(alg));
    if let Some(t) = typ {
        header.insert("typ".into(), json!(t));
    }
    if let Some(k) = &kid {
        header.insert("kid".into(), json!(k));
    }
    let mut claims = Map::new();
    let mut put = |name: &str, v: Option<Value>| {
        if let Some(v) = v {
            claims.insert(name.to_owned(), v);
        }
    };
    let token_type = if u.arbitrary()? { "access" } else { "refresh" };
    put("token_type", pick(u, json!(token_type), json!("sliding"))?);
    let (exp, iat, nbf) = (timestamp(u)?, timestamp(u)?, timestamp(u)?);
    put("exp", pick(u, json!(exp), json!((NOW + 300).to_string()))?);
    put("iat", pick(u, json!(iat), json!("now"))?);
    if u.arbitrary()? {
        put("nbf", pick(u, json!(nbf), json!("later"))?);
    }
    put("jti", pick(u, json!("jti-x"), json!(""))?);
    put("user_id", pick(u, json!(USER_ID), json!("someone-else"))?);
    put("sub", pick(u, json!(USER_ID), json!("someone-else"))?);
    put("iss", pick(u, json!(ISSUER), json!("evil"))?);
    put("aud", pick(u, json!(ISSUER), json!([ISSUER, "evil"]))?);
    put("sid", pick(u, json!("sid-1"), json!(""))?);
    if u.arbitrary()? {
        put("is_staff", pick(u, json!(true), json!("yes"))?);
    }
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string())
    );
    let (key, algorithm) = match signer {
        Signer::Hs => (EncodingKey::from_secret(HS_SECRET.as_bytes()), Algorithm::HS256),
        Signer::HsOther => (EncodingKey::from_secret(HS_OTHER.as_bytes()), Algorithm::HS256),
        Signer::HsWithPublicKey => (EncodingKey::from_secret(fx.current_x.as_bytes()), Algorithm::HS256),
        Signer::EdCurrent => (EncodingKey::from_ed_pem(PEM_CURRENT.as_bytes()).expect("pem"), Algorithm::EdDSA),
        Signer::EdPrevious => (EncodingKey::from_ed_pem(PEM_PREVIOUS.as_bytes()).expect("pem"), Algorithm::EdDSA),
        Signer::EdStranger => (EncodingKey::from_ed_pem(PEM_STRANGER.as_bytes()).expect("pem"), Algorithm::EdDSA),
        Signer::Unsigned => (EncodingKey::from_secret(b""), Algorithm::HS256),
    };
    let signature = match signer {
        Signer::Unsigned => String::new(),
        _ => jsonwebtoken::crypto::sign(message.as_bytes(), &key, algorithm).expect("signing"),
    };
    Ok(Forged { alg, typ, kid, signer, claims, token: format!("{message}.{signature}") })
}

/// The model: should `svc` accept the forged token as `ty`?
fn model(fx: &Fixture, svc: Svc, ty: TokenType, f: &Forged) -> bool {
    let key_ok = match svc {
        Svc::Hs => f.alg == "HS256" && f.signer == Signer::Hs,
        Svc::Ed => {
            f.alg == "EdDSA"
                && ((f.signer == Signer::EdCurrent && f.kid.as_deref() == Some(fx.current_kid.as_str()))
                    || (f.signer == Signer::EdPrevious && f.kid.as_deref() == Some(fx.previous_kid.as_str())))
        }
    };
    let typ_ok = f.typ == Some(if ty == TokenType::Access { "at+jwt" } else { "rt+jwt" });
    let c = &f.claims;
    let text = |name: &str| c.get(name).and_then(Value::as_str);
    let int = |name: &str| c.get(name).and_then(Value::as_i64);
    let lim = i128::from(NOW) + i128::from(LEEWAY);
    let claims_ok = text("token_type") == Some(ty.as_str())
        && int("exp").is_some_and(|exp| exp >= 0 && i128::from(exp) + i128::from(LEEWAY) > i128::from(NOW))
        && int("iat").is_some_and(|iat| i128::from(iat) <= lim)
        // Optional claims: absent or null both mean "not there".
        && c.get("nbf").is_none_or(|v| v.is_null() || v.as_i64().is_some_and(|nbf| i128::from(nbf) <= lim))
        && text("jti").is_some()
        && text("sid").is_some()
        && text("user_id").is_some()
        && text("sub") == text("user_id")
        && text("iss") == Some(ISSUER)
        && text("aud") == Some(ISSUER)
        && c.get("is_staff").is_none_or(|v| v.is_null() || v.is_boolean());
    key_ok && typ_ok && claims_ok
}

fuzz_target!(|data: &[u8]| {
    let fx = &*FIXTURE;
    let mut u = Unstructured::new(data);
    let Ok(mode) = u.int_in_range(0..=3u8) else {
        return;
    };
    let tokens = all_tokens(fx);
    match mode {
        0 => check_untrusted(fx, &String::from_utf8_lossy(u.take_rest())),
        1 => {
            let Ok(base) = u.choose(&tokens) else { return };
            if let Ok(m) = mutate(&mut u, base) {
                check_untrusted(fx, &m);
            }
        }
        2 => {
            if let Ok(s) = splice(&mut u, &tokens) {
                check_untrusted(fx, &s);
            }
        }
        _ => {
            let Ok(f) = forge(&mut u, fx) else { return };
            for (svc, t) in services(fx) {
                for ty in TYPES {
                    let got = verify(t, &f.token, ty);
                    let want = model(fx, svc, ty, &f);
                    assert_eq!(
                        got.is_ok(),
                        want,
                        "{svc:?} as {ty:?}: alg {} typ {:?} kid {:?} signer {:?} claims {} -> {got:?}",
                        f.alg,
                        f.typ,
                        f.kid,
                        f.signer,
                        Value::Object(f.claims.clone())
                    );
                    if let Ok(c) = got {
                        check_claims(&c, ty);
                    }
                }
            }
        }
    }
});
