"""Eight processes report usage to one account at once, half of it replays: exact to the micro, no double charge."""

import multiprocessing as mp
import random

from sqlalchemy import func, select

from billing_core.db.engine import make_engine, read_session
from billing_core.db.models import Account, LedgerEntry, UsageEvent
from billing_core.plans import load_catalog
from billing_core.services.context import Billing
from billing_core.services.usage import UsageEventIn, record_usage

from ..conftest import T0
from ..factories import make_account, sequential_balances

PROCESSES, PER_PROCESS, BATCH = 8, 500, 50
DURATION_MS = 12_345  # 1234.5 micros at the credit rate: every event rounds, half to even
CREDIT = 10_000_000


def _events(worker: int, project_id: str) -> list[UsageEventIn]:
    shared = [UsageEventIn(id=f"shared-{i}", project_id=project_id, kind="compute", duration_ms=DURATION_MS)
              for i in range(PER_PROCESS // 2)]
    own = [UsageEventIn(id=f"w{worker}-{i}", project_id=project_id, kind="compute", duration_ms=DURATION_MS)
           for i in range(PER_PROCESS // 2)]
    events = shared + own
    random.Random(worker).shuffle(events)
    return events


def _worker(url: str, account_id: str, project_id: str, worker: int, out) -> None:
    billing = Billing(make_engine(url), load_catalog())
    charged = {}
    events = _events(worker, project_id)
    for i in range(0, len(events), BATCH):
        for r in record_usage(billing, account_id, events[i:i + BATCH], now=T0).results:
            assert r.status in ("accepted", "duplicate"), r
            charged[r.id] = (r.status, r.charged)
    out.put(charged)


def test_eight_processes_with_half_replays_end_exact_to_the_micro(billing, database_url):
    acc = make_account(billing, plan="hobby", credit_micros=CREDIT)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(database_url, acc.account_id, acc.project_id, w, out))
             for w in range(PROCESSES)]
    for p in procs:
        p.start()
    reports = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    distinct = PROCESSES * PER_PROCESS // 2 + PER_PROCESS // 2
    balances = sequential_balances(billing.catalog, "hobby", CREDIT, distinct, DURATION_MS)

    with read_session(billing.engine) as s:
        account = s.get(Account, acc.account_id)
        events = s.execute(select(func.count()).select_from(UsageEvent)).scalar_one()
        credit_sum = s.execute(select(func.sum(LedgerEntry.amount)).where(
            LedgerEntry.account_id == acc.account_id, LedgerEntry.book == "credit")).scalar_one()
        charged_sum = s.execute(select(func.sum(UsageEvent.credit_micros))).scalar_one()
    assert events == distinct
    assert account.credit_balance_micros == balances.credit_micros == credit_sum
    assert CREDIT - account.credit_balance_micros == charged_sum
    assert account.used_ms == account.included_ms
    # Every process saw the same charge for a shared event, whichever of them recorded it.
    for i in range(PER_PROCESS // 2):
        charges = {report[f"shared-{i}"][1] for report in reports}
        assert len(charges) == 1
    accepted = sum(1 for report in reports for status, _ in report.values() if status == "accepted")
    assert accepted == distinct
