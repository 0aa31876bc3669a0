"""The plan card: plan and period, allowance with a progress bar, pools, credit, what to do when over limit,
and the run-out forecast. `plan_texts` turns the service's numbers into display text (pure); `plan_card`
lays out vars holding that text.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import reflex as rx

from billing_core import forecast as fc
from billing_core.services.dashboard import PlanPanel

from .. import routes
from . import format as fmt

STATUS_LABELS = {"active": "Active", "over_limit": "Over limit", "suspended": "Suspended"}
STATUS_COLORS = {"active": "green", "over_limit": "red", "suspended": "gray"}


def _when(at: datetime, now: datetime) -> str:
    """A date, with how far off it is when that is under three days: "Nov 24, 2026 (in 18 hours)"."""
    soon = at - now < timedelta(days=3)
    return f"{fmt.short_date(at)} ({fmt.relative_time(at, now)})" if soon else fmt.short_date(at)


def forecast_text(panel: PlanPanel, now: datetime) -> str:
    f = panel.forecast
    pace = f"{fmt.duration(f.pace_ms_per_day)} a day"
    resets = _when(f.period_end, now)
    if f.status == fc.NO_ALLOWANCE:
        return "Your plan includes no compute: pools and credit pay for all of it."
    if f.status == fc.EXHAUSTED:
        if f.pools_run_out_at is not None:
            return (f"This period's allowance is used up. At the last 7 days' pace ({pace}), pools run out on "
                    f"{_when(f.pools_run_out_at, now)}; then credit pays until the allowance resets on {resets}.")
        if panel.pools:
            return (f"This period's allowance is used up; at the last 7 days' pace, pools cover compute until it "
                    f"resets on {resets}.")
        return f"This period's allowance is used up; credit pays for compute until it resets on {resets}."
    if f.status == fc.IDLE:
        return "No compute in the last 7 days, so no run-out date to forecast."
    if f.status == fc.RUNS_OUT:
        return f"At the last 7 days' pace ({pace}), allowance runs out on {_when(f.runs_out_at, now)}."
    return f"At the last 7 days' pace ({pace}), allowance lasts until the period resets on {resets}."


def over_limit_text(panel: PlanPanel) -> str:
    """Why the account is blocked and what to do next; empty when it is active."""
    if panel.status == "suspended":
        return ("An operator suspended this account: new work is refused. Contact support to have it resumed.")
    if panel.status != "over_limit":
        return ""
    if panel.has_overage:
        return ("You reached your spend cap: new runs are refused until the period resets on "
                f"{fmt.short_date(panel.period_end)}. Add credit or a pool on the Billing page to keep working now.")
    debt = (f" Your balance is {fmt.usd(panel.credit_balance_micros)}; a top-up pays that off first."
            if panel.credit_balance_micros < 0 else "")
    return ("Nothing is left to cover compute: allowance and pools are used up and credit is spent, so new runs "
            f"are refused.{debt} Add credit or buy a pool on the Billing page, or upgrade your plan.")


def plan_texts(panel: PlanPanel, now: datetime) -> dict[str, str]:
    """Every line of the card, formatted: units on compute, dollars on money, dates in words."""
    cap = panel.spend_cap_micros
    return {
        "plan": panel.plan.capitalize(),
        "pending": f"Changes to {panel.pending_plan.capitalize()} on {fmt.short_date(panel.period_end)}"
        if panel.pending_plan else "",
        "status": STATUS_LABELS.get(panel.status, panel.status),
        "status_color": STATUS_COLORS.get(panel.status, "gray"),
        "period": f"{fmt.short_date(panel.period_start)} – {fmt.short_date(panel.period_end)}",
        "resets": f"resets {fmt.relative_time(panel.period_end, now)}" if panel.period_end > now else "resets now",
        "used": fmt.duration(panel.used_ms),
        "included": fmt.duration(panel.included_ms),
        "remaining": f"{fmt.duration(panel.remaining_ms)} left",
        "credit": fmt.usd_cents(panel.credit_balance_micros),
        "credit_exact": fmt.usd(panel.credit_balance_micros),
        "credit_note": "debt: paid off first by the next top-up" if panel.credit_balance_micros < 0 else
        "pays for tokens and for compute beyond allowance and pools",
        "overage": f"{fmt.usd(panel.overage_micros)} of {fmt.usd(cap)} cap" if panel.has_overage and cap else
        (fmt.usd(panel.overage_micros) if panel.has_overage else ""),
        "forecast": forecast_text(panel, now),
        "alert": over_limit_text(panel),
    }


def pool_rows(panel: PlanPanel) -> list[dict[str, str]]:
    return [{"id": p.id, "left": f"{fmt.duration(p.remaining_ms)} left of {fmt.duration(p.size_ms)}",
             "expires": f"expires {fmt.short_date(p.expires_at)}"} for p in panel.pools]


def _stat(label: str, value: rx.Var, note: rx.Var | str, id: str, **value_props) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray", weight="medium"),
        rx.text(value, size="5", weight="bold", id=id, **value_props),
        rx.text(note, size="1", color_scheme="gray"),
        spacing="1", min_width="10rem", flex="1")


def plan_card(texts: rx.Var, pools: rx.Var, percent: rx.Var, loaded: rx.Var) -> rx.Component:
    """The card over `plan_texts` and `pool_rows` output; a skeleton until the first load."""
    t = texts
    header = rx.hstack(
        rx.heading("Plan", size="4"),
        rx.badge(t["plan"], size="2", variant="soft", id="plan-name"),
        rx.badge(t["status"], color_scheme=t["status_color"], size="2", id="plan-status"),
        rx.spacer(),
        rx.text(t["period"], " · ", t["resets"], size="2", color_scheme="gray", id="plan-period"),
        width="100%", align="center", wrap="wrap", spacing="2")
    alert = rx.cond(t["alert"] != "", rx.callout(
        rx.vstack(rx.text(t["alert"]), rx.link("Go to Billing", href=routes.BILLING, weight="medium"),
                  spacing="1"),
        icon="octagon_alert", color_scheme="red", role="alert", width="100%", id="over-limit"))
    allowance = rx.vstack(
        rx.hstack(rx.text("Allowance", size="2", weight="medium"), rx.spacer(),
                  rx.text(rx.text.strong(t["used"], id="allowance-used"), " of ",
                          rx.text.span(t["included"], id="allowance-included"), " used", size="2"),
                  width="100%"),
        rx.progress(value=percent, max=100, size="2", width="100%", id="allowance-bar",
                    color_scheme=rx.cond(percent >= 100, "red", rx.cond(percent >= 80, "amber", "indigo"))),
        rx.text(t["remaining"], size="1", color_scheme="gray", id="allowance-remaining"),
        spacing="2", width="100%")
    pool_list = rx.cond(
        pools.length() > 0,
        rx.vstack(rx.foreach(pools, lambda p: rx.hstack(
            rx.icon("package", size=14), rx.text(p["left"], size="2", class_name="pool-left"), rx.spacer(),
            rx.text(p["expires"], size="1", color_scheme="gray"), width="100%", align="center")),
            spacing="1", width="100%", id="pools"),
        rx.text("No pools. Pools are pre-paid compute that rolls over between periods.", size="1",
                color_scheme="gray"))
    money = rx.hstack(
        _stat("Credit balance", t["credit"], t["credit_note"], "credit-balance", title=t["credit_exact"],
              color=rx.cond(t["credit"].contains("-"), rx.color("red", 11), "inherit")),
        rx.cond(t["overage"] != "", _stat("Overage this period", t["overage"], "billed at period close",
                                          "overage")),
        spacing="5", width="100%", wrap="wrap")
    forecast = rx.hstack(rx.icon("trending-up", size=16, flex_shrink="0"),
                         rx.text(t["forecast"], size="2", id="forecast"), spacing="2", align="start")
    body = rx.vstack(
        header, alert, allowance,
        rx.vstack(rx.text("Pools", size="2", weight="medium"), pool_list, spacing="1", width="100%"),
        money, forecast,
        rx.cond(t["pending"] != "", rx.text(t["pending"], size="1", color_scheme="gray")),
        spacing="4", width="100%")
    return rx.card(rx.cond(loaded, body, rx.skeleton(height="260px", width="100%")), width="100%",
                   id="plan-card")
