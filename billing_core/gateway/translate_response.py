"""An Anthropic Messages response, translated into an OpenAI chat completion, and the stop reasons between them.

Thinking blocks: their text is returned as `message.reasoning_content` (the field DeepSeek's API and LiteLLM use
for reasoning in OpenAI's format; OpenAI's own SDK keeps unknown fields, so clients can read it), left out when
there was no thinking. Redacted thinking is opaque and dropped. Text blocks are joined without a separator, as
they are consecutive pieces of one answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from .usage import Usage

# Anthropic stop_reason -> OpenAI finish_reason. pause_turn only happens with Anthropic's server tools, which an
# OpenAI-format request cannot ask for; a context window overflow reads like a length limit to an OpenAI client.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None) -> str:
    """OpenAI's finish_reason for an Anthropic stop_reason (an unknown or missing one reads as "stop")."""
    return FINISH_REASONS.get(stop_reason or "", "stop")


def anthropic_to_openai(message: Mapping[str, Any], *, request_id: str, model: str, created: int,
                        cost_of: Callable[[Usage], int] | None = None) -> dict[str, Any]:
    """The OpenAI chat completion equivalent to an Anthropic message; `usage` carries `cost_micros` when
    `cost_of` prices the usage."""
    texts: list[str] = []
    thoughts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            thoughts.append(block.get("thinking") or "")
        elif kind == "tool_use":
            tool_calls.append({"id": block["id"], "type": "function",
                               "function": {"name": block["name"],
                                            "arguments": json.dumps(block.get("input") or {})}})
        # redacted_thinking and server-tool blocks have no OpenAI form
    text = "".join(texts)
    reply: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None,
                             "refusal": None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    if thoughts:
        reply["reasoning_content"] = "".join(thoughts)
    usage = Usage.from_anthropic(message.get("usage") or {})
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": reply, "logprobs": None,
                     "finish_reason": finish_reason(message.get("stop_reason"))}],
        "usage": usage.to_openai(cost_of(usage) if cost_of else None),
    }


def openai_usage_with_cost(completion: dict[str, Any], cost_of: Callable[[Usage], int]) -> Usage | None:
    """Read an OpenAI completion's usage and add `cost_micros` to it in place; None when it reports none."""
    raw = completion.get("usage")
    if not isinstance(raw, Mapping):
        return None
    usage = Usage.from_openai(raw)
    completion["usage"] = {**raw, "cost_micros": cost_of(usage)}
    return usage
