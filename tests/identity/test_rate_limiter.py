"""The in-process sliding-window limiter behind sign-in and device-code entry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing_core.services.identity import (CODE_ENTRY_PER_IP, CODE_ENTRY_PER_USER, Limit, MemoryRateLimiter,
                                            RateLimited, code_entry_attempt)

from ..conftest import T0

LIMIT = Limit(3, timedelta(minutes=10))


def test_the_limit_allows_n_events_then_says_when_the_oldest_leaves_the_window(limiter):
    for minute in range(3):
        assert limiter.retry_after("k", LIMIT, T0 + timedelta(minutes=minute)) == 0
        limiter.record("k", LIMIT, T0 + timedelta(minutes=minute))
    assert limiter.retry_after("k", LIMIT, T0 + timedelta(minutes=4)) == 6 * 60
    assert limiter.retry_after("k", LIMIT, T0 + timedelta(minutes=10)) == 0
    assert limiter.retry_after("other", LIMIT, T0) == 0


def test_clear_forgets_a_key(limiter):
    for _ in range(3):
        limiter.record("k", LIMIT, T0)
    limiter.clear("k")
    assert limiter.retry_after("k", LIMIT, T0) == 0


def test_stale_keys_are_dropped_when_the_table_is_full():
    limiter = MemoryRateLimiter()
    limiter.MAX_KEYS = 10
    for i in range(10):
        limiter.record(f"old{i}", LIMIT, T0)
    limiter.record("new", LIMIT, T0 + timedelta(hours=1))
    assert set(limiter._events) == {"new"}


def test_device_code_entry_is_limited_per_user(limiter):
    for i in range(CODE_ENTRY_PER_USER.attempts):
        code_entry_attempt(limiter, user_id="usr_1", ip=f"10.0.0.{i}", now=T0)
    with pytest.raises(RateLimited):
        code_entry_attempt(limiter, user_id="usr_1", ip="10.0.1.1", now=T0)
    code_entry_attempt(limiter, user_id="usr_2", ip="10.0.1.1", now=T0)


def test_device_code_entry_is_limited_per_address(limiter):
    for i in range(CODE_ENTRY_PER_IP.attempts):
        code_entry_attempt(limiter, user_id=f"usr_{i}", ip="10.0.0.1", now=T0)
    with pytest.raises(RateLimited):
        code_entry_attempt(limiter, user_id="usr_new", ip="10.0.0.1", now=T0)
