"""The account pages in a real browser: headless Chromium walks them as a person would, and each
step is checked twice, in what the page shows and in what the API and the table then hold.

Every test also runs axe-core on each page and state it passes through (a serious or critical
violation fails it) and fails on any console error the page causes (a CSP refusal, an uncaught
exception); see conftest.py. Screenshots land in .dev/screenshots/.
"""

import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pyotp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import (
    BASE,
    FAKE_PROVIDERS,
    PASSWORD,
    active_account,
    call,
    claims,
    emailed_link,
    emails_to,
    get,
    item,
    login,
    next_identity,
    partition,
    profile,
    sessions_of,
    unique_email,
    user_id,
)

NEW_PASSWORD = "a much better passphrase"
# The server's ACCESS_TOKEN_LIFETIME in seconds, as run.sh sets it (300 by default).
ACCESS_LIFETIME = int(os.environ.get("ACCESS_TOKEN_LIFETIME", "300"))
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
RECOVERY_CODE = re.compile(r"\b[a-z0-9]{5}-[a-z0-9]{5}\b")
FAKE = "MDFhMjNiNjktYzFiZS03MDRk/cz8kq2-0123456789abcdef0123456789abcdef"
PAGES = [
    "/register",
    "/password/reset",
    "/login",
    "/account",
    f"/activate/{FAKE}",
    f"/password/reset/confirm/{FAKE}",
    f"/email/change/confirm/{FAKE}",
]


# --- helpers --------------------------------------------------------------------------------------


def fill_password_pair(page, first, second, value):
    """Types `value` in `first` and, when the retype setting shows it, in `second`."""
    page.fill(first, value)
    if page.exists(second) and page.shown(second):
        page.fill(second, value)


def account_email(page):
    page.wait(lambda d: page.text_of("account-email"), "#account-email to show the address")
    return page.text_of("account-email")


