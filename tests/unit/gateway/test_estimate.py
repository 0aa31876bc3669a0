"""Token bounds for holds (never below the real count) and estimates for a stream cut off without usage."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.gateway import estimate
from billing_core.gateway.estimate import (
    PER_MESSAGE_TOKENS,
    PER_REQUEST_TOKENS,
    TOOLS_TOKENS,
    estimate_output_tokens,
    input_token_upper_bound,
    openai_token_counter,
    output_token_upper_bound,
)
from billing_core.gateway.models import Route, context_tokens, resolve
from billing_core.plans import ModelPrice, load_catalog

from ..builders import FAST

CATALOG = load_catalog()
GPT4O = resolve(CATALOG, "openai/gpt-4o")
SONNET = resolve(CATALOG, "anthropic/claude-sonnet-4")
UNKNOWN = Route("openai", "gpt-9-preview", ModelPrice("openai", "gpt-9-preview", 1, 1))
NEEDLE = "Ünïcödé needle 🌍 " * 40  # 880 bytes of UTF-8 in 680 characters
NEEDLE_BYTES = len(NEEDLE.encode())
BIG_BASE64 = "data:image/png;base64," + "iVBORw0KGgo" * 50_000  # ~550 kB that must not count as text


def one_token_per_byte(body) -> int:
    """The most tokens any byte-level BPE can make of the body's text: one per byte (the unreachable worst)."""
    total = 0
    def walk(value):
        nonlocal total
        if isinstance(value, str):
            total += len(value.encode())
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
    walk(body.get("messages"))
    walk(body.get("system"))
    return total


# Where text can sit in a request: each placement must be counted, or a hold could come out short.
PLACEMENTS = {
    "openai user string": lambda t: {"messages": [{"role": "user", "content": t}]},
    "openai system message": lambda t: {"messages": [{"role": "system", "content": t}]},
    "openai developer parts": lambda t: {"messages": [{"role": "developer", "content": [{"type": "text", "text": t}]}]},
    "openai user text part": lambda t: {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}, {"type": "text", "text": t}]}]},
    "openai tool call arguments": lambda t: {"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "%s"}' % t}}]}]},
    "openai tool result": lambda t: {"messages": [{"role": "tool", "tool_call_id": "call_1", "content": t}]},
    "openai tool definition": lambda t: {"messages": [], "tools": [{"type": "function", "function": {
        "name": "lookup", "description": t, "parameters": {"type": "object", "properties": {}}}}]},
    "openai schema property names": lambda t: {"messages": [], "response_format": {"type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object", "properties": {t: {"type": "string"}}}}}},
    "anthropic system string": lambda t: {"system": t, "messages": []},
    "anthropic system blocks": lambda t: {"system": [{"type": "text", "text": t}], "messages": []},
    "anthropic tool_use input": lambda t: {"messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": t}}]}]},
    "anthropic tool_result blocks": lambda t: {"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": t}]}]}]},
    "anthropic thinking": lambda t: {"messages": [{"role": "assistant", "content": [
        {"type": "thinking", "thinking": t, "signature": "c2ln"}]}]},
    "anthropic text document": lambda t: {"messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": t}}]}]},
    "anthropic tool input_schema": lambda t: {"messages": [], "tools": [
        {"name": "lookup", "description": "d", "input_schema": {"type": "object", "properties": {"q": {
            "type": "string", "description": t}}}}]},
}


@pytest.mark.parametrize("placement", PLACEMENTS, ids=list(PLACEMENTS))
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_text_anywhere_in_the_request_adds_at_least_its_bytes(placement, provider):
    build = PLACEMENTS[placement]
    without = input_token_upper_bound(build(""), provider, model="claude-sonnet-4")
    with_text = input_token_upper_bound(build(NEEDLE), provider, model="claude-sonnet-4")
    assert with_text - without >= NEEDLE_BYTES


