"""CPU cost of one request through the whole ASGI app (middleware, FastAPI, auth, service, database),
called in-process without a network or server, one request at a time; optionally under cProfile.

    .venv/bin/python bench/profile_asgi.py sqlite --endpoint usage --batch 1000 --requests 30
    .venv/bin/python bench/profile_asgi.py postgresql --endpoint usage --batch 1 --requests 2000 --profile tottime
    .venv/bin/python bench/profile_asgi.py sqlite --endpoint check --requests 3000 --profile cumulative --inline
    .venv/bin/python bench/profile_asgi.py postgresql --endpoint usage --batch 1 --inline --profile package

--inline runs what would go to the thread pool in the event loop's thread, so that cProfile (which sees
one thread) sees all the work, and thread hand-offs are left out of the CPU figure.

Prints CPU milliseconds per request of this process (for PostgreSQL the database's own CPU is not in it),
which does not depend on what else the machine is doing, unlike wall-clock figures on a shared 2-core box.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import sys
import time
from datetime import datetime, timezone

import orjson

from common import EDGE_TOKEN, SECRET_KEY, arg_value, parse_dbs, run_id
from ingest import setup


def usage_body(prefix: str, n: int, batch: int, projects: list[str]) -> bytes:
    ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    agents = ("planner", "coder", "reviewer", "tester")
    models = (("claude-sonnet-4", "anthropic"), ("claude-haiku-4", "anthropic"), ("gpt-4o-mini", "openai"))
    events = []
    for i in range(batch):
        k = n * batch + i
        base = {"id": f"{prefix}-{n}-{i}", "project_id": projects[k % len(projects)], "timestamp": ts,
                "agent": agents[k % 4], "run_id": f"run-{n}"}
        if k % 10 < 7:
            events.append({**base, "kind": "compute", "duration_ms": 1000 + (k * 7919) % 60000})
        else:
            m = models[k % 3]
            events.append({**base, "kind": "tokens", "model": m[0], "provider": m[1],
                           "input_tokens": 100 + (k * 31) % 5000, "output_tokens": 10 + (k * 17) % 800})
    return orjson.dumps({"events": events})


def by_package(stats: pstats.Stats) -> None:
    """Own time summed by where the code lives (a package of the venv, the standard library, our modules)."""
    totals: dict[str, float] = {}
    for (path, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        if "site-packages/" in path:
            key = path.split("site-packages/")[1].split("/")[0]
        elif "/work/" in path or path.startswith(("portal", "billing_core")):
            key = "/".join(path.split("/main/")[-1].split("/")[:2])
        elif path == "~":
            key = "builtins (C)"
        else:
            key = "stdlib " + path.rsplit("/", 1)[-1]
        totals[key] = totals.get(key, 0.0) + tottime
    whole = sum(totals.values())
    for key, t in sorted(totals.items(), key=lambda kv: -kv[1])[:30]:
        print(f"  {100 * t / whole:5.1f}%  {key}")


async def call(app, method: str, path: str, key: str, body: bytes = b"", query: bytes = b"") -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {key}".encode()),
                         (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    sent = False
    status, chunks = 0, []

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)



def app_for(db):
    """The API app of portal.api.asgi on the benchmark's database (importing it settles the heap, as a server does)."""
    os.environ.update(TOLLGATE_DATABASE_URL=db.url, TOLLGATE_ENV="test", TOLLGATE_SECRET_KEY=SECRET_KEY,
                      TOLLGATE_EDGE_TOKEN=EDGE_TOKEN)
    from portal.api.asgi import app

    return app


def run_inline() -> None:
    """Run what would go to a thread pool inline, in the event loop's thread: one thread sees all the work
    (cProfile, callgrind), and thread hand-offs are left out of the figure."""
    import anyio.to_thread
    import portal.api.offload

    async def run_sync(func, *args, **kwargs):
        return func(*args)

    async def in_thread(func, *args):
        return func(*args)

    anyio.to_thread.run_sync = run_sync
    portal.api.offload.in_thread = in_thread


def main(argv: list[str]) -> None:
    kind = parse_dbs(argv)[0]
    endpoint = arg_value(argv, "--endpoint", "usage")
    batch = int(arg_value(argv, "--batch", "1000"))
    n = int(arg_value(argv, "--requests", "30"))
    sort = arg_value(argv, "--profile", "")
    db, acc, projects = setup(kind)
    app = app_for(db)
    if "--inline" in argv:
        run_inline()
    prefix = run_id()
    if endpoint == "usage":
        bodies = [usage_body(prefix, i, batch, projects) for i in range(n + 5)]
        requests = [("POST", "/api/v1/usage", b, b"") for b in bodies]
    elif endpoint == "check":
        bodies = [b'{"kind":"compute","duration_ms":60000}',
                  b'{"kind":"tokens","model":"claude-sonnet-4","input_tokens":2000,"output_tokens":500}']
        requests = [("POST", "/api/v1/check", bodies[i % 2], b"") for i in range(n + 5)]
    else:
        requests = [("GET", "/api/v1/usage/summary", b"", b"from=2020-01-01&to=2030-01-01&group_by=day")] * (n + 5)

    async def run() -> None:
        for method, path, body, query in requests[:5]:  # warm-up
            status, out = await call(app, method, path, acc.api_key, body, query)
            assert status == 200, out[:300]
        prof = cProfile.Profile(time.process_time) if sort else None
        if prof:
            prof.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        for method, path, body, query in requests[5:]:
            status, out = await call(app, method, path, acc.api_key, body, query)
            assert status == 200, out[:300]
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if prof:
            prof.disable()
            if sort == "package":
                by_package(pstats.Stats(prof))
            else:
                pstats.Stats(prof).sort_stats(sort).print_stats(45)
        per = f"{1e3 * cpu / n:.3f} ms CPU, {1e3 * wall / n:.3f} ms wall per request"
        if endpoint == "usage":
            per += f"; {1e6 * cpu / (n * batch):.1f} us CPU per event -> {n * batch / cpu:,.0f} events/s per core"
        print(f"{kind} {endpoint} batch={batch if endpoint == 'usage' else '-'}: {per}")

    try:
        import uvloop
        uvloop.run(run())
    except ImportError:
        asyncio.run(run())


if __name__ == "__main__":
    main(sys.argv[1:])
