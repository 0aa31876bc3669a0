"""A live API server for the workload tests: uvicorn in a subprocess on a migrated SQLite file.

Accounts are made as an operator makes them, with `tollgate admin create-account --json` on the same
database. Each test fails if the server logged an unexpected error while it ran.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from ..live_server import (LiveServer, LiveServerClient, Tenant, copy_sqlite_template, create_account_cli,
                           run_api_server)

STARTUP_TIMEOUT_S = 30.0
# Named accounts made side by side at start-up: (name, credit in USD).
ACCOUNTS = (("a", 5), ("b", 5), ("usage", 20), ("lists", 0), ("misc", 1))


class Server(LiveServerClient):
    """A live server (tests.live_server) with a client and the session's named tenants."""

    def __init__(self, live: LiveServer) -> None:
        super().__init__(live)
        self.tenants: dict[str, Tenant] = {}

    @property
    def edge(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.edge_token}"}

    def create_account(self, credit_usd: int = 0) -> Tenant:
        email = f"wl-{uuid.uuid4().hex[:12]}@example.com"
        return Tenant(**create_account_cli(self.env, email, credit_usd=str(credit_usd)))


@pytest.fixture(scope="session")
def workload_server(tmp_path_factory, sqlite_template):
    workdir = tmp_path_factory.mktemp("workloads-api")
    database_url = copy_sqlite_template(sqlite_template, workdir)  # migrated by billing_core.db.migrate
    with run_api_server(database_url, timeout_s=STARTUP_TIMEOUT_S, log_path=workdir / "server.log") as live:
        server = Server(live)
        try:
            with ThreadPoolExecutor(max_workers=len(ACCOUNTS)) as pool:
                made = pool.map(lambda spec: (spec[0], server.create_account(spec[1])), ACCOUNTS)
                server.tenants = dict(made)
            yield server
        finally:
            server.close()


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
