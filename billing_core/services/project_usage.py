"""What the projects pages show: each project with its numbers, read from daily rollups and the runs table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, select
from sqlmodel import Session

from ..db.engine import read_session
from ..db.models import Account, DailyRollup, Project
from ..db.workloads import Run
from ..errors import NotFound
from .context import Billing
from .paging import paginate
from .projects import checked_cursor, get_project, ProjectView
from .runs import RunView, list_runs

SERIES_DAYS = 30
LATEST_RUNS = 20


@dataclass(frozen=True)
class ProjectNumbers:
    runs_today: int = 0  # runs created since 00:00 UTC
    compute_ms: int = 0  # this period, by UTC days from the period's first day
    cost_micros: int = 0  # what that usage was charged (credit, overage or debt), this period


@dataclass(frozen=True)
class ProjectRow:
    id: str
    name: str
    created_at: datetime
    hmac_prefix: str  # "" when the project has no HMAC key
    hmac_last4: str
    numbers: ProjectNumbers


@dataclass(frozen=True)
class ProjectsOverview:
    rows: list[ProjectRow]
    next_cursor: str | None
    plan: str
    max_projects: int | None  # None: unlimited
    project_count: int
    period_start: datetime


@dataclass(frozen=True)
class DayCompute:
    day: date
    compute_ms: int
    cost_micros: int


@dataclass(frozen=True)
class ProjectDetail:
    project: ProjectView
    numbers: ProjectNumbers
    daily: list[DayCompute]  # SERIES_DAYS days ending today (UTC), zero-filled
    runs: list[RunView]  # the latest LATEST_RUNS, newest first
    period_start: datetime

    @property
    def series_compute_ms(self) -> int:
        return sum(d.compute_ms for d in self.daily)

    @property
    def series_cost_micros(self) -> int:
        return sum(d.cost_micros for d in self.daily)


def fill_days(found: dict[date, tuple[int, int]], start: date, end: date) -> list[DayCompute]:
    """One entry per day start..end inclusive; days without usage are zero."""
    return [DayCompute(day, *found.get(day, (0, 0)))
            for day in (start + timedelta(days=i) for i in range((end - start).days + 1))]


def _account(session: Session, account_id: str) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    return account


def _numbers(session: Session, account_id: str, project_ids: list[str], period_start: datetime,
             now: datetime) -> dict[str, ProjectNumbers]:
    if not project_ids:
        return {}
    r = DailyRollup
    today = now.astimezone(timezone.utc).date()
    period = session.execute(
        select(r.project_id, func.sum(r.compute_ms), func.sum(r.cost_micros))
        .where(r.account_id == account_id, r.project_id.in_(project_ids),
               r.day >= period_start.astimezone(timezone.utc).date(), r.day <= today)
        .group_by(r.project_id)).all()
    midnight = datetime.combine(today, time(), tzinfo=timezone.utc)
    runs = dict(session.execute(
        select(Run.project_id, func.count()).where(Run.account_id == account_id, Run.project_id.in_(project_ids),
                                                  Run.created_at >= midnight).group_by(Run.project_id)).all())
    sums = {pid: (int(ms or 0), int(cost or 0)) for pid, ms, cost in period}
    return {pid: ProjectNumbers(int(runs.get(pid, 0)), *sums.get(pid, (0, 0))) for pid in project_ids}


def projects_overview(billing: Billing, account_id: str, *, now: datetime, limit: int,
                      cursor: str | None = None) -> ProjectsOverview:
    """One page of the account's live projects, newest first, each with today's runs and this period's usage."""
    cursor = checked_cursor(cursor)
    live = (Project.account_id == account_id, Project.deleted_at.is_(None))
    with read_session(billing.engine) as session:
        account = _account(session, account_id)
        page = paginate(session, select(Project).where(*live), Project, limit=limit, cursor=cursor)
        count = session.execute(select(func.count()).select_from(Project).where(*live)).scalar_one()
        numbers = _numbers(session, account_id, [p.id for p in page.items], account.period_start, now)
    rows = [ProjectRow(p.id, p.name, p.created_at, p.hmac_prefix if p.hmac_ciphertext else "",
                       p.hmac_last4 if p.hmac_ciphertext else "", numbers[p.id]) for p in page.items]
    return ProjectsOverview(rows, page.next_cursor, account.plan, billing.catalog.plan(account.plan).max_projects,
                            int(count), account.period_start)


def project_daily_compute(billing: Billing, account_id: str, project_id: str, *, start: date,
                          end: date) -> list[DayCompute]:
    """Compute and charged cost per UTC day for one project, start..end inclusive, from the rollups only."""
    r = DailyRollup
    with read_session(billing.engine) as session:
        rows = session.execute(
            select(r.day, func.sum(r.compute_ms), func.sum(r.cost_micros))
            .where(r.account_id == account_id, r.project_id == project_id, r.day >= start, r.day <= end)
            .group_by(r.day)).all()
    return fill_days({day: (int(ms or 0), int(cost or 0)) for day, ms, cost in rows}, start, end)


def project_detail(billing: Billing, account_id: str, project_id: str, *, now: datetime) -> ProjectDetail:
    """The project (another account's is NotFound, like one never issued), its numbers, the last 30 days
    of compute and its latest runs."""
    project = get_project(billing, account_id, project_id)
    today = now.astimezone(timezone.utc).date()
    with read_session(billing.engine) as session:
        period_start = _account(session, account_id).period_start
        numbers = _numbers(session, account_id, [project.id], period_start, now)[project.id]
    daily = project_daily_compute(billing, account_id, project.id, start=today - timedelta(days=SERIES_DAYS - 1),
                                  end=today)
    runs = list_runs(billing, account_id, limit=LATEST_RUNS, project_id=project.id).items
    return ProjectDetail(project, numbers, daily, runs, period_start)
