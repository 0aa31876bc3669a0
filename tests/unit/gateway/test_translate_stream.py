"""Anthropic stream events translated into OpenAI chunks, and OpenAI chunks metered as they pass through."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.gateway.translate_stream import AnthropicToOpenAIStream, OpenAIStreamMeter, error_chunk
from billing_core.gateway.usage import Usage
from ..builders import FAST

IDS = {"request_id": "chatcmpl-req_7", "model": "anthropic/claude-sonnet-4", "created": 1_760_000_000}


def message_start(input_tokens=10, output_tokens=1, **usage):
    return ("message_start", {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens, **usage}}})


def text_delta(text, index=0):
    return ("content_block_delta", {"type": "content_block_delta", "index": index,
                                    "delta": {"type": "text_delta", "text": text}})


def message_delta(output_tokens, stop_reason="end_turn", **usage):
    return ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                              "usage": {"output_tokens": output_tokens, **usage}})


STOP = ("message_stop", {"type": "message_stop"})
TEXT_START = ("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})


def block_start(index, block):
    return ("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


def json_delta(index, partial_json):
    return ("content_block_delta", {"type": "content_block_delta", "index": index,
                                    "delta": {"type": "input_json_delta", "partial_json": partial_json}})


def block_stop(index):
    return ("content_block_stop", {"type": "content_block_stop", "index": index})


# The event sequence of a streamed tool call, in the shape of Anthropic's streaming docs and
# anthropic-sdk-python's stream fixtures (tests/lib/streaming/fixtures/tool_use_response.txt).
TOOL_STREAM = [
    message_start(input_tokens=412, cache_creation_input_tokens=0, cache_read_input_tokens=1024,
                  service_tier="standard"),
    TEXT_START,
    ("ping", {"type": "ping"}),
    text_delta("Let me look"),
    text_delta(" that up."),
    block_stop(0),
    block_start(1, {"type": "tool_use", "id": "toolu_01Weather", "name": "get_weather", "caller": {"type": "direct"},
                    "input": {}}),
    json_delta(1, ""),
    json_delta(1, '{"city": "Os'),
    json_delta(1, 'lo", "unit":'),
    json_delta(1, ' "celsius"}'),
    block_stop(1),
    block_start(2, {"type": "tool_use", "id": "toolu_02Time", "name": "get_time", "input": {}}),
    json_delta(2, "{}"),
    block_stop(2),
    message_delta(88, stop_reason="tool_use"),
    STOP,
]


def run(events, include_usage=False, **kwargs):
    stream = AnthropicToOpenAIStream(IDS["request_id"], IDS["model"], IDS["created"], include_usage, **kwargs)
    chunks = [chunk for event_type, data in events for chunk in stream.feed(event_type, data)]
    return stream, chunks


def reassemble(chunks):
    """What an OpenAI client builds from the chunks: content, tool calls by index, finish reason, usage."""
    content, calls, finish, usage = "", {}, None, None
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert (chunk["id"], chunk["model"], chunk["created"]) == (IDS["request_id"], IDS["model"], IDS["created"])
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] = call.get("function", {}).get("name") or slot["name"]
                slot["arguments"] += call.get("function", {}).get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return content, [calls[i] for i in sorted(calls)], finish, usage


def test_a_streamed_tool_call_reassembles_into_the_same_calls():
    stream, chunks = run(TOOL_STREAM, include_usage=True, cost_of=lambda usage: 4321)
    content, calls, finish, usage = reassemble(chunks)
    assert content == "Let me look that up."
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("toolu_01Weather", "get_weather", {"city": "Oslo", "unit": "celsius"}),
        ("toolu_02Time", "get_time", {}),
    ]
    assert finish == "tool_calls"
    assert usage == {"prompt_tokens": 1436, "completion_tokens": 88, "total_tokens": 1524,
                     "prompt_tokens_details": {"cached_tokens": 1024},
                     "completion_tokens_details": {"reasoning_tokens": 0}, "cost_micros": 4321}
    assert stream.finished and stream.finish_reason == "tool_calls"


def test_the_first_chunk_says_role_assistant_and_tool_calls_start_with_id_and_name():
    _, chunks = run(TOOL_STREAM)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    starts = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
              if "id" in (c["choices"][0]["delta"].get("tool_calls") or [{}])[0]]
    assert starts == [
        {"index": 0, "id": "toolu_01Weather", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
        {"index": 1, "id": "toolu_02Time", "type": "function", "function": {"name": "get_time", "arguments": ""}},
    ]


def test_the_usage_chunk_comes_last_with_no_choices_and_other_chunks_say_usage_null():
    _, chunks = run(TOOL_STREAM, include_usage=True)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 88
    assert "cost_micros" not in chunks[-1]["usage"]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_without_include_usage_there_is_no_usage_chunk_and_no_usage_field():
    stream, chunks = run(TOOL_STREAM)
    assert all(c["choices"] and "usage" not in c for c in chunks)
    assert stream.usage == Usage(input_tokens=1436, output_tokens=88, cached_input_tokens=1024)


def test_cumulative_output_tokens_keep_the_last_value_not_the_sum():
    stream, _ = run([message_start(input_tokens=25, output_tokens=1), TEXT_START, text_delta("a")])
    assert stream.usage == Usage(25, 1)
    stream.feed(*message_delta(15, stop_reason=None))
    assert not stream.usage_is_final
    stream.feed(*message_delta(40))
    assert stream.usage == Usage(25, 40)  # not 1 + 15 + 40
    assert stream.usage_is_final


def test_input_counts_repeated_in_message_delta_replace_those_of_message_start():
    stream, _ = run([message_start(input_tokens=0, cache_read_input_tokens=0),
                     message_delta(30, input_tokens=120, cache_read_input_tokens=800), STOP])
    assert stream.usage == Usage(input_tokens=920, output_tokens=30, cached_input_tokens=800)


def test_usage_is_none_before_message_start_and_partial_after_a_cut():
    stream = AnthropicToOpenAIStream("r", "m", 1, True)
    assert stream.usage is None and stream.text_so_far == ""
    stream, chunks = run([message_start(input_tokens=7), TEXT_START, text_delta("Half an ans")], include_usage=True)
    assert stream.usage == Usage(7, 1) and not stream.usage_is_final  # 1 is a placeholder: estimate instead
    assert stream.text_so_far == "Half an ans"
    assert not stream.finished and stream.finish_reason is None
    assert all(c["choices"] for c in chunks)  # no usage chunk without message_stop


def test_garbled_usage_reads_as_none_so_the_caller_estimates():
    stream, _ = run([message_start(input_tokens=-3)])
    assert stream.usage is None


def test_thinking_is_streamed_as_reasoning_content_and_counted_in_text_so_far():
    stream, chunks = run([
        message_start(),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "Two plus two."}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        text_delta("4", index=1), message_delta(20, output_tokens_details={"thinking_tokens": 12}), STOP,
    ])
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert {"reasoning_content": "Two plus two."} in deltas
    assert reassemble(chunks)[0] == "4"
    assert stream.text_so_far == "Two plus two.4"
    assert stream.usage.reasoning_tokens == 12


@pytest.mark.parametrize(("stop_reason", "finish"), [("end_turn", "stop"), ("max_tokens", "length"),
                                                     ("stop_sequence", "stop"), ("refusal", "content_filter")])
def test_finish_reason_comes_from_message_delta(stop_reason, finish):
    _, chunks = run([message_start(), TEXT_START, text_delta("x"), message_delta(3, stop_reason=stop_reason), STOP])
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}


def test_an_error_event_mid_stream_becomes_an_error_chunk():
    stream, chunks = run([message_start(), TEXT_START, text_delta("par"),
                          ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})])
    assert chunks[-1]["choices"][0]["finish_reason"] == "error"
    assert chunks[-1]["error"] == {"message": "Overloaded", "type": "upstream_error", "code": "upstream_error"}
    assert stream.finish_reason == "error" and not stream.finished
    assert stream.usage == Usage(10, 1)  # what was reported is still there to bill


def test_error_builds_the_chunk_for_a_connection_lost_mid_stream():
    stream = AnthropicToOpenAIStream("chatcmpl-x", "m", 5, False)
    assert stream.error("upstream connection lost") == error_chunk("chatcmpl-x", "m", 5, "upstream connection lost")


def test_ping_and_unknown_events_produce_nothing():
    stream = AnthropicToOpenAIStream("r", "m", 1, True)
    assert stream.feed("ping", {"type": "ping"}) == []
    assert stream.feed("content_block_stop", {"type": "content_block_stop", "index": 0}) == []
    assert stream.feed("something_new", {"type": "something_new"}) == []


@FAST
@given(st.lists(st.text(min_size=1), max_size=8), st.data())
def test_text_split_anywhere_reassembles_to_the_same_text(pieces, data):
    text = "".join(pieces)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    deltas = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    stream, chunks = run([message_start(), TEXT_START, *(text_delta(d) for d in deltas), message_delta(9), STOP],
                         include_usage=True)
    assert reassemble(chunks)[0] == text
    assert stream.text_so_far == text


# --- OpenAI chunks passing through ------------------------------------------------------------------------

def openai_chunk(delta=None, finish=None, usage="absent", choices=True):
    """A chat.completion.chunk as openai-python's types/chat/chat_completion_chunk.py describes it."""
    chunk = {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion.chunk",
             "created": 1_741_569_952, "model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_eb9dce56a8",
             "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
             if choices else []}
    if usage != "absent":
        chunk["usage"] = usage
    return chunk


