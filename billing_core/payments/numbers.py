"""Gapless document numbers (invoices, receipts): taken in the transaction that issues the document."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ..db.payments import DocumentNumber


def next_number(session: Session, kind: str) -> int:
    """The next number of `kind`. The counter row stays locked until the caller's transaction ends, so a
    rolled-back document gives its number back and two transactions never take the same one."""
    for _ in range(2):
        taken = session.execute(update(DocumentNumber).where(DocumentNumber.kind == kind)
                                .values(last=DocumentNumber.last + 1).returning(DocumentNumber.last)
                                ).scalar_one_or_none()
        if taken is not None:
            return taken
        try:  # the first document of its kind (the migration seeds the counters; an emptied table does not)
            with session.begin_nested():
                session.add(DocumentNumber(kind=kind, last=1))
            return 1
        except IntegrityError:
            continue  # another transaction made the counter first: take the next number from it
    raise RuntimeError(f"document counter {kind!r} could not be taken")
