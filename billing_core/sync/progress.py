"""The sync's own bookkeeping in the database: each target's cursor and backoff, refused items, pruning.

Every function here is one short transaction; none is held open while a target is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable, Mapping, Sequence

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..db.engine import read_connection, write_connection
from ..db.operations import OutboxRow, SyncFailure, SyncTarget
from .plan import backoff_s, chunks

_targets, _failures, _outbox = SyncTarget.__table__, SyncFailure.__table__, OutboxRow.__table__

BATCH_BACKOFF_BASE_S, BATCH_BACKOFF_CAP_S = 1.0, 300.0
ITEM_BACKOFF_BASE_S, ITEM_BACKOFF_CAP_S = 5.0, 900.0
PARK_AFTER_ATTEMPTS = 8  # an item refused this many times in a row is parked (~30 min of retries)
PRUNE_CHUNK = 50_000
ERROR_MAX = 500


@dataclass(frozen=True)
class TargetState:
    name: str
    cursor: int
    attempts: int
    next_attempt_at: datetime | None
    last_reconciled_at: datetime | None


@dataclass(frozen=True)
class Failure:
    attempts: int
    parked: bool


def load_state(engine, name: str, now: datetime) -> TargetState:
    """The target's row, created (cursor 0, never reconciled) the first time the target is seen."""
    with read_connection(engine) as conn:
        row = conn.execute(select(_targets).where(_targets.c.name == name)).first()
    if row is None:
        try:
            with write_connection(engine) as conn:
                conn.execute(insert(_targets).values(name=name, cursor=0, attempts=0, delivered=0))
        except IntegrityError:
            pass  # another instance made it first
        return load_state(engine, name, now)
    return TargetState(row.name, row.cursor, row.attempts, row.next_attempt_at, row.last_reconciled_at)


def failures_of(conn, name: str, items: Iterable[str] | None = None) -> dict[str, Failure]:
    stmt = select(_failures.c.item, _failures.c.attempts, _failures.c.parked_at).where(_failures.c.target == name)
    out: dict[str, Failure] = {}
    if items is None:
        rows = conn.execute(stmt)
    elif conn.execute(select(_failures.c.item).where(_failures.c.target == name).limit(1)).first() is None:
        return out  # the usual case: nothing refused, so no lookup by item
    else:
        rows = [r for part in chunks(list(items), 500) for r in conn.execute(stmt.where(_failures.c.item.in_(part)))]
    for item, attempts, parked_at in rows:
        out[item] = Failure(attempts, parked_at is not None)
    return out


def due_failures(engine, name: str, now: datetime, limit: int) -> dict[str, Failure]:
    with read_connection(engine) as conn:
        rows = conn.execute(select(_failures.c.item, _failures.c.attempts).where(
            _failures.c.target == name, _failures.c.parked_at.is_(None), _failures.c.next_attempt_at <= now)
            .order_by(_failures.c.next_attempt_at).limit(limit))
        return {item: Failure(attempts, False) for item, attempts in rows}


def record_failure(engine, state: TargetState, now: datetime, error: str, *, retry_after_s: float | None,
                   rand: Callable[[], float]) -> datetime:
    """The batch failed as a whole: back off (at least Retry-After), keep the cursor. Returns when to retry."""
    attempts = state.attempts + 1
    delay = backoff_s(attempts, base=BATCH_BACKOFF_BASE_S, cap=BATCH_BACKOFF_CAP_S, rand=rand)
    delay = max(delay, retry_after_s or 0.0)
    at = now + timedelta(seconds=delay)
    with write_connection(engine) as conn:
        conn.execute(update(_targets).where(_targets.c.name == state.name).values(
            attempts=attempts, next_attempt_at=at, last_attempt_at=now, last_error=error[:ERROR_MAX]))
    return at


