"""What a succeeded payment gives and what a refund takes back, written to a locked account inside the
caller's transaction, each with its ledger entry and activity row. The amounts come from rules.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from ..db.models import Account, Invoice, Pool
from ..db.payments import Payment
from ..ids import new_id
from ..invoices import prorate_upgrade
from ..money import format_usd
from ..periods import Period as PeriodSpan
from ..plans import Catalog
from ..sync.outbox import account_item, note_changed
from ..services.journal import Journal
from ..services.state import balances_of, live_pools, refresh_status
from .rules import Grant, Purchase, grant_for, refund_take_back

ITEM_WORDS = {"credit": "credit", "pool_pack": "pool pack", "plan": "plan upgrade", "invoice": "invoice"}


def purchase_of(payment: Payment) -> Purchase:
    return Purchase(payment.item, payment.amount_micros, quantity=payment.quantity, plan=payment.plan)


def describe(payment: Payment) -> str:
    """One line naming what the payment bought, for activity rows, receipts and the provider's page."""
    if payment.item == "credit":
        return f"{format_usd(payment.amount_micros)} credit"
    if payment.item == "pool_pack":
        return f"{payment.quantity} pool pack{'s' if payment.quantity != 1 else ''}"
    if payment.item == "plan":
        return f"upgrade to {payment.plan}"
    return f"invoice {payment.invoice_id}"


def grant(session: Session, catalog: Catalog, account: Account, payment: Payment, now: datetime,
          journal: Journal) -> None:
    """Give what the payment bought. The caller has made sure, under the account's lock, that this payment
    was not granted before (payments.granted_at)."""
    ref = dict(period_start=account.period_start, ref_type="payment", ref_id=payment.id)
    if payment.item == "credit":
        account.credit_balance_micros += payment.amount_micros
        journal.entry(book="credit", kind="purchase", amount=payment.amount_micros,
                      balance_after=account.credit_balance_micros, **ref)
    elif payment.item == "pool_pack":
        given = grant_for(catalog, purchase_of(payment))
        pool = Pool(id=new_id("pool"), account_id=account.id, size_ms=given.pool_ms, remaining_ms=given.pool_ms,
                    price_micros=payment.amount_micros, purchased_at=now,
                    expires_at=now + timedelta(days=given.pool_valid_days))
        session.add(pool)
        payment.pool_id = pool.id
        journal.entry(book="pool", kind="purchase", amount=given.pool_ms, balance_after=given.pool_ms,
                      pool_id=pool.id, **ref)
    elif payment.item == "plan":
        _upgrade_paid(catalog, account, payment, now, journal)
    elif payment.item == "invoice":
        invoice = session.get(Invoice, payment.invoice_id)
        if invoice is not None and invoice.status in ("open", "past_due"):
            invoice.status, invoice.paid_at, invoice.payment_id = "paid", now, payment.id
            journal.activity("invoice_paid", invoice.id, f"Invoice {invoice.number or invoice.id} paid.")
        else:  # paid twice (collected and paid by hand at once): the second payment is not lost
            _as_credit(account, payment, journal, "invoice_paid_twice",
                       f"Invoice {invoice.number if invoice else payment.invoice_id} was paid already: the "
                       f"{format_usd(payment.amount_micros)} was added as credit.")
    journal.activity("payment_succeeded", payment.id,
                     f"Payment of {format_usd(payment.amount_micros)} succeeded: {describe(payment)}.")


