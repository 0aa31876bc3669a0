"""Another account's runs and schedules are unknown (404, nothing changes); no input gets a 500."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from billing_core.services.paging import encode_cursor


@pytest.fixture
def a_things(api, tenant):
    """A run and a schedule of account A, as A sees them."""
    a = tenant["a"]
    run = api.client.post("/api/v1/runs", headers=a.auth, json={"project_id": a.project_id, "agent": "own"}).json()
    api.client.patch(f"/api/v1/runs/{run['id']}", headers=a.auth, json={"status": "running"})
    schedule = api.client.post("/api/v1/schedules", headers=a.auth, json={
        "project_id": a.project_id, "agent": "own", "cron": "0 * * * *", "payload": {"k": 1}}).json()
    return run["id"], schedule["id"]


def snapshot(api, a, run_id, schedule_id):
    run = api.client.get(f"/api/v1/runs/{run_id}", headers=a.auth).json()
    schedule = api.client.get(f"/api/v1/schedules/{schedule_id}", headers=a.auth).json()
    schedule.pop("next_runs")  # moves with the clock
    return run, schedule


def test_account_b_gets_404_for_every_read_and_write_on_account_as_runs_and_schedules(api, tenant, a_things):
    a, b = tenant["a"], tenant["b"]
    run_id, schedule_id = a_things
    before = snapshot(api, a, run_id, schedule_id)
    attempts = [
        ("GET", f"/api/v1/runs/{run_id}", None),
        ("PATCH", f"/api/v1/runs/{run_id}", {"status": "succeeded"}),
        ("PATCH", f"/api/v1/runs/{run_id}", {"status": "cancelled"}),
        ("GET", f"/api/v1/schedules/{schedule_id}", None),
        ("PATCH", f"/api/v1/schedules/{schedule_id}", {"enabled": False}),
        ("PATCH", f"/api/v1/schedules/{schedule_id}", {"project_id": b.project_id}),
        ("DELETE", f"/api/v1/schedules/{schedule_id}", None),
        ("POST", "/api/v1/runs", {"project_id": a.project_id, "agent": "intruder"}),
        ("POST", "/api/v1/schedules", {"project_id": a.project_id, "agent": "intruder", "cron": "* * * * *"}),
    ]
    for method, url, body in attempts:
        r = api.client.request(method, url, headers=b.auth, json=body)
        assert r.status_code == 404, (method, url, r.status_code, r.text)
        assert r.json()["error"]["code"] == "not_found"
    # B's own schedule cannot be moved into A's project either.
    own = api.client.post("/api/v1/schedules", headers=b.auth,
                          json={"project_id": b.project_id, "agent": "b", "cron": "* * * * *"}).json()
    moved = api.client.patch(f"/api/v1/schedules/{own['id']}", headers=b.auth, json={"project_id": a.project_id})
    assert moved.status_code == 404
    # Lists show B nothing of A's, even filtered by A's project.
    for url in ("/api/v1/runs", "/api/v1/schedules"):
        for params in ({"limit": 500}, {"project_id": a.project_id}):
            listed = api.client.get(url, headers=b.auth, params=params).json()["data"]
            assert run_id not in [x["id"] for x in listed] and schedule_id not in [x["id"] for x in listed]
    assert snapshot(api, a, run_id, schedule_id) == before


def test_the_edge_acting_for_b_cannot_reach_as_run_or_schedule(api, tenant, a_things):
    a, b = tenant["a"], tenant["b"]
    run_id, schedule_id = a_things
    before = snapshot(api, a, run_id, schedule_id)
    as_b = {"account_id": b.account_id}
    assert api.client.get(f"/api/v1/runs/{run_id}", headers=api.edge, params=as_b).status_code == 404
    assert api.client.patch(f"/api/v1/runs/{run_id}", headers=api.edge,
                            json={"status": "failed"} | as_b).status_code == 404
    assert api.client.delete(f"/api/v1/schedules/{schedule_id}", headers=api.edge, params=as_b).status_code == 404
    assert snapshot(api, a, run_id, schedule_id) == before


def test_a_key_naming_another_account_is_refused(api, tenant, a_things):
    run_id, _ = a_things
    r = api.client.get(f"/api/v1/runs/{run_id}", headers=tenant["b"].auth,
                       params={"account_id": tenant["a"].account_id})
    assert r.status_code == 422


def test_no_credentials_or_a_bad_key_is_401(api, tenant):
    assert api.client.get("/api/v1/runs").status_code == 401
    assert api.client.get("/api/v1/schedules", headers={"Authorization": "Bearer ak_live_nope"}).status_code == 401


NASTY_IDS = ["x" * 5000, "run_%00", "%00", "..", "run_\u00e9", "' OR 1=1 --", "%F0%9F%92%A5", "a%2Fb", "~"]


@pytest.mark.parametrize("resource", ["runs", "schedules"])
@pytest.mark.parametrize("bad_id", NASTY_IDS)
def test_an_unknown_or_malformed_id_in_the_path_is_404(api, tenant, resource, bad_id):
    a = tenant["misc"]
    for method, body in (("GET", None), ("PATCH", {"status": "running"} if resource == "runs" else {"agent": "x"}),
                         ("DELETE", None)):
        if resource == "runs" and method == "DELETE":
            continue
        r = api.client.request(method, f"/api/v1/{resource}/{bad_id}", headers=a.auth, json=body)
        # A NUL may be turned away at the door (400) before any route sees it.
        assert r.status_code == 404 or ("%00" in bad_id and r.status_code == 400), (method, bad_id, r.text)
        assert set(r.json()) == {"error"}


BAD_BODIES = [
    b"{not json", b"", b"null", b"[]", b'"text"', b"123", b'{"project_id": {"$gt": ""}}',
    b'{"project_id": "prj_x", "agent": "' + b"a" * 200 + b'"}',
    b'{"project_id": "prj_x", "agent": "a\\u0000b"}',
    b'{"project_id": "prj_x", "agent": "\\ud800"}',
    b'{"project_id": "p\\u0000", "agent": "a"}',
    b'{"project_id": 99999999999999999999999999, "agent": "a"}',
    b'{"project_id": "prj_x", "agent": "a", "id": "' + b"r" * 129 + b'"}',
    b'{"project_id": "prj_x", "agent": "a", "id": "has\\u0000nul"}',
    b'{"project_id": "prj_x", "agent": "a", "trigger": "cron"}',
    b'{"status": 1e999}', b'{"status": "running", "error": "' + b"e" * 600 + b'"}',
    b'{"cron": "' + b"* " * 5000 + b'"}', b'{"timezone": "\\u0000"}', b'{"payload": {"a": NaN}}',
    b'{"payload": ' + b'{"a":' * 2000 + b"1" + b"}" * 2000 + b"}",
    b'{"cron": "0 0 * * *", "timezone": "Etc/GMT+99", "project_id": "x", "agent": "y"}',
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_no_malformed_or_hostile_body_gets_a_500_and_each_gets_the_error_shape(api, tenant, a_things, body):
    a = tenant["a"]
    run_id, schedule_id = a_things
    before = snapshot(api, a, run_id, schedule_id)
    headers = a.auth | {"Content-Type": "application/json"}
    for method, url in (("POST", "/api/v1/runs"), ("PATCH", f"/api/v1/runs/{run_id}"),
                        ("POST", "/api/v1/schedules"), ("PATCH", f"/api/v1/schedules/{schedule_id}")):
        r = api.client.request(method, url, headers=headers, content=body)
        assert 400 <= r.status_code < 500, (method, url, body[:80], r.status_code, r.text)
        assert set(r.json()) == {"error"} and set(r.json()["error"]) == {"code", "message"}
    assert snapshot(api, a, run_id, schedule_id) == before


COMMON_BAD_PARAMS = [{"limit": 0}, {"limit": 501}, {"limit": "ten"}, {"limit": 10**30}, {"cursor": "garbage"},
                     {"cursor": "x" * 600}, {"cursor": "eyJhIjoxfQ"},
                     {"cursor": "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwgInJ1bl94Il0"},  # a naive time
                     {"cursor": encode_cursor(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), "run_x")},
                     {"project_id": "p\x00"}, {"account_id": "acc\x00"}]
BAD_PARAMS = [("runs", p) for p in COMMON_BAD_PARAMS + [{"status": "exploded"}, {"agent": "a\x00"},
                                                         {"agent": "a" * 101}]] + \
             [("schedules", p) for p in COMMON_BAD_PARAMS + [{"enabled": "maybe"}]]


@pytest.mark.parametrize("resource, params", BAD_PARAMS)
def test_bad_list_parameters_get_a_4xx_never_a_500(api, tenant, resource, params):
    r = api.client.get(f"/api/v1/{resource}", headers=tenant["misc"].auth, params=params)
    assert 400 <= r.status_code < 500, (params, r.status_code, r.text)
    assert set(r.json()["error"]) == {"code", "message"}


@pytest.mark.parametrize("account_id", ["acc\x00", "x" * 41, "acc_nobody", "' OR 1=1"])
def test_the_edge_naming_a_malformed_or_unknown_account_gets_no_500(api, tenant, account_id):
    for method, url, kw in (("GET", "/api/v1/runs", {"params": {"account_id": account_id}}),
                            ("GET", "/api/v1/runs/run_x", {"params": {"account_id": account_id}}),
                            ("POST", "/api/v1/runs", {"json": {"account_id": account_id, "project_id": "p",
                                                               "agent": "a"}}),
                            ("GET", "/api/v1/schedules", {"params": {"account_id": account_id}})):
        r = api.client.request(method, url, headers=api.edge, **kw)
        assert r.status_code in (200, 400, 404, 422), (method, url, r.status_code, r.text)
        if r.status_code == 200:
            assert r.json()["data"] == []
