"""An OpenAI chat completions request body, translated into an Anthropic Messages request body.

Pure: dicts in, dicts out. What has no Anthropic equivalent is refused with `Untranslatable` (the route answers
400 with its `code` and `param`), never silently dropped when it would change the answer: n > 1, logprobs,
logit_bias, audio, predicted outputs, penalties, temperature above Anthropic's 1.0, json_object mode.
Hints that do not change what is generated are ignored: seed, store, metadata, service_tier, prompt_cache_key,
stream_options (the gateway reads it itself), parallel_tool_calls=true.
System and developer messages become the top-level `system` wherever they stood in the conversation.
`reasoning_effort` turns on extended thinking with a token budget (REASONING_BUDGET_TOKENS, LiteLLM's budgets for
low/medium/high); the budget is part of `max_tokens`, as Anthropic counts it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ServiceError

IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
REASONING_BUDGET_TOKENS = {"low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192, "max": 16384}
_DATA_URL = re.compile(r"data:(?P<media>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)
# Parameters that ask for something Anthropic lacks unless they hold one of these defaults (or are empty).
_REFUSED_UNLESS_DEFAULT = {
    "n": (None, 1), "logprobs": (None, False), "top_logprobs": (None, 0), "logit_bias": (None,),
    "audio": (None,), "modalities": (None, ["text"]), "prediction": (None,), "frequency_penalty": (None, 0),
    "presence_penalty": (None, 0), "functions": (None,), "function_call": (None,), "web_search_options": (None,),
}


class Untranslatable(ServiceError, ValueError):
    """The request asks for something the upstream's format cannot express; `param` names the field."""

    status, code = 400, "unsupported_parameter"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.param = param


def _invalid(message: str, param: str | None = None) -> Untranslatable:
    return Untranslatable(message, param=param, code="invalid_request")


def include_usage_requested(body: Mapping[str, Any]) -> bool:
    """Whether an OpenAI streaming request asked for the final usage chunk (stream_options.include_usage)."""
    options = body.get("stream_options")
    return isinstance(options, Mapping) and options.get("include_usage") is True


def openai_to_anthropic(body: Mapping[str, Any], *, upstream_model: str, default_max_tokens: int) -> dict[str, Any]:
    """The Anthropic Messages body equivalent to an OpenAI chat completions body, or Untranslatable."""
    if not isinstance(body, Mapping):
        raise _invalid("the request body must be a JSON object")
    _refuse_unsupported(body)
    system, messages = _messages(body.get("messages"))
    out: dict[str, Any] = {"model": upstream_model, "max_tokens": _max_tokens(body, default_max_tokens),
                           "messages": messages}
    if system:
        out["system"] = system
    _copy_sampling(body, out)
    tools = _tools(body.get("tools"))
    if tools:
        out["tools"] = tools
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"), has_tools=bool(tools))
    if choice:
        out["tool_choice"] = choice
    if body.get("stream") is True:
        out["stream"] = True
    user = body.get("user") or body.get("safety_identifier")
    if user is not None:
        if not isinstance(user, str):
            raise _invalid("user must be a string", "user")
        out["metadata"] = {"user_id": user}
    _response_format(body.get("response_format"), out)
    _thinking(body.get("reasoning_effort"), out)
    return out


def anthropic_body_for_upstream(body: Mapping[str, Any], *, upstream_model: str) -> dict[str, Any]:
    """An Anthropic Messages body checked for the fields the gateway relies on, with the upstream model name."""
    if not isinstance(body, Mapping):
        raise _invalid("the request body must be a JSON object")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _invalid("max_tokens is required and must be a whole number >= 1", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, Mapping) for m in messages):
        raise _invalid("messages must be a non-empty list of objects", "messages")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise _invalid("stream must be true or false", "stream")
    return {**body, "model": upstream_model}


def _refuse_unsupported(body: Mapping[str, Any]) -> None:
    for name, defaults in _REFUSED_UNLESS_DEFAULT.items():
        value = body.get(name)
        if value not in defaults and value not in ({}, []):
            raise Untranslatable(f"{name}={value!r:.40} is not supported for Anthropic models", param=name)


def _max_tokens(body: Mapping[str, Any], default: int) -> int:
    for name in ("max_completion_tokens", "max_tokens"):  # the newer name wins, as in OpenAI's API
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _invalid(f"{name} must be a whole number >= 1", name)
        return value
    return default