USAGE = {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29,
         "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
         "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                       "rejected_prediction_tokens": 0}}


def upstream_stream(usage_on_last_choice=False):
    chunks = [openai_chunk({"role": "assistant", "content": "", "refusal": None}, usage=None),
              openai_chunk({"content": "Hello"}, usage=None), openai_chunk({"content": " there"}, usage=None)]
    if usage_on_last_choice:
        return [*chunks, openai_chunk({}, finish="stop", usage=USAGE)]
    return [*chunks, openai_chunk({}, finish="stop", usage=None), openai_chunk(usage=USAGE, choices=False)]


def test_the_meter_reads_usage_from_the_final_chunk_and_forwards_it_when_asked():
    meter = OpenAIStreamMeter(strip_usage=False, cost_of=lambda usage: 55)
    forwarded = [meter.feed(c) for c in upstream_stream()]
    assert meter.usage == Usage(19, 10)
    assert meter.content == "Hello there" and meter.finish_reason == "stop"
    assert forwarded[-1]["usage"] == {**USAGE, "cost_micros": 55}
    assert forwarded[:-1] == upstream_stream()[:-1]  # the rest pass unchanged


def test_the_meter_strips_the_usage_chunk_the_client_did_not_ask_for():
    meter = OpenAIStreamMeter(strip_usage=True)
    forwarded = [meter.feed(c) for c in upstream_stream()]
    assert forwarded[-1] is None
    assert all("usage" not in c for c in forwarded[:-1])
    assert meter.usage == Usage(19, 10)


def test_usage_on_a_chunk_that_still_has_choices_is_read_and_the_choices_kept():
    meter = OpenAIStreamMeter(strip_usage=True)
    forwarded = [meter.feed(c) for c in upstream_stream(usage_on_last_choice=True)]
    assert meter.usage == Usage(19, 10)
    assert forwarded[-1]["choices"][0]["finish_reason"] == "stop" and "usage" not in forwarded[-1]
    kept = OpenAIStreamMeter(strip_usage=False).feed(upstream_stream(usage_on_last_choice=True)[-1])
    assert kept["usage"] == USAGE and kept["choices"]


def test_the_meter_counts_cached_and_reasoning_tokens():
    meter = OpenAIStreamMeter(strip_usage=False)
    meter.feed(openai_chunk(usage={**USAGE, "prompt_tokens_details": {"cached_tokens": 12},
                                   "completion_tokens_details": {"reasoning_tokens": 6}}, choices=False))
    assert meter.usage == Usage(19, 10, cached_input_tokens=12, reasoning_tokens=6)


def test_the_meter_keeps_tool_call_text_for_an_estimate_when_usage_never_comes():
    meter = OpenAIStreamMeter(strip_usage=True)
    meter.feed(openai_chunk({"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "type": "function",
         "function": {"name": "get_weather", "arguments": ""}}]}))
    meter.feed(openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]}))
    meter.feed(openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}))
    assert meter.usage is None
    assert meter.text_so_far == "get_weather{\"location\":\"Paris\"}"
    assert meter.content == ""


