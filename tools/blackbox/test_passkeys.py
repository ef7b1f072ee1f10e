"""Black-box passkeys: a software authenticator (soft_passkey.py, standing in for the browser and the
device) registers, lists, renames and removes passkeys over HTTP against the dev server, signs in
with one without a password, and answers the second step of a password sign-in with one after a
TOTP enrolment made with a real TOTP library (pyotp); the items in the table, and the notices SES
received.

The dev server runs with PROTOCOL=http and FRONTEND_DOMAIN=localhost:3000 (tools/lib.sh's
local_env), so its WebAuthn relying party is `localhost` and its one origin http://localhost:3000
(override with PASSKEY_ORIGIN). Run by `make test` with the rest of tools/blackbox.
"""

import base64
import html
import json
import os
import time
import urllib.parse
import uuid

import pyotp
from soft_passkey import SoftPasskey, b64u, unb64u
from test_flow import PASSWORD, active_login, call, item, partition, promote, ses_messages_to, unique_email
from test_mfa import enrol

ORIGIN = os.environ.get("PASSKEY_ORIGIN", "http://localhost:3000")
RP_ID = urllib.parse.urlsplit(ORIGIN).hostname
NO_ACCOUNT = {"detail": "No active account found with the given credentials", "code": "no_active_account"}
NOT_VERIFIED = {"credential": ["The passkey could not be verified."]}
NO_CEREMONY = {"credential": ["This passkey request has expired or was used: start again."]}


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def me(access):
    status, body, _ = call("GET", "/auth/users/me/", token=access)
    assert status == 200, body
    return body


def register(access, authenticator, name=None):
    """A new passkey of `authenticator` for the account of `access` (signed in moments ago, so the
    step-up asks for nothing): the 201 body."""
    status, options, _ = call("POST", "/auth/webauthn/register/options/", {}, token=access)
    assert status == 200, options
    body = {"credential": authenticator.create(options, ORIGIN)}
    if name is not None:
        body["name"] = name
    status, passkey, _ = call("POST", "/auth/webauthn/register/", body, token=access)
    assert status == 201, passkey
    return passkey


def login_options():
    """(options as sent, login_token) of a new passwordless sign-in."""
    status, options, _ = call("POST", "/auth/webauthn/login/options/", {})
    assert status == 200, options
    return options, options["login_token"]


def passkey_login(options, token, credential):
    return call("POST", "/auth/webauthn/login/", {"login_token": token, "credential": credential})


def subjects(email):
    return [m["subject"] for m in ses_messages_to(email)]


