"""The Billing page's payment cards: the banner after a checkout, the past-due banner, Add credit, Buy pool
pack, the saved payment method, auto top-up, and the payments table.

Stateless: each takes the display vars and event handlers of the page's state (pages/billing_payments.py).
"""

from __future__ import annotations

import reflex as rx

from .data_table import WIDE_ONLY, phone_only
from .panel import field_message
from .payment_text import CREDIT_PRESETS

WIDE_ONLY_BLOCK = ["none", "none", "block"]
PAYMENT_COLUMNS = (("Date", "left", True), ("Description", "left", True), ("Amount", "right", True),
                   ("Status", "left", False), ("Receipt", "left", False))


def _card(title: str, hint: str | rx.Component, *children: rx.Component, card_id: str) -> rx.Component:
    side = hint if isinstance(hint, rx.Component) else rx.text(hint, size="2", color_scheme="gray")
    return rx.card(rx.vstack(rx.heading(title, size="3"), side, *children, spacing="3", width="100%"),
                   width="100%", id=card_id)


def _error(message: rx.Var, error_id: str) -> rx.Component:
    return rx.cond(message != "", rx.callout(message, icon="triangle_alert", color_scheme="red", role="alert",
                                             size="1", width="100%", id=error_id))


def money_input(value: rx.Var, on_change, *, field_id: str, invalid: rx.Var | bool = False,
                **props) -> rx.Component:
    """A dollars field: "$" before, "USD" after, a decimal keyboard on phones."""
    return rx.input(rx.input.slot("$"), rx.input.slot("USD", side="right"), value=value, on_change=on_change,
                    id=field_id, name=field_id, input_mode="decimal", autocomplete="off",
                    color_scheme=rx.cond(invalid, "red", "gray"), width="100%", **props)


def _labelled(label: str, control: rx.Component, field_id: str) -> rx.Component:
    return rx.vstack(rx.el.label(rx.text(label, size="2", weight="medium"), html_for=field_id), control,
                     spacing="1", width="100%", min_width="0")


# -- banners ---------------------------------------------------------------------------------------------
def checkout_banner(banner: rx.Var, on_dismiss) -> rx.Component:
    """After a checkout: pending, received, declined, expired or cancelled (`banner` from payment_text)."""
    icon = rx.match(banner["kind"], ("received", rx.icon("circle-check", size=16)),
                    ("declined", rx.icon("circle-x", size=16)), ("pending", rx.spinner(size="2")),
                    rx.icon("info", size=16))
    # One row of its own (icon, words, dismiss), the callout a block rather than its grid: the dismiss at the end.
    body = rx.flex(
        rx.box(icon, flex_shrink="0", padding_top="2px"),
        rx.vstack(rx.text(banner["title"], weight="bold", size="2", id="checkout-title"),
                  rx.text(banner["text"], size="2"), spacing="1", flex="1", min_width="0"),
        rx.icon_button(rx.icon("x", size=14), variant="ghost", color_scheme="gray", size="1", on_click=on_dismiss,
                       aria_label="Dismiss", id="checkout-dismiss"),
        spacing="3", align="start", width="100%")
    return rx.cond(banner.length() > 0, rx.callout.root(
        body, color_scheme=banner["color"].to(str), width="100%", id="checkout-banner", display="block",
        role=rx.cond(banner["kind"] == "declined", "alert", "status"), custom_attrs={"data-kind": banner["kind"]}))


def past_due_banner(show: rx.Var, on_pay, busy: rx.Var, error: rx.Var) -> rx.Component:
    callout = rx.callout.root(
        rx.callout.icon(rx.icon("octagon-alert")),
        rx.flex(rx.text("An invoice is past due: collecting it from the saved method failed, or no method is saved. "
                        "Pay it now to keep your plan; after 7 days unpaid the account moves to Hobby.",
                        size="2", flex="1", min_width="14rem"),
                rx.button("Pay now", size="2", color_scheme="red", on_click=on_pay, loading=busy,
                          id="past-due-pay"),
                spacing="3", align="center", wrap="wrap", width="100%"),
        color_scheme="red", width="100%", id="past-due", role="alert")
    return rx.cond(show, rx.vstack(callout, _error(error, "invoice-error"), spacing="2", width="100%"),
                   _error(error, "invoice-error"))


