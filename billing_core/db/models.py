"""The tables. Money columns are BIGINT micros, compute columns BIGINT milliseconds."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (BigInteger, Column, ForeignKeyConstraint, Index, PrimaryKeyConstraint, Text,
                        UniqueConstraint)
from sqlmodel import Field, SQLModel

from .types import BigId, UTCDateTime


def _money(**kw) -> object:
    return Field(default=0, sa_type=BigInteger, **kw)


def _time(**kw) -> object:
    return Field(sa_type=UTCDateTime, **kw)


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    id: str = Field(primary_key=True, max_length=40)
    email: str = Field(max_length=320, unique=True, index=True)
    plan: str = Field(max_length=32)
    pending_plan: str | None = Field(default=None, max_length=32)
    suspended: bool = False
    status: str = Field(default="active", max_length=16)
    anchor_at: datetime = _time()
    period_start: datetime = _time()
    period_end: datetime = _time()
    included_ms: int = _money()
    used_ms: int = _money()
    credit_balance_micros: int = _money()
    overage_micros: int = _money()
    spend_cap_micros: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    proration_due_micros: int = _money()
    created_at: datetime = _time()


class Project(SQLModel, table=True):
    __tablename__ = "projects"
    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40)
    name: str = Field(max_length=100)
    created_at: datetime = _time()
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    # The HMAC key, encrypted (billing_core/secrets.py); the previous one stays valid for a grace period.
    hmac_ciphertext: str | None = Field(default=None, sa_type=Text, nullable=True)
    hmac_prefix: str = Field(default="", max_length=16)
    hmac_last4: str = Field(default="", max_length=4)
    hmac_rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    previous_hmac_ciphertext: str | None = Field(default=None, sa_type=Text, nullable=True)
    previous_hmac_valid_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class AccountKey(SQLModel, table=True):
    __tablename__ = "account_keys"
    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40)
    name: str = Field(max_length=100)
    scopes: str = Field(default="*", max_length=200)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)
    last4: str = Field(max_length=4)
    created_at: datetime = _time()
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    # Limits (billing_core/key_limits.py). Allowed models are JSON text in the key's own row, so the one read
    # that authenticates a request also brings them: no second query on the hot path.
    budget_micros: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    budget_reset: str = Field(default="monthly", max_length=16, sa_column_kwargs={"server_default": "monthly"})
    models: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    rpm: int | None = Field(default=None, nullable=True)
    tpm: int | None = Field(default=None, nullable=True)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    project_id: str | None = Field(default=None, max_length=40, nullable=True)


class KeySpend(SQLModel, table=True):
    """What a key spent per UTC day: every budget window (day, week, month, ever) starts at a UTC midnight,
    so it is a sum of whole days, whatever the key's reset is or was when the money was spent."""

    __tablename__ = "key_spend"
    __table_args__ = (PrimaryKeyConstraint("key_id", "day_start", name="key_spend_pkey"),
                      ForeignKeyConstraint(["key_id"], ["account_keys.id"], name="key_spend_key_id_fkey"))
    key_id: str = Field(max_length=40)
    day_start: datetime = _time()
    spend_micros: int = _money()


class UsageEvent(SQLModel, table=True):
    __tablename__ = "usage_events"
    __table_args__ = (UniqueConstraint("account_id", "event_id", name="uq_usage_events_account_event"),
                      Index("ix_usage_events_account_run", "account_id", "run_id"))
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    account_id: str = Field(foreign_key="accounts.id", max_length=40)
    event_id: str = Field(max_length=128)
    body_hash: str = Field(max_length=64)
    project_id: str = Field(max_length=40)
    kind: str = Field(max_length=16)
    occurred_at: datetime = _time()
    recorded_at: datetime = _time()
    period_start: datetime = _time()
    duration_ms: int = _money()
    model: str | None = Field(default=None, max_length=100)
    provider: str | None = Field(default=None, max_length=40)
    input_tokens: int = _money()
    output_tokens: int = _money()
    key_source: str | None = Field(default=None, max_length=16)
    agent: str | None = Field(default=None, max_length=100)
    run_id: str | None = Field(default=None, max_length=128)
    allowance_ms: int = _money()
    pool_ms: int = _money()
    credit_micros: int = _money()
    overage_micros: int = _money()
    debt_micros: int = _money()
    list_cost_micros: int = _money()
    late: bool = False