def no_token_in_reach(page):
    """No JWT in the page's URL nor in its storage (the access token is kept in memory, the refresh
    token in an HttpOnly cookie), and the refresh cookie is out of the page's script's reach."""
    assert not JWT.search(page.url), f"a token in the URL: {page.url}"
    stored = page.d.execute_script(
        "return JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    assert not JWT.search(stored), f"a token in web storage: {stored[:300]}"
    assert "gatehouse_refresh" not in page.d.execute_script("return document.cookie")


def assert_refresh_cookie(page):
    """The browser holds the session's refresh token as the cookie the contract describes: its
    claims."""
    cookie = page.refresh_cookie()
    assert cookie, f"no gatehouse_refresh cookie; cookies: {[c['name'] for c in page.cookies()]}"
    assert cookie["httpOnly"] and cookie["secure"], cookie
    assert cookie["sameSite"] == "Strict" and cookie["path"] == "/auth/jwt", cookie
    no_token_in_reach(page)
    return claims(cookie["value"])


def sign_out(page):
    page.click("logout")
    page.view("login")
    assert page.refresh_cookie() is None, "signing out clears the refresh cookie"


def wait_path(page, path):
    page.wait(lambda d: page.path().rstrip("/") == path, f"the browser to be at {path}")


def passkey_items(email):
    return partition(f"USER#{user_id(email)}", "WEBAUTHN#")


def enrol_totp_over_the_api(email):
    """Two-step sign-in turned on for `email` through the API (a separate sign-in): the pyotp.TOTP."""
    status, pair = login(email)
    assert status == 200, pair
    status, body, _ = call("POST", "/auth/mfa/totp/", {"current_password": PASSWORD}, token=pair["access"])
    assert status == 200, body
    totp = pyotp.parse_uri(body["otpauth_url"])
    status, body, _ = call("POST", "/auth/mfa/totp/confirm/", {"code": totp.at(time.time() - 30)}, token=pair["access"])
    assert status == 200, body
    call("POST", "/auth/jwt/blacklist/", {"refresh": pair["refresh"]})
    return totp


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_carries_its_security_headers(path):
    status, headers, body = get(path)
    assert status == 200, (status, body[:300])
    assert headers["Content-Type"].startswith("text/html"), headers["Content-Type"]
    csp = headers.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, csp
    assert directives.get("frame-ancestors") == ["'none'"], csp
    assert "script-src" in directives or "default-src" in directives, csp
    assert headers.get("Referrer-Policy") == "no-referrer"
    assert headers.get("Cache-Control") == "no-store"
    # Nothing inline that the policy would refuse: every script is a file or inert data.
    for tag in re.findall(r"<script\b[^>]*>", body):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "<style" not in body.lower(), "an inline style sheet"
    for tag in re.findall(r"<[a-zA-Z][^>]*>", body):
        assert not re.search(r"\s(on[a-z]+|style)\s*=", tag, re.I), f"an inline handler or style: {tag}"
    if "/activate/" in path or "/confirm/" in path:
        # The token is in the path; the page must not hand it to another origin.
        for url in re.findall(r"(?:src|href|action)=\"([^\"]+)\"", body):
            assert not urllib.parse.urlsplit(url).netloc, f"the link page loads {url}"


@pytest.mark.parametrize(
    "asset, kind", [("/pages/app.js", "javascript"), ("/pages/app.css", "text/css"), ("/pages/theme.css", "text/css")]
)
def test_the_assets_are_served(asset, kind):
    status, headers, body = get(asset)
    assert status == 200 and kind in headers["Content-Type"] and body.strip(), (status, headers["Content-Type"])


def test_register_then_activate_from_the_emailed_link_then_sign_in(page):
    email = unique_email("ada")
    page.open("/register")
    page.visible("register-form")
    page.audit("/register")
    page.shot("register")

    # A password the policy refuses is shown at its field, and nothing is created.
    page.fill("email", email)
    fill_password_pair(page, "password", "re_password", "short")
    page.click("register-submit")
    assert page.field_error("password")
    assert page.focused() == "password", "the focus goes to the field to fix"
    page.audit("/register with a field error")
    assert user_id(email) is None

    fill_password_pair(page, "password", "re_password", PASSWORD)
    page.click("register-submit")
    assert "email" in page.status().lower()
    page.hidden("register-form")
    page.audit("/register, done")
    page.shot("register-done")
    assert profile(email)["is_active"] is False
    status, body = login(email)
    assert (status, body["code"]) == (403, "account_inactive"), body

    # The emailed link, opened as a person would: it points at the pages' origin.
    link = emailed_link(email, "/activate/")
    assert link.startswith(BASE + "/activate/"), link
    uid = user_id(email)
    codes_before = partition(f"USER#{uid}", "CODE#")
    page.open(link)
    page.visible("activate-form")
    page.audit("/activate")
    page.shot("activate")
    # Opening it spent nothing: the account is still inactive and its code still there.
    assert profile(email)["is_active"] is False
    assert login(email)[0] == 403
    assert partition(f"USER#{uid}", "CODE#") == codes_before and codes_before
    page.click("activate-submit")
    page.status()
    login_link = page.visible("login-link")
    assert urllib.parse.urlsplit(login_link.get_attribute("href")).path.rstrip("/") == "/login"
    assert profile(email)["is_active"] is True
    page.audit("/activate, done")
    page.shot("activate-done")

    page.click("login-link")
    wait_path(page, "/login")
    page.view("login")
    page.audit("/login")
    page.shot("login")
    page.fill("email", email)
    page.fill("password", "not the password")
    page.click("login-submit")
    assert page.form_error()
    page.view("login")
    assert page.focused() == "form-error", "the focus goes to the error, which is read out"
    page.audit("/login with a wrong password")
    page.shot("login-error")

    # This time from the keyboard alone: Tab to the password, type it, Enter.
    field = page.tab_to("password")
    field.clear()
    field.send_keys(PASSWORD + Keys.ENTER)
    page.view("account")
    page.focus_within("account-view")
    assert account_email(page) == email
    page.audit("/account")
    page.shot("account")
    # The session is the browser's: its refresh token in an HttpOnly cookie, the one session in
    # the table; a reload keeps it (no token stored where a script could read it).
    sid = assert_refresh_cookie(page)["sid"]
    assert list(sessions_of(email)) == [sid]
    page.d.refresh()
    page.view("account")
    assert account_email(page) == email
    no_token_in_reach(page)


def test_two_step_sign_in_enrolled_on_the_account_page(page):
    email = active_account(unique_email("totp"))
    page.sign_in(email, path="/account")
    page.click("totp-start")
    secret = re.sub(r"\s", "", page.visible("totp-secret").text)
    assert re.fullmatch(r"[A-Z2-7]{16,}=*", secret), secret
    qr = page.visible("totp-qr")
    assert page.d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", qr), "the QR code"
    page.visible("totp-confirm-form")
    page.audit("/account, TOTP enrolment")
    page.shot("account-totp-enrol")
    uid = user_id(email)
    assert item(f"USER#{uid}", "MFA#RECOVERY") is None

    # The code an authenticator app shows (the previous 30 s step's: accepted, and it leaves the
    # current step's code unused for the sign-in below).
    totp = pyotp.TOTP(secret)
    page.fill("totp-code", totp.at(time.time() - 30))
    page.click("totp-confirm-submit")
    page.visible("recovery-codes")
    codes = RECOVERY_CODE.findall(page.text_of("recovery-codes").lower())
    assert len(set(codes)) == 10, page.text_of("recovery-codes")
    assert item(f"USER#{uid}", "MFA#TOTP") and item(f"USER#{uid}", "MFA#RECOVERY")
    page.visible("totp-disable-form")
    page.visible("recovery-regenerate")
    page.audit("/account, recovery codes shown")
    page.shot("account-recovery-codes")

    # Signed out, a password sign-in asks for the second step.
    sign_out(page)
    page.fill("email", email)
    page.fill("password", PASSWORD)
    page.click("login-submit")
    page.view("mfa")
    page.focus_within("mfa-view")
    page.audit("/login, second step")
    page.shot("mfa")
    assert page.refresh_cookie() is None, "no session before the second step"
    page.fill("code", "000000" if totp.now() != "000000" else "111111")
    page.click("mfa-submit")
    assert page.field_error("code")
    page.view("mfa")
    page.audit("/login, second step, a wrong code")
    page.fill("code", totp.now())
    page.click("mfa-submit")
    page.view("account")
    assert account_email(page) == email
    assert "otp" in assert_refresh_cookie(page)["amr"]

    # ... or a recovery code in the same field, once.
    sign_out(page)
    page.fill("email", email)
    page.fill("password", PASSWORD)
    page.click("login-submit")
    page.view("mfa")
    page.fill("code", codes[0])
    page.click("mfa-submit")
    page.view("account")
    status, body = login(email)
    assert status == 401 and body["code"] == "mfa_required", body
    status, body, _ = call("POST", "/auth/mfa/verify/", {"mfa_token": body["mfa_token"], "recovery_code": codes[0]})
    assert status == 400, "a recovery code signs in once"

    # A new set of recovery codes, for a code from the app (asked for when the button is
    # pressed; a code of the next step: this one's may be spent); the old set is dead.
    page.click("recovery-regenerate")
    page.fill("stepup-code", totp.at(time.time() + 30))
    page.click("stepup-submit")
    page.wait(lambda d: set(RECOVERY_CODE.findall((page.text_of("recovery-codes") or "").lower())) - set(codes),
              "new recovery codes")
    new_codes = RECOVERY_CODE.findall(page.text_of("recovery-codes").lower())
    assert len(set(new_codes)) == 10 and not set(new_codes) & set(codes), (codes, new_codes)
    page.audit("/account, new recovery codes")
    status, body = login(email)
    status, body, _ = call("POST", "/auth/mfa/verify/", {"mfa_token": body["mfa_token"], "recovery_code": codes[1]})
    assert status == 400, "the old set is dead"

    # Turned off from the account page, with one of the new recovery codes.
    page.fill("totp-disable-code", new_codes[0])
    page.click("totp-disable-submit")
    page.visible("totp-start")
    assert item(f"USER#{uid}", "MFA#TOTP") is None and item(f"USER#{uid}", "MFA#RECOVERY") is None
    assert login(email)[0] == 200
    page.audit("/account, two-step sign-in off")


def test_a_passkey_added_on_the_account_page_signs_in_without_a_password(page, authenticator):
    driver = authenticator
    email = active_account(unique_email("passkey"))
    page.sign_in(email, path="/account")
    page.fill("passkey-name", "This laptop")
    page.click("passkey-add")
    page.wait(lambda d: page.find("#passkey-list li[data-credential-id]"), "the passkey in #passkey-list")
    (li,) = page.find("#passkey-list li[data-credential-id]")
    cid = li.get_attribute("data-credential-id")
    assert "This laptop" in li.text, li.text
    # The authenticator made a discoverable credential for localhost; the table holds its public
    # half under that id and name.
    (held,) = driver.get_credentials()
    assert held.rp_id == "localhost" and held.is_resident_credential
    assert held.id.rstrip("=") == cid, (held.id, cid)
    (stored,) = passkey_items(email)
    assert stored["sk"] == f"WEBAUTHN#{cid}" and stored["name"] == "This laptop"
    page.audit("/account with a passkey")
    page.shot("account-passkey")
    # A second one on the same device: the authenticator refuses (the account's passkeys are
    # excluded), and the page says so.
    page.click("passkey-add")
    page.wait(lambda d: page.text_of("form-error") or page.text_of("status"), "a message about the second passkey")
    assert len(passkey_items(email)) == 1 and len(driver.get_credentials()) == 1

    # Signed out, the passkey signs in: no email, no password typed.
    sign_out(page)
    page.click("passkey-login")
    page.view("account")
    assert account_email(page) == email
    assert "swk" in assert_refresh_cookie(page)["amr"]
    assert page.by_id("password").get_attribute("value") == ""

    # With two-step sign-in on, it also answers the second step of a password sign-in.
    enrol_totp_over_the_api(email)
    sign_out(page)
    page.fill("email", email)
    page.fill("password", PASSWORD)
    page.click("login-submit")
    page.view("mfa")
    page.click("mfa-passkey")
    page.view("account")
    amr = assert_refresh_cookie(page)["amr"]
    assert "pwd" in amr and "swk" in amr, amr

    # Removed, it is gone from the list and the table, and no longer signs in.
    page.wait(lambda d: page.find("#passkey-list li[data-credential-id]"), "the passkey in #passkey-list")
    (li,) = page.find("#passkey-list li[data-credential-id]")
    page.click(li.find_element("css selector", ".passkey-remove"))
    page.wait(lambda d: not page.find("#passkey-list li[data-credential-id]"), "the passkey to leave the list")
    assert passkey_items(email) == []
    sign_out(page)
    page.click("passkey-login")
    assert page.form_error()
    page.view("login")
    assert page.refresh_cookie() is None


def test_a_forgotten_password_is_replaced_from_the_emailed_link(page):
    email = active_account(unique_email("reset"))
    page.open("/password/reset")
    page.visible("reset-form")
    page.audit("/password/reset")
    page.shot("password-reset")
    page.fill("email", email)
    page.click("reset-submit")
    page.status()
    page.audit("/password/reset, sent")

    link = emailed_link(email, "/password/reset/confirm/")
    assert link.startswith(BASE + "/password/reset/confirm/"), link
    uid = user_id(email)
    codes_before = partition(f"USER#{uid}", "CODE#")
    page.open(link)
    page.visible("reset-confirm-form")
    page.audit("/password/reset/confirm")
    page.shot("password-reset-confirm")
    # Opening the link changed nothing: the old password still works, the code is unspent.
    assert partition(f"USER#{uid}", "CODE#") == codes_before and codes_before
    assert login(email)[0] == 200

    fill_password_pair(page, "new_password", "re_new_password", "short")
    page.click("reset-confirm-submit")
    assert page.field_error("new_password")
    page.audit("/password/reset/confirm with a field error")
    fill_password_pair(page, "new_password", "re_new_password", NEW_PASSWORD)
    page.click("reset-confirm-submit")
    page.status()
    page.visible("login-link")
    page.audit("/password/reset/confirm, done")
    assert login(email)[0] == 401 and login(email, NEW_PASSWORD)[0] == 200

    page.click("login-link")
    wait_path(page, "/login")
    page.sign_in(email, PASSWORD, expect=None)
    assert page.form_error()
    page.view("login")
    page.fill("password", NEW_PASSWORD)
    page.click("login-submit")
    page.view("account")
    assert account_email(page) == email


def test_sessions_are_listed_and_ended_from_the_account_page(page):
    email = active_account(unique_email("sessions"))
    status, other = login(email)  # another device, signed in over the API
    assert status == 200
    page.sign_in(email, path="/account")
    mine = assert_refresh_cookie(page)["sid"]
    theirs = claims(other["refresh"])["sid"]
    page.wait(lambda d: len(page.find("#sessions-list li[data-session-id]")) == 2, "two sessions listed")
    listed = {li.get_attribute("data-session-id"): li for li in page.find("#sessions-list li[data-session-id]")}
    assert set(listed) == {mine, theirs} == set(sessions_of(email)), (set(listed), mine, theirs)
    assert "current" in listed[mine].get_attribute("class").split()
    assert not listed[mine].find_elements("css selector", ".end-session")
    assert "current" not in (listed[theirs].get_attribute("class") or "").split()
    page.audit("/account with two sessions")
    page.shot("account-sessions")

    page.click(listed[theirs].find_element("css selector", ".end-session"))
    page.wait(
        lambda d: [li.get_attribute("data-session-id") for li in page.find("#sessions-list li[data-session-id]")]
        == [mine],
        "the other session to leave the list",
    )
    assert set(sessions_of(email)) == {mine}
    status, body, _ = call("POST", "/auth/jwt/refresh/", {"refresh": other["refresh"]})
    assert status == 401, body

    # Log out everywhere: this browser and a third device both end.
    status, third = login(email)
    cookie = page.refresh_cookie()["value"]
    page.click("logout-everywhere")
    page.view("login")
    assert sessions_of(email) == {}
    assert call("POST", "/auth/jwt/refresh/", {"refresh": third["refresh"]})[0] == 401
    assert call("POST", "/auth/jwt/refresh/", {"refresh": cookie})[0] == 401
    assert page.refresh_cookie() is None, "logging out everywhere clears the refresh cookie"
    page.open("/account")
    page.view("login")


def test_an_email_change_is_confirmed_from_the_link_sent_to_the_new_address(page):
    email, new_email = unique_email("old"), unique_email("new")
    active_account(email)
    uid = user_id(email)
    page.sign_in(email, path="/account")
    page.fill("new_email", new_email)
    page.fill("email-current_password", PASSWORD)
    page.click("email-submit")
    page.status()
    assert profile(email)["email"] == email and user_id(new_email) is None, "nothing changes before the link"

    link = emailed_link(new_email, "/email/change/confirm/")
    assert link.startswith(BASE + "/email/change/confirm/"), link
    page.open(link)
    page.visible("email-confirm-form")
    page.audit("/email/change/confirm")
    page.shot("email-change-confirm")
    # Opening the link changed nothing.
    assert user_id(new_email) is None and user_id(email) == uid
    page.click("email-confirm-submit")
    page.status()
    page.audit("/email/change/confirm, done")
    assert user_id(new_email) == uid and user_id(email) is None
    assert item(f"USER#{uid}", "PROFILE")["email"] == new_email

    # The browser's session goes on under the new address; signed out, the new address signs in.
    page.open("/account")
    page.view("account")
    assert account_email(page) == new_email
    sign_out(page)
    page.sign_in(new_email, path="/account")
    assert account_email(page) == new_email


def test_profile_password_and_deletion_on_the_account_page(page):
    email = active_account(unique_email("profile"))
    uid = user_id(email)
    page.sign_in(email, path="/account")
    page.fill("first_name", "Ada")
    page.fill("last_name", "Lovelace")
    page.click("profile-submit")
    page.status()
    stored = item(f"USER#{uid}", "PROFILE")
    assert (stored["first_name"], stored["last_name"]) == ("Ada", "Lovelace")

    page.fill("current_password", "not the password")
    fill_password_pair(page, "new_password", "re_new_password", NEW_PASSWORD)
    page.click("password-submit")
    assert page.field_error("current_password")
    page.audit("/account with a field error")
    page.fill("current_password", PASSWORD)
    page.click("password-submit")
    page.status()
    assert login(email)[0] == 401 and login(email, NEW_PASSWORD)[0] == 200
    if not page.shown("account-view"):  # the change ended this session too: sign in again
        page.sign_in(email, NEW_PASSWORD, path="/account")

    page.fill("delete-current_password", NEW_PASSWORD)
    page.click("delete-submit")
    page.view("login")
    assert user_id(email) is None and partition(f"USER#{uid}") == []
    # The answer to the deletion removed the refresh cookie.
    assert page.refresh_cookie() is None, "deleting the account clears the refresh cookie"
    page.open("/account")
    page.view("login")


def test_phone_sized_pages(page):
    """One pass at a phone's size: every page and each state of the account page, screenshotted
    and checked by axe."""
    page.phone()
    page.open("/register")
    page.visible("register-form")
    page.audit("phone /register")
    page.shot("phone-register")
    email = unique_email("phone")
    page.fill("email", email)
    fill_password_pair(page, "password", "re_password", PASSWORD)
    page.click("register-submit")
    page.status()
    page.open(emailed_link(email, "/activate/"))
    page.visible("activate-form")
    page.audit("phone /activate")
    page.shot("phone-activate")
    page.click("activate-submit")
    page.visible("login-link")

    page.open("/password/reset")
    page.visible("reset-form")
    page.audit("phone /password/reset")
    page.shot("phone-password-reset")
    page.open(f"/password/reset/confirm/{FAKE}")
    page.visible("reset-confirm-form")
    page.audit("phone /password/reset/confirm")
    page.shot("phone-password-reset-confirm")
    page.open(f"/email/change/confirm/{FAKE}")
    page.visible("email-confirm-form")
    page.audit("phone /email/change/confirm")
    page.shot("phone-email-change-confirm")

    page.open("/login")
    page.view("login")
    page.audit("phone /login")
    page.shot("phone-login")
    totp = enrol_totp_over_the_api(email)
    page.sign_in(email, expect="mfa")
    page.audit("phone /login, second step")
    page.shot("phone-mfa")
    page.fill("code", totp.now())
    page.click("mfa-submit")
    page.view("account")
    page.audit("phone /account")
    page.shot("phone-account")


def test_a_spent_or_broken_link_says_so(page):
    """Each link page, given a link that was used already or never was one: a message, nothing
    changed, and still no accessibility faults."""
    email = unique_email("spent")
    active_account(email)
    link = emailed_link(email, "/activate/")
    page.open(link)
    page.click("activate-submit")
    page.wait(lambda d: page.text_of("status") or page.text_of("form-error"), "a message about the used link")
    assert profile(email)["is_active"] is True
    page.audit("/activate, a used link")

    page.open(f"/activate/{FAKE}")
    page.click("activate-submit")
    assert page.form_error()
    page.audit("/activate, a broken link")
    page.shot("activate-broken-link")

    page.open(f"/password/reset/confirm/{FAKE}")
    fill_password_pair(page, "new_password", "re_new_password", NEW_PASSWORD)
    page.click("reset-confirm-submit")
    assert page.form_error()
    page.audit("/password/reset/confirm, a broken link")

    page.open(f"/email/change/confirm/{FAKE}")
    page.click("email-confirm-submit")
    assert page.form_error()
    page.audit("/email/change/confirm, a broken link")


def test_dark_colour_scheme(page):
    """The pages follow the system's dark scheme (color-scheme: light dark): the same checks, and
    axe's colour contrast among them, with prefers-color-scheme: dark."""
    page.dark()
    email = active_account(unique_email("dark"))
    for path, form in (("/register", "register-form"), ("/password/reset", "reset-form"),
                       (f"/activate/{FAKE}", "activate-form")):
        page.open(path)
        page.visible(form)
        page.audit(f"dark {path}")
    page.open("/login")
    page.view("login")
    page.fill("email", email)
    page.fill("password", "not the password")
    page.click("login-submit")
    assert page.form_error()
    page.audit("dark /login with a wrong password")
    page.shot("dark-login-error")
    page.sign_in(email, path="/account")
    page.click("totp-start")
    page.visible("totp-secret")
    page.audit("dark /account, TOTP enrolment")
    page.shot("dark-account")


@pytest.mark.skipif(ACCESS_LIFETIME > 10, reason="needs a dev server with ACCESS_TOKEN_LIFETIME of a few seconds")
def test_an_expired_access_token_is_renewed_from_the_cookie(page):
    """The access token lives in the page's memory for ACCESS_TOKEN_LIFETIME (a few seconds under
    run.sh); once it has expired, the next action renews it with the refresh cookie, unseen."""
    email = active_account(unique_email("renew"))
    page.sign_in(email, path="/account")
    before = page.refresh_cookie()["value"]
    time.sleep(ACCESS_LIFETIME + 1.5)
    page.fill("first_name", "Grace")
    page.click("profile-submit")
    page.status()
    assert profile(email)["first_name"] == "Grace"
    page.view("account")
    after = page.refresh_cookie()["value"]
    assert after != before, "the refresh token rotated"
    assert list(sessions_of(email)) == [claims(after)["sid"]], "the same one session"


# --- sign-in providers (the fake OpenID Connect provider, `corp` "Corp SSO") ----------------------

needs_provider = pytest.mark.skipif(not FAKE_PROVIDERS, reason="run.sh starts the fake sign-in provider (FAKE_PROVIDERS_URL)")
# Where the page keeps the provider and state of the sign-in it started (sessionStorage).
STARTED = "gatehouse.provider"


def provider_links(email):
    """The account's links to providers in the table (`USER#<id>` / `IDENTITY#<provider>`)."""
    return partition(f"USER#{user_id(email)}", "IDENTITY#")


def listed_providers(page):
    page.wait(lambda d: page.find("#identity-list li[data-provider]"), "a provider in #identity-list")
    return page.find("#identity-list li[data-provider]")


def answer_from_corp():
    """A code and state for `corp`, got without the browser: the API's authorization URL for the
    pages' /login, and where the provider then sends the browser back (not followed)."""
    status, body, _ = call("GET", "/auth/o/corp/?redirect_uri=" + urllib.parse.quote(BASE + "/login", safe=""))
    assert status == 200, body

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(body["authorization_url"], timeout=10)
        raise AssertionError("the provider did not redirect")
    except urllib.error.HTTPError as e:
        assert e.code == 302, e.read()
        back = e.headers["Location"]
    assert back.startswith(BASE + "/login?"), back
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(back).query))
    return q["code"], q["state"]


