"""A fake LLM upstream on 127.0.0.1 that speaks OpenAI's and Anthropic's wire formats exactly, for tests and the demo.

Endpoints: POST /v1/chat/completions (OpenAI, `Authorization: Bearer <openai key>`), POST /v1/messages (Anthropic,
`x-api-key: <anthropic key>` or, as the anthropic SDK 2.x sends it, `Authorization: Bearer <anthropic key>`; and
`anthropic-version`), GET /v1/models (Anthropic's list when `x-api-key` or `anthropic-version` is sent, else
OpenAI's). Any other key: 401 in that provider's error shape.

Replies are deterministic. A "token" is a whitespace-separated word. Input tokens: the words of everything the model
reads (system, message texts, tool results, earlier tool calls' names and arguments, and the `tools` JSON). The reply
echoes the last user message (or tool result): its words repeated in order until `X-Fake-Reply-Words` (default 8)
words, capped by `max_tokens` / `max_completion_tokens` (then finish `length` / `max_tokens`). Streams send one word
per chunk. Tool calls: when the request has tools and the last user message names one or more of them (each named
tool is called, in the tools' order), or says "tool"/"tools" (the first tool), or `tool_choice` demands it; never
after a tool result unless demanded. Arguments come from the tool's JSON schema (string: the last word of the user
message, integer/number: 1, boolean: true, enum: its first value). Anthropic puts the echoed text before the
`tool_use` blocks; OpenAI answers `content: null` with the calls. Output tokens = text words + reasoning + per call
the words of name and `json.dumps(arguments)`.

Per-request headers (a server-wide default for each: `set_scenario`, `set_defaults`):
- `X-Fake-Scenario`: comma-separated switches: `rate_limit` (429 + retry-after), `server_error` (500),
  `overloaded` (Anthropic 529, OpenAI 503): answered before any byte; `error_after_first_chunk` (the first content
  chunk, then OpenAI's `data: {"error": ...}` or Anthropic's `event: error`; non-streamed: 500); `cut_mid_stream`
  (half the chunks, then the connection is dropped: an incomplete chunked body); `end_mid_stream` (half the
  chunks, then a clean end with no usage, `[DONE]` or `message_stop`); `usage_with_choices` (OpenAI: usage on the
  chunk that carries `finish_reason`, asked or not, and no `choices: []` chunk); `cumulative_usage` (running usage on
  every OpenAI chunk; Anthropic: an extra `message_delta` mid-stream with the output tokens so far); `no_usage`
  (OpenAI: no usage chunk even when asked); `slow:<ms>` (a pause before each chunk; non-streamed: per output token).
- `X-Fake-Reply-Words`, `X-Fake-Cached-Tokens` (OpenAI `cached_tokens`, Anthropic `cache_read_input_tokens`),
  `X-Fake-Cache-Write-Tokens` (Anthropic `cache_creation_input_tokens`), `X-Fake-Reasoning-Tokens` (OpenAI
  `reasoning_tokens`; Anthropic: the words of the thinking block when the request enables thinking, default 4).
Anthropic's `message_start` reports `output_tokens: 1` and `message_delta` the cumulative total, as Anthropic does.
Every request is kept in `requests` (method, path, headers, JSON, status, outcome). Keep-alive is long (600 s) so a
pooled client, not the server, decides when an idle connection closes. Run alone:
`python -m portal.gateway.fake_upstream --port 8790 [--openai-key K] [--anthropic-key K]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

OPENAI_KEY = "sk-fake-openai-0000000000000000"
ANTHROPIC_KEY = "sk-ant-fake-0000000000000000"
KEEP_ALIVE_S = 600
DEFAULT_REPLY_WORDS = 8
DEFAULT_THINKING_WORDS = 4
FINGERPRINT = "fp_fake0000"
_SWITCHES = {"rate_limit", "server_error", "overloaded", "error_after_first_chunk", "cut_mid_stream",
             "end_mid_stream", "usage_with_choices", "cumulative_usage", "no_usage"}
_FAILS = {"rate_limit", "server_error", "overloaded"}
_OPENAI_FAIL = {  # status, type, code, message
    "rate_limit": (429, "requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 1s."),
    "server_error": (500, "server_error", None,
                     "The server had an error while processing your request. Sorry about that!"),
    "overloaded": (503, "server_error", None, "The engine is currently overloaded, please try again later."),
}
_ANTHROPIC_FAIL = {  # status, type, message
    "rate_limit": (429, "rate_limit_error", "Number of requests has exceeded your per-minute rate limit."),
    "server_error": (500, "api_error", "Internal server error"),
    "overloaded": (529, "overloaded_error", "Overloaded"),
}
_KNOBS = {"reply_words": "x-fake-reply-words", "cached_tokens": "x-fake-cached-tokens",
          "cache_write_tokens": "x-fake-cache-write-tokens", "reasoning_tokens": "x-fake-reasoning-tokens"}


@dataclass
class Recorded:
    """One request as received (header names lower-cased) and how it was answered."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    client: str  # "host:port" of the connection: two requests with the same one shared a kept-alive connection
    status: int = 0
    outcome: str = "pending"  # complete | error_status | error_event | cut | ended_early | client_disconnected
    chunks_sent: int = 0


