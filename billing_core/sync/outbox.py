"""Writing "this item changed" to the outbox, inside the transaction of the change.

Call `note_changed` as late as possible in the transaction (just before its last writes): on PostgreSQL the
row's id is taken from a sequence at the INSERT, and the delivery waits at a gap in the ids while the
transaction that owns it may still commit (see plan.contiguous_end), so that window should be short.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlmodel import Session

from ..db.operations import OutboxRow
from .plan import account_item, key_item, project_item

__all__ = ["note_changed", "account_item", "key_item", "project_item"]

_INSERT = insert(OutboxRow.__table__)


def note_changed(db: Session | Connection, now: datetime, *items: str) -> None:
    """One outbox row per item (repeats in one call are written once)."""
    rows = [{"item": item, "created_at": now} for item in dict.fromkeys(items)]
    if rows:
        db.execute(_INSERT, rows[0] if len(rows) == 1 else rows)
