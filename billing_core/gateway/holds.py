"""What a gateway request reserves before the upstream call, what it costs after, and what is given back.

Two-phase, like TigerBeetle's pending transfers: a hold of the worst case (input bound + output bound at list
price, rounded UP so the reservation is never short), then a post of the exact cost (the upstream's usage at
list price, rounded once, half to even, as every token price is) and a release of the rest.

Cached input: priced as input. The catalog has one input price per model; Usage keeps cache reads and writes
apart (billing_core.gateway.usage) so a discount or surcharge can be priced here once the catalog lists one.
Reasoning and thinking tokens are inside the output count and priced as output, never twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..money import div_round_half_even
from ..plans import ModelPrice

if TYPE_CHECKING:
    from .usage import Usage

TOKENS_PER_MTOK = 1_000_000


def _check_tokens(**counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")


def _exact_numerator(price: ModelPrice, input_tokens: int, output_tokens: int) -> int:
    return input_tokens * price.input_micros_per_mtok + output_tokens * price.output_micros_per_mtok


def worst_case_cost(price: ModelPrice, input_tokens: int, max_output_tokens: int) -> int:
    """Micros to hold for a request of at most these tokens, rounded UP: never less than its exact cost."""
    _check_tokens(input_tokens=input_tokens, max_output_tokens=max_output_tokens)
    return -(-_exact_numerator(price, input_tokens, max_output_tokens) // TOKENS_PER_MTOK)


def exact_cost(price: ModelPrice, usage: Usage) -> int:
    """Micros the usage costs at list price, rounded once, half to even: the same figure as
    billing_core.pricing.token_cost for the same tokens. Every input token (cached or not) is priced as input."""
    _check_tokens(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
    return div_round_half_even(_exact_numerator(price, usage.input_tokens, usage.output_tokens), TOKENS_PER_MTOK)


@dataclass(frozen=True)
class Hold:
    """A reservation: the token bounds it was computed from and the micros it keeps aside."""

    input_tokens: int
    output_tokens: int
    micros: int


def hold_for(price: ModelPrice, input_tokens: int, max_output_tokens: int) -> Hold:
    """The hold for a request bounded by these token counts."""
    return Hold(input_tokens, max_output_tokens, worst_case_cost(price, input_tokens, max_output_tokens))


@dataclass(frozen=True)
class Settlement:
    """How a hold ends: `post_micros` is charged, `release_micros` returned to the balance and the budget.
    A cost above the hold (the upstream used more than the bound: the bound was wrong) is still posted in full,
    since it was really spent; `exceeded_hold` flags it and `overrun_micros` says by how much."""

    hold_micros: int
    post_micros: int
    release_micros: int

    @property
    def exceeded_hold(self) -> bool:
        return self.post_micros > self.hold_micros

    @property
    def overrun_micros(self) -> int:
        return max(self.post_micros - self.hold_micros, 0)

    def __iter__(self) -> Iterator[int]:
        """Unpacks as (post_micros, release_micros)."""
        return iter((self.post_micros, self.release_micros))


def _check_micros(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number of micros >= 0, got {value!r}")


def settle(hold_micros: int, exact_micros: int) -> Settlement:
    """Post the exact cost and release the rest of the hold; a cost above the hold is posted in full, flagged.
    post + release == hold whenever the cost fits in the hold."""
    _check_micros("hold_micros", hold_micros)
    _check_micros("exact_micros", exact_micros)
    return Settlement(hold_micros, exact_micros, max(hold_micros - exact_micros, 0))
