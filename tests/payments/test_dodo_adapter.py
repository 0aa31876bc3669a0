"""The Dodo adapter against a fake Dodo API on 127.0.0.1 (tests/payments/fake_dodo.py): the exact requests it makes,
how failures come back, and webhooks signed with an independent Standard Webhooks signer."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from dodopayments import DodoPayments

from billing_core.payments.dodo_adapter import DodoProvider
from billing_core.payments.provider import (
    DISPUTE_LOST, DISPUTE_OPENED, DISPUTE_WON, IGNORED, PAYMENT_FAILED, PAYMENT_SUCCEEDED, REFUND_SUCCEEDED,
    ChargeRequest, CheckoutRequest, ProviderError, SavedMethod, WebhookRejected,
)
from tests.payments import standard_webhooks_signing as swh
from tests.payments.fake_dodo import FakeDodo, dispute_data, event_body, payment_data, refund_data

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PWYW, ON_DEMAND = "pdt_topup_pwyw", "pdt_on_demand"
OK_URL, NO_URL = "https://app.test/ok", "https://app.test/no"


@pytest.fixture
def fake():
    server = FakeDodo().start()
    yield server
    server.stop()
    assert server.violations == [], "the adapter sent a request off Dodo's documented format"


def make_provider(fake: FakeDodo, **overrides) -> DodoProvider:
    api_key = overrides.pop("api_key", fake.api_key)
    options = {"product_id": PWYW, "on_demand_product_id": ON_DEMAND, "base_url": fake.url, "timeout_s": 2.0}
    options.update(overrides)
    return DodoProvider(api_key, SECRET, **options)


@pytest.fixture
def provider(fake):
    adapter = make_provider(fake)
    yield adapter
    adapter.close()


def checkout(**overrides) -> CheckoutRequest:
    fields = dict(checkout_id="chk_1", account_id="acc_1", email="a@example.com", description="Tollgate credit $25",
                  amount_micros=25_000_000, success_url=OK_URL, cancel_url=NO_URL, payment_id="pay_ours_1")
    fields.update(overrides)
    return CheckoutRequest(**fields)


def charge_request(**overrides) -> ChargeRequest:
    fields = dict(payment_id="pay_ours_2", account_id="acc_1", amount_micros=12_340_000, description="Invoice 7",
                  method=SavedMethod("sub_1", "cus_1"), idempotency_key="tollgate-topup-acc_1-3")
    fields.update(overrides)
    return ChargeRequest(**fields)


def only_request(fake: FakeDodo):
    assert len(fake.requests) == 1, [(r.method, r.path) for r in fake.requests]
    request = fake.requests[0]
    assert request.headers["authorization"] == f"Bearer {fake.api_key}"
    if request.method == "POST":
        assert request.headers["content-type"] == "application/json"
    return request


def test_the_fake_refuses_requests_off_dodos_documented_format(fake):
    good = {"Authorization": f"Bearer {fake.api_key}"}
    cart = [{"product_id": PWYW, "quantity": 1, "amount": 2500}]
    cases = [
        ({}, {"product_cart": cart}, 401),  # no bearer token
        (good, {"product_cart": [{"product_id": PWYW, "quantity": 1, "amount": "25.00"}]}, 422),
        (good, {"product_cart": cart, "customer": {"mail": "a@example.com"}}, 422),
        (good, {"product_cart": cart, "metadata": {"nested": {"no": 1}}}, 422),
        (good, {"product_cart": cart, "price": 2500}, 422),
    ]
    for headers, body, status in cases:
        answer = httpx.post(f"{fake.url}/checkouts", json=body, headers=headers)
        assert answer.status_code == status and answer.json()["code"] and answer.json()["message"]
    assert len(fake.violations) == len(cases)
    fake.violations.clear()  # refused on purpose; the fixture asserts the adapter's own requests


# --- checkout -----------------------------------------------------------------------------------------------

def test_a_checkout_that_saves_nothing_sells_the_pay_what_you_want_product_at_our_amount(fake, provider):
    session = provider.create_checkout(checkout(save_method=False))
    request = only_request(fake)
    assert (request.method, request.path) == ("POST", "/checkouts")
    assert request.json == {
        "product_cart": [{"product_id": PWYW, "quantity": 1, "amount": 2500}],
        "customer": {"email": "a@example.com"}, "return_url": OK_URL, "cancel_url": NO_URL, "billing_currency": "USD",
        "metadata": {"checkout_id": "chk_1", "payment_id": "pay_ours_1", "account_id": "acc_1"},
    }
    assert session.provider_ref.startswith("cks_") and session.url == f"{fake.url}/session/{session.provider_ref}"
    assert session.expires_at is None


def test_a_checkout_that_saves_the_method_is_an_on_demand_subscription_charging_now(fake, provider):
    provider.create_checkout(checkout(save_method=True, amount_micros=5_000_000))
    assert only_request(fake).json == {
        "product_cart": [{"product_id": ON_DEMAND, "quantity": 1}],
        "subscription_data": {"on_demand": {"mandate_only": False, "product_price": 500, "product_currency": "USD",
                                            "product_description": "Tollgate credit $25"}},
        "customer": {"email": "a@example.com"}, "return_url": OK_URL, "cancel_url": NO_URL, "billing_currency": "USD",
        "metadata": {"checkout_id": "chk_1", "payment_id": "pay_ours_1", "account_id": "acc_1"},
    }


def test_without_an_on_demand_product_a_saving_checkout_is_one_time(fake):
    provider = make_provider(fake, on_demand_product_id=None)
    provider.create_checkout(checkout(save_method=True))
    assert only_request(fake).json["product_cart"] == [{"product_id": PWYW, "quantity": 1, "amount": 2500}]
    assert "subscription_data" not in fake.requests[0].json


def test_a_known_customer_is_attached_by_dodo_id_and_absent_ids_are_not_sent(fake, provider):
    provider.create_checkout(checkout(customer_ref="cus_9", payment_id="", save_method=False))
    body = only_request(fake).json
    assert body["customer"] == {"customer_id": "cus_9"}
    assert body["metadata"] == {"checkout_id": "chk_1", "account_id": "acc_1"}


@pytest.mark.parametrize("amount", [25_000_001, 0, -10_000])
def test_an_amount_that_is_not_positive_whole_cents_is_refused_before_asking_dodo(fake, provider, amount):
    with pytest.raises(ValueError):
        provider.create_checkout(checkout(amount_micros=amount))
    assert fake.requests == []


def test_a_server_error_on_checkout_is_retryable_and_sent_once(fake, provider):
    fake.fail_status = 500
    with pytest.raises(ProviderError) as caught:
        provider.create_checkout(checkout())
    assert caught.value.retryable and "INTERNAL_SERVER_ERROR" in str(caught.value)
    assert len(fake.requests) == 1  # the SDK's own retries are off


def test_a_wrong_api_key_is_a_provider_error_that_is_not_retried(fake):
    provider = make_provider(fake, api_key="sk_wrong")
    with pytest.raises(ProviderError) as caught:
        provider.create_checkout(checkout())
    assert not caught.value.retryable and "UNAUTHORIZED" in str(caught.value)


# --- charge -------------------------------------------------------------------------------------------------

def test_a_charge_sends_cents_and_our_ids_and_is_pending_until_the_webhook(fake, provider):
    fake.subscriptions.add("sub_1")
    result = provider.charge(charge_request())
    request = only_request(fake)
    assert (request.method, request.path) == ("POST", "/subscriptions/sub_1/charge")
    assert request.json == {"product_price": 1234, "product_currency": "USD", "product_description": "Invoice 7",
                            "metadata": {"payment_id": "pay_ours_2", "account_id": "acc_1",
                                         "idempotency_key": "tollgate-topup-acc_1-3"}}
    assert result.status == "pending" and result.provider_payment_id in fake.payments
    assert result.failure_message is None


def test_a_charge_dodo_refuses_is_a_failed_charge_with_its_reason(fake, provider):
    fake.subscriptions.add("sub_1")
    fake.charge_refusal = (422, "SUBSCRIPTION_INACTIVE", "Subscription is not active")
    result = provider.charge(charge_request())
    assert (result.status, result.provider_payment_id) == ("failed", None)
    assert result.failure_message == "SUBSCRIPTION_INACTIVE: Subscription is not active"


def test_a_charge_of_a_subscription_dodo_does_not_know_is_failed(fake, provider):
    result = provider.charge(charge_request())
    assert result.status == "failed" and "NOT_FOUND" in result.failure_message


def test_a_charge_while_the_previous_one_is_pending_may_be_tried_later(fake, provider):
    fake.subscriptions.add("sub_1")
    fake.charge_refusal = (400, "PREVIOUS_PAYMENT_PENDING", "Cannot create new charge as previous payment is not "
                                                           "successful yet")
    with pytest.raises(ProviderError) as caught:
        provider.charge(charge_request())
    assert caught.value.retryable


def test_a_server_error_on_a_charge_is_not_retryable_as_dodo_has_no_idempotency(fake, provider):
    fake.fail_status = 500
    with pytest.raises(ProviderError) as caught:
        provider.charge(charge_request())
    assert not caught.value.retryable
    assert len(fake.requests) == 1


def test_a_charge_that_times_out_has_an_unknown_outcome_and_is_not_retryable(fake):
    fake.subscriptions.add("sub_1")
    fake.delay_s = 0.6
    provider = make_provider(fake, timeout_s=0.2)
    with pytest.raises(ProviderError) as caught:
        provider.charge(charge_request())
    assert not caught.value.retryable and "unknown" in str(caught.value)


def test_a_charge_when_dodo_cannot_be_reached_sent_nothing_and_is_retryable(fake):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = make_provider(fake, base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ProviderError) as caught:
        provider.charge(charge_request())
    assert caught.value.retryable


# --- refund -------------------------------------------------------------------------------------------------

def test_a_full_refund_names_the_payment_only(fake, provider):
    payment = fake.add_payment(total_amount=2500)
    result = provider.refund(provider_payment_id=payment["payment_id"], amount_micros=25_000_000,
                             idempotency_key="refund-1", reason="asked by the customer")
    lookup, create = fake.requests
    assert (lookup.method, lookup.path, lookup.json) == ("GET", f"/payments/{payment['payment_id']}", None)
    assert (create.method, create.path) == ("POST", "/refunds")
    assert create.json == {"payment_id": payment["payment_id"], "metadata": {"idempotency_key": "refund-1"},
                           "reason": "asked by the customer"}
    assert all(r.headers["authorization"] == f"Bearer {fake.api_key}" for r in fake.requests)
    assert result.provider_refund_id.startswith("ref_") and result.status == "pending"
    assert result.amount_micros == 25_000_000


def test_partial_refunds_name_the_line_item_and_add_up_to_the_payment(fake, provider):
    fake.refund_status = "succeeded"
    payment = fake.add_payment(total_amount=2500)
    first = provider.refund(provider_payment_id=payment["payment_id"], amount_micros=10_000_000, idempotency_key="r1")
    # The rest of it is a partial refund too: a whole-payment refund after one part would refund too much.
    rest = provider.refund(provider_payment_id=payment["payment_id"], amount_micros=15_000_000, idempotency_key="r2")
    creates = fake.sent("POST", "/refunds")
    assert [c.json for c in creates] == [
        {"payment_id": payment["payment_id"], "metadata": {"idempotency_key": "r1"},
         "items": [{"item_id": PWYW, "amount": 1000}]},
        {"payment_id": payment["payment_id"], "metadata": {"idempotency_key": "r2"},
         "items": [{"item_id": PWYW, "amount": 1500}]},
    ]
    assert (first.status, first.amount_micros, rest.amount_micros) == ("succeeded", 10_000_000, 15_000_000)
    assert fake.payments[payment["payment_id"]]["refund_status"] == "full"


def test_a_partial_refund_of_a_payment_of_several_lines_is_left_to_the_dashboard(fake, provider):
    payment = fake.add_payment(product_cart=[{"product_id": PWYW, "quantity": 1}, {"product_id": "pdt_x",
                                                                                    "quantity": 1}])
    with pytest.raises(ProviderError) as caught:
        provider.refund(provider_payment_id=payment["payment_id"], amount_micros=1_000_000, idempotency_key="r")
    assert not caught.value.retryable and "2 lines" in str(caught.value)
    assert fake.sent("POST") == []


def test_a_refund_dodo_refuses_is_a_provider_error_with_its_reason(fake, provider):
    payment = fake.add_payment(total_amount=2500)
    with pytest.raises(ProviderError) as caught:
        provider.refund(provider_payment_id=payment["payment_id"], amount_micros=30_000_000, idempotency_key="r")
    assert not caught.value.retryable and "REFUND_AMOUNT_EXCEEDS_PAID_AMOUNT" in str(caught.value)


def test_a_refund_of_a_payment_dodo_does_not_know_asks_nothing_more(fake, provider):
    with pytest.raises(ProviderError):
        provider.refund(provider_payment_id="pay_nope", amount_micros=10_000, idempotency_key="r")
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/payments/pay_nope")]


# --- list_payments ------------------------------------------------------------------------------------------

def test_list_payments_reads_every_page_from_zero_with_refunds_and_disputes(fake, provider):
    start = datetime(2026, 3, 1, tzinfo=timezone.utc)
    for n in range(205):
        fake.add_payment(payment_id=f"pay_{n:04d}", created_at=(start + timedelta(minutes=n)).isoformat(),
                         total_amount=500 + n, metadata={"payment_id": f"pay_ours_{n}", "checkout_id": f"chk_{n}"})
    fake.add_payment(payment_id="pay_before", created_at=(start - timedelta(days=1)).isoformat())
    fake.payments["pay_0003"].update(refund_status="partial", refunds=[
        {"refund_id": "ref_a", "status": "succeeded", "amount": 200}, {"refund_id": "ref_b", "status": "failed",
                                                                        "amount": 100}])
    fake.payments["pay_0004"].update(dispute_status="dispute_opened")
    fake.payments["pay_0005"].update(status="failed")
    fake.payments["pay_0006"].update(status="processing", dispute_status="dispute_won")

    listed = provider.list_payments(since=start, until=start + timedelta(days=1))

    assert [p.provider_payment_id for p in listed] == [f"pay_{n:04d}" for n in range(205)]
    by_id = {p.provider_payment_id: p for p in listed}
    assert (by_id["pay_0000"].amount_micros, by_id["pay_0000"].refunded_micros) == (5_000_000, 0)
    assert (by_id["pay_0000"].payment_id, by_id["pay_0000"].checkout_id) == ("pay_ours_0", "chk_0")
    assert by_id["pay_0003"].refunded_micros == 2_000_000
    assert [by_id[f"pay_000{n}"].status for n in (3, 4, 5, 6)] == ["succeeded", "disputed", "failed", "pending"]
    pages = fake.sent("GET", "/payments")
    listing = [r for r in pages if r.path == "/payments"]
    assert [r.query["page_number"] for r in listing] == [["0"], ["1"], ["2"]]
    assert all(r.query["page_size"] == ["100"] for r in listing)
    assert datetime.fromisoformat(listing[0].query["created_at_gte"][0]) == start
    assert datetime.fromisoformat(listing[0].query["created_at_lte"][0]) == start + timedelta(days=1)
    assert [r.path for r in pages if r.path != "/payments"] == ["/payments/pay_0003"]


def test_list_payments_when_dodo_fails_is_a_retryable_provider_error(fake, provider):
    fake.fail_status = 503
    with pytest.raises(ProviderError) as caught:
        provider.list_payments(since=datetime(2026, 3, 1, tzinfo=timezone.utc),
                               until=datetime(2026, 3, 2, tzinfo=timezone.utc))
    assert caught.value.retryable


# --- webhooks -----------------------------------------------------------------------------------------------

def deliver(provider: DodoProvider, body: bytes, *, headers: dict | None = None, now: datetime | None = None):
    stamp = int(time.time())
    headers = headers if headers is not None else swh.headers(SECRET, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", stamp, body)
    return provider.parse_webhook(headers, body, now or datetime.fromtimestamp(stamp, tz=timezone.utc))


def test_payment_succeeded_is_normalized_with_the_subscription_as_the_saved_method(provider):
    body = event_body("payment.succeeded", payment_data())
    event = deliver(provider, body)
    assert (event.provider, event.event_id, event.type, event.kind) == (
        "dodo", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "payment.succeeded", PAYMENT_SUCCEEDED)
    assert event.occurred_at == datetime(2026, 3, 1, 10, 0, 5, 123456, tzinfo=timezone.utc)
    assert (event.checkout_id, event.payment_id, event.account_id) == ("chk_1", "pay_ours_1", "acc_1")
    assert (event.provider_payment_id, event.amount_micros) == ("pay_dodo_1", 25_000_000)
    assert event.method == SavedMethod("sub_1", "cus_1", "visa", "4242")
    assert event.raw == json.loads(body) and event.failure_message is None


def test_a_one_time_payment_succeeded_saves_no_method(provider):
    event = deliver(provider, event_body("payment.succeeded", payment_data(subscription_id=None)))
    assert event.kind == PAYMENT_SUCCEEDED and event.method is None


def test_payment_failed_carries_dodos_reason_and_no_method(provider):
    event = deliver(provider, event_body("payment.failed", payment_data(
        status="failed", error_code="INSUFFICIENT_FUNDS", error_message="The card has insufficient funds.")))
    assert (event.kind, event.failure_message, event.method) == (
        PAYMENT_FAILED, "The card has insufficient funds.", None)
    assert (event.payment_id, event.provider_payment_id) == ("pay_ours_1", "pay_dodo_1")


def test_refund_succeeded_is_this_refunds_amount_matched_by_dodos_payment_id(provider):
    event = deliver(provider, event_body("refund.succeeded", refund_data()))
    assert (event.kind, event.provider_refund_id, event.provider_payment_id) == (
        REFUND_SUCCEEDED, "ref_1", "pay_dodo_1")
    assert (event.amount_micros, event.refunded_total_micros, event.payment_id) == (10_000_000, None, None)


@pytest.mark.parametrize("event_type, kind", [("dispute.opened", DISPUTE_OPENED), ("dispute.won", DISPUTE_WON),
                                              ("dispute.lost", DISPUTE_LOST)])
@pytest.mark.parametrize("amount", ["2500", "25.00", 2500])
def test_disputes_are_normalized_with_their_amount(provider, event_type, kind, amount):
    event = deliver(provider, event_body(event_type, dispute_data(amount=amount)))
    assert (event.kind, event.provider_dispute_id, event.provider_payment_id) == (kind, "dsp_1", "pay_dodo_1")
    assert event.amount_micros == 25_000_000


def test_an_amount_in_another_currency_is_not_turned_into_micros(provider):
    event = deliver(provider, event_body("payment.succeeded", payment_data(currency="EUR")))
    assert event.kind == PAYMENT_SUCCEEDED and event.amount_micros is None


@pytest.mark.parametrize("event_type", ["subscription.active", "payment.processing", "license_key.created"])
def test_a_type_we_do_not_act_on_is_ignored_but_kept(provider, event_type):
    body = event_body(event_type, {"payload_type": "Subscription", "subscription_id": "sub_1"})
    event = deliver(provider, body)
    assert (event.kind, event.type, event.raw) == (IGNORED, event_type, json.loads(body))


def test_headers_are_read_whatever_their_case(provider):
    body = event_body("payment.succeeded", payment_data())
    signed = swh.headers(SECRET, "msg_1", int(time.time()), body)
    event = deliver(provider, body, headers={name.title(): value for name, value in signed.items()})
    assert event.event_id == "msg_1"


def test_one_good_signature_among_several_is_enough(provider):
    body = event_body("payment.succeeded", payment_data())
    signed = swh.headers(SECRET, "msg_1", int(time.time()), body)
    other = swh.sign(swh.new_secret(), "msg_1", int(time.time()), body)
    signed["webhook-signature"] = f"{other} v1a,bm90IGEgc2lnbmF0dXJl {signed['webhook-signature']}"
    assert deliver(provider, body, headers=signed).kind == PAYMENT_SUCCEEDED


@pytest.mark.parametrize("offset_s", [-300, 300])
def test_a_delivery_exactly_five_minutes_from_now_is_accepted(provider, offset_s):
    body = event_body("payment.succeeded", payment_data())
    stamp = int(time.time())
    event = provider.parse_webhook(swh.headers(SECRET, "m", stamp, body), body,
                                   datetime.fromtimestamp(stamp + offset_s, tz=timezone.utc))
    assert event.kind == PAYMENT_SUCCEEDED


def _rejections():
    body = event_body("payment.succeeded", payment_data())
    now = int(time.time())
    signed = swh.headers(SECRET, "m", now, body)
    at = datetime.fromtimestamp(now, tz=timezone.utc)
    changed = body.replace(b'"total_amount":2500', b'"total_amount":9500')
    assert changed != body
    yield "another secret", swh.headers(swh.new_secret(), "m", now, body), body, at
    yield "changed body", signed, changed, at
    yield "changed id", {**signed, "webhook-id": "m2"}, body, at
    yield "not v1", {**signed, "webhook-signature": signed["webhook-signature"].replace("v1,", "v2,")}, body, at
    for name in signed:
        yield f"no {name}", {k: v for k, v in signed.items() if k != name}, body, at
    yield "empty signature", {**signed, "webhook-signature": ""}, body, at
    yield "stale against now", signed, body, at + timedelta(seconds=301)
    yield "future against now", signed, body, at - timedelta(seconds=301)
    old = now - 400  # fresh against the `now` given, stale against the real clock that unwrap uses
    yield "stale against the clock", swh.headers(SECRET, "m", old, body), body, at - timedelta(seconds=400)
    yield "timestamp not seconds", {**signed, "webhook-timestamp": f"{now}.0"}, body, at
    yield "timestamp out of range", {**signed, "webhook-timestamp": "9" * 30}, body, at
    for name, raw in (("not JSON", b"payment.succeeded pay_1"), ("JSON not an object", b'["payment.succeeded"]'),
                      ("no type", b'{"data": {}}'), ("not UTF-8", b'{"type": "payment.succeeded", "x": "\xff"}')):
        yield f"signed but {name}", swh.headers(SECRET, "m", now, raw), raw, at


@pytest.mark.parametrize("case", list(_rejections()), ids=lambda case: case[0])
def test_a_delivery_that_is_not_authentic_fresh_and_well_formed_is_rejected(provider, case):
    _, headers, body, now = case
    with pytest.raises(WebhookRejected):
        provider.parse_webhook(headers, body, now)


def test_the_signer_matches_the_standard_webhooks_test_vector():
    # From standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py::test_sign_function.
    signature = swh.sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                         b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_what_the_signer_signs_the_dodo_sdk_unwraps():
    secret = swh.new_secret()
    body = event_body("refund.succeeded", refund_data())
    client = DodoPayments(bearer_token="unused", webhook_key=secret, base_url="http://127.0.0.1:9")
    unwrapped = client.webhooks.unwrap(body.decode(), headers=swh.headers(secret, "msg_9", int(time.time()), body))
    assert unwrapped.type == "refund.succeeded" and unwrapped.data.refund_id == "ref_1"
    with pytest.raises(Exception):
        client.webhooks.unwrap(body.decode(), headers=swh.headers(swh.new_secret(), "msg_9", int(time.time()), body))
