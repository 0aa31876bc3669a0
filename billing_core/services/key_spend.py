"""What each account key has spent, kept per UTC day, and summed over its current budget window.

Every budget window (billing_core/gateway/windows.py: daily, weekly, monthly, never) starts at a UTC midnight,
so a window's spend is the sum of its whole days, and a key whose reset changes counts its spend right at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..db.models import AccountKey, KeySpend
from ..gateway.windows import budget_window_start
from .auth import KeyPrincipal

_spend = KeySpend.__table__
_INSERTS = {"postgresql": pg_insert, "sqlite": sqlite_insert}


def day_start(now: datetime) -> datetime:
    """The UTC midnight that begins `now`'s day (the row its spend goes to)."""
    utc = now.astimezone(timezone.utc) if now.tzinfo else now.replace(tzinfo=timezone.utc)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def add_key_spend(session: Session | Connection, key_id: str, amount_micros: int, now: datetime) -> None:
    """Add to the key's spend of `now`'s day, in the caller's transaction (one upsert: concurrent posts add up)."""
    if isinstance(amount_micros, bool) or not isinstance(amount_micros, int) or amount_micros < 0:
        raise ValueError(f"amount_micros must be a whole number >= 0, got {amount_micros!r}")
    if amount_micros == 0:
        return
    stmt = _INSERTS[session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name](
        _spend).values(key_id=key_id, day_start=day_start(now), spend_micros=amount_micros)
    session.execute(stmt.on_conflict_do_update(
        index_elements=[_spend.c.key_id, _spend.c.day_start],
        set_={"spend_micros": _spend.c.spend_micros + stmt.excluded.spend_micros}))


def window_start(reset: str, now: datetime) -> datetime | None:
    """The first day counted for a key with this reset at `now`; None: every day (`never`)."""
    return budget_window_start(reset, now.astimezone(timezone.utc) if now.tzinfo else now)


def key_spend_in_window(session: Session | Connection, key: AccountKey | KeyPrincipal, now: datetime) -> int:
    """What the key spent in its current budget window."""
    key_id = key.key_id if isinstance(key, KeyPrincipal) else key.id
    stmt = select(func.coalesce(func.sum(_spend.c.spend_micros), 0)).where(_spend.c.key_id == key_id)
    start = window_start(key.budget_reset, now)
    if start is not None:
        stmt = stmt.where(_spend.c.day_start >= start)
    return int(session.execute(stmt).scalar_one())


def spend_of_keys(session: Session | Connection, keys: Iterable[AccountKey], now: datetime) -> dict[str, int]:
    """key_spend_in_window for many keys in one query (each key's window applied to its own rows)."""
    keys = list(keys)
    if not keys:
        return {}
    starts = {k.id: window_start(k.budget_reset, now) for k in keys}
    bounded = [s for s in starts.values() if s is not None]
    clauses = []
    if bounded:
        clauses.append(_spend.c.key_id.in_([k for k, s in starts.items() if s is not None])
                       & (_spend.c.day_start >= min(bounded)))
    if len(bounded) < len(starts):
        clauses.append(_spend.c.key_id.in_([k for k, s in starts.items() if s is None]))
    out = dict.fromkeys(starts, 0)
    for key_id, day, amount in session.execute(
            select(_spend.c.key_id, _spend.c.day_start, _spend.c.spend_micros).where(or_(*clauses))):
        start = starts[key_id]
        if start is None or day >= start:
            out[key_id] += amount
    return out
