"""What every edge target offers the delivery shell, and how it says a whole batch failed."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class TargetError(Exception):
    """The whole batch failed (connection error, 5xx, 429...): nothing may be assumed written.

    `retry_after_s` is what the target asked for (Retry-After); `transient` is False for an answer that
    will not change by itself (a 4xx other than 429: bad token, unknown namespace), which is still retried
    with backoff, since an operator may fix the configuration meanwhile."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, transient: bool = True) -> None:
        super().__init__(message)
        self.retry_after_s, self.transient = retry_after_s, transient


@runtime_checkable
class Target(Protocol):
    name: str

    def apply(self, upserts: dict[str, dict], deletes: list[str]) -> dict[str, str]:
        """Write the values and delete the items; returns the items refused one by one (item -> reason),
        or raises TargetError when the batch as a whole failed. Idempotent: a batch may be sent twice."""
        ...

    def dump(self) -> dict[str, dict | None]:
        """Every Tollgate item the target holds (item -> value; None for a value that is not valid JSON)."""
        ...

    def close(self) -> None:
        ...
