"""A big batch's rows go to PostgreSQL by binary COPY (billing_core/db/raw.py): what is stored is exactly what
a Core insert of the same rows stores, edge values included; a table psycopg cannot type by name keeps the
text format."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import Column, Enum, Integer, MetaData, Table, insert, select
from sqlalchemy.dialects import postgresql

from billing_core.db.models import UsageEvent
from billing_core.db.raw import BulkInsert
from billing_core.services.usage_sql import EVENT_COLUMNS

from ..factories import make_account

_events = UsageEvent.__table__
AWARE = datetime(2026, 3, 1, 23, 30, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))  # 2026-03-02 04:30 UTC


def _rows(account_id: str, project_id: str, prefix: str, n: int) -> list[tuple]:
    odd = ["tab\there", "new\nline", "back\\slash", "quote'\"", "ünïcödé ✓", "", "\\N", "comma,semi;"]
    rows = []
    for i in range(n):
        text = odd[i % len(odd)]
        rows.append((account_id, f"{prefix}-{i}", "h" * 64, project_id, "tokens" if i % 2 else "compute",
                     AWARE + timedelta(seconds=i), AWARE, AWARE, 2**31 + i, text if i % 3 else None, None,
                     10**10, 0, "byok" if i % 2 else None, text, None if i % 4 else f"run-{text}",
                     -(2**40), 0, 2**62, -5, 0, 9_223_372_036_854_775_807 - i, bool(i % 2)))
    return rows


def _stored(conn, prefix: str) -> list[tuple]:
    cols = [_events.c[c] for c in EVENT_COLUMNS if c != "account_id"]
    found = conn.execute(select(*cols).where(_events.c.event_id.like(f"{prefix}-%"))).all()
    return sorted((r[0].split("-", 1)[1], *r[1:]) for r in found)


def test_binary_copy_stores_what_a_core_insert_stores(pg_billing):
    acc = make_account(pg_billing)
    bulk = BulkInsert(_events, EVENT_COLUMNS)
    assert bulk._binary_types(postgresql.psycopg.dialect()) is not None  # this table goes binary
    n = 3 * BulkInsert.COPY_FROM_ROWS
    with pg_billing.engine.begin() as conn:
        bulk.execute(conn, _rows(acc.account_id, acc.project_id, "copy", n))
        conn.execute(insert(_events), [dict(zip(EVENT_COLUMNS, r)) for r in _rows(acc.account_id, acc.project_id,
                                                                                    "core", n)])
    with pg_billing.engine.connect() as conn:
        copied, core = _stored(conn, "copy"), _stored(conn, "core")
    assert len(copied) == n and copied == core
    first = min(copied)  # "0": its times read back in UTC
    assert first[4] == datetime(2026, 3, 2, 4, 30, 0, 123456, tzinfo=timezone.utc)


def test_a_column_psycopg_cannot_name_keeps_the_text_format():
    table = Table("t", MetaData(), Column("id", Integer, primary_key=True),
                  Column("mood", Enum("calm", "busy", name="tollgate_mood")))  # a database's own type
    dialect = postgresql.psycopg.dialect()
    assert BulkInsert(table, ("id", "mood"))._binary_types(dialect) is None
    assert BulkInsert(table, ("id",))._binary_types(dialect) == ["integer"]
