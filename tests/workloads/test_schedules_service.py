"""Schedules on SQLite and PostgreSQL: next runs, validation naming the field, updates, deletes, scope."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from billing_core.db.engine import read_session
from billing_core.db.workloads import Schedule
from billing_core.errors import Invalid, NotFound, ServiceError
from billing_core.services.schedules import (PAYLOAD_MAX_BYTES, create_schedule, delete_schedule, get_schedule,
                                             list_schedules, update_schedule)

from ..conftest import T0
from ..factories import make_account
from .helpers import add_project

NOW = T0.replace(month=3, day=6, hour=0)  # two days before New York springs forward


def schedule(billing, account, **kw):
    fields = dict(project_id=account.project_id, agent="nightly", cron="30 2 * * *", timezone="America/New_York")
    return create_schedule(billing, account.account_id, **(fields | kw), now=NOW)


def count(billing) -> int:
    with read_session(billing.engine) as session:
        return session.execute(select(func.count()).select_from(Schedule)).scalar_one()


def test_a_schedule_shows_its_next_five_runs_in_utc_and_a_description(billing):
    account = make_account(billing)
    made = schedule(billing, account, payload={"branch": "main", "retries": 2})
    assert made.next_runs == ["2026-03-06T07:30:00Z", "2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z",
                              "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]
    assert made.description == "At 02:30" and made.enabled and made.payload == {"branch": "main", "retries": 2}
    assert made.id.startswith("sch_") and made.created_at == made.updated_at == "2026-03-06T00:00:00Z"
    assert get_schedule(billing, account.account_id, made.id, now=NOW) == made


def test_a_disabled_schedule_has_no_next_runs(billing):
    account = make_account(billing)
    assert schedule(billing, account, enabled=False).next_runs == []


@pytest.mark.parametrize("field, value, code", [
    ("cron", "61 * * * *", "invalid_cron"), ("cron", "* * *", "invalid_cron"), ("cron", 5, "invalid_cron"),
    ("timezone", "Mars/Olympus", "invalid_timezone"), ("timezone", "", "invalid_timezone"),
    ("agent", "", "invalid_agent"), ("agent", "x" * 101, "invalid_agent"), ("agent", "a\x00b", "invalid_agent"),
    ("payload", [1, 2], "invalid_payload"), ("payload", {"x": float("nan")}, "invalid_payload"),
    ("payload", {"x": "\ud800"}, "invalid_payload"), ("enabled", "yes", "invalid_enabled"),
])
def test_a_bad_field_is_refused_naming_it_and_nothing_is_written(billing, field, value, code):
    account = make_account(billing)
    with pytest.raises(Invalid) as caught:
        schedule(billing, account, **{field: value})
    assert caught.value.code == code and caught.value.message.startswith(f"{field}: ")
    assert count(billing) == 0


def test_a_payload_over_16_kib_serialized_is_too_large(billing):
    account = make_account(billing)
    fits = {"blob": "x" * (PAYLOAD_MAX_BYTES - len('{"blob":""}'))}
    assert schedule(billing, account, payload=fits).payload == fits
    with pytest.raises(ServiceError) as caught:
        schedule(billing, account, payload={"blob": "x" * PAYLOAD_MAX_BYTES})
    assert (caught.value.status, caught.value.code) == (413, "payload_too_large")
    with pytest.raises(ServiceError):  # counted in UTF-8 bytes, not characters
        schedule(billing, account, payload={"blob": "é" * (PAYLOAD_MAX_BYTES // 2)})


@pytest.mark.parametrize("project", ["other-account", "deleted", "prj_doesnotexist"])
def test_a_schedule_for_a_project_outside_the_account_is_not_found(billing, project):
    a, b = make_account(billing), make_account(billing)
    project_id = {"other-account": b.project_id,
                  "deleted": add_project(billing, a.account_id, now=T0, deleted=True)}.get(project, project)
    with pytest.raises(NotFound):
        schedule(billing, a, project_id=project_id)
    assert count(billing) == 0


def test_an_update_changes_only_the_named_fields_and_recomputes_the_next_runs(billing):
    account = make_account(billing)
    made = schedule(billing, account, payload={"keep": True})
    later = NOW + timedelta(hours=1)
    changed = update_schedule(billing, account.account_id, made.id,
                              {"cron": "0  9 * * 1-5", "timezone": "Europe/Berlin"}, now=later)
    assert (changed.cron, changed.timezone, changed.agent, changed.payload) == (
        "0 9 * * 1-5", "Europe/Berlin", "nightly", {"keep": True})
    assert changed.next_runs[0] == "2026-03-06T08:00:00Z" and changed.updated_at == "2026-03-06T01:00:00Z"
    assert changed.description == "At 09:00, Monday through Friday"
    assert update_schedule(billing, account.account_id, made.id, {"enabled": False}, now=later).next_runs == []


def test_an_update_that_changes_nothing_keeps_updated_at(billing):
    account = make_account(billing)
    made = schedule(billing, account)
    same = update_schedule(billing, account.account_id, made.id, {"agent": "nightly"}, now=NOW + timedelta(1))
    assert same.updated_at == made.updated_at


def test_an_update_may_move_a_schedule_to_another_project_of_the_account_only(billing):
    a, b = make_account(billing), make_account(billing)
    made = schedule(billing, a)
    second = add_project(billing, a.account_id, now=T0)
    assert update_schedule(billing, a.account_id, made.id, {"project_id": second}, now=NOW).project_id == second
    with pytest.raises(NotFound):
        update_schedule(billing, a.account_id, made.id, {"project_id": b.project_id}, now=NOW)
    assert get_schedule(billing, a.account_id, made.id, now=NOW).project_id == second


@pytest.mark.parametrize("changes", [{"cron": None}, {"cron": "0 0 31 2 *"}, {"timezone": "nowhere"},
                                     {"payload": "not an object"}])
def test_a_bad_update_changes_nothing(billing, changes):
    account = make_account(billing)
    made = schedule(billing, account)
    with pytest.raises(Invalid):
        update_schedule(billing, account.account_id, made.id, changes, now=NOW)
    assert get_schedule(billing, account.account_id, made.id, now=NOW) == made


def test_another_accounts_schedule_is_not_found_for_reading_updating_or_deleting(billing):
    a, b = make_account(billing), make_account(billing)
    made = schedule(billing, a)
    with pytest.raises(NotFound):
        get_schedule(billing, b.account_id, made.id, now=NOW)
    with pytest.raises(NotFound):
        update_schedule(billing, b.account_id, made.id, {"enabled": False}, now=NOW)
    with pytest.raises(NotFound):
        delete_schedule(billing, b.account_id, made.id)
    assert list_schedules(billing, b.account_id, limit=50, now=NOW).items == []
    assert get_schedule(billing, a.account_id, made.id, now=NOW) == made


def test_a_deleted_schedule_is_gone(billing):
    account = make_account(billing)
    made = schedule(billing, account)
    delete_schedule(billing, account.account_id, made.id)
    with pytest.raises(NotFound):
        get_schedule(billing, account.account_id, made.id, now=NOW)
    with pytest.raises(NotFound):
        delete_schedule(billing, account.account_id, made.id)
    assert count(billing) == 0


def test_schedules_are_listed_newest_first_and_paged_with_a_cursor(billing):
    account = make_account(billing)
    made = [create_schedule(billing, account.account_id, project_id=account.project_id, agent=f"a{i}",
                            cron="*/5 * * * *", enabled=i != 2, now=NOW + timedelta(seconds=i)) for i in range(5)]
    first = list_schedules(billing, account.account_id, limit=3, now=NOW)
    rest = list_schedules(billing, account.account_id, limit=3, now=NOW, cursor=first.next_cursor)
    assert [s.id for s in first.items + rest.items] == [s.id for s in reversed(made)]
    assert rest.next_cursor is None
    assert [s.agent for s in list_schedules(billing, account.account_id, limit=9, now=NOW, enabled=False).items] \
        == ["a2"]
