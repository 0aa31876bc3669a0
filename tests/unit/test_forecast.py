"""The run-out forecast: the allowance left, projected at the last 7 days' pace."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from billing_core import forecast as fc
from billing_core.forecast import allowance_forecast

HOUR = 3_600_000
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)  # noon: today counts for half a day
PERIOD_END = datetime(2026, 3, 31, 0, 0, tzinfo=timezone.utc)


def days_back(*hours_per_day: float) -> dict[date, int]:
    """Compute per day, today first, then yesterday, and so on."""
    return {NOW.date() - timedelta(days=i): int(h * HOUR) for i, h in enumerate(hours_per_day)}


def forecast(*, included_ms=20 * HOUR, used_ms=0, daily=None, **kw):
    return allowance_forecast(included_ms=included_ms, used_ms=used_ms, daily_compute_ms=daily or {}, now=NOW,
                              period_end=kw.pop("period_end", PERIOD_END), **kw)


def test_a_steady_pace_runs_out_on_the_day_the_remainder_lasts():
    # 6.5 days of window (six whole days and half of today) at 2 h a day: 13 h used in it.
    daily = days_back(1, 2, 2, 2, 2, 2, 2)
    result = forecast(used_ms=8 * HOUR, daily=daily)
    assert result.status == fc.RUNS_OUT
    assert result.pace_ms_per_day == 2 * HOUR
    assert result.runs_out_at == NOW + timedelta(days=6)  # 12 h left at 2 h a day


def test_days_before_the_window_do_not_count():
    daily = days_back(1, 2, 2, 2, 2, 2, 2, 50, 50)
    assert forecast(used_ms=8 * HOUR, daily=daily).pace_ms_per_day == 2 * HOUR


def test_an_allowance_that_outlasts_the_period_lasts():
    result = forecast(used_ms=HOUR, daily=days_back(0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1))
    assert result.status == fc.LASTS
    assert result.runs_out_at is None


def test_no_compute_in_the_window_gives_no_date():
    result = forecast(used_ms=HOUR, daily=days_back(0, 0, 0, 0, 0, 0, 0, 9))
    assert result.status == fc.IDLE
    assert result.runs_out_at is None


def test_a_used_up_allowance_is_exhausted_and_projects_the_pools_instead():
    daily = days_back(1, 2, 2, 2, 2, 2, 2)
    result = forecast(used_ms=20 * HOUR, daily=daily, pool_ms=4 * HOUR)
    assert result.status == fc.EXHAUSTED
    assert result.pools_run_out_at == NOW + timedelta(days=2)


def test_pools_that_outlast_the_period_have_no_run_out_date():
    result = forecast(used_ms=20 * HOUR, daily=days_back(1, 2, 2, 2, 2, 2, 2), pool_ms=500 * HOUR)
    assert result.status == fc.EXHAUSTED
    assert result.pools_run_out_at is None


def test_a_plan_without_allowance_says_so():
    assert forecast(included_ms=0, daily=days_back(1)).status == fc.NO_ALLOWANCE


def test_a_young_account_is_measured_from_its_creation():
    # Created six hours ago and used 3 h since: the pace is 12 h a day, not 3 h spread over a week.
    result = forecast(used_ms=3 * HOUR, daily=days_back(3), since=NOW - timedelta(hours=6))
    assert result.pace_ms_per_day == 12 * HOUR
    assert result.runs_out_at == NOW + timedelta(hours=34)  # 17 h left at half an hour per hour


def test_naive_times_are_read_as_utc():
    naive = allowance_forecast(included_ms=20 * HOUR, used_ms=8 * HOUR, daily_compute_ms=days_back(1, 2, 2, 2, 2, 2, 2),
                               now=NOW.replace(tzinfo=None), period_end=PERIOD_END.replace(tzinfo=None))
    assert naive.runs_out_at == NOW + timedelta(days=6)
