"""/api/v1/runs through a live server: reporting, lifecycle, derived cost, listing, what a client may set."""

from __future__ import annotations

import uuid

import pytest

RUN_FIELDS = {"id", "project_id", "agent", "status", "trigger", "schedule_id", "error", "started_at", "finished_at",
              "created_at", "duration_ms", "cost_micros"}


def edge_run_id() -> str:
    return f"edge-{uuid.uuid4().hex}"


def test_an_account_key_creates_a_queued_run_with_a_generated_id(api, tenant):
    a = tenant["a"]
    r = api.client.post("/api/v1/runs", headers=a.auth, json={"project_id": a.project_id, "agent": "builder"})
    assert r.status_code == 201, r.text
    run = r.json()
    assert set(run) == RUN_FIELDS | {"drawdown"}
    assert run["id"].startswith("run_") and (run["status"], run["trigger"]) == ("queued", "api")
    assert api.client.get(f"/api/v1/runs/{run['id']}", headers=a.auth).json() == run


def test_the_edge_reports_a_run_with_its_own_id_and_a_retry_answers_200_with_the_same_run(api, tenant):
    a, run_id = tenant["a"], edge_run_id()
    body = {"id": run_id, "account_id": a.account_id, "project_id": a.project_id, "agent": "crawler",
            "trigger": "schedule"}
    first = api.client.post("/api/v1/runs", headers=api.edge, json=body)
    again = api.client.post("/api/v1/runs", headers=api.edge, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json() and first.json()["id"] == run_id
    clash = api.client.post("/api/v1/runs", headers=api.edge, json=body | {"agent": "other"})
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "run_exists"


def test_the_edge_must_name_the_account(api, tenant):
    a = tenant["a"]
    r = api.client.post("/api/v1/runs", headers=api.edge, json={"project_id": a.project_id, "agent": "x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "account_required"


def test_an_account_key_can_neither_name_an_account_nor_start_a_scheduled_run(api, tenant):
    a, b = tenant["a"], tenant["b"]
    named = api.client.post("/api/v1/runs", headers=a.auth,
                            json={"project_id": a.project_id, "agent": "x", "account_id": b.account_id})
    scheduled = api.client.post("/api/v1/runs", headers=a.auth,
                                json={"project_id": a.project_id, "agent": "x", "trigger": "schedule"})
    assert named.status_code == 422 and "account_id" in named.json()["error"]["message"]
    assert scheduled.status_code == 422 and scheduled.json()["error"]["code"] == "invalid_trigger"


def test_a_run_goes_from_queued_to_running_to_succeeded_and_then_cannot_change(api, tenant):
    a = tenant["a"]
    run = api.client.post("/api/v1/runs", headers=a.auth, json={"project_id": a.project_id, "agent": "b"}).json()
    url = f"/api/v1/runs/{run['id']}"
    running = api.client.patch(url, headers=api.edge, json={"status": "running", "account_id": a.account_id})
    assert running.status_code == 200 and running.json()["started_at"].endswith("Z")
    done = api.client.patch(url, headers=a.auth, json={"status": "succeeded"})
    assert done.status_code == 200 and done.json()["finished_at"] >= done.json()["started_at"]
    late = api.client.patch(url, headers=a.auth, json={"status": "failed", "error": "too late"})
    assert late.status_code == 409
    assert late.json() == {"error": {"code": "run_finished",
                                     "message": "The run has already succeeded; a finished run cannot change."}}
    assert api.client.get(url, headers=a.auth).json()["status"] == "succeeded"


def test_a_queued_run_cannot_jump_to_succeeded(api, tenant):
    a = tenant["a"]
    run = api.client.post("/api/v1/runs", headers=a.auth, json={"project_id": a.project_id, "agent": "b"}).json()
    r = api.client.patch(f"/api/v1/runs/{run['id']}", headers=a.auth, json={"status": "succeeded"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"


def test_cost_duration_and_drawdown_come_from_the_usage_events_carrying_the_run_id(api, tenant):
    u = tenant["usage"]
    run_id = edge_run_id()
    api.client.post("/api/v1/runs", headers=api.edge,
                    json={"id": run_id, "account_id": u.account_id, "project_id": u.project_id, "agent": "x"})
    events = [{"id": f"{run_id}-c1", "project_id": u.project_id, "kind": "compute", "duration_ms": 3_000_000,
               "run_id": run_id},
              {"id": f"{run_id}-c2", "project_id": u.project_id, "kind": "compute", "duration_ms": 1_200_000,
               "run_id": run_id},
              {"id": f"{run_id}-t1", "project_id": u.project_id, "kind": "tokens", "model": "gpt-4o",
               "input_tokens": 1_000, "output_tokens": 500, "run_id": run_id},
              {"id": f"{run_id}-other", "project_id": u.project_id, "kind": "compute", "duration_ms": 5_000}]
    reported = api.client.post("/api/v1/usage", headers=u.auth, json={"events": events}).json()["results"]
    assert [r["status"] for r in reported] == ["accepted"] * 4
    charged = [r["charged"] for r in reported[:3]]
    expected = {k: sum(c[k] for c in charged) for k in charged[0]}
    run = api.client.get(f"/api/v1/runs/{run_id}", headers=u.auth).json()
    assert run["drawdown"] == expected
    assert run["duration_ms"] == 4_200_000
    assert run["cost_micros"] == expected["credit_micros"] + expected["overage_micros"] + expected["debt_micros"] > 0
    listed = api.client.get("/api/v1/runs", headers=u.auth).json()["data"]
    mine = next(r for r in listed if r["id"] == run_id)
    assert (mine["duration_ms"], mine["cost_micros"]) == (run["duration_ms"], run["cost_micros"])


def test_runs_are_listed_with_filters_and_pages_that_never_repeat(api, tenant):
    t = tenant["lists"]
    ids = [api.client.post("/api/v1/runs", headers=t.auth,
                           json={"project_id": t.project_id, "agent": f"agent-{i % 2}"}).json()["id"]
           for i in range(5)]
    api.client.patch(f"/api/v1/runs/{ids[0]}", headers=t.auth, json={"status": "cancelled"})
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.client.get("/api/v1/runs", headers=t.auth, params=params).json()
        assert set(page) == {"data", "next_cursor"} and len(page["data"]) <= 2
        seen += [r["id"] for r in page["data"]]
        if not (cursor := page["next_cursor"]):
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))

    def get(**params) -> list[str]:
        return [r["id"] for r in api.client.get("/api/v1/runs", headers=t.auth, params=params).json()["data"]]

    assert get(status="cancelled") == [ids[0]]
    assert sorted(get(agent="agent-1")) == sorted([ids[1], ids[3]])
    assert sorted(get(project_id=t.project_id)) == sorted(ids)


@pytest.mark.parametrize("extra", [{"cost_micros": 0}, {"duration_ms": 1}, {"status": "succeeded"},
                                   {"status": "queued"}, {"started_at": "2026-01-01T00:00:00Z"},
                                   {"finished_at": None}, {"drawdown": {}}, {"error": "x"}, {"created_at": "x"}])
def test_a_client_cannot_set_derived_or_lifecycle_fields_when_creating_a_run(api, tenant, extra):
    a = tenant["a"]
    before = api.client.get("/api/v1/runs", headers=a.auth, params={"limit": 500}).json()["data"]
    r = api.client.post("/api/v1/runs", headers=a.auth, json={"project_id": a.project_id, "agent": "m"} | extra)
    assert r.status_code == 422 and r.json()["error"]["message"].startswith(next(iter(extra)))
    assert api.client.get("/api/v1/runs", headers=a.auth, params={"limit": 500}).json()["data"] == before


@pytest.mark.parametrize("extra", [{"cost_micros": 5}, {"duration_ms": 5}, {"started_at": "2026-01-01T00:00:00Z"},
                                   {"project_id": "prj_x"}, {"agent": "renamed"}, {"id": "other"}])
def test_a_client_cannot_patch_anything_but_status_and_error(api, tenant, extra):
    a = tenant["a"]
    run = api.client.post("/api/v1/runs", headers=a.auth, json={"project_id": a.project_id, "agent": "m"}).json()
    r = api.client.patch(f"/api/v1/runs/{run['id']}", headers=a.auth, json={"status": "running"} | extra)
    assert r.status_code == 422
    assert api.client.get(f"/api/v1/runs/{run['id']}", headers=a.auth).json() == run
