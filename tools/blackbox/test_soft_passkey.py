"""Unit tests of soft_passkey.py, the software passkey the black-box tests sign in with.

No server needed: CBOR bytes against hand-computed encodings (RFC 8949 appendix A), the layout of
authenticator data and attestation objects, signatures checked with the registered public key,
and the client-side refusals (excludeCredentials, algorithms, RP ID, no fitting credential).
"""

import hashlib
import json
import struct

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from soft_passkey import (
    ES256,
    FLAG_AT,
    FLAG_BE,
    FLAG_BS,
    FLAG_UP,
    FLAG_UV,
    InvalidStateError,
    NotAllowedError,
    NotSupportedError,
    SecurityError,
    SoftPasskey,
    b64u,
    cbor_decode,
    cbor_encode,
    cose_es256_key,
    parse_authenticator_data,
    unb64u,
    verify_assertion_signature,
)

ORIGIN = "http://localhost:3000"
RP_ID = "localhost"
RP_HASH = hashlib.sha256(b"localhost").digest()
CHALLENGE = bytes(range(32))
USER_ID = bytes.fromhex("0123456789abcdef0123456789abcdef")


def creation_options(**changes):
    """Creation options as webauthn-rs 0.6 sends them (CreationChallengeResponse)."""
    public_key = {
        "rp": {"name": "Gatehouse", "id": RP_ID},
        "user": {"id": b64u(USER_ID), "name": "alice@example.com", "displayName": "Alice"},
        "challenge": b64u(CHALLENGE),
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
        "timeout": 300000,
        "authenticatorSelection": {"residentKey": "discouraged", "requireResidentKey": False,
                                   "userVerification": "required"},
        "attestation": "none",
        "extensions": {"credentialProtectionPolicy": "userVerificationRequired",
                       "enforceCredentialProtectionPolicy": False, "uvm": True, "credProps": True},
    }
    public_key.update(changes)
    return {"publicKey": public_key}


def request_options(allow=(), **changes):
    public_key = {
        "challenge": b64u(b"\x07" * 32),
        "timeout": 300000,
        "rpId": RP_ID,
        "allowCredentials": [{"type": "public-key", "id": i} for i in allow],
        "userVerification": "required",
    }
    public_key.update(changes)
    return {"publicKey": public_key, "mediation": None}


def decode_registration(reg):
    att = cbor_decode(unb64u(reg["response"]["attestationObject"]))
    return att, parse_authenticator_data(att["authData"])


# --- base64url -----------------------------------------------------------------------------------


def test_b64u_is_urlsafe_without_padding():
    assert b64u(b"\xfb\xff") == "-_8"
    assert b64u(b"") == ""
    assert unb64u("-_8") == b"\xfb\xff"
    assert unb64u("-_8=") == b"\xfb\xff"
    for n in range(6):
        data = bytes(range(250, 250 + n))
        assert "=" not in b64u(data)
        assert unb64u(b64u(data)) == data


# --- CBOR ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, hex_",
    [
        (0, "00"),
        (1, "01"),
        (10, "0a"),
        (23, "17"),
        (24, "1818"),
        (25, "1819"),
        (100, "1864"),
        (255, "18ff"),
        (256, "190100"),
        (1000, "1903e8"),
        (65535, "19ffff"),
        (65536, "1a00010000"),
        (1000000, "1a000f4240"),
        (4294967296, "1b0000000100000000"),
        (1000000000000, "1b000000e8d4a51000"),
        (18446744073709551615, "1bffffffffffffffff"),
        (-1, "20"),
        (-7, "26"),
        (-10, "29"),
        (-24, "37"),
        (-25, "3818"),
        (-100, "3863"),
        (-257, "390100"),
        (-1000, "3903e7"),
        (-18446744073709551616, "3bffffffffffffffff"),
        (b"", "40"),
        (b"\x01\x02\x03\x04", "4401020304"),
        ("", "60"),
        ("a", "6161"),
        ("IETF", "6449455446"),
        ("\"\\", "62225c"),
        ("\u00fc", "62c3bc"),
        ("\u6c34", "63e6b0b4"),
        ([], "80"),
        ([1, 2, 3], "83010203"),
        ([1, [2, 3], [4, 5]], "8301820203820405"),
        (list(range(1, 26)), "98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
        ({}, "a0"),
        ({1: 2, 3: 4}, "a201020304"),
        ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
        (["a", {"b": "c"}], "826161a161626163"),
        ({"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"},
         "a56161614161626142616361436164614461656145"),
        (False, "f4"),
        (True, "f5"),
        (None, "f6"),
    ],
)
def test_cbor_encodes_rfc8949_examples(value, hex_):
    assert cbor_encode(value).hex() == hex_
    assert cbor_decode(bytes.fromhex(hex_)) == value


