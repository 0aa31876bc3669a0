"""The sandbox provider: a payment provider built into the app for `make run`, the demo and tests. It has a
hosted checkout page of its own (portal/api/sandbox_checkout.py), test cards, saved cards, off-session
charges, refunds and disputes, its own records (sandbox_charges), and it tells the app what happened only the
way a real provider does: Standard-Webhooks-signed events delivered over HTTP to /webhooks/sandbox by a job
(sandbox_delivery.py), retried until answered, now and then twice or out of order when `chaos` > 0.

Test cards (API.md): 4242424242424242 succeeds; 4000000000000002 is declined; 4000000000003220 succeeds after a
delay (async); 4000000000000341 succeeds at checkout but every later off-session charge of it is declined.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping

from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from ..db.engine import read_session, write_session
from ..db.payments import Checkout, Payment, SandboxCharge, SandboxDelivery
from ..ids import new_id
from ..services.context import Billing
from . import provider as p

CARD_SUCCEEDS = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_DELAYED = "4000000000003220"
CARD_LATER_DECLINED = "4000000000000341"
TEST_CARDS = (CARD_SUCCEEDS, CARD_DECLINED, CARD_DELAYED, CARD_LATER_DECLINED)
ASYNC_DELAY = timedelta(seconds=3)
DECLINE_MESSAGE = "Your card was declined."


@dataclass(frozen=True)
class PayOutcome:
    status: str  # succeeded | pending | failed
    message: str
    charge_id: str | None = None


def _card_token(card: str) -> str:
    return f"sbcard_{card[-4:]}"


def _event(kind: str, *, charge: SandboxCharge, now: datetime, **extra) -> str:
    data = {"payment_id": charge.id, "checkout_id": charge.checkout_id, "amount_micros": charge.amount_micros,
            "currency": "usd", "metadata": {"payment_id": charge.payment_id, "account_id": charge.account_id}}
    data.update(extra)
    return json.dumps({"type": kind, "timestamp": now.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
                       "data": data}, separators=(",", ":"))


class SandboxProvider:
    """The sandbox, with its secret (`whsec_...`) and the app's public URL for its hosted pages."""

    name = "sandbox"

    def __init__(self, billing: Billing, *, webhook_secret: str, public_url: str) -> None:
        self.billing, self.secret, self.public_url = billing, webhook_secret, public_url.rstrip("/")

    # -- what the services call ------------------------------------------------------------------
    def create_checkout(self, request: p.CheckoutRequest) -> p.CheckoutSession:
        return p.CheckoutSession(provider_ref=request.checkout_id,
                                 url=f"{self.public_url}/checkout/sandbox/{request.checkout_id}")

    def charge(self, request: p.ChargeRequest) -> p.ChargeResult:
        card = request.method.method_ref
        if not card.startswith("sbcard_"):
            return p.ChargeResult("failed", None, "This payment method is not a sandbox card.")
        now = datetime.now(timezone.utc)
        charge_id = "sbp_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:20]
        declined = card.endswith(CARD_DECLINED[-4:]) or card.endswith(CARD_LATER_DECLINED[-4:])
        with write_session(self.billing.engine) as session:
            earlier = session.get(SandboxCharge, charge_id)  # the same idempotency key: the same charge
            if earlier is None:
                earlier = SandboxCharge(id=charge_id, payment_id=request.payment_id, account_id=request.account_id,
                                        amount_micros=request.amount_micros, status="failed" if declined else
                                        "succeeded", card_last4=card[-4:], created_at=now)
                session.add(earlier)
                kind = "payment.failed" if declined else "payment.succeeded"
                extra = {"error": DECLINE_MESSAGE} if declined else {}
                self._enqueue(session, _event(kind, charge=earlier, now=now, **extra), now)
        if earlier.status == "failed":
            return p.ChargeResult("failed", earlier.id, DECLINE_MESSAGE)
        return p.ChargeResult("succeeded", earlier.id)

    def refund(self, *, provider_payment_id: str, amount_micros: int, idempotency_key: str,
               reason: str | None = None) -> p.RefundResult:
        refund_id = "sbr_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]
        now = datetime.now(timezone.utc)
        with write_session(self.billing.engine) as session:
            charge = session.get(SandboxCharge, provider_payment_id)
            if charge is None or charge.status not in ("succeeded", "disputed"):
                raise p.ProviderError(f"sandbox: no succeeded charge {provider_payment_id}", retryable=False)
            if session.get(SandboxDelivery, f"msg_{refund_id}") is None:
                if amount_micros <= 0 or charge.refunded_micros + amount_micros > charge.amount_micros:
                    raise p.ProviderError("sandbox: a refund is more than zero and at most what is left",
                                          retryable=False)
                charge.refunded_micros += amount_micros
                self._enqueue(session, _event("refund.succeeded", charge=charge, now=now, refund_id=refund_id,
                                              amount_micros=amount_micros), now, msg_id=f"msg_{refund_id}")
        return p.RefundResult(refund_id, "succeeded", amount_micros)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> p.PaymentEvent:
        msg_id, stamp, signatures = (headers.get(h) for h in ("webhook-id", "webhook-timestamp",
                                                               "webhook-signature"))
        if not (msg_id and stamp and signatures):
            raise p.WebhookRejected("missing webhook-id, webhook-timestamp or webhook-signature")
        try:
            sent_at = datetime.fromtimestamp(int(stamp), timezone.utc)
            text = body.decode("utf-8")
        except (ValueError, OverflowError, UnicodeDecodeError):
            raise p.WebhookRejected("malformed timestamp or body") from None
        if abs((now - sent_at).total_seconds()) > p.STALE_AFTER_S:
            raise p.WebhookRejected("timestamp more than 5 minutes from now")
        expected = Webhook(self.secret).sign(msg_id, sent_at, text).split(",", 1)[1]
        if not any(version == "v1" and hmac.compare_digest(sig, expected)
                   for version, _, sig in (s.partition(",") for s in signatures.split())):
            raise p.WebhookRejected("no valid signature")
        try:
            doc = json.loads(text)
            data = doc["data"]
            kind = {"payment.succeeded": p.PAYMENT_SUCCEEDED, "payment.failed": p.PAYMENT_FAILED,
                    "refund.succeeded": p.REFUND_SUCCEEDED, "dispute.opened": p.DISPUTE_OPENED,
                    "dispute.won": p.DISPUTE_WON, "dispute.lost": p.DISPUTE_LOST}.get(doc["type"], p.IGNORED)
            meta = data.get("metadata") or {}
            refund = kind == p.REFUND_SUCCEEDED
            card = data.get("card_last4")
            return p.PaymentEvent(
                provider=self.name, event_id=msg_id, type=str(doc["type"]), kind=kind, occurred_at=now,
                checkout_id=data.get("checkout_id"), payment_id=meta.get("payment_id"),
                account_id=meta.get("account_id"), provider_payment_id=data.get("payment_id"),
                amount_micros=data.get("amount_micros"), provider_refund_id=data.get("refund_id") if refund else None,
                provider_dispute_id=data.get("dispute_id"), failure_message=data.get("error"),
                method=p.SavedMethod(f"sbcard_{card}", None, "visa", card) if card and kind == p.PAYMENT_SUCCEEDED
                else None, raw=doc)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise p.WebhookRejected("the body is not a sandbox event") from None

    def list_payments(self, *, since: datetime, until: datetime) -> list[p.ProviderPayment]:
        with read_session(self.billing.engine) as session:
            rows = session.execute(select(SandboxCharge).where(SandboxCharge.created_at >= since,
                                                               SandboxCharge.created_at < until)).scalars().all()
        return [p.ProviderPayment(r.id, r.amount_micros, r.refunded_micros, r.status, r.payment_id, r.checkout_id)
                for r in rows]

    # -- what the hosted page and the operator CLI call -------------------------------------------
    def pay(self, checkout_id: str, card_number: str, now: datetime) -> PayOutcome:
        """The customer submitted the hosted page's form with `card_number`."""
        card = "".join(ch for ch in card_number if ch.isdigit())
        with write_session(self.billing.engine) as session:
            checkout = session.get(Checkout, checkout_id)
            if checkout is None or checkout.provider != self.name:
                return PayOutcome("failed", "This checkout does not exist.")
            # After a decline the customer may try another card, as on a real provider's page.
            if checkout.status not in ("open", "failed") or checkout.expires_at <= now:
                state = "expired" if checkout.status in ("open", "failed") else checkout.status
                return PayOutcome("failed", f"This checkout is {state}.")
            if session.execute(select(SandboxCharge.id).where(SandboxCharge.checkout_id == checkout_id,
                                                              SandboxCharge.status != "failed")).first():
                return PayOutcome("pending", "This checkout is paid; the payment is being confirmed.")
            payment = session.get(Payment, checkout.payment_id)
            if card not in TEST_CARDS:
                return PayOutcome("failed", "Use one of the sandbox test cards, e.g. 4242 4242 4242 4242.")
            charge = SandboxCharge(id=new_id("sbp"), payment_id=payment.id, checkout_id=checkout_id,
                                   account_id=payment.account_id, amount_micros=payment.amount_micros,
                                   status="failed" if card == CARD_DECLINED else
                                   "pending" if card == CARD_DELAYED else "succeeded",
                                   card_last4=card[-4:], created_at=now)
            session.add(charge)
            if card == CARD_DECLINED:
                self._enqueue(session, _event("payment.failed", charge=charge, now=now, error=DECLINE_MESSAGE), now)
                return PayOutcome("failed", DECLINE_MESSAGE, charge.id)
            if card == CARD_DELAYED:
                charge.status = "succeeded"  # at the provider; the app hears of it only after the delay
                self._enqueue(session, _event("payment.succeeded", charge=charge, now=now, card_last4=card[-4:]),
                              now + ASYNC_DELAY)
                return PayOutcome("pending", "Payment processing; it is confirmed in a few seconds.", charge.id)
            self._enqueue(session, _event("payment.succeeded", charge=charge, now=now, card_last4=card[-4:]), now)
            return PayOutcome("succeeded", "Payment received.", charge.id)

    def dispute(self, provider_payment_id: str, outcome: str, now: datetime) -> str:
        """Open a dispute on a charge (`opened`), or close it (`won` | `lost`), as a card holder's bank would."""
        if outcome not in ("opened", "won", "lost"):
            raise ValueError("a dispute is opened, won or lost")
        with write_session(self.billing.engine) as session:
            charge = session.get(SandboxCharge, provider_payment_id)
            if charge is None or charge.status not in ("succeeded", "disputed"):
                raise p.ProviderError(f"sandbox: no succeeded charge {provider_payment_id}", retryable=False)
            dispute_id = "sbd_" + charge.id[4:]
            charge.status = "disputed" if outcome != "won" else "succeeded"
            self._enqueue(session, _event(f"dispute.{outcome}", charge=charge, now=now, dispute_id=dispute_id), now)
        return dispute_id

    def _enqueue(self, session, payload: str, due: datetime, *, msg_id: str | None = None) -> None:
        session.add(SandboxDelivery(id=msg_id or new_id("msg"), payload=payload, status="pending",
                                    next_attempt_at=due, created_at=due))
