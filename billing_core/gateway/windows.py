"""Time windows of key limits: the budget's reset window, and requests/tokens per minute.

Budget windows are calendar windows in UTC: `daily` from 00:00, `weekly` from Monday 00:00, `monthly` from the
1st 00:00 of the calendar month (not the key's creation day), `never` from the beginning. An `anchor` (when
the budget was set) moves a window's start later, never earlier: spend before the budget existed is not
counted against it.

rpm/tpm are sliding windows: an entry (time in ms, count) counts while `now - window_ms < at <= ...`, that is
it leaves the window exactly `window_ms` after it was made. The functions take the entries a store kept (a
Redis sorted set, a table) and say whether a new cost fits; the store applies the answer atomically.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

BUDGET_RESETS = ("daily", "weekly", "monthly", "never")
WINDOW_MS = 60_000


def _as_utc(moment: datetime) -> datetime:
    # Naive datetimes are UTC here, as the database hands them back.
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _like(result: datetime, now: datetime) -> datetime:
    """The result in the same form as `now` (naive UTC stays naive, aware stays aware in UTC)."""
    return result.replace(tzinfo=None) if now.tzinfo is None else result


def _calendar_start(reset: str, now: datetime) -> datetime | None:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if reset == "daily":
        return day
    if reset == "weekly":
        return day - timedelta(days=day.weekday())  # Monday is weekday 0
    if reset == "monthly":
        return day.replace(day=1)
    if reset == "never":
        return None
    raise ValueError(f"budget_reset must be one of {', '.join(BUDGET_RESETS)}, got {reset!r}")


def budget_window_start(reset: str, now: datetime, anchor: datetime | None = None) -> datetime | None:
    """Start of the budget window containing `now`: the calendar start, or `anchor` when that is later.
    None only for `never` without an anchor (all spend counts)."""
    utc_now = _as_utc(now)
    start = _calendar_start(reset, utc_now)
    if anchor is not None:
        utc_anchor = _as_utc(anchor)
        if start is None or utc_anchor > start:
            start = min(utc_anchor, utc_now)
    return None if start is None else _like(start, now)


def next_budget_reset(reset: str, now: datetime) -> datetime | None:
    """When the window containing `now` ends and spend counts from zero again; None for `never`."""
    utc_now = _as_utc(now)
    start = _calendar_start(reset, utc_now)
    if start is None:
        return None
    if reset == "daily":
        end = start + timedelta(days=1)
    elif reset == "weekly":
        end = start + timedelta(days=7)
    else:
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return _like(end, now)


class Admission(NamedTuple):
    """Whether a cost fits the window now; if not, after how many ms it will (None: never, the cost alone is
    over the limit). Unpacks as (ok, retry_after_ms)."""

    ok: bool
    retry_after_ms: int | None

    @property
    def retry_after_s(self) -> int | None:
        """Whole seconds for a Retry-After header, rounded up so a client that waits them is admitted."""
        return None if self.retry_after_ms is None else -(-self.retry_after_ms // 1000)


def live_entries(entries: Iterable[tuple[int, int]], now_ms: int, window_ms: int = WINDOW_MS) -> list[tuple[int, int]]:
    """The entries still inside the window at `now_ms`, oldest first (what a store may keep; the rest can go)."""
    return sorted((at, count) for at, count in entries if at > now_ms - window_ms)


def window_usage(entries: Iterable[tuple[int, int]], now_ms: int, window_ms: int = WINDOW_MS) -> int:
    """The total count inside the window at `now_ms`."""
    return sum(count for _, count in live_entries(entries, now_ms, window_ms))


def allowed(entries: Iterable[tuple[int, int]], now_ms: int, limit: int, cost: int,
            window_ms: int = WINDOW_MS) -> Admission:
    """Whether `cost` more fits under `limit` in the window ending at `now_ms`; if not, the exact wait until
    enough of the oldest entries have left for it to fit (no lock-out past the window)."""
    if limit < 0 or cost < 0 or window_ms <= 0:
        raise ValueError("limit and cost must be >= 0 and the window > 0")
    if cost > limit:
        return Admission(False, None)
    live = live_entries(entries, now_ms, window_ms)
    used = sum(count for _, count in live)
    if used + cost <= limit:
        return Admission(True, 0)
    # Entries leave oldest first, each exactly window_ms after it was made: wait for the first departure after
    # which the rest plus the cost fit.
    for at, count in live:
        used -= count
        if used + cost <= limit:
            return Admission(False, at + window_ms - now_ms)
    raise AssertionError("unreachable: with every entry gone the cost fits, since cost <= limit")
