//! The software passkey of the tests (`common::passkey`) against webauthn-rs itself, the relying
//! party the service uses: registration, sign-in with an allow list and discoverable, the bytes
//! it writes (CBOR order, flags, COSE key, clientDataJSON), the refusals of the relying party for
//! each tweak, and the browser's own refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::passkey::{b64u, unb64u, Refusal, SoftPasskey, Tweak, FLAG_AT, FLAG_BE, FLAG_BS, FLAG_UP, FLAG_UV};
use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
use serde_json::{json, Value};
use webauthn_rs::prelude::{
    Passkey, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

const ORIGIN: &str = "https://app.example.com";
const RP_ID: &str = "app.example.com";

/// A tweak and what the relying party must answer to it.
type Expected = fn(&WebauthnError) -> bool;

fn relying_party() -> Webauthn {
    let origin = Url::parse(ORIGIN).unwrap();
    WebauthnBuilder::new(RP_ID, &origin).unwrap().rp_name("Gatehouse").build().unwrap()
}

fn options<T: serde::Serialize>(o: &T) -> Value {
    serde_json::to_value(o).unwrap()
}

fn registration(v: Value) -> RegisterPublicKeyCredential {
    serde_json::from_value(v).unwrap()
}

fn assertion(v: Value) -> PublicKeyCredential {
    serde_json::from_value(v).unwrap()
}

/// A passkey registered for a new user: (its handle, the server's record).
fn registered(rp: &Webauthn, pk: &mut SoftPasskey, name: &str) -> (Uuid, Passkey) {
    let user = Uuid::new_v4();
    let (ccr, state) = rp.start_passkey_registration(user, name, name, None).unwrap();
    let credential = pk.create(&options(&ccr), ORIGIN);
    (user, rp.finish_passkey_registration(&registration(credential), &state).unwrap())
}

fn field(v: &Value, path: &str) -> Vec<u8> {
    unb64u(v["response"][path].as_str().unwrap())
}

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref().to_vec()
}

#[test]
fn registers_and_signs_in_with_an_allow_list() {
    let rp = relying_party();
    let mut pk = SoftPasskey::new();
    let (_, mut passkey) = registered(&rp, &mut pk, "ada@example.com");
    assert_eq!(pk.credential_ids(), vec![b64u(passkey.cred_id().as_ref())]);

    for _ in 0..2 {
        let (rcr, state) = rp.start_passkey_authentication(std::slice::from_ref(&passkey)).unwrap();
        let result = rp.finish_passkey_authentication(&assertion(pk.get(&options(&rcr), ORIGIN)), &state).unwrap();
        assert!(result.user_verified());
        assert!(result.backup_eligible() && result.backup_state());
        assert_eq!(result.counter(), 0, "synced passkeys keep the counter at 0");
        assert_eq!(result.cred_id(), passkey.cred_id());
        passkey.update_credential(&result);
    }
}

#[test]
fn signs_in_discoverably() {
    let rp = relying_party();
    let mut pk = SoftPasskey::new();
    let (user, passkey) = registered(&rp, &mut pk, "ada@example.com");

    let (rcr, state) = rp.start_discoverable_authentication().unwrap();
    let rcr = options(&rcr);
    assert!(rcr["publicKey"].get("allowCredentials").is_none_or(|a| a.as_array().unwrap().is_empty()));
    let response = assertion(pk.get(&rcr, ORIGIN));
    let (handle, cred_id) = rp.identify_discoverable_authentication(&response).unwrap();
    assert_eq!(handle, user);
    assert_eq!(cred_id, passkey.cred_id().as_slice());
    let result = rp.finish_discoverable_authentication_v2(&response, state, &passkey).unwrap();
    assert!(result.user_verified());
}

