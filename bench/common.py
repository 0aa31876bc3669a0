"""Shared plumbing for the benchmarks: databases, accounts, a real server process, wrk, percentiles.

Nothing here is a test. Every benchmark script prints its figures and appends them to
bench/out/results.jsonl (bench/out/ is git-ignored), which bench/run_all.py turns into a table.

Databases
  sqlite      a fresh file bench/out/<name>.db (WAL, as in production)
  postgresql  a fresh schema <name> in postgresql://postgres@127.0.0.1:5432/test
              (override with TOLLGATE_BENCH_PG_URL), selected through search_path
Servers (all bound to 127.0.0.1 only)
  uvicorn     .venv/bin/python -m uvicorn portal.api.asgi:app --host 127.0.0.1 --port P --workers 1
              --loop uvloop --http httptools --no-access-log --log-level warning
              (the default: slightly faster than granian here; asyncio/h11 when uvloop/httptools
              are not installed)
  granian     .venv/bin/granian --interface asgi --host 127.0.0.1 --port P --workers 1
              --loop uvloop --no-ws --log-level warning portal.api.asgi:app
  choose with TOLLGATE_BENCH_SERVER=uvicorn|granian
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
LUA = BENCH / "lua"
VENV_BIN = ROOT / ".venv" / "bin"
PY = str(VENV_BIN / "python")
RESULTS = OUT / "results.jsonl"
PG_BASE_URL = os.environ.get("TOLLGATE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SERVER = os.environ.get("TOLLGATE_BENCH_SERVER", "uvicorn")
# One server worker by default, for figures that repeat: with several workers sharing one listening
# socket, one worker's event loop often accepts every keep-alive connection wrk opens, so the same run
# measured 293 or 572 single-event requests/s on PostgreSQL depending on where the connections landed.
# SQLite is one process by design (DESIGN.md "Scale"; a second process waits in SQLite's sleeping busy
# handler: p99 316 ms against 8 ms). TOLLGATE_BENCH_WORKERS=N runs N workers.
_FORCED_WORKERS = os.environ.get("TOLLGATE_BENCH_WORKERS")


def workers_for(kind: str) -> int:
    if _FORCED_WORKERS:
        return int(_FORCED_WORKERS)
    return 1
SECRET_KEY = "bench-" + secrets.token_urlsafe(40)
EDGE_TOKEN = "edge-" + secrets.token_urlsafe(24)
DATABASES = ("sqlite", "postgresql")
PG_APP = "tollgate-bench"

sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------- databases

@dataclass
class Database:
    kind: str  # sqlite | postgresql
    name: str
    url: str

    def drop(self) -> None:
        if self.kind == "sqlite":
            path = OUT / f"{self.name}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        else:
            admin = create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
            admin.dispose()


def database(kind: str, name: str, *, fresh: bool = True) -> Database:
    """A database for one benchmark; `fresh` drops what a previous run left."""
    OUT.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        db = Database(kind, name, f"sqlite:///{OUT / (name + '.db')}")
        if fresh:
            db.drop()
        return db
    # application_name lets the benchmarks find the server's PostgreSQL backends (their CPU time)
    db = Database(kind, name, f"{PG_BASE_URL}?options=-csearch_path%3D{name}&application_name={PG_APP}")
    if fresh:
        db.drop()
    admin = create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{name}"'))
    admin.dispose()
    return db


def server_env(db: Database) -> dict:
    env = dict(os.environ)
    env.update(TOLLGATE_DATABASE_URL=db.url, TOLLGATE_ENV="test", TOLLGATE_SECRET_KEY=SECRET_KEY,
               TOLLGATE_EDGE_TOKEN=EDGE_TOKEN, PYTHONUNBUFFERED="1")
    return env


@dataclass
class BenchAccount:
    account_id: str
    project_id: str
    api_key: str


def create_account(db: Database, email: str | None = None) -> BenchAccount:
    """`tollgate admin create-account --plan pro --credit-usd 1000000 --json` (migrates the database first)."""
    email = email or f"bench-{uuid.uuid4().hex[:10]}@example.com"
    out = subprocess.run([str(VENV_BIN / "tollgate"), "admin", "create-account", "--email", email, "--plan", "pro",
                          "--credit-usd", "1000000", "--json"], env=server_env(db), cwd=ROOT,
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return BenchAccount(data["account_id"], data["project_id"], data["api_key"])


def billing_for(db: Database):
    from billing_core.db.engine import make_engine
    from billing_core.plans import load_catalog
    from billing_core.services.context import Billing

    return Billing(engine=make_engine(db.url), catalog=load_catalog())


def count_events(db: Database, account_id: str) -> int:
    from billing_core.db.engine import make_engine

    engine = make_engine(db.url)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM usage_events WHERE account_id = :a"), {"a": account_id}).scalar()
    engine.dispose()
    return int(n)


# --------------------------------------------------------------------------- server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _installed(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


# uvloop and httptools when installed (pip install uvloop httptools), else asyncio and h11
LOOP = "uvloop" if _installed("uvloop") else "asyncio"
HTTP = "httptools" if _installed("httptools") else "h11"


def server_command(port: int, server: str = SERVER, workers: int = 1) -> list[str]:
    if server == "granian":
        return [str(VENV_BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--loop", LOOP, "--no-ws", "--log-level", "warning",
                "portal.api.asgi:app"]
    if server == "uvicorn":
        return [PY, "-m", "uvicorn", "portal.api.asgi:app", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers), "--loop", LOOP, "--http", HTTP, "--no-access-log", "--log-level", "warning"]
    raise ValueError(f"unknown server {server!r}")


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by every process in a process group (the server and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:  # field 5, pgrp
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / tick


def pg_backend_cpu() -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend serving a benchmark connection (same machine)."""
    try:
        engine = create_engine(PG_BASE_URL)
        with engine.connect() as conn:
            pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :a"),
                                {"a": PG_APP}).scalars().all()
        engine.dispose()
    except Exception:
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def load_average() -> float:
    return os.getloadavg()[0]


