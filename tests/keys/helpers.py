"""Assertions shared by the key tests."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from billing_core.db.engine import read_session
from billing_core.db.models import Activity

ERROR_CODE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """The documented error shape {"error": {"code", "message"}} with this status (and code)."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert ERROR_CODE.match(body["error"]["code"]) and body["error"]["message"].strip(), body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def activity_kinds(billing, account_id: str) -> list[str]:
    with read_session(billing.engine) as session:
        return list(session.execute(select(Activity.kind).where(Activity.account_id == account_id)
                                    .order_by(Activity.id)).scalars())


def activity_texts(billing, account_id: str) -> str:
    with read_session(billing.engine) as session:
        return "\n".join(session.execute(select(Activity.text).where(Activity.account_id == account_id)).scalars())
