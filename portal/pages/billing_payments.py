"""The Billing page's payments (state only): add credit, buy pool packs, change plan, the saved method, auto
top-up, the payments list, paying an invoice, and the banner for a customer back from a checkout.

Each action parses what was typed, calls one billing_core.payments service with `now`, and keeps its plain
result; a checkout sends the browser to the provider's page, which sends it back to /billing?checkout=chk_…
The page is refreshed by the live push (billing.py registers it), so a payment confirmed by the provider's
webhook shows without a reload. The cards are in components/payment_cards.py and plan_picker.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import datetime, timezone

import reflex as rx

from billing_core.errors import NotFound, ServiceError
from billing_core.payments import views
from billing_core.payments.auto_top_up import get_auto_top_up, put_auto_top_up
from billing_core.payments.checkout import get_checkout, start_checkout
from billing_core.payments.plan_change import PaymentRequired, change_plan
from billing_core.payments.quote import plan_choices, upgrade_quote
from billing_core.payments.rules import PACKS_MAX, PACKS_MIN, AutoTopUp, pool_purchase

from .. import routes
from ..components.format import short_date, usd
from ..components.payment_text import (auto_top_up_problem, auto_top_up_status, checkout_banner, credit_problem,
                                       dollars_text, dollars_to_micros, method_text, pack_texts, payment_rows,
                                       plan_changed_text, plan_rows, quote_texts)
from ..payments import provider_for
from ..runtime import get_billing
from ..settings import get_settings
from ..state import UNEXPECTED, account_id_of, sign_in_redirect

log = logging.getLogger("portal.pages.billing_payments")
PAYMENTS_SHOWN = 25
PACK_CHOICES = [str(n) for n in range(PACKS_MIN, PACKS_MAX + 1)]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _provider():
    return provider_for(get_billing(), get_settings())


def _go(url: str):
    """Send this tab to the provider's hosted page (a full navigation: it is not one of the app's pages)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not a checkout address: {url!r}")
    return rx.call_script(f"window.location.assign({json.dumps(url)})")


def _problem_of(action, what: str) -> str:
    """Run `action()`; a service's refusal is its message, anything else is logged and a generic sentence."""
    try:
        action()
    except ServiceError as exc:
        return exc.message
    except Exception:
        log.exception("billing payments: %s failed", what)
        return UNEXPECTED
    return ""


