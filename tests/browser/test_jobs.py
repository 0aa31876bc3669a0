"""/runs and /schedules in a real Chromium against the production server holding the demo account.

The demo has 60 days of runs and a few schedules; the runs the tests follow are made here as the edge
makes them: POST /api/v1/runs, usage events carrying the run's id, then PATCH through running to an end.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect

from portal.components.format import duration, usd

from .conftest import save_screenshot

pytestmark = pytest.mark.slow
AGENTS = {"research": ("web-researcher", "summarizer"), "support": ("triage", "reply-drafter"),
          "data-pipeline": ("nightly-etl", "report-writer")}
RUNS_MADE = 30  # more than one page of 25
ROWS = "#runs-table tr[data-run-id]"


@pytest.fixture(scope="module")
def api(demo_server):
    with httpx.Client(base_url=demo_server.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {demo_server.api_key}"}) as client:
        yield client


@pytest.fixture(scope="module")
def projects(api) -> dict[str, str]:
    return {p["name"]: p["id"] for p in api.get("/api/v1/projects").json()["data"]}


@pytest.fixture(scope="module")
def made_runs(api, projects) -> list[dict]:
    """Thirty runs across the demo's projects with compute and token usage; most succeed, some fail."""
    tag, runs, events = uuid.uuid4().hex[:6], [], []
    names = list(AGENTS)
    for i in range(RUNS_MADE):
        project = names[i % 3]
        run = {"id": f"run_{tag}_{i:02d}", "project_id": projects[project], "agent": AGENTS[project][i % 2],
               "trigger": ("api", "manual")[i % 2]}
        assert api.post("/api/v1/runs", json=run).status_code == 201
        events += [{"id": f"{run['id']}-c", "project_id": run["project_id"], "kind": "compute",
                    "duration_ms": 20_000 + 37_000 * i, "agent": run["agent"], "run_id": run["id"]},
                   {"id": f"{run['id']}-t", "project_id": run["project_id"], "kind": "tokens",
                    "model": "claude-sonnet-4", "provider": "anthropic", "input_tokens": 900 + 50 * i,
                    "output_tokens": 120 + 7 * i, "agent": run["agent"], "run_id": run["id"]}]
        runs.append(run)
    results = api.post("/api/v1/usage", json={"events": events}).json()["results"]
    assert {r["status"] for r in results} == {"accepted"}
    for i, run in enumerate(runs):
        if i % 10 == 9:
            continue  # still queued
        api.patch(f"/api/v1/runs/{run['id']}", json={"status": "running"}).raise_for_status()
        if i % 10 == 8:
            continue  # still running
        body = {"status": "failed", "error": "The tool call timed out after 120 s."} if i % 7 == 3 else \
            {"status": "succeeded"}
        api.patch(f"/api/v1/runs/{run['id']}", json=body).raise_for_status()
    return runs


def _api_ids(api, **params) -> tuple[list[str], str | None]:
    body = api.get("/api/v1/runs", params={"limit": 25, **params}).json()
    return [r["id"] for r in body["data"]], body["next_cursor"]


def _shown_ids(page) -> list[str]:
    return [row.get_attribute("data-run-id") for row in page.locator(ROWS).all()]


def _expect_rows(page, ids: list[str]) -> None:
    """The table shows exactly these runs in this order (waiting out a fetch still under way)."""
    expect(page.locator(ROWS)).to_have_count(len(ids))
    for _ in range(50):
        if _shown_ids(page) == ids:
            return
        page.wait_for_timeout(100)
    assert _shown_ids(page) == ids


def _choose(page, trigger: str, option: str) -> None:
    page.locator(trigger).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_the_runs_list_pages_through_the_apis_runs_newest_first(signed_in_page, demo_server, api, made_runs):
    page = signed_in_page
    page.goto(f"{demo_server.base_url}/runs")
    first, cursor = _api_ids(api)
    _expect_rows(page, first)
    row = page.locator(f"tr[data-run-id='{first[0]}']")
    view = api.get(f"/api/v1/runs/{first[0]}").json()
    expect(row).to_contain_text(view["agent"])
    expect(row).to_contain_text(usd(view["cost_micros"]))
    expect(row).to_contain_text(duration(view["duration_ms"]))
    expect(page.locator("#runs-pager-prev")).to_be_disabled()
    page.locator("#runs-pager-next").click()
    second, _ = _api_ids(api, cursor=cursor)
    expect(page.locator("#runs-pager-page")).to_have_text("Page 2")
    _expect_rows(page, second)
    page.locator("#runs-pager-prev").click()
    expect(page.locator("#runs-pager-page")).to_have_text("Page 1")
    _expect_rows(page, first)