def test_cbor_long_strings_use_longer_heads():
    assert cbor_encode(b"x" * 24)[:2] == bytes.fromhex("5818")
    assert cbor_encode(b"x" * 300)[:3] == bytes.fromhex("59012c")
    assert cbor_encode("y" * 70000)[:5] == bytes.fromhex("7a00011170")
    assert cbor_decode(cbor_encode(b"x" * 300)) == b"x" * 300


def test_cbor_maps_are_ctap2_canonical():
    # Keys sorted by encoded bytes, shorter first: 1 (01), 3 (03), -1 (20), -2 (21), -3 (22).
    assert cbor_encode({-3: 0, -1: 0, 3: 0, -2: 0, 1: 0}).hex() == "a5" "0100" "0300" "2000" "2100" "2200"
    # Text keys: "fmt" (3 bytes) < "attStmt" (7) < "authData" (8).
    encoded = cbor_encode({"authData": b"", "attStmt": {}, "fmt": "none"})
    assert encoded.hex() == (
        "a3"
        "63666d74" "646e6f6e65"  # "fmt": "none"
        "6761747453746d74" "a0"  # "attStmt": {}
        "68617574684461746140"  # "authData": h''
    )


def test_cbor_rejects_what_it_does_not_support():
    with pytest.raises(TypeError):
        cbor_encode(1.5)
    with pytest.raises(ValueError):
        cbor_encode(2**64)
    with pytest.raises(ValueError):
        cbor_decode(bytes.fromhex("0000"))  # trailing byte
    with pytest.raises(ValueError):
        cbor_decode(bytes.fromhex("5f"))  # indefinite length
    with pytest.raises(ValueError):
        cbor_decode(bytes.fromhex("4401"))  # truncated


def test_cose_key_of_es256_public_key():
    key = ec.derive_private_key(1, ec.SECP256R1()).public_key()  # the generator point G
    gx = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    gy = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
    assert cose_es256_key(key).hex() == (
        "a5" "0102" "0326" "2001" "215820" + gx + "225820" + gy
    )


# --- registration ----------------------------------------------------------------------------------


def test_registration_json_shape():
    reg = SoftPasskey().create(creation_options(), ORIGIN)
    assert set(reg) == {"id", "rawId", "type", "response", "clientExtensionResults",
                        "authenticatorAttachment"}
    assert reg["type"] == "public-key"
    assert reg["authenticatorAttachment"] == "platform"
    assert reg["id"] == reg["rawId"] and len(unb64u(reg["rawId"])) == 32
    assert reg["clientExtensionResults"] == {"credProps": {"rk": True}}
    response = reg["response"]
    assert response["transports"] == ["internal"]
    assert response["publicKeyAlgorithm"] == -7
    for name in ("clientDataJSON", "attestationObject", "publicKey", "authenticatorData", "id"):
        value = response.get(name, reg.get(name))
        assert "=" not in value and "+" not in value and "/" not in value
    json.dumps(reg)  # plain JSON


def test_registration_client_data():
    reg = SoftPasskey().create(creation_options(), ORIGIN)
    raw = unb64u(reg["response"]["clientDataJSON"])
    assert raw == (
        b'{"type":"webauthn.create","challenge":"' + b64u(CHALLENGE).encode()
        + b'","origin":"http://localhost:3000","crossOrigin":false}'
    )


def test_registration_authenticator_data_layout():
    reg = SoftPasskey().create(creation_options(), ORIGIN)
    att, parsed = decode_registration(reg)
    assert att["fmt"] == "none" and att["attStmt"] == {}
    auth_data = att["authData"]
    assert unb64u(reg["response"]["authenticatorData"]) == auth_data
    cred_id = unb64u(reg["rawId"])
    assert auth_data[:32] == RP_HASH
    assert auth_data[32] == FLAG_UP | FLAG_UV | FLAG_BE | FLAG_BS | FLAG_AT == 0x5D
    assert auth_data[33:37] == b"\x00\x00\x00\x00"
    assert auth_data[37:53] == bytes(16)  # AAGUID
    assert auth_data[53:55] == b"\x00\x20"
    assert auth_data[55:87] == cred_id
    cose = auth_data[87:]
    assert len(cose) == 77 and cose[:10] == bytes.fromhex("a5" "0102" "0326" "2001" "215820")
    key = cbor_decode(cose)
    assert key[1] == 2 and key[3] == ES256 and key[-1] == 1
    spki = serialization.load_der_public_key(unb64u(reg["response"]["publicKey"]))
    numbers = spki.public_numbers()
    assert key[-2] == numbers.x.to_bytes(32, "big") and key[-3] == numbers.y.to_bytes(32, "big")
    assert parsed["credential_id"] == cred_id and parsed["sign_count"] == 0


