"""Dispatch of due agent schedules: one queued run per schedule and tick, POSTed to the edge's dispatch URL
and signed with the project's HMAC key (docs/dispatch.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .. import notify
from ..cronspec import CronSpec, iter_fire_times, parse_cron
from ..crypto import SecretError
from ..db.engine import read_session, write_session
from ..db.models import Account, Project
from ..db.workloads import Run, Schedule
from ..errors import ServiceError
from .context import Billing
from .journal import Journal
from .projects import reveal_hmac_key
from .views import rfc3339

log = logging.getLogger("billing_core.dispatch")

SIGNATURE_HEADER = "X-Tollgate-Signature"
USER_AGENT = "Tollgate-Dispatch/1"
SEND_TIMEOUT_S = 10.0
BATCH = 500  # schedules read per round
ERROR_MAX = 500
# Where to look for the latest fire time before `now`: the smallest window holding any fire time holds the
# latest one, so a schedule that fired a minute ago costs a couple of fire-time steps, not its whole history.
WINDOWS = (timedelta(minutes=2), timedelta(hours=1), timedelta(days=1), timedelta(days=8), timedelta(days=32),
           timedelta(days=400))


@dataclass(frozen=True)
class DispatchResult:
    schedules_checked: int = 0
    runs_created: int = 0
    dispatched: int = 0
    failed: int = 0

    def summary(self) -> dict:
        return {"schedules": self.schedules_checked, "runs": self.runs_created, "dispatched": self.dispatched,
                "failed": self.failed}


def scheduled_run_id(schedule_id: str, fire_at: datetime) -> str:
    """The same schedule and fire time always name the same run, so two instances cannot make two."""
    return f"run_sched_{schedule_id}_{math.floor(fire_at.timestamp())}"


def _last_fire_from(spec: CronSpec, tz: str, start: datetime, now: datetime) -> datetime | None:
    # Fire times are made one at a time, so a schedule that is not due costs one step, not a batch.
    latest = None
    for fire in iter_fire_times(spec, tz, now=start):
        if fire > now:
            break
        latest = fire
    return latest


def latest_fire_time(cron: str | CronSpec, tz: str, *, after: datetime, now: datetime) -> datetime | None:
    """The last fire time in (after, now], or None: after any downtime, only the latest missed one counts."""
    if now <= after:
        return None
    spec = cron if isinstance(cron, CronSpec) else parse_cron(cron)
    floor = after + timedelta(microseconds=1)  # `after` itself has run already
    for window in WINDOWS:
        start = max(floor, now - window)
        found = _last_fire_from(spec, tz, start, now)
        if found is not None or start == floor:
            return found
    return _last_fire_from(spec, tz, floor, now)


def signature_header(key: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256(key, "<t>." + body)>`, the key being the full hk_live_... text as UTF-8."""
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def dispatch_due_schedules(billing: Billing, now: datetime, *, dispatch_url: str | None,
                           http: httpx.Client) -> DispatchResult:
    """For each enabled schedule of a live project, in an account not suspended, whose cron fired since its
    last run, queue one run (the latest missed fire time only) and POST it to `dispatch_url`; without a URL,
    runs are queued only. A dispatch that fails marks its run failed with the reason. Safe to run twice and
    from two instances."""
    checked = created = dispatched = failed = 0
    after = ""
    while True:
        with read_session(billing.engine) as session:
            # A suspended account's schedules wait: no new work starts for it until an operator resumes it.
            schedules = list(session.execute(
                select(Schedule).join(Project, and_(Project.id == Schedule.project_id, Project.deleted_at.is_(None)))
                .join(Account, and_(Account.id == Schedule.account_id, Account.suspended.is_(False)))
                .where(Schedule.enabled.is_(True), Schedule.id > after).order_by(Schedule.id).limit(BATCH)).scalars())
        if not schedules:
            break
        after = schedules[-1].id
        checked += len(schedules)
        for schedule in schedules:
            try:
                fire = latest_fire_time(schedule.cron, schedule.timezone,
                                        after=schedule.last_run_at or schedule.created_at, now=now)
            except ServiceError as exc:  # stored before a rule changed; the schedule's page shows it
                log.warning("schedule %s cannot be read: %s", schedule.id, exc.message)
                continue
            if fire is None:
                continue
            run_id = _queue_run(billing, schedule, fire, now)
            if run_id is None:
                continue  # another instance took this fire time
            created += 1
            if dispatch_url:
                error = _dispatch(billing, http, dispatch_url, schedule, run_id, fire, now)
                if error is None:
                    dispatched += 1
                else:
                    failed += 1
                    _fail_run(billing, schedule, run_id, error, now)
            notify.account_changed(schedule.account_id)
    return DispatchResult(checked, created, dispatched, failed)


