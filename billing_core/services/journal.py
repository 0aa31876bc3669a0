"""Ledger entries and activity rows of one transaction, collected and then written in bulk."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlmodel import Session

from ..db.models import Activity, LedgerEntry


class Journal:
    def __init__(self, account_id: str, now: datetime) -> None:
        self.account_id, self.now = account_id, now
        self.entries: list[dict] = []
        self.activities: list[dict] = []

    def entry(self, *, book: str, kind: str, amount: int, balance_after: int, period_start: datetime,
              ref_type: str, ref_id: str, pool_id: str | None = None) -> None:
        if amount == 0:
            return  # a ledger records changes; a zero change is no entry
        self.entries.append(dict(account_id=self.account_id, book=book, kind=kind, amount=amount,
                                 balance_after=balance_after, pool_id=pool_id, period_start=period_start,
                                 ref_type=ref_type, ref_id=ref_id, created_at=self.now))

    def activity(self, kind: str, subject: str, text: str, actor: str = "system") -> None:
        self.activities.append(dict(account_id=self.account_id, kind=kind, subject=subject[:160],
                                    actor=actor[:100], text=text[:300], created_at=self.now))

    def flush(self, session: Session) -> None:
        if self.entries:
            session.execute(insert(LedgerEntry), self.entries)
        if self.activities:
            session.execute(insert(Activity), self.activities)
        self.entries, self.activities = [], []
