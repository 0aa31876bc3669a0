"""/ : the dashboard. Plan, usage chart, projects, activity, keys and the CLI quick-start, kept live.

The state holds one service answer (`_data`, backend-only) and derives every display value from it in
computed vars, so a live refresh is one service call and the client receives only what changed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import plotly.graph_objects as go
import reflex as rx

from billing_core.errors import ServiceError
from billing_core.services import account_keys
from billing_core.services.dashboard import Dashboard, load_dashboard

from .. import live, routes
from ..components import format as fmt
from ..components.activity_feed import activity_feed, activity_rows
from ..components.cli_quickstart import cli_quickstart, cli_steps
from ..components.key_display import key_display, key_rows
from ..components.panel import field_text
from ..components.plan_card import plan_card, plan_texts, pool_rows
from ..components.project_card import project_cards, project_rows
from ..components.shell import empty_state, error_banner, page_shell
from ..components.usage_chart import build_usage_figure, has_usage, usage_chart
from ..runtime import get_billing
from ..settings import get_settings
from ..state import UNEXPECTED, SessionState

log = logging.getLogger("portal.pages.dashboard")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DashboardState(SessionState):
    loaded: bool = False
    error: str = ""
    range_days: str = "30"
    metric: str = "compute"
    cli_url: str = ""
    key_dialog_open: bool = False
    new_key_secret: str = ""  # the one showing of a new key; cleared when its dialog closes or the page loads
    key_error: str = ""
    _data: Dashboard | None = None

    # -- derived display values ------------------------------------------------------------------------
    @rx.var
    def plan(self) -> dict[str, str]:
        return plan_texts(self._data.plan, self._data.now) if self._data else {}

    @rx.var
    def pools(self) -> list[dict[str, str]]:
        return pool_rows(self._data.plan) if self._data else []

    @rx.var
    def allowance_percent(self) -> int:
        return fmt.percent(self._data.plan.used_ms, self._data.plan.included_ms) if self._data else 0

    @rx.var
    def stats(self) -> dict[str, str]:
        d = self._data
        if d is None:
            return {}
        return {"events_today": fmt.number(d.today.events), "compute_today": fmt.duration(d.today.compute_ms),
                "spend_today": fmt.usd(d.today.cost_micros), "compute_period": fmt.duration(d.period.compute_ms),
                "spend_period": fmt.usd_cents(d.period.cost_micros),
                "spend_period_exact": fmt.usd(d.period.cost_micros)}

    @rx.var
    def usage_figure(self) -> go.Figure:
        return build_usage_figure(self._data.series if self._data else None, metric=self.metric,
                                  days=int(self.range_days))

    @rx.var
    def has_usage(self) -> bool:
        return has_usage(self._data.series if self._data else None, int(self.range_days))

    @rx.var
    def projects(self) -> list[dict[str, str]]:
        return project_rows(self._data.projects) if self._data else []

    @rx.var
    def project_total(self) -> int:
        return self._data.project_count if self._data else 0

    @rx.var
    def projects_more(self) -> str:
        d = self._data
        if d is None or d.project_count <= len(d.projects):
            return "Manage projects"
        return f"All {d.project_count} projects"

    @rx.var
    def activity(self) -> list[dict[str, str]]:
        return activity_rows(self._data.activity, self._data.now) if self._data else []

    @rx.var
    def keys(self) -> list[dict[str, str]]:
        return key_rows(self._data.keys, self._data.now) if self._data else []

    @rx.var
    def key_total(self) -> int:
        return self._data.key_count if self._data else 0

    @rx.var
    def cli(self) -> list[dict[str, str]]:
        return cli_steps(self.cli_url) if self.cli_url else []

    # -- handlers ------------------------------------------------------------------------------------------
    @rx.event
    async def open(self):
        """on_load: a secret from an earlier visit is never shown again, then the data."""
        self.new_key_secret, self.key_dialog_open, self.key_error = "", False, ""
        return await self._refresh()

    @rx.event
    async def load(self):
        """Re-read everything (on_load, live updates, after an action)."""
        return await self._refresh()

    async def _refresh(self):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        self.cli_url = get_settings().public_url
        try:
            self._data = await asyncio.to_thread(load_dashboard, get_billing(), user.account_id, now=_utcnow())
            self.error = ""
        except ServiceError as exc:
            self.error = exc.message
        except Exception:
            log.exception("the dashboard could not be loaded")
            self.error = UNEXPECTED
        self.loaded = True

    @rx.event
    def set_range(self, value: str | list[str]):
        value = value if isinstance(value, str) else (value[0] if value else "30")
        self.range_days = value if value in ("7", "30", "90") else "30"

    @rx.event
    def set_metric(self, value: str | list[str]):
        value = value if isinstance(value, str) else (value[0] if value else "compute")
        self.metric = value if value in ("compute", "tokens") else "compute"

    @rx.event
    def set_key_dialog(self, open: bool):
        self.key_dialog_open = bool(open)
        if not open:
            self.new_key_secret, self.key_error = "", ""

    @rx.event
    async def create_key(self, form_data: dict):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        try:
            created = await asyncio.to_thread(account_keys.create_key, get_billing(), user.account_id,
                                              name=str(form_data.get("name", "")), now=_utcnow())
        except ServiceError as exc:
            self.key_error = field_text(exc.message, "name")
            return
        except Exception:
            log.exception("a key could not be created")
            self.key_error = UNEXPECTED
            return
        self.new_key_secret, self.key_error = created.secret, ""
        return DashboardState.load

    @rx.event
    async def revoke_key(self, key_id: str):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        try:
            await asyncio.to_thread(account_keys.revoke_key, get_billing(), user.account_id, str(key_id),
                                    now=_utcnow())
        except ServiceError as exc:
            self.error = exc.message
            return
        except Exception:
            log.exception("a key could not be revoked")
            self.error = UNEXPECTED
            return
        return [DashboardState.load, rx.toast("Key revoked")]


# -- the page --------------------------------------------------------------------------------------------
def _tile(label: str, value: rx.Var, id: str, **props) -> rx.Component:
    return rx.card(rx.vstack(rx.text(label, size="1", color_scheme="gray", weight="medium"),
                             rx.cond(DashboardState.loaded,
                                     rx.text(value, size=rx.breakpoints(initial="5", md="6"), weight="bold", id=id,
                                             white_space="nowrap", **props),
                                     rx.skeleton(height="28px", width="6rem")),
                             spacing="1"), width="100%")


def _stats() -> rx.Component:
    s = DashboardState.stats
    return rx.grid(
        _tile("Compute today", s["compute_today"], "stat-compute-today"),
        _tile("Events today", s["events_today"], "stat-events-today"),
        _tile("Compute this period", s["compute_period"], "stat-compute-period"),
        _tile("Spend this period", s["spend_period"], "stat-spend-period", title=s["spend_period_exact"]),
        columns=rx.breakpoints(initial="2", md="4"), spacing="3", width="100%")


def _live_badge() -> rx.Component:
    return rx.tooltip(rx.badge(rx.box(width="6px", height="6px", border_radius="50%",
                                      background_color=rx.color("green", 9)), "Live", color_scheme="green",
                               variant="soft", size="2", id="live-badge"),
                      content="Changes from the API, the CLI and other tabs appear here without a reload.")


def dashboard() -> rx.Component:
    chart = usage_chart(
        DashboardState.usage_figure, DashboardState.metric, DashboardState.range_days, DashboardState.set_metric,
        DashboardState.set_range, DashboardState.has_usage, DashboardState.loaded,
        empty_state("chart-column", "No usage in this range",
                    "Report compute or tokens with POST /api/v1/usage and it appears here within a second."))
    plan = rx.box(plan_card(DashboardState.plan, DashboardState.pools, DashboardState.allowance_percent,
                            DashboardState.loaded), width="100%", order=rx.breakpoints(initial="-1", lg="0"))
    projects = project_cards(DashboardState.projects, DashboardState.project_total, DashboardState.projects_more,
                             DashboardState.loaded,
                             empty_state("folder-plus", "No projects yet", "Create a project to report usage."))
    activity = activity_feed(DashboardState.activity, DashboardState.loaded,
                             empty_state("activity", "Nothing has happened yet",
                                         "Runs, keys, credit and plan changes show up here."))
    keys = key_display(DashboardState.keys, DashboardState.key_total, DashboardState.new_key_secret,
                       DashboardState.key_dialog_open, DashboardState.key_error, DashboardState.set_key_dialog,
                       DashboardState.create_key, DashboardState.revoke_key, DashboardState.loaded)
    two_thirds = rx.breakpoints(initial="minmax(0, 1fr)", lg="minmax(0, 3fr) minmax(0, 2fr)")
    halves = rx.breakpoints(initial="minmax(0, 1fr)", lg="repeat(2, minmax(0, 1fr))")
    return page_shell(
        "Dashboard",
        error_banner(DashboardState.error),
        _stats(),
        rx.grid(chart, plan, grid_template_columns=two_thirds, gap="1rem", width="100%", align_items="start"),
        projects,
        rx.grid(activity, rx.vstack(keys, cli_quickstart(DashboardState.cli), spacing="4", width="100%"),
                grid_template_columns=halves, gap="1rem", width="100%", align_items="start"),
        signed_in=DashboardState.signed_in, display_name=DashboardState.display_name, actions=_live_badge())


ON_LOAD = [DashboardState.open, live.LiveState.watch]
live.register_refresh(routes.HOME, DashboardState.load)
