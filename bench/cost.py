"""The cost model of `make bench`: a run's measurements in dollars, beside Amazon Cognito.

bench/bench.py measures, for every action priced here (ACTIONS), COST_RUNS requests on the dev
server over the emulator (`cost_inputs`): the server's CPU time, the log lines a function writes,
the DynamoDB calls with the items each read and wrote and their sizes, the SES calls and the body
sizes. This module prices them with bench/prices.toml (AWS's prices, the usage profile, the stated
waits) and the template's settings (memory sizes, log level and retention, alarms, secrets), and
writes the cost section of bench/results.md.

Run alone, it recomputes that section from a run's bench/results.json with bench/prices.toml as it
is now, without measuring again:

    tools/bench/.venv/bin/python bench/cost.py [path/to/results.json]
"""

from __future__ import annotations

import json
import math
import re
import statistics
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRICES = ROOT / "bench" / "prices.toml"
TEMPLATE = ROOT / "infra" / "template.yaml"
GIB = 1024**3
ITEM_OVERHEAD = 100  # bytes DynamoDB stores (and bills) per item beside its attributes

# (the action's name in the measurements, the function that serves it, its route key)
ACTIONS = [
    ("register", "register", "POST /auth/users"),
    ("activation", "activation", "POST /auth/users/activation"),
    ("jwt/create", "jwt_create", "POST /auth/jwt/create"),
    ("jwt/refresh", "jwt_refresh", "POST /auth/jwt/refresh"),
    ("jwt/verify", "jwt_verify", "POST /auth/jwt/verify"),
    ("users/me GET", "users_me", "GET /auth/users/me"),
    ("reset_password", "reset_password", "POST /auth/users/reset_password"),
    ("reset_password_confirm", "reset_password_confirm", "POST /auth/users/reset_password_confirm"),
    ("jwt/blacklist", "jwt_blacklist", "POST /auth/jwt/blacklist"),
]
# reset_password answers no sooner than TIMING_FLOOR (shared/src/services/passwords.rs), so that
# every address answers alike: Lambda bills the wait.
FLOORED = {"reset_password": "timing_floor_ms"}
# What API Gateway writes in the access log beside the route and the response length (the
# template's AccessLogSettings format): values of typical length.
ACCESS_LOG_VALUES = {
    "requestId": "Jy8mTh3ZoAMEbJQ=",
    "identity.sourceIp": "203.0.113.10",
    "requestTime": "03/Dec/2026:16:09:00 +0000",
    "status": "200",
    "protocol": "HTTP/1.1",
    "integrationLatency": "25",
    "integrationErrorMessage": "-",
}
# The services a request pays, as request_cost names them.
SERVICES = {"lambda": "Lambda", "dynamodb": "DynamoDB", "api_gateway": "API Gateway", "ses": "SES",
            "logs": "CloudWatch Logs", "transfer": "data out"}


# ---------------------------------------------------------------- inputs

def prices(path: Path = PRICES) -> dict:
    """bench/prices.toml: AWS's prices, the usage profile and the stated parameters."""
    with path.open("rb") as f:
        return tomllib.load(f)


def template(path: Path = TEMPLATE) -> dict:
    """What the SAM template sets that costs money: each function's memory, the log level and
    retention, the access log's format, the alarms and the secrets."""
    text = path.read_text()

    def default(parameter: str) -> str:
        return re.search(rf"^  {parameter}:\n(?:    .*\n)*?    Default: (\S+)", text, re.M).group(1)

    globals_memory = int(re.search(r"^Globals:\n(?:  .*\n|\n)*?    MemorySize: (\d+)", text, re.M).group(1))
    memory = {}
    for resource in re.split(r"^  (?=\w+:\n    Type: )", text, flags=re.M):
        binary = re.search(r"^        Binary: (\S+)", resource, re.M)
        if binary:
            size = re.search(r"^      MemorySize: (\d+)", resource, re.M)
            memory[binary.group(1)] = int(size.group(1)) if size else globals_memory
    return {
        "memory": memory,
        "log_level": default("LogLevel"),
        "log_retention_days": int(default("LogRetentionDays")),
        "access_log_format": re.search(r"^        Format: '(.*)'$", text, re.M).group(1),
        "alarms": len(re.findall(r"^    Type: AWS::CloudWatch::Alarm$", text, re.M)),
        # The template's own secrets, and the signing key's, which the deploy creates beside it.
        "secrets": len(re.findall(r"^    Type: AWS::SecretsManager::Secret$", text, re.M)) + 1,
    }


