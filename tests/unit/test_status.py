"""Account status and the `check` gate: yes only when active and the whole amount can be covered."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.drawdown import draw_compute, draw_money
from billing_core.status import ACTIVE, OVER_LIMIT, SUSPENDED, CheckResult, check_compute, check_money, \
    derive_status

from .builders import FAST, RATE, any_balances, balances, pool

CAP = 500_000_000

# --- derive_status ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [
    balances(allowance_ms=3_600_000, credit_micros=10**9),
    balances(),
    balances(credit_micros=-10),
])
def test_suspension_wins_over_any_balance(start):
    assert derive_status(start, suspended=True) == SUSPENDED


@pytest.mark.parametrize(("start", "why"), [
    (balances(allowance_ms=1), "allowance left"),
    (balances(pools=(pool("p", 1),)), "pool left"),
    (balances(credit_micros=1), "credit left"),
    (balances(credit_micros=-1_000, overage_micros=0, overage_cap_micros=1), "overage headroom left"),
    (balances(allowance_ms=1, credit_micros=-1_000), "allowance left despite debt"),
])
def test_any_one_thing_left_to_pay_keeps_the_account_active(start, why):
    assert derive_status(start, suspended=False) == ACTIVE, why


@pytest.mark.parametrize(("start", "why"), [
    (balances(), "nothing at all"),
    (balances(credit_micros=-500), "in debt"),
    (balances(pools=(pool("p", 0),)), "only an empty pool"),
    (balances(overage_micros=CAP, overage_cap_micros=CAP), "at the spend cap"),
    (balances(overage_micros=CAP + 7, overage_cap_micros=CAP), "past the spend cap"),
    (balances(overage_cap_micros=0), "a zero cap"),
])
def test_account_is_over_limit_when_nothing_covers_the_next_millisecond(start, why):
    assert derive_status(start, suspended=False) == OVER_LIMIT, why


@FAST
@given(start=any_balances())
def test_over_limit_exactly_when_no_allowance_no_pool_no_credit_and_no_headroom(start):
    nothing_left = (start.allowance_remaining_ms == 0 and all(p.remaining_ms == 0 for p in start.pools)
                    and start.credit_micros <= 0
                    and (start.overage_cap_micros is None or start.overage_micros >= start.overage_cap_micros))
    assert derive_status(start, suspended=False) == (OVER_LIMIT if nothing_left else ACTIVE)


# --- check_compute ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "duration_ms", "why"), [
    (balances(allowance_ms=10_000), 10_000, "allowance covers it exactly"),
    (balances(allowance_ms=4_000, pools=(pool("p", 6_000),)), 10_000, "allowance and a pool"),
    (balances(allowance_ms=4_000, credit_micros=600), 10_000, "credit covers the 6 s rest exactly"),
    (balances(credit_micros=-5, overage_cap_micros=CAP), 10_000, "overage headroom covers it"),
    (balances(credit_micros=400, overage_micros=CAP - 600, overage_cap_micros=CAP), 10_000,
     "credit and the last headroom together"),
    (balances(allowance_ms=1), 5, "the 4 ms rest costs 0.4 -> 0 micros"),
    (balances(allowance_ms=1), 0, "nothing asked"),
])
def test_check_compute_says_ok_when_the_whole_duration_is_covered(start, duration_ms, why):
    assert check_compute(start, duration_ms, RATE, suspended=False) == CheckResult(True, "ok"), why


def test_check_compute_says_account_suspended_for_a_suspended_account_with_plenty_left():
    start = balances(allowance_ms=3_600_000, credit_micros=10**9)
    assert check_compute(start, 1_000, RATE, suspended=True) == CheckResult(False, "account_suspended")


def test_check_compute_says_over_limit_when_nothing_is_left():
    assert check_compute(balances(credit_micros=-10), 1, RATE, suspended=False) == CheckResult(False, "over_limit")


def test_check_compute_says_over_limit_for_a_pro_account_at_its_cap_with_no_credit():
    start = balances(overage_micros=CAP, overage_cap_micros=CAP)
    assert check_compute(start, 1_000, RATE, suspended=False) == CheckResult(False, "over_limit")


@pytest.mark.parametrize("credit_micros", [0, -300])
def test_check_compute_says_allowance_exhausted_when_time_runs_short_and_there_is_no_credit(credit_micros):
    start = balances(allowance_ms=1_000, pools=(pool("p", 1_000),), credit_micros=credit_micros)
    assert check_compute(start, 3_000, RATE, suspended=False) == CheckResult(False, "allowance_exhausted")


def test_check_compute_says_insufficient_credit_when_credit_covers_only_part():
    start = balances(allowance_ms=1_000, credit_micros=99)  # the 1 s rest costs 100
    assert check_compute(start, 2_000, RATE, suspended=False) == CheckResult(False, "insufficient_credit")


@pytest.mark.parametrize(("start", "why"), [
    (balances(credit_micros=0, overage_micros=CAP - 50, overage_cap_micros=CAP), "headroom too small"),
    (balances(credit_micros=50, overage_micros=CAP, overage_cap_micros=CAP), "cap reached, some credit"),
    (balances(credit_micros=30, overage_micros=CAP - 30, overage_cap_micros=CAP), "credit + headroom short"),
])
def test_check_compute_says_spend_cap_reached_on_an_overage_plan_that_cannot_cover_it(start, why):
    assert check_compute(start, 1_000, RATE, suspended=False) == CheckResult(False, "spend_cap_reached"), why


def test_check_compute_refuses_work_that_would_be_only_partly_covered():
    start = balances(allowance_ms=60_000, pools=(pool("p", 60_000),), credit_micros=1_000)
    assert check_compute(start, 130_000, RATE, suspended=False).allowed  # 10 s rest = 1_000 micros
    assert not check_compute(start, 130_010, RATE, suspended=False).allowed  # 1_001 micros


@FAST
@given(start=any_balances(), duration_ms=st.integers(0, 200_000))
def test_check_compute_allows_exactly_what_the_drawdown_pays_without_debt(start, duration_ms):
    result = check_compute(start, duration_ms, RATE, suspended=False)
    charge, _ = draw_compute(start, duration_ms, RATE)
    if derive_status(start, suspended=False) == ACTIVE:
        assert result.allowed == (charge.debt_micros == 0)
    else:
        assert result == CheckResult(False, "over_limit")
    assert result.allowed == (result.reason == "ok")
    assert not check_compute(start, duration_ms, RATE, suspended=True).allowed


# --- check_money ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "cost_micros", "why"), [
    (balances(credit_micros=500), 500, "credit covers it exactly"),
    (balances(credit_micros=100, overage_micros=CAP - 400, overage_cap_micros=CAP), 500, "credit and headroom"),
    (balances(credit_micros=-1_000, overage_cap_micros=CAP), 500, "headroom despite debt"),
    (balances(credit_micros=1), 0, "nothing asked"),
])
def test_check_money_says_ok_when_credit_and_headroom_cover_the_whole_amount(start, cost_micros, why):
    assert check_money(start, cost_micros, suspended=False) == CheckResult(True, "ok"), why


def test_check_money_never_counts_allowance_or_pools():
    start = balances(allowance_ms=3_600_000, pools=(pool("p", 36_000_000),), credit_micros=0)
    assert check_money(start, 1, suspended=False) == CheckResult(False, "insufficient_credit")


def test_check_money_says_insufficient_credit_when_credit_is_short_without_overage():
    assert check_money(balances(credit_micros=499), 500, suspended=False) == CheckResult(False, "insufficient_credit")


def test_check_money_says_spend_cap_reached_when_credit_and_headroom_are_short():
    start = balances(credit_micros=100, overage_micros=CAP - 399, overage_cap_micros=CAP)
    assert check_money(start, 500, suspended=False) == CheckResult(False, "spend_cap_reached")


def test_check_money_says_account_suspended_for_a_suspended_account():
    assert check_money(balances(credit_micros=10**9), 1, suspended=True) == CheckResult(False, "account_suspended")


def test_check_money_says_over_limit_when_nothing_is_left():
    assert check_money(balances(credit_micros=-1), 1, suspended=False) == CheckResult(False, "over_limit")


@FAST
@given(start=any_balances(), cost_micros=st.integers(0, 20_000))
def test_check_money_allows_exactly_what_the_drawdown_pays_without_debt(start, cost_micros):
    result = check_money(start, cost_micros, suspended=False)
    charge, _ = draw_money(start, cost_micros)
    if derive_status(start, suspended=False) == ACTIVE:
        assert result.allowed == (charge.debt_micros == 0)
    else:
        assert result == CheckResult(False, "over_limit")
    assert result.allowed == (result.reason == "ok")
