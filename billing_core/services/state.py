"""Reading an account's balances into the pure model and keeping its derived status in step."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from ..db.models import Account, Pool
from ..drawdown import Balances, PoolBalance
from ..status import derive_status
from .journal import Journal


def live_pools(session: Session, account_id: str) -> list[Pool]:
    """Pools that still hold time and have not been expired by the job."""
    stmt = (select(Pool).where(Pool.account_id == account_id, Pool.remaining_ms > 0,
                               Pool.expired_at.is_(None)).order_by(Pool.expires_at, Pool.purchased_at))
    return list(session.execute(stmt).scalars())


def balances_of(account: Account, pools: list[Pool], at: datetime) -> Balances:
    return Balances(
        allowance_remaining_ms=max(0, account.included_ms - account.used_ms),
        pools=tuple(PoolBalance(p.id, p.remaining_ms, p.expires_at, p.purchased_at)
                    for p in pools if p.expires_at > at),
        credit_micros=account.credit_balance_micros,
        overage_micros=account.overage_micros,
        overage_cap_micros=account.spend_cap_micros,
    )


def refresh_status(account: Account, balances: Balances, journal: Journal) -> None:
    """Store the derived status; a change is something the customer wants to see."""
    status = derive_status(balances, suspended=account.suspended)
    if status != account.status:
        journal.activity("status_changed", account.id, f"Account is now {status.replace('_', ' ')}.")
        account.status = status
