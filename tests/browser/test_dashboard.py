"""The dashboard in a real Chromium against the production server holding the demo account."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import httpx
from playwright.sync_api import expect

from billing_core import forecast
from portal.components import format as fmt

from .conftest import TIMEOUT_MS, save_screenshot


def api(demo, key: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=demo.base_url, timeout=30,
                        headers={"Authorization": f"Bearer {key or demo.api_key}"})


def test_dashboard_screenshots(screen, scheme):
    """docs/screenshots/dashboard-{1280,390}-{light,dark}.png, and no sideways scrolling at either width."""
    page = screen
    # plotly.js loads lazily, after the page: give it the long timeout.
    expect(page.locator("#usage-chart .bars path").first).to_be_attached(timeout=TIMEOUT_MS)
    expect(page.locator(".activity-row").first).to_be_visible()
    page.wait_for_timeout(500)  # let the chart finish its transition
    save_screenshot(page, "dashboard", scheme)


def test_sign_in_screenshots(browser, demo_server, width, scheme):
    """docs/screenshots/sign-in-{1280,390}-{light,dark}.png: the page everyone sees first."""
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(f"{demo_server.base_url}/sign-in")
        expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
        save_screenshot(page, "sign-in", scheme)
    finally:
        context.close()


def test_the_plan_card_shows_the_accounts_real_numbers(signed_in_page, demo_server):
    page = signed_in_page
    account = api(demo_server).get("/api/v1/account").json()
    card = page.locator("#plan-card")
    expect(card.locator("#plan-name")).to_have_text(account["plan"].capitalize())
    expect(card.locator("#plan-status")).to_have_text(account["status"].replace("_", " ").capitalize())
    expect(card.locator("#allowance-used")).to_have_text(fmt.duration(account["allowance"]["used_ms"]))
    expect(card.locator("#allowance-included")).to_have_text(fmt.duration(account["allowance"]["included_ms"]))
    expect(card.locator("#allowance-remaining")).to_have_text(
        f"{fmt.duration(account['allowance']['remaining_ms'])} left")
    expect(card.locator("#credit-balance")).to_have_text(fmt.usd_cents(account["credit"]["balance_micros"]))
    expect(card.locator("#credit-balance")).to_have_attribute("title", fmt.usd(account["credit"]["balance_micros"]))
    pools = [p for p in account["pools"]]
    expect(card.locator(".pool-left")).to_have_count(len(pools))
    for left in {fmt.duration(pool["remaining_ms"]) for pool in pools}:  # two pools may hold the same time
        same = sum(fmt.duration(pool["remaining_ms"]) == left for pool in pools)
        expect(card.locator(".pool-left", has_text=left + " left")).to_have_count(same)
    expect(card.locator("#forecast")).to_contain_text(expected_forecast_phrase(demo_server, account))


def expected_forecast_phrase(demo, account: dict) -> str | re.Pattern:
    """What the forecast must say, from the API's numbers through the same pure forecast: the demo's random
    usage and the time of day decide whether the allowance outlasts the period."""
    now = datetime.now(timezone.utc)
    since = (now - timedelta(days=forecast.WINDOW_DAYS)).date().isoformat()
    rows = api(demo).get("/api/v1/usage/summary", params={"from": since, "to": now.date().isoformat(),
                                                          "group_by": "day"}).json()["data"]
    daily: dict[date, int] = {}
    for row in rows:
        day = date.fromisoformat(row["key"])
        daily[day] = daily.get(day, 0) + row["compute_ms"]
    period_end = datetime.fromisoformat(account["period"]["end"].replace("Z", "+00:00"))
    f = forecast.allowance_forecast(included_ms=account["allowance"]["included_ms"],
                                    used_ms=account["allowance"]["used_ms"], daily_compute_ms=daily, now=now,
                                    period_end=period_end)
    if f.status == forecast.RUNS_OUT and period_end - f.runs_out_at < timedelta(minutes=30):
        return re.compile("runs out on|resets on")  # too close to call between the API read and the page's
    return {forecast.RUNS_OUT: "runs out on", forecast.LASTS: "resets on"}.get(f.status, "resets on")


def test_usage_today_and_the_projects_match_the_api(signed_in_page, demo_server):
    page = signed_in_page
    client = api(demo_server)
    today = datetime.now(timezone.utc).date().isoformat()
    rows = client.get("/api/v1/usage/summary", params={"from": today, "to": today, "group_by": "day"}).json()["data"]
    compute_today = sum(r["compute_ms"] for r in rows)
    expect(page.locator("#stat-compute-today")).to_have_text(fmt.duration(compute_today))
    projects = client.get("/api/v1/projects").json()["data"]
    cards = page.locator(".project-card")
    expect(cards).to_have_count(len(projects))
    for project in projects:
        card = page.locator(f".project-card[data-project='{project['id']}']")
        expect(card).to_contain_text(project["name"])
        key = project["hmac_key"]
        expect(card).to_contain_text(f"{key['prefix']}…{key['last4']}")
        expect(card).to_have_attribute("href", f"/projects/{project['id']}")
    # The chart draws bars (the demo has 60 days of compute) and the feed has its latest rows.
    expect(page.locator("#usage-chart .bars path").first).to_be_attached(timeout=TIMEOUT_MS)
    rows = page.locator(".activity-row")
    expect(rows.first).to_be_visible()
    assert 0 < rows.count() <= 20


def test_the_chart_switches_ranges_and_metrics(signed_in_page):
    page = signed_in_page
    chart = page.locator("#usage-chart")
    expect(chart.locator(".bars path").first).to_be_attached(timeout=TIMEOUT_MS)
    page.locator("#chart-range").get_by_role("radio", name="7 days").click()
    expect(chart.locator(".xtick")).not_to_have_count(0)
    page.locator("#chart-metric").get_by_role("radio", name="Tokens & cost").click()
    expect(chart.locator(".ytitle")).to_have_text("Cost (USD)", timeout=TIMEOUT_MS)
    page.locator("#chart-metric").get_by_role("radio", name="Compute").click()
    expect(chart.locator(".ytitle")).to_have_text(re.compile(r"Compute \((hours|minutes)\)"), timeout=TIMEOUT_MS)


def test_a_new_key_is_shown_once_and_can_be_revoked(signed_in_page, demo_server):
    page = signed_in_page
    page.locator("#create-key").click()
    page.locator("#new-key-name").fill("browser test key")
    page.locator("#create-key-submit").click()
    secret_box = page.locator("#new-key-secret")
    expect(secret_box).to_have_text(re.compile(r"^ak_live_\w+$"))
    secret = secret_box.inner_text()
    expect(page.get_by_text("shown only once")).to_be_visible()
    expect(page.locator("#copy-new-key")).to_be_visible()
    assert api(demo_server, secret).get("/api/v1/account").status_code == 200

    listed = next(k for k in api(demo_server).get("/api/v1/keys").json()["data"] if k["name"] == "browser test key")
    row = page.locator(".key-row", has_text="browser test key")
    page.locator("#close-new-key").click()
    expect(secret_box).to_have_count(0)
    expect(row.locator(".key-masked")).to_have_text(f"{listed['prefix']}…{listed['last4']}")
    page.reload()
    expect(row).to_have_count(1)
    assert secret not in page.content()  # shown once: not after a reload

    row.locator(".revoke-key").click()
    expect(page.get_by_text("Revoke this key?")).to_be_visible()
    page.locator("#confirm-revoke").click()
    expect(row).to_have_count(0)
    assert api(demo_server, secret).get("/api/v1/account").status_code == 401


def test_a_blank_key_name_is_refused_with_a_message(signed_in_page):
    page = signed_in_page
    page.locator("#create-key").click()
    page.locator("#new-key-name").fill("   ")
    page.locator("#create-key-submit").click()
    expect(page.get_by_role("dialog").get_by_role("alert")).to_be_visible()
    expect(page.locator("#new-key-secret")).to_have_count(0)


def test_cli_quick_start_has_three_commands_with_copy_buttons(signed_in_page, demo_server):
    cli = signed_in_page.locator("#cli")
    expect(cli.locator(".cli-command")).to_have_count(3)
    expect(cli.locator(".cli-command").nth(1)).to_contain_text(f"tollgate login --url {demo_server.base_url}")
    expect(cli.get_by_role("button", name="Copy command")).to_have_count(3)
