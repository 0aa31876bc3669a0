"""Billing pieces: plan, allowance, credit and pool cards, and the words for ledger entries.

Display only: the cards take display strings (vars) from the billing page's state and fetch nothing; the one
action here, an invoice's "Pay now", is the handler the page passes in. Buying and plan changes are in
payment_cards.py and plan_picker.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from .data_table import WIDE_ONLY, cell, phone_only
from .format import duration, usd

CATEGORY_TEXT = {"topup": ("Top-up", "grass"), "usage": ("Usage", "blue"), "expiry": ("Expiry", "amber"),
                 "charge": ("Charge", "purple"), "other": ("Other", "gray")}
ENTRY_TEXT = {
    ("allowance", "grant"): "Plan allowance for the period",
    ("allowance", "usage"): "Compute drawn from the allowance",
    ("allowance", "expired"): "Unused allowance lapsed at period close",
    ("allowance", "plan_change"): "Allowance changed by a plan upgrade",
    ("pool", "purchase"): "Compute pool added",
    ("pool", "usage"): "Compute drawn from a pool",
    ("pool", "expiry"): "Pool expired; its unused time was forfeited",
    ("credit", "grant"): "Credit granted",
    ("credit", "topup"): "Credit top-up",
    ("credit", "usage"): "Usage paid from credit",
    ("credit", "proration"): "Plan upgrade, prorated for the rest of the period",
    ("overage", "usage"): "Overage accrued",
    ("overage", "invoiced"): "Overage moved to the period's invoice",
    ("credit", "purchase"): "Credit bought",
    ("credit", "top_up"): "Credit bought",
    ("credit", "refund"): "Taken back by a refund",
    ("pool", "refund"): "Pool time taken back by a refund",
    ("credit", "dispute_lost"): "Taken back by a lost dispute",
    ("pool", "dispute_lost"): "Pool time taken back by a lost dispute",
}
BOOK_TEXT = {"allowance": "Allowance", "pool": "Pool", "credit": "Credit", "overage": "Overage"}
STATUS_COLORS = {"active": "grass", "over_limit": "red", "suspended": "gray"}


@dataclass
class PoolRow:
    id: str
    remaining: str
    remaining_ms: str
    size: str
    percent: int  # of the pool's size still left, for the bar
    expires: str
    expires_exact: str
    purchased: str


def signed_amount(amount: int, unit: str) -> str:
    """"+$20.00", "−$0.0042", "+10 h", "−12 s": the change a ledger entry made, with its unit."""
    text = duration(abs(amount)) if unit == "ms" else usd(abs(amount))
    return ("+" if amount > 0 else "−" if amount < 0 else "") + text


def balance(amount: int, unit: str) -> str:
    return duration(amount) if unit == "ms" else usd(amount)


def _card(title: str, *children: rx.Component, card_id: str) -> rx.Component:
    return rx.card(rx.vstack(rx.text(title, size="2", weight="medium", color_scheme="gray"), *children,
                             spacing="2", width="100%"), width="100%", id=card_id)


def _line(label: str, value: rx.Var, value_id: str | None = None, raw: rx.Var | None = None) -> rx.Component:
    attrs = {"data-raw": raw} if raw is not None else {}
    return rx.hstack(rx.text(label, size="2", color_scheme="gray"), rx.spacer(),
                     rx.text(value, size="2", weight="medium", id=value_id, custom_attrs=attrs),
                     width="100%", align="baseline")


def plan_card(s: rx.Var) -> rx.Component:
    """`s`: the page's summary strings (plan, price, status, period, limits)."""
    return _card(
        "Plan",
        rx.hstack(rx.heading(s["plan_title"], size="6", id="billing-plan"),
                  rx.badge(s["status_text"], color_scheme=s["status_color"].to(str), variant="soft",
                           id="billing-status"), align="center", wrap="wrap"),
        rx.text(s["price"], " per month", size="2", color_scheme="gray"),
        _line("Current period", s["period"], "billing-period"),
        _line("Projects", s["projects"]),
        _line("Concurrent runs", s["concurrent"]),
        _line("Beyond balances", s["beyond"]),
        rx.cond(s["pending"] != "", rx.text(s["pending"], size="1", color_scheme="amber")),
        card_id="plan-card")


def allowance_card(s: rx.Var, percent: rx.Var) -> rx.Component:
    return _card(
        "Compute allowance",
        rx.hstack(rx.heading(s["allowance_used"], size="6", id="allowance-used",
                             custom_attrs={"data-raw": s["used_ms"]}),
                  rx.text("of ", s["allowance_included"], size="2", color_scheme="gray", id="allowance-included",
                          custom_attrs={"data-raw": s["included_ms"]}), align="baseline", wrap="wrap"),
        rx.progress(value=percent, max=100, color_scheme=rx.cond(percent >= 100, "red", "indigo")),
        _line("Remaining", s["allowance_remaining"], "allowance-remaining", s["remaining_ms"]),
        _line("Resets", s["period_end"]),
        card_id="allowance-card")


