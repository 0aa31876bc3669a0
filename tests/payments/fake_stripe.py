"""A fake Stripe API on 127.0.0.1 (a real HTTP server in a thread) for the endpoints the adapter uses:
POST /v1/checkout/sessions, POST /v1/payment_intents, POST /v1/refunds, GET /v1/payment_intents.

It records every request and holds each to Stripe's documented format: `Authorization: Bearer sk_test_...`, a
`Stripe-Version`, form-encoded POST bodies in bracket notation, an `Idempotency-Key` on every POST, only known
parameters with the right types, required ones present. A violation is answered as Stripe answers a bad request
(400 `{"error": {...}}`) and kept in `violations`, so a test fails loudly; a refusal Stripe gives a well-formed
request (no such PaymentIntent, too large a refund) is answered alike but is no violation. Switches: decline the
next charge (402 card_error), answer 500, give the next charge another status. A key sent again with the same
parameters replays the first answer; with others it is a 400 idempotency_error, as at Stripe. Objects have the
shapes of Stripe's API reference (the fields the adapter could read, and the common ones around them).
"""

from __future__ import annotations

import json
import operator
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

API_KEY = "sk_test_51FakeTollgateKey0000000000"
API_VERSION_RE = re.compile(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?")
MIN_CHARGE_CENTS = 50  # Stripe's minimum charge in usd
COMPARE = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


@dataclass
class Recorded:
    """One request as the fake received it: header names lower-cased, parameters as flat bracket keys."""

    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, str]
    status: int = 0


