"""Prices: compute time at the catalog rate and tokens at the model price table."""

from __future__ import annotations

from dataclasses import dataclass

from .money import div_round_half_even
from .plans import Catalog


class UnknownModel(LookupError):
    """The model is not in the catalog's price table: the event is rejected as unknown_model."""


def compute_cost_micros(duration_ms: int, rate_micros_per_second: int) -> int:
    """Price of compute time, rounded once to a whole micro, half to even."""
    return div_round_half_even(duration_ms * rate_micros_per_second, 1000)


@dataclass(frozen=True)
class TokenCost:
    list_micros: int  # what the tokens cost at the price table
    charged_micros: int  # what credit pays: list price on platform keys, 0 on BYOK


def token_cost(catalog: Catalog, *, model: str, input_tokens: int, output_tokens: int,
               key_source: str) -> TokenCost:
    """Price a token event; unknown models are an error on platform keys and free on BYOK."""
    price = catalog.models.get(model)
    if price is None:
        if key_source == "byok":
            return TokenCost(0, 0)
        raise UnknownModel(model)
    listed = div_round_half_even(input_tokens * price.input_micros_per_mtok
                                 + output_tokens * price.output_micros_per_mtok, 1_000_000)
    return TokenCost(listed, 0 if key_source == "byok" else listed)
