"""Recording usage against real SQLite and PostgreSQL: drawdown, idempotency, late and future events, rollups."""

from datetime import timedelta

from sqlalchemy import func, select

from billing_core.db.engine import read_session
from billing_core.db.models import Account, DailyRollup, LedgerEntry, Pool, UsageEvent
from billing_core.services import accounts
from billing_core.services.summary import usage_summary
from billing_core.services.usage import record_usage

from ..conftest import T0
from ..factories import compute, make_account, tokens

HOUR = 3_600_000


def _ledger(billing, account_id, **filters):
    with read_session(billing.engine) as s:
        stmt = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
        for key, value in filters.items():
            stmt = stmt.where(getattr(LedgerEntry, key) == value)
        return list(s.execute(stmt.order_by(LedgerEntry.id)).scalars())


def test_compute_draws_allowance_then_pool_then_credit_in_one_event(billing):
    acc = make_account(billing, plan="hobby", credit_micros=1_000_000)
    accounts.add_pool(billing, acc.account_id, size_ms=HOUR, valid_days=30, now=T0)
    batch = record_usage(billing, acc.account_id, [compute(acc.project_id, 2 * HOUR + 10_000)], now=T0)
    charged = batch.results[0].charged
    assert (charged.allowance_ms, charged.pool_ms) == (HOUR, HOUR)
    assert charged.credit_micros == 10_000 * 100 // 1000  # 10 s at 100 micros/s
    assert batch.account.credit["balance_micros"] == 1_000_000 - 1_000
    assert batch.account.allowance["remaining_ms"] == 0


def test_pool_expiring_first_is_drawn_first(billing):
    acc = make_account(billing, plan="hobby")
    accounts.add_pool(billing, acc.account_id, size_ms=HOUR, valid_days=300, now=T0)
    accounts.add_pool(billing, acc.account_id, size_ms=HOUR, valid_days=10, now=T0)
    record_usage(billing, acc.account_id, [compute(acc.project_id, HOUR + 60_000)], now=T0)
    with read_session(billing.engine) as s:
        pools = {p.expires_at - T0: p.remaining_ms for p in s.execute(select(Pool)).scalars()}
    assert pools[timedelta(days=10)] == HOUR - 60_000
    assert pools[timedelta(days=300)] == HOUR


def test_same_id_same_body_is_a_duplicate_returning_the_original_charge(billing):
    acc = make_account(billing, plan="hobby", credit_micros=5_000_000)
    event = compute(acc.project_id, 2 * HOUR, id="run-1")
    first = record_usage(billing, acc.account_id, [event], now=T0).results[0]
    again = record_usage(billing, acc.account_id, [event], now=T0 + timedelta(minutes=5))
    assert again.results[0].status == "duplicate"
    assert again.results[0].charged == first.charged
    assert again.account.credit == {"balance_micros": 5_000_000 - 360_000}
    with read_session(billing.engine) as s:
        assert s.execute(select(func.count()).select_from(UsageEvent)).scalar_one() == 1


def test_same_id_other_body_is_rejected_as_idempotency_conflict(billing):
    acc = make_account(billing)
    record_usage(billing, acc.account_id, [compute(acc.project_id, 1000, id="x")], now=T0)
    result = record_usage(billing, acc.account_id, [compute(acc.project_id, 2000, id="x")], now=T0).results[0]
    assert (result.status, result.error_code) == ("rejected", "idempotency_conflict")
    assert result.charged.allowance_ms == 0


def test_a_repeated_id_inside_one_batch_is_charged_once(billing):
    acc = make_account(billing)
    event = compute(acc.project_id, 1000, id="twice")
    results = record_usage(billing, acc.account_id, [event, event], now=T0).results
    assert [r.status for r in results] == ["accepted", "duplicate"]
    assert results[1].charged == results[0].charged


def test_the_same_event_id_in_two_accounts_is_two_events(billing):
    a, b = make_account(billing), make_account(billing)
    ra = record_usage(billing, a.account_id, [compute(a.project_id, 1000, id="shared")], now=T0).results[0]
    rb = record_usage(billing, b.account_id, [compute(b.project_id, 1000, id="shared")], now=T0).results[0]
    assert ra.status == rb.status == "accepted"


def test_an_event_in_a_closed_period_is_charged_now_and_marked_late(billing):
    acc = make_account(billing, plan="starter")
    later = T0 + timedelta(days=40)  # the first period (Jan 15 - Feb 15) has closed by then
    result = record_usage(billing, acc.account_id,
                          [compute(acc.project_id, 5000, timestamp=T0 + timedelta(days=1))], now=later).results[0]
    assert result.late is True and result.status == "accepted"
    with read_session(billing.engine) as s:
        account = s.get(Account, acc.account_id)
        event = s.execute(select(UsageEvent)).scalar_one()
    assert account.period_start == T0.replace(month=2)
    assert account.used_ms == 5000
    assert event.period_start == account.period_start


