"""Tables of money in and out: checkouts, payments, refunds, the webhook events applied, saved payment
methods, auto top-up settings, gapless document numbers, and the sandbox provider's own records.

Exactly once rests on constraints here, not on code paths: a webhook event is recorded under a unique
(provider, event_id) in the transaction that applies it; a payment's provider id is unique per provider; a
refund's provider id likewise; and a payment is granted by one conditional UPDATE of `granted_at`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import BigId, UTCDateTime


def _money() -> object:
    return Field(default=0, sa_type=BigInteger)


def _time() -> object:
    return Field(sa_type=UTCDateTime)


def _maybe_time() -> object:
    return Field(default=None, sa_type=UTCDateTime, nullable=True)


def _maybe(length: int) -> object:
    return Field(default=None, max_length=length, nullable=True)


class Checkout(SQLModel, table=True):
    """A hosted checkout the customer was sent to; it pays one payment (`payment_id`)."""

    __tablename__ = "checkouts"
    __table_args__ = (UniqueConstraint("account_id", "idempotency_key", name="uq_checkouts_account_idem"),)
    id: str = Field(primary_key=True, max_length=40)  # chk_...
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40)
    provider: str = Field(max_length=16)
    provider_ref: str | None = _maybe(200)  # the provider's session id
    payment_id: str = Field(max_length=40)
    url: str = Field(sa_type=Text)
    return_url: str | None = Field(default=None, sa_type=Text, nullable=True)
    status: str = Field(default="open", max_length=16)  # open | complete | failed | expired
    idempotency_key: str | None = _maybe(200)
    created_at: datetime = _time()
    expires_at: datetime = _time()


class Payment(SQLModel, table=True):
    """One attempt to take money: from a checkout, or off-session from the saved method (an invoice, an
    auto top-up, an upgrade). What it buys is `item` (with `quantity`, `plan` or `invoice_id`)."""

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("provider", "provider_payment_id", name="uq_payments_provider_payment"),
                      UniqueConstraint("provider", "idempotency_key", name="uq_payments_provider_idem"),
                      Index("ix_payments_account_created", "account_id", "created_at"))
    id: str = Field(primary_key=True, max_length=40)  # pay_...
    account_id: str = Field(foreign_key="accounts.id", max_length=40)
    provider: str = Field(max_length=16)
    provider_payment_id: str | None = _maybe(200)
    checkout_id: str | None = _maybe(40)
    source: str = Field(max_length=16)  # checkout | invoice | auto_top_up | upgrade
    item: str = Field(max_length=16)  # credit | pool_pack | plan | invoice
    quantity: int = Field(default=1)
    plan: str | None = _maybe(32)
    invoice_id: str | None = _maybe(40)
    amount_micros: int = _money()
    refunded_micros: int = _money()  # what the provider refunded (its running total)
    taken_back_micros: int = _money()  # of that, what the ledger has taken back (refunds before the grant wait)
    status: str = Field(default="pending", max_length=24)
    dispute: str | None = _maybe(16)  # open | won | lost
    idempotency_key: str = Field(max_length=200)
    failure_message: str | None = _maybe(300)
    granted_at: datetime | None = _maybe_time()
    pool_id: str | None = _maybe(40)  # the pool a pack purchase created
    # The card it was paid with, as the receipt shows it (the saved method may change later).
    card_brand: str = Field(default="", max_length=32)
    card_last4: str = Field(default="", max_length=4)
    receipt_number: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    created_at: datetime = _time()
    updated_at: datetime = _time()


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("provider", "provider_refund_id", name="uq_refunds_provider_refund"),)
    id: str = Field(primary_key=True, max_length=40)  # rfd_...
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40)
    payment_id: str = Field(max_length=40, index=True)
    provider: str = Field(max_length=16)
    provider_refund_id: str = Field(max_length=200)
    amount_micros: int = _money()
    reason: str = Field(default="refund", max_length=16)  # refund | dispute_lost
    created_at: datetime = _time()


class PaymentEvent(SQLModel, table=True):
    """Every authentic webhook delivery, once: the unique key is what makes a retried delivery a no-op."""

    __tablename__ = "payment_events"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_payment_events_provider_event"),)
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    provider: str = Field(max_length=16)
    event_id: str = Field(max_length=200)
    type: str = Field(max_length=80)
    outcome: str = Field(max_length=24)  # applied | ignored | unmatched | mismatch | no_change
    account_id: str | None = _maybe(40)
    payment_id: str | None = _maybe(40)
    detail: str = Field(default="", max_length=300)
    received_at: datetime = _time()


class PaymentMethod(SQLModel, table=True):
    """The one saved method of an account, for off-session charges."""

    __tablename__ = "payment_methods"
    account_id: str = Field(primary_key=True, foreign_key="accounts.id", max_length=40)
    provider: str = Field(max_length=16)
    method_ref: str = Field(max_length=200)
    customer_ref: str | None = _maybe(200)
    brand: str = Field(default="", max_length=32)
    last4: str = Field(default="", max_length=4)
    updated_at: datetime = _time()


class AutoTopUpSettings(SQLModel, table=True):
    __tablename__ = "auto_top_ups"
    account_id: str = Field(primary_key=True, foreign_key="accounts.id", max_length=40)
    enabled: bool = False
    threshold_micros: int = _money()
    amount_micros: int = _money()
    monthly_limit_micros: int = _money()
    failures: int = Field(default=0)  # consecutive
    attempts: int = Field(default=0)  # ever made: the next attempt's idempotency key
    in_flight_payment_id: str | None = _maybe(40)
    updated_at: datetime = _time()


class DocumentNumber(SQLModel, table=True):
    """A gapless counter per kind of document (invoice, receipt), advanced under a row lock in the
    transaction that issues the number, so a rolled-back transaction leaves no hole."""

    __tablename__ = "document_numbers"
    kind: str = Field(primary_key=True, max_length=16)
    last: int = Field(default=0, sa_type=BigInteger)


class SandboxCharge(SQLModel, table=True):
    """The sandbox provider's own ledger of what it charged and refunded (what reconciliation compares)."""

    __tablename__ = "sandbox_charges"
    id: str = Field(primary_key=True, max_length=40)  # sbp_...
    payment_id: str = Field(max_length=40, index=True)  # ours, as metadata
    checkout_id: str | None = _maybe(40)
    account_id: str = Field(max_length=40)
    amount_micros: int = _money()
    refunded_micros: int = _money()
    status: str = Field(max_length=16)  # succeeded | failed | pending | disputed
    card_last4: str = Field(default="", max_length=4)
    created_at: datetime = _time()


class SandboxDelivery(SQLModel, table=True):
    """A sandbox event on its way to /webhooks/sandbox: retried until answered 2xx, as a provider does."""

    __tablename__ = "sandbox_deliveries"
    __table_args__ = (Index("ix_sandbox_deliveries_due", "status", "next_attempt_at"),)
    id: str = Field(primary_key=True, max_length=40)  # msg_...: the webhook-id
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)  # pending | delivered | failed
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _time()
    last_error: str | None = _maybe(300)
    created_at: datetime = _time()
