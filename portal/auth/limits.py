"""The attempt limiter of sign-in, sign-up and device-code entry, built from settings: the `limits` library's
moving window, atomic per hit, in this process's memory (`memory://`) or in Redis, where every process sees
the same counts (TOLLGATE_RATE_LIMIT_STORAGE, else TOLLGATE_REDIS_URL, else memory)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from billing_core.errors import ServiceError
from billing_core.services.attempts import Limit, RateLimiter

from ..settings import Settings, get_settings

log = logging.getLogger("tollgate.auth.limits")
REDIS_SCHEMES = ("redis://", "rediss://", "redis+unix://", "valkey://", "valkeys://")
REDIS_TIMEOUT_S = 2.0  # a Redis that does not answer fails the attempt quickly instead of hanging a worker


class LimiterUnavailable(ServiceError):
    status, code = 503, "rate_limit_unavailable"


def storage_uri(settings: Settings) -> str:
    if settings.rate_limit_storage:
        return settings.rate_limit_storage
    if settings.redis_url:
        url = settings.redis_url
        return "redis+unix://" + url[len("unix://"):] if url.startswith("unix://") else url
    return "memory://"


class SharedRateLimiter:
    """billing_core's RateLimiter on `limits`: `hit` tests and counts in one step (a lock in memory, a Lua
    script in Redis). The clock is the storage's own, so the services' `now` is not used here.

    Keys are HMACs under the secret key, in a namespace derived from it: Redis holds no email or address,
    and two deployments (or two test servers) sharing one Redis never share counts, while the processes of
    one deployment, which must share the secret key for their cookies anyway, do.
    """

    def __init__(self, uri: str, secret_key: str) -> None:
        options = {"socket_connect_timeout": REDIS_TIMEOUT_S, "socket_timeout": REDIS_TIMEOUT_S} \
            if uri.startswith(REDIS_SCHEMES) else {}
        self._window = MovingWindowRateLimiter(storage_from_string(uri, wrap_exceptions=True, **options))
        self._secret = hmac.new(secret_key.encode(), b"tollgate.rate-limits", hashlib.sha256).digest()
        self.namespace = "tollgate-" + hmac.new(self._secret, b"namespace", hashlib.sha256).hexdigest()[:16]

    def _item(self, key: str, limit: Limit) -> tuple[RateLimitItemPerSecond, str]:
        item = RateLimitItemPerSecond(limit.attempts, int(limit.window.total_seconds()), namespace=self.namespace)
        return item, hmac.new(self._secret, key.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:32]

    def _wait(self, item: RateLimitItemPerSecond, ident: str) -> int:
        reset_at = self._window.get_window_stats(item, ident).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def retry_after(self, key: str, limit: Limit, now: datetime) -> int:
        item, ident = self._item(key, limit)
        with _unavailable_on_error():
            return 0 if self._window.test(item, ident) else self._wait(item, ident)

    def hit(self, key: str, limit: Limit, now: datetime) -> int:
        item, ident = self._item(key, limit)
        with _unavailable_on_error():
            return 0 if self._window.hit(item, ident) else self._wait(item, ident)

    def clear(self, key: str, limit: Limit) -> None:
        item, ident = self._item(key, limit)
        with _unavailable_on_error():
            self._window.clear(item, ident)


@contextmanager
def _unavailable_on_error() -> Iterator[None]:
    """Refuse the attempt (503) when the store fails: counting nothing would let guesses through unlimited."""
    try:
        yield
    except StorageError as exc:
        log.warning("attempt limits unavailable (%s): refusing the attempt", type(exc.storage_error).__name__)
        raise LimiterUnavailable("Signing in is unavailable for a moment; try again shortly.") from None


_built: dict[tuple[str, str], SharedRateLimiter] = {}
_building = threading.Lock()  # sign-ins arrive in parallel threads; `limits` imports its client lazily, not thread-safe


def get_limiter(settings: Settings | None = None) -> RateLimiter:
    """The limiter of these settings (the app's by default), one per storage and secret in this process."""
    settings = settings or get_settings()
    key = (storage_uri(settings), settings.secret_key)
    limiter = _built.get(key)
    if limiter is None:
        with _building:
            limiter = _built.get(key) or _built.setdefault(key, SharedRateLimiter(*key))
    return limiter
