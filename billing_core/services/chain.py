"""Chained batches: the next batch of an account walked before its lock, over the state that the batch
ahead of it in this process left.

A batch holds its account's lock while it walks its events over the balances (the drawdown, its ledger
entries and rows: the biggest CPU cost of a large batch) and while the database writes them; the next batch
of the same account, waiting for that lock, had nothing to do. When the batch ahead runs in this process,
the state it leaves behind once walked is known: the account's columns, its live pools, its projects and the
event ids it saw. The next batch walks over that state while it waits, and once it holds the lock compares
what it reads with what it assumed. Equal in everything, the walk stands and only its writes are left.
Different in anything (the batch ahead failed, another process or request changed the account or its
projects, an id had been recorded long before), the guess is dropped and the batch walks over what it read.
So what is recorded is always a walk over the locked read; the guess only moves the work out of the lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Hashable, Mapping

from .usage_events import EventResult
from .usage_sql import LivePool

# How long a batch waits for the one ahead to finish its walk: the walk of 1000 events takes milliseconds,
# so this is only a bound for a batch ahead stuck behind a lock held elsewhere (then both would wait anyway).
WAIT_S = 2.0


@dataclass(frozen=True)
class State:
    """What an account looks like to a batch about to walk: the account row's columns, its live pools
    (earliest expiry first), its live projects, and the ids the walk would find already recorded."""

    account: Mapping[str, object]
    live: tuple[LivePool, ...]
    projects: frozenset[str]
    seen: Mapping[str, tuple[str, EventResult]]  # event id -> (body hash, its result)


class Link:
    """One batch's place in its account's chain: where it publishes the state its walk left."""

    def __init__(self) -> None:
        self._walked = threading.Event()
        self._state: State | None = None

    def publish(self, state: State) -> None:
        self._state = state
        self._walked.set()

    def wait(self) -> State | None:
        """The state the batch ahead left, or None if it ended without walking (or took too long)."""
        return self._state if self._walked.wait(WAIT_S) else None

    def close(self) -> None:
        self._walked.set()  # whoever waits goes on (with nothing if nothing was published)


class Chain:
    """One per process: for each target (an engine and an account id or key), the newest batch in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._newest: dict[Hashable, Link] = {}

    def join(self, target: Hashable) -> tuple[Link, Link | None]:
        """A new link for this batch, and the link of the batch ahead of it (None when there is none)."""
        mine = Link()
        with self._lock:
            ahead = self._newest.get(target)
            self._newest[target] = mine
        return mine, ahead

    def leave(self, target: Hashable, link: Link) -> None:
        link.close()
        with self._lock:
            if self._newest.get(target) is link:
                del self._newest[target]
