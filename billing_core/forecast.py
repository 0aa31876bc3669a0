"""When the period's allowance runs out at the recent pace: plain data in, a plain answer out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Mapping

WINDOW_DAYS = 7
_DAY_MS = 86_400_000

# What the forecast says, in the order a reader checks them.
NO_ALLOWANCE = "no_allowance"  # the plan includes no compute
EXHAUSTED = "exhausted"  # nothing left this period
IDLE = "idle"  # no compute in the window: no pace to project
RUNS_OUT = "runs_out"  # runs out before the period ends
LASTS = "lasts"  # the period ends (and the allowance resets) first


@dataclass(frozen=True)
class Forecast:
    status: str
    pace_ms_per_day: int  # average compute per day over the window (whole ms, rounded down)
    runs_out_at: datetime | None  # set when status is RUNS_OUT
    period_end: datetime
    pools_run_out_at: datetime | None = None  # EXHAUSTED: when pools run dry at this pace, if before period_end


def allowance_forecast(*, included_ms: int, used_ms: int, daily_compute_ms: Mapping[date, int], now: datetime,
                       period_end: datetime, since: datetime | None = None, pool_ms: int = 0,
                       window_days: int = WINDOW_DAYS) -> Forecast:
    """Project the allowance left at the average pace of the last `window_days` days up to `now`.

    `daily_compute_ms` holds compute per UTC day; days outside the window are ignored. The window runs from
    midnight `window_days - 1` days ago to `now` (so today counts for the part already lived), and starts no
    earlier than `since` (the account's creation) so a young account is not diluted by days it never had.
    Once the allowance is used up, pools (`pool_ms` left) are projected the same way.
    """
    now = _utc(now)
    period_end = _utc(period_end)
    remaining_ms = max(0, included_ms - used_ms)
    start = datetime.combine(now.date() - timedelta(days=window_days - 1), time(0), tzinfo=timezone.utc)
    if since is not None:
        start = max(start, _utc(since))
    window_ms = int((now - start).total_seconds() * 1000)
    first, last = start.date(), now.date()
    compute_ms = sum(ms for day, ms in daily_compute_ms.items() if first <= day <= last and ms > 0)
    # Less than an hour of history says nothing about a daily pace; treat it as an hour.
    window_ms = max(window_ms, 3_600_000)
    pace = compute_ms * _DAY_MS // window_ms
    if included_ms <= 0:
        return Forecast(NO_ALLOWANCE, pace, None, period_end)
    if remaining_ms == 0:
        pools_out = _runs_out(pool_ms, compute_ms, window_ms, now) if pool_ms > 0 else None
        return Forecast(EXHAUSTED, pace, None, period_end,
                        pools_run_out_at=pools_out if pools_out and pools_out < period_end else None)
    if compute_ms == 0:
        return Forecast(IDLE, 0, None, period_end)
    runs_out_at = _runs_out(remaining_ms, compute_ms, window_ms, now)
    if runs_out_at >= period_end:
        return Forecast(LASTS, pace, None, period_end)
    return Forecast(RUNS_OUT, pace, runs_out_at, period_end)


def _runs_out(left_ms: int, compute_ms: int, window_ms: int, now: datetime) -> datetime | None:
    """When `left_ms` is gone at `compute_ms` per `window_ms` (integers: left / (compute / window) from now)."""
    if compute_ms <= 0:
        return None
    return now + timedelta(milliseconds=left_ms * window_ms // compute_ms)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
