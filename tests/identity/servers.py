"""Live Tollgate servers for the identity tests, configured only through TOLLGATE_* variables.

`api_server` is `uvicorn portal.api.asgi:app`; `reflex_server` is the production server the Makefile
runs (`reflex run --env prod --single-port`), pages and API on one port.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from ..live_server import assert_log_clean

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, base_url: str, process: subprocess.Popen, log_path: Path) -> None:
        self.base_url, self.process, self.log_path = base_url, process, log_path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30, **kw)


def tollgate_env(database: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    # Local files (the edge sync's SQLite target, the demo's key) beside the database, never in the repo.
    env.update(TOLLGATE_DATABASE_URL=f"sqlite:///{database}", TOLLGATE_ENV="test",
               TOLLGATE_DATA_DIR=str(extra.pop("TOLLGATE_DATA_DIR", database.parent)),
               TOLLGATE_SECRET_KEY=secrets.token_urlsafe(36),  # 48 characters
               TOLLGATE_PUBLIC_URL=f"http://127.0.0.1:{port}", REFLEX_TELEMETRY_ENABLED="false", **extra)
    return env


@contextmanager
def running(cmd: list[str], env: dict[str, str], port: int, log_path: Path, timeout_s: float) -> Iterator[Server]:
    """Start the command, wait until GET /api/health answers 200, and stop it afterwards."""
    log = open(log_path, "wb")
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                pytest.fail(f"{' '.join(cmd[:4])} exited with {process.returncode} at start-up:\n{server.log_tail()}")
            try:
                if httpx.get(f"{server.base_url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /api/health within {timeout_s:g} s:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)  # its own session: reflex's workers go with it
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(timeout=10)
        log.close()
    assert_log_clean(log_path)  # no key, secret, hash or session cookie in its log (after a clean exit only)


@contextmanager
def api_server(workdir: Path, template: Path, **extra_env: str) -> Iterator[Server]:
    database = workdir / "tollgate.db"
    shutil.copy(template, database)
    port = free_port()
    cmd = [str(BIN / "python"), "-m", "uvicorn", "portal.api.asgi:app", "--host", "127.0.0.1", "--port", str(port)]
    with running(cmd, tollgate_env(database, port, **extra_env), port, workdir / "api.log", 30) as server:
        yield server


@contextmanager
def reflex_server(workdir: Path, template: Path, **extra_env: str) -> Iterator[Server]:
    database = workdir / "tollgate.db"
    shutil.copy(template, database)
    port = free_port()
    env = tollgate_env(database, port, REFLEX_USE_SYSTEM_BUN="1", **extra_env)
    env["PATH"] = f"{ROOT / '.tools' / 'node_modules' / '.bin'}:{env.get('PATH', '')}"
    cmd = [str(BIN / "reflex"), "run", "--env", "prod", "--single-port", "--frontend-port", str(port),
           "--backend-port", str(port)]
    with running(cmd, env, port, workdir / "reflex.log", 240) as server:
        yield server
