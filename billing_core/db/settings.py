"""Per-account preferences: the thresholds at which usage alerts fire."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Text
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class AccountSettings(SQLModel, table=True):
    """One row per account, written the first time its settings are saved; no row means the defaults."""

    __tablename__ = "account_settings"
    account_id: str = Field(primary_key=True, foreign_key="accounts.id", max_length=40)
    # Percent of the period's allowance, ascending, comma-separated ("50,80,100"); "" turns them all off.
    allowance_thresholds: str = Field(default="50,80,100", max_length=40)
    daily_spend_micros: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    low_credit_micros: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    # Where alerts go besides the activity feed: an email address (None: the owner's) and a webhook URL,
    # signed with a Standard Webhooks secret (whsec_...) kept encrypted like the other secrets.
    alert_email: str | None = Field(default=None, max_length=320, nullable=True)
    webhook_url: str | None = Field(default=None, max_length=500, nullable=True)
    webhook_secret_ciphertext: str | None = Field(default=None, sa_type=Text, nullable=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
