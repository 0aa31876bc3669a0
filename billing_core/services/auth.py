"""Authenticating account keys: offline checksum first, then a constant-time hash match."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update

from ..db.engine import read_connection, write_connection
from ..db.models import AccountKey
from ..db.raw import RawStatement
from ..key_limits import SCOPES, ScopeMissing, model_list, refuse_if_expired, scope_set
from ..keys import ACCOUNT_KEY_PREFIX, hash_key, is_well_formed
from .context import Billing

# last_used_at is advisory; writing it on every request would serialise readers behind writers.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class KeyPrincipal:
    """A valid key and its limits, as read by the one query that authenticates it."""

    key_id: str
    account_id: str
    scopes: frozenset[str] = frozenset(SCOPES)
    budget_micros: int | None = None
    budget_reset: str = "monthly"
    models: tuple[str, ...] = ()  # empty: any model of the price table
    rpm: int | None = None
    tpm: int | None = None
    expires_at: datetime | None = None
    project_id: str | None = None

    def require(self, scope: str) -> None:
        """Nothing when the key has `scope`; ScopeMissing (403 scope_missing) otherwise."""
        if scope not in self.scopes:
            raise ScopeMissing(scope)


@dataclass(frozen=True)
class KeyRef:
    """A well-formed account key, by its digest, for a service that looks it up inside its own write
    transaction (one read fewer per request than authenticating first; see services/usage.py), where the
    key must hold `scope` and not have expired."""

    digest: str
    scope: str = "usage:write"


def key_ref(secret: str) -> KeyRef | None:
    return KeyRef(hash_key(secret)) if is_well_formed(secret, ACCOUNT_KEY_PREFIX) else None


def key_accepted(stored_hash: str | None, revoked_at: datetime | None, digest: str) -> bool:
    return stored_hash is not None and hmac.compare_digest(stored_hash, digest) and revoked_at is None


def touch_due(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION


_keys = AccountKey.__table__
LIMIT_COLUMNS = (_keys.c.scopes, _keys.c.budget_micros, _keys.c.budget_reset, _keys.c.models, _keys.c.rpm, _keys.c.tpm,
                 _keys.c.expires_at, _keys.c.project_id)
_BY_HASH = select(_keys.c.id, _keys.c.account_id, _keys.c.key_hash, _keys.c.revoked_at, _keys.c.last_used_at,
                  *LIMIT_COLUMNS).where(_keys.c.key_hash == bindparam("digest"))
TOUCH_KEY = RawStatement(update(_keys).where(_keys.c.id == bindparam("key_id"))
                         .values(last_used_at=bindparam("at")))


def authenticate_account_key(billing: Billing, secret: str, *, now: datetime) -> KeyPrincipal | None:
    """The key with its account and limits, or None for a malformed, unknown or revoked key; KeyExpired (an
    InvalidKey) for an expired one. Read on every request (no cache), in one query."""
    ref = key_ref(secret)
    if ref is None:
        return None
    with read_connection(billing.engine) as conn:
        row = conn.execute(_BY_HASH, {"digest": ref.digest}).first()
    if row is None or not key_accepted(row.key_hash, row.revoked_at, ref.digest):
        return None
    refuse_if_expired(row.expires_at, now)
    if touch_due(row.last_used_at, now):
        with write_connection(billing.engine) as conn:
            TOUCH_KEY.execute(conn, {"key_id": row.id, "at": now})
    return KeyPrincipal(row.id, row.account_id, scope_set(row.scopes), row.budget_micros, row.budget_reset,
                        tuple(model_list(row.models)), row.rpm, row.tpm, row.expires_at, row.project_id)
