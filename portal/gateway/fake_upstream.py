"""A fake LLM upstream on 127.0.0.1 that speaks OpenAI's and Anthropic's wire formats exactly, for tests and the demo.

Endpoints: POST /v1/chat/completions (OpenAI, `Authorization: Bearer <openai key>`), POST /v1/messages (Anthropic,
`x-api-key: <anthropic key>` or, as the anthropic SDK 2.x sends it, `Authorization: Bearer <anthropic key>`; and
`anthropic-version`), GET /v1/models (Anthropic's list when `x-api-key` or `anthropic-version` is sent, else
OpenAI's). Any other key: 401 in that provider's error shape. What the model replies (deterministic, a token is a
word) is in `fake_reply`; how each provider writes it, streamed or not, is in `fake_wire`.

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

from portal.gateway.fake_reply import Reply, compact_json, plan_reply
from portal.gateway.fake_wire import (anthropic_ask, anthropic_error, anthropic_events, anthropic_failure,
                                      anthropic_message, anthropic_models, anthropic_refusal, anthropic_request_key,
                                      anthropic_stream_error, openai_ask, openai_chunks, openai_completion,
                                      openai_error, openai_failure, openai_models, openai_refusal, openai_stream_error)

OPENAI_KEY = "sk-fake-openai-0000000000000000"
ANTHROPIC_KEY = "sk-ant-fake-0000000000000000"
KEEP_ALIVE_S = 600
_SWITCHES = {"rate_limit", "server_error", "overloaded", "error_after_first_chunk", "cut_mid_stream",
             "end_mid_stream", "usage_with_choices", "cumulative_usage", "no_usage"}
_FAILS = {"rate_limit", "server_error", "overloaded"}
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


# ---- the HTTP side ---------------------------------------------------------------------------------------------

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
            message = await receive()
            while message["type"] != "http.disconnect":  # the request body's rest, until the client goes
                message = await receive()
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
        refused = openai_refusal(request.headers, body, self.openai_key, lambda model: self._known("openai", model))
        if refused is not None:
            return refused
        try:
            sc = self._switches(request)
        except ValueError as exc:
            return openai_error(400, str(exc), param="X-Fake-Scenario")
        fail = sc.fail or ("error_after_first_chunk" if "error_after_first_chunk" in sc.switches
                           and not body.get("stream") else None)
        if fail:
            record.outcome = "error_status"
            return openai_failure(fail)
        reply = plan_reply(openai_ask(body), self._knobs(request), anthropic=False)
        headers = {"x-request-id": "req_" + secrets.token_hex(16), "openai-processing-ms": "1"}
        if not body.get("stream"):
            return await self._whole(openai_completion(reply, body["model"]), reply, sc, record, headers)
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        frames, first, closing = openai_chunks(reply, body["model"], include, sc.switches)
        return self._stream(frames, first, closing, openai_stream_error(), sc, record, headers)

    async def _messages(self, request: Request) -> Response | _Frames:
        record, body = await self._begin(request)
        response = await self._messages_answer(request, record, body)
        record.status = record.status or response.status_code
        return response

    async def _messages_answer(self, request: Request, record: Recorded, body: Any) -> Response | _Frames:
        refused = anthropic_refusal(request.headers, body, self.anthropic_key,
                                    lambda model: self._known("anthropic", model))
        if refused is not None:
            return refused
        try:
            sc = self._switches(request)
        except ValueError as exc:
            return anthropic_error(400, "invalid_request_error", str(exc))
        fail = sc.fail or ("error_after_first_chunk" if "error_after_first_chunk" in sc.switches
                           and not body.get("stream") else None)
        if fail:
            record.outcome = "error_status"
            return anthropic_failure(fail)
        reply = plan_reply(anthropic_ask(body), self._knobs(request), anthropic=True)
        headers = {"request-id": "req_" + secrets.token_hex(12)}
        if not body.get("stream"):
            return await self._whole(anthropic_message(reply, body["model"]), reply, sc, record, headers)
        frames, first, closing = anthropic_events(reply, body["model"], sc.switches)
        return self._stream(frames, first, closing, anthropic_stream_error(), sc, record, headers)

    async def _whole(self, payload: dict, reply: Reply, sc: Scenario, record: Recorded,
                     headers: dict) -> Response | _Frames:
        if sc.slow_ms:
            await asyncio.sleep(sc.slow_ms * reply.output_tokens / 1000)
        data = compact_json(payload)
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
            if anthropic_request_key(request.headers) != self.anthropic_key:
                return anthropic_error(401, "authentication_error", "invalid x-api-key")
            return JSONResponse(anthropic_models(self.models["anthropic"]))
        if request.headers.get("authorization") != f"Bearer {self.openai_key}":
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        return JSONResponse(openai_models(self.models["openai"]))


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
