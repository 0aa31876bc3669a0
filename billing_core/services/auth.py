"""Authenticating account keys: offline checksum first, then a constant-time hash match."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ..db.engine import read_session, write_session
from ..db.models import AccountKey
from ..keys import ACCOUNT_KEY_PREFIX, hash_key, is_well_formed
from .context import Billing

# last_used_at is advisory; writing it on every request would serialise readers behind writers.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class KeyPrincipal:
    key_id: str
    account_id: str


def authenticate_account_key(billing: Billing, secret: str, *, now: datetime) -> KeyPrincipal | None:
    """The key's account, or None for a malformed, unknown or revoked key."""
    if not is_well_formed(secret, ACCOUNT_KEY_PREFIX):
        return None
    digest = hash_key(secret)
    with read_session(billing.engine) as session:
        row = session.execute(select(AccountKey.id, AccountKey.account_id, AccountKey.key_hash,
                                     AccountKey.revoked_at, AccountKey.last_used_at)
                              .where(AccountKey.key_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        with write_session(billing.engine) as session:
            session.execute(update(AccountKey).where(AccountKey.id == row.id).values(last_used_at=now))
    return KeyPrincipal(row.id, row.account_id)
