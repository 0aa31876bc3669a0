"""/billing: plan, allowance, pools and credit; buying credit and pool packs, changing plan, the saved method and
auto top-up (their state is pages/billing_payments.py); payments; the invoices; the ledger as transactions."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timezone

import reflex as rx

from billing_core.errors import ServiceError
from billing_core.payments import views as payment_views
from billing_core.payments.documents import document_number
from billing_core.services.billing_view import BOOKS, CATEGORIES, billing_overview, list_invoices, list_transactions

from .. import live, routes
from ..components.billing_cards import (BOOK_TEXT, CATEGORY_TEXT, ENTRY_TEXT, STATUS_COLORS, PoolRow,
                                        allowance_card, balance, credit_card, invoice_row, plan_card, pools_card,
                                        signed_amount, transaction_row)
from ..components.data_table import data_table, no_rows, pager
from ..components.format import duration, percent, relative_time, short_date, timestamp, usd, usd_cents
from ..components.payment_cards import (PAYMENT_COLUMNS, add_credit_card, auto_top_up_card, checkout_banner,
                                        past_due_banner, payment_method_card, payment_row, pool_pack_card)
from ..components.payment_text import INVOICE_STATUS
from ..components.plan_picker import plan_dialog, plan_picker
from ..components.shell import error_banner, page_shell
from ..runtime import get_billing
from ..state import SessionState, account_id_of, sign_in_redirect
from .billing_payments import PACK_CHOICES, PaymentsState

log = logging.getLogger("portal.pages.billing")
TX_PAGE, INVOICE_PAGE = 25, 12
ALL = "all"
TX_COLUMNS = (("When", "left", True), ("Type", "left", False), ("Description", "left", True),
              ("Book", "left", False), ("Amount", "right", True), ("Balance after", "right", False))
INVOICE_COLUMNS = (("Number", "left", False), ("Period", "left", True), ("Plan", "left", False),
                   ("Plan fee", "right", False), ("Overage", "right", False), ("Proration", "right", False),
                   ("Total", "right", True), ("Status", "left", True), ("", "right", True))
CATEGORY_CHOICES = (("topup", "Top-ups & grants"), ("usage", "Usage"), ("expiry", "Expiry"),
                    ("charge", "Invoiced & proration"))
assert {c for c, _ in CATEGORY_CHOICES} == set(CATEGORIES)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _span(start: datetime, end: datetime) -> str:
    """"Oct 24 – Nov 24, 2026", or with both years when they differ."""
    first = f"{start:%b} {start.day}" if start.year == end.year else short_date(start)
    return f"{first} – {short_date(end)}"


class BillingState(rx.State):
    loading: bool = True
    error: str = ""
    book: str = ALL
    category: str = ALL
    tx_page: int = 1
    tx_has_next: bool = False
    tx_loading: bool = False
    invoice_page: int = 1
    invoice_has_next: bool = False
    _overview: dict = {}
    _tx: list[dict] = []
    _tx_cursors: list[str] = [""]
    _tx_next: str = ""
    _invoices: list[dict] = []
    _invoice_cursors: list[str] = [""]
    _invoice_next: str = ""
    _now: datetime | None = None

    # -- what the page shows ------------------------------------------------------------------------
    @rx.var
    def summary(self) -> dict[str, str]:
        o = self._overview
        if not o:
            return {}
        a, plan = o["account"], o["plan"]
        allowance, credit, overage = a["allowance"], a["credit"]["balance_micros"], a["overage"]
        pending = o["pending_plan"]
        return {
            "plan_title": plan["name"].capitalize(), "price": usd_cents(plan["price_micros"]),
            "status_text": a["status"].replace("_", " "), "status_color": STATUS_COLORS.get(a["status"], "gray"),
            "status": a["status"],
            "period": _span(o["period_start"], o["period_end"]),
            "period_end": short_date(o["period_end"]),
            "projects": "Unlimited" if plan["max_projects"] is None else f"Up to {plan['max_projects']}",
            "concurrent": str(plan["concurrent_runs"]),
            "beyond": "Overage, billed at period close" if plan["overage"] else "Credit, then debt",
            "pending": f"Changes to {pending} at the end of this period." if pending else "",
            "allowance_used": duration(allowance["used_ms"]), "allowance_included": duration(allowance["included_ms"]),
            "allowance_remaining": duration(allowance["remaining_ms"]), "used_ms": str(allowance["used_ms"]),
            "included_ms": str(allowance["included_ms"]), "remaining_ms": str(allowance["remaining_ms"]),
            "credit": usd(credit), "credit_micros": str(credit), "in_debt": "1" if credit < 0 else "",
            "rate": f"{usd(o['compute_rate_micros_per_second'] * 3600)} per hour",
            "overage": usd(overage["amount_micros"]), "overage_micros": str(overage["amount_micros"]),
            "overage_cap": usd_cents(overage["cap_micros"]) if overage["cap_micros"] is not None else "",
            "pack": f"A pack holds {duration(o['pool_pack']['size_ms'])} for "
                    f"{usd_cents(o['pool_pack']['price_micros'])}"
                    f" and lasts {o['pool_pack']['valid_days']} days.",
        }

    @rx.var
    def allowance_percent(self) -> int:
        a = self._overview.get("account", {}).get("allowance")
        return percent(a["used_ms"], a["included_ms"]) if a else 0

    @rx.var
    def pools(self) -> list[PoolRow]:
        now = self._now or _utcnow()
        return [PoolRow(id=p["id"], remaining=duration(p["remaining_ms"]), remaining_ms=str(p["remaining_ms"]),
                        size=duration(p["size_ms"]), percent=percent(p["remaining_ms"], p["size_ms"]),
                        expires=relative_time(p["expires_at"], now), expires_exact=timestamp(p["expires_at"]),
                        purchased=short_date(p["purchased_at"])) for p in self._overview.get("pools", [])]

    @rx.var
    def transactions(self) -> list[dict[str, str]]:
        out = []
        for t in self._tx:
            label, color = CATEGORY_TEXT.get(t["category"], CATEGORY_TEXT["other"])
            at = t["created_at"]
            out.append({"id": str(t["id"]), "when": f"{at:%b} {at.day}, {at:%H:%M}", "day": f"{at:%b} {at.day}",
                        "time": f"{at:%H:%M}", "exact": timestamp(at),
                        "type": label, "color": color, "book": BOOK_TEXT.get(t["book"], t["book"]),
                        "text": ENTRY_TEXT.get((t["book"], t["kind"]), t["kind"].replace("_", " ").capitalize()),
                        "ref": t["ref_id"], "amount": signed_amount(t["amount"], t["unit"]),
                        "positive": "1" if t["amount"] > 0 else "", "balance": balance(t["balance_after"], t["unit"])})
        return out

    @rx.var
    def invoices(self) -> list[dict[str, str]]:
        out = []
        for i in self._invoices:
            label, color = INVOICE_STATUS.get(i["status"], (i["status"].replace("_", " ").capitalize(), "gray"))
            payable = i["status"] in ("open", "past_due") and (i.get("amount_due_micros") or 0) > 0
            number = document_number("invoice", i["number"]) if i.get("number") is not None else "—"
            out.append({"id": i["id"], "number": number,
                        "period": _span(i["period_start"], i["period_end"]), "plan": i["plan"].capitalize(),
                        "fee": usd(i["plan_fee_micros"]), "overage": usd(i["overage_micros"]),
                        "proration": usd(i["proration_micros"]), "total": usd(i["total_micros"]),
                        "total_micros": str(i["total_micros"]), "status": i["status"], "status_text": label,
                        "status_color": color, "can_pay": "1" if payable else "",
                        "page_url": i.get("page_url") or "", "pdf_url": i.get("pdf_url") or ""})
        return out

    # -- loading ----------------------------------------------------------------------------------------
    def _guarded(self, what: str, read) -> bool:
        """Run one read; a failure becomes the page's message (never a traceback). True when it worked."""
        try:
            read()
            return True
        except ServiceError as exc:
            self.error = exc.message
        except Exception:
            log.exception("billing page: reading %s failed", what)
            self.error = f"The {what} could not be loaded just now. Try again in a moment."
        return False

    def _read_overview(self, account_id: str) -> None:
        self._overview = asdict(billing_overview(get_billing(), account_id))
        self._now = _utcnow()

    def _read_transactions(self, account_id: str) -> None:
        page = list_transactions(get_billing(), account_id, limit=TX_PAGE, cursor=self._tx_cursors[-1] or None,
                                 book=None if self.book == ALL else self.book,
                                 category=None if self.category == ALL else self.category)
        self._tx = [asdict(t) for t in page.items]
        self._tx_next, self.tx_has_next = page.next_cursor or "", page.next_cursor is not None
        self.tx_page = len(self._tx_cursors)

    def _read_invoices(self, account_id: str) -> None:
        page = list_invoices(get_billing(), account_id, limit=INVOICE_PAGE,
                             cursor=self._invoice_cursors[-1] or None)
        # Numbers, amounts due and the invoice's page and PDF come with the payments' view of the same rows.
        payable = {d["id"]: d for d in payment_views.list_invoices(get_billing(), account_id)}
        self._invoices = [{**asdict(i), **{k: payable.get(i.id, {}).get(k) for k in
                                           ("number", "amount_due_micros", "page_url", "pdf_url")}}
                          for i in page.items]
        self._invoice_next, self.invoice_has_next = page.next_cursor or "", page.next_cursor is not None
        self.invoice_page = len(self._invoice_cursors)

    def _read_all(self, account_id: str) -> None:
        self.error = ""
        for what, read in (("balances", self._read_overview), ("transactions", self._read_transactions),
                           ("invoices", self._read_invoices)):
            self._guarded(what, lambda: read(account_id))

    @rx.event
    async def load(self):
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        self._tx_cursors, self._invoice_cursors, self.loading = [""], [""], True
        yield
        self._read_all(account_id)
        self.loading = False

    @rx.event
    async def refresh(self):
        """A live update: balances, the page of transactions and the invoices on screen, read again; then the
        payments part of the page (a checkout's banner, payments, auto top-up)."""
        account_id = await account_id_of(self)
        if account_id is not None:
            self._read_all(account_id)
            yield PaymentsState.refresh

    async def _transactions_again(self):
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        self.tx_loading, self.error = True, ""
        yield
        self._guarded("transactions", lambda: self._read_transactions(account_id))
        self.tx_loading = False

    @rx.event
    async def set_book(self, value: str):
        self.book, self._tx_cursors = (value if value in BOOKS else ALL), [""]
        async for update in self._transactions_again():
            yield update

    @rx.event
    async def set_category(self, value: str):
        self.category, self._tx_cursors = (value if value in CATEGORIES else ALL), [""]
        async for update in self._transactions_again():
            yield update

    @rx.event
    async def tx_next(self):
        if self._tx_next:
            self._tx_cursors = [*self._tx_cursors, self._tx_next]
            async for update in self._transactions_again():
                yield update

    @rx.event
    async def tx_prev(self):
        if len(self._tx_cursors) > 1:
            self._tx_cursors = self._tx_cursors[:-1]
            async for update in self._transactions_again():
                yield update

    @rx.event
    async def invoice_step(self, forward: bool):
        account_id = await account_id_of(self)
        if account_id is None:
            return
        if forward and self._invoice_next:
            self._invoice_cursors = [*self._invoice_cursors, self._invoice_next]
        elif not forward and len(self._invoice_cursors) > 1:
            self._invoice_cursors = self._invoice_cursors[:-1]
        self._guarded("invoices", lambda: self._read_invoices(account_id))


