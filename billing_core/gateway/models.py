"""Which upstream serves a model name, at what price, and how many tokens it may read and write.

A model is asked for as `provider/model` (`anthropic/claude-sonnet-4`) or by its bare name when exactly one
provider in the catalog lists it. The token limits below are the providers' documented figures (sources in
`_LIMITS`); they bound holds, so where a figure is uncertain the table errs high.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ServiceError
from ..plans import Catalog, ModelPrice


class ModelNotFound(ServiceError):
    status, code = 404, "model_not_found"


class ModelAmbiguous(ServiceError):
    status, code = 400, "model_ambiguous"


@dataclass(frozen=True)
class Route:
    provider: str
    model: str  # the upstream's own name for it, sent as the request's `model`
    price: ModelPrice

    @property
    def qualified_name(self) -> str:
        return f"{self.provider}/{self.model}"


def resolve(catalog: Catalog, name: str) -> Route:
    """The route for `provider/model` or an unambiguous bare model name; ModelNotFound or ModelAmbiguous."""
    if not isinstance(name, str) or not name.strip():
        raise ModelNotFound("no model given: send `model` as provider/model, e.g. anthropic/claude-sonnet-4")
    name = name.strip()
    prices = list(catalog.models.values())
    provider, sep, rest = name.partition("/")
    if sep:
        qualified = [p for p in prices if p.provider == provider and p.model == rest]
        if qualified:
            return Route(qualified[0].provider, qualified[0].model, qualified[0])
        # A slash may also be part of a bare model name (`meta-llama/Llama-3`): fall through to that.
    bare = [p for p in prices if p.model == name]
    if len(bare) == 1:
        return Route(bare[0].provider, bare[0].model, bare[0])
    if len(bare) > 1:
        choices = ", ".join(sorted(f"{p.provider}/{p.model}" for p in bare))
        raise ModelAmbiguous(f"model {name!r} is offered by several providers; name one of: {choices}")
    raise ModelNotFound(f"model {name!r} is not in the price table; GET /v1/models lists the models")


def public_models(catalog: Catalog, *, created: int = 0) -> list[dict[str, Any]]:
    """The catalog as the `data` of OpenAI's model list, each with Tollgate's `pricing`, sorted by id."""
    out = []
    for price in sorted(catalog.models.values(), key=lambda p: (p.provider, p.model)):
        out.append({
            "id": f"{price.provider}/{price.model}",
            "object": "model",
            "created": created,
            "owned_by": price.provider,
            "pricing": {
                "input_micros_per_mtok": price.input_micros_per_mtok,
                "output_micros_per_mtok": price.output_micros_per_mtok,
            },
        })
    return out


@dataclass(frozen=True)
class TokenLimits:
    context_tokens: int  # input + output the model accepts in one request
    max_output_tokens: int  # the most it generates in one reply (reasoning/thinking included)


# Documented limits, by model family name. A name matches its family exactly, or with a dated snapshot or
# alias suffix (`claude-sonnet-4-20250514`, `claude-sonnet-4-0`, `gpt-4o-2024-08-06`): a later version
# (`claude-opus-4-6`) is NOT taken for an earlier one, because its limits may be larger.
# Sources: Anthropic's "Models overview" (docs.anthropic.com/en/docs/about-claude/models/overview) and OpenAI's
# model pages (platform.openai.com/docs/models), read 2025-2026. Sonnet 4 and 4.5 accept a 1M context with the
# `context-1m` beta header and Claude 3.7 Sonnet 128k output with `output-128k`: the table takes the larger.
_LIMITS: dict[str, dict[str, TokenLimits]] = {
    "anthropic": {
        "claude-opus-4": TokenLimits(200_000, 32_000),
        "claude-opus-4-1": TokenLimits(200_000, 32_000),
        "claude-opus-4-5": TokenLimits(200_000, 64_000),
        "claude-sonnet-4": TokenLimits(1_000_000, 64_000),
        "claude-sonnet-4-5": TokenLimits(1_000_000, 64_000),
        "claude-haiku-4": TokenLimits(200_000, 64_000),  # the catalog's name for Haiku 4.5
        "claude-haiku-4-5": TokenLimits(200_000, 64_000),
        "claude-3-7-sonnet": TokenLimits(200_000, 128_000),
        "claude-3-5-sonnet": TokenLimits(200_000, 8_192),
        "claude-3-5-haiku": TokenLimits(200_000, 8_192),
        "claude-3-haiku": TokenLimits(200_000, 4_096),
    },
    "openai": {
        "gpt-4o": TokenLimits(128_000, 16_384),
        "gpt-4o-mini": TokenLimits(128_000, 16_384),
        "gpt-4.1": TokenLimits(1_047_576, 32_768),
        "gpt-4.1-mini": TokenLimits(1_047_576, 32_768),
        "gpt-4.1-nano": TokenLimits(1_047_576, 32_768),
        "o1": TokenLimits(200_000, 100_000),
        "o3": TokenLimits(200_000, 100_000),
        "o3-mini": TokenLimits(200_000, 100_000),
        "o4-mini": TokenLimits(200_000, 100_000),
        "gpt-5": TokenLimits(400_000, 128_000),
        "gpt-5-mini": TokenLimits(400_000, 128_000),
        "gpt-5-nano": TokenLimits(400_000, 128_000),
    },
}
# A model not in the table: limits at least as large as any listed, so a hold for it never comes out short.
DEFAULT_LIMITS = TokenLimits(context_tokens=2_000_000, max_output_tokens=128_000)
_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2}|0|latest)")


def token_limits(provider: str, model: str) -> TokenLimits:
    """The documented limits of a provider's model, or DEFAULT_LIMITS when the table does not know it."""
    table = _LIMITS.get(provider, {})
    if model in table:
        return table[model]
    for family, limits in table.items():
        if model.startswith(family) and _SUFFIX.fullmatch(model[len(family):]):
            return limits
    return DEFAULT_LIMITS


def max_output_tokens(route: Route) -> int:
    """The most tokens the route's model writes in one reply (its documented limit, or the default)."""
    return token_limits(route.provider, route.model).max_output_tokens


def context_tokens(route: Route) -> int:
    """The most tokens (input and output) the route's model takes in one request."""
    return token_limits(route.provider, route.model).context_tokens


def is_known_model(route: Route) -> bool:
    """Whether the limits of this model come from the table rather than the default."""
    return token_limits(route.provider, route.model) is not DEFAULT_LIMITS
