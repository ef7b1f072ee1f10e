"""Black-box social sign-in: the dev server against two local providers (fake_providers.py: an
OpenID Connect provider and a GitHub-like one, on FAKE_PROVIDERS_URL), driven as a frontend
and a browser would: GET /auth/o/{provider}/ for the authorization URL, the provider's
authorization endpoint (its redirect read, never followed), then POST /auth/o/{provider}/ with
the code and state. The accounts as the API and the table show them, and the notices SES
received.

make test (tools/test.sh) starts the fake and configures the dev server with three providers:
`corp` (OpenID Connect, client gatehouse-test / corp-secret), `github` (GitHub, gh-client /
gh-secret) and `untrusted` (the same OpenID Connect provider with trust_email false), and the
redirect URI http://localhost:3000/callback.
"""

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from test_django_import import AUTHCTL, authctl
from test_flow import BASE, PASSWORD, active_login, activation_link, call, item, promote, ses_messages_to, unique_email
from test_mfa import enrol
from test_passkeys import claims, me

FAKE = os.environ.get("FAKE_PROVIDERS_URL", "").rstrip("/")
REDIRECT = "http://localhost:3000/callback"
# The dev server's provider names, and which of the fake's providers each one is.
FAKE_PROVIDER = {"corp": "oidc", "untrusted": "oidc", "github": "github"}

INVALID_STATE = {"non_field_errors": ["Invalid state has been provided."]}
PROVIDER_FAILED = {"non_field_errors": ["Authentication with the provider failed."]}
NO_EMAIL = {"non_field_errors": ["The provider did not confirm an email address for this account."]}
ALREADY_LINKED = {"non_field_errors": ["This account is already linked to another account of this provider."]}
ONLY_WAY = {"non_field_errors": ["This is the only way left to sign in to this account: set a password first."]}
NOT_FOUND = {"detail": "Not found.", "code": "not_found"}
REQUIRED = ["This field is required."]
NO_ACCOUNT = {"detail": "No active account found with the given credentials", "code": "no_active_account"}

pytestmark = pytest.mark.skipif(not FAKE, reason="make test sets FAKE_PROVIDERS_URL (tools/blackbox/fake_providers.py)")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def fake(method, path_or_url, body=None):
    """One request to the fake provider, redirects not followed: (status, headers, body text)."""
    url = path_or_url if path_or_url.startswith("http") else FAKE + path_or_url
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        resp = _opener.open(req, timeout=30)
    except urllib.error.HTTPError as e:
        resp = e
    with resp:
        return resp.status, resp.headers, resp.read().decode()


def provider_next(provider, **identity):
    """What the fake's next authorization for `provider` (a dev server provider name) hands out;
    `tamper` spoils the ID token it issues for it."""
    status, _, text = fake("POST", "/control/next", {"provider": FAKE_PROVIDER[provider], **identity})
    assert status == 200, text


def start(provider, redirect_uri=REDIRECT):
    """GET /auth/o/{provider}/: the authorization URL."""
    status, body, _ = call("GET", f"/auth/o/{provider}/?redirect_uri={urllib.parse.quote(redirect_uri, safe='')}")
    assert status == 200 and set(body) == {"authorization_url"}, (status, body)
    return body["authorization_url"]


def url_params(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))


def authorize(authorization_url, redirect_uri=REDIRECT):
    """The provider's answer to the browser: the parameters of its redirect to `redirect_uri`."""
    status, headers, text = fake("GET", authorization_url)
    assert status == 302, (status, text)
    location = headers["Location"]
    assert location.split("?")[0] == redirect_uri, location
    params = url_params(location)
    assert "error" not in params, params
    return params


def finish(provider, code, state, how="json"):
    """POST /auth/o/{provider}/ with the code and state, as a JSON body, a form body or a query."""
    fields = {k: v for k, v in (("code", code), ("state", state)) if v is not None}
    if how == "json":
        return call("POST", f"/auth/o/{provider}/", fields)[:2]
    encoded = urllib.parse.urlencode(fields)
    if how == "form":
        return call("POST", f"/auth/o/{provider}/", raw=encoded.encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})[:2]
    return call("POST", f"/auth/o/{provider}/?{encoded}")[:2]


