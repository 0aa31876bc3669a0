"""usage_events and ledger_entries name existing accounts, and an account they name stays: a foreign key on
SQLite, statement-level triggers on PostgreSQL (migration 0005). Both refuse the same things."""

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from billing_core.db.engine import make_engine
from billing_core.db.models import Account, LedgerEntry, UsageEvent
from billing_core.services.usage import record_usage

from ..conftest import T0
from ..factories import compute, make_account

_events, _ledger, _accounts = UsageEvent.__table__, LedgerEntry.__table__, Account.__table__


def _recorded(billing):
    """An account with one event and its ledger entries; a stored row of each, as dicts without their ids."""
    acc = make_account(billing, plan="hobby", credit_micros=1_000_000)
    record_usage(billing, acc.account_id, [compute(acc.project_id, 60_000, id="ref-1")], now=T0)
    with billing.engine.connect() as conn:
        event = dict(conn.execute(select(_events).where(_events.c.account_id == acc.account_id)).mappings().one())
        entry = dict(conn.execute(select(_ledger).where(_ledger.c.account_id == acc.account_id)).mappings().first())
    event.pop("id"), entry.pop("id")
    return acc, event, entry


def _count(billing, table) -> int:
    with billing.engine.connect() as conn:
        return len(conn.execute(select(table.c.id)).all())


@pytest.mark.parametrize("table", ["usage_events", "ledger_entries"])
def test_a_row_naming_no_account_is_refused(billing, table):
    _, event, entry = _recorded(billing)
    target, row = (_events, {**event, "event_id": "orphan"}) if table == "usage_events" else (_ledger, dict(entry))
    before = _count(billing, target)
    with pytest.raises(IntegrityError), billing.engine.begin() as conn:
        conn.execute(insert(target), [{**row, "account_id": "acc_missing"}])
    assert _count(billing, target) == before


def test_one_unknown_account_in_a_bulk_insert_refuses_the_whole_statement(billing):
    acc, event, _ = _recorded(billing)
    rows = [{**event, "event_id": f"bulk-{i}"} for i in range(50)] + [{**event, "event_id": "x", "account_id": "nope"}]
    before = _count(billing, _events)
    with pytest.raises(IntegrityError), billing.engine.begin() as conn:
        conn.execute(insert(_events), rows)
    assert _count(billing, _events) == before
    with billing.engine.begin() as conn:  # the same rows naming only the real account go in
        conn.execute(insert(_events), rows[:-1])
    assert _count(billing, _events) == before + 50


def test_rows_moved_to_an_unknown_account_are_refused(billing):
    _recorded(billing)
    with pytest.raises(IntegrityError), billing.engine.begin() as conn:
        conn.execute(update(_ledger).values(account_id="acc_missing"))


@pytest.mark.parametrize("named_by", ["usage_events", "ledger_entries"])
def test_an_account_that_rows_name_cannot_be_deleted_or_renamed(billing, named_by):
    acc, event, entry = _recorded(billing)
    with billing.engine.begin() as conn:  # everything else of the account goes, so only these rows hold it
        if named_by == "ledger_entries":
            conn.execute(delete(_events).where(_events.c.account_id == acc.account_id))
        else:
            conn.execute(delete(_ledger).where(_ledger.c.account_id == acc.account_id))
        for table in ("activity", "account_keys", "projects", "periods", "account_settings"):
            conn.execute(text(f"DELETE FROM {table} WHERE account_id = :a"), {"a": acc.account_id})
    with pytest.raises(IntegrityError), billing.engine.begin() as conn:
        conn.execute(delete(_accounts).where(_accounts.c.id == acc.account_id))
    with pytest.raises(IntegrityError), billing.engine.begin() as conn:
        conn.execute(update(_accounts).where(_accounts.c.id == acc.account_id).values(id="acc_renamed"))
    with billing.engine.connect() as conn:
        assert conn.execute(select(_accounts.c.id).where(_accounts.c.id == acc.account_id)).scalar_one()


def test_an_account_no_rows_name_can_be_deleted(billing):
    acc = make_account(billing, plan="hobby")
    with billing.engine.begin() as conn:
        for table in ("ledger_entries", "activity", "account_keys", "projects", "periods", "account_settings"):
            conn.execute(text(f"DELETE FROM {table} WHERE account_id = :a"), {"a": acc.account_id})
        conn.execute(delete(_accounts).where(_accounts.c.id == acc.account_id))
        assert conn.execute(select(_accounts.c.id).where(_accounts.c.id == acc.account_id)).first() is None


def test_postgresql_an_insert_in_flight_holds_its_account_as_a_foreign_key_would(pg_billing, pg_url):
    """The insert locks the account FOR KEY SHARE until it commits: a delete of the account waits for it."""
    billing = pg_billing
    acc, event, _ = _recorded(billing)
    other = make_engine(pg_url)
    with billing.engine.connect() as inserting:
        tx = inserting.begin()
        inserting.execute(insert(_events), [{**event, "event_id": "in-flight"}])
        with pytest.raises(OperationalError, match="lock timeout"), other.begin() as deleting:
            deleting.execute(text("SET LOCAL lock_timeout = '300ms'"))
            deleting.execute(delete(_accounts).where(_accounts.c.id == acc.account_id))
        tx.commit()
    other.dispose()
