"""The interpreter's settings for a server process, applied once everything long-lived is built: the garbage
collector's, and how soon a thread waiting for the interpreter lock gets it."""

from __future__ import annotations

import gc
import sys

# Young-generation collections: one per this many new container objects, not CPython's 700. A 1000-event
# batch makes tens of thousands of short-lived objects that live until its response is sent; at 700, each
# was walked by several collections while still alive (5 % of a batch's instructions under callgrind,
# docs/benchmarks.md). Reference counting still frees almost everything at once; this only delays the
# search for cycles, and the extra objects waiting for it are a few megabytes at most.
YOUNG_THRESHOLD = 20_000

# A thread whose database answer has come waits for the interpreter lock until the thread holding it lets
# go, which CPython forces after this long (5 ms by default). A batch holding its account's lock wakes up
# after each of its statements while the next batch of the account is parsed and walked in another thread;
# at 5 ms a wake-up, those waits made the lock's hold a third longer (docs/benchmarks.md).
SWITCH_INTERVAL_S = 0.0005


def settle() -> None:
    """Freeze what exists (modules, the app, its routes and models live as long as the process, so the
    collector need not walk them again at every collection), collect the young generation less often, and
    hand the interpreter lock over sooner."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
