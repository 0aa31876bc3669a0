"""A process-wide hook: services say "this account changed" after their transaction commits.

billing_core knows nothing of who listens; the portal subscribes its live-update broadcaster at start-up.
Other processes (the admin CLI, a second worker) are not reached from here: the portal's database watcher
sees their commits instead.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Callable

logger = logging.getLogger("billing_core.notify")

Callback = Callable[[str], None]

_callbacks: tuple[Callback, ...] = ()
_guard = threading.Lock()


def subscribe(callback: Callback) -> Callable[[], None]:
    """Call `callback(account_id)` after every committed change; returns a function that unsubscribes."""
    global _callbacks
    with _guard:
        if callback not in _callbacks:
            _callbacks = (*_callbacks, callback)

    def unsubscribe() -> None:
        global _callbacks
        with _guard:
            _callbacks = tuple(c for c in _callbacks if c is not callback)

    return unsubscribe


def account_changed(account_id: str) -> None:
    """Tell every subscriber; a failing subscriber is logged and never fails the caller's committed work."""
    for callback in _callbacks:  # a tuple swapped whole, so no lock is needed to read it
        try:
            callback(account_id)
        except Exception:
            logger.exception("a change subscriber failed")


def after_commit(service: Callable) -> Callable:
    """Decorate a service `f(billing, account_id, ...)`: once it returns (its transaction committed),
    announce that the account changed. A service that raises changed nothing and announces nothing. A
    service may name the account by something else (record_usage takes a key); its result's `account.id`
    then says which account it was."""

    @functools.wraps(service)
    def announcing(billing, account_id, *args, **kwargs):
        result = service(billing, account_id, *args, **kwargs)
        if _callbacks:
            account_changed(account_id if isinstance(account_id, str) else result.account.id)
        return result

    return announcing