class Answer(Exception):
    """An error answer in Stripe's shape; `violation` when the request broke the documented format."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, violation: bool = True, extra: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.violation = status, violation
        self.body = {"error": {"type": type_, "message": message, "code": code, "param": param,
                               "doc_url": f"https://docs.stripe.com/error-codes/{code}" if code else None,
                               **(extra or {})}}


class Replay(Exception):
    """The stored answer to an Idempotency-Key seen before with the same parameters."""

    def __init__(self, status: int, payload: bytes) -> None:
        super().__init__(status)
        self.status, self.payload = status, payload


def new_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))


# ---- parameter rules: a flat key pattern and a check of its value (an error message, or None when fine) ----

Check = Callable[[str], "str | None"]


def _rule(pattern: str, message: str) -> Check:
    return lambda value: None if re.fullmatch(pattern, value, re.DOTALL) else message.format(value)


def _text(limit: int) -> Check:
    return _rule(f".{{1,{limit}}}", f"must be 1 to {limit} characters")


def _enum(*values: str) -> Check:
    return _rule("|".join(map(re.escape, values)), "Invalid {}: must be one of " + ", ".join(values))


def _prefixed(prefix: str) -> Check:
    return _rule(re.escape(prefix) + r"\w+", f"must be an id starting {prefix}")


_int, _bool = _rule(r"-?\d+", "Invalid integer: {}"), _rule(r"true|false", "Invalid boolean: {}")
_url, _email = _rule(r"https?://\S+", "Not a valid URL"), _rule(r"[^@\s]+@[^@\s]+\.[^@\s]+", "Invalid email: {}")
_currency = _rule(r"[a-z]{3}", "Invalid currency: {}")


META = r"\[[^\[\]]{1,40}\]"  # a metadata key: up to 40 characters
CHECKOUT_PARAMS = {
    "mode": _enum("payment", "setup", "subscription"), "success_url": _url, "cancel_url": _url,
    "client_reference_id": _text(200), "customer": _prefixed("cus_"), "customer_email": _email,
    "customer_creation": _enum("always", "if_required"), "expires_at": _int, rf"metadata{META}": _text(500),
    r"line_items\[\d+\]\[quantity\]": _int, r"line_items\[\d+\]\[price\]": _prefixed("price_"),
    r"line_items\[\d+\]\[price_data\]\[currency\]": _currency,
    r"line_items\[\d+\]\[price_data\]\[unit_amount\]": _int,
    r"line_items\[\d+\]\[price_data\]\[product_data\]\[name\]": _text(5000),
    r"line_items\[\d+\]\[price_data\]\[product_data\]\[description\]": _text(40000),
    r"payment_intent_data\[setup_future_usage\]": _enum("on_session", "off_session"),
    r"payment_intent_data\[description\]": _text(1000), rf"payment_intent_data\[metadata\]{META}": _text(500),
    r"expand\[\d+\]": _text(200),
}
PAYMENT_INTENT_PARAMS = {
    "amount": _int, "currency": _currency, "customer": _prefixed("cus_"), "payment_method": _prefixed("pm_"),
    "off_session": _bool, "confirm": _bool, "description": _text(1000), rf"metadata{META}": _text(500),
    r"automatic_payment_methods\[enabled\]": _bool,
    r"automatic_payment_methods\[allow_redirects\]": _enum("always", "never"), "return_url": _url,
    r"payment_method_types\[\d+\]": _text(100), "setup_future_usage": _enum("on_session", "off_session"),
    "receipt_email": _email, "statement_descriptor_suffix": _text(22), r"expand\[\d+\]": _text(200),
}
REFUND_PARAMS = {
    "payment_intent": _prefixed("pi_"), "amount": _int,
    "reason": _enum("duplicate", "fraudulent", "requested_by_customer"), rf"metadata{META}": _text(500),
    r"expand\[\d+\]": _text(200),
}
LIST_PARAMS = {
    r"created\[(gt|gte|lt|lte)\]": _int, "created": _int, "customer": _prefixed("cus_"),
    "limit": _int, "starting_after": _prefixed("pi_"), "ending_before": _prefixed("pi_"),
    r"expand\[\d+\]": _enum("data.latest_charge"),  # the one expansion this fake implements
}


def _check_params(params: dict[str, str], rules: dict[str, Check], required: tuple[str, ...]) -> None:
    for key, value in params.items():
        check = next((rule for pattern, rule in rules.items() if re.fullmatch(pattern, key)), None)
        if check is None:
            raise Answer(400, f"Received unknown parameter: {key}", code="parameter_unknown", param=key)
        if problem := check(value):
            raise Answer(400, f"{key}: {problem}", code="parameter_invalid", param=key)
    _require(params, required)


def _require(params: dict[str, str], required: tuple[str, ...]) -> None:
    for key in (key for key in required if key not in params):
        raise Answer(400, f"Missing required param: {key}.", code="parameter_missing", param=key)


def _nested(params: dict[str, str], prefix: str) -> dict[str, str]:
    """`prefix[key]=value` pairs as {key: value} (metadata)."""
    pattern = re.compile(re.escape(prefix) + r"\[([^\[\]]+)\]")
    return {m.group(1): value for key, value in params.items() if (m := pattern.fullmatch(key))}


class FakeStripe:
    """The fake's state, switches and server; use as a context manager."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.sessions, self.intents, self.charges, self.refunds = {}, {}, {}, {}  # by id
        self._session_intent_data: dict[str, dict] = {}
        self._idempotent: dict[str, tuple[tuple, int, bytes]] = {}
        self._decline_code: str | None = None
        self._next_status: str | None = None
        self._fail_remaining, self._lock = 0, threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ---- switches ----

    def decline_next_charge(self, code: str = "card_declined") -> None:
        """The next PaymentIntent confirmation fails as a card error (402): card_declined, authentication_required."""
        self._decline_code = code

    def next_charge_status(self, status: str) -> None:
        """The next PaymentIntent confirmation ends in `status` (processing, requires_action) instead."""
        self._next_status = status

    def fail_next(self, count: int = 1) -> None:
        """The next `count` well-formed requests are answered 500 before anything is done (so not replayed)."""
        self._fail_remaining = count

    # ---- server ----

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FakeStripe":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload, extra = fake.handle(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", "Content-Length": str(len(payload)),
                                    "Request-Id": new_id("req"), **extra}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:  # quiet: the fake's record is `requests`
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # ---- one request ----

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict]:
        """Check, execute and record one request; (status, JSON body, extra headers)."""
        with self._lock:
            split = urlsplit(raw_path)
            lowered = {k.lower(): v for k, v in headers.items()}
            record = Recorded(method, split.path, lowered, {})
            self.requests.append(record)
            extra = {"Stripe-Version": lowered.get("stripe-version", "")}
            try:
                record.params = self._params(method, split.query, lowered, body)
                status, answer = self._execute(method, split.path, record.params, lowered.get("idempotency-key"))
                payload = json.dumps(answer).encode()
            except Replay as replay:
                record.status = replay.status
                return replay.status, replay.payload, {**extra, "Idempotent-Replayed": "true"}
            except Answer as answer:
                if answer.violation:
                    self.violations.append(f"{method} {split.path}: {answer}")
                status, payload = answer.status, json.dumps(answer.body).encode()
            except Exception as exc:  # a fault of the fake is the test's failure, not a network error to retry
                self.violations.append(f"{method} {split.path}: the fake crashed: {exc!r}")
                status, payload = 400, json.dumps({"error": {"type": "invalid_request_error",
                                                             "message": f"fake crashed: {exc!r}"}}).encode()
            if method == "POST" and status in (200, 402):  # the request ran: its answer is kept for the key
                self._idempotent[lowered["idempotency-key"]] = ((split.path, sorted(record.params.items())),
                                                                status, payload)
            record.status = status
            return status, payload, extra

    def _params(self, method: str, query: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        auth = headers.get("authorization", "")
        if not re.fullmatch(r"Bearer sk_test_\w+", auth):
            raise Answer(401, "You did not provide an API key (Authorization: Bearer sk_test_...).")
        if auth != f"Bearer {self.api_key}":
            raise Answer(401, f"Invalid API Key provided: {auth[7:15]}****", code="api_key_invalid",
                         violation=False)
        if not API_VERSION_RE.fullmatch(headers.get("stripe-version", "")):
            raise Answer(400, "Stripe-Version header missing or malformed", code="invalid_stripe_version")
        if method == "POST":
            if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                raise Answer(400, "POST bodies are application/x-www-form-urlencoded", code="invalid_content_type")
            key = headers.get("idempotency-key", "")
            if not 0 < len(key) <= 255:
                raise Answer(400, "every POST carries an Idempotency-Key of at most 255 characters",
                             code="idempotency_key_missing")
            if query:
                raise Answer(400, "POST parameters go in the body, not the query string")
            encoded = body.decode("utf-8", errors="replace")
        else:
            if body:
                raise Answer(400, f"{method} requests carry no body")
            encoded = query
        try:
            pairs = parse_qsl(encoded, keep_blank_values=True, strict_parsing=bool(encoded))
        except ValueError:
            raise Answer(400, "the body is not form-encoded (key=value&...)") from None
        params = dict(pairs)
        if len(params) != len(pairs):
            raise Answer(400, "a parameter was sent twice", code="parameter_duplicate")
        return params

    def _execute(self, method: str, path: str, params: dict[str, str], key: str | None) -> tuple[int, dict]:
        routes = {("POST", "/v1/checkout/sessions"): self._create_session,
                  ("POST", "/v1/payment_intents"): self._create_intent,
                  ("POST", "/v1/refunds"): self._create_refund,
                  ("GET", "/v1/payment_intents"): self._list_intents}
        route = routes.get((method, path))
        if route is None:
            raise Answer(404, f"Unrecognized request URL ({method}: {path}).")
        if self._fail_remaining:
            self._fail_remaining -= 1
            raise Answer(500, "An unknown error occurred", type_="api_error", violation=False)
        if method == "POST" and key in self._idempotent:
            signature, status, payload = self._idempotent[key]
            if signature != (path, sorted(params.items())):
                raise Answer(400, f"Keys for idempotent requests can only be used with the same parameters they "
                             f"were first used with. Try using a key other than '{key}' if you meant to execute "
                             f"a different request.", type_="idempotency_error")
            raise Replay(status, payload)
        return route(params)

    # ---- endpoints ----

    def _create_session(self, p: dict[str, str]) -> tuple[int, dict]:
        _check_params(p, CHECKOUT_PARAMS, ("mode", "success_url", "line_items[0][quantity]"))
        if "line_items[0][price]" not in p:
            _require(p, tuple(f"line_items[0][price_data][{key}]"
                              for key in ("currency", "unit_amount", "product_data][name")))
        if "customer" in p and "customer_email" in p:
            raise Answer(400, "You may only specify one of these parameters: customer, customer_email.")
        now = int(time.time())
        expires_at = int(p.get("expires_at", now + 86400))
        if not now + 1800 <= expires_at <= now + 86400:
            raise Answer(400, "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout "
                         "Session creation.", code="parameter_invalid", param="expires_at")
        total = int(p.get("line_items[0][price_data][unit_amount]", 0)) * int(p["line_items[0][quantity]"])
        sid = new_id("cs_test")
        session = {
            "id": sid, "object": "checkout.session", "amount_subtotal": total, "amount_total": total,
            "cancel_url": p.get("cancel_url"), "client_reference_id": p.get("client_reference_id"),
            "created": now, "currency": p.get("line_items[0][price_data][currency]"),
            "customer": p.get("customer"), "customer_creation": p.get("customer_creation"),
            "customer_details": None, "customer_email": p.get("customer_email"), "expires_at": expires_at,
            "livemode": False, "metadata": _nested(p, "metadata"), "mode": p["mode"], "payment_intent": None,
            "payment_method_types": ["card"], "payment_status": "unpaid", "status": "open",
            "success_url": p["success_url"], "url": f"https://checkout.stripe.com/c/pay/{sid}",
        }
        self.sessions[sid] = session
        self._session_intent_data[sid] = {"metadata": _nested(p, "payment_intent_data[metadata]"),
                                          "setup_future_usage": p.get("payment_intent_data[setup_future_usage]")}
        return 200, session

    def _create_intent(self, p: dict[str, str]) -> tuple[int, dict]:
        _check_params(p, PAYMENT_INTENT_PARAMS, ("amount", "currency"))
        confirm = p.get("confirm") == "true"
        if p.get("off_session") == "true" and not confirm:
            raise Answer(400, "off_session can only be used with confirm=true", param="off_session")
        if confirm and "payment_method" not in p:
            raise Answer(400, "You cannot confirm this PaymentIntent because it's missing a payment method.")
        if confirm and "return_url" not in p and "payment_method_types[0]" not in p \
                and p.get("automatic_payment_methods[allow_redirects]") != "never":
            raise Answer(400, "A `return_url` must be specified because this Payment Intent is configured to "
                         "automatically accept the payment methods enabled in the Dashboard, some of which may "
                         "require a full page redirect to succeed. (...) set `automatic_payment_methods[enabled]` "
                         "to `true` and `automatic_payment_methods[allow_redirects]` to `never`.")
        if int(p["amount"]) < MIN_CHARGE_CENTS:
            raise Answer(400, "Amount must be at least $0.50 usd", code="amount_too_small", param="amount")
        status, decline = (self._next_status or "succeeded", self._decline_code) if confirm \
            else ("requires_payment_method", None)
        if confirm:
            self._next_status = self._decline_code = None
        intent = self.add_intent(amount=int(p["amount"]), currency=p["currency"], status=status,
                                 customer=p.get("customer"), payment_method=p.get("payment_method"),
                                 metadata=_nested(p, "metadata"), description=p.get("description"),
                                 setup_future_usage=p.get("setup_future_usage"), declined=decline)
        if decline:
            error = intent["last_payment_error"]
            raise Answer(402, error["message"], type_="card_error", code=decline, violation=False,
                         extra={"decline_code": error["decline_code"], "charge": intent["latest_charge"],
                                "payment_intent": intent, "payment_method": error["payment_method"]})
        return 200, intent

    def _create_refund(self, p: dict[str, str]) -> tuple[int, dict]:
        _check_params(p, REFUND_PARAMS, ("payment_intent",))  # or `charge`, which this fake does not implement
        intent = self.intents.get(p["payment_intent"])
        if intent is None:
            raise Answer(400, f"No such payment_intent: '{p['payment_intent']}'", code="resource_missing",
                         param="payment_intent", violation=False)
        charge = self.charges.get(intent["latest_charge"] or "")
        if intent["status"] != "succeeded" or charge is None:
            raise Answer(400, "This PaymentIntent does not have a successful charge to refund.",
                         code="charge_not_refundable", violation=False)
        left = charge["amount"] - charge["amount_refunded"]
        amount = int(p.get("amount", left))
        if not 0 < amount <= left:
            raise Answer(400, f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                         code="amount_too_large", param="amount", violation=False)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        refund = {"id": new_id("re"), "object": "refund", "amount": amount, "balance_transaction": new_id("txn"),
                  "charge": charge["id"], "created": int(time.time()), "currency": intent["currency"],
                  "metadata": _nested(p, "metadata"), "payment_intent": intent["id"], "reason": p.get("reason"),
                  "receipt_number": None, "status": "succeeded"}
        self.refunds[refund["id"]] = refund
        return 200, refund

    def _list_intents(self, p: dict[str, str]) -> tuple[int, dict]:
        _check_params(p, LIST_PARAMS, ())
        limit = int(p.get("limit", 10))
        if not 1 <= limit <= 100:
            raise Answer(400, "limit must be between 1 and 100", param="limit")
        bounds = [(test, int(p[f"created[{op}]"])) for op, test in COMPARE.items() if f"created[{op}]" in p]
        rows = [pi for pi in self.intents.values() if all(test(pi["created"], b) for test, b in bounds)]
        rows.reverse()  # newest first, as Stripe lists
        rows.sort(key=lambda pi: -pi["created"])
        if "starting_after" in p:
            ids = [pi["id"] for pi in rows]
            rows = rows[ids.index(p["starting_after"]) + 1:] if p["starting_after"] in ids else []
        expand = "data.latest_charge" in {v for k, v in p.items() if k.startswith("expand[")}
        page = [dict(pi, latest_charge=self.charges.get(pi["latest_charge"]) if expand and pi["latest_charge"]
                     else pi["latest_charge"]) for pi in rows[:limit]]
        return 200, {"object": "list", "url": "/v1/payment_intents", "has_more": len(rows) > limit, "data": page}

    # ---- objects (also used by tests to set the scene) ----

    def add_intent(self, *, amount: int, currency: str = "usd", status: str = "succeeded", customer: str | None = None,
                   payment_method: str | None = "pm_card_visa", metadata: dict | None = None,
                   description: str | None = None, setup_future_usage: str | None = None,
                   declined: str | None = None, created: int | None = None, refunded: int = 0,
                   disputed: bool = False) -> dict:
        """A PaymentIntent (with its charge once confirmed), stored and returned."""
        created = created if created is not None else int(time.time())
        status = "requires_payment_method" if declined else status
        pid = new_id("pi")
        charge = None
        if status in ("succeeded", "processing") or declined:
            paid = status == "succeeded"
            card = {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034, "funding": "credit"}
            charge = {
                "id": new_id("ch"), "object": "charge", "amount": amount, "amount_captured": amount if paid else 0,
                "amount_refunded": refunded, "captured": paid, "created": created, "currency": currency,
                "customer": customer, "description": description, "disputed": disputed, "failure_code": declined,
                "failure_message": "Your card was declined." if declined else None, "metadata": dict(metadata or {}),
                "paid": paid, "payment_intent": pid, "payment_method": payment_method,
                "payment_method_details": {"type": "card", "card": card}, "refunded": refunded == amount,
                "receipt_url": f"https://pay.stripe.com/receipts/{pid}",
                "status": "failed" if declined else "succeeded" if paid else "pending"}
            self.charges[charge["id"]] = charge
        error = None if not declined else {
            "type": "card_error", "code": declined, "charge": charge["id"] if charge else None,
            "decline_code": declined if declined == "authentication_required" else "generic_decline",
            "message": "Your card was declined." + (" This transaction requires authentication."
                                                    if declined == "authentication_required" else ""),
            "payment_method": {"id": payment_method, "object": "payment_method", "type": "card"}}
        intent = {
            "id": pid, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
            "amount_received": amount if status == "succeeded" else 0, "canceled_at": None,
            "cancellation_reason": None, "capture_method": "automatic",
            "client_secret": f"{pid}_secret_{secrets.token_hex(8)}", "confirmation_method": "automatic",
            "created": created, "currency": currency, "customer": customer, "description": description,
            "last_payment_error": error, "latest_charge": charge["id"] if charge else None, "livemode": False,
            "metadata": dict(metadata or {}), "next_action": {"type": "use_stripe_sdk"}
            if status == "requires_action" else None, "payment_method": payment_method,
            "payment_method_types": ["card"], "setup_future_usage": setup_future_usage, "status": status,
        }
        self.intents[pid] = intent
        return intent

    def complete_checkout(self, session_id: str, *, paid: bool = True) -> dict:
        """The customer pays on the hosted page: a PaymentIntent (processing when not `paid`, a delayed method),
        a Customer when none was given, and the session complete. The session is returned."""
        session = self.sessions[session_id]
        data = self._session_intent_data[session_id]
        customer = session["customer"] or new_id("cus")
        intent = self.add_intent(amount=session["amount_total"], currency=session["currency"],
                                 status="succeeded" if paid else "processing", customer=customer,
                                 payment_method=new_id("pm"), metadata=data["metadata"],
                                 setup_future_usage=data["setup_future_usage"])
        session.update(status="complete", payment_status="paid" if paid else "unpaid", payment_intent=intent["id"],
                       customer=customer, customer_details={"email": session["customer_email"]})
        return dict(session)

    def dispute(self, intent_id: str, status: str = "needs_response") -> dict:
        """A dispute of the intent's charge."""
        intent = self.intents[intent_id]
        self.charges[intent["latest_charge"]]["disputed"] = True
        return {"id": new_id("dp"), "object": "dispute", "amount": intent["amount_received"],
                "charge": intent["latest_charge"], "created": int(time.time()), "currency": intent["currency"],
                "evidence": {}, "is_charge_refundable": False, "livemode": False, "metadata": {},
                "payment_intent": intent_id, "reason": "fraudulent", "status": status}


def event(type_: str, obj: dict, *, created: int | None = None, api_version: str = "2026-10-28.endive") -> dict:
    """A Stripe Event (snapshot) of `obj`, as delivered to a webhook endpoint."""
    return {"id": new_id("evt"), "object": "event", "api_version": api_version,
            "created": created if created is not None else int(time.time()), "data": {"object": obj},
            "livemode": False, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
            "type": type_}
