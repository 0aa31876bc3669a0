"""Applying what a provider says (a verified webhook event, or the answer to an off-session charge) to the
ledger, exactly once whatever the number, order or timing of deliveries.

Once rests on three things, all in the transaction that changes the ledger, under the account's lock: the
event's unique (provider, event_id) row; the payment's unique (provider, provider_payment_id); and the grant
as a conditional UPDATE of `payments.granted_at`. A refund that arrives before its payment's success is
recorded and taken back when the success arrives, so any order ends in the same state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from .. import notify
from ..db.engine import lock_account, read_session, write_session
from ..db.models import Account, Invoice
from ..db.payments import AutoTopUpSettings, Checkout, Payment, PaymentEvent, PaymentMethod, Refund
from ..errors import Conflict
from ..ids import new_id
from ..money import format_usd
from ..services.context import Billing
from ..services.journal import Journal
from ..services.periods import bring_up_to_date
from . import provider as p
from .grants import finish, grant, take_back
from .numbers import next_number
from .rules import AUTO_TOP_UP_MAX_FAILURES

log = logging.getLogger("billing_core.payments")

# Outcomes, recorded on the event row and answered to the route.
APPLIED, NO_CHANGE, IGNORED, UNMATCHED, MISMATCH, DUPLICATE = (
    "applied", "no_change", "ignored", "unmatched", "mismatch", "duplicate")
_REFUNDISH = (p.REFUND_SUCCEEDED, p.DISPUTE_OPENED, p.DISPUTE_WON, p.DISPUTE_LOST)


class NotYetKnown(Conflict):
    """A refund or dispute for a payment we cannot match yet (its success has not arrived and the event
    carries none of our ids): answered 409 so the provider delivers it again later."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="payment_not_yet_known")


@dataclass(frozen=True)
class Applied:
    outcome: str
    account_id: str | None = None
    payment_id: str | None = None
    detail: str = ""


def _find_payment(session: Session, event: p.PaymentEvent) -> Payment | None:
    if event.payment_id:
        found = session.get(Payment, event.payment_id)
        if found is not None and found.provider == event.provider:
            return found
    if event.checkout_id:
        checkout = session.get(Checkout, event.checkout_id)
        if checkout is not None and checkout.provider == event.provider:
            return session.get(Payment, checkout.payment_id)
    if event.provider_payment_id:
        return session.execute(select(Payment).where(
            Payment.provider == event.provider,
            Payment.provider_payment_id == event.provider_payment_id)).scalar_one_or_none()
    return None


def apply_event(billing: Billing, event: p.PaymentEvent, *, now: datetime) -> Applied:
    """Apply one verified event once; a second delivery of the same event id is DUPLICATE and changes nothing.
    Raises NotYetKnown for a refund or dispute of a payment not matched yet (the provider retries)."""
    with read_session(billing.engine) as session:
        found = _find_payment(session, event)
    if found is None and event.kind in _REFUNDISH:
        raise NotYetKnown(f"No payment matches {event.type} {event.event_id} yet.")
    try:
        with write_session(billing.engine) as session:
            result = _apply_in(session, billing, event, found.id if found else None, now)
    except IntegrityError:
        # The event row (or a provider id) exists: another delivery of the same event committed first.
        return Applied(DUPLICATE, found.account_id if found else None, found.id if found else None)
    if result.outcome == APPLIED and result.account_id:
        notify.account_changed(result.account_id)
    return result


def _record(session: Session, event: p.PaymentEvent, result: Applied, now: datetime) -> Applied:
    session.add(PaymentEvent(provider=event.provider, event_id=event.event_id[:200], type=event.type[:80],
                             outcome=result.outcome, account_id=result.account_id, payment_id=result.payment_id,
                             detail=result.detail[:300], received_at=now))
    session.flush()  # the unique (provider, event_id): a duplicate stops here, before anything else is written
    return result


