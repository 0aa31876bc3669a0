"""The Stripe adapter against a fake Stripe on 127.0.0.1: each call's exact request, declines, failures that are
not the card's, idempotent replays, every webhook type normalized, and every way a delivery is refused."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import stripe

from billing_core.payments.provider import (CHECKOUT_EXPIRED, DISPUTE_LOST, DISPUTE_OPENED, DISPUTE_WON, IGNORED,
                                            PAYMENT_FAILED, PAYMENT_SUCCEEDED, REFUND_SUCCEEDED, ChargeRequest,
                                            CheckoutRequest, ProviderError, SavedMethod, WebhookRejected)
from billing_core.payments.stripe_adapter import CHECKOUT_TTL_S, StripeProvider

from . import stripe_signing
from .fake_stripe import API_KEY, FakeStripe, event

SECRET = "whsec_test_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
IDS = {"checkout_id": "chk_1", "payment_id": "pay_1", "account_id": "acc_1"}


@pytest.fixture
def fake():
    with FakeStripe() as server:
        yield server
        assert server.violations == [], "the adapter broke Stripe's documented request format"


@pytest.fixture
def provider(fake) -> StripeProvider:
    return StripeProvider(API_KEY, SECRET, base_url=fake.url, http_timeout_s=5)


def checkout_request(**changes) -> CheckoutRequest:
    values = dict(checkout_id="chk_1", account_id="acc_1", email="ada@example.com", description="Credit top-up $25",
                  amount_micros=25_000_000, success_url="https://tollgate.test/ok", payment_id="pay_1",
                  cancel_url="https://tollgate.test/cancel")
    return CheckoutRequest(**{**values, **changes})


def charge_request(**changes) -> ChargeRequest:
    values = dict(payment_id="pay_2", account_id="acc_1", amount_micros=12_340_000, description="Invoice INV-7",
                  method=SavedMethod("pm_saved", "cus_saved"), idempotency_key="tollgate-topup-acc_1-1")
    return ChargeRequest(**{**values, **changes})


def deliver(provider: StripeProvider, evt, *, signed_at: datetime = NOW, now: datetime = NOW):
    body = json.dumps(evt).encode()
    return provider.parse_webhook(stripe_signing.signed_headers(body, SECRET, int(signed_at.timestamp())), body, now)


# ---- checkout ----

def test_checkout_creates_one_session_carrying_our_ids_on_the_session_and_its_payment_intent(fake, provider):
    session = provider.create_checkout(checkout_request())
    (sent,) = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/checkout/sessions")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["idempotency-key"] == "checkout-chk_1"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.headers["stripe-version"] == stripe.api_version
    assert sent.headers["user-agent"].startswith("Stripe/v1 PythonBindings/")  # the official SDK made the call
    expires_at = int(sent.params.pop("expires_at"))
    assert sent.params == {
        "mode": "payment", "line_items[0][quantity]": "1", "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "2500",
        "line_items[0][price_data][product_data][name]": "Credit top-up $25",
        "payment_intent_data[setup_future_usage]": "off_session",
        **{f"payment_intent_data[metadata][{k}]": v for k, v in IDS.items()},
        **{f"metadata[{k}]": v for k, v in IDS.items()},
        "client_reference_id": "chk_1", "success_url": "https://tollgate.test/ok",
        "cancel_url": "https://tollgate.test/cancel", "customer_creation": "always",
        "customer_email": "ada@example.com"}
    created = fake.sessions[session.provider_ref]["created"]
    assert 1800 < expires_at - created <= CHECKOUT_TTL_S + 5
    assert session.url == f"https://checkout.stripe.com/c/pay/{session.provider_ref}"
    assert session.expires_at == datetime.fromtimestamp(expires_at, timezone.utc)


def test_checkout_for_a_known_customer_names_it_instead_of_an_email_and_may_not_save_the_method(fake, provider):
    provider.create_checkout(checkout_request(customer_ref="cus_known", save_method=False, payment_id=""))
    params = fake.requests[0].params
    assert params["customer"] == "cus_known"
    assert not {"customer_email", "customer_creation", "payment_intent_data[setup_future_usage]",
                "metadata[payment_id]"} & params.keys()


def test_checkout_without_an_email_lets_the_customer_type_it(fake, provider):
    provider.create_checkout(checkout_request(email=""))
    assert "customer_email" not in fake.requests[0].params
    assert fake.requests[0].params["customer_creation"] == "always"


def test_checkout_sent_twice_for_one_checkout_is_one_session(fake, provider):
    first = provider.create_checkout(checkout_request())
    again = provider.create_checkout(checkout_request())
    assert again.provider_ref == first.provider_ref and len(fake.sessions) == 1
    assert [r.headers["idempotency-key"] for r in fake.requests] == ["checkout-chk_1"] * 2


# ---- charge ----

def test_charge_confirms_one_off_session_payment_intent_of_the_saved_method(fake, provider):
    result = provider.charge(charge_request())
    (sent,) = fake.requests
    assert (sent.method, sent.path, sent.headers["idempotency-key"]) == ("POST", "/v1/payment_intents",
                                                                         "tollgate-topup-acc_1-1")
    assert sent.params == {
        "amount": "1234", "currency": "usd", "customer": "cus_saved", "payment_method": "pm_saved",
        "off_session": "true", "confirm": "true", "automatic_payment_methods[enabled]": "true",
        "automatic_payment_methods[allow_redirects]": "never", "metadata[payment_id]": "pay_2",
        "metadata[account_id]": "acc_1", "description": "Invoice INV-7"}
    assert (result.status, result.failure_message) == ("succeeded", None)
    assert fake.intents[result.provider_payment_id]["amount_received"] == 1234


@pytest.mark.parametrize("code, message", [("card_declined", "Your card was declined."),
                                           ("authentication_required", "requires authentication")])
def test_a_declined_charge_is_a_failed_result_naming_the_payment_intent(fake, provider, code, message):
    fake.decline_next_charge(code)
    result = provider.charge(charge_request())
    assert result.status == "failed" and message in result.failure_message
    assert fake.intents[result.provider_payment_id]["status"] == "requires_payment_method"


@pytest.mark.parametrize("status, expected", [("processing", "pending"), ("requires_action", "failed")])
def test_a_charge_still_on_its_way_is_pending_and_one_that_needs_the_customer_failed(fake, provider, status, expected):
    fake.next_charge_status(status)
    result = provider.charge(charge_request())
    assert result.status == expected
    assert (result.failure_message is None) == (expected == "pending")


def test_a_charge_retried_with_its_key_is_one_payment_and_a_decline_replays_as_the_same_decline(fake, provider):
    paid = provider.charge(charge_request())
    assert provider.charge(charge_request()) == paid
    fake.decline_next_charge()
    declined = provider.charge(charge_request(idempotency_key="attempt-2"))
    assert provider.charge(charge_request(idempotency_key="attempt-2")) == declined
    assert len(fake.intents) == 2


def test_a_5xx_is_a_retryable_provider_error_and_the_retry_with_the_same_key_charges_once(fake, provider):
    fake.fail_next()
    with pytest.raises(ProviderError) as failed:
        provider.charge(charge_request())
    assert failed.value.retryable
    assert provider.charge(charge_request()).status == "succeeded"
    assert len(fake.intents) == 1 and len({r.headers["idempotency-key"] for r in fake.requests}) == 1


def test_a_key_reused_for_another_charge_is_a_provider_error_not_to_retry(fake, provider):
    provider.charge(charge_request())
    with pytest.raises(ProviderError) as refused:
        provider.charge(charge_request(amount_micros=99_990_000))
    assert not refused.value.retryable
    assert fake.violations and "idempotent" in fake.violations[0]
    fake.violations.clear()


def test_a_wrong_secret_key_is_a_provider_error_not_to_retry(fake):
    with pytest.raises(ProviderError) as refused:
        StripeProvider("sk_test_not_ours", SECRET, base_url=fake.url).charge(charge_request())
    assert not refused.value.retryable and fake.requests[0].status == 401


def test_an_unreachable_stripe_is_a_retryable_provider_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: the connection is refused
        with pytest.raises(ProviderError) as failed:
            StripeProvider(API_KEY, SECRET, base_url=f"http://127.0.0.1:{port}").charge(charge_request())
    assert failed.value.retryable


def test_amounts_not_in_whole_cents_or_currencies_not_in_cents_are_refused_before_any_request(fake, provider):
    for bad in (charge_request(amount_micros=12_345), charge_request(amount_micros=0),
                charge_request(currency="jpy")):
        with pytest.raises(ValueError):
            provider.charge(bad)
    assert fake.requests == []


# ---- refund ----

def test_refund_of_part_of_a_payment_sends_the_intent_amount_and_key(fake, provider):
    paid = provider.charge(charge_request())
    refund = provider.refund(provider_payment_id=paid.provider_payment_id, amount_micros=4_000_000,
                             idempotency_key="refund-pay_2-1", reason="requested_by_customer")
    sent = fake.requests[-1]
    assert (sent.method, sent.path, sent.headers["idempotency-key"]) == ("POST", "/v1/refunds", "refund-pay_2-1")
    assert sent.params == {"payment_intent": paid.provider_payment_id, "amount": "400",
                           "reason": "requested_by_customer", "metadata[reason]": "requested_by_customer"}
    assert (refund.status, refund.amount_micros) == ("succeeded", 4_000_000)
    assert refund.provider_refund_id in fake.refunds
    again = provider.refund(provider_payment_id=paid.provider_payment_id, amount_micros=4_000_000,
                            idempotency_key="refund-pay_2-1", reason="requested_by_customer")
    assert again == refund and len(fake.refunds) == 1


def test_a_refund_reason_stripe_does_not_know_goes_to_metadata_only(fake, provider):
    paid = provider.charge(charge_request())
    provider.refund(provider_payment_id=paid.provider_payment_id, amount_micros=10_000, idempotency_key="r-1",
                    reason="operator: wrong plan")
    assert fake.requests[-1].params == {"payment_intent": paid.provider_payment_id, "amount": "1",
                                        "metadata[reason]": "operator: wrong plan"}


def test_a_refund_stripe_refuses_is_a_provider_error_not_to_retry(fake, provider):
    with pytest.raises(ProviderError) as refused:
        provider.refund(provider_payment_id="pi_unknown", amount_micros=10_000, idempotency_key="r-2")
    assert not refused.value.retryable


# ---- reconciliation ----

def test_list_payments_pages_through_the_window_with_refunds_disputes_and_our_ids(fake, provider):
    since, until = NOW, NOW + timedelta(days=1)
    start = int(since.timestamp())
    for i in range(100):
        fake.add_intent(amount=500, created=start + 60 + i)
    refunded = fake.add_intent(amount=2000, created=start, refunded=700, metadata=IDS)
    disputed = fake.add_intent(amount=900, created=start + 5, disputed=True)
    failed = fake.add_intent(amount=900, created=start + 6, declined="card_declined")
    fake.add_intent(amount=1, created=start - 1)  # before the window
    fake.add_intent(amount=1, created=int(until.timestamp()))  # the window's end is excluded
    payments = {p.provider_payment_id: p for p in provider.list_payments(since=since, until=until)}
    assert len(payments) == 103
    first, second = fake.requests
    assert (first.method, first.path) == ("GET", "/v1/payment_intents")
    assert first.params == {"created[gte]": str(start), "created[lt]": str(int(until.timestamp())), "limit": "100",
                            "expand[0]": "data.latest_charge"}
    assert second.params == {**first.params, "starting_after": second.params["starting_after"]}
    row = payments[refunded["id"]]
    assert (row.amount_micros, row.refunded_micros, row.status) == (20_000_000, 7_000_000, "succeeded")
    assert (row.payment_id, row.checkout_id) == ("pay_1", "chk_1")
    assert payments[disputed["id"]].status == "disputed"
    assert (payments[failed["id"]].status, payments[failed["id"]].amount_micros) == ("failed", 0)


# ---- webhooks: normalized ----

def paid_checkout(fake, provider, *, paid: bool = True, save_method: bool = True) -> dict:
    session = provider.create_checkout(checkout_request(save_method=save_method))
    return fake.complete_checkout(session.provider_ref, paid=paid)


def test_a_paid_checkout_session_is_a_succeeded_payment_of_the_session_intent(fake, provider):
    session = paid_checkout(fake, provider)
    evt = event("checkout.session.completed", session, created=1768478400)
    got = deliver(provider, evt)
    assert (got.provider, got.event_id, got.type, got.kind) == ("stripe", evt["id"], evt["type"], PAYMENT_SUCCEEDED)
    assert got.occurred_at == datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
    assert (got.checkout_id, got.payment_id, got.account_id) == ("chk_1", "pay_1", "acc_1")
    assert (got.provider_payment_id, got.amount_micros) == (session["payment_intent"], 25_000_000)
    assert got.method == SavedMethod(method_ref="", customer_ref=session["customer"])
    assert got.raw == evt


@pytest.mark.parametrize("type_, paid, kind", [
    ("checkout.session.completed", False, IGNORED),  # a delayed method: wait for async_payment_succeeded
    ("checkout.session.async_payment_succeeded", True, PAYMENT_SUCCEEDED),
    ("checkout.session.async_payment_failed", False, PAYMENT_FAILED),
])
def test_a_delayed_checkout_payment_counts_when_stripe_says_how_it_ended(fake, provider, type_, paid, kind):
    session = paid_checkout(fake, provider, paid=False)
    session["payment_status"] = "paid" if paid else "unpaid"
    got = deliver(provider, event(type_, session))
    assert (got.kind, got.checkout_id, got.provider_payment_id) == (kind, "chk_1", session["payment_intent"])
    assert (got.amount_micros is not None) == (kind == PAYMENT_SUCCEEDED)


def test_an_expired_checkout_session_is_checkout_expired(fake, provider):
    session = dict(fake.sessions[provider.create_checkout(checkout_request()).provider_ref], status="expired")
    got = deliver(provider, event("checkout.session.expired", session))
    assert (got.kind, got.checkout_id, got.account_id, got.provider_payment_id) == (CHECKOUT_EXPIRED, "chk_1",
                                                                                    "acc_1", None)


def test_a_succeeded_payment_intent_set_up_for_later_offers_its_method_to_save(fake, provider):
    intent = fake.intents[paid_checkout(fake, provider)["payment_intent"]]
    got = deliver(provider, event("payment_intent.succeeded", intent))
    assert (got.kind, got.provider_payment_id, got.amount_micros) == (PAYMENT_SUCCEEDED, intent["id"], 25_000_000)
    assert (got.checkout_id, got.payment_id, got.account_id) == ("chk_1", "pay_1", "acc_1")
    assert got.method == SavedMethod(intent["payment_method"], intent["customer"])  # nothing expanded: no card
    expanded = dict(intent, latest_charge=fake.charges[intent["latest_charge"]])
    card = deliver(provider, event("payment_intent.succeeded", expanded)).method
    assert (card.method_ref, card.brand, card.last4) == (intent["payment_method"], "visa", "4242")


def test_a_payment_intent_not_set_up_for_later_offers_no_method(fake, provider):
    intent = fake.intents[paid_checkout(fake, provider, save_method=False)["payment_intent"]]
    assert deliver(provider, event("payment_intent.succeeded", intent)).method is None


def test_a_failed_payment_intent_is_a_failed_payment_with_stripes_message(fake, provider):
    intent = fake.add_intent(amount=1234, metadata={"payment_id": "pay_2", "account_id": "acc_1"},
                             declined="card_declined")
    got = deliver(provider, event("payment_intent.payment_failed", intent))
    assert (got.kind, got.payment_id, got.provider_payment_id) == (PAYMENT_FAILED, "pay_2", intent["id"])
    assert got.failure_message == "Your card was declined."


def test_a_refunded_charge_reports_the_cumulative_refunded_amount(fake, provider):
    paid = provider.charge(charge_request())
    provider.refund(provider_payment_id=paid.provider_payment_id, amount_micros=1_000_000, idempotency_key="r-a")
    provider.refund(provider_payment_id=paid.provider_payment_id, amount_micros=2_000_000, idempotency_key="r-b")
    charge = fake.charges[fake.intents[paid.provider_payment_id]["latest_charge"]]
    got = deliver(provider, event("charge.refunded", charge))
    assert (got.kind, got.provider_payment_id, got.payment_id, got.account_id) == (
        REFUND_SUCCEEDED, paid.provider_payment_id, "pay_2", "acc_1")
    assert (got.refunded_total_micros, got.amount_micros) == (3_000_000, None)


@pytest.mark.parametrize("type_, status, kind", [
    ("charge.dispute.created", "needs_response", DISPUTE_OPENED), ("charge.dispute.closed", "won", DISPUTE_WON),
    ("charge.dispute.closed", "lost", DISPUTE_LOST), ("charge.dispute.closed", "warning_closed", IGNORED)])
def test_disputes_open_and_close_won_or_lost(fake, provider, type_, status, kind):
    paid = provider.charge(charge_request())
    dispute = fake.dispute(paid.provider_payment_id, status)
    got = deliver(provider, event(type_, dispute))
    assert (got.kind, got.provider_payment_id, got.provider_dispute_id, got.amount_micros) == (
        kind, paid.provider_payment_id, dispute["id"], 12_340_000)


def test_an_event_type_we_do_not_act_on_is_ignored_but_kept(provider):
    evt = event("customer.updated", {"id": "cus_1", "object": "customer"})
    got = deliver(provider, evt)
    assert (got.kind, got.event_id, got.type, got.raw) == (IGNORED, evt["id"], "customer.updated", evt)


# ---- webhooks: refused ----

def test_deliveries_signed_up_to_five_minutes_either_side_of_now_are_accepted(provider):
    evt = event("customer.updated", {"id": "cus_1"})
    for offset in (-300, -299, 299, 300):
        assert deliver(provider, evt, signed_at=NOW + timedelta(seconds=offset)).kind == IGNORED


def test_a_header_in_any_letter_case_is_found(provider):
    body = json.dumps(event("customer.updated", {"id": "cus_1"})).encode()
    header = stripe_signing.sign(body, SECRET, int(NOW.timestamp()))
    assert provider.parse_webhook({"stripe-signature": header}, body, NOW).kind == IGNORED


def _signed(body: bytes, *, secret: str = SECRET, offset_s: int = 0) -> dict[str, str]:
    return stripe_signing.signed_headers(body, secret, int(NOW.timestamp()) + offset_s)


GOOD = json.dumps(event("payment_intent.succeeded", {"id": "pi_1", "metadata": {}})).encode()


@pytest.mark.parametrize("headers, body", [
    pytest.param(_signed(GOOD, secret="whsec_someone_else"), GOOD, id="bad signature"),
    pytest.param(_signed(GOOD, offset_s=-301), GOOD, id="stale"),
    pytest.param(_signed(GOOD, offset_s=301), GOOD, id="future"),
    pytest.param({"Content-Type": "application/json"}, GOOD, id="missing header"),
    pytest.param({"Stripe-Signature": ""}, GOOD, id="empty header"),
    pytest.param({"Stripe-Signature": "v1=" + stripe_signing.signature(GOOD, SECRET, 0)}, GOOD, id="no timestamp"),
    pytest.param(_signed(GOOD), GOOD.replace(b'"pi_1"', b'"pi_2"'), id="body changed after signing"),
    pytest.param(_signed(GOOD), GOOD + b" ", id="a byte added after signing"),
    pytest.param(_signed(b"not json"), b"not json", id="non-JSON"),
    pytest.param(_signed(b"\xff\xfe"), b"\xff\xfe", id="not UTF-8"),
    pytest.param(_signed(b"[1, 2]"), b"[1, 2]", id="JSON but not an event"),
])
def test_a_delivery_that_is_not_authentic_fresh_and_an_event_is_rejected(provider, headers, body):
    with pytest.raises(WebhookRejected):
        provider.parse_webhook(headers, body, NOW)


def test_the_independent_signer_and_the_sdk_agree():
    body = json.dumps({"id": "evt_1", "object": "event", "note": "café ☕"}, ensure_ascii=False).encode()
    at = int(NOW.timestamp())
    ours = stripe_signing.sign(body, SECRET, at)
    assert ours == stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, timestamp=at)
    assert stripe.WebhookSignature.verify_header(body, ours, SECRET, tolerance=None)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body, stripe_signing.sign(body, SECRET + "x", at), SECRET)


# ---- the fake itself refuses what Stripe would ----

@pytest.mark.parametrize("headers, body, problem", [
    ({"Idempotency-Key": "k"}, "amount=100&currency=usd", "Stripe-Version"),
    ({"Stripe-Version": "2026-10-28.endive"}, "amount=100&currency=usd", "Idempotency-Key"),
    ({"Stripe-Version": "2026-10-28.endive", "Idempotency-Key": "k"}, "amount=100", "currency"),
    ({"Stripe-Version": "2026-10-28.endive", "Idempotency-Key": "k"}, "amount=1.5&currency=usd", "integer"),
    ({"Stripe-Version": "2026-10-28.endive", "Idempotency-Key": "k"}, "amount=100&currency=usd&tip=1", "unknown"),
    ({"Stripe-Version": "2026-10-28.endive", "Idempotency-Key": "k"},
     "amount=100&currency=usd&confirm=true&payment_method=pm_1", "return_url"),
])
def test_the_fake_answers_a_malformed_request_with_a_stripe_error(fake, headers, body, problem):
    answer = httpx.post(f"{fake.url}/v1/payment_intents", content=body, headers={
        "Authorization": f"Bearer {API_KEY}", "Content-Type": "application/x-www-form-urlencoded", **headers})
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_request_error"
    assert problem in fake.violations[0]
    fake.violations.clear()
