"""Run the jobs that are due, recording each run in job_states.

Due-ness comes from the database, not from this process's memory, so a new leader picks up where the
old one stopped. Before a job runs, its row is claimed with a compare-and-set on `last_started_at`: of
two instances that both find a job due (a leader whose lease lapsed during a long run, and the one that
took over), only one runs it. A job that raises is recorded with its error and never stops the others.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..db.engine import read_connection, write_connection
from ..db.operations import JobState
from ..services.context import Billing
from .jobs import Job

log = logging.getLogger("billing_core.scheduler")

SUMMARY_MAX_CHARS = 500  # the columns' widths
ERROR_MAX_CHARS = 500


@dataclass(frozen=True)
class JobRun:
    """One run: the job, when it started (the `now` it was given), what it did, or why it failed."""

    job: Job
    started_at: datetime
    summary: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class _Seen:
    last_started_at: datetime | None
    last_error: str | None


def short_json(summary: dict) -> str:
    """The summary as compact JSON of at most SUMMARY_MAX_CHARS: whole entries only, so it stays valid
    JSON, with "more": true when some were left out."""
    text = json.dumps(summary, separators=(",", ":"), default=str, sort_keys=False)
    if len(text) <= SUMMARY_MAX_CHARS:
        return text
    kept: dict = {}
    for key, value in summary.items():
        trial = {**kept, key: value, "more": True}
        if len(json.dumps(trial, separators=(",", ":"), default=str)) > SUMMARY_MAX_CHARS:
            continue
        kept[key] = value
    return json.dumps({**kept, "more": True}, separators=(",", ":"), default=str)


def error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"


def _seen(engine: Engine, names: Sequence[str]) -> dict[str, _Seen]:
    t = JobState
    with read_connection(engine) as conn:
        rows = conn.execute(select(t.name, t.last_started_at, t.last_error).where(t.name.in_(list(names))))
        return {row.name: _Seen(row.last_started_at, row.last_error) for row in rows}


def _claim(engine: Engine, name: str, holder: str, now: datetime, seen: _Seen | None, *, manual: bool) -> bool:
    """Record the start; False when another instance started the job since we read its row. A manual
    run (`tollgate admin tick`) claims unconditionally: the operator asked for it."""
    t = JobState
    where = [t.name == name]
    if not manual:
        last = seen.last_started_at if seen else None
        where.append(t.last_started_at.is_(None) if last is None else t.last_started_at == last)
    values = {"last_started_at": now, "holder": holder, "runs": t.runs + 1}
    with write_connection(engine) as conn:
        if conn.execute(update(t).where(*where).values(**values)).rowcount:
            return True
        if conn.execute(select(t.name).where(t.name == name)).first() is not None:
            return False  # the row exists and moved on: another instance has this run
    try:
        with write_connection(engine) as conn:
            conn.execute(insert(t).values(name=name, last_started_at=now, holder=holder, runs=1, last_summary=""))
        return True
    except IntegrityError:
        if not manual:
            return False
    with write_connection(engine) as conn:  # a manual run that lost the insert race still runs
        return bool(conn.execute(update(t).where(t.name == name).values(**values)).rowcount)


def _finish(engine: Engine, name: str, started_at: datetime, finished_at: datetime, summary: dict,
            error: str | None) -> None:
    t = JobState
    values = {"last_finished_at": finished_at, "last_summary": short_json(summary), "last_error": error}
    if error is None:
        values["last_ok_at"] = finished_at
    with write_connection(engine) as conn:
        # Only if nobody started the job again meanwhile: the row describes the latest run.
        conn.execute(update(t).where(t.name == name, t.last_started_at == started_at).values(**values))


def run_due(billing: Billing, jobs: Sequence[Job], now: datetime, holder: str, *, manual: bool = False,
            forced: Collection[str] = (), slack_s: float = 0.0,
            clock: Callable[[], datetime] | None = None) -> list[JobRun]:
    """Run, in order, each job due at `now`; returns the runs, failed ones included.

    `manual` (the operator's tick): interval jobs always run, since each finds for itself the work due at
    `now`; cron jobs run when a fire time has passed. `forced`: names to run whatever their schedule.
    `slack_s`: how early an interval job may run (the live ticker's jitter). `clock` gives the finish
    time (default: `now`, so a tick at a chosen time records that time)."""
    seen = _seen(billing.engine, [job.name for job in jobs])
    runs: list[JobRun] = []
    for job in jobs:
        state = seen.get(job.name)
        last = state.last_started_at if state else None
        due = (job.name in forced or (manual and job.every_s is not None)
               or job.is_due(last, now, slack_s=slack_s))
        if not due or not _claim(billing.engine, job.name, holder, now, state, manual=manual):
            continue
        summary, error = {}, None
        try:
            summary = job.run(now) or {}
        except Exception as exc:  # a failing job is recorded and the next one runs
            error = error_text(exc)
            if state is None or state.last_error != error:
                log.error("scheduler: job %s failed at %s", job.name, now.isoformat(), exc_info=True)
            else:  # the same failure as last time: already reported
                log.debug("scheduler: job %s failed again: %s", job.name, error)
        _finish(billing.engine, job.name, now, clock() if clock else now, summary, error)
        runs.append(JobRun(job, now, summary, error))
    return runs
