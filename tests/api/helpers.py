"""Shared builders and assertions for the API tests."""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import select, update

from billing_core.db.engine import make_engine
from billing_core.db.models import Account

# Parametrize a test over both live servers (indirect: the `server` fixture resolves the name).
both_databases = pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)

ERROR_CODE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
ZERO_CHARGE = {"allowance_ms": 0, "pool_ms": 0, "credit_micros": 0, "overage_micros": 0, "debt_micros": 0}
ACCOUNT_KEYS = {"id", "email", "plan", "status", "period", "allowance", "pools", "credit", "overage"}
RESULT_STATUSES = {"accepted", "duplicate", "rejected"}

USAGE, CHECK, ACCOUNT, SUMMARY = "/api/v1/usage", "/api/v1/check", "/api/v1/account", "/api/v1/usage/summary"


def new_id(prefix: str = "ev") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_rfc3339(value: str) -> datetime:
    assert isinstance(value, str) and RFC3339_UTC.match(value), f"not an RFC 3339 UTC time: {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def backdate_account(database_url: str, account_id: str, *, days: int) -> None:
    """Make the account at least `days` old (its period unchanged), as an account that has been billed before
    is: usage dated before an account was created is refused (timestamp_before_account)."""
    engine, accounts = make_engine(database_url), Account.__table__
    try:
        with engine.begin() as conn:
            created = conn.execute(select(accounts.c.created_at).where(accounts.c.id == account_id)).scalar_one()
            conn.execute(update(accounts).where(accounts.c.id == account_id).values(
                created_at=min(created, utcnow() - timedelta(days=days))))
    finally:
        engine.dispose()


def compute_event(project_id: str, duration_ms: int, **kw) -> dict:
    return {"id": kw.pop("id", None) or new_id("c"), "project_id": project_id, "kind": "compute",
            "duration_ms": duration_ms, **kw}


def tokens_event(project_id: str, model: str, input_tokens: int, output_tokens: int, **kw) -> dict:
    return {"id": kw.pop("id", None) or new_id("t"), "project_id": project_id, "kind": "tokens",
            "model": model, "input_tokens": input_tokens, "output_tokens": output_tokens, **kw}


def charge(allowance_ms=0, pool_ms=0, credit_micros=0, overage_micros=0, debt_micros=0) -> dict:
    return {"allowance_ms": allowance_ms, "pool_ms": pool_ms, "credit_micros": credit_micros,
            "overage_micros": overage_micros, "debt_micros": debt_micros}


def money_of(charged: dict) -> int:
    """What an event cost in money: credit, overage and debt."""
    return charged["credit_micros"] + charged["overage_micros"] + charged["debt_micros"]


def assert_error(response: httpx.Response, status: int | set[int], code: str | None = None) -> dict:
    """The documented error shape {"error": {"code", "message"}} with the expected status (and code)."""
    statuses = {status} if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"code", "message"}, error
    assert isinstance(error["code"], str) and ERROR_CODE.match(error["code"]), error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    if code is not None:
        assert error["code"] == code, error
    return error


def assert_rejection(result: dict, code: str) -> dict:
    """A per-event rejection inside a 200: status, error shape, nothing charged."""
    assert result["status"] == "rejected", result
    error = result["error"]
    assert set(error) == {"code", "message"}, error
    assert error["code"] == code, result
    assert isinstance(error["message"], str) and error["message"].strip(), result
    assert result["charged"] == ZERO_CHARGE, result
    assert result["late"] is False, result
    return error


def post_usage(client: httpx.Client, auth: dict, *events: dict) -> dict:
    response = client.post(USAGE, json={"events": list(events)}, headers=auth)
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert len(body["results"]) == len(events), body
    for result in body["results"]:
        assert result["status"] in RESULT_STATUSES, result
        assert set(result["charged"]) == set(ZERO_CHARGE), result
        assert all(type(v) is int for v in result["charged"].values()), result
        assert type(result["late"]) is bool, result
    return body


def get_account(client: httpx.Client, auth: dict, **params) -> dict:
    response = client.get(ACCOUNT, headers=auth, params=params)
    assert response.status_code == 200, response.text[:500]
    return response.json()


def snapshot(client: httpx.Client, account) -> dict:
    """Everything a bad request could have changed: the account and all its summarised usage."""
    today = date.today()
    summary = client.get(SUMMARY, headers=account.auth, params={
        "from": (today - timedelta(days=3 * 365)).isoformat(), "to": (today + timedelta(days=2)).isoformat(),
        "group_by": "project"})
    assert summary.status_code == 200, summary.text
    return {"account": get_account(client, account.auth), "summary": summary.json()}


@contextmanager
def unchanged(client: httpx.Client, *accounts):
    """Asserts that nothing in these accounts changed during the block."""
    before = [snapshot(client, a) for a in accounts]
    yield
    after = [snapshot(client, a) for a in accounts]
    assert after == before