def _upgrade_paid(catalog: Catalog, account: Account, payment: Payment, now: datetime, journal: Journal) -> None:
    """The upgrade the payment paid for. When the account is already on that plan or above (an upgrade paid
    twice, or made another way meanwhile), the money becomes credit: nothing paid is lost."""
    plan = payment.plan or ""
    if plan not in catalog.plans or not catalog.is_upgrade(account.plan, plan):
        _as_credit(account, payment, journal, "plan_payment_credited",
                   f"Already on {account.plan}: the {format_usd(payment.amount_micros)} paid for {plan} was added "
                   "as credit.")
        return
    new = catalog.plan(plan)
    added_ms = new.included_ms - account.included_ms
    account.included_ms = new.included_ms
    journal.entry(book="allowance", kind="plan_change", amount=added_ms,
                  balance_after=max(0, account.included_ms - account.used_ms), period_start=account.period_start,
                  ref_type="payment", ref_id=payment.id)
    account.spend_cap_micros = new.spend_cap_micros if new.overage else None
    journal.activity("plan_changed", account.id, f"Plan upgraded from {account.plan} to {plan}.")
    account.plan, account.pending_plan = plan, None


def _as_credit(account: Account, payment: Payment, journal: Journal, kind: str, text: str) -> None:
    """A payment whose purchase cannot be given any more becomes credit: money paid is never lost."""
    account.credit_balance_micros += payment.amount_micros
    journal.entry(book="credit", kind="purchase", amount=payment.amount_micros,
                  balance_after=account.credit_balance_micros, period_start=account.period_start,
                  ref_type="payment", ref_id=payment.id)
    journal.activity(kind, payment.id, text)


def upgrade_due_micros(catalog: Catalog, account: Account, plan: str, now: datetime) -> int:
    """The prorated difference an upgrade to `plan` costs now (before rounding to cents)."""
    old, new = catalog.plan(account.plan), catalog.plan(plan)
    return prorate_upgrade(old_price_micros=old.price_micros, new_price_micros=new.price_micros,
                           period=PeriodSpan(account.period_start, account.period_end), at=now)


def take_back(session: Session, catalog: Catalog, account: Account, payment: Payment, refunded_micros: int,
              journal: Journal, *, kind: str = "refund") -> None:
    """Take back what `refunded_micros` more of a granted payment paid for (rules.refund_take_back):
    credit (below zero as debt where spent), the pool's remainder, its spent part as compute debt."""
    if refunded_micros <= 0:
        return
    purchase = purchase_of(payment)
    given = grant_for(catalog, purchase) if payment.item in ("credit", "pool_pack") else Grant()
    pool = session.get(Pool, payment.pool_id) if payment.pool_id else None
    back = refund_take_back(given, paid_micros=payment.amount_micros, refunded_micros=refunded_micros,
                            refunded_before_micros=payment.taken_back_micros,
                            pool_remaining_ms=pool.remaining_ms if pool and pool.expired_at is None else 0,
                            rate_micros_per_second=catalog.compute_rate_micros_per_second)
    payment.taken_back_micros += refunded_micros
    ref = dict(period_start=account.period_start, ref_type="payment", ref_id=payment.id)
    if back.pool_ms and pool is not None:
        pool.remaining_ms -= back.pool_ms
        journal.entry(book="pool", kind=kind, amount=-back.pool_ms, balance_after=pool.remaining_ms,
                      pool_id=pool.id, **ref)
    if back.debit_micros:
        account.credit_balance_micros -= back.debit_micros
        journal.entry(book="credit", kind=kind, amount=-back.debit_micros,
                      balance_after=account.credit_balance_micros, **ref)
    what = "refund" if kind == "refund" else "lost dispute"
    journal.activity(f"payment_{kind}", payment.id,
                     f"{format_usd(refunded_micros)} of payment {payment.id} taken back ({what}).")


def finish(session: Session, account: Account, journal: Journal, now: datetime) -> None:
    """Status, the edge's copy and the journal, after a change to a locked account."""
    session.flush()
    refresh_status(account, balances_of(account, live_pools(session, account.id), now), journal)
    note_changed(session, now, account_item(account.id))
    journal.flush(session)


def has_unpaid_invoice(session: Session, account_id: str) -> bool:
    return session.execute(select(Invoice.id).where(Invoice.account_id == account_id,
                                                    Invoice.status == "past_due").limit(1)).first() is not None
