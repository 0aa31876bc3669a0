"""A payment is granted once whatever the provider's retries, order or timing (DESIGN.md, Payments), on
SQLite and PostgreSQL: the same event 100 times at once, one payment told by two event types, a refund
before its success, disputes, and events that name another account or another amount."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from billing_core.payments import provider as p
from billing_core.payments.apply import DUPLICATE, MISMATCH, NotYetKnown, apply_event

from ..conftest import T0
from ..factories import make_account
from .helpers import checkout, event, sandbox, state

NOW = T0 + timedelta(days=2)


@pytest.fixture
def shop(billing):
    account = make_account(billing, plan="starter", credit_micros=1_000_000)
    return billing, sandbox(billing), account.account_id


def _paid(billing, provider, account_id, body, n=1):
    started = checkout(billing, provider, account_id, body, NOW)
    return started, event(p.PAYMENT_SUCCEEDED, f"evt_paid_{started.id}", checkout_id=started.id,
                          account_id=account_id, provider_payment_id=f"sbp_{started.id}",
                          amount_micros=started.amount_micros, at=NOW)


def test_the_same_success_delivered_100_times_at_once_grants_once(shop):
    billing, provider, account_id = shop
    started, paid = _paid(billing, provider, account_id, {"item": "credit", "amount_micros": 25_000_000})
    with ThreadPoolExecutor(max_workers=100) as pool:
        outcomes = list(pool.map(lambda _: apply_event(billing, paid, now=NOW).outcome, range(100)))
    assert sorted(set(outcomes)) == ["applied", DUPLICATE] and outcomes.count("applied") == 1
    after = state(billing, account_id)
    assert after["credit"] == after["credit_entries"] == 26_000_000
    assert after["payments"] == [("succeeded", 0, 0, True)]


def test_a_payment_told_as_checkout_completed_and_as_payment_intent_succeeded_grants_once(shop):
    billing, provider, account_id = shop
    started, by_session = _paid(billing, provider, account_id, {"item": "pool_pack", "quantity": 2})
    by_intent = event(p.PAYMENT_SUCCEEDED, "evt_pi", payment_id=started.payment_id, account_id=account_id,
                      provider_payment_id=f"sbp_{started.id}", amount_micros=6_000_000, at=NOW)
    assert apply_event(billing, by_intent, now=NOW).outcome == "applied"
    assert apply_event(billing, by_session, now=NOW).outcome == "no_change"
    after = state(billing, account_id)
    assert after["pools"] == [(72_000_000, 72_000_000)]
    assert after["entries"] == [("pool", "purchase", 72_000_000)]


@pytest.mark.parametrize("item", [{"item": "credit", "amount_micros": 40_000_000},
                                  {"item": "pool_pack", "quantity": 3}])
def test_a_refund_before_its_success_ends_as_the_success_then_the_refund(billing, item):
    def run(order):
        account_id = make_account(billing, plan="starter", credit_micros=1_000_000).account_id
        provider = sandbox(billing)
        started = checkout(billing, provider, account_id, item, NOW)
        paid = event(p.PAYMENT_SUCCEEDED, f"e1{account_id}", checkout_id=started.id, account_id=account_id,
                     provider_payment_id=f"pi_{account_id}", amount_micros=started.amount_micros, at=NOW)
        refunded = event(p.REFUND_SUCCEEDED, f"e2{account_id}", payment_id=started.payment_id,
                         provider_payment_id=f"pi_{account_id}", amount_micros=started.amount_micros // 4,
                         provider_refund_id=f"re_{account_id}", at=NOW)
        for each in order(paid, refunded):
            assert apply_event(billing, each, now=NOW).outcome == "applied"
        return state(billing, account_id)

    in_order = run(lambda a, b: (a, b))
    reversed_ = run(lambda a, b: (b, a))
    assert in_order == reversed_
    assert in_order["payments"][0][:3] == ("partially_refunded", in_order["payments"][0][1],
                                           in_order["payments"][0][1])


def test_a_refund_of_a_payment_not_known_yet_is_left_for_the_provider_to_send_again(shop):
    billing, _, _ = shop
    stray = event(p.REFUND_SUCCEEDED, "evt_r", provider_payment_id="pi_nobody", amount_micros=1_000_000, at=NOW)
    with pytest.raises(NotYetKnown):
        apply_event(billing, stray, now=NOW)


def test_a_refund_of_spent_credit_goes_below_zero_as_debt_and_partial_refunds_add_up_exactly(shop):
    billing, provider, account_id = shop
    started, paid = _paid(billing, provider, account_id, {"item": "credit", "amount_micros": 10_000_000})
    apply_event(billing, paid, now=NOW)
    for n, amount in enumerate((3_330_000, 3_330_000, 3_340_000)):
        refund = event(p.REFUND_SUCCEEDED, f"evt_r{n}", payment_id=started.payment_id, amount_micros=amount,
                       provider_payment_id=f"sbp_{started.id}", provider_refund_id=f"re_{n}", at=NOW)
        assert apply_event(billing, refund, now=NOW).outcome == "applied"
        assert apply_event(billing, refund, now=NOW).outcome == DUPLICATE
    after = state(billing, account_id)
    assert after["credit"] == after["credit_entries"] == 1_000_000
    assert after["payments"] == [("refunded", 10_000_000, 10_000_000, True)]


def test_a_cumulative_refund_total_told_twice_takes_back_once(shop):
    billing, provider, account_id = shop
    started, paid = _paid(billing, provider, account_id, {"item": "credit", "amount_micros": 10_000_000})
    apply_event(billing, paid, now=NOW)
    for n in range(2):  # Stripe's charge.refunded carries the running total, under a new event id each time
        total = event(p.REFUND_SUCCEEDED, f"evt_total{n}", payment_id=started.payment_id,
                      provider_payment_id=f"sbp_{started.id}", refunded_total_micros=4_000_000, at=NOW)
        apply_event(billing, total, now=NOW)
    assert state(billing, account_id)["credit"] == 7_000_000


def test_a_dispute_suspends_the_account_and_a_lost_one_takes_back_the_rest(shop):
    billing, provider, account_id = shop
    started, paid = _paid(billing, provider, account_id, {"item": "credit", "amount_micros": 20_000_000})
    apply_event(billing, paid, now=NOW)
    ids = dict(payment_id=started.payment_id, provider_payment_id=f"sbp_{started.id}", at=NOW)
    apply_event(billing, event(p.DISPUTE_OPENED, "evt_d1", provider_dispute_id="dp_1", **ids), now=NOW)
    assert state(billing, account_id)["suspended"] is True
    apply_event(billing, event(p.DISPUTE_LOST, "evt_d2", provider_dispute_id="dp_1", **ids), now=NOW)
    after = state(billing, account_id)
    assert after["credit"] == after["credit_entries"] == 1_000_000
    assert after["payments"] == [("disputed", 0, 20_000_000, True)] and after["suspended"] is True


@pytest.mark.parametrize("wrong", [dict(account_id="acc_someone_else"), dict(amount_micros=1_000_000),
                                   dict(provider="stripe")])
def test_an_event_for_another_account_or_amount_or_provider_grants_nothing(shop, wrong):
    billing, provider, account_id = shop
    started = checkout(billing, provider, account_id, {"item": "credit", "amount_micros": 25_000_000}, NOW)
    fields = dict(checkout_id=started.id, account_id=account_id, amount_micros=25_000_000, at=NOW) | wrong
    outcome = apply_event(billing, event(p.PAYMENT_SUCCEEDED, "evt_odd", **fields), now=NOW).outcome
    assert outcome in (MISMATCH, "unmatched")
    assert state(billing, account_id)["credit"] == 1_000_000