# ---------------------------------------------------------------- DynamoDB units

def request_units(record: dict) -> tuple[float, float]:
    """(RRU, WRU) of one DynamoDB request, from the items the emulator saw it read and write.

    Reads: each item rounded up to 4 KB, a missing one counts as one unit; a strongly consistent
    read 1 unit per 4 KB, an eventually consistent one half; a Query the sum of what it returned,
    rounded up once. Writes: 1 unit per KB of the larger of the item before and after (a delete:
    the item deleted; a failed condition still pays, for the item as it stands); a transaction
    twice that, ConditionCheck included. Each write also pays for the global secondary index
    entries it changes (KEYS_ONLY here: only creating or deleting a listed item writes one)."""
    op = record["op"]
    read_rate = 2.0 if op == "TransactGetItems" else 1.0 if record["consistent"] else 0.5
    write_rate = 2.0 if op == "TransactWriteItems" else 1.0
    rru = wru = 0.0
    if op in ("Query", "Scan"):
        rru += max(1, math.ceil(sum(record["returned"]) / 4096)) * read_rate
    for item in record["items"]:
        if item["act"] == "get":
            rru += max(1, math.ceil((item["before"] or 0) / 4096)) * read_rate
            continue
        wru += max(1, math.ceil(max(item["before"] or 0, item["after"] or 0) / 1024)) * write_rate
        if record["status"] == 200:
            for change, old, new in item["index"].values():
                wru += index_units(change, old, new)
    return rru, wru


def index_units(change: str, old: int | None, new: int | None) -> float:
    units = {"put": [new], "update": [new], "delete": [old], "move": [old, new]}.get(change, [])
    return float(sum(max(1, math.ceil(size / 1024)) for size in units))


def wait_ms(sample: dict, m: dict) -> float:
    """The stated time a request waits on DynamoDB and SES, its calls one after the other."""
    per_op = {"TransactWriteItems": m["dynamodb_transaction_ms"], "TransactGetItems": m["dynamodb_transaction_ms"],
              "GetItem": m["dynamodb_read_ms"], "BatchGetItem": m["dynamodb_read_ms"], "Query": m["dynamodb_read_ms"]}
    dynamo = sum(per_op.get(rec["op"], m["dynamodb_write_ms"]) for rec in sample["dynamodb"])
    return dynamo + sample["ses"] * m["ses_send_ms"]


def measured(samples: list[dict], m: dict) -> dict:
    """One action's measurements, the median of its samples. The calls can differ between samples
    (a rate counter's first hit in its window is one call, the next ones two): the calls shown are
    the most frequent set."""
    units = [[sum(x) for x in zip(*(request_units(rec) for rec in s["dynamodb"]))] or [0.0, 0.0] for s in samples]
    call_sets = Counter(tuple(sorted(Counter(rec["op"] for rec in s["dynamodb"]).items())) for s in samples)
    ops = call_sets.most_common(1)[0][0]

    def median(values) -> float:
        return statistics.median(list(values))

    return {
        "cpu_ms": median(s["cpu_ms"] for s in samples),
        "wall_ms": median(s["wall_ms"] for s in samples),
        "wait_ms": median(wait_ms(s, m) for s in samples),
        "rru": median(u[0] for u in units),
        "wru": median(u[1] for u in units),
        "calls": ", ".join(f"{op}{f' ×{n}' if n > 1 else ''}" for op, n in ops) or "none",
        "ses": median(s["ses"] for s in samples),
        "log_bytes": median(sum(s["log_lines"]) for s in samples),
        "log_lines": median(len(s["log_lines"]) for s in samples),
        "request_bytes": median(s["request_bytes"] for s in samples),
        "response_bytes": median(s["response_bytes"] for s in samples),
        "samples": len(samples),
    }


