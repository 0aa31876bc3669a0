"""The Stripe adapter: Checkout Sessions for payments a customer makes, off-session PaymentIntents for charges of a
saved method, Refunds, `Stripe-Signature` webhooks normalized into PaymentEvents, and the PaymentIntents list for
the nightly reconciliation. It talks to Stripe through the official SDK's `StripeClient` and returns plain values;
it writes nothing of ours (the services do).

Amounts cross the interface in micros of whole cents; Stripe's unit is the cent of a two-decimal currency, so a
zero- or three-decimal currency is refused rather than charged a hundred times too much (or too little).
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from typing import Any, Mapping

import stripe

from .provider import (CHECKOUT_EXPIRED, DISPUTE_LOST, DISPUTE_OPENED, DISPUTE_WON, IGNORED, PAYMENT_FAILED,
                       PAYMENT_SUCCEEDED, REFUND_SUCCEEDED, STALE_AFTER_S, ChargeRequest, ChargeResult,
                       CheckoutRequest, CheckoutSession, PaymentEvent, ProviderError, ProviderPayment, RefundResult,
                       SavedMethod, WebhookRejected)
from .rules import MICROS_PER_CENT

# Stripe refuses an expires_at less than 30 minutes after it creates the session; the extra minutes absorb a
# difference between our clock and Stripe's.
CHECKOUT_TTL_S = 35 * 60
# Currencies whose Stripe unit is not a hundredth (docs.stripe.com/currencies).
_NOT_CENTS = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
                        "xaf", "xof", "xpf", "bhd", "jod", "kwd", "omr", "tnd"})
_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
_PENDING_STATUSES = ("processing", "requires_capture", "requires_confirmation")


class StripeProvider:
    """The Provider of provider.py over Stripe's API (v1), with one StripeClient per instance."""

    name = "stripe"

    def __init__(self, secret_key: str, webhook_secret: str, *, base_url: str | None = None,
                 http_timeout_s: float = 20.0) -> None:
        if not secret_key or not webhook_secret:
            raise ValueError("a Stripe secret key and a webhook signing secret are both required")
        self._webhook_secret = webhook_secret
        # No retries inside the SDK: a failed call is a ProviderError the caller retries with the same
        # idempotency key, on its own schedule (dunning, auto top-up), instead of blocking a request for seconds.
        addresses = {"api": base_url, "connect": base_url, "files": base_url, "meter_events": base_url}
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses=addresses if base_url else None,
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=http_timeout_s),  # the SDK's own transport, with our timeout
        )

    # ---- calls that move money ----

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """A hosted Checkout Session for one line of `amount_micros`; its metadata carries our ids to the session
        and to its PaymentIntent, and the same checkout never makes two sessions (idempotency key)."""
        ours = _metadata(checkout_id=request.checkout_id, payment_id=request.payment_id,
                         account_id=request.account_id)
        intent_data: dict[str, Any] = {"metadata": ours}
        if request.save_method:
            intent_data["setup_future_usage"] = "off_session"
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [{"quantity": 1, "price_data": {
                "currency": _currency(request.currency), "unit_amount": _cents(request.amount_micros),
                "product_data": {"name": request.description}}}],
            "payment_intent_data": intent_data,
            "client_reference_id": request.checkout_id,
            "metadata": ours,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            # Stripe's own clock decides whether this is far enough ahead, so ours is read here, not passed in.
            "expires_at": int(time.time()) + CHECKOUT_TTL_S,
        }
        if request.customer_ref:
            params["customer"] = request.customer_ref  # Stripe refuses customer_email beside customer
        else:
            params["customer_creation"] = "always"  # a Customer to charge the saved method off-session later
            if request.email:
                params["customer_email"] = request.email
        session = _call(lambda: self._client.v1.checkout.sessions.create(
            params=params, options={"idempotency_key": f"checkout-{request.checkout_id}"}))
        expires = session.get("expires_at")
        return CheckoutSession(provider_ref=session["id"], url=session["url"],
                               expires_at=_when(expires) if isinstance(expires, int) else None)

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """An off-session charge of the saved method. A decline (or a bank asking for authentication, which no
        one is there to give) is a failed ChargeResult; only a failure that is not the card's raises."""
        params: dict[str, Any] = {
            "amount": _cents(request.amount_micros),
            "currency": _currency(request.currency),
            "payment_method": request.method.method_ref,
            "off_session": True,
            "confirm": True,
            # No one is there to follow a redirect; without this Stripe demands a return_url at confirmation.
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "metadata": _metadata(payment_id=request.payment_id, account_id=request.account_id),
            "description": request.description,
        }
        if request.method.customer_ref:
            params["customer"] = request.method.customer_ref
        try:
            intent = _call(lambda: self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": request.idempotency_key}),
                card_errors=True)
        except stripe.CardError as exc:
            error = exc.json_body.get("error", {}) if isinstance(exc.json_body, dict) else {}
            intent_id = _ref(error.get("payment_intent"))
            return ChargeResult("failed", intent_id, error.get("message") or exc.user_message or "card declined")
        status = intent.get("status")
        if status == "succeeded":
            return ChargeResult("succeeded", intent["id"])
        if status in _PENDING_STATUSES:
            return ChargeResult("pending", intent["id"])
        if status == "requires_action":
            return ChargeResult("failed", intent["id"], "the card's bank asked for authentication, which an "
                                "off-session charge cannot give; the customer has to pay by checkout")
        message = (intent.get("last_payment_error") or {}).get("message")
        return ChargeResult("failed", intent["id"], message or f"payment {status}")

    def refund(self, *, provider_payment_id: str, amount_micros: int, idempotency_key: str,
               reason: str | None = None) -> RefundResult:
        """A refund of `amount_micros` of a PaymentIntent; `reason` goes to Stripe when it is one of Stripe's
        reasons, and to the refund's metadata in any case."""
        params: dict[str, Any] = {"payment_intent": provider_payment_id, "amount": _cents(amount_micros)}
        if reason:
            if reason in _REFUND_REASONS:
                params["reason"] = reason
            params["metadata"] = {"reason": reason[:500]}
        refund = _call(lambda: self._client.v1.refunds.create(
            params=params, options={"idempotency_key": idempotency_key}))
        status = refund.get("status")
        mapped = "succeeded" if status == "succeeded" else "pending" if status in ("pending", "requires_action") \
            else "failed"
        return RefundResult(provider_refund_id=refund["id"], status=mapped,
                            amount_micros=_micros(refund.get("amount")) or 0)

    # ---- webhooks ----

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> PaymentEvent:
        """The verified, normalized event of one delivery: the signature checked on the raw body by the SDK, the
        timestamp within 5 minutes of `now` either way (the SDK checks only the past, and against its own
        clock); WebhookRejected otherwise."""
        header = next((v for k, v in headers.items() if k.lower() == "stripe-signature"), None)
        if not header:
            raise WebhookRejected("no Stripe-Signature header")
        signed_at = _signature_timestamp(header)
        try:
            stripe.WebhookSignature.verify_header(body, header, self._webhook_secret, tolerance=None)
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
            raise WebhookRejected(f"bad Stripe signature: {exc}") from None
        if abs(_epoch(now) - signed_at) > STALE_AFTER_S:
            raise WebhookRejected(f"Stripe-Signature timestamp {signed_at} is more than {STALE_AFTER_S} s "
                                  f"away from now")
        try:
            event = json.loads(body)
        except ValueError:
            raise WebhookRejected("the body is not JSON") from None
        if not (isinstance(event, dict) and isinstance(event.get("id"), str) and isinstance(event.get("type"), str)
                and isinstance(event.get("created"), int) and isinstance(event.get("data"), dict)
                and isinstance(event["data"].get("object"), dict)):
            raise WebhookRejected("the body is not a Stripe event")
        return normalize(event)

    # ---- reconciliation ----

    def list_payments(self, *, since: datetime, until: datetime) -> list[ProviderPayment]:
        """Every PaymentIntent created in [since, until), all pages, with its latest charge for refunds and
        disputes."""
        # Whole seconds, as Stripe's `created`: gte rounds up and lt rounds up, so [since, until) is kept exactly.
        params = {"created": {"gte": math.ceil(_epoch(since)), "lt": math.ceil(_epoch(until))}, "limit": 100,
                  "expand": ["data.latest_charge"]}
        # Each page is a request, so the paging runs inside _call too.
        intents = _call(lambda: [pi.to_dict() for pi in self._client.v1.payment_intents.list(
            params=params).auto_paging_iter()])
        return [_provider_payment(pi) for pi in intents]


