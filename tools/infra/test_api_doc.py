"""docs/API.md held equal to infra/openapi.json.

Every operation of the OpenAPI document has exactly one section in docs/API.md, headed
``### `METHOD /path/` `` with the path spelt as in the document; no section names an operation the
document lacks; every status code the document lists for an operation is named in that section;
each section names the other spelling of its path (with or without the trailing slash, both of
which the API accepts) and its authentication as the document gives it.

Run by `make test` (`pytest tools/infra`); reads two files, needs nothing else.
"""

import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
API_MD = ROOT / "docs" / "API.md"
OPENAPI = ROOT / "infra" / "openapi.json"

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The one heading format an operation section may have.
OPERATION_HEADING = re.compile(r"^### `(GET|PUT|POST|DELETE|OPTIONS|HEAD|PATCH|TRACE) (/\S*)`$")


def openapi_operations():
    """{(METHOD, path): operation} of infra/openapi.json."""
    doc = json.loads(OPENAPI.read_text())
    return {
        (method.upper(), path): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def doc_sections(text):
    """[((METHOD, path), section text)] of every operation heading in API.md, in order.

    A section runs from its heading to the next heading of level 2 or 3. Any level-3 heading
    that is not an operation heading in the strict format is an error, so that a misspelt
    heading cannot silently drop an operation from the comparison.
    """
    sections, current, body, bad = [], None, [], []
    in_fence = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        if not in_fence and (line.startswith("## ") or line.startswith("### ")):
            if current is not None:
                sections.append((current, "\n".join(body)))
            current, body = None, []
            if line.startswith("### "):
                m = OPERATION_HEADING.match(line)
                if m:
                    current = (m.group(1), m.group(2))
                else:
                    bad.append(line)
            continue
        if current is not None:
            body.append(line)
    if current is not None:
        sections.append((current, "\n".join(body)))
    return sections, bad


@pytest.fixture(scope="module")
def sections():
    found, bad = doc_sections(API_MD.read_text())
    assert not bad, f"level-3 headings of docs/API.md not in the form ### `METHOD /path`: {bad}"
    return found


@pytest.fixture(scope="module")
def operations():
    return openapi_operations()


def test_every_operation_has_one_section_and_no_other(sections, operations):
    keys = [k for k, _ in sections]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates, f"operations documented twice in docs/API.md: {duplicates}"
    missing = sorted(set(operations) - set(keys))
    extra = sorted(set(keys) - set(operations))
    assert not missing, f"operations of infra/openapi.json without a section in docs/API.md: {missing}"
    assert not extra, f"sections of docs/API.md naming no operation of infra/openapi.json: {extra}"


def test_every_status_code_is_named_in_its_section(sections, operations):
    problems = []
    for (method, path), text in sections:
        op = operations.get((method, path))
        if op is None:
            continue
        for status in op.get("responses", {}):
            if not re.search(rf"(?<![\d.]){re.escape(status)}(?!\d)", text):
                problems.append(f"{method} {path}: {status}")
    assert not problems, f"status codes of infra/openapi.json not named in docs/API.md: {problems}"


def test_every_section_names_the_other_spelling_of_its_path(sections):
    problems = []
    for (method, path), text in sections:
        if path == "/":
            continue  # the root has one spelling
        other = path[:-1] if path.endswith("/") else path + "/"
        if f"`{method} {other}`" not in text:
            problems.append(f"{method} {path}: no `{method} {other}`")
    assert not problems, problems


def test_every_section_states_the_authentication_openapi_gives(sections, operations):
    problems = []
    for (method, path), text in sections:
        op = operations.get((method, path))
        if op is None:
            continue
        auth = re.search(r"Auth: ([^.]*)", text)
        if auth is None:
            problems.append(f"{method} {path}: no `Auth:` line")
            continue
        said = auth.group(1)
        schemes = {name for req in op.get("security", []) for name in req}
        optional = {} in op.get("security", [])
        if "bearerAuth" in schemes and "Bearer" not in said:
            problems.append(f"{method} {path}: needs a Bearer token, the section says {said!r}")
        if "basicAuth" in schemes and "Basic" not in said:
            problems.append(f"{method} {path}: takes Basic auth, the section says {said!r}")
        if (not schemes or optional) and not said.startswith("none"):
            problems.append(f"{method} {path}: needs no credentials, the section says {said!r}")
    assert not problems, problems


def test_the_heading_parser_refuses_a_loose_heading():
    found, bad = doc_sections("## Users\n\n### POST /auth/users/\n\ntext\n\n### `GET /auth/users/`\n\n200\n")
    assert bad == ["### POST /auth/users/"]
    assert found == [(("GET", "/auth/users/"), "\n200")]
