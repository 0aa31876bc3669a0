"""The fake upstream speaks OpenAI's and Anthropic's formats exactly: the official SDKs (whose own parsers reject a
wrong shape) drive it, sync and async, streamed and not, with tools; every failure switch; keep-alive on a pooled
connection. Expected numbers follow the rules in the fake's docstring (a token is a whitespace word)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import httpx2  # the SDKs' own HTTP client
import openai
import pytest

from portal.gateway.fake_upstream import ANTHROPIC_KEY, OPENAI_KEY, FakeUpstream

ASK = "tell me about Paris"
ECHO = "tell me about Paris tell me about Paris"  # the default 8 words
SYSTEM = "You are terse."
PROPS = {"city": {"type": "string"}, "days": {"type": "integer"}, "unit": {"type": "string", "enum": ["c", "f"]}}
SCHEMA = {"type": "object", "properties": PROPS, "required": ["city"]}
OPENAI_TOOLS = [{"type": "function",
                 "function": {"name": "get_weather", "description": "Weather", "parameters": SCHEMA}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "Weather", "input_schema": SCHEMA}]
WEATHER_ARGS = {"city": "Paris", "days": 1, "unit": "c"}  # the last word of the user message, 1, the first enum value
ARGS_TOKENS = len("get_weather".split()) + len(json.dumps(WEATHER_ARGS).split())


def run_async(make_coroutine):
    """asyncio.run in a thread of its own: a browser test earlier in the run (Playwright's sync API) may
    leave an event loop set on the main thread, where asyncio.run refuses to start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def fake():
    with FakeUpstream() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh(fake):
    fake.clear()
    fake.set_scenario(None)
    fake.set_defaults()
    yield


def oai(fake: FakeUpstream, **kw) -> openai.OpenAI:
    return openai.OpenAI(api_key=OPENAI_KEY, base_url=fake.openai_base_url, max_retries=kw.pop("max_retries", 0), **kw)


def ant(fake: FakeUpstream, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=fake.anthropic_base_url, max_retries=0, **kw)


def user(text: str = ASK) -> list[dict]:
    return [{"role": "user", "content": text}]


def sse(fake: FakeUpstream, path: str, body: dict, **headers: str) -> list[tuple[str | None, dict | str]]:
    """(event name, data) of each server-sent event of a raw streamed request."""
    auth = ({"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"} if path == "/v1/messages"
            else {"authorization": f"Bearer {OPENAI_KEY}"})
    response = httpx.post(fake.base_url + path, json=body, headers={**auth, **headers})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if line)
        if "data" in lines:
            data = lines["data"]
            events.append((lines.get("event"), data if data == "[DONE]" else json.loads(data)))
    return events


# ---- OpenAI ----------------------------------------------------------------------------------------------------

def test_openai_completion_echoes_the_last_user_message_and_counts_its_words(fake):
    messages = [{"role": "system", "content": SYSTEM}, *user()]
    done = oai(fake).chat.completions.create(model="gpt-4o", messages=messages)
    assert done.choices[0].message.content == ECHO and done.choices[0].finish_reason == "stop"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (words(SYSTEM) + words(ASK), 8)
    assert done.usage.total_tokens == done.usage.prompt_tokens + 8 and done.object == "chat.completion"
    seen = fake.find("/v1/chat/completions")[0]
    assert seen.method == "POST" and seen.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert seen.json["messages"] == messages and seen.status == 200 and seen.outcome == "complete"


def test_openai_stream_with_include_usage_ends_with_a_usage_chunk_without_choices(fake):
    chunks = list(oai(fake).chat.completions.create(model="gpt-4o-mini", messages=user(), stream=True,
                                                    stream_options={"include_usage": True}))
    *body, last = chunks
    assert last.choices == [] and last.usage.completion_tokens == 8 and last.usage.prompt_tokens == words(ASK)
    assert all(c.usage is None for c in body) and body[-1].choices[0].finish_reason == "stop"
    texts = [c.choices[0].delta.content for c in body if c.choices[0].delta.content]
    assert "".join(texts) == ECHO and len(texts) == 8 and body[0].choices[0].delta.role == "assistant"
    assert {c.id for c in chunks} == {chunks[0].id} and all(c.object == "chat.completion.chunk" for c in chunks)


