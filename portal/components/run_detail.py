"""One run in a dialog: status, timing, and its drawdown in the order the billing core took it."""

from __future__ import annotations

import reflex as rx

from .format import duration, usd
from .shell import error_banner
from .status_badge import run_status_badge


def drawdown_steps(d: dict) -> list[dict[str, str]]:
    """Allowance, then pools, then credit, then overage or debt, as display rows (raw value kept beside)."""
    steps = [("allowance", "Plan allowance", duration(d["allowance_ms"]), d["allowance_ms"]),
             ("pool", "Compute pools", duration(d["pool_ms"]), d["pool_ms"]),
             ("credit", "Credit", usd(d["credit_micros"]), d["credit_micros"])]
    if d["overage_micros"]:
        steps.append(("overage", "Overage (billed at period close)", usd(d["overage_micros"]), d["overage_micros"]))
    if d["debt_micros"]:
        steps.append(("debt", "Debt (credit below zero)", usd(d["debt_micros"]), d["debt_micros"]))
    if not (d["overage_micros"] or d["debt_micros"]):
        steps.append(("overage", "Overage or debt", usd(0), 0))
    return [{"key": key, "label": label, "value": text, "raw": str(raw), "used": "1" if raw else ""}
            for key, label, text, raw in steps]


def _fact(label: str, value: rx.Var, fact_id: str) -> rx.Component:
    return rx.data_list.item(rx.data_list.label(label, min_width="6rem"),
                             rx.data_list.value(rx.text(value, id=fact_id, size="2")))


def _step(step: rx.Var, index: rx.Var) -> rx.Component:
    used = step["used"] != ""
    return rx.hstack(
        rx.badge(index + 1, variant="soft", radius="full", color_scheme=rx.cond(used, "indigo", "gray")),
        rx.text(step["label"], size="2", color=rx.cond(used, rx.color("gray", 12), rx.color("gray", 10))),
        rx.spacer(),
        rx.text(step["value"], size="2", weight="medium", id=f"drawdown-{step['key']}",
                custom_attrs={"data-raw": step["raw"]}),
        width="100%", align="center", padding_y="var(--space-1)")


def _body(d: rx.Var, drawdown: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.hstack(run_status_badge(d["status"]), rx.code(d["id"], size="2", id="detail-id"), align="center",
                  wrap="wrap"),
        rx.cond(d["error"] != "", rx.callout(d["error"], icon="circle-x", color_scheme="red", width="100%")),
        rx.data_list.root(
            _fact("Agent", d["agent"], "detail-agent"), _fact("Project", d["project"], "detail-project"),
            _fact("Trigger", d["trigger"], "detail-trigger"), _fact("Created", d["created"], "detail-created"),
            _fact("Started", d["started"], "detail-started"), _fact("Finished", d["finished"], "detail-finished"),
            _fact("Compute", d["duration"], "detail-duration"), size="2", orientation="horizontal"),
        rx.separator(size="4"),
        rx.heading("Drawdown", size="3"),
        rx.text("What paid for this run, in the order it was drawn.", size="1", color_scheme="gray"),
        rx.vstack(rx.foreach(drawdown, _step), spacing="0", width="100%", id="drawdown"),
        rx.separator(size="4"),
        rx.hstack(rx.text("Cost", weight="medium"), rx.spacer(),
                  rx.text(d["cost"], weight="bold", id="detail-cost", custom_attrs={"data-raw": d["cost_raw"]}),
                  width="100%"),
        spacing="3", width="100%")


def run_detail_dialog(detail: rx.Var, drawdown: rx.Var, *, open: rx.Var, loading: rx.Var, error: rx.Var,
                      on_open_change) -> rx.Component:
    """`detail`: display strings of one run; `drawdown`: rows from `drawdown_steps`."""
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Run"),
            rx.dialog.description("Status, timing and what paid for it.", size="2", color_scheme="gray",
                                  margin_bottom="var(--space-3)"),
            error_banner(error),
            rx.cond(loading, rx.center(rx.spinner(size="3"), padding="var(--space-6)"),
                    rx.cond(error == "", _body(detail, drawdown))),
            rx.flex(rx.dialog.close(rx.button("Close", variant="soft", color_scheme="gray", id="detail-close")),
                    justify="end", margin_top="var(--space-4)"),
            max_width="30rem", id="run-detail"),
        open=open, on_open_change=on_open_change)