# -- add credit, pool packs --------------------------------------------------------------------------
def add_credit_card(*, amount: rx.Var, problem: rx.Var, error: rx.Var, button: rx.Var, busy: rx.Var,
                    on_amount, on_preset, on_submit) -> rx.Component:
    presets = rx.flex(*[
        rx.button(f"${d}", type="button", size="2", on_click=on_preset(d), id=f"credit-preset-{d}",
                  variant=rx.cond(amount == f"{d}.00", "solid", "soft"), flex="1", min_width="3.5rem")
        for d in CREDIT_PRESETS], spacing="2", width="100%")
    return _card(
        "Add credit", "Credit pays for compute beyond allowance and pools, and for platform-key tokens.",
        rx.form(rx.vstack(
            presets,
            _labelled("Amount", money_input(amount, on_amount, field_id="credit-amount", invalid=problem != "",
                                            placeholder="25.00"), "credit-amount"),
            rx.text("From $5 to $1,000, in dollars and cents.", size="1", color_scheme="gray"),
            field_message(problem, "credit-amount-problem"),
            _error(error, "credit-error"),
            rx.button(rx.icon("credit-card", size=16), button, type="submit", loading=busy,
                      disabled=problem != "", id="add-credit", width="100%"),
            spacing="2", width="100%"), on_submit=on_submit, reset_on_submit=False, width="100%"),
        card_id="add-credit-card")


def pool_pack_card(*, packs: rx.Var, choices: list[str], pack: rx.Var, error: rx.Var, busy: rx.Var, on_packs,
                   on_buy) -> rx.Component:
    quantity = rx.select.root(rx.select.trigger(id="pack-quantity", width="100%"),
                              rx.select.content(*[rx.select.item(c, value=c) for c in choices]),
                              value=packs, on_change=on_packs)
    return _card(
        "Buy pool pack", rx.text("One pack: ", pack["each"], ". Pools are used after the allowance, before credit, "
                                 "and roll over between periods.", size="2", color_scheme="gray", id="pack-each"),
        rx.hstack(_labelled("Packs", quantity, "pack-quantity"),
                  rx.vstack(rx.text("Compute", size="2", weight="medium"),
                            rx.text(pack["size"], size="3", weight="bold", id="pack-size"), spacing="1",
                            width="100%"),
                  rx.vstack(rx.text("Price", size="2", weight="medium"),
                            rx.text(pack["total"], size="3", weight="bold", id="pack-total"), spacing="1",
                            width="100%"),
                  spacing="3", width="100%", align="end"),
        _error(error, "pool-error"),
        rx.button(rx.icon("package-plus", size=16), pack["button"], loading=busy, on_click=on_buy, id="buy-pool",
                  width="100%"),
        card_id="pool-pack-card")


# -- the saved method, auto top-up -------------------------------------------------------------------
def payment_method_card(method: rx.Var, saved: rx.Var) -> rx.Component:
    shown = rx.vstack(
        rx.hstack(rx.icon("credit-card", size=20), rx.text(method, size="4", weight="bold", id="payment-method"),
                  align="center", spacing="2"),
        rx.text(saved, size="1", color_scheme="gray"),
        rx.text("Used for plan upgrades, invoices and auto top-up. Your next checkout payment replaces it.",
                size="2", color_scheme="gray"), spacing="2", width="100%")
    missing = rx.text("No card saved — your first payment saves one.", size="2", id="no-payment-method")
    return _card("Payment method", rx.fragment(), rx.cond(method != "", shown, missing),
                 card_id="payment-method-card")


