"""Which accounts changed since the last look: the portal's database watcher asks this every fraction of a
second, so that changes committed by other processes (the admin CLI, another worker, the scheduler) reach
open pages too. One query for all accounts, over the tables every change writes to."""

from __future__ import annotations

import time

from sqlalchemy import func, literal, select, union_all

from ..db.models import Activity, LedgerEntry, UsageEvent

_WATCHED = (("activity", Activity), ("ledger", LedgerEntry), ("usage", UsageEvent))


def _latest_ids(conn) -> dict[str, int]:
    row = conn.execute(select(*[select(func.max(t.id)).scalar_subquery() for _, t in _WATCHED])).one()
    return {name: int(value or 0) for (name, _), value in zip(_WATCHED, row)}


def _changes_since(conn, last: dict[str, int]) -> list[tuple[str, str, int]]:
    """(table, account_id, max id) for every account with rows past `last`: one query for all accounts."""
    parts = [select(literal(name).label("t"), t.account_id, func.max(t.id)).where(t.id > last[name])
             .group_by(t.account_id) for name, t in _WATCHED]
    return [(t, a, int(i)) for t, a, i in conn.execute(union_all(*parts)).all()]


def poll_once(engine, last: dict[str, int] | None) -> tuple[dict[str, int], set[str], float]:
    """The ids seen so far, the accounts changed since `last` (None: start from now, nothing changed), and
    when the query began (time.monotonic()): what it found was committed before then."""
    with engine.connect() as conn:
        began = time.monotonic()
        if last is None:
            return _latest_ids(conn), set(), began
        changes = _changes_since(conn, last)
    seen = dict(last)
    for table, _, max_id in changes:
        seen[table] = max(seen[table], max_id)
    # Rows committed out of id order (PostgreSQL sequences) can be passed over; LISTEN/NOTIFY has no such gap.
    return seen, {account_id for _, account_id, _ in changes}, began
