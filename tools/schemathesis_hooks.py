"""Schemathesis hooks for the schema run in `make test` (tools/test.sh).

Loaded through SCHEMATHESIS_HOOKS. It registers one account through the API, activates it with
the link from the emailed message (the dev server keeps every email at /_dev/emails), and makes
it staff in the emulator's table, so that the admin routes answer with their documented 2xx
bodies too. Every operation whose document declares `bearerAuth` gets that account's access
token. A new token is fetched after four minutes or whenever a response is a 401 (the run's own
DELETE /auth/sessions/ logs the account out everywhere); each fetch first repairs what the run may
have done to the account (deleted it, deactivated or demoted it through PUT /auth/users/{id}/).

Environment: GATEHOUSE_URL (the dev server), MOTO_URL (the emulator), TABLE_NAME.
"""

import json
import os
import urllib.error
import urllib.request

import boto3
import schemathesis

BASE = os.environ["GATEHOUSE_URL"]
MOTO = os.environ["MOTO_URL"]
TABLE = os.environ["TABLE_NAME"]
# A fixed account: the table is new for every run, and the seed fixes everything else.
EMAIL = "schemathesis-staff@example.com"
PASSWORD = "schema run: correct horse battery"


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    return status, (json.loads(text) if text else None)


def expect(what, status, body, want):
    if status != want:
        raise RuntimeError(f"schema run setup: {what} answered {status}, expected {want}: {body}")


class Account:
    """The staff account the run authenticates as; rebuilt whenever the run undid it."""

    user_id = None

    def token(self):
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
        status, body = call("POST", "/auth/jwt/create/", {"email": EMAIL, "password": PASSWORD})
        expect("login", status, body, 200)
        return body["access"]

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


ACCOUNT = Account()
ACCOUNT.token()  # fail at load time, with a clear message, if the setup does not work


def needs_bearer(ctx):
    """Operations whose document asks for `bearerAuth`."""
    security = ctx.operation.definition.raw.get("security") or []
    return any("bearerAuth" in requirement for requirement in security)


@schemathesis.auth(refresh_interval=240).apply_to(needs_bearer)
class StaffBearer:
    def get(self, case, context):
        return ACCOUNT.token()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def after_call(context, case, response):
    """A request that demoted or deactivated the run's own account is undone at once, so every
    later request still runs as staff (a deactivation also revoked the token: the next request
    answers 401 and the auth provider logs in again)."""
    if response.status_code != 200 or not case.path.startswith("/auth/users/"):
        return
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and body.get("id") == ACCOUNT.user_id:
        if not (body.get("is_staff") and body.get("is_active")):
            ACCOUNT.make_staff()
