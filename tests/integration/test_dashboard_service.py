"""The dashboard read service against real SQLite and PostgreSQL: its numbers are what record_usage charged."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import timedelta

import pytest

from billing_core import forecast as fc
from billing_core import notify
from billing_core.crypto import Keyring, new_key_spec
from billing_core.errors import NotFound
from billing_core.services import account_keys, accounts
from billing_core.services.dashboard import MAX_ACTIVITY, MAX_SERIES, OTHER, SERIES_DAYS, load_dashboard
from billing_core.services.projects import create_project
from billing_core.services.usage import record_usage

from ..conftest import T0
from ..factories import compute, make_account, tokens

MINUTE, HOUR = 60_000, 3_600_000
START = T0 - timedelta(days=3)  # the account's creation, and so its period's start


def _money(charged) -> int:
    return charged.credit_micros + charged.overage_micros + charged.debt_micros


@pytest.fixture
def keyed(billing):
    """The billing context with a keyring, so projects get their HMAC keys."""
    return replace(billing, keyring=Keyring.parse(new_key_spec("k1")))


@pytest.fixture
def used(keyed):
    """A hobby account (1 h allowance) with two projects and three days of compute and tokens; the last
    batch goes past the allowance, so credit pays for some compute too."""
    billing = keyed
    acc = make_account(billing, plan="hobby", credit_micros=5_000_000, now=START)
    other = create_project(billing, acc.account_id, name="support", now=START)
    a, b = acc.project_id, other.id
    batches = [
        (T0 - timedelta(days=2), [compute(a, 10 * MINUTE)]),
        (T0 - timedelta(days=1), [compute(b, 20 * MINUTE), tokens(b, "claude-sonnet-4", 12_000, 3_000)]),
        (T0 - timedelta(hours=1), [compute(a, 5 * MINUTE), tokens(a, "gpt-4o-mini", 50_000, 9_000),
                                   compute(b, 40 * MINUTE)]),
    ]
    charged: list[tuple] = []
    for at, events in batches:
        events = [replace(e, timestamp=at) for e in events]
        result = record_usage(billing, acc.account_id, events, now=at)
        assert all(r.status == "accepted" for r in result.results)
        charged += [(at, e, r.charged) for e, r in zip(events, result.results)]
    return acc, (a, b), charged, result.account


def test_plan_panel_matches_the_account_after_the_last_charge(billing, used):
    acc, _, charged, account = used
    plan = load_dashboard(billing, acc.account_id, now=T0).plan
    assert plan.plan == "hobby" and plan.status == account.status
    assert plan.used_ms == account.allowance["used_ms"] == sum(c.allowance_ms for *_, c in charged)
    assert plan.included_ms == HOUR and plan.remaining_ms == 0
    assert plan.credit_balance_micros == account.credit["balance_micros"]
    assert plan.credit_balance_micros == 5_000_000 - sum(_money(c) for *_, c in charged)
    assert plan.forecast.status == fc.EXHAUSTED


def test_totals_and_project_cards_sum_what_was_charged(billing, used):
    acc, (a, b), charged, _ = used
    dash = load_dashboard(billing, acc.account_id, now=T0)
    today = [(e, c) for at, e, c in charged if at.date() == T0.date()]
    assert dash.today.events == len(today)
    assert dash.today.compute_ms == sum(e.duration_ms for e, _ in today)
    assert dash.today.cost_micros == sum(_money(c) for _, c in today)
    assert dash.period.cost_micros == sum(_money(c) for *_, c in charged)
    assert dash.period.compute_ms == 75 * MINUTE
    cards = {card.id: card for card in dash.projects}
    for pid in (a, b):
        mine = [(e, c) for _, e, c in charged if e.project_id == pid]
        assert cards[pid].compute_ms_period == sum(e.duration_ms for e, _ in mine)
        assert cards[pid].spend_micros_period == sum(_money(c) for _, c in mine)
        assert cards[pid].hmac_prefix.startswith("hk_live_") and len(cards[pid].hmac_last4) == 4
    assert dash.project_count == 2 and cards[b].name == "support"


def test_daily_series_hold_each_day_by_project_and_by_model(billing, used):
    acc, (a, b), charged, _ = used
    series = load_dashboard(billing, acc.account_id, now=T0).series
    assert len(series.days) == SERIES_DAYS and series.days[-1] == T0.date()
    expected_compute: dict[tuple, int] = defaultdict(int)
    expected_cost: dict[tuple, int] = defaultdict(int)
    for at, e, c in charged:
        if e.kind == "compute":
            expected_compute[(e.project_id, at.date())] += e.duration_ms
        else:
            expected_cost[(e.model, at.date())] += _money(c)
    got_compute = {(p.key, day): ms for p in series.projects for day, ms in zip(series.days, p.compute_ms) if ms}
    got_cost = {(m.model, day): v for m in series.models for day, v in zip(series.days, m.cost_micros) if v}
    assert got_compute == dict(expected_compute)
    assert got_cost == dict(expected_cost)
    sonnet = next(m for m in series.models if m.model == "claude-sonnet-4")
    assert (sum(sonnet.input_tokens), sum(sonnet.output_tokens)) == (12_000, 3_000)


def test_activity_is_the_latest_rows_newest_first(billing, used):
    acc, *_ = used
    for i in range(MAX_ACTIVITY + 3):
        account_keys.create_key(billing, acc.account_id, name=f"key {i}", now=T0 + timedelta(seconds=i))
    feed = load_dashboard(billing, acc.account_id, now=T0 + timedelta(minutes=1)).activity
    assert len(feed) == MAX_ACTIVITY
    assert [a.id for a in feed] == sorted((a.id for a in feed), reverse=True)
    assert feed[0].kind == "key_created" and f"key {MAX_ACTIVITY + 2}" in feed[0].text


def test_keys_show_the_active_ones_masked(billing, used):
    acc, *_ = used
    created = account_keys.create_key(billing, acc.account_id, name="laptop", now=T0)
    dash = load_dashboard(billing, acc.account_id, now=T0)
    assert dash.key_count == 2 and dash.keys[0].name == "laptop"
    assert created.secret.startswith(dash.keys[0].prefix) and created.secret.endswith(dash.keys[0].last4)
    account_keys.revoke_key(billing, acc.account_id, created.key.id, now=T0)
    assert [k.name for k in load_dashboard(billing, acc.account_id, now=T0).keys] == ["default"]


def test_the_forecast_projects_the_allowance_at_the_weeks_pace(billing):
    acc = make_account(billing, plan="starter", now=START)  # 20 h
    for days_ago in (2, 1, 0):
        at = T0 - timedelta(days=days_ago, hours=1)
        record_usage(billing, acc.account_id, [compute(acc.project_id, HOUR, timestamp=at)], now=at)
    f = load_dashboard(billing, acc.account_id, now=T0).plan.forecast
    assert f.status == fc.RUNS_OUT
    # 3 h over the 3 days since creation: 1 h a day, so the 17 h left last 17 days.
    assert f.pace_ms_per_day == HOUR
    assert f.runs_out_at == T0 + timedelta(days=17)


def test_more_projects_than_the_chart_draws_are_summed_as_other(billing):
    acc = make_account(billing, plan="pro", now=START)
    ids = [acc.project_id] + [create_project(billing, acc.account_id, name=f"p{i}", now=START).id
                              for i in range(MAX_SERIES + 1)]
    events = [compute(pid, (i + 1) * MINUTE, timestamp=T0) for i, pid in enumerate(ids)]
    record_usage(billing, acc.account_id, events, now=T0)
    series = load_dashboard(billing, acc.account_id, now=T0).series
    assert len(series.projects) == MAX_SERIES + 1 and series.projects[-1].key == OTHER
    assert series.projects[-1].compute_ms[-1] == 3 * MINUTE  # the two smallest: 1 + 2 minutes
    assert sum(p.compute_ms[-1] for p in series.projects) == sum(e.duration_ms for e in events)


def test_an_unknown_account_is_not_found(billing):
    with pytest.raises(NotFound):
        load_dashboard(billing, "acc_nobody", now=T0)


def test_services_announce_a_change_only_after_it_committed(billing):
    acc = make_account(billing, now=START)
    heard: list[str] = []
    unsubscribe = notify.subscribe(heard.append)
    try:
        account_keys.create_key(billing, acc.account_id, name="ci", now=T0)
        accounts.grant_credit(billing, acc.account_id, amount_micros=1_000_000, now=T0)
        record_usage(billing, acc.account_id, [compute(acc.project_id, MINUTE)], now=T0)
        with pytest.raises(NotFound):
            account_keys.revoke_key(billing, acc.account_id, "key_missing", now=T0)
    finally:
        unsubscribe()
    assert heard == [acc.account_id] * 3


def test_the_live_watcher_finds_the_accounts_that_changed_in_one_query(billing):
    from billing_core.services.changes import poll_once

    first, second = make_account(billing, now=START), make_account(billing, now=START)
    seen, changed, _ = poll_once(billing.engine, None)
    assert changed == set()  # it starts from the newest rows
    seen, changed, _ = poll_once(billing.engine, seen)
    assert changed == set()
    record_usage(billing, first.account_id, [compute(first.project_id, MINUTE)], now=T0)  # usage and ledger rows
    accounts.grant_credit(billing, second.account_id, amount_micros=1_000_000, now=T0)  # ledger and activity rows
    seen, changed, began = poll_once(billing.engine, seen)
    assert changed == {first.account_id, second.account_id}
    assert poll_once(billing.engine, seen)[1] == set()