def started_here(page, state):
    """The page's record of a `corp` sign-in this tab started with `state` (as the button leaves it)."""
    page.d.execute_script(
        "sessionStorage.setItem(arguments[0], JSON.stringify({provider: 'corp', state: arguments[1]}))", STARTED, state
    )


def at_login_without_the_answer(page):
    """The answer (code, state, error) is gone from the address bar."""
    page.wait(lambda d: page.url == BASE + "/login", f"the address to be {BASE}/login")


@needs_provider
def test_a_provider_sign_in_makes_the_account_and_lists_the_provider(page):
    email = unique_email("sso")
    sub = "sso-" + uuid.uuid4().hex[:12]
    next_identity(sub=sub, email=email, email_verified=True, given_name="Grace", family_name="Hopper")
    page.open("/login")
    page.view("login")
    button = page.visible("login-with-corp")
    assert button.text.strip() == "Continue with Corp SSO"
    assert button.get_attribute("type") == "button"
    page.audit("/login with a sign-in provider")
    page.shot("login-provider")
    assert user_id(email) is None

    # From the keyboard: Tab to the button, Enter; the provider sends the browser back at once.
    page.tab_to("login-with-corp").send_keys(Keys.ENTER)
    page.view("account")
    wait_path(page, "/account")
    page.focus_within("account-view")
    assert account_email(page) == email
    assert "code=" not in page.url and "state=" not in page.url, page.url
    # A new active account, named by the provider, without a password; a session in the cookie.
    stored = profile(email)
    assert stored["is_active"] is True and (stored["first_name"], stored["last_name"]) == ("Grace", "Hopper")
    assert login(email)[0] == 401
    assert "fed" in assert_refresh_cookie(page)["amr"]
    assert page.d.execute_script("return sessionStorage.getItem(arguments[0])", STARTED) is None, "spent"

    # The account page lists the link: the label, the provider's address.
    (li,) = listed_providers(page)
    assert li.get_attribute("data-provider") == "corp"
    assert "Corp SSO" in li.text and email in li.text, li.text
    assert [i["sk"] for i in provider_links(email)] == ["IDENTITY#corp"]
    assert not page.shown("identities-empty")
    page.audit("/account with a sign-in provider")
    page.shot("account-provider")
    page.dark()
    page.audit("dark /account with a sign-in provider")
    page.dark(False)

    # It is the only way in (no password, no passkey): removing it is refused, with the reason.
    remove = li.find_element(By.CSS_SELECTOR, ".identity-remove")
    assert "Corp SSO" in remove.get_attribute("textContent"), "the button names the provider it removes"
    page.click(remove)
    assert "only way" in page.form_error()
    assert len(provider_links(email)) == 1
    assert listed_providers(page)
    page.audit("/account, the last way in kept")
    page.shot("account-provider-last-way")

    # Signed out, the same provider account signs in again: by its link, whatever address it
    # now gives.
    sign_out(page)
    next_identity(sub=sub, email="another-" + email, email_verified=True)
    page.click("login-with-corp")
    page.view("account")
    assert account_email(page) == email
    assert user_id("another-" + email) is None


