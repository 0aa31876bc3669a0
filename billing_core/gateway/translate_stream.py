"""Streams: Anthropic's SSE events translated into OpenAI chat.completion.chunk dicts, and OpenAI's chunks metered
as they pass through. Both keep what the upstream reported so far, so a stream cut short is still billed.

Anthropic's usage: `message_start` carries the input (and cache) tokens; every `message_delta` carries
CUMULATIVE counts (output_tokens always, the input fields sometimes), so the last value of each field wins and
nothing is summed. OpenAI's usage arrives once, on the last chunk (`choices: []`) when stream_options.include_usage
was asked, or on a chunk that still has choices (some OpenAI-compatible upstreams); the gateway always asks for it
and strips it from the client's stream when the client did not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .translate_response import finish_reason
from .usage import Usage

CostOf = Callable[[Usage], int]


def error_chunk(request_id: str, model: str, created: int, message: str) -> dict[str, Any]:
    """The chunk that ends a stream whose upstream failed after the first byte: finish_reason "error" and an
    OpenAI-shaped `error` (which makes OpenAI's SDK raise APIError with `message`)."""
    return {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "error"}],
            "error": {"message": message, "type": "upstream_error", "code": "upstream_error"}}


class AnthropicToOpenAIStream:
    """Feed Anthropic stream events in order; get the OpenAI chunks to send for each.

    `usage` holds what the upstream reported so far. Until `usage_is_final` (the message_delta with the stop
    reason), its output count is message_start's placeholder (typically 1): a stream cut before then should be
    billed at the larger of it and an estimate from `text_so_far`.
    """

    def __init__(self, request_id: str, model: str, created: int, include_usage: bool, *,
                 cost_of: CostOf | None = None) -> None:
        self.request_id, self.model, self.created = request_id, model, created
        self.include_usage = include_usage
        self.cost_of = cost_of  # prices the final usage chunk's `cost_micros`
        self.finish_reason: str | None = None
        self.finished = False  # message_stop seen: the upstream completed the message
        self.usage_is_final = False  # the message_delta carrying the stop reason (and final counts) was seen
        self._usage_fields: dict[str, Any] | None = None
        self._tool_index: dict[int, int] = {}  # Anthropic content block index -> OpenAI tool_calls index
        self._parts: list[str] = []  # everything generated, for an estimate when no usage comes

    @property
    def usage(self) -> Usage | None:
        """The usage reported so far (input from message_start, the latest cumulative output), or None when
        none was, or its counts are garbled (then the caller bills an estimate, as for a lost usage)."""
        if self._usage_fields is None:
            return None
        try:
            return Usage.from_anthropic(self._usage_fields)
        except ValueError:
            return None

    @property
    def text_so_far(self) -> str:
        """All generated text so far (answer, thinking, tool names and arguments), to estimate output tokens."""
        return "".join(self._parts)

    def feed(self, event_type: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The OpenAI chunks for one Anthropic event (none for ping, block stops and unknown events)."""
        handler = {"message_start": self._on_message_start, "content_block_start": self._on_content_block_start,
                   "content_block_delta": self._on_content_block_delta, "message_delta": self._on_message_delta,
                   "message_stop": self._on_message_stop, "error": self._on_error}.get(event_type)
        return handler(data) if handler else []  # Anthropic may add event types; they are skipped

    def error(self, message: str) -> dict[str, Any]:
        """The chunk to send when the upstream fails mid-stream."""
        self.finish_reason = "error"
        return error_chunk(self.request_id, self.model, self.created, message)

    # --- events -------------------------------------------------------------------------------------------

    def _on_message_start(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        message = data.get("message") or {}
        self._usage_fields = dict(message.get("usage") or {})
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_content_block_start(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        block = data.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            return self._text(block["text"])
        if block.get("type") != "tool_use":
            return []
        index = len(self._tool_index)
        self._tool_index[data.get("index", -1 - index)] = index
        self._parts.append(block["name"])
        return [self._chunk({"tool_calls": [{"index": index, "id": block["id"], "type": "function",
                                             "function": {"name": block["name"], "arguments": ""}}]})]

    def _on_content_block_delta(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return self._text(delta.get("text") or "")
        if kind == "thinking_delta" and delta.get("thinking"):
            self._parts.append(delta["thinking"])
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        if kind == "input_json_delta" and delta.get("partial_json") and data.get("index") in self._tool_index:
            self._parts.append(delta["partial_json"])
            call = {"index": self._tool_index[data["index"]], "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # signature_delta, citations_delta, empty fragments

    def _on_message_delta(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        usage = data.get("usage") or {}
        fields = self._usage_fields if self._usage_fields is not None else {}
        # Cumulative counts: the latest value replaces the earlier one (never summed).
        fields.update({key: value for key, value in usage.items() if value is not None})
        self._usage_fields = fields
        stop_reason = (data.get("delta") or {}).get("stop_reason")
        if stop_reason is None:
            return []
        self.usage_is_final = True
        self.finish_reason = finish_reason(stop_reason)
        return [self._chunk({}, finish=self.finish_reason)]

    def _on_message_stop(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.finished = True
        if not self.include_usage or self.usage is None:
            return []
        usage = self.usage
        return [{**self._base(), "choices": [],
                 "usage": usage.to_openai(self.cost_of(usage) if self.cost_of else None)}]

    def _on_error(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        error = data.get("error") or {}
        return [self.error(error.get("message") or error.get("type") or "the upstream failed mid-stream")]

    # --- chunks -------------------------------------------------------------------------------------------

    def _text(self, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        self._parts.append(text)
        return [self._chunk({"content": text})]

    def _base(self) -> dict[str, Any]:
        return {"id": self.request_id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model}

    def _chunk(self, delta: dict[str, Any], *, finish: str | None = None) -> dict[str, Any]:
        chunk = {**self._base(), "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI does: every chunk but the last says usage null
        return chunk


class OpenAIStreamMeter:
    """Reads an OpenAI upstream's chunks as they pass through: keeps the usage and the generated text, and takes
    the usage out when the client did not ask for it."""

    def __init__(self, *, strip_usage: bool, cost_of: CostOf | None = None) -> None:
        self.strip_usage = strip_usage
        self.cost_of = cost_of  # when given, a forwarded usage object gains `cost_micros`
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self._content: list[str] = []
        self._parts: list[str] = []

    @property
    def content(self) -> str:
        """The answer's text streamed so far (choice 0's `content` deltas)."""
        return "".join(self._content)

    @property
    def text_so_far(self) -> str:
        """All generated text so far (content, refusal, reasoning, tool names and arguments), for an estimate."""
        return "".join(self._parts)

    def feed(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        """The chunk to forward (usage removed or priced as asked), or None when nothing of it is left to send."""
        for choice in chunk.get("choices") or []:
            self._read_choice(choice)
        raw = chunk.get("usage")
        if not isinstance(raw, Mapping):
            if self.strip_usage and "usage" in chunk:
                chunk = {key: value for key, value in chunk.items() if key != "usage"}
            return chunk
        try:
            usage: Usage | None = Usage.from_openai(raw)
        except ValueError:
            usage = None  # garbled counts read as none reported: the caller bills an estimate
        if usage is not None:
            self.usage = usage  # a later report replaces an earlier one
        if self.strip_usage:
            if not chunk.get("choices"):
                return None
            return {key: value for key, value in chunk.items() if key != "usage"}
        if self.cost_of is not None and usage is not None:
            return {**chunk, "usage": {**raw, "cost_micros": self.cost_of(usage)}}
        return chunk

    def _read_choice(self, choice: Mapping[str, Any]) -> None:
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta") or {}
        for key in ("content", "refusal", "reasoning_content"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._parts.append(text)
                if key == "content" and choice.get("index", 0) == 0:
                    self._content.append(text)
        for call in delta.get("tool_calls") or []:
            function = call.get("function") or {}
            for key in ("name", "arguments"):
                if isinstance(function.get(key), str):
                    self._parts.append(function[key])