class Server(str):
    """The base URL of a running server; .cpu() is the CPU seconds its processes have used so far."""

    pgid: int
    postgres: bool = False

    def cpu(self) -> float:
        return group_cpu_seconds(self.pgid)


@contextmanager
def running_server(db: Database, server: str = SERVER) -> Iterator[Server]:
    """Start the API in its own process on 127.0.0.1, wait for /api/health, stop it afterwards."""
    port = free_port()
    log = open(OUT / f"server-{db.name}.log", "w")
    proc = subprocess.Popen(server_command(port, server, workers_for(db.kind)), env=server_env(db), cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = Server(f"http://127.0.0.1:{port}")
    base.pgid = proc.pid
    base.postgres = db.kind == "postgresql"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer within 30 s; see {log.name}")
            time.sleep(0.1)
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        log.close()


# --------------------------------------------------------------------------- wrk

@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    errors: int  # socket errors + non-2xx
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    raw: str
    server_cpu_s: float = 0.0  # CPU the server's processes used during the run
    db_cpu_s: float = 0.0  # CPU PostgreSQL's backends used for the server during the run (0 on SQLite)
    load: float = 0.0  # 1-minute load average when the run ended (2 cores: above ~2.5 the figures are noisy)

    @property
    def server_cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / self.requests if self.requests else 0.0

    @property
    def db_cpu_ms_per_request(self) -> float:
        return 1000 * self.db_cpu_s / self.requests if self.requests else 0.0


def wrk(server: Server, path: str, script: str, *, seconds: int, connections: int, threads: int = 1,
        args: list[str] = (), timeout_s: int = 5) -> WrkResult:
    """Run wrk for a fixed time against 127.0.0.1 only; the Lua script prints a JSON summary line."""
    url = server + path
    assert url.startswith("http://127.0.0.1:"), "load tests target 127.0.0.1 only"
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", f"{timeout_s}s",
           "-s", str(LUA / script), url]
    if args:
        cmd += ["--", *args]
    pg0 = pg_backend_cpu() if server.postgres else {}
    cpu0 = server.cpu()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    cpu = server.cpu() - cpu0
    pg1 = pg_backend_cpu() if server.postgres else {}
    db_cpu = sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items())
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr}")
    line = next(l for l in out.stdout.splitlines() if l.startswith("JSON "))
    s = json.loads(line[5:])
    errors = s["errors"]
    return WrkResult(requests=s["requests"], seconds=s["duration_us"] / 1e6,
                     rps=s["requests"] / (s["duration_us"] / 1e6), errors=errors,
                     p50_ms=s["p50"] / 1000, p95_ms=s["p95"] / 1000, p99_ms=s["p99"] / 1000,
                     max_ms=s["max"] / 1000, raw=out.stdout, server_cpu_s=cpu, db_cpu_s=db_cpu,
                     load=load_average())


def run_id() -> str:
    """A prefix that makes event ids unique across runs against the same database."""
    return uuid.uuid4().hex[:8]


# --------------------------------------------------------------------------- figures

def percentiles(samples_s: list[float]) -> dict:
    """p50/p95/p99/max in milliseconds (nearest-rank)."""
    xs = sorted(samples_s)
    if not xs:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}

    def rank(p: float) -> float:
        k = max(0, min(len(xs) - 1, int(-(-p * len(xs) // 100)) - 1))
        return xs[k] * 1000

    return {"p50_ms": rank(50), "p95_ms": rank(95), "p99_ms": rank(99), "max_ms": xs[-1] * 1000}


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "server": f"granian {_version('granian')}, workers: sqlite {workers_for('sqlite')}, postgresql {workers_for('postgresql')}, loop {LOOP}" if SERVER == "granian"
            else f"uvicorn {_version('uvicorn')}, workers: sqlite {workers_for('sqlite')}, postgresql {workers_for('postgresql')}, loop {LOOP}, http {HTTP}"}


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def record(bench: str, db: str, **figures) -> dict:
    """Print one result line and append it to bench/out/results.jsonl."""
    OUT.mkdir(parents=True, exist_ok=True)
    row = {"bench": bench, "db": db, "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           **figures, "machine": machine()}
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    shown = "  ".join(f"{k}={_fmt(v)}" for k, v in figures.items() if k not in ("target", "pass"))
    verdict = "PASS" if figures.get("pass") else "MISS"
    print(f"[{bench} / {db}] {shown}  target: {figures.get('target', '')}  {verdict}", flush=True)
    return row


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def parse_dbs(argv: list[str]) -> list[str]:
    chosen = [a for a in argv if a in DATABASES]
    return chosen or list(DATABASES)


def arg_value(argv: list[str], name: str, default: str) -> str:
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


def wrk_available() -> bool:
    return shutil.which("wrk") is not None