#[test]
fn picks_the_listed_credential_or_the_newest() {
    let rp = relying_party();
    let mut pk = SoftPasskey::new();
    let (ada, ada_key) = registered(&rp, &mut pk, "ada@example.com");
    let (bob, bob_key) = registered(&rp, &mut pk, "bob@example.com");
    assert_eq!(
        pk.credential_ids(),
        vec![b64u(ada_key.cred_id().as_ref()), b64u(bob_key.cred_id().as_ref())],
        "newest last"
    );

    // The allow list names Ada's, though Bob's is newer.
    let (rcr, state) = rp.start_passkey_authentication(std::slice::from_ref(&ada_key)).unwrap();
    let response = pk.get(&options(&rcr), ORIGIN);
    assert_eq!(response["id"], b64u(ada_key.cred_id().as_ref()));
    assert_eq!(unb64u(response["response"]["userHandle"].as_str().unwrap()), ada.as_bytes());
    rp.finish_passkey_authentication(&assertion(response), &state).unwrap();

    // Discoverable: the newest, Bob's.
    let (rcr, state) = rp.start_discoverable_authentication().unwrap();
    let response = assertion(pk.get(&options(&rcr), ORIGIN));
    assert_eq!(rp.identify_discoverable_authentication(&response).unwrap().0, bob);
    rp.finish_discoverable_authentication_v2(&response, state, &bob_key).unwrap();
}

