"""Starting payments: a hosted checkout the customer is sent to, or an off-session charge of the saved
method. Each writes its payment row (pending) before the provider is called, so every call carries our id
and an idempotency key, and an answer lost on the way is matched when the provider's event arrives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from ..db.engine import lock_account, read_session, write_session
from ..db.models import Account, Invoice
from ..db.payments import Checkout, Payment, PaymentMethod
from ..errors import Conflict, Invalid, NotFound, ServiceError
from ..ids import new_id
from ..services.context import Billing
from ..services.periods import bring_up_to_date
from ..services.journal import Journal
from ..services.standing import refuse_if_suspended
from . import provider as p
from .apply import Applied, apply_event
from .grants import describe, upgrade_due_micros
from .rules import Purchase, charge_micros, credit_purchase, plan_purchase, pool_purchase

CHECKOUT_TTL = timedelta(hours=1)
ITEMS = ("credit", "pool_pack", "plan", "invoice")


class ProviderUnavailable(ServiceError):
    status = 502

    def __init__(self, detail: str) -> None:
        super().__init__(f"The payment provider could not be reached: {detail}", code="provider_unavailable")


@dataclass(frozen=True)
class CheckoutView:
    id: str
    url: str
    status: str
    expires_at: datetime
    payment_id: str
    amount_micros: int
    item: str

    def public(self) -> dict:
        return {"id": self.id, "url": self.url, "status": self.status, "expires_at": self.expires_at,
                "payment_id": self.payment_id, "amount_micros": self.amount_micros, "item": self.item}


def _view(checkout: Checkout, payment: Payment) -> CheckoutView:
    return CheckoutView(checkout.id, checkout.url, checkout.status, checkout.expires_at, payment.id,
                        payment.amount_micros, payment.item)


def price(session: Session, billing: Billing, account: Account, body: dict, now: datetime) -> Purchase:
    """What the body asks to buy, priced for this account now (Invalid names the field that is wrong)."""
    item = body.get("item")
    if item == "credit":
        return credit_purchase(body.get("amount_micros"))
    if item == "pool_pack":
        return pool_purchase(billing.catalog, body.get("quantity"))
    if item == "plan":
        plan = body.get("plan")
        due = upgrade_due_micros(billing.catalog, account, plan, now) if plan in billing.catalog.plans else 0
        purchase = plan_purchase(billing.catalog, plan, current_plan=account.plan, proration_micros=due)
        if purchase.amount_micros <= 0:
            raise Invalid("Nothing is owed for this upgrade now; change the plan directly.", code="nothing_to_pay")
        return purchase
    if item == "invoice":
        invoice_id = body.get("invoice_id")
        invoice = session.get(Invoice, invoice_id) if isinstance(invoice_id, str) else None
        if invoice is None or invoice.account_id != account.id:
            raise NotFound(f"No invoice with id {invoice_id}.")
        if invoice.status not in ("open", "past_due") or charge_micros(invoice.total_micros) <= 0:
            raise Conflict(f"Invoice {invoice.id} is {invoice.status}; nothing to pay.", code="invoice_not_payable")
        return Purchase("invoice", charge_micros(invoice.total_micros))
    raise Invalid(f"item must be one of {', '.join(ITEMS)}.", code="invalid_item")


def _new_payment(account_id: str, provider: str, purchase: Purchase, *, source: str, idempotency_key: str,
                 now: datetime, invoice_id: str | None = None, checkout_id: str | None = None) -> Payment:
    return Payment(id=new_id("pay"), account_id=account_id, provider=provider, checkout_id=checkout_id,
                   source=source, item=purchase.item, quantity=purchase.quantity, plan=purchase.plan,
                   invoice_id=invoice_id, amount_micros=purchase.amount_micros, status="pending",
                   idempotency_key=idempotency_key[:200], created_at=now, updated_at=now)


def start_checkout(billing: Billing, provider: p.Provider, account_id: str, body: dict, *, success_url: str,
                   cancel_url: str, now: datetime, idempotency_key: str | None = None) -> CheckoutView:
    """A hosted checkout for what `body` asks to buy; the same `idempotency_key` gives the same checkout."""
    with write_session(billing.engine) as session:
        account = lock_account(session, account_id)
        if account is None:
            raise NotFound(f"No account with id {account_id}.")
        refuse_if_suspended(session, account_id, account)
        if idempotency_key:
            earlier = session.execute(select(Checkout).where(Checkout.account_id == account_id,
                                                             Checkout.idempotency_key == idempotency_key[:200])
                                      ).scalar_one_or_none()
            if earlier is not None:
                payment = session.get(Payment, earlier.payment_id)
                if payment.item != body.get("item"):
                    raise Conflict("This Idempotency-Key was used for another checkout.",
                                   code="idempotency_conflict")
                return _view(earlier, payment)
        bring_up_to_date(session, billing.catalog, account, now, Journal(account_id, now))
        purchase = price(session, billing, account, body, now)
        checkout_id = new_id("chk")
        # The way back names the checkout, so the page the customer returns to can follow it.
        success_url = success_url.replace("{CHECKOUT_ID}", checkout_id)
        cancel_url = cancel_url.replace("{CHECKOUT_ID}", checkout_id)
        payment = _new_payment(account_id, provider.name, purchase, source="checkout", checkout_id=checkout_id,
                               idempotency_key=f"checkout-{checkout_id}", now=now,
                               invoice_id=body.get("invoice_id") if purchase.item == "invoice" else None)
        method = session.get(PaymentMethod, account_id)
        checkout = Checkout(id=checkout_id, account_id=account_id, provider=provider.name, payment_id=payment.id,
                            url="", return_url=success_url, status="open",
                            idempotency_key=idempotency_key[:200] if idempotency_key else None, created_at=now,
                            expires_at=now + CHECKOUT_TTL)
        session.add(payment)
        session.add(checkout)
        email = account.email
        customer_ref = method.customer_ref if method is not None and method.provider == provider.name else None
    request = p.CheckoutRequest(checkout_id=checkout_id, account_id=account_id, email=email,
                                description=f"Tollgate {describe(payment)}", amount_micros=payment.amount_micros,
                                success_url=success_url, cancel_url=cancel_url, customer_ref=customer_ref,
                                payment_id=payment.id)
    try:
        session_at_provider = provider.create_checkout(request)
    except p.ProviderError as exc:
        _give_up(billing, payment.id, checkout_id, str(exc))
        raise ProviderUnavailable(str(exc)) from None
    with write_session(billing.engine) as session:
        checkout = session.get(Checkout, checkout_id)
        checkout.provider_ref, checkout.url = session_at_provider.provider_ref, session_at_provider.url
        if session_at_provider.expires_at is not None:
            checkout.expires_at = session_at_provider.expires_at
        return _view(checkout, session.get(Payment, payment.id))


def _give_up(billing: Billing, payment_id: str, checkout_id: str | None, why: str) -> None:
    with write_session(billing.engine) as session:
        payment = session.get(Payment, payment_id)
        if payment is not None and payment.status == "pending" and payment.granted_at is None:
            payment.status, payment.failure_message = "failed", why[:300]
        checkout = session.get(Checkout, checkout_id) if checkout_id else None
        if checkout is not None and checkout.status == "open":
            checkout.status = "failed"


def get_checkout(billing: Billing, account_id: str, checkout_id: str) -> CheckoutView:
    with read_session(billing.engine) as session:
        checkout = session.get(Checkout, checkout_id)
        if checkout is None or checkout.account_id != account_id:
            raise NotFound(f"No checkout with id {checkout_id}.")
        return _view(checkout, session.get(Payment, checkout.payment_id))


@dataclass(frozen=True)
class ChargeStarted:
    payment_id: str
    status: str  # succeeded | pending | failed
    failure_message: str | None = None


def charge_saved_method(billing: Billing, provider: p.Provider, payment: Payment, method: PaymentMethod, *,
                        now: datetime) -> ChargeStarted:
    """Charge a payment row the caller has committed (pending) to the saved method, and apply the answer
    through the same exactly-once path as a webhook (the provider's later event then changes nothing)."""
    request = p.ChargeRequest(payment_id=payment.id, account_id=payment.account_id,
                              amount_micros=payment.amount_micros, description=f"Tollgate {describe(payment)}",
                              method=p.SavedMethod(method.method_ref, method.customer_ref, method.brand,
                                                   method.last4),
                              idempotency_key=payment.idempotency_key)
    try:
        answer = provider.charge(request)
    except p.ProviderError as exc:
        answer = p.ChargeResult("failed", None, f"The payment provider could not be reached: {exc}")
    if answer.status == "pending":
        if answer.provider_payment_id:
            with write_session(billing.engine) as session:
                row = session.get(Payment, payment.id)
                row.provider_payment_id = row.provider_payment_id or answer.provider_payment_id
        return ChargeStarted(payment.id, "pending")
    kind = p.PAYMENT_SUCCEEDED if answer.status == "succeeded" else p.PAYMENT_FAILED
    event = p.PaymentEvent(provider=provider.name, event_id=f"charge:{payment.id}", type=f"charge.{answer.status}",
                           kind=kind, occurred_at=now, payment_id=payment.id, account_id=payment.account_id,
                           provider_payment_id=answer.provider_payment_id, amount_micros=None,
                           failure_message=answer.failure_message)
    applied: Applied = apply_event(billing, event, now=now)
    del applied
    return ChargeStarted(payment.id, answer.status, answer.failure_message)


def saved_method(billing: Billing, account_id: str, provider_name: str) -> PaymentMethod | None:
    with read_session(billing.engine) as session:
        method = session.get(PaymentMethod, account_id)
        return method if method is not None and method.provider == provider_name else None


def new_off_session_payment(session: Session, account_id: str, provider_name: str, purchase: Purchase, *,
                            source: str, idempotency_key: str, now: datetime,
                            invoice_id: str | None = None) -> Payment:
    """A pending payment row for an off-session charge, added to the caller's transaction."""
    payment = _new_payment(account_id, provider_name, purchase, source=source, idempotency_key=idempotency_key,
                           now=now, invoice_id=invoice_id)
    session.add(payment)
    return payment


def expire_checkouts(billing: Billing, now: datetime) -> int:
    """Open checkouts past their expiry become `expired` and their unpaid payment `failed`; a success that
    still arrives later is granted all the same (apply.py grants whatever state the payment is in)."""
    from sqlalchemy import update

    with write_session(billing.engine) as session:
        expired = session.execute(select(Checkout.id, Checkout.payment_id).where(
            Checkout.status == "open", Checkout.expires_at <= now)).all()
        if not expired:
            return 0
        session.execute(update(Checkout).where(Checkout.id.in_([c for c, _ in expired]), Checkout.status == "open")
                        .values(status="expired"))
        session.execute(update(Payment).where(Payment.id.in_([p for _, p in expired]), Payment.status == "pending",
                                              Payment.granted_at.is_(None))
                        .values(status="failed", failure_message="The checkout expired before it was paid.",
                                updated_at=now))
        return len(expired)
