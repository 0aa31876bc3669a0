"""Period close, invoices, pool expiry and plan changes against real databases."""

import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from billing_core.db.engine import read_session
from billing_core.db.models import Account, Invoice, LedgerEntry, Period, Pool
from billing_core.services import accounts
from billing_core.services.gate import check
from billing_core.services.periods import run_due_work
from billing_core.services.usage import record_usage

from ..conftest import T0
from ..factories import compute, make_account

HOUR = 3_600_000


def _snapshot(billing, account_id):
    with read_session(billing.engine) as s:
        account = s.get(Account, account_id).model_dump()
        counts = tuple(s.execute(select(func.count()).select_from(t).where(t.account_id == account_id)).scalar_one()
                       for t in (Invoice, Period, LedgerEntry, Pool))
    return account, counts


def _invoices(billing, account_id):
    with read_session(billing.engine) as s:
        return list(s.execute(select(Invoice).where(Invoice.account_id == account_id)
                              .order_by(Invoice.period_start)).scalars())


def test_period_close_invoices_plan_fee_and_overage_and_resets_the_allowance(billing):
    acc = make_account(billing, plan="pro")
    record_usage(billing, acc.account_id, [compute(acc.project_id, 200 * HOUR), compute(acc.project_id, 10_000)],
                 now=T0)
    result = run_due_work(billing, T0 + timedelta(days=31))
    assert result.periods_closed == 1
    (invoice,) = _invoices(billing, acc.account_id)
    assert (invoice.plan_fee_micros, invoice.overage_micros, invoice.total_micros) == (
        100_000_000, 1_000, 100_001_000)
    with read_session(billing.engine) as s:
        account = s.get(Account, acc.account_id)
    assert (account.used_ms, account.overage_micros, account.included_ms) == (0, 0, 200 * HOUR)
    assert account.period_start == datetime(2026, 2, 15, 12, tzinfo=timezone.utc)


def test_closing_the_same_period_twice_changes_nothing(billing):
    acc = make_account(billing, plan="starter")
    run_due_work(billing, T0 + timedelta(days=31))
    before = _snapshot(billing, acc.account_id)
    again = run_due_work(billing, T0 + timedelta(days=31))
    assert again.periods_closed == 0
    assert _snapshot(billing, acc.account_id) == before


def test_two_instances_closing_at_once_write_one_invoice(billing):
    acc = make_account(billing, plan="starter")
    errors = []

    def tick():
        try:
            run_due_work(billing, T0 + timedelta(days=31))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(_invoices(billing, acc.account_id)) == 1


def test_a_tick_long_after_closes_every_missed_period_once(billing):
    acc = make_account(billing, plan="starter")
    run_due_work(billing, T0 + timedelta(days=100))
    starts = [i.period_start.date().isoformat() for i in _invoices(billing, acc.account_id)]
    assert starts == ["2026-01-15", "2026-02-15", "2026-03-15"]


def test_periods_anchored_on_the_31st_clamp_to_the_month_end(billing):
    anchor = datetime(2026, 1, 31, 9, tzinfo=timezone.utc)
    acc = make_account(billing, plan="hobby", now=anchor)
    run_due_work(billing, datetime(2026, 4, 1, tzinfo=timezone.utc))
    spans = [(i.period_start.date().isoformat(), i.period_end.date().isoformat())
             for i in _invoices(billing, acc.account_id)]
    assert spans == [("2026-01-31", "2026-02-28"), ("2026-02-28", "2026-03-31")]


def test_an_expired_pool_forfeits_what_is_left_with_a_ledger_entry(billing):
    acc = make_account(billing)
    accounts.add_pool(billing, acc.account_id, size_ms=10 * HOUR, valid_days=5, now=T0)
    record_usage(billing, acc.account_id, [compute(acc.project_id, 2 * HOUR)], now=T0)
    assert run_due_work(billing, T0 + timedelta(days=6)).pools_expired == 1
    with read_session(billing.engine) as s:
        pool = s.execute(select(Pool)).scalar_one()
        expiry = s.execute(select(LedgerEntry).where(LedgerEntry.kind == "expiry")).scalar_one()
    assert pool.remaining_ms == 0 and expiry.amount == -9 * HOUR
    assert run_due_work(billing, T0 + timedelta(days=7)).pools_expired == 0


def test_an_upgrade_applies_at_once_and_charges_the_prorated_difference_from_credit(billing):
    acc = make_account(billing, plan="hobby", credit_micros=200_000_000)
    record_usage(billing, acc.account_id, [compute(acc.project_id, 30 * 60_000)], now=T0)
    half_way = T0 + (datetime(2026, 2, 15, 12, tzinfo=timezone.utc) - T0) / 2
    view = accounts.set_plan(billing, acc.account_id, "starter", now=half_way)
    assert view.plan == "starter"
    assert view.allowance == {"included_ms": 20 * HOUR, "used_ms": 30 * 60_000, "remaining_ms": 20 * HOUR - 1_800_000}
    assert view.credit["balance_micros"] == 200_000_000 - 10_000_000


def test_an_upgrade_without_enough_credit_is_invoiced_at_close(billing):
    acc = make_account(billing, plan="hobby")
    accounts.set_plan(billing, acc.account_id, "pro", now=T0)
    run_due_work(billing, T0 + timedelta(days=31))
    (invoice,) = _invoices(billing, acc.account_id)
    assert invoice.proration_micros == 100_000_000  # the whole period was ahead
    assert invoice.plan == "pro" and invoice.total_micros == 200_000_000


def test_a_downgrade_waits_for_the_next_period_close(billing):
    acc = make_account(billing, plan="pro")
    view = accounts.set_plan(billing, acc.account_id, "hobby", now=T0 + timedelta(days=3))
    assert view.plan == "pro" and view.allowance["included_ms"] == 200 * HOUR
    run_due_work(billing, T0 + timedelta(days=31))
    with read_session(billing.engine) as s:
        account = s.get(Account, acc.account_id)
    assert (account.plan, account.included_ms, account.spend_cap_micros) == ("hobby", HOUR, None)
    assert _invoices(billing, acc.account_id)[0].plan_fee_micros == 100_000_000


def test_a_suspended_account_is_refused_by_check_and_resumed_allowed(billing):
    acc = make_account(billing)
    accounts.set_suspended(billing, acc.account_id, True, now=T0)
    answer = check(billing, acc.account_id, kind="compute", duration_ms=1000, now=T0)
    assert (answer.result.allowed, answer.result.reason, answer.account.status) == (
        False, "account_suspended", "suspended")
    accounts.set_suspended(billing, acc.account_id, False, now=T0)
    assert check(billing, acc.account_id, kind="compute", duration_ms=1000, now=T0).result.allowed


def test_check_says_yes_only_when_the_whole_amount_is_covered(billing):
    acc = make_account(billing, plan="hobby", credit_micros=100)
    assert check(billing, acc.account_id, kind="compute", duration_ms=HOUR + 1000, now=T0).result.allowed
    # 1.006 s beyond the allowance costs 100.6 micros, rounded to 101 > 100 of credit
    no = check(billing, acc.account_id, kind="compute", duration_ms=HOUR + 1006, now=T0).result
    assert (no.allowed, no.reason) == (False, "insufficient_credit")