def test_garbled_upstream_usage_is_forwarded_unpriced_and_not_billed():
    meter = OpenAIStreamMeter(strip_usage=False, cost_of=lambda usage: 1)
    out = meter.feed(openai_chunk(usage={"prompt_tokens": -1, "completion_tokens": 2}, choices=False))
    assert meter.usage is None and "cost_micros" not in out["usage"]


def test_the_official_sdk_types_accept_the_translated_chunks():
    chat = pytest.importorskip("openai.types.chat")
    _, chunks = run(TOOL_STREAM, include_usage=True, cost_of=lambda usage: 1)
    for chunk in chunks:
        chat.ChatCompletionChunk.model_validate(chunk)


def test_the_anthropic_events_used_here_are_what_the_official_sdk_parses():
    types = pytest.importorskip("anthropic.types")
    classes = {"message_start": types.RawMessageStartEvent, "content_block_start": types.RawContentBlockStartEvent,
               "content_block_delta": types.RawContentBlockDeltaEvent,
               "content_block_stop": types.RawContentBlockStopEvent, "message_delta": types.RawMessageDeltaEvent,
               "message_stop": types.RawMessageStopEvent}
    for event_type, data in TOOL_STREAM:
        if event_type != "ping":  # the SDK skips pings before parsing
            classes[event_type].model_validate(data)
