"""Auto top-up on a live server with the sandbox: the usage batch that takes credit below the threshold starts
the top-up's payment within 2 s (no poll), one at a time, within the monthly limit; a card that declines
turns it off after 3 failures with an alert; it cannot be turned on without a saved card."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import select

from billing_core.db.engine import make_engine, read_session
from billing_core.db.models import Activity
from billing_core.db.payments import Payment
from billing_core.payments.sandbox_delivery import deliver_sandbox_events
from billing_core.plans import load_catalog
from billing_core.services.context import Billing

from ..live_server import SANDBOX_SECRET, Tenant, copy_sqlite_template, create_account_cli, run_api_server

TOP_UP = {"enabled": True, "threshold_micros": 5_000_000, "amount_micros": 20_000_000,
          "monthly_limit_micros": 40_000_000}


@pytest.fixture(scope="module")
def live(tmp_path_factory, sqlite_template):
    url = copy_sqlite_template(sqlite_template, tmp_path_factory.mktemp("topup"))
    engine = make_engine(url)
    with run_api_server(url) as server:
        yield server, Billing(engine, load_catalog())
    engine.dispose()


def _with_card(server, billing, email: str, card: str) -> Tenant:
    """An account that paid $25 of credit by checkout with `card`, which the sandbox kept."""
    tenant = Tenant(**create_account_cli(server.env, email))
    started = httpx.post(f"{server.base_url}/api/v1/billing/checkout", headers=tenant.auth,
                         json={"item": "credit", "amount_micros": 25_000_000}).json()
    assert httpx.post(f"{started['url']}/pay", data={"card_number": card}).status_code == 303
    with httpx.Client() as http:
        deliver_sandbox_events(billing, url=f"{server.base_url}/webhooks/sandbox", secret=SANDBOX_SECRET, http=http,
                               now=datetime.now(timezone.utc))
    return tenant


def _spend(server, tenant: Tenant, output_tokens: int, n: int) -> None:
    """claude-opus-4 at $75 per million output tokens: 100,000 tokens cost $7.50 of credit."""
    event = {"id": f"spend-{n}", "project_id": tenant.project_id, "kind": "tokens", "model": "claude-opus-4",
             "provider": "anthropic", "input_tokens": 0, "output_tokens": output_tokens}
    answer = httpx.post(f"{server.base_url}/api/v1/usage", headers=tenant.auth, json={"events": [event]})
    assert answer.json()["results"][0]["status"] == "accepted", answer.text


def _top_ups(billing, account_id: str) -> list[Payment]:
    with read_session(billing.engine) as session:
        return list(session.execute(select(Payment).where(Payment.account_id == account_id,
                                                          Payment.source == "auto_top_up")
                                    .order_by(Payment.created_at)).scalars())


def _wait_for(check, timeout_s: float = 5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (found := check()):
            return found
        time.sleep(0.05)
    return check()


def test_the_batch_that_crosses_the_threshold_starts_the_top_up_within_2_s(live):
    server, billing = live
    tenant = _with_card(server, billing, "topup@example.com", "4242424242424242")
    assert httpx.put(f"{server.base_url}/api/v1/billing/auto-top-up", headers=tenant.auth,
                     json=TOP_UP).status_code == 200
    _spend(server, tenant, 100_000, 1)  # $25 -> $17.50: above the threshold, no top-up
    time.sleep(0.5)
    assert _top_ups(billing, tenant.account_id) == []
    crossed_at = datetime.now(timezone.utc)
    _spend(server, tenant, 200_000, 2)  # $17.50 -> $2.50: below $5
    started = _wait_for(lambda: _top_ups(billing, tenant.account_id))
    assert len(started) == 1 and (started[0].created_at - crossed_at).total_seconds() < 2.0
    assert _wait_for(lambda: _top_ups(billing, tenant.account_id)[0].status == "succeeded")
    account = httpx.get(f"{server.base_url}/api/v1/account", headers=tenant.auth).json()
    assert account["credit"]["balance_micros"] == 22_500_000

    # Below again: a second top-up; a third would pass the $40 monthly limit and is not made.
    _spend(server, tenant, 250_000, 3)  # $22.50 -> $3.75
    assert _wait_for(lambda: len(_top_ups(billing, tenant.account_id)) == 2)
    _spend(server, tenant, 250_000, 4)  # $23.75 -> $5.00: not below
    _spend(server, tenant, 100_000, 5)  # -> -$2.50
    time.sleep(1.0)
    assert [p.status for p in _top_ups(billing, tenant.account_id)] == ["succeeded", "succeeded"]


def test_a_card_that_declines_turns_auto_top_up_off_after_3_failures(live):
    server, billing = live
    tenant = _with_card(server, billing, "declines@example.com", "4000000000000341")
    assert httpx.put(f"{server.base_url}/api/v1/billing/auto-top-up", headers=tenant.auth,
                     json=TOP_UP).status_code == 200
    _spend(server, tenant, 300_000, 1)  # $25 -> $2.50
    for n in range(2, 5):  # each change of the account tries again, until the third failure
        _wait_for(lambda: len(_top_ups(billing, tenant.account_id)) >= n - 1)
        _spend(server, tenant, 1, n)
    settings = _wait_for(lambda: (s := httpx.get(f"{server.base_url}/api/v1/billing/auto-top-up",
                                                  headers=tenant.auth).json())["enabled"] is False and s)
    assert settings["consecutive_failures"] == 3
    assert [p.status for p in _top_ups(billing, tenant.account_id)] == ["failed"] * 3
    with read_session(billing.engine) as session:
        alerts = session.execute(select(Activity.text).where(Activity.account_id == tenant.account_id,
                                                             Activity.kind == "auto_top_up_disabled")).scalars().all()
    assert len(alerts) == 1 and "3 failed charges" in alerts[0]


def test_auto_top_up_needs_a_saved_card(live):
    server, _ = live
    tenant = Tenant(**create_account_cli(server.env, "nocard@example.com"))
    refused = httpx.put(f"{server.base_url}/api/v1/billing/auto-top-up", headers=tenant.auth, json=TOP_UP)
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "payment_method_required")
    bad = httpx.put(f"{server.base_url}/api/v1/billing/auto-top-up", headers=tenant.auth,
                    json={**TOP_UP, "amount_micros": 1_000_000})
    assert bad.status_code == 422
