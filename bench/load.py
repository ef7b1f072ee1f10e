"""Load test: many concurrent clients against the dev server over the DynamoDB + SES v2 emulator,
then `authctl doctor` on the table. Writes bench/load.md and bench/load.json.

Run by `make bench-load` (or `bash bench/run.sh load`, and at the end of `make bench`), which builds
the release dev server and authctl first. Everything listens on 127.0.0.1 and is stopped at the end;
the run is bounded by LOAD_DURATION (each request also by a timeout).

Each client is one keep-alive HTTP/1.1 connection in one asyncio loop (plain asyncio streams: no
third-party client, and the least CPU per request, which matters on 2 cores shared with the server
and the emulator). Closed loop, no think time: a client sends its next request when the previous one
is answered. A client registers an account, follows the activation link from the dev server's
mailbox (`GET /_dev/emails`, not counted as an action), logs in, then mixes `GET /auth/users/me/`,
refreshes (rotating), logins and new registrations.

Environment:
  LOAD_DURATION   seconds of load (default 60)
  LOAD_CLIENTS    concurrent clients (default 200)
  LOAD_OUT        output name in bench/ (default "load": bench/load.md, bench/load.json)

Exit status: 0 when the table is consistent afterwards (whatever the latencies), 1 when `authctl
doctor` finds inconsistencies or cannot run, or the stack does not start. 5xx answers are reported
against the target (zero) but do not fail the run.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import platform
import random
import resource
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from stack import LIMITS, Stack, free_port, git_rev, log, pct, stop

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench"
WORK = ROOT / "target" / "bench-load"
# Other builds (e.g. debug ones while trying the script) through LOAD_DEV_SERVER / LOAD_AUTHCTL.
DEV_SERVER = Path(os.environ.get("LOAD_DEV_SERVER", ROOT / "target" / "release" / "gatehouse-dev-server"))
AUTHCTL = Path(os.environ.get("LOAD_AUTHCTL", ROOT / "target" / "release" / "authctl"))
EMULATOR_PYTHON = os.environ.get("BENCH_EMULATOR_PYTHON", str(ROOT / ".venv" / "bin" / "python"))

DURATION = float(os.environ.get("LOAD_DURATION", "60"))
CLIENTS = int(os.environ.get("LOAD_CLIENTS", "200"))
OUT_NAME = os.environ.get("LOAD_OUT", "load")
TIMEOUT = 60.0
PASSWORD = "plenty-Of-entropy-42!"
ACTIONS = ["register", "activation", "login", "refresh", "me"]
EXPECTED = {"register": 201, "activation": 204, "login": 200, "refresh": 200, "me": 200}
# What a client does once it has an account, with weights.
MIX = [("me", 50), ("refresh", 25), ("login", 15), ("register", 10)]


STACK = Stack(WORK)
start, stop_all, wait_port = STACK.start, STACK.stop_all, STACK.wait_port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


# ---------------------------------------------------------------- HTTP/1.1 over asyncio streams


class Conn:
    """One keep-alive connection; reconnects after an error (the failed request is not resent)."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body=None, token: str | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Length: {len(data)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        self.writer.write(head.encode() + b"\r\n" + data)
        await self.writer.drain()
        line = await self.reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        status = int(line.split()[1])
        length, chunked, close = 0, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            payload = b"".join(parts)
        else:
            payload = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, payload


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {a: [] for a in ACTIONS}
        self.statuses: dict[str, dict[str, int]] = {a: {} for a in ACTIONS}
        self.samples: dict[str, str] = {}
        self.mailbox_misses = 0
        # Seconds from the start until each client first held tokens (registered, activated, logged in).
        self.first_login: list[float] = []

    def record(self, action: str, status: str, ms: float, body: bytes = b"") -> None:
        self.latency[action].append(ms)
        self.statuses[action][status] = self.statuses[action].get(status, 0) + 1
        if status != str(EXPECTED[action]) and len(self.samples) < 20:
            self.samples.setdefault(f"{action} {status}", body[:300].decode("utf-8", "replace"))


async def timed(conn: Conn, stats: Stats, action: str, method: str, path: str, body=None, token=None):
    """One counted request; returns (status, parsed JSON or None); status 0 on a client-side error."""
    t0 = time.perf_counter()
    try:
        status, payload = await asyncio.wait_for(conn.request(method, path, body, token), TIMEOUT)
    except asyncio.TimeoutError:
        conn.close()
        stats.record(action, "timeout", (time.perf_counter() - t0) * 1000)
        return 0, None
    except (OSError, ConnectionError, ValueError, IndexError, asyncio.IncompleteReadError) as e:
        conn.close()
        stats.record(action, f"error:{type(e).__name__}", (time.perf_counter() - t0) * 1000)
        return 0, None
    stats.record(action, str(status), (time.perf_counter() - t0) * 1000, payload)
    try:
        return status, (json.loads(payload) if payload else None)
    except ValueError:
        return status, None


