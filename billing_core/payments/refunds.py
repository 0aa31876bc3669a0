"""Refunds and disputes an operator starts (`tollgate admin refund`, the sandbox's disputes): asked of the
provider, then applied through the same exactly-once path as the provider's own event about it."""

from __future__ import annotations

from datetime import datetime

from ..db.engine import read_session
from ..db.payments import Payment
from ..errors import Conflict, Invalid, NotFound
from ..services.context import Billing
from . import provider as p
from .apply import Applied, apply_event
from .rules import MICROS_PER_CENT


def refund_payment(billing: Billing, provider: p.Provider, payment_id: str, *, amount_micros: int | None,
                   now: datetime, reason: str | None = None) -> Applied:
    """Refund `amount_micros` (all that is left when None) of a succeeded payment."""
    with read_session(billing.engine) as session:
        payment = session.get(Payment, payment_id)
    if payment is None:
        raise NotFound(f"No payment with id {payment_id}.")
    if payment.provider != provider.name:
        raise Conflict(f"Payment {payment_id} was made with {payment.provider}; this server uses {provider.name}.",
                       code="other_provider")
    if payment.granted_at is None or payment.provider_payment_id is None:
        raise Conflict(f"Payment {payment_id} is {payment.status}; only a succeeded payment is refunded.",
                       code="not_refundable")
    left = payment.amount_micros - payment.refunded_micros
    amount = left if amount_micros is None else amount_micros
    if not 0 < amount <= left or amount % MICROS_PER_CENT:
        raise Invalid(f"A refund is whole cents, more than 0 and at most the {left} micros not yet refunded.",
                      code="invalid_amount")
    key = f"refund-{payment.id}-{payment.refunded_micros}-{amount}"
    answer = provider.refund(provider_payment_id=payment.provider_payment_id, amount_micros=amount,
                             idempotency_key=key, reason=reason)
    if answer.status != "succeeded":
        raise Conflict(f"The provider says the refund is {answer.status}; it is applied when it succeeds.",
                       code="refund_pending")
    event = p.PaymentEvent(provider=provider.name, event_id=f"refund:{answer.provider_refund_id}",
                           type="refund.created", kind=p.REFUND_SUCCEEDED, occurred_at=now, payment_id=payment.id,
                           account_id=payment.account_id, provider_payment_id=payment.provider_payment_id,
                           amount_micros=answer.amount_micros, provider_refund_id=answer.provider_refund_id)
    return apply_event(billing, event, now=now)
