"""The one small interface every payment provider adapter (sandbox, stripe, dodo) implements, and the plain
values that cross it. Amounts cross it in micros, always whole cents (rules.charge_micros); an adapter turns
them into the provider's unit. Ids of ours travel to the provider as metadata and come back in its events:
`checkout_id` (chk_...) for a hosted checkout, `payment_id` (pay_...) for an off-session charge, and
`account_id`, so that an event is matched to our own records and never trusted for whose money it is.

Pure: standard library only (the adapters import the SDKs; this module is what the services see).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping, Protocol

# What a provider's event means to the ledger, whatever the provider calls it.
PAYMENT_SUCCEEDED = "payment_succeeded"  # money arrived (a delayed/async success too)
PAYMENT_FAILED = "payment_failed"  # declined, or an async payment that failed
CHECKOUT_EXPIRED = "checkout_expired"
REFUND_SUCCEEDED = "refund_succeeded"
DISPUTE_OPENED = "dispute_opened"
DISPUTE_WON = "dispute_won"
DISPUTE_LOST = "dispute_lost"
IGNORED = "ignored"  # a type we do not act on: answered 200 and recorded
KINDS = (PAYMENT_SUCCEEDED, PAYMENT_FAILED, CHECKOUT_EXPIRED, REFUND_SUCCEEDED, DISPUTE_OPENED, DISPUTE_WON,
         DISPUTE_LOST, IGNORED)

STALE_AFTER_S = 300  # a webhook timestamp more than 5 minutes away from now, either way, is refused


class WebhookRejected(Exception):
    """The delivery is not authentic or not fresh (bad signature, stale or future timestamp, missing headers,
    body not what was signed): answered 400, nothing applied, nothing recorded."""


class ProviderError(Exception):
    """The provider could not be reached or refused a request for a reason that is not the card's (a bad key,
    a 5xx, a timeout). `retryable` says whether the same request (same idempotency key) may be sent again."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class SavedMethod:
    """A payment method the provider keeps for off-session charges: Stripe's PaymentMethod (with its
    Customer), Dodo's on-demand subscription (with its customer), the sandbox's card token."""

    method_ref: str
    customer_ref: str | None = None
    brand: str = ""  # visa, mastercard, ... when the provider says
    last4: str = ""


@dataclass(frozen=True)
class CheckoutRequest:
    checkout_id: str  # ours (chk_...), sent as metadata and as the provider's idempotency key
    account_id: str
    email: str
    description: str  # one line the customer sees on the provider's page and statement
    amount_micros: int  # whole cents, > 0
    success_url: str
    cancel_url: str
    currency: str = "usd"
    customer_ref: str | None = None  # the provider's customer for this account, when one exists already
    save_method: bool = True  # keep the card for off-session charges (Stripe setup_future_usage=off_session)
    payment_id: str = ""  # ours (pay_...), the payment this checkout pays, sent as metadata too


@dataclass(frozen=True)
class CheckoutSession:
    provider_ref: str  # the provider's id of the session
    url: str  # where the customer pays
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ChargeRequest:
    """An off-session charge of a saved method (invoice collection, auto top-up, upgrade)."""

    payment_id: str  # ours (pay_...), sent as metadata
    account_id: str
    amount_micros: int  # whole cents, > 0
    description: str
    method: SavedMethod
    idempotency_key: str  # the same key for every retry of this one attempt
    currency: str = "usd"


@dataclass(frozen=True)
class ChargeResult:
    status: str  # succeeded | pending | failed
    provider_payment_id: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class RefundResult:
    provider_refund_id: str
    status: str  # succeeded | pending | failed
    amount_micros: int


@dataclass(frozen=True)
class ProviderPayment:
    """The provider's own record of one payment, for the nightly reconciliation."""

    provider_payment_id: str
    amount_micros: int
    refunded_micros: int
    status: str  # succeeded | failed | pending | disputed
    payment_id: str | None = None  # ours, from metadata
    checkout_id: str | None = None


@dataclass(frozen=True)
class PaymentEvent:
    """One verified webhook delivery, normalized. `event_id` is unique per provider (Stripe's evt_ id; for
    Standard Webhooks providers the `webhook-id` header) and is what makes a delivery apply once."""

    provider: str
    event_id: str
    type: str  # the provider's own name, kept for the record
    kind: str  # one of KINDS
    occurred_at: datetime
    checkout_id: str | None = None  # ours, from metadata
    payment_id: str | None = None  # ours, from metadata
    account_id: str | None = None  # ours, from metadata; checked against our records, never trusted alone
    provider_payment_id: str | None = None  # Stripe's PaymentIntent id, Dodo's payment_id, the sandbox's
    amount_micros: int | None = None  # what was paid (success), or this refund's amount
    refunded_total_micros: int | None = None  # cumulative refunds of the payment, when the provider says so
    provider_refund_id: str | None = None
    provider_dispute_id: str | None = None
    method: SavedMethod | None = None  # a method to save for off-session charges
    failure_message: str | None = None
    raw: Mapping = field(default_factory=dict, repr=False, compare=False)  # the parsed body, for the record


class Provider(Protocol):
    """What the services ask of a provider. Every call that moves money carries an idempotency key."""

    name: str  # sandbox | stripe | dodo

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession: ...

    def charge(self, request: ChargeRequest) -> ChargeResult: ...

    def refund(self, *, provider_payment_id: str, amount_micros: int, idempotency_key: str,
               reason: str | None = None) -> RefundResult: ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes, now: datetime) -> PaymentEvent:
        """Verify the signature on the raw body and its timestamp against `now` (WebhookRejected), then
        normalize the event. An unknown type is a PaymentEvent of kind IGNORED."""
        ...

    def list_payments(self, *, since: datetime, until: datetime) -> list[ProviderPayment]: ...
