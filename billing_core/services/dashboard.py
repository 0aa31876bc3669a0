"""Everything the dashboard shows, read in one short transaction from accounts, rollups and the feed.

Usage numbers come from the daily rollups only (their cost does not grow with the number of events), so
"this period" means the UTC days from the period's first day through today.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import NamedTuple

from sqlalchemy import func, select
from sqlmodel import Session

from ..db.engine import read_session
from ..db.models import Account, AccountKey, Activity, DailyRollup, Project
from ..db.workloads import Run
from ..errors import NotFound
from ..forecast import Forecast, allowance_forecast
from .context import Billing
from .state import live_pools

SERIES_DAYS = 90  # the longest range the chart offers; shorter ranges are its last days
MAX_SERIES = 8  # projects or models drawn one by one; the rest are summed as "other"
MAX_PROJECT_CARDS = 12
MAX_ACTIVITY = 20
MAX_KEYS = 20
OTHER = "other"


@dataclass(frozen=True)
class PoolLine:
    id: str
    size_ms: int
    remaining_ms: int
    expires_at: datetime


@dataclass(frozen=True)
class PlanPanel:
    plan: str
    pending_plan: str | None
    status: str  # active | over_limit | suspended
    period_start: datetime
    period_end: datetime
    included_ms: int
    used_ms: int
    remaining_ms: int
    pools: tuple[PoolLine, ...]
    credit_balance_micros: int
    overage_micros: int
    spend_cap_micros: int | None
    has_overage: bool  # the plan bills overage (up to the cap) instead of going into debt
    forecast: Forecast


@dataclass(frozen=True)
class Totals:
    events: int
    compute_ms: int
    cost_micros: int  # charged: credit, overage and debt


@dataclass(frozen=True)
class ProjectSeries:
    key: str  # project id, or OTHER
    name: str
    compute_ms: tuple[int, ...]  # one per day of UsageSeries.days


@dataclass(frozen=True)
class ModelSeries:
    model: str  # or OTHER
    input_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]
    cost_micros: tuple[int, ...]
    list_cost_micros: tuple[int, ...]


@dataclass(frozen=True)
class UsageSeries:
    days: tuple[date, ...]  # SERIES_DAYS days, oldest first, ending today (UTC)
    projects: tuple[ProjectSeries, ...]
    models: tuple[ModelSeries, ...]


@dataclass(frozen=True)
class ProjectCard:
    id: str
    name: str
    runs_today: int
    compute_ms_period: int
    spend_micros_period: int
    hmac_prefix: str
    hmac_last4: str


@dataclass(frozen=True)
class ActivityLine:
    id: int
    kind: str
    subject: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class KeyLine:
    id: str
    name: str
    prefix: str
    last4: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    plan: PlanPanel
    today: Totals
    period: Totals
    series: UsageSeries
    projects: tuple[ProjectCard, ...]
    project_count: int
    activity: tuple[ActivityLine, ...]
    keys: tuple[KeyLine, ...]
    key_count: int


def load_dashboard(billing: Billing, account_id: str, *, now: datetime) -> Dashboard:
    """The account's dashboard as of `now`; another account's id is as unknown as one never issued."""
    today = now.astimezone(timezone.utc).date()
    first_day = today - timedelta(days=SERIES_DAYS - 1)
    with read_session(billing.engine) as session:
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound("No such account.")
        period_day = account.period_start.astimezone(timezone.utc).date()
        rollups = _rollups(session, account_id, min(first_day, period_day))
        pools = live_pools(session, account_id)
        projects, project_count = _projects(session, account_id)
        names = _project_names(session, account_id, {r.project_id for r in rollups})
        runs = _runs_today(session, account_id, today)
        activity = _activity(session, account_id)
        keys, key_count = _keys(session, account_id)
    daily_compute: dict[date, int] = defaultdict(int)
    for r in rollups:
        daily_compute[r.day] += r.compute_ms
    pools = [p for p in pools if p.expires_at > now]
    forecast = allowance_forecast(included_ms=account.included_ms, used_ms=account.used_ms,
                                  daily_compute_ms=daily_compute, now=now, period_end=account.period_end,
                                  since=account.created_at, pool_ms=sum(p.remaining_ms for p in pools))
    spec = billing.catalog.plans.get(account.plan)
    plan = PlanPanel(
        plan=account.plan, pending_plan=account.pending_plan, status=account.status,
        period_start=account.period_start, period_end=account.period_end, included_ms=account.included_ms,
        used_ms=account.used_ms, remaining_ms=max(0, account.included_ms - account.used_ms),
        pools=tuple(PoolLine(p.id, p.size_ms, p.remaining_ms, p.expires_at) for p in pools),
        credit_balance_micros=account.credit_balance_micros, overage_micros=account.overage_micros,
        spend_cap_micros=account.spend_cap_micros, has_overage=bool(spec and spec.overage), forecast=forecast)
    in_period = [r for r in rollups if r.day >= period_day]
    per_project: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in in_period:
        per_project[r.project_id][0] += r.compute_ms
        per_project[r.project_id][1] += r.cost_micros
    cards = tuple(ProjectCard(p.id, p.name, runs.get(p.id, 0), *per_project.get(p.id, (0, 0)),
                              hmac_prefix=p.hmac_prefix, hmac_last4=p.hmac_last4) for p in projects)
    return Dashboard(
        now=now, plan=plan, today=_totals(r for r in rollups if r.day == today), period=_totals(in_period),
        series=_series(rollups, names, first_day, today), projects=cards, project_count=project_count,
        activity=activity, keys=keys, key_count=key_count)


class _Rollup(NamedTuple):
    day: date
    project_id: str
    meter: str
    model: str
    events: int
    compute_ms: int
    input_tokens: int
    output_tokens: int
    cost_micros: int
    list_cost_micros: int


# -- reads --------------------------------------------------------------------------------------------
def _rollups(session: Session, account_id: str, first_day: date) -> list[_Rollup]:
    r = DailyRollup
    stmt = (select(r.day, r.project_id, r.meter, r.model, func.sum(r.events).label("events"),
                   func.sum(r.compute_ms).label("compute_ms"), func.sum(r.input_tokens).label("input_tokens"),
                   func.sum(r.output_tokens).label("output_tokens"), func.sum(r.cost_micros).label("cost_micros"),
                   func.sum(r.list_cost_micros).label("list_cost_micros"))
            .where(r.account_id == account_id, r.day >= first_day)
            .group_by(r.day, r.project_id, r.meter, r.model))
    # PostgreSQL sums BIGINTs as NUMERIC: back to int here, so no Decimal travels further.
    return [_Rollup(day, pid, meter, model, *(int(v or 0) for v in sums))
            for day, pid, meter, model, *sums in session.execute(stmt)]


def _projects(session: Session, account_id: str) -> tuple[tuple[Project, ...], int]:
    live = (Project.account_id == account_id, Project.deleted_at.is_(None))
    rows = session.execute(select(Project).where(*live).order_by(Project.created_at, Project.id)
                           .limit(MAX_PROJECT_CARDS)).scalars().all()
    count = session.execute(select(func.count()).select_from(Project).where(*live)).scalar_one()
    return tuple(rows), count


def _project_names(session: Session, account_id: str, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    stmt = select(Project.id, Project.name, Project.deleted_at).where(Project.account_id == account_id,
                                                                       Project.id.in_(sorted(ids)))
    return {pid: f"{name} (deleted)" if deleted else name for pid, name, deleted in session.execute(stmt)}


def _runs_today(session: Session, account_id: str, today: date) -> dict[str, int]:
    midnight = datetime.combine(today, time(0), tzinfo=timezone.utc)
    stmt = (select(Run.project_id, func.count()).where(Run.account_id == account_id, Run.created_at >= midnight)
            .group_by(Run.project_id))
    return {pid: int(n) for pid, n in session.execute(stmt)}


def _activity(session: Session, account_id: str) -> tuple[ActivityLine, ...]:
    stmt = (select(Activity).where(Activity.account_id == account_id).order_by(Activity.id.desc())
            .limit(MAX_ACTIVITY))
    return tuple(ActivityLine(a.id, a.kind, a.subject, a.text, a.created_at) for a in session.execute(stmt).scalars())


def _keys(session: Session, account_id: str) -> tuple[tuple[KeyLine, ...], int]:
    active = (AccountKey.account_id == account_id, AccountKey.revoked_at.is_(None))
    stmt = select(AccountKey).where(*active).order_by(AccountKey.created_at.desc(), AccountKey.id.desc())
    rows = session.execute(stmt.limit(MAX_KEYS)).scalars().all()
    count = session.execute(select(func.count()).select_from(AccountKey).where(*active)).scalar_one()
    return tuple(KeyLine(k.id, k.name, k.prefix, k.last4, k.created_at, k.last_used_at) for k in rows), count


# -- shaping ------------------------------------------------------------------------------------------
def _totals(rows) -> Totals:
    events = compute = cost = 0
    for r in rows:
        events, compute, cost = events + r.events, compute + r.compute_ms, cost + r.cost_micros
    return Totals(int(events), int(compute), int(cost))


def _series(rollups: list, names: dict[str, str], first_day: date, today: date) -> UsageSeries:
    days = tuple(first_day + timedelta(days=i) for i in range((today - first_day).days + 1))
    index = {day: i for i, day in enumerate(days)}
    compute: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    models: dict[str, list[list[int]]] = defaultdict(lambda: [[0] * len(days) for _ in range(4)])
    for r in rollups:
        i = index.get(r.day)
        if i is None:
            continue
        if r.meter == "compute" and r.compute_ms:
            compute[r.project_id][i] += int(r.compute_ms)
        elif r.meter == "tokens":
            m = models[r.model or OTHER]
            for k, value in enumerate((r.input_tokens, r.output_tokens, r.cost_micros, r.list_cost_micros)):
                m[k][i] += int(value)
    compute = _top(compute, key=lambda values: sum(values), merge=lambda a, b: [x + y for x, y in zip(a, b)])
    models = _top(models, key=lambda m: sum(m[2]) + sum(m[3]),
                  merge=lambda a, b: [[x + y for x, y in zip(p, q)] for p, q in zip(a, b)])
    return UsageSeries(
        days=days,
        projects=tuple(ProjectSeries(pid, names.get(pid, OTHER if pid == OTHER else pid), tuple(v))
                       for pid, v in compute.items()),
        models=tuple(ModelSeries(model, *(tuple(v) for v in m)) for model, m in models.items()))


def _top(series: dict, *, key, merge) -> dict:
    """The MAX_SERIES largest by `key` (ties by name), the rest merged into one OTHER series, in that order."""
    ranked = sorted(series.items(), key=lambda kv: (-key(kv[1]), kv[0]))
    kept = dict(ranked[:MAX_SERIES])
    for _, values in ranked[MAX_SERIES:]:
        kept[OTHER] = merge(kept[OTHER], values) if OTHER in kept else values
    return kept
