"""Model routing: provider/model or an unambiguous bare name, the public price list, and token limits."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from billing_core.errors import ServiceError
from billing_core.gateway.models import (
    DEFAULT_LIMITS,
    ModelAmbiguous,
    ModelNotFound,
    Route,
    _LIMITS,
    context_tokens,
    is_known_model,
    max_output_tokens,
    public_models,
    resolve,
    token_limits,
)
from billing_core.plans import Catalog, ModelPrice, load_catalog

CATALOG = load_catalog()


def catalog_of(*prices: ModelPrice) -> Catalog:
    """A catalog whose price table is keyed by provider/model, so one bare name may sit under two providers."""
    return Catalog(plans=MappingProxyType({}), compute_rate_micros_per_second=100, pool_pack=CATALOG.pool_pack,
                   models=MappingProxyType({f"{p.provider}/{p.model}": p for p in prices}))


def test_a_qualified_name_routes_to_that_provider_and_price():
    route = resolve(CATALOG, "anthropic/claude-sonnet-4")
    assert route == Route("anthropic", "claude-sonnet-4", CATALOG.models["claude-sonnet-4"])
    assert route.qualified_name == "anthropic/claude-sonnet-4"


def test_a_bare_name_listed_once_routes_to_its_provider():
    assert resolve(CATALOG, "gpt-4o-mini").provider == "openai"
    assert resolve(CATALOG, "  claude-haiku-4 ").model == "claude-haiku-4"


@pytest.mark.parametrize("name", ["gpt-5-turbo-ultra", "openai/claude-sonnet-4", "anthropic/gpt-4o", "", "   ",
                                  "anthropic/", "/claude-sonnet-4"])
def test_an_unknown_or_misqualified_model_is_not_found(name):
    with pytest.raises(ModelNotFound) as caught:
        resolve(CATALOG, name)
    assert (caught.value.status, caught.value.code) == (404, "model_not_found")
    assert isinstance(caught.value, ServiceError)


def test_a_bare_name_under_two_providers_is_ambiguous_and_names_both():
    catalog = catalog_of(ModelPrice("alpha", "llama-3", 1, 2), ModelPrice("beta", "llama-3", 3, 4))
    with pytest.raises(ModelAmbiguous) as caught:
        resolve(catalog, "llama-3")
    assert (caught.value.status, caught.value.code) == (400, "model_ambiguous")
    assert "alpha/llama-3" in caught.value.message and "beta/llama-3" in caught.value.message
    assert resolve(catalog, "beta/llama-3").price.input_micros_per_mtok == 3


def test_a_model_name_with_a_slash_resolves_bare_and_qualified():
    catalog = catalog_of(ModelPrice("together", "meta-llama/Llama-3", 1, 2))
    assert resolve(catalog, "meta-llama/Llama-3").provider == "together"
    assert resolve(catalog, "together/meta-llama/Llama-3").model == "meta-llama/Llama-3"


def test_public_models_are_openai_list_entries_with_pricing_sorted_by_id():
    models = public_models(CATALOG, created=1_700_000_000)
    assert [m["id"] for m in models] == sorted(f"{p.provider}/{p.model}" for p in CATALOG.models.values())
    sonnet = next(m for m in models if m["id"] == "anthropic/claude-sonnet-4")
    assert sonnet == {"id": "anthropic/claude-sonnet-4", "object": "model", "created": 1_700_000_000,
                      "owned_by": "anthropic",
                      "pricing": {"input_micros_per_mtok": 3_000_000, "output_micros_per_mtok": 15_000_000}}


def test_every_listed_id_resolves_back_to_its_own_price():
    for entry in public_models(CATALOG):
        route = resolve(CATALOG, entry["id"])
        assert route.provider == entry["owned_by"]
        assert route.price.input_micros_per_mtok == entry["pricing"]["input_micros_per_mtok"]


def test_every_shipped_catalog_model_has_documented_limits():
    for price in CATALOG.models.values():
        assert is_known_model(resolve(CATALOG, price.model)), price.model


@pytest.mark.parametrize(("provider", "model", "max_output", "context"), [
    ("anthropic", "claude-sonnet-4", 64_000, 1_000_000),
    ("anthropic", "claude-sonnet-4-20250514", 64_000, 1_000_000),
    ("anthropic", "claude-opus-4-0", 32_000, 200_000),
    ("anthropic", "claude-opus-4-1-20250805", 32_000, 200_000),
    ("anthropic", "claude-opus-4-5-20251101", 64_000, 200_000),
    ("anthropic", "claude-3-7-sonnet-latest", 128_000, 200_000),
    ("openai", "gpt-4o", 16_384, 128_000),
    ("openai", "gpt-4o-mini-2024-07-18", 16_384, 128_000),
    ("openai", "gpt-4o-2024-08-06", 16_384, 128_000),
])
def test_known_models_and_their_snapshots_take_the_documented_limits(provider, model, max_output, context):
    route = Route(provider, model, ModelPrice(provider, model, 1, 1))
    assert (max_output_tokens(route), context_tokens(route)) == (max_output, context)
    assert is_known_model(route)


@pytest.mark.parametrize(("provider", "model"), [
    ("anthropic", "claude-opus-4-6"),  # a later version: its limits may be larger than 4.0's
    ("anthropic", "claude-sonnet-4-7-20270101"),
    ("openai", "gpt-4o-audio-preview"),
    ("openai", "claude-sonnet-4"),  # limits belong to a provider's model
    ("acme", "gpt-4o"),
])
def test_a_model_the_table_does_not_know_takes_the_default_not_a_neighbours_limit(provider, model):
    assert token_limits(provider, model) is DEFAULT_LIMITS
    assert not is_known_model(Route(provider, model, ModelPrice(provider, model, 1, 1)))


def test_the_default_is_at_least_every_documented_limit():
    limits = [lim for table in _LIMITS.values() for lim in table.values()]
    assert DEFAULT_LIMITS.max_output_tokens >= max(lim.max_output_tokens for lim in limits)
    assert DEFAULT_LIMITS.context_tokens >= max(lim.context_tokens for lim in limits)