def test_openai_stream_without_include_usage_has_no_usage_anywhere(fake):
    events = sse(fake, "/v1/chat/completions", {"model": "gpt-4o", "messages": user(), "stream": True})
    assert events[-1] == (None, "[DONE]")
    assert all("usage" not in data and data["choices"] for _, data in events[:-1])
    chunks = list(oai(fake).chat.completions.create(model="gpt-4o", messages=user(), stream=True))
    assert all(c.usage is None and c.choices for c in chunks)


def test_async_openai_stream_of_a_tool_call_is_assembled_by_the_sdk(fake):
    async def run():
        async with openai.AsyncOpenAI(api_key=OPENAI_KEY, base_url=fake.openai_base_url, max_retries=0) as client:
            async with client.chat.completions.stream(model="gpt-4o", messages=user("use get_weather for Paris"),
                                                      tools=OPENAI_TOOLS, stream_options={"include_usage": True}) as s:
                async for _ in s:
                    pass
                return await s.get_final_completion()

    done = run_async(run)
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == WEATHER_ARGS
    assert call.id.startswith("call_") and done.usage.completion_tokens == ARGS_TOKENS
    assert done.usage.prompt_tokens == words("use get_weather for Paris") + words(json.dumps(OPENAI_TOOLS))


def test_openai_answers_a_tool_result_with_text_and_calls_no_tool_again(fake):
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    messages = [*user("get_weather Paris"), {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny 21C"}]
    done = oai(fake).chat.completions.create(model="gpt-4o", messages=messages, tools=OPENAI_TOOLS, max_tokens=4)
    assert done.choices[0].message.content == "sunny 21C sunny 21C" and done.choices[0].finish_reason == "length"
    assert done.choices[0].message.tool_calls is None and done.usage.completion_tokens == 4


def test_openai_usage_reports_cached_and_reasoning_tokens_from_the_headers(fake):
    done = oai(fake).chat.completions.create(model="gpt-4o", messages=user(), max_completion_tokens=5, extra_headers={
        "X-Fake-Cached-Tokens": "3", "X-Fake-Reasoning-Tokens": "2", "X-Fake-Reply-Words": "9"})
    usage = done.usage
    assert usage.prompt_tokens_details.cached_tokens == 3 and usage.completion_tokens_details.reasoning_tokens == 2
    assert usage.completion_tokens == 5 and words(done.choices[0].message.content) == 3  # reasoning spends first
    assert done.choices[0].finish_reason == "length"


def test_openai_errors_have_openais_shape_and_sdk_classes(fake):
    with pytest.raises(openai.AuthenticationError) as bad_key:
        openai.OpenAI(api_key="sk-wrong-key-0000", base_url=fake.openai_base_url, max_retries=0).models.list()
    assert bad_key.value.code == "invalid_api_key"
    raw = httpx.post(fake.openai_base_url + "/chat/completions", json={"model": "gpt-4o", "messages": user()})
    assert raw.status_code == 401 and list(raw.json()["error"]) == ["message", "type", "param", "code"]
    with pytest.raises(openai.NotFoundError) as missing:
        oai(fake).chat.completions.create(model="gpt-9", messages=user())
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="stream_options"):
        oai(fake).chat.completions.create(model="gpt-4o", messages=user(), stream_options={"include_usage": True})
    with pytest.raises(openai.BadRequestError, match="unknown X-Fake-Scenario"):
        oai(fake).chat.completions.create(model="gpt-4o", messages=user(),
                                          extra_headers={"X-Fake-Scenario": "ratelimit"})


@pytest.mark.parametrize("scenario, error, status", [("rate_limit", openai.RateLimitError, 429),
                                                     ("server_error", openai.InternalServerError, 500),
                                                     ("overloaded", openai.InternalServerError, 503)])
def test_openai_failures_before_the_first_byte(fake, scenario, error, status):
    for stream in (False, True):
        with pytest.raises(error) as failed:
            oai(fake).chat.completions.create(model="gpt-4o", messages=user(), stream=stream,
                                              extra_headers={"X-Fake-Scenario": scenario})
        assert failed.value.status_code == status and failed.value.body["type"] in ("requests", "server_error")
    assert (failed.value.response.headers.get("retry-after") == "1") == (status == 429)
    assert [r.outcome for r in fake.find()] == ["error_status"] * 2


def test_a_server_wide_scenario_applies_to_the_next_n_requests_so_a_retry_succeeds(fake):
    fake.set_scenario("server_error", times=1)
    done = oai(fake, max_retries=1).chat.completions.create(model="gpt-4o", messages=user())
    assert done.choices[0].message.content == ECHO
    assert [r.status for r in fake.find()] == [500, 200]
    fake.set_defaults(reply_words=2)
    assert oai(fake).chat.completions.create(model="gpt-4o", messages=user()).usage.completion_tokens == 2


def test_openai_error_after_the_first_chunk_raises_api_error_mid_stream(fake):
    stream = oai(fake).chat.completions.create(model="gpt-4o", messages=user(), stream=True,
                                               extra_headers={"X-Fake-Scenario": "error_after_first_chunk"})
    seen = []
    with pytest.raises(openai.APIError) as failed:
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content)
    assert seen == ["", "tell"] and not isinstance(failed.value, openai.APIStatusError)
    assert failed.value.body["type"] == "server_error" and fake.find()[0].outcome == "error_event"


