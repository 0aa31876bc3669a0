"""The sandbox provider end to end on a live server, SQLite and PostgreSQL: a checkout paid on the hosted page,
its event delivered over HTTP by the sandbox's job and granted once; a declined card; and /webhooks/sandbox
refusing what is not authentic or fresh, shrugging at replays and unknown types, granting nothing for a body
that names another account's checkout; the same delivery 100 times at once."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from billing_core.db.engine import make_engine
from billing_core.payments.sandbox_delivery import deliver_sandbox_events
from billing_core.plans import load_catalog
from billing_core.services.context import Billing

from ..live_server import SANDBOX_SECRET, Tenant, create_account_cli, migrated_database, run_api_server
from . import standard_webhooks_signing as sw
from .helpers import api_checkout as _checkout
from .helpers import api_credit as _credit


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request, tmp_path_factory, sqlite_template):
    with ExitStack() as stack:
        url = migrated_database(stack, request.param, tmp_path_factory.mktemp("sandbox"), sqlite_template,
                                "tg_sandbox")
        server = stack.enter_context(run_api_server(url))
        engine = make_engine(url)
        stack.callback(engine.dispose)
        yield server, Billing(engine, load_catalog())


def _tenant(server, email: str, credit: str = "0") -> Tenant:
    return Tenant(**create_account_cli(server.env, email, "starter", credit))


def _deliver(server, billing) -> dict:
    """What the scheduler's sandbox job does, from here: post every due event to the server, signed."""
    with httpx.Client() as http:
        return deliver_sandbox_events(billing, url=f"{server.base_url}/webhooks/sandbox", secret=SANDBOX_SECRET,
                                      http=http, now=datetime.now(timezone.utc)).summary()


def test_a_checkout_paid_on_the_hosted_page_is_pending_then_granted_once_by_the_delivered_event(live):
    server, billing = live
    tenant = _tenant(server, f"buyer-{time.monotonic_ns()}@example.com")
    started = _checkout(server, tenant, {"item": "credit", "amount_micros": 25_000_000})
    page = httpx.get(started["url"])
    assert page.status_code == 200 and "$25.00" in page.text and "card_number" in page.text
    paid = httpx.post(f"{started['url']}/pay", data={"card_number": "4242 4242 4242 4242"})
    assert paid.status_code == 303 and paid.headers["location"].endswith(f"/billing?checkout={started['id']}")
    pending = httpx.get(f"{server.base_url}/api/v1/billing/checkouts/{started['id']}", headers=tenant.auth).json()
    assert (pending["status"], pending["payment"]["status"], _credit(server, tenant)) == ("open", "pending", 0)
    assert _deliver(server, billing)["delivered"] >= 1
    done = httpx.get(f"{server.base_url}/api/v1/billing/checkouts/{started['id']}", headers=tenant.auth).json()
    assert (done["status"], done["payment"]["status"], _credit(server, tenant)) == ("complete", "succeeded",
                                                                                    25_000_000)
    card = httpx.get(f"{server.base_url}/api/v1/billing/payment-method", headers=tenant.auth).json()
    assert card["payment_method"]["last4"] == "4242"
    assert httpx.get(started["url"]).text.count("This checkout is paid") == 1


def test_a_declined_card_says_so_on_the_page_and_grants_nothing(live):
    server, billing = live
    tenant = _tenant(server, f"declined-{time.monotonic_ns()}@example.com")
    started = _checkout(server, tenant, {"item": "pool_pack", "quantity": 1})
    refused = httpx.post(f"{started['url']}/pay", data={"card_number": "4000000000000002"})
    assert refused.status_code == 402 and "Your card was declined." in refused.text
    _deliver(server, billing)
    payments = httpx.get(f"{server.base_url}/api/v1/billing/payments", headers=tenant.auth).json()["data"]
    assert [(p["status"], p["failure_message"]) for p in payments] == [("failed", "Your card was declined.")]
    account = httpx.get(f"{server.base_url}/api/v1/account", headers=tenant.auth).json()
    assert account["pools"] == [] and account["credit"]["balance_micros"] == 0


def _signed(body: dict, *, msg_id: str, at: int | None = None, secret: str = SANDBOX_SECRET) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    return raw, sw.headers(secret, msg_id, at if at is not None else int(time.time()), raw)


def _success_body(started: dict, account_id: str, sbp: str) -> dict:
    return {"type": "payment.succeeded", "timestamp": "2026-12-05T00:00:00Z",
            "data": {"payment_id": sbp, "checkout_id": started["id"], "amount_micros": started["amount_micros"],
                     "currency": "usd", "metadata": {"payment_id": started["payment_id"], "account_id": account_id}}}


