"""Agent runs: reported by the edge or created with an account key; cost and duration come from usage."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from .. import notify
from ..db.engine import is_sqlite, read_session, write_session
from ..db.models import Project, UsageEvent
from ..db.workloads import Run, Schedule
from ..errors import Conflict, Invalid, NotFound
from ..ids import new_id
from .context import Billing
from .journal import Journal
from .paging import Page, decode_cursor, paginate
from .views import rfc3339

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = frozenset({"succeeded", "failed", "cancelled"})
NEXT_STATUSES = {"queued": ("running", "cancelled"), "running": ("succeeded", "failed", "cancelled")}
TRIGGERS = ("manual", "schedule", "api")
AGENT_MAX, ERROR_MAX = 100, 500
# Run ids travel in URL paths and in usage events, so they keep to characters a path carries as is.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:@+=~-]{1,128}$")
RUN_ID_RULE = "1 to 128 of the characters A-Z a-z 0-9 . _ : @ + = ~ -"
# The ids this app issues (accounts, projects, schedules); anything else is unknown without a query.
ISSUED_ID_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,40}$")
NO_RUN, NO_PROJECT = "No such run.", "No such project."


# -- checks shared with schedules ---------------------------------------------------------------
def is_issued_id(value: object) -> bool:
    return isinstance(value, str) and ISSUED_ID_PATTERN.match(value) is not None


def is_run_id(value: object) -> bool:
    return isinstance(value, str) and RUN_ID_PATTERN.match(value) is not None


def clean_text(value: object, field: str, max_chars: int, *, multiline: bool = False) -> str:
    """Trimmed text of 1 to `max_chars` characters; control characters and lone surrogates are refused,
    since PostgreSQL cannot store a NUL and UTF-8 cannot carry a surrogate."""
    text = value.strip() if isinstance(value, str) else ""
    allowed = ("\n", "\t") if multiline else ()
    if not 1 <= len(text) <= max_chars or any(
            unicodedata.category(c) in ("Cc", "Cs") and c not in allowed for c in text):
        raise Invalid(f"{field}: 1 to {max_chars} characters, without control characters.",
                      code=f"invalid_{field}")
    return text


def live_project(session: Session, account_id: str, project_id: object) -> Project:
    """The account's project, not deleted; another account's is as unknown as one never issued."""
    if not (is_issued_id(project_id) and is_issued_id(account_id)):
        raise NotFound(NO_PROJECT)
    project = session.execute(select(Project).where(
        Project.id == project_id, Project.account_id == account_id, Project.deleted_at.is_(None))).scalar_one_or_none()
    if project is None:
        raise NotFound(NO_PROJECT)
    return project


def checked_cursor(cursor: str | None, id_ok) -> str | None:
    """The cursor when it could have come from this API; a forged one must not reach SQL as a bad value."""
    if not cursor:
        return None
    created, row_id = decode_cursor(cursor)
    try:
        created.astimezone(timezone.utc)  # what the column does with it; year 1 at +14:00 overflows
    except (OverflowError, ValueError):
        created = None
    if created is None or created.tzinfo is None or not id_ok(row_id):
        raise Invalid("The cursor is not one this API gave out.", code="invalid_cursor")
    return cursor


# -- views ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Drawdown:
    allowance_ms: int = 0
    pool_ms: int = 0
    credit_micros: int = 0
    overage_micros: int = 0
    debt_micros: int = 0

    @property
    def cost_micros(self) -> int:
        return self.credit_micros + self.overage_micros + self.debt_micros


@dataclass(frozen=True)
class RunView:
    id: str
    project_id: str
    agent: str
    status: str
    trigger: str
    schedule_id: str | None
    error: str | None
    started_at: str | None
    finished_at: str | None
    created_at: str
    duration_ms: int
    cost_micros: int
    drawdown: dict | None = None  # only where one run is shown

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.drawdown is None:
            del out["drawdown"]
        return out


def _time(value: datetime | None) -> str | None:
    return rfc3339(value) if value else None


def run_view(run: Run, usage: tuple[int, Drawdown], *, with_drawdown: bool) -> RunView:
    duration_ms, drawdown = usage
    return RunView(id=run.id, project_id=run.project_id, agent=run.agent, status=run.status, trigger=run.trigger,
                   schedule_id=run.schedule_id, error=run.error, started_at=_time(run.started_at),
                   finished_at=_time(run.finished_at), created_at=rfc3339(run.created_at), duration_ms=duration_ms,
                   cost_micros=drawdown.cost_micros, drawdown=asdict(drawdown) if with_drawdown else None)


def usage_by_run(session: Session, account_id: str, run_ids: list[str]) -> dict[str, tuple[int, Drawdown]]:
    """Compute time and drawdown of each run, summed over its usage events in one grouped query."""
    if not run_ids:
        return {}
    ue = UsageEvent
    stmt = (select(ue.run_id, func.sum(case((ue.kind == "compute", ue.duration_ms), else_=0)),
                   func.sum(ue.allowance_ms), func.sum(ue.pool_ms), func.sum(ue.credit_micros),
                   func.sum(ue.overage_micros), func.sum(ue.debt_micros))
            .where(ue.account_id == account_id, ue.run_id.in_(run_ids)).group_by(ue.run_id))
    # PostgreSQL sums BIGINT as NUMERIC, which arrives as Decimal; the amounts are whole, so int() is exact.
    return {run_id: (int(ms), Drawdown(*(int(v) for v in sums)))
            for run_id, ms, *sums in session.execute(stmt)}


def _view(session: Session, run: Run) -> RunView:
    usage = usage_by_run(session, run.account_id, [run.id]).get(run.id, (0, Drawdown()))
    return run_view(run, usage, with_drawdown=True)


def _owned_run(session: Session, account_id: str, run_id: object, *, lock: bool = False) -> Run:
    if not (is_run_id(run_id) and is_issued_id(account_id)):
        raise NotFound(NO_RUN)
    stmt = select(Run).where(Run.id == run_id, Run.account_id == account_id)
    if lock and not is_sqlite(session.get_bind()):
        stmt = stmt.with_for_update()  # SQLite's write transaction already holds the database lock
    run = session.execute(stmt).scalar_one_or_none()
    if run is None:
        raise NotFound(NO_RUN)
    return run


# -- services -------------------------------------------------------------------------------------
def get_run(billing: Billing, account_id: str, run_id: str) -> RunView:
    with read_session(billing.engine) as session:
        return _view(session, _owned_run(session, account_id, run_id))


def list_runs(billing: Billing, account_id: str, *, limit: int, cursor: str | None = None,
              project_id: str | None = None, status: str | None = None, agent: str | None = None) -> Page[RunView]:
    """Newest first; filters narrow the page, and every run's usage comes from one grouped query."""
    cursor = checked_cursor(cursor, is_run_id)
    if status is not None and status not in STATUSES:
        raise Invalid(f"status: one of {', '.join(STATUSES)}.", code="invalid_status")
    if not is_issued_id(account_id) or (project_id is not None and not is_issued_id(project_id)):
        return Page([], None)  # no such account or project can have runs
    if agent is not None:
        agent = clean_text(agent, "agent", AGENT_MAX)
    stmt = select(Run).where(Run.account_id == account_id)
    for column, value in ((Run.project_id, project_id), (Run.status, status), (Run.agent, agent)):
        if value is not None:
            stmt = stmt.where(column == value)
    with read_session(billing.engine) as session:
        page = paginate(session, stmt, Run, limit=limit, cursor=cursor)
        usage = usage_by_run(session, account_id, [run.id for run in page.items])
    return Page([run_view(run, usage.get(run.id, (0, Drawdown())), with_drawdown=False) for run in page.items],
                page.next_cursor)


