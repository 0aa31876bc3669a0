"""`check`: may this work start? Reads balances; changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from ..db.engine import read_connection
from ..errors import Invalid, NotFound
from ..pricing import UnknownModel, token_cost
from ..status import CheckResult, check_compute, check_money
from .context import Billing
from .state import balances_of
from .usage_sql import load_account, open_pools
from .views import AccountView, account_view


@dataclass(frozen=True)
class CheckAnswer:
    result: CheckResult
    account: AccountView


def check(billing: Billing, account_id: str, *, kind: str, now: datetime, duration_ms: int = 0,
          model: str | None = None, input_tokens: int = 0, output_tokens: int = 0) -> CheckAnswer:
    with read_connection(billing.engine) as conn:
        account = load_account(conn, account_id, lock=False)
        if account is None:
            raise NotFound("No such account.")
        pools = [p for p in open_pools(conn, account_id) if p.remaining_ms > 0]  # what live_pools reads
    balances = balances_of(account, pools, now)
    # Work asked for after the period ended is judged on the allowance the close will grant.
    if account.period_end <= now:
        balances = replace(balances, allowance_remaining_ms=billing.catalog.plan(
            account.pending_plan or account.plan).included_ms, overage_micros=0)
    if kind == "compute":
        result = check_compute(balances, duration_ms, billing.catalog.compute_rate_micros_per_second,
                               suspended=account.suspended)
    elif kind == "tokens":
        try:
            cost = token_cost(billing.catalog, model=model or "", input_tokens=input_tokens,
                              output_tokens=output_tokens, key_source="platform")
        except UnknownModel:
            raise Invalid(f"Model {model!r} is not in the price table.", code="unknown_model") from None
        result = check_money(balances, cost.charged_micros, suspended=account.suspended)
    else:
        raise Invalid("kind must be compute or tokens.", code="invalid_request")
    return CheckAnswer(result, account_view(account, pools))
