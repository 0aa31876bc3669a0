"""Key limit windows: calendar budget windows in UTC, and rpm/tpm sliding windows exact at the boundary."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.gateway.windows import (
    WINDOW_MS,
    Admission,
    allowed,
    budget_window_start,
    live_entries,
    next_budget_reset,
    window_usage,
)

from ..builders import FAST

UTC = timezone.utc
WED = datetime(2026, 1, 14, 15, 30, 7, 123, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(("reset", "start", "end"), [
    ("daily", datetime(2026, 1, 14, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC)),
    ("weekly", datetime(2026, 1, 12, tzinfo=UTC), datetime(2026, 1, 19, tzinfo=UTC)),  # Monday to Monday
    ("monthly", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
    ("never", None, None),
])
def test_budget_windows_are_calendar_windows_in_utc(reset, start, end):
    assert budget_window_start(reset, WED) == start
    assert next_budget_reset(reset, WED) == end


def test_a_window_starting_now_contains_now_and_the_instant_before_belongs_to_the_last_one():
    monday = datetime(2026, 3, 2, tzinfo=UTC)
    assert budget_window_start("weekly", monday) == monday
    assert budget_window_start("weekly", monday - timedelta(microseconds=1)) == datetime(2026, 2, 23, tzinfo=UTC)
    first = datetime(2026, 3, 1, tzinfo=UTC)
    assert budget_window_start("monthly", first) == first
    assert budget_window_start("monthly", first - timedelta(microseconds=1)) == datetime(2026, 2, 1, tzinfo=UTC)


def test_december_resets_into_january_of_the_next_year():
    assert next_budget_reset("monthly", datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_budget_reset("weekly", datetime(2026, 12, 31, tzinfo=UTC)) == datetime(2027, 1, 4, tzinfo=UTC)


def test_a_time_in_another_zone_is_placed_in_its_utc_window():
    paris_just_after_midnight = datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))  # Feb 28, 22:30Z
    assert budget_window_start("monthly", paris_just_after_midnight) == datetime(2026, 2, 1, tzinfo=UTC)
    assert budget_window_start("daily", paris_just_after_midnight) == datetime(2026, 2, 28, tzinfo=UTC)


def test_a_naive_time_is_utc_and_the_answer_stays_naive():
    assert budget_window_start("daily", datetime(2026, 1, 14, 15, 30)) == datetime(2026, 1, 14)
    assert next_budget_reset("monthly", datetime(2026, 1, 14, 15, 30)) == datetime(2026, 2, 1)


def test_an_anchor_inside_the_window_starts_it_later_and_one_before_changes_nothing():
    set_at = datetime(2026, 1, 13, 9, tzinfo=UTC)
    assert budget_window_start("monthly", WED, anchor=set_at) == set_at
    assert budget_window_start("daily", WED, anchor=set_at) == datetime(2026, 1, 14, tzinfo=UTC)
    assert budget_window_start("never", WED, anchor=set_at) == set_at
    assert budget_window_start("never", WED, anchor=None) is None


def test_an_unknown_reset_is_refused():
    with pytest.raises(ValueError, match="daily, weekly, monthly, never"):
        budget_window_start("hourly", WED)


@FAST
@given(now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
       reset=st.sampled_from(["daily", "weekly", "monthly"]))
def test_now_lies_in_its_window_and_the_window_starts_at_midnight(now, reset):
    start, end = budget_window_start(reset, now), next_budget_reset(reset, now)
    assert start <= now < end
    assert (start.hour, start.minute, start.second, start.microsecond) == (0, 0, 0, 0)
    assert budget_window_start(reset, end) == end  # the next window starts where this one ends
    assert reset != "weekly" or start.weekday() == 0
    assert reset != "monthly" or start.day == 1


# --- rpm / tpm -------------------------------------------------------------------------------------------------

T = 1_700_000_000_000  # ms


def test_an_entry_leaves_the_window_exactly_sixty_seconds_after_it_was_made():
    entries = [(T, 1)]
    assert allowed(entries, T + WINDOW_MS - 1, limit=1, cost=1) == Admission(False, 1)
    assert allowed(entries, T + WINDOW_MS, limit=1, cost=1) == Admission(True, 0)


def test_the_wait_is_until_enough_of_the_oldest_entries_have_left():
    entries = [(T + 30_000, 400), (T, 300), (T + 10_000, 200)]  # any order
    assert window_usage(entries, T + 40_000) == 900
    assert allowed(entries, T + 40_000, limit=1_000, cost=100) == Admission(True, 0)
    assert allowed(entries, T + 40_000, limit=1_000, cost=350) == Admission(False, 20_000)  # when T's 300 leave
    assert allowed(entries, T + 40_000, limit=1_000, cost=550) == Admission(False, 30_000)  # and T+10s's 200
    assert allowed(entries, T + 40_000, limit=1_000, cost=1_000) == Admission(False, 50_000)


def test_a_cost_over_the_limit_alone_is_never_admitted():
    decision = allowed([], T, limit=1_000, cost=1_001)
    assert decision == Admission(False, None) and decision.retry_after_s is None


def test_retry_after_seconds_round_up_so_a_client_that_waits_them_is_admitted():
    assert Admission(False, 1).retry_after_s == 1
    assert Admission(False, 1_000).retry_after_s == 1
    assert Admission(False, 1_001).retry_after_s == 2
    assert Admission(True, 0).retry_after_s == 0


def test_expired_entries_are_dropped_and_the_rest_kept_oldest_first():
    entries = [(T + 5, 1), (T - WINDOW_MS, 9), (T - WINDOW_MS + 1, 2)]
    assert live_entries(entries, T) == [(T - WINDOW_MS + 1, 2), (T + 5, 1)]


def test_nonsense_limits_are_refused():
    with pytest.raises(ValueError):
        allowed([], T, limit=-1, cost=0)
    with pytest.raises(ValueError):
        allowed([], T, limit=1, cost=1, window_ms=0)


attempts = st.lists(st.tuples(st.integers(0, 25_000), st.integers(0, 40)), min_size=1, max_size=60)


@FAST
@given(attempts=attempts, limit=st.integers(1, 100))
def test_no_sixty_second_span_ever_holds_more_than_the_limit(attempts, limit):
    now, admitted = T, []
    for gap, cost in attempts:
        now += gap
        if allowed(admitted, now, limit, cost).ok:
            admitted.append((now, cost))
    for start, _ in admitted:  # the busiest span starts at an admitted entry
        assert sum(c for at, c in admitted if start <= at < start + WINDOW_MS) <= limit


@FAST
@given(attempts=attempts, limit=st.integers(1, 100))
def test_a_refused_cost_is_admitted_exactly_when_the_wait_is_over_and_not_a_millisecond_before(attempts, limit):
    now, admitted = T, []
    for gap, cost in attempts:
        now += gap
        decision = allowed(admitted, now, limit, cost)
        if decision.ok:
            admitted.append((now, cost))
        elif decision.retry_after_ms is not None:
            wait = decision.retry_after_ms
            assert 1 <= wait <= WINDOW_MS
            assert not allowed(admitted, now + wait - 1, limit, cost).ok
            assert allowed(admitted, now + wait, limit, cost) == Admission(True, 0)
        else:
            assert cost > limit
