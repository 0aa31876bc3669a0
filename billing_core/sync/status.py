"""Per-target progress of the edge sync, for /admin and /api/health: backlog, lag, failures."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Sequence

from sqlalchemy import func, select

from ..db.engine import read_session
from ..db.operations import OutboxRow, SyncFailure, SyncTarget
from .plan import UNREADABLE


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True)
class TargetStatus:
    name: str
    backlog: int  # outbox rows not yet delivered to this target
    lag_s: float  # age of the oldest of them; 0 when there is none
    last_success_at: datetime | None
    last_error: str | None  # of the last failed attempt; None once a batch went through again
    parked: int  # items given up on until they change again or the reconciliation delivers them
    failing: int  # items refused and still being retried
    unreadable: int  # of the parked and failing, items held back because a sealed secret does not open here
    last_reconciled_at: datetime | None
    attempts: int = 0  # consecutive failed attempts of the whole batch
    next_attempt_at: datetime | None = None  # while backing off

    def to_dict(self) -> dict:
        out = asdict(self)
        for name in ("last_success_at", "last_reconciled_at", "next_attempt_at"):
            out[name] = _iso(out[name])
        out["lag_s"] = round(self.lag_s, 3)
        return out


def target_status(billing, now: datetime, names: Sequence[str]) -> list[TargetStatus]:
    """One status per configured target name, in the order given (a target never synced has cursor 0)."""
    out = []
    with read_session(billing.engine) as session:
        rows = {t.name: t for t in session.execute(select(SyncTarget).where(SyncTarget.name.in_(list(names))))
                .scalars()} if names else {}
        failures = dict.fromkeys(names, (0, 0))
        for target, parked, count in session.execute(
                select(SyncFailure.target, SyncFailure.parked_at.is_not(None), func.count())
                .where(SyncFailure.target.in_(list(names))).group_by(SyncFailure.target,
                                                                      SyncFailure.parked_at.is_not(None))):
            p, f = failures[target]
            failures[target] = (p + count, f) if parked else (p, f + count)
        unreadable = dict(session.execute(
            select(SyncFailure.target, func.count()).where(SyncFailure.target.in_(list(names)),
                                                           SyncFailure.last_error.startswith(UNREADABLE))
            .group_by(SyncFailure.target)).all()) if names else {}
        for name in names:
            row = rows.get(name)
            cursor = row.cursor if row else 0
            backlog, oldest = session.execute(select(func.count(), func.min(OutboxRow.created_at))
                                              .where(OutboxRow.id > cursor)).one()
            lag = max(0.0, (now - oldest).total_seconds()) if backlog and oldest else 0.0
            parked, failing = failures[name]
            out.append(TargetStatus(
                name=name, backlog=backlog, lag_s=lag,
                last_success_at=row.last_success_at if row else None,
                last_error=row.last_error if row else None, parked=parked, failing=failing,
                unreadable=unreadable.get(name, 0),
                last_reconciled_at=row.last_reconciled_at if row else None,
                attempts=row.attempts if row else 0,
                next_attempt_at=row.next_attempt_at if row and row.next_attempt_at and row.next_attempt_at > now
                else None))
    return out
