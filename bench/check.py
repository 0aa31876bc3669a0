"""(c) `check`: billing_core.services.gate.check called directly (p99 < 1 ms), and POST /api/v1/check over
HTTP (p99 < 10 ms).

    .venv/bin/python bench/check.py [sqlite] [postgresql] [--seconds 10] [--calls 5000]

One pro account with $1,000,000 credit, two pools and some usage (so check reads an account row and
its live pools), questions alternating between compute (60 s) and tokens (2000 in / 500 out on
claude-sonnet-4). In-process: --calls sequential calls timed one by one with perf_counter, after 200
warm-up calls. HTTP: wrk with bench/lua/check.lua, 2 connections, against a real server process.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone

from common import (arg_value, billing_for, create_account, database, parse_dbs, percentiles, record,
                    running_server, wrk)
from settle import settle

IN_PROCESS_TARGET_MS, HTTP_TARGET_MS = 1.0, 10.0
CONNECTIONS = 2


def setup(kind: str):
    from billing_core.services import accounts
    from billing_core.services.usage import UsageEventIn, record_usage

    db = database(kind, f"bench_check_{kind}")
    acc = create_account(db)
    billing = billing_for(db)
    now = datetime.now(timezone.utc)
    accounts.add_pool(billing, acc.account_id, size_ms=36_000_000, valid_days=365, now=now)
    accounts.add_pool(billing, acc.account_id, size_ms=36_000_000, valid_days=30, now=now)
    record_usage(billing, acc.account_id, [UsageEventIn(id=f"warm-{i}", project_id=acc.project_id, kind="compute",
                                                        duration_ms=60_000) for i in range(100)], now=now)
    return db, acc, billing


def run(kind: str, seconds: int, calls: int) -> None:
    from billing_core.services.gate import check

    db, acc, billing = setup(kind)
    settle([kind])
    questions = [dict(kind="compute", duration_ms=60_000),
                 dict(kind="tokens", model="claude-sonnet-4", input_tokens=2000, output_tokens=500)]
    for i in range(200):
        check(billing, acc.account_id, now=datetime.now(timezone.utc), **questions[i % 2])
    samples = []
    for i in range(calls):
        now = datetime.now(timezone.utc)
        t = time.perf_counter()
        answer = check(billing, acc.account_id, now=now, **questions[i % 2])
        samples.append(time.perf_counter() - t)
        assert answer.result.allowed, answer
    billing.engine.dispose()
    p = percentiles(samples)
    record("c_check_in_process", kind, calls=calls, calls_per_s=round(calls / sum(samples)), p50_ms=round(p["p50_ms"], 3),
           p95_ms=round(p["p95_ms"], 3), p99_ms=round(p["p99_ms"], 3), max_ms=round(p["max_ms"], 3),
           target=f"p99 < {IN_PROCESS_TARGET_MS:g} ms", **{"pass": p["p99_ms"] < IN_PROCESS_TARGET_MS})

    with running_server(db) as base:
        wrk(base, "/api/v1/check", "check.lua", seconds=2, connections=CONNECTIONS, args=[acc.api_key])  # warm-up
        r = wrk(base, "/api/v1/check", "check.lua", seconds=seconds, connections=CONNECTIONS, args=[acc.api_key])
    record("c_check_http", kind, requests_per_s=round(r.rps, 1), p50_ms=r.p50_ms, p95_ms=r.p95_ms, p99_ms=r.p99_ms,
           errors=r.errors, requests=r.requests, connections=CONNECTIONS,
           server_cpu_ms_per_request=round(r.server_cpu_ms_per_request, 3),
           db_cpu_ms_per_request=round(r.db_cpu_ms_per_request, 3), load=round(r.load, 2),
           target=f"p99 < {HTTP_TARGET_MS:g} ms", **{"pass": r.p99_ms < HTTP_TARGET_MS and r.errors == 0})


def main(argv: list[str]) -> None:
    seconds = int(arg_value(argv, "--seconds", "10"))
    calls = int(arg_value(argv, "--calls", "5000"))
    for kind in parse_dbs(argv):
        run(kind, seconds, calls)


if __name__ == "__main__":
    main(sys.argv[1:])