@needs_provider
def test_a_provider_sign_in_to_an_account_with_two_step_sign_in_asks_for_the_code(page):
    email = active_account(unique_email("ssototp"))
    totp = enrol_totp_over_the_api(email)
    next_identity(sub="ssototp-" + uuid.uuid4().hex[:12], email=email, email_verified=True)
    page.open("/login")
    page.view("login")
    page.click("login-with-corp")
    page.view("mfa")
    page.focus_within("mfa-view")
    at_login_without_the_answer(page)
    assert page.refresh_cookie() is None, "no session before the second step"
    page.audit("/login, second step after a provider")
    page.shot("provider-mfa")
    page.fill("code", totp.now())
    page.click("mfa-submit")
    page.view("account")
    assert account_email(page) == email
    amr = assert_refresh_cookie(page)["amr"]
    assert "fed" in amr and "otp" in amr, amr
    # The provider was linked to the existing account by its verified address; the owner is told.
    assert any("linked" in m["subject"] for m in emails_to(email)), [m["subject"] for m in emails_to(email)]

    # The account has a password: the provider can go.
    (li,) = listed_providers(page)
    page.click(li.find_element(By.CSS_SELECTOR, ".identity-remove"))
    assert "Corp SSO" in page.status("no longer linked")
    page.visible("identities-empty")
    assert not page.find("#identity-list li") and provider_links(email) == []
    page.audit("/account, the provider removed")


