"""OpenAI chat completions request bodies translated into Anthropic Messages bodies, or refused."""

from __future__ import annotations

import pytest

from billing_core.errors import ServiceError
from billing_core.gateway.translate_request import (
    Untranslatable,
    anthropic_body_for_upstream,
    include_usage_requested,
    openai_to_anthropic,
)

MODEL = "claude-sonnet-4-20250514"
PNG_DATA = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


def translate(body, default_max_tokens=4096):
    return openai_to_anthropic(body, upstream_model=MODEL, default_max_tokens=default_max_tokens)


def user(text):
    return {"role": "user", "content": text}


def test_a_plain_request_becomes_a_messages_request_with_the_default_max_tokens():
    assert translate({"model": "anthropic/claude-sonnet-4", "messages": [user("Hello")]}) == {
        "model": MODEL, "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
    }


def test_system_and_developer_messages_become_the_top_level_system():
    out = translate({"messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        user("Hi"),
    ]})
    assert out["system"] == [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in French."}]
    assert [m["role"] for m in out["messages"]] == ["user"]


def test_user_content_parts_with_a_data_url_image_become_an_anthropic_image_block():
    out = translate({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_DATA}", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpeg"}},
    ]}]})
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_DATA}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpeg"}},
    ]


def test_an_image_type_anthropic_does_not_read_is_refused():
    with pytest.raises(Untranslatable, match="image/bmp"):
        translate({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}]})


def test_assistant_tool_calls_and_tool_results_round_trip_into_tool_use_and_one_user_turn():
    out = translate({"messages": [
        user("Weather in Paris and Lyon?"),
        {"role": "assistant", "content": "Checking both.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                               "arguments": "{\"location\": \"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather",
                                                               "arguments": "{\"location\": \"Lyon\"}"}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "12C, rain"}]},
    ], "tools": [WEATHER_TOOL]})
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Lyon?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking both."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"location": "Lyon"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C and sunny"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "12C, rain"},
        ]},
    ]