# ---------------------------------------------------------------- dollars

def billed_ms(a: dict, action: str, memory: int, m: dict, stress: float = 1.0) -> int:
    """Lambda's billed duration: the CPU time at one vCPU stretched by 1769/M below 1,769 MB (the
    share of a vCPU Lambda gives), plus the waits (not stretched), no less than the action's floor,
    rounded up to the millisecond."""
    cpu = a["cpu_ms"] * m["lambda_cpu_factor"] * stress * max(1.0, m["one_vcpu_mb"] / memory)
    floor = m[FLOORED[action]] if action in FLOORED else 0
    return math.ceil(max(floor, cpu + a["wait_ms"] * stress))


def lambda_cost(a: dict, action: str, memory: int, p: dict, stress: float = 1.0) -> float:
    ms = billed_ms(a, action, memory, p["model"], stress)
    return p["lambda"]["request"] + ms / 1000 * memory / 1024 * p["lambda"]["gb_second_arm64"]


def access_log_bytes(fmt: str, route: str, response_bytes: float) -> int:
    values = {**ACCESS_LOG_VALUES, "routeKey": route, "responseLength": str(int(response_bytes))}
    return len(re.sub(r"\$context\.([\w.]+)", lambda v: values[v.group(1)], fmt))


def request_cost(a: dict, action: str, route: str, memory: int, p: dict, t: dict) -> dict:
    """One request's cost, by service, in dollars."""
    m, cw = p["model"], p["cloudwatch"]
    logged = (
        a["log_bytes"] + a["log_lines"] * cw["log_event_overhead_bytes"]  # the function's lines
        + m["platform_log_bytes"] + m["platform_log_lines"] * cw["log_event_overhead_bytes"]  # START/END/REPORT
        + access_log_bytes(t["access_log_format"], route, a["response_bytes"]) + cw["log_event_overhead_bytes"]
    )
    log_rate = cw["log_ingestion_gb"] + cw["log_storage_gb_month"] * t["log_retention_days"] / 30
    api_units = max(1, math.ceil(max(a["request_bytes"], a["response_bytes"]) / p["api_gateway"]["metering_bytes"]))
    out = {
        "lambda": lambda_cost(a, action, memory, p),
        "dynamodb": a["rru"] * p["dynamodb"]["read_request_unit"] + a["wru"] * p["dynamodb"]["write_request_unit"],
        "api_gateway": api_units * p["api_gateway"]["http_request"],
        "ses": a["ses"] * p["ses"]["message"],
        "logs": logged / GIB * log_rate,
        "transfer": (a["response_bytes"] + m["response_header_bytes"]) / GIB * p["data_transfer"]["out_gb"],
    }
    out["total"] = sum(out.values())
    out["logged_bytes"] = logged
    return out


def per_mau(profile: dict) -> dict[str, float]:
    """How often one monthly active user runs each action in a month."""
    active = profile["active_days_per_month"] * profile["active_minutes_per_day"]
    return {
        "register": profile["new_user_share"],
        "activation": profile["new_user_share"],
        "jwt/create": profile["logins_per_month"],
        "jwt/refresh": active / profile["access_token_lifetime_min"],
        "jwt/verify": profile["verify_per_month"],
        "users/me GET": profile["me_per_month"],
        "reset_password": profile["reset_share"],
        "reset_password_confirm": profile["reset_share"],
        "jwt/blacklist": profile["logouts_per_month"],
    }


def item_sizes(inputs: dict) -> dict[str, dict]:
    """The largest size seen of each kind of item, and of its index entry."""
    out: dict[str, dict] = {}
    for samples in inputs["samples"].values():
        for s in samples:
            for rec in s["dynamodb"]:
                for item in rec["items"]:
                    entry = out.setdefault(item["item"], {"bytes": 0, "index_bytes": 0})
                    entry["bytes"] = max(entry["bytes"], item["before"] or 0, item["after"] or 0)
                    for _, old, new in item["index"].values():
                        entry["index_bytes"] = max(entry["index_bytes"], old or 0, new or 0)
    return dict(sorted(out.items()))


