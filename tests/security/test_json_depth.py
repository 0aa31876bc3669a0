"""Issue 12 #5: a JSON body nested past 32 levels is a 422 `too_deep` naming the field, answered before any
route runs, and nothing is written. A schedule payload nested 600 deep used to be stored, answered with a
500 (the response was built after the commit), and then fail every read of the account's schedules."""

from __future__ import annotations

import json
import uuid

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from billing_core.db.workloads import Schedule
from billing_core.errors import Invalid
from billing_core.services.schedules import (PAYLOAD_MAX_DEPTH, create_schedule, get_schedule, list_schedules,
                                             update_schedule)
from billing_core.validate import MAX_JSON_DEPTH

from ..conftest import T0
from ..factories import make_account
from ..live_server import Tenant, copy_sqlite_template, create_account_cli, run_api_server

SCHEDULES = "/api/v1/schedules"


def nested(levels: int, leaf: object = 1) -> object:
    """`levels` arrays one inside the other around `leaf`."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


@pytest.fixture(scope="module")
def live(tmp_path_factory, sqlite_template):
    url = copy_sqlite_template(sqlite_template, tmp_path_factory.mktemp("json-depth"))
    with run_api_server(url) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        tenant = Tenant(**create_account_cli(server.env, f"deep-{uuid.uuid4().hex[:10]}@example.com", plan="pro"))
        yield client, tenant


def _schedule(tenant: Tenant, payload: object) -> dict:
    return {"project_id": tenant.project_id, "agent": "deep", "cron": "0 9 * * *", "payload": payload}


def test_a_schedule_payload_nested_600_deep_is_a_422_naming_payload_and_stores_nothing(live):
    client, tenant = live
    head = orjson.dumps(_schedule(tenant, None))[:-len(b"null}")]  # orjson writes no more than 255 levels
    body = head + b'{"x":' + b"[" * 600 + b"1" + b"]" * 600 + b"}}"
    assert len(body) < 4000 and json.loads(body)["payload"]["x"][0]  # the probe's 3.6 KB, valid JSON

    response = client.post(SCHEDULES, content=body, headers={**tenant.auth, "Content-Type": "application/json"})

    assert response.status_code == 422, response.text
    assert response.json() == {"error": {"code": "too_deep", "message": "payload is nested deeper than 32 levels."}}
    listed = client.get(SCHEDULES, headers=tenant.auth)
    assert listed.status_code == 200, listed.text
    assert [s for s in listed.json()["data"] if s["agent"] == "deep"] == []


@pytest.mark.parametrize("method, path", [
    ("POST", "/api/v1/usage"), ("POST", "/api/v1/check"), ("POST", "/api/v1/runs"), ("POST", "/api/v1/projects"),
    ("POST", "/api/v1/keys"), ("POST", SCHEDULES), ("PATCH", f"{SCHEDULES}/sch_unknown"),
    ("PUT", "/api/v1/projects/prj_unknown/provider-keys/openai"),
])
def test_every_json_body_is_refused_past_32_levels_and_passes_at_32(live, method, path):
    client, tenant = live
    # The body's own object is the first level.
    too_deep = orjson.dumps({"name": nested(MAX_JSON_DEPTH)})
    at_limit = orjson.dumps({"name": nested(MAX_JSON_DEPTH - 1)})
    refused = client.request(method, path, content=too_deep, headers=tenant.auth)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == {"code": "too_deep", "message": "name is nested deeper than 32 levels."}
    passed = client.request(method, path, content=at_limit, headers=tenant.auth)
    assert passed.status_code != 500 and passed.json()["error"]["code"] != "too_deep", passed.text


def test_brackets_inside_strings_do_not_count(live):
    client, tenant = live
    response = client.post(SCHEDULES, json=_schedule(tenant, {"text": "[{" * 500, "quoted": '\\"[[[' * 50}),
                           headers=tenant.auth)
    assert response.status_code == 201, response.text
    assert response.json()["payload"]["text"] == "[{" * 500


def test_a_deep_value_inside_a_usage_batch_names_the_event_and_field(live):
    client, tenant = live
    event = {"id": "e1", "project_id": tenant.project_id, "kind": "compute", "duration_ms": 1, "agent": nested(40)}
    response = client.post("/api/v1/usage", json={"events": [event]}, headers=tenant.auth)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"] == "events.0.agent is nested deeper than 32 levels."


# -- the service: checked before anything is written, so what is stored can always be answered -------------
def _count(billing) -> int:
    with billing.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Schedule)).scalar_one()


def test_the_schedule_service_refuses_a_deep_payload_before_writing(billing):
    account = make_account(billing, plan="pro", now=T0)
    with pytest.raises(Invalid) as refused:
        create_schedule(billing, account.account_id, project_id=account.project_id, agent="a", cron="0 9 * * *",
                        payload={"x": nested(600)}, now=T0)
    assert refused.value.code == "too_deep"
    assert _count(billing) == 0

    made = create_schedule(billing, account.account_id, project_id=account.project_id, agent="a",
                           cron="0 9 * * *", payload={}, now=T0)
    with pytest.raises(Invalid):
        update_schedule(billing, account.account_id, made.id, {"payload": {"x": nested(PAYLOAD_MAX_DEPTH)}}, now=T0)
    assert get_schedule(billing, account.account_id, made.id, now=T0).payload == {}


def test_a_payload_at_the_limit_is_stored_and_every_read_of_it_can_be_encoded(billing):
    account = make_account(billing, plan="pro", now=T0)
    deepest = {"x": nested(PAYLOAD_MAX_DEPTH - 1)}  # the payload object and its arrays
    made = create_schedule(billing, account.account_id, project_id=account.project_id, agent="a",
                           cron="0 9 * * *", payload=deepest, now=T0)
    listed = list_schedules(billing, account.account_id, limit=10, now=T0)
    # What the API answers, with its encoder (orjson refuses more than 255 levels).
    assert orjson.loads(orjson.dumps({"data": [v.to_dict() for v in listed.items]}))["data"][0]["payload"] == deepest
    assert orjson.loads(orjson.dumps(made.to_dict()))["payload"] == deepest


def test_a_body_with_more_brackets_than_any_request_holds_is_a_413_without_being_read_further(live):
    client, tenant = live
    body = b'{"name": [' + b",".join([b"[]"] * 140_000) + b"]}"
    response = client.post("/api/v1/projects", content=body, headers=tenant.auth)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