async def client(n: int, port: int, tag: str, t0: float, deadline: float, stats: Stats) -> None:
    rng = random.Random(f"{tag}-{n}")
    conn = Conn(port)
    mail = Conn(port)
    email = None
    tokens: dict | None = None
    seq = 0
    logged_in = False
    try:
        while time.monotonic() < deadline:
            action = "register" if email is None else rng.choices([a for a, _ in MIX], [w for _, w in MIX])[0]
            if action == "register":
                seq += 1
                candidate = f"load-{tag}-{n}-{seq}@bench.example.com"
                status, _ = await timed(conn, stats, "register", "POST", "/auth/users/",
                                        {"email": candidate, "password": PASSWORD})
                if status != 201:
                    continue
                try:
                    _, listing = await asyncio.wait_for(mail.request("GET", "/_dev/emails?to=" + candidate), TIMEOUT)
                    link = json.loads(listing)[-1]["link"].rstrip("/").split("/")
                except (OSError, ConnectionError, ValueError, IndexError, KeyError, TypeError,
                        asyncio.TimeoutError, asyncio.IncompleteReadError):
                    mail.close()
                    stats.mailbox_misses += 1
                    continue
                if time.monotonic() >= deadline:
                    break
                status, _ = await timed(conn, stats, "activation", "POST", "/auth/users/activation/",
                                        {"uid": link[-2], "token": link[-1]})
                if status == 204:
                    email, tokens = candidate, None
                continue
            if tokens is None or action == "login":
                status, body = await timed(conn, stats, "login", "POST", "/auth/jwt/create/",
                                           {"email": email, "password": PASSWORD})
                if status == 200 and body:
                    if not logged_in:
                        logged_in = True
                        stats.first_login.append(time.monotonic() - t0)
                    tokens = body
                continue
            if action == "refresh":
                status, body = await timed(conn, stats, "refresh", "POST", "/auth/jwt/refresh/",
                                           {"refresh": tokens["refresh"]})
                if status == 200 and body:
                    tokens = {"access": body["access"], "refresh": body.get("refresh", tokens["refresh"])}
                else:
                    tokens = None
                continue
            status, _ = await timed(conn, stats, "me", "GET", "/auth/users/me/", token=tokens["access"])
            if status == 401:
                tokens = None
    finally:
        conn.close()
        mail.close()


async def drive(port: int, tag: str) -> tuple[Stats, float]:
    stats = Stats()
    t0 = time.monotonic()
    deadline = t0 + DURATION
    await asyncio.gather(*(client(n, port, tag, t0, deadline, stats) for n in range(CLIENTS)))
    return stats, time.monotonic() - t0


# ---------------------------------------------------------------- figures




def fmt(x: float, digits: int = 0) -> str:
    return "–" if x != x else f"{x:,.{digits}f}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} × {cpu}, Linux {platform.release()}"


