"""What the fake upstream's model "says", the same for OpenAI's and Anthropic's formats: deterministic replies.

A "token" is a whitespace-separated word. Input tokens: the words of everything the model reads (system, message
texts, tool results, earlier tool calls' names and arguments, and the `tools` JSON). The reply echoes the last user
message (or tool result): its words repeated in order until `X-Fake-Reply-Words` (default 8) words, capped by
`max_tokens` / `max_completion_tokens` (then the reply is truncated). Tool calls: when the request has tools and the
last user message names one or more of them (each named tool is called, in the tools' order), or says
"tool"/"tools" (the first tool), or `tool_choice` demands it; never after a tool result unless demanded. Arguments
come from the tool's JSON schema (string: the last word of the user message, integer/number: 1, boolean: true, enum:
its first value). Output tokens = text words + reasoning + per call the words of name and `json.dumps(arguments)`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

DEFAULT_REPLY_WORDS = 8
DEFAULT_THINKING_WORDS = 4


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    args: dict

    @property
    def arguments(self) -> str:
        return json.dumps(self.args)

    @property
    def tokens(self) -> int:
        return len(self.name.split()) + len(self.arguments.split())


@dataclass(frozen=True)
class Reply:
    words: tuple[str, ...]
    thinking: tuple[str, ...]  # Anthropic's visible thinking
    tool_calls: tuple[ToolCall, ...]
    reasoning_tokens: int  # OpenAI's hidden reasoning, or len(thinking)
    truncated: bool
    input_tokens: int  # all input, cached included
    cached_tokens: int
    cache_write_tokens: int

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def output_tokens(self) -> int:
        return self.reasoning_tokens + len(self.words) + sum(c.tokens for c in self.tool_calls)


@dataclass(frozen=True)
class Ask:
    """A request reduced to what decides the reply."""

    read: list[str]  # every text the model reads
    last_text: str
    after_tool_result: bool
    tools: list[tuple[str, dict]]  # (name, JSON schema)
    tool_choice: str  # auto | none | required | tool:<name>
    parallel: bool
    max_tokens: int | None
    thinking: bool


def _words(text: str) -> int:
    return len(text.split())


def _arg_value(prop: dict, word: str) -> Any:
    if prop.get("enum"):
        return prop["enum"][0]
    kind = prop.get("type")
    kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
    return {"integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}.get(kind, word)


def _pick_tools(ask: Ask) -> list[tuple[str, dict]]:
    if not ask.tools or ask.tool_choice == "none":
        return []
    if ask.tool_choice.startswith("tool:"):
        return [t for t in ask.tools if t[0] == ask.tool_choice[5:]][:1]
    said = {w.strip(".,;:!?'\"()").lower() for w in ask.last_text.split()}
    named = [] if ask.after_tool_result else [t for t in ask.tools if t[0].lower() in said]
    if not named and (ask.tool_choice == "required" or (not ask.after_tool_result and said & {"tool", "tools"})):
        named = ask.tools[:1]
    return named if ask.parallel else named[:1]


def plan_reply(ask: Ask, knobs: dict[str, int], *, anthropic: bool) -> Reply:
    """The deterministic reply to `ask` in `anthropic`'s manner or OpenAI's; `knobs`: the X-Fake-* numbers."""
    base = ask.last_text.split() or ["ok"]
    word = base[-1].strip(".,;:!?'\"()") or "ok"
    prefix = "toolu_" if anthropic else "call_"
    calls = [ToolCall(prefix + secrets.token_hex(12), name,
                      {k: _arg_value(v if isinstance(v, dict) else {}, word)
                       for k, v in (schema.get("properties") or {}).items()})
             for name, schema in _pick_tools(ask)]
    room = ask.max_tokens if ask.max_tokens is not None else 1 << 60
    reasoning = knobs.get("reasoning_tokens", DEFAULT_THINKING_WORDS) if ask.thinking else 0
    reasoning = min(knobs.get("reasoning_tokens", 0) if not anthropic else reasoning, room)
    wanted = knobs.get("reply_words", DEFAULT_REPLY_WORDS) if (anthropic or not calls) else 0
    n = min(wanted, room - reasoning)
    fits = sum(c.tokens for c in calls) <= room - reasoning - n  # a call that does not fit is not half-made
    total = _words(" ".join(ask.read))
    cached = min(knobs.get("cached_tokens", 0), total)
    return Reply(words=tuple(base[i % len(base)] for i in range(n)),
                 thinking=tuple(f"thought{i + 1}" for i in range(reasoning)) if anthropic else (),
                 tool_calls=tuple(calls) if fits else (), reasoning_tokens=reasoning,
                 truncated=n < wanted or not fits, input_tokens=total, cached_tokens=cached,
                 cache_write_tokens=min(knobs.get("cache_write_tokens", 0), total - cached))



def split_pieces(text: str, size: int = 12) -> list[str]:
    """`text` in pieces of `size` characters (one empty piece for an empty text), as streamed arguments arrive."""
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def compact_json(obj: Any) -> bytes:
    """`obj` as JSON without spaces, as both providers send it."""
    return json.dumps(obj, separators=(",", ":")).encode()
