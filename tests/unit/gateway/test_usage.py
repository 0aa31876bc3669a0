"""Usage read from OpenAI's and Anthropic's usage objects, counted one way for billing, written in OpenAI's."""

from __future__ import annotations

import dataclasses

import pytest

from billing_core.gateway.usage import Usage

# Shapes as OpenAI's CompletionUsage (openai-python src/openai/types/completion_usage.py) and Anthropic's Usage
# (anthropic-sdk-python src/anthropic/types/usage.py) define them.
OPENAI_USAGE = {
    "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                  "rejected_prediction_tokens": 0},
}
ANTHROPIC_USAGE = {
    "input_tokens": 21, "cache_creation_input_tokens": 188086, "cache_read_input_tokens": 0, "output_tokens": 393,
    "cache_creation": {"ephemeral_5m_input_tokens": 188086, "ephemeral_1h_input_tokens": 0},
    "server_tool_use": None, "service_tier": "standard",
}


def test_openai_prompt_tokens_already_include_the_cached_ones():
    usage = Usage.from_openai(OPENAI_USAGE)
    assert usage == Usage(input_tokens=2006, output_tokens=300, cached_input_tokens=1920, cache_creation_tokens=0,
                          reasoning_tokens=192)
    assert usage.uncached_input_tokens == 86
    assert usage.total_tokens == 2306


def test_anthropic_billable_input_adds_cache_writes_and_reads_to_input_tokens():
    usage = Usage.from_anthropic(ANTHROPIC_USAGE)
    assert usage.input_tokens == 21 + 188086 + 0
    assert usage.cache_creation_tokens == 188086
    assert usage.cached_input_tokens == 0
    assert usage.uncached_input_tokens == 21
    assert usage.output_tokens == 393


def test_anthropic_cache_reads_count_as_input_and_as_cached():
    usage = Usage.from_anthropic({"input_tokens": 50, "cache_read_input_tokens": 1000, "output_tokens": 7})
    assert (usage.input_tokens, usage.cached_input_tokens, usage.cache_creation_tokens) == (1050, 1000, 0)


def test_anthropic_thinking_tokens_are_the_reasoning_part_of_the_output():
    usage = Usage.from_anthropic({"input_tokens": 10, "output_tokens": 500,
                                  "output_tokens_details": {"thinking_tokens": 420}})
    assert (usage.output_tokens, usage.reasoning_tokens) == (500, 420)


def test_missing_and_null_details_read_as_zero():
    usage = Usage.from_openai({"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21,
                               "prompt_tokens_details": None, "completion_tokens_details": None})
    assert usage == Usage(9, 12)
    assert Usage.from_anthropic({"input_tokens": 3, "output_tokens": 1, "cache_read_input_tokens": None}) \
        == Usage(3, 1)


@pytest.mark.parametrize("bad", [-1, 1.5, "12", True])
def test_a_garbled_count_is_refused_rather_than_billed(bad):
    with pytest.raises(ValueError, match="prompt_tokens"):
        Usage.from_openai({"prompt_tokens": bad, "completion_tokens": 1})
    with pytest.raises(ValueError, match="output_tokens"):
        Usage.from_anthropic({"input_tokens": 1, "output_tokens": bad})


def test_a_breakdown_larger_than_its_total_is_trimmed_to_the_billed_total():
    usage = Usage.from_openai({"prompt_tokens": 10, "completion_tokens": 5,
                               "prompt_tokens_details": {"cached_tokens": 15},
                               "completion_tokens_details": {"reasoning_tokens": 9}})
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_tokens) \
        == (10, 10, 5, 5)


def test_a_usage_built_by_hand_must_be_consistent():
    with pytest.raises(ValueError):
        Usage(input_tokens=5, cached_input_tokens=6)
    with pytest.raises(ValueError):
        Usage(output_tokens=1, reasoning_tokens=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Usage(1, 1).input_tokens = 2  # type: ignore[misc]


def test_to_openai_writes_the_details_and_the_cost():
    usage = Usage.from_anthropic({"input_tokens": 100, "cache_read_input_tokens": 900,
                                  "cache_creation_input_tokens": 24, "output_tokens": 50,
                                  "output_tokens_details": {"thinking_tokens": 30}})
    assert usage.to_openai(1234) == {
        "prompt_tokens": 1024, "completion_tokens": 50, "total_tokens": 1074,
        "prompt_tokens_details": {"cached_tokens": 900, "cache_write_tokens": 24},
        "completion_tokens_details": {"reasoning_tokens": 30},
        "cost_micros": 1234,
    }
    assert "cost_micros" not in usage.to_openai(None)


def test_openai_usage_survives_a_round_trip():
    usage = Usage(input_tokens=1000, output_tokens=80, cached_input_tokens=600, cache_creation_tokens=100,
                  reasoning_tokens=40)
    assert Usage.from_openai(usage.to_openai(5)) == usage