def test_filters_by_status_project_and_agent_show_what_the_api_lists(signed_in_page, demo_server, api, projects,
                                                                     made_runs):
    page = signed_in_page
    page.goto(f"{demo_server.base_url}/runs")
    expect(page.locator(ROWS).first).to_be_visible()
    _choose(page, "#filter-status", "Failed")
    failed, _ = _api_ids(api, status="failed")
    assert failed
    _expect_rows(page, failed)
    _choose(page, "#filter-status", "All statuses")
    _choose(page, "#filter-project", "support")
    _expect_rows(page, _api_ids(api, project_id=projects["support"])[0])
    page.locator("#filter-agent").fill("triage")
    both, _ = _api_ids(api, project_id=projects["support"], agent="triage")
    _expect_rows(page, both)
    page.locator("#filter-agent").fill("no-such-agent")
    expect(page.locator(ROWS)).to_have_count(0)
    expect(page.get_by_text("No runs match these filters")).to_be_visible()
    page.locator("#filter-clear").click()
    _expect_rows(page, _api_ids(api)[0])


def test_a_runs_detail_shows_its_drawdown_as_the_api_reports_it(signed_in_page, demo_server, api, made_runs):
    page = signed_in_page
    page.goto(f"{demo_server.base_url}/runs")
    for run in (made_runs[-2], made_runs[24]):  # a long one still running, a failed one (both on page one)
        view = api.get(f"/api/v1/runs/{run['id']}").json()
        page.locator(f"tr[data-run-id='{run['id']}']").click()
        dialog = page.locator("#run-detail")
        expect(dialog.locator("#detail-id")).to_have_text(run["id"])
        drawn = view["drawdown"]
        expected = {"allowance": (drawn["allowance_ms"], duration(drawn["allowance_ms"])),
                    "pool": (drawn["pool_ms"], duration(drawn["pool_ms"])),
                    "credit": (drawn["credit_micros"], usd(drawn["credit_micros"]))}
        if drawn["overage_micros"] or not drawn["debt_micros"]:
            expected["overage"] = (drawn["overage_micros"], usd(drawn["overage_micros"]))
        if drawn["debt_micros"]:
            expected["debt"] = (drawn["debt_micros"], usd(drawn["debt_micros"]))
        for key, (raw, text) in expected.items():
            expect(dialog.locator(f"#drawdown-{key}")).to_have_attribute("data-raw", str(raw))
            expect(dialog.locator(f"#drawdown-{key}")).to_have_text(text)
        steps = dialog.locator("#drawdown > div")
        assert steps.count() == len(expected)  # allowance, pools, credit, then overage or debt: in that order
        assert [s.get_attribute("id") for s in dialog.locator("#drawdown [id^=drawdown-]").all()] == \
            [f"drawdown-{k}" for k in expected]
        expect(dialog.locator("#detail-cost")).to_have_attribute("data-raw", str(view["cost_micros"]))
        expect(dialog.locator("#detail-duration")).to_have_text(duration(view["duration_ms"]))
        if view["error"]:
            expect(dialog).to_contain_text(view["error"])
        dialog.locator("#detail-close").click()
        expect(dialog).to_be_hidden()


def test_a_new_run_and_its_progress_show_without_a_reload(signed_in_page, demo_server, api, projects, made_runs):
    page = signed_in_page
    page.goto(f"{demo_server.base_url}/runs")
    expect(page.locator(ROWS).first).to_be_visible()
    run_id = f"run_live_{uuid.uuid4().hex[:8]}"
    body = {"id": run_id, "project_id": projects["research"], "agent": "summarizer", "trigger": "manual"}
    assert api.post("/api/v1/runs", json=body).status_code == 201
    row = page.locator(f"tr[data-run-id='{run_id}']")
    expect(row).to_be_visible(timeout=5_000)
    expect(page.locator(f"{ROWS}:first-child")).to_have_attribute("data-run-id", run_id)
    expect(row).to_contain_text("Queued")
    api.patch(f"/api/v1/runs/{run_id}", json={"status": "running"}).raise_for_status()
    expect(row).to_contain_text("Running", timeout=5_000)
    api.patch(f"/api/v1/runs/{run_id}", json={"status": "succeeded"}).raise_for_status()
    expect(row).to_contain_text("Succeeded", timeout=5_000)