def _queue_run(billing: Billing, schedule: Schedule, fire: datetime, now: datetime) -> str | None:
    """Move the schedule's last_run_at to `fire` and queue its run, in one transaction; None when another
    instance moved it first (the conditional UPDATE matched nothing) or the schedule was disabled meanwhile."""
    run_id = scheduled_run_id(schedule.id, fire)
    with write_session(billing.engine) as session:
        moved = session.execute(
            update(Schedule).where(Schedule.id == schedule.id, Schedule.enabled.is_(True),
                                   or_(Schedule.last_run_at.is_(None), Schedule.last_run_at < fire))
            .values(last_run_at=fire)).rowcount
        if moved != 1:
            return None
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        runs = Run.__table__
        inserted = session.execute(dialect.insert(runs).values(
            id=run_id, account_id=schedule.account_id, project_id=schedule.project_id, agent=schedule.agent,
            status="queued", trigger="schedule", schedule_id=schedule.id, created_at=now,
        ).on_conflict_do_nothing(index_elements=["account_id", "id"]).returning(runs.c.id)).first()
        return run_id if inserted is not None else None


def dispatch_body(schedule: Schedule, run_id: str, fire: datetime) -> bytes:
    return json.dumps({"run_id": run_id, "account_id": schedule.account_id, "project_id": schedule.project_id,
                       "agent": schedule.agent, "schedule_id": schedule.id, "scheduled_for": rfc3339(fire),
                       "payload": json.loads(schedule.payload or "{}")}, separators=(",", ":")).encode()


def _dispatch(billing: Billing, http: httpx.Client, url: str, schedule: Schedule, run_id: str, fire: datetime,
              now: datetime) -> str | None:
    """None when the edge accepted the run (2xx), else the reason to record on the run."""
    try:
        key = reveal_hmac_key(billing, schedule.account_id, schedule.project_id)
    except (ServiceError, SecretError, RuntimeError) as exc:
        return f"not dispatched: the project's HMAC key is unavailable ({getattr(exc, 'message', None) or exc})"
    body = dispatch_body(schedule, run_id, fire)
    headers = {"content-type": "application/json", "user-agent": USER_AGENT, "x-tollgate-run-id": run_id,
               SIGNATURE_HEADER: signature_header(key, math.floor(now.timestamp()), body)}
    try:
        with http.stream("POST", url, content=body, headers=headers, timeout=SEND_TIMEOUT_S,
                         follow_redirects=False) as response:
            if 200 <= response.status_code < 300:
                return None
            return f"dispatch refused: HTTP {response.status_code} from {url}"
    except httpx.HTTPError as exc:
        return f"dispatch failed: {type(exc).__name__}: {str(exc) or 'no answer'}"


def _fail_run(billing: Billing, schedule: Schedule, run_id: str, reason: str, now: datetime) -> None:
    reason = reason[:ERROR_MAX]
    with write_session(billing.engine) as session:
        # Only a run still queued: the edge may have reported it running before answering badly.
        failed = session.execute(update(Run).where(Run.account_id == schedule.account_id, Run.id == run_id,
                                                   Run.status == "queued")
                                 .values(status="failed", error=reason, finished_at=now)).rowcount
        if failed:
            journal = Journal(schedule.account_id, now)
            journal.activity("run_failed", run_id, f"{schedule.agent} run failed: {reason}")
            journal.flush(session)
