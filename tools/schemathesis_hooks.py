"""Schemathesis hooks for the schema run in `make test` (tools/test.sh).

Loaded through SCHEMATHESIS_HOOKS. It registers one account through the API, activates it with
the link from the emailed message (the dev server keeps every email at /_dev/emails), and makes
it staff in the emulator's table, so that the admin routes answer with their documented 2xx
bodies too. Every operation whose document declares `bearerAuth` gets that account's access
token, the one valid when the request is sent: schemathesis sets a token on a case when it
generates it, and the run's own requests revoke tokens (DELETE /auth/sessions/ logs the account
out everywhere, a deactivation through PUT /auth/users/{id}/ too), so `before_call` puts the
current token in place of an older one of ours, and a new one is fetched after any revocation.
Each fetch first repairs what the run may have done to the account (deleted it, deactivated or
demoted it). Without that, every case of the operation after a logout answered 401 and
schemathesis reported the operation as missing authentication.

Some operations succeed only with data no schema can describe: an existing id, a password, a
token or a link from an email. The first, third and fifth positive case of each of them
(`SEEDED`) are sent with such data, made for it just before: DELETE /auth/users/{id}/ deletes a user registered for it
(with the staff account's password, as the route asks), DELETE /auth/sessions/{id}/ a second
session of the staff account; registration gets a fresh address and a password the policy takes
(generated ones are mostly common, numeric or too short, and a generated `language` is mostly
one Gatehouse does not speak); the token routes get tokens of a fresh login; activation, reset
confirmation and email-change confirmation get the uid and token of the email a fresh account was
just sent; set_password, set_email and DELETE /auth/users/me/ run as a fresh account with its
password; the permission registry's routes get a codename of the right form to register, a
built-in one to read, or one registered for the case to change or delete; the admin users'
routes get a fresh address and a valid password to create, or the id of a user registered for the
case to read, change or delete; the two-step sign-in routes run as a fresh account, enrolled (and
confirmed, with a TOTP code computed here, RFC 6238 over the secret the API gave) as far as the
operation needs, with its password, a current TOTP code, a recovery code or the `mfa_token` of
its password login; the passkey routes run as a fresh account whose passkey, where the operation
needs one, was registered just before by a software authenticator (tools/blackbox/soft_passkey.py,
playing the browser on the dev server's WebAuthn origin, PASSKEY_ORIGIN, default
http://localhost:3000: PROTOCOL=http and FRONTEND_DOMAIN=localhost:3000 as tools/lib.sh's
local_env sets them), with the credential made for fresh creation options, the assertion for
fresh login options, or the id of the passkey to rename or remove; and one seeded case of the
second step answers it with a passkey. Social sign-in goes through a real provider: the dev
server's provider SOCIAL_PROVIDER (default `corp`) is an OpenID Connect provider on
tools/blackbox/fake_providers.py (FAKE_PROVIDERS_URL), which signs in whoever its
`/control/next` names; `GET /auth/o/{provider}/` gets that provider and an allowed redirect URI
(SOCIAL_REDIRECT_URI), `POST /auth/o/{provider}/` the `code` and `state` the provider handed to
that redirect URI for a new person with a verified address (a new account: 201; the second
seeded case through the cookie, the third for an account with two-step sign-in on: 401
`mfa_required`), the identities list runs as an account a provider made, and the unlink as an
account with a password whose provider was linked just before. The second seeded case of each operation that issues or
reads a refresh token (login, refresh, blacklist, the passkey sign-in, the second step) uses the
refresh cookie (`X-Gatehouse-Cookie: 1`; refresh and blacklist with the `gatehouse_refresh` cookie
of a fresh login and an empty body) when the server has JWT_COOKIE on (a login that asks for the
cookie gets one), so that the cookie answers meet the document too; with the setting off it goes
as the other seeded cases. The account pages need nothing: any uid and token render, and `GET /`
answers its redirect, which schemathesis does not follow. The other positive cases, and every
negative one, go as generated. Without this the two deletions by id only ever met unknown ids
(404: schemathesis's missing_test_data) and the others never answered a 2xx.
tools/schemathesis.toml fails the run on missing_auth and missing_test_data; every answer is
logged (SCHEMATHESIS_STATUS_LOG: `METHOD path-template status` lines) and
tools/schemathesis_statuses.py then holds every documented operation to at least one 2xx (`GET /`
to its redirect).

Environment: GATEHOUSE_URL (the dev server), MOTO_URL (the emulator), TABLE_NAME; PASSKEY_ORIGIN
(optional, the origin of the dev server's WEBAUTHN_ORIGINS); FAKE_PROVIDERS_URL, SOCIAL_PROVIDER
and SOCIAL_REDIRECT_URI (the sign-in provider, as tools/test.sh configures it).
"""

