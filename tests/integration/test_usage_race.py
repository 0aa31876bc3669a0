"""The unique constraint is the last word on idempotency: when a batch's read of the ids already recorded
misses one (as a read racing another writer could), the insert trips the constraint, the whole transaction
rolls back (on PostgreSQL the error comes back from the pipeline's sync, with the COMMIT), and the retry
reads the event as a duplicate with its original charge. Nothing is charged twice."""

import pytest
from sqlalchemy import func, select

from billing_core.db.engine import read_session
from billing_core.db.models import Account, LedgerEntry, UsageEvent
from billing_core.services import usage

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
