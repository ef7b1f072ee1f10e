"""The local AWS emulator: moto's server (DynamoDB, SES v2), with one request handled at a time.

Real DynamoDB applies each TransactWriteItems / conditional write atomically. moto's threaded
server checks a transaction's conditions and applies its writes without a lock, so two racing
requests can both pass (seen here: two users created for one email claim). Serialising requests
restores the atomicity the store's race tests rely on; connections are still served concurrently.

usage: python tools/emulator.py PORT
"""

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

    run_simple("127.0.0.1", port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