import base64
import hashlib
import hmac
import itertools
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import schemathesis

# The software passkey of the black-box tests.
sys.path.insert(0, str(Path(__file__).parent / "blackbox"))
from soft_passkey import SoftPasskey  # noqa: E402

BASE = os.environ["GATEHOUSE_URL"]
MOTO = os.environ["MOTO_URL"]
TABLE = os.environ["TABLE_NAME"]
STATUS_LOG = os.environ.get("SCHEMATHESIS_STATUS_LOG")
# A fixed account: the table is new for every run, and the seed fixes everything else.
EMAIL = "schemathesis-staff@example.com"
PASSWORD = "schema run: correct horse battery"
SERIAL = itertools.count(1)
# The page origin the software passkey signs for: one of the dev server's WEBAUTHN_ORIGINS.
PASSKEY_ORIGIN = os.environ.get("PASSKEY_ORIGIN", "http://localhost:3000")
# The sign-in provider (tools/blackbox/fake_providers.py) and the dev server's name for it.
FAKE_PROVIDERS = os.environ.get("FAKE_PROVIDERS_URL", "").rstrip("/")
SOCIAL_PROVIDER = os.environ.get("SOCIAL_PROVIDER", "corp")
SOCIAL_REDIRECT = os.environ.get("SOCIAL_REDIRECT_URI", "http://localhost:3000/callback")


