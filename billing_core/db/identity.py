"""Tables for people and their ways in: users, browser sessions, device authorization grants."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


def _time(**kw) -> object:
    return Field(sa_type=UTCDateTime, **kw)


def _maybe_time() -> object:
    return Field(default=None, sa_type=UTCDateTime, nullable=True)


class User(SQLModel, table=True):
    """A person who signs in to one account (the account's owner in this version)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc_identity"),)
    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40)
    email: str = Field(max_length=320, unique=True, index=True)
    name: str = Field(default="", max_length=100)
    password_hash: str | None = Field(default=None, max_length=200)  # Argon2id; None for OIDC-only users
    oidc_issuer: str | None = Field(default=None, max_length=300)
    oidc_subject: str | None = Field(default=None, max_length=255)
    is_operator: bool = False
    created_at: datetime = _time()


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie carries a signed token; only its SHA-256 is stored."""

    __tablename__ = "web_sessions"
    token_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="users.id", index=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", max_length=40)
    created_at: datetime = _time()
    expires_at: datetime = _time()
    last_seen_at: datetime = _time()
    revoked_at: datetime | None = _maybe_time()
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=300)


class DeviceGrant(SQLModel, table=True):
    """One RFC 8628 device authorization: pending, then approved or denied, then used once."""

    __tablename__ = "device_grants"
    id: str = Field(primary_key=True, max_length=40)
    device_code_hash: str = Field(max_length=64, unique=True, index=True)
    user_code: str = Field(max_length=9, unique=True, index=True)  # XXXX-XXXX
    client_id: str = Field(max_length=100)
    scope: str = Field(default="", max_length=200)
    status: str = Field(default="pending", max_length=16)  # pending | approved | denied | used
    interval_s: int = 5
    expires_at: datetime = _time()
    last_polled_at: datetime | None = _maybe_time()
    user_id: str | None = Field(default=None, max_length=40)
    account_id: str | None = Field(default=None, max_length=40)
    account_key_id: str | None = Field(default=None, max_length=40)
    requester_ip: str = Field(default="", max_length=64)
    requester_agent: str = Field(default="", max_length=300)
    device_name: str = Field(default="", max_length=100)
    created_at: datetime = _time()