@needs_provider
def test_a_cancelled_foreign_or_spent_provider_answer_signs_no_one_in(page):
    # Cancelled at the provider: it sends the error back with the state this tab started. Its own
    # text is never shown (anyone can put it in a link).
    page.open("/login")
    page.view("login")
    started_here(page, "s1")
    page.open("/login?error=access_denied&error_description=Phishing+text&state=s1")
    message = page.form_error()
    assert "Corp SSO" in message and "cancelled" in message, message
    assert "Phishing" not in page.d.execute_script("return document.body.innerText")
    at_login_without_the_answer(page)
    page.view("login")
    page.audit("/login, the provider sign-in cancelled")
    page.shot("login-provider-cancelled")

    # A code and state this tab never asked for (a link or a form from someone else): never sent
    # on, so nobody is signed in to someone else's account.
    email = unique_email("foreign")
    next_identity(sub="foreign-" + uuid.uuid4().hex[:12], email=email, email_verified=True)
    code, state = answer_from_corp()
    page.open(f"/login?code={urllib.parse.quote(code)}&state={urllib.parse.quote(state)}")
    assert "not started in this browser tab" in page.form_error()
    at_login_without_the_answer(page)
    assert page.refresh_cookie() is None and user_id(email) is None
    page.audit("/login, a provider answer this tab did not ask for")

    # The same answer for the tab that started it signs in; opened again, the spent state is
    # refused by the API and the page says so.
    started_here(page, state)
    page.open(f"/login?code={urllib.parse.quote(code)}&state={urllib.parse.quote(state)}")
    page.view("account")
    assert account_email(page) == email
    sign_out(page)
    started_here(page, state)
    page.open(f"/login?code={urllib.parse.quote(code)}&state={urllib.parse.quote(state)}")
    assert "Invalid state" in page.form_error()
    page.view("login")
    assert page.refresh_cookie() is None
    page.audit("/login, a spent provider answer")