def test_registration_flags_and_counter_options():
    reg = SoftPasskey(backup_eligible=False, backup_state=False, uv=False).create(
        creation_options(), ORIGIN
    )
    assert decode_registration(reg)[1]["flags"] == FLAG_UP | FLAG_AT
    reg = SoftPasskey(increment_counter=True).create(creation_options(), ORIGIN)
    assert decode_registration(reg)[1]["sign_count"] == 1


def test_rp_id_defaults_to_origin_host_and_is_checked():
    options = creation_options(rp={"name": "Gatehouse"})
    pk = SoftPasskey()
    reg = pk.create(options, "https://app.example.com")
    assert decode_registration(reg)[1]["rp_id_hash"] == hashlib.sha256(b"app.example.com").digest()
    assert pk.credentials[0].rp_id == "app.example.com"
    # A parent domain is a valid RP ID; another domain, or a mere suffix, is not.
    pk.create(creation_options(rp={"name": "G", "id": "example.com"}), "https://app.example.com")
    with pytest.raises(SecurityError):
        pk.create(creation_options(rp={"name": "G", "id": "other.com"}), "https://app.example.com")
    with pytest.raises(SecurityError):
        pk.create(creation_options(rp={"name": "G", "id": "ample.com"}), "https://example.com")


def test_exclude_list_refusal():
    pk = SoftPasskey()
    reg = pk.create(creation_options(), ORIGIN)
    again = creation_options(excludeCredentials=[{"type": "public-key", "id": reg["rawId"]}])
    with pytest.raises(InvalidStateError):
        pk.create(again, ORIGIN)
    assert len(pk.credentials) == 1
    # Another authenticator does not hold it, and an id held for another RP does not count.
    SoftPasskey().create(again, ORIGIN)
    other_rp = creation_options(rp={"name": "G", "id": "example.com"},
                                excludeCredentials=[{"type": "public-key", "id": reg["rawId"]}])
    pk.create(other_rp, "https://example.com")


def test_refuses_without_es256():
    options = creation_options(pubKeyCredParams=[{"type": "public-key", "alg": -257}])
    with pytest.raises(NotSupportedError):
        SoftPasskey().create(options, ORIGIN)
    SoftPasskey().create(creation_options(pubKeyCredParams=[]), ORIGIN)  # empty: the defaults


def test_registration_overrides():
    reg = SoftPasskey().create(
        json.dumps(creation_options()), ORIGIN, client_origin="https://evil.example",
        challenge="AAAA", client_data_type="webauthn.get", rp_id_hash=bytes(32), uv=False,
    )
    client_data = json.loads(unb64u(reg["response"]["clientDataJSON"]))
    assert client_data == {"type": "webauthn.get", "challenge": "AAAA",
                           "origin": "https://evil.example", "crossOrigin": False}
    parsed = decode_registration(reg)[1]
    assert parsed["rp_id_hash"] == bytes(32) and not parsed["flags"] & FLAG_UV


def test_challenge_is_reencoded_without_padding():
    options = creation_options(challenge=b64u(b"\xff" * 16) + "==")
    reg = SoftPasskey().create(options, ORIGIN)
    assert json.loads(unb64u(reg["response"]["clientDataJSON"]))["challenge"] == b64u(b"\xff" * 16)


# --- sign-in ---------------------------------------------------------------------------------------


def registered(pk=None, user_id=USER_ID):
    pk = pk or SoftPasskey()
    user = {"id": b64u(user_id), "name": "u", "displayName": "U"}
    reg = pk.create(creation_options(user=user), ORIGIN)
    return pk, reg


def test_assertion_json_shape_and_signature():
    pk, reg = registered()
    assertion = pk.get(request_options(allow=[reg["rawId"]]), ORIGIN)
    assert set(assertion) == {"id", "rawId", "type", "response", "clientExtensionResults",
                              "authenticatorAttachment"}
    assert assertion["id"] == assertion["rawId"] == reg["rawId"]
    assert assertion["type"] == "public-key"
    response = assertion["response"]
    assert set(response) == {"clientDataJSON", "authenticatorData", "signature", "userHandle"}
    assert unb64u(response["userHandle"]) == USER_ID
    client_data = unb64u(response["clientDataJSON"])
    assert client_data == (b'{"type":"webauthn.get","challenge":"' + b64u(b"\x07" * 32).encode()
                           + b'","origin":"http://localhost:3000","crossOrigin":false}')
    auth_data = unb64u(response["authenticatorData"])
    assert auth_data == RP_HASH + bytes([FLAG_UP | FLAG_UV | FLAG_BE | FLAG_BS]) + bytes(4)
    signature = unb64u(response["signature"])
    assert signature[0] == 0x30  # DER SEQUENCE
    public_key = unb64u(reg["response"]["publicKey"])
    assert verify_assertion_signature(public_key, auth_data, client_data, signature)
    assert not verify_assertion_signature(public_key, auth_data, client_data + b" ", signature)