def stored_bytes_per_mau(inputs: dict, counts: dict[str, float], profile: dict) -> float:
    """What the table keeps per monthly active user: the registered accounts' user and email-claim
    items, and the audit items written in a month kept for the retention. Sessions, codes and
    counters expire within a day and are left out."""
    sizes = item_sizes(inputs)
    account = sum(sizes.get(k, {}).get("bytes", 0) + ITEM_OVERHEAD for k in ("USER#…/PROFILE", "EMAIL#…/EMAIL"))
    audit = 0.0
    for action, samples in inputs["samples"].items():
        written = [sum((it["after"] or 0) + ITEM_OVERHEAD for rec in s["dynamodb"] for it in rec["items"]
                       if it["item"].startswith("AUDIT#") and it["act"] == "put") for s in samples]
        audit += counts.get(action, 0) * statistics.median(written)
    return profile["registered_per_mau"] * account + audit * profile["audit_retention_days"] / 30


def cognito(mau: int, bands: list) -> float:
    """Cognito's monthly price for `mau` MAUs: each band's MAUs at the band's price."""
    total, below = 0.0, 0
    for upto, price in bands:
        if mau <= below:
            break
        total += (min(mau, upto) - below) * price
        below = upto
    return total


def model(inputs: dict, p: dict, t: dict) -> dict:
    """The whole model: per action, per month at each MAU count beside Cognito, per memory size."""
    m, profile = p["model"], p["profile"]
    acts = {action: measured(inputs["samples"][action], m) for action, _, _ in ACTIONS}
    counts = per_mau(profile)
    actions = {}
    for action, fn, route in ACTIONS:
        memory = t["memory"][fn]
        a = acts[action]
        actions[action] = {**a, "function": fn, "route": route, "memory": memory,
                           "billed_ms": billed_ms(a, action, memory, m),
                           "cost": request_cost(a, action, route, memory, p, t)}
    by_service = {sv: sum(counts[k] * actions[k]["cost"][sv] for k in counts) for sv in SERVICES}
    per_user = sum(by_service.values())
    storage_gb = stored_bytes_per_mau(inputs, counts, profile) / GIB
    storage_per_user = storage_gb * (p["dynamodb"]["storage_gb_month"] + p["dynamodb"]["pitr_gb_month"])
    fixed = t["alarms"] * p["cloudwatch"]["alarm_month"] + t["secrets"] * p["secrets_manager"]["secret_month"]
    stress = m["pessimistic"]
    stressed_per_user = sum(
        counts[k] * stress * (actions[k]["cost"]["total"] - actions[k]["cost"]["lambda"]
                              + lambda_cost(actions[k], k, actions[k]["memory"], p, stress))
        for k in counts
    ) + storage_per_user * stress
    per_user_all = per_user + storage_per_user
    months = []
    for mau in profile["maus"]:
        months.append({
            "mau": mau,
            "variable": mau * per_user,
            "storage": mau * storage_per_user,
            "fixed": fixed,
            "total": mau * per_user_all + fixed,
            "pessimistic": mau * stressed_per_user + fixed,
            "cognito": {tier: cognito(mau, p["cognito"][tier]) for tier in ("lite", "essentials", "plus")},
        })
    curve = []
    top = max(profile["maus"])
    for mau in sorted({k * 10**e for e in range(3, 7) for k in (1, 2, 5) if k * 10**e <= top} | set(profile["maus"])):
        curve.append({"mau": mau, "gatehouse": mau * per_user_all + fixed,
                      "pessimistic": mau * stressed_per_user + fixed,
                      **{tier: cognito(mau, p["cognito"][tier]) for tier in ("lite", "essentials", "plus")}})
    target_mau = profile["target_mau"]
    gate = target_mau * per_user_all + fixed
    essentials = cognito(target_mau, p["cognito"]["essentials"])
    return {
        "actions": actions,
        "per_mau": counts,
        "per_user_month": per_user,
        "by_service": by_service,
        "storage_per_user_month": storage_per_user,
        "fixed": {"alarms": t["alarms"], "secrets": t["secrets"], "monthly": fixed},
        "months": months,
        "curve": curve,
        # ratio and headroom (how many times this usage keeps within the tenth) are None where
        # Essentials is free
        "target": {"mau": target_mau, "gatehouse": gate, "essentials": essentials,
                   "ratio": gate / essentials if essentials else None, "met": 0 < gate * 10 <= essentials,
                   "headroom": (essentials / 10 - fixed) / (target_mau * per_user_all) if essentials else None},
        "memory": memory_sizes(actions, counts, p, target_mau),
        "items": item_sizes(inputs),
        "peak_rss_kib": inputs.get("peak_rss_kib"),
        "log_level": inputs.get("log_level"),
        "log_retention_days": t["log_retention_days"],
        "runs": inputs["runs"],
        # The prices and parameters used; Cognito's bands (with their infinite last bound) stay in the TOML.
        "prices": {**p, "cognito": {k: v for k, v in p["cognito"].items() if isinstance(v, str)}},
    }


