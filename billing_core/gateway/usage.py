"""Token usage as the upstreams report it, in one shape, and back out in OpenAI's.

How tokens are counted for billing (one rule for both providers):
- `input_tokens` is EVERY input token the upstream processed, cache reads and cache writes included. OpenAI's
  `prompt_tokens` already counts that way (`prompt_tokens_details.cached_tokens` is a subset of it). Anthropic's
  `input_tokens` does not: it counts only the uncached tokens after the last cache breakpoint, and reports cache
  reads (`cache_read_input_tokens`) and cache writes (`cache_creation_input_tokens`) beside it, so here
  billable input = input_tokens + cache_creation_input_tokens + cache_read_input_tokens.
- The parts are kept (`cached_input_tokens`, `cache_creation_tokens`) so a price table that discounts cache reads
  or surcharges cache writes can price them; until it does, every input token is priced as input.
- `output_tokens` is every generated token, reasoning included (OpenAI's `completion_tokens`, Anthropic's
  `output_tokens`); `reasoning_tokens` is the part spent thinking, for display only, never billed twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _count(value: Any, field: str) -> int:
    """A token count from an upstream's JSON: absent or null is 0; anything but a whole number >= 0 is refused
    (a garbled count must not be billed)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"usage field {field!r} is not a token count: {value!r}")
    return value


def _details(usage: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = usage.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"usage field {key!r} is not an object: {value!r}")
    return value


@dataclass(frozen=True)
class Usage:
    """Tokens of one request. `input_tokens` includes the cached and cache-written parts; `output_tokens`
    includes the reasoning part."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0  # read from the provider's prompt cache
    cache_creation_tokens: int = 0  # written to the provider's prompt cache
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "cached_input_tokens", "cache_creation_tokens",
                     "reasoning_tokens"):
            _count(getattr(self, name), name)
        if self.cached_input_tokens + self.cache_creation_tokens > self.input_tokens:
            raise ValueError("cached and cache-written tokens cannot exceed the input tokens")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError("reasoning tokens cannot exceed the output tokens")

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens neither read from nor written to the cache (Anthropic's own `input_tokens`)."""
        return self.input_tokens - self.cached_input_tokens - self.cache_creation_tokens

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any]) -> Usage:
        """Read OpenAI's chat completion `usage` object (prompt_tokens already includes cached tokens).
        Raises ValueError when a count is not a whole number >= 0."""
        prompt = _details(usage, "prompt_tokens_details")
        completion = _details(usage, "completion_tokens_details")
        input_tokens = _count(usage.get("prompt_tokens"), "prompt_tokens")
        output_tokens = _count(usage.get("completion_tokens"), "completion_tokens")
        # The totals are what is billed; a breakdown that does not fit inside them is trimmed, not refused.
        cached = min(_count(prompt.get("cached_tokens"), "cached_tokens"), input_tokens)
        written = min(_count(prompt.get("cache_write_tokens"), "cache_write_tokens"), input_tokens - cached)
        return cls(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached,
            cache_creation_tokens=written,
            reasoning_tokens=min(_count(completion.get("reasoning_tokens"), "reasoning_tokens"), output_tokens),
        )

    @classmethod
    def from_anthropic(cls, usage: Mapping[str, Any]) -> Usage:
        """Read Anthropic's Messages `usage` object; its cache reads and writes are added to the input.
        Raises ValueError when a count is not a whole number >= 0."""
        uncached = _count(usage.get("input_tokens"), "input_tokens")
        created = _count(usage.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
        read = _count(usage.get("cache_read_input_tokens"), "cache_read_input_tokens")
        output_tokens = _count(usage.get("output_tokens"), "output_tokens")
        # thinking_tokens is a re-tokenised estimate ("always <= output_tokens"); trimmed in case it is not.
        thinking = _count(_details(usage, "output_tokens_details").get("thinking_tokens"), "thinking_tokens")
        return cls(
            input_tokens=uncached + created + read,
            output_tokens=output_tokens,
            cached_input_tokens=read,
            cache_creation_tokens=created,
            reasoning_tokens=min(thinking, output_tokens),
        )

    def to_openai(self, cost_micros: int | None) -> dict[str, Any]:
        """OpenAI's `usage` object for these tokens, plus Tollgate's `cost_micros` (left out when None)."""
        prompt_details: dict[str, int] = {"cached_tokens": self.cached_input_tokens}
        if self.cache_creation_tokens:
            prompt_details["cache_write_tokens"] = self.cache_creation_tokens
        body: dict[str, Any] = {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }
        if cost_micros is not None:
            body["cost_micros"] = cost_micros
        return body
