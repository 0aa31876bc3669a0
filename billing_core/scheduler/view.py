"""What operators see of the scheduled work (/admin and /api/health): the leader and its last tick, each
job's last run, and per edge target its backlog, lag, last success, failures and parked items."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from sqlalchemy import Engine, func, select

from ..db.engine import read_connection
from ..db.operations import JobState, SyncFailure
from ..services.context import Billing
from . import lease
from .jobs import Job

log = logging.getLogger("billing_core.scheduler")

PARKED_SHOWN = 50  # the operator page lists at most this many parked items (oldest first); counts are exact


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, as the API writes times."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class SchedulerStatus:
    leader: str | None  # None while nobody holds a running lease
    holder: str | None  # the last instance that held it, leading or not
    lease_expires_at: datetime | None
    last_tick_at: datetime | None

    def to_dict(self) -> dict:
        """The /api/health shape."""
        return {"leader": self.leader, "lease_expires_at": iso(self.lease_expires_at),
                "last_tick_at": iso(self.last_tick_at)}


@dataclass(frozen=True)
class JobView:
    name: str
    schedule: str  # "every 60 s", "cron 0 3 * * * (UTC)"; "" for a job no longer registered
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_ok_at: datetime | None = None
    last_error: str | None = None
    summary: dict = field(default_factory=dict)
    runs: int = 0
    holder: str = ""

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("last_started_at", "last_finished_at", "last_ok_at"):
            data[key] = iso(data[key])
        return data


@dataclass(frozen=True)
class ParkedItem:
    target: str
    item: str  # "key:<sha256>", "account:<id>", "project:<id>"
    attempts: int
    first_failed_at: datetime
    parked_at: datetime
    last_error: str


@dataclass(frozen=True)
class OperatorView:
    now: datetime
    scheduler: SchedulerStatus
    jobs: list[JobView]
    targets: list[dict]  # TargetStatus.to_dict() per configured target
    parked: list[ParkedItem]  # at most PARKED_SHOWN, oldest first
    sync_error: str | None = None  # why target status could not be read, when it could not


def scheduler_status(engine: Engine, now: datetime) -> SchedulerStatus:
    view = lease.leader(engine)
    return SchedulerStatus(view.leader(now), view.holder, view.expires_at, view.last_tick_at)


def _summary(text: str) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}


def job_views(engine: Engine, jobs: Sequence[Job]) -> list[JobView]:
    """The registered jobs in their order, then any other job that has a row (one since unregistered)."""
    with read_connection(engine) as conn:
        rows = {row.name: row for row in conn.execute(select(JobState))}
    views = []
    for name, schedule in [(job.name, job.schedule) for job in jobs] + \
            [(name, "") for name in sorted(rows) if name not in {job.name for job in jobs}]:
        row = rows.get(name)
        if row is None:
            views.append(JobView(name, schedule))
            continue
        views.append(JobView(name, schedule, row.last_started_at, row.last_finished_at, row.last_ok_at,
                             row.last_error, _summary(row.last_summary), int(row.runs), row.holder))
    return views


def target_statuses(billing: Billing, now: datetime, names: Sequence[str]) -> list[dict]:
    """Per target: backlog, lag_s, last_success_at, last_error, parked, failing, last_reconciled_at."""
    from ..sync.status import target_status  # the sync package's own reading of its tables

    return [status.to_dict() for status in target_status(billing, now, list(names))]


def parked_items(engine: Engine, *, limit: int = PARKED_SHOWN) -> tuple[list[ParkedItem], int]:
    """The oldest parked items (at most `limit`) and how many there are in all."""
    t = SyncFailure
    with read_connection(engine) as conn:
        total = conn.execute(select(func.count()).select_from(t).where(t.parked_at.is_not(None))).scalar_one()
        rows = conn.execute(select(t).where(t.parked_at.is_not(None))
                            .order_by(t.parked_at, t.target, t.item).limit(limit)).all()
    return [ParkedItem(r.target, r.item, int(r.attempts), r.first_failed_at, r.parked_at, r.last_error)
            for r in rows], int(total)


def operator_view(billing: Billing, now: datetime, jobs: Sequence[Job], target_names: Sequence[str], *,
                  parked_limit: int = PARKED_SHOWN) -> OperatorView:
    """Everything /admin shows, read at `now`. A failure to read the sync's status is reported in the view
    (`sync_error`) rather than hiding the scheduler's part."""
    targets, sync_error = [], None
    try:
        targets = target_statuses(billing, now, target_names)
    except Exception as exc:
        log.warning("admin: could not read the edge targets' status", exc_info=True)
        sync_error = f"{type(exc).__name__}: {exc}"[:300]
    parked, _ = parked_items(billing.engine, limit=parked_limit)
    return OperatorView(now, scheduler_status(billing.engine, now), job_views(billing.engine, jobs), targets,
                        parked, sync_error)