# -- schedules -------------------------------------------------------------------------------------------
def _schedules(api) -> dict[str, dict]:
    return {s["id"]: s for s in api.get("/api/v1/schedules", params={"limit": 500}).json()["data"]}


def test_create_and_edit_a_schedule_with_messages_beside_bad_fields(signed_in_page, demo_server, api, projects):
    page, agent = signed_in_page, f"digest-{uuid.uuid4().hex[:6]}"
    page.goto(f"{demo_server.base_url}/schedules")
    page.locator("#schedule-new").click()
    form = page.locator("#schedule-form")
    expect(form).to_be_visible()
    _choose(page, "#schedule-project", "research")
    form.locator("#schedule-agent").fill(agent)
    form.locator("#schedule-cron").fill("61 * * * *")
    expect(form.locator("#schedule-cron-error")).to_have_text("61 is outside the minute range 0-59.")
    expect(form.locator("#schedule-save")).to_be_disabled()
    form.locator("#schedule-cron").fill("0 9 * *")
    expect(form.locator("#schedule-cron-error")).to_contain_text("Expected 5 fields")
    form.locator("#schedule-timezone").fill("europe/berlin")
    expect(form.locator("#schedule-timezone-error")).to_contain_text("did you mean 'Europe/Berlin'?")
    form.locator("#schedule-cron").fill("0 9 * * 1-5")
    form.locator("#schedule-timezone").fill("Europe/Berlin")
    expect(form.locator("#schedule-cron-error")).to_have_count(0)
    expect(form.locator("#schedule-timezone-error")).to_have_count(0)
    expect(form.locator("#cron-description")).to_have_text("At 09:00, Monday through Friday")
    form.locator("#schedule-save").click()
    expect(form).to_be_hidden()

    [created] = [s for s in _schedules(api).values() if s["agent"] == agent]
    assert (created["cron"], created["timezone"], created["enabled"]) == ("0 9 * * 1-5", "Europe/Berlin", True)
    assert created["project_id"] == projects["research"] and len(created["next_runs"]) == 5
    row = page.locator(f"#schedules-table tr[data-schedule-id='{created['id']}']")
    expect(row).to_contain_text("At 09:00, Monday through Friday")
    expect(row).to_contain_text("Europe/Berlin")
    berlin = ZoneInfo("Europe/Berlin")
    upcoming = [datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(berlin) for t in created["next_runs"]]
    expect(row).to_contain_text(f"{upcoming[0]:%a %b %d, %H:%M %Z}")  # the next run, in the schedule's zone
    row.locator(".next-run").hover()
    expect(page.locator(".next-runs")).to_have_text("\n".join(f"{t:%a %b %d, %H:%M %Z}" for t in upcoming))

    row.get_by_role("button", name="Edit").click()
    expect(form.locator("#schedule-cron")).to_have_value("0 9 * * 1-5")
    form.locator("#schedule-cron").fill("30 6 * * *")
    expect(form.locator("#cron-description")).to_have_text("At 06:30")
    form.locator("#schedule-save").click()
    expect(form).to_be_hidden()
    expect(row).to_contain_text("At 06:30")
    assert _schedules(api)[created["id"]]["cron"] == "30 6 * * *"

    row.get_by_role("switch").click()
    expect(row).to_contain_text("Paused")
    assert _schedules(api)[created["id"]]["enabled"] is False

    row.get_by_role("button", name="Delete").click()
    page.locator("#schedule-delete-confirm").click()
    expect(row).to_have_count(0)
    assert created["id"] not in _schedules(api)


# -- screenshots -----------------------------------------------------------------------------------------
def test_screenshots_of_runs_and_schedules(screen, demo_server, scheme):
    """The demo's own runs and schedules (these run before the tests above add theirs)."""
    page = screen
    for name, ready in (("runs", ROWS), ("schedules", "#schedules-table tr[data-schedule-id]")):
        page.goto(f"{demo_server.base_url}/{name}")
        expect(page.locator(ready).first).to_be_visible()
        page.wait_for_timeout(300)
        save_screenshot(page, name, scheme)
