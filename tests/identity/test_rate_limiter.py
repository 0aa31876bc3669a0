"""The moving-window limiters behind sign-in and device-code entry: billing_core's MemoryRateLimiter on the
caller's clock, and the app's SharedRateLimiter (the `limits` library) in this process's memory."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing_core.services.identity import (CODE_ENTRY_PER_IP, CODE_ENTRY_PER_USER, Limit, MemoryRateLimiter,
                                            RateLimited, code_entry_attempt)
from portal.auth.limits import SharedRateLimiter, get_limiter, storage_uri
from portal.settings import Settings

from ..conftest import T0

LIMIT = Limit(3, timedelta(minutes=10))


def test_hit_counts_n_events_then_says_when_the_oldest_leaves_the_window(limiter):
    for minute in range(3):
        assert limiter.retry_after("k", LIMIT, T0 + timedelta(minutes=minute)) == 0
        assert limiter.hit("k", LIMIT, T0 + timedelta(minutes=minute)) == 0
    assert limiter.hit("k", LIMIT, T0 + timedelta(minutes=4)) == 6 * 60  # refused, and not counted:
    assert limiter.hit("k", LIMIT, T0 + timedelta(minutes=10)) == 0  # the first left, a slot is free
    assert limiter.retry_after("other", LIMIT, T0) == 0


def test_clear_forgets_a_key(limiter):
    for _ in range(3):
        limiter.hit("k", LIMIT, T0)
    limiter.clear("k", LIMIT)
    assert limiter.retry_after("k", LIMIT, T0) == 0


def test_stale_keys_are_dropped_when_the_table_is_full():
    limiter = MemoryRateLimiter()
    limiter.MAX_KEYS = 10
    for i in range(10):
        limiter.hit(f"old{i}", LIMIT, T0)
    limiter.hit("new", LIMIT, T0 + timedelta(hours=1))
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


def test_the_shared_limiter_in_memory_counts_refuses_with_a_wait_and_clears():
    shared = SharedRateLimiter("memory://", "a secret key of at least thirty-two characters")
    assert [shared.hit("k", LIMIT, T0) for _ in range(4)][:3] == [0, 0, 0]
    wait = shared.retry_after("k", LIMIT, T0)
    assert 0 < wait <= 600 and shared.hit("k", LIMIT, T0) > 0
    assert shared.retry_after("other", LIMIT, T0) == 0
    shared.clear("k", LIMIT)
    assert shared.hit("k", LIMIT, T0) == 0


def test_two_secret_keys_never_share_counts_on_one_store():
    one = SharedRateLimiter("memory://", "first secret key, thirty-two characters or so")
    other = SharedRateLimiter("memory://", "second secret key, thirty-two characters or so")
    other._window = one._window  # the same store, as two deployments on one Redis
    for _ in range(3):
        one.hit("k", LIMIT, T0)
    assert one.retry_after("k", LIMIT, T0) > 0 and other.retry_after("k", LIMIT, T0) == 0


@pytest.mark.parametrize("env, expected", [
    ({}, "memory://"),
    ({"redis_url": "redis://cache:6379/2"}, "redis://cache:6379/2"),
    ({"redis_url": "unix:///run/redis.sock"}, "redis+unix:///run/redis.sock"),
    ({"redis_url": "redis://cache:6379/2", "rate_limit_storage": "memory://"}, "memory://"),
])
def test_the_storage_follows_the_settings(env, expected):
    assert storage_uri(Settings(**{"redis_url": None, "rate_limit_storage": None, **env})) == expected


def test_the_app_builds_one_limiter_per_storage_and_secret():
    settings = Settings(rate_limit_storage="memory://")
    assert get_limiter(settings) is get_limiter(settings)
    assert get_limiter(settings) is not get_limiter(Settings(rate_limit_storage="memory://", secret_key="x" * 40))
