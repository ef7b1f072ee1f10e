"""The local AWS emulator: moto's server (DynamoDB, SES v2), with one request handled at a time.

Real DynamoDB applies each TransactWriteItems / conditional write atomically. moto's threaded
server checks a transaction's conditions and applies its writes without a lock, so two racing
requests can both pass (seen here: two users created for one email claim). Serialising requests
restores the atomicity the store's race tests rely on; connections are still served concurrently.

usage: python tools/emulator.py PORT

Opt-in for `make bench`: with GATEHOUSE_EMULATOR_COUNT_CALLS=1 it also counts the requests it
serves, by DynamoDB operation (the X-Amz-Target header) or "METHOD /path" for others (SES v2):
GET /_bench/calls returns the counts since the last reset, DELETE /_bench/calls resets them.
Without the variable nothing changes.

Fault injection, for tests (functions/tests/api/dynamo_faults.rs): the control path /_fault arms
faults; until one is armed nothing changes (no request body is even looked at). Concurrent tests
share the emulator, so a fault names what it applies to: a DynamoDB operation ("target", the
X-Amz-Target header, e.g. "DynamoDB_20120810.GetItem") or "METHOD /path" ("path", e.g.
"POST /v2/email/outbound-emails" for SES v2 SendEmail), and a text the request body must contain
("contains": the test's own table name or recipient address). The next "count" matching requests
are answered with HTTP "status" and the AWS error "code" (and "message") without reaching moto;
for a TransactionCanceledException, "reasons" lists the CancellationReasons codes (e.g. ["None",
"TransactionConflict"]). With "after": true the request is applied by moto first and only its
answer is replaced (a reply lost after the commit). With "delay": seconds, a failed request is
first held that long (a hung service; without a "code" it is then served normally, only late).
The fault stays registered after it is spent and keeps counting the matching requests it lets
through.
    POST   /_fault        {"target"|"path", "contains", "count", "status", "code", "message", "reasons",
                           "after", "delay"}
                          -> {"id": N}
    GET    /_fault/N      -> {"seen": requests matched, "fired": requests failed, ...}
    GET    /_fault        -> every fault;  DELETE /_fault/N, DELETE /_fault: disarm
"""

import io
import itertools
import json
import os
import signal
import sys
import threading
import time

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4566
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            # Materialise the body inside the lock: the request is complete when we let go.
            return list(app(environ, start_response))

    served = faulting(one_at_a_time)
    if os.environ.get("GATEHOUSE_EMULATOR_COUNT_CALLS") == "1":
        served = counting(served, lock)
    run_simple("127.0.0.1", port, served, threaded=True, request_handler=MotoRequestHandler)


def counting(inner, lock):
    """Wraps the app: counts each request (under the same lock) and serves /_bench/calls."""
    counts = {}

    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/_bench/calls":
            with lock:
                body = json.dumps(counts, sort_keys=True).encode()
                if environ.get("REQUEST_METHOD") == "DELETE":
                    counts.clear()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        key = environ.get("HTTP_X_AMZ_TARGET") or f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"
        with lock:
            counts[key] = counts.get(key, 0) + 1
        return inner(environ, start_response)

    return app


def respond(start_response, status, body, headers=()):
    data = json.dumps(body, sort_keys=True).encode()
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
              503: "Service Unavailable"}.get(status, "Error")
    start_response(f"{status} {reason}", [("Content-Length", str(len(data))), *headers])
    return [data]


def faulting(inner):
    """Wraps the app: serves /_fault and answers the requests an armed fault matches with an AWS error.

    Faulted requests never reach moto (nor its serialising lock); the others are passed on untouched."""
    faults = {}
    ids = itertools.count(1)
    lock = threading.Lock()

    def control(environ, start_response):
        method = environ.get("REQUEST_METHOD")
        rest = environ.get("PATH_INFO", "")[len("/_fault"):].strip("/")
        json_type = [("Content-Type", "application/json")]
        with lock:
            if not rest and method == "POST":
                try:
                    spec = json.loads(read_body(environ) or b"{}")
                    fault = {
                        "target": spec.get("target"),
                        "path": spec.get("path"),
                        "contains": spec.get("contains", ""),
                        "count": int(spec.get("count", 1)),
                        "status": int(spec.get("status", 400)),
                        "code": str(spec["code"]) if spec.get("code") else None,
                        "message": str(spec.get("message", "injected by the emulator")),
                        "reasons": [str(r) for r in spec.get("reasons", [])],
                        "after": bool(spec.get("after", False)),
                        "delay": float(spec.get("delay", 0)),
                    }
                except (ValueError, KeyError, TypeError) as e:
                    return respond(start_response, 400, {"error": f"bad fault: {e}"}, json_type)
                if not (fault["target"] or fault["path"]):
                    return respond(start_response, 400, {"error": "a fault needs a target or a path"}, json_type)
                if not (fault["code"] or fault["delay"] > 0):
                    return respond(start_response, 400, {"error": "a fault needs a code or a delay"}, json_type)
                fault.update(id=next(ids), seen=0, fired=0)
                faults[fault["id"]] = fault
                return respond(start_response, 200, {"id": fault["id"]}, json_type)
            if not rest and method == "GET":
                return respond(start_response, 200, list(faults.values()), json_type)
            if not rest and method == "DELETE":
                faults.clear()
                return respond(start_response, 200, {}, json_type)
            fault = faults.get(int(rest)) if rest.isdigit() else None
            if fault is None:
                return respond(start_response, 404, {"error": "no such fault"}, json_type)
            if method == "DELETE":
                del faults[fault["id"]]
            return respond(start_response, 200, fault, json_type)

    def inject(fault, start_response):
        code, message = fault["code"], fault["message"]
        if fault["target"]:
            body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
            if fault["reasons"]:
                listed = ", ".join(fault["reasons"])
                del body["message"]
                body["Message"] = f"Transaction cancelled, please refer cancellation reasons for specific reasons [{listed}]"
                body["CancellationReasons"] = [
                    {"Code": r} if r == "None" else {"Code": r, "Message": "injected by the emulator"}
                    for r in fault["reasons"]
                ]
            content_type = "application/x-amz-json-1.0"
        else:
            body = {"message": message}
            content_type = "application/json"
        headers = [("Content-Type", content_type), ("x-amzn-ErrorType", code), ("x-amzn-RequestId", "injected")]
        return respond(start_response, fault["status"], body, headers)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/_fault" or path.startswith("/_fault/"):
            return control(environ, start_response)
        if not faults:
            return inner(environ, start_response)
        body = read_body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        target = environ.get("HTTP_X_AMZ_TARGET")
        method_path = f"{environ.get('REQUEST_METHOD')} {path}"
        text = body.decode("utf-8", "replace")
        hit = None
        with lock:
            for fault in faults.values():
                named = fault["target"] == target if fault["target"] else fault["path"] == method_path
                if named and fault["contains"] in text:
                    fault["seen"] += 1
                    if fault["fired"] < fault["count"]:
                        fault["fired"] += 1
                        hit = dict(fault)
                    break
        if hit:
            if hit["delay"] > 0:
                time.sleep(hit["delay"])
                if not hit["code"]:
                    return inner(environ, start_response)
            if hit["after"]:
                # moto applies the request; its answer is lost.
                list(inner(environ, lambda *_args: (lambda _data: None)))
            return inject(hit, start_response)
        return inner(environ, start_response)

    return app


def read_body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


if __name__ == "__main__":
    main()
