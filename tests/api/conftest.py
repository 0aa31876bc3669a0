"""Live servers for the HTTP API tests: uvicorn in a subprocess on SQLite and on PostgreSQL.

Accounts are made the way an operator makes them, with the real CLI
(`tollgate admin create-account ... --json`) pointed at the same database as the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ..live_server import (LiveServer, LiveServerClient, Tenant, copy_sqlite_template, create_account_cli,
                           migrated_pg_schema, run_api_server, run_cli_ok)

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
class Account(Tenant):
    """account_id, project_id, api_key and `auth`, with the email and plan it was made with."""

    email: str
    plan: str


class ApiServer(LiveServerClient):
    """A live server (tests.live_server) with a client, the operator CLI and the session's named accounts."""

    def __init__(self, name: str, live: LiveServer) -> None:
        super().__init__(live)
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"tollgate-cli-{name}")
        self._futures: dict[str, Future] = {}
        self._named: dict[str, Account] = {}

    def close(self) -> None:
        self.drain()
        super().close()

    # -- the operator CLI ------------------------------------------------------------------------
    def admin(self, *args: str) -> str:
        """Run `tollgate admin ARGS...` against this server's database; its stdout."""
        return run_cli_ok(self.env, "admin", *args)

    def create_account(self, plan: str = "hobby", credit_usd: int | str = 0) -> Account:
        """A fresh account, made by `tollgate admin create-account --json`."""
        email = f"api-{uuid.uuid4().hex[:16]}@example.com"
        created = create_account_cli(self.env, email, plan=plan, credit_usd=str(credit_usd))
        assert set(created) == {"account_id", "project_id", "api_key"}, created
        return Account(**created, email=email, plan=plan)

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


@contextmanager
def serving(name: str, database_url: str, workdir: Path, prefetch: list[str]) -> Iterator[ApiServer]:
    """A live API server on this (migrated) database, its named accounts `prefetch` being made."""
    with run_api_server(database_url, timeout_s=STARTUP_TIMEOUT_S,
                        log_path=workdir / f"server-{name}.log") as live:
        server = ApiServer(name, live)
        server.prefetch(prefetch)
        try:
            yield server
        finally:
            server.close()


# -- SQLite -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def live_server(tmp_path_factory, sqlite_template) -> ApiServer:
    workdir = tmp_path_factory.mktemp("api-sqlite")
    with serving("sqlite", copy_sqlite_template(sqlite_template, workdir), workdir, SQLITE_PREFETCH) as server:
        yield server


# -- PostgreSQL ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_live_server(tmp_path_factory) -> ApiServer:
    with migrated_pg_schema("tg_api") as url:
        with serving("postgresql", url, tmp_path_factory.mktemp("api-pg"), PG_PREFETCH) as server:
            yield server


@pytest.fixture
def server(request) -> ApiServer:
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
