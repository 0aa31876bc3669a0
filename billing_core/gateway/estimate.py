"""Token counts a request may cost before the upstream says: safe upper bounds for holds, estimates for billing.

Why the byte count bounds the input: every tokenizer the providers use (OpenAI's tiktoken encodings, Claude's)
is a byte-level BPE, so each token stands for at least one byte of UTF-8 text; a prompt of B bytes is at most
B tokens. Around the text come the chat template's few tokens per message and, with tools, a hidden system
prompt (Anthropic documents 313-346 tokens for it); fixed allowances below cover those. Parts whose tokens do
not follow from their bytes: an image costs a fixed ceiling per provider; a document, file or audio part is
bounded only by the model's context window, which is also a ceiling on the whole input (a longer prompt is
refused upstream and costs nothing).

With tiktoken (OpenAI-family models, when its encoding loads without the network) the count is tighter; it
still gets a margin, since the chat template and tool rendering are not public.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from .models import Route, is_known_model, max_output_tokens, token_limits

CountText = Callable[[str], int]

PER_REQUEST_TOKENS = 16  # the reply's priming and the template's framing
PER_MESSAGE_TOKENS = 8  # role markers around each message (OpenAI's cookbook counts 3-4)
TOOLS_TOKENS = 600  # the hidden tool-use system prompt (Anthropic: 313-346) and tool_choice framing
PER_TOOL_TOKENS = 16  # rendering of one tool beside its JSON (names, namespace, punctuation)
TIKTOKEN_MARGIN_PERCENT = 10  # on top of tiktoken's count of the text (integers: a hold is money)

# The most tokens one image may cost. OpenAI gpt-4o: 85 + 170 per 512 px tile, at most 8 tiles after scaling to
# 2048 x 768 = 1,445; gpt-4o-mini bills images at 2,833 + 5,667 per tile = 48,169 (OpenAI's vision guide).
# Anthropic: about 1,600 for the largest image it does not scale down (its vision guide); 5,000 leaves room for
# models that take larger images. A model not listed takes its provider's default, the largest known.
_IMAGE_TOKENS: dict[str, dict[str, int]] = {
    "openai": {"gpt-4o": 1_445, "gpt-4o-mini": 48_169, "": 48_169},
    "anthropic": {"": 5_000},
}
_ANY_IMAGE_TOKENS = 48_169
_IMAGE_TYPES = frozenset({"image_url", "image", "input_image"})
_OPAQUE_TYPES = frozenset({"input_audio", "audio", "file", "input_file", "video", "container_upload"})
_TEXT_DOCUMENT_SOURCES = frozenset({"text", "content"})
# Request fields that are never part of the prompt; everything else (tools, response_format...) is counted.
_NOT_PROMPT = frozenset({
    "model", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k",
    "n", "stop", "stop_sequences", "seed", "logprobs", "top_logprobs", "logit_bias", "presence_penalty",
    "frequency_penalty", "parallel_tool_calls", "service_tier", "store", "metadata", "user", "thinking",
    "reasoning_effort", "modalities",
})


class _Tally:
    """What a walk over the prompt found: measured text, images, and parts without a bound of their own."""

    __slots__ = ("text", "images", "opaque")

    def __init__(self) -> None:
        self.text = 0
        self.images = 0
        self.opaque = 0


def _walk(root: Any, measure: CountText, tally: _Tally) -> None:
    # An explicit stack: a client's deeply nested JSON must not exhaust the interpreter's recursion limit.
    stack = [root]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            tally.text += measure(value)
        elif isinstance(value, Mapping):
            kind = value.get("type")
            if kind in _IMAGE_TYPES:
                tally.images += 1
                continue
            if kind in _OPAQUE_TYPES:
                tally.opaque += 1
                continue
            if kind == "document":
                source = value.get("source")
                if not (isinstance(source, Mapping) and source.get("type") in _TEXT_DOCUMENT_SOURCES):
                    tally.opaque += 1  # a PDF or file: its tokens do not follow from its bytes
                    continue
            for key, item in value.items():
                tally.text += measure(str(key))
                stack.append(item)
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif value is not None:
            tally.text += measure(json.dumps(value))  # numbers and booleans inside tool inputs and schemas


def _image_tokens(provider: str, model: str) -> int:
    table = _IMAGE_TOKENS.get(provider)
    if table is None:
        return _ANY_IMAGE_TOKENS
    return table.get(model, table[""])


def _utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _bound(body: Mapping[str, Any], provider: str, model: str, measure: CountText, margin_percent: int) -> int:
    tally = _Tally()
    messages = body.get("messages") or []
    overhead = PER_REQUEST_TOKENS + PER_MESSAGE_TOKENS * (len(messages) if isinstance(messages, list) else 1)
    for key, value in body.items():
        if key not in _NOT_PROMPT:
            _walk(value, measure, tally)
    tools = [t for k in ("tools", "functions") if isinstance(body.get(k), list) for t in body[k]]
    if tools:
        overhead += TOOLS_TOKENS + PER_TOOL_TOKENS * len(tools)
    if body.get("system"):
        overhead += PER_MESSAGE_TOKENS
    context = token_limits(provider, model).context_tokens
    if tally.opaque:
        return context
    text = -(-tally.text * (100 + margin_percent) // 100)  # rounded up, in integers
    return min(context, text + overhead + tally.images * _image_tokens(provider, model))


def input_token_upper_bound(body: Mapping[str, Any], provider: str, *, model: str = "",
                            count_text: CountText | None = None) -> int:
    """At least as many input tokens as `provider` will count for this request (OpenAI chat or Anthropic
    Messages body). With `count_text` (a tokenizer of the model's family) the bound is tighter, never looser."""
    if not isinstance(body, Mapping):
        raise TypeError("the request body must be a JSON object")
    bound = _bound(body, provider, model, _utf8_bytes, 0)
    if count_text is not None:
        try:
            tighter = _bound(body, provider, model, count_text, TIKTOKEN_MARGIN_PERCENT)
        except Exception:  # a tokenizer that chokes on odd text (lone surrogates) must not fail the request
            tighter = bound  # the byte bound stands
        bound = min(bound, tighter)
    return bound


def _requested(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None  # absent or invalid: the upstream refuses an invalid one, the model's limit bounds the rest
    return value


def output_token_upper_bound(body: Mapping[str, Any], route: Route) -> int:
    """At least as many output tokens as the upstream may generate: `max_completion_tokens` / `max_tokens`
    (reasoning and thinking count inside them), capped by the model's documented limit, times `n` choices."""
    asked = [v for v in (_requested(body, "max_completion_tokens"), _requested(body, "max_tokens")) if v]
    limit = max_output_tokens(route)
    if not asked:
        per_choice = limit
    elif is_known_model(route):
        per_choice = min(max(asked), limit)
    else:
        per_choice = max(asked)  # an unknown model's real limit may exceed the default: trust the request
    choices = _requested(body, "n") or 1
    return per_choice * choices


def estimate_output_tokens(text: str, count_text: CountText | None = None) -> int:
    """A fair estimate (not a bound) of the tokens a streamed reply used, for a stream cut off before the
    upstream reported usage: the tokenizer's count when given, else ~4 ASCII characters a token, one token for
    other characters of the basic plane (accents, CJK) and two for the rest (emoji). The caller marks the
    usage event `estimated`."""
    if not text:
        return 0
    if count_text is not None:
        return count_text(text)
    ascii_chars = astral_chars = 0
    for ch in text:
        if ch < "\x80":
            ascii_chars += 1
        elif ch > "\uffff":
            astral_chars += 1
    return -(-ascii_chars // 4) + (len(text) - ascii_chars) + astral_chars


@functools.lru_cache(maxsize=32)
def openai_token_counter(model: str) -> CountText | None:
    """tiktoken's counter for an OpenAI model, or None when tiktoken is not installed, does not know the model,
    or cannot load its encoding (it downloads encodings unless TIKTOKEN_CACHE_DIR holds them). Remembered per
    model, so call it once at start-up, not on the request path."""
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        encoding = tiktoken.encoding_for_model(model)
    except Exception:  # KeyError for an unknown model; a failed download surfaces as requests' errors
        return None

    def count(text: str) -> int:
        return len(encoding.encode_ordinary(text))
    return count
