"""The pure rules of payments (issue 13): prices and grants, refunds, dunning, auto top-up."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.errors import Invalid
from billing_core.payments.rules import (AutoTopUp, Grant, auto_top_up_decision, charge_micros, check_auto_top_up,
                                         credit_purchase,
                                         dunning_action, grant_for, plan_purchase, pool_purchase, refund_take_back,
                                         top_up_idempotency_key)

from ..conftest import T0

RATE = 100  # micros per second, the catalog's compute rate


@pytest.mark.parametrize("amount", [4_999_999, 1_000_000_001, 0, -5_000_000, 5_000_000.0, True, "5000000", None,
                                    25_000_001, 25_005_000])
def test_a_top_up_outside_5_to_1000_dollars_or_not_an_integer_is_refused(amount):
    with pytest.raises(Invalid) as caught:
        credit_purchase(amount)
    assert caught.value.code == "invalid_amount_micros"


def test_a_top_up_grants_exactly_what_was_paid(catalog):
    purchase = credit_purchase(25_000_000)
    assert purchase.amount_micros == 25_000_000
    assert grant_for(catalog, purchase) == Grant(credit_micros=25_000_000)


@pytest.mark.parametrize("quantity", [1, 7, 20])
def test_pool_packs_cost_the_packs_price_each_and_make_one_pool_of_their_sum(catalog, quantity):
    purchase = pool_purchase(catalog, quantity)
    assert purchase.amount_micros == 3_000_000 * quantity
    assert grant_for(catalog, purchase) == Grant(pool_ms=36_000_000 * quantity, pool_valid_days=365)


@pytest.mark.parametrize("quantity", [0, 21, 2.0, False])
def test_a_pool_quantity_outside_1_to_20_is_refused(catalog, quantity):
    with pytest.raises(Invalid):
        pool_purchase(catalog, quantity)


@pytest.mark.parametrize("owed, charged", [(0, 0), (4_999, 0), (5_000, 0), (15_000, 20_000), (25_000, 20_000),
                                           (26_666_667, 26_670_000), (40_000_000, 40_000_000)])
def test_what_is_owed_is_charged_in_whole_cents_rounded_half_to_even(owed, charged):
    assert charge_micros(owed) == charged


def test_only_an_upgrade_to_a_paid_plan_is_sold_at_the_prorated_difference(catalog):
    purchase = plan_purchase(catalog, "pro", current_plan="starter", proration_micros=40_000_000)
    assert (purchase.amount_micros, grant_for(catalog, purchase)) == (40_000_000, Grant(plan="pro"))
    for plan, current in (("starter", "pro"), ("starter", "starter"), ("hobby", "starter"), ("gold", "hobby")):
        with pytest.raises(Invalid):
            plan_purchase(catalog, plan, current_plan=current, proration_micros=0)


def test_a_full_refund_of_an_unused_pool_removes_it_and_of_a_spent_one_prices_it_as_compute():
    grant = Grant(pool_ms=36_000_000, pool_valid_days=365)
    untouched = refund_take_back(grant, paid_micros=3_000_000, refunded_micros=3_000_000,
                                 pool_remaining_ms=36_000_000, rate_micros_per_second=RATE)
    assert (untouched.pool_ms, untouched.spent_pool_micros, untouched.debit_micros) == (36_000_000, 0, 0)
    spent = refund_take_back(grant, paid_micros=3_000_000, refunded_micros=3_000_000, pool_remaining_ms=0,
                             rate_micros_per_second=RATE)
    assert (spent.pool_ms, spent.spent_pool_micros) == (0, 3_600_000)  # 10 h at $0.0001 a second
    half = refund_take_back(grant, paid_micros=3_000_000, refunded_micros=3_000_000, pool_remaining_ms=6_000_000,
                            rate_micros_per_second=RATE)
    assert (half.pool_ms, half.spent_pool_micros) == (6_000_000, 3_000_000)


@given(paid=st.integers(5_000_000, 1_000_000_000), data=st.data())
def test_partial_refunds_that_add_up_to_the_payment_take_back_exactly_the_credit_it_granted(paid, data):
    grant = Grant(credit_micros=paid)
    cuts = sorted(data.draw(st.sets(st.integers(1, paid - 1), max_size=6)))
    refunds = [b - a for a, b in zip([0, *cuts], [*cuts, paid])]
    before, taken = 0, 0
    for refund in refunds:
        back = refund_take_back(grant, paid_micros=paid, refunded_micros=refund, refunded_before_micros=before,
                                rate_micros_per_second=RATE)
        assert back.credit_micros >= 0 and back.pool_ms == back.spent_pool_micros == 0
        before, taken = before + refund, taken + back.credit_micros
    assert taken == paid


@given(packs=st.integers(1, 20), used_ms=st.integers(0, 720_000_000), data=st.data())
def test_pool_refunds_take_back_the_pool_and_price_no_more_than_was_spent(packs, used_ms, data):
    size_ms, paid = 36_000_000 * packs, 3_000_000 * packs
    grant, remaining = Grant(pool_ms=size_ms, pool_valid_days=365), max(0, size_ms - used_ms)
    cuts = sorted(data.draw(st.sets(st.integers(1, paid - 1), max_size=4)))
    before, removed, spent_micros = 0, 0, 0
    for refund in [b - a for a, b in zip([0, *cuts], [*cuts, paid])]:
        back = refund_take_back(grant, paid_micros=paid, refunded_micros=refund, refunded_before_micros=before,
                                pool_remaining_ms=remaining, rate_micros_per_second=RATE)
        remaining, removed, spent_micros = remaining - back.pool_ms, removed + back.pool_ms, \
            spent_micros + back.spent_pool_micros
        before += refund
    assert remaining == 0 and removed == max(0, size_ms - used_ms)  # all of the pool that was left goes
    spent_ms = size_ms - removed
    assert abs(spent_micros - spent_ms * RATE // 1000) <= len(cuts) + 1  # each share rounded once


def test_a_refund_beyond_what_is_left_of_the_payment_is_refused():
    with pytest.raises(ValueError):
        refund_take_back(Grant(credit_micros=10), paid_micros=10, refunded_micros=6, refunded_before_micros=5,
                         rate_micros_per_second=RATE)


def test_a_failed_collection_is_retried_on_days_1_3_and_5_and_drops_to_hobby_on_day_7():
    timeline = []
    retries = 0
    for hours in range(0, 8 * 24, 6):
        action = dunning_action(first_failed_at=T0, retries_done=retries, now=T0 + timedelta(hours=hours))
        if action:
            timeline.append((hours // 24, action))
            if action == "retry":
                retries += 1
            else:
                break
    assert timeline == [(1, "retry"), (3, "retry"), (5, "retry"), (7, "drop_to_hobby")]


SETTINGS = AutoTopUp(enabled=True, threshold_micros=5_000_000, amount_micros=20_000_000,
                     monthly_limit_micros=50_000_000)


@pytest.mark.parametrize("state, reason", [
    (dict(credit_micros=4_999_999), "charge"),
    (dict(credit_micros=5_000_000), "above_threshold"),
    (dict(credit_micros=-3, in_flight=True), "in_flight"),
    (dict(credit_micros=0, charged_this_month_micros=40_000_000), "monthly_limit"),
    (dict(credit_micros=0, consecutive_failures=3), "too_many_failures"),
])
def test_auto_top_up_charges_below_the_threshold_one_at_a_time_within_the_months_limit(state, reason):
    state = {"in_flight": False, "charged_this_month_micros": 0, "consecutive_failures": 0, **state}
    decision = auto_top_up_decision(SETTINGS, **state)
    assert decision.reason == reason
    assert decision.charge_micros == (20_000_000 if reason == "charge" else 0)
    assert decision.disable == (reason == "too_many_failures")
    assert auto_top_up_decision(replace(SETTINGS, enabled=False), **state).reason == "disabled"


@given(spends=st.lists(st.integers(0, 30_000_000), max_size=40))
def test_auto_top_up_never_charges_more_than_the_monthly_limit(spends):
    credit, charged = 0, 0
    for spend in spends:
        credit -= spend
        decision = auto_top_up_decision(SETTINGS, credit_micros=credit, in_flight=False,
                                        charged_this_month_micros=charged, consecutive_failures=0)
        credit, charged = credit + decision.charge_micros, charged + decision.charge_micros
    assert charged <= SETTINGS.monthly_limit_micros


def test_auto_top_up_settings_are_checked_field_by_field():
    assert check_auto_top_up(SETTINGS) == SETTINGS
    for bad in (dict(threshold_micros=-1), dict(amount_micros=1_000_000), dict(monthly_limit_micros=19_999_999),
                dict(threshold_micros=1.5)):
        with pytest.raises(Invalid):
            check_auto_top_up(replace(SETTINGS, **bad))
    assert top_up_idempotency_key("acc_1", 2) != top_up_idempotency_key("acc_1", 3)
