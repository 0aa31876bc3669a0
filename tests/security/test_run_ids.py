"""Issue 12 #7: a run id is unique within its account only. Another account's run of the same id neither
blocks a POST (no 409 that would tell it the id is taken) nor is seen, patched or charged by it."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest
from alembic import command
from sqlalchemy import inspect, text

from billing_core.db.engine import make_engine
from billing_core.db.migrate import alembic_config
from billing_core.services.runs import NewRun, create_run, get_run

from ..conftest import T0
from ..factories import make_account
from ..live_server import Tenant, create_account_cli, migrated_database, run_api_server

RUN_ID = "edge-run-x"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request, tmp_path_factory, sqlite_template):
    """A live server on each database, with two accounts made by the operator CLI."""
    with ExitStack() as stack:
        url = migrated_database(stack, request.param, tmp_path_factory.mktemp("run-ids"), sqlite_template, "tg_run_ids")
        server = stack.enter_context(run_api_server(url))
        with ThreadPoolExecutor(2) as pool:
            a, b = pool.map(lambda n: Tenant(**create_account_cli(
                server.env, f"{n}-{uuid.uuid4().hex[:10]}@example.com", credit_usd="5")), "ab")
        client = stack.enter_context(httpx.Client(base_url=server.base_url, timeout=30))
        yield client, server, a, b


def _run(client: httpx.Client, tenant: Tenant) -> dict:
    r = client.get(f"/api/v1/runs/{RUN_ID}", headers=tenant.auth)
    assert r.status_code == 200, r.text
    return r.json()


def test_two_accounts_each_have_their_own_run_of_the_same_id(live):
    client, server, a, b = live
    made_b = client.post("/api/v1/runs", headers=b.auth,
                         json={"id": RUN_ID, "project_id": b.project_id, "agent": "b-agent"})
    made_a = client.post("/api/v1/runs", headers=a.auth,
                         json={"id": RUN_ID, "project_id": a.project_id, "agent": "a-agent"})
    assert (made_b.status_code, made_a.status_code) == (201, 201), (made_b.text, made_a.text)
    assert (_run(client, a)["agent"], _run(client, b)["agent"]) == ("a-agent", "b-agent")
    assert _run(client, a)["project_id"] == a.project_id
    for tenant, agent in ((a, "a-agent"), (b, "b-agent")):
        listed = client.get("/api/v1/runs", headers=tenant.auth).json()["data"]
        assert [(r["id"], r["agent"]) for r in listed] == [(RUN_ID, agent)]

    # A's steps move A's run only; the edge, naming B, moves B's only.
    assert client.patch(f"/api/v1/runs/{RUN_ID}", headers=a.auth, json={"status": "running"}).status_code == 200
    assert (_run(client, a)["status"], _run(client, b)["status"]) == ("running", "queued")
    edge = {"Authorization": f"Bearer {server.edge_token}"}
    r = client.patch(f"/api/v1/runs/{RUN_ID}", headers=edge, json={"status": "cancelled", "account_id": b.account_id})
    assert r.status_code == 200, r.text
    assert (_run(client, a)["status"], _run(client, b)["status"]) == ("running", "cancelled")

    # Usage naming the run charges the reporting account's run.
    for tenant, duration_ms in ((a, 1_000), (b, 3_000)):
        event = {"id": f"ev-{uuid.uuid4().hex[:12]}", "project_id": tenant.project_id, "kind": "compute",
                 "duration_ms": duration_ms, "run_id": RUN_ID}
        r = client.post("/api/v1/usage", headers=tenant.auth, json={"events": [event]})
        assert r.status_code == 200 and r.json()["results"][0]["status"] == "accepted", r.text
    assert (_run(client, a)["duration_ms"], _run(client, b)["duration_ms"]) == (1_000, 3_000)


def _primary_key(engine) -> list[str]:
    return inspect(engine).get_pk_constraint("runs")["constrained_columns"]


def test_migration_0006_keys_runs_by_account_and_goes_down_only_when_no_id_is_shared(billing, database_url):
    a, b = make_account(billing), make_account(billing)
    for tenant in (a, b):
        create_run(billing, tenant.account_id, NewRun(tenant.project_id, "agent", id="shared"), now=T0)
    engine, config = make_engine(database_url), alembic_config(database_url)
    try:
        assert _primary_key(engine) == ["account_id", "id"]
        with pytest.raises(RuntimeError, match="shared"):
            command.downgrade(config, "0005")  # the old key could not hold both runs
        assert _primary_key(engine) == ["account_id", "id"]
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM runs WHERE account_id = :b"), {"b": b.account_id})
        command.downgrade(config, "0005")
        assert _primary_key(engine) == ["id"]
        command.upgrade(config, "head")
        assert _primary_key(engine) == ["account_id", "id"]
        assert get_run(billing, a.account_id, "shared").agent == "agent"  # the rows moved with the table
    finally:
        engine.dispose()