def test_a_passkey_is_registered_listed_renamed_and_removed_with_notices():
    email = unique_email("passkey")
    access = active_login(email)["access"]
    account = me(access)
    status, options, _ = call("POST", "/auth/webauthn/register/options/", {}, token=access)
    assert status == 200, options
    pk = options["publicKey"]
    assert pk["rp"]["id"] == RP_ID and pk["user"]["name"] == email, pk
    # The user handle is the account's id (its UUID bytes): what a passwordless sign-in finds it by.
    assert unb64u(pk["user"]["id"]) == uuid.UUID(account["id"]).bytes
    selection = pk["authenticatorSelection"]
    assert (selection["residentKey"], selection["userVerification"]) == ("required", "required"), selection
    assert -7 in [p["alg"] for p in pk["pubKeyCredParams"]] and pk["excludeCredentials"] == []
    assert pk["timeout"] == 300000

    authenticator = SoftPasskey()
    credential = authenticator.create(options, ORIGIN)
    body = {"credential": credential, "name": "  Ada's laptop  "}
    status, passkey, _ = call("POST", "/auth/webauthn/register/", body, token=access)
    assert status == 201, passkey
    held = authenticator.credentials_for(RP_ID)[0]
    assert passkey["id"] == held.id_b64u and passkey["name"] == "Ada's laptop" and passkey["last_used_at"] is None
    # The same answer again: its ceremony was taken by the first.
    assert call("POST", "/auth/webauthn/register/", body, token=access)[:2] == (400, NO_CEREMONY)

    # In the table: the public key and counter as the WebAuthn library keeps them, never the
    # private key (the authenticator's alone).
    stored = item("USER#" + account["id"], "WEBAUTHN#" + passkey["id"])
    assert stored and set(stored) == {"pk", "sk", "name", "credential", "created_at"}, stored
    assert stored["name"] == "Ada's laptop"
    kept = json.loads(stored["credential"])["cred"]
    assert kept["cred_id"] == passkey["id"] and kept["counter"] == 0 and kept["user_verified"] is True
    public = held.public_key.public_numbers()
    assert unb64u(kept["cred"]["key"]["EC_EC2"]["x"]) == public.x.to_bytes(32, "big")
    secret = held.private_key.private_numbers().private_value.to_bytes(32, "big")
    text = str(stored)
    forms = (secret.hex(), b64u(secret), base64.b64encode(secret).decode(), str(list(secret))[1:-1])
    assert not any(f in text for f in forms), "no private key at rest"
    assert any("A passkey was added" in s for s in subjects(email)), subjects(email)
    # The emulator keeps the HTML part: the name is escaped there.
    assert any("Ada's laptop" in html.unescape(m["body"]) for m in ses_messages_to(email)), "the notice names it"

    status, listed, _ = call("GET", "/auth/webauthn/credentials/", token=access)
    assert status == 200 and [p["id"] for p in listed] == [passkey["id"]], listed
    # The next registration excludes it: the device refuses to make a second one for the account.
    status, options, _ = call("POST", "/auth/webauthn/register/options", {}, token=access)
    assert [c["id"] for c in options["publicKey"]["excludeCredentials"]] == [passkey["id"]]

    path = f"/auth/webauthn/credentials/{passkey['id']}/"
    status, renamed, _ = call("PATCH", path, {"name": "Work laptop"}, token=access)
    assert (status, renamed["name"], renamed["id"]) == (200, "Work laptop", passkey["id"]), renamed
    assert call("PATCH", path, {"name": " "}, token=access)[:2] == (400, {"name": ["This field may not be blank."]})
    assert call("PATCH", path, {"name": "x" * 65}, token=access)[0] == 400
    assert call("PATCH", "/auth/webauthn/credentials/nope/", {"name": "x"}, token=access)[0] == 404
    # Another account neither sees, renames nor removes it.
    other = active_login(unique_email("other"))["access"]
    assert call("GET", "/auth/webauthn/credentials/", token=other)[:2] == (200, [])
    assert call("PATCH", path, {"name": "mine"}, token=other)[0] == 404
    assert call("DELETE", path, {}, token=other)[0] == 404

    status, body, _ = call("DELETE", path.rstrip("/"), {}, token=access)
    assert status == 204, body
    assert item("USER#" + account["id"], "WEBAUTHN#" + passkey["id"]) is None
    assert call("GET", "/auth/webauthn/credentials/", token=access)[:2] == (200, [])
    assert any("A passkey was removed" in s for s in subjects(email)), subjects(email)
    # The device still holds it; the server refuses it.
    options, token = login_options()
    assert passkey_login(options, token, authenticator.get(options, ORIGIN))[:2] == (401, NO_ACCOUNT)


