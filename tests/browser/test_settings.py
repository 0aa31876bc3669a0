"""/settings in a real Chromium: alert thresholds saved exactly, the name, the email, and signing out."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from billing_core.db.engine import make_engine
from billing_core.plans import load_catalog
from billing_core.services.account_settings import get_alert_settings
from billing_core.services.context import Billing

from .conftest import TIMEOUT_MS, save_screenshot, sign_in

pytestmark = pytest.mark.slow


def _stored_alerts(demo_server):
    """What the database holds for the demo account, read beside the server (the API has no settings route)."""
    engine = make_engine(demo_server.env["TOLLGATE_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            account_id = conn.exec_driver_sql("SELECT id FROM accounts WHERE email = 'demo@tollgate.dev'").scalar()
        return get_alert_settings(Billing(engine, load_catalog()), account_id)
    finally:
        engine.dispose()


def _switch(page, step: int):
    return page.locator(f"#threshold-{step}")


def test_thresholds_are_validated_as_typed_saved_exactly_and_reloaded(signed_in_page, demo_server):
    page = signed_in_page
    page.goto(f"{demo_server.base_url}/settings")
    for step in (50, 80, 100):
        expect(_switch(page, step)).to_have_attribute("aria-checked", "true")
    _switch(page, 80).click()
    expect(_switch(page, 80)).to_have_attribute("aria-checked", "false")

    daily, low, save = page.locator("#daily-spend"), page.locator("#low-credit"), page.locator("#save-alerts")
    daily.fill("12.5O")  # a letter O, not a zero
    expect(page.locator("#daily-spend-problem")).to_contain_text("Give an amount in USD")
    expect(save).to_be_disabled()
    daily.fill("12.5000001")
    expect(page.locator("#daily-spend-problem")).to_be_visible()
    daily.fill("$1,012.50")
    expect(page.locator("#daily-spend-problem")).to_have_count(0)
    low.fill("0")
    expect(page.locator("#low-credit-problem")).to_contain_text("Must be more than $0")
    low.fill("5")
    expect(save).to_be_enabled()
    save.click()
    expect(page.locator("#alerts-saved")).to_have_text("Saved just now.")

    stored = _stored_alerts(demo_server)
    assert stored.allowance_thresholds == (50, 100)
    assert (stored.daily_spend_micros, stored.low_credit_micros) == (1_012_500_000, 5_000_000)

    page.reload()
    expect(daily).to_have_value("1012.50")
    expect(low).to_have_value("5.00")
    expect(_switch(page, 80)).to_have_attribute("aria-checked", "false")
    expect(_switch(page, 50)).to_have_attribute("aria-checked", "true")

    _switch(page, 80).click()  # back to the defaults for whoever comes next
    daily.fill("")
    low.fill("")
    save.click()
    expect(page.get_by_text("Alert thresholds saved").first).to_be_visible()
    assert _stored_alerts(demo_server).daily_spend_micros is None


def test_the_name_is_editable_and_the_email_is_shown(signed_in_page, demo_server):
    page = signed_in_page
    page.goto(f"{demo_server.base_url}/settings")
    expect(page.locator("#profile-email")).to_have_text(demo_server.email)
    name = page.locator("#profile-name")
    expect(name).to_have_value("Demo")
    name.fill("x" * 101)
    expect(page.locator("#profile-name-problem")).to_contain_text("At most 100 characters")
    expect(page.locator("#save-name")).to_be_disabled()
    name.fill("Demo  Person")
    page.locator("#save-name").click()
    expect(page.locator("#signed-in-as")).to_have_text("Demo Person")  # the top bar follows at once
    page.reload()
    expect(name).to_have_value("Demo Person")
    name.fill("Demo")
    page.locator("#save-name").click()
    expect(page.locator("#signed-in-as")).to_have_text("Demo")


def test_sign_out_ends_the_session(browser, demo_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in(page, demo_server)
        page.goto(f"{demo_server.base_url}/settings")
        page.locator("#settings-sign-out").click()
        page.wait_for_url(re.compile(r"/sign-in"))
        page.goto(f"{demo_server.base_url}/settings")
        page.wait_for_url(re.compile(r"/sign-in\?next=%2Fsettings"))
    finally:
        context.close()


def test_screenshot_of_the_settings_page(screen, demo_server, scheme):
    page = screen
    page.goto(f"{demo_server.base_url}/settings")
    expect(page.locator("#save-alerts")).to_be_visible()
    save_screenshot(page, "settings", scheme)
