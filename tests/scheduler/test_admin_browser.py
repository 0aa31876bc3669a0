"""/admin in a real Chromium against the production server (as `make run` starts it, scheduler inside):
an operator sees the leader, its last tick, each job and each edge target; anyone else finds nothing."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from billing_core.db.engine import make_engine
from billing_core.plans import load_catalog
from billing_core.services.identity import set_operator
from billing_core.services import accounts
from billing_core.services.context import Billing
from billing_core.services.identity import create_user

from ..identity.servers import reflex_server

pytestmark = pytest.mark.slow
TIMEOUT_MS = 20_000
PASSWORD = "correct horse 1843"
HOME = re.compile(r"^http://127\.0\.0\.1:\d+/$")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def server(tmp_path_factory, sqlite_template):
    workdir = tmp_path_factory.mktemp("admin-browser")
    with reflex_server(workdir, sqlite_template, TOLLGATE_DATA_DIR=str(workdir),
                       TOLLGATE_SCHEDULER_LEASE_S="3") as live:
        engine = make_engine(f"sqlite:///{workdir / 'tollgate.db'}")
        billing = Billing(engine=engine, catalog=load_catalog())
        now = datetime.now(timezone.utc)
        for email in ("ops@example.com", "customer@example.com"):
            created = accounts.create_account(billing, email=email, plan="hobby", now=now)
            create_user(billing, account_id=created.account_id, email=email, password=PASSWORD, now=now)
        set_operator(billing, "ops@example.com")
        engine.dispose()
        yield live


def _signed_in(browser, server, email: str):
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("#sign-in-submit").click()
    page.wait_for_url(HOME)
    return context, page


def test_an_operator_sees_the_leader_the_jobs_and_the_edge_targets(browser, server):
    context, page = _signed_in(browser, server, "ops@example.com")
    try:
        page.locator("#nav-admin").click()  # operators find the Admin link in the navigation
        page.wait_for_url(re.compile(r"/admin$"))
        page.locator("#admin-scheduler").wait_for()
        # The in-app scheduler leads; its name is host:pid:random.
        page.wait_for_function("() => /:\\d+:/.test(document.querySelector('#admin-leader')?.innerText || '')")
        for job in ("periods", "alerts", "notifications", "dispatch", "edge_sync", "reconcile"):
            assert page.locator(f"#admin-jobs [data-job='{job}']").count() == 1
        assert page.locator("#admin-targets [data-target='file']").count() == 1
        page.get_by_text("Nothing parked").wait_for()  # an empty table shows its empty state instead
        page.locator("#admin-refresh").click()
        page.locator("#admin-jobs [data-job='edge_sync']").get_by_text(re.compile(r"^ok$")).wait_for()
        page.screenshot(path=str(SHOTS / "admin-1280-light.png"), full_page=True)
    finally:
        context.close()


def test_a_customer_finds_no_admin_page(browser, server):
    context, page = _signed_in(browser, server, "customer@example.com")
    try:
        page.locator("#nav-dashboard").wait_for()
        assert page.locator("#nav-admin").count() == 0
        page.goto("/admin")
        page.get_by_text("Page not found").wait_for()
        assert page.locator("#admin-scheduler").count() == 0
    finally:
        context.close()