@dataclass(frozen=True)
class NewRun:
    project_id: str
    agent: str
    id: str | None = None  # the edge's own id, which its usage events carry; generated when absent
    trigger: str = "api"
    schedule_id: str | None = None


@notify.after_commit
def create_run(billing: Billing, account_id: str, new: NewRun, *, now: datetime) -> tuple[RunView, bool]:
    """The run and whether it was created; the same id and details again returns the run unchanged."""
    if new.id is not None and not is_run_id(new.id):
        raise Invalid(f"id: {RUN_ID_RULE}.", code="invalid_id")
    agent = clean_text(new.agent, "agent", AGENT_MAX)
    if new.trigger not in TRIGGERS:
        raise Invalid(f"trigger: one of {', '.join(TRIGGERS)}.", code="invalid_trigger")
    if new.schedule_id is not None and new.trigger != "schedule":
        raise Invalid("schedule_id: only a run with trigger 'schedule' names a schedule.", code="invalid_schedule")
    try:
        return _create_once(billing, account_id, new, agent, now)
    except IntegrityError:
        # Another request inserted the same id between our look and our insert; now it is there to compare.
        return _create_once(billing, account_id, new, agent, now)


def _create_once(billing: Billing, account_id: str, new: NewRun, agent: str,
                 now: datetime) -> tuple[RunView, bool]:
    with write_session(billing.engine) as session:
        live_project(session, account_id, new.project_id)
        if new.schedule_id is not None and (not is_issued_id(new.schedule_id) or session.execute(
                select(Schedule.id).where(Schedule.id == new.schedule_id,
                                          Schedule.account_id == account_id)).first() is None):
            raise NotFound("No such schedule.")
        run_id = new.id or new_id("run")
        # Ids are unique within an account only: another account's run of the same id is not seen here.
        existing = session.execute(select(Run).where(Run.account_id == account_id, Run.id == run_id)
                                   ).scalar_one_or_none() if new.id else None
        if existing is not None:
            same = (existing.project_id, existing.agent, existing.trigger,
                    existing.schedule_id) == (new.project_id, agent, new.trigger, new.schedule_id)
            if not same:
                raise Conflict("A run with this id already exists with other details.", code="run_exists")
            return _view(session, existing), False
        # Every run is born queued; its progress is reported with update_run, which stamps the times.
        run = Run(id=run_id, account_id=account_id, project_id=new.project_id, agent=agent, status="queued",
                  trigger=new.trigger, schedule_id=new.schedule_id, created_at=now)
        session.add(run)
        session.flush()
        return _view(session, run), True  # the edge may have reported the run's usage before the run


