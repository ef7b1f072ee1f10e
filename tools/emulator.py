"""The local AWS emulator: moto's server (DynamoDB, SES v2), with one request handled at a time.

Real DynamoDB applies each TransactWriteItems / conditional write atomically. moto's threaded
server checks a transaction's conditions and applies its writes without a lock, so two racing
requests can both pass (seen here: two users created for one email claim). Serialising requests
restores the atomicity the store's race tests rely on; connections are still served concurrently.

usage: python tools/emulator.py PORT

Opt-in for `make bench`: with GATEHOUSE_EMULATOR_COUNT_CALLS=1 it also counts the requests it
serves, by DynamoDB operation (the X-Amz-Target header) or "METHOD /path" for others (SES v2):
GET /_bench/calls returns the counts since the last reset, DELETE /_bench/calls resets them.
With it, POST /_bench/items starts recording, for each DynamoDB request, the items it read and
wrote with their sizes by DynamoDB's rules (attribute names and values, before and after the
request, and each global secondary index's entry), what bench/cost.py turns into read and write
request units; GET /_bench/items returns the records since the last POST, DELETE /_bench/items
stops recording. Recording is off until asked for: it reads moto's table around every request.
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

import base64
import io
import itertools
import json
import os
import signal
import sys
import threading
import time

from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4566
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    # Reentrant: the item recording (counting) holds it around a request that one_at_a_time then takes.
    lock = threading.RLock()

    def one_at_a_time(environ, start_response):
        with lock:
            # Materialise the body inside the lock: the request is complete when we let go.
            return list(app(environ, start_response))

    served = faulting(one_at_a_time)
    if os.environ.get("GATEHOUSE_EMULATOR_COUNT_CALLS") == "1":
        served = counting(served, lock)
    run_simple("127.0.0.1", port, served, threaded=True, request_handler=MotoRequestHandler)


def counting(inner, lock):
    """Wraps the app: counts each request (under the same lock) and serves /_bench/calls; while
    recording, records the items each DynamoDB request touches (served at /_bench/items)."""
    counts = {}
    records = []
    recording = threading.Event()

    def bench(start_response, body):
        data = json.dumps(body, sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def app(environ, start_response):
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if path == "/_bench/calls":
            with lock:
                body = dict(counts)
                if method == "DELETE":
                    counts.clear()
            return bench(start_response, body)
        if path == "/_bench/items":
            with lock:
                body = list(records)
                if method in ("POST", "DELETE"):
                    records.clear()
                if method == "POST":
                    recording.set()
                elif method == "DELETE":
                    recording.clear()
            return bench(start_response, body)
        key = environ.get("HTTP_X_AMZ_TARGET") or f"{method} {path}"
        with lock:
            counts[key] = counts.get(key, 0) + 1
        if recording.is_set() and key.startswith("DynamoDB_20120810."):
            return recorded(inner, lock, records, key.split(".", 1)[1], environ, start_response)
        return inner(environ, start_response)

    return app


def recorded(inner, lock, records, op, environ, start_response):
    """Serves one DynamoDB request with the items it names read from moto's tables just before and
    just after it, under the lock that serialises the requests, and records their sizes."""
    body = read_body(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    request = json.loads(body or b"{}")
    status = []

    def capture(code, headers, exc_info=None):
        status.append(int(code.split(" ", 1)[0]))
        return start_response(code, headers, exc_info)

    with lock:
        try:
            touched = touched_items(op, request)
            before = [stored(table, key) for table, _, key in touched]
        except KeyError:  # no such table, or a key without its attributes: moto answers the error
            touched, before = [], []
        out = list(inner(environ, capture))
        after = [stored(table, key) for table, _, key in touched]
        record = {"op": op, "status": status[0] if status else None, "consistent": consistent_read(op, request),
                  "items": []}
        for (table, act, key), old, new in zip(touched, before, after):
            record["items"].append({
                "act": act,
                "item": label(table, key),
                "before": item_size(old) if old is not None else None,
                "after": item_size(new) if new is not None else None,
                "index": {name: change for name in gsi_names(table)
                          if (change := index_change(table, name, old, new))[0] != "none"},
            })
        if op in ("Query", "Scan"):
            answer = json.loads(b"".join(out) or b"{}")
            record["index_name"] = request.get("IndexName")
            record["returned"] = [item_size(i) for i in answer.get("Items", [])]
        records.append(record)
    return out


def touched_items(op, request):
    """(table, act, key) for every item a DynamoDB request reads or writes by key. Query and Scan
    name none: what they read is taken from their answer."""
    out = []

    def key_of(table, item):
        t = table_of(table)
        return {a: item[a] for a in t.table_key_attrs if a in item}

    name = request.get("TableName")
    if op == "GetItem":
        out.append((name, "get", request["Key"]))
    elif op == "PutItem":
        out.append((name, "put", key_of(name, request["Item"])))
    elif op in ("UpdateItem", "DeleteItem"):
        out.append((name, op[:-4].lower(), request["Key"]))
    elif op == "BatchGetItem":
        for table, spec in request.get("RequestItems", {}).items():
            out += [(table, "get", k) for k in spec.get("Keys", [])]
    elif op == "BatchWriteItem":
        for table, writes in request.get("RequestItems", {}).items():
            for w in writes:
                if "PutRequest" in w:
                    out.append((table, "put", key_of(table, w["PutRequest"]["Item"])))
                else:
                    out.append((table, "delete", w["DeleteRequest"]["Key"]))
    elif op in ("TransactWriteItems", "TransactGetItems"):
        for entry in request.get("TransactItems", []):
            (kind, spec), = entry.items()
            key = key_of(spec["TableName"], spec["Item"]) if kind == "Put" else spec["Key"]
            act = {"Put": "put", "Update": "update", "Delete": "delete", "ConditionCheck": "check", "Get": "get"}[kind]
            out.append((spec["TableName"], act, key))
    return out


def consistent_read(op, request):
    """Whether a read asks for a strongly consistent read (None for writes)."""
    if op == "BatchGetItem":
        specs = request.get("RequestItems", {}).values()
        return all(spec.get("ConsistentRead", False) for spec in specs)
    if op in ("GetItem", "Query", "Scan"):
        return bool(request.get("ConsistentRead", False))
    return None


def table_of(name):
    for account in dynamodb_backends.values():
        for backend in account.values():
            if name in backend.tables:
                return backend.tables[name]
    raise KeyError(name)


def stored(table, key):
    """The item with this key as DynamoDB JSON, or None."""
    t = table_of(table)
    range_key = DynamoType(key[t.range_key_attr]) if t.range_key_attr else None
    item = t.get_item(DynamoType(key[t.hash_key_attr]), range_key)
    return item.to_json()["Attributes"] if item is not None else None


def gsi_names(table):
    return [i.name for i in table_of(table).global_indexes]


def gsi(table, name):
    index = next(i for i in table_of(table).global_indexes if i.name == name)
    return index, [k["AttributeName"] for k in index.schema]


def index_entry(table, name, item):
    """The entry of global secondary index `name` for `item` (its projection), or None when the
    item lacks the index's keys."""
    if item is None:
        return None
    index, keys = gsi(table, name)
    if any(k not in item for k in keys):
        return None
    kind = index.projection.get("ProjectionType", "ALL")
    if kind == "ALL":
        return dict(item)
    kept = set(table_of(table).table_key_attrs) | set(keys) | set(index.projection.get("NonKeyAttributes", []) if kind == "INCLUDE" else [])
    return {a: v for a, v in item.items() if a in kept}