def test_an_event_more_than_five_minutes_ahead_is_rejected_and_one_within_is_accepted(billing):
    acc = make_account(billing)
    far = compute(acc.project_id, 1000, timestamp=T0 + timedelta(minutes=5, seconds=1))
    near = compute(acc.project_id, 1000, timestamp=T0 + timedelta(minutes=5))
    results = record_usage(billing, acc.account_id, [far, near], now=T0).results
    assert [(r.status, r.error_code) for r in results] == [("rejected", "timestamp_in_future"), ("accepted", None)]


def test_unknown_project_and_other_accounts_project_are_rejected_alike(billing):
    a, b = make_account(billing), make_account(billing)
    results = record_usage(billing, a.account_id, [compute(b.project_id, 1000), compute("prj_nope", 1000)],
                           now=T0).results
    assert {(r.error_code, r.error_message) for r in results} == {
        ("unknown_project", "No such project in this account.")}


def test_platform_tokens_for_an_unknown_model_are_rejected_but_byok_is_accepted_at_zero(billing):
    acc = make_account(billing, credit_micros=1_000_000)
    results = record_usage(billing, acc.account_id, [
        tokens(acc.project_id, "mystery-1", 100, 100),
        tokens(acc.project_id, "mystery-1", 100, 100, key_source="byok")], now=T0).results
    assert results[0].error_code == "unknown_model"
    assert results[1].status == "accepted" and results[1].charged.credit_micros == 0


def test_tokens_are_paid_from_credit_only_never_allowance(billing):
    acc = make_account(billing, credit_micros=1_000_000)
    # 1000 in x $3/M + 1000 out x $15/M = 3000 + 15000 micros
    result = record_usage(billing, acc.account_id, [tokens(acc.project_id, "claude-sonnet-4", 1000, 1000)],
                          now=T0).results[0]
    assert result.charged.allowance_ms == 0 and result.charged.credit_micros == 18_000


def test_hobby_usage_beyond_credit_becomes_debt_and_the_account_over_limit(billing):
    acc = make_account(billing, plan="hobby", credit_micros=100)
    batch = record_usage(billing, acc.account_id, [compute(acc.project_id, HOUR + 10_000)], now=T0)
    assert batch.results[0].charged.credit_micros == 100
    assert batch.results[0].charged.debt_micros == 900
    assert batch.account.credit["balance_micros"] == -900
    assert batch.account.status == "over_limit"


def test_a_top_up_first_pays_off_debt(billing):
    acc = make_account(billing, plan="hobby")
    record_usage(billing, acc.account_id, [compute(acc.project_id, HOUR + 10_000)], now=T0)
    view = accounts.grant_credit(billing, acc.account_id, amount_micros=5_000, now=T0, kind="topup")
    assert view.credit["balance_micros"] == 4_000
    assert view.status == "active"


def test_pro_usage_beyond_credit_accrues_overage_up_to_the_cap_then_debt(billing):
    acc = make_account(billing, plan="pro")
    # 200 h allowance, then $500 cap = 5,000,000 s of compute, then debt
    events = [compute(acc.project_id, 200 * HOUR), compute(acc.project_id, 2_500_000_000),
              compute(acc.project_id, 2_500_000_000 - 1_000), compute(acc.project_id, 2_000)]
    result = record_usage(billing, acc.account_id, events, now=T0)
    assert [r.charged.allowance_ms for r in result.results] == [200 * HOUR, 0, 0, 0]
    assert result.results[2].charged.overage_micros == 250_000_000 - 100
    assert (result.results[3].charged.overage_micros, result.results[3].charged.debt_micros) == (100, 100)
    assert result.account.overage == {"amount_micros": 500_000_000, "cap_micros": 500_000_000}
    assert result.account.status == "over_limit"


def test_rollups_are_kept_in_the_same_transaction_and_summaries_read_them(billing):
    acc = make_account(billing, credit_micros=10_000_000)
    record_usage(billing, acc.account_id, [
        compute(acc.project_id, 1000, agent="a1"), compute(acc.project_id, 2000, agent="a2"),
        tokens(acc.project_id, "gpt-4o-mini", 1_000_000, 0, agent="a1")], now=T0)
    with read_session(billing.engine) as s:
        assert s.execute(select(func.sum(DailyRollup.compute_ms))).scalar_one() == 3000
    by_agent = {r.key: r for r in usage_summary(billing, acc.account_id, start=T0.date(), end=T0.date(),
                                                  group_by="agent")}
    assert by_agent["a1"].compute_ms == 1000 and by_agent["a1"].input_tokens == 1_000_000
    assert by_agent["a1"].cost_micros == 150_000
    assert by_agent["a2"].compute_ms == 2000


def test_every_accepted_event_has_ledger_entries_with_the_event_as_cause(billing):
    acc = make_account(billing, credit_micros=1_000_000)
    record_usage(billing, acc.account_id, [compute(acc.project_id, HOUR + 1000, id="e1"),
                                           tokens(acc.project_id, "claude-haiku-4", 10, 10, id="e2")], now=T0)
    usage = _ledger(billing, acc.account_id, ref_type="event")
    assert {(e.ref_id, e.book) for e in usage} == {("e1", "allowance"), ("e1", "credit"), ("e2", "credit")}
    assert all(e.kind == "usage" for e in usage)
    credit = _ledger(billing, acc.account_id, book="credit")
    assert sum(e.amount for e in credit) == credit[-1].balance_after