@notify.after_commit
def update_run(billing: Billing, account_id: str, run_id: str, *, status: str, now: datetime,
               error: str | None = None, actor: str = "system") -> RunView:
    """Move the run along queued -> running -> succeeded | failed | cancelled (or queued -> cancelled)."""
    if status not in STATUSES:
        raise Invalid(f"status: one of {', '.join(STATUSES)}.", code="invalid_status")
    if error is not None:
        if status != "failed":
            raise Invalid("error: only a failed run carries an error.", code="invalid_error")
        error = clean_text(error, "error", ERROR_MAX, multiline=True)
    with write_session(billing.engine) as session:
        run = _owned_run(session, account_id, run_id, lock=True)
        if run.status == status and (error is None or error == run.error):
            return _view(session, run)  # a retried report changes nothing
        if run.status in FINISHED:
            raise Conflict(f"The run has already {_past(run.status)}; a finished run cannot change.",
                           code="run_finished")
        if status not in NEXT_STATUSES[run.status]:
            allowed = " or ".join(NEXT_STATUSES[run.status])
            raise Conflict(f"A {run.status} run can become {allowed}, not {status}.", code="invalid_transition")
        run.status = status
        if status == "running":
            run.started_at = now
        else:
            run.finished_at, run.error = now, error
        journal = Journal(account_id, now)
        # The agent leads: run ids (often long, as the edge or the dispatcher made them) stay in the subject.
        if status == "succeeded":
            journal.activity("run_finished", run.id, f"{run.agent} run succeeded.", actor=actor)
        elif status == "failed":
            reason = f": {error}" if error else "."
            journal.activity("run_failed", run.id, f"{run.agent} run failed{reason}", actor=actor)
        session.flush()
        journal.flush(session)
        return _view(session, run)


def _past(status: str) -> str:
    return {"succeeded": "succeeded", "failed": "failed", "cancelled": "been cancelled"}[status]