@dataclass(frozen=True)
class Scenario:
    switches: frozenset[str] = frozenset()
    slow_ms: int = 0

    @property
    def fail(self) -> str | None:
        return next(iter(sorted(self.switches & _FAILS)), None)


def parse_scenario(text: str | None) -> Scenario:
    """The switches of an `X-Fake-Scenario` value; ValueError on an unknown one (a typo must not pass silently)."""
    switches, slow_ms = set(), 0
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if part.startswith("slow:") and part[5:].isdigit():
            slow_ms = int(part[5:])
        elif part in _SWITCHES:
            switches.add(part)
        elif part != "ok":
            known = ", ".join(sorted(_SWITCHES))
            raise ValueError(f"unknown X-Fake-Scenario switch {part!r}; known: {known}, slow:<ms>")
    return Scenario(frozenset(switches), slow_ms)


class StreamCut(Exception):
    """Raised on purpose to make uvicorn drop the connection mid-body; its log line is filtered out."""


class _HideCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], StreamCut))


# ---- what the model "says", the same for both formats ----------------------------------------------------------

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


def _pieces(text: str, size: int = 12) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# ---- reading each provider's request ---------------------------------------------------------------------------

def _openai_text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content if isinstance(content, str) else ""


def openai_ask(body: dict) -> Ask:
    read, last_text, after_tool = [], "", False
    for m in body["messages"]:
        read.append(_openai_text(m.get("content")))
        for call in m.get("tool_calls") or []:
            read += [call.get("function", {}).get("name", ""), call.get("function", {}).get("arguments", "")]
        if m.get("role") in ("user", "tool"):
            last_text, after_tool = _openai_text(m.get("content")), m.get("role") == "tool"
    tools = [(t["function"]["name"], t["function"].get("parameters") or {})
             for t in body.get("tools") or [] if t.get("type") == "function"]
    read += [json.dumps(body["tools"])] if body.get("tools") else []
    choice = body.get("tool_choice") or "auto"
    choice = f"tool:{choice['function']['name']}" if isinstance(choice, dict) else choice
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    return Ask(read, last_text, after_tool, tools, choice, body.get("parallel_tool_calls", True) is not False,
               limit, thinking=False)


def _anthropic_text(content: Any) -> tuple[list[str], bool]:
    """The texts of a message's content (tool results included) and whether it holds a tool result."""
    if isinstance(content, str):
        return [content], False
    texts, tool_result = [], False
    for block in content if isinstance(content, list) else []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_result":
            tool_result = True
            texts += _anthropic_text(block.get("content") or "")[0]
        elif kind == "tool_use":
            texts += [block.get("name", ""), json.dumps(block.get("input", {}))]
    return texts, tool_result


