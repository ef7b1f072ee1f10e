"""The browser tests' harness: headless Debian Chromium driven by Selenium 4, the API and the table
read beside it, axe-core's accessibility checks and the screenshots.

tools/browser/run.sh (and `make test`) starts an emulator and a dev server with the cookie
transport on (JWT_COOKIE=on, PROTOCOL=http, FRONTEND_DOMAIN=localhost:PORT) and sets:

- GATEHOUSE_URL: the dev server, as http://localhost:PORT (not 127.0.0.1: a Secure cookie and
  WebAuthn need a secure context, which localhost is and an IP address over http is not);
- MOTO_URL: the emulator, whose DynamoDB holds the table the tests read beside the pages (boto3);
- TABLE_NAME: the table;
- FAKE_PROVIDERS_URL: the local sign-in providers (tools/blackbox/fake_providers.py) whose OpenID
  Connect issuer the dev server knows as provider `corp` ("Corp SSO"); the provider tests are
  skipped without it.

The emailed links are taken out of the text of what the dev server sent (`GET /_dev/emails`).

CHROMIUM and CHROMEDRIVER name the browser and its driver (default Debian's /usr/bin/chromium and
/usr/bin/chromedriver); Selenium Manager is never asked to find or download anything.
UPDATE_SCREENSHOTS=1 also copies the screenshots (.dev/screenshots/) to docs/screenshots/.
"""

import base64
import functools
import json
import os
import pathlib
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = pathlib.Path(__file__).resolve().parents[2]
BASE = os.environ.get("GATEHOUSE_URL", "http://localhost:3000").rstrip("/")
MOTO = os.environ.get("MOTO_URL", "http://127.0.0.1:4566").rstrip("/")
TABLE = os.environ.get("TABLE_NAME", "gatehouse")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
AXE = ROOT / "tools/browser/node_modules/axe-core/axe.min.js"
SHOTS = ROOT / ".dev/screenshots"
# The shots README's "Pages" section shows (docs/screenshots/); the rest stay test artifacts.
DOCUMENTED = {"login", "mfa", "account", "register", "activate", "password-reset-confirm", "phone-login"}
DOC_SHOTS = ROOT / "docs/screenshots"
REPORT = ROOT / ".dev/browser"
PASSWORD = "correct horse battery"
DESKTOP = (1280, 900)
PHONE = (390, 844)
WAIT = float(os.environ.get("BROWSER_WAIT", "10"))
FAKE_PROVIDERS = os.environ.get("FAKE_PROVIDERS_URL", "").rstrip("/")

# Never let Selenium Manager reach the network, whatever the paths above say.
os.environ.setdefault("SE_OFFLINE", "true")


# --- the API, the emails and the table -------------------------------------------------------


def call(method, path, body=None, token=None, headers=None):
    """One request to the API: (status, parsed JSON body or None, headers)."""
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, text, h = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        status, text, h = e.code, e.read(), e.headers
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text.decode(errors="replace")
    return status, parsed, h


def get(path):
    """GET a page as a plain HTTP client: (status, headers, text). Redirects are not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(BASE + path), timeout=30) as resp:
            return resp.status, resp.headers, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode(errors="replace")


def unique_email(prefix="user"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def emails_to(address):
    """The emails the dev server sent to `address`, oldest first: [{subject, text, html, link}]
    (`GET /_dev/emails`, the dev server's record of what it handed to SES; the emulator's own
    dump, /moto-api/data.json, takes seconds once the table holds a few hundred items)."""
    status, mails, _ = call("GET", "/_dev/emails?to=" + urllib.parse.quote(address))
    assert status == 200, mails
    return mails


def emailed_link(address, path_prefix, timeout=10):
    """The newest link to a page under `path_prefix` in the emails sent to `address`, taken out of
    the message's text as a person would click it (the dev server builds it from PROTOCOL and
    FRONTEND_DOMAIN, here http://localhost:PORT)."""
    deadline = time.time() + timeout
    while True:
        links = []
        for m in emails_to(address):
            for url in re.findall(r"https?://[^\s\"'<>]+", m["text"]):
                if urllib.parse.urlsplit(url).path.startswith(path_prefix):
                    links.append(url.rstrip(".,;)"))
        if links:
            return links[-1]
        if time.time() > deadline:
            subjects = [m["subject"] for m in emails_to(address)]
            raise AssertionError(f"no link to {path_prefix} emailed to {address}; subjects: {subjects}")
        time.sleep(0.1)


