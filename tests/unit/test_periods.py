"""Monthly periods from the account's anchor, with day clamping and the anchor's time of day."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.periods import Period, add_months, classify_timestamp, next_period, period_at, \
    period_index_at

from .builders import FAST

UTC = timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("anchor", "months", "expected"), [
    (utc(2027, 1, 31), 1, utc(2027, 2, 28)),
    (utc(2028, 1, 31), 1, utc(2028, 2, 29)),
    (utc(2028, 1, 31), 2, utc(2028, 3, 31)),
    (utc(2028, 1, 31), 3, utc(2028, 4, 30)),
    (utc(2027, 1, 31), 12, utc(2028, 1, 31)),
    (utc(2028, 2, 29), 12, utc(2029, 2, 28)),
    (utc(2026, 11, 30), 3, utc(2027, 2, 28)),
    (utc(2026, 12, 15), 1, utc(2027, 1, 15)),
    (utc(2026, 3, 31), -1, utc(2026, 2, 28)),
    (utc(2026, 5, 10), 0, utc(2026, 5, 10)),
])
def test_add_months_clamps_to_the_last_day_of_short_months(anchor, months, expected):
    assert add_months(anchor, months) == expected


def test_add_months_counts_from_the_anchor_so_a_short_month_does_not_shorten_later_ones():
    anchor = utc(2028, 1, 31, 9, 30)
    assert [add_months(anchor, n).day for n in range(1, 5)] == [29, 31, 30, 31]


def test_add_months_keeps_the_time_of_day_and_the_zone():
    anchor = utc(2027, 1, 31, 23, 59, 58, 123_456)
    moved = add_months(anchor, 1)
    assert moved == utc(2027, 2, 28, 23, 59, 58, 123_456)
    assert moved.tzinfo is UTC


def test_period_starting_on_the_31st_ends_on_the_clamped_day_of_the_next_month():
    anchor = utc(2028, 1, 31, 8, 0)
    assert period_at(anchor, utc(2028, 2, 10)) == Period(utc(2028, 1, 31, 8), utc(2028, 2, 29, 8))
    assert period_at(anchor, utc(2028, 3, 15)) == Period(utc(2028, 2, 29, 8), utc(2028, 3, 31, 8))
    assert period_at(anchor, utc(2028, 4, 15)) == Period(utc(2028, 3, 31, 8), utc(2028, 4, 30, 8))


def test_period_start_is_inclusive_and_end_is_exclusive():
    anchor = utc(2026, 1, 15, 12)
    boundary = utc(2026, 2, 15, 12)
    assert period_index_at(anchor, boundary - timedelta(microseconds=1)) == 0
    assert period_index_at(anchor, boundary) == 1
    assert period_at(anchor, boundary).start == boundary


def test_period_changes_at_the_anchors_time_of_day_not_at_midnight():
    anchor = utc(2026, 1, 15, 18, 30)
    assert period_index_at(anchor, utc(2026, 2, 15, 18, 29)) == 0
    assert period_index_at(anchor, utc(2026, 2, 15, 18, 30)) == 1


def test_period_index_at_the_anchor_is_zero_and_before_it_is_an_error():
    anchor = utc(2026, 1, 15, 12)
    assert period_index_at(anchor, anchor) == 0
    with pytest.raises(ValueError):
        period_index_at(anchor, anchor - timedelta(seconds=1))


def test_next_period_starts_where_the_current_one_ends():
    anchor = utc(2028, 1, 31, 6)
    current = period_at(anchor, utc(2028, 2, 5))
    following = next_period(anchor, current)
    assert following == Period(utc(2028, 2, 29, 6), utc(2028, 3, 31, 6))
    assert next_period(anchor, following) == Period(utc(2028, 3, 31, 6), utc(2028, 4, 30, 6))


anchors = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC))


@FAST
@given(anchor=anchors, offset=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3_000)))
def test_every_moment_after_the_anchor_lies_in_exactly_one_period(anchor, offset):
    at = anchor + offset
    n = period_index_at(anchor, at)
    period = period_at(anchor, at)
    assert period.start <= at < period.end
    assert period == Period(add_months(anchor, n), add_months(anchor, n + 1))
    assert next_period(anchor, period).start == period.end
    for edge in (period.start, period.end):
        assert edge.time() == anchor.time()
        assert edge.tzinfo == anchor.tzinfo
        assert edge.day == min(anchor.day, calendar.monthrange(edge.year, edge.month)[1])
    assert 28 <= (period.end - period.start).days <= 31


@FAST
@given(anchor=anchors, offset=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=800)),
       hours=st.integers(-12, 14))
def test_the_period_does_not_depend_on_the_zone_the_moment_is_written_in(anchor, offset, hours):
    at = anchor + offset
    elsewhere = at.astimezone(timezone(timedelta(hours=hours)))
    assert period_at(anchor, elsewhere) == period_at(anchor, at)


# --- classify_timestamp -----------------------------------------------------------------------------------

NOW = utc(2026, 3, 10, 12)
START = utc(2026, 3, 1, 0)


@pytest.mark.parametrize(("timestamp", "expected"), [
    (NOW, "current"),
    (NOW + timedelta(minutes=5), "current"),
    (NOW + timedelta(minutes=5, microseconds=1), "future"),
    (NOW + timedelta(days=1), "future"),
    (START, "current"),
    (START - timedelta(microseconds=1), "late"),
    (START - timedelta(days=40), "late"),
    (NOW - timedelta(hours=1), "current"),
])
def test_classify_timestamp_rejects_only_beyond_five_minutes_ahead_and_marks_earlier_periods_late(
        timestamp, expected):
    assert classify_timestamp(timestamp, now=NOW, period_start=START) == expected