ON_LOAD = [BillingState.load, PaymentsState.load, live.LiveState.watch]
live.register_refresh(routes.BILLING, BillingState.refresh)


# -- the page ---------------------------------------------------------------------------------------------
def _select(value: rx.Var, handler, choices, everything: str, select_id: str) -> rx.Component:
    return rx.select.root(
        rx.select.trigger(id=select_id, min_width="11rem"),
        rx.select.content(rx.select.item(everything, value=ALL), *[rx.select.item(t, value=v) for v, t in choices]),
        value=value, on_change=handler)


def _overview() -> rx.Component:
    s = BillingState.summary
    over_limit = rx.callout.root(
        rx.callout.icon(rx.icon("octagon-alert")),
        rx.callout.text("Nothing covers new usage: the allowance and pools are used up and credit is at or below "
                        "zero, so new runs are refused. Usage is covered again when credit is added or the "
                        "allowance resets on ", s["period_end"], "."),
        color_scheme="red", width="100%", id="over-limit")
    return rx.cond(
        s.length() > 0,
        rx.vstack(
            rx.cond(s["status"] == "over_limit", over_limit),
            rx.grid(plan_card(s), allowance_card(s, BillingState.allowance_percent), credit_card(s),
                    columns=rx.breakpoints(initial="1", md="3"), spacing="4", width="100%"),
            pools_card(BillingState.pools, s["pack"]),
            spacing="4", width="100%"),
        rx.cond(BillingState.loading, rx.center(rx.spinner(size="3"), height="12rem", width="100%")))