def test_openai_usage_on_the_finish_chunk_running_usage_and_no_usage(fake):
    body = {"model": "gpt-4o", "messages": user(), "stream": True, "stream_options": {"include_usage": True}}
    on_finish = sse(fake, "/v1/chat/completions", body, **{"X-Fake-Scenario": "usage_with_choices"})[:-1]
    finish = on_finish[-1][1]
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["usage"]["completion_tokens"] == 8
    assert all(data["choices"] for _, data in on_finish) and all(d["usage"] is None for _, d in on_finish[:-1])
    running = [d["usage"]["completion_tokens"] for _, d in
               sse(fake, "/v1/chat/completions", body, **{"X-Fake-Scenario": "cumulative_usage"})[:-1]]
    assert running == sorted(running) and running[-1] == 8 and sum(running) > 8
    chunks = list(oai(fake).chat.completions.create(**body, extra_headers={"X-Fake-Scenario": "no_usage"}))
    assert all(c.usage is None and c.choices for c in chunks)


def test_a_cut_stream_drops_the_connection_and_an_ended_stream_just_stops(fake):
    kwargs = {"model": "gpt-4o", "messages": user(), "stream": True, "stream_options": {"include_usage": True}}
    with pytest.raises(openai.APIConnectionError):
        list(oai(fake).chat.completions.create(**kwargs, extra_headers={"X-Fake-Scenario": "cut_mid_stream"}))
    ended = list(oai(fake).chat.completions.create(**kwargs, extra_headers={"X-Fake-Scenario": "end_mid_stream"}))
    assert 1 < len(ended) < 8 and all(c.usage is None and c.choices[0].finish_reason is None for c in ended)
    with pytest.raises(openai.APIConnectionError):
        oai(fake).chat.completions.create(model="gpt-4o", messages=user(),
                                          extra_headers={"X-Fake-Scenario": "cut_mid_stream"})
    assert [r.outcome for r in fake.find()] == ["cut", "ended_early", "cut"]


def test_a_slow_stream_paces_its_chunks_and_notes_a_client_that_left(fake):
    stream = oai(fake).chat.completions.create(model="gpt-4o", messages=user(), stream=True,
                                               extra_headers={"X-Fake-Scenario": "slow:100"})
    started = time.monotonic()
    next(stream), next(stream)
    assert time.monotonic() - started >= 0.19
    stream.close()
    record, deadline = fake.find()[0], time.monotonic() + 3
    while record.outcome != "client_disconnected" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert record.outcome == "client_disconnected" and record.chunks_sent < 10


def test_the_model_lists_have_each_providers_shape(fake):
    assert [m.id for m in oai(fake).models.list()] == ["gpt-4o", "gpt-4o-mini"]
    listed = ant(fake).models.list()
    assert [m.id for m in listed] == ["claude-opus-4", "claude-sonnet-4", "claude-haiku-4"]
    assert all(m.type == "model" for m in listed)


def test_a_pooled_connection_stays_open_longer_than_uvicorns_default_keep_alive(fake):
    pool = httpx2.Client(limits=httpx2.Limits(max_connections=1, keepalive_expiry=60))  # a long-lived pool
    client = oai(fake, http_client=pool)
    client.chat.completions.create(model="gpt-4o", messages=user())
    time.sleep(5.5)  # uvicorn's default keep-alive is 5 s: the server would have closed the idle connection
    client.chat.completions.create(model="gpt-4o", messages=user())
    first, second = fake.find()
    assert first.client == second.client and second.status == 200


