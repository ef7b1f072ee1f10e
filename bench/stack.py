"""What bench.py and load.py share: local processes (each in its own session, with a log file in
the script's work folder, all stopped at exit), free ports, waiting for a port, progress lines and
the nearest-rank percentile, and the commit measured."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(f"\033[1m==> {msg}\033[0m", file=sys.stderr, flush=True)


def pct(values, q: float) -> float:
    """Nearest-rank percentile."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(1, min(len(v), int(-(-q * len(v) // 100))))
    return v[k - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)  # its own session: the process and its children only
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


class Stack:
    """The processes one script started; logs go to WORK/<name>.log."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.procs: list[subprocess.Popen] = []
        atexit.register(self.stop_all)

    def start(self, name: str, cmd: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.Popen:
        logf = open(self.work / f"{name}.log", "w")
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            stop(p)

    def wait_port(self, port: int, seconds: float, what: str, proc: subprocess.Popen, logname: str) -> None:
        deadline = time.time() + seconds
        while time.time() < deadline and proc.poll() is None:
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        tail = (self.work / f"{logname}.log").read_text(errors="replace")[-3000:]
        sys.exit(f"{what} did not start on port {port}:\n{tail}")


# What the measured binaries are built from: a change elsewhere (the bench scripts, their results)
# does not make a run's commit "dirty".
# Every rate limit, budget and the login lockout raised out of reach for runs that send many
# requests from 127.0.0.1 (they would answer 429). The counters still run, so their DynamoDB
# calls are in the figures: a limit set to "off" would skip them and flatter the numbers.
LIMITS = {
    "RATE_LOGIN_FAILURES_IP": "1000000000/1m",
    "RATE_LOGIN_FAILURES_ACCOUNT": "1000000000/1m",
    "RATE_REGISTER_IP": "1000000000/1m",
    "RATE_RESEND_IP": "1000000000/1m",
    "RATE_RESET_IP": "1000000000/1m",
    "RATE_CONFIRM_IP": "1000000000/1m",
    "RATE_SET_EMAIL_IP": "1000000000/1m",
    "CODE_GUESS_BUDGET": "1000000000/1m",
    "LOGIN_LOCKOUT_THRESHOLD": "1000",
}

RUST_SOURCES = ["shared", "functions", "tools/dev-server", "tools/authctl", "Cargo.toml", "Cargo.lock", ".cargo"]


def git_rev() -> str:
    """The short commit, marked when the Rust sources differ from it."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *RUST_SOURCES], cwd=ROOT, capture_output=True, text=True
        ).stdout
    except OSError:
        return "unknown"
    return rev.strip() + (" + uncommitted changes to the Rust code" if dirty.strip() else "")