def anthropic_ask(body: dict) -> Ask:
    system = body.get("system") or ""
    read = _anthropic_text(system)[0]
    last_text, after_tool = "", False
    for m in body["messages"]:
        texts, tool_result = _anthropic_text(m.get("content"))
        read += texts
        if m.get("role") == "user":
            last_text, after_tool = " ".join(texts), tool_result
    tools = [(t["name"], t.get("input_schema") or {}) for t in body.get("tools") or [] if "input_schema" in t]
    read += [json.dumps(body["tools"])] if body.get("tools") else []
    choice = body.get("tool_choice") or {"type": "auto"}
    kind = {"auto": "auto", "none": "none", "any": "required"}.get(choice.get("type"), f"tool:{choice.get('name')}")
    thinking = (body.get("thinking") or {}).get("type") == "enabled"
    return Ask(read, last_text, after_tool, tools, kind, not choice.get("disable_parallel_tool_use", False),
               body["max_tokens"], thinking)


# ---- writing each provider's reply -----------------------------------------------------------------------------

def openai_usage(r: Reply, completion_tokens: int | None = None) -> dict:
    done = r.output_tokens if completion_tokens is None else completion_tokens
    return {"prompt_tokens": r.input_tokens, "completion_tokens": done, "total_tokens": r.input_tokens + done,
            "prompt_tokens_details": {"cached_tokens": r.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": min(r.reasoning_tokens, done), "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def _openai_finish(r: Reply) -> str:
    return "length" if r.truncated else "tool_calls" if r.tool_calls else "stop"


def openai_completion(r: Reply, model: str) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": None if r.tool_calls else r.text, "refusal": None,
                               "annotations": []}
    if r.tool_calls:
        message["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}} for c in r.tool_calls]
    return {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": message, "logprobs": None,
                                         "finish_reason": _openai_finish(r)}],
            "usage": openai_usage(r), "service_tier": "default", "system_fingerprint": FINGERPRINT}


def openai_chunks(r: Reply, model: str, include_usage: bool, sc: Scenario) -> tuple[list[bytes], int, list[bytes]]:
    """The SSE frames of a streamed completion, the index of the first content frame, and the closing frames."""
    base = {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "service_tier": "default", "system_fingerprint": FINGERPRINT}
    running = "cumulative_usage" in sc.switches
    asked = include_usage and "no_usage" not in sc.switches
    frames, done = [], r.reasoning_tokens

    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> None:
        body = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if usage is not None or asked or running:
            body["usage"] = usage if usage is not None else openai_usage(r, done) if running else None
        frames.append(b"data: " + _dumps(body) + b"\n\n")

    chunk({"role": "assistant", "content": None if r.tool_calls else "", "refusal": None})
    for i, word in enumerate(r.words):
        done += 1
        chunk({"content": word if i == 0 else " " + word})
    for i, call in enumerate(r.tool_calls):
        chunk({"tool_calls": [{"index": i, "id": call.id, "type": "function",
                               "function": {"name": call.name, "arguments": ""}}]})
        for piece in _pieces(call.arguments):
            chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
        done += call.tokens
    on_finish = "usage_with_choices" in sc.switches
    chunk({}, _openai_finish(r), openai_usage(r) if on_finish else None)
    closing = []
    if asked and not on_finish:
        closing.append(b"data: " + _dumps({**base, "choices": [], "usage": openai_usage(r)}) + b"\n\n")
    return frames, 1, closing + [b"data: [DONE]\n\n"]


def _anthropic_stop(r: Reply) -> str:
    return "max_tokens" if r.truncated else "tool_use" if r.tool_calls else "end_turn"


def anthropic_usage(r: Reply, output_tokens: int | None = None) -> dict:
    return {"input_tokens": r.input_tokens - r.cached_tokens - r.cache_write_tokens,
            "cache_creation_input_tokens": r.cache_write_tokens, "cache_read_input_tokens": r.cached_tokens,
            "output_tokens": r.output_tokens if output_tokens is None else output_tokens, "service_tier": "standard"}


def _blocks(r: Reply) -> list[dict]:
    blocks: list[dict] = []
    if r.thinking:
        blocks.append({"type": "thinking", "thinking": " ".join(r.thinking), "signature": "sig-" + "0" * 32})
    if r.words:
        blocks.append({"type": "text", "text": r.text})
    return blocks + [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.args} for c in r.tool_calls]


def anthropic_message(r: Reply, model: str, msg_id: str | None = None) -> dict:
    return {"id": msg_id or "msg_" + secrets.token_hex(12), "type": "message", "role": "assistant", "model": model,
            "content": _blocks(r), "stop_reason": _anthropic_stop(r), "stop_sequence": None,
            "usage": anthropic_usage(r)}


