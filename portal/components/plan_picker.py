"""Change plan: a card per plan (price, included compute, limits) with the current one marked, and the dialog
that says what a change costs and when it applies before anything happens.

Stateless: the rows come from payment_text.plan_rows and the dialog's words from payment_text.quote_texts,
held by the page's state.
"""

from __future__ import annotations

import reflex as rx

from .confirm import confirm_dialog


def _line(icon: str, text: rx.Var) -> rx.Component:
    return rx.hstack(rx.icon(icon, size=14, color=rx.color("gray", 10), flex_shrink="0"), rx.text(text, size="2"),
                     spacing="2", align="center")


def _action(row: rx.Var, on_choose, busy: rx.Var, pending_plan: rx.Var) -> rx.Component:
    upgrade = rx.button("Upgrade to ", row["title"], on_click=on_choose(row["name"]), loading=busy,
                        width="100%", custom_attrs={"data-plan-action": row["name"]})
    downgrade = rx.button("Downgrade to ", row["title"], on_click=on_choose(row["name"]), variant="soft",
                          color_scheme="gray", width="100%", loading=busy,
                          custom_attrs={"data-plan-action": row["name"]})
    current = rx.cond(pending_plan != "",
                      rx.button("Keep ", row["title"], on_click=on_choose(row["name"]), variant="soft", width="100%",
                                loading=busy, custom_attrs={"data-plan-action": row["name"]}),
                      rx.button("Current plan", disabled=True, variant="outline", width="100%"))
    pending = rx.button("Starts next period", disabled=True, variant="outline", color_scheme="amber", width="100%")
    return rx.match(row["change"], ("upgrade", upgrade), ("downgrade", downgrade), ("current", current),
                    ("pending", pending), rx.fragment())


def _plan(row: rx.Var, on_choose, busy: rx.Var, pending_plan: rx.Var) -> rx.Component:
    current = row["change"] == "current"
    badge = rx.match(row["change"],
                     ("current", rx.badge("Current", color_scheme="grass", variant="soft", id="plan-current")),
                     ("pending", rx.badge("Scheduled", color_scheme="amber", variant="soft")), rx.fragment())
    return rx.card(
        rx.vstack(
            rx.hstack(rx.heading(row["title"], size="4"), rx.spacer(), badge, width="100%", align="center"),
            rx.text(row["price"], size="5", weight="bold"),
            _line("timer", row["included"]),
            _line("folder", row["projects"]),
            _line("play", row["runs"]),
            _line("wallet", row["beyond"]),
            rx.spacer(),
            rx.text(row["note"], size="1", color_scheme="gray", class_name="plan-note"),
            _action(row, on_choose, busy, pending_plan),
            spacing="2", height="100%", width="100%"),
        width="100%",
        border=rx.cond(current, f"2px solid {rx.color('accent', 8)}", None),
        custom_attrs={"data-plan": row["name"], "data-change": row["change"]})


def plan_picker(*, rows: rx.Var, on_choose, busy: rx.Var, pending_plan: rx.Var, error: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.grid(rx.foreach(rows, lambda row: _plan(row, on_choose, busy, pending_plan)),
                columns=rx.breakpoints(initial="1", sm="3"), spacing="4", width="100%"),
        rx.text("Upgrades apply at once and charge the prorated difference for the rest of the period; "
                "downgrades take effect when the period ends.", size="2", color_scheme="gray"),
        rx.cond(error != "", rx.callout(error, icon="triangle_alert", color_scheme="red", role="alert",
                                        width="100%", id="plan-error")),
        spacing="3", width="100%", id="plan-picker")


def plan_dialog(*, quote: rx.Var, open_: rx.Var, on_open_change, on_confirm) -> rx.Component:
    """The confirmation: an upgrade shows the prorated amount charged now, a downgrade its effective date."""
    text = rx.vstack(
        rx.cond(quote["amount"] != "", rx.text(quote["amount"], size="7", weight="bold", id="plan-quote-amount")),
        rx.text(quote["text"], size="2", id="plan-quote-text"),
        rx.text(quote["payer"], size="2", color_scheme="gray", id="plan-quote-payer"),
        spacing="2")
    return confirm_dialog(quote["title"], text, quote["confirm"], on_confirm, open=open_,
                          on_open_change=on_open_change,
                          color_scheme="indigo", confirm_id="plan-confirm")