#[test]
fn writes_what_authenticators_and_browsers_write() {
    let rp = relying_party();
    let mut pk = SoftPasskey::new();
    let user = Uuid::new_v4();
    let (ccr, _) = rp.start_passkey_registration(user, "ada", "Ada", None).unwrap();
    let ccr = options(&ccr);
    // The inner object works as well as the wrapper.
    let created = pk.create(&ccr["publicKey"], ORIGIN);
    let id = pk.credential_ids()[0].clone();
    assert_eq!(created["id"], id);
    assert_eq!(created["rawId"], id);
    assert_eq!(unb64u(&id).len(), 32);
    assert_eq!(created["type"], "public-key");
    assert_eq!(created["response"]["publicKeyAlgorithm"], -7);
    assert_eq!(created["response"]["transports"], json!(["internal"]));
    assert_eq!(created["clientExtensionResults"], json!({"credProps": {"rk": true}}));
    assert_eq!(created["authenticatorAttachment"], "platform");

    let client_data = String::from_utf8(field(&created, "clientDataJSON")).unwrap();
    let challenge = ccr["publicKey"]["challenge"].as_str().unwrap();
    assert_eq!(
        client_data,
        format!(r#"{{"type":"webauthn.create","challenge":"{challenge}","origin":"{ORIGIN}","crossOrigin":false}}"#)
    );

    // authData: rpIdHash, flags UP|UV|BE|BS|AT, counter 0, AAGUID zeros, id, COSE key.
    let auth_data = field(&created, "authenticatorData");
    assert_eq!(auth_data[..32], sha256(RP_ID.as_bytes())[..]);
    assert_eq!(auth_data[32], FLAG_UP | FLAG_UV | FLAG_BE | FLAG_BS | FLAG_AT);
    assert_eq!(auth_data[33..37], [0, 0, 0, 0]);
    assert_eq!(auth_data[37..53], [0u8; 16]);
    assert_eq!(auth_data[53..55], [0, 32]);
    assert_eq!(auth_data[55..87], unb64u(&id)[..]);
    let cose = &auth_data[87..];
    assert_eq!(cose.len(), 77);
    // {1: 2, 3: -7, -1: 1, -2: x, -3: y}, canonical order.
    assert_eq!(cose[..10], [0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20]);
    assert_eq!(cose[42..45], [0x22, 0x58, 0x20]);

    // {"fmt": "none", "attStmt": {}, "authData": ...}, canonical order.
    let att = field(&created, "attestationObject");
    let mut head = vec![0xa3, 0x63];
    head.extend_from_slice(b"fmt");
    head.push(0x64);
    head.extend_from_slice(b"none");
    head.push(0x67);
    head.extend_from_slice(b"attStmt");
    head.push(0xa0);
    head.push(0x68);
    head.extend_from_slice(b"authData");
    head.extend_from_slice(&[0x58, 164]);
    assert_eq!(att[..head.len()], head[..]);
    assert_eq!(att[head.len()..], auth_data[..]);

    // publicKey (SubjectPublicKeyInfo) holds the COSE key's point.
    let spki = field(&created, "publicKey");
    assert_eq!(spki.len(), 91);
    assert_eq!(spki[26], 0x04);
    assert_eq!(spki[27..59], cose[10..42]);
    assert_eq!(spki[59..91], cose[45..77]);

    // The assertion: flags without AT, the signature over authData || SHA-256(clientDataJSON).
    let (rcr, _) = rp.start_discoverable_authentication().unwrap();
    let rcr = options(&rcr);
    let got = pk.get(&rcr, ORIGIN);
    let auth_data = field(&got, "authenticatorData");
    assert_eq!(auth_data.len(), 37);
    assert_eq!(auth_data[32], FLAG_UP | FLAG_UV | FLAG_BE | FLAG_BS);
    let client_data = field(&got, "clientDataJSON");
    let challenge = rcr["publicKey"]["challenge"].as_str().unwrap();
    assert_eq!(
        String::from_utf8(client_data.clone()).unwrap(),
        format!(r#"{{"type":"webauthn.get","challenge":"{challenge}","origin":"{ORIGIN}","crossOrigin":false}}"#)
    );
    assert_eq!(got["response"]["userHandle"], b64u(user.as_bytes()));
    let signed = [auth_data, sha256(&client_data)].concat();
    let key = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &spki[26..]);
    key.verify(&signed, &field(&got, "signature")).unwrap();
}

#[test]
fn the_relying_party_refuses_tweaked_registrations() {
    let rp = relying_party();
    let cases: Vec<(Tweak, Expected)> = vec![
        (Tweak { origin: Some("https://evil.example.com".into()), ..Tweak::default() }, |e| {
            matches!(e, WebauthnError::InvalidRPOrigin)
        }),
        (Tweak { challenge: Some(b64u(&[7u8; 32])), ..Tweak::default() }, |e| {
            matches!(e, WebauthnError::MismatchedChallenge)
        }),
        (Tweak { uv: Some(false), ..Tweak::default() }, |e| matches!(e, WebauthnError::UserNotVerified)),
        (Tweak { client_data_type: Some("webauthn.get".into()), ..Tweak::default() }, |e| {
            matches!(e, WebauthnError::InvalidClientDataType)
        }),
    ];
    for (tweak, expected) in cases {
        let mut pk = SoftPasskey::new();
        let (ccr, state) = rp.start_passkey_registration(Uuid::new_v4(), "ada", "Ada", None).unwrap();
        let credential = pk.create_with(&options(&ccr), ORIGIN, tweak);
        let err = rp.finish_passkey_registration(&registration(credential), &state).unwrap_err();
        assert!(expected(&err), "{err:?}");
    }
}

#[test]
fn the_relying_party_refuses_tweaked_assertions() {
    let rp = relying_party();
    let mut pk = SoftPasskey::new();
    let (_, passkey) = registered(&rp, &mut pk, "ada@example.com");
    let cases: Vec<(Tweak, Expected)> = vec![
        (Tweak { origin: Some("https://evil.example.com".into()), ..Tweak::default() }, |e| {
            matches!(e, WebauthnError::InvalidRPOrigin)
        }),
        (Tweak { challenge: Some(b64u(&[7u8; 32])), ..Tweak::default() }, |e| {
            matches!(e, WebauthnError::MismatchedChallenge)
        }),
        (Tweak { bad_signature: true, ..Tweak::default() }, |e| matches!(e, WebauthnError::AuthenticationFailure)),
        (Tweak { uv: Some(false), ..Tweak::default() }, |e| matches!(e, WebauthnError::UserNotVerified)),
        (Tweak { client_data_type: Some("webauthn.create".into()), ..Tweak::default() }, |e| {
            matches!(e, WebauthnError::InvalidClientDataType)
        }),
    ];
    for (tweak, expected) in cases {
        let (rcr, state) = rp.start_passkey_authentication(std::slice::from_ref(&passkey)).unwrap();
        let response = assertion(pk.get_with(&options(&rcr), ORIGIN, tweak));
        let err = rp.finish_passkey_authentication(&response, &state).unwrap_err();
        assert!(expected(&err), "{err:?}");
    }
    // Still fine untweaked.
    let (rcr, state) = rp.start_passkey_authentication(std::slice::from_ref(&passkey)).unwrap();
    rp.finish_passkey_authentication(&assertion(pk.get(&options(&rcr), ORIGIN)), &state).unwrap();
}

#[test]
fn user_handle_tweaks() {
    let rp = relying_party();
    let mut pk = SoftPasskey::new();
    registered(&rp, &mut pk, "ada@example.com");
    let (rcr, _) = rp.start_discoverable_authentication().unwrap();
    let rcr = options(&rcr);

    let response = pk.get_with(&rcr, ORIGIN, Tweak { user_handle: Some(None), ..Tweak::default() });
    assert!(response["response"]["userHandle"].is_null());
    let err = rp.identify_discoverable_authentication(&assertion(response)).unwrap_err();
    assert!(matches!(err, WebauthnError::InvalidUserUniqueId), "{err:?}");

    let other = Uuid::new_v4();
    let tweak = Tweak { user_handle: Some(Some(other.as_bytes().to_vec())), ..Tweak::default() };
    let response = assertion(pk.get_with(&rcr, ORIGIN, tweak));
    assert_eq!(rp.identify_discoverable_authentication(&response).unwrap().0, other);
}

#[test]
fn counters() {
    let rp = relying_party();
    let mut pk = SoftPasskey::new();
    pk.increment_counter = true;
    let (_, mut passkey) = registered(&rp, &mut pk, "ada@example.com");

    let sign_in = |pk: &mut SoftPasskey, passkey: &Passkey, tweak: Tweak| {
        let (rcr, state) = rp.start_passkey_authentication(std::slice::from_ref(passkey)).unwrap();
        rp.finish_passkey_authentication(&assertion(pk.get_with(&options(&rcr), ORIGIN, tweak)), &state)
    };
    // The registration reported 1, the first sign-in 2, the next 3.
    for expected in [2, 3] {
        let result = sign_in(&mut pk, &passkey, Tweak::default()).unwrap();
        assert_eq!(result.counter(), expected);
        passkey.update_credential(&result);
    }
    // Going back (a cloned authenticator): refused, by the stored counter or a one-off report.
    pk.set_counter(1);
    let err = sign_in(&mut pk, &passkey, Tweak::default()).unwrap_err();
    assert!(matches!(err, WebauthnError::CredentialPossibleCompromise), "{err:?}");
    let err = sign_in(&mut pk, &passkey, Tweak { counter: Some(3), ..Tweak::default() }).unwrap_err();
    assert!(matches!(err, WebauthnError::CredentialPossibleCompromise), "{err:?}");
    // Forward again.
    pk.set_counter(9);
    assert_eq!(sign_in(&mut pk, &passkey, Tweak::default()).unwrap().counter(), 10);

    // With the counter fixed, set_counter sets what every signature reports.
    pk.increment_counter = false;
    pk.set_counter(20);
    for _ in 0..2 {
        let (rcr, _) = rp.start_passkey_authentication(std::slice::from_ref(&passkey)).unwrap();
        let auth_data = field(&pk.get(&options(&rcr), ORIGIN), "authenticatorData");
        assert_eq!(auth_data[33..37], 20u32.to_be_bytes());
    }
}

#[test]
fn the_browser_refuses() {
    let rp = relying_party();
    let mut pk = SoftPasskey::new();
    let (user, passkey) = registered(&rp, &mut pk, "ada@example.com");

    // A credential in excludeCredentials is already held.
    let (ccr, _) = rp.start_passkey_registration(user, "ada", "Ada", Some(vec![passkey.cred_id().clone()])).unwrap();
    let ccr = options(&ccr);
    assert_eq!(pk.try_create_with(&ccr, ORIGIN, Tweak::default()), Err(Refusal::InvalidState));
    // ... but another authenticator registers fine.
    SoftPasskey::new().create(&ccr, ORIGIN);

    // No ES256 in pubKeyCredParams (an empty list means the defaults, ES256 among them).
    let (ccr, _) = rp.start_passkey_registration(Uuid::new_v4(), "bob", "Bob", None).unwrap();
    let mut ccr = options(&ccr);
    ccr["publicKey"]["pubKeyCredParams"] = json!([{"type": "public-key", "alg": -257}]);
    assert_eq!(pk.try_create_with(&ccr, ORIGIN, Tweak::default()), Err(Refusal::NotSupported));
    ccr["publicKey"]["pubKeyCredParams"] = json!([]);
    SoftPasskey::new().create(&ccr, ORIGIN);

    // The RP ID is not the origin's host nor a parent of it; a subdomain's page may use it.
    let (ccr, _) = rp.start_passkey_registration(Uuid::new_v4(), "cy", "Cy", None).unwrap();
    let ccr = options(&ccr);
    for origin in ["https://example.com", "https://evilapp.example.com", "https://app.example.com.evil.org"] {
        assert_eq!(
            SoftPasskey::new().try_create_with(&ccr, origin, Tweak::default()),
            Err(Refusal::Security),
            "{origin}"
        );
    }
    SoftPasskey::new().create(&ccr, "https://login.app.example.com");
    let (rcr, _) = rp.start_discoverable_authentication().unwrap();
    let rcr = options(&rcr);
    assert_eq!(pk.try_get_with(&rcr, "https://example.org", Tweak::default()), Err(Refusal::Security));

    // Nothing held fits: an allow list of unknown credentials, or no passkey for the RP at all.
    let (_, stranger) = registered(&rp, &mut SoftPasskey::new(), "dee@example.com");
    let (rcr_other, _) = rp.start_passkey_authentication(&[stranger]).unwrap();
    assert_eq!(pk.try_get_with(&options(&rcr_other), ORIGIN, Tweak::default()), Err(Refusal::NotAllowed));
    assert_eq!(SoftPasskey::new().try_get_with(&rcr, ORIGIN, Tweak::default()), Err(Refusal::NotAllowed));
}

#[test]
#[should_panic(expected = "the browser refused create(): InvalidState")]
fn create_panics_on_a_refusal() {
    let rp = relying_party();
    let mut pk = SoftPasskey::new();
    let (user, passkey) = registered(&rp, &mut pk, "ada@example.com");
    let (ccr, _) = rp.start_passkey_registration(user, "ada", "Ada", Some(vec![passkey.cred_id().clone()])).unwrap();
    pk.create(&options(&ccr), ORIGIN);
}

#[test]
#[should_panic(expected = "the browser refused get(): NotAllowed")]
fn get_panics_on_a_refusal() {
    let rp = relying_party();
    let (rcr, _) = rp.start_discoverable_authentication().unwrap();
    SoftPasskey::new().get(&options(&rcr), ORIGIN);
}

#[test]
fn a_new_passkey_for_the_same_user_replaces_the_old_one() {
    let rp = relying_party();
    let mut pk = SoftPasskey::new();
    let user = Uuid::new_v4();
    let (ccr, _) = rp.start_passkey_registration(user, "ada", "Ada", None).unwrap();
    pk.create(&options(&ccr), ORIGIN);
    let first = pk.credential_ids();
    let (ccr, state) = rp.start_passkey_registration(user, "ada", "Ada", None).unwrap();
    let passkey = rp.finish_passkey_registration(&registration(pk.create(&options(&ccr), ORIGIN)), &state).unwrap();
    let ids = pk.credential_ids();
    assert_eq!(ids.len(), 1);
    assert_ne!(ids, first);
    assert_eq!(ids[0], b64u(passkey.cred_id().as_ref()));
}
