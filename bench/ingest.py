"""Ingest over HTTP: (a) 1000-event batches, (b) one event per request. Prints events/s, requests/s, p50/p95/p99.

    .venv/bin/python bench/ingest.py [sqlite] [postgresql] [--seconds 15] [--only batch|single]

For each database: a fresh database, one pro account with $1,000,000 credit (made by
`tollgate admin create-account`), three projects, the API served by a real server process on
127.0.0.1 (see bench/common.py), then wrk with bench/lua/usage.lua. Every event id is unique, and
afterwards the stored event count is checked against what wrk counted, so nothing was a duplicate or
rejected.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone

from common import (arg_value, billing_for, count_events, create_account, database, parse_dbs, record,
                    run_id, running_server, workers_for, wrk)

BATCH_TARGET_EPS = 25_000
SINGLE_TARGET_RPS, SINGLE_TARGET_P99_MS = 800, 25.0


# (b) at two client concurrencies: two connections (the server never has more than two requests of the
# account in flight, so group commit cannot form groups: the per-request cost) and eight (several
# reporters of one account at once, as an edge with many agents has: group commit forms groups).
SINGLE_CONNECTIONS = (2, 8)


def single_connections(kind: str) -> tuple[int, ...]:
    return (connections_for(kind),) if os.environ.get("BENCH_CONNECTIONS") else SINGLE_CONNECTIONS


def connections_for(kind: str) -> int:
    """Two connections per server worker (override with BENCH_CONNECTIONS): enough to keep every worker
    busy, since a keep-alive connection stays with the worker that accepted it."""
    return int(os.environ.get("BENCH_CONNECTIONS", str(2 * workers_for(kind))))


def setup(kind: str):
    from billing_core.services.projects import create_project

    db = database(kind, f"bench_ingest_{kind}")
    acc = create_account(db)
    billing = billing_for(db)
    now = datetime.now(timezone.utc)
    projects = [acc.project_id] + [create_project(billing, acc.account_id, name=f"p{i}", now=now).id
                                   for i in (2, 3)]
    billing.engine.dispose()
    return db, acc, projects


def run(kind: str, seconds: int, only: str | None) -> list[dict]:
    db, acc, projects = setup(kind)
    rows = []
    connections = connections_for(kind)
    with running_server(db) as base:
        url = "/api/v1/usage"
        pids = ",".join(projects)
        expected = 0
        # warm-up: imports, connection pool, SQLite page cache
        w = wrk(base, url, "usage.lua", seconds=2, connections=2, args=[acc.api_key, pids, "100", run_id()])
        expected += w.requests * 100
        if only in (None, "batch"):
            r = wrk(base, url, "usage.lua", seconds=seconds, connections=connections,
                    args=[acc.api_key, pids, "1000", run_id()])
            expected += r.requests * 1000
            eps = r.requests * 1000 / r.seconds
            rows.append(record("a_ingest_batch1000", kind, events_per_s=round(eps), requests_per_s=round(r.rps, 1),
                               p50_ms=r.p50_ms, p95_ms=r.p95_ms, p99_ms=r.p99_ms, errors=r.errors,
                               requests=r.requests, connections=connections, seconds=round(r.seconds, 1),
                               server_cpu_us_per_event=round(r.server_cpu_ms_per_request, 3),
                               db_cpu_us_per_event=round(r.db_cpu_ms_per_request, 3),
                               load=round(r.load, 2),
                               target=f">= {BATCH_TARGET_EPS:,} events/s",
                               **{"pass": eps >= BATCH_TARGET_EPS and r.errors == 0}))
        for connections in (single_connections(kind) if only in (None, "single") else ()):
            r = wrk(base, url, "usage.lua", seconds=seconds, connections=connections,
                    args=[acc.api_key, pids, "1", run_id()])
            expected += r.requests
            rows.append(record("b_ingest_single", kind, requests_per_s=round(r.rps, 1), p50_ms=r.p50_ms,
                               p95_ms=r.p95_ms, p99_ms=r.p99_ms, errors=r.errors, requests=r.requests,
                               connections=connections, seconds=round(r.seconds, 1),
                               server_cpu_ms_per_request=round(r.server_cpu_ms_per_request, 3),
                               db_cpu_ms_per_request=round(r.db_cpu_ms_per_request, 3),
                               load=round(r.load, 2),
                               target=f">= {SINGLE_TARGET_RPS} req/s, p99 < {SINGLE_TARGET_P99_MS:g} ms",
                               **{"pass": r.rps >= SINGLE_TARGET_RPS and r.p99_ms < SINGLE_TARGET_P99_MS
                                  and r.errors == 0}))
    stored = count_events(db, acc.account_id)
    # wrk does not count requests still in flight when its clock stops; those are stored too.
    if stored < expected:
        raise SystemExit(f"only {stored} events stored, wrk saw {expected} accepted: some were not accepted")
    print(f"  [{kind}] stored events: {stored:,} (wrk counted {expected:,} completed)", flush=True)
    return rows


def main(argv: list[str]) -> None:
    seconds = int(arg_value(argv, "--seconds", "15"))
    only = arg_value(argv, "--only", "") or None
    for kind in parse_dbs(argv):
        run(kind, seconds, only)


if __name__ == "__main__":
    main(sys.argv[1:])
