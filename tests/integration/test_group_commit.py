"""Group commit on a real database: eight threads report single events (half of them replays of each other)
through record_usage_grouped; the account ends exact to the micro, each event recorded once, every thread
sees the same charge for a shared event, and fewer transactions ran than requests were made."""

import threading
import time

from sqlalchemy import func, select

from billing_core.db.engine import read_session
from billing_core.db.models import Account, LedgerEntry, UsageEvent
from billing_core.services import usage
from billing_core.services.auth import KeyRef
from billing_core.services.coalesce import Coalescer
from billing_core.services.usage import UsageEventIn, record_usage_grouped
from billing_core.keys import hash_key

from ..conftest import T0
from ..factories import make_account, sequential_balances

THREADS, PER_THREAD = 8, 30
DURATION_MS = 61_235  # past the allowance: the credit pays, with rounding
CREDIT = 10_000_000


def test_concurrent_single_events_share_transactions_and_end_exact(billing, monkeypatch):
    acc = make_account(billing, plan="hobby", credit_micros=CREDIT)
    transactions = []
    real = usage.record_usage

    def slow_record(billing_, account, events, *, now):
        transactions.append(len(events))
        time.sleep(0.01)  # long enough for the other threads to queue behind it
        return real(billing_, account, events, now=now)

    monkeypatch.setattr(usage, "record_usage", slow_record)
    monkeypatch.setattr(usage, "_GROUPS", Coalescer(running=1))  # one group at a time: the most grouping
    reports: list[dict] = [{} for _ in range(THREADS)]
    failures = []
    key = KeyRef(hash_key(acc.api_key))

    def worker(w: int) -> None:
        try:
            for i in range(PER_THREAD):
                event_id = f"shared-{i}" if i % 2 else f"w{w}-{i}"
                target = key if w % 2 else acc.account_id  # named by key or by id: both are exact
                result = record_usage_grouped(billing, target, [UsageEventIn(
                    id=event_id, project_id=acc.project_id, kind="compute", duration_ms=DURATION_MS)], now=T0)
                (r,) = result.results
                assert r.id == event_id and r.status in ("accepted", "duplicate"), r
                assert result.account.id == acc.account_id
                reports[w][event_id] = (r.status, r.charged)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures

    distinct = THREADS * PER_THREAD // 2 + PER_THREAD // 2
    balances = sequential_balances(billing.catalog, "hobby", CREDIT, distinct, DURATION_MS)
    with read_session(billing.engine) as s:
        account = s.get(Account, acc.account_id)
        events = s.execute(select(func.count()).select_from(UsageEvent)).scalar_one()
        credit_sum = s.execute(select(func.sum(LedgerEntry.amount)).where(
            LedgerEntry.account_id == acc.account_id, LedgerEntry.book == "credit")).scalar_one()
    assert events == distinct
    assert account.credit_balance_micros == balances.credit_micros == credit_sum < CREDIT
    assert account.used_ms == min(account.included_ms, distinct * DURATION_MS)
    for i in range(1, PER_THREAD, 2):
        assert len({report[f"shared-{i}"][1] for report in reports}) == 1
    accepted = sum(1 for report in reports for status, _ in report.values() if status == "accepted")
    assert accepted == distinct
    # Requests by key and by id are grouped apart, and each group is one transaction.
    assert sum(transactions) == THREADS * PER_THREAD
    assert len(transactions) < THREADS * PER_THREAD * 3 / 4
