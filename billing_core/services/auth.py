"""Authenticating account keys: offline checksum first, then a constant-time hash match."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update

from ..db.engine import read_connection, write_connection
from ..db.models import AccountKey
from ..keys import ACCOUNT_KEY_PREFIX, hash_key, is_well_formed
from .context import Billing

# last_used_at is advisory; writing it on every request would serialise readers behind writers.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class KeyPrincipal:
    key_id: str
    account_id: str


_keys = AccountKey.__table__
_BY_HASH = select(_keys.c.id, _keys.c.account_id, _keys.c.key_hash, _keys.c.revoked_at, _keys.c.last_used_at
                  ).where(_keys.c.key_hash == bindparam("digest"))
_TOUCH = update(_keys).where(_keys.c.id == bindparam("key_id")).values(last_used_at=bindparam("at"))


def authenticate_account_key(billing: Billing, secret: str, *, now: datetime) -> KeyPrincipal | None:
    """The key's account, or None for a malformed, unknown or revoked key (read on every request: no cache)."""
    if not is_well_formed(secret, ACCOUNT_KEY_PREFIX):
        return None
    digest = hash_key(secret)
    with read_connection(billing.engine) as conn:
        row = conn.execute(_BY_HASH, {"digest": digest}).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        with write_connection(billing.engine) as conn:
            conn.execute(_TOUCH, {"key_id": row.id, "at": now})
    return KeyPrincipal(row.id, row.account_id)