def credit_card(s: rx.Var) -> rx.Component:
    return _card(
        "Credit",
        rx.heading(s["credit"], size="6", id="credit-balance", custom_attrs={"data-raw": s["credit_micros"]},
                   color=rx.cond(s["in_debt"] != "", rx.color("red", 11), None)),
        rx.text(rx.cond(s["in_debt"] != "", "Debt: the next top-up pays it off first.",
                        "Pays compute beyond allowance and pools, and platform-key tokens."),
                size="1", color_scheme="gray"),
        _line("Compute rate", s["rate"]),
        rx.cond(s["overage_cap"] != "",
                _line("Overage this period", s["overage"], "overage-amount", s["overage_micros"])),
        rx.cond(s["overage_cap"] != "", _line("Spend cap", s["overage_cap"])),
        card_id="credit-card")


def _pool_row(pool: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(rx.text(pool.remaining, size="2", weight="medium",
                                        custom_attrs={"data-raw": pool.remaining_ms}),
                                rx.progress(value=pool.percent, max=100, size="1", width="8rem"),
                                spacing="1")),
        rx.table.cell(rx.text(pool.size, size="2")),
        rx.table.cell(rx.text(pool.expires, size="2", title=pool.expires_exact)),
        rx.table.cell(rx.text(pool.purchased, size="2", color_scheme="gray"), display=["none", "none", "table-cell"]),
        custom_attrs={"data-pool-id": pool.id})


def pools_card(pools: rx.Var, pack: rx.Var) -> rx.Component:
    table = rx.table.root(
        rx.table.header(rx.table.row(
            rx.table.column_header_cell("Remaining"), rx.table.column_header_cell("Size"),
            rx.table.column_header_cell("Expires"),
            rx.table.column_header_cell("Added", display=["none", "none", "table-cell"]))),
        rx.table.body(rx.foreach(pools, _pool_row)), size="1", width="100%", id="pools-table")
    return _card(
        "Compute pools",
        rx.text("Pre-paid compute, drawn after the allowance, earliest expiry first. ", pack, size="1",
                color_scheme="gray"),
        rx.cond(pools.length() > 0, table, rx.text("No pools with time left.", size="2", color_scheme="gray",
                                                   id="pools-empty")),
        card_id="pools-card")


def transaction_row(t: rx.Var) -> rx.Component:
    when = rx.table.cell(
        rx.text(t["when"], size="2", white_space="nowrap", title=t["exact"], display=["none", "none", "block"]),
        phone_only(rx.text(t["day"], size="2", white_space="nowrap", title=t["exact"]),
                   rx.text(t["time"], size="1", color_scheme="gray")))
    return rx.table.row(
        when,
        rx.table.cell(rx.badge(t["type"], color_scheme=t["color"].to(str), variant="soft"), display=WIDE_ONLY),
        rx.table.cell(rx.text(t["text"], size="2"),
                      rx.text(t["ref"], size="1", color_scheme="gray", font_family="var(--code-font-family)",
                              max_width=["9rem", "16rem", "22rem"], overflow="hidden", text_overflow="ellipsis",
                              white_space="nowrap", title=t["ref"]),
                      phone_only(rx.text(t["book"], " · balance ", t["balance"], size="1", color_scheme="gray"))),
        cell(t["book"], wide_only=True),
        rx.table.cell(rx.text(t["amount"], size="2", weight="medium", white_space="nowrap",
                              color=rx.cond(t["positive"] != "", rx.color("grass", 11), None)), text_align="right"),
        cell(t["balance"], align="right", wide_only=True),
        custom_attrs={"data-entry-id": t["id"]})


def _invoice_links(i: rx.Var, on_pay, busy: rx.Var) -> rx.Component:
    # Pages the API serves (not the app's own): a new tab, never the client-side router.
    view = rx.link("View", href=i["page_url"], is_external=True, size="2", class_name="invoice-view")
    pdf = rx.link("PDF", href=i["pdf_url"], is_external=True, size="2", class_name="invoice-pdf")
    pay = rx.button("Pay now", size="1", on_click=on_pay(i["id"]), loading=busy, class_name="invoice-pay",
                    color_scheme=rx.cond(i["status"] == "past_due", "red", "indigo"))
    return rx.flex(view, pdf, rx.cond(i["can_pay"] != "", pay), spacing="3", align="center", justify="end",
                   wrap="wrap")


def invoice_row(i: rx.Var, on_pay, busy: rx.Var) -> rx.Component:
    return rx.table.row(
        cell(i["number"], mono=True, wide_only=True),
        rx.table.cell(rx.text(i["period"], size="2"),
                      phone_only(rx.text(i["number"], size="1", color_scheme="gray",
                                         font_family="var(--code-font-family)"))),
        cell(i["plan"], wide_only=True), cell(i["fee"], align="right", wide_only=True),
        cell(i["overage"], align="right", wide_only=True), cell(i["proration"], align="right", wide_only=True),
        rx.table.cell(rx.text(i["total"], size="2", weight="medium", custom_attrs={"data-raw": i["total_micros"]}),
                      text_align="right"),
        rx.table.cell(rx.badge(i["status_text"], variant="soft", color_scheme=i["status_color"].to(str),
                               custom_attrs={"data-status": i["status"]})),
        rx.table.cell(_invoice_links(i, on_pay, busy), text_align="right"),
        custom_attrs={"data-invoice-id": i["id"], "data-status": i["status"]})