def sign_in(provider, how="json", **identity):
    """The whole flow for the identity the provider is told to hand out: (status, body)."""
    identity.setdefault("email_verified", True)
    provider_next(provider, **identity)
    params = authorize(start(provider))
    return finish(provider, params["code"], params["state"], how)


def signed_in(provider, **identity):
    """A sign-in that must succeed: the 201 body (access, refresh, user)."""
    status, body = sign_in(provider, **identity)
    assert status == 201, (status, body)
    assert set(body) == {"access", "refresh", "user"}, body
    return body


def identities(access):
    status, body, _ = call("GET", "/auth/users/me/identities/", token=access)
    assert status == 200, body
    return body


def email_claim(email):
    """The account holding the address (its claim in the table), or None."""
    return item(f"EMAIL#{email.lower()}", "EMAIL")


def sub():
    return "sub-" + uuid.uuid4().hex


def github_id():
    return int(uuid.uuid4().int % 10**9) + 1


ISO_8601 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def deactivate(email, user_id):
    """Disables the account as an administrator would: authctl when make test gives it, else the
    admin API as a superuser."""
    if AUTHCTL:
        run = authctl("deactivate", "--email", email)
        assert run.returncode == 0, run.stdout + run.stderr
        return
    root_email = unique_email("root")
    active_login(root_email)
    promote(root_email, True)
    root = call("POST", "/auth/jwt/create/", {"email": root_email, "password": PASSWORD})[1]["access"]
    status, body, _ = call("PATCH", f"/auth/users/{user_id}/", {"is_active": False}, token=root)
    assert status == 200 and body["is_active"] is False, body


# -- starting a sign-in ----------------------------------------------------------------------


def test_the_authorization_url_asks_for_a_code_with_pkce_state_and_nonce():
    url = start("corp")
    assert url.split("?")[0] == FAKE + "/oidc/authorize", url
    p = url_params(url)
    assert (p["response_type"], p["client_id"], p["redirect_uri"]) == ("code", "gatehouse-test", REDIRECT), p
    assert p["scope"].split() == ["openid", "email", "profile"], p
    assert p["code_challenge_method"] == "S256" and re.fullmatch(r"[A-Za-z0-9_-]{43}", p["code_challenge"]), p
    assert p["state"] and p["nonce"], p
    # Each start has its own state, nonce and challenge.
    again = url_params(start("corp"))
    assert all(again[k] != p[k] for k in ("state", "nonce", "code_challenge")), (p, again)

    p = url_params(start("github"))
    assert start("github").split("?")[0] == FAKE + "/github/login/oauth/authorize"
    assert (p["response_type"], p["client_id"], p["redirect_uri"]) == ("code", "gh-client", REDIRECT), p
    assert p["scope"].split() == ["read:user", "user:email"], p
    assert p["code_challenge_method"] == "S256" and p["code_challenge"] and p["state"], p
    assert "nonce" not in p, p

    # Without the trailing slash; and the account pages' own /login is always allowed.
    status, body, _ = call("GET", "/auth/o/corp?redirect_uri=" + urllib.parse.quote(REDIRECT, safe=""))
    assert status == 200 and body["authorization_url"].startswith(FAKE + "/oidc/authorize?"), body
    own = f"http://localhost:{urllib.parse.urlsplit(BASE).port}/login"
    assert url_params(start("corp", own))["redirect_uri"] == own


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?redirect_uri=",
        "?redirect_uri=" + urllib.parse.quote("http://evil.example/callback", safe=""),
        "?redirect_uri=" + urllib.parse.quote("http://localhost:3000/callback/more", safe=""),
        "?redirect_uri=" + urllib.parse.quote("http://localhost:3000/callback?next=/", safe=""),
        "?redirect_uri=" + urllib.parse.quote("https://localhost:3000/callback", safe=""),
    ],
)
def test_a_redirect_uri_missing_or_not_allowed_is_refused(query):
    status, body, _ = call("GET", "/auth/o/corp/" + query)
    assert status == 400 and set(body) == {"redirect_uri"}, (status, body)
    assert len(body["redirect_uri"]) == 1 and isinstance(body["redirect_uri"][0], str), body


