"""A deploy rehearsal: every function's real binary (target/debug/<binary>) started the way
Lambda would start it from the transformed template, against the local AWS emulator.

For each parameter set (samconfig.toml's dev and prod, and dev with HS256):
- the stack's resources are created in the emulator from the transformed template itself: the
  DynamoDB table from the `Table` resource's properties (its unique name is what `!Ref Table`
  resolves to), the SES identity of EmailFrom, and a Secrets Manager secret holding a fresh
  signing key;
- each binary runs under a Python stand-in of the Lambda Runtime API (runtime_api.py) with
  EXACTLY the resolved Environment the template gives that function, plus what Lambda itself
  sets, plus AWS_ENDPOINT_URL (the one addition: AWS is the emulator). Nothing else from this
  process's environment reaches it;
- every function must reach its first poll of /next (a cold start that fails is the main thing
  this catches), answer its sample event (events/<binary>.json) with a well-formed response,
  and carry a register -> activation -> login -> me -> refresh -> jwks -> blacklist flow across
  functions; then the edge events (events/<binary>.<case>.json).

Each binary's stdout/stderr goes to .dev/rehearsal/<set>/<binary>.log; a failure quotes the tail.

Needs the emulator: MOTO_URL (tools/test.sh sets it); without it, one is started here. Needs the
binaries: `cargo build -p gatehouse-lambdas --bins`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

import cfn
from runtime_api import LambdaProcess, free_port, lambda_environment

ROOT = cfn.ROOT
EVENTS = ROOT / "events"
BIN = Path(os.environ.get("GATEHOUSE_BIN_DIR") or ROOT / "target" / "debug")
LOGS = ROOT / ".dev" / "rehearsal"
PASSWORD = "correct horse battery"  # the sample events' password
SOURCE_IP = "203.0.113.10"

# The parameter sets: (samconfig.toml config env, overrides of its values). The ONLY other
# parameter values the rehearsal sets are the two that name what it created in the emulator:
# JwtSigningKeySecretArn (the real ARN of the secret it made) and JwtPublicKeys (that key's
# public half, `rehearsal=<x>`, or empty for HS256). Everything else is samconfig's or the
# template's default, exactly as `sam deploy` would pass it.
SETS = {
    "dev": ("default", {}),
    "prod": ("prod", {}),
    "dev-hs256": ("default", {"JwtAlgorithm": "HS256"}),
}


# ------------------------------------------------------------------ the emulator


@pytest.fixture(scope="session")
def moto_url():
    url = os.environ.get("MOTO_URL")
    if url:
        yield url.rstrip("/")
        return
    port = free_port()
    log = open(ROOT / ".dev" / "rehearsal-moto.log", "wb") if (ROOT / ".dev").is_dir() else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "emulator.py"), str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("the emulator (tools/emulator.py) exited at start")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def aws(service, moto_url):
    return boto3.client(
        service,
        endpoint_url=moto_url,
        region_name=cfn.REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 2}),
    )


def ses_messages_to(moto_url, address):
    """Emails the emulator's SES accepted for `address`."""
    with urllib.request.urlopen(moto_url + "/moto-api/data.json", timeout=30) as resp:
        data = json.load(resp)
    return [
        m
        for m in data.get("ses", {}).get("Message", [])
        if address.lower() in (a.lower() for a in m.get("destinations", {}).get("ToAddresses", []))
    ]


# ------------------------------------------------------------------ events and responses


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def api_event(method, raw_path, *, body=None, token=None, query="", path_params=None, route=None):
    """An API Gateway HTTP API (payload 2.0) event, as the route `route` (default: the path
    without its trailing slash) would deliver it."""
    route = route or (raw_path.rstrip("/") or "/")
    host = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
    headers = {
        "accept": "application/json",
        "host": host,
        "user-agent": "gatehouse-rehearsal",
        "x-forwarded-for": SOURCE_IP,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    text = None
    if body is not None:
        text = json.dumps(body)
        headers["content-type"] = "application/json"
        headers["content-length"] = str(len(text.encode()))
    if token:
        headers["authorization"] = f"Bearer {token}"
    now = time.time()
    event = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": cfn.ACCOUNT,
            "apiId": "a1b2c3d4e5",
            "domainName": host,
            "domainPrefix": "a1b2c3d4e5",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": SOURCE_IP,
                     "userAgent": "gatehouse-rehearsal"},
            "requestId": b64url(secrets.token_bytes(12)),
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = {k: v for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)}
    if path_params:
        event["pathParameters"] = path_params
    if text is not None:
        event["body"] = text
    return event


