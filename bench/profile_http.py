"""Profile the API server under load with py-spy (sampling, whole process, all threads).

    .venv/bin/pip install py-spy          # a measuring tool, not a dependency of the app
    .venv/bin/python bench/profile_http.py sqlite --batch 1000 --connections 2 --seconds 10
    .venv/bin/python bench/profile_http.py postgresql --batch 1 --connections 8
    .venv/bin/python bench/profile_http.py sqlite --endpoint check

Runs the server as in the benchmarks, but under `py-spy record --format raw`, drives it with wrk, then
prints the functions with the most samples (inclusive and self), counting only samples where a thread
held the GIL (--gil): Python work only, not threads waiting on the database, a queue or a lock.
The collapsed stacks stay in bench/out/profile-<db>-<endpoint>.txt (feed them to flamegraph.pl or speedscope).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

import httpx

from common import (OUT, VENV_BIN, Server, arg_value, free_port, parse_dbs, run_id, server_command, server_env,
                    wrk)
from ingest import setup


def summarize(path, top: int = 30) -> None:
    inclusive: collections.Counter = collections.Counter()
    self_: collections.Counter = collections.Counter()
    total = 0
    for line in open(path):
        stack, _, n = line.rstrip().rpartition(" ")
        if not stack:
            continue
        n = int(n)
        total += n
        frames = [f for f in stack.split(";") if f]
        for f in set(frames):
            inclusive[f] += n
        self_[frames[-1]] += n
    print(f"total samples: {total}")
    print(f"\n--- inclusive (top {top}) ---")
    for f, n in inclusive.most_common(top):
        print(f"{100 * n / total:6.1f}%  {f}")
    print(f"\n--- self (top {top}) ---")
    for f, n in self_.most_common(top):
        print(f"{100 * n / total:6.1f}%  {f}")


def main(argv: list[str]) -> None:
    kind = parse_dbs(argv)[0]
    batch = arg_value(argv, "--batch", "1000")
    conns = int(arg_value(argv, "--connections", "2"))
    seconds = int(arg_value(argv, "--seconds", "10"))
    endpoint = arg_value(argv, "--endpoint", "usage")
    db, acc, projects = setup(kind)
    out = OUT / f"profile-{kind}-{endpoint}{batch if endpoint == 'usage' else ''}.txt"
    port = free_port()
    cmd = [str(VENV_BIN / "py-spy"), "record", "--format", "raw", "--rate", "250", "--subprocesses", "--gil",
           "-o", str(out), "--", *server_command(port)]
    log = open(OUT / "profile-server.log", "w")
    proc = subprocess.Popen(cmd, env=server_env(db), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = Server(f"http://127.0.0.1:{port}")
    base.pgid = proc.pid
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        if endpoint == "usage":
            r = wrk(base, "/api/v1/usage", "usage.lua", seconds=seconds, connections=conns,
                    args=[acc.api_key, ",".join(projects), batch, run_id()])
        elif endpoint == "check":
            r = wrk(base, "/api/v1/check", "check.lua", seconds=seconds, connections=conns, args=[acc.api_key])
        else:
            r = wrk(base, "/api/v1/usage/summary?from=2020-01-01&to=2030-01-01", "get.lua", seconds=seconds,
                    connections=conns, args=[acc.api_key, "/api/v1/usage/summary?from=2020-01-01&to=2030-01-01"])
        print(f"under py-spy: {r.rps:.1f} req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms")
    finally:
        # py-spy writes its output when the profiled program exits: stop the server, not py-spy.
        subprocess.run(["pkill", "-INT", "-P", str(proc.pid)])
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    summarize(out)


if __name__ == "__main__":
    main(sys.argv[1:])
