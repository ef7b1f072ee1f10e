"""make bench, moving in from djoser: how fast `authctl import-django` writes accounts into the
emulator's table, and what the first login of an imported account costs with Django's current
password hasher (PBKDF2-SHA256 at 1,000,000 iterations: the Django hash is verified, then
replaced by argon2id) against the logins after it (argon2id only). Writes bench/django.md and
bench/django.json.

Run by bench/run.sh with the release binaries; BENCH_BIN=target/debug measures the debug build
(whose hashing crates are built optimised, see Cargo.toml) for a quick figure.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import ROOT, Stack, free_port, git_rev, log  # noqa: E402

BIN = ROOT / os.environ.get("BENCH_BIN", "target/release")
USERS = int(os.environ.get("BENCH_IMPORT_USERS", "500"))
LOGINS = int(os.environ.get("BENCH_FIRST_LOGINS", "7"))
ITERATIONS = 1_000_000
PASSWORD = "a django password, moved in"


def django_pbkdf2(password: str, salt: str, iterations: int = ITERATIONS) -> str:
    """What Django 5.2's PBKDF2PasswordHasher stores (its default hasher)."""
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def dump(path: Path, users: int, hashes: list[str]) -> None:
    """A dumpdata file (natural keys) of `users` accounts in one group; the first len(hashes)
    accounts carry real hashes of PASSWORD, the rest reuse them (the importer stores hashes as
    they are, so their content does not change its speed)."""
    records = [{"model": "auth.group", "fields": {"name": "customers", "permissions": [["view_order", "shop", "order"]]}}]
    for i in range(users):
        records.append({
            "model": "accounts.user",
            "pk": i + 1,
            "fields": {
                "password": hashes[i % len(hashes)], "last_login": None, "is_superuser": False,
                "username": f"user{i}", "first_name": "", "last_name": "", "email": f"user{i}@example.com",
                "is_staff": False, "is_active": True, "date_joined": "2024-01-01T00:00:00Z",
                "groups": [["customers"]], "user_permissions": [],
            },
        })
    path.write_text(json.dumps(records))


def post(url: str, body: dict) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def wait(port: int, seconds: float = 60) -> None:
    import socket

    end = time.time() + seconds
    while time.time() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def main() -> int:
    work = ROOT / ".dev" / "bench-django"
    work.mkdir(parents=True, exist_ok=True)
    stack = Stack(work)
    py = os.environ.get("BENCH_EMULATOR_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
    moto = free_port()
    stack.start("emulator", [py, "tools/emulator.py", str(moto)], dict(os.environ))
    wait(moto)
    env = dict(os.environ, AWS_ENDPOINT_URL=f"http://127.0.0.1:{moto}", AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1", TABLE_NAME="bench-django",
               EMAIL_FROM="no-reply@gatehouse.test", RUST_LOG="warn")
    subprocess.run([BIN / "authctl", "create-table"], env=env, check=True, capture_output=True)

    log(f"hashing {LOGINS} passwords as Django 5.2 does (PBKDF2-SHA256, {ITERATIONS:,} iterations)")
    hashes, django_ms = [], []
    for i in range(LOGINS):
        t0 = time.perf_counter()
        hashes.append(django_pbkdf2(PASSWORD, f"benchsalt{i:04d}xxxxxxxxxx"))
        django_ms.append((time.perf_counter() - t0) * 1000)
    path = work / "dump.json"
    dump(path, USERS, hashes)
    log(f"authctl import-django: {USERS} accounts into the emulator")
    started = time.perf_counter()
    run = subprocess.run([BIN / "authctl", "import-django", str(path), "--json"], env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if run.returncode != 0:
        print(run.stdout, run.stderr, file=sys.stderr)
        return 1
    rate = USERS / took

    port = free_port()
    # The deployment's argon2id parameters (the defaults): the first login rehashes with them.
    server = stack.start("dev-server", [str(BIN / "gatehouse-dev-server"), "--dev-key", ".dev/bench-django-key.pem",
                                        "--port", str(port)], env)
    wait(port)
    url = f"http://127.0.0.1:{port}/auth/jwt/create/"
    first, later = [], []
    for i in range(LOGINS):
        body = {"email": f"user{i}@example.com", "password": PASSWORD}
        for into in (first, later, later):
            t0 = time.perf_counter()
            status = post(url, body)
            into.append((time.perf_counter() - t0) * 1000)
            assert status == 200, f"login of user{i}: {status} (see {work}/dev-server.log)"
    server.terminate()
    result = {
        "commit": git_rev(), "binaries": str(BIN.relative_to(ROOT)), "users": USERS, "import_seconds": round(took, 2),
        "users_per_second": round(rate, 1), "first_login_ms": round(statistics.median(first), 1),
        "later_login_ms": round(statistics.median(later), 1), "logins": LOGINS, "iterations": ITERATIONS,
        "django_hash_ms": round(statistics.median(django_ms), 1),
    }
    extra = result["first_login_ms"] - result["later_login_ms"]
    (ROOT / "bench" / "django.json").write_text(json.dumps(result, indent=2) + "\n")
    (ROOT / "bench" / "django.md").write_text(
        "# Moving in from djoser\n\n"
        f"Commit {result['commit']}, {result['binaries']} binaries, DynamoDB emulator (one request at a time).\n\n"
        "| measure | result |\n|---|---|\n"
        f"| `authctl import-django`, {USERS} accounts | {took:.1f} s: {rate:.0f} accounts/s |\n"
        f"| first login of an account with Django's PBKDF2-SHA256 ({ITERATIONS:,} iterations): verify, then argon2id rehash | "
        f"{result['first_login_ms']} ms (median of {LOGINS}) |\n"
        f"| its later logins (argon2id, the deployment's parameters) | {result['later_login_ms']} ms (median of {2 * LOGINS}) |\n"
        f"| what the first login adds (Django's hash verified, argon2id hash made, written conditionally) | {extra:.1f} ms |\n"
        f"| Django's own PBKDF2 at {ITERATIONS:,} iterations (Python's hashlib, same machine) | "
        f"{result['django_hash_ms']} ms (median of {LOGINS}) |\n"
        "\nLogin times include the emulator's own latency (one request at a time, in Python), which "
        "dominates them here; the difference between the first and the later logins is the move-in's cost.\n"
    )
    log(f"import {rate:.0f} accounts/s; first login {result['first_login_ms']} ms, later {result['later_login_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
