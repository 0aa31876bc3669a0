"""What operators see: the view behind /admin (leader, last tick, jobs, targets, parked items) and the
scheduler and sync parts of /api/health, read from real SQLite and PostgreSQL databases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from billing_core.db.engine import write_connection
from billing_core.db.identity import User
from billing_core.db.operations import SyncFailure
from billing_core.scheduler.jobs import Job
from billing_core.scheduler.lease import release, try_acquire
from billing_core.services.identity import set_operator
from billing_core.scheduler.runner import run_due
from billing_core.scheduler.view import operator_view, parked_items
from billing_core.services.identity import create_user
from portal.api.app import create_api
from portal.pages.admin import present
from portal.settings import Settings

from ..conftest import T0
from ..factories import make_account


def _fail(now):
    raise ConnectionError("redis down")


def _park(billing, target: str, item: str, parked_at: datetime | None) -> None:
    with write_connection(billing.engine) as conn:
        conn.execute(insert(SyncFailure).values(target=target, item=item, attempts=9, first_failed_at=T0,
                                                next_attempt_at=T0, last_error="HTTP 400: bad value",
                                                parked_at=parked_at))


def test_the_view_shows_the_leader_each_jobs_last_run_and_the_parked_items(billing, caplog):
    caplog.errors_expected = True  # the failing job logs its error
    try_acquire(billing.engine, "host:42:ab", T0, 15, tick=True)
    jobs = [Job("periods", lambda now: {"periods_closed": 2}, every_s=60), Job("edge_sync", _fail, every_s=1),
            Job("reconcile", lambda now: {}, cron="0 3 * * *")]
    run_due(billing, jobs[:2], T0, "host:42:ab")
    _park(billing, "file", "key:" + "b" * 64, T0 + timedelta(minutes=2))
    _park(billing, "redis", "account:acc_1", T0 + timedelta(minutes=1))
    _park(billing, "redis", "account:acc_2", None)  # failing, not parked yet

    now = T0 + timedelta(seconds=5)
    view = operator_view(billing, now, jobs, ["file", "redis"])
    assert (view.scheduler.leader, view.scheduler.last_tick_at) == ("host:42:ab", T0)
    assert [(j.name, j.runs, j.last_error, j.summary) for j in view.jobs] == [
        ("periods", 1, None, {"periods_closed": 2}), ("edge_sync", 1, "ConnectionError: redis down", {}),
        ("reconcile", 0, None, {})]
    assert [(p.target, p.item) for p in view.parked] == [("redis", "account:acc_1"), ("file", "key:" + "b" * 64)]

    shown = present(view)
    assert shown["scheduler"]["leader"] == "host:42:ab" and shown["scheduler"]["last_tick"] == "5 s ago"
    assert shown["scheduler"]["lease_expires"] == "in 10 s"
    assert [(j["name"], j["state"], j["result"]) for j in shown["jobs"]] == [
        ("periods", "ok", "periods_closed=2"), ("edge_sync", "failed", "ConnectionError: redis down"),
        ("reconcile", "never run", "—")]
    assert shown["jobs"][2]["schedule"] == "cron 0 3 * * * (UTC)"
    assert [p["item"] for p in shown["parked"]] == ["account:acc_1", "key:" + "b" * 64]

    # After the lease has run out the view names nobody, and keeps the last tick.
    later = operator_view(billing, T0 + timedelta(seconds=16), jobs, [])
    assert later.scheduler.leader is None and later.scheduler.holder == "host:42:ab"
    assert present(later)["scheduler"]["leader"] == "nobody"


def test_the_parked_list_is_bounded_and_the_count_is_exact(billing):
    for n in range(5):
        _park(billing, "file", f"account:acc_{n}", T0 + timedelta(seconds=n))
    shown, total = parked_items(billing.engine, limit=2)
    assert total == 5 and [p.item for p in shown] == ["account:acc_0", "account:acc_1"]


def test_the_view_reports_each_configured_target_from_the_sync_status(billing):
    view = operator_view(billing, T0, [], ["file"])
    assert view.sync_error is None
    assert [t["name"] for t in view.targets] == ["file"]
    assert {"backlog", "lag_s", "last_success_at", "parked"} <= set(view.targets[0])


def _health(billing, **settings):
    api = create_api(billing, Settings(_env_file=None, **settings))
    with TestClient(api, base_url="http://localhost") as client:  # a Host the app answers to
        return client.get("/api/health")


def test_health_reports_the_leader_its_last_tick_and_each_target(billing):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    try_acquire(billing.engine, "host:7:cd", now, 15, tick=True)
    response = _health(billing, sync_targets="file")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and "catalog" in body
    expires = (now + timedelta(seconds=15)).isoformat().replace("+00:00", "Z")
    assert body["scheduler"] == {"leader": "host:7:cd", "lease_expires_at": expires,
                                 "last_tick_at": now.isoformat().replace("+00:00", "Z")}
    assert [t["name"] for t in body["sync"]] == ["file"]
    assert {"backlog", "lag_s", "last_success_at", "parked"} <= set(body["sync"][0])


def test_health_says_nobody_leads_when_no_scheduler_runs_and_still_answers_200(billing):
    body = _health(billing, sync_targets="").json()
    assert body["scheduler"] == {"leader": None, "lease_expires_at": None, "last_tick_at": None}
    assert body["sync"] == []
    now = datetime.now(timezone.utc)
    try_acquire(billing.engine, "gone", now - timedelta(seconds=60), 15)
    release(billing.engine, "gone", now - timedelta(seconds=59))
    response = _health(billing, sync_targets="")
    assert response.status_code == 200 and response.json()["scheduler"]["leader"] is None


def test_make_operator_flags_the_user_whatever_the_case_of_the_email(billing):
    created = make_account(billing)
    create_user(billing, account_id=created.account_id, email="ops@example.com",
                password="correct horse battery staple 42", now=T0)
    user_id = set_operator(billing, "  OPS@Example.com ")
    with billing.engine.connect() as conn:
        assert conn.execute(select(User.is_operator).where(User.id == user_id)).scalar_one() is True
    set_operator(billing, "ops@example.com", False)
    with billing.engine.connect() as conn:
        assert conn.execute(select(User.is_operator).where(User.id == user_id)).scalar_one() is False
