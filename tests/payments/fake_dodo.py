"""A fake Dodo Payments API: a real HTTP server on 127.0.0.1 serving the endpoints the Dodo adapter calls, as Dodo's
API reference and its SDK's generated types (dodopayments 1.123) describe them:

  POST /checkouts                        -> {"session_id", "checkout_url"}
  POST /subscriptions/{id}/charge        -> {"payment_id"}
  POST /refunds                          -> a Refund
  GET  /payments/{id}                    -> a Payment
  GET  /payments?created_at_gte&created_at_lte&page_number&page_size  -> {"items": [...]}, pages from 0

It records every request and checks it against the documented format (`Authorization: Bearer <key>`, JSON bodies
with only documented fields of the documented types). A request off the format is answered with a Dodo-shaped
422 `{"code", "message"}` and kept in `violations`, which the tests' fixture asserts empty. A few of Dodo's
documented business refusals are played too (unknown subscription, over-refund, pay-what-you-want without an
amount). Switches: `charge_refusal` (a 4xx for charges), `fail_status` (every request), `delay_s` (slow answers).
Webhook bodies shaped as Dodo sends them are at the end, for any test of a Dodo delivery.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

Check = Callable[[Any, str], list]


def _string(max_len: int | None = None) -> Check:
    def check(value: Any, at: str) -> list:
        ok = isinstance(value, str) and value and (max_len is None or len(value) <= max_len)
        return [] if ok else [f"{at} must be a non-empty string" + (f" of at most {max_len}" if max_len else "")]
    return check


def _integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    def check(value: Any, at: str) -> list:
        ok = isinstance(value, int) and not isinstance(value, bool) and (minimum is None or value >= minimum) \
            and (maximum is None or value <= maximum)
        return [] if ok else [f"{at} must be an integer in [{minimum}, {maximum}], not {value!r}"]
    return check


def _boolean(value: Any, at: str) -> list:
    return [] if isinstance(value, bool) else [f"{at} must be a boolean"]


def _currency(value: Any, at: str) -> list:
    ok = isinstance(value, str) and len(value) == 3 and value.isupper() and value.isalpha()
    return [] if ok else [f"{at} must be an ISO 4217 code in capitals, not {value!r}"]


def _metadata(value: Any, at: str) -> list:
    if not isinstance(value, dict):
        return [f"{at} must be an object"]
    return [f"{at}.{key} must be a string, number or boolean" for key, item in value.items()
            if not isinstance(key, str) or not isinstance(item, (str, int, float, bool))]


def _any_object(value: Any, at: str) -> list:
    return [] if isinstance(value, dict) else [f"{at} must be an object"]


def _array(item: Check, *, min_items: int = 0, max_items: int | None = None) -> Check:
    def check(value: Any, at: str) -> list:
        if not isinstance(value, list) or len(value) < min_items or (max_items and len(value) > max_items):
            return [f"{at} must be an array of {min_items} to {max_items or 'any'} items"]
        return [problem for index, element in enumerate(value) for problem in item(element, f"{at}[{index}]")]
    return check


def _object(required: dict[str, Check], optional: dict[str, Check] | None = None) -> Check:
    """An object with these fields and no others; an optional field may be null (the API's Optional)."""
    optional = optional or {}

    def check(value: Any, at: str) -> list:
        if not isinstance(value, dict):
            return [f"{at} must be an object"]
        problems = [f"{at}.{name} is required" for name in required if name not in value]
        problems += [f"{at}.{name} is not a documented field" for name in value
                     if name not in required and name not in optional]
        for name, item in value.items():
            if name in required:
                problems += required[name](item, f"{at}.{name}")
            elif name in optional and item is not None:
                problems += optional[name](item, f"{at}.{name}")
        return problems
    return check


def _one_of(*checks: Check) -> Check:
    def check(value: Any, at: str) -> list:
        results = [c(value, at) for c in checks]
        return [] if any(not r for r in results) else min(results, key=len)
    return check


# The request bodies, field for field from the SDK's *_params types (generated from Dodo's OpenAPI).
PRODUCT_ITEM = _object({"product_id": _string(), "quantity": _integer(1)},
                       {"addons": _array(_any_object), "amount": _integer(0),
                        "credit_entitlements": _array(_any_object)})
CUSTOMER = _one_of(_object({"customer_id": _string()}),
                   _object({"email": _string()}, {"name": _string(), "phone_number": _string()}))
ON_DEMAND = _object({"mandate_only": _boolean},
                    {"adaptive_currency_fees_inclusive": _boolean, "product_currency": _currency,
                     "product_description": _string(), "product_price": _integer(1)})
CHECKOUT = _object({"product_cart": _array(PRODUCT_ITEM, max_items=20)}, {
    "allowed_payment_method_types": _array(_string()), "billing_address": _any_object,
    "billing_currency": _currency, "cancel_url": _string(), "confirm": _boolean,
    "custom_fields": _array(_any_object, max_items=5), "customer": CUSTOMER, "customer_business_name": _string(),
    "customization": _any_object, "discount_code": _string(), "discount_codes": _array(_string(), max_items=20),
    "feature_flags": _any_object, "force_3ds": _boolean, "mandate_min_amount_inr_paise": _integer(0),
    "metadata": _metadata, "minimal_address": _boolean, "payment_method_id": _string(),
    "product_collection_id": _string(), "return_url": _string(), "short_link": _boolean,
    "show_saved_payment_methods": _boolean, "tax_id": _string(),
    "subscription_data": _object({}, {"on_demand": ON_DEMAND, "trial_period_days": _integer(0, 10000)}),
})
CHARGE = _object({"product_price": _integer(1)}, {
    "adaptive_currency_fees_inclusive": _boolean, "metadata": _metadata, "product_currency": _currency,
    "product_description": _string(),
    "customer_balance_config": _object({}, {"allow_customer_credits_purchase": _boolean,
                                            "allow_customer_credits_usage": _boolean}),
})
REFUND = _object({"payment_id": _string()}, {
    "currency": _currency, "metadata": _metadata, "reason": _string(3000),
    "items": _array(_object({"item_id": _string()}, {"amount": _integer(1), "tax_inclusive": _boolean}),
                    min_items=1),
})
LIST_QUERY = ("brand_id", "created_at_gte", "created_at_lte", "currency", "customer_id", "page_number", "page_size",
              "product_id", "status", "subscription_id")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    json: Any = None


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class FakeDodo:
    """The fake's state and switches; `start()` serves it, `stop()` ends it."""

    api_key: str = "sk_test_fake_dodo"
    one_time_products: set = field(default_factory=lambda: {"pdt_topup_pwyw"})  # pay-what-you-want, one-time
    subscription_products: set = field(default_factory=lambda: {"pdt_on_demand"})
    subscriptions: set = field(default_factory=set)  # active on-demand subscriptions that may be charged
    payments: dict = field(default_factory=dict)  # payment_id -> Payment object
    requests: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    charge_refusal: tuple | None = None  # (status, code, message)
    fail_status: int | None = None
    delay_s: float = 0.0
    refund_status: str = "pending"

    def start(self) -> "FakeDodo":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll, so that stopping the server after each test is quick.
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        serve.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def sent(self, method: str | None = None, path_prefix: str = "") -> list[Recorded]:
        return [r for r in self.requests if (method is None or r.method == method) and r.path.startswith(path_prefix)]

    def add_payment(self, **fields: Any) -> dict:
        """A Payment as Dodo's GET /payments/{id} shows it; `fields` override the defaults."""
        payment_id = fields.pop("payment_id", f"pay_{uuid.uuid4().hex[:20]}")
        payment = {
            "payment_id": payment_id, "business_id": "bus_fake", "brand_id": "bus_fake",
            "created_at": datetime.now(timezone.utc).isoformat(), "currency": "USD", "total_amount": 2500,
            "settlement_amount": 2500, "settlement_currency": "USD", "status": "succeeded", "metadata": {},
            "customer": {"customer_id": "cus_fake", "email": "a@example.com", "name": "A"},
            "billing": {"country": "US", "city": "SF", "state": "CA", "street": "1 Market St", "zipcode": "94105"},
            "digital_products_delivered": False, "disputes": [], "refunds": [], "includes_usage": False,
            "is_multi_subscription": False, "is_update_payment_method": False, "payment_provider": "dodo",
            "retry_attempt": 0, "service_periods": [], "subscription_ids": [], "subscription_id": None,
            "product_cart": [{"product_id": "pdt_topup_pwyw", "quantity": 1}], "refund_status": None,
            "dispute_status": None, "has_license_key": False,
        }
        payment.update(fields)
        self.payments[payment_id] = payment
        return payment

    # --- the endpoints -------------------------------------------------------------------------------------

    def answer(self, request: Recorded) -> tuple[int, Any]:
        self._check_auth(request)
        if self.fail_status:
            raise Refused(self.fail_status, "INTERNAL_SERVER_ERROR", "the fake was told to fail")
        parts = request.path.strip("/").split("/")
        if request.method == "POST":
            if request.headers.get("content-type", "").split(";")[0] != "application/json":
                self._violation("a POST must send Content-Type: application/json")
            if parts == ["checkouts"]:
                return 200, self._checkout(request.json)
            if len(parts) == 3 and parts[0] == "subscriptions" and parts[2] == "charge":
                return 200, self._charge(parts[1], request.json)
            if parts == ["refunds"]:
                return 200, self._refund(request.json)
        if request.method == "GET" and parts[0] == "payments" and len(parts) == 2:
            if parts[1] not in self.payments:
                raise Refused(404, "NOT_FOUND", f"payment {parts[1]} not found")
            return 200, self.payments[parts[1]]
        if request.method == "GET" and parts == ["payments"]:
            return 200, self._list(request.query)
        self._violation(f"{request.method} {request.path} is not an endpoint the adapter should call")

    def _check_auth(self, request: Recorded) -> None:
        given = request.headers.get("authorization", "")
        if not given.startswith("Bearer ") or not given[len("Bearer "):]:
            self._violation("missing Authorization: Bearer <key>", status=401, code="UNAUTHORIZED")
        if given != f"Bearer {self.api_key}":
            raise Refused(401, "UNAUTHORIZED", "You are not authorised to perform this action")

    def _violation(self, message: str, *, status: int = 422, code: str = "FAKE_DODO_OFF_FORMAT") -> None:
        self.violations.append(message)
        raise Refused(status, code, message)

    def _validate(self, check: Check, body: Any, name: str) -> None:
        problems = check(body, name)
        if problems:
            self._violation("; ".join(problems))

    def _checkout(self, body: Any) -> dict:
        self._validate(CHECKOUT, body, "body")
        on_demand = (body.get("subscription_data") or {}).get("on_demand")
        for item in body["product_cart"]:
            product = item["product_id"]
            if product in self.one_time_products:
                if on_demand:
                    raise Refused(422, "ONE_TIME_PRODUCTS_NOT_ALLOWED_FOR_ON_DEMAND",
                                  "One-time products are not allowed for on demand subscriptions")
                if item.get("amount") is None:
                    raise Refused(422, "PAY_AS_YOU_WANT_AMOUNT_REQUIRED",
                                  "Amount is mandatory for pay as you want product")
            elif product in self.subscription_products:
                if item.get("amount") is not None:
                    self._violation("product_cart[].amount applies to one-time products only")
            else:
                raise Refused(404, "NOT_FOUND", f"product {product} not found")
        session_id = f"cks_{uuid.uuid4().hex[:20]}"
        return {"session_id": session_id, "checkout_url": f"{self.url}/session/{session_id}"}

    def _charge(self, subscription_id: str, body: Any) -> dict:
        self._validate(CHARGE, body, "body")
        if subscription_id not in self.subscriptions:
            raise Refused(404, "NOT_FOUND", f"subscription {subscription_id} not found")
        if self.charge_refusal:
            raise Refused(*self.charge_refusal)
        payment = self.add_payment(status="processing", total_amount=body["product_price"],
                                   currency=body.get("product_currency") or "USD",
                                   metadata=body.get("metadata") or {}, subscription_id=subscription_id,
                                   subscription_ids=[subscription_id],
                                   product_cart=[{"product_id": "pdt_on_demand", "quantity": 1}])
        return {"payment_id": payment["payment_id"]}

    def _refund(self, body: Any) -> dict:
        self._validate(REFUND, body, "body")
        payment = self.payments.get(body["payment_id"])
        if payment is None:
            raise Refused(404, "NOT_FOUND", f"payment {body['payment_id']} not found")
        if payment["status"] != "succeeded":
            raise Refused(422, "PAYMENT_NOT_SUCCEEDED", "The provided payment has not succeeded")
        taken = sum(r["amount"] for r in payment["refunds"] if r["status"] != "failed")
        lines = {item["product_id"] for item in payment["product_cart"] or []}
        items = body.get("items")
        for item in items or []:
            if item["item_id"] not in lines:
                raise Refused(422, "LINE_ITEM_NOT_FOUND", f"Line item {item['item_id']} not found in payment")
        amount = sum(item.get("amount") or payment["total_amount"] for item in items) if items \
            else payment["total_amount"] - taken
        if amount <= 0 or taken + amount > payment["total_amount"]:
            raise Refused(422, "REFUND_AMOUNT_EXCEEDS_PAID_AMOUNT",
                          "The calculated refund amount is larger than the paid amount")
        refund = {"refund_id": f"ref_{uuid.uuid4().hex[:20]}", "payment_id": payment["payment_id"],
                  "business_id": "bus_fake", "brand_id": "bus_fake", "created_at": datetime.now(timezone.utc)
                  .isoformat(), "customer": payment["customer"], "is_partial": bool(items),
                  "metadata": body.get("metadata") or {}, "status": self.refund_status, "amount": amount,
                  "currency": payment["currency"], "reason": body.get("reason")}
        payment["refunds"].append({k: refund[k] for k in ("refund_id", "payment_id", "business_id", "created_at",
                                                          "is_partial", "status", "amount", "currency")})
        payment["refund_status"] = "partial" if taken + amount < payment["total_amount"] else "full"
        return refund

    def _list(self, query: dict[str, list[str]]) -> dict:
        unknown = [name for name in query if name not in LIST_QUERY]
        if unknown:
            self._violation(f"undocumented query parameters {unknown}")
        try:
            gte = datetime.fromisoformat(query["created_at_gte"][0]) if "created_at_gte" in query else None
            lte = datetime.fromisoformat(query["created_at_lte"][0]) if "created_at_lte" in query else None
            number = int(query.get("page_number", ["0"])[0])
            size = int(query.get("page_size", ["10"])[0])
        except ValueError as exc:
            self._violation(f"query parameter off format: {exc}")
        if number < 0 or not 1 <= size <= 100 or any(t is not None and t.tzinfo is None for t in (gte, lte)):
            self._violation("page_number >= 0, page_size 1..100, created_at_* ISO 8601 with a zone")
        rows = sorted(self.payments.values(), key=lambda p: (p["created_at"], p["payment_id"]))
        rows = [p for p in rows if (gte is None or datetime.fromisoformat(p["created_at"]) >= gte)
                and (lte is None or datetime.fromisoformat(p["created_at"]) <= lte)]
        listed = [{k: v for k, v in p.items() if k not in ("refunds", "disputes", "billing", "product_cart",
                                                              "settlement_amount", "settlement_currency")}
                  for p in rows[number * size:(number + 1) * size]]
        return {"items": listed}


# --- webhook bodies as Dodo sends them (its SDK's *WebhookEvent types, its CLI's sample events) ----------

def payment_data(**overrides) -> dict:
    """The `data` of a payment.* event: a Payment, paid through an on-demand subscription."""
    data = {"payload_type": "Payment", "payment_id": "pay_dodo_1", "business_id": "bus_1", "brand_id": "bus_1",
            "created_at": "2026-03-01T10:00:00Z", "status": "succeeded", "total_amount": 2500, "currency": "USD",
            "settlement_amount": 2500, "settlement_currency": "USD", "tax": None,
            "customer": {"customer_id": "cus_1", "email": "a@example.com", "name": "A"},
            "metadata": {"checkout_id": "chk_1", "payment_id": "pay_ours_1", "account_id": "acc_1"},
            "subscription_id": "sub_1", "card_network": "VISA", "card_last_four": "4242", "error_code": None,
            "error_message": None, "refunds": [], "disputes": [],
            "product_cart": [{"product_id": "pdt_on_demand", "quantity": 1}]}
    data.update(overrides)
    return data


def refund_data(**overrides) -> dict:
    """The `data` of a refund.* event: a Refund (its metadata is the refund's own, not the payment's)."""
    data = {"payload_type": "Refund", "refund_id": "ref_1", "payment_id": "pay_dodo_1", "business_id": "bus_1",
            "created_at": "2026-03-02T10:00:00Z", "amount": 1000, "currency": "USD", "is_partial": True,
            "status": "succeeded", "reason": None, "metadata": {"idempotency_key": "r1"},
            "customer": {"customer_id": "cus_1", "email": "a@example.com", "name": "A"}}
    data.update(overrides)
    return data


def dispute_data(**overrides) -> dict:
    """The `data` of a dispute.* event: a Dispute, whose amount Dodo types as a string."""
    data = {"payload_type": "Dispute", "dispute_id": "dsp_1", "payment_id": "pay_dodo_1", "business_id": "bus_1",
            "created_at": "2026-03-03T10:00:00Z", "amount": "2500", "currency": "USD", "dispute_stage": "dispute",
            "dispute_status": "dispute_opened", "remarks": None}
    data.update(overrides)
    return data


def event_body(event_type: str, data: dict) -> bytes:
    """The raw body of one delivery: Dodo's envelope around `data`, minified."""
    return json.dumps({"business_id": "bus_1", "type": event_type, "timestamp": "2026-03-01T10:00:05.123456Z",
                       "data": data}, separators=(",", ":")).encode()


def _handler_for(fake: FakeDodo) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet: the tests read `fake.requests`
            pass

        def _serve(self) -> None:
            split = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Recorded(self.command, split.path, parse_qs(split.query),
                               {k.lower(): v for k, v in self.headers.items()})
            fake.requests.append(request)
            if fake.delay_s:
                time.sleep(fake.delay_s)
            try:
                if raw:
                    try:
                        request.json = json.loads(raw)
                    except ValueError:
                        fake._violation("body is not JSON")
                status, answer = fake.answer(request)
            except Refused as refused:
                status, answer = refused.status, {"code": refused.code, "message": refused.message}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

    return Handler
