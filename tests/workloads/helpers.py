"""Builders for the workload tests: extra projects and run-tagged usage, on the service layer."""

from __future__ import annotations

from datetime import datetime

from billing_core.db.engine import write_session
from billing_core.db.models import Project
from billing_core.ids import new_id
from billing_core.services.context import Billing
from billing_core.services.usage import Charged, record_usage

from ..factories import compute, tokens


def add_project(billing: Billing, account_id: str, *, now: datetime, name: str = "second",
                deleted: bool = False) -> str:
    """A project row written directly, so these tests do not depend on the projects service."""
    project = Project(id=new_id("prj"), account_id=account_id, name=name, created_at=now,
                      deleted_at=now if deleted else None)
    with write_session(billing.engine) as session:
        session.add(project)
    return project.id


def charge(billing: Billing, account_id: str, events: list, *, now: datetime) -> list[Charged]:
    """Record the events; what each one was charged (all must be accepted)."""
    batch = record_usage(billing, account_id, events, now=now)
    assert [r.status for r in batch.results] == ["accepted"] * len(events), batch.results
    return [r.charged for r in batch.results]


def summed(charges: list[Charged]) -> dict:
    fields = ("allowance_ms", "pool_ms", "credit_micros", "overage_micros", "debt_micros")
    return {f: sum(getattr(c, f) for c in charges) for f in fields}


__all__ = ["add_project", "charge", "summed", "compute", "tokens"]