def _copy_sampling(body: Mapping[str, Any], out: dict[str, Any]) -> None:
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
            raise _invalid(f"{name} must be a number between 0 and 2", name)
        if value > 1:
            raise Untranslatable(f"{name} above 1 has no Anthropic equivalent (its range is 0 to 1)", param=name)
        out[name] = value
    stop = body.get("stop")
    if stop is None:
        return
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) and s for s in sequences):
        raise _invalid("stop must be a string or a list of non-empty strings", "stop")
    if any(s.isspace() for s in sequences):
        raise Untranslatable("Anthropic models refuse stop sequences made only of whitespace", param="stop")
    if sequences:
        out["stop_sequences"] = sequences


# --- messages -------------------------------------------------------------------------------------------------

def _messages(raw: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, Anthropic messages) with consecutive turns of one role merged, as Anthropic requires."""
    if not isinstance(raw, list) or not raw:
        raise _invalid("messages must be a non-empty list", "messages")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        if not isinstance(message, Mapping):
            raise _invalid(f"messages[{i}] must be an object", "messages")
        role = message.get("role")
        if role in ("system", "developer"):
            text = _text_only(message.get("content"), f"messages[{i}].content")
            if text:
                system.append({"type": "text", "text": text})
        elif role == "user":
            _append(turns, "user", _user_content(message.get("content"), i))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_content(message, i))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, i)])
        else:  # "function" messages are deprecated (tool messages replace them); any other role is malformed
            raise Untranslatable(f"messages[{i}].role {role!r} is not supported", param="messages",
                                 code=None if role == "function" else "invalid_request")
    if not turns:
        raise _invalid("messages must hold at least one user or assistant message", "messages")
    return system, turns


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return  # Anthropic refuses empty turns; an assistant turn with nothing said adds nothing
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _text_only(content: Any, where: str) -> str:
    """Text of a message whose parts may only be text (system, developer, tool): parts joined by newlines."""
    if content is None or isinstance(content, str):
        return content or ""
    texts = [part.get("text") if isinstance(part, Mapping) and part.get("type") == "text" else None
             for part in content] if isinstance(content, list) else [None]
    if not all(isinstance(text, str) for text in texts):
        raise _invalid(f"{where} must be a string or a list of text parts", where)
    return "\n".join(texts)


def _user_content(content: Any, i: int) -> list[dict[str, Any]]:
    where = f"messages[{i}].content"
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise _invalid(f"{where} must be a string or a list of parts", where)
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url"), where))
        elif kind in ("input_audio", "file"):
            raise Untranslatable(f"{kind} parts are not supported for Anthropic models", param=where)
        else:
            raise _invalid(f"{where} holds a part of unknown type {kind!r}", where)
    return blocks


def _image(image_url: Any, where: str) -> dict[str, Any]:
    url = image_url.get("url") if isinstance(image_url, Mapping) else None
    if not isinstance(url, str) or not url:
        raise _invalid(f"{where}: image_url.url is required", where)
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    match = _DATA_URL.fullmatch(url)
    if not match:
        raise _invalid(f"{where}: an image URL must be http(s) or a base64 data URL", where)
    media = match["media"].lower()
    if media not in IMAGE_MEDIA_TYPES:
        raise Untranslatable(f"{where}: image type {media} is not supported (jpeg, png, gif, webp)", param=where)
    return {"type": "image", "source": {"type": "base64", "media_type": media, "data": match["data"]}}


def _assistant_content(message: Mapping[str, Any], i: int) -> list[dict[str, Any]]:
    where = f"messages[{i}]"
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    if not isinstance(parts, list):
        raise _invalid(f"{where}.content must be a string, a list of parts or null", f"{where}.content")
    for part in parts:  # assistant parts are text or refusal
        kind = part.get("type") if isinstance(part, Mapping) else None
        text = part.get(kind) if kind in ("text", "refusal") else None
        if not isinstance(text, str):
            raise _invalid(f"{where}.content may only hold text and refusal parts", f"{where}.content")
        if text:
            blocks.append({"type": "text", "text": text})
    if message.get("function_call") is not None:
        raise Untranslatable("function_call (deprecated) is not supported; use tool_calls", param=where)
    for j, call in enumerate(message.get("tool_calls") or []):
        blocks.append(_tool_use(call, f"{where}.tool_calls[{j}]"))
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(function, Mapping) or call.get("type", "function") != "function":
        raise Untranslatable(f"{where}: only function tool calls are supported", param=where)
    call_id, name, arguments = call.get("id"), function.get("name"), function.get("arguments")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise _invalid(f"{where} needs an id and a function name", where)
    try:
        parsed = json.loads(arguments or "{}") if isinstance(arguments, str | None) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise _invalid(f"{where}.function.arguments must be a JSON object as a string", where)
    return {"type": "tool_use", "id": call_id, "name": name, "input": parsed}


def _tool_result(message: Mapping[str, Any], i: int) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise _invalid(f"messages[{i}].tool_call_id is required", f"messages[{i}].tool_call_id")
    text = _text_only(message.get("content"), f"messages[{i}].content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if text:
        result["content"] = text
    return result


# --- tools, choices, formats ----------------------------------------------------------------------------------

def _tools(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid("tools must be a list", "tools")
    tools = []
    for j, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or tool.get("type") != "function":
            raise Untranslatable(f"tools[{j}]: only function tools are supported", param="tools")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid(f"tools[{j}].function.name is required", "tools")
        schema = function.get("parameters")
        out: dict[str, Any] = {"name": name}
        if function.get("description") is not None:
            out["description"] = function["description"]
        # OpenAI lets a tool without parameters take none; Anthropic needs the empty object schema said.
        out["input_schema"] = schema if isinstance(schema, Mapping) else {"type": "object", "properties": {}}
        if function.get("strict") is True:
            out["strict"] = True
        tools.append(out)
    return tools


def _tool_choice(raw: Any, parallel: Any, *, has_tools: bool) -> dict[str, Any] | None:
    if raw is None or raw == "auto":
        choice: dict[str, Any] | None = {"type": "auto"} if parallel is False and has_tools else None
    elif raw == "none":
        return {"type": "none"} if has_tools else None
    elif raw == "required":
        choice = {"type": "any"}
    elif isinstance(raw, Mapping) and raw.get("type") == "function" and isinstance(raw.get("function"), Mapping) \
            and isinstance(raw["function"].get("name"), str):
        choice = {"type": "tool", "name": raw["function"]["name"]}
    else:
        raise Untranslatable("tool_choice must be auto, none, required or a named function", param="tool_choice")
    if choice and not has_tools:
        if choice["type"] == "auto":
            return None
        raise _invalid("tool_choice asks for a tool but no tools were given", "tool_choice")
    if choice and parallel is False:
        choice["disable_parallel_tool_use"] = True
    return choice


def _response_format(raw: Any, out: dict[str, Any]) -> None:
    kind = raw.get("type") if isinstance(raw, Mapping) else raw
    if raw is None or kind == "text":
        return
    if kind == "json_schema" and isinstance(raw.get("json_schema"), Mapping) \
            and isinstance(raw["json_schema"].get("schema"), Mapping):
        out["output_config"] = {"format": {"type": "json_schema", "schema": raw["json_schema"]["schema"]}}
        return
    raise Untranslatable("response_format must be text or json_schema with a schema for Anthropic models "
                         "(json_object has no equivalent)", param="response_format")


def _thinking(effort: Any, out: dict[str, Any]) -> None:
    if effort in (None, "none", "minimal"):
        return
    budget = REASONING_BUDGET_TOKENS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        raise _invalid(f"reasoning_effort {effort!r} is not one of {', '.join(REASONING_BUDGET_TOKENS)}",
                       "reasoning_effort")
    if out["max_tokens"] <= budget:
        raise Untranslatable(f"reasoning_effort {effort} needs max_tokens above its thinking budget of {budget}",
                             param="max_tokens")
    # Anthropic refuses these together with extended thinking; saying so here beats an upstream 400 as a 502.
    if out.get("temperature", 1) != 1:
        raise Untranslatable("temperature cannot be combined with reasoning_effort for Anthropic models",
                             param="temperature")
    if out.get("tool_choice", {}).get("type") in ("any", "tool"):
        raise Untranslatable("a required or named tool_choice cannot be combined with reasoning_effort "
                             "for Anthropic models", param="tool_choice")
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
