"""Black-box two-step sign-in: an authenticator app's codes (pyotp, not Gatehouse's own code) over
HTTP against the dev server, the items in the table, and the notices SES received.

Run by `make test` with the rest of tools/blackbox.
"""

import time
import urllib.parse

import pyotp

from test_flow import PASSWORD, active_login, call, item, partition, ses_messages_to, unique_email


def enrol(access):
    """Turns two-step sign-in on for the account of `access`: (pyotp.TOTP, recovery codes)."""
    status, body, _ = call("POST", "/auth/mfa/totp/", {"current_password": PASSWORD}, token=access)
    assert status == 200, body
    # What an authenticator app reads from the QR code.
    totp = pyotp.parse_uri(body["otpauth_url"])
    assert totp.secret == body["secret"] and totp.digits == 6 and totp.interval == 30
    assert body["qr_svg"].lstrip().startswith("<?xml") and "<svg" in body["qr_svg"]
    # Confirmed with the previous step's code (one step of skew is accepted), so the current
    # step's code is still unused for the sign-in that follows (each step is accepted once).
    for attempt in range(2):
        code = totp.at(time.time() - totp.interval)
        status, confirmed, _ = call("POST", "/auth/mfa/totp/confirm/", {"code": code}, token=access)
        if status == 200 or attempt:
            break
    assert status == 200, confirmed
    assert len(confirmed["recovery_codes"]) == 10
    return totp, confirmed["recovery_codes"]


def test_two_step_sign_in_with_an_authenticator_app_and_a_recovery_code():
    email = unique_email("mfa")
    pair = active_login(email)
    totp, codes = enrol(pair["access"])
    status, me, _ = call("GET", "/auth/users/me/", token=pair["access"])
    assert status == 200 and me["mfa_enabled"] is True and me["mfa_methods"] == ["totp", "recovery_code"]
    user_pk = "USER#" + me["id"]
    stored = item(user_pk, "MFA#TOTP")
    assert stored and secret_absent(stored, totp.secret), "the secret is sealed at rest"
    recovery = item(user_pk, "MFA#RECOVERY")
    assert recovery and all(c not in str(recovery) for c in codes), "recovery codes are stored as MACs"
    subjects = [m["subject"] for m in ses_messages_to(email)]
    assert any("Two-step sign-in is on" in s for s in subjects), subjects

    # A djoser frontend that knows nothing of MFA sees a failed login, never tokens.
    status, body, _ = call("POST", "/auth/jwt/create/", {"email": email, "password": PASSWORD})
    assert status == 401 and body["code"] == "mfa_required" and "access" not in body, body
    token = body["mfa_token"]
    challenge = partition("CHALLENGE#" + token)
    assert challenge and int(challenge[0]["expires_at"]) <= time.time() + 301, challenge
    status, body, _ = call("POST", "/auth/mfa/verify/", {"mfa_token": token, "code": "000000"})
    assert status == 400 and body == {"code": ["Invalid code."]}, body
    code = totp.now()
    status, tokens, _ = call("POST", "/auth/mfa/verify/", {"mfa_token": token, "code": code})
    assert status == 200 and tokens["access"] and tokens["refresh"], tokens
    assert not partition("CHALLENGE#" + token), "the mfa_token is taken once"
    status, body, _ = call("POST", "/auth/mfa/verify/", {"mfa_token": token, "code": code})
    assert status == 401 and body["code"] == "mfa_token_not_valid", body

    # The same code again, on a new sign-in: refused (no replay within its window).
    _, body, _ = call("POST", "/auth/jwt/create/", {"email": email, "password": PASSWORD})
    status, _, _ = call("POST", "/auth/mfa/verify/", {"mfa_token": body["mfa_token"], "code": code})
    assert status == 400
    # A recovery code, typed loosely, once.
    typed = codes[0].upper().replace("-", " ")
    status, _, _ = call("POST", "/auth/mfa/verify/", {"mfa_token": body["mfa_token"], "recovery_code": typed})
    assert status == 200
    _, body, _ = call("POST", "/auth/jwt/create/", {"email": email, "password": PASSWORD})
    status, _, _ = call("POST", "/auth/mfa/verify/", {"mfa_token": body["mfa_token"], "recovery_code": codes[0]})
    assert status == 400

    # Turning it off (a session signed in moments ago: the factor alone).
    status, body, _ = call("DELETE", "/auth/mfa/totp/", {"recovery_code": codes[1]}, token=tokens["access"])
    assert status == 204, body
    assert item(user_pk, "MFA#TOTP") is None and item(user_pk, "MFA#RECOVERY") is None
    status, pair, _ = call("POST", "/auth/jwt/create/", {"email": email, "password": PASSWORD})
    assert status == 200 and pair["access"], pair
    subjects = [m["subject"] for m in ses_messages_to(email)]
    assert any("Two-step sign-in is off" in s for s in subjects), subjects


def secret_absent(stored, secret):
    """Neither the base32 secret nor a URL-quoted form of it appears in the stored item."""
    text = str(stored)
    return secret not in text and urllib.parse.quote(secret) not in text
