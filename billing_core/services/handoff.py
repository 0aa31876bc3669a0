"""While a big batch is being recorded, the process's threads hand the interpreter lock over sooner.

A thread whose database answer has come waits for the interpreter lock until the thread holding it lets go,
which CPython forces after its switch interval (5 ms by default). A big batch holding its account's lock
wakes up after each of its statements, while the next batch of the account is parsed and walked in another
thread (services/chain.py); at 5 ms a wake-up those waits made the lock's hold about a third longer, and at
0.5 ms PostgreSQL's 1000-event ingest ran 9 % faster (docs/benchmarks.md). Requests of a few events keep the
default: for them the shorter interval only added switches (4 % fewer one-event requests a second).
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator

QUICK_SWITCH_S = 0.0005

_lock = threading.Lock()
_active = 0
_usual = sys.getswitchinterval()


@contextmanager
def quick_handoff() -> Iterator[None]:
    """The short switch interval while at least one such block runs in the process; the usual one after."""
    global _active, _usual
    with _lock:
        if not _active:
            _usual = sys.getswitchinterval()
            sys.setswitchinterval(QUICK_SWITCH_S)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if not _active:
                sys.setswitchinterval(_usual)
