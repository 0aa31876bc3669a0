"""Collecting invoices: a closed period's invoice is charged to the saved method; one that fails (or has no
method to charge) is past due, retried on days 1, 3 and 5, and after 7 days unpaid the account drops to hobby
(rules.dunning_action). Paying by hand is always possible (a checkout for the invoice). Driven by the
scheduler, and by `tollgate admin tick --now` for any moment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..db.engine import lock_account, read_session, write_session
from ..db.models import Invoice
from ..db.payments import Payment, PaymentMethod
from ..money import format_usd
from ..services.context import Billing
from ..services.journal import Journal
from . import provider as p
from .checkout import charge_saved_method, new_off_session_payment
from .grants import finish
from .rules import Purchase, charge_micros, dunning_action


@dataclass
class Collection:
    charged: int = 0
    paid_nothing_owed: int = 0
    past_due: int = 0
    retried: int = 0
    dropped_to_hobby: int = 0

    def summary(self) -> dict:
        return dict(self.__dict__)


def collect_invoices(billing: Billing, provider: p.Provider, now: datetime) -> Collection:
    """Charge new invoices, retry past-due ones when their day has come, drop to hobby after 7 days."""
    result = Collection()
    with read_session(billing.engine) as session:
        fresh = session.execute(select(Invoice.id).where(Invoice.status == "open", Invoice.payment_id.is_(None),
                                                         Invoice.first_failed_at.is_(None))
                                .order_by(Invoice.created_at)).scalars().all()
        overdue = session.execute(select(Invoice.id).where(Invoice.status == "past_due")).scalars().all()
    for invoice_id in fresh:
        _attempt(billing, provider, invoice_id, now, result, retry=False)
    for invoice_id in overdue:
        _dun(billing, provider, invoice_id, now, result)
    return result


def _attempt(billing: Billing, provider: p.Provider, invoice_id: str, now: datetime, result: Collection, *,
             retry: bool) -> None:
    try:
        with write_session(billing.engine) as session:
            invoice = session.get(Invoice, invoice_id)
            account = lock_account(session, invoice.account_id)
            session.refresh(invoice)
            journal = Journal(account.id, now)
            owed = charge_micros(invoice.total_micros)
            if invoice.status == "open" and owed <= 0:
                invoice.status, invoice.paid_at = "paid", now
                result.paid_nothing_owed += 1
                return
            if invoice.status not in ("open", "past_due") or (retry is False and invoice.first_failed_at):
                return
            method = session.get(PaymentMethod, account.id)
            if method is None or method.provider != provider.name:
                if invoice.status == "open":
                    invoice.status, invoice.first_failed_at = "past_due", now
                    journal.activity("invoice_past_due", invoice.id,
                                     f"Invoice {invoice.number} of {format_usd(owed)} could not be collected: no "
                                     "payment method is saved. Pay it from the Billing page.")
                    result.past_due += 1
                    finish(session, account, journal, now)
                return
            attempt = invoice.retries_done if retry else 0
            payment = new_off_session_payment(session, account.id, provider.name, Purchase("invoice", owed),
                                              source="invoice", invoice_id=invoice.id, now=now,
                                              idempotency_key=f"invoice-{invoice.id}-{attempt}")
            session.flush()  # the unique idempotency key: this attempt was made already by another run
    except IntegrityError:
        return
    outcome = charge_saved_method(billing, provider, payment, method, now=now)
    result.charged += outcome.status == "succeeded"
    if outcome.status == "failed":
        result.past_due += 1


def _dun(billing: Billing, provider: p.Provider, invoice_id: str, now: datetime, result: Collection) -> None:
    with write_session(billing.engine) as session:
        invoice = session.get(Invoice, invoice_id)
        account = lock_account(session, invoice.account_id)
        session.refresh(invoice)
        if invoice.status != "past_due" or invoice.first_failed_at is None:
            return
        action = dunning_action(first_failed_at=invoice.first_failed_at, retries_done=invoice.retries_done,
                                now=now)
        pending = session.execute(select(Payment.id).where(Payment.invoice_id == invoice.id,
                                                           Payment.status == "pending")).first()
        if action == "retry" and not pending:
            invoice.retries_done += 1
        elif action == "drop_to_hobby" and account.plan != "hobby":
            journal = Journal(account.id, now)
            drop_to_hobby(billing, account, journal, why=f"invoice {invoice.number} unpaid for 7 days")
            finish(session, account, journal, now)
            result.dropped_to_hobby += 1
            return
        else:
            return
    result.retried += 1
    _attempt(billing, provider, invoice_id, now, result, retry=True)


def drop_to_hobby(billing: Billing, account, journal: Journal, *, why: str) -> None:
    """Move a locked account to hobby at once (its allowance then is hobby's)."""
    hobby = billing.catalog.plan("hobby")
    before = account.plan
    added_ms = hobby.included_ms - account.included_ms
    account.plan, account.pending_plan, account.included_ms = "hobby", None, hobby.included_ms
    account.spend_cap_micros = hobby.spend_cap_micros if hobby.overage else None
    journal.entry(book="allowance", kind="plan_change", amount=added_ms,
                  balance_after=max(0, account.included_ms - account.used_ms), period_start=account.period_start,
                  ref_type="job", ref_id=f"dunning:{account.id}:{journal.now.isoformat()}")
    journal.activity("plan_changed", account.id, f"Plan dropped from {before} to hobby: {why}.")
