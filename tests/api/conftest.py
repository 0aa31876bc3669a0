"""Live servers for the HTTP API tests: uvicorn in a subprocess on SQLite and on PostgreSQL.

Accounts are made the way an operator makes them, with the real CLI
(`tollgate admin create-account ... --json`) pointed at the same database as the server.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from billing_core.db.migrate import upgrade_to_head

from ..conftest import PG_BASE_URL, pg_schema_url, require_postgres

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable)
TOLLGATE = VENV_BIN / "tollgate"
STARTUP_TIMEOUT_S = 20.0


# Accounts shared within a session, by name: (plan, credit in USD). Tests that share one assert on
# differences (what a request charged), never on absolute balances another test could have moved.
NAMED_ACCOUNTS: dict[str, tuple[str, int | str]] = {
    "fields": ("pro", 5),         # every field of GET /api/v1/account, with a pool
    "victim": ("hobby", 1),       # bad input and other tenants aim at it; it must never change
    "shared": ("pro", 1000),      # most happy paths; large allowance and credit, asserted by difference
    "running_out": ("hobby", 0),  # check: allowance_exhausted, then over_limit
    "pro_no_credit": ("pro", 0),  # overage and the spend cap
    "suspended": ("hobby", 1),    # suspended by the operator
    "tenant_b": ("hobby", 1),     # tenant isolation: the intruder (the victim is the target)
    "fuzz": ("hobby", 0),         # random bodies
    "summary": ("hobby", 10),     # usage summary totals
    "drawdown": ("hobby", 1),     # allowance, then pool, then credit
    "debt": ("hobby", 0),         # usage beyond everything: debt, over_limit
}
SQLITE_PREFETCH = list(NAMED_ACCOUNTS)  # in the order the test files first need them
PG_PREFETCH = ["shared"]


@dataclass(frozen=True)
class Account:
    account_id: str
    project_id: str
    api_key: str
    email: str
    plan: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`uvicorn portal.api.asgi:app` on a free port, configured only through TOLLGATE_* variables."""

    def __init__(self, name: str, database_url: str, workdir: Path) -> None:
        self.name = name
        self.database_url = database_url
        self.workdir = workdir
        self.edge_token = secrets.token_urlsafe(24)  # 32 characters
        self.secret_key = secrets.token_urlsafe(36)  # 48 characters
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{name}.log"
        self.process: subprocess.Popen | None = None
        self.client: httpx.Client | None = None
        self._log = None
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"tollgate-cli-{name}")
        self._futures: dict[str, Future] = {}
        self._named: dict[str, Account] = {}

    # -- the process ---------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
        env.update(TOLLGATE_DATABASE_URL=self.database_url, TOLLGATE_ENV="test",
                   TOLLGATE_SECRET_KEY=self.secret_key, TOLLGATE_EDGE_TOKEN=self.edge_token)
        return env

    def start(self) -> None:
        cmd = [str(PYTHON), "-m", "uvicorn", "portal.api.asgi:app", "--host", "127.0.0.1",
               "--port", str(self.port), "--no-access-log"]
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                pytest.fail(f"the {self.name} API server exited with {self.process.returncode} at start-up:\n"
                            f"{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/api/health", timeout=1).status_code == 200:
                    self.client = httpx.Client(base_url=self.base_url, timeout=30)
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"the {self.name} API server did not answer GET /api/health within {STARTUP_TIMEOUT_S:g} s:\n"
                    f"{self.log_tail()}")

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"

    # -- the operator CLI ------------------------------------------------------------------------
    def _spawn_cli(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([str(TOLLGATE), *args], cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    @staticmethod
    def _finish_cli(proc: subprocess.Popen, what: str) -> str:
        out, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            pytest.fail(f"`tollgate {what}` exited with {proc.returncode}: {err.strip()}")
        return out

    def admin(self, *args: str) -> str:
        """Run `tollgate admin ARGS...` against this server's database; its stdout."""
        return self._finish_cli(self._spawn_cli("admin", *args), "admin " + " ".join(args))

    def create_accounts(self, *specs: tuple[str, int | str]) -> list[Account]:
        """Several fresh accounts, one `tollgate admin create-account --json` each, run side by side."""
        started = []
        for plan, credit_usd in specs:
            email = f"api-{uuid.uuid4().hex[:16]}@example.com"
            proc = self._spawn_cli("admin", "create-account", "--email", email, "--plan", plan,
                                   "--credit-usd", str(credit_usd), "--json")
            started.append((proc, email, plan))
        accounts = []
        for proc, email, plan in started:
            created = json.loads(self._finish_cli(proc, f"admin create-account --email {email}"))
            assert set(created) == {"account_id", "project_id", "api_key"}, created
            accounts.append(Account(created["account_id"], created["project_id"], created["api_key"], email, plan))
        return accounts

    def create_account(self, plan: str = "hobby", credit_usd: int | str = 0) -> Account:
        return self.create_accounts((plan, credit_usd))[0]

    # -- named accounts, created ahead by a small pool of threads (the CLI costs about a second) --
    def prefetch(self, names: list[str]) -> None:
        """Queue `create-account` for these named accounts; `account(name)` collects the result."""
        for name in names:
            if name not in self._futures:
                self._futures[name] = self._executor.submit(self.create_account, *NAMED_ACCOUNTS[name])

    def account(self, name: str) -> Account:
        """The session's account called `name` (see NAMED_ACCOUNTS): one per name and server."""
        if name not in self._named:
            future = self._futures.get(name)
            if future is None or future.cancel():  # not started yet: make it now, in this thread
                self._named[name] = self.create_account(*NAMED_ACCOUNTS[name])
            else:
                self._named[name] = future.result()
        return self._named[name]

    def drain(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


# -- SQLite -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def live_server(tmp_path_factory, sqlite_template) -> LiveServer:
    workdir = tmp_path_factory.mktemp("api-sqlite")
    db_path = workdir / "tollgate.db"
    shutil.copy(sqlite_template, db_path)
    server = LiveServer("sqlite", f"sqlite:///{db_path}", workdir)
    server.start()
    server.prefetch(SQLITE_PREFETCH)
    yield server
    server.drain()
    server.stop()


# -- PostgreSQL ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_live_server(tmp_path_factory) -> LiveServer:
    require_postgres()
    schema = f"tg_api_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        upgrade_to_head(pg_schema_url(schema))
        server = LiveServer("postgresql", pg_schema_url(schema), tmp_path_factory.mktemp("api-pg"))
        server.start()
        server.prefetch(PG_PREFETCH)
        yield server
        server.drain()
        server.stop()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def server(request) -> LiveServer:
    """The live server named by indirect parametrization ("sqlite" or "postgresql"); SQLite by default."""
    name = getattr(request, "param", "sqlite")
    return request.getfixturevalue({"sqlite": "live_server", "postgresql": "pg_live_server"}[name])


# -- What most tests use (the SQLite server) ----------------------------------------------------
@pytest.fixture(scope="session")
def client(live_server) -> httpx.Client:
    """An httpx.Client whose base_url is the SQLite server; send credentials per request."""
    return live_server.client


@pytest.fixture(scope="session")
def edge_token(live_server) -> str:
    return live_server.edge_token


@pytest.fixture(scope="session")
def edge_auth(edge_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {edge_token}"}


@pytest.fixture(scope="session")
def create_account(live_server):
    """create_account(plan="hobby", credit_usd=0) -> Account, through the real CLI."""
    return live_server.create_account


@pytest.fixture(scope="session")
def named_account(live_server):
    """named_account("victim") -> the session's account of that name on the SQLite server."""
    return live_server.account


@pytest.fixture
def shared(server):
    """The shared pro account (large allowance, $1000 credit) on the server under test."""
    return server.account("shared")


@pytest.fixture(scope="session")
def admin_cli(live_server):
    """admin_cli("suspend", account_id) runs `tollgate admin ...` on the SQLite server's database."""
    return live_server.admin
