"""The numbers of the projects pages: this period's compute and spend, today's runs, a 30-day series."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from billing_core.errors import NotFound
from billing_core.services import project_usage, projects
from billing_core.services.runs import NewRun, create_run
from billing_core.services.summary import usage_summary
from billing_core.services.usage import record_usage

from ..conftest import T0
from ..factories import compute, make_account


def _starter(billing):
    return make_account(billing, plan="starter", credit_micros=50_000_000)


def test_each_project_shows_this_periods_compute_and_spend_and_todays_runs(billing):
    account = _starter(billing)
    other = projects.create_project(billing, account.account_id, name="other", now=T0 + timedelta(minutes=1))
    now = T0 + timedelta(days=3, hours=2)
    record_usage(billing, account.account_id, [
        compute(account.project_id, 60_000, timestamp=T0 + timedelta(days=1)),
        compute(account.project_id, 30_000, timestamp=T0 + timedelta(days=3)),
        compute(other.id, 5_000, timestamp=T0 + timedelta(days=2))], now=now)
    create_run(billing, account.account_id, NewRun(project_id=account.project_id, agent="a"), now=now)
    create_run(billing, account.account_id, NewRun(project_id=account.project_id, agent="a"),
               now=T0 + timedelta(days=2))  # yesterday: not today's
    overview = project_usage.projects_overview(billing, account.account_id, now=now, limit=10)
    rows = {row.id: row for row in overview.rows}
    assert [r.id for r in overview.rows] == [other.id, account.project_id]  # newest first
    assert rows[account.project_id].numbers.compute_ms == 90_000 and rows[other.id].numbers.compute_ms == 5_000
    assert rows[account.project_id].numbers.runs_today == 1 and rows[other.id].numbers.runs_today == 0
    assert (overview.plan, overview.max_projects, overview.project_count) == ("starter", 10, 2)
    by_project = {r.key: r for r in usage_summary(billing, account.account_id, start=T0.date(), end=now.date(),
                                                  group_by="project")}
    for pid, row in rows.items():  # the same figures the usage API answers
        assert row.numbers.cost_micros == by_project[pid].cost_micros


def test_the_overview_pages_through_projects_and_skips_deleted_ones(billing):
    account = make_account(billing, plan="pro")
    made = [projects.create_project(billing, account.account_id, name=f"p{i}", now=T0 + timedelta(minutes=i + 1))
            for i in range(4)]
    projects.delete_project(billing, account.account_id, made[1].id, now=T0 + timedelta(hours=1))
    first = project_usage.projects_overview(billing, account.account_id, now=T0, limit=2)
    second = project_usage.projects_overview(billing, account.account_id, now=T0, limit=2, cursor=first.next_cursor)
    shown = [r.id for r in first.rows + second.rows]
    assert shown == [made[3].id, made[2].id, made[0].id, account.project_id]
    assert second.next_cursor is None and first.project_count == 4 and first.max_projects is None


def test_the_daily_series_has_every_day_and_only_that_projects_compute(billing):
    account = _starter(billing)
    other = projects.create_project(billing, account.account_id, name="other", now=T0)
    now = T0 + timedelta(days=2)
    record_usage(billing, account.account_id, [
        compute(account.project_id, 1_000, timestamp=T0), compute(account.project_id, 2_000, timestamp=T0),
        compute(other.id, 9_000, timestamp=T0 + timedelta(days=1))], now=now)
    series = project_usage.project_daily_compute(billing, account.account_id, account.project_id,
                                                 start=T0.date() - timedelta(days=1), end=now.date())
    assert [(d.day, d.compute_ms) for d in series] == [
        (T0.date() - timedelta(days=1), 0), (T0.date(), 3_000), (T0.date() + timedelta(days=1), 0),
        (T0.date() + timedelta(days=2), 0)]


def test_a_projects_detail_holds_30_days_and_its_latest_runs(billing):
    account = _starter(billing)
    now = T0 + timedelta(days=1)
    for i in range(22):
        create_run(billing, account.account_id, NewRun(project_id=account.project_id, agent=f"agent-{i}"),
                   now=T0 + timedelta(minutes=i + 1))
    detail = project_usage.project_detail(billing, account.account_id, account.project_id, now=now)
    assert detail.project.id == account.project_id and len(detail.daily) == 30
    assert detail.daily[-1].day == now.date() and detail.daily[0].day == now.date() - timedelta(days=29)
    assert [r.agent for r in detail.runs] == [f"agent-{i}" for i in range(21, 1, -1)]


@pytest.mark.parametrize("project_id", ["prj_unknown", "", "../x", "x" * 200])
def test_an_unknown_project_is_not_found(billing, project_id):
    account = make_account(billing)
    with pytest.raises(NotFound):
        project_usage.project_detail(billing, account.account_id, project_id, now=T0)


def test_another_accounts_project_is_not_found_and_shows_nothing(billing):
    owner, stranger = _starter(billing), make_account(billing)
    record_usage(billing, owner.account_id, [compute(owner.project_id, 1_000, timestamp=T0)], now=T0)
    with pytest.raises(NotFound):
        project_usage.project_detail(billing, stranger.account_id, owner.project_id, now=T0)
    assert [r.id for r in project_usage.projects_overview(billing, stranger.account_id, now=T0, limit=10).rows] \
        == [stranger.project_id]


def test_fill_days_gives_zero_for_days_without_usage():
    days = project_usage.fill_days({date(2026, 1, 2): (5, 7)}, date(2026, 1, 1), date(2026, 1, 3))
    assert [(d.compute_ms, d.cost_micros) for d in days] == [(0, 0), (5, 7), (0, 0)]
