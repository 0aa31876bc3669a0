"""Prices: compute at the catalog rate and tokens at the model table, each rounded once, half to even."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.plans import load_catalog, parse_catalog
from billing_core.pricing import TokenCost, UnknownModel, compute_cost_micros, token_cost

from .builders import FAST

CATALOG = load_catalog()


def catalog_with_model(input_micros_per_mtok: int, output_micros_per_mtok: int):
    return parse_catalog({
        "compute": {"rate_micros_per_second": 100},
        "pool_pack": {"hours": 10, "price_micros": 3_000_000, "valid_days": 365},
        "plans": {"hobby": {"price_micros": 0, "included_ms": 1, "concurrent_runs": 1}},
        "models": {"acme": {"half-micro": {"input_micros_per_mtok": input_micros_per_mtok,
                                           "output_micros_per_mtok": output_micros_per_mtok}}},
    })


@pytest.mark.parametrize(("duration_ms", "rate", "micros"), [
    (0, 100, 0),
    (5, 100, 0),        # 0.5 -> 0 (half to even)
    (15, 100, 2),       # 1.5 -> 2
    (25, 100, 2),       # 2.5 -> 2
    (35, 100, 4),       # 3.5 -> 4
    (6, 100, 1),        # 0.6 -> 1
    (4, 100, 0),        # 0.4 -> 0
    (1_000, 100, 100),
    (3_600_000, 100, 360_000),  # an hour is 36 cents
    (1_000, 0, 0),
    (1, 7, 0), (500, 7, 4), (1_500, 7, 10),  # 3.5 -> 4, 10.5 -> 10
])
def test_compute_cost_is_ms_times_rate_over_1000_rounded_half_to_even(duration_ms, rate, micros):
    result = compute_cost_micros(duration_ms, rate)
    assert result == micros
    assert type(result) is int


@FAST
@given(duration_ms=st.integers(0, 10**13), rate=st.integers(0, 10**6))
def test_compute_cost_equals_exact_half_even_rounding(duration_ms, rate):
    assert compute_cost_micros(duration_ms, rate) == round(Fraction(duration_ms * rate, 1000))


def test_token_cost_is_input_and_output_at_the_model_prices():
    cost = token_cost(CATALOG, model="claude-sonnet-4", input_tokens=1_000, output_tokens=500,
                      key_source="platform")
    assert cost == TokenCost(list_micros=3_000 + 7_500, charged_micros=10_500)


def test_a_million_tokens_each_way_costs_the_listed_prices():
    cost = token_cost(CATALOG, model="claude-opus-4", input_tokens=1_000_000, output_tokens=1_000_000,
                      key_source="platform")
    assert cost.charged_micros == 15_000_000 + 75_000_000


@pytest.mark.parametrize(("input_tokens", "micros"), [(1, 2), (3, 8), (5, 12)])  # 2.5, 7.5, 12.5
def test_token_cost_rounds_half_to_even(input_tokens, micros):
    cost = token_cost(CATALOG, model="gpt-4o", input_tokens=input_tokens, output_tokens=0,
                      key_source="platform")
    assert cost.charged_micros == micros


def test_token_cost_is_rounded_once_on_the_sum_not_per_component():
    # gpt-4o-mini: 3 input tokens = 0.45 micros, 4 output tokens = 2.4 micros.
    # Rounded per component that is 0 + 2 = 2; rounded once on the sum 2.85 it is 3.
    cost = token_cost(CATALOG, model="gpt-4o-mini", input_tokens=3, output_tokens=4, key_source="platform")
    assert cost.charged_micros == 3


def test_two_half_micro_components_make_one_micro_when_rounded_once():
    # 0.5 + 0.5: per component half-even gives 0 + 0; once on the sum gives 1.
    catalog = catalog_with_model(500_000, 500_000)
    cost = token_cost(catalog, model="half-micro", input_tokens=1, output_tokens=1, key_source="platform")
    assert cost.charged_micros == 1


@FAST
@given(model=st.sampled_from(sorted(CATALOG.models)), input_tokens=st.integers(0, 10**9),
       output_tokens=st.integers(0, 10**9))
def test_token_cost_equals_exact_half_even_rounding_of_the_sum(model, input_tokens, output_tokens):
    price = CATALOG.models[model]
    exact = Fraction(input_tokens * price.input_micros_per_mtok + output_tokens * price.output_micros_per_mtok,
                     1_000_000)
    cost = token_cost(CATALOG, model=model, input_tokens=input_tokens, output_tokens=output_tokens,
                      key_source="platform")
    assert cost == TokenCost(round(exact), round(exact))


def test_unknown_model_on_a_platform_key_is_rejected():
    with pytest.raises(UnknownModel):
        token_cost(CATALOG, model="gpt-9-ultra", input_tokens=10, output_tokens=10, key_source="platform")


def test_unknown_model_on_byok_costs_nothing():
    cost = token_cost(CATALOG, model="gpt-9-ultra", input_tokens=10, output_tokens=10, key_source="byok")
    assert cost == TokenCost(list_micros=0, charged_micros=0)


def test_known_model_on_byok_keeps_its_list_cost_but_charges_nothing():
    cost = token_cost(CATALOG, model="claude-sonnet-4", input_tokens=1_000, output_tokens=500,
                      key_source="byok")
    assert cost == TokenCost(list_micros=10_500, charged_micros=0)