def emulator_calls(port: int, reset: bool = False) -> dict[str, int]:
    """Requests the emulator served since the last reset, by operation (GATEHOUSE_EMULATOR_COUNT_CALLS)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_bench/calls", method="DELETE" if reset else "GET")
    with urllib.request.urlopen(req, timeout=60) as resp:
        got = json.loads(resp.read() or b"{}")
    return {k.removeprefix("DynamoDB_20120810."): v for k, v in got.items()}


def doctor(env: dict[str, str]) -> dict:
    out = subprocess.run([str(AUTHCTL), "doctor", "--json"], env=env, capture_output=True, text=True, timeout=900)
    try:
        report = json.loads(out.stdout)
    except ValueError:
        return {"exit": out.returncode, "error": (out.stderr or out.stdout).strip()[-2000:]}
    report["exit"] = out.returncode
    return report


def summary(r: dict) -> str:
    lines = [
        "# Gatehouse load test (`make bench-load`)",
        "",
        f"Run {r['date']} on {r['machine']}, commit {r['commit']}; the machine was shared with other work. "
        f"{r['clients']} concurrent clients for {r['load_s']:.0f} s ({r['duration_s']:.0f} s until the last answer; "
        "closed loop, no think time, one keep-alive "
        f"connection each, plain asyncio in one Python process) against the dev server ({r['dev_server']}) over the "
        "DynamoDB + SES v2 emulator (moto), all on 127.0.0.1. The emulator serves one request at a time, so it "
        "bounds the throughput: these are figures of the stack on this machine, not of DynamoDB. Gatehouse runs its "
        "default settings: argon2id m=19456 KiB, t=2, p=1 (the real cost of every registration and login), "
        "activation emails sent through SES v2 at the emulator, refresh rotation on, `last_login` updated; only "
        "the per-IP rate limits and the login lockout are raised out of reach (every client is 127.0.0.1; the "
        "counters still run). `RUST_LOG=warn`.",
        "",
        "A client registers, follows its activation link (read from the dev server's mailbox, not counted), logs "
        "in, then picks " + ", ".join(f"{a} {w}%" for a, w in MIX) + " (a registration is followed by its "
        "activation).",
        "",
        "| action | requests | per s | p50 ms | p99 ms | max ms | answers |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for a in ACTIONS:
        x = r["actions"][a]
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(x["statuses"].items()))
        lines.append(
            f"| {a} | {x['requests']:,} | {fmt(x['per_s'], 1)} | {fmt(x['p50_ms'])} | {fmt(x['p99_ms'])} "
            f"| {fmt(x['max_ms'])} | {answers or '–'} |"
        )
    t = r["totals"]
    lines += [
        f"| **all** | **{t['requests']:,}** | **{fmt(t['per_s'], 1)}** | {fmt(t['p50_ms'])} | {fmt(t['p99_ms'])} "
        f"| {fmt(t['max_ms'])} | |",
        "",
        f"- 5xx answers: **{t['5xx']}** (target: zero) {'✅' if t['5xx'] == 0 else '❌'}; other unexpected answers "
        f"or client-side errors: {t['unexpected'] - t['5xx']}; activation emails not found in the mailbox: "
        f"{r['mailbox_misses']}.",
        f"- Clients that got as far as their first login (register, activate, log in): {r['first_login']['clients']} "
        f"of {r['clients']}, after {fmt(r['first_login']['p50_s'], 1)} s (median), "
        f"{fmt(r['first_login']['max_s'], 1)} s (last); until then a client sends no `me` or `refresh`, so at low "
        "throughput the figures are mostly those of the start.",
        f"- CPU used during the load (of {r['cpu']['available_s']:.0f} s on {os.cpu_count()} cores): dev server "
        f"{fmt(r['cpu']['dev_server_s'], 1)} s, emulator {fmt(r['cpu']['emulator_s'], 1)} s, load client "
        f"{fmt(r['cpu']['client_s'], 1)} s; the rest went to other work on the machine (1-minute load average "
        f"{r['cpu']['loadavg_1m_before']:.1f} before the load, {r['cpu']['loadavg_1m_after']:.1f} at its end).",
        f"- The emulator served {sum(r['emulator_calls'].values()):,} requests "
        f"({sum(r['emulator_calls'].values()) / r['duration_s']:,.0f}/s, one at a time): "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(r["emulator_calls"].items(), key=lambda kv: -kv[1])) + ".",
    ]
    d = r["doctor"]
    if "error" in d:
        lines.append(f"- **`authctl doctor` failed** (exit {d['exit']}): {d['error']}")
    else:
        sc = d["scanned"]
        expired = ", ".join(f"{k} {v}" for k, v in d["expired"].items()) or "none"
        verdict = "consistent ✅" if d["consistent"] else f"**INCONSISTENT ❌: {d['unresolved']} problems**"
        lines.append(
            f"- After the load, `authctl doctor` on the table: {verdict}; {sc['items']:,} items scanned "
            f"({sc['users']:,} users, {sc['email_claims']:,} email claims, {sc['codes']:,} codes, "
            f"{sc['sessions']:,} sessions, {sc['rate_counters']:,} rate counters); expired items still present: "
            f"{d['expired_total']} ({expired})."
        )
        for p in d["problems"][:20]:
            lines.append(f"  - {p['kind']}: {p['pk']} / {p['sk']}: {p['detail']}")
    if r["samples"]:
        lines += ["", "Unexpected answers (first body of each):", ""]
        lines += [f"- {k}: `{v}`" for k, v in sorted(r["samples"].items())]
    lines += ["", "Regenerate with `make bench-load` (`LOAD_DURATION=20 make bench-load` for a shorter run); raw "
              f"figures in bench/{OUT_NAME}.json.", ""]
    return "\n".join(lines)


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    for binary in (DEV_SERVER, AUTHCTL):
        if not binary.exists():
            raise SystemExit(f"{binary} is missing: run `make bench-load` (bench/run.sh builds it)")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GATEHOUSE_", "ARGON2_", "RATE_"))}
    try:
        moto_port = free_port()
        log(f"starting the emulator on 127.0.0.1:{moto_port}")
        moto = start("emulator", [EMULATOR_PYTHON, str(ROOT / "tools" / "emulator.py"), str(moto_port)],
                     {**base_env, "GATEHOUSE_EMULATOR_COUNT_CALLS": "1"})
        wait_port(moto_port, 60, "the AWS emulator", moto, "emulator")
        table = f"bench-load-{secrets.token_hex(3)}"
        aws = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "TABLE_NAME": table,
        }
        env = {
            **base_env,
            **aws,
            **LIMITS,
            "EMAIL_FROM": "no-reply@gatehouse.test",
            "JWT_ALGORITHM": "HS256",
            "JWT_SIGNING_KEY": "bench-hs256-" + secrets.token_hex(24),
            "RUST_LOG": "warn",
            "PROTOCOL": "http",
            "FRONTEND_DOMAIN": "localhost:3000",
        }
        port = free_port()
        dev = start("dev-server", [str(DEV_SERVER), "--port", str(port), "--create-table"], env)
        wait_port(port, 60, "the dev server", dev, "dev-server")
        emulator_calls(moto_port, reset=True)
        cpu0 = (cpu_seconds(dev.pid), cpu_seconds(moto.pid), resource.getrusage(resource.RUSAGE_SELF))
        log(f"{CLIENTS} clients for {DURATION:.0f} s against http://127.0.0.1:{port} (table {table})")
        tag = secrets.token_hex(3)
        load_before = os.getloadavg()[0]
        stats, elapsed = asyncio.run(drive(port, tag))
        load_after = os.getloadavg()[0]
        ru = resource.getrusage(resource.RUSAGE_SELF)
        cpu = {
            "dev_server_s": cpu_seconds(dev.pid) - cpu0[0],
            "emulator_s": cpu_seconds(moto.pid) - cpu0[1],
            "client_s": (ru.ru_utime + ru.ru_stime) - (cpu0[2].ru_utime + cpu0[2].ru_stime),
            "available_s": elapsed * (os.cpu_count() or 1),
            "loadavg_1m_before": load_before,
            "loadavg_1m_after": load_after,
        }
        calls = emulator_calls(moto_port)
        stop(dev)
        log("authctl doctor on the table")
        report = doctor({**base_env, **aws})
    finally:
        stop_all()

    actions = {}
    all_ms: list[float] = []
    fivexx = unexpected = 0
    for a in ACTIONS:
        ms = stats.latency[a]
        all_ms += ms
        for status, count in stats.statuses[a].items():
            if status.startswith("5"):
                fivexx += count
            if status != str(EXPECTED[a]):
                unexpected += count
        actions[a] = {
            "requests": len(ms),
            "per_s": len(ms) / elapsed,
            "p50_ms": pct(ms, 50),
            "p99_ms": pct(ms, 99),
            "max_ms": max(ms) if ms else float("nan"),
            "statuses": stats.statuses[a],
            "expected": EXPECTED[a],
        }
    r = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "commit": git_rev(),
        "clients": CLIENTS,
        "dev_server": "release build" if DEV_SERVER.parent.name == "release" else f"binary {DEV_SERVER}",
        "duration_s": elapsed,
        "mix": dict(MIX),
        "argon2": {"m": 19456, "t": 2, "p": 1},
        "actions": actions,
        "totals": {
            "requests": len(all_ms),
            "per_s": len(all_ms) / elapsed,
            "p50_ms": pct(all_ms, 50),
            "p99_ms": pct(all_ms, 99),
            "max_ms": max(all_ms) if all_ms else float("nan"),
            "5xx": fivexx,
            "unexpected": unexpected,
        },
        "mailbox_misses": stats.mailbox_misses,
        "first_login": {
            "clients": len(stats.first_login),
            "p50_s": pct(stats.first_login, 50),
            "max_s": max(stats.first_login) if stats.first_login else float("nan"),
        },
        "load_s": DURATION,
        "emulator_calls": calls,
        "samples": stats.samples,
        "cpu": cpu,
        "doctor": report,
    }
    text = summary(r)
    (OUT / f"{OUT_NAME}.md").write_text(text)
    (OUT / f"{OUT_NAME}.json").write_text(json.dumps(r, indent=1, sort_keys=True, default=str))
    print(text)
    if "error" in report or not report.get("consistent", False):
        print("\n\033[1;31mLOAD TEST FAILED: authctl doctor did not find the table consistent after the load "
              f"(authctl doctor exit {report.get('exit')}); see bench/{OUT_NAME}.md\033[0m", file=sys.stderr)
        return 1
    if fivexx:
        log(f"{fivexx} 5xx answers under load (target: zero)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
