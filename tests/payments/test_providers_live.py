"""Stripe and Dodo end to end on a live server, each SDK pointed at its fake provider (a real HTTP server on
127.0.0.1 that checks every request against the provider's documented API), with webhooks signed here by
independent implementations of each scheme: a checkout granted once from every success event the provider
sends, an off-session upgrade, a refund; and every webhook path's refusals (bad signature, stale or future
timestamp, unknown type, replay, another account's checkout)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from ..live_server import Tenant, copy_sqlite_template, create_account_cli, run_api_server
from . import fake_dodo as dodo
from . import standard_webhooks_signing as sw
from . import stripe_signing
from .fake_stripe import API_KEY, FakeStripe
from .fake_stripe import event as stripe_event
from .helpers import api_checkout as _checkout
from .helpers import api_credit as _credit

STRIPE_SECRET = "whsec_test_stripe_endpoint_secret_0123456789"
DODO_SECRET = sw.new_secret()


@pytest.fixture(scope="module")
def stripe_live(tmp_path_factory, sqlite_template):
    with FakeStripe() as fake:
        url = copy_sqlite_template(sqlite_template, tmp_path_factory.mktemp("stripe"))
        env = {"TOLLGATE_PAYMENTS_PROVIDER": "stripe", "TOLLGATE_STRIPE_SECRET_KEY": API_KEY,
               "TOLLGATE_STRIPE_WEBHOOK_SECRET": STRIPE_SECRET, "TOLLGATE_STRIPE_API_BASE": fake.url}
        with run_api_server(url, extra_env=env) as server:
            yield server, fake
        assert fake.violations == []


@pytest.fixture(scope="module")
def dodo_live(tmp_path_factory, sqlite_template):
    fake = dodo.FakeDodo().start()
    try:
        url = copy_sqlite_template(sqlite_template, tmp_path_factory.mktemp("dodo"))
        env = {"TOLLGATE_PAYMENTS_PROVIDER": "dodo", "TOLLGATE_DODO_API_KEY": fake.api_key,
               "TOLLGATE_DODO_WEBHOOK_SECRET": DODO_SECRET, "TOLLGATE_DODO_PRODUCT_ID": "pdt_topup_pwyw",
               "TOLLGATE_DODO_ON_DEMAND_PRODUCT_ID": "pdt_on_demand", "TOLLGATE_DODO_API_BASE": fake.url}
        with run_api_server(url, extra_env=env) as server:
            yield server, fake
        assert fake.violations == []
    finally:
        fake.stop()


def _tenant(server, email: str) -> Tenant:
    return Tenant(**create_account_cli(server.env, email, "starter"))


# -- Stripe ---------------------------------------------------------------------------------------
def _to_stripe(server, doc: dict, *, at: int | None = None, secret: str = STRIPE_SECRET) -> httpx.Response:
    body = json.dumps(doc).encode()
    headers = stripe_signing.signed_headers(body, secret, at if at is not None else int(time.time()))
    return httpx.post(f"{server.base_url}/webhooks/stripe", content=body, headers=headers)


def _stripe_session_of(fake: FakeStripe, checkout_id: str) -> dict:
    return next(s for s in fake.sessions.values() if s["metadata"].get("checkout_id") == checkout_id)


def test_a_stripe_checkout_is_granted_once_from_both_of_its_success_events(stripe_live):
    server, fake = stripe_live
    tenant = _tenant(server, "stripe-buyer@example.com")
    started = _checkout(server, tenant, {"item": "credit", "amount_micros": 25_000_000})
    session = _stripe_session_of(fake, started["id"])
    assert started["url"] == session["url"]
    sent = [r for r in fake.requests if r.path == "/v1/checkout/sessions"][-1]
    assert sent.headers["idempotency-key"] == f"checkout-{started['id']}"
    completed = fake.complete_checkout(session["id"])
    intent = fake.intents[completed["payment_intent"]]
    first = _to_stripe(server, stripe_event("checkout.session.completed", completed))
    second = _to_stripe(server, stripe_event("payment_intent.succeeded", intent))
    assert [first.json()["outcome"], second.json()["outcome"]] == ["applied", "no_change"]
    assert _credit(server, tenant) == 25_000_000
    card = httpx.get(f"{server.base_url}/api/v1/billing/payment-method", headers=tenant.auth).json()
    assert card["payment_method"]["provider"] == "stripe"

    # The card is kept: an upgrade is charged off-session at once, with an idempotency key.
    upgraded = httpx.post(f"{server.base_url}/api/v1/billing/plan", json={"plan": "pro"}, headers=tenant.auth)
    assert upgraded.status_code == 200 and upgraded.json()["plan"] == "pro", upgraded.text
    charge = [r for r in fake.requests if r.path == "/v1/payment_intents" and r.method == "POST"][-1]
    assert charge.params["off_session"] == "true" and charge.params["confirm"] == "true"
    assert charge.params["payment_method"] == intent["payment_method"] and charge.headers["idempotency-key"]

    # Stripe's charge.refunded carries the running total: $10 of the $25 taken back.
    charge_obj = dict(fake.charges[intent["latest_charge"]], amount_refunded=1000)
    assert _to_stripe(server, stripe_event("charge.refunded", charge_obj)).json()["outcome"] == "applied"
    assert _credit(server, tenant) == 15_000_000


def test_the_stripe_webhook_refuses_what_is_not_authentic_or_fresh(stripe_live):
    server, fake = stripe_live
    tenant, other = _tenant(server, "stripe-hooks@example.com"), _tenant(server, "stripe-other@example.com")
    started = _checkout(server, tenant, {"item": "credit", "amount_micros": 10_000_000})
    completed = fake.complete_checkout(_stripe_session_of(fake, started["id"])["id"])
    doc = stripe_event("checkout.session.completed", completed)
    now = int(time.time())
    for answer in (_to_stripe(server, doc, secret="whsec_someone_else"), _to_stripe(server, doc, at=now - 360),
                   _to_stripe(server, doc, at=now + 360)):
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_signature")
    body = json.dumps(doc).encode()
    no_header = httpx.post(f"{server.base_url}/webhooks/stripe", content=body)
    changed = httpx.post(f"{server.base_url}/webhooks/stripe", content=body.replace(b"1000", b"9000"),
                         headers=stripe_signing.signed_headers(body, STRIPE_SECRET, now))
    assert (no_header.status_code, changed.status_code, _credit(server, tenant)) == (400, 400, 0)
    stolen = dict(completed, metadata=dict(completed["metadata"], account_id=other.account_id))
    assert _to_stripe(server, stripe_event("checkout.session.completed", stolen)).json()["outcome"] == "mismatch"
    assert _to_stripe(server, stripe_event("customer.created", {"id": "cus_1"})).json()["outcome"] == "ignored"
    assert _to_stripe(server, doc).json()["outcome"] == "applied"
    assert _to_stripe(server, doc).json()["outcome"] == "duplicate"
    assert (_credit(server, tenant), _credit(server, other)) == (10_000_000, 0)


# -- Dodo -----------------------------------------------------------------------------------------
def _to_dodo(server, event_type: str, data: dict, *, msg_id: str, at: int | None = None,
             secret: str = DODO_SECRET) -> httpx.Response:
    body = dodo.event_body(event_type, data)
    headers = sw.headers(secret, msg_id, at if at is not None else int(time.time()), body)
    return httpx.post(f"{server.base_url}/webhooks/dodo", content=body,
                      headers={**headers, "content-type": "application/json"})


def test_a_dodo_checkout_is_granted_once_and_a_refund_takes_its_share_back(dodo_live):
    server, fake = dodo_live
    tenant = _tenant(server, "dodo-buyer@example.com")
    started = _checkout(server, tenant, {"item": "credit", "amount_micros": 25_000_000})
    sent = fake.sent("POST", "/checkouts")[-1]
    assert sent.json["metadata"]["checkout_id"] == started["id"]
    paid = dodo.payment_data(payment_id="pay_dodo_e2e", total_amount=2500, metadata={
        "checkout_id": started["id"], "payment_id": started["payment_id"], "account_id": tenant.account_id})
    assert _to_dodo(server, "payment.succeeded", paid, msg_id="msg_d1").json()["outcome"] == "applied"
    # Dodo's body has no event id: the same payment told again under a new webhook-id changes nothing.
    assert _to_dodo(server, "payment.succeeded", paid, msg_id="msg_d2").json()["outcome"] == "no_change"
    assert _to_dodo(server, "payment.succeeded", paid, msg_id="msg_d1").json()["outcome"] == "duplicate"
    assert _credit(server, tenant) == 25_000_000
    refund = dodo.refund_data(refund_id="ref_e2e", payment_id="pay_dodo_e2e", amount=1000)
    assert _to_dodo(server, "refund.succeeded", refund, msg_id="msg_d3").json()["outcome"] == "applied"
    assert _credit(server, tenant) == 15_000_000
    dispute = dodo.dispute_data(payment_id="pay_dodo_e2e")
    assert _to_dodo(server, "dispute.opened", dispute, msg_id="msg_d4").json()["outcome"] == "applied"
    me = httpx.get(f"{server.base_url}/api/v1/account", headers=tenant.auth).json()
    assert me["status"] == "suspended"


def test_the_dodo_webhook_refuses_what_is_not_authentic_or_fresh(dodo_live):
    server, _ = dodo_live
    tenant, other = _tenant(server, "dodo-hooks@example.com"), _tenant(server, "dodo-other@example.com")
    started = _checkout(server, tenant, {"item": "credit", "amount_micros": 10_000_000})
    meta = {"checkout_id": started["id"], "payment_id": started["payment_id"], "account_id": tenant.account_id}
    paid = dodo.payment_data(payment_id="pay_dodo_hooks", total_amount=1000, metadata=meta)
    now = int(time.time())
    for answer in (_to_dodo(server, "payment.succeeded", paid, msg_id="m1", secret=sw.new_secret()),
                   _to_dodo(server, "payment.succeeded", paid, msg_id="m2", at=now - 360),
                   _to_dodo(server, "payment.succeeded", paid, msg_id="m3", at=now + 360)):
        assert (answer.status_code, answer.json().get("error", {}).get("code")) == (400, "invalid_signature"), \
            answer.text
    stolen = dict(paid, metadata=dict(meta, account_id=other.account_id))
    assert _to_dodo(server, "payment.succeeded", stolen, msg_id="m4").json()["outcome"] == "mismatch"
    assert _to_dodo(server, "license_key.created", {"id": "lk"}, msg_id="m5").json()["outcome"] == "ignored"
    assert _to_dodo(server, "payment.succeeded", paid, msg_id="m6").json()["outcome"] == "applied"
    assert _to_dodo(server, "payment.succeeded", paid, msg_id="m6").json()["outcome"] == "duplicate"
    assert (_credit(server, tenant), _credit(server, other)) == (10_000_000, 0)


def test_the_nightly_reconciliation_reads_stripes_records_and_names_a_refund_we_never_heard_of(stripe_live, caplog):
    from datetime import datetime, timedelta, timezone

    from billing_core.db.engine import make_engine
    from billing_core.payments.reconcile import reconcile_payments
    from billing_core.payments.stripe_adapter import StripeProvider
    from billing_core.plans import load_catalog
    from billing_core.services.context import Billing

    server, fake = stripe_live
    tenant = _tenant(server, "stripe-reconcile@example.com")
    started = _checkout(server, tenant, {"item": "credit", "amount_micros": 12_000_000})
    completed = fake.complete_checkout(_stripe_session_of(fake, started["id"])["id"])
    assert _to_stripe(server, stripe_event("checkout.session.completed", completed)).json()["outcome"] == "applied"
    engine = make_engine(server.database_url)
    billing = Billing(engine, load_catalog())
    provider = StripeProvider(API_KEY, STRIPE_SECRET, base_url=fake.url)
    later = datetime.now(timezone.utc) + timedelta(hours=1)  # past the 30 minutes a payment may still settle

    def mine() -> list[str]:
        return [d for d in reconcile_payments(billing, provider, later).differences if started["payment_id"] in d]

    caplog.errors_expected = True  # the differences of the other tests' payments are logged as errors, on purpose
    try:
        assert mine() == []
        intent = fake.intents[completed["payment_intent"]]
        fake.charges[intent["latest_charge"]]["amount_refunded"] = 300  # refunded in Stripe's dashboard
        assert mine() == [f"payment {started['payment_id']}: the provider refunded $3.00, we recorded $0.00"]
    finally:
        engine.dispose()


def test_an_upgrade_without_a_saved_card_answers_402_with_a_checkout_to_pay_it(stripe_live):
    server, _ = stripe_live
    tenant = _tenant(server, "stripe-upgrade@example.com")
    refused = httpx.post(f"{server.base_url}/api/v1/billing/plan", json={"plan": "pro"}, headers=tenant.auth)
    error = refused.json()["error"]
    assert (refused.status_code, error["code"]) == (402, "payment_method_required")
    assert error["checkout"]["item"] == "plan" and error["checkout"]["url"].startswith("http")
    assert 0 < error["checkout"]["amount_micros"] == error["amount_micros"] <= 80_000_000
    down = httpx.post(f"{server.base_url}/api/v1/billing/plan", json={"plan": "hobby"}, headers=tenant.auth).json()
    assert (down["plan"], down["pending_plan"]) == ("starter", "hobby")
