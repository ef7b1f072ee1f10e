"""Moving in from djoser, end to end: a Django 5.2 project's users (tools/django/make_dump.py: one
account per password hasher Django ships, groups, direct and custom permissions, a superuser, an
inactive and an unusable account) are dumped with `dumpdata`, imported with `authctl
import-django`, then log in through the API with their Django passwords; `has_permission`
answers what Django's `user.has_perm` answered for each.

make test sets DJANGO_DUMP (the dump and Django's answers) and AUTHCTL (the binary)."""

import json
import os
import subprocess

import pytest

from test_flow import MOTO, TABLE, call, item

DUMP = os.environ.get("DJANGO_DUMP")
AUTHCTL = os.environ.get("AUTHCTL")

pytestmark = pytest.mark.skipif(not (DUMP and AUTHCTL), reason="make test sets DJANGO_DUMP and AUTHCTL")


def authctl(*args):
    env = dict(os.environ, AWS_ENDPOINT_URL=MOTO, TABLE_NAME=TABLE, AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
    return subprocess.run([AUTHCTL, *args], env=env, capture_output=True, text=True, timeout=300)


def stored_hash(email):
    claim = item(f"EMAIL#{email}", "EMAIL")
    return item(f"USER#{claim['user_id']}", "PROFILE")["password_hash"]


def test_django_accounts_log_in_with_their_django_passwords_and_keep_their_permissions():
    with open(os.path.join(DUMP, "expected.json"), encoding="utf-8") as f:
        expected = json.load(f)
    dump = os.path.join(DUMP, "dump.json")
    with open(dump, encoding="utf-8") as f:
        django_hashes = {r["fields"]["email"]: r["fields"]["password"] for r in json.load(f) if r["model"] == "auth.user"}

    run = authctl("import-django", dump, "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["users"]["imported"] == len(expected), report
    for email, hash_ in django_hashes.items():
        assert stored_hash(email) == hash_, f"{email}: the hash was not kept as Django wrote it"

    for email, account in expected.items():
        body = {"email": email, "password": account["password"]}
        status, tokens, _ = call("POST", "/auth/jwt/create/", body)
        if not account["usable"]:
            assert (status, tokens["code"]) == (401, "no_active_account"), (email, tokens)
            continue
        if not account["is_active"]:
            # The right password on an inactive account, as for any inactive account.
            assert (status, tokens["code"]) == (403, "account_inactive"), (email, tokens)
            continue
        assert account["logs_in"] and status == 200, (email, status, tokens)
        # The first login made the hash argon2id with the deployment's parameters.
        assert stored_hash(email).startswith("$argon2id$"), email
        for perm, has in account["has_perm"].items():
            status, answer, _ = call("GET", f"/auth/users/me/has_permission/{perm}/", token=tokens["access"])
            assert status == 200 and answer == {"has_permission": has}, (email, perm, answer, has)
        # And again, on the upgraded hash.
        assert call("POST", "/auth/jwt/create/", body)[0] == 200, email
        wrong = {"email": email, "password": account["password"] + "!"}
        assert call("POST", "/auth/jwt/create/", wrong)[0] == 401, email

    # Running the import again changes nothing: every address exists, none is overwritten, and
    # no upgraded hash goes back to Django's.
    upgraded = {e: stored_hash(e) for e in expected}
    again = authctl("import-django", dump, "--json")
    assert again.returncode == 3, again.stdout + again.stderr
    assert json.loads(again.stdout)["users"]["imported"] == 0
    assert {e: stored_hash(e) for e in expected} == upgraded
