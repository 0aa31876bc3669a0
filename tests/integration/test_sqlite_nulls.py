"""SQLite binds None through a registered adapter (billing_core/db/engine.py, for speed): what is stored must
still be SQL NULL, through the raw batch path, the ORM and a plain driver call alike."""

import sqlite3

from sqlalchemy import select

from billing_core.db.engine import make_engine, read_session
from billing_core.db.models import UsageEvent
from billing_core.services import usage

from ..conftest import T0
from ..factories import compute, make_account, tokens


def test_the_adapter_is_registered_and_binds_none_as_null(sqlite_url):
    make_engine(sqlite_url).dispose()
    assert (type(None), sqlite3.PrepareProtocol) in sqlite3.adapters
    conn = sqlite3.connect(":memory:")
    try:
        assert conn.execute("SELECT typeof(?), ? IS NULL, coalesce(?, 'was null')", (None, None, None)).fetchone() \
            == ("null", 1, "was null")
        conn.execute("CREATE TABLE t (a TEXT, b INTEGER NOT NULL)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(None, 1), ("x", 2), (None, 3)])
        assert conn.execute("SELECT b, typeof(a) FROM t ORDER BY b").fetchall() == [(1, "null"), (2, "text"), (3, "null")]
    finally:
        conn.close()


def test_a_batch_stores_its_missing_values_as_null(sqlite_billing, sqlite_url):
    acc = make_account(sqlite_billing, plan="hobby", credit_micros=5_000_000)
    events = [compute(acc.project_id, 60_000 + i) for i in range(25)]  # 25: the executemany path
    events.append(tokens(acc.project_id, "claude-sonnet-4", 1000, 100, agent="coder"))
    results = usage.record_usage(sqlite_billing, acc.account_id, events, now=T0).results
    assert {r.status for r in results} == {"accepted"}

    raw = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    try:
        kinds = raw.execute("SELECT kind, typeof(model), typeof(provider), typeof(key_source), typeof(agent), "
                            "count(*) FROM usage_events GROUP BY 1, 2, 3, 4, 5 ORDER BY 1").fetchall()
        pool_ids = raw.execute("SELECT DISTINCT typeof(pool_id) FROM ledger_entries").fetchall()
        text_none = raw.execute("SELECT count(*) FROM usage_events WHERE model = 'None' OR agent = 'None'").fetchone()
    finally:
        raw.close()
    assert kinds == [("compute", "null", "null", "null", "null", 25), ("tokens", "text", "null", "text", "text", 1)]
    assert pool_ids == [("null",)]
    assert text_none == (0,)
    with read_session(sqlite_billing.engine) as s:  # and the ORM reads them back as None
        stored = s.execute(select(UsageEvent).where(UsageEvent.kind == "compute").limit(1)).scalar_one()
    assert (stored.model, stored.provider, stored.agent) == (None, None, None)
