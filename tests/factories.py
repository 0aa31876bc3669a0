"""Builders for accounts and events, so tests read as sentences."""

from __future__ import annotations

import itertools
from datetime import datetime

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
