"""Attempt limits: how many sign-ins, sign-ups and device codes a key (an address, an email, a browser) may
try in a moving window, taken before the expensive or guessable work, never after it.

The store is an adapter behind `RateLimiter`: the portal gives a shared one (the `limits` library, in
memory or Redis, portal/auth/limits.py); `MemoryRateLimiter` runs on the caller's clock, for tests and
single-process embedders.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from ..errors import ServiceError


@dataclass(frozen=True)
class Limit:
    attempts: int
    window: timedelta


# Numbers and their reasons: docs/security.md ("Attempt limits"). Every attempt counts, failed or not,
# since it is counted before the password is checked; a success clears only the keys it proves.
SIGN_IN_PER_EMAIL_IP = Limit(5, timedelta(minutes=15))   # one address at one email; cleared on success
SIGN_IN_PER_IP = Limit(20, timedelta(minutes=15))        # one address, whatever the email
SIGN_IN_PER_EMAIL = Limit(10, timedelta(minutes=15))     # one email from browsers it does not know
SIGN_IN_PER_DEVICE = Limit(10, timedelta(minutes=15))    # one known browser (device cookie); cleared on success
SIGN_UP_PER_IP = Limit(20, timedelta(hours=1))           # sign-ups that reached the database
CODE_ENTRY_PER_USER = Limit(10, timedelta(minutes=15))   # device codes looked up
CODE_ENTRY_PER_IP = Limit(30, timedelta(minutes=15))
# The CLI's device flow: an honest CLI polls every 5 s (12 a minute); room for a few behind one address.
DEVICE_CODES_PER_IP = Limit(10, timedelta(minutes=1))
TOKEN_POLLS_PER_IP = Limit(30, timedelta(minutes=1))


class RateLimiter(Protocol):
    """Counts attempts per key in a moving window."""

    def retry_after(self, key: str, limit: Limit, now: datetime) -> int:
        """Seconds until one more attempt is allowed, 0 when it is now; counts nothing."""
        ...

    def hit(self, key: str, limit: Limit, now: datetime) -> int:
        """Test and count one attempt in one atomic step: 0 when counted, else the seconds to wait (not counted)."""
        ...

    def clear(self, key: str, limit: Limit) -> None: ...


class RateLimited(ServiceError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _refuse_if_waiting(wait_s: int, what: str) -> None:
    if wait_s:
        minutes = math.ceil(wait_s / 60)
        raise RateLimited(f"Too many {what}. Try again in {minutes} minute{'s' * (minutes != 1)}.", wait_s)


def take(limiter: RateLimiter, checks: list[tuple[str, Limit]], now: datetime, what: str) -> None:
    """Count one attempt against every (key, limit), or raise RateLimited.

    Each count is one atomic hit, so parallel attempts never pass a limit. The peek first keeps a spent
    limit from using up the others; list the keys the caller owns (its address) before shared ones (an
    email), so one that refuses does so before a shared count is spent.
    """
    _refuse_if_waiting(max(limiter.retry_after(key, limit, now) for key, limit in checks), what)
    for key, limit in checks:
        _refuse_if_waiting(limiter.hit(key, limit, now), what)


class MemoryRateLimiter:
    """One process's counts on the caller's clock, guarded by a lock (FastAPI runs sync routes in threads)."""

    MAX_KEYS = 100_000  # beyond this, keys whose events all left their window are dropped

    def __init__(self) -> None:
        self._events: dict[str, tuple[timedelta, deque[datetime]]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: datetime) -> deque[datetime]:
        window, times = self._events.get(key, (None, deque()))
        while times and window is not None and times[0] <= now - window:
            times.popleft()
        return times

    @staticmethod
    def _wait(times: deque[datetime], limit: Limit, now: datetime) -> int:
        if len(times) < limit.attempts:
            return 0
        frees_at = times[len(times) - limit.attempts] + limit.window
        return max(1, math.ceil((frees_at - now).total_seconds()))

    def retry_after(self, key: str, limit: Limit, now: datetime) -> int:
        with self._lock:
            return self._wait(self._live(key, now), limit, now)

    def hit(self, key: str, limit: Limit, now: datetime) -> int:
        with self._lock:
            times = self._live(key, now)
            wait = self._wait(times, limit, now)
            if wait:
                return wait
            if len(self._events) >= self.MAX_KEYS:
                for stale in [k for k in self._events if not self._live(k, now)]:
                    del self._events[stale]
            times.append(now)
            self._events[key] = (limit.window, times)
            return 0

    def clear(self, key: str, limit: Limit | None = None) -> None:
        with self._lock:
            self._events.pop(key, None)
