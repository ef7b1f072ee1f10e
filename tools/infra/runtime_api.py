"""A stand-in for the AWS Lambda Runtime API, and a function's process run under it.

One `RuntimeApi` is one execution environment's API (each process gets its own port through
AWS_LAMBDA_RUNTIME_API), speaking the 2018-06-01 protocol a custom runtime (provided.al2023)
uses:

    GET  /2018-06-01/runtime/invocation/next          blocks until an event is queued; answers it
                                                      with Lambda-Runtime-Aws-Request-Id,
                                                      -Deadline-Ms (now + the function's Timeout),
                                                      -Invoked-Function-Arn and -Trace-Id
    POST /2018-06-01/runtime/invocation/<id>/response the function's answer
    POST /2018-06-01/runtime/invocation/<id>/error    a failed invocation
    POST /2018-06-01/runtime/init/error               a failed cold start

`LambdaProcess` runs one binary with a given environment under its own RuntimeApi, logs its
stdout/stderr to a file, tells whether the cold start reached the first poll of /next, and
invokes it with events. Like Lambda, it starts a new process (a new cold start) when an
invocation finds the previous one gone.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PREFIX = "/2018-06-01/runtime"


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    done: threading.Event = field(default_factory=threading.Event)
    kind: str = ""  # "response" or "error"
    body: bytes = b""
    error_type: str = ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: "RuntimeApi"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the runtime client expects
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body: bytes = b'{"status":"OK"}', headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        api = self.server.api
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(404, b'{"errorMessage":"unknown path"}')
            return
        api._polled()
        while True:
            if api.closed:
                self.close_connection = True
                return
            try:
                inv = api._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            break
        deadline = int(time.time() * 1000) + int(api.timeout_s * 1000)
        self._reply(
            200,
            inv.payload,
            {
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline),
                "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Sampled=0",
            },
        )

    def do_POST(self) -> None:
        api = self.server.api
        body = self._read_body()
        path = self.path
        if path == f"{PREFIX}/init/error":
            api.init_error = body.decode("utf-8", "replace") or "(empty)"
            self._reply(202)
            return
        if path.startswith(f"{PREFIX}/invocation/"):
            request_id, _, what = path[len(f"{PREFIX}/invocation/"):].partition("/")
            inv = api._inflight.get(request_id)
            if inv is None or what not in ("response", "error") or inv.done.is_set():
                self._reply(400, b'{"errorMessage":"unknown or finished request id","errorType":"InvalidRequestID"}')
                return
            inv.kind, inv.body = what, body
            inv.error_type = self.headers.get("Lambda-Runtime-Function-Error-Type", "")
            self._reply(202)
            inv.done.set()
            return
        self._reply(404, b'{"errorMessage":"unknown path"}')


class RuntimeApi:
    """The Runtime API of one execution environment."""

    def __init__(self, function_arn: str, timeout_s: float):
        self.function_arn = function_arn
        self.timeout_s = timeout_s
        self.closed = False
        self.init_error: str | None = None
        self.polls = 0
        self.first_poll = threading.Event()
        self._queue: queue.Queue[Invocation] = queue.Queue()
        self._inflight: dict[str, Invocation] = {}
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def _polled(self) -> None:
        self.polls += 1
        self.first_poll.set()

    def submit(self, payload: bytes) -> Invocation:
        inv = Invocation(request_id=f"rehearsal-{secrets.token_hex(8)}", payload=payload)
        self._inflight[inv.request_id] = inv
        self._queue.put(inv)
        return inv

    def close(self) -> None:
        self.closed = True
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Outcome:
    """What an invocation came to: kind is "response", "error" (the runtime reported a failed
    invocation), "exited" (the process died before answering) or "timeout"."""

    kind: str
    status: int | None = None
    response: Any = None  # the parsed response payload (API Gateway v2 response object)
    raw: bytes = b""
    detail: str = ""
    seconds: float = 0.0


class LambdaProcess:
    """One function's binary under its own Runtime API."""

    def __init__(self, name: str, binary: Path | str, env: dict[str, str], log_path: Path | str,
                 function_arn: str, timeout_s: float):
        self.name = name
        self.binary = str(binary)
        self.env = dict(env)
        self.log_path = Path(log_path)
        self.function_arn = function_arn
        self.timeout_s = timeout_s
        self.api: RuntimeApi | None = None
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._log = None

    # -- lifecycle

    def start(self) -> None:
        """Spawns the process (a cold start); returns at once."""
        self.stop()
        self.api = RuntimeApi(self.function_arn, self.timeout_s)
        env = {**self.env, "AWS_LAMBDA_RUNTIME_API": self.api.address}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.starts += 1
        self._log.write(f"--- cold start {self.starts} ({time.strftime('%H:%M:%S')})\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            [self.binary], env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, close_fds=True
        )

    def wait_ready(self, timeout: float) -> str | None:
        """None once the process has polled /next; else what went wrong instead."""
        assert self.api is not None and self.proc is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.api.init_error is not None:
                return f"posted to /runtime/init/error: {self.api.init_error[:500]}"
            if self.api.first_poll.is_set():
                return None
            if self.proc.poll() is not None:
                return f"exited with status {self.proc.returncode} before its first poll of /next"
            time.sleep(0.01)
        return f"no poll of /next within {timeout:.0f} s"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self.api is not None:
            self.api.close()
            self.api = None
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- invocations

    def invoke(self, event: dict | bytes, timeout: float | None = None) -> Outcome:
        """Runs one event; a dead process is first replaced by a new one (a new cold start)."""
        if not self.alive():
            self.start()
            problem = self.wait_ready(30)
            if problem:
                return Outcome("exited", detail=f"cold start failed: {problem}")
        assert self.api is not None and self.proc is not None
        payload = event if isinstance(event, bytes) else json.dumps(event).encode()
        began = time.monotonic()
        inv = self.api.submit(payload)
        limit = timeout if timeout is not None else self.timeout_s + 5
        while not inv.done.wait(0.01):
            if self.proc.poll() is not None:
                return Outcome("exited", detail=f"the process exited with status {self.proc.returncode} "
                               f"while handling the event", seconds=time.monotonic() - began)
            if time.monotonic() - began > limit:
                return Outcome("timeout", detail=f"no answer within {limit:.0f} s", seconds=time.monotonic() - began)
        seconds = time.monotonic() - began
        if inv.kind == "error":
            return Outcome("error", raw=inv.body, detail=f"{inv.error_type}: {inv.body[:500]!r}", seconds=seconds)
        try:
            response = json.loads(inv.body)
        except ValueError:
            return Outcome("response", raw=inv.body, detail="the response payload is not JSON", seconds=seconds)
        status = response.get("statusCode") if isinstance(response, dict) else None
        return Outcome("response", status=status, response=response, raw=inv.body, seconds=seconds)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def lambda_environment(function_name: str, memory_mb: int | str, log_group: str, region: str,
                       handler: str = "bootstrap") -> dict[str, str]:
    """The variables Lambda itself sets for a function on an OS-only runtime (provided.al2023),
    with dummy credentials (in Lambda: the execution role's). AWS_LAMBDA_RUNTIME_API is added by
    LambdaProcess.start."""
    return {
        "_HANDLER": handler,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{secrets.token_hex(16)}",
        "AWS_ACCESS_KEY_ID": "ASIAREHEARSAL0000000",
        "AWS_SECRET_ACCESS_KEY": "rehearsal-secret-access-key",
        "AWS_SESSION_TOKEN": "rehearsal-session-token",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LD_LIBRARY_PATH": "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib",
    }


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


__all__ = ["RuntimeApi", "LambdaProcess", "Outcome", "lambda_environment", "free_port"]

if __name__ == "__main__":  # pragma: no cover - a manual check: python runtime_api.py BINARY EVENT.json
    import sys

    p = LambdaProcess("manual", sys.argv[1], dict(os.environ), "/dev/stderr", "arn:aws:lambda:us-east-1:123456789012:function:manual", 10)
    p.start()
    print("ready:", p.wait_ready(30) or "yes")
    print(p.invoke(Path(sys.argv[2]).read_bytes()))
    p.stop()
