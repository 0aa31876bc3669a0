"""A PostgreSQL connection that the server drops (a restart, a failover, an idle timeout) costs one request
a clear 503, never a 500, and the next request works: the pool is not pinged on every checkout
(docs/benchmarks.md), so this is how a lost connection is survived."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from billing_core.db.engine import make_engine
from billing_core.services.context import Billing
from portal.api.app import create_api
from portal.runtime import keyring_of
from portal.settings import Settings

from ..conftest import PG_BASE_URL
from ..factories import make_account
from ..live_server import migrated_pg_schema

pytestmark = pytest.mark.postgres


def _terminate(pids: set[int]) -> None:
    admin = create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for pid in pids:
                assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar() is True
    finally:
        admin.dispose()


@pytest.fixture
def database_url():
    with migrated_pg_schema("tg_lost") as url:
        yield url


def test_a_dropped_connection_is_one_503_then_the_api_recovers(database_url, catalog):
    settings = Settings(env="test", database_url=database_url, secret_key="k" * 4 + "-lost-connection-0123456789abcdefgh")
    engine = make_engine(database_url)
    billing = Billing(engine=engine, catalog=catalog, keyring=keyring_of(settings))
    created = make_account(billing, plan="pro", credit_micros=1_000_000, now=datetime.now(timezone.utc))
    api = create_api(billing, settings)
    headers = {"Authorization": f"Bearer {created.api_key}"}
    try:
        with TestClient(api, base_url="http://localhost") as client:
            assert client.get("/api/v1/account", headers=headers).status_code == 200
            # Every connection the pool holds now, as the server knows them.
            pids = set()
            for _ in range(engine.pool.checkedin()):
                with engine.connect() as conn:
                    pids.add(conn.execute(text("SELECT pg_backend_pid()")).scalar())
            assert pids
            _terminate(pids)

            answers = [client.get("/api/v1/account", headers=headers) for _ in range(3)]
            statuses = [a.status_code for a in answers]
            assert 500 not in statuses, [a.text for a in answers]
            # The request that met the dead connection, and only it: the pool is discarded at once.
            assert statuses == [503, 200, 200], [a.text for a in answers]
            assert answers[0].json()["error"]["code"] == "database_unavailable"
            assert answers[0].headers["retry-after"] == "1"
            assert answers[1].json()["id"] == created.account_id
    finally:
        engine.dispose()
