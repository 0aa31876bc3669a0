"""Account status and the `check` gate, derived from balances alone."""

from __future__ import annotations

from dataclasses import dataclass

from .drawdown import Balances
from .pricing import compute_cost_micros

ACTIVE, OVER_LIMIT, SUSPENDED = "active", "over_limit", "suspended"


def derive_status(balances: Balances, *, suspended: bool) -> str:
    """over_limit when nothing is left to cover the next millisecond."""
    if suspended:
        return SUSPENDED
    if (balances.allowance_remaining_ms > 0 or balances.pool_remaining_ms > 0
            or balances.credit_micros > 0 or balances.overage_headroom_micros > 0):
        return ACTIVE
    return OVER_LIMIT


@dataclass(frozen=True)
class CheckResult:
    allowed: bool
    reason: str


def _money_reason(balances: Balances) -> str:
    return "spend_cap_reached" if balances.overage_cap_micros is not None else "insufficient_credit"


def check_compute(balances: Balances, duration_ms: int, rate_micros_per_second: int, *,
                  suspended: bool) -> CheckResult:
    """Yes only when the whole duration can be covered without going into debt."""
    status = derive_status(balances, suspended=suspended)
    if status != ACTIVE:
        return CheckResult(False, "account_suspended" if status == SUSPENDED else "over_limit")
    uncovered_ms = max(0, duration_ms - balances.allowance_remaining_ms - balances.pool_remaining_ms)
    if uncovered_ms == 0:
        return CheckResult(True, "ok")
    cost = compute_cost_micros(uncovered_ms, rate_micros_per_second)
    if cost <= max(balances.credit_micros, 0) + balances.overage_headroom_micros:
        return CheckResult(True, "ok")
    if balances.credit_micros <= 0 and balances.overage_cap_micros is None:
        return CheckResult(False, "allowance_exhausted")
    return CheckResult(False, _money_reason(balances))


def check_money(balances: Balances, cost_micros: int, *, suspended: bool) -> CheckResult:
    """Yes only when credit and overage headroom cover the whole amount."""
    status = derive_status(balances, suspended=suspended)
    if status != ACTIVE:
        return CheckResult(False, "account_suspended" if status == SUSPENDED else "over_limit")
    if cost_micros <= max(balances.credit_micros, 0) + balances.overage_headroom_micros:
        return CheckResult(True, "ok")
    return CheckResult(False, _money_reason(balances))
