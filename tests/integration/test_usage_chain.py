"""Chained batches (billing_core/services/chain.py), on PostgreSQL: a big batch that arrives while another of the
same account is in flight in this process walks ahead of its lock, over the state the first one leaves.
Whatever happens in between, what is recorded is exactly what recording the batches one after the other
records: the walk stands only when the locked read finds what it assumed, and is done again otherwise."""

import threading

import pytest
from sqlalchemy import func, select

from billing_core.db.engine import read_session
from billing_core.db.models import Account, LedgerEntry, UsageEvent
from billing_core.services import accounts, usage

from ..conftest import T0
from ..factories import compute, make_account

SIZE = usage.CHAIN_FROM + 20

MINUTES_20 = 20 * 60_000


def _batches(project_id: str) -> tuple[list, list]:
    """Two batches that cross from allowance into credit; the second replays one event of the first."""
    first = [compute(project_id, MINUTES_20 + i, id=f"a-{i}") for i in range(SIZE)]
    second = [compute(project_id, MINUTES_20 + 7 * i, id=f"b-{i}") for i in range(SIZE)] + [first[3]]
    return first, second


def _state(billing, account_id: str) -> tuple:
    with read_session(billing.engine) as s:
        acc = s.get(Account, account_id)
        ledger = s.execute(select(LedgerEntry.book, LedgerEntry.amount, LedgerEntry.balance_after)
                           .where(LedgerEntry.account_id == account_id).order_by(LedgerEntry.id)).all()
        events = s.execute(select(func.count()).select_from(UsageEvent)
                           .where(UsageEvent.account_id == account_id)).scalar_one()
    return acc.used_ms, acc.credit_balance_micros, acc.overage_micros, acc.status, [tuple(r) for r in ledger], events


def _outcome(batch) -> list[tuple]:
    return [(r.id, r.status, r.charged, r.late) for r in batch.results]


class _Spy:
    """Counts the chain's joins and remembers whether each guess held."""

    def __init__(self, monkeypatch) -> None:
        self.joined = 0
        self.held: list[bool] = []
        real_join, real_holds = usage._CHAIN.join, usage._Guess.holds

        def join(target):
            self.joined += 1
            return real_join(target)

        def holds(guess, start, live):
            held = real_holds(guess, start, live)
            self.held.append(held)
            return held

        monkeypatch.setattr(usage._CHAIN, "join", join)
        monkeypatch.setattr(usage._Guess, "holds", holds)


def _first_waits_for_second_to_join(monkeypatch, spy: _Spy) -> None:
    """The first batch takes its lock only once the second has joined the chain behind it."""
    real = usage.lock_and_read

    def lock_and_read(conn, target, ids, now):
        if spy.joined == 1:
            for _ in range(2000):
                if spy.joined >= 2:
                    break
                threading.Event().wait(0.005)
        return real(conn, target, ids, now)

    monkeypatch.setattr(usage, "lock_and_read", lock_and_read)


def _run_both(billing, account_id: str, first: list, second: list, *, between=None):
    results: dict[str, object] = {}

    def run_first():
        try:
            results["first"] = usage.record_usage(billing, account_id, first, now=T0)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            results["first"] = exc

    thread = threading.Thread(target=run_first)
    thread.start()
    for _ in range(2000):  # the second joins once the first is in the chain
        if usage._CHAIN._newest:
            break
        threading.Event().wait(0.005)
    if between is not None:
        between(thread)
    results["second"] = usage.record_usage(billing, account_id, second, now=T0)
    thread.join(30)
    return results["first"], results["second"]


def test_the_second_batch_walks_ahead_and_records_what_one_after_the_other_records(pg_billing, monkeypatch):
    billing = pg_billing
    reference = make_account(billing, plan="hobby", credit_micros=50_000_000)
    ref_first, ref_second = _batches(reference.project_id)
    expected = (_outcome(usage.record_usage(billing, reference.account_id, ref_first, now=T0)),
                _outcome(usage.record_usage(billing, reference.account_id, ref_second, now=T0)))

    acc = make_account(billing, plan="hobby", credit_micros=50_000_000)
    spy = _Spy(monkeypatch)
    _first_waits_for_second_to_join(monkeypatch, spy)
    first, second = _run_both(billing, acc.account_id, *_batches(acc.project_id))

    assert spy.joined == 2 and spy.held == [True]  # the second's walk, done before its lock, stood
    assert (_outcome(first), _outcome(second)) == expected
    assert second.results[-1].status == "duplicate"
    assert _state(billing, acc.account_id) == _state(billing, reference.account_id)