@needs_provider
def test_an_answer_the_provider_posts_back_finishes_the_sign_in(page):
    """Sign in with Apple answers with response_mode=form_post: the browser posts code, state and
    user from the provider's origin to /login. Here another origin's page (a data: URL) posts them."""
    email = unique_email("formpost")
    next_identity(sub="formpost-" + uuid.uuid4().hex[:12], email=email, email_verified=True)
    code, state = answer_from_corp()
    page.open("/login")
    page.view("login")
    started_here(page, state)
    user = '{"name": {"firstName": "Ada", "lastName": "Lovelace"}}'
    fields = "".join(
        f'<input type="hidden" name="{k}" value="{v.replace(chr(34), "&quot;")}">'
        for k, v in (("code", code), ("state", state), ("user", user))
    )
    form = f'<form method="post" action="{BASE}/login">{fields}</form><script>document.forms[0].submit()</script>'
    page.d.get("data:text/html;charset=utf-8," + urllib.parse.quote(form))
    page.view("account")
    wait_path(page, "/account")
    assert account_email(page) == email
    assert_refresh_cookie(page)
    # Reloaded, the page holds the session from the cookie; nothing is posted again.
    page.d.refresh()
    page.view("account")
    assert account_email(page) == email
    page.audit("/account after a posted provider answer")