# ---- Anthropic -------------------------------------------------------------------------------------------------

def test_anthropic_message_echoes_and_reports_usage(fake):
    done = ant(fake).messages.create(model="claude-sonnet-4", max_tokens=100, system=SYSTEM, messages=user())
    assert [b.type for b in done.content] == ["text"] and done.content[0].text == ECHO
    assert done.stop_reason == "end_turn" and done.type == "message" and done.id.startswith("msg_")
    assert (done.usage.input_tokens, done.usage.output_tokens) == (words(SYSTEM) + words(ASK), 8)
    seen = fake.find("/v1/messages")[0]  # the SDK (2.x) sends the key as a bearer token
    assert seen.headers["authorization"] == f"Bearer {ANTHROPIC_KEY}" and seen.headers["anthropic-version"]
    assert seen.json["max_tokens"] == 100 and seen.json["system"] == SYSTEM


def test_anthropic_stream_has_anthropics_event_sequence_and_cumulative_output_tokens(fake):
    body = {"model": "claude-haiku-4", "max_tokens": 50, "messages": user(), "stream": True}
    events = sse(fake, "/v1/messages", body)
    names = [name for name, _ in events]
    assert names == ["message_start", "content_block_start", "ping", *["content_block_delta"] * 8,
                     "content_block_stop", "message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)
    assert events[0][1]["message"]["usage"]["output_tokens"] == 1 and events[-2][1]["usage"] == {"output_tokens": 8}
    with ant(fake).messages.stream(model="claude-haiku-4", max_tokens=50, messages=user()) as stream:
        assert "".join(stream.text_stream) == ECHO
        final = stream.get_final_message()
    assert final.usage.output_tokens == 8 and final.usage.input_tokens == words(ASK) and final.stop_reason == "end_turn"


def test_async_anthropic_stream_with_a_tool_call(fake):
    async def run():
        async with anthropic.AsyncAnthropic(api_key=ANTHROPIC_KEY, base_url=fake.anthropic_base_url,
                                            max_retries=0) as client:
            async with client.messages.stream(model="claude-sonnet-4", max_tokens=200, tools=ANTHROPIC_TOOLS,
                                              messages=user("call get_weather for Paris")) as stream:
                kinds = [event.type async for event in stream]
                return kinds, await stream.get_final_message()

    kinds, final = run_async(run)
    assert [b.type for b in final.content] == ["text", "tool_use"] and final.stop_reason == "tool_use"
    tool = final.content[1]
    assert tool.name == "get_weather" and tool.input == WEATHER_ARGS and tool.id.startswith("toolu_")
    assert "input_json" in kinds and final.usage.output_tokens == 8 + ARGS_TOKENS


def test_anthropic_tool_result_is_answered_with_text(fake):
    messages = [*user("get_weather Paris"),
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                                   "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}]
    done = ant(fake).messages.create(model="claude-sonnet-4", max_tokens=3, tools=ANTHROPIC_TOOLS, messages=messages)
    assert [b.type for b in done.content] == ["text"] and done.content[0].text == "sunny sunny sunny"
    assert done.stop_reason == "max_tokens" and done.usage.output_tokens == 3


def test_anthropic_thinking_streams_thinking_and_signature_deltas(fake):
    with ant(fake).messages.stream(model="claude-opus-4", max_tokens=2048, messages=user(),
                                   thinking={"type": "enabled", "budget_tokens": 1024}) as stream:
        final = stream.get_final_message()
    thinking, text = final.content
    assert thinking.type == "thinking" and words(thinking.thinking) == 4 and thinking.signature
    assert text.text == ECHO and final.usage.output_tokens == 4 + 8


def test_anthropic_cumulative_usage_sends_two_message_deltas_and_the_sdk_keeps_the_last(fake):
    body = {"model": "claude-sonnet-4", "max_tokens": 100, "messages": user("use a tool for Paris"),
            "tools": ANTHROPIC_TOOLS, "stream": True}
    deltas = [d["usage"]["output_tokens"] for name, d in
              sse(fake, "/v1/messages", body, **{"X-Fake-Scenario": "cumulative_usage"}) if name == "message_delta"]
    assert deltas == [8, 8 + ARGS_TOKENS]
    with ant(fake).messages.stream(**{k: v for k, v in body.items() if k != "stream"},
                                   extra_headers={"X-Fake-Scenario": "cumulative_usage"}) as stream:
        assert stream.get_final_message().usage.output_tokens == 8 + ARGS_TOKENS


def test_anthropic_cache_tokens_are_split_out_of_input_tokens(fake):
    done = ant(fake).messages.create(model="claude-sonnet-4", max_tokens=100, messages=user(), extra_headers={
        "X-Fake-Cached-Tokens": "2", "X-Fake-Cache-Write-Tokens": "1"})
    usage = done.usage
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens, usage.input_tokens) == (2, 1, 1)


def test_anthropic_errors_have_anthropics_shape_and_sdk_classes(fake):
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(api_key="sk-ant-wrong", base_url=fake.anthropic_base_url, max_retries=0).messages.create(
            model="claude-sonnet-4", max_tokens=10, messages=user())
    raw = httpx.post(fake.base_url + "/v1/messages", headers={"x-api-key": ANTHROPIC_KEY},
                     json={"model": "claude-sonnet-4", "max_tokens": 10, "messages": user()})
    body = raw.json()
    assert raw.status_code == 400 and body["type"] == "error" and body["request_id"] == raw.headers["request-id"]
    assert body["error"] == {"type": "invalid_request_error", "message": "anthropic-version: header is required"}
    with pytest.raises(anthropic.BadRequestError, match="system"):
        ant(fake).messages.create(model="claude-sonnet-4", max_tokens=10, messages=[{"role": "system", "content": "x"}])
    with pytest.raises(anthropic.NotFoundError):
        ant(fake).messages.create(model="claude-2", max_tokens=10, messages=user())


@pytest.mark.parametrize("scenario, status, kind, error", [
    ("rate_limit", 429, "rate_limit_error", anthropic.RateLimitError),
    ("server_error", 500, "api_error", anthropic.InternalServerError),
    ("overloaded", 529, "overloaded_error", anthropic.OverloadedError)])
def test_anthropic_failures_before_the_first_byte(fake, scenario, status, kind, error):
    with pytest.raises(error) as failed:
        with ant(fake).messages.stream(model="claude-sonnet-4", max_tokens=10, messages=user(),
                                       extra_headers={"X-Fake-Scenario": scenario}) as stream:
            stream.get_final_message()
    assert failed.value.status_code == status and failed.value.body["error"]["type"] == kind


def test_anthropic_error_event_mid_stream_raises_after_the_first_text(fake):
    texts = []
    with pytest.raises(anthropic.APIStatusError) as failed:
        with ant(fake).messages.stream(model="claude-sonnet-4", max_tokens=50, messages=user(),
                                       extra_headers={"X-Fake-Scenario": "error_after_first_chunk"}) as stream:
            for text in stream.text_stream:
                texts.append(text)
    assert texts == ["tell"] and failed.value.body["error"]["type"] == "overloaded_error"
    assert fake.find()[0].outcome == "error_event"


def test_anthropic_cut_and_ended_streams(fake):
    kwargs = {"model": "claude-sonnet-4", "max_tokens": 50, "messages": user()}
    with pytest.raises(anthropic.APIConnectionError):
        with ant(fake).messages.stream(**kwargs, extra_headers={"X-Fake-Scenario": "cut_mid_stream,slow:5"}) as s:
            s.get_final_message()
    events = sse(fake, "/v1/messages", {**kwargs, "stream": True}, **{"X-Fake-Scenario": "end_mid_stream"})
    assert events[0][0] == "message_start" and {"message_delta", "message_stop"}.isdisjoint(n for n, _ in events)
    assert [r.outcome for r in fake.find()] == ["cut", "ended_early"]


def test_the_module_runs_alone_on_the_given_port_with_the_given_keys():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "portal.gateway.fake_upstream", "--port", str(port), "--openai-key", "sk-demo"]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                listed = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"authorization": "Bearer sk-demo"})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and process.poll() is None, "the fake upstream did not start"
                time.sleep(0.05)
        assert listed.status_code == 200 and listed.json()["object"] == "list"
        client = openai.OpenAI(api_key="sk-demo", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
        assert client.chat.completions.create(model="gpt-4o", messages=user()).choices[0].message.content == ECHO
    finally:
        process.terminate()
        process.wait(timeout=10)
