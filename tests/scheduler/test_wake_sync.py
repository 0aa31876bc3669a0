"""A change committed in the process that runs the scheduler reaches the edge without waiting for the sync's
interval: the commit wakes the edge sync (portal/scheduling.py). The interval here is an hour, so only the
wake-up can have delivered the value."""

from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from billing_core.crypto import Keyring, new_key_spec
from billing_core.db.engine import make_engine, read_session
from billing_core.db.operations import JobState
from billing_core.scheduler.lease import leader
from billing_core.services import accounts
from billing_core.services.context import Billing
from portal.scheduling import start_scheduler
from portal.settings import Settings

from ..factories import make_account
from ..live_server import migrated_pg_schema
from .waiting import wait_for


def edge_value(path, item: str) -> dict | None:
    if not path.exists():
        return None
    with sqlite3.connect(path) as conn:
        try:
            row = conn.execute("SELECT value FROM edge_items WHERE key = ?", (item,)).fetchone()
        except sqlite3.OperationalError:  # the table is made at the first delivery
            return None
    return json.loads(row[0]) if row else None


def finished(billing, job: str) -> bool:
    with read_session(billing.engine) as session:
        return session.execute(select(JobState.last_finished_at).where(JobState.name == job)).scalar() is not None


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, sqlite_url):
    """A database whose outbox ids start at 1. (The shared PostgreSQL schema is emptied between tests, but
    its sequences go on: the first row's id would then sit after a gap, which the sync waits out for 10 s
    as it would a transaction still committing; docs/edge-sync.md, "Gaps".)"""
    if request.param == "sqlite":
        yield sqlite_url
    else:
        with migrated_pg_schema("tg_wake") as url:
            yield url


def test_a_committed_change_wakes_the_edge_sync(fresh_url, catalog, tmp_path):
    settings = Settings(env="test", database_url=fresh_url, secret_key=secrets.token_urlsafe(40),
                        data_dir=tmp_path, sync_targets="file", sync_interval_s=3600.0, scheduler_lease_s=2)
    engine = make_engine(fresh_url)
    billing = Billing(engine=engine, catalog=catalog, keyring=Keyring.parse(new_key_spec("k1")))
    now = datetime.now(timezone.utc)
    created = make_account(billing, plan="hobby", now=now)
    edge = tmp_path / "edge.sqlite"
    item = f"account:{created.account_id}"
    running = start_scheduler(settings, billing, holder="wake-test")
    try:
        wait_for(lambda: leader(billing.engine).holder == "wake-test", "the scheduler to lead")
        first = wait_for(lambda: edge_value(edge, item), "the first delivery (a new target is reconciled)")
        assert first["credit_micros"] == 0
        # Both jobs that deliver have had their first (immediate) run; the next is an hour or a night away.
        wait_for(lambda: finished(billing, "edge_sync") and finished(billing, "reconcile"), "the first runs")

        accounts.grant_credit(billing, created.account_id, amount_micros=7_000_000, now=datetime.now(timezone.utc))
        delivered = wait_for(lambda: (edge_value(edge, item) or {}).get("credit_micros") == 7_000_000,
                             "the granted credit at the edge")
        assert delivered
    finally:
        running.stop()
        engine.dispose()