def test_an_unknown_provider_is_not_found():
    status, body, _ = call("GET", "/auth/o/nope/?redirect_uri=" + urllib.parse.quote(REDIRECT, safe=""))
    assert (status, body) == (404, NOT_FOUND)
    status, body, _ = call("POST", "/auth/o/nope/", {"code": "x", "state": "y"})
    assert (status, body) == (404, NOT_FOUND)


# -- accounts --------------------------------------------------------------------------------


def test_a_new_account_is_created_active_and_signed_into_again():
    email, subject = unique_email("social"), sub()
    body = signed_in("corp", sub=subject, email=email, given_name="Ada", family_name="Lovelace", name="Ada Lovelace")
    assert body["user"] == email, body
    said = claims(body["access"])
    assert said["amr"] == ["fed"], said
    account = me(body["access"])
    assert (account["email"], account["is_active"]) == (email, True), account
    assert (account["first_name"], account["last_name"]) == ("Ada", "Lovelace"), account
    assert said["user_id"] == account["id"]
    claim = email_claim(email)
    assert claim is not None and claim["user_id"] == account["id"], claim
    # No usable password: a password sign-in finds no account.
    assert call("POST", "/auth/jwt/create/", {"email": email, "password": PASSWORD})[:2] == (401, NO_ACCOUNT)
    # The refresh token works as any other.
    status, rotated, _ = call("POST", "/auth/jwt/refresh/", {"refresh": body["refresh"]})
    assert status == 200 and me(rotated["access"])["id"] == account["id"], rotated

    linked = identities(body["access"])
    assert len(linked) == 1, linked
    assert {k: linked[0][k] for k in ("provider", "label", "email")} == {"provider": "corp", "label": "corp", "email": email}
    assert ISO_8601.match(linked[0]["created_at"]) and ISO_8601.match(linked[0]["last_used_at"]), linked
    # The code was exchanged as a confidential client, with its PKCE verifier (which the fake
    # checked against the challenge).
    status, _, text = fake("GET", "/control/requests")
    exchange = [r for r in json.loads(text) if r["provider"] == "oidc"][-1]
    assert exchange["outcome"] == "ok" and exchange["auth"] in ("client_secret_post", "client_secret_basic"), exchange
    assert "code_verifier" in exchange["fields"], exchange

    # Again, the same subject: the same account, whatever the email now says; a form body, and a
    # query string without the trailing slash.
    status, again = sign_in("corp", how="form", sub=subject, email=unique_email("renamed"))
    assert status == 201 and again["user"] == email, again
    assert me(again["access"])["id"] == account["id"] and claims(again["access"])["amr"] == ["fed"]
    provider_next("corp", sub=subject, email=email, email_verified=True)
    params = authorize(start("corp"))
    encoded = urllib.parse.urlencode({"code": params["code"], "state": params["state"]})
    status, third, _ = call("POST", "/auth/o/corp?" + encoded)
    assert status == 201 and me(third["access"])["id"] == account["id"], third


def test_missing_fields_are_reported_by_name():
    assert call("POST", "/auth/o/corp/", {"state": "x"})[:2] == (400, {"code": REQUIRED})
    assert call("POST", "/auth/o/corp/", {"code": "x"})[:2] == (400, {"state": REQUIRED})
    status, body, _ = call("POST", "/auth/o/corp/", {})
    assert (status, body) == (400, {"code": REQUIRED, "state": REQUIRED}), body


def test_a_state_is_taken_once():
    email = unique_email("replay")
    provider_next("corp", sub=sub(), email=email, email_verified=True)
    url = start("corp")
    first = authorize(url)
    assert finish("corp", first["code"], first["state"])[0] == 201
    # The same answer again, and a fresh code from the provider under the spent state.
    assert finish("corp", first["code"], first["state"]) == (400, INVALID_STATE)
    second = authorize(url)
    assert second["state"] == first["state"] and second["code"] != first["code"]
    assert finish("corp", second["code"], second["state"]) == (400, INVALID_STATE)


