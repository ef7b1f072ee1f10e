"""A software passkey: authenticator and WebAuthn client in one, for the black-box tests.

It plays the part of a browser (the client: clientDataJSON, RP ID checks, the JSON forms of
`PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON` and
`toJSON()`) and of a platform authenticator holding synced passkeys (ES256 on P-256, attestation
format "none", AAGUID all zeros, every credential discoverable), so that tests can register and
sign in with passkeys over plain HTTP:

    pk = SoftPasskey()
    _, begin, _ = call("POST", "/.../passkeys/register/begin", token=token)
    credential = pk.create(begin, ORIGIN)            # the server's options JSON, as sent
    call("POST", "/.../passkeys/register/finish", {"credential": credential}, token=token)
    _, begin, _ = call("POST", "/.../passkeys/login/begin", {})
    assertion = pk.get(begin, ORIGIN)                 # empty allowCredentials: discoverable
    call("POST", "/.../passkeys/login/finish", {"credential": assertion, ...})

`create` and `get` take the `publicKey` object of the options (a wrapper `{"publicKey": {...}}`,
as webauthn-rs's `CreationChallengeResponse` / `RequestChallengeResponse` serialise, is unwrapped),
as a dict or JSON text, and return dicts ready for `json.dumps`. Every binary value is base64url
without padding, in and out.

Keyword-only arguments of `create` and `get` change what an honest client and authenticator would
send, for negative tests: `client_origin`, `challenge`, `client_data_type`, `cross_origin`,
`rp_id_hash`, `user_present`, `uv`, `backup_eligible`, `backup_state`, and for `get` also
`counter`, `tamper_signature`, `user_handle_in_response`.

Standard library and `cryptography` only; the CBOR encoder (and a small decoder, used by the tests
and `parse_authenticator_data`) is here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "SoftPasskey",
    "Credential",
    "WebAuthnError",
    "InvalidStateError",
    "NotAllowedError",
    "NotSupportedError",
    "SecurityError",
    "b64u",
    "unb64u",
    "cbor_encode",
    "cbor_decode",
    "cose_es256_key",
    "parse_authenticator_data",
    "verify_assertion_signature",
    "ES256",
    "FLAG_UP",
    "FLAG_UV",
    "FLAG_BE",
    "FLAG_BS",
    "FLAG_AT",
    "FLAG_ED",
]

ES256 = -7  # COSE algorithm: ECDSA w/ SHA-256 on P-256

# Authenticator data flags (WebAuthn Level 3, 6.1).
FLAG_UP = 0x01  # user present
FLAG_UV = 0x04  # user verified
FLAG_BE = 0x08  # backup eligible
FLAG_BS = 0x10  # backup state (backed up)
FLAG_AT = 0x40  # attested credential data included
FLAG_ED = 0x80  # extension data included


# --- base64url ----------------------------------------------------------------------------------


def b64u(data: bytes) -> str:
    """base64url without padding (RFC 4648 section 5), as WebAuthn's JSON forms use."""
    return base64.urlsafe_b64encode(bytes(data)).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    """Decode base64url, with or without padding."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- CBOR (RFC 8949), the subset WebAuthn needs ----------------------------------------------------


def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([(major << 5) | value])
    if value < 0x100:
        return bytes([(major << 5) | 24, value])
    if value < 0x10000:
        return bytes([(major << 5) | 25]) + struct.pack(">H", value)
    if value < 0x100000000:
        return bytes([(major << 5) | 26]) + struct.pack(">I", value)
    if value < 0x10000000000000000:
        return bytes([(major << 5) | 27]) + struct.pack(">Q", value)
    raise ValueError("integer out of CBOR's 64-bit range")


def cbor_encode(obj) -> bytes:
    """Encode ints (incl. negative), bytes, str, list/tuple, dict, bool and None.

    Maps are written in CTAP2 canonical order (keys sorted by their encoded form, shorter first,
    then bytewise), so that e.g. a COSE key is 1, 3, -1, -2, -3 and an attestation object is
    "fmt", "attStmt", "authData", as authenticators write them.
    """
    if obj is True:
        return b"\xf5"
    if obj is False:
        return b"\xf4"
    if obj is None:
        return b"\xf6"
    if isinstance(obj, int):
        return _cbor_head(0, obj) if obj >= 0 else _cbor_head(1, -1 - obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        obj = bytes(obj)
        return _cbor_head(2, len(obj)) + obj
    if isinstance(obj, str):
        raw = obj.encode("utf-8")
        return _cbor_head(3, len(raw)) + raw
    if isinstance(obj, (list, tuple)):
        return _cbor_head(4, len(obj)) + b"".join(cbor_encode(v) for v in obj)
    if isinstance(obj, dict):
        items = sorted(
            ((cbor_encode(k), cbor_encode(v)) for k, v in obj.items()),
            key=lambda kv: (len(kv[0]), kv[0]),
        )
        return _cbor_head(5, len(items)) + b"".join(k + v for k, v in items)
    raise TypeError(f"cannot CBOR-encode {type(obj).__name__}")


def _cbor_read(data: bytes, pos: int):
    if pos >= len(data):
        raise ValueError("truncated CBOR")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if major == 7:
        simple = {20: False, 21: True, 22: None}
        if info in simple:
            return simple[info], pos
        raise ValueError(f"unsupported CBOR simple/float value 0x{initial:02x}")
    if info < 24:
        arg = info
    elif info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise ValueError("truncated CBOR")
        arg = int.from_bytes(data[pos : pos + size], "big")
        pos += size
    else:
        raise ValueError(f"unsupported CBOR additional info {info} (indefinite lengths?)")
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major in (2, 3):
        if pos + arg > len(data):
            raise ValueError("truncated CBOR")
        raw = data[pos : pos + arg]
        return (bytes(raw) if major == 2 else raw.decode("utf-8")), pos + arg
    if major == 4:
        out = []
        for _ in range(arg):
            v, pos = _cbor_read(data, pos)
            out.append(v)
        return out, pos
    if major == 5:
        out = {}
        for _ in range(arg):
            k, pos = _cbor_read(data, pos)
            v, pos = _cbor_read(data, pos)
            out[k] = v
        return out, pos
    raise ValueError(f"unsupported CBOR major type {major} (tags?)")


def cbor_decode(data: bytes, *, allow_trailing: bool = False):
    """Decode what `cbor_encode` writes. With allow_trailing, return (value, bytes consumed)."""
    value, end = _cbor_read(bytes(data), 0)
    if allow_trailing:
        return value, end
    if end != len(data):
        raise ValueError(f"{len(data) - end} trailing bytes after CBOR item")
    return value


# --- keys and authenticator data -----------------------------------------------------------------


def cose_es256_key(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The COSE_Key of a P-256 public key: {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}."""
    numbers = public_key.public_numbers()
    return cbor_encode(
        {
            1: 2,
            3: ES256,
            -1: 1,
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
    )


def parse_authenticator_data(auth_data: bytes) -> dict:
    """Split authenticator data into its fields (for tests and debugging)."""
    if len(auth_data) < 37:
        raise ValueError("authenticator data shorter than 37 bytes")
    out = {
        "rp_id_hash": auth_data[:32],
        "flags": auth_data[32],
        "sign_count": struct.unpack(">I", auth_data[33:37])[0],
    }
    rest = auth_data[37:]
    if out["flags"] & FLAG_AT:
        out["aaguid"] = rest[:16]
        (n,) = struct.unpack(">H", rest[16:18])
        out["credential_id"] = rest[18 : 18 + n]
        out["credential_public_key"], used = cbor_decode(rest[18 + n :], allow_trailing=True)
        out["credential_public_key_bytes"] = rest[18 + n : 18 + n + used]
        rest = rest[18 + n + used :]
    if out["flags"] & FLAG_ED:
        out["extensions"], used = cbor_decode(rest, allow_trailing=True)
        rest = rest[used:]
    if rest:
        raise ValueError(f"{len(rest)} trailing bytes in authenticator data")
    return out


def verify_assertion_signature(public_key, authenticator_data: bytes, client_data_json: bytes,
                               signature: bytes) -> bool:
    """What the RP checks: an ES256 signature over authenticatorData || SHA-256(clientDataJSON).

    `public_key` is an EllipticCurvePublicKey or SubjectPublicKeyInfo DER (the registration's
    `response.publicKey`, decoded).
    """
    if isinstance(public_key, (bytes, bytearray)):
        public_key = serialization.load_der_public_key(bytes(public_key))
    try:
        public_key.verify(
            signature,
            authenticator_data + hashlib.sha256(client_data_json).digest(),
            ec.ECDSA(hashes.SHA256()),
        )
        return True
    except InvalidSignature:
        return False


# --- errors (named after the DOMExceptions a browser would raise) ----------------------------------


class WebAuthnError(Exception):
    """The ceremony failed on the client/authenticator side (nothing to send to the server)."""


class InvalidStateError(WebAuthnError):
    """create(): the authenticator already holds a credential listed in excludeCredentials."""


class NotAllowedError(WebAuthnError):
    """get(): no held credential fits (or the user would have cancelled)."""


class NotSupportedError(WebAuthnError):
    """create(): no supported algorithm (ES256, -7) in pubKeyCredParams, or a bad type."""


class SecurityError(WebAuthnError):
    """The RP ID is not the origin's host nor a parent domain of it."""


# --- the authenticator + client -------------------------------------------------------------------


@dataclass
class Credential:
    """One passkey the authenticator holds."""

    credential_id: bytes
    rp_id: str
    user_handle: bytes
    private_key: ec.EllipticCurvePrivateKey
    sign_count: int = 0
    increment_counter: bool = False
    backup_eligible: bool = True
    backup_state: bool = True
    user_name: str | None = None
    user_display_name: str | None = None

    @property
    def id_b64u(self) -> str:
        return b64u(self.credential_id)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    @property
    def public_key_der(self) -> bytes:
        """SubjectPublicKeyInfo DER, as `AuthenticatorAttestationResponse.getPublicKey()`."""
        return self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def cose_public_key(self) -> bytes:
        return cose_es256_key(self.public_key)

    def next_sign_count(self) -> int:
        """The counter for the next signature: fixed (0 unless forced), or incremented."""
        if self.increment_counter:
            self.sign_count = (self.sign_count + 1) & 0xFFFFFFFF
        return self.sign_count


def _as_options(options) -> dict:
    if isinstance(options, (str, bytes, bytearray)):
        options = json.loads(options)
    if not isinstance(options, dict):
        raise TypeError("options must be a dict or JSON text")
    if "publicKey" in options and isinstance(options["publicKey"], dict):
        options = options["publicKey"]
    return options


def _origin_host(origin: str) -> str:
    host = urlsplit(origin).hostname
    if not host:
        raise SecurityError(f"origin {origin!r} has no host")
    return host


def _check_rp_id(rp_id: str, origin: str) -> None:
    """The client's check: the RP ID is the origin's effective domain or a parent of it."""
    host = _origin_host(origin)
    if not rp_id or not (host == rp_id or host.endswith("." + rp_id)):
        raise SecurityError(f"RP ID {rp_id!r} is not valid for origin {origin!r}")


class SoftPasskey:
    """A platform authenticator holding synced passkeys, with the browser side built in.

    increment_counter: False (default) keeps every credential's sign counter at 0, as Apple and
        Google passkeys do; True adds 1 before each signature (registration included, so the
        registration reports 1 and the first sign-in 2).
    backup_eligible / backup_state: the BE and BS flags of new credentials (default both set, as
        for synced passkeys).
    uv: set the UV flag (default True: passkeys verify the user).
    check_rp_id: refuse, as a browser does, an RP ID that is not the origin's host or a parent
        domain of it (SecurityError).
    """

    def __init__(self, *, increment_counter: bool = False, backup_eligible: bool = True,
                 backup_state: bool = True, uv: bool = True, check_rp_id: bool = True,
                 aaguid: bytes = bytes(16)):
        if len(aaguid) != 16:
            raise ValueError("AAGUID must be 16 bytes")
        self.increment_counter = increment_counter
        self.backup_eligible = backup_eligible
        self.backup_state = backup_state
        self.uv = uv
        self.check_rp_id = check_rp_id
        self.aaguid = bytes(aaguid)
        self.credentials: list[Credential] = []

    # -- the store --

    def add_credential(self, rp_id: str, user_handle: bytes, *, credential_id: bytes | None = None,
                       private_key: ec.EllipticCurvePrivateKey | None = None,
                       sign_count: int = 0, increment_counter: bool | None = None,
                       backup_eligible: bool | None = None, backup_state: bool | None = None,
                       user_name: str | None = None,
                       user_display_name: str | None = None) -> Credential:
        """Put a credential in the store directly (e.g. one the server never registered)."""
        cred = Credential(
            credential_id=credential_id if credential_id is not None else os.urandom(32),
            rp_id=rp_id,
            user_handle=bytes(user_handle),
            private_key=private_key or ec.generate_private_key(ec.SECP256R1()),
            sign_count=sign_count,
            increment_counter=self.increment_counter if increment_counter is None else increment_counter,
            backup_eligible=self.backup_eligible if backup_eligible is None else backup_eligible,
            backup_state=self.backup_state if backup_state is None else backup_state,
            user_name=user_name,
            user_display_name=user_display_name,
        )
        self.credentials.append(cred)
        return cred

    def credential(self, credential_id) -> Credential:
        """The held credential with this id (bytes or base64url); KeyError if none."""
        if isinstance(credential_id, Credential):
            return credential_id
        if isinstance(credential_id, str):
            credential_id = unb64u(credential_id)
        for cred in self.credentials:
            if cred.credential_id == credential_id:
                return cred
        raise KeyError(f"no credential {b64u(credential_id)}")

    def credentials_for(self, rp_id: str) -> list[Credential]:
        return [c for c in self.credentials if c.rp_id == rp_id]

    def set_counter(self, credential_id, value: int, *, increment: bool | None = None) -> Credential:
        """Force a credential's stored sign counter (the value the next signature reports when the
        counter is fixed; the next one reports value + 1 when it increments)."""
        cred = self.credential(credential_id)
        cred.sign_count = value
        if increment is not None:
            cred.increment_counter = increment
        return cred

    def remove(self, credential_id) -> None:
        self.credentials.remove(self.credential(credential_id))

    # -- pieces --

    def _rp_id(self, given: str | None, origin: str) -> str:
        rp_id = given if given else _origin_host(origin)
        if self.check_rp_id:
            _check_rp_id(rp_id, origin)
        return rp_id

    @staticmethod
    def _client_data(type_: str, challenge_b64u: str, origin: str, cross_origin: bool) -> bytes:
        # As browsers write it: these four members in this order, no whitespace.
        return json.dumps(
            {"type": type_, "challenge": challenge_b64u, "origin": origin, "crossOrigin": cross_origin},
            separators=(",", ":"),
        ).encode("utf-8")

    def _flags(self, cred: Credential, *, user_present: bool, uv: bool | None,
               backup_eligible: bool | None, backup_state: bool | None, attested: bool) -> int:
        flags = 0
        if user_present:
            flags |= FLAG_UP
        if self.uv if uv is None else uv:
            flags |= FLAG_UV
        if cred.backup_eligible if backup_eligible is None else backup_eligible:
            flags |= FLAG_BE
        if cred.backup_state if backup_state is None else backup_state:
            flags |= FLAG_BS
        if attested:
            flags |= FLAG_AT
        return flags

    # -- navigator.credentials.create() --

    def create(self, options, origin: str, *, client_origin: str | None = None,
               challenge: str | None = None, client_data_type: str = "webauthn.create",
               cross_origin: bool = False, rp_id_hash: bytes | None = None,
               user_present: bool = True, uv: bool | None = None,
               backup_eligible: bool | None = None, backup_state: bool | None = None,
               counter: int | None = None) -> dict:
        """Register a new passkey; returns `PublicKeyCredential.toJSON()` of the registration.

        options: the `publicKey` creation options in their JSON form (dict or text).
        origin: the web page's origin ("https://app.example.com"); the RP ID defaults to its host.
        The keyword arguments after it are overrides for negative tests (see the module doc);
        `counter` reports that sign count instead of the credential's own.
        """
        opts = _as_options(options)
        rp = opts.get("rp") or {}
        rp_id = self._rp_id(rp.get("id"), origin)
        user = opts["user"]
        user_handle = unb64u(user["id"])
        if not 1 <= len(user_handle) <= 64:
            raise TypeError("user.id must be 1 to 64 bytes")

        params = opts.get("pubKeyCredParams")
        if params:  # an empty list means the defaults: ES256 and RS256
            if not any(p.get("type") == "public-key" and p.get("alg") == ES256 for p in params):
                raise NotSupportedError("ES256 (-7) is not in pubKeyCredParams")

        for desc in opts.get("excludeCredentials") or []:
            if desc.get("type", "public-key") != "public-key":
                continue
            excluded = unb64u(desc["id"])
            if any(c.credential_id == excluded for c in self.credentials_for(rp_id)):
                raise InvalidStateError("a credential in excludeCredentials is already held")

        # Challenge as the browser re-encodes it: base64url, no padding.
        challenge_b64u = challenge if challenge is not None else b64u(unb64u(opts["challenge"]))
        client_data = self._client_data(
            client_data_type, challenge_b64u, client_origin or origin, cross_origin
        )

        # A discoverable credential: a new one for the same (rp, user) replaces the old one.
        for old in [c for c in self.credentials_for(rp_id) if c.user_handle == user_handle]:
            self.credentials.remove(old)
        cred = self.add_credential(
            rp_id, user_handle, user_name=user.get("name"),
            user_display_name=user.get("displayName"),
        )
        sign_count = cred.next_sign_count() if counter is None else counter

        flags = self._flags(cred, user_present=user_present, uv=uv, backup_eligible=backup_eligible,
                            backup_state=backup_state, attested=True)
        cose_key = cred.cose_public_key
        auth_data = (
            (rp_id_hash if rp_id_hash is not None else hashlib.sha256(rp_id.encode()).digest())
            + bytes([flags])
            + struct.pack(">I", sign_count)
            + self.aaguid
            + struct.pack(">H", len(cred.credential_id))
            + cred.credential_id
            + cose_key
        )
        attestation_object = cbor_encode({"fmt": "none", "attStmt": {}, "authData": auth_data})

        extension_results = {}
        if (opts.get("extensions") or {}).get("credProps"):
            extension_results["credProps"] = {"rk": True}

        return {
            "id": cred.id_b64u,
            "rawId": cred.id_b64u,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64u(client_data),
                "attestationObject": b64u(attestation_object),
                "transports": ["internal"],
                "publicKeyAlgorithm": ES256,
                "publicKey": b64u(cred.public_key_der),
                "authenticatorData": b64u(auth_data),
            },
            "clientExtensionResults": extension_results,
            "authenticatorAttachment": "platform",
        }

    # -- navigator.credentials.get() --

    def select(self, options, origin: str, *, user_handle: bytes | None = None,
               credential_id=None) -> Credential:
        """The credential `get` would use (see there)."""
        opts = _as_options(options)
        rp_id = self._rp_id(opts.get("rpId"), origin)
        held = self.credentials_for(rp_id)
        allow = [
            unb64u(d["id"]) for d in (opts.get("allowCredentials") or [])
            if d.get("type", "public-key") == "public-key"
        ]
        if allow:
            # As an authenticator does: the first listed credential that it holds.
            candidates = [c for a in allow for c in held if c.credential_id == a]
        else:
            # Discoverable: all held for the RP, the most recently made first (the user's pick).
            candidates = list(reversed(held))
        if user_handle is not None:
            candidates = [c for c in candidates if c.user_handle == bytes(user_handle)]
        if credential_id is not None:
            want = unb64u(credential_id) if isinstance(credential_id, str) else bytes(credential_id)
            candidates = [c for c in candidates if c.credential_id == want]
        if not candidates:
            raise NotAllowedError(f"no passkey for RP {rp_id!r} fits the request")
        return candidates[0]

    def get(self, options, origin: str, *, user_handle: bytes | None = None,
            credential_id=None, credential: Credential | None = None,
            client_origin: str | None = None, challenge: str | None = None,
            client_data_type: str = "webauthn.get", cross_origin: bool = False,
            rp_id_hash: bytes | None = None, user_present: bool = True, uv: bool | None = None,
            backup_eligible: bool | None = None, backup_state: bool | None = None,
            counter: int | None = None, tamper_signature: bool = False,
            user_handle_in_response=True) -> dict:
        """Sign in; returns `PublicKeyCredential.toJSON()` of the assertion.

        options: the `publicKey` request options in their JSON form (dict or text).
        Which credential: the first held one listed in allowCredentials, or with it empty the
        discoverable ones for the RP, most recent first; `user_handle` / `credential_id` narrow
        that choice (NotAllowedError if nothing is left). `credential` (a Credential of this
        store) is used as given, bypassing the allow list and RP checks.
        Overrides for negative tests: see the module doc. `counter` reports that sign count for
        this assertion only (the stored counter is left alone); `tamper_signature` sends a
        well-formed signature over other bytes; `user_handle_in_response` False sends null, bytes
        send those instead of the credential's.
        """
        opts = _as_options(options)
        if credential is None:
            cred = self.select(opts, origin, user_handle=user_handle, credential_id=credential_id)
            rp_id = cred.rp_id
        else:
            cred = credential
            rp_id = opts.get("rpId") or _origin_host(origin)

        challenge_b64u = challenge if challenge is not None else b64u(unb64u(opts["challenge"]))
        client_data = self._client_data(
            client_data_type, challenge_b64u, client_origin or origin, cross_origin
        )

        if counter is None:
            sign_count = cred.next_sign_count()
        else:
            sign_count = counter
        flags = self._flags(cred, user_present=user_present, uv=uv, backup_eligible=backup_eligible,
                            backup_state=backup_state, attested=False)
        auth_data = (
            (rp_id_hash if rp_id_hash is not None else hashlib.sha256(rp_id.encode()).digest())
            + bytes([flags])
            + struct.pack(">I", sign_count)
        )
        signed = auth_data + hashlib.sha256(client_data).digest()
        if tamper_signature:
            signed += b"\x00"
        signature = cred.private_key.sign(signed, ec.ECDSA(hashes.SHA256()))

        if user_handle_in_response is True:
            handle = b64u(cred.user_handle)
        elif user_handle_in_response is False or user_handle_in_response is None:
            handle = None
        else:
            handle = b64u(user_handle_in_response)

        return {
            "id": cred.id_b64u,
            "rawId": cred.id_b64u,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64u(client_data),
                "authenticatorData": b64u(auth_data),
                "signature": b64u(signature),
                "userHandle": handle,
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
