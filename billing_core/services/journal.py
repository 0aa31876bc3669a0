"""Ledger entries and activity rows of one transaction, collected and then written in bulk."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session

from ..db.models import Activity, LedgerEntry


# A ledger entry as a row, in this column order (a usage batch's walk adds a thousand of them at a time,
# straight as tuples: services/usage_walk.py).
LEDGER_COLUMNS = ("account_id", "book", "kind", "amount", "balance_after", "pool_id", "period_start", "ref_type",
                  "ref_id", "created_at")


class Journal:
    def __init__(self, account_id: str, now: datetime) -> None:
        self.account_id, self.now = account_id, now
        self.entries: list[tuple] = []  # in LEDGER_COLUMNS order
        self.activities: list[dict] = []

    def entry(self, *, book: str, kind: str, amount: int, balance_after: int, period_start: datetime,
              ref_type: str, ref_id: str, pool_id: str | None = None) -> None:
        if amount == 0:
            return  # a ledger records changes; a zero change is no entry
        self.entries.append((self.account_id, book, kind, amount, balance_after, pool_id, period_start, ref_type,
                             ref_id, self.now))

    def activity(self, kind: str, subject: str, text: str, actor: str = "system") -> None:
        self.activities.append(dict(account_id=self.account_id, kind=kind, subject=subject[:160],
                                    actor=actor[:100], text=text[:300], created_at=self.now))

    def flush(self, session: Session) -> None:
        if self.entries:
            session.execute(insert(LedgerEntry), [dict(zip(LEDGER_COLUMNS, e)) for e in self.entries])
        if self.activities:
            session.execute(insert(Activity), self.activities)
        self.entries, self.activities = [], []