def drf_shaped(body) -> bool:
    """DRF's error shapes: {"detail": str, "code": str}, or {field: [message, ...], ...}."""
    if not isinstance(body, dict) or not body:
        return False
    if isinstance(body.get("detail"), str) and isinstance(body.get("code"), str):
        return True
    return all(isinstance(v, list) and v and all(isinstance(m, str) for m in v) for v in body.values())


def response_problems(outcome) -> list[str]:
    """What is wrong with an invocation's outcome as an API Gateway v2 response."""
    if outcome.kind != "response":
        return [f"{outcome.kind}: {outcome.detail}"]
    r = outcome.response
    if not isinstance(r, dict) or not isinstance(r.get("statusCode"), int):
        return [f"not an API Gateway v2 response object: {outcome.raw[:300]!r}"]
    problems = []
    status = r["statusCode"]
    if status >= 500:
        problems.append(f"status {status}")
    text = r.get("body") or ""
    if r.get("isBase64Encoded"):
        text = base64.b64decode(text).decode("utf-8", "replace")
    headers = {k.lower(): v for k, v in (r.get("headers") or {}).items()}
    if status == 200 and headers.get("content-type", "").startswith("text/html"):
        # An account page: HTML under its own headers, a French one for a French Accept-Language.
        csp = headers.get("content-security-policy", "")
        if "unsafe-inline" in csp or "frame-ancestors 'none'" not in csp:
            problems.append(f"page CSP {csp!r}")
        if headers.get("referrer-policy") != "no-referrer" or headers.get("cache-control") != "no-store":
            problems.append(f"page headers {headers}")
        if not text.startswith("<!doctype html>"):
            problems.append(f"page body {text[:200]!r}")
        return problems
    if status != 204 or text:
        try:
            parsed = json.loads(text)
        except ValueError:
            return problems + [f"status {status}: body is not JSON: {text[:300]!r}"]
        if "json" not in headers.get("content-type", ""):
            problems.append(f"status {status}: content-type {headers.get('content-type')!r}")
        if 400 <= status < 500 and not drf_shaped(parsed):
            problems.append(f"status {status}: body is not DRF-shaped: {text[:300]}")
    return problems


def body_of(outcome):
    r = outcome.response or {}
    text = r.get("body") or ""
    if r.get("isBase64Encoded"):
        text = base64.b64decode(text).decode()
    return json.loads(text) if text else None


def jwt_parts(token):
    header, payload, signature = token.split(".")
    return json.loads(unb64url(header)), json.loads(unb64url(payload)), unb64url(signature), f"{header}.{payload}".encode()


# ------------------------------------------------------------------ the stack


