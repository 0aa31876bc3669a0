"""Tables for scheduled work: the scheduler's lease, job state, fired alerts, outbound notifications,
and the edge sync's outbox with per-target progress."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import BigId, UTCDateTime


def _time(**kw) -> object:
    return Field(sa_type=UTCDateTime, **kw)


def _maybe_time() -> object:
    return Field(default=None, sa_type=UTCDateTime, nullable=True)


class SchedulerLease(SQLModel, table=True):
    """Who runs the scheduled jobs. Taken by a conditional UPDATE; another instance takes over once
    `expires_at` has passed without a renewal."""

    __tablename__ = "scheduler_leases"
    name: str = Field(primary_key=True, max_length=40)  # "scheduler"
    holder: str = Field(max_length=200)  # host:pid:random of the leader
    acquired_at: datetime = _time()
    renewed_at: datetime = _time()
    expires_at: datetime = _time()
    last_tick_at: datetime | None = _maybe_time()


class JobState(SQLModel, table=True):
    """The last run of each scheduled job, for the operator view."""

    __tablename__ = "job_states"
    name: str = Field(primary_key=True, max_length=40)
    last_started_at: datetime | None = _maybe_time()
    last_finished_at: datetime | None = _maybe_time()
    last_ok_at: datetime | None = _maybe_time()
    last_error: str | None = Field(default=None, max_length=500)
    last_summary: str = Field(default="", max_length=500)  # short JSON of what the run did
    runs: int = Field(default=0, sa_type=BigInteger)
    holder: str = Field(default="", max_length=200)  # which instance ran it last


class AlertFired(SQLModel, table=True):
    """An alert that fired; the unique constraint makes each threshold fire at most once per period,
    however many instances evaluate it."""

    __tablename__ = "alerts_fired"
    __table_args__ = (UniqueConstraint("account_id", "period_start", "kind", "threshold",
                                       name="uq_alerts_fired_once_per_period"),)
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    account_id: str = Field(foreign_key="accounts.id", max_length=40)
    period_start: datetime = _time()
    kind: str = Field(max_length=32)  # allowance | daily_spend | low_credit
    threshold: int = Field(sa_type=BigInteger)  # percent for allowance, micros for the others
    value: int = Field(default=0, sa_type=BigInteger)  # what was measured when it fired
    fired_at: datetime = _time()


class Notification(SQLModel, table=True):
    """One message to send (an alert's email or webhook), retried with backoff until delivered or
    given up; written in the same transaction as what caused it."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "status", "next_attempt_at"),)
    id: str = Field(primary_key=True, max_length=40)  # msg_...; also the Standard Webhooks webhook-id
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40)
    channel: str = Field(max_length=16)  # email | webhook
    destination: str = Field(max_length=500)  # an address or a URL
    event_type: str = Field(max_length=64)  # e.g. alert.allowance
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    status: str = Field(default="pending", max_length=16)  # pending | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = _time()
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _time()
    delivered_at: datetime | None = _maybe_time()


class OutboxRow(SQLModel, table=True):
    """"This item changed": written in the same transaction as the change. The sync reads the item's
    current state when it delivers, so rows only name the item ("key:<sha256>", "account:<id>",
    "project:<id>")."""

    __tablename__ = "sync_outbox"
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    item: str = Field(max_length=120)
    created_at: datetime = _time()


class SyncTarget(SQLModel, table=True):
    """One edge target's progress through the outbox: everything up to `cursor` is delivered."""

    __tablename__ = "sync_targets"
    name: str = Field(primary_key=True, max_length=40)
    cursor: int = Field(default=0, sa_type=BigInteger)
    attempts: int = 0  # consecutive failed attempts of the batch after the cursor
    next_attempt_at: datetime | None = _maybe_time()
    last_attempt_at: datetime | None = _maybe_time()
    last_success_at: datetime | None = _maybe_time()
    last_error: str | None = Field(default=None, max_length=500)
    last_reconciled_at: datetime | None = _maybe_time()
    delivered: int = Field(default=0, sa_type=BigInteger)  # items written or deleted, in total


class SyncFailure(SQLModel, table=True):
    """An item that one target refused while the rest of its batch went through. It is retried on its own
    with backoff; after too many attempts it is parked (and shown) until it changes again or the nightly
    reconciliation delivers it."""

    __tablename__ = "sync_failures"
    target: str = Field(primary_key=True, max_length=40)
    item: str = Field(primary_key=True, max_length=120)
    attempts: int = 0
    first_failed_at: datetime = _time()
    next_attempt_at: datetime = _time()
    last_error: str = Field(default="", max_length=500)
    parked_at: datetime | None = _maybe_time()
