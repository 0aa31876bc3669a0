"""OpenAI's chat completions and Anthropic's messages formats as the fake upstream speaks them: reading a request into
an `Ask`, checking it with each provider's documented errors, and writing a `Reply` as a whole body or as SSE frames.

OpenAI: `Authorization: Bearer <key>`; a reply with tool calls has `content: null`; streams send one word per chunk,
tool call arguments in pieces, and the usage on a final `choices: []` chunk when `stream_options.include_usage`
asks; an in-stream error is a `data: {"error": ...}` frame. Finish reasons: `stop`, `length`, `tool_calls`.
Anthropic: `x-api-key: <key>` or, as the anthropic SDK 2.x sends it, `Authorization: Bearer <key>`, and
`anthropic-version`; the echoed text comes before the `tool_use` blocks (a thinking block first when thinking is
enabled); `message_start` reports `output_tokens: 1` and `message_delta` the cumulative total, as Anthropic does;
a `ping` follows the first `content_block_start`; an in-stream error is `event: error`. Stop reasons: `end_turn`,
`max_tokens`, `tool_use`. Errors before any byte come in each provider's error shape, 429 with `retry-after`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.responses import JSONResponse

from portal.gateway.fake_reply import Ask, Reply, compact_json, split_pieces

FINGERPRINT = "fp_fake0000"
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


def anthropic_request_key(headers: Mapping[str, str]) -> str | None:
    """The key of an Anthropic request: `x-api-key` as documented, or `Authorization: Bearer` as the Python SDK
    (2.x) sends an API key."""
    bearer = headers.get("authorization", "")
    return headers.get("x-api-key") or (bearer[7:] if bearer.startswith("Bearer ") else None)


# ---- refusing a request as each provider does ------------------------------------------------------------------

def openai_refusal(headers: Mapping[str, str], body: Any, key: str,
                   known: Callable[[Any], bool]) -> JSONResponse | None:
    """OpenAI's error for a request with a missing or wrong key, a bad body or an unknown model; None when it is
    fine."""
    auth = headers.get("authorization", "")
    if not auth.startswith("Bearer "):
        return openai_error(401, "You didn't provide an API key. You need to provide your API key in an "
                                 "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
    if auth[7:] != key:
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
    if not known(body["model"]):
        return openai_error(404, f"The model `{body['model']}` does not exist or you do not have access to it.",
                            code="model_not_found")
    return None


def anthropic_refusal(headers: Mapping[str, str], body: Any, key: str,
                      known: Callable[[Any], bool]) -> JSONResponse | None:
    """Anthropic's error for a request with a missing or wrong key or version, a bad body or an unknown model; None
    when it is fine."""
    sent = anthropic_request_key(headers)
    if sent is None:
        return anthropic_error(401, "authentication_error", "x-api-key header is required")
    if sent != key:
        return anthropic_error(401, "authentication_error", "invalid x-api-key")
    if not headers.get("anthropic-version"):
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
    if not known(body["model"]):
        return anthropic_error(404, "not_found_error", f"model: {body['model']}")
    return None


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


def openai_chunks(r: Reply, model: str, include_usage: bool,
                  switches: frozenset[str]) -> tuple[list[bytes], int, list[bytes]]:
    """The SSE frames of a streamed completion as the X-Fake-Scenario `switches` shape them, the index of the first
    content frame, and the closing frames."""
    base = {"id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "service_tier": "default", "system_fingerprint": FINGERPRINT}
    running = "cumulative_usage" in switches
    asked = include_usage and "no_usage" not in switches
    frames, done = [], r.reasoning_tokens

    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> None:
        body = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if usage is not None or asked or running:
            body["usage"] = usage if usage is not None else openai_usage(r, done) if running else None
        frames.append(b"data: " + compact_json(body) + b"\n\n")

    chunk({"role": "assistant", "content": None if r.tool_calls else "", "refusal": None})
    for i, word in enumerate(r.words):
        done += 1
        chunk({"content": word if i == 0 else " " + word})
    for i, call in enumerate(r.tool_calls):
        chunk({"tool_calls": [{"index": i, "id": call.id, "type": "function",
                               "function": {"name": call.name, "arguments": ""}}]})
        for piece in split_pieces(call.arguments):
            chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
        done += call.tokens
    on_finish = "usage_with_choices" in switches
    chunk({}, _openai_finish(r), openai_usage(r) if on_finish else None)
    closing = []
    if asked and not on_finish:
        closing.append(b"data: " + compact_json({**base, "choices": [], "usage": openai_usage(r)}) + b"\n\n")
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
    return f"event: {name}\ndata: ".encode() + compact_json({"type": name, **data}) + b"\n\n"


def anthropic_events(r: Reply, model: str, switches: frozenset[str]) -> tuple[list[bytes], int, list[bytes]]:
    """The SSE events of a streamed message as the X-Fake-Scenario `switches` shape them, the index of the first
    content delta, and the closing events."""
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
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *split_pieces(call.arguments)]]
            done += call.tokens
        first = first or len(frames)
        frames += [_event("content_block_delta", {"index": i, "delta": d}) for d in deltas]
        frames.append(_event("content_block_stop", {"index": i}))
        if i == 0 and "cumulative_usage" in switches:
            frames.append(_event("message_delta", {"delta": {"stop_reason": None, "stop_sequence": None},
                                                   "usage": {"output_tokens": done}}))
    final = _event("message_delta", {"delta": {"stop_reason": _anthropic_stop(r), "stop_sequence": None},
                                     "usage": {"output_tokens": r.output_tokens}})
    return frames, first or 1, [final, _event("message_stop", {})]


# ---- errors and model lists ------------------------------------------------------------------------------------

def openai_error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}}, status,
                        headers={"x-request-id": "req_" + secrets.token_hex(16), **(headers or {})})


def anthropic_error(status: int, type_: str, message: str, headers: dict | None = None) -> JSONResponse:
    request_id = "req_" + secrets.token_hex(12)
    return JSONResponse({"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id},
                        status, headers={"request-id": request_id, **(headers or {})})


def openai_failure(fail: str) -> JSONResponse:
    """OpenAI's answer, before any byte, for a failing switch: rate_limit, server_error or overloaded."""
    status, type_, code, message = _OPENAI_FAIL.get(fail, _OPENAI_FAIL["server_error"])
    return openai_error(status, message, type_, code, headers={"retry-after": "1"} if status == 429 else None)


def anthropic_failure(fail: str) -> JSONResponse:
    """Anthropic's answer, before any byte, for a failing switch: rate_limit, server_error or overloaded."""
    status, type_, message = _ANTHROPIC_FAIL.get(fail, _ANTHROPIC_FAIL["server_error"])
    return anthropic_error(status, type_, message, headers={"retry-after": "1"} if status == 429 else None)


def openai_stream_error() -> bytes:
    """The frame OpenAI sends when a stream fails after its first chunk."""
    return b"data: " + compact_json({"error": {"message": _OPENAI_FAIL["server_error"][3], "type": "server_error",
                                               "param": None, "code": None}}) + b"\n\n"


def anthropic_stream_error() -> bytes:
    """The event Anthropic sends when a stream fails after its first content."""
    return _event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})


def openai_models(models: list[str]) -> dict:
    """OpenAI's GET /v1/models body for `models`."""
    return {"object": "list", "data": [{"id": m, "object": "model", "created": 1715367049, "owned_by": "system"}
                                       for m in models]}


def anthropic_models(models: list[str]) -> dict:
    """Anthropic's GET /v1/models body (one page holding all) for `models`."""
    data = [{"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
             "created_at": "2025-05-14T00:00:00Z"} for m in models]
    return {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}
