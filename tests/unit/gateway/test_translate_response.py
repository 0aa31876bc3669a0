"""Anthropic Messages responses translated into OpenAI chat completions."""

from __future__ import annotations

import json

import pytest

from billing_core.gateway.translate_response import anthropic_to_openai, finish_reason, openai_usage_with_cost
from billing_core.gateway.usage import Usage

IDS = {"request_id": "chatcmpl-req_01", "model": "anthropic/claude-sonnet-4", "created": 1_760_000_000}


def message(content, stop_reason="end_turn", usage=None):
    """An Anthropic Message as anthropic-sdk-python's types/message.py describes it."""
    return {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "content": content,
            "model": "claude-sonnet-4-20250514", "stop_reason": stop_reason, "stop_sequence": None,
            "usage": usage or {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                               "output_tokens": 6, "service_tier": "standard"}}


def test_text_blocks_are_joined_into_the_content():
    out = anthropic_to_openai(message([{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}]),
                              **IDS)
    assert out == {
        "id": "chatcmpl-req_01", "object": "chat.completion", "created": 1_760_000_000,
        "model": "anthropic/claude-sonnet-4",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world", "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18,
                  "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}},
    }


def test_tool_use_blocks_become_tool_calls_with_json_arguments():
    out = anthropic_to_openai(message([
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
         "input": {"location": "San Francisco, CA", "unit": "celsius"}, "caller": {"type": "direct"}},
    ], stop_reason="tool_use"), **IDS)
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    (call,) = choice["message"]["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9" and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "San Francisco, CA", "unit": "celsius"}


def test_only_tool_calls_leave_the_content_null():
    out = anthropic_to_openai(message([{"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}],
                                      stop_reason="tool_use"), **IDS)
    assert out["choices"][0]["message"]["content"] is None
    assert out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == "{}"


def test_thinking_goes_to_reasoning_content_and_redacted_thinking_is_dropped():
    out = anthropic_to_openai(message([
        {"type": "thinking", "thinking": "The user wants a number.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
        {"type": "text", "text": "42"},
    ]), **IDS)
    reply = out["choices"][0]["message"]
    assert reply["content"] == "42"
    assert reply["reasoning_content"] == "The user wants a number."
    assert "reasoning_content" not in anthropic_to_openai(message([{"type": "text", "text": "x"}]), **IDS)[
        "choices"][0]["message"]


@pytest.mark.parametrize(("stop_reason", "expected"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls"),
    ("refusal", "content_filter"), ("pause_turn", "stop"), ("model_context_window_exceeded", "length"),
    (None, "stop"), ("something_new", "stop"),
])
def test_stop_reasons_map_to_finish_reasons(stop_reason, expected):
    assert finish_reason(stop_reason) == expected
    assert anthropic_to_openai(message([], stop_reason=stop_reason), **IDS)["choices"][0]["finish_reason"] == expected


def test_an_empty_answer_is_an_empty_string_not_null():
    assert anthropic_to_openai(message([]), **IDS)["choices"][0]["message"]["content"] == ""


def test_usage_counts_cache_reads_and_writes_as_input_and_carries_the_cost():
    seen = []

    def cost_of(usage):
        seen.append(usage)
        return 777

    out = anthropic_to_openai(message([{"type": "text", "text": "hi"}], usage={
        "input_tokens": 5, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000, "output_tokens": 9,
        "output_tokens_details": {"thinking_tokens": 4}}), **IDS, cost_of=cost_of)
    assert out["usage"] == {"prompt_tokens": 2105, "completion_tokens": 9, "total_tokens": 2114,
                            "prompt_tokens_details": {"cached_tokens": 2000, "cache_write_tokens": 100},
                            "completion_tokens_details": {"reasoning_tokens": 4}, "cost_micros": 777}
    assert seen == [Usage(2105, 9, 2000, 100, 4)]


def test_an_openai_completion_gains_cost_micros_beside_its_usage():
    completion = {"id": "chatcmpl-abc", "object": "chat.completion", "choices": [],
                  "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13,
                            "prompt_tokens_details": {"cached_tokens": 0}}}
    usage = openai_usage_with_cost(completion, lambda u: u.input_tokens * 2 + u.output_tokens)
    assert usage == Usage(10, 3)
    assert completion["usage"]["cost_micros"] == 23
    assert completion["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    assert openai_usage_with_cost({"choices": []}, lambda u: 1) is None


def test_the_official_sdk_types_accept_the_translation():
    chat = pytest.importorskip("openai.types.chat")
    out = anthropic_to_openai(message([{"type": "text", "text": "a"},
                                       {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}}],
                                      stop_reason="tool_use"), **IDS, cost_of=lambda u: 1)
    parsed = chat.ChatCompletion.model_validate(out)
    assert parsed.choices[0].message.tool_calls[0].function.arguments == '{"x": 1}'
    assert parsed.usage.prompt_tokens_details.cached_tokens == 0


def test_the_anthropic_messages_used_here_are_what_the_official_sdk_parses():
    types = pytest.importorskip("anthropic.types")
    parsed = types.Message.model_validate(message([
        {"type": "thinking", "thinking": "t", "signature": "s"}, {"type": "text", "text": "x"},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}], stop_reason="tool_use"))
    assert parsed.usage.cache_read_input_tokens == 0 and parsed.stop_reason == "tool_use"