def test_a_change_between_the_two_makes_the_second_walk_again(pg_billing, monkeypatch):
    billing = pg_billing
    reference = make_account(billing, plan="hobby", credit_micros=50_000_000)
    ref_first, ref_second = _batches(reference.project_id)
    usage.record_usage(billing, reference.account_id, ref_first, now=T0)
    accounts.grant_credit(billing, reference.account_id, amount_micros=3_000_000, now=T0)
    expected_second = _outcome(usage.record_usage(billing, reference.account_id, ref_second, now=T0))

    acc = make_account(billing, plan="hobby", credit_micros=50_000_000)
    spy = _Spy(monkeypatch)
    _first_waits_for_second_to_join(monkeypatch, spy)
    real_after = usage._Guess.after

    def after_then_grant(billing_, ahead, events, prepared, now):
        guess = real_after(billing_, ahead, events, prepared, now)
        first_thread.join(30)  # the first has committed; a grant lands before the second takes its lock
        accounts.grant_credit(billing, acc.account_id, amount_micros=3_000_000, now=T0)
        return guess

    monkeypatch.setattr(usage._Guess, "after", after_then_grant)
    first_thread = None

    def remember(thread):
        nonlocal first_thread
        first_thread = thread

    _, second = _run_both(billing, acc.account_id, *_batches(acc.project_id), between=remember)

    assert spy.held == [False]  # the read found more credit than assumed: walked again over it
    assert _outcome(second) == expected_second
    assert _state(billing, acc.account_id) == _state(billing, reference.account_id)


def test_when_the_batch_ahead_fails_after_walking_the_second_records_as_if_it_never_ran(pg_billing, monkeypatch):
    billing = pg_billing
    reference = make_account(billing, plan="hobby", credit_micros=50_000_000)
    _, ref_second = _batches(reference.project_id)
    expected_second = _outcome(usage.record_usage(billing, reference.account_id, ref_second, now=T0))

    acc = make_account(billing, plan="hobby", credit_micros=50_000_000)
    spy = _Spy(monkeypatch)
    _first_waits_for_second_to_join(monkeypatch, spy)
    real_write, writes = usage._write, []

    def fail_first(conn, walk, brought_up):
        writes.append(len(walk.results))
        if len(writes) == 1:
            raise RuntimeError("the first batch's writes fail after its walk was published")
        return real_write(conn, walk, brought_up)

    monkeypatch.setattr(usage, "_write", fail_first)
    first, second = _run_both(billing, acc.account_id, *_batches(acc.project_id))

    assert isinstance(first, RuntimeError)
    assert spy.held == [False]  # the first's state never reached the database
    assert _outcome(second) == expected_second
    assert _state(billing, acc.account_id) == _state(billing, reference.account_id)


@pytest.mark.parametrize("size", [1, usage.CHAIN_FROM - 1])
def test_small_batches_do_not_join_the_chain(billing, monkeypatch, size):
    acc = make_account(billing, plan="hobby", credit_micros=1_000_000)
    spy = _Spy(monkeypatch)
    usage.record_usage(billing, acc.account_id, [compute(acc.project_id, 1000) for _ in range(size)], now=T0)
    assert spy.joined == 0 and not usage._CHAIN._newest


def test_a_big_batch_is_recorded_with_the_short_switch_interval_and_a_small_one_without(pg_billing, monkeypatch):
    billing = pg_billing
    import sys

    from billing_core.services.handoff import QUICK_SWITCH_S

    acc = make_account(billing, plan="hobby", credit_micros=1_000_000)
    real, seen = usage._record_once, []

    def spy(*args, **kwargs):
        seen.append(sys.getswitchinterval())
        return real(*args, **kwargs)

    monkeypatch.setattr(usage, "_record_once", spy)
    usual = sys.getswitchinterval()
    usage.record_usage(billing, acc.account_id, [compute(acc.project_id, 1000) for _ in range(SIZE)], now=T0)
    usage.record_usage(billing, acc.account_id, [compute(acc.project_id, 1000)], now=T0)
    assert seen == [QUICK_SWITCH_S, usual] and sys.getswitchinterval() == usual


def test_sqlite_batches_do_not_chain_or_shorten_the_switch_interval(sqlite_billing, monkeypatch):
    import sys

    billing = sqlite_billing
    acc = make_account(billing, plan="hobby", credit_micros=1_000_000)
    spy, usual = _Spy(monkeypatch), sys.getswitchinterval()
    real, seen = usage._record_once, []
    monkeypatch.setattr(usage, "_record_once", lambda *a, **k: seen.append(sys.getswitchinterval()) or real(*a, **k))
    usage.record_usage(billing, acc.account_id, [compute(acc.project_id, 1000) for _ in range(SIZE)], now=T0)
    assert spy.joined == 0 and seen == [usual]