class Stack:
    """One parameter set's rehearsal: its resources in the emulator and its running functions."""

    def __init__(self, name, moto_url):
        self.name = name
        self.moto_url = moto_url
        self.env_name, self.overrides = SETS[name]
        self.logs = LOGS / name
        self.functions: dict[str, LambdaProcess] = {}
        self.cold_start_failures: dict[str, str] = {}
        self.expected_env: dict[str, dict[str, str]] = {}
        self.accounts: dict[str, dict] = {}
        self.table = f"rehearsal-{name}-{uuid.uuid4().hex[:8]}"
        self.secret_arn = None
        self.public_x = None
        self.signing_secret = None

    # -- setting up

    def provision(self):
        transformed = cfn.transform()
        configured = cfn.parameters(self.env_name, self.overrides, transformed)
        algorithm = configured["JwtAlgorithm"]
        sm = aws("secretsmanager", self.moto_url)
        if algorithm == "EdDSA":
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            key = Ed25519PrivateKey.generate()
            secret = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()
            self.public_x = b64url(key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
            public_keys = f"rehearsal={self.public_x}"
        else:
            secret = secrets.token_urlsafe(36)  # 48 characters
            self.signing_secret = secret
            public_keys = ""
        # A pinned JwtSigningKeyVersionId (prod) names a version of the real secret: the one made
        # here gets that version id, so the parameter is passed unchanged and still resolves.
        version = {"ClientRequestToken": configured["JwtSigningKeyVersionId"]} if configured.get("JwtSigningKeyVersionId") else {}
        self.secret_arn = sm.create_secret(Name=f"gatehouse/rehearsal/{self.table}", SecretString=secret, **version)["ARN"]

        # The only parameter values set here (see SETS).
        named = {"JwtSigningKeySecretArn": self.secret_arn, "JwtPublicKeys": public_keys}
        self.params = cfn.parameters(self.env_name, {**self.overrides, **named}, transformed)
        refused = [p for p in cfn.parameter_problems(transformed, self.params)
                   if re.split(r"[=:]", p, maxsplit=1)[0] in {**self.overrides, **named}]
        assert not refused, refused
        # The code-key secret the stack generates (CodeKeySecret), made here as CloudFormation would.
        generate = transformed["Resources"]["CodeKeySecret"]["Properties"]["GenerateSecretString"]
        code_key = secrets.token_hex(int(generate["PasswordLength"]))[: int(generate["PasswordLength"])]
        self.code_key_arn = sm.create_secret(Name=f"gatehouse/rehearsal/{self.table}/code-key", SecretString=code_key)["ARN"]
        physical = {"Table": self.table, "CodeKeySecret": self.code_key_arn}
        self.resolver = cfn.Resolver(transformed, self.params, physical)
        self.resolved = cfn.resolve(transformed, self.params, physical)

        table = self.resolved["Resources"]["Table"]["Properties"]
        ddb = aws("dynamodb", self.moto_url)
        create = {k: table[k] for k in ("KeySchema", "AttributeDefinitions", "BillingMode", "GlobalSecondaryIndexes",
                                         "LocalSecondaryIndexes", "ProvisionedThroughput") if k in table}
        ddb.create_table(TableName=self.table, **create)
        ttl = table.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=self.table, TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"], "Enabled": ttl.get("Enabled") in (True, "true")})
        ses = aws("sesv2", self.moto_url)
        try:
            ses.create_email_identity(EmailIdentity=self.params["EmailFrom"])
        except ses.exceptions.AlreadyExistsException:
            pass

    def start(self):
        shutil.rmtree(self.logs, ignore_errors=True)
        self.logs.mkdir(parents=True)
        region = self.params["AWS::Region"]
        for logical_id, binary in cfn.functions(self.resolved).items():
            props = self.resolved["Resources"][logical_id]["Properties"]
            env = {k: str(v) for k, v in cfn.function_env(self.resolved, logical_id).items()}
            env.update(lambda_environment(
                self.resolver.physical_name(logical_id), props.get("MemorySize", 128),
                props["LoggingConfig"]["LogGroup"], region, props.get("Handler", "bootstrap")))
            env["AWS_ENDPOINT_URL"] = self.moto_url  # the one addition: AWS is the emulator
            path = BIN / binary
            assert path.exists(), f"{path} missing: run `cargo build -p gatehouse-lambdas --bins`"
            self.expected_env[binary] = env
            self.functions[binary] = LambdaProcess(
                binary, path, env, self.logs / f"{binary}.log", self.resolver.get_att(logical_id, "Arn"),
                float(props.get("Timeout", 3)))
        for fn in self.functions.values():  # every cold start at once: they are independent
            fn.start()
        for binary, fn in self.functions.items():
            problem = fn.wait_ready(30)
            if problem:
                self.cold_start_failures[binary] = problem

    def teardown(self):
        for fn in self.functions.values():
            fn.stop()
        try:
            aws("dynamodb", self.moto_url).delete_table(TableName=self.table)
        except Exception:
            pass
        if self.secret_arn:
            try:
                aws("secretsmanager", self.moto_url).delete_secret(SecretId=self.secret_arn, ForceDeleteWithoutRecovery=True)
            except Exception:
                pass

    # -- using it

    def tail(self, binary, lines=12):
        """The end of a binary's log without its DEBUG/TRACE lines (LogLevel=debug is chatty)."""
        path = self.logs / f"{binary}.log"
        try:
            text = path.read_text(errors="replace").splitlines()
        except OSError:
            return f"--- {path}: no log"
        kept = [line for line in text if not re.search(r'"level":"(DEBUG|TRACE)"', line)]
        return f"--- {path} (last lines but DEBUG/TRACE)\n" + "\n".join(line[:600] for line in kept[-lines:])

    def call(self, binary, event, expect=None, what=""):
        """Invokes `binary`; checks the response is well formed (and its status, if given)."""
        outcome = self.functions[binary].invoke(event)
        problems = response_problems(outcome)
        if expect is not None and outcome.status != expect:
            problems.append(f"status {outcome.status}, expected {expect}: {(outcome.response or {}).get('body', '')[:300]}")
        assert not problems, f"[{self.name}] {binary} {what}: " + "; ".join(problems) + "\n" + self.tail(binary)
        return outcome.status, body_of(outcome)

    def activation_link(self, email):
        pattern = re.escape(self.params["ActivationUrl"])
        pattern = pattern.replace(re.escape("{uid}"), r"(?P<uid>[A-Za-z0-9_=-]+)")
        pattern = pattern.replace(re.escape("{token}"), r"(?P<token>[A-Za-z0-9_=-]+)")
        for _ in range(20):
            for message in reversed(ses_messages_to(self.moto_url, email)):
                m = re.search(pattern, message.get("body", ""))
                if m:
                    return m.group("uid"), m.group("token")
            time.sleep(0.1)
        raise AssertionError(f"[{self.name}] no activation link emailed to {email}\n{self.tail('register')}")

    def register(self, email, password=PASSWORD):
        _, user = self.call("register", api_event("POST", "/auth/users/", body={"email": email, "password": password}),
                            201, "register")
        return user

    def account(self, label, staff=False, superuser=False):
        """An activated account (staff, or staff and superuser, if asked) and a fresh token pair
        for it, made once."""
        if label not in self.accounts:
            email = f"rehearsal-{label}-{uuid.uuid4().hex[:8]}@example.com"
            user = self.register(email)
            uid, token = self.activation_link(email)
            self.call("activation", api_event("POST", "/auth/users/activation/", body={"uid": uid, "token": token}), 204,
                      "activation")
            if staff or superuser:
                aws("dynamodb", self.moto_url).update_item(
                    TableName=self.table, Key={"pk": {"S": f"USER#{user['id']}"}, "sk": {"S": "PROFILE"}},
                    UpdateExpression="SET is_staff = :t, is_superuser = :s",
                    ExpressionAttributeValues={":t": {"BOOL": True}, ":s": {"BOOL": superuser}})
            self.accounts[label] = {"email": email, "id": user["id"], **self.login(email)}
        return self.accounts[label]

    def login(self, email, password=PASSWORD):
        _, pair = self.call("jwt_create", api_event("POST", "/auth/jwt/create/", body={"email": email, "password": password}),
                            200, "login")
        return pair


@pytest.fixture(scope="module", params=list(SETS))
def stack(request, moto_url):
    s = Stack(request.param, moto_url)
    try:
        s.provision()
        s.start()
        yield s
    finally:
        s.teardown()


def require_started(stack, *binaries):
    down = {b: stack.cold_start_failures[b] for b in binaries if b in stack.cold_start_failures}
    if down:
        pytest.fail(f"[{stack.name}] cold start failed (see test_cold_start): "
                    + "; ".join(f"{b}: {p}" for b, p in down.items()) + "\n" + stack.tail(next(iter(down))))


# ------------------------------------------------------------------ tests


def test_cold_start(stack):
    """Every function reaches its first poll of /next: no /runtime/init/error, no exit."""
    failures = [f"{b}: {p}\n{stack.tail(b, 15)}" for b, p in stack.cold_start_failures.items()]
    assert not failures, f"[{stack.name}] {len(failures)} of {len(stack.functions)} cold starts failed:\n" + "\n".join(failures)


def test_environment_is_exactly_the_templates(stack):
    """What each process really got (/proc/<pid>/environ): the template's Environment for it,
    Lambda's own variables, AWS_LAMBDA_RUNTIME_API and AWS_ENDPOINT_URL; nothing else."""
    problems, inspected = [], 0
    for binary, fn in stack.functions.items():
        if not fn.alive():
            continue  # a failed cold start: test_cold_start reports it
        inspected += 1
        raw = Path(f"/proc/{fn.proc.pid}/environ").read_bytes()
        got = dict(item.split("=", 1) for item in raw.decode().split("\0") if item)
        want = {**stack.expected_env[binary], "AWS_LAMBDA_RUNTIME_API": fn.api.address}
        if got != want:
            extra, missing = set(got) - set(want), set(want) - set(got)
            changed = {k for k in set(got) & set(want) if got[k] != want[k]}
            problems.append(f"{binary}: extra {sorted(extra)}, missing {sorted(missing)}, different {sorted(changed)}")
        template_env = cfn.function_env(stack.resolved, next(k for k, b in cfn.functions(stack.resolved).items() if b == binary))
        if any(got.get(k) != str(v) for k, v in template_env.items()):
            problems.append(f"{binary}: the template's variables were not passed as they are")
    assert inspected, f"[{stack.name}] no function process is running to inspect (see test_cold_start)"
    assert not problems, "\n".join(problems)


# The order the samples run in: those that end sessions or change the password last.
SAMPLE_ORDER = [
    "jwks", "fallback", "pages", "jwt_verify", "users_me", "users", "users_detail", "users_me_has", "sessions",
    "admin_groups", "admin_groups_detail", "admin_permissions", "admin_permissions_detail", "admin_users",
    "admin_users_detail", "admin_users_mfa", "admin_audit", "register", "jwt_create", "mfa_verify",
    "webauthn_credentials", "webauthn_credentials_detail", "webauthn_register_options", "webauthn_register",
    "webauthn_login_options", "webauthn_login", "social", "identities", "identities_detail", "resend_activation",
    "reset_password", "activation", "reset_password_confirm", "set_email_confirm", "set_email", "jwt_refresh",
    "mfa_totp", "mfa_totp_confirm", "mfa_recovery_codes", "jwt_blacklist", "sessions_detail", "set_password",
]


def test_sample_events(stack):
    """Each function answers its events/<binary>.json with a well-formed API Gateway v2
    response: status < 500, a JSON body, DRF-shaped for a 4xx. Placeholders are filled with real
    tokens of an activated account (a superuser for the admin functions)."""
    binaries = sorted(stack.functions, key=lambda b: SAMPLE_ORDER.index(b) if b in SAMPLE_ORDER else len(SAMPLE_ORDER))
    assert {p.name.split(".")[0] for p in EVENTS.glob("*.json")} >= set(binaries), "a function without a sample event"
    require_started(stack, "register", "activation", "jwt_create")
    user = stack.account("samples")
    other = stack.login(user["email"])  # a second session: sessions_detail ends the first, set_password uses this
    staff = stack.account("admin", superuser=True)
    _, claims, _, _ = jwt_parts(user["access"])
    latest_refresh = user["refresh"]
    problems, results = [], []
    for binary in binaries:
        text = (EVENTS / f"{binary}.json").read_text()
        access = staff["access"] if binary.startswith("admin_") else user["access"]
        if binary in ("sessions_detail", "set_password"):
            access = other["access"]
        text = (text.replace("REPLACE_WITH_ACCESS_TOKEN", access)
                .replace("REPLACE_WITH_REFRESH_TOKEN", latest_refresh)
                .replace("REPLACE_WITH_SESSION_ID", str(claims.get("sid", "no-sid")))
                .replace("REPLACE_WITH_TOKEN_FROM_EMAIL", "not-a-token-from-an-email"))
        outcome = stack.functions[binary].invoke(text.encode())
        found = response_problems(outcome)
        results.append(f"{binary}: {outcome.status if outcome.kind == 'response' else outcome.kind}")
        if found:
            problems.append(f"{binary}: " + "; ".join(found) + "\n" + stack.tail(binary, 10))
        elif binary == "jwt_refresh" and outcome.status == 200:
            latest_refresh = body_of(outcome).get("refresh", latest_refresh)
    assert not problems, f"[{stack.name}] " + "\n".join(problems) + "\nall: " + ", ".join(results)


def test_flow_across_functions(stack):
    """register -> activation -> jwt_create -> users_me -> jwt_refresh -> jwks -> jwt_blacklist,
    with tokens signed by the key read from Secrets Manager and verified with JwtPublicKeys."""
    require_started(stack, "register", "activation", "jwt_create", "users_me", "jwt_refresh", "jwks", "jwt_blacklist")
    email = f"rehearsal-flow-{uuid.uuid4().hex[:8]}@example.com"
    user = stack.register(email)
    assert user["email"] == email and "password" not in user

    status, body = stack.call("jwt_create", api_event("POST", "/auth/jwt/create/", body={"email": email, "password": PASSWORD}),
                              what="login before activation")
    assert (status, body.get("code")) == (403, "account_inactive"), body

    uid, token = stack.activation_link(email)
    stack.call("activation", api_event("POST", "/auth/users/activation/", body={"uid": uid, "token": token}), 204, "activation")

    pair = stack.login(email)
    assert set(pair) >= {"access", "refresh"}
    header, claims, signature, signed = jwt_parts(pair["access"])
    assert claims.get("iss") == stack.params["JwtIssuer"] and claims.get("aud") in (stack.params["JwtAudience"], [stack.params["JwtAudience"]])
    if stack.params["JwtAlgorithm"] == "EdDSA":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        assert (header.get("alg"), header.get("kid")) == ("EdDSA", "rehearsal"), header
        Ed25519PublicKey.from_public_bytes(unb64url(stack.public_x)).verify(signature, signed)  # raises if not ours
    else:
        assert header.get("alg") == "HS256", header
        assert hmac.compare_digest(signature, hmac.new(stack.signing_secret.encode(), signed, hashlib.sha256).digest())

    _, me = stack.call("users_me", api_event("GET", "/auth/users/me/", token=pair["access"]), 200, "me")
    assert me["email"] == email and me["is_active"] is True

    _, rotated = stack.call("jwt_refresh", api_event("POST", "/auth/jwt/refresh/", body={"refresh": pair["refresh"]}), 200, "refresh")
    assert "access" in rotated
    refresh = rotated.get("refresh", pair["refresh"])

    _, jwks = stack.call("jwks", api_event("GET", "/auth/.well-known/jwks.json"), 200, "jwks")
    if stack.params["JwtAlgorithm"] == "EdDSA":
        keys = {k.get("kid"): k for k in jwks["keys"]}
        assert "rehearsal" in keys and keys["rehearsal"].get("x") == stack.public_x, jwks
    else:
        assert jwks == {"keys": []}, jwks

    stack.call("jwt_blacklist", api_event("POST", "/auth/jwt/blacklist/", body={"refresh": refresh}), 200, "blacklist")
    status, body = stack.call("users_me", api_event("GET", "/auth/users/me/", token=rotated["access"]), what="me after logout")
    assert status == 401, body


def test_staff_reads(stack):
    """The admin listings over the template's table: users (everyone), groups, permissions."""
    require_started(stack, "users", "admin_groups", "admin_permissions", "register", "activation", "jwt_create")
    staff = stack.account("admin", superuser=True)
    problems = []
    for binary, path in (("users", "/auth/users/"), ("admin_groups", "/auth/admin/groups/"),
                         ("admin_permissions", "/auth/admin/permissions/")):
        outcome = stack.functions[binary].invoke(api_event("GET", path, token=staff["access"], query="limit=5" if binary == "users" else ""))
        found = response_problems(outcome)
        if not found and outcome.status != 200:
            found = [f"status {outcome.status}: {(outcome.response or {}).get('body')}"]
        if found:
            problems.append(f"GET {path} ({binary}) as staff: " + "; ".join(found) + "\n" + stack.tail(binary, 6))
    assert not problems, f"[{stack.name}] " + "\n".join(problems)


def edge_event(name, **fill):
    text = (EVENTS / f"{name}.json").read_text()
    for placeholder, value in fill.items():
        text = text.replace(f"REPLACE_WITH_{placeholder}", value)
    return json.loads(text)


def test_trailing_slash(stack):
    """events/jwt_verify.trailing_slash.json: API Gateway routes /auth/jwt/verify/ to the
    /auth/jwt/verify route with rawPath as sent; it answers as without the slash."""
    require_started(stack, "jwt_verify", "register", "activation", "jwt_create")
    access = stack.account("edge")["access"]
    event = edge_event("jwt_verify.trailing_slash", ACCESS_TOKEN=access)
    assert event["rawPath"].endswith("/") and not event["routeKey"].endswith("/")
    with_slash = stack.call("jwt_verify", event, what="with a trailing slash")
    event["rawPath"] = event["requestContext"]["http"]["path"] = event["rawPath"].rstrip("/")
    without = stack.call("jwt_verify", event, what="without a trailing slash")
    assert with_slash == without == (200, {}), (with_slash, without)


def test_path_parameter_is_not_decoded_twice(stack):
    """events/admin_groups_detail.encoded_name.json: the client asked for /auth/admin/groups/50%2541;
    API Gateway delivers pathParameters name "50%41" (decoded once). The group is "50%41", never "50A"."""
    require_started(stack, "admin_groups", "admin_groups_detail", "register", "activation", "jwt_create")
    staff = stack.account("admin", superuser=True)["access"]
    event = edge_event("admin_groups_detail.encoded_name", ACCESS_TOKEN=staff)
    assert event["pathParameters"] == {"name": "50%41"}
    status, body = stack.call("admin_groups_detail", event, what="a group that does not exist")
    assert (status, body.get("code")) == (404, "not_found"), body

    # A group named "50A" too: a second decoding would read that one.
    for name in ("50%41", "50A"):
        stack.call("admin_groups", api_event("POST", "/auth/admin/groups/", token=staff,
                                             body={"name": name, "description": f"group {name}", "permissions": []}),
                   201, f"create group {name}")
    status, body = stack.call("admin_groups_detail", event, what="the group 50%41")
    assert (status, body.get("name"), body.get("description")) == (200, "50%41", "group 50%41"), body


def test_odd_query_string(stack):
    """events/users.odd_query.json: a raw ", <, >, space and a lone % in rawQueryString. The
    function stays up and answers 400, DRF-shaped."""
    require_started(stack, "users", "register", "activation", "jwt_create")
    access = stack.account("edge")["access"]
    event = edge_event("users.odd_query", ACCESS_TOKEN=access)
    assert event["rawQueryString"] == 'limit=1"<> x%'
    fn = stack.functions["users"]
    outcome = fn.invoke(event)
    assert outcome.kind == "response", f"[{stack.name}] users: {outcome.kind}: {outcome.detail}\n{stack.tail('users')}"
    assert fn.alive(), f"[{stack.name}] users exited after answering\n{stack.tail('users')}"
    problems = response_problems(outcome)
    assert not problems and outcome.status == 400, (
        f"[{stack.name}] users: status {outcome.status}, {problems}: {(outcome.response or {}).get('body')}\n{stack.tail('users')}")
    # ... and the next request is served by the same process.
    status, _ = stack.call("users", api_event("GET", "/auth/users/", token=access, query="limit=1"), 200, "after the odd query")