def _event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: ".encode() + _dumps({"type": name, **data}) + b"\n\n"


def anthropic_events(r: Reply, model: str, sc: Scenario) -> tuple[list[bytes], int, list[bytes]]:
    """The SSE events of a streamed message, the index of the first content delta, and the closing events."""
    start = {**anthropic_message(r, model), "content": [], "stop_reason": None, "usage": anthropic_usage(r, 1)}
    frames, first, done = [_event("message_start", {"message": start})], 0, 0
    for i, block in enumerate(_blocks(r)):
        kind = block["type"]
        empty = {"thinking": {"thinking": "", "signature": ""}, "text": {"text": ""}}.get(kind, {"input": {}})
        frames.append(_event("content_block_start", {"index": i, "content_block": {**block, **empty}}))
        if i == 0:
            frames.append(_event("ping", {}))
        if kind == "thinking":
            deltas = [{"type": "thinking_delta", "thinking": w if j == 0 else " " + w}
                      for j, w in enumerate(r.thinking)]
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
            done += len(r.thinking)
        elif kind == "text":
            deltas = [{"type": "text_delta", "text": w if j == 0 else " " + w} for j, w in enumerate(r.words)]
            done += len(r.words)
        else:
            call = next(c for c in r.tool_calls if c.id == block["id"])
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *_pieces(call.arguments)]]
            done += call.tokens
        first = first or len(frames)
        frames += [_event("content_block_delta", {"index": i, "delta": d}) for d in deltas]
        frames.append(_event("content_block_stop", {"index": i}))
        if i == 0 and "cumulative_usage" in sc.switches:
            frames.append(_event("message_delta", {"delta": {"stop_reason": None, "stop_sequence": None},
                                                   "usage": {"output_tokens": done}}))
    final = _event("message_delta", {"delta": {"stop_reason": _anthropic_stop(r), "stop_sequence": None},
                                     "usage": {"output_tokens": r.output_tokens}})
    return frames, first or 1, [final, _event("message_stop", {})]


# ---- the HTTP side ---------------------------------------------------------------------------------------------

def openai_error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}}, status,
                        headers={"x-request-id": "req_" + secrets.token_hex(16), **(headers or {})})