def test_a_passkey_signs_in_without_a_password_once_per_login_token():
    email = unique_email("passwordless")
    access = active_login(email)["access"]
    account = me(access)
    authenticator = SoftPasskey()
    passkey = register(access, authenticator, "phone")

    options, token = login_options()
    pk = options["publicKey"]
    assert pk["allowCredentials"] == [] and pk["userVerification"] == "required" and pk["rpId"] == RP_ID, pk
    challenge = partition("CHALLENGE#" + token)
    assert len(challenge) == 1 and challenge[0]["kind"] == "webauthn_login", challenge
    assert int(challenge[0]["expires_at"]) <= time.time() + 301
    body = {"login_token": token, "credential": authenticator.get(options, ORIGIN)}
    status, tokens, _ = call("POST", "/auth/webauthn/login/", body)
    assert status == 200 and tokens["access"] and tokens["refresh"], tokens
    said = claims(tokens["access"])
    assert said["sub"] == account["id"] and said["amr"] == ["swk", "user", "mfa"], said
    assert me(tokens["access"])["email"] == email
    assert not partition("CHALLENGE#" + token), "the login_token is taken once"
    status, listed, _ = call("GET", "/auth/webauthn/credentials/", token=access)
    assert listed[0]["id"] == passkey["id"] and listed[0]["last_used_at"], listed

    # Replayed: the token was used.
    status, body, _ = call("POST", "/auth/webauthn/login/", body)
    assert (status, body["code"]) == (401, "login_token_not_valid"), body
    # A made-up token, and a malformed credential (a 400 that does not count against the token).
    status, body, _ = passkey_login(options, "made-up", authenticator.get(options, ORIGIN))
    assert (status, body["code"]) == (401, "login_token_not_valid"), body
    options, token = login_options()
    assert passkey_login(options, token, {"id": "x"})[:2] == (400, NOT_VERIFIED)
    assert passkey_login(options, token, 42)[:2] == (400, {"credential": ["Expected a credential object."]})
    # The credential as JSON text in a form body, as a form post would carry it.
    form = urllib.parse.urlencode({"login_token": token, "credential": json.dumps(authenticator.get(options, ORIGIN))})
    status, tokens, _ = call(
        "POST",
        "/auth/webauthn/login",
        raw=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200 and tokens["access"], tokens

    # Deleting the account deletes its passkeys; the device's copy signs in nobody.
    assert call("DELETE", "/auth/users/me/", {"current_password": PASSWORD}, token=access)[0] == 204
    assert item("USER#" + account["id"], "WEBAUTHN#" + passkey["id"]) is None
    options, token = login_options()
    assert passkey_login(options, token, authenticator.get(options, ORIGIN))[:2] == (401, NO_ACCOUNT)


def test_a_wrong_origin_and_every_other_refusal_answer_as_a_wrong_password():
    email = unique_email("phished")
    access = active_login(email)["access"]
    account = me(access)
    authenticator = SoftPasskey()
    register(access, authenticator, "phone")
    user_handle = uuid.UUID(account["id"]).bytes

    # Registration from a look-alike page: refused, and its ceremony is spent.
    status, options, _ = call("POST", "/auth/webauthn/register/options/", {}, token=access)
    phished = SoftPasskey().create(options, ORIGIN, client_origin="https://localhost.evil.example")
    assert call("POST", "/auth/webauthn/register/", {"credential": phished}, token=access)[:2] == (400, NOT_VERIFIED)

    # A stranger's key claiming the account's user handle: not one of its passkeys.
    stranger = SoftPasskey()
    stranger.add_credential(RP_ID, user_handle)
    refusals = [
        ("another origin", lambda o: authenticator.get(o, ORIGIN, client_origin="https://evil.example")),
        ("no user verification", lambda o: authenticator.get(o, ORIGIN, uv=False)),
        ("a bad signature", lambda o: authenticator.get(o, ORIGIN, tamper_signature=True)),
        ("another challenge", lambda o: authenticator.get(o, ORIGIN, challenge=b64u(b"\0" * 32))),
        ("no user handle", lambda o: authenticator.get(o, ORIGIN, user_handle_in_response=False)),
        ("a stranger's key", lambda o: stranger.get(o, ORIGIN)),
    ]
    for what, answer in refusals:
        options, token = login_options()
        status, body, _ = passkey_login(options, token, answer(options))
        assert (status, body) == (401, NO_ACCOUNT), (what, status, body)

    # A sign counter that goes back: a cloned authenticator.
    counting = SoftPasskey(increment_counter=True)
    register(access, counting, "key with a counter")
    for _ in range(2):
        options, token = login_options()
        assert passkey_login(options, token, counting.get(options, ORIGIN))[0] == 200
    options, token = login_options()
    assert passkey_login(options, token, counting.get(options, ORIGIN, counter=1))[:2] == (401, NO_ACCOUNT)

    # Five answers per token, counted before they are judged: the sixth is refused even if right.
    options, token = login_options()
    for _ in range(5):
        wrong = authenticator.get(options, ORIGIN, client_origin="https://evil.example")
        assert passkey_login(options, token, wrong)[:2] == (401, NO_ACCOUNT)
    status, body, _ = passkey_login(options, token, authenticator.get(options, ORIGIN))
    assert (status, body["code"]) == (401, "login_token_not_valid"), body

    # The trail, as staff read it: the refused passkeys of the account, then its own sign-in.
    options, token = login_options()
    assert passkey_login(options, token, authenticator.get(options, ORIGIN))[0] == 200
    root_email = unique_email("passkey-auditor")
    active_login(root_email)
    promote(root_email, True)
    root = call("POST", "/auth/jwt/create/", {"email": root_email, "password": PASSWORD})[1]["access"]
    status, page, _ = call("GET", f"/auth/admin/audit/?user={account['id']}", token=root)
    assert status == 200, page
    events = [(e["event"], e["object"]) for e in page["results"]]
    assert events[0] == ("login.succeeded", "passkey phone"), events
    assert ("login.failed", "passkey") in events and ("passkey.added", "phone") in events, events


def test_a_passkey_answers_the_second_step_after_a_totp_enrolment():
    email = unique_email("two-step-passkey")
    access = active_login(email)["access"]
    totp, _ = enrol(access)
    authenticator = SoftPasskey()
    passkey = register(access, authenticator, "security key")
    assert me(access)["mfa_methods"] == ["totp", "recovery_code", "webauthn"]

    status, body, _ = call("POST", "/auth/jwt/create/", {"email": email, "password": PASSWORD})
    assert status == 401 and body["code"] == "mfa_required" and "access" not in body, body
    assert body["methods"] == ["totp", "recovery_code", "webauthn"], body
    pk = body["webauthn"]["publicKey"]
    assert [c["id"] for c in pk["allowCredentials"]] == [passkey["id"]] and pk["userVerification"] == "required"
    token = body["mfa_token"]
    wrong = authenticator.get(body["webauthn"], ORIGIN, client_origin="https://evil.example")
    assert call("POST", "/auth/mfa/verify/", {"mfa_token": token, "credential": wrong})[:2] == (400, NOT_VERIFIED)
    both = {"mfa_token": token, "code": totp.now(), "credential": authenticator.get(body["webauthn"], ORIGIN)}
    status, refused, _ = call("POST", "/auth/mfa/verify/", both)
    assert (status, refused) == (400, {"non_field_errors": ["Give one of code, recovery_code or credential."]})
    answer = {"mfa_token": token, "credential": authenticator.get(body["webauthn"], ORIGIN)}
    status, tokens, _ = call("POST", "/auth/mfa/verify/", answer)
    assert status == 200 and tokens["access"], tokens
    assert claims(tokens["access"])["amr"] == ["pwd", "swk", "mfa"]
    assert not partition("CHALLENGE#" + token), "the mfa_token is taken once"
    assert call("POST", "/auth/mfa/verify/", answer)[1]["code"] == "mfa_token_not_valid"

    # Adding a passkey is a sensitive step: a password sent is checked even by a session that
    # signed in moments ago (which needs no code: it gave one to sign in).
    session = tokens["access"]
    status, body, _ = call("POST", "/auth/webauthn/register/options/", {"current_password": "wrong"}, token=session)
    assert (status, body) == (400, {"current_password": ["Invalid password."]})
    status, options, _ = call("POST", "/auth/webauthn/register/options/", {"current_password": PASSWORD}, token=session)
    assert status == 200 and [c["id"] for c in options["publicKey"]["excludeCredentials"]] == [passkey["id"]]
    second = register(session, SoftPasskey(), "phone")
    # Both are offered at the next sign-in; the passwordless one signs in with no code at all.
    status, body, _ = call("POST", "/auth/jwt/create/", {"email": email, "password": PASSWORD})
    offered = {c["id"] for c in body["webauthn"]["publicKey"]["allowCredentials"]}
    assert offered == {passkey["id"], second["id"]}, body
    options, token = login_options()
    assert passkey_login(options, token, authenticator.get(options, ORIGIN))[0] == 200


def test_the_json_a_fallback_encoder_writes_is_accepted():
    """What README's fallback for browsers without toJSON() writes: no `publicKey`,
    `publicKeyAlgorithm` nor `authenticatorData` in a registration, a null attachment."""
    access = active_login(unique_email("fallback"))["access"]
    authenticator = SoftPasskey()
    status, options, _ = call("POST", "/auth/webauthn/register/options/", {}, token=access)
    full = authenticator.create(options, ORIGIN)
    response = {k: full["response"][k] for k in ("clientDataJSON", "attestationObject", "transports")}
    minimal = {**{k: full[k] for k in ("id", "rawId", "type")}, "response": response}
    minimal.update(clientExtensionResults={}, authenticatorAttachment=None)
    status, passkey, _ = call("POST", "/auth/webauthn/register/", {"credential": minimal}, token=access)
    assert status == 201 and passkey["name"] == "Passkey", passkey
    options, token = login_options()
    assertion = authenticator.get(options, ORIGIN)
    assertion["authenticatorAttachment"] = None
    assert passkey_login(options, token, assertion)[0] == 200