def memory_sizes(actions: dict, counts: dict[str, float], p: dict, mau: int) -> dict:
    """Per function, at each memory size: the modelled duration of its actions (the latency Lambda
    adds; one action each here) and what Lambda costs a month at `mau` MAUs."""
    m = p["model"]
    out: dict[str, dict] = {}
    for action, a in actions.items():
        rows = []
        for size in m["memory_sizes"]:
            per_request = lambda_cost(a, action, size, p)
            rows.append({"mb": size, "ms": billed_ms(a, action, size, m), "per_million": per_request * 1e6,
                         "monthly": mau * counts[action] * per_request})
        cheapest = min(rows, key=lambda r: (r["per_million"], r["mb"]))
        fastest = min(r["ms"] for r in rows)
        out[a["function"]] = {"action": action, "template_mb": a["memory"], "sizes": rows,
                              "min_cost_mb": cheapest["mb"],
                              "min_latency_mb": min(r["mb"] for r in rows if r["ms"] <= fastest)}
    return out


# ---------------------------------------------------------------- report

def usd(x: float) -> str:
    """Dollars: whole above $100, cents above $1, three significant digits below (no exponent)."""
    if x >= 100:
        return f"${x:,.0f}"
    if x >= 1:
        return f"${x:,.2f}"
    if x <= 0:
        return "$0"
    return f"${x:.{2 - math.floor(math.log10(x))}f}"


def per_million(x: float) -> str:
    return f"{x * 1e6:,.2f}"


def against_essentials(t: dict) -> str:
    if t["ratio"] is None:
        return "Essentials is free at this size"
    return f"{100 * t['ratio']:.1f} %"


def target_row(c: dict) -> str:
    t = c["target"]
    return (
        f"| {t['mau']:,} MAU ≤ 1/10 of Cognito Essentials (cost model, bench/prices.toml) | "
        f"Gatehouse {usd(t['gatehouse'])} a month vs Essentials {usd(t['essentials'])}: {against_essentials(t)} "
        f"| {'**met**' if t['met'] else '**missed**'} |"
    )


def finding(c: dict) -> str:
    t = c["target"]
    small = min(c["months"], key=lambda mo: mo["mau"])
    top = max(c["actions"].items(), key=lambda kv: c["per_mau"][kv[0]] * kv[1]["cost"]["total"])
    shares = sorted(c["by_service"].items(), key=lambda kv: -kv[1])
    headroom = f"; it holds up to {t['headroom']:.1f} × this usage" if t["headroom"] is not None else ""
    return (
        f"- **Cost.** With the profile of bench/prices.toml, 1,000 monthly active users cost "
        f"{usd(1000 * (c['per_user_month'] + c['storage_per_user_month']))} a month in requests and storage, plus "
        f"{usd(c['fixed']['monthly'])} a month fixed ({c['fixed']['alarms']} alarms, {c['fixed']['secrets']} secrets): "
        f"{usd(t['gatehouse'])} at {t['mau']:,} MAU against Cognito Essentials' {usd(t['essentials'])} "
        f"({against_essentials(t)}, target ≤ 10 %: {'met' if t['met'] else 'missed'}{headroom}). The largest share is "
        f"`{top[0]}` ({100 * c['per_mau'][top[0]] * top[1]['cost']['total'] / c['per_user_month']:.0f} % of the "
        "requests' cost); by service: "
        + ", ".join(f"{SERVICES[sv]} {100 * v / c['per_user_month']:.0f} %" for sv, v in shares)
        + f". At {small['mau']:,} MAU: Gatehouse {usd(small['total'])}, Cognito Lite {usd(small['cognito']['lite'])}, "
        f"Essentials {usd(small['cognito']['essentials'])}."
    )


