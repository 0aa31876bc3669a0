"""Usage summaries, read from the daily rollups only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, func, select

from ..db.engine import read_connection
from ..db.models import DailyRollup
from ..errors import Invalid
from .context import Billing

GROUPS = ("day", "project", "agent", "model")
MAX_RANGE_DAYS = 366 * 3


@dataclass(frozen=True)
class SummaryRow:
    key: str
    compute_ms: int
    input_tokens: int
    output_tokens: int
    cost_micros: int
    list_cost_micros: int


def usage_summary(billing: Billing, account_id: str, *, start: date, end: date, group_by: str) -> list[SummaryRow]:
    """Totals per group for days start..end inclusive, ordered by key."""
    if group_by not in GROUPS:
        raise Invalid(f"group_by must be one of {', '.join(GROUPS)}.", code="invalid_group_by")
    if end < start:
        raise Invalid("'to' is before 'from'.", code="invalid_range")
    if (end - start).days > MAX_RANGE_DAYS:
        raise Invalid("The range may span at most three years.", code="invalid_range")
    with read_connection(billing.engine) as conn:
        rows = conn.execute(_SUMMARY[group_by], {"account_id": account_id, "start": start, "end": end}).all()
    return [SummaryRow(str(k), int(a or 0), int(b or 0), int(c or 0), int(d or 0), int(e or 0))
            for k, a, b, c, d, e in rows]


def _summary_statement(group_by: str):
    r = DailyRollup.__table__.c
    column = {"day": r.day, "project": r.project_id, "agent": r.agent, "model": r.model}[group_by]
    return (select(column, func.sum(r.compute_ms), func.sum(r.input_tokens), func.sum(r.output_tokens),
                   func.sum(r.cost_micros), func.sum(r.list_cost_micros))
            .where(r.account_id == bindparam("account_id"), r.day >= bindparam("start"), r.day <= bindparam("end"))
            .group_by(column).order_by(column))


# Built once: the statement for each grouping, run on a Core connection (no ORM session per request).
_SUMMARY = {group_by: _summary_statement(group_by) for group_by in GROUPS}