def test_a_state_of_another_provider_or_forged_is_refused():
    email = unique_email("forged")
    github_state = url_params(start("github"))["state"]
    provider_next("corp", sub=sub(), email=email, email_verified=True)
    params = authorize(start("corp"))
    real = params["state"]
    # Made for github, offered to corp; made up; the real one with a character changed.
    flipped = real[:-1] + ("A" if real[-1] != "A" else "B")
    for state in (github_state, "forged", "x" * len(real), flipped, real + "x"):
        assert finish("corp", params["code"], state) == (400, INVALID_STATE), state
    assert email_claim(email) is None
    # And the state made for corp, offered to github.
    provider_next("github", id=github_id(), email=email, email_verified=True)
    gh = authorize(start("github"))
    assert finish("github", gh["code"], real) == (400, INVALID_STATE)
    assert email_claim(email) is None


@pytest.mark.parametrize("provider", ["corp", "github"])
def test_a_code_the_provider_refuses_fails(provider):
    # (GitHub refuses a code with a 200 and an `error` field.)
    email = unique_email("badcode")
    provider_next(provider, sub=str(github_id()), email=email, email_verified=True)
    params = authorize(start(provider))
    assert finish(provider, "not-a-code", params["state"]) == (400, PROVIDER_FAILED)
    assert email_claim(email) is None


@pytest.mark.parametrize("outage", [{"token_status": 503}, {"token_delay": 8}], ids=["503", "no-answer-in-time"])
@pytest.mark.parametrize("provider", ["corp", "github"])
def test_a_provider_that_cannot_be_reached_is_a_503(provider, outage):
    email = unique_email("outage")
    status, body = sign_in(provider, sub=str(github_id()), email=email, **outage)
    assert status == 503 and isinstance(body, dict) and "detail" in body, (status, body)
    assert email_claim(email) is None


@pytest.mark.parametrize(
    "tamper", ["nonce", "no_nonce", "aud", "azp", "iss", "expired", "future_iat", "signature", "wrong_key", "alg_none"]
)
def test_an_id_token_that_fails_verification_signs_in_nobody(tamper):
    email, subject = unique_email("tampered"), sub()
    status, body = sign_in("corp", sub=subject, email=email, tamper=tamper)
    assert (status, body) == (400, PROVIDER_FAILED), tamper
    assert email_claim(email) is None, "no account was made"
    # The same identity, with an ID token as it should be: a new account (nothing half-made).
    assert signed_in("corp", sub=subject, email=email)["user"] == email


def test_an_id_token_signed_with_es256_is_accepted():
    email = unique_email("es256")
    assert signed_in("corp", sub=sub(), email=email, alg="ES256")["user"] == email


@pytest.mark.parametrize(
    "verified", [False, "false", None, "yes", 1], ids=["false", "false-string", "absent", "yes-string", "one"]
)
def test_an_unverified_email_neither_creates_nor_links(verified):
    email = unique_email("unverified")
    identity = {"sub": sub(), "email": email}
    if verified is not None:
        identity["email_verified"] = verified
    provider_next("corp", **identity)
    params = authorize(start("corp"))
    assert finish("corp", params["code"], params["state"]) == (400, NO_EMAIL)
    assert email_claim(email) is None
    # Nor does it link to an active account with that address.
    owner = active_login(email)["access"]
    assert sign_in("corp", sub=identity["sub"], email=email, email_verified=False) == (400, NO_EMAIL)
    assert identities(owner) == []


def test_no_email_at_all_is_refused():
    assert sign_in("corp", sub=sub()) == (400, NO_EMAIL)


def test_email_verified_as_the_string_true_is_trusted():
    email = unique_email("stringtrue")
    assert signed_in("corp", sub=sub(), email=email, email_verified="true")["user"] == email


def test_a_provider_not_trusted_for_email_neither_creates_nor_links():
    email = unique_email("untrusted")
    assert sign_in("untrusted", sub=sub(), email=email, email_verified=True) == (400, NO_EMAIL)
    assert email_claim(email) is None
    owner = active_login(email)["access"]
    assert sign_in("untrusted", sub=sub(), email=email, email_verified=True) == (400, NO_EMAIL)
    assert identities(owner) == []