def test_a_user_message_after_tool_results_joins_their_turn_after_them():
    out = translate({"messages": [
        user("go"),
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "call_9", "content": "ok"},
        user("and now?"),
    ], "tools": [WEATHER_TOOL]})
    assert out["messages"][1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {}}]}
    assert out["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "call_9", "content": "ok"},
                                             {"type": "text", "text": "and now?"}]
    assert len(out["messages"]) == 3


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_tool_call_arguments_that_are_not_a_json_object_are_refused(arguments):
    with pytest.raises(Untranslatable, match="arguments"):
        translate({"messages": [user("x"), {"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]}]})


def test_tools_become_name_description_and_input_schema():
    bare = {"type": "function", "function": {"name": "now"}}
    out = translate({"messages": [user("x")], "tools": [WEATHER_TOOL, bare]})
    assert out["tools"] == [
        {"name": "get_weather", "description": "Get the current weather in a given location",
         "input_schema": WEATHER_TOOL["function"]["parameters"]},
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", None),
    ("none", {"type": "none"}),
    ("required", {"type": "any"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
])
def test_tool_choice_maps_onto_anthropics(choice, expected):
    out = translate({"messages": [user("x")], "tools": [WEATHER_TOOL], "tool_choice": choice})
    assert out.get("tool_choice") == expected


def test_parallel_tool_calls_false_disables_parallel_tool_use():
    out = translate({"messages": [user("x")], "tools": [WEATHER_TOOL], "parallel_tool_calls": False})
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    out = translate({"messages": [user("x")], "tools": [WEATHER_TOOL], "parallel_tool_calls": False,
                     "tool_choice": "required"})
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_a_required_tool_without_tools_is_refused():
    with pytest.raises(Untranslatable, match="no tools"):
        translate({"messages": [user("x")], "tool_choice": "required"})


def test_max_completion_tokens_wins_over_max_tokens():
    assert translate({"messages": [user("x")], "max_tokens": 100})["max_tokens"] == 100
    assert translate({"messages": [user("x")], "max_tokens": 100, "max_completion_tokens": 50})["max_tokens"] == 50


def test_sampling_stop_stream_and_user_are_carried_over():
    out = translate({"messages": [user("x")], "temperature": 0.2, "top_p": 0.9, "stop": "END", "stream": True,
                     "stream_options": {"include_usage": True}, "user": "user-42", "seed": 7})
    assert {k: out[k] for k in ("temperature", "top_p", "stop_sequences", "stream", "metadata")} == {
        "temperature": 0.2, "top_p": 0.9, "stop_sequences": ["END"], "stream": True,
        "metadata": {"user_id": "user-42"}}
    assert "seed" not in out and "stream_options" not in out
    assert translate({"messages": [user("x")], "stop": ["a", "b"]})["stop_sequences"] == ["a", "b"]


@pytest.mark.parametrize(("field", "value"), [
    ("n", 2), ("logprobs", True), ("top_logprobs", 3), ("logit_bias", {"50256": -100}),
    ("presence_penalty", 0.5), ("frequency_penalty", 1), ("modalities", ["text", "audio"]),
    ("temperature", 1.5), ("response_format", {"type": "json_object"}),
    ("functions", [{"name": "f"}]), ("stop", "  "),
])
def test_what_anthropic_cannot_express_is_refused_with_the_field_named(field, value):
    with pytest.raises(Untranslatable) as caught:
        translate({"messages": [user("x")], field: value})
    assert caught.value.param == field
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, ServiceError)
    assert caught.value.status == 400 and caught.value.code == "unsupported_parameter"


@pytest.mark.parametrize(("field", "value"), [("n", 1), ("logprobs", False), ("presence_penalty", 0),
                                              ("logit_bias", {}), ("modalities", ["text"])])
def test_defaults_of_unsupported_fields_are_accepted(field, value):
    assert translate({"messages": [user("x")], field: value})["messages"]


@pytest.mark.parametrize("body", [
    {}, {"messages": []}, {"messages": [{"role": "wizard", "content": "x"}]},
    {"messages": [user("x")], "max_tokens": 0}, {"messages": [{"role": "system", "content": "only"}]},
    {"messages": [{"role": "tool", "content": "no id"}]},
])
def test_malformed_bodies_are_refused_as_invalid(body):
    with pytest.raises(Untranslatable) as caught:
        translate(body)
    assert caught.value.code == "invalid_request"


def test_json_schema_response_format_becomes_anthropics_output_format():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    out = translate({"messages": [user("x")], "response_format": {
        "type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}})
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_reasoning_effort_turns_on_thinking_within_max_tokens():
    out = translate({"messages": [user("x")], "reasoning_effort": "low", "max_completion_tokens": 4000})
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert "thinking" not in translate({"messages": [user("x")], "reasoning_effort": "minimal"})
    with pytest.raises(Untranslatable, match="thinking budget"):
        translate({"messages": [user("x")], "reasoning_effort": "high", "max_tokens": 1000})
    with pytest.raises(Untranslatable, match="temperature"):
        translate({"messages": [user("x")], "reasoning_effort": "low", "temperature": 0.3})


def test_include_usage_is_read_from_stream_options():
    assert include_usage_requested({"stream": True, "stream_options": {"include_usage": True}})
    assert not include_usage_requested({"stream": True})
    assert not include_usage_requested({"stream_options": {"include_usage": "yes"}})


def test_an_anthropic_body_passes_through_with_the_upstream_model():
    body = {"model": "anthropic/claude-sonnet-4", "max_tokens": 256, "messages": [user("Hi")], "stream": True}
    assert anthropic_body_for_upstream(body, upstream_model=MODEL) == {**body, "model": MODEL}
    assert body["model"] == "anthropic/claude-sonnet-4"  # the caller's dict is not changed


@pytest.mark.parametrize("body", [{"messages": [user("x")]}, {"max_tokens": 5, "messages": []},
                                  {"max_tokens": True, "messages": [user("x")]},
                                  {"max_tokens": 5, "messages": [user("x")], "stream": "yes"}])
def test_an_anthropic_body_without_what_the_gateway_needs_is_refused(body):
    with pytest.raises(ValueError):
        anthropic_body_for_upstream(body, upstream_model=MODEL)


def test_the_callers_body_is_never_changed():
    messages = [user("x"), {"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]
    body = {"messages": messages, "tools": [WEATHER_TOOL]}
    snapshot = repr(body)
    out = translate(body)
    assert repr(body) == snapshot
    assert out["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": "a"},
                                                                   {"type": "text", "text": "b"}]}


@pytest.mark.parametrize(("message", "code"), [
    ({"role": "function", "name": "f", "content": "42"}, "unsupported_parameter"),
    ({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}]},
     "unsupported_parameter"),
    ({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
     "invalid_request"),
    ({"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "f", "input": "x"}}]},
     "unsupported_parameter"),
    ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]},
     "invalid_request"),
])
def test_message_shapes_without_an_anthropic_form_are_refused(message, code):
    with pytest.raises(Untranslatable) as caught:
        translate({"messages": [user("first"), message]})
    assert caught.value.code == code


def test_a_custom_tool_is_refused():
    with pytest.raises(Untranslatable, match="only function tools"):
        translate({"messages": [user("x")], "tools": [{"type": "custom", "custom": {"name": "grammar"}}]})
