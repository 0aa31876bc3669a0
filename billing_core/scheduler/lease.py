"""The leader lease: one row in scheduler_leases says which instance runs the scheduled jobs, and until when.

An instance takes the lease with one conditional UPDATE (it holds it already, or the holder let it expire),
so two instances racing for it cannot both win: PostgreSQL re-checks the WHERE clause on the row the
winner wrote, and SQLite runs writers one at a time. The very first take is an INSERT, which the primary
key settles. Each instance compares `expires_at` with its own clock, so clocks must agree to well within
the lease (NTP does).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, case, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..db.engine import read_connection, write_connection
from ..db.operations import SchedulerLease

LEASE_NAME = "scheduler"
HOLDER_MAX_CHARS = 200


def new_holder(prefix: str = "") -> str:
    """A name for this instance that no other instance shares: host, process id and a random part."""
    name = f"{prefix}{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    return name[-HOLDER_MAX_CHARS:]


@dataclass(frozen=True)
class LeaseView:
    """The lease as the operator sees it; `holder` is the last one to take it, alive or not."""

    holder: str | None
    expires_at: datetime | None
    last_tick_at: datetime | None
    acquired_at: datetime | None = None

    def leader(self, now: datetime) -> str | None:
        """The holder while its lease runs; None once it has expired (nobody leads until someone takes it)."""
        if self.holder and self.expires_at is not None and self.expires_at > now:
            return self.holder
        return None


def try_acquire(engine: Engine, holder: str, now: datetime, lease_s: float, *, tick: bool = False,
                name: str = LEASE_NAME) -> bool:
    """Take or renew the lease until now + lease_s; False when another holder's lease still runs.
    With `tick`, also record `now` as the leader's last tick, in the same statement."""
    t = SchedulerLease
    expires_at = now + timedelta(seconds=lease_s)
    values = {"holder": holder, "renewed_at": now, "expires_at": expires_at,
              # SET reads the row as it was: a renewal keeps its acquisition time, a takeover starts its own.
              "acquired_at": case((t.holder == holder, t.acquired_at), else_=now)}
    if tick:
        values["last_tick_at"] = now
    with write_connection(engine) as conn:
        taken = conn.execute(update(t).where(t.name == name, or_(t.holder == holder, t.expires_at < now))
                             .values(**values)).rowcount
        if taken:
            return True
        if conn.execute(select(t.name).where(t.name == name)).first() is not None:
            return False
    try:
        with write_connection(engine) as conn:
            conn.execute(insert(t).values(name=name, holder=holder, acquired_at=now, renewed_at=now,
                                          expires_at=expires_at, last_tick_at=now if tick else None))
        return True
    except IntegrityError:
        return False  # another instance inserted it first: it leads


def renew(engine: Engine, holder: str, now: datetime, lease_s: float, *, tick: bool = False,
          name: str = LEASE_NAME) -> bool:
    """Extend a lease this holder has; False when it has been taken over (or never existed)."""
    t = SchedulerLease
    values = {"renewed_at": now, "expires_at": now + timedelta(seconds=lease_s)}
    if tick:
        values["last_tick_at"] = now
    with write_connection(engine) as conn:
        stmt = update(t).where(t.name == name, t.holder == holder).values(**values)
        return bool(conn.execute(stmt).rowcount)


def release(engine: Engine, holder: str, now: datetime, *, name: str = LEASE_NAME) -> bool:
    """On a clean shutdown: end this holder's lease now, so another instance takes over at its next tick
    instead of after the lease runs out. The row stays, naming the last leader and its last tick."""
    t = SchedulerLease
    with write_connection(engine) as conn:
        stmt = update(t).where(t.name == name, t.holder == holder, t.expires_at > now).values(expires_at=now)
        return bool(conn.execute(stmt).rowcount)


def leader(engine: Engine, *, name: str = LEASE_NAME) -> LeaseView:
    """The lease row as stored (all None before any instance has taken it)."""
    t = SchedulerLease
    with read_connection(engine) as conn:
        row = conn.execute(select(t.holder, t.expires_at, t.last_tick_at, t.acquired_at)
                           .where(t.name == name)).first()
    if row is None:
        return LeaseView(None, None, None)
    return LeaseView(row.holder, row.expires_at, row.last_tick_at, row.acquired_at)
