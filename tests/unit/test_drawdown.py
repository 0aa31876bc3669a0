"""Drawdown of one usage event, step by step as DESIGN.md lists them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.drawdown import Balances, Charge, draw_compute, draw_money, pool_order
from billing_core.pricing import compute_cost_micros

from .builders import FAST, RATE, any_balances, balances, pool

# --- step 1: allowance ------------------------------------------------------------------------------------


def test_allowance_pays_first_when_it_covers_the_event():
    start = balances(allowance_ms=10_000, pools=(pool("p1", 50_000),), credit_micros=1_000_000)
    charge, after = draw_compute(start, 6_000, RATE)
    assert charge == Charge(allowance_ms=6_000)
    assert after.allowance_remaining_ms == 4_000
    assert after.pools == start.pools
    assert after.credit_micros == 1_000_000


def test_allowance_pays_only_up_to_what_remains_and_pools_take_the_rest():
    start = balances(allowance_ms=1_000, pools=(pool("p1", 50_000),), credit_micros=1_000_000)
    charge, after = draw_compute(start, 1_500, RATE)
    assert charge.allowance_ms == 1_000
    assert charge.pool_draws == (("p1", 500),)
    assert charge.money_micros == 0
    assert after.allowance_remaining_ms == 0
    assert after.pools[0].remaining_ms == 49_500


# --- step 2: pools ----------------------------------------------------------------------------------------


def test_pool_expiring_first_is_drawn_first():
    late = pool("late", 10_000, expires_in_days=300, purchased_days_ago=100)
    early = pool("early", 10_000, expires_in_days=30, purchased_days_ago=1)
    charge, after = draw_compute(balances(pools=(late, early)), 4_000, RATE)
    assert charge.pool_draws == (("early", 4_000),)
    assert {p.id: p.remaining_ms for p in after.pools} == {"late": 10_000, "early": 6_000}


def test_pools_expiring_together_draw_the_oldest_purchase_first():
    newer = pool("newer", 10_000, expires_in_days=30, purchased_days_ago=2)
    older = pool("older", 10_000, expires_in_days=30, purchased_days_ago=20)
    charge, _ = draw_compute(balances(pools=(newer, older)), 4_000, RATE)
    assert charge.pool_draws == (("older", 4_000),)


def test_each_pool_pays_up_to_what_it_holds_before_the_next_one():
    a = pool("a", 1_000, expires_in_days=10)
    b = pool("b", 2_000, expires_in_days=20)
    c = pool("c", 5_000, expires_in_days=30)
    charge, after = draw_compute(balances(allowance_ms=500, pools=(c, b, a)), 4_000, RATE)
    assert charge.allowance_ms == 500
    assert charge.pool_draws == (("a", 1_000), ("b", 2_000), ("c", 500))
    assert [(p.id, p.remaining_ms) for p in after.pools] == [("c", 4_500), ("b", 0), ("a", 0)]
    assert charge.money_micros == 0


def test_empty_pools_are_skipped_and_not_listed_as_draws():
    charge, _ = draw_compute(balances(pools=(pool("empty", 0, expires_in_days=1), pool("full", 9_000))),
                             3_000, RATE)
    assert charge.pool_draws == (("full", 3_000),)


def test_pool_order_is_expiry_then_purchase_then_id():
    x = pool("x", 1, expires_in_days=5, purchased_days_ago=1)
    y = pool("y", 1, expires_in_days=5, purchased_days_ago=1)
    z = pool("z", 1, expires_in_days=5, purchased_days_ago=9)
    w = pool("w", 1, expires_in_days=1, purchased_days_ago=0)
    assert [p.id for p in pool_order((y, x, z, w))] == ["w", "z", "x", "y"]


# --- step 3: credit ---------------------------------------------------------------------------------------


def test_credit_pays_the_rest_at_the_compute_rate():
    start = balances(allowance_ms=1_000, pools=(pool("p1", 2_000),), credit_micros=1_000_000)
    charge, after = draw_compute(start, 13_000, RATE)  # 10 s left over at 100 micros/s
    assert charge.allowance_ms == 1_000
    assert charge.pool_draws == (("p1", 2_000),)
    assert charge.credit_micros == 1_000
    assert charge.overage_micros == 0 and charge.debt_micros == 0
    assert after.credit_micros == 999_000


def test_credit_is_not_touched_while_allowance_or_pools_cover_the_event():
    charge, after = draw_compute(balances(allowance_ms=5_000, credit_micros=50), 5_000, RATE)
    assert charge.money_micros == 0
    assert after.credit_micros == 50


@pytest.mark.parametrize(("rest_ms", "micros"), [(5, 0), (15, 2), (25, 2), (35, 4), (16, 2)])
def test_the_rest_is_priced_once_and_rounded_half_to_even(rest_ms, micros):
    charge, after = draw_compute(balances(credit_micros=1_000), rest_ms, RATE)
    assert charge.credit_micros == micros
    assert after.credit_micros == 1_000 - micros


def test_credit_pays_only_up_to_a_positive_balance():
    charge, after = draw_compute(balances(credit_micros=300), 10_000, RATE)  # costs 1_000
    assert charge.credit_micros == 300
    assert charge.debt_micros == 700
    assert after.credit_micros == -700


# --- step 4: overage on a plan with it, else debt ------------------------------------------------------


def test_overage_covers_what_credit_does_not_on_a_plan_with_overage():
    start = balances(credit_micros=300, overage_micros=0, overage_cap_micros=500_000_000)
    charge, after = draw_compute(start, 10_000, RATE)
    assert charge == Charge(credit_micros=300, overage_micros=700)
    assert after.credit_micros == 0
    assert after.overage_micros == 700


def test_overage_stops_at_the_cap_and_the_rest_becomes_debt():
    start = balances(credit_micros=100, overage_micros=4_500, overage_cap_micros=5_000)
    charge, after = draw_compute(start, 10_000, RATE)  # 1_000: 100 credit, 500 overage, 400 debt
    assert charge == Charge(credit_micros=100, overage_micros=500, debt_micros=400)
    assert after.overage_micros == 5_000
    assert after.credit_micros == -400


def test_past_the_cap_everything_uncovered_becomes_debt():
    start = balances(credit_micros=0, overage_micros=5_000, overage_cap_micros=5_000)
    charge, after = draw_compute(start, 10_000, RATE)
    assert charge == Charge(debt_micros=1_000)
    assert after.overage_micros == 5_000
    assert after.credit_micros == -1_000


def test_without_overage_what_credit_does_not_cover_becomes_debt():
    charge, after = draw_compute(balances(credit_micros=0), 10_000, RATE)
    assert charge == Charge(debt_micros=1_000)
    assert after.credit_micros == -1_000
    assert after.overage_micros == 0


def test_a_charge_with_credit_already_negative_goes_entirely_to_debt_without_overage():
    charge, after = draw_compute(balances(credit_micros=-250), 10_000, RATE)
    assert charge == Charge(debt_micros=1_000)
    assert after.credit_micros == -1_250


def test_a_charge_with_credit_already_negative_goes_entirely_to_overage_on_a_plan_with_it():
    start = balances(credit_micros=-250, overage_cap_micros=500_000_000)
    charge, after = draw_compute(start, 10_000, RATE)
    assert charge == Charge(overage_micros=1_000)
    assert after.credit_micros == -250
    assert after.overage_micros == 1_000


def test_an_event_is_charged_even_when_nothing_covers_it():
    charge, _ = draw_compute(balances(), 3_600_000, RATE)
    assert charge.debt_micros == 360_000


# --- draw_money (tokens) --------------------------------------------------------------------------------


def test_token_charges_never_touch_allowance_or_pools():
    start = balances(allowance_ms=3_600_000, pools=(pool("p1", 36_000_000),), credit_micros=1_000)
    charge, after = draw_money(start, 400)
    assert charge == Charge(credit_micros=400)
    assert after.allowance_remaining_ms == start.allowance_remaining_ms
    assert after.pools == start.pools
    assert after.credit_micros == 600


def test_token_charges_beyond_credit_become_debt_even_with_allowance_left():
    start = balances(allowance_ms=3_600_000, pools=(pool("p1", 36_000_000),), credit_micros=100)
    charge, after = draw_money(start, 400)
    assert charge == Charge(credit_micros=100, debt_micros=300)
    assert after.credit_micros == -300


def test_token_charges_beyond_credit_go_to_overage_up_to_the_cap():
    start = balances(credit_micros=100, overage_micros=0, overage_cap_micros=200)
    charge, after = draw_money(start, 400)
    assert charge == Charge(credit_micros=100, overage_micros=200, debt_micros=100)
    assert after.overage_micros == 200
    assert after.credit_micros == -100


def test_a_token_charge_with_credit_already_negative_goes_entirely_to_debt():
    charge, after = draw_money(balances(credit_micros=-5), 400)
    assert charge == Charge(debt_micros=400)
    assert after.credit_micros == -405


# --- universal rules ------------------------------------------------------------------------------------


def _check_money_conservation(before: Balances, charge: Charge, after: Balances) -> None:
    assert before.credit_micros - after.credit_micros == charge.credit_micros + charge.debt_micros
    assert after.overage_micros - before.overage_micros == charge.overage_micros
    assert min(charge.credit_micros, charge.overage_micros, charge.debt_micros) >= 0
    assert charge.credit_micros <= max(before.credit_micros, 0)
    assert charge.overage_micros <= before.overage_headroom_micros
    if charge.debt_micros:  # debt only once positive credit and overage headroom are used up
        assert charge.credit_micros == max(before.credit_micros, 0)
        assert charge.overage_micros == before.overage_headroom_micros
    if before.overage_cap_micros is None:
        assert charge.overage_micros == 0


@FAST
@given(start=any_balances(), duration_ms=st.integers(0, 200_000), rate=st.sampled_from([0, 7, 100, 1_000]))
def test_draw_compute_conserves_duration_and_money(start, duration_ms, rate):
    charge, after = draw_compute(start, duration_ms, rate)
    money_ms = duration_ms - charge.allowance_ms - charge.pool_ms
    assert 0 <= money_ms <= duration_ms
    assert charge.money_micros == compute_cost_micros(money_ms, rate)
    assert start.allowance_remaining_ms - after.allowance_remaining_ms == charge.allowance_ms
    assert start.pool_remaining_ms - after.pool_remaining_ms == charge.pool_ms
    drawn = dict(charge.pool_draws)
    assert len(drawn) == len(charge.pool_draws)
    for p_before, p_after in zip(start.pools, after.pools, strict=True):
        assert p_before.id == p_after.id
        assert p_before.remaining_ms - p_after.remaining_ms == drawn.get(p_before.id, 0)
        assert p_after.remaining_ms >= 0
    _check_money_conservation(start, charge, after)


@FAST
@given(start=any_balances(), duration_ms=st.integers(0, 200_000))
def test_draw_compute_follows_the_order_allowance_then_pools_by_expiry_then_money(start, duration_ms):
    charge, after = draw_compute(start, duration_ms, RATE)
    assert charge.allowance_ms == min(duration_ms, start.allowance_remaining_ms)
    if charge.pool_ms:
        assert after.allowance_remaining_ms == 0
    if duration_ms - charge.allowance_ms - charge.pool_ms > 0:  # money paid: nothing else was left
        assert after.allowance_remaining_ms == 0
        assert after.pool_remaining_ms == 0
    # Pools are drawn as a prefix of the expiry order: every pool before the last drawn one is emptied.
    ordered = [p for p in pool_order(start.pools) if p.remaining_ms > 0]
    drawn_ids = [pid for pid, _ in charge.pool_draws]
    assert drawn_ids == [p.id for p in ordered[:len(drawn_ids)]]
    for p, (_, ms) in zip(ordered, charge.pool_draws[:-1]):
        assert ms == p.remaining_ms


@FAST
@given(start=any_balances(), cost_micros=st.integers(0, 50_000))
def test_draw_money_conserves_money_and_leaves_time_alone(start, cost_micros):
    charge, after = draw_money(start, cost_micros)
    assert charge.money_micros == cost_micros
    assert charge.allowance_ms == 0 and charge.pool_draws == ()
    assert after.allowance_remaining_ms == start.allowance_remaining_ms
    assert after.pools == start.pools
    _check_money_conservation(start, charge, after)


@FAST
@given(start=any_balances(), durations=st.lists(st.integers(0, 30_000), max_size=8))
def test_a_sequence_of_events_conserves_money_overall(start, durations):
    balances_now, paid_ms, charged = start, 0, 0
    for duration_ms in durations:
        charge, balances_now = draw_compute(balances_now, duration_ms, RATE)
        paid_ms += charge.allowance_ms + charge.pool_ms
        charged += charge.credit_micros + charge.debt_micros
    assert start.credit_micros - balances_now.credit_micros == charged
    assert (start.allowance_remaining_ms + start.pool_remaining_ms
            - balances_now.allowance_remaining_ms - balances_now.pool_remaining_ms) == paid_ms
