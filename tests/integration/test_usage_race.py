"""The unique constraint is the last word on idempotency: when a batch's read of the ids already recorded
misses one (as a read racing another writer could), the insert trips the constraint, the whole transaction
rolls back (on PostgreSQL the error comes back from the pipeline's sync, with the COMMIT), and the retry
reads the event as a duplicate with its original charge. Nothing is charged twice."""

import pytest
from sqlalchemy import func, select

from billing_core.db.engine import make_engine, read_session
from billing_core.db.models import Account, LedgerEntry, UsageEvent
from billing_core.errors import InvalidKey
from billing_core.keys import hash_key
from billing_core.services import account_keys, usage
from billing_core.services.auth import KeyRef, authenticate_account_key
from billing_core.services.context import Billing

from ..conftest import T0
from ..factories import compute, make_account


@pytest.mark.parametrize("size", [1, 30])  # pipelined on PostgreSQL / COPY
def test_a_missed_duplicate_trips_the_constraint_and_the_retry_reads_it(billing, monkeypatch, size):
    acc = make_account(billing, plan="hobby", credit_micros=1_000_000)
    events = [compute(acc.project_id, 90_000 + i, id=f"race-{i}") for i in range(size)]
    first = usage.record_usage(billing, acc.account_id, events, now=T0)
    with read_session(billing.engine) as s:
        before = s.get(Account, acc.account_id).used_ms, s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()

    real, reads = usage.lock_and_read, []

    def blind_once(conn, target, ids, now):
        start = real(conn, target, ids, now)
        if not reads:
            start.existing.clear()  # as if those rows were not visible yet
        reads.append(len(start.existing))
        return start

    monkeypatch.setattr(usage, "lock_and_read", blind_once)
    again = usage.record_usage(billing, acc.account_id, events, now=T0)

    assert reads == [0, size]  # the blind attempt, then the retry that sees them
    assert [r.status for r in again.results] == ["duplicate"] * size
    assert [r.charged for r in again.results] == [r.charged for r in first.results]
    with read_session(billing.engine) as s:
        after = s.get(Account, acc.account_id).used_ms, s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
        stored = s.execute(select(func.count()).select_from(UsageEvent)).scalar_one()
    assert after == before and stored == size


def test_a_refused_key_leaves_no_stale_read_behind_on_the_pooled_connection(billing, database_url, catalog):
    """The key is checked inside the write transaction, after the reads were sent: refusing it must leave no
    statement unfinished, or (SQLite) the pooled connection keeps reading the database as it was."""
    acc = make_account(billing)
    created = account_keys.create_key(billing, acc.account_id, name="to revoke", now=T0)
    account_keys.revoke_key(billing, acc.account_id, created.key.id, now=T0)
    with pytest.raises(InvalidKey) as refused:
        usage.record_usage(billing, KeyRef(hash_key(created.secret)), [compute(acc.project_id, 1000)], now=T0)
    # The error, with its traceback (and every object its frames held), lives on, as it may in a server.
    assert refused.traceback

    other = Billing(make_engine(database_url), catalog)  # another process's writer (the admin CLI, say)
    try:
        newcomer = make_account(other)
    finally:
        other.engine.dispose()
    assert authenticate_account_key(billing, newcomer.api_key, now=T0) is not None
    recorded = usage.record_usage(billing, KeyRef(hash_key(newcomer.api_key)), [compute(newcomer.project_id, 1000)],
                                  now=T0)
    assert recorded.account.id == newcomer.account_id
    del refused