texts = st.text(st.characters(codec="utf-8"), max_size=200)
messages = st.lists(st.one_of(
    texts.map(lambda t: {"role": "user", "content": t}),
    texts.map(lambda t: {"role": "assistant", "content": [{"type": "text", "text": t}]}),
    st.tuples(texts, texts).map(lambda p: {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": p[0], "arguments": p[1]}}]}),
), max_size=8)


@FAST
@given(messages=messages, system=st.one_of(st.none(), texts), provider=st.sampled_from(["openai", "anthropic"]))
def test_the_bound_covers_one_token_per_byte_plus_the_template_of_every_message(messages, system, provider):
    body = {"model": "m", "messages": messages, **({"system": system} if system is not None else {})}
    bound = input_token_upper_bound(body, provider, model="gpt-4o")
    assert bound >= min(one_token_per_byte(body) + PER_REQUEST_TOKENS + PER_MESSAGE_TOKENS * len(messages),
                        context_tokens(GPT4O))


def test_an_image_costs_its_fixed_ceiling_not_the_bytes_of_its_data():
    def body(image):
        return {"messages": [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}]}
    openai_image = {"type": "image_url", "image_url": {"url": BIG_BASE64, "detail": "high"}}
    anthropic_image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": BIG_BASE64}}
    base = input_token_upper_bound(body({"type": "text", "text": ""}), "openai", model="gpt-4o")
    assert input_token_upper_bound(body(openai_image), "openai", model="gpt-4o") <= base + 1_445 + 100
    assert input_token_upper_bound(body(openai_image), "openai", model="gpt-4o") >= 1_445
    assert input_token_upper_bound(body(openai_image), "openai", model="gpt-4o-mini") >= 48_169
    assert 5_000 <= input_token_upper_bound(body(anthropic_image), "anthropic", model="claude-sonnet-4") < 6_000


def test_an_image_inside_a_tool_result_is_an_image_too():
    body = {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": BIG_BASE64}}]}]}]}
    assert 5_000 <= input_token_upper_bound(body, "anthropic", model="claude-sonnet-4") < 6_000


@pytest.mark.parametrize("part", [
    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    {"type": "file", "file": {"file_id": "file-abc"}},
])
def test_a_part_whose_tokens_do_not_follow_from_its_bytes_holds_the_whole_context_window(part):
    body = {"messages": [{"role": "user", "content": [part]}]}
    assert input_token_upper_bound(body, "anthropic", model="claude-opus-4") == 200_000
    assert input_token_upper_bound(body, "openai", model="gpt-4o") == 128_000


def test_no_bound_exceeds_the_context_window_since_a_longer_prompt_is_refused_upstream():
    body = {"messages": [{"role": "user", "content": "x" * 300_000}]}
    assert input_token_upper_bound(body, "openai", model="gpt-4o") == 128_000


def test_deeply_nested_json_is_bounded_without_exhausting_the_stack():
    nested: object = "leaf"
    for _ in range(5_000):
        nested = {"k": [nested]}
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "response_format": nested}
    assert input_token_upper_bound(body, "openai", model="gpt-4o") >= 5_000


def test_tools_add_the_hidden_tool_prompt():
    plain = {"messages": [{"role": "user", "content": "hi"}]}
    tools = {**plain, "tools": [{"name": "a", "input_schema": {"type": "object"}}]}
    assert input_token_upper_bound(tools, "anthropic") - input_token_upper_bound(plain, "anthropic") > TOOLS_TOKENS


def test_settings_that_are_not_prompt_are_not_counted():
    plain = {"messages": [{"role": "user", "content": "hi"}]}
    tuned = {**plain, "model": "x" * 500, "metadata": {"user_id": "u" * 500}, "stop": ["s" * 500],
             "temperature": 0.5, "max_tokens": 10, "stream": True, "stream_options": {"include_usage": True}}
    assert input_token_upper_bound(tuned, "openai") == input_token_upper_bound(plain, "openai")


def test_a_tokenizer_makes_the_bound_tighter_with_its_margin_and_never_looser():
    body = {"messages": [{"role": "user", "content": "word " * 1_000}]}
    by_bytes = input_token_upper_bound(body, "openai", model="gpt-4o")
    tight = input_token_upper_bound(body, "openai", model="gpt-4o", count_text=lambda s: (len(s) + 4) // 5)
    assert tight < by_bytes
    assert tight >= 1_000 * 1.10  # the tokenizer's 1,000 plus the 10 % margin
    assert input_token_upper_bound(body, "openai", model="gpt-4o", count_text=lambda s: 10 * len(s)) == by_bytes


def test_a_tokenizer_that_fails_falls_back_to_the_byte_bound():
    def broken(text):
        raise UnicodeEncodeError("utf-8", text, 0, 1, "surrogates not allowed")
    body = {"messages": [{"role": "user", "content": "hello \ud800"}]}
    assert input_token_upper_bound(body, "openai", count_text=broken) == input_token_upper_bound(body, "openai")


@pytest.mark.parametrize(("body", "route", "expected"), [
    ({"max_tokens": 1_000}, SONNET, 1_000),
    ({"max_completion_tokens": 700, "max_tokens": 900}, GPT4O, 900),  # both given: the larger, to be safe
    ({"max_tokens": 1_000_000}, GPT4O, 16_384),  # capped at the documented limit
    ({}, GPT4O, 16_384),  # absent: the model's limit
    ({}, SONNET, 64_000),
    ({"max_tokens": 100, "n": 3}, GPT4O, 300),  # every choice is billed
    ({"max_tokens": True, "n": "2"}, GPT4O, 16_384),  # invalid values fall back to the limit
    ({"max_tokens": -5}, SONNET, 64_000),
    ({"max_tokens": 500_000}, UNKNOWN, 500_000),  # an unknown model's real limit may be larger: trust the ask
    ({}, UNKNOWN, 128_000),
])
def test_the_output_bound_is_the_requested_maximum_within_the_model_limit_times_n(body, route, expected):
    assert output_token_upper_bound(body, route) == expected


@pytest.mark.parametrize(("text", "tokens"), [
    ("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("hello world!", 3), ("日本語", 3), ("ok 🌍", 3), ("🚀🚀", 4),
])
def test_an_output_estimate_is_four_ascii_characters_a_token_one_for_others_two_for_emoji(text, tokens):
    assert estimate_output_tokens(text) == tokens


def test_an_output_estimate_uses_the_tokenizer_when_given():
    assert estimate_output_tokens("a b c", count_text=lambda s: 42) == 42
    assert estimate_output_tokens("", count_text=lambda s: 42) == 0


@FAST
@given(texts, texts)
def test_an_output_estimate_grows_with_the_text(a, b):
    assert estimate_output_tokens(a + b) >= max(estimate_output_tokens(a), estimate_output_tokens(b))


def test_without_tiktoken_there_is_no_counter(monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # makes `import tiktoken` raise ImportError
    openai_token_counter.cache_clear()
    try:
        assert openai_token_counter("gpt-4o") is None
    finally:
        openai_token_counter.cache_clear()


def test_the_module_imports_tiktoken_only_inside_the_counter():
    import ast
    tree = ast.parse(open(estimate.__file__, encoding="utf-8").read())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = {alias.name for node in top_level for alias in node.names} | \
            {node.module for node in top_level if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(name.startswith("tiktoken") for name in names)
