"""Tables for what projects run and hold: provider keys, runs and schedules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, PrimaryKeyConstraint, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


def _time(**kw) -> object:
    return Field(sa_type=UTCDateTime, **kw)


def _maybe_time() -> object:
    return Field(default=None, sa_type=UTCDateTime, nullable=True)


class ProviderKey(SQLModel, table=True):
    """A project's own model-provider key (BYOK), encrypted with the tenant and project as associated data."""

    __tablename__ = "provider_keys"
    __table_args__ = (UniqueConstraint("project_id", "provider", name="uq_provider_keys_project_provider"),)
    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40)
    project_id: str = Field(foreign_key="projects.id", max_length=40)
    provider: str = Field(max_length=40)
    ciphertext: str = Field(sa_column=Column(Text, nullable=False))
    masked: str = Field(max_length=40)  # e.g. sk-ant-...abcd
    created_at: datetime = _time()
    updated_at: datetime = _time()


class Run(SQLModel, table=True):
    """One agent run. Its cost and duration are derived from the usage events carrying its id."""

    __tablename__ = "runs"
    # The edge names its runs, so an id is unique only within its account (migration 0006): one account's
    # id must neither block nor reveal another's.
    __table_args__ = (PrimaryKeyConstraint("account_id", "id", name="runs_pkey"),
                      Index("ix_runs_account_created", "account_id", "created_at", "id"))
    id: str = Field(max_length=128)
    account_id: str = Field(foreign_key="accounts.id", max_length=40)
    project_id: str = Field(foreign_key="projects.id", max_length=40)
    agent: str = Field(max_length=100)
    status: str = Field(default="queued", max_length=16)  # queued|running|succeeded|failed|cancelled
    trigger: str = Field(default="api", max_length=16)  # manual|schedule|api
    schedule_id: str | None = Field(default=None, max_length=40)
    error: str | None = Field(default=None, max_length=500)
    started_at: datetime | None = _maybe_time()
    finished_at: datetime | None = _maybe_time()
    created_at: datetime = _time()


class Schedule(SQLModel, table=True):
    __tablename__ = "schedules"
    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40)
    project_id: str = Field(foreign_key="projects.id", max_length=40)
    agent: str = Field(max_length=100)
    cron: str = Field(max_length=120)
    timezone: str = Field(max_length=64)
    enabled: bool = True
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    last_run_at: datetime | None = _maybe_time()
    created_at: datetime = _time()
    updated_at: datetime = _time()