def _apply_in(session: Session, billing: Billing, event: p.PaymentEvent, payment_id: str | None,
              now: datetime) -> Applied:
    if payment_id is None:
        outcome = IGNORED if event.kind == p.IGNORED else UNMATCHED
        if outcome == UNMATCHED:
            log.warning("payment event %s %s matches no payment of ours", event.provider, event.event_id)
        return _record(session, event, Applied(outcome, detail="no payment of ours matches"), now)
    head = session.get(Payment, payment_id)
    account = lock_account(session, head.account_id)
    session.refresh(head)  # read again under the lock: another delivery may have changed it meanwhile
    payment = head
    if event.account_id and event.account_id != payment.account_id:
        log.warning("payment event %s names account %s, its payment %s belongs to %s", event.event_id,
                    event.account_id, payment.id, payment.account_id)
        return _record(session, event, Applied(MISMATCH, payment.account_id, payment.id,
                                               "the event names another account than its payment"), now)
    if event.kind == p.IGNORED:
        return _record(session, event, Applied(IGNORED, account.id, payment.id), now)
    # Recorded first: a duplicate delivery fails here and rolls back before anything changes.
    result = _record(session, event, Applied(APPLIED, account.id, payment.id), now)
    journal = Journal(account.id, now)
    bring_up_to_date(session, billing.catalog, account, now, journal)
    detail = _dispatch(session, billing, event, account, payment, journal, now)
    if detail:  # nothing to do: the event row says why
        row = session.execute(select(PaymentEvent).where(PaymentEvent.provider == event.provider,
                                                         PaymentEvent.event_id == event.event_id[:200])).scalar_one()
        row.outcome, row.detail = detail[0], detail[1][:300]
        result = Applied(detail[0], account.id, payment.id, detail[1])
    payment.updated_at = now
    finish(session, account, journal, now)
    return result


def _dispatch(session, billing, event, account, payment, journal, now) -> tuple[str, str] | None:
    """Do what the event says; None when applied, else (outcome, why nothing was done)."""
    if event.provider_payment_id and payment.provider_payment_id not in (None, event.provider_payment_id):
        if event.kind in (p.PAYMENT_SUCCEEDED, p.PAYMENT_FAILED):
            return MISMATCH, f"payment {payment.id} is {payment.provider_payment_id} at the provider"
    if event.kind == p.PAYMENT_SUCCEEDED:
        return _succeeded(session, billing, event, account, payment, journal, now)
    if event.kind in (p.PAYMENT_FAILED, p.CHECKOUT_EXPIRED):
        return _failed(session, event, account, payment, journal, now)
    if event.kind == p.REFUND_SUCCEEDED:
        return _refunded(session, billing, event, account, payment, journal, now)
    return _disputed(session, billing, event, account, payment, journal, now)


def _succeeded(session, billing, event, account, payment, journal, now) -> tuple[str, str] | None:
    if event.amount_micros is not None and event.amount_micros != payment.amount_micros:
        journal.activity("payment_mismatch", payment.id,
                         f"The provider reported {format_usd(event.amount_micros)} for a payment of "
                         f"{format_usd(payment.amount_micros)}; nothing granted, an operator must look.")
        return MISMATCH, "amount differs from the payment's"
    if event.provider_payment_id and payment.provider_payment_id is None:
        payment.provider_payment_id = event.provider_payment_id
    if event.method is not None and event.method.method_ref:  # (Stripe's session event names the customer only)
        _save_method(session, account.id, event.provider, event.method, now)
    granted = session.execute(update(Payment).where(Payment.id == payment.id, Payment.granted_at.is_(None))
                              .values(granted_at=now).execution_options(synchronize_session=False)).rowcount
    if granted != 1:
        return NO_CHANGE, "granted already"
    session.refresh(payment)
    payment.status = "succeeded"
    card = event.method if event.method is not None and event.method.last4 else session.get(PaymentMethod, account.id)
    if card is not None and (not isinstance(card, PaymentMethod) or card.provider == payment.provider):
        payment.card_brand, payment.card_last4 = card.brand[:32], card.last4[:4]
    payment.receipt_number = next_number(session, "receipt")
    grant(session, billing.catalog, account, payment, now, journal)
    _close_checkout(session, payment, "complete")
    if payment.source == "auto_top_up":
        _top_up_settled(session, account.id, payment.id, ok=True)
    if payment.refunded_micros > payment.taken_back_micros:  # refunds that arrived before this success
        take_back(session, billing.catalog, account, payment, payment.refunded_micros - payment.taken_back_micros,
                  journal)
    _set_refund_status(payment)
    if payment.dispute == "lost":
        _lose_dispute(session, billing, account, payment, journal)
    return None


def _failed(session, event, account, payment, journal, now) -> tuple[str, str] | None:
    if payment.granted_at is not None or payment.status == "failed":
        return NO_CHANGE, f"payment is {payment.status}"
    payment.status = "failed"
    payment.failure_message = (event.failure_message or "The payment did not go through.")[:300]
    _close_checkout(session, payment, "expired" if event.kind == p.CHECKOUT_EXPIRED else "failed")
    journal.activity("payment_failed", payment.id, f"Payment of {format_usd(payment.amount_micros)} failed: "
                                                   f"{payment.failure_message}")
    if payment.source == "auto_top_up":
        _top_up_settled(session, account.id, payment.id, ok=False, journal=journal)
    if payment.source == "invoice" and payment.invoice_id:
        invoice = session.get(Invoice, payment.invoice_id)
        if invoice is not None and invoice.status in ("open", "past_due"):
            invoice.status = "past_due"
            invoice.first_failed_at = invoice.first_failed_at or now
    return None


