"""A plan change asked by the customer: a downgrade (or cancel, to hobby) at period end; an upgrade at once,
its prorated difference charged to the saved method, or a checkout when there is none."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..db.engine import lock_account, read_session, write_session
from ..db.models import Account
from ..db.payments import PaymentMethod
from ..errors import Invalid, NotFound, ServiceError
from ..services import accounts
from ..services.context import Billing
from ..services.journal import Journal
from ..services.periods import bring_up_to_date
from ..services.standing import refuse_if_suspended
from . import provider as p
from .checkout import charge_saved_method, new_off_session_payment
from .grants import upgrade_due_micros
from .rules import Purchase, charge_micros


class PaymentRequired(ServiceError):
    status = 402

    def __init__(self, message: str, *, code: str, extra: dict | None = None) -> None:
        super().__init__(message, code=code)
        self.extra = extra or {}


@dataclass(frozen=True)
class PlanChange:
    plan: str
    pending_plan: str | None
    effective_at: datetime
    charged_micros: int = 0
    payment_id: str | None = None
    payment_status: str | None = None


def change_plan(billing: Billing, provider: p.Provider, account_id: str, plan: object, *, now: datetime
                ) -> PlanChange:
    catalog = billing.catalog
    if plan not in catalog.plans:
        raise Invalid(f"plan must be one of {', '.join(catalog.plans)}.", code="invalid_plan")
    with write_session(billing.engine) as session:
        account = lock_account(session, account_id)
        if account is None:
            raise NotFound(f"No account with id {account_id}.")
        refuse_if_suspended(session, account_id, account)
        bring_up_to_date(session, catalog, account, now, Journal(account_id, now))
        upgrade = catalog.is_upgrade(account.plan, plan)
        owed = charge_micros(upgrade_due_micros(catalog, account, plan, now)) if upgrade else 0
        payment = method = None
        if owed:
            method = session.get(PaymentMethod, account_id)
            if method is None or method.provider != provider.name:
                raise PaymentRequired("Add a payment method first: upgrade by checkout, and the card is kept.",
                                      code="payment_method_required",
                                      extra={"checkout": {"item": "plan", "plan": plan}, "amount_micros": owed})
            payment = new_off_session_payment(session, account_id, provider.name, Purchase("plan", owed, plan=plan),
                                              source="upgrade", now=now,
                                              idempotency_key=f"upgrade-{account_id}-{plan}-{now.isoformat()}")
            session.flush()
    if payment is None:  # a downgrade, the current plan, or an upgrade with nothing to pay: as the operator's
        accounts.set_plan(billing, account_id, plan, now=now)
        return _changed(billing, account_id, now)
    started = charge_saved_method(billing, provider, payment, method, now=now)
    if started.status == "failed":
        raise PaymentRequired(f"The card was not charged: {started.failure_message}", code="payment_failed",
                              extra={"checkout": {"item": "plan", "plan": plan}, "amount_micros": owed})
    return _changed(billing, account_id, now, owed, payment.id, started.status)


def _changed(billing: Billing, account_id: str, now: datetime, *paid) -> PlanChange:
    with read_session(billing.engine) as session:
        account = session.get(Account, account_id)
        effective = account.period_end if account.pending_plan else now
        return PlanChange(account.plan, account.pending_plan, effective, *paid)