def normalize(event: Mapping[str, Any]) -> PaymentEvent:
    """A verified Stripe event as a PaymentEvent; a type we do not act on is IGNORED."""
    kind, fields = _classify(event["type"], event["data"]["object"])
    return PaymentEvent(provider="stripe", event_id=event["id"], type=event["type"], kind=kind,
                        occurred_at=_when(event["created"]), raw=event, **fields)


def _classify(type_: str, obj: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if type_.startswith("checkout.session."):
        return _from_session(type_, obj)
    if type_ in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        fields = {**_ours(obj), "provider_payment_id": obj.get("id")}
        if type_ == "payment_intent.payment_failed":
            message = (obj.get("last_payment_error") or {}).get("message")
            return PAYMENT_FAILED, {**fields, "failure_message": message or "payment failed"}
        return PAYMENT_SUCCEEDED, {**fields, "amount_micros": _micros(obj.get("amount_received")),
                                   "method": _saved_method(obj)}
    if type_ == "charge.refunded":
        return REFUND_SUCCEEDED, {**_ours(obj), "provider_payment_id": _ref(obj.get("payment_intent")),
                                  "refunded_total_micros": _micros(obj.get("amount_refunded"))}
    if type_ in ("charge.dispute.created", "charge.dispute.closed"):
        fields = {"provider_payment_id": _ref(obj.get("payment_intent")), "amount_micros": _micros(obj.get("amount")),
                  "provider_dispute_id": obj.get("id")}
        if type_ == "charge.dispute.created":
            return DISPUTE_OPENED, fields
        outcome = {"won": DISPUTE_WON, "lost": DISPUTE_LOST}.get(obj.get("status"), IGNORED)  # warning_closed...
        return outcome, fields
    return IGNORED, {}


def _from_session(type_: str, session: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    fields: dict[str, Any] = {**_ours(session), "provider_payment_id": _ref(session.get("payment_intent"))}
    customer = _ref(session.get("customer"))
    paid = {**fields, "amount_micros": _micros(session.get("amount_total")),
            # The PaymentMethod is on the PaymentIntent (payment_intent.succeeded); the session knows the Customer.
            "method": SavedMethod(method_ref="", customer_ref=customer) if customer else None}
    if type_ == "checkout.session.completed":
        # "unpaid" here is a delayed payment method still on its way: async_payment_succeeded will say.
        return (PAYMENT_SUCCEEDED, paid) if session.get("payment_status") == "paid" else (IGNORED, fields)
    if type_ == "checkout.session.async_payment_succeeded":
        return PAYMENT_SUCCEEDED, paid
    if type_ == "checkout.session.async_payment_failed":
        return PAYMENT_FAILED, {**fields, "failure_message": "the delayed payment failed"}
    if type_ == "checkout.session.expired":
        return CHECKOUT_EXPIRED, fields
    return IGNORED, {}


def _saved_method(intent: Mapping[str, Any]) -> SavedMethod | None:
    """The method a PaymentIntent set up for off-session use, with its card's brand and last4 when the payment
    method or the charge is expanded. A method not set up for future use cannot be charged off-session later,
    so it is not offered for saving."""
    method_ref = _ref(intent.get("payment_method"))
    customer = _ref(intent.get("customer"))
    if not method_ref or intent.get("setup_future_usage") != "off_session":
        return None
    card: Mapping[str, Any] = {}
    method = intent.get("payment_method")
    if isinstance(method, dict):
        card = method.get("card") or {}
    charge = intent.get("latest_charge")
    if not card and not isinstance(charge, dict):
        charges = (intent.get("charges") or {}).get("data") or []  # API versions before 2022-11-15
        charge = charges[0] if charges else None
    if not card and isinstance(charge, dict):
        card = (charge.get("payment_method_details") or {}).get("card") or {}
    return SavedMethod(method_ref=method_ref, customer_ref=customer, brand=str(card.get("brand") or ""),
                       last4=str(card.get("last4") or ""))


def _provider_payment(intent: Mapping[str, Any]) -> ProviderPayment:
    charge = intent.get("latest_charge")
    charge = charge if isinstance(charge, dict) else {}
    status = intent.get("status")
    if status == "succeeded":
        mapped = "disputed" if charge.get("disputed") else "succeeded"
    elif status in _PENDING_STATUSES or status == "requires_action" or (
            status == "requires_payment_method" and not intent.get("last_payment_error")):
        mapped = "pending"  # not attempted yet (a checkout still open), or on its way
    else:
        mapped = "failed"
    ours = _ours(intent)
    return ProviderPayment(provider_payment_id=intent["id"], amount_micros=_micros(intent.get("amount_received")) or 0,
                           refunded_micros=_micros(charge.get("amount_refunded")) or 0, status=mapped,
                           payment_id=ours.get("payment_id"), checkout_id=ours.get("checkout_id"))


# ---- small pieces ----

def _call(fn, *, card_errors: bool = False):
    """`fn()` as plain dicts, with every Stripe failure that is not the card's as a ProviderError saying whether
    the same request may be sent again (a CardError passes through when `card_errors`)."""
    try:
        result = fn()
        return result.to_dict() if isinstance(result, stripe.StripeObject) else result
    except stripe.CardError:
        if card_errors:
            raise
        raise ProviderError("Stripe refused the request as a card error", retryable=False) from None
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise ProviderError(f"Stripe could not be reached: {exc.user_message}", retryable=True) from None
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        raise ProviderError(f"Stripe refused our key: {exc.user_message}", retryable=False) from None
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        retryable = status >= 500 or status == 409  # 409: a concurrent request with the same key; send again
        raise ProviderError(f"Stripe answered {status}: {exc.user_message}", retryable=retryable) from None


def _signature_timestamp(header: str) -> int:
    """The `t=` of a Stripe-Signature header (the first, as the SDK reads it)."""
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                break
    raise WebhookRejected("the Stripe-Signature header has no timestamp")


def _metadata(**values: str) -> dict[str, str]:
    # An empty value would unset the key at Stripe, so an id we do not have is left out.
    return {key: value for key, value in values.items() if value}


def _ours(obj: Mapping[str, Any]) -> dict[str, str | None]:
    meta = obj.get("metadata") or {}
    return {key: meta.get(key) or None for key in ("checkout_id", "payment_id", "account_id")}


def _ref(value: Any) -> str | None:
    """The id of a field Stripe returns either as an id or, when expanded, as the object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _cents(amount_micros: int) -> int:
    if isinstance(amount_micros, bool) or not isinstance(amount_micros, int) or amount_micros <= 0 \
            or amount_micros % MICROS_PER_CENT:
        raise ValueError(f"an amount sent to Stripe is whole cents above zero, not {amount_micros!r} micros")
    return amount_micros // MICROS_PER_CENT


def _micros(cents: Any) -> int | None:
    return cents * MICROS_PER_CENT if isinstance(cents, int) and not isinstance(cents, bool) else None


def _currency(code: str) -> str:
    code = code.lower()
    if code in _NOT_CENTS:
        raise ValueError(f"{code} is not counted in hundredths; this adapter charges two-decimal currencies")
    return code


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("a moment compared with Stripe's must be timezone-aware")
    return moment.timestamp()


def _when(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc)