def anthropic_error(status: int, type_: str, message: str, headers: dict | None = None) -> JSONResponse:
    request_id = "req_" + secrets.token_hex(12)
    return JSONResponse({"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id},
                        status, headers={"request-id": request_id, **(headers or {})})


class _Frames:
    """An ASGI response sending prepared body parts one by one: pauses, a deliberate cut, a client that left."""

    status_code = 200

    def __init__(self, frames: list[bytes], record: Recorded, *, media_type: str, headers: dict[str, str],
                 slow_ms: int = 0, cut: bool = False, outcome: str = "complete") -> None:
        self.frames, self.record, self.slow_ms, self.cut, self.outcome = frames, record, slow_ms, cut, outcome
        self.headers = [(b"content-type", media_type.encode()), (b"cache-control", b"no-cache")]
        self.headers += [(k.encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        gone = asyncio.Event()

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        listener = asyncio.ensure_future(listen())
        try:
            self.record.status = 200
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            for frame in self.frames:
                if self.slow_ms:
                    await asyncio.sleep(self.slow_ms / 1000)
                if gone.is_set():
                    self.record.outcome = "client_disconnected"
                    return
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                self.record.chunks_sent += 1
            if self.cut:
                self.record.outcome = "cut"
                raise StreamCut("the fake upstream drops this connection on purpose (cut_mid_stream)")
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self.record.outcome = self.outcome
        finally:
            listener.cancel()


class FakeUpstream:
    """The fake provider server: `start()` it in a thread (or `serve()` in the foreground), then point clients at
    `openai_base_url` / `anthropic_base_url`."""

    def __init__(self, *, openai_key: str = OPENAI_KEY, anthropic_key: str = ANTHROPIC_KEY,
                 models: dict[str, list[str]] | None = None, keep_alive_s: int = KEEP_ALIVE_S,
                 max_records: int = 10_000) -> None:
        self.openai_key, self.anthropic_key, self.keep_alive_s = openai_key, anthropic_key, keep_alive_s
        self.models = models or _catalog_models()
        self.requests: deque[Recorded] = deque(maxlen=max_records)  # the latest ones: a long demo stays small
        self.port = 0
        self._lock = threading.Lock()
        self._scenario: str | None = None
        self._times: int | None = None
        self._defaults: dict[str, int] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"]),
                                     Route("/v1/messages", self._messages, methods=["POST"]),
                                     Route("/v1/models", self._list_models, methods=["GET"])])

    # -- for tests ---------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url

    def set_scenario(self, scenario: str | None, *, times: int | None = None) -> None:
        """Apply `scenario` to requests without an X-Fake-Scenario header: the next `times` of them, or all."""
        parse_scenario(scenario)
        with self._lock:
            self._scenario, self._times = scenario, times

    def set_defaults(self, **knobs: int) -> None:
        """Server-wide values for requests without the header: reply_words, cached_tokens, cache_write_tokens,
        reasoning_tokens."""
        unknown = set(knobs) - set(_KNOBS)
        if unknown:
            raise ValueError(f"unknown knobs {sorted(unknown)}; known: {sorted(_KNOBS)}")
        with self._lock:
            self._defaults = dict(knobs)

    def find(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- the process -------------------------------------------------------------------------------------------
    def _config(self, **where: Any) -> uvicorn.Config:
        return uvicorn.Config(self.app, lifespan="off", log_level="warning", access_log=False,
                              timeout_keep_alive=self.keep_alive_s, timeout_graceful_shutdown=1, **where)

    def start(self, port: int = 0) -> "FakeUpstream":
        """Serve on 127.0.0.1 (`port` 0: a free one) in a daemon thread; returns once it accepts connections."""
        _hide_cuts()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name=f"fake-upstream-{self.port}")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeUpstream":
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve(self, host: str = "127.0.0.1", port: int = 8790) -> None:
        """Serve in the foreground until interrupted (the demo's way)."""
        _hide_cuts()
        self.port = port
        uvicorn.Server(self._config(host=host, port=port)).run()

    # -- the endpoints -----------------------------------------------------------------------------------------
    async def _begin(self, request: Request) -> tuple[Recorded, Any]:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = ValueError("not JSON")
        client = f"{request.client.host}:{request.client.port}" if request.client else "?"
        record = Recorded(request.method, request.url.path, {k.lower(): v for k, v in request.headers.items()},
                          None if isinstance(body, ValueError) else body, client)
        with self._lock:
            self.requests.append(record)
        return record, body

    def _switches(self, request: Request) -> Scenario:
        header = request.headers.get("x-fake-scenario")
        if header is not None:
            return parse_scenario(header)
        with self._lock:
            scenario = self._scenario
            if self._times is not None:
                self._times -= 1
                if self._times <= 0:
                    self._scenario, self._times = None, None
        return parse_scenario(scenario)

    def _knobs(self, request: Request) -> dict[str, int]:
        with self._lock:
            knobs = dict(self._defaults)
        for name, header in _KNOBS.items():
            if request.headers.get(header, "").isdigit():
                knobs[name] = int(request.headers[header])
        return knobs

    def _known(self, provider: str, model: Any) -> bool:
        return isinstance(model, str) and any(model == m or model.startswith(m + "-") for m in self.models[provider])

    async def _chat(self, request: Request) -> Response | _Frames:
        record, body = await self._begin(request)
        response = await self._chat_answer(request, record, body)
        record.status = record.status or response.status_code
        return response

    async def _chat_answer(self, request: Request, record: Recorded, body: Any) -> Response | _Frames:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return openai_error(401, "You didn't provide an API key. You need to provide your API key in an "
                                     "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        if auth[7:] != self.openai_key:
            return openai_error(401, f"Incorrect API key provided: {auth[7:11]}****{auth[-4:]}.",
                                code="invalid_api_key")
        if not isinstance(body, dict):
            return openai_error(400, "We could not parse the JSON body of your request. (HINT: This likely means you "
                                     "aren't using your HTTP library correctly.)")
        for name in ("model", "messages"):
            if name not in body:
                return openai_error(400, f"Missing required parameter: '{name}'.", param=name,
                                    code="missing_required_parameter")
        if not isinstance(body["messages"], list) or not body["messages"] or not all(
                isinstance(m, dict) and m.get("role") in ("system", "developer", "user", "assistant", "tool")
                for m in body["messages"]):
            return openai_error(400, "Invalid 'messages': expected a non-empty array of messages with a known role.",
                                param="messages", code="invalid_value")
        if body.get("stream_options") is not None and not body.get("stream"):
            return openai_error(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                                param="stream_options")
        if not self._known("openai", body["model"]):
            return openai_error(404, f"The model `{body['model']}` does not exist or you do not have access to it.",
                                code="model_not_found")
        try:
            sc = self._switches(request)
        except ValueError as exc:
            return openai_error(400, str(exc), param="X-Fake-Scenario")
        fail = sc.fail or ("error_after_first_chunk" if "error_after_first_chunk" in sc.switches
                           and not body.get("stream") else None)
        if fail:
            status, type_, code, message = _OPENAI_FAIL.get(fail, _OPENAI_FAIL["server_error"])
            record.outcome = "error_status"
            return openai_error(status, message, type_, code, headers={"retry-after": "1"} if status == 429 else None)
        reply = plan_reply(openai_ask(body), self._knobs(request), anthropic=False)
        headers = {"x-request-id": "req_" + secrets.token_hex(16), "openai-processing-ms": "1"}
        if not body.get("stream"):
            return await self._whole(openai_completion(reply, body["model"]), reply, sc, record, headers)
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        frames, first, closing = openai_chunks(reply, body["model"], include, sc)
        error = b"data: " + _dumps({"error": {"message": _OPENAI_FAIL["server_error"][3], "type": "server_error",
                                              "param": None, "code": None}}) + b"\n\n"
        return self._stream(frames, first, closing, error, sc, record, headers)

    async def _messages(self, request: Request) -> Response | _Frames:
        record, body = await self._begin(request)
        response = await self._messages_answer(request, record, body)
        record.status = record.status or response.status_code
        return response

    async def _messages_answer(self, request: Request, record: Recorded, body: Any) -> Response | _Frames:
        key = _anthropic_key(request)
        if key is None:
            return anthropic_error(401, "authentication_error", "x-api-key header is required")
        if key != self.anthropic_key:
            return anthropic_error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return anthropic_error(400, "invalid_request_error", "anthropic-version: header is required")
        if not isinstance(body, dict):
            return anthropic_error(400, "invalid_request_error", "There was an error parsing the body of your request.")
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return anthropic_error(400, "invalid_request_error", f"{name}: Field required")
        if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
            return anthropic_error(400, "invalid_request_error",
                                   "max_tokens: Input should be greater than or equal to 1")
        for i, m in enumerate(body["messages"] if isinstance(body["messages"], list) else [None]):
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
                return anthropic_error(400, "invalid_request_error",
                                       f"messages.{i}.role: Input should be 'user' or 'assistant' (a system prompt "
                                       "goes in the top-level `system` parameter)")
        thinking = body.get("thinking") or {}
        if thinking.get("type") == "enabled" and not 1024 <= thinking.get("budget_tokens", 0) < body["max_tokens"]:
            return anthropic_error(400, "invalid_request_error", "thinking.budget_tokens: must be >= 1024 and less "
                                                                  "than max_tokens")
        if not self._known("anthropic", body["model"]):
            return anthropic_error(404, "not_found_error", f"model: {body['model']}")
        try:
            sc = self._switches(request)
        except ValueError as exc:
            return anthropic_error(400, "invalid_request_error", str(exc))
        fail = sc.fail or ("error_after_first_chunk" if "error_after_first_chunk" in sc.switches
                           and not body.get("stream") else None)
        if fail:
            status, type_, message = _ANTHROPIC_FAIL.get(fail, _ANTHROPIC_FAIL["server_error"])
            record.outcome = "error_status"
            return anthropic_error(status, type_, message, headers={"retry-after": "1"} if status == 429 else None)
        reply = plan_reply(anthropic_ask(body), self._knobs(request), anthropic=True)
        headers = {"request-id": "req_" + secrets.token_hex(12)}
        if not body.get("stream"):
            return await self._whole(anthropic_message(reply, body["model"]), reply, sc, record, headers)
        frames, first, closing = anthropic_events(reply, body["model"], sc)
        error = _event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
        return self._stream(frames, first, closing, error, sc, record, headers)

    async def _whole(self, payload: dict, reply: Reply, sc: Scenario, record: Recorded,
                     headers: dict) -> Response | _Frames:
        if sc.slow_ms:
            await asyncio.sleep(sc.slow_ms * reply.output_tokens / 1000)
        data = _dumps(payload)
        if "cut_mid_stream" in sc.switches:
            return _Frames([data[:len(data) // 2]], record, media_type="application/json", headers=headers, cut=True)
        record.outcome = "complete"
        return Response(data, 200, headers=headers, media_type="application/json")

    def _stream(self, frames: list[bytes], first: int, closing: list[bytes], error: bytes, sc: Scenario,
                record: Recorded, headers: dict) -> _Frames:
        media, outcome, cut = "text/event-stream; charset=utf-8", "complete", False
        if "error_after_first_chunk" in sc.switches:
            frames, outcome = frames[:first + 1] + [error], "error_event"
        elif "cut_mid_stream" in sc.switches or "end_mid_stream" in sc.switches:
            frames, cut = frames[:max(first + 1, len(frames) // 2)], "cut_mid_stream" in sc.switches
            outcome = "ended_early"
        else:
            frames = frames + closing
        return _Frames(frames, record, media_type=media, headers=headers, slow_ms=sc.slow_ms, cut=cut,
                       outcome=outcome)

    async def _list_models(self, request: Request) -> Response:
        record, _ = await self._begin(request)
        response = self._models_answer(request)
        record.status, record.outcome = response.status_code, "complete"
        return response

    def _models_answer(self, request: Request) -> Response:
        anthropic = "x-api-key" in request.headers or "anthropic-version" in request.headers
        if anthropic:
            if _anthropic_key(request) != self.anthropic_key:
                return anthropic_error(401, "authentication_error", "invalid x-api-key")
            data = [{"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
                     "created_at": "2025-05-14T00:00:00Z"} for m in self.models["anthropic"]]
            return JSONResponse({"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                                 "last_id": data[-1]["id"] if data else None})
        if request.headers.get("authorization") != f"Bearer {self.openai_key}":
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        return JSONResponse({"object": "list", "data": [{"id": m, "object": "model", "created": 1715367049,
                                                         "owned_by": "system"} for m in self.models["openai"]]})


def _anthropic_key(request: Request) -> str | None:
    """The key of an Anthropic request: `x-api-key` as documented, or `Authorization: Bearer` as the Python SDK
    (2.x) sends an API key."""
    bearer = request.headers.get("authorization", "")
    return request.headers.get("x-api-key") or (bearer[7:] if bearer.startswith("Bearer ") else None)


def _catalog_models() -> dict[str, list[str]]:
    from billing_core.plans import load_catalog  # the shipped price table names the models a test would use

    models: dict[str, list[str]] = {"openai": [], "anthropic": []}
    for price in load_catalog().models.values():
        models.setdefault(price.provider, []).append(price.model)
    return models


def _hide_cuts() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideCuts) for f in logger.filters):
        logger.addFilter(_HideCuts())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI + Anthropic upstream (see the module docstring).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--openai-key", default=OPENAI_KEY)
    parser.add_argument("--anthropic-key", default=ANTHROPIC_KEY)
    parser.add_argument("--keep-alive-s", type=int, default=KEEP_ALIVE_S)
    args = parser.parse_args(argv)
    fake = FakeUpstream(openai_key=args.openai_key, anthropic_key=args.anthropic_key, keep_alive_s=args.keep_alive_s,
                        max_records=1000)
    print(f"fake upstream: OpenAI at http://{args.host}:{args.port}/v1, Anthropic at http://{args.host}:{args.port}",
          flush=True)
    fake.serve(args.host, args.port)


if __name__ == "__main__":
    main()