def test_an_active_password_account_is_linked_and_its_owner_told():
    email = unique_email("linked")
    pair = active_login(email)
    account = me(pair["access"])
    before = len(ses_messages_to(email))
    subject = sub()
    body = signed_in("corp", sub=subject, email=email, given_name="Other", family_name="Name")
    assert body["user"] == email and claims(body["access"])["amr"] == ["fed"], body
    after = me(body["access"])
    assert after["id"] == account["id"], (after, account)
    # The profile is the account's, not the provider's.
    assert (after["first_name"], after["last_name"]) == (account["first_name"], account["last_name"])
    sent = ses_messages_to(email)
    assert len(sent) == before + 1, [m.get("subject") for m in sent]
    status, mails, _ = call("GET", "/_dev/emails?to=" + email)
    assert status == 200 and mails, mails
    # The notice names the provider by its label (`corp`: none configured, so its name).
    notice = mails[-1]
    assert notice["kind"] == "IdentityLinked" and "corp" in notice["subject"], notice
    assert sent[-1]["subject"] == notice["subject"]
    # The password still works, and the link is listed.
    assert call("POST", "/auth/jwt/create/", {"email": email, "password": PASSWORD})[0] == 200
    assert [i["provider"] for i in identities(pair["access"])] == ["corp"]
    # Another subject of the same provider with the same address: refused.
    assert sign_in("corp", sub=sub(), email=email) == (400, ALREADY_LINKED)
    # The linked subject signs in again without another notice.
    assert me(signed_in("corp", sub=subject, email=email)["access"])["id"] == account["id"]
    assert len(ses_messages_to(email)) == before + 1


def test_a_registration_never_activated_is_replaced():
    email = unique_email("squatted")
    status, registered, _ = call("POST", "/auth/users/", {"email": email, "password": PASSWORD})
    assert status == 201, registered
    uid, token = activation_link(email).split("/")[-2:]
    body = signed_in("corp", sub=sub(), email=email, given_name="Real", family_name="Owner")
    account = me(body["access"])
    assert account["id"] != registered["id"] and account["is_active"] is True, account
    assert (account["first_name"], account["last_name"]) == ("Real", "Owner"), account
    assert email_claim(email)["user_id"] == account["id"]
    assert item(f"USER#{registered['id']}", "PROFILE") is None, "the old registration is gone"
    # The old registration's link and password are dead.
    status, answer, _ = call("POST", "/auth/users/activation/", {"uid": uid, "token": token})
    assert (status, answer) == (400, {"uid": ["Invalid user id or user doesn't exist."]}), answer
    assert call("POST", "/auth/jwt/create/", {"email": email, "password": PASSWORD})[:2] == (401, NO_ACCOUNT)
    assert me(body["access"])["is_active"] is True


def test_a_disabled_account_is_refused():
    # Matched by email.
    email = unique_email("disabled")
    pair = active_login(email)
    deactivate(email, me(pair["access"])["id"])
    status, body = sign_in("corp", sub=sub(), email=email)
    assert (status, body["code"]) == (403, "account_inactive"), body
    assert isinstance(body["detail"], str) and set(body) == {"detail", "code"}, body
    # Matched by its link.
    email, subject = unique_email("disabledlink"), sub()
    access = signed_in("corp", sub=subject, email=email)["access"]
    deactivate(email, me(access)["id"])
    status, body = sign_in("corp", sub=subject, email=email)
    assert (status, body["code"]) == (403, "account_inactive"), body


# -- GitHub ----------------------------------------------------------------------------------


def test_github_signs_in_with_the_primary_verified_email():
    primary, other = unique_email("octo"), unique_email("octo-other")
    ident = github_id()
    emails = [
        {"email": other, "primary": False, "verified": True, "visibility": None},
        {"email": primary, "primary": True, "verified": True, "visibility": "private"},
    ]
    body = signed_in("github", id=ident, login="gracehopper", name="Grace Brewster Hopper", emails=emails)
    assert body["user"] == primary and claims(body["access"])["amr"] == ["fed"], body
    account = me(body["access"])
    assert (account["email"], account["is_active"]) == (primary, True), account
    assert (account["first_name"], account["last_name"]) in (("Grace", "Brewster Hopper"), ("Grace Brewster", "Hopper")), account
    assert email_claim(other) is None
    linked = identities(body["access"])
    assert [(i["provider"], i["label"]) for i in linked] == [("github", "GitHub")], linked
    # The same GitHub user, whose primary address changed since: the same account.
    moved = [{"email": unique_email("octo-new"), "primary": True, "verified": True, "visibility": "private"}]
    again = signed_in("github", id=ident, login="gracehopper", name="Grace Hopper", emails=moved)
    assert me(again["access"])["id"] == account["id"], again