def test_tampered_signature_does_not_verify():
    pk, reg = registered()
    a = pk.get(request_options(allow=[reg["rawId"]]), ORIGIN, tamper_signature=True)
    r = a["response"]
    assert not verify_assertion_signature(
        unb64u(reg["response"]["publicKey"]), unb64u(r["authenticatorData"]),
        unb64u(r["clientDataJSON"]), unb64u(r["signature"]),
    )


def test_discoverable_selection():
    pk, first = registered(user_id=b"user-one")
    _, second = registered(pk, user_id=b"user-two")
    # Empty allowCredentials: the most recent discoverable credential, or the one asked for.
    assert pk.get(request_options(), ORIGIN)["rawId"] == second["rawId"]
    chosen = pk.get(request_options(), ORIGIN, user_handle=b"user-one")
    assert chosen["rawId"] == first["rawId"]
    assert unb64u(chosen["response"]["userHandle"]) == b"user-one"
    assert pk.get(request_options(allowCredentials=None), ORIGIN)["rawId"] == second["rawId"]
    # Non-empty allowCredentials: only listed ones.
    assert pk.get(request_options(allow=[first["rawId"]]), ORIGIN)["rawId"] == first["rawId"]
    with pytest.raises(NotAllowedError):
        pk.get(request_options(allow=[b64u(b"unknown")]), ORIGIN)
    with pytest.raises(NotAllowedError):
        pk.get(request_options(), ORIGIN, user_handle=b"nobody")
    with pytest.raises(NotAllowedError):
        pk.get(request_options(rpId="example.com"), "https://example.com")


def test_new_registration_for_same_user_replaces_credential():
    pk, first = registered()
    _, second = registered(pk)
    assert [c.id_b64u for c in pk.credentials] == [second["rawId"]]


def test_rp_id_absent_in_request_is_origin_host():
    pk, _ = registered()
    options = request_options()
    del options["publicKey"]["rpId"]
    assert unb64u(pk.get(options, ORIGIN)["response"]["authenticatorData"])[:32] == RP_HASH


def test_counter_fixed_at_zero_by_default():
    pk, reg = registered()
    for _ in range(3):
        a = pk.get(request_options(), ORIGIN)
        assert parse_authenticator_data(unb64u(a["response"]["authenticatorData"]))["sign_count"] == 0


def test_counter_increments_and_can_be_forced():
    pk, reg = registered(SoftPasskey(increment_counter=True))

    def count(**kw):
        a = pk.get(request_options(), ORIGIN, **kw)
        return parse_authenticator_data(unb64u(a["response"]["authenticatorData"]))["sign_count"]

    assert [count(), count()] == [2, 3]
    assert count(counter=1) == 1  # this assertion only
    assert count() == 4
    pk.set_counter(reg["rawId"], 100)
    assert count() == 101
    pk.set_counter(reg["rawId"], 7, increment=False)
    assert [count(), count()] == [7, 7]


def test_assertion_overrides():
    pk, reg = registered()
    a = pk.get(
        request_options(), ORIGIN, client_origin="http://localhost:3001", challenge="AAAA",
        client_data_type="webauthn.create", rp_id_hash=bytes(32), uv=False, backup_state=False,
        user_handle_in_response=False,
    )
    client_data = json.loads(unb64u(a["response"]["clientDataJSON"]))
    assert client_data["origin"] == "http://localhost:3001"
    assert client_data["challenge"] == "AAAA" and client_data["type"] == "webauthn.create"
    auth_data = unb64u(a["response"]["authenticatorData"])
    assert auth_data[:32] == bytes(32) and auth_data[32] == FLAG_UP | FLAG_BE
    assert a["response"]["userHandle"] is None
    # An explicit credential is used even if not allowed (e.g. an unregistered one).
    stranger = pk.add_credential(RP_ID, b"stranger")
    a = pk.get(request_options(allow=[reg["rawId"]]), ORIGIN, credential=stranger)
    assert a["rawId"] == stranger.id_b64u
    assert struct.unpack(">I", unb64u(a["response"]["authenticatorData"])[33:37]) == (0,)
