"""Small readers and builders shared by the job tests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from billing_core.db.engine import read_session
from billing_core.db.models import Activity
from billing_core.services.usage import record_usage

from ..factories import compute


def rows(billing, model, **where) -> list:
    """Every row of `model` matching the equalities, oldest first when the table has an id."""
    stmt = select(model)
    for name, value in where.items():
        stmt = stmt.where(getattr(model, name) == value)
    with read_session(billing.engine) as session:
        return list(session.execute(stmt).scalars())


def activities(billing, account_id: str, kind: str) -> list[Activity]:
    return sorted(rows(billing, Activity, account_id=account_id, kind=kind), key=lambda a: a.id)


def use(billing, account, duration_ms: int, now: datetime) -> None:
    batch = record_usage(billing, account.account_id, [compute(account.project_id, duration_ms)], now=now)
    assert batch.results[0].status == "accepted", batch.results[0]
