"""Builders for the pure model, so unit tests read as sentences (no database, no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from billing_core.drawdown import Balances, PoolBalance

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
RATE = 100  # micros per second, the shipped compute rate

# Unit tests must stay fast and leave nothing behind: no example database on disk, no deadline flakiness.
FAST = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def pool(id: str, remaining_ms: int, *, expires_in_days: int = 365, purchased_days_ago: int = 0,
         now: datetime = T0) -> PoolBalance:
    return PoolBalance(id=id, remaining_ms=remaining_ms, expires_at=now + timedelta(days=expires_in_days),
                       purchased_at=now - timedelta(days=purchased_days_ago))


def balances(*, allowance_ms: int = 0, pools: tuple[PoolBalance, ...] = (), credit_micros: int = 0,
             overage_micros: int = 0, overage_cap_micros: int | None = None) -> Balances:
    return Balances(allowance_remaining_ms=allowance_ms, pools=tuple(pools), credit_micros=credit_micros,
                    overage_micros=overage_micros, overage_cap_micros=overage_cap_micros)


@st.composite
def pool_balances(draw, max_pools: int = 5) -> tuple[PoolBalance, ...]:
    """Pools with distinct ids and deliberately colliding expiry and purchase dates."""
    n = draw(st.integers(0, max_pools))
    out = []
    for i in range(n):
        out.append(pool(f"pool_{i}", draw(st.integers(0, 50_000)),
                        expires_in_days=draw(st.integers(1, 4)),
                        purchased_days_ago=draw(st.integers(0, 3))))
    return tuple(out)


@st.composite
def any_balances(draw) -> Balances:
    """Balances of every shape: with and without overage, in credit or in debt, at or past the cap."""
    cap = draw(st.one_of(st.none(), st.integers(0, 5_000)))
    overage = 0 if cap is None else draw(st.integers(0, cap + 1_000))
    return balances(
        allowance_ms=draw(st.integers(0, 50_000)),
        pools=draw(pool_balances()),
        credit_micros=draw(st.integers(-5_000, 10_000)),
        overage_micros=overage,
        overage_cap_micros=cap,
    )
