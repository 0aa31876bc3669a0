"""A live API server for the workload tests: uvicorn in a subprocess on a migrated SQLite file.

Accounts are made as an operator makes them, with `tollgate admin create-account --json` on the same
database. Each test fails if the server logged an unexpected error while it ran.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
STARTUP_TIMEOUT_S = 30.0
# Named accounts made side by side at start-up: (name, credit in USD).
ACCOUNTS = (("a", 5), ("b", 5), ("usage", 20), ("lists", 0), ("misc", 1))


@dataclass(frozen=True)
class Tenant:
    account_id: str
    project_id: str
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


class Server:
    def __init__(self, workdir: Path, database_url: str) -> None:
        self.workdir, self.database_url = workdir, database_url
        self.edge_token = secrets.token_urlsafe(24)  # 32 characters
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log_path = workdir / "server.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")} | {
            "TOLLGATE_DATABASE_URL": database_url, "TOLLGATE_ENV": "test",
            "TOLLGATE_SECRET_KEY": secrets.token_urlsafe(36), "TOLLGATE_EDGE_TOKEN": self.edge_token}
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.tenants: dict[str, Tenant] = {}

    @property
    def edge(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.edge_token}"}

    def start(self) -> None:
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(BIN / "python"), "-m", "uvicorn", "portal.api.asgi:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--no-access-log"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self.client.get("/api/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"the API server did not start:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def create_account(self, credit_usd: int = 0) -> Tenant:
        email = f"wl-{uuid.uuid4().hex[:12]}@example.com"
        done = subprocess.run([str(BIN / "tollgate"), "admin", "create-account", "--email", email,
                               "--credit-usd", str(credit_usd), "--json"],
                              cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return Tenant(**json.loads(done.stdout))


@pytest.fixture(scope="session")
def workload_server(tmp_path_factory, sqlite_template):
    workdir = tmp_path_factory.mktemp("workloads-api")
    db_path = workdir / "tollgate.db"
    shutil.copy(sqlite_template, db_path)  # a file migrated by billing_core.db.migrate.upgrade_to_head
    server = Server(workdir, f"sqlite:///{db_path}")
    server.start()
    try:
        with ThreadPoolExecutor(max_workers=len(ACCOUNTS)) as pool:
            made = pool.map(lambda spec: (spec[0], server.create_account(spec[1])), ACCOUNTS)
            server.tenants = dict(made)
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(workload_server):
    """The live server; the test fails when the server logged an unexpected error meanwhile."""
    before = len(workload_server.log())
    yield workload_server
    added = workload_server.log()[before:]
    assert "Traceback" not in added and "unexpected error" not in added, added[-4000:]


@pytest.fixture
def tenant(api):
    return api.tenants
