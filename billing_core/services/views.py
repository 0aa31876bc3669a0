"""The account as API.md shows it, read in one short transaction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlmodel import Session

from ..db.engine import read_session
from ..db.models import Account, Pool
from ..errors import NotFound
from .context import Billing
from .state import live_pools


def rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if value.microsecond else \
        value.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class AccountView:
    id: str
    email: str
    plan: str
    status: str
    period: dict
    allowance: dict
    pools: list
    credit: dict
    overage: dict

    def to_dict(self) -> dict:
        return asdict(self)


def account_view(account: Account, pools: list[Pool]) -> AccountView:
    remaining = max(0, account.included_ms - account.used_ms)
    return AccountView(
        id=account.id,
        email=account.email,
        plan=account.plan,
        status=account.status,
        period={"start": rfc3339(account.period_start), "end": rfc3339(account.period_end)},
        allowance={"included_ms": account.included_ms, "used_ms": account.used_ms, "remaining_ms": remaining},
        pools=[{"id": p.id, "remaining_ms": p.remaining_ms, "expires_at": rfc3339(p.expires_at)} for p in pools],
        credit={"balance_micros": account.credit_balance_micros},
        overage={"amount_micros": account.overage_micros, "cap_micros": account.spend_cap_micros},
    )


def load_account_view(session: Session, account_id: str) -> AccountView:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    return account_view(account, live_pools(session, account_id))


def get_account(billing: Billing, account_id: str) -> AccountView:
    with read_session(billing.engine) as session:
        return load_account_view(session, account_id)