class PaymentsState(rx.State):
    loaded: bool = False
    error: str = ""
    busy: str = ""  # the action under way (credit | pool | plan | auto | invoice); its button shows a spinner
    credit_amount: str = "25.00"
    credit_error: str = ""
    packs: str = "1"
    pool_error: str = ""
    plan_error: str = ""
    plan_dialog: bool = False
    invoice_error: str = ""
    past_due: bool = False
    auto_enabled: bool = False
    auto_threshold: str = ""
    auto_amount: str = ""
    auto_limit: str = ""
    auto_error: str = ""
    _checkout_id: str = ""
    _cancelled: bool = False
    _checkout: dict = {}
    _checkout_payment: dict = {}
    _payments: list[dict] = []
    _method: dict = {}
    _auto: dict = {}
    _plans: list[dict] = []
    _quote: dict = {}
    _pack: dict = {}
    _pack_total_micros: int = 0
    _now: datetime | None = None

    # -- what the cards show ------------------------------------------------------------------------
    @rx.var
    def banner(self) -> dict[str, str]:
        return checkout_banner(self._checkout, self._checkout_payment, cancelled=self._cancelled)

    @rx.var
    def payments(self) -> list[dict[str, str]]:
        return payment_rows(self._payments)

    @rx.var
    def method(self) -> str:
        return method_text(self._method)

    @rx.var
    def method_saved(self) -> str:
        return f"Saved {short_date(self._method['updated_at'])}" if self._method else ""

    @rx.var
    def plans(self) -> list[dict[str, str]]:
        return plan_rows(self._plans)

    @rx.var
    def pending_plan(self) -> str:
        return next((p["name"].capitalize() for p in self._plans if p["pending"]), "")

    @rx.var
    def quote(self) -> dict[str, str]:
        return quote_texts(self._quote, method_text(self._method), self._now or _utcnow())

    @rx.var
    def credit_problem(self) -> str:
        return credit_problem(self.credit_amount)

    @rx.var
    def credit_button(self) -> str:
        return "Add credit" if credit_problem(self.credit_amount) else \
            f"Pay {usd(dollars_to_micros(self.credit_amount))}"

    @rx.var
    def pack(self) -> dict[str, str]:
        return pack_texts(self._pack, int(self.packs), self._pack_total_micros)

    @rx.var
    def auto(self) -> dict[str, str]:
        return auto_top_up_status(self._auto)

    @rx.var
    def auto_problem(self) -> str:
        return auto_top_up_problem(self.auto_threshold, self.auto_amount, self.auto_limit)

    # -- reading ------------------------------------------------------------------------------------
    def _read(self, account_id: str, *, fill_forms: bool = False) -> None:
        billing, provider, now = get_billing(), _provider(), _utcnow()
        problems = []

        def method() -> None:
            found = views.payment_method(billing, account_id)
            self._method = found if found and found["provider"] == provider.name else {}

        def auto() -> None:
            self._auto = get_auto_top_up(billing, account_id)
            if fill_forms:
                self._fill_auto(self._auto)

        def checkout() -> None:
            self._checkout = self._checkout_payment = {}
            if self._checkout_id:
                try:
                    found = get_checkout(billing, account_id, self._checkout_id)
                except NotFound:
                    self._checkout_id = ""  # someone else's, or made up: no banner
                    return
                self._checkout = found.public()
                self._checkout_payment = views.get_payment(billing, account_id, found.payment_id)

        def payments() -> None:
            self._payments = views.list_payments(billing, account_id, limit=PAYMENTS_SHOWN)

        def past_due() -> None:
            self.past_due = views.past_due(billing, account_id)

        def plans() -> None:
            self._plans = plan_choices(billing, account_id, now)

        for what, read in (("the saved method", method), ("auto top-up", auto), ("the checkout", checkout),
                           ("payments", payments), ("invoices", past_due), ("plans", plans)):
            problem = _problem_of(read, what)
            if problem and problem not in problems:
                problems.append(problem)
        pack = billing.catalog.pool_pack
        self._pack = {"size_ms": pack.size_ms, "price_micros": pack.price_micros, "valid_days": pack.valid_days}
        self._pack_total_micros = pool_purchase(billing.catalog, int(self.packs)).amount_micros
        self._now, self.error, self.loaded = now, " ".join(problems), True

    def _fill_auto(self, auto: dict) -> None:
        self.auto_enabled = auto["enabled"]
        self.auto_threshold = dollars_text(auto["threshold_micros"])
        self.auto_amount = dollars_text(auto["amount_micros"])
        self.auto_limit = dollars_text(auto["monthly_limit_micros"])

    @rx.event
    async def load(self):
        account_id = await account_id_of(self)
        if account_id is None:
            return
        params = self.router.url.query_parameters
        checkout_id = params.get("checkout") or ""
        self._checkout_id = checkout_id[:40] if checkout_id.startswith("chk_") else ""
        self._cancelled = params.get("cancelled") == "1"
        self.busy = self.credit_error = self.pool_error = self.plan_error = self.invoice_error = ""
        self.auto_error, self.plan_dialog, self.packs = "", False, "1"
        self._read(account_id, fill_forms=True)

    @rx.event
    async def refresh(self):
        """A live update: the checkout, payments, saved method, auto top-up and plans read again (what is being
        typed in the forms stays)."""
        account_id = await account_id_of(self)
        if account_id is not None:
            self._read(account_id)

    @rx.event
    def dismiss_banner(self):
        self._checkout_id, self._checkout, self._checkout_payment, self._cancelled = "", {}, {}, False

    # -- checkouts ----------------------------------------------------------------------------------
    def _checkout_url(self, account_id: str, body: dict) -> str:
        settings = get_settings()
        back = f"{settings.public_url.rstrip('/')}{routes.BILLING}?checkout={{CHECKOUT_ID}}"
        started = start_checkout(get_billing(), _provider(), account_id, body, success_url=back,
                                 cancel_url=f"{back}&cancelled=1", now=_utcnow())
        return started.url

    async def _to_checkout(self, what: str, error_var: str, body: dict):
        """Start a checkout for `body` and send the tab there; a refusal lands in `error_var`. The button stays
        busy after success: the tab is leaving, and a second click must not start a second checkout."""
        if self.busy:
            return
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        setattr(self, error_var, "")
        self.busy = what
        yield
        found: list[str] = []
        problem = _problem_of(lambda: found.append(self._checkout_url(account_id, body)), f"a {what} checkout")
        if problem:
            setattr(self, error_var, problem)
            self.busy = ""
            return
        yield _go(found[0])

    @rx.event
    def set_credit_amount(self, value: str):
        self.credit_amount, self.credit_error = value[:40], ""

    @rx.event
    def choose_preset(self, dollars: str):
        self.credit_amount, self.credit_error = f"{dollars}.00", ""

    @rx.event
    async def add_credit(self):
        problem = credit_problem(self.credit_amount)
        if problem:
            self.credit_error = problem
            return
        body = {"item": "credit", "amount_micros": dollars_to_micros(self.credit_amount)}
        async for update in self._to_checkout("credit", "credit_error", body):
            yield update

    @rx.event
    def set_packs(self, value: str):
        self.packs = value if value in PACK_CHOICES else "1"
        self._pack_total_micros = pool_purchase(get_billing().catalog, int(self.packs)).amount_micros
        self.pool_error = ""

    @rx.event
    async def buy_pool(self):
        body = {"item": "pool_pack", "quantity": int(self.packs) if self.packs in PACK_CHOICES else 1}
        async for update in self._to_checkout("pool", "pool_error", body):
            yield update

    @rx.event
    async def pay_invoice(self, invoice_id: str):
        body = {"item": "invoice", "invoice_id": str(invoice_id)[:40]}
        async for update in self._to_checkout("invoice", "invoice_error", body):
            yield update

    @rx.event
    async def pay_past_due(self):
        """The banner's "Pay now": the oldest past-due invoice."""
        account_id = await account_id_of(self)
        if account_id is None:
            return
        due = [i for i in views.list_invoices(get_billing(), account_id)
               if i["status"] == "past_due" and i["amount_due_micros"] > 0]
        if not due:
            self.past_due = False
            return
        async for update in self._to_checkout("invoice", "invoice_error",
                                              {"item": "invoice", "invoice_id": due[-1]["id"]}):
            yield update

    # -- plans --------------------------------------------------------------------------------------
    @rx.event
    async def ask_plan(self, plan: str):
        """Open the confirmation of a change to `plan`, with what it costs now (read fresh)."""
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        self.plan_error, self._now = "", _utcnow()
        found: list[dict] = []
        self.plan_error = _problem_of(lambda: found.append(upgrade_quote(
            get_billing(), account_id, plan, self._now, provider_name=_provider().name)), "a plan quote")
        if found:
            self._quote, self.plan_dialog = found[0], True

    @rx.event
    def set_plan_dialog(self, open_: bool):
        self.plan_dialog = open_

    @rx.event
    async def confirm_plan(self):
        plan = self._quote.get("plan")
        self.plan_dialog = False
        if self.busy or not plan:
            return
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        self.busy, self.plan_error = "plan", ""
        yield
        try:
            done = change_plan(get_billing(), _provider(), account_id, plan, now=_utcnow())
        except PaymentRequired as exc:
            self.busy = ""
            if exc.code == "payment_method_required":
                async for update in self._to_checkout("plan", "plan_error", exc.extra["checkout"]):
                    yield update
                return
            self.plan_error = exc.message
            return
        except ServiceError as exc:
            self.busy, self.plan_error = "", exc.message
            return
        except Exception:
            log.exception("billing payments: changing the plan failed")
            self.busy, self.plan_error = "", UNEXPECTED
            return
        self.busy = ""
        self._read(account_id)
        yield rx.toast.success(plan_changed_text(asdict(done), plan, method_text(self._method)))

    # -- auto top-up --------------------------------------------------------------------------------
    @rx.event
    def set_auto_enabled(self, on: bool):
        self.auto_enabled, self.auto_error = bool(on), ""

    @rx.event
    def set_auto_field(self, field: str, value: str):
        """One of the dollar fields (threshold | amount | limit) as typed."""
        if field in ("threshold", "amount", "limit"):
            setattr(self, f"auto_{field}", value[:40])
            self.auto_error = ""

    @rx.event
    async def save_auto_top_up(self, form_data: dict | None = None):
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        problem = self.auto_problem
        if problem:
            self.auto_error = problem
            return
        settings = AutoTopUp(enabled=self.auto_enabled, threshold_micros=dollars_to_micros(self.auto_threshold),
                             amount_micros=dollars_to_micros(self.auto_amount),
                             monthly_limit_micros=dollars_to_micros(self.auto_limit))
        saved: list[dict] = []
        self.busy = "auto"
        yield
        self.auto_error = _problem_of(lambda: saved.append(put_auto_top_up(
            get_billing(), account_id, settings, provider_name=_provider().name, now=_utcnow())), "auto top-up")
        self.busy = ""
        if saved:
            self._auto = saved[0]
            self._fill_auto(saved[0])
            yield rx.toast.success("Auto top-up is on." if saved[0]["enabled"] else "Auto top-up is off.")
