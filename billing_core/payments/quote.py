"""What a plan change would cost before the customer confirms it: the plans side by side with the current one
marked, and the quote for one change (the prorated amount an upgrade charges now, the date a downgrade takes
effect). Reads only: plan_change.change_plan computes the amount again when it charges."""

from __future__ import annotations

from datetime import datetime

from ..db.engine import read_session
from ..db.models import Account
from ..db.payments import PaymentMethod
from ..errors import Invalid, NotFound
from ..services.context import Billing
from .grants import upgrade_due_micros
from .rules import charge_micros

UPGRADE, DOWNGRADE, CURRENT = "upgrade", "downgrade", "current"


def _change(billing: Billing, account: Account, plan: str) -> str:
    if plan == account.plan:
        return CURRENT
    return UPGRADE if billing.catalog.is_upgrade(account.plan, plan) else DOWNGRADE


def _due_now(billing: Billing, account: Account, plan: str, now: datetime) -> int:
    """Whole cents, in micros: what change_plan would charge for this upgrade at `now`."""
    if _change(billing, account, plan) != UPGRADE:
        return 0
    return charge_micros(upgrade_due_micros(billing.catalog, account, plan, now))


def _method(session, account_id: str, provider_name: str | None) -> dict | None:
    row = session.get(PaymentMethod, account_id)
    if row is None or (provider_name is not None and row.provider != provider_name):
        return None
    return {"brand": row.brand, "last4": row.last4}


def _account(session, account_id: str) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"No account with id {account_id}.")
    return account


def upgrade_quote(billing: Billing, account_id: str, plan: object, now: datetime, *,
                  provider_name: str | None = None) -> dict:
    """The change to `plan` as the customer would confirm it: `change` (upgrade | downgrade | current), the
    amount an upgrade charges now (whole cents), when the change takes effect, and the saved method that
    would pay (None: the upgrade goes through a checkout)."""
    if plan not in billing.catalog.plans:
        raise Invalid(f"plan must be one of {', '.join(billing.catalog.plans)}.", code="invalid_plan")
    with read_session(billing.engine) as session:
        account = _account(session, account_id)
        change = _change(billing, account, plan)
        return {"plan": plan, "current_plan": account.plan, "pending_plan": account.pending_plan,
                "change": change, "amount_micros": _due_now(billing, account, plan, now),
                "price_micros": billing.catalog.plan(plan).price_micros,
                "period_start": account.period_start, "period_end": account.period_end,
                "effective_at": account.period_end if change == DOWNGRADE else now,
                "method": _method(session, account_id, provider_name)}


def plan_choices(billing: Billing, account_id: str, now: datetime) -> list[dict]:
    """Every plan of the catalog in upgrade order, each with its limits, whether it is the account's current or
    pending plan, and what choosing it costs now (an upgrade's prorated amount; 0 otherwise)."""
    with read_session(billing.engine) as session:
        account = _account(session, account_id)
        plans = sorted(billing.catalog.plans.values(), key=lambda p: (p.price_micros, p.rank))
        return [{"name": p.name, "price_micros": p.price_micros, "included_ms": p.included_ms,
                 "max_projects": p.max_projects, "concurrent_runs": p.concurrent_runs, "overage": p.overage,
                 "spend_cap_micros": p.spend_cap_micros, "change": _change(billing, account, p.name),
                 "pending": p.name == account.pending_plan, "due_now_micros": _due_now(billing, account, p.name, now),
                 "period_end": account.period_end}
                for p in plans]
