"""Fixtures for the edge sync: a billing context with a keyring, fake Cloudflare APIs behind
httpx.MockTransport (they check URL, method, token and body shape, and keep state like the real ones),
and the real Redis at 127.0.0.1:6379 (db 15, a unique prefix)."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from billing_core.crypto import Keyring, new_key_spec
from billing_core.db.engine import make_engine
from billing_core.services.context import Billing

from ..conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
BASE = "https://api.cloudflare.test/client/v4"
ACCOUNT, TOKEN, NAMESPACE, DATABASE = "cfacc123", "cf-token-secret", "ns0123456789abcdef", "d1-0000-1111"
REDIS_URL = os.environ.get("TOLLGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def kbilling(database_url, catalog):
    """A billing context on SQLite and PostgreSQL that can seal and open HMAC keys."""
    engine = make_engine(database_url)
    yield Billing(engine=engine, catalog=catalog, keyring=Keyring.parse(new_key_spec("k1")))
    engine.dispose()


def envelope(result, status: int = 200, **headers) -> httpx.Response:
    return httpx.Response(status, json={"success": status < 400, "errors": [], "messages": [], "result": result},
                          headers=headers)


class FakeCloudflare:
    """Shared checks: every request is recorded; `fail_with` makes the next calls answer that status."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.fail_with: int | None = None
        self.retry_after: str | None = None

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert str(request.url).startswith(f"{BASE}/accounts/{ACCOUNT}/")
        if self.fail_with:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return httpx.Response(self.fail_with, headers=headers,
                                  json={"success": False, "errors": [{"code": 10000, "message": "nope"}],
                                        "messages": [], "result": None})
        return self.route(request)

    def route(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError


class FakeKV(FakeCloudflare):
    """Workers KV's REST API over a dict; `refuse` names keys answered as unsuccessful_keys."""

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[str, str] = {}
        self.refuse: set[str] = set()
        self.ns = f"{BASE}/accounts/{ACCOUNT}/storage/kv/namespaces/{NAMESPACE}"

    def route(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url).split("?")[0]
        if request.method == "PUT" and url == self.ns + "/bulk":
            pairs = json.loads(request.content)
            assert isinstance(pairs, list) and len(pairs) <= 10_000
            failed = []
            for pair in pairs:
                assert set(pair) == {"key", "value"} and isinstance(pair["value"], str)
                if pair["key"] in self.refuse:
                    failed.append(pair["key"])
                else:
                    self.store[pair["key"]] = pair["value"]
            return envelope({"successful_key_count": len(pairs) - len(failed), "unsuccessful_keys": failed})
        if request.method == "POST" and url == self.ns + "/bulk/delete":
            keys = json.loads(request.content)
            assert isinstance(keys, list) and len(keys) <= 10_000 and all(isinstance(k, str) for k in keys)
            failed = [k for k in keys if k in self.refuse]
            for key in keys:
                if key not in self.refuse:
                    self.store.pop(key, None)
            return envelope({"successful_key_count": len(keys) - len(failed), "unsuccessful_keys": failed})
        if request.method == "GET" and url == self.ns + "/keys":
            query = parse_qs(request.url.query.decode())
            limit = int(query["limit"][0])
            assert 10 <= limit <= 1000
            start = int(query.get("cursor", ["0"])[0])
            names = sorted(self.store)[start:start + limit]
            more = start + limit < len(self.store)
            return httpx.Response(200, json={"success": True, "errors": [], "messages": [],
                                             "result": [{"name": n} for n in names],
                                             "result_info": {"count": len(names),
                                                             "cursor": str(start + limit) if more else ""}})
        if request.method == "POST" and url == self.ns + "/bulk/get":
            body = json.loads(request.content)
            assert body["type"] == "text" and 1 <= len(body["keys"]) <= 100
            return envelope({"values": {k: self.store.get(k) for k in body["keys"]}})
        return envelope(None, 404)


class FakeD1(FakeCloudflare):
    """D1's query endpoint over an in-memory SQLite database made from docs/edge-d1.sql (D1 is SQLite)."""

    def __init__(self) -> None:
        super().__init__()
        self.db = sqlite3.connect(":memory:", isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.executescript((ROOT / "docs" / "edge-d1.sql").read_text())
        self.url = f"{BASE}/accounts/{ACCOUNT}/d1/database/{DATABASE}/query"
        self.statements: list[dict] = []

    def run(self, query: dict) -> dict:
        assert set(query) <= {"sql", "params"}
        params = query.get("params", [])
        assert len(params) <= 100, "D1 binds at most 100 parameters per statement"
        assert all(isinstance(p, str) for p in params), "params are strings in the documented API"
        self.statements.append(query)
        rows = [dict(r) for r in self.db.execute(query["sql"], params)]
        return {"results": rows, "success": True, "meta": {"changes": self.db.total_changes}}

    def route(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or str(request.url) != self.url:
            return envelope(None, 404)
        body = json.loads(request.content)
        queries = body["batch"] if "batch" in body else [body]
        self.db.execute("BEGIN")
        try:
            results = [self.run(q) for q in queries]
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            self.db.execute("ROLLBACK")
            return httpx.Response(400, json={"success": False, "errors": [{"code": 7500, "message": str(exc)}],
                                             "messages": [], "result": None})
        return envelope(results)


@pytest.fixture
def fake_kv():
    return FakeKV()


@pytest.fixture
def fake_d1():
    return FakeD1()


@pytest.fixture
def redis_url():
    """The real Redis (db 15); skipped when absent, unless CI=true where it must be there."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"Redis at {REDIS_URL} is not reachable: {type(exc).__name__}"
        if IN_CI:
            pytest.fail(f"{reason} (CI must exercise Redis)")
        pytest.skip(reason)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url):
    import redis

    prefix = f"tollgate-test:{uuid.uuid4().hex[:10]}:edge:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    names = list(client.scan_iter(match=prefix + "*", count=1000))
    if names:
        client.delete(*names)
    client.close()
