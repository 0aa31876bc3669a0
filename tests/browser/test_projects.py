"""/projects and /projects/[id] in a real Chromium against the production server holding the demo account."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from playwright.sync_api import expect

from portal.components.format import duration, number, usd_cents

from .conftest import TIMEOUT_MS, save_screenshot

pytestmark = pytest.mark.slow
ANTHROPIC_KEY = "sk-ant-api03-" + "Q" * 40 + "abcd"
ANTHROPIC_KEY_2 = "sk-ant-api03-" + "R" * 40 + "wxyz"
PASSWORD = "correct horse 1843"


@pytest.fixture
def api(demo_server):
    with httpx.Client(base_url=demo_server.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {demo_server.api_key}"}) as client:
        yield client


@pytest.fixture
def scratch_project(api):
    """A project of the demo account for tests that change keys, deleted afterwards."""
    created = api.post("/api/v1/projects", json={"name": f"scratch-{uuid.uuid4().hex[:6]}"})
    assert created.status_code == 201, created.text
    yield created.json()
    api.delete(f"/api/v1/projects/{created.json()['id']}")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _expected_cards(api) -> dict[str, dict[str, str]]:
    """What each project card should say, from the API alone."""
    projects = api.get("/api/v1/projects").json()["data"]
    period_start = api.get("/api/v1/account").json()["period"]["start"][:10]
    today = datetime.now(timezone.utc).date()
    summary = api.get("/api/v1/usage/summary", params={"from": period_start, "to": today.isoformat(),
                                                       "group_by": "project"}).json()["data"]
    by_project = {row["key"]: row for row in summary}
    midnight = datetime.combine(today, datetime.min.time(), tzinfo=timezone.utc)
    cards = {}
    for p in projects:
        runs = api.get("/api/v1/runs", params={"project_id": p["id"], "limit": 500}).json()["data"]
        usage = by_project.get(p["id"], {"compute_ms": 0, "cost_micros": 0})
        cards[p["id"]] = {
            "name": p["name"], "compute": duration(usage["compute_ms"]), "spend": usd_cents(usage["cost_micros"]),
            "runs": number(sum(_time(r["created_at"]) >= midnight for r in runs)),
            "hmac": f"{p['hmac_key']['prefix']}...{p['hmac_key']['last4']}"}
    return cards


def _shown_cards(page) -> dict[str, dict[str, str]]:
    shown = {}
    for card in page.locator(".project-card").all():
        shown[card.get_attribute("data-project-id")] = {
            "name": card.locator(".project-name").inner_text(), "compute": card.locator(".stat-compute").inner_text(),
            "spend": card.locator(".stat-spend").inner_text(), "runs": card.locator(".stat-runs-today").inner_text(),
            "hmac": card.locator(".stat-hmac").inner_text()}
    return shown


def test_the_list_shows_the_demos_three_projects_with_the_apis_numbers(signed_in_page, api, demo_server):
    page = signed_in_page
    page.goto(f"{demo_server.base_url}/projects")
    expect(page.locator(".project-card").first).to_be_visible()
    for attempt in range(3):  # other tests may report usage meanwhile: compare one consistent moment
        expected = _expected_cards(api)
        page.reload()
        expect(page.locator(".project-card")).to_have_count(len(expected))
        shown = _shown_cards(page)
        if shown == expected and expected == _expected_cards(api):
            break
    assert shown == expected
    assert sorted(c["name"] for c in shown.values()) == ["data-pipeline", "research", "support"]
    assert any(c["compute"] != "0 s" for c in shown.values())  # the demo's 60 days are really there
    expect(page.locator("#plan-limit")).to_have_text("3 of 10 projects on the starter plan")


def test_create_rename_and_delete_a_project(signed_in_page, api, demo_server):
    page = signed_in_page
    page.goto(f"{demo_server.base_url}/projects")
    expect(page.locator(".project-card").first).to_be_visible()
    name_field, create = page.locator("#new-project-name"), page.locator("#create-project")
    name_field.fill("x" * 101)
    expect(page.locator("#new-project-name-problem")).to_contain_text("1 to 100 characters")
    expect(create).to_be_disabled()
    name = f"browser-{uuid.uuid4().hex[:6]}"
    name_field.fill(name)
    expect(page.locator("#new-project-name-problem")).to_have_count(0)
    create.click()
    card = page.locator(".project-card", has_text=name)
    expect(card).to_be_visible()
    project_id = card.get_attribute("data-project-id")
    assert api.get(f"/api/v1/projects/{project_id}").json()["name"] == name
    expect(name_field).to_have_value("")

    page.get_by_role("button", name=f"Rename {name}").click()
    renamed = name + "-renamed"
    page.locator("#rename-input").fill(renamed)
    page.locator("#rename-save").click()
    expect(page.locator(f'.project-card[data-project-id="{project_id}"] .project-name')).to_have_text(renamed)
    assert api.get(f"/api/v1/projects/{project_id}").json()["name"] == renamed

    page.get_by_role("button", name=f"Delete {renamed}").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text(f"Delete {renamed}?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator(f'.project-card[data-project-id="{project_id}"]')).to_be_visible()  # nothing happened
    page.get_by_role("button", name=f"Delete {renamed}").click()
    page.locator("#confirm-delete").click()
    expect(page.locator(f'.project-card[data-project-id="{project_id}"]')).to_have_count(0)
    assert api.get(f"/api/v1/projects/{project_id}").status_code == 404


def _grace_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M UTC").replace(tzinfo=timezone.utc)


def test_reveal_copy_and_rotate_the_hmac_key(signed_in_page, api, demo_server, scratch_project):
    page, pid = signed_in_page, scratch_project["id"]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=demo_server.base_url)
    page.goto(f"{demo_server.base_url}/projects/{pid}")
    key = page.locator("#hmac-key")
    hmac = scratch_project["hmac_key"]
    expect(key).to_contain_text(hmac["prefix"])
    expect(key).to_contain_text(hmac["last4"])
    secret = api.get(f"/api/v1/projects/{pid}/hmac-key").json()["secret"]
    assert secret not in page.content()  # masked until asked

    page.locator("#hmac-key-copy").click()
    expect(page.get_by_text("HMAC key copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.locator("#hmac-key-reveal").click()
    expect(key).to_have_text(secret)
    page.locator("#hmac-key-reveal").click()
    expect(key).not_to_have_text(secret)

    opened_at = datetime.now(timezone.utc)
    page.locator("#rotate-hmac").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("keeps working for 24 hours")
    expect(page.locator("#grace-until")).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    until = _grace_time(page.locator("#grace-until").inner_text())
    assert abs(until - (opened_at + timedelta(hours=24))) < timedelta(minutes=2)
    page.locator("#confirm-rotate").click()
    expect(page.get_by_text("New HMAC key issued")).to_be_visible()
    rotated = api.get(f"/api/v1/projects/{pid}").json()["hmac_key"]
    new_secret = api.get(f"/api/v1/projects/{pid}/hmac-key").json()["secret"]
    assert new_secret != secret and rotated["previous_valid_until"] is not None
    expect(key).to_have_text(new_secret)  # the new key is shown once, revealed, to copy now
    expect(page.locator("#hmac-note")).to_contain_text("the previous key works until")
    previous_until = _time(rotated["previous_valid_until"])
    assert abs(previous_until - until) < timedelta(minutes=2)


def test_set_replace_and_delete_a_provider_key_shown_masked(signed_in_page, api, demo_server, scratch_project):
    page, pid = signed_in_page, scratch_project["id"]
    page.goto(f"{demo_server.base_url}/projects/{pid}")
    expect(page.locator("#anthropic-masked")).to_contain_text("Not set")
    page.locator("#anthropic-key-edit").click()
    page.locator("#anthropic-key-input").fill("sk-proj-" + "A" * 30)  # an OpenAI key under Anthropic
    expect(page.locator("#anthropic-key-problem")).to_contain_text("starts with sk-ant-")
    expect(page.locator("#anthropic-key-save")).to_be_disabled()
    page.locator("#anthropic-key-input").fill(ANTHROPIC_KEY)
    page.locator("#anthropic-key-save").click()
    expect(page.locator("#anthropic-masked")).to_have_text("sk-ant-...abcd")
    assert api.get(f"/api/v1/projects/{pid}").json()["provider_keys"][0]["masked"] == "sk-ant-...abcd"
    assert ANTHROPIC_KEY not in page.content()

    page.locator("#anthropic-key-edit").click()  # now "Replace"
    page.locator("#anthropic-key-input").fill(ANTHROPIC_KEY_2)
    page.locator("#anthropic-key-save").click()
    expect(page.locator("#anthropic-masked")).to_have_text("sk-ant-...wxyz")
    page.reload()
    expect(page.locator("#anthropic-masked")).to_have_text("sk-ant-...wxyz")
    assert ANTHROPIC_KEY_2 not in page.content()

    page.locator("#anthropic-key-remove").click()
    expect(page.get_by_role("alertdialog")).to_contain_text("Remove the Anthropic key?")
    page.locator("#confirm-remove-anthropic").click()
    expect(page.locator("#anthropic-masked")).to_contain_text("Not set")
    assert api.get(f"/api/v1/projects/{pid}").json()["provider_keys"] == []


def test_a_project_page_shows_its_numbers_chart_and_an_unknown_id_is_not_found(signed_in_page, api, demo_server):
    page = signed_in_page
    project = next(p for p in api.get("/api/v1/projects").json()["data"] if p["name"] == "research")
    expected = _expected_cards(api)[project["id"]]
    page.goto(f"{demo_server.base_url}/projects/{project['id']}")
    expect(page.get_by_role("heading", name="research")).to_be_visible()
    expect(page.locator("#stat-compute")).to_have_text(expected["compute"])
    expect(page.locator("#stat-spend")).to_have_text(expected["spend"])
    expect(page.locator("#usage-chart .js-plotly-plot")).to_be_visible(timeout=TIMEOUT_MS)  # Plotly loads lazily
    expect(page.locator("#usage-chart .bars .point")).to_have_count(30, timeout=TIMEOUT_MS)
    page.goto(f"{demo_server.base_url}/projects/prj_doesnotexist")
    expect(page.locator("#not-found")).to_contain_text("Project not found")


def test_a_second_account_never_sees_the_demos_projects(browser, api, demo_server):
    demo_projects = api.get("/api/v1/projects").json()["data"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(f"{demo_server.base_url}/sign-up")
        page.get_by_label("Email").fill(f"second-{uuid.uuid4().hex[:8]}@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.locator("#sign-up-submit").click()
        page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
        page.goto(f"{demo_server.base_url}/projects")
        expect(page.locator(".project-card")).to_have_count(1)  # its own default project, nothing else
        for p in demo_projects:
            page.goto(f"{demo_server.base_url}/projects/{p['id']}")
            expect(page.locator("#not-found")).to_contain_text("Project not found")
            html = page.content()
            assert p["name"] not in html and p["hmac_key"]["prefix"] not in html
        page.goto(f"{demo_server.base_url}/projects")  # hobby: 3 projects, then a clear message
        for i in range(3):
            page.locator("#new-project-name").fill(f"extra-{i}")
            page.locator("#create-project").click()
            if i < 2:
                expect(page.locator(".project-card")).to_have_count(2 + i)
        expect(page.locator("#create-error")).to_contain_text("The hobby plan allows 3 projects")
        expect(page.locator(".project-card")).to_have_count(3)
    finally:
        context.close()


def test_screenshots_of_the_projects_pages(screen, api, demo_server, scheme):
    page = screen
    project = next(p for p in api.get("/api/v1/projects").json()["data"] if p["name"] == "research")
    for name, path, ready in (("projects", "/projects", ".project-card"),
                              ("project", f"/projects/{project['id']}", "#usage-chart .bars .point")):
        page.goto(f"{demo_server.base_url}{path}")
        expect(page.locator(ready).first).to_be_visible(timeout=TIMEOUT_MS)  # Plotly loads lazily
        page.wait_for_timeout(500)  # let the chart finish drawing
        save_screenshot(page, name, scheme)


def test_the_project_page_follows_usage_live_without_a_reload(signed_in_page, api, demo_server, scratch_project):
    page, pid = signed_in_page, scratch_project["id"]
    page.goto(f"{demo_server.base_url}/projects/{pid}")
    expect(page.locator("#stat-compute")).to_have_text("0 s")
    event = {"id": f"live-{uuid.uuid4().hex}", "project_id": pid, "kind": "compute", "duration_ms": 90_000}
    assert api.post("/api/v1/usage", json={"events": [event]}).status_code == 200
    expect(page.locator("#stat-compute")).to_have_text("1 min 30 s", timeout=5_000)
