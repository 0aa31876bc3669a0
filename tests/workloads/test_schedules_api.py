"""/api/v1/schedules through a live server: next runs, field-named errors, what a client may set."""

from __future__ import annotations

import re

import pytest

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def create(api, t, **fields):
    body = {"project_id": t.project_id, "agent": "nightly", "cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}
    return api.client.post("/api/v1/schedules", headers=t.auth, json=body | fields)


def ids(api, t) -> list[str]:
    return [s["id"] for s in api.client.get("/api/v1/schedules", headers=t.auth, params={"limit": 500}).json()["data"]]


def test_a_new_schedule_answers_201_with_five_next_runs_in_utc_and_a_description(api, tenant):
    r = create(api, tenant["a"], payload={"branch": "main"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert {"id", "project_id", "agent", "cron", "timezone", "enabled", "payload", "next_runs",
            "description"} <= set(made)
    assert len(made["next_runs"]) == 5 and all(RFC3339_UTC.match(t) for t in made["next_runs"])
    assert made["next_runs"] == sorted(made["next_runs"])
    assert made["description"] == "At 09:00, Monday through Friday" and made["payload"] == {"branch": "main"}
    assert api.client.get(f"/api/v1/schedules/{made['id']}", headers=tenant["a"].auth).json()["id"] == made["id"]


def test_the_timezone_defaults_to_utc(api, tenant):
    t = tenant["a"]
    made = api.client.post("/api/v1/schedules", headers=t.auth,
                           json={"project_id": t.project_id, "agent": "x", "cron": "0 0 * * *"}).json()
    assert made["timezone"] == "UTC" and all(n.endswith("T00:00:00Z") for n in made["next_runs"])


@pytest.mark.parametrize("fields, code, start", [
    ({"cron": "61 * * * *"}, "invalid_cron", "cron: 61 is outside the minute range"),
    ({"cron": "* * * *"}, "invalid_cron", "cron: expected 5 fields"),
    ({"cron": 5}, "invalid_cron", "cron: "),
    ({"cron": None}, "invalid_cron", "cron: "),
    ({"timezone": "Mars/Olympus"}, "invalid_timezone", "timezone: 'Mars/Olympus' is not an IANA"),
    ({"timezone": ["UTC"]}, "invalid_timezone", "timezone: "),
    ({"payload": [1]}, "invalid_payload", "payload: "),
    ({"payload": "x"}, "invalid_payload", "payload: "),
    ({"agent": ""}, "invalid_request", "agent: "),
    ({"enabled": "true"}, "invalid_request", "enabled: "),
])
def test_a_bad_field_answers_422_naming_the_field_and_creates_nothing(api, tenant, fields, code, start):
    t = tenant["misc"]
    before = ids(api, t)
    r = create(api, t, **fields)
    assert r.status_code == 422 and r.json()["error"]["code"] == code
    assert r.json()["error"]["message"].startswith(start)
    assert ids(api, t) == before


@pytest.mark.parametrize("field", ["id", "account_id", "cost_micros", "duration_ms", "status", "next_runs",
                                   "created_at", "last_run_at", "description"])
def test_fields_a_client_may_not_set_are_refused_with_422(api, tenant, field):
    t = tenant["misc"]
    before = ids(api, t)
    r = create(api, t, **{field: "sch_mine" if field in ("id", "account_id") else 1})
    assert r.status_code == 422
    assert r.json()["error"]["message"] == f"{field}: is not a field you can set here."
    assert ids(api, t) == before


def test_a_payload_over_16_kib_answers_413(api, tenant):
    r = create(api, tenant["misc"], payload={"blob": "x" * 16_384})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_a_patch_changes_the_fields_sent_and_disabling_empties_next_runs(api, tenant):
    t = tenant["a"]
    made = create(api, t).json()
    url = f"/api/v1/schedules/{made['id']}"
    moved = api.client.patch(url, headers=t.auth, json={"cron": "30 2 * * *", "timezone": "America/New_York"})
    assert moved.status_code == 200 and moved.json()["description"] == "At 02:30"
    assert moved.json()["agent"] == "nightly" and moved.json()["next_runs"] != made["next_runs"]
    off = api.client.patch(url, headers=t.auth, json={"enabled": False})
    assert off.json()["enabled"] is False and off.json()["next_runs"] == []
    for bad in ({"cron": None}, {"enabled": None}, {"status": "x"}, {"account_id": "acc_x"}):
        assert api.client.patch(url, headers=t.auth, json=bad).status_code == 422
    assert api.client.get(url, headers=t.auth).json() == off.json()


def test_a_deleted_schedule_answers_204_then_404(api, tenant):
    t = tenant["a"]
    made = create(api, t).json()
    url = f"/api/v1/schedules/{made['id']}"
    gone = api.client.delete(url, headers=t.auth)
    assert gone.status_code == 204 and gone.content == b""
    assert api.client.get(url, headers=t.auth).status_code == 404
    assert api.client.delete(url, headers=t.auth).status_code == 404
    assert made["id"] not in ids(api, t)


def test_the_edge_reads_an_accounts_schedules_by_naming_it(api, tenant):
    t = tenant["a"]
    made = create(api, t).json()
    listed = api.client.get("/api/v1/schedules", headers=api.edge, params={"account_id": t.account_id, "limit": 500})
    assert made["id"] in [s["id"] for s in listed.json()["data"]]
    unnamed = api.client.get("/api/v1/schedules", headers=api.edge)
    assert unnamed.status_code == 422 and unnamed.json()["error"]["code"] == "account_required"


def test_schedules_page_with_an_opaque_cursor(api, tenant):
    t = tenant["lists"]
    made = {create(api, t, agent=f"p{i}").json()["id"] for i in range(3)}
    first = api.client.get("/api/v1/schedules", headers=t.auth, params={"limit": 2}).json()
    rest = api.client.get("/api/v1/schedules", headers=t.auth,
                          params={"limit": 500, "cursor": first["next_cursor"]}).json()
    seen = [s["id"] for s in first["data"] + rest["data"]]
    assert made <= set(seen) and len(seen) == len(set(seen)) and rest["next_cursor"] is None
