"""The garbage collector's settings for a server process, applied once everything long-lived is built."""

from __future__ import annotations

import gc

# Young-generation collections: one per this many new container objects, not CPython's 700. A 1000-event
# batch makes tens of thousands of short-lived objects that live until its response is sent; at 700, each
# was walked by several collections while still alive (5 % of a batch's instructions under callgrind,
# docs/benchmarks.md). Reference counting still frees almost everything at once; this only delays the
# search for cycles, and the extra objects waiting for it are a few megabytes at most.
YOUNG_THRESHOLD = 20_000


def settle() -> None:
    """Freeze what exists (modules, the app, its routes and models live as long as the process, so the
    collector need not walk them again at every collection) and collect the young generation less often."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
