"""Holds: the worst case rounded up, the exact cost rounded once half to even, and a settle that conserves."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.gateway.holds import Hold, Settlement, exact_cost, hold_for, settle, worst_case_cost
from billing_core.gateway.usage import Usage
from billing_core.plans import ModelPrice, load_catalog
from billing_core.pricing import token_cost

from ..builders import FAST

CATALOG = load_catalog()
SONNET = CATALOG.models["claude-sonnet-4"]

prices = st.builds(lambda i, o: ModelPrice("acme", "m", i, o), st.integers(0, 10**8), st.integers(0, 10**8))
tokens = st.integers(0, 2_000_000)


def test_a_hold_rounds_a_fraction_of_a_micro_up():
    price = ModelPrice("acme", "m", 1, 3)  # micros per million tokens
    assert worst_case_cost(price, 1, 0) == 1  # 0.000001 micros -> 1
    assert worst_case_cost(price, 0, 0) == 0
    assert worst_case_cost(price, 1_000_000, 1_000_000) == 4  # exact: no rounding


def test_the_exact_cost_rounds_once_half_to_even():
    price = ModelPrice("acme", "m", 1_000_000, 3_000_000)  # $1 and $3 per Mtok: 1 and 3 micros a token
    half = ModelPrice("acme", "m", 500_000, 1_500_000)
    assert exact_cost(half, Usage(input_tokens=1)) == 0  # 0.5 -> 0
    assert exact_cost(half, Usage(input_tokens=3)) == 2  # 1.5 -> 2
    assert exact_cost(half, Usage(input_tokens=1, output_tokens=1)) == 2  # 0.5 + 1.5 = 2.0, one rounding
    assert exact_cost(price, Usage(input_tokens=10, output_tokens=10)) == 40


def test_a_sonnet_request_holds_its_bounds_and_costs_its_usage():
    hold = hold_for(SONNET, 1_000, 4_000)
    assert hold == Hold(input_tokens=1_000, output_tokens=4_000, micros=3_000 + 60_000)
    cost = exact_cost(SONNET, Usage(input_tokens=900, output_tokens=120))
    assert cost == 2_700 + 1_800
    assert tuple(settle(hold.micros, cost)) == (4_500, 63_000 - 4_500)


def test_cached_and_cache_written_input_is_priced_as_input():
    usage = Usage.from_anthropic({"input_tokens": 10, "cache_read_input_tokens": 1_000,
                                  "cache_creation_input_tokens": 500, "output_tokens": 20})
    assert exact_cost(SONNET, usage) == (10 + 1_000 + 500) * 3 + 20 * 15


def test_reasoning_tokens_are_inside_the_output_and_not_billed_twice():
    usage = Usage.from_openai({"prompt_tokens": 100, "completion_tokens": 50,
                               "completion_tokens_details": {"reasoning_tokens": 40}})
    price = CATALOG.models["gpt-4o"]
    assert exact_cost(price, usage) == exact_cost(price, Usage(input_tokens=100, output_tokens=50))


@FAST
@given(price=prices, input_bound=tokens, output_bound=tokens, data=st.data())
def test_a_hold_is_never_less_than_the_exact_cost_of_any_usage_within_its_bounds(price, input_bound, output_bound,
                                                                                 data):
    used_in = data.draw(st.integers(0, input_bound))
    used_out = data.draw(st.integers(0, output_bound))
    cached = data.draw(st.integers(0, used_in))
    usage = Usage(input_tokens=used_in, output_tokens=used_out, cached_input_tokens=cached)
    held = worst_case_cost(price, input_bound, output_bound)
    assert held >= exact_cost(price, usage)
    assert held == math.ceil(Fraction(input_bound * price.input_micros_per_mtok
                                      + output_bound * price.output_micros_per_mtok, 1_000_000))


@FAST
@given(model=st.sampled_from(sorted(CATALOG.models)), input_tokens=tokens, output_tokens=tokens)
def test_the_exact_cost_is_what_the_usage_pipeline_charges_for_the_same_tokens(model, input_tokens, output_tokens):
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    listed = token_cost(CATALOG, model=model, input_tokens=input_tokens, output_tokens=output_tokens,
                        key_source="platform").list_micros
    assert exact_cost(CATALOG.models[model], usage) == listed


@FAST
@given(hold=st.integers(0, 10**12), data=st.data())
def test_settling_within_the_hold_conserves_it(hold, data):
    cost = data.draw(st.integers(0, hold))
    settled = settle(hold, cost)
    post, release = settled
    assert post == cost and release >= 0
    assert post + release == hold
    assert not settled.exceeded_hold and settled.overrun_micros == 0


@FAST
@given(hold=st.integers(0, 10**12), over=st.integers(1, 10**9))
def test_a_cost_above_the_hold_is_posted_in_full_and_flagged(hold, over):
    settled = settle(hold, hold + over)
    assert settled == Settlement(hold_micros=hold, post_micros=hold + over, release_micros=0)
    assert settled.exceeded_hold and settled.overrun_micros == over


@pytest.mark.parametrize(("hold", "cost"), [(-1, 0), (0, -1), (1.5, 1), (True, 0), (10, "3")])
def test_settle_refuses_amounts_that_are_not_whole_micros(hold, cost):
    with pytest.raises(ValueError):
        settle(hold, cost)


@pytest.mark.parametrize(("input_tokens", "output_tokens"), [(-1, 0), (0, -1), (1.0, 0), (False, 1)])
def test_a_hold_refuses_token_counts_that_are_not_whole(input_tokens, output_tokens):
    with pytest.raises(ValueError):
        worst_case_cost(SONNET, input_tokens, output_tokens)


def test_the_hold_and_its_settlement_are_frozen():
    import dataclasses
    for value in (hold_for(SONNET, 1, 1), settle(5, 3)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.micros = 0  # type: ignore[misc]