def index_change(table, name, old, new):
    """[what the write did to the index entry, its size before, its size after]: "none", "put",
    "delete", "update" (same index key) or "move" (index key changed: a delete and a put)."""
    a, b = index_entry(table, name, old), index_entry(table, name, new)
    size = lambda e: item_size(e) if e is not None else None
    if a == b:
        change = "none"
    elif a is None:
        change = "put"
    elif b is None:
        change = "delete"
    else:
        keys = gsi(table, name)[1]
        change = "update" if all(a[k] == b[k] for k in keys) else "move"
    return [change, size(a), size(b)]


def label(table, key):
    """The kind of an item, from its key: each key's leading upper-case segments (`USER#…/PROFILE`,
    `AUDIT#USER#…/…`), the rest (ids, addresses, dates) elided."""
    parts = []
    for attr in table_of(table).table_key_attrs:
        value = next(iter(key[attr].values()))
        kept = []
        for segment in str(value).split("#"):
            if not segment.isupper() or not segment.replace("_", "").isalpha():
                kept.append("…")
                break
            kept.append(segment)
        parts.append("#".join(kept))
    return "/".join(parts)


def item_size(item):
    """An item's size by DynamoDB's rules: the UTF-8 bytes of each attribute's name plus its value's."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def value_size(value):
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return number_size(v)
    if kind == "B":
        return len(base64.b64decode(v))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "NS":
        return sum(number_size(n) for n in v)
    if kind == "BS":
        return sum(len(base64.b64decode(b)) for b in v)
    if kind == "L":  # 3 bytes for the list, 1 per element
        return 3 + sum(1 + value_size(e) for e in v)
    if kind == "M":  # 3 bytes for the map, 1 per element, and the element names
        return 3 + sum(1 + len(k.encode()) + value_size(e) for k, e in v.items())
    raise ValueError(f"unknown attribute type {kind}")


def number_size(text):
    """1 byte per two significant digits, plus 1 (leading and trailing zeros do not count)."""
    mantissa = text.lower().split("e", 1)[0].lstrip("+-").replace(".", "")
    significant = mantissa.strip("0") or "0"
    return (len(significant) + 1) // 2 + 1


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