def _refunded(session, billing, event, account, payment, journal, now) -> tuple[str, str] | None:
    if event.provider_refund_id and session.execute(select(Refund.id).where(
            Refund.provider == payment.provider, Refund.provider_refund_id == event.provider_refund_id)).first():
        return NO_CHANGE, "refund recorded already"
    if event.refunded_total_micros is not None:
        total = event.refunded_total_micros
    else:
        total = payment.refunded_micros + (event.amount_micros or 0)
    total = min(total, payment.amount_micros)
    delta = total - payment.refunded_micros
    if delta <= 0:
        return NO_CHANGE, "no more refunded than known"
    session.add(Refund(id=new_id("rfd"), account_id=account.id, payment_id=payment.id, provider=payment.provider,
                       provider_refund_id=(event.provider_refund_id or f"event:{event.event_id}")[:200],
                       amount_micros=delta, created_at=now))
    payment.refunded_micros = total
    if payment.granted_at is not None:
        take_back(session, billing.catalog, account, payment, delta, journal)
    else:
        journal.activity("payment_refund", payment.id, f"{format_usd(delta)} of payment {payment.id} refunded "
                                                       "before its success arrived; taken back when it does.")
    _set_refund_status(payment)
    return None


def _disputed(session, billing, event, account, payment, journal, now) -> tuple[str, str] | None:
    if event.kind == p.DISPUTE_OPENED:
        if payment.dispute == "open":
            return NO_CHANGE, "dispute open already"
        payment.dispute, payment.status = "open", "disputed"
        account.suspended = True
        journal.activity("payment_disputed", payment.id,
                         f"Payment of {format_usd(payment.amount_micros)} disputed; the account is suspended "
                         "until an operator resumes it.")
        return None
    if payment.dispute in ("won", "lost"):
        return NO_CHANGE, f"dispute {payment.dispute} already"
    if event.kind == p.DISPUTE_WON:
        payment.dispute = "won"
        _set_refund_status(payment)
        journal.activity("dispute_won", payment.id, f"Dispute of payment {payment.id} won.")
        return None
    payment.dispute, payment.status = "lost", "disputed"
    _lose_dispute(session, billing, account, payment, journal)
    return None


def _lose_dispute(session, billing, account, payment, journal) -> None:
    """A lost dispute takes back everything not refunded already (once the payment was granted)."""
    if payment.granted_at is None:
        return
    rest = payment.amount_micros - payment.taken_back_micros
    if rest > 0:
        take_back(session, billing.catalog, account, payment, rest, journal, kind="dispute_lost")


def _set_refund_status(payment: Payment) -> None:
    if payment.dispute in ("open", "lost"):
        payment.status = "disputed"
    elif payment.granted_at is None:
        return
    elif payment.refunded_micros >= payment.amount_micros:
        payment.status = "refunded"
    elif payment.refunded_micros:
        payment.status = "partially_refunded"
    else:
        payment.status = "succeeded"


def _close_checkout(session: Session, payment: Payment, status: str) -> None:
    if payment.checkout_id:
        checkout = session.get(Checkout, payment.checkout_id)
        if checkout is not None and (checkout.status == "open" or status == "complete"):
            checkout.status = status


def _save_method(session: Session, account_id: str, provider: str, method: p.SavedMethod, now: datetime) -> None:
    row = session.get(PaymentMethod, account_id)
    if row is None:
        row = PaymentMethod(account_id=account_id, provider=provider, method_ref=method.method_ref, updated_at=now)
        session.add(row)
    row.provider, row.method_ref, row.updated_at = provider, method.method_ref, now
    row.customer_ref = method.customer_ref or (row.customer_ref if row.provider == provider else None)
    row.brand, row.last4 = method.brand[:32], method.last4[:4]


def _top_up_settled(session: Session, account_id: str, payment_id: str, *, ok: bool,
                    journal: Journal | None = None) -> None:
    settings = session.get(AutoTopUpSettings, account_id)
    if settings is None or settings.in_flight_payment_id != payment_id:
        return
    settings.in_flight_payment_id = None
    settings.failures = 0 if ok else settings.failures + 1
    if not ok and settings.failures >= AUTO_TOP_UP_MAX_FAILURES and journal is not None:
        settings.enabled = False
        journal.activity("auto_top_up_disabled", account_id,
                         f"Auto top-up turned off after {settings.failures} failed charges in a row; "
                         "update the payment method and turn it back on.")


def account_of(session: Session, account_id: str) -> Account | None:
    return session.get(Account, account_id)
