"""Group commit for usage: concurrent batches for the same account share one transaction.

Every batch of an account takes the account's lock (DESIGN.md: one transaction per account per batch), so
batches for one busy account run one after another whatever the number of threads or processes. Here a
batch that arrives while two others for the same target are being recorded waits for one of them to finish,
then goes in one transaction with every other batch that queued meanwhile: the lock, the reads and the
COMMIT are paid once per group instead of once per request (docs/benchmarks.md, one event per request).

What a caller sees is what it would see had its batch run alone right after the ones before it: its own
results, in its order (an id repeated from a batch earlier in the group reads as a duplicate, exactly as
across two transactions), and the account as the group's transaction left it. A failure of the group's
transaction (a lost connection, an unknown key) is raised to every caller in the group: nothing of it was
recorded. A group holds at most MAX_BATCH events, so it stays within what one batch may hold.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Hashable

from .usage_events import MAX_BATCH, BatchResult, UsageEventIn

Record = Callable[[list[UsageEventIn], datetime], BatchResult]


@dataclass(eq=False)
class _Waiter:
    events: list[UsageEventIn]
    now: datetime
    ready: threading.Event = field(default_factory=threading.Event)
    group: list[_Waiter] | None = None  # set when this caller is to record a group (its own batch first)
    result: BatchResult | None = None
    error: BaseException | None = None


@dataclass(eq=False)
class _Target:
    running: int = 0  # groups being recorded
    queue: list[_Waiter] = field(default_factory=list)


class Coalescer:
    """One per process. `record(target, events, now, fn)` returns what `fn(events, now)` would have returned
    for this caller's events, where `fn` records a batch for the target in one transaction.

    Up to `running` groups of a target are recorded at once (the second waits for the account's lock in
    the database, its statements already sent, so it starts the moment the first commits); a caller
    that finds them all busy queues, and the queue goes as the next group."""

    def __init__(self, running: int = 2) -> None:
        self.max_running = running
        self._lock = threading.Lock()
        self._targets: dict[Hashable, _Target] = {}

    def record(self, target: Hashable, events: list[UsageEventIn], now: datetime, fn: Record) -> BatchResult:
        me = _Waiter(events, now)
        with self._lock:
            state = self._targets.setdefault(target, _Target())
            if state.running < self.max_running:
                state.running += 1
                me.group = [me]
            else:
                state.queue.append(me)
        if me.group is None:
            me.ready.wait()
        if me.group is None:  # another caller recorded this batch in its group
            return _outcome(me)
        group = me.group
        try:
            combined = fn([e for w in group for e in w.events], max(w.now for w in group))
        except BaseException as exc:
            for w in group:
                w.error = exc
        else:
            start = 0
            for w in group:
                w.result = BatchResult(combined.results[start:start + len(w.events)], combined.account)
                start += len(w.events)
        with self._lock:
            if state.queue:  # those that queued meanwhile: the first of them records them as the next group
                after = _take_group(state.queue)
                after[0].group = after
                after[0].ready.set()
            else:
                state.running -= 1
                if not state.running:
                    del self._targets[target]
        for w in group:
            if w is not me:
                w.ready.set()
        return _outcome(me)


def _outcome(w: _Waiter) -> BatchResult:
    if w.error is not None:
        raise w.error
    return w.result


def _take_group(queue: list[_Waiter]) -> list[_Waiter]:
    """The first waiters of the queue (removed from it) whose events fit in one batch; at least one."""
    size, n = 0, 0
    for w in queue:
        if n and size + len(w.events) > MAX_BATCH:
            break
        size, n = size + len(w.events), n + 1
    group = queue[:n]
    del queue[:n]
    return group
