"""Where the relative relocations of a binary come from: the pointers the dynamic loader patches at
every start of a position-independent executable (make bench counts the instructions it spends).

    python3 tools/bench/relocs.py BINARY [--top N]

BINARY must keep its symbols: build one function without stripping into a scratch target folder,
e.g. `CARGO_TARGET_DIR=/tmp/t cargo build --release -p gatehouse-lambdas --bin jwt_verify
--config profile.release.strip=false --config profile.release.package.gatehouse-lambdas.strip=false`.
Needs readelf and nm (binutils). Each R_X86_64_RELATIVE is classed by what it points at, read from
the binary: a function (a vtable slot or a function pointer: named by the trait method it
implements, and by crate), a panic location (a &str naming a .rs file followed by line and column:
by crate of the path), a tracing callsite's name ("event file.rs:N"), another &str, or other data.
Heuristic, not exact: the counts are for finding the large contributors.
"""

from __future__ import annotations

import bisect
import collections
import re
import struct
import subprocess
import sys


def main() -> None:
    path = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 20
    data = open(path, "rb").read()

    sections = []
    for line in subprocess.run(["readelf", "-SW", path], capture_output=True, text=True).stdout.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m and int(m.group(3), 16):
            sections.append((m.group(1), m.group(2), int(m.group(3), 16), int(m.group(4), 16), int(m.group(5), 16)))

    def section(addr: int) -> tuple[str | None, int | None]:
        for name, kind, start, offset, size in sections:
            if start <= addr < start + size:
                return name, (None if kind == "NOBITS" else offset + addr - start)
        return None, None

    def read(addr: int, n: int) -> bytes | None:
        _, off = section(addr)
        return None if off is None else data[off:off + n]

    def word(addr: int) -> int | None:
        b = read(addr, 8)
        return struct.unpack("<Q", b)[0] if b and len(b) == 8 else None

    relocs: dict[int, int] = {}
    others = collections.Counter()
    for line in subprocess.run(["readelf", "-rW", path], capture_output=True, text=True).stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and re.fullmatch(r"[0-9a-f]{16}", parts[0]):
            if parts[2].endswith("_RELATIVE"):
                relocs[int(parts[0], 16)] = int(parts[3], 16)
            else:
                others[parts[2]] += 1

    symbols = []
    nm = subprocess.run(["nm", "-C", "-S", "-n", "--defined-only", path], capture_output=True, text=True).stdout
    for line in nm.splitlines():
        m = re.match(r"([0-9a-f]+) ([0-9a-f]+) \S (.*)", line)
        if m:
            symbols.append((int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
    if not symbols:
        sys.exit(f"{path} has no symbols: build it with strip = false (see the top of this file)")
    starts = [s[0] for s in symbols]

    def symbol(addr: int) -> str | None:
        i = bisect.bisect_right(starts, addr) - 1
        while i >= 0 and addr - symbols[i][0] < 65536:
            start, size, name = symbols[i]
            if addr < start + max(size, 1):
                return name
            i -= 1
        return None

    def crate_of_symbol(name: str) -> str:
        m = re.match(r"core::ptr::drop_in_place<(.*)>$", name)
        name = (m.group(1) if m else name).lstrip("<&*( ")
        for prefix in ("dyn ", "mut ", "const "):
            name = name.removeprefix(prefix)
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)", name)
        return m.group(1) if m else "?"

    def crate_of_path(p: str) -> str:
        m = re.search(r"registry/src/[^/]+/([A-Za-z0-9_\-]+?)-\d+\.\d+", p)
        if m:
            return m.group(1)
        m = re.search(r"library/([a-z_]+)/", p)
        if m:
            return m.group(1)
        m = re.match(r"([a-z_\-/]+?)/src/", p)
        return m.group(1) if m else p[:40]

    def text(addr: int, n: int | None) -> str | None:
        if not n or n > 100_000:
            return None
        b = read(addr, n)
        try:
            s = b.decode() if b and len(b) == n else None
        except UnicodeDecodeError:
            return None
        return s if s is not None and all(c.isprintable() or c in "\n\t\r" for c in s) else None

    kinds = collections.Counter()
    methods = collections.Counter()
    fn_crates = collections.Counter()
    locations = collections.Counter()
    callsites = collections.Counter()
    strings = collections.Counter()
    sites = collections.Counter()
    for site, target in relocs.items():
        sites[section(site)[0]] += 1
        where = section(target)[0]
        if where == ".text":
            name = symbol(target) or "?"
            m = re.match(r"<.+ as (.+?)>::(\w+)$", name)
            if m:
                methods[re.sub(r"<.*", "", m.group(1)) + "::" + m.group(2)] += 1
            elif name.startswith("core::ptr::drop_in_place"):
                methods["drop_in_place (a vtable's first slot)"] += 1
            else:
                methods[re.sub(r"<.*", "<..>", name)[:80]] += 1
            fn_crates[crate_of_symbol(name)] += 1
            kinds["function pointer (vtable slots, fn tables)"] += 1
            continue
        if where == ".rodata":
            length = word(site + 8) if site + 8 not in relocs else None
            s = text(target, length)
            if s is not None:
                if s.endswith(".rs") and site + 16 not in relocs:
                    line, col = struct.unpack("<II", read(site + 16, 8) or b"\0" * 8)
                    if 0 < line < 1_000_000 and 0 < col < 10_000:
                        kinds["panic Location (its file's &str)"] += 1
                        locations[crate_of_path(s)] += 1
                        continue
                m = re.match(r"event (\S+):\d+$", s)
                if m:
                    kinds["tracing callsite name"] += 1
                    callsites[crate_of_path(m.group(1))] += 1
                    continue
                kinds["&str (fmt pieces, tracing targets and fields, tables, ...)"] += 1
                strings[s[:60]] += 1
                continue
            kinds["pointer to other read-only data"] += 1
            continue
        kinds[f"pointer into {where}"] += 1

    print(f"{path}: {len(relocs)} relative relocations; others: {dict(others)}")
    print(f"by the section they patch: {dict(sites.most_common())}")
    for k, v in kinds.most_common():
        print(f"{v:7d}  {k}")
    for title, counter in (
        ("function pointers by the method they point at", methods),
        ("function pointers by crate (drop_in_place<T>: T's)", fn_crates),
        ("panic Locations by crate", locations),
        ("tracing callsite names by crate", callsites),
        ("most repeated &str", strings),
    ):
        print(f"\n{title}:")
        for k, v in counter.most_common(top):
            print(f"{v:7d}  {k!r}" if counter is strings else f"{v:7d}  {k}")


if __name__ == "__main__":
    main()
