"""(d) GET /api/v1/usage/summary for one account with 100k, 1M and 5M events of history.

    .venv/bin/python bench/summary.py [sqlite] [postgresql] [--seconds 5] [--rebuild]

The history (bench/history.py: 100k through record_usage, 1M and 5M in bulk with the same rollups) is
built once and reused. The API is served by a real server process; wrk asks for the summary of each
account over its whole history (89 days), grouped by day, then by model, with 2 connections.
The figure judged is p99 (target < 20 ms); the in-process service time (usage_summary called directly)
is printed beside it.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta, timezone

from common import arg_value, billing_for, database, parse_dbs, percentiles, record, running_server, wrk
from history import SIZES, build
from settle import settle

TARGET_MS = 20.0
CONNECTIONS = 2


def in_process(db, account_id: str, start, end, group_by: str, n: int = 300) -> dict:
    from billing_core.services.summary import usage_summary

    billing = billing_for(db)
    for _ in range(10):
        usage_summary(billing, account_id, start=start, end=end, group_by=group_by)
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        rows = usage_summary(billing, account_id, start=start, end=end, group_by=group_by)
        samples.append(time.perf_counter() - t)
    billing.engine.dispose()
    return {**percentiles(samples), "rows": len(rows)}


def run(kind: str, seconds: int, rebuild: bool) -> None:
    info = build(kind, rebuild)
    settle([kind])  # the history just written (100k events through record_usage) is settled first
    db = database(kind, info["name"], fresh=False)
    end = datetime.now(timezone.utc).date()
    start = end - timedelta(days=info["days"] + 1)
    with running_server(db) as base:
        for label in SIZES:
            acc = info["accounts"][label]
            for group_by in ("day", "model"):
                path = f"/api/v1/usage/summary?from={start}&to={end}&group_by={group_by}"
                wrk(base, path, "get.lua", seconds=1, connections=CONNECTIONS, args=[acc["api_key"], path])  # warm
                r = wrk(base, path, "get.lua", seconds=seconds, connections=CONNECTIONS, args=[acc["api_key"], path])
                local = in_process(db, acc["account_id"], start, end, group_by)
                record(f"d_summary_{label}", kind, group_by=group_by, history_events=acc["events"],
                       rollup_rows=acc["rollups"], requests_per_s=round(r.rps, 1), p50_ms=r.p50_ms, p95_ms=r.p95_ms,
                       p99_ms=r.p99_ms, errors=r.errors, connections=CONNECTIONS,
                       service_p50_ms=round(local["p50_ms"], 3), service_p99_ms=round(local["p99_ms"], 3),
                       rows_returned=local["rows"], load=round(r.load, 2),
                       target=f"p99 < {TARGET_MS:g} ms", **{"pass": r.p99_ms < TARGET_MS and r.errors == 0})


def main(argv: list[str]) -> None:
    seconds = int(arg_value(argv, "--seconds", "5"))
    for kind in parse_dbs(argv):
        run(kind, seconds, "--rebuild" in argv)


if __name__ == "__main__":
    main(sys.argv[1:])
