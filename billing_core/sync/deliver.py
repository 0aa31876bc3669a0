"""The imperative shell of the edge sync: read the outbox and the desired state, call each target, record.

`sync_once` delivers, per target, the outbox rows after that target's cursor: each distinct item once,
with its value as it is now in the database (or a delete), in batches. A target that fails as a whole
backs off (exponential, full jitter, at least Retry-After) with its cursor unmoved; items it refuses one by
one are retried alone and parked after PARK_AFTER_ATTEMPTS. Every target has its own cursor, backoff and
errors, so a failing target never holds back another. `reconcile` compares everything: see plan_sync.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Callable, Sequence

from sqlalchemy import func, select

from ..db.engine import read_connection
from ..db.operations import OutboxRow
from . import progress
from .desired import load_all, load_values
from .plan import contiguous_end, plan_batch, plan_sync
from .progress import TargetState
from .targets.base import Target, TargetError

log = logging.getLogger("billing_core.sync")

BATCH_SIZE = 1000  # outbox rows per call to a target (KV takes 10,000 pairs a call; D1 100 params a statement)
MAX_BATCHES = 20  # per target per sync_once, so one run drains up to 20,000 rows and then yields
GAP_GRACE_S = 10.0  # how long a gap in outbox ids may be an uncommitted transaction (see contiguous_end)

_outbox = OutboxRow.__table__
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


@dataclass(frozen=True)
class TargetOutcome:
    name: str
    delivered: int = 0  # items written or deleted
    refused: int = 0
    retried: int = 0  # refused items tried again on their own
    skipped: str | None = None  # "backing_off" | "busy"
    error: str | None = None
    reconciled: bool = False


@dataclass(frozen=True)
class SyncResult:
    targets: tuple[TargetOutcome, ...]
    pruned: int = 0

    def summary(self) -> dict:
        return {"delivered": sum(t.delivered for t in self.targets), "refused": sum(t.refused for t in self.targets),
                "pruned": self.pruned, "skipped": [t.name for t in self.targets if t.skipped],
                "errors": {t.name: t.error[:120] for t in self.targets if t.error}}


@dataclass(frozen=True)
class ReconcileOutcome:
    name: str
    upserts: int = 0
    deletes: int = 0
    refused: int = 0  # written or deleted, and refused by the target
    unreadable: int = 0  # not written: a sealed secret no key of this keyring opens
    error: str | None = None


@dataclass(frozen=True)
class ReconcileResult:
    targets: tuple[ReconcileOutcome, ...]

    def summary(self) -> dict:
        return {t.name: {k: v for k, v in asdict(t).items() if k != "name" and v} for t in self.targets}


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, TargetError) else f"{type(exc).__name__}: {exc}"


def sync_once(billing, targets: Sequence[Target], now: datetime, *, batch_size: int = BATCH_SIZE,
              max_batches: int = MAX_BATCHES, rand: Callable[[], float] = random.random) -> SyncResult:
    """Deliver what changed to every target, retry refused items that are due, prune delivered rows."""
    outcomes = []
    for target in targets:
        lock = _lock(target.name)
        if not lock.acquire(blocking=False):
            outcomes.append(TargetOutcome(target.name, skipped="busy"))  # another thread of this process
            continue
        try:
            outcomes.append(_sync_target(billing, target, now, batch_size, max_batches, rand))
        except Exception as exc:  # a database error or a bug: recorded, and the next target still runs
            log.warning("edge sync: target %s failed: %s", target.name, _message(exc), exc_info=True)
            outcomes.append(TargetOutcome(target.name, error=_message(exc)))
        finally:
            lock.release()
    return SyncResult(tuple(outcomes), _prune(billing, targets))


def _prune(billing, targets: Sequence[Target]) -> int:
    """Prune while holding every target's lock: a reconciliation choosing its cursor in another thread must
    not see rows vanish between reading the outbox and writing the cursor (it would make a gap that holds
    the sync for the gap grace). A busy target means: prune at the next run."""
    held: list[threading.Lock] = []
    try:
        for name in sorted({t.name for t in targets}):
            lock = _lock(name)
            if not lock.acquire(blocking=False):
                return 0
            held.append(lock)
        return progress.prune(billing.engine, [t.name for t in targets])
    finally:
        for lock in held:
            lock.release()


def _fail(billing, state: TargetState, now: datetime, exc: Exception, rand) -> str:
    message = _message(exc)
    retry_after = exc.retry_after_s if isinstance(exc, TargetError) else None
    at = progress.record_failure(billing.engine, state, now, message, retry_after_s=retry_after, rand=rand)
    log.warning("edge sync: %s failed (attempt %d), next try at %s: %s", state.name, state.attempts + 1,
                at.isoformat(), message)
    return message


def _sync_target(billing, target: Target, now: datetime, batch_size: int, max_batches: int, rand) -> TargetOutcome:
    engine, name = billing.engine, target.name
    state = progress.load_state(engine, name, now)
    if state.next_attempt_at is not None and state.next_attempt_at > now:
        return TargetOutcome(name, skipped="backing_off")
    reconciled = False
    delivered = refused = 0
    if state.last_reconciled_at is None:
        # A new target starts from the whole desired state: the outbox may have been pruned long ago.
        done = _reconcile_target(billing, target, now, state, rand)
        if done.error:
            return TargetOutcome(name, error=done.error)
        reconciled = True
        delivered, refused = done.upserts + done.deletes - done.refused, done.refused + done.unreadable
        state = progress.load_state(engine, name, now)
    for _ in range(max_batches):
        with read_connection(engine) as conn:
            rows = conn.execute(select(_outbox.c.id, _outbox.c.item, _outbox.c.created_at)
                                .where(_outbox.c.id > state.cursor).order_by(_outbox.c.id).limit(batch_size)).all()
            end = contiguous_end(state.cursor, [(r.id, (now - r.created_at).total_seconds()) for r in rows],
                                 gap_grace_s=GAP_GRACE_S)
            if end == state.cursor:
                break  # nothing new, or only rows behind a gap that may still fill
            items = [r.item for r in rows if r.id <= end]
            plan = plan_batch(items, load_values(conn, items, now=now, catalog=billing.catalog,
                                                 keyring=billing.keyring))
            known = progress.failures_of(conn, name, plan.items)
        try:
            rejected = {**target.apply(dict(plan.upserts), list(plan.deletes)), **plan.unreadable}
        except Exception as exc:
            return TargetOutcome(name, delivered, refused, error=_fail(billing, state, now, exc, rand),
                                 reconciled=reconciled)
        if not progress.record_delivery(engine, state, now, new_cursor=end, delivered=plan.items, refused=rejected,
                                        known=known, rand=rand):
            break  # the cursor moved under us (a reconciliation): the next run starts from where it is
        delivered += len(plan) - len(rejected)
        refused += len(rejected)
        state = TargetState(name, end, 0, None, state.last_reconciled_at)
        if len(rows) < batch_size or end != rows[-1].id:
            break
    retried, still_refused = _retry_failures(billing, target, now, batch_size, rand)
    return TargetOutcome(name, delivered + retried - still_refused, refused + still_refused, retried,
                         reconciled=reconciled)


def _retry_failures(billing, target: Target, now: datetime, limit: int, rand) -> tuple[int, int]:
    """Items refused earlier whose retry is due, on their own; a whole failure here backs the target off."""
    engine = billing.engine
    due = progress.due_failures(engine, target.name, now, limit)
    if not due:
        return 0, 0
    with read_connection(engine) as conn:
        plan = plan_batch(list(due), load_values(conn, list(due), now=now, catalog=billing.catalog,
                                                 keyring=billing.keyring))
    state = progress.load_state(engine, target.name, now)
    try:
        rejected = {**target.apply(dict(plan.upserts), list(plan.deletes)), **plan.unreadable}
    except Exception as exc:
        _fail(billing, state, now, exc, rand)
        return 0, 0
    progress.record_delivery(engine, state, now, new_cursor=None, delivered=plan.items, refused=rejected,
                             known=due, rand=rand)
    return len(plan), len(rejected)


def reconcile(billing, targets: Sequence[Target], now: datetime, *,
              rand: Callable[[], float] = random.random) -> ReconcileResult:
    """Make every target hold exactly the desired state: write what differs or is missing, delete extras."""
    outcomes = []
    for target in targets:
        with _lock(target.name):
            try:
                state = progress.load_state(billing.engine, target.name, now)
                outcomes.append(_reconcile_target(billing, target, now, state, rand))
            except Exception as exc:
                log.warning("edge sync: reconciliation of %s failed: %s", target.name, _message(exc), exc_info=True)
                outcomes.append(ReconcileOutcome(target.name, error=_message(exc)))
    return ReconcileResult(tuple(outcomes))


def _reconcile_target(billing, target: Target, now: datetime, state: TargetState, rand) -> ReconcileOutcome:
    engine = billing.engine
    with read_connection(engine) as conn:
        # Rows up to `floor` are committed and inside the desired state read next; later ones may not be,
        # so the cursor is brought back to `floor` and they are delivered again (a no-op when unchanged).
        floor = progress.settled_floor(conn, now, GAP_GRACE_S, state.cursor)
        desired = load_all(conn, now=now, catalog=billing.catalog, keyring=billing.keyring)
        known = progress.failures_of(conn, target.name)
    try:
        plan = plan_sync(desired, target.dump())
        rejected = {**(target.apply(dict(plan.upserts), list(plan.deletes)) if plan.writes else {}),
                    **plan.unreadable}
    except Exception as exc:
        return ReconcileOutcome(target.name, error=_fail(billing, state, now, exc, rand))
    for _ in range(3):
        first = state.last_reconciled_at is None
        new_cursor = floor if first else min(state.cursor, floor)
        # Rows a concurrent sync delivered and pruned since `floor` was read are gone: going back below the
        # oldest row left would look like a gap (a transaction still committing) and hold the sync for the
        # gap grace. Every id below the oldest row left is at or below this target's cursor, so already
        # passed by it: nothing is skipped by staying at or above it.
        with read_connection(engine) as conn:
            oldest = conn.execute(select(func.min(_outbox.c.id))).scalar()
        if oldest is not None:
            new_cursor = max(new_cursor, min(state.cursor, oldest - 1))
        if progress.record_delivery(engine, state, now, new_cursor=new_cursor, delivered=plan.items, refused=rejected,
                                    known=known, rand=rand, reconciled=True, clear_all_failures=True):
            break
        state = progress.load_state(engine, target.name, now)
    return ReconcileOutcome(target.name, len(plan.upserts), len(plan.deletes), len(rejected) - len(plan.unreadable),
                            len(plan.unreadable))