def record_delivery(engine, state: TargetState, now: datetime, *, new_cursor: int | None, delivered: Sequence[str],
                    refused: Mapping[str, str], known: Mapping[str, Failure], rand: Callable[[], float],
                    reconciled: bool = False, clear_all_failures: bool = False) -> bool:
    """A batch went through: move the cursor (only if nobody moved it meanwhile: False then), clear the
    failures of the items delivered, and count, retry later or park the refused ones."""
    values = dict(attempts=0, next_attempt_at=None, last_attempt_at=now, last_success_at=now, last_error=None,
                  delivered=_targets.c.delivered + max(0, len(delivered) - len(refused)))
    if new_cursor is not None:
        values["cursor"] = new_cursor
    if reconciled:
        values["last_reconciled_at"] = now
    with write_connection(engine) as conn:
        moved = conn.execute(update(_targets).where(_targets.c.name == state.name,
                                                    _targets.c.cursor == state.cursor).values(**values)).rowcount
        if not moved:
            return False  # nothing was written; the caller reads the target's row again
        if clear_all_failures:
            stmt = delete(_failures).where(_failures.c.target == state.name)
            conn.execute(stmt.where(_failures.c.item.not_in(list(refused))) if refused else stmt)
        else:
            done = [item for item in delivered if item in known and item not in refused]
            for part in chunks(done, 500):
                conn.execute(delete(_failures).where(_failures.c.target == state.name, _failures.c.item.in_(part)))
        for item, reason in refused.items():
            _count_refusal(conn, state.name, item, reason, known.get(item), now, rand)
    return True


def _count_refusal(conn, name: str, item: str, reason: str, before: Failure | None, now: datetime,
                   rand: Callable[[], float]) -> None:
    # A parked item that comes back (it changed again) starts a fresh series of attempts.
    attempts = 1 if before is None or before.parked else before.attempts + 1
    delay = backoff_s(attempts, base=ITEM_BACKOFF_BASE_S, cap=ITEM_BACKOFF_CAP_S, rand=rand)
    values = dict(attempts=attempts, next_attempt_at=now + timedelta(seconds=delay), last_error=reason[:ERROR_MAX],
                  parked_at=now if attempts >= PARK_AFTER_ATTEMPTS else None)
    if before is None:
        conn.execute(insert(_failures).values(target=name, item=item, first_failed_at=now, **values))
    else:
        conn.execute(update(_failures).where(_failures.c.target == name, _failures.c.item == item).values(**values))


def settled_floor(conn, now: datetime, grace_s: float, cursor: int) -> int:
    """The highest outbox id below which every row is surely committed or gone: the last row older than
    the gap grace; without one, just below the oldest row left; with an empty outbox, the cursor."""
    settled = conn.execute(select(func.max(_outbox.c.id)).where(
        _outbox.c.created_at <= now - timedelta(seconds=grace_s))).scalar()
    if settled is not None:
        return settled
    oldest = conn.execute(select(func.min(_outbox.c.id))).scalar()
    return oldest - 1 if oldest is not None else cursor


def prune(engine, names: Sequence[str]) -> int:
    """Delete outbox rows every configured target has passed. The row at the lowest cursor stays: SQLite
    gives a new row max(id) + 1, and an emptied table would hand out ids below the cursors again."""
    with read_connection(engine) as conn:
        cursors = {name: cursor for name, cursor in conn.execute(
            select(_targets.c.name, _targets.c.cursor).where(_targets.c.name.in_(list(names))))} if names else {}
        oldest, newest = conn.execute(select(func.min(_outbox.c.id), func.max(_outbox.c.id))).one()
    if oldest is None:
        return 0
    if names:
        if len(cursors) < len(names):
            return 0  # a target not yet started still needs every row
        upto = min(cursors.values())
    else:
        upto = newest  # no target at all: nothing will ever read them
    removed = 0
    while oldest < upto:
        stop = min(upto, oldest + PRUNE_CHUNK)
        with write_connection(engine) as conn:
            removed += conn.execute(delete(_outbox).where(_outbox.c.id < stop)).rowcount
        oldest = stop
    return removed