def link_parts(url):
    """(uid, token) of an emailed link."""
    return tuple(urllib.parse.urlsplit(url).path.rstrip("/").split("/")[-2:])


@functools.lru_cache(maxsize=1)
def table():
    import boto3

    return boto3.resource(
        "dynamodb",
        endpoint_url=MOTO,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).Table(TABLE)


def item(pk, sk):
    """The item with exactly this key, or None (a consistent read)."""
    return table().get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")


def partition(pk, prefix=None):
    """The items under one partition key (those whose sort key starts with `prefix`)."""
    from boto3.dynamodb.conditions import Key

    cond = Key("pk").eq(pk)
    if prefix:
        cond = cond & Key("sk").begins_with(prefix)
    items, start = [], None
    while True:
        kwargs = {"ExclusiveStartKey": start} if start else {}
        page = table().query(KeyConditionExpression=cond, ConsistentRead=True, **kwargs)
        items.extend(page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def user_id(email):
    """The id of the account holding `email`, from its claim in the table (None when unclaimed)."""
    claim = item(f"EMAIL#{email.lower()}", "EMAIL")
    return claim["user_id"] if claim else None


def profile(email):
    """The account's profile item (`USER#<id>` / `PROFILE`), or None."""
    uid = user_id(email)
    return item(f"USER#{uid}", "PROFILE") if uid else None


def sessions_of(email):
    """The account's session items, by id."""
    return {i["sk"].split("#", 1)[1]: i for i in partition(f"USER#{user_id(email)}", "SESSION#")}


def login(email, password=PASSWORD):
    """A sign-in over the API (no cookie): (status, body)."""
    status, body, _ = call("POST", "/auth/jwt/create/", {"email": email, "password": password})
    return status, body


def active_account(email, password=PASSWORD, **fields):
    """A new account, activated through its emailed link over the API."""
    status, body, _ = call("POST", "/auth/users/", {"email": email, "password": password, **fields})
    assert status == 201, body
    uid, token = link_parts(emailed_link(email, "/activate/"))
    status, body, _ = call("POST", "/auth/users/activation/", {"uid": uid, "token": token})
    assert status == 204, body
    return email


def next_identity(**identity):
    """What the fake OpenID Connect provider signs the next sign-ins in as (`POST /control/next`):
    sub, email, email_verified, given_name..."""
    req = urllib.request.Request(
        FAKE_PROVIDERS + "/control/next",
        data=json.dumps({"provider": "oidc", **identity}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# --- the browser -------------------------------------------------------------------------------


def chrome_options():
    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # run as root in a container; the tests load only the dev server's pages
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--password-store=basic",
        "--lang=en-US",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.set_capability("webSocketUrl", False)
    return opts


def start_browser():
    host = urllib.parse.urlsplit(BASE).hostname or ""
    if re.fullmatch(r"[\d.]+|\[?[0-9a-f:]+\]?", host):
        pytest.exit(f"GATEHOUSE_URL={BASE}: use http://localhost:PORT (WebAuthn refuses an IP address)", 2)
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.exit(f"{path} is missing: install Debian's chromium and chromium-driver (tools/lib.sh ensure_chromium)", 2)
    REPORT.mkdir(parents=True, exist_ok=True)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(REPORT / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=chrome_options())
    driver.set_script_timeout(30)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="session")
def driver():
    d = start_browser()
    yield d
    d.quit()


@pytest.fixture(scope="session")
def report():
    """Every axe finding of the run (of any impact), written to .dev/browser/axe.txt at the end."""
    found = []
    yield found
    REPORT.mkdir(parents=True, exist_ok=True)
    with open(REPORT / "axe.txt", "w") as f:
        if not found:
            f.write("no axe-core violations\n")
        for label, v in found:
            f.write(format_violation(label, v) + "\n")


def format_violation(label, v):
    lines = [f"[{label}] {v['impact']}: {v['id']}: {v['help']} ({v['helpUrl']})"]
    for n in v["nodes"][:8]:
        lines.append(f"    at {' '.join(map(str, n['target']))}: {n['html'][:160]}")
        for s in (n.get("summary") or "").splitlines():
            lines.append(f"        {s}")
    if len(v["nodes"]) > 8:
        lines.append(f"    ... and {len(v['nodes']) - 8} more")
    return "\n".join(lines)


AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => ({
  id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
  nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary})),
})))).catch(e => done({error: String(e && e.stack || e)}));
"""

# The DOM contract's elements, by id: the tag each must be when the page has it, and the roles of
# the message areas.
CONTRACT_TAGS = {
    **dict.fromkeys(
        "register-form activate-form reset-form reset-confirm-form email-confirm-form login-form mfa-form "
        "profile-form password-form email-form totp-confirm-form totp-disable-form delete-form".split(),
        "form",
    ),
    **dict.fromkeys("login-view mfa-view account-view".split(), "section"),
    **dict.fromkeys("sessions-list passkey-list identity-list".split(), "ul"),
    **dict.fromkeys(
        "register-submit activate-submit reset-submit reset-confirm-submit email-confirm-submit login-submit "
        "passkey-login mfa-submit mfa-passkey profile-submit password-submit email-submit logout-everywhere "
        "totp-start totp-confirm-submit totp-disable-submit recovery-regenerate passkey-add delete-submit "
        "logout".split(),
        "button",
    ),
    **dict.fromkeys(
        "email password re_password new_password re_new_password code first_name last_name current_password "
        "new_email email-current_password totp-code totp-disable-code passkey-name delete-current_password".split(),
        "input",
    ),
    "totp-qr": "img",
    "totp-secret": "code",
    "login-link": "a",
}
CONTRACT_ROLES = {"status": "status", "form-error": "alert"}

# Console messages that are not the page's fault: a request the API answered 4xx (a wrong
# password, an ended session) is logged by Chromium as a failed resource load.
BENIGN_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d|favicon\.ico")



# What ChromeDriver answers when the condition read the page while it was being replaced (a
# navigation to a provider and back): not an answer, so the wait looks again.
NAVIGATING = ("unhandled inspector error", "target frame detached", "No node with given id", "Cannot find context")


def _while_navigating(cond, driver):
    try:
        return cond(driver)
    except WebDriverException as e:
        if any(m in (e.msg or "") for m in NAVIGATING):
            return False
        raise

class Page:
    """One test's view of the browser: navigation, the DOM contract's ids, waits, the axe checks,
    the screenshots, and what the console said."""

    def __init__(self, driver, report):
        self.d = driver
        self.report = report
        self.violations = []  # (label, violation) of impact serious or critical
        self.console = []  # console errors that are the page's fault
        self.glitches = []  # unfilled placeholders shown to the reader, unlabelled inputs

    # navigation
    def open(self, path_or_url):
        url = path_or_url if "://" in path_or_url else BASE + path_or_url
        self.d.get(url)
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete", "the page to load")
        self.drain_console()
        return self

    @property
    def url(self):
        return self.d.current_url

    def path(self):
        return urllib.parse.urlsplit(self.d.current_url).path

    # finding and waiting
    def wait(self, cond, what, timeout=WAIT):
        try:
            # (An element the page replaced while the condition read it: look again.)
            wait = WebDriverWait(self.d, timeout, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,))
            return wait.until(functools.partial(_while_navigating, cond))
        except TimeoutException:
            self.drain_console()
            raise AssertionError(
                f"waited {timeout} s for {what}; at {self.d.current_url}\n"
                f"#status: {self.text_of('status')!r}\n#form-error: {self.text_of('form-error')!r}\n"
                f"console: {self.console}"
            ) from None

    def find(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def by_id(self, id_):
        found = self.d.find_elements(By.ID, id_)
        return found[0] if found else None

    def exists(self, id_):
        return self.by_id(id_) is not None

    def text_of(self, id_):
        try:
            el = self.by_id(id_)
            return el.text.strip() if el is not None else None
        except Exception:  # noqa: BLE001 - a page being replaced under us
            return None

    def shown(self, id_):
        """The element is there, has no `hidden` attribute (nor an ancestor one) and is displayed."""
        el = self.by_id(id_)
        if el is None:
            return False
        return self.d.execute_script("return !arguments[0].closest('[hidden]')", el) and el.is_displayed()

    def visible(self, id_, timeout=WAIT):
        self.wait(lambda d: self.shown(id_), f"#{id_} to be shown", timeout)
        return self.by_id(id_)

    def hidden(self, id_, timeout=WAIT):
        self.wait(lambda d: not self.shown(id_), f"#{id_} to be hidden", timeout)

    def fill(self, id_, text):
        el = self.visible(id_)
        el.clear()
        el.send_keys(text)
        return el

    def click(self, id_or_el):
        el = self.visible(id_or_el) if isinstance(id_or_el, str) else id_or_el
        self.wait(lambda d: el.is_enabled(), f"{id_or_el} to be enabled")
        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
        el.click()
        return el

    def status(self, *words, timeout=WAIT):
        """The text of #status once it says something (containing each of `words`, any case)."""

        def ready(d):
            t = self.text_of("status") or ""
            return t and all(w.lower() in t.lower() for w in words) and self.shown("status")

        self.wait(ready, f"#status to say {words or 'something'}, where it can be seen", timeout)
        return self.text_of("status")

    def form_error(self, timeout=WAIT):
        self.wait(lambda d: self.text_of("form-error") and self.shown("form-error"), "#form-error", timeout)
        return self.text_of("form-error")

    def field_error(self, input_id, timeout=WAIT):
        """The text of #<input_id>-error once it says something; the input is marked invalid and
        described by it, so a screen reader reads the error with the field."""
        eid = f"{input_id}-error"
        self.wait(lambda d: self.text_of(eid), f"#{eid}", timeout)
        el = self.by_id(input_id)
        assert el.get_attribute("aria-invalid") == "true", f"#{input_id} is not aria-invalid"
        assert eid in (el.get_attribute("aria-describedby") or "").split(), f"#{input_id} is not described by #{eid}"
        return self.text_of(eid)

    def focused(self):
        """The id of the element that has the focus ('' for none)."""
        return self.d.execute_script("return document.activeElement ? document.activeElement.id : ''")

    def focus_within(self, id_):
        """Waits until the focus is on #id_ or inside it."""
        self.wait(
            lambda d: d.execute_script("return !!arguments[0].contains(document.activeElement)", self.by_id(id_)),
            f"the focus to move into #{id_} (it is on #{self.focused()})",
        )

    def tab_to(self, id_, most=30):
        """Presses Tab, as a keyboard user does, until #id_ has the focus; returns it."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        for _ in range(most):
            if self.focused() == id_:
                return self.d.switch_to.active_element
            ActionChains(self.d).send_keys(Keys.TAB).perform()
        raise AssertionError(f"#{id_} is not reached with Tab (the focus ends on #{self.focused()})")

    def view(self, name, timeout=WAIT):
        """Waits until section #<name>-view is the one shown (the others have `hidden`)."""
        views = ("login-view", "mfa-view", "account-view")
        want = f"{name}-view"

        def only(d):
            # Each view looked up once: between two lookups the page may be replaced (a navigation
            # to a provider and back), and a view found a moment ago then reads as missing.
            for v in views:
                el = self.by_id(v)
                if el is None:
                    if v == want:
                        return False
                    continue
                if (el.get_attribute("hidden") is None) != (v == want):
                    return False
            return self.shown(want)

        self.wait(only, f"#{want} to be the view shown", timeout)
        return self.by_id(want)

    # signing in
    def sign_in(self, email, password=PASSWORD, path="/login", expect="account"):
        self.open(path)
        self.view("login")
        self.fill("email", email)
        self.fill("password", password)
        self.click("login-submit")
        if expect:
            self.view(expect)
        return self

    def cookies(self):
        """Every cookie of the browser, HttpOnly ones and other paths included (DevTools)."""
        return self.d.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]

    def refresh_cookie(self):
        found = [c for c in self.cookies() if c["name"] == "gatehouse_refresh"]
        return found[0] if found else None

    # checks
    def drain_console(self):
        try:
            entries = self.d.get_log("browser")
        except Exception:  # noqa: BLE001
            return
        for e in entries:
            if e.get("level") == "SEVERE" and not BENIGN_CONSOLE.search(e.get("message", "")):
                self.console.append(e["message"])

    def audit(self, label):
        """axe-core on the page as it stands: serious and critical violations are kept for the end
        of the test; everything goes to .dev/browser/axe.txt."""
        if not self.d.execute_script("return typeof window.axe === 'object'"):
            # Injected through WebDriver, which the page's CSP does not govern.
            self.d.execute_script(AXE.read_text(encoding="utf-8"))
        # Text a template or a script failed to fill in, where a person would read it.
        shown = self.d.execute_script("return document.body.innerText")
        for glitch in set(re.findall(r"\bundefined\b|\bNaN\b|\[object Object\]|\{[a-z_]+\}|%\([a-z_]+\)s", shown)):
            self.glitches.append(f"[{label}] the page shows {glitch!r}")
        # The contract: its elements' tags and roles, and every input has a <label for>.
        found_tags = self.d.execute_script(
            "return Object.fromEntries(arguments[0].filter(id => document.getElementById(id))"
            ".map(id => [id, [document.getElementById(id).tagName.toLowerCase(),"
            " document.getElementById(id).getAttribute('role')]]))",
            sorted(set(CONTRACT_TAGS) | set(CONTRACT_ROLES)),
        )
        for id_, (tag, role) in found_tags.items():
            if id_ in CONTRACT_TAGS and tag != CONTRACT_TAGS[id_]:
                self.glitches.append(f"[{label}] #{id_} is a <{tag}>, the contract says <{CONTRACT_TAGS[id_]}>")
            if id_ in CONTRACT_ROLES and role != CONTRACT_ROLES[id_]:
                self.glitches.append(f"[{label}] #{id_} has role={role!r}, the contract says {CONTRACT_ROLES[id_]!r}")
        if "status" not in found_tags or "form-error" not in found_tags:
            self.glitches.append(f"[{label}] no #status or no #form-error on the page")
        unlabelled = self.d.execute_script(
            "return [...document.querySelectorAll('input, select, textarea')]"
            ".filter(el => el.type !== 'hidden' && !el.closest('[hidden]'))"
            ".filter(el => !el.id || !document.querySelector('label[for=\"' + CSS.escape(el.id) + '\"]'))"
            ".map(el => el.outerHTML.slice(0, 160))"
        )
        for tag in unlabelled:
            self.glitches.append(f"[{label}] an input without a <label for>: {tag}")
        found = self.d.execute_async_script(AXE_RUN)
        if isinstance(found, dict):
            raise AssertionError(f"axe-core failed on {label}: {found['error']}")
        for v in found:
            self.report.append((label, v))
            if v["impact"] in ("serious", "critical"):
                self.violations.append((label, v))
        return found

    def shot(self, name):
        """A screenshot of the whole page at .dev/screenshots/<name>.png (and docs/screenshots/
        with UPDATE_SCREENSHOTS=1)."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        metrics = self.d.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        width = self.d.execute_script("return document.documentElement.clientWidth")
        height = max(int(size["height"]), self.d.execute_script("return window.innerHeight"))
        shot = self.d.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 6000), "scale": 1},
            },
        )
        path = SHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        if os.environ.get("UPDATE_SCREENSHOTS") == "1" and name in DOCUMENTED:
            DOC_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOC_SHOTS / path.name)
        return path

    def phone(self):
        """Phone-sized from here on (390 x 844 CSS pixels, twice as many device pixels, touch)."""
        self.d.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 2, "mobile": True},
        )

    def dark(self, on=True):
        """The system's dark colour scheme (prefers-color-scheme: dark), or back to light."""
        value = "dark" if on else "light"
        self.d.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": value}]}
        )

    def desktop(self):
        """Desktop-sized (a 1280 x 900 viewport, whatever the headless window's frame takes)."""
        self.d.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": DESKTOP[0], "height": DESKTOP[1], "deviceScaleFactor": 1, "mobile": False},
        )