def call(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    return status, (json.loads(text) if text else None)


COOKIE_HEADER = "X-Gatehouse-Cookie"
COOKIE_NAME = "gatehouse_refresh"


def cookie_login(email=EMAIL):
    """The refresh token a login through the cookie transport set as its cookie, or None when the
    server does not use the transport (JWT_COOKIE off: the login answers as ever)."""
    req = urllib.request.Request(
        BASE + "/auth/jwt/create/",
        data=json.dumps({"email": email, "password": PASSWORD}).encode(),
        method="POST",
        headers={"Content-Type": "application/json", COOKIE_HEADER: "1"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        cookies = resp.headers.get_all("Set-Cookie") or []
    for cookie in cookies:
        name, _, rest = cookie.partition("=")
        if name == COOKIE_NAME:
            return rest.split(";", 1)[0] or None
    return None


def expect(what, status, body, want):
    if status != want:
        raise RuntimeError(f"schema run setup: {what} answered {status}, expected {want}: {body}")


class Account:
    """The staff account the run authenticates as; rebuilt whenever the run undid it."""

    user_id = None
    # The access token to send now (None: fetch one), and every one handed out (to recognise ours).
    current = None
    issued = set()

    def token(self):
        """The current access token, logging in again when the last one was revoked."""
        if self.current is None:
            self.current = self.login()
            self.issued.add(self.current)
        return self.current

    def revoked(self):
        self.current = None

    def login(self):
        status, body = call("POST", "/auth/users/", {"email": EMAIL, "password": PASSWORD})
        if status == 201:
            # New (first use, or the run deleted it through DELETE /auth/users/{id}/): activate it
            # through the emailed link, as a user would.
            self.user_id = body["id"]
            status, mails = call("GET", "/_dev/emails?to=" + EMAIL)
            expect("the dev mailbox", status, mails, 200)
            if not mails:
                raise RuntimeError(f"schema run setup: no activation email to {EMAIL}")
            uid, token = mails[-1]["link"].rstrip("/").split("/")[-2:]
            status, body = call("POST", "/auth/users/activation/", {"uid": uid, "token": token})
            expect("activation", status, body, 204)
        elif self.user_id is None:
            raise RuntimeError(f"schema run setup: registration answered {status}: {body}")
        self.make_staff()
        # Two revocations in one second move tokens_valid_after past that second (a revocation is
        # never a no-op), so a token issued in it is refused: log in again in the next second.
        for attempt in range(3):
            if attempt:
                time.sleep(1.0)
            status, body = call("POST", "/auth/jwt/create/", {"email": EMAIL, "password": PASSWORD})
            expect("login", status, body, 200)
            status, me = call("GET", "/auth/users/me/", token=body["access"])
            if status == 200:
                return body["access"]
        expect("a new token on GET /auth/users/me/", status, me, 200)
        return None

    def make_staff(self):
        """Active staff superuser. No API makes the first staff account (authctl does, over the
        same table), and the run may deactivate or demote this one through PUT /auth/users/{id}/."""
        boto3.resource(
            "dynamodb",
            endpoint_url=MOTO,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ).Table(TABLE).update_item(
            Key={"pk": f"USER#{self.user_id}", "sk": "PROFILE"},
            UpdateExpression="SET is_active = :t, is_staff = :t, is_superuser = :t",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":t": True},
        )

    def extra_session(self):
        """The id of a new session of this account (another login), which the run may delete."""
        status, body = call("POST", "/auth/jwt/create/", {"email": EMAIL, "password": PASSWORD})
        expect("a second login", status, body, 200)
        payload = body["refresh"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims["sid"]


def fresh_email(kind):
    return f"schemathesis-{kind}-{next(SERIAL)}@example.com"


def mailed_link(to):
    """(uid, token) of the last link emailed to `to`."""
    status, mails = call("GET", "/_dev/emails?to=" + to)
    expect(f"the dev mailbox of {to}", status, mails, 200)
    if not mails:
        raise RuntimeError(f"schema run setup: no email to {to}")
    return tuple(mails[-1]["link"].rstrip("/").split("/")[-2:])


def registered(kind):
    """(email, id) of a new, inactive account."""
    email = fresh_email(kind)
    status, body = call("POST", "/auth/users/", {"email": email, "password": PASSWORD})
    expect(f"registering {email}", status, body, 201)
    return email, body["id"]


def active(kind):
    """(email, access token) of a new, activated account, logged in."""
    email, _ = registered(kind)
    uid, token = mailed_link(email)
    status, body = call("POST", "/auth/users/activation/", {"uid": uid, "token": token})
    expect(f"activating {email}", status, body, 204)
    return email, staff_login(email)["access"]


def staff_login(email=EMAIL):
    """A fresh token pair of the account (the staff one by default)."""
    status, body = call("POST", "/auth/jwt/create/", {"email": email, "password": PASSWORD})
    expect(f"logging in as {email}", status, body, 200)
    return body


def as_user(case, token):
    case.headers = case.headers or {}
    case.headers["Authorization"] = f"Bearer {token}"


def seed_register(case):
    case.body = {"email": fresh_email("registered"), "password": PASSWORD}


def seed_delete_user(case):
    case.path_parameters["id"] = registered("victim")[1]
    case.body = {"current_password": PASSWORD}


def seed_delete_session(case):
    case.path_parameters["id"] = ACCOUNT.extra_session()


def seed_delete_me(case):
    as_user(case, active("leaver")[1])
    case.body = {"current_password": PASSWORD}


def seed_activation(case):
    uid, token = mailed_link(registered("pending")[0])
    case.body = {"uid": uid, "token": token}


def seed_reset_confirm(case):
    email, _ = active("forgetful")
    status, body = call("POST", "/auth/users/reset_password/", {"email": email})
    expect("a reset request", status, body, 204)
    uid, token = mailed_link(email)
    case.body = {"uid": uid, "token": token, "new_password": PASSWORD + " reset"}


def seed_set_password(case):
    as_user(case, active("changer")[1])
    case.body = {"current_password": PASSWORD, "new_password": PASSWORD + " changed"}


def seed_set_email(case):
    as_user(case, active("mover")[1])
    case.body = {"current_password": PASSWORD, "new_email": fresh_email("moved")}


def seed_set_email_confirm(case):
    _, token = active("confirmer")
    new_email = fresh_email("arrived")
    status, body = call("POST", "/auth/users/set_email/", {"current_password": PASSWORD, "new_email": new_email}, token)
    expect("an email change", status, body, 204)
    uid, code = mailed_link(new_email)
    case.body = {"uid": uid, "token": code}


def totp(secret, steps=0):
    """The RFC 6238 code (SHA-1, 6 digits, 30 s) of the base32 `secret`, `steps` steps from now:
    what an authenticator app shows."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = int(time.time()) // 30 + steps
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def enrolling(kind):
    """(email, access token, TOTP secret) of a new account with a pending TOTP enrolment."""
    email, token = active(kind)
    status, body = call("POST", "/auth/mfa/totp/", {"current_password": PASSWORD}, token)
    expect("a TOTP enrolment", status, body, 200)
    return email, token, body["secret"]


def enrolled(kind):
    """(email, access token, TOTP secret, recovery codes) of a new account with two-step sign-in
    on. It is confirmed with the previous step's code (accepted: one step of skew), so that the
    code of the current step is still unused for the case itself (each step is accepted once)."""
    email, token, secret = enrolling(kind)
    for attempt in range(2):
        # A step boundary between computing the code and the server judging it: once more.
        status, body = call("POST", "/auth/mfa/totp/confirm/", {"code": totp(secret, -1)}, token)
        if status == 200 or attempt:
            break
    expect("confirming the TOTP enrolment", status, body, 200)
    return email, token, secret, body["recovery_codes"]


def seed_mfa_enrol(case):
    as_user(case, active("enroller")[1])
    case.body = {"current_password": PASSWORD}


def seed_mfa_confirm(case):
    _, token, secret = enrolling("confirming")
    as_user(case, token)
    case.body = {"code": totp(secret)}


def seed_mfa_disable(case):
    _, token, _, codes = enrolled("unenroller")
    as_user(case, token)
    case.body = {"recovery_code": codes[0], "current_password": PASSWORD}


def seed_mfa_recovery_codes(case):
    _, token, secret, _ = enrolled("regenerator")
    as_user(case, token)
    case.body = {"code": totp(secret), "current_password": PASSWORD}


def seed_mfa_verify(case):
    """A recovery code, and on the second seeded case a passkey (`credential`)."""
    email, token, _, codes = enrolled("second-step")
    authenticator = None
    if POSITIVES.get("POST /auth/mfa/verify/", 0) == SEEDED_POSITIVES[1]:
        authenticator, _ = register_passkey(token, "second step")
    status, body = call("POST", "/auth/jwt/create/", {"email": email, "password": PASSWORD})
    expect(f"the password step of {email}", status, body, 401)
    if authenticator is None:
        case.body = {"mfa_token": body["mfa_token"], "recovery_code": codes[0]}
        return
    via_cookie(case)
    if "webauthn" not in body:
        raise RuntimeError(f"schema run setup: no passkey options in the mfa_required answer: {body}")
    as_json(case, {"mfa_token": body["mfa_token"], "credential": authenticator.get(body["webauthn"], PASSKEY_ORIGIN)})


def as_json(case, body):
    """A body with a credential object in it: sent as JSON, whatever media type the case drew (a
    form body would carry the credential as its JSON text, which schemathesis does not write)."""
    case.media_type = "application/json"
    case.body = body


def register_passkey(token, name):
    """(SoftPasskey, passkey id): a new passkey of the account of `token` (signed in moments
    ago, so that the step-up asks for nothing), registered through the API."""
    authenticator = SoftPasskey()
    status, options = call("POST", "/auth/webauthn/register/options/", {}, token)
    expect("passkey creation options", status, options, 200)
    credential = authenticator.create(options, PASSKEY_ORIGIN)
    status, body = call("POST", "/auth/webauthn/register/", {"credential": credential, "name": name}, token)
    expect("registering a passkey", status, body, 201)
    return authenticator, body["id"]


def passkey_login_options():
    """Fresh passwordless sign-in options; waits out RATE_PASSKEY_OPTIONS_IP (60 a minute by
    default, which the run's own requests to the route may spend)."""
    for _ in range(16):
        status, body = call("POST", "/auth/webauthn/login/options/", {})
        if status != 429:
            break
        time.sleep(5)
    expect("passkey login options", status, body, 200)
    return body


def seed_passkey_register_options(case):
    as_user(case, active("passkey-options")[1])
    case.body = {}


def seed_passkey_register(case):
    _, token = active("passkey-maker")
    authenticator = SoftPasskey()
    status, options = call("POST", "/auth/webauthn/register/options/", {}, token)
    expect("passkey creation options", status, options, 200)
    as_user(case, token)
    as_json(case, {"credential": authenticator.create(options, PASSKEY_ORIGIN), "name": "Made by the run"})


def seed_passkey_list(case):
    """An account with a passkey, so that the list's entries meet the document too."""
    _, token = active("passkey-lister")
    register_passkey(token, "listed")
    as_user(case, token)


def seed_passkey_rename(case):
    _, token = active("passkey-renamer")
    _, passkey = register_passkey(token, "before")
    as_user(case, token)
    case.path_parameters["id"] = passkey
    case.body = {"name": "Renamed by the run"}


def seed_passkey_remove(case):
    _, token = active("passkey-remover")
    _, passkey = register_passkey(token, "removed")
    as_user(case, token)
    case.path_parameters["id"] = passkey
    case.body = {}


def seed_passkey_login(case):
    _, token = active("passkey-signer")
    authenticator, _ = register_passkey(token, "signs in")
    options = passkey_login_options()
    as_json(case, {"login_token": options["login_token"], "credential": authenticator.get(options, PASSKEY_ORIGIN)})
    if second_seed(case):
        via_cookie(case)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def provider_answer(email, verified=True):
    """(code, state): what the provider sends the browser back to the redirect URI with, for a
    sign-in started through the API (GET /auth/o/{provider}/) by a person with this address."""
    if not FAKE_PROVIDERS:
        raise RuntimeError("schema run setup: FAKE_PROVIDERS_URL is not set (tools/test.sh starts the fake provider)")
    person = {"provider": "oidc", "sub": f"schemathesis-{next(SERIAL)}", "email": email,
              "email_verified": verified, "given_name": "Schema", "family_name": "Run"}
    req = urllib.request.Request(FAKE_PROVIDERS + "/control/next", data=json.dumps(person).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        expect("the provider's next identity", resp.status, None, 200)
    query = urllib.parse.urlencode({"redirect_uri": SOCIAL_REDIRECT})
    status, body = call("GET", f"/auth/o/{SOCIAL_PROVIDER}/?{query}")
    expect("a provider sign-in's start", status, body, 200)
    # The browser at the provider: its answer is a redirect to the redirect URI, read, not followed.
    try:
        resp = urllib.request.build_opener(_NoRedirect).open(body["authorization_url"], timeout=30)
    except urllib.error.HTTPError as e:
        resp = e
    with resp:
        location = resp.headers.get("Location") or ""
    answer = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    if not location.startswith(SOCIAL_REDIRECT) or "code" not in answer or "state" not in answer:
        raise RuntimeError(f"schema run setup: the provider answered {resp.status} {location!r}")
    return answer["code"], answer["state"]


def provider_sign_in(email):
    """The tokens of a finished provider sign-in by a person with this (verified) address."""
    code, state = provider_answer(email)
    status, body = call("POST", f"/auth/o/{SOCIAL_PROVIDER}/", {"code": code, "state": state})
    expect(f"a provider sign-in of {email}", status, body, 201)
    return body


def seed_social_start(case):
    case.path_parameters["provider"] = SOCIAL_PROVIDER
    case.query = {"redirect_uri": SOCIAL_REDIRECT}


def seed_social_login(case):
    """A new person (201: a new account); the second seeded case through the cookie, the third an
    account with two-step sign-in on, whose address the provider verified (401 mfa_required)."""
    nth = POSITIVES.get(label(case), 0)
    if nth == SEEDED_POSITIVES[2]:
        email, _, _, _ = enrolled("fed-second-step")
    else:
        email = fresh_email("fed")
    code, state = provider_answer(email)
    case.path_parameters["provider"] = SOCIAL_PROVIDER
    case.query = {}
    case.body = {"code": code, "state": state}
    if nth == SEEDED_POSITIVES[1]:
        via_cookie(case)


def seed_identities_list(case):
    """An account a provider made, so that the list's entries meet the document too."""
    as_user(case, provider_sign_in(fresh_email("fed-lister"))["access"])


def seed_identities_unlink(case):
    """An account with a password, its provider linked just before (a verified address of an
    active account links): not the last way in, so the unlink succeeds."""
    email, token = active("fed-unlinker")
    provider_sign_in(email)
    as_user(case, token)
    case.path_parameters["provider"] = SOCIAL_PROVIDER
    # Within REAUTH_WINDOW of the sign-in the step-up asks nothing; a generated current_password
    # would be checked (and wrong).
    case.body = {}


def label(case):
    return f"{case.method.upper()} {case.operation.path}"


def second_seed(case):
    """Whether this is the operation's second seeded case (the one sent through the cookie)."""
    return POSITIVES.get(label(case), 0) == SEEDED_POSITIVES[1]


def via_cookie(case):
    """Asks for the cookie transport on this case (a server without JWT_COOKIE ignores it)."""
    case.headers = case.headers or {}
    case.headers[COOKIE_HEADER] = "1"


def seed_login(case):
    case.body = {"email": EMAIL, "password": PASSWORD}
    if second_seed(case):
        via_cookie(case)


def seed_refresh(case):
    """For refresh and blacklist: a refresh token in the body, or on the second seeded case, when
    the server has JWT_COOKIE on, in the cookie, with the header and an empty body."""
    refresh = cookie_login() if second_seed(case) else None
    if refresh is None:
        case.body = {"refresh": staff_login()["refresh"]}
        return
    via_cookie(case)
    case.cookies = {**(case.cookies or {}), COOKIE_NAME: refresh}
    case.body = {}


def seed_verify(case):
    case.body = {"token": staff_login()["access"]}


def permission(kind):
    """The codename of a new registered permission (the run's account is a superuser)."""
    codename = f"schemathesis.{kind}_{next(SERIAL)}"
    status, body = call("POST", "/auth/admin/permissions/", {"codename": codename, "name": kind}, ACCOUNT.token())
    expect(f"registering {codename}", status, body, 201)
    return codename


def seed_permission_create(case):
    case.body = {"codename": f"schemathesis.made_{next(SERIAL)}", "name": "Made by the run"}


def seed_permission_read(case):
    case.path_parameters["codename"] = "auth.view_user"


def seed_permission_put(case):
    case.path_parameters["codename"] = permission("replaced")
    case.body = {"name": "Replaced by the run"}


def seed_permission_patch(case):
    case.path_parameters["codename"] = permission("changed")
    case.body = {"description": "Changed by the run"}


def seed_permission_delete(case):
    case.path_parameters["codename"] = permission("deleted")


def seed_admin_user_create(case):
    case.body = {"email": fresh_email("admin-made"), "password": PASSWORD, "is_active": True}


def seed_admin_user_read(case):
    case.path_parameters["id"] = registered("admin-read")[1]


def seed_admin_user_put(case):
    case.path_parameters["id"] = registered("admin-replaced")[1]
    case.body = {"first_name": "Replaced", "last_name": "By the run"}


def seed_admin_user_patch(case):
    case.path_parameters["id"] = registered("admin-changed")[1]
    case.body = {"is_active": True}


def seed_admin_user_delete(case):
    """A user registered for the case, never the run's own account (which the route refuses)."""
    case.path_parameters["id"] = registered("admin-deleted")[1]


def seed_admin_mfa_reset(case):
    """An account of the case's own with two-step sign-in on (the route refuses one without)."""
    _, token, _, _ = enrolled("admin-mfa-reset")
    status, me = call("GET", "/auth/users/me/", None, token)
    expect("reading the enrolled account", status, me, 200)
    case.path_parameters["id"] = me["id"]


def seed_audit(case):
    """The whole trail, and then the run's own entries (random `since` values are mostly refused)."""
    case.query = {} if POSITIVES.get("GET /auth/admin/audit/", 0) < 3 else {"actor": ACCOUNT.user_id or ""}


SEEDED = {
    "POST /auth/users/": seed_register,
    "DELETE /auth/users/{id}/": seed_delete_user,
    "DELETE /auth/sessions/{id}/": seed_delete_session,
    "DELETE /auth/users/me/": seed_delete_me,
    "POST /auth/users/activation/": seed_activation,
    "POST /auth/users/reset_password_confirm/": seed_reset_confirm,
    "POST /auth/users/set_password/": seed_set_password,
    "POST /auth/users/set_email/": seed_set_email,
    "POST /auth/users/set_email_confirm/": seed_set_email_confirm,
    "POST /auth/jwt/create/": seed_login,
    "POST /auth/jwt/refresh/": seed_refresh,
    "POST /auth/jwt/verify/": seed_verify,
    "POST /auth/jwt/blacklist/": seed_refresh,
    "POST /auth/admin/permissions/": seed_permission_create,
    "GET /auth/admin/permissions/{codename}/": seed_permission_read,
    "PUT /auth/admin/permissions/{codename}/": seed_permission_put,
    "PATCH /auth/admin/permissions/{codename}/": seed_permission_patch,
    "DELETE /auth/admin/permissions/{codename}/": seed_permission_delete,
    "POST /auth/admin/users/": seed_admin_user_create,
    "GET /auth/admin/users/{id}/": seed_admin_user_read,
    "PUT /auth/admin/users/{id}/": seed_admin_user_put,
    "PATCH /auth/admin/users/{id}/": seed_admin_user_patch,
    "DELETE /auth/admin/users/{id}/": seed_admin_user_delete,
    "DELETE /auth/admin/users/{id}/mfa/": seed_admin_mfa_reset,
    "GET /auth/admin/audit/": seed_audit,
    "POST /auth/mfa/totp/": seed_mfa_enrol,
    "POST /auth/mfa/totp/confirm/": seed_mfa_confirm,
    "DELETE /auth/mfa/totp/": seed_mfa_disable,
    "POST /auth/mfa/recovery_codes/": seed_mfa_recovery_codes,
    "POST /auth/mfa/verify/": seed_mfa_verify,
    "POST /auth/webauthn/register/options/": seed_passkey_register_options,
    "POST /auth/webauthn/register/": seed_passkey_register,
    "GET /auth/webauthn/credentials/": seed_passkey_list,
    "PATCH /auth/webauthn/credentials/{id}/": seed_passkey_rename,
    "DELETE /auth/webauthn/credentials/{id}/": seed_passkey_remove,
    "POST /auth/webauthn/login/": seed_passkey_login,
    "GET /auth/o/{provider}/": seed_social_start,
    "POST /auth/o/{provider}/": seed_social_login,
    "GET /auth/users/me/identities/": seed_identities_list,
    "DELETE /auth/users/me/identities/{provider}/": seed_identities_unlink,
}
# Positive cases seen per operation: the first, third and fifth are seeded (each seed costs a few
# requests, an account mostly; three 2xx per operation are enough to hold its success answers to
# the document).
POSITIVES = {}
SEEDED_POSITIVES = (1, 3, 5)


ACCOUNT = Account()
ACCOUNT.token()  # fail at load time, with a clear message, if the setup does not work


def needs_bearer(ctx):
    """Operations whose document asks for `bearerAuth`."""
    security = ctx.operation.definition.raw.get("security") or []
    return any("bearerAuth" in requirement for requirement in security)


# No caching here (refresh_interval=None): the account keeps its own token and knows when the
# run revoked it.
@schemathesis.auth(refresh_interval=None).apply_to(needs_bearer)
class StaffBearer:
    def get(self, case, context):
        return ACCOUNT.token()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


def our_token(case):
    """The token of ours the case carries (not one a negative case made up), or None."""
    value = (case.headers or {}).get("Authorization", "")
    token = value[len("Bearer ") :] if isinstance(value, str) and value.startswith("Bearer ") else None
    return token if token in ACCOUNT.issued else None


def positive(case):
    meta = getattr(case, "meta", None)
    mode = getattr(getattr(meta, "generation", None), "mode", None)
    return getattr(mode, "value", mode) == "positive"


@schemathesis.hook
def before_call(context, case, kwargs):
    """The token valid now in place of the one set when the case was generated; and real data for
    the two operations that need it (see the module's docstring)."""
    if our_token(case) is not None:
        case.headers["Authorization"] = f"Bearer {ACCOUNT.token()}"
    label = f"{case.method.upper()} {case.operation.path}"
    seed = SEEDED.get(label)
    if seed is None or not positive(case):
        return
    POSITIVES[label] = POSITIVES.get(label, 0) + 1
    if POSITIVES[label] in SEEDED_POSITIVES:
        seed(case)


@schemathesis.hook
def after_call(context, case, response):
    """Logs the answer (SCHEMATHESIS_STATUS_LOG). A request that revoked the run's token (a 401 to
    it, a logout everywhere) has the next request log in again; one that demoted or deactivated
    the run's own account is undone at once, so every later request still runs as staff."""
    if STATUS_LOG:
        with open(STATUS_LOG, "a", encoding="utf-8") as log:
            log.write(f"{case.method.upper()} {case.operation.path} {response.status_code}\n")
    token = our_token(case)
    if token is not None and token == ACCOUNT.current:
        logged_out = case.method.upper() == "DELETE" and case.operation.path == "/auth/sessions/"
        if response.status_code == 401 or (logged_out and 200 <= response.status_code < 300):
            ACCOUNT.revoked()
    if response.status_code != 200 or not case.path.startswith(("/auth/users/", "/auth/admin/users/")):
        return
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and body.get("id") == ACCOUNT.user_id:
        if not (body.get("is_staff") and body.get("is_active")):
            ACCOUNT.make_staff()
            if not body.get("is_active"):
                ACCOUNT.revoked()