def section(c: dict) -> list[str]:
    """The cost section of bench/results.md."""
    p, m, prof = c["prices"], c["prices"]["model"], c["prices"]["profile"]
    lines = ["## 7. What it costs", ""]
    add = lines.append
    add(
        f"Each priced action was run for {c['runs']} new accounts (register → activation → jwt/create → jwt/verify → "
        "users/me → jwt/refresh → jwt/blacklist → reset_password → reset_password_confirm) on the release dev server "
        f"over the emulator, logging at the template's level (`RUST_LOG={c['log_level']}`). Measured per request: the "
        "server's CPU time (all threads, /proc schedstat; median), the log lines a function writes too (median), the "
        "DynamoDB items each call read and wrote with their sizes by DynamoDB's rules (the emulator reads them around "
        "each call), the SES calls and the body sizes. Stated, not measured (bench/prices.toml): the waits on "
        f"DynamoDB ({m['dynamodb_read_ms']} ms a read, {m['dynamodb_write_ms']} ms a write, "
        f"{m['dynamodb_transaction_ms']} ms a transaction, one call after the other) and SES ({m['ses_send_ms']} ms), "
        f"and Lambda's CPU against this machine's (× {m['lambda_cpu_factor']:g})."
    )
    add("")
    add(
        f"Lambda: the CPU time at one vCPU takes 1769/M as long at M MB below {m['one_vcpu_mb']:,} MB (Lambda gives a "
        "share of a vCPU proportional to memory; argon2id with p=1 runs on one thread, so more than one vCPU does not "
        "help); waits are not stretched; `reset_password` is billed at least its TIMING_FLOOR "
        f"({m['timing_floor_ms']} ms), which it sleeps out so that every address answers alike; billed per ms, "
        "arm64, plus the request. DynamoDB on demand: reads strongly consistent as the store asks (every read sets "
        "ConsistentRead), 1 RRU per 4 KB per item; writes 1 WRU per KB of the larger of the item before and after, "
        "transactions twice, a failed condition still paying; the list index's entries when written. Logs: the "
        f"function's lines, Lambda's START/END/REPORT ({m['platform_log_bytes']} B stated) and API Gateway's access "
        f"log line (the template's format), each event plus {p['cloudwatch']['log_event_overhead_bytes']} B, "
        f"ingested and kept {c['log_retention_days']} days. Data out: the response body plus "
        f"{m['response_header_bytes']} B of headers. Not modelled: cold starts (Lambda bills a custom runtime's "
        "init, but the functions reach their first poll in a few ms, sections 1–2), the Secrets Manager calls they "
        "make once per cold start, and actions outside the profile (failed logins, profile edits, admin)."
    )
    add("")
    add("| action | function (MB) | CPU ms | waits ms | billed ms | DynamoDB calls | RRU | WRU | SES | log B/req | "
        "$/1M: Lambda | DynamoDB | API GW | SES | logs | data out | **total** |")
    add("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for action, a in c["actions"].items():
        k = a["cost"]
        add(
            f"| {action} | `{a['function']}` ({a['memory']}) | {a['cpu_ms']:.2f} | {a['wait_ms']:.0f} | {a['billed_ms']} | "
            f"{a['calls']} | {a['rru']:g} | {a['wru']:g} | {a['ses']:g} | {k['logged_bytes']:,.0f} | "
            f"{per_million(k['lambda'])} | {per_million(k['dynamodb'])} | {per_million(k['api_gateway'])} | "
            f"{per_million(k['ses'])} | {per_million(k['logs'])} | {per_million(k['transfer'])} | "
            f"**{per_million(k['total'])}** |"
        )
    add("")
    add(
        "Log bytes per request are everything ingested: the function's own lines ("
        + ", ".join(f"{act} {a['log_bytes']:.0f} B in {a['log_lines']:.0f}" for act, a in c["actions"].items())
        + "), Lambda's three lines and the access log line, with the per-event overhead."
    )
    add("")
    counts = c["per_mau"]
    add(
        "Usage per monthly active user (bench/prices.toml `[profile]`): "
        + ", ".join(f"{action} {n:g}" for action, n in counts.items())
        + f" a month (jwt/refresh: {prof['active_days_per_month']} active days × {prof['active_minutes_per_day']} min ÷ "
        f"the {prof['access_token_lifetime_min']}-min access token). Storage: {prof['registered_per_mau']} stored "
        f"accounts per active one and the audit items kept {prof['audit_retention_days']} days, with point-in-time "
        f"recovery. Fixed: {c['fixed']['alarms']} alarms and {c['fixed']['secrets']} secrets "
        f"({usd(c['fixed']['monthly'])} a month). AWS's always-free allowances are not applied to Gatehouse; Cognito's "
        "free MAUs are, as Cognito prices them."
    )
    add("")
    add(f"| MAU | Gatehouse requests | storage | fixed | **Gatehouse** | pessimistic (× {m['pessimistic']:g}) | "
        "Cognito Lite | Cognito Essentials | Cognito Plus | Gatehouse ÷ Essentials |")
    add("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mo in c["months"]:
        cg = mo["cognito"]
        ratio = f"{100 * mo['total'] / cg['essentials']:.1f} %" if cg["essentials"] else "Essentials free"
        add(
            f"| {mo['mau']:,} | {usd(mo['variable'])} | {usd(mo['storage'])} | {usd(mo['fixed'])} | **{usd(mo['total'])}** | "
            f"{usd(mo['pessimistic'])} | {usd(cg['lite'])} | {usd(cg['essentials'])} | {usd(cg['plus'])} | {ratio} |"
        )
    add("")
    add(
        "A month of 1,000 active users' requests by service: "
        + ", ".join(f"{SERVICES[sv]} {usd(1000 * v)} ({100 * v / c['per_user_month']:.0f} %)"
                    for sv, v in sorted(c["by_service"].items(), key=lambda kv: -kv[1]))
        + f"; their storage {usd(1000 * c['storage_per_user_month'])}."
    )
    add("")
    add(
        f"The pessimistic column multiplies the CPU time, the waits and the usage by {m['pessimistic']:g}. Cognito's "
        "figures are its MAU price alone: its emails beyond 50 a day go through SES too, at the same price."
    )
    add("")
    add(memory_intro(c))
    add("")
    sizes = m["memory_sizes"]
    add("| function (action) | template | " + " | ".join(f"{s} MB" for s in sizes) + " | cheapest | fastest |")
    add("|---|---:|" + "---:|" * len(sizes) + "---:|---:|")
    for fn, f in c["memory"].items():
        cells = []
        for row in f["sizes"]:
            cell = f"{row['ms']} ms, {usd(row['monthly'])}"
            cells.append(f"**{cell}**" if row["mb"] == f["template_mb"] else cell)
        add(f"| `{fn}` ({f['action']}) | {f['template_mb']} | " + " | ".join(cells) +
            f" | {f['min_cost_mb']} | {f['min_latency_mb']} |")
    add("")
    add(recommendation(c))
    add("")
    add("Item sizes measured (largest seen, bytes by DynamoDB's rules; list index entry where the item has one):")
    add("")
    add("| item | bytes | index entry |")
    add("|---|---:|---:|")
    for item, s in c["items"].items():
        add(f"| `{item}` | {s['bytes']} | {s['index_bytes'] or '–'} |")
    add("")
    add("Prices (US East, read on the date given; bench/prices.toml, where they are updated): "
        + "; ".join(f"{name} {p[name]['source']} ({p[name]['read']})" for name in
                    ("lambda", "dynamodb", "api_gateway", "ses", "cloudwatch", "secrets_manager", "data_transfer", "cognito"))
        + ".")
    add("")
    return lines


def memory_intro(c: dict) -> str:
    t = c["target"]["mau"]
    rss = c["peak_rss_kib"]
    return (
        f"Memory size per function: the modelled duration of one request (what Lambda adds to the latency) and what "
        f"Lambda (duration and requests) costs a month at {t:,} MAU, the template's size in bold. Below one vCPU the "
        "CPU-bound part costs the same at every size (duration × memory is constant), so the waits decide: the "
        "smallest size is the cheapest, and 1,769 MB the fastest (more memory adds a second vCPU the request does not "
        "use). The dev server, every route in one process, peaked at "
        + (f"{rss / 1024:.0f} MiB resident" if rss else "an unmeasured size")
        + " over this run: an upper bound of one function's memory."
    )


def recommendation(c: dict) -> str:
    """The functions that hash (1,024 MB or more in the template) at 1,024 MB against 1,769 MB, one
    vCPU: duration and cost, whichever of the two the template chose."""
    parts = []
    for fn, f in c["memory"].items():
        rows = {r["mb"]: r for r in f["sizes"]}
        if f["template_mb"] >= 1024 and 1024 in rows and 1769 in rows:
            low, high = rows[1024], rows[1769]
            parts.append(f"`{fn}` {low['ms']} → {high['ms']} ms for {usd(high['monthly'] - low['monthly'])} more a month")
    if not parts:
        return ""
    return f"The functions that hash, at 1,769 MB instead of 1,024, at {c['target']['mau']:,} MAU: " + "; ".join(parts) + "."


# ---------------------------------------------------------------- chart

def chart(ax_mau, ax_memory, c: dict) -> None:
    """Two panels: monthly cost against MAUs beside Cognito's tiers; per hashing function, cost
    and duration at each memory size."""
    maus = [point["mau"] for point in c["curve"]]
    ax_mau.plot(maus, [point["gatehouse"] for point in c["curve"]], "o-", color="tab:blue", label="Gatehouse")
    ax_mau.plot(maus, [point["pessimistic"] for point in c["curve"]], "--", color="lightsteelblue",
                label=f"Gatehouse, pessimistic (× {c['prices']['model']['pessimistic']:g})")
    for tier, color in (("lite", "tab:olive"), ("essentials", "tab:orange"), ("plus", "tab:red")):
        ax_mau.plot(maus, [max(point[tier], 0.01) for point in c["curve"]], "s-", ms=3, color=color,
                    label=f"Cognito {tier.capitalize()}")
    ax_mau.axvline(c["target"]["mau"], color="grey", lw=0.8)
    ax_mau.set_xscale("log")
    ax_mau.set_yscale("log")
    ax_mau.set_xlabel("monthly active users")
    ax_mau.set_ylabel("USD a month, log scale (free shown at 0.01)")
    ax_mau.set_title(f"7. What it costs (target: ≤ 1/10 of Essentials at {c['target']['mau'] // 1000}k MAU)")
    ax_mau.legend(fontsize=8)

    for fn, f in c["memory"].items():
        if f["template_mb"] < 1024:
            continue
        ax_memory.plot([r["ms"] for r in f["sizes"]], [r["per_million"] for r in f["sizes"]], "o-", label=fn)
        for r in f["sizes"]:
            ax_memory.annotate(f"{r['mb']}", (r["ms"], r["per_million"]), fontsize=7, xytext=(3, 3),
                               textcoords="offset points")
    ax_memory.set_xscale("log")
    ax_memory.set_yscale("log")
    ax_memory.set_xlabel("modelled duration of one request (ms, log scale)")
    ax_memory.set_ylabel("Lambda USD per million requests (duration and request), log scale")
    ax_memory.set_title("8. The functions that hash, at each memory size (MB)")
    ax_memory.legend(fontsize=8)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results.json"
    r = json.loads(path.read_text())
    if "cost_inputs" not in r:
        sys.exit(f"{path} has no cost measurements (cost_inputs): it predates the cost model; run `make bench`")
    print("\n".join(section(model(r["cost_inputs"], prices(), template()))))


if __name__ == "__main__":
    main()
