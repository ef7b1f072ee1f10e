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
"""

import json
import os
import signal
import sys
import threading

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

    served = one_at_a_time
    if os.environ.get("GATEHOUSE_EMULATOR_COUNT_CALLS") == "1":
        served = counting(one_at_a_time, lock)
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


if __name__ == "__main__":
    main()
