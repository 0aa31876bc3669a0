"""Run every benchmark on SQLite and PostgreSQL and print a summary table (`make bench` runs this).

    .venv/bin/python bench/run_all.py [sqlite] [postgresql] [--seconds 10] [--rebuild-history]

What runs, in order (each script prints its own figures as it goes; see bench/README.md):
  bench/ingest.py     (a) 1000-event batches over HTTP, (b) one event per request over HTTP
  bench/check.py      (c) gate.check in-process, POST /api/v1/check over HTTP
  bench/summary.py    (d) GET /api/v1/usage/summary at 100k, 1M and 5M events of history
  bench/sync.py       (e) the edge sync: changes/s to the file target and Redis, and staleness
Time is bounded: every load run is a fixed number of seconds; the 5M-event history is built once and
kept in bench/out/ (the first run spends about two minutes per database building it), and the whole run
is stopped after TOTAL_LIMIT_S whatever happens. Results are appended to bench/out/results.jsonl.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from common import PY, RESULTS, ROOT, SERVER, arg_value, load_average, machine, parse_dbs, wrk_available
from settle import settle

TOTAL_LIMIT_S = 9 * 60 + 30


def main(argv: list[str]) -> int:
    if not wrk_available():
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    dbs = parse_dbs(argv)
    seconds = arg_value(argv, "--seconds", "10")
    started = time.monotonic()
    first_line = sum(1 for _ in RESULTS.open()) if RESULTS.exists() else 0
    m = machine()
    print(f"machine: {m['nproc']} cores, {m['cpu']}, Python {m['python']}, server {SERVER}, "
          f"load average {load_average():.2f}", flush=True)
    if load_average() > 2.5:
        print("note: the machine is busy (load above 2.5 on 2 cores): latency figures will be worse than on an "
              "idle machine", flush=True)
    steps = [
        ["bench/ingest.py", *dbs, "--seconds", seconds],
        ["bench/check.py", *dbs, "--seconds", seconds],
        ["bench/summary.py", *dbs, "--seconds", str(max(3, int(seconds) // 2)),
         *(["--rebuild"] if "--rebuild-history" in argv else [])],
        ["bench/sync.py", *dbs, "--samples", "30"],
    ]
    status = 0
    for step in steps:
        left = TOTAL_LIMIT_S - (time.monotonic() - started)
        if left < 30:
            print(f"time limit reached: skipped {step[0]}", flush=True)
            status = 1
            continue
        settle(dbs)  # what the step before wrote is not flushed during this one's measurement
        print(f"\n== {' '.join(step)}", flush=True)
        proc = subprocess.Popen([PY, *step], cwd=ROOT, start_new_session=True)
        try:
            code = proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            print(f"time limit reached: stopped {step[0]}", flush=True)
            code = 1
        status = status or code
    table(first_line)
    print(f"\ntotal {time.monotonic() - started:.0f} s", flush=True)
    return status


def table(first_line: int) -> None:
    rows = [json.loads(line) for i, line in enumerate(RESULTS.open()) if i >= first_line] if RESULTS.exists() else []
    print("\n| benchmark | db | figures | target | result |\n| --- | --- | --- | --- | --- |")
    for r in rows:
        detail = r.get("group_by") or r.get("sync_target") or (
            f"{r['connections']} connections" if r["bench"] == "b_ingest_single" else None)
        print(f"| {r['bench']}{' ' + detail if detail else ''} | {r['db']} | {figures(r)} | "
              f"{r['target']} | {'pass' if r['pass'] else 'MISS'} |")


def figures(r: dict) -> str:
    parts = []
    if "events_per_s" in r:
        parts.append(f"{r['events_per_s']:,} events/s")
    if "requests_per_s" in r:
        parts.append(f"{r['requests_per_s']:,.0f} req/s")
    if "calls_per_s" in r:
        parts.append(f"{r['calls_per_s']:,} calls/s")
    if "changes_per_s" in r:
        parts.append(f"{r['changes_per_s']:,} changes/s ({r['changes']:,} changes)")
    if "p99_ms" in r:
        parts.append(f"p50 {r['p50_ms']:.2f} / p95 {r['p95_ms']:.2f} / p99 {r['p99_ms']:.2f} ms")
    elif "max_ms" in r:
        parts.append(f"p50 {r['p50_ms']:.0f} / p95 {r['p95_ms']:.0f} / max {r['max_ms']:.0f} ms")
    if "history_events" in r:
        parts.append(f"{r['history_events']:,} events, {r['rollup_rows']:,} rollups")
    if r.get("errors"):
        parts.append(f"{r['errors']} errors")
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
