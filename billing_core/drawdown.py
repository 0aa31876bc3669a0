"""Drawdown: which balances pay for one usage event, in DESIGN.md's order."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .pricing import compute_cost_micros


@dataclass(frozen=True)
class PoolBalance:
    id: str
    remaining_ms: int
    expires_at: datetime
    purchased_at: datetime


@dataclass(frozen=True)
class Balances:
    """What can pay for usage right now."""

    allowance_remaining_ms: int
    pools: tuple[PoolBalance, ...]
    credit_micros: int  # may be negative (debt)
    overage_micros: int  # accrued this period
    overage_cap_micros: int | None  # None: the plan has no overage

    @property
    def pool_remaining_ms(self) -> int:
        return sum(p.remaining_ms for p in self.pools)

    @property
    def overage_headroom_micros(self) -> int:
        if self.overage_cap_micros is None:
            return 0
        return max(0, self.overage_cap_micros - self.overage_micros)


@dataclass(frozen=True)
class Charge:
    """How one event was paid. `credit_micros` is paid from a positive balance, `debt_micros` below zero."""

    allowance_ms: int = 0
    pool_draws: tuple[tuple[str, int], ...] = field(default=())
    credit_micros: int = 0
    overage_micros: int = 0
    debt_micros: int = 0

    @property
    def pool_ms(self) -> int:
        return sum(ms for _, ms in self.pool_draws) if self.pool_draws else 0  # (asked twice per event)

    @property
    def money_micros(self) -> int:
        return self.credit_micros + self.overage_micros + self.debt_micros


def pool_order(pools: tuple[PoolBalance, ...]) -> list[PoolBalance]:
    """Earliest expiry first; ties go to the oldest purchase, then the id for a total order."""
    return sorted(pools, key=lambda p: (p.expires_at, p.purchased_at, p.id))


def _split_money(balances: Balances, cost_micros: int) -> tuple[int, int, int]:
    """Steps 3 and 4: credit while positive, then overage up to the cap, then debt: (credit, overage, debt)."""
    from_credit = min(cost_micros, max(balances.credit_micros, 0))
    rest = cost_micros - from_credit
    overage = min(rest, balances.overage_headroom_micros)
    return from_credit, overage, rest - overage


def _pay_money(balances: Balances, cost_micros: int) -> tuple[Charge, Balances]:
    """A money amount paid from credit, overage and debt, and the balances after."""
    credit, overage, debt = _split_money(balances, cost_micros)
    # Built directly rather than with dataclasses.replace: this runs for every event of every batch, and
    # replace's field introspection was the largest single cost of ingest (docs/benchmarks.md).
    after = Balances(balances.allowance_remaining_ms, balances.pools, balances.credit_micros - credit - debt,
                     balances.overage_micros + overage, balances.overage_cap_micros)
    return Charge(credit_micros=credit, overage_micros=overage, debt_micros=debt), after


def draw_compute(balances: Balances, duration_ms: int, rate_micros_per_second: int) -> tuple[Charge, Balances]:
    """Pay `duration_ms` of compute: allowance, pools by expiry, then money for the rest."""
    rest = duration_ms
    from_allowance = min(rest, balances.allowance_remaining_ms)
    rest -= from_allowance

    draws: list[tuple[str, int]] = []
    pools = balances.pools
    if rest > 0 and pools:
        taken: dict[str, int] = {}
        for pool in pool_order(pools):
            if rest == 0:
                break
            take = min(rest, pool.remaining_ms)
            if take > 0:
                draws.append((pool.id, take))
                taken[pool.id] = take
                rest -= take
        if taken:  # only the pools drawn from change; the others are shared, unchanged
            pools = tuple(PoolBalance(p.id, p.remaining_ms - taken[p.id], p.expires_at, p.purchased_at)
                          if p.id in taken else p for p in pools)

    allowance = balances.allowance_remaining_ms - from_allowance
    if rest > 0:
        # The allowance and pools drawn above leave credit and overage as they were: the money is split over
        # the same balances, and one Charge and one Balances are built (a thousand times a batch).
        credit, overage, debt = _split_money(balances, compute_cost_micros(rest, rate_micros_per_second))
        return (Charge(from_allowance, tuple(draws), credit, overage, debt),
                Balances(allowance, pools, balances.credit_micros - credit - debt, balances.overage_micros + overage,
                         balances.overage_cap_micros))
    return Charge(from_allowance, tuple(draws)), Balances(allowance, pools, balances.credit_micros,
                                                          balances.overage_micros, balances.overage_cap_micros)


def draw_money(balances: Balances, cost_micros: int) -> tuple[Charge, Balances]:
    """Pay a money amount (tokens): credit only, then overage or debt; never allowance or pools."""
    return _pay_money(balances, cost_micros)