def auto_top_up_card(*, enabled: rx.Var, threshold: rx.Var, amount: rx.Var, limit: rx.Var, status: rx.Var,
                     problem: rx.Var, error: rx.Var, busy: rx.Var, on_enabled, on_threshold, on_amount, on_limit,
                     on_submit) -> rx.Component:
    fields = rx.grid(
        _labelled("Threshold", money_input(threshold, on_threshold, field_id="auto-threshold"), "auto-threshold"),
        _labelled("Top-up amount", money_input(amount, on_amount, field_id="auto-amount"), "auto-amount"),
        _labelled("Monthly limit", money_input(limit, on_limit, field_id="auto-limit"), "auto-limit"),
        columns=rx.breakpoints(initial="1", sm="3"), spacing="3", width="100%")
    warning = rx.cond(status["warning"] != "", rx.callout(
        status["warning"], icon="info", size="1", width="100%", id="auto-warning",
        color_scheme=rx.cond(status["in_flight"] != "", "blue", "amber"),
        custom_attrs={"data-failures": status["failures"]}))
    return _card(
        "Auto top-up", rx.text(status["state"], size="2", color_scheme="gray", id="auto-state"),
        rx.form(rx.vstack(
            rx.el.label(rx.hstack(rx.switch(checked=enabled, on_change=on_enabled, id="auto-enabled",
                                            name="auto-enabled"),
                                  rx.text("Top up automatically from the saved card", size="2"), spacing="2",
                                  align="center")),
            rx.text("When credit falls below the threshold, the top-up amount is charged to the saved card, up to "
                    "the monthly limit in a calendar month.", size="1", color_scheme="gray"),
            fields, warning,
            field_message(problem, "auto-problem"),
            _error(error, "auto-error"),
            rx.button("Save auto top-up", type="submit", loading=busy, disabled=problem != "", id="save-auto"),
            spacing="3", width="100%"), on_submit=on_submit, reset_on_submit=False, width="100%"),
        card_id="auto-top-up-card")


# -- payments ----------------------------------------------------------------------------------------
def _status(p: rx.Var) -> rx.Component:
    return rx.badge(p["status_text"], color_scheme=p["status_color"].to(str), variant="soft", radius="full",
                    custom_attrs={"data-status": p["status"]})


def _receipt(p: rx.Var) -> rx.Component:
    return rx.cond(p["receipt_url"] != "", rx.link(
        rx.icon("receipt", size=14), "Receipt", href=p["receipt_url"], is_external=True, size="2",
        title=p["receipt_number"], class_name="receipt-link", display="inline-flex", align_items="center",
        gap="0.25rem"))


def payment_row(p: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(p["date"], size="2", white_space="nowrap", title=p["exact"], display=WIDE_ONLY_BLOCK),
                      phone_only(rx.text(p["day"], size="2", white_space="nowrap", title=p["exact"])),
                      rx.text(p["time"], size="1", color_scheme="gray")),
        rx.table.cell(
            rx.text(p["description"], size="2"),
            rx.cond(p["failure"] != "", rx.text(p["failure"], size="1", color=rx.color("red", 11),
                                                class_name="payment-failure")),
            rx.cond(p["refunded"] != "", rx.text(p["refunded"], size="1", color_scheme="gray")),
            phone_only(rx.hstack(_status(p), _receipt(p), spacing="2", align="center", margin_top="0.25rem"))),
        rx.table.cell(rx.text(p["amount"], size="2", weight="medium", white_space="nowrap",
                              custom_attrs={"data-raw": p["amount_micros"]}), text_align="right"),
        rx.table.cell(_status(p), display=WIDE_ONLY),
        rx.table.cell(_receipt(p), display=WIDE_ONLY),
        custom_attrs={"data-payment-id": p["id"], "data-status": p["status"]})