def test_the_webhook_refuses_what_is_not_authentic_or_fresh_and_shrugs_at_replays(live):
    server, _ = live
    tenant = _tenant(server, f"hooks-{time.monotonic_ns()}@example.com")
    other = _tenant(server, f"other-{time.monotonic_ns()}@example.com")
    started = _checkout(server, tenant, {"item": "credit", "amount_micros": 10_000_000})
    hook = f"{server.base_url}/webhooks/sandbox"
    body = _success_body(started, tenant.account_id, "sbp_hooks")
    now = int(time.time())
    refusals = [_signed(body, msg_id="msg_bad", secret=sw.new_secret()),  # another secret
                _signed(body, msg_id="msg_stale", at=now - 360), _signed(body, msg_id="msg_future", at=now + 360)]
    raw, headers = _signed(body, msg_id="msg_changed")
    refusals.append((raw.replace(b"10000000", b"99000000"), headers))  # the body changed after signing
    refusals.append((raw, {k: v for k, v in headers.items() if k != "webhook-signature"}))
    for raw_body, hdrs in refusals:
        answer = httpx.post(hook, content=raw_body, headers=hdrs)
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_signature"), answer.text
    assert _credit(server, tenant) == 0

    # A body naming another account's checkout, signed correctly: recorded, nothing granted to anyone.
    stolen = dict(body, data=dict(body["data"], metadata={"payment_id": started["payment_id"],
                                                          "account_id": other.account_id}))
    answer = httpx.post(hook, content=(signed := _signed(stolen, msg_id="msg_other"))[0], headers=signed[1])
    assert (answer.status_code, answer.json()["outcome"]) == (200, "mismatch")
    unknown = _signed({"type": "payout.paid", "timestamp": "2026-12-05T00:00:00Z", "data": {}}, msg_id="msg_new")
    assert httpx.post(hook, content=unknown[0], headers=unknown[1]).json()["outcome"] == "ignored"
    good = _signed(body, msg_id="msg_good")
    assert httpx.post(hook, content=good[0], headers=good[1]).json()["outcome"] == "applied"
    replay = httpx.post(hook, content=good[0], headers=good[1])
    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    assert (_credit(server, tenant), _credit(server, other)) == (10_000_000, 0)
    assert httpx.post(f"{server.base_url}/webhooks/stripe", content=good[0], headers=good[1]).status_code == 404
    malformed = httpx.post(hook, content=b"{not json", headers=sw.headers(SANDBOX_SECRET, "msg_x", now, b"{not json"))
    assert malformed.status_code == 400


def test_one_delivery_sent_100_times_at_once_grants_once(live):
    server, _ = live
    tenant = _tenant(server, f"storm-{time.monotonic_ns()}@example.com")
    started = _checkout(server, tenant, {"item": "credit", "amount_micros": 7_000_000})
    raw, headers = _signed(_success_body(started, tenant.account_id, "sbp_storm"), msg_id="msg_storm")
    with httpx.Client(limits=httpx.Limits(max_connections=100)) as http, ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(lambda _: http.post(f"{server.base_url}/webhooks/sandbox", content=raw,
                                                    headers=headers, timeout=60), range(100)))
    outcomes = [a.json()["outcome"] for a in answers if a.status_code == 200]
    assert len(outcomes) == 100 and outcomes.count("applied") == 1 and set(outcomes) == {"applied", "duplicate"}
    assert _credit(server, tenant) == 7_000_000


def test_deliveries_sent_twice_late_and_out_of_order_end_as_if_sent_once_in_order(live):
    import random

    from sqlalchemy import func, select

    from billing_core.db.engine import read_session
    from billing_core.db.payments import SandboxCharge, SandboxDelivery
    from billing_core.payments.sandbox import SandboxProvider

    server, billing = live
    tenant = _tenant(server, f"chaos-{time.monotonic_ns()}@example.com")
    provider = SandboxProvider(billing, webhook_secret=SANDBOX_SECRET, public_url=server.base_url)
    amounts = (5_000_000, 6_000_000, 7_000_000)
    for amount in amounts:
        started = _checkout(server, tenant, {"item": "credit", "amount_micros": amount})
        assert httpx.post(f"{started['url']}/pay", data={"card_number": "4242424242424242"}).status_code == 303
    with read_session(billing.engine) as session:
        charge = session.execute(select(SandboxCharge).where(SandboxCharge.account_id == tenant.account_id,
                                                             SandboxCharge.amount_micros == 6_000_000)).scalar_one()
    provider.refund(provider_payment_id=charge.id, amount_micros=2_000_000, idempotency_key="chaos-refund")
    rand = random.Random(13).random
    moment = datetime.now(timezone.utc)
    chaos = {"duplicated": 0, "held_back": 0}
    with httpx.Client() as http:
        for _ in range(40):  # bounded: chaos holds some back for 2 s at a time
            done = deliver_sandbox_events(billing, url=f"{server.base_url}/webhooks/sandbox", secret=SANDBOX_SECRET,
                                          http=http, now=moment, chaos=0.6, rand=rand)
            chaos = {k: chaos[k] + getattr(done, k) for k in chaos}
            with read_session(billing.engine) as session:
                left = session.execute(select(func.count()).select_from(SandboxDelivery).where(
                    SandboxDelivery.status == "pending")).scalar_one()
            if not left:
                break
            moment += timedelta(seconds=3)
    assert left == 0
    assert _credit(server, tenant) == sum(amounts) - 2_000_000
    statuses = sorted(p["status"] for p in httpx.get(f"{server.base_url}/api/v1/billing/payments",
                                                     headers=tenant.auth).json()["data"])
    assert statuses == ["partially_refunded", "succeeded", "succeeded"]
    assert chaos["duplicated"] >= 1 and chaos["held_back"] >= 1  # the disorder did happen
