"""The process-wide attempt limiter shared by the /auth routes and the Reflex pages (one process, one count).

With several workers the counts must be shared: swap in a Redis-backed RateLimiter here.
"""

from __future__ import annotations

from functools import lru_cache

from billing_core.services.identity import MemoryRateLimiter, RateLimiter


@lru_cache
def get_limiter() -> RateLimiter:
    return MemoryRateLimiter()