@pytest.fixture
def page(driver, report):
    """A clean browser for one test (no cookies, no authenticator, desktop-sized); at the end, the
    test fails on any serious or critical axe violation it met and on any console error the page
    caused (a CSP refusal, an uncaught exception)."""
    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.execute_cdp_cmd("Storage.clearDataForOrigin", {"origin": BASE, "storageTypes": "all"})
    p = Page(driver, report)
    p.desktop()
    p.dark(False)
    p.drain_console()
    p.console.clear()
    yield p
    p.drain_console()
    p.desktop()
    p.dark(False)
    problems = []
    if p.violations:
        problems.append(
            "axe-core found serious or critical accessibility violations:\n"
            + "\n".join(format_violation(label, v) for label, v in p.violations)
        )
    if p.glitches:
        problems.append("the page breaks the DOM contract or shows text it failed to fill in:\n" + "\n".join(f"    {g}" for g in p.glitches))
    if p.console:
        problems.append("the page logged errors:\n" + "\n".join(f"    {m}" for m in p.console))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def authenticator(driver):
    """A virtual platform authenticator (CTAP2, internal, resident keys, user verification that
    always succeeds) attached to the browser for one test."""
    from selenium.webdriver.common.virtual_authenticator import Protocol, Transport, VirtualAuthenticatorOptions

    options = VirtualAuthenticatorOptions(
        protocol=Protocol.CTAP2,
        transport=Transport.INTERNAL,
        has_resident_key=True,
        has_user_verification=True,
        is_user_verified=True,
    )
    driver.add_virtual_authenticator(options)
    yield driver
    driver.remove_virtual_authenticator()
