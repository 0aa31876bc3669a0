"""Builders for accounts and events, so tests read as sentences."""

from __future__ import annotations

import itertools
from datetime import datetime

from billing_core.drawdown import Balances, draw_compute
from billing_core.plans import Catalog
from billing_core.services import accounts
from billing_core.services.context import Billing
from billing_core.services.usage import UsageEventIn

from .conftest import T0

_serial = itertools.count(1)


def make_account(billing: Billing, *, plan: str = "hobby", credit_micros: int = 0, now: datetime = T0,
                 email: str | None = None) -> accounts.CreatedAccount:
    email = email or f"user{next(_serial)}@example.com"
    return accounts.create_account(billing, email=email, plan=plan, credit_micros=credit_micros, now=now)


def compute(project_id: str, duration_ms: int, *, id: str | None = None, **kw) -> UsageEventIn:
    return UsageEventIn(id=id or f"c{next(_serial)}", project_id=project_id, kind="compute",
                        duration_ms=duration_ms, **kw)


def tokens(project_id: str, model: str, input_tokens: int, output_tokens: int, *, id: str | None = None,
           **kw) -> UsageEventIn:
    return UsageEventIn(id=id or f"t{next(_serial)}", project_id=project_id, kind="tokens", model=model,
                        input_tokens=input_tokens, output_tokens=output_tokens, **kw)


def sequential_balances(catalog: Catalog, plan: str, credit_micros: int, events: int, duration_ms: int) -> Balances:
    """What one writer recording `events` identical compute events one by one leaves: the figure every
    concurrent test must end at, to the micro."""
    balances = Balances(catalog.plan(plan).included_ms, (), credit_micros, 0, None)
    for _ in range(events):
        _, balances = draw_compute(balances, duration_ms, catalog.compute_rate_micros_per_second)
    return balances
