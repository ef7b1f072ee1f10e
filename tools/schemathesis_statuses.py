"""Every operation of infra/openapi.json answered at least one 2xx in the schema run.

Reads the answers tools/schemathesis_hooks.py logged (SCHEMATHESIS_STATUS_LOG: one
`METHOD path-template status` line each). An operation that never succeeded was only ever refused,
whatever schemathesis's own checks say: its documented success was never compared with a real one.
An operation whose document lists no 2xx at all (`GET /`, a redirect) must answer one of the 3xx it
lists instead (schemathesis does not follow redirects).

Usage: python tools/schemathesis_statuses.py STATUS_LOG [OPENAPI_JSON]
"""

import collections
import json
import sys

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def main(log_path, document_path="infra/openapi.json"):
    with open(document_path, encoding="utf-8") as f:
        document = json.load(f)
    operations = sorted(
        (method.upper(), path) for path, item in document["paths"].items() for method in item if method in METHODS
    )
    # What counts as success for each: a 2xx, or, where the document lists none, a listed 3xx.
    redirects = {}
    for method, path in operations:
        listed = document["paths"][path][method.lower()].get("responses", {})
        if not any(code.startswith("2") for code in listed):
            redirects[(method, path)] = {int(code) for code in listed if code.startswith("3") and code.isdigit()}

    def succeeded(op, status):
        return status in redirects[op] if op in redirects else 200 <= status < 300

    seen = collections.defaultdict(collections.Counter)
    with open(log_path, encoding="utf-8") as f:
        for line in f:
            method, path, status = line.split()
            seen[(method, path)][int(status)] += 1
    if not operations:
        print(f"{document_path}: no operations", file=sys.stderr)
        return 1
    failed = []
    for op in operations:
        statuses = seen.get(op, collections.Counter())
        if not any(succeeded(op, s) for s in statuses):
            failed.append(f"  {op[0]} {op[1]}: {dict(sorted(statuses.items())) or 'never called'}")
    if failed:
        print("schemathesis: operations that never answered a 2xx (a redirect: its 3xx) (status: count):", file=sys.stderr)
        print("\n".join(failed), file=sys.stderr)
        return 1
    print(f"schemathesis: every one of the {len(operations)} operations answered a 2xx (a redirect: its 3xx) at least once")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
