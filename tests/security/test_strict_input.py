"""Issue 12 #8: bad input that used to be accepted. RFC 3339 times only (a leap second included), integers
where the contract says int and none past 64 bits, printable ids and names, and no usage dated before its
account existed (`timestamp_before_account`, where it used to be billed as late)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import func, select

from billing_core.db.models import UsageEvent
from billing_core.services.usage import record_usage
from billing_core.validate import is_printable, parse_full_date, parse_rfc3339

from ..api.helpers import backdate_account
from ..conftest import T0
from ..factories import compute, make_account
from ..live_server import Tenant, copy_sqlite_template, create_account_cli, run_api_server

USAGE, SCHEDULES = "/api/v1/usage", "/api/v1/schedules"
NOT_RFC3339 = ["2026-W49-4T12:00:00Z", "20261204T120000Z", "2026-12-04 12:00:00Z", "2026-12-04T12:00Z",
               "2026-12-04T12:00:00.Z", "2026-12-04T12:00:00+0100", "2026-12-04T12:00:00", "2026-338T12:00:00Z"]
# A bell, an escape, a right-to-left override (reorders what a reader sees), a line separator, a BOM.
UNPRINTABLE = ["a\x07b", "a\x1b[31mb", "a\u202eb", "a\u2028b", "\ufeffab"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def live(tmp_path_factory, sqlite_template):
    """A live server, a fresh pro account, and one made 60 days older (its period unchanged)."""
    url = copy_sqlite_template(sqlite_template, tmp_path_factory.mktemp("strict-input"))
    with run_api_server(url) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        fresh, older = (Tenant(**create_account_cli(server.env, f"{n}-{uuid.uuid4().hex[:10]}@example.com",
                                                    plan="pro", credit_usd="50")) for n in ("fresh", "older"))
        backdate_account(url, older.account_id, days=60)
        yield client, fresh, older


def post_events(client: httpx.Client, tenant: Tenant, *events: dict) -> list[dict]:
    response = client.post(USAGE, json={"events": list(events)}, headers=tenant.auth)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def event(tenant: Tenant, **fields) -> dict:
    return {"id": f"ev-{uuid.uuid4().hex[:16]}", "project_id": tenant.project_id, "kind": "compute",
            "duration_ms": 1000, **fields}


# -- integers ---------------------------------------------------------------------------------------------------
def test_a_payload_integer_past_64_bits_is_a_422_naming_it_and_stores_nothing(live):
    client, tenant, _ = live
    body = {"project_id": tenant.project_id, "agent": "wide", "cron": "0 9 * * *", "payload": {"n": [1, 2**70]}}
    response = client.post(SCHEDULES, json=body, headers=tenant.auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_payload"
    assert response.json()["error"]["message"].startswith("payload.n.1: integers must be between")
    listed = client.get(SCHEDULES, headers=tenant.auth).json()["data"]
    assert [s for s in listed if s["agent"] == "wide"] == []


def test_integers_at_the_64_bit_edges_are_kept_exactly(live):
    client, tenant, _ = live
    edges = {"max": 2**64 - 1, "min": -(2**63), "big": 2**63}
    body = {"project_id": tenant.project_id, "agent": "edges", "cron": "0 9 * * *", "payload": edges}
    made = client.post(SCHEDULES, json=body, headers=tenant.auth)
    assert made.status_code == 201, made.text
    read = client.get(f"{SCHEDULES}/{made.json()['id']}", headers=tenant.auth).json()["payload"]
    assert read == edges and all(type(v) is int for v in read.values())


def test_a_usage_integer_past_64_bits_rejects_the_event_naming_the_field(live):
    client, tenant, _ = live
    result, = post_events(client, tenant, event(tenant, duration_ms=2**70))
    assert result["status"] == "rejected" and result["error"]["code"] == "invalid_event"
    assert result["error"]["message"].startswith("duration_ms:"), result


# -- times ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", NOT_RFC3339)
def test_a_timestamp_that_is_not_rfc3339_rejects_the_event(live, text):
    client, _, tenant = live
    result, = post_events(client, tenant, event(tenant, timestamp=text))
    assert (result["status"], result["error"]["code"]) == ("rejected", "invalid_event"), result
    assert result["error"]["message"].startswith("timestamp:"), result


def test_a_leap_second_is_a_valid_timestamp(live):
    client, _, older = live
    last_day = utcnow().replace(day=1) - timedelta(days=1)  # the last day of last month: in the account's life
    leap = f"{last_day:%Y-%m-%d}T23:59:60Z"
    result, = post_events(client, older, event(older, timestamp=leap))
    assert result["status"] == "accepted", result


@pytest.mark.parametrize("text", ["2026-12-04T00:00:00Z", "20261204", "0", "1767225600", "2026-W49-4"])
def test_summary_dates_are_rfc3339_full_dates(live, text):
    client, tenant, _ = live
    response = client.get("/api/v1/usage/summary", params={"from": text, "to": "2026-12-31"}, headers=tenant.auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith("from:")


def test_an_event_dated_before_its_account_is_rejected_and_charges_nothing(live):
    client, tenant, _ = live
    before, now = post_events(client, tenant, event(tenant, timestamp=stamp(utcnow() - timedelta(hours=1))),
                              event(tenant, timestamp=stamp(utcnow())))
    assert (before["status"], before["error"]["code"]) == ("rejected", "timestamp_before_account"), before
    assert before["charged"] == {"allowance_ms": 0, "pool_ms": 0, "credit_micros": 0, "overage_micros": 0,
                                 "debt_micros": 0}
    assert now["status"] == "accepted" and now["late"] is False, now


def test_the_service_rejects_usage_before_the_account_on_both_databases(billing):
    account = make_account(billing, plan="pro", now=T0)
    results = record_usage(billing, account.account_id, [
        compute(account.project_id, 1000, timestamp=T0 - timedelta(microseconds=1)),
        compute(account.project_id, 1000, timestamp=T0),
    ], now=T0 + timedelta(days=1)).results
    assert [(r.status, r.error_code) for r in results] == [("rejected", "timestamp_before_account"),
                                                          ("accepted", None)]
    with billing.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(UsageEvent)).scalar_one() == 1


# -- printable text -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["id", "agent", "model", "run_id", "project_id"])
@pytest.mark.parametrize("text", UNPRINTABLE)
def test_an_unprintable_event_field_rejects_the_event_naming_it(live, field, text):
    client, tenant, _ = live
    base = event(tenant, kind="tokens", model="gpt-4o", input_tokens=1, output_tokens=1)
    base.pop("duration_ms")
    result, = post_events(client, tenant, {**base, field: text})
    assert (result["status"], result["error"]["code"]) == ("rejected", "invalid_event"), result
    assert result["error"]["message"].startswith(f"{field}:"), result


@pytest.mark.parametrize("text", UNPRINTABLE)
def test_an_unprintable_name_is_a_422_naming_the_field(live, text):
    client, tenant, _ = live
    cases = [
        ("POST", "/api/v1/projects", {"name": text}, "name"),
        ("PATCH", f"/api/v1/projects/{tenant.project_id}", {"name": text}, "name"),
        ("POST", "/api/v1/keys", {"name": text}, "name"),
        ("POST", SCHEDULES, {"project_id": tenant.project_id, "agent": text, "cron": "0 9 * * *"}, "agent"),
        ("POST", "/api/v1/runs", {"project_id": tenant.project_id, "agent": text}, "agent"),
    ]
    for method, path, body, field in cases:
        response = client.request(method, path, json=body, headers=tenant.auth)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"]["message"].startswith(f"{field}:"), (path, response.text)


# -- the pure checks ---------------------------------------------------------------------------------------------
def test_the_rfc3339_parser_reads_what_the_rfc_allows_and_nothing_else():
    assert parse_rfc3339("2026-12-04t12:00:00.1234567z") == datetime(2026, 12, 4, 12, 0, 0, 123456, timezone.utc)
    assert parse_rfc3339("2026-12-04T07:00:00-05:00") == datetime(2026, 12, 4, 12, tzinfo=timezone.utc)
    assert parse_rfc3339("2026-12-31T23:59:60Z") == datetime(2026, 12, 31, 23, 59, 59, 999999, timezone.utc)
    assert parse_rfc3339("2026-06-30T19:59:60-04:00") == datetime(2026, 6, 30, 23, 59, 59, 999999, timezone.utc)
    for text in [*NOT_RFC3339, "2026-12-30T23:59:60Z", "2026-12-31T23:58:60Z", "2026-02-30T00:00:00Z",
                 "2026-12-04T12:00:00+24:00", "\uff12026-12-04T12:00:00Z", "2026-12-04T12:00:00Z\n"]:
        with pytest.raises(ValueError):
            parse_rfc3339(text)
    assert parse_full_date("2026-12-04").isoformat() == "2026-12-04"


def test_printable_allows_any_script_emoji_and_joiners_but_no_control_or_format_character():
    for ok in ["Zoë", "数据管道", "مرحبا", "👩\u200d💻 agent", "a\u00a0b", "tab-free name"]:
        assert is_printable(ok), ok
    for bad in [*UNPRINTABLE, "a\tb", "a\nb", "a\x00b", "a\u200bb", "\ud800"]:
        assert not is_printable(bad), bad
