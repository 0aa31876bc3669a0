"""The Dodo Payments provider, with the official `dodopayments` SDK. What it chose, and why:

- A checkout sells one pay-what-you-want product (`product_id`, one-time) at our amount: Dodo's documented field
  is `product_cart[].amount`, in cents, "the amount the customer pays if pay_what_you_want is enabled". The
  product must be pay-what-you-want in Dodo's dashboard, with a minimum no higher than our smallest top-up.
- Saving the method: Dodo has no "keep this card" flag on a one-time payment. Its documented way to charge a
  customer later for varying amounts is an on-demand subscription (docs: developer-resources/ondemand-subscriptions):
  a checkout for a subscription product (`on_demand_product_id`) with `subscription_data.on_demand` =
  {mandate_only: false, product_price: <cents>} charges the amount now and keeps the mandate; later charges are
  POST /subscriptions/{id}/charge. So a saving checkout (save_method and an on-demand product configured) is
  that; the subscription id is the SavedMethod's `method_ref`, delivered in payment.succeeded's data. Without an
  on-demand product a saving checkout is a one-time one and no method is saved.
- Idempotency: Dodo's API documents no idempotency header and the SDK sends none (its retry machinery has no
  header configured). The client is therefore built with max_retries=0, since a blind retry of a POST could
  charge twice, and our ids travel as metadata (payment_id, account_id, and the attempt's idempotency key) so a
  doubtful attempt can be found in list_payments. A timeout or a 5xx while charging or refunding is a
  ProviderError with retryable=False: the outcome is unknown, not safely repeatable.
- Refunds: Dodo refunds part of a payment only by line item (`items: [{item_id, amount}]`), so a refund reads the
  payment first; the whole of an unrefunded payment names no items, anything else names its one line.
- Webhooks are Standard Webhooks: verified with the SDK's `webhooks.unwrap` on the raw body (which also holds
  the timestamp to the real clock, 5 minutes either way), and `webhook-timestamp` is checked against the `now`
  we are given as well. Dodo's body carries no event id; the `webhook-id` header is the event id.
- Amounts: Dodo's are integers in the currency's smallest unit. Ours are USD; an amount in another currency
  (adaptive pricing) is not turned into micros (None), and checkouts ask for USD (`billing_currency`).
- list_payments pages by itself: the SDK's auto-paging asks for page (page_number or 1) + 1 next, which from
  Dodo's first page, number 0, skips page 1.

An adapter: it imports the SDK; the services see only provider.py's values.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Mapping

import dodopayments
import httpx
from dodopayments import DodoPayments

from .provider import (
    DISPUTE_LOST, DISPUTE_OPENED, DISPUTE_WON, IGNORED, PAYMENT_FAILED, PAYMENT_SUCCEEDED, REFUND_SUCCEEDED,
    STALE_AFTER_S, ChargeRequest, ChargeResult, CheckoutRequest, CheckoutSession, PaymentEvent, ProviderError,
    ProviderPayment, RefundResult, SavedMethod, WebhookRejected,
)
from .rules import MICROS_PER_CENT

PAGE_SIZE = 100  # Dodo's largest page
LEDGER_CURRENCY = "USD"
KIND_OF_TYPE = {
    "payment.succeeded": PAYMENT_SUCCEEDED,
    "payment.failed": PAYMENT_FAILED,
    "refund.succeeded": REFUND_SUCCEEDED,
    "dispute.opened": DISPUTE_OPENED,
    "dispute.won": DISPUTE_WON,
    "dispute.lost": DISPUTE_LOST,
}
_DISPUTED = ("dispute_opened", "dispute_challenged", "dispute_accepted", "dispute_expired", "dispute_lost")
# Dodo's error codes for a request refused because of the state of things, not of the card: nothing was done.
_TRY_LATER_CODES = ("PREVIOUS_PAYMENT_PENDING", "EXISTING_REFUND_REQUEST_PROCESSING")


def _cents(amount_micros: int) -> int:
    """Whole cents of a positive amount that is whole cents (anything else is a caller's mistake)."""
    if isinstance(amount_micros, bool) or not isinstance(amount_micros, int) or amount_micros <= 0 \
            or amount_micros % MICROS_PER_CENT:
        raise ValueError(f"amount_micros must be positive whole cents, not {amount_micros!r}")
    return amount_micros // MICROS_PER_CENT


def _micros(cents: object, currency: object) -> int | None:
    """Dodo's smallest-unit amount as micros when it is a USD amount; None when it is not one."""
    if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
        return None
    if currency is not None and str(currency).upper() != LEDGER_CURRENCY:
        return None
    return cents * MICROS_PER_CENT


def _dispute_micros(amount: object, currency: object) -> int | None:
    """A dispute's amount, which Dodo types as a string: digits are the smallest unit like all its amounts (its
    CLI's sample dispute says 400 for a 400-cent payment); a decimal point means major units."""
    if isinstance(amount, str) and re.fullmatch(r"\d+", amount):
        return _micros(int(amount), currency)
    if isinstance(amount, str) and re.fullmatch(r"\d+\.\d{1,2}", amount):
        return _micros(int(Decimal(amount) * 100), currency)
    return _micros(amount, currency)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _error_text(exc: dodopayments.APIStatusError) -> str:
    """Dodo's `{"code", "message"}` error as one line."""
    body = exc.body if isinstance(exc.body, dict) else {}
    code, message = _text(body.get("code")), _text(body.get("message"))
    if code or message:
        return ": ".join(part for part in (code, message) if part)
    return f"HTTP {exc.status_code}"


def _error_code(exc: dodopayments.APIStatusError) -> str | None:
    return _text(exc.body.get("code")) if isinstance(exc.body, dict) else None


def _provider_error(exc: dodopayments.APIError, *, moves_money: bool) -> ProviderError:
    """A failure that is not the card's, retryable only when nothing can have happened at Dodo (or when what
    happened is harmless to repeat: `moves_money` False)."""
    if isinstance(exc, dodopayments.APITimeoutError):
        return ProviderError("Dodo Payments did not answer in time" + (
            "; the outcome is unknown, look for our ids in its payments before trying again" if moves_money else ""),
            retryable=not moves_money)
    if isinstance(exc, dodopayments.APIConnectionError):
        # A refused connection sent nothing; a connection lost mid-request may have been acted on.
        unsent = isinstance(exc.__cause__, httpx.ConnectError)
        return ProviderError("Dodo Payments could not be reached", retryable=unsent or not moves_money)
    if isinstance(exc, dodopayments.APIStatusError):
        status, text = exc.status_code, _error_text(exc)
        if status in (401, 403):
            return ProviderError(f"Dodo Payments refused our API key ({text})", retryable=False)
        if status in (409, 429) or _error_code(exc) in _TRY_LATER_CODES:
            return ProviderError(f"Dodo Payments asks to try later ({text})", retryable=True)
        if status >= 500 or status == 408:
            return ProviderError(f"Dodo Payments failed ({text})", retryable=not moves_money)
        return ProviderError(f"Dodo Payments refused the request ({text})", retryable=False)
    return ProviderError(f"Dodo Payments: {exc}", retryable=not moves_money)


def _is_refusal_of_the_charge(exc: dodopayments.APIStatusError) -> bool:
    """A 4xx about this charge (the mandate, the subscription, the amount): the attempt failed, nothing moved."""
    return 400 <= exc.status_code < 500 and exc.status_code not in (401, 403, 408, 409, 429) \
        and _error_code(exc) not in _TRY_LATER_CODES


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


class DodoProvider:
    """Dodo Payments behind the Provider interface (provider.py)."""

    name = "dodo"

    def __init__(self, api_key: str, webhook_secret: str, *, product_id: str, on_demand_product_id: str | None = None,
                 base_url: str | None = None, timeout_s: float = 20.0) -> None:
        if not api_key or not webhook_secret or not product_id:
            raise ValueError("the Dodo provider needs an API key, a webhook secret and a product id")
        self._product_id = product_id
        self._on_demand_product_id = on_demand_product_id
        # An explicit place, so that the SDK does not read DODO_PAYMENTS_BASE_URL from the environment.
        where: dict[str, Any] = {"base_url": base_url} if base_url else {"environment": "live_mode", "base_url": None}
        self._client = DodoPayments(bearer_token=api_key, webhook_key=webhook_secret, timeout=timeout_s,
                                    max_retries=0, **where)

    def close(self) -> None:
        """Close the SDK's connections."""
        self._client.close()

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """A hosted Dodo checkout for the amount, saving the method as an on-demand mandate when asked and able."""
        cents = _cents(request.amount_micros)
        currency = request.currency.upper()
        metadata = {key: value for key, value in (("checkout_id", request.checkout_id),
                                                  ("payment_id", request.payment_id),
                                                  ("account_id", request.account_id)) if value}
        params: dict[str, Any] = {
            "customer": {"customer_id": request.customer_ref} if request.customer_ref else {"email": request.email},
            "return_url": request.success_url,
            "cancel_url": request.cancel_url,
            "billing_currency": currency,
            "metadata": metadata,
        }
        if request.save_method and self._on_demand_product_id:
            params["product_cart"] = [{"product_id": self._on_demand_product_id, "quantity": 1}]
            params["subscription_data"] = {"on_demand": {"mandate_only": False, "product_price": cents,
                                                         "product_currency": currency,
                                                         "product_description": request.description}}
        else:
            params["product_cart"] = [{"product_id": self._product_id, "quantity": 1, "amount": cents}]
        try:
            session = self._client.checkout_sessions.create(**params)
        except dodopayments.APIError as exc:
            raise _provider_error(exc, moves_money=False) from exc
        if not session.checkout_url:
            raise ProviderError("Dodo Payments created the checkout without a URL to send the customer to")
        return CheckoutSession(session.session_id, session.checkout_url, None)

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """An on-demand charge of the saved subscription: pending until Dodo's webhook says how it went."""
        cents = _cents(request.amount_micros)
        if not request.method.method_ref:
            raise ValueError("a Dodo charge needs the on-demand subscription id as the method")
        try:
            answer = self._client.subscriptions.charge(
                subscription_id=request.method.method_ref, product_price=cents,
                product_currency=request.currency.upper(), product_description=request.description,
                metadata={"payment_id": request.payment_id, "account_id": request.account_id,
                          "idempotency_key": request.idempotency_key})
        except dodopayments.APIStatusError as exc:
            if _is_refusal_of_the_charge(exc):
                return ChargeResult("failed", None, _error_text(exc))
            raise _provider_error(exc, moves_money=True) from exc
        except dodopayments.APIError as exc:
            raise _provider_error(exc, moves_money=True) from exc
        return ChargeResult("pending", answer.payment_id)

    def refund(self, *, provider_payment_id: str, amount_micros: int, idempotency_key: str,
               reason: str | None = None) -> RefundResult:
        """A refund of the whole payment, or of part of its one line (Dodo refunds a part only by line item)."""
        cents = _cents(amount_micros)
        try:
            payment = self._client.payments.retrieve(provider_payment_id)
        except dodopayments.APIError as exc:
            raise _provider_error(exc, moves_money=False) from exc
        refunded = sum(r.amount or 0 for r in payment.refunds if r.status != "failed")
        params: dict[str, Any] = {"payment_id": provider_payment_id,
                                  "metadata": {"idempotency_key": idempotency_key}}
        if reason:
            params["reason"] = reason
        if refunded or cents != payment.total_amount:
            params["items"] = [{"item_id": self._line_item(payment), "amount": cents}]
        try:
            refund = self._client.refunds.create(**params)
        except dodopayments.APIError as exc:
            raise _provider_error(exc, moves_money=True) from exc
        status = refund.status if refund.status in ("succeeded", "failed") else "pending"
        amount = refund.amount if isinstance(refund.amount, int) else cents
        return RefundResult(refund.refund_id, status, amount * MICROS_PER_CENT)

    @staticmethod
    def _line_item(payment: Any) -> str:
        """The product a partial refund names: the payment's one line."""
        cart = payment.product_cart or []
        if len(cart) != 1:
            raise ProviderError(f"payment {payment.payment_id} has {len(cart)} lines, so Dodo cannot refund part of "
                                "it by amount alone; refund it in Dodo's dashboard", retryable=False)
        return cart[0].product_id

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> PaymentEvent:
        """Verify the Standard Webhooks signature on the raw body and the timestamp against `now` and the real
        clock (WebhookRejected), then normalize Dodo's event."""
        lowered = {str(key).lower(): value for key, value in headers.items()}
        msg_id, stamp, signature = (lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
        if not (msg_id and stamp and signature):
            raise WebhookRejected("missing webhook-id, webhook-timestamp or webhook-signature")
        if not (stamp.isascii() and stamp.isdigit()):
            raise WebhookRejected("webhook-timestamp is not whole Unix seconds")
        try:
            sent_at = datetime.fromtimestamp(int(stamp), tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise WebhookRejected("webhook-timestamp is out of range") from exc
        if abs((_as_utc(now) - sent_at).total_seconds()) > STALE_AFTER_S:
            raise WebhookRejected("webhook-timestamp is more than 5 minutes away from now")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WebhookRejected("body is not UTF-8") from exc
        try:
            self._client.webhooks.unwrap(text, headers={"webhook-id": msg_id, "webhook-timestamp": stamp,
                                                        "webhook-signature": signature})
        except Exception as exc:  # a bad signature, a stale time, or a signed body that is not JSON: all refused
            raise WebhookRejected(f"not a verified Dodo delivery: {exc}") from exc
        payload = json.loads(text)
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            raise WebhookRejected("body is not a Dodo event")
        return _normalize(msg_id, payload, sent_at)

    def list_payments(self, *, since: datetime, until: datetime) -> list[ProviderPayment]:
        """Every payment Dodo created in [since, until], with what was refunded of each."""
        found: list[ProviderPayment] = []
        seen: set[str] = set()
        page_number = 0
        try:
            while True:
                page = self._client.payments.list(created_at_gte=_as_utc(since), created_at_lte=_as_utc(until),
                                                  page_number=page_number, page_size=PAGE_SIZE)
                for item in page.items:
                    if item.payment_id in seen:
                        # Dodo caps deep pages; a page seen twice means this window cannot be listed whole.
                        raise ProviderError("Dodo Payments repeated a page of payments; list a shorter window",
                                            retryable=False)
                    seen.add(item.payment_id)
                    found.append(self._provider_payment(item))
                if len(page.items) < PAGE_SIZE:
                    return found
                page_number += 1
        except dodopayments.APIError as exc:
            raise _provider_error(exc, moves_money=False) from exc

    def _provider_payment(self, item: Any) -> ProviderPayment:
        refunded_cents = 0
        if item.refund_status:
            # The list does not carry refund amounts; the payment itself does.
            payment = self._client.payments.retrieve(item.payment_id)
            refunded_cents = sum(r.amount or 0 for r in payment.refunds if r.status == "succeeded")
        if item.dispute_status in _DISPUTED:
            status = "disputed"
        elif item.status == "succeeded":
            status = "succeeded"
        elif item.status in ("failed", "cancelled"):
            status = "failed"
        else:
            status = "pending"
        metadata = item.metadata or {}
        return ProviderPayment(
            provider_payment_id=item.payment_id,
            amount_micros=_micros(item.total_amount, item.currency) or 0,
            refunded_micros=_micros(refunded_cents, item.currency) or 0,
            status=status,
            payment_id=_text(metadata.get("payment_id")),
            checkout_id=_text(metadata.get("checkout_id")),
        )


def _normalize(event_id: str, payload: dict, sent_at: datetime) -> PaymentEvent:
    """Dodo's event as a PaymentEvent; a type we do not act on is IGNORED, with what could be read of it."""
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    kind = KIND_OF_TYPE.get(payload["type"], IGNORED)
    currency = data.get("currency")
    fields: dict[str, Any] = {
        "provider": "dodo", "event_id": event_id, "type": payload["type"], "kind": kind,
        "occurred_at": _parse_time(payload.get("timestamp")) or sent_at, "raw": payload,
        "checkout_id": _text(metadata.get("checkout_id")), "payment_id": _text(metadata.get("payment_id")),
        "account_id": _text(metadata.get("account_id")), "provider_payment_id": _text(data.get("payment_id")),
    }
    if kind in (PAYMENT_SUCCEEDED, PAYMENT_FAILED):
        fields["amount_micros"] = _micros(data.get("total_amount"), currency)
        subscription_id = _text(data.get("subscription_id"))
        if kind == PAYMENT_SUCCEEDED and subscription_id:
            customer = data.get("customer") if isinstance(data.get("customer"), dict) else {}
            fields["method"] = SavedMethod(subscription_id, _text(customer.get("customer_id")),
                                           (_text(data.get("card_network")) or "").lower(),
                                           _text(data.get("card_last_four")) or "")
        if kind == PAYMENT_FAILED:
            fields["failure_message"] = (_text(data.get("error_message")) or _text(data.get("error_code"))
                                         or "the payment failed")
    elif kind == REFUND_SUCCEEDED:
        fields["provider_refund_id"] = _text(data.get("refund_id"))
        fields["amount_micros"] = _micros(data.get("amount"), currency)
    elif kind in (DISPUTE_OPENED, DISPUTE_WON, DISPUTE_LOST):
        fields["provider_dispute_id"] = _text(data.get("dispute_id"))
        fields["amount_micros"] = _dispute_micros(data.get("amount"), currency)
    return PaymentEvent(**fields)