class Pool(SQLModel, table=True):
    __tablename__ = "pools"
    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40)
    size_ms: int = _money()
    remaining_ms: int = _money()
    price_micros: int = _money()
    purchased_at: datetime = _time()
    expires_at: datetime = _time()
    expired_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class LedgerEntry(SQLModel, table=True):
    """Append-only. `book` is what changed: allowance (ms), pool (ms), credit or overage (micros)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_account_id_id", "account_id", "id"),)
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    account_id: str = Field(foreign_key="accounts.id", max_length=40)
    book: str = Field(max_length=16)
    kind: str = Field(max_length=32)
    amount: int = _money()
    balance_after: int = _money()
    pool_id: str | None = Field(default=None, max_length=40)
    period_start: datetime = _time()
    ref_type: str = Field(max_length=16)
    ref_id: str = Field(max_length=160)
    created_at: datetime = _time()


class Period(SQLModel, table=True):
    """A closed period with its final counters."""

    __tablename__ = "periods"
    __table_args__ = (UniqueConstraint("account_id", "start", name="uq_periods_account_start"),)
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    account_id: str = Field(foreign_key="accounts.id", max_length=40)
    start: datetime = _time()
    end: datetime = _time()
    plan: str = Field(max_length=32)
    included_ms: int = _money()
    used_ms: int = _money()
    overage_micros: int = _money()
    invoice_id: str = Field(max_length=40)
    closed_at: datetime = _time()


class Invoice(SQLModel, table=True):
    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("account_id", "period_start", name="uq_invoices_account_period"),
                      UniqueConstraint("number", name="uq_invoices_number"))
    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40)
    period_start: datetime = _time()
    period_end: datetime = _time()
    plan: str = Field(max_length=32)
    plan_fee_micros: int = _money()
    overage_micros: int = _money()
    proration_micros: int = _money()
    total_micros: int = _money()
    status: str = Field(default="open", max_length=16)  # open | paid | past_due | void
    created_at: datetime = _time()
    # Numbered from one gapless sequence when issued (db/payments.py DocumentNumber).
    number: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    payment_id: str | None = Field(default=None, max_length=40, nullable=True)
    # Dunning: when collection first failed, and how many retries were made since.
    first_failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    retries_done: int = Field(default=0)


class DailyRollup(SQLModel, table=True):
    """Per account, project, day and meter (with agent and model), so summaries never scan events."""

    __tablename__ = "daily_rollups"
    account_id: str = Field(primary_key=True, max_length=40)
    day: date = Field(primary_key=True)
    project_id: str = Field(primary_key=True, max_length=40)
    meter: str = Field(primary_key=True, max_length=16)
    agent: str = Field(primary_key=True, max_length=100, default="")
    model: str = Field(primary_key=True, max_length=100, default="")
    events: int = _money()
    compute_ms: int = _money()
    input_tokens: int = _money()
    output_tokens: int = _money()
    cost_micros: int = _money()
    list_cost_micros: int = _money()


class Activity(SQLModel, table=True):
    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_account_id_id", "account_id", "id"),)
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    account_id: str = Field(foreign_key="accounts.id", max_length=40)
    kind: str = Field(max_length=32)
    subject: str = Field(max_length=160)
    actor: str = Field(max_length=100)
    text: str = Field(max_length=300)
    created_at: datetime = _time()


# The other tables live beside these; importing them here registers every table with the metadata.
from .identity import DeviceGrant, User, WebSession  # noqa: E402,F401
from .workloads import ProviderKey, Run, Schedule  # noqa: E402,F401
from .settings import AccountSettings  # noqa: E402,F401
from .payments import (AutoTopUpSettings, Checkout, DocumentNumber, Payment, PaymentEvent,  # noqa: E402,F401
                       PaymentMethod, Refund, SandboxCharge, SandboxDelivery)
from .operations import (AlertFired, JobState, Notification, OutboxRow, SchedulerLease,  # noqa: E402,F401
                         SyncFailure, SyncTarget)