def _buy() -> rx.Component:
    p = PaymentsState
    credit = add_credit_card(amount=p.credit_amount, problem=p.credit_problem, error=p.credit_error,
                             button=p.credit_button, busy=p.busy == "credit", on_amount=p.set_credit_amount,
                             on_preset=p.choose_preset, on_submit=p.add_credit)
    pool = pool_pack_card(packs=p.packs, choices=PACK_CHOICES, pack=p.pack, error=p.pool_error,
                          busy=p.busy == "pool", on_packs=p.set_packs, on_buy=p.buy_pool)
    auto = auto_top_up_card(enabled=p.auto_enabled, threshold=p.auto_threshold, amount=p.auto_amount,
                            limit=p.auto_limit, status=p.auto, problem=p.auto_problem, error=p.auto_error,
                            busy=p.busy == "auto", on_enabled=p.set_auto_enabled,
                            on_threshold=lambda v: p.set_auto_field("threshold", v),
                            on_amount=lambda v: p.set_auto_field("amount", v),
                            on_limit=lambda v: p.set_auto_field("limit", v), on_submit=p.save_auto_top_up)
    two = rx.breakpoints(initial="1", md="2")
    return rx.vstack(
        rx.grid(credit, pool, columns=two, spacing="4", width="100%"),
        rx.grid(payment_method_card(p.method, p.method_saved), auto, spacing="4", width="100%",
                grid_template_columns=["1fr", "1fr", "1fr 2fr"]),
        spacing="4", width="100%", id="buy")