@pytest.mark.parametrize(
    "emails",
    [
        [{"email": "PRIMARY", "primary": True, "verified": False, "visibility": "private"}],
        [
            {"email": "PRIMARY", "primary": True, "verified": False, "visibility": "private"},
            {"email": "OTHER", "primary": False, "verified": True, "visibility": None},
        ],
        [],
    ],
    ids=["unverified-primary", "unverified-primary-verified-secondary", "no-emails"],
)
def test_github_without_a_primary_verified_email_is_refused(emails):
    primary, other = unique_email("gh-unverified"), unique_email("gh-secondary")
    emails = [dict(e, email={"PRIMARY": primary, "OTHER": other}[e["email"]]) for e in emails]
    assert sign_in("github", id=github_id(), login="someone", name="Some One", emails=emails) == (400, NO_EMAIL)
    assert email_claim(primary) is None and email_claim(other) is None


# -- identities ------------------------------------------------------------------------------


def test_identities_are_listed_and_unlinked_once_a_password_is_set():
    email = unique_email("unlink")
    body = signed_in("corp", sub=sub(), email=email)
    access = body["access"]
    assert call("GET", "/auth/users/me/identities/")[0] == 401
    assert [i["provider"] for i in identities(access)] == ["corp"]
    status, listed, _ = call("GET", "/auth/users/me/identities", token=access)
    assert status == 200 and [i["provider"] for i in listed] == ["corp"], listed
    # The only way in: kept.
    assert call("DELETE", "/auth/users/me/identities/corp/", token=access)[:2] == (400, ONLY_WAY)
    assert call("DELETE", "/auth/users/me/identities/github/", token=access)[0] == 404
    assert call("DELETE", "/auth/users/me/identities/nope/", token=access)[0] == 404
    assert [i["provider"] for i in identities(access)] == ["corp"]

    # A password set through a reset; then the link may go.
    assert call("POST", "/auth/users/reset_password/", {"email": email})[0] == 204
    link = activation_link(email)
    assert "/password/reset/confirm/" in link, link
    uid, token = link.split("/")[-2:]
    new = "a much better passphrase"
    status, answer, _ = call("POST", "/auth/users/reset_password_confirm/", {"uid": uid, "token": token, "new_password": new})
    assert status == 204, answer
    status, pair, _ = call("POST", "/auth/jwt/create/", {"email": email, "password": new})
    assert status == 200, pair
    status, answer, _ = call("DELETE", "/auth/users/me/identities/corp", token=pair["access"])
    assert status == 204, answer
    assert identities(pair["access"]) == []
    assert call("DELETE", "/auth/users/me/identities/corp/", token=pair["access"])[0] == 404
    # The owner is told (beyond SPEC.md: the notice the implementation sends).
    status, mails, _ = call("GET", "/_dev/emails?to=" + email)
    assert mails[-1]["kind"] == "IdentityUnlinked" and "corp" in mails[-1]["subject"], mails[-1]
    assert ses_messages_to(email)[-1]["subject"] == mails[-1]["subject"]


# -- a second factor -------------------------------------------------------------------------


def test_an_account_with_two_step_sign_in_finishes_with_its_code():
    email = unique_email("socialmfa")
    pair = active_login(email)
    totp, _ = enrol(pair["access"])
    account = me(pair["access"])
    status, challenge = sign_in("corp", sub=sub(), email=email)
    assert status == 401 and challenge["code"] == "mfa_required" and "access" not in challenge, challenge
    # Exactly as a password sign-in answers it.
    _, by_password, _ = call("POST", "/auth/jwt/create/", {"email": email, "password": PASSWORD})
    assert set(challenge) == set(by_password), (challenge, by_password)
    assert {k: v for k, v in challenge.items() if k != "mfa_token"} == {k: v for k, v in by_password.items() if k != "mfa_token"}
    status, tokens, _ = call("POST", "/auth/mfa/verify/", {"mfa_token": challenge["mfa_token"], "code": totp.now()})
    assert status == 200 and tokens["access"] and tokens["refresh"], tokens
    assert claims(tokens["access"])["amr"] == ["fed", "otp", "mfa"]
    assert me(tokens["access"])["id"] == account["id"]
