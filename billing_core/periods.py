"""Monthly billing periods anchored on the account's creation time, with day clamping."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


def add_months(anchor: datetime, months: int) -> datetime:
    """The anchor moved by whole months; day D clamps to the month's last day (Jan 31 -> Feb 28)."""
    index = anchor.month - 1 + months
    year, month = anchor.year + index // 12, index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period_index_at(anchor: datetime, at: datetime) -> int:
    """Which period (0 = the one starting at the anchor) contains `at`."""
    if at < anchor:
        raise ValueError("time is before the account's anchor")
    n = (at.year - anchor.year) * 12 + (at.month - anchor.month)
    # The estimate can be one too high (day or time not yet reached) or, never, too low.
    while add_months(anchor, n) > at:
        n -= 1
    while add_months(anchor, n + 1) <= at:
        n += 1
    return n


def period_at(anchor: datetime, at: datetime) -> Period:
    n = period_index_at(anchor, at)
    return Period(add_months(anchor, n), add_months(anchor, n + 1))


def next_period(anchor: datetime, current: Period) -> Period:
    n = period_index_at(anchor, current.start)
    return Period(add_months(anchor, n + 1), add_months(anchor, n + 2))


def classify_timestamp(timestamp: datetime, *, now: datetime, period_start: datetime) -> str:
    """'future' (rejected), 'late' (falls in a closed period) or 'current'."""
    if timestamp > now + FUTURE_TOLERANCE:
        return "future"
    if timestamp < period_start:
        return "late"
    return "current"
