"""The desired state of the edge, read from the database: what each item's value should be right now.

An item with no desired value (revoked key, deleted project, unknown id) is absent from the answer, which
the delivery turns into a delete. Value schemas are the contract of docs/edge-sync.md.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from ..crypto import Keyring, SecretError
from ..db.models import Account, AccountKey, Pool, Project
from ..db.sealed import hmac_aad
from ..plans import Catalog
from .plan import (ACCOUNT, KEY, PROJECT, UNREADABLE, Unreadable, account_item, chunks, key_item, project_item,
                   split_item)

log = logging.getLogger("billing_core.sync")

_keys, _accounts, _pools, _projects = (AccountKey.__table__, Account.__table__, Pool.__table__,
                                       Project.__table__)
IN_CHUNK = 500


def rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def key_value(row) -> dict:
    scopes = sorted(set((row.scopes or "*").replace(",", " ").split())) or ["*"]
    expires_at = rfc3339(row.expires_at) if row.expires_at is not None else None
    # The edge refuses a key past expires_at itself: no change is pushed when that moment passes.
    return {"account_id": row.account_id, "project_id": row.project_id, "scopes": scopes, "expires_at": expires_at,
            "status": "active"}


def account_value(row, pool_ms: int, catalog: Catalog, now: datetime) -> dict:
    plan = catalog.plans.get(row.plan)
    return {"status": row.status, "plan": row.plan,
            "remaining_allowance_ms": max(0, row.included_ms - row.used_ms), "pool_ms": pool_ms,
            "credit_micros": row.credit_balance_micros, "overage_micros": row.overage_micros,
            "spend_cap_micros": row.spend_cap_micros,
            "concurrency_limit": plan.concurrent_runs if plan else 0,
            "period_end": rfc3339(row.period_end), "as_of": rfc3339(now)}


def project_value(row, keyring: Keyring | None, now: datetime) -> dict | Unreadable:
    """The project's value; Unreadable when one of its HMAC keys does not open here (the edge keeps the
    value it has rather than lose a key it verifies signatures with)."""
    try:
        hmac_keys = _hmac_keys(row, keyring, now)
    except SecretError as exc:
        log.warning("edge sync: an HMAC key of project %s cannot be opened (%s)", row.id, exc)
        return Unreadable(f"{UNREADABLE} the HMAC key of project {row.id}: {exc}")
    return {"account_id": row.account_id, "name": row.name, "status": "active", "hmac_keys": hmac_keys}


def _hmac_keys(row, keyring: Keyring | None, now: datetime) -> list[dict]:
    """SHA-256 of each HMAC key that verifies now: the current one, and the previous one during its grace."""
    sealed = [(row.hmac_ciphertext, None)]
    if row.previous_hmac_valid_until is not None and row.previous_hmac_valid_until > now:
        sealed.append((row.previous_hmac_ciphertext, rfc3339(row.previous_hmac_valid_until)))
    out = []
    for ciphertext, valid_until in sealed:
        if ciphertext is None:
            continue
        if keyring is None:
            raise RuntimeError("the edge sync needs a Billing with a keyring to publish HMAC key fingerprints")
        secret = keyring.open(ciphertext, hmac_aad(row.account_id, row.id))
        out.append({"sha256": hashlib.sha256(secret.encode()).hexdigest(), "valid_until": valid_until})
    return out


def _pool_ms(conn: Connection, account_ids: list[str] | None, now: datetime) -> dict[str, int]:
    """What live pools hold per account (as balances_of counts them: time left, not expired, not due)."""
    stmt = (select(_pools.c.account_id, func.sum(_pools.c.remaining_ms))
            .where(_pools.c.expired_at.is_(None), _pools.c.remaining_ms > 0, _pools.c.expires_at > now)
            .group_by(_pools.c.account_id))
    if account_ids is None:
        return {a: int(ms) for a, ms in conn.execute(stmt)}
    out: dict[str, int] = {}
    for part in chunks(account_ids, IN_CHUNK):
        out.update({a: int(ms) for a, ms in conn.execute(stmt.where(_pools.c.account_id.in_(part)))})
    return out


def load_values(conn: Connection, items: Iterable[str], *, now: datetime, catalog: Catalog,
                keyring: Keyring | None) -> dict[str, dict | Unreadable]:
    """The desired value of each item that has one."""
    wanted: dict[str, list[str]] = {KEY: [], ACCOUNT: [], PROJECT: []}
    for item in dict.fromkeys(items):
        kind, ident = split_item(item)
        if kind:
            wanted[kind].append(ident)
    out: dict[str, dict] = {}
    for part in chunks(wanted[KEY], IN_CHUNK):
        for row in conn.execute(select(_keys).where(_keys.c.key_hash.in_(part), _keys.c.revoked_at.is_(None))):
            out[key_item(row.key_hash)] = key_value(row)
    if wanted[ACCOUNT]:
        pools = _pool_ms(conn, wanted[ACCOUNT], now)
        for part in chunks(wanted[ACCOUNT], IN_CHUNK):
            for row in conn.execute(select(_accounts).where(_accounts.c.id.in_(part))):
                out[account_item(row.id)] = account_value(row, pools.get(row.id, 0), catalog, now)
    for part in chunks(wanted[PROJECT], IN_CHUNK):
        for row in conn.execute(select(_projects).where(_projects.c.id.in_(part), _projects.c.deleted_at.is_(None))):
            out[project_item(row.id)] = project_value(row, keyring, now)
    return out


def load_all(conn: Connection, *, now: datetime, catalog: Catalog,
             keyring: Keyring | None) -> dict[str, dict | Unreadable]:
    """The whole desired state: every active key, every account, every live project."""
    out: dict[str, dict] = {}
    for row in conn.execute(select(_keys).where(_keys.c.revoked_at.is_(None))):
        out[key_item(row.key_hash)] = key_value(row)
    pools = _pool_ms(conn, None, now)
    for row in conn.execute(select(_accounts)):
        out[account_item(row.id)] = account_value(row, pools.get(row.id, 0), catalog, now)
    for row in conn.execute(select(_projects).where(_projects.c.deleted_at.is_(None))):
        out[project_item(row.id)] = project_value(row, keyring, now)
    return out
