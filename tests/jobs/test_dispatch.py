"""Dispatch of due schedules: one queued run per fire time, POSTed to a real receiver on 127.0.0.1 that checks
the project's HMAC signature; one catch-up run after downtime; failures recorded on the run."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from billing_core.db.workloads import Run, Schedule
from billing_core.services.dispatch import dispatch_due_schedules, latest_fire_time, scheduled_run_id
from billing_core.services.projects import create_project, delete_project, reveal_hmac_key, verify_hmac_signature
from billing_core.services.schedules import create_schedule, update_schedule

from ..conftest import T0
from ..factories import make_account
from .helpers import activities, rows
from .receivers import Receiver, closed_port_url

HOURLY = "0 * * * *"
UTC = timezone.utc


def hourly(billing, account, *, payload: dict | None = None, agent: str = "reporter", project_id: str | None = None):
    return create_schedule(billing, account.account_id, project_id=project_id or account.project_id, agent=agent,
                           cron=HOURLY, payload=payload or {}, now=T0)


def parse_signature(header: str) -> tuple[int, str]:
    parts = dict(item.split("=", 1) for item in header.split(","))
    return int(parts["t"]), parts["v1"]


def hmac_checking(billing, account) -> Receiver:
    """The edge's side: 204 for a body signed with the project's current HMAC key, 401 otherwise."""
    key = reveal_hmac_key(billing, account.account_id, account.project_id)

    def check(received) -> int:
        t, v1 = parse_signature(received.headers["x-tollgate-signature"])
        expected = hmac.new(key.encode(), f"{t}.".encode() + received.body, hashlib.sha256).hexdigest()
        return 204 if hmac.compare_digest(expected, v1) else 401

    return Receiver(check)


def runs_of(billing, schedule_id: str) -> list[Run]:
    return sorted(rows(billing, Run, schedule_id=schedule_id), key=lambda r: r.id)


def test_a_due_schedule_is_queued_and_posted_signed_with_the_projects_hmac_key(billing, http):
    account = make_account(billing)
    schedule = hourly(billing, account, payload={"report": "daily", "n": 3})
    receiver = hmac_checking(billing, account)
    now = T0 + timedelta(hours=1, minutes=5)
    try:
        result = dispatch_due_schedules(billing, now, dispatch_url=receiver.url, http=http)
        assert result.summary() == {"schedules": 1, "runs": 1, "dispatched": 1, "failed": 0}
        fire = T0 + timedelta(hours=1)
        (run,) = runs_of(billing, schedule.id)
        assert run.id == scheduled_run_id(schedule.id, fire) == f"run_sched_{schedule.id}_{int(fire.timestamp())}"
        assert (run.status, run.trigger, run.agent, run.project_id, run.created_at) == (
            "queued", "schedule", "reporter", account.project_id, now)
        (received,) = receiver.requests
        assert json.loads(received.body) == {
            "run_id": run.id, "account_id": account.account_id, "project_id": account.project_id,
            "agent": "reporter", "schedule_id": schedule.id, "scheduled_for": "2026-01-15T13:00:00Z",
            "payload": {"report": "daily", "n": 3}}
        assert received.headers["content-type"] == "application/json"
        t, v1 = parse_signature(received.headers["x-tollgate-signature"])
        assert t == int(now.timestamp())
        assert verify_hmac_signature(billing, account.project_id, f"{t}.".encode() + received.body, v1, now)
        (stored,) = rows(billing, Schedule, id=schedule.id)
        assert stored.last_run_at == fire
        again = dispatch_due_schedules(billing, now + timedelta(minutes=10), dispatch_url=receiver.url, http=http)
        assert again.runs_created == 0 and len(receiver.requests) == 1
    finally:
        receiver.close()


def test_after_three_days_down_an_hourly_schedule_runs_once_then_keeps_its_hours(billing, receiver, http):
    account = make_account(billing)
    schedule = hourly(billing, account)
    back = T0 + timedelta(days=3, minutes=20)
    assert dispatch_due_schedules(billing, back, dispatch_url=receiver.url, http=http).runs_created == 1
    assert dispatch_due_schedules(billing, back + timedelta(minutes=1), dispatch_url=receiver.url,
                                  http=http).runs_created == 0
    (run,) = runs_of(billing, schedule.id)
    assert run.id == scheduled_run_id(schedule.id, T0 + timedelta(days=3))  # the latest missed hour only
    assert len(receiver.requests) == 1
    assert dispatch_due_schedules(billing, back + timedelta(hours=1), dispatch_url=receiver.url,
                                  http=http).runs_created == 1
    assert [r.id for r in runs_of(billing, schedule.id)] == sorted(
        scheduled_run_id(schedule.id, T0 + timedelta(days=3, hours=h)) for h in (0, 1))


def test_a_dispatch_to_a_closed_port_marks_the_run_failed_with_the_reason(billing, http):
    account = make_account(billing)
    schedule = hourly(billing, account)
    now = T0 + timedelta(hours=1)
    result = dispatch_due_schedules(billing, now, dispatch_url=closed_port_url(), http=http)
    assert (result.runs_created, result.dispatched, result.failed) == (1, 0, 1)
    (run,) = runs_of(billing, schedule.id)
    assert (run.status, run.finished_at) == ("failed", now)
    assert run.error.startswith("dispatch failed: ConnectError: ")
    (line,) = activities(billing, account.account_id, "run_failed")
    assert line.subject == run.id and line.text == f"reporter run failed: {run.error}"
    # The fire time is used up: the next tick does not retry it, the next hour is a new run.
    assert dispatch_due_schedules(billing, now + timedelta(minutes=5), dispatch_url=closed_port_url(),
                                  http=http).runs_created == 0


def test_an_edge_that_refuses_the_run_marks_it_failed_with_the_status_code(sqlite_billing, receiver, http):
    account = make_account(sqlite_billing)
    schedule = hourly(sqlite_billing, account)
    receiver.fail_next(503)
    dispatch_due_schedules(sqlite_billing, T0 + timedelta(hours=1), dispatch_url=receiver.url, http=http)
    (run,) = runs_of(sqlite_billing, schedule.id)
    assert (run.status, run.error) == ("failed", f"dispatch refused: HTTP 503 from {receiver.url}")


def test_without_a_dispatch_url_runs_are_queued_only(sqlite_billing, http):
    account = make_account(sqlite_billing)
    schedule = hourly(sqlite_billing, account)
    result = dispatch_due_schedules(sqlite_billing, T0 + timedelta(hours=2), dispatch_url=None, http=http)
    assert (result.runs_created, result.dispatched, result.failed) == (1, 0, 0)
    assert [r.status for r in runs_of(sqlite_billing, schedule.id)] == ["queued"]


def test_disabled_schedules_and_schedules_of_deleted_projects_do_not_run(sqlite_billing, receiver, http):
    account = make_account(sqlite_billing)
    disabled = hourly(sqlite_billing, account)
    update_schedule(sqlite_billing, account.account_id, disabled.id, {"enabled": False}, now=T0)
    project = create_project(sqlite_billing, account.account_id, name="gone", now=T0)
    orphan = hourly(sqlite_billing, account, project_id=project.id)
    delete_project(sqlite_billing, account.account_id, project.id, now=T0)
    result = dispatch_due_schedules(sqlite_billing, T0 + timedelta(hours=3), dispatch_url=receiver.url, http=http)
    assert result.summary() == {"schedules": 0, "runs": 0, "dispatched": 0, "failed": 0}
    assert runs_of(sqlite_billing, disabled.id) == runs_of(sqlite_billing, orphan.id) == []
    assert receiver.requests == []


def test_two_dispatchers_at_once_create_one_run_per_schedule(billing, receiver, http):
    account = make_account(billing)
    schedules = [hourly(billing, account, agent=f"agent-{n}") for n in range(3)]
    start = threading.Barrier(4)
    now = T0 + timedelta(hours=5, minutes=1)

    def dispatch(_):
        start.wait()
        return dispatch_due_schedules(billing, now, dispatch_url=receiver.url, http=http)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(dispatch, range(4)))
    assert sum(r.runs_created for r in results) == 3 and sum(r.dispatched for r in results) == 3
    for schedule in schedules:
        assert [r.id for r in runs_of(billing, schedule.id)] == [
            scheduled_run_id(schedule.id, T0 + timedelta(hours=5))]
    assert sorted(json.loads(r.body)["schedule_id"] for r in receiver.requests) == sorted(s.id for s in schedules)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("cron, tz, after, now, expected", [
    ("*/5 * * * *", "UTC", "2026-01-15 12:00", "2026-01-15 12:04", None),
    ("*/5 * * * *", "UTC", "2026-01-15 12:00", "2026-01-15 12:05", "2026-01-15 12:05"),
    ("*/5 * * * *", "UTC", "2026-01-15 11:59", "2026-01-15 12:00", "2026-01-15 12:00"),
    ("* * * * *", "UTC", "2025-01-01 00:00", "2026-01-15 12:00:30", "2026-01-15 12:00"),
    ("0 9 * * *", "Europe/Berlin", "2026-01-01 00:00", "2026-01-15 07:59", "2026-01-14 08:00"),
    ("0 9 * * *", "Europe/Berlin", "2026-01-01 00:00", "2026-01-15 08:00", "2026-01-15 08:00"),
    ("0 0 1 1 *", "UTC", "2023-06-01 00:00", "2026-01-15 12:00", "2026-01-01 00:00"),
    ("0 0 1 1 *", "UTC", "2026-01-01 00:00", "2026-01-15 12:00", None),
    ("0 * * * *", "UTC", "2026-01-15 12:00", "2026-01-15 11:00", None),
])
def test_the_latest_fire_time_is_the_last_one_in_the_gap(cron, tz, after, now, expected):
    found = latest_fire_time(cron, tz, after=at(after), now=at(now))
    assert found == (at(expected) if expected else None)
