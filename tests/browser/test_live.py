"""Live updates: changes made elsewhere show on an open dashboard within a second, pushed by the server."""

from __future__ import annotations

import re
import subprocess
import time
import uuid

import httpx
from playwright.sync_api import expect

from portal.components import format as fmt
from tests.identity.servers import BIN

from .conftest import TIMEOUT_MS, sign_in

LIVE_LIMIT_S = 1.0  # issue 4: every open page of the account shows a change within 1 s
# One sample on a shared CI machine can stall behind other work; bench/live_latency.py measures the spread.
SINGLE_SAMPLE_LIMIT_S = 2 * LIVE_LIMIT_S


def _api(demo) -> httpx.Client:
    return httpx.Client(base_url=demo.base_url, timeout=30, headers={"Authorization": f"Bearer {demo.api_key}"})


def _wait_for_change(page, selector: str, before: str, limit_s: float = 5.0) -> float:
    """Seconds until the text at `selector` differs from `before` (fails after `limit_s`)."""
    started = time.perf_counter()
    page.wait_for_function("([s, b]) => { const e = document.querySelector(s); return e && e.innerText !== b; }",
                           arg=[selector, before], timeout=limit_s * 1000, polling="raf")
    return time.perf_counter() - started


def test_a_usage_report_shows_without_a_reload(signed_in_page, demo_server):
    page = signed_in_page
    events = page.locator("#stat-events-today")
    expect(events).to_have_text(re.compile(r"^[\d,]+$"))
    page.evaluate("window.__notReloaded = true")
    client = _api(demo_server)
    project_id = client.get("/api/v1/projects").json()["data"][0]["id"]
    took = []
    for _ in range(5):
        before = events.inner_text()
        started = time.perf_counter()
        response = client.post("/api/v1/usage", json={"events": [
            {"id": f"live-{uuid.uuid4().hex}", "project_id": project_id, "kind": "compute", "duration_ms": 90_000}]})
        assert response.status_code == 200 and response.json()["results"][0]["status"] == "accepted"
        _wait_for_change(page, "#stat-events-today", before)
        took.append(time.perf_counter() - started)
        assert events.inner_text() == fmt.number(int(before.replace(",", "")) + 1)
    assert sorted(took)[2] < LIVE_LIMIT_S, f"the median change took {sorted(took)[2]:.2f} s to show: {took}"
    assert page.evaluate("window.__notReloaded") is True  # the same document: pushed, not reloaded


def test_a_change_made_by_another_process_shows(signed_in_page, demo_server):
    """The admin CLI writes to the database directly: the watcher, not the in-process hook, finds it."""
    page = signed_in_page
    account = _api(demo_server).get("/api/v1/account").json()
    credit = page.locator("#credit-balance")
    expect(credit).to_have_text(fmt.usd_cents(account["credit"]["balance_micros"]))
    before = credit.inner_text()
    subprocess.run([str(BIN / "tollgate"), "admin", "grant-credit", account["id"], "--usd", "1.25"],
                   env=demo_server.env, check=True, capture_output=True, timeout=120)
    elapsed = _wait_for_change(page, "#credit-balance", before)
    assert credit.inner_text() == fmt.usd_cents(account["credit"]["balance_micros"] + 1_250_000)
    assert elapsed < SINGLE_SAMPLE_LIMIT_S, f"the change took {elapsed:.2f} s to show after the CLI exited"
    expect(page.locator(".activity-row").first).to_contain_text("$1.25 credit added.")


def test_a_key_created_in_another_tab_shows_in_this_one(browser, demo_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        first = context.new_page()
        sign_in(first, demo_server)
        expect(first.locator(".key-row").first).to_be_visible()
        second = context.new_page()
        second.goto(demo_server.base_url + "/")
        second.locator("#create-key").click()
        name = f"tab {uuid.uuid4().hex[:6]}"
        second.locator("#new-key-name").fill(name)
        second.locator("#create-key-submit").click()
        expect(second.locator("#new-key-secret")).to_be_visible()
        expect(first.locator(".key-row", has_text=name)).to_have_count(1, timeout=SINGLE_SAMPLE_LIMIT_S * 1000)
        expect(first.locator("#new-key-secret")).to_have_count(0)  # the secret stays in the tab that asked
        key_id = next(k["id"] for k in _api(demo_server).get("/api/v1/keys").json()["data"] if k["name"] == name)
        _api(demo_server).delete(f"/api/v1/keys/{key_id}")
        expect(first.locator(".key-row", has_text=name)).to_have_count(0)
    finally:
        context.close()


def test_live_updates_follow_the_tab_to_another_page_and_back(signed_in_page, demo_server):
    page = signed_in_page
    page.locator("#nav-projects").first.click()
    page.wait_for_url(demo_server.base_url + "/projects")
    page.locator("#nav-dashboard").first.click()
    page.wait_for_url(demo_server.base_url + "/")
    events = page.locator("#stat-events-today")
    expect(events).to_have_text(re.compile(r"^[\d,]+$"))
    before = events.inner_text()
    client = _api(demo_server)
    project_id = client.get("/api/v1/projects").json()["data"][0]["id"]
    client.post("/api/v1/usage", json={"events": [
        {"id": f"nav-{uuid.uuid4().hex}", "project_id": project_id, "kind": "compute", "duration_ms": 1_000}]})
    assert _wait_for_change(page, "#stat-events-today", before) < SINGLE_SAMPLE_LIMIT_S