def _plans() -> rx.Component:
    p = PaymentsState
    return rx.vstack(
        rx.heading("Change plan", size="4"),
        plan_picker(rows=p.plans, on_choose=p.ask_plan, busy=p.busy == "plan", pending_plan=p.pending_plan,
                    error=p.plan_error),
        plan_dialog(quote=p.quote, open_=p.plan_dialog, on_open_change=p.set_plan_dialog, on_confirm=p.confirm_plan),
        spacing="3", width="100%")


def billing() -> rx.Component:
    filters = rx.flex(
        _select(BillingState.category, BillingState.set_category, CATEGORY_CHOICES, "All types", "tx-category"),
        _select(BillingState.book, BillingState.set_book, [(b, BOOK_TEXT[b]) for b in BOOKS], "All books",
                "tx-book"),
        spacing="2", wrap="wrap")
    return page_shell(
        "Billing",
        error_banner(BillingState.error),
        error_banner(PaymentsState.error),
        checkout_banner(PaymentsState.banner, PaymentsState.dismiss_banner),
        past_due_banner(PaymentsState.past_due, PaymentsState.pay_past_due, PaymentsState.busy == "invoice",
                        PaymentsState.invoice_error),
        _overview(),
        _buy(),
        _plans(),
        rx.heading("Payments", size="4"),
        data_table(PAYMENT_COLUMNS, PaymentsState.payments, payment_row, loading=~PaymentsState.loaded,
                   empty=no_rows("No payments yet", "What you pay appears here, with its receipt.", "credit-card"),
                   table_id="payments-table"),
        rx.heading("Invoices", size="4"),
        data_table(INVOICE_COLUMNS, BillingState.invoices,
                   lambda i: invoice_row(i, PaymentsState.pay_invoice, PaymentsState.busy == "invoice"),
                   loading=BillingState.loading,
                   empty=no_rows("No invoices yet", "An invoice is issued when a period closes.", "file-text"),
                   table_id="invoice-table"),
        rx.cond(BillingState.invoice_has_next | (BillingState.invoice_page > 1),
                pager(page=BillingState.invoice_page, has_prev=BillingState.invoice_page > 1,
                      has_next=BillingState.invoice_has_next, on_prev=BillingState.invoice_step(False),
                      on_next=BillingState.invoice_step(True), pager_id="invoice-pager")),
        rx.flex(rx.heading("Transactions", size="4"), rx.spacer(), filters, align="center", wrap="wrap",
                spacing="3", width="100%"),
        rx.text("Every change to allowance, pools, credit and overage, newest first. The balance is the book's "
                "(for a pool, that pool's) right after the entry.", size="2", color_scheme="gray"),
        data_table(TX_COLUMNS, BillingState.transactions, transaction_row,
                   loading=BillingState.tx_loading | BillingState.loading,
                   empty=no_rows("No transactions of this kind", "Choose another type or book.", "receipt"),
                   table_id="tx-table"),
        pager(page=BillingState.tx_page, has_prev=BillingState.tx_page > 1, has_next=BillingState.tx_has_next,
              on_prev=BillingState.tx_prev, on_next=BillingState.tx_next, summary=f"{TX_PAGE} per page",
              pager_id="tx-pager"),
        signed_in=SessionState.signed_in, display_name=SessionState.display_name)
