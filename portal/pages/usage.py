"""/usage: usage totals for a date range grouped by day, project, agent or model; table, chart and CSV."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import date, datetime, timedelta, timezone

import plotly.graph_objects as go
import reflex as rx

from billing_core.errors import ServiceError
from billing_core.services.projects import list_projects
from billing_core.services.summary import usage_summary

from ..components.csv import csv_text, decimal_usd, safe_filename
from ..components.data_table import cell, data_table, no_rows, pager
from ..components.format import duration, number, usd
from ..components.shell import error_banner, page_shell
from ..components.summary_figure import build_summary_figure
from .. import live, routes
from ..runtime import get_billing
from ..state import SessionState

log = logging.getLogger("portal.pages.usage")
TABLE_PAGE = 50
MAX_DAYS = 366  # a year of days at most; the rows live in state until the next query
PRESETS = (("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "1 year"))
GROUPS = (("day", "Day"), ("project", "Project"), ("agent", "Agent"), ("model", "Model"))
METRICS = (("compute", "Compute"), ("cost", "Cost"), ("tokens", "Tokens"))
BLANK_KEY = {"agent": "(no agent)", "model": "(compute, no model)", "project": "(unknown project)"}


def _today() -> date:
    return datetime.now(timezone.utc).date()


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def _range_problem(start: date | None, end: date | None) -> str:
    if start is None or end is None:
        return "Choose both a first and a last day."
    if end < start:
        return "The last day is before the first day."
    if (end - start).days >= MAX_DAYS:
        return f"Choose at most {MAX_DAYS} days."
    return ""


class UsageState(rx.State):
    start: str = ""
    end: str = ""
    preset: str = "30"
    group_by: str = "day"
    metric: str = "compute"
    loading: bool = True  # until the first summary arrives
    error: str = ""
    table_page: int = 1
    _rows: list[dict] = []  # at most MAX_DAYS rows (day) or one per project, agent or model
    _project_names: dict[str, str] = {}
    _shown: tuple[str, str, str] = ("", "", "")  # start, end and grouping of the rows held

    # -- what the page shows ------------------------------------------------------------------------
    def _label(self, row: dict) -> str:
        group = self._shown[2]
        if not row["key"]:
            return BLANK_KEY.get(group, "—")
        return self._project_names.get(row["key"], row["key"]) if group == "project" else row["key"]

    @rx.var
    def row_count(self) -> int:
        return len(self._rows)

    @rx.var
    def page_count(self) -> int:
        return max(1, -(-len(self._rows) // TABLE_PAGE))

    @rx.var
    def rows(self) -> list[dict[str, str]]:
        first = (self.table_page - 1) * TABLE_PAGE
        return [{"key": self._label(r), "compute": duration(r["compute_ms"]), "compute_ms": str(r["compute_ms"]),
                 "input": number(r["input_tokens"]), "output": number(r["output_tokens"]),
                 "input_exact": f"{r['input_tokens']:,}", "output_exact": f"{r['output_tokens']:,}",
                 "cost": usd(r["cost_micros"])} for r in self._rows[first:first + TABLE_PAGE]]

    @rx.var
    def totals(self) -> dict[str, str]:
        sums = {name: sum(r[name] for r in self._rows) for name in
                ("compute_ms", "input_tokens", "output_tokens", "cost_micros", "list_cost_micros")}
        return {"compute": duration(sums["compute_ms"]), "input": number(sums["input_tokens"]),
                "output": number(sums["output_tokens"]), "cost": usd(sums["cost_micros"]),
                "list_cost": usd(sums["list_cost_micros"]), **{f"{k}_raw": str(v) for k, v in sums.items()}}

    @rx.var
    def figure(self) -> go.Figure:
        rows = self._rows
        return build_summary_figure([self._label(r) for r in rows], [r["compute_ms"] for r in rows],
                                    [r["input_tokens"] for r in rows], [r["output_tokens"] for r in rows],
                                    [r["cost_micros"] for r in rows], metric=self.metric,
                                    by_day=self._shown[2] == "day")

    @rx.var
    def range_text(self) -> str:
        start, end, _ = self._shown
        return f"{start} to {end} (UTC days)" if start else ""

    # -- loading ----------------------------------------------------------------------------------------
    async def _query(self):
        """Check the range, then read the summary; every problem is a message beside the controls."""
        user = (await self.get_state(SessionState))._signed_in_user()
        if user is None:
            yield (await self.get_state(SessionState))._sign_in_redirect()
            return
        start, end = _parse_day(self.start), _parse_day(self.end)
        self.loading, self.error = False, _range_problem(start, end)
        if self.error:
            return
        self.loading = True
        yield
        try:
            rows = usage_summary(get_billing(), user.account_id, start=start, end=end, group_by=self.group_by)
            if self.group_by == "project":
                projects = list_projects(get_billing(), user.account_id, limit=100, cursor=None).items
                self._project_names = {p.id: p.name for p in projects}
        except ServiceError as exc:
            self.error = exc.message
        except Exception:
            log.exception("usage summary failed")
            self.error = "Usage could not be loaded just now. Try again in a moment."
        else:
            self._rows = [asdict(r) for r in rows]
            self._shown, self.table_page = (start.isoformat(), end.isoformat(), self.group_by), 1
        self.loading = False

    def _use_preset(self, days: int) -> None:
        today = _today()
        self.start, self.end = (today - timedelta(days=days - 1)).isoformat(), today.isoformat()

    @rx.event
    async def load(self):
        if self.preset != "custom":  # a preset range ends today, whenever the page is opened
            self._use_preset(int(self.preset))
        async for update in self._query():
            yield update

    @rx.event
    async def refresh(self):
        async for update in self._query():
            yield update

    @rx.event
    async def set_preset(self, value: str | list[str]):
        if isinstance(value, str) and value in dict(PRESETS):
            self.preset = value
            self._use_preset(int(value))
            async for update in self._query():
                yield update

    @rx.event
    async def set_start(self, value: str):
        self.start, self.preset = value, "custom"
        async for update in self._query():
            yield update

    @rx.event
    async def set_end(self, value: str):
        self.end, self.preset = value, "custom"
        async for update in self._query():
            yield update

    @rx.event
    async def set_group(self, value: str | list[str]):
        if isinstance(value, str) and value in dict(GROUPS):
            self.group_by = value
            async for update in self._query():
                yield update

    @rx.event
    def set_metric(self, value: str | list[str]):
        if isinstance(value, str) and value in dict(METRICS):
            self.metric = value

    @rx.event
    def next_page(self):
        self.table_page = min(self.table_page + 1, self.page_count)

    @rx.event
    def prev_page(self):
        self.table_page = max(1, self.table_page - 1)

    @rx.event
    def export_csv(self):
        """Every row of the table (all its pages), with exact values, as the table shows them now."""
        start, end, group = self._shown
        header = [group, *(["project_id"] if group == "project" else []), "compute_ms", "input_tokens",
                  "output_tokens", "cost_usd"]
        body = [[self._label(r), *([r["key"]] if group == "project" else []), r["compute_ms"], r["input_tokens"],
                 r["output_tokens"], decimal_usd(r["cost_micros"])] for r in self._rows]
        return rx.download(data=csv_text(header, body), filename=safe_filename("usage", group, start, end) + ".csv",
                           mime_type="text/csv")


ON_LOAD = [UsageState.load, live.LiveState.watch]
live.register_refresh(routes.USAGE, UsageState.refresh)


# -- the page ---------------------------------------------------------------------------------------------
def _stat(label: str, value: rx.Var, stat_id: str, raw: rx.Var, hint: rx.Var | str = "") -> rx.Component:
    return rx.card(rx.vstack(
        rx.text(label, size="1", color_scheme="gray", weight="medium"),
        rx.text(value, size="5", weight="bold", id=stat_id, custom_attrs={"data-raw": raw}),
        rx.text(hint, size="1", color_scheme="gray"), spacing="1"), flex="1", min_width="9rem")


def _controls() -> rx.Component:
    def date_input(label: str, value: rx.Var, handler, input_id: str) -> rx.Component:
        return rx.vstack(rx.el.label(rx.text(label, size="1", color_scheme="gray", weight="medium"), html_for=input_id),
                         rx.input(type="date", value=value, on_change=handler, id=input_id),
                         spacing="1")
    presets = rx.segmented_control.root(*[rx.segmented_control.item(text, value=v) for v, text in PRESETS],
                                        value=UsageState.preset, on_change=UsageState.set_preset, id="usage-preset",
                                        size=rx.breakpoints(initial="1", sm="2"))
    groups = rx.segmented_control.root(*[rx.segmented_control.item(text, value=v) for v, text in GROUPS],
                                       value=UsageState.group_by, on_change=UsageState.set_group, id="usage-group",
                                       size=rx.breakpoints(initial="1", sm="2"))
    return rx.flex(
        rx.vstack(rx.text("Range", size="1", color_scheme="gray", weight="medium"), presets, spacing="1"),
        date_input("From", UsageState.start, UsageState.set_start, "usage-from"),
        date_input("To", UsageState.end, UsageState.set_end, "usage-to"),
        rx.vstack(rx.text("Group by", size="1", color_scheme="gray", weight="medium"), groups, spacing="1"),
        spacing="4", wrap="wrap", align="end", width="100%")


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        cell(row["key"]),
        cell(row["compute"], align="right", custom_attrs={"data-raw": row["compute_ms"]}),
        cell(row["input"], align="right", title=row["input_exact"], wide_only=True),
        cell(row["output"], align="right", title=row["output_exact"], wide_only=True),
        cell(row["cost"], align="right"))


def usage() -> rx.Component:
    t = UsageState.totals
    metric = rx.segmented_control.root(*[rx.segmented_control.item(text, value=v) for v, text in METRICS],
                                       value=UsageState.metric, on_change=UsageState.set_metric, size="1",
                                       id="usage-metric")
    export = rx.button(rx.icon("download", size=16), "Export CSV", variant="soft", on_click=UsageState.export_csv,
                       disabled=UsageState.row_count == 0, id="usage-export")
    columns = (("Group", "left", True), ("Compute", "right", True), ("Input tokens", "right", False),
               ("Output tokens", "right", False), ("Cost", "right", True))
    empty = no_rows("No usage in this range", "Pick a longer range, or report usage with POST /api/v1/usage.",
                    "chart-column")
    return page_shell(
        "Usage",
        _controls(),
        error_banner(UsageState.error),
        rx.flex(_stat("Compute", t["compute"], "total-compute", t["compute_ms_raw"], UsageState.range_text),
                _stat("Input tokens", t["input"], "total-input", t["input_tokens_raw"]),
                _stat("Output tokens", t["output"], "total-output", t["output_tokens_raw"]),
                _stat("Cost charged", t["cost"], "total-cost", t["cost_micros_raw"],
                      "List cost incl. own keys: " + t["list_cost"].to(str)),
                spacing="3", wrap="wrap", width="100%"),
        rx.card(rx.vstack(
            rx.hstack(rx.heading("By ", UsageState.group_by, size="3"), rx.spacer(), metric, align="center",
                      width="100%"),
            rx.cond(UsageState.row_count > 0,
                    rx.plotly(data=UsageState.figure, config={"displayModeBar": False, "responsive": True},
                              use_resize_handler=True, width="100%", height="300px", id="usage-chart"),
                    rx.center(rx.cond(UsageState.loading, rx.spinner(size="3"), rx.text("Nothing to chart.",
                                                                                          color_scheme="gray")),
                              height="120px", width="100%")),
            spacing="3", width="100%"), width="100%"),
        data_table(columns, UsageState.rows, _row, loading=UsageState.loading, empty=empty, table_id="usage-table"),
        pager(page=UsageState.table_page, has_prev=UsageState.table_page > 1,
              has_next=UsageState.table_page < UsageState.page_count, on_prev=UsageState.prev_page,
              on_next=UsageState.next_page, summary=UsageState.row_count.to(str) + " rows", pager_id="usage-pager"),
        signed_in=SessionState.signed_in, display_name=SessionState.display_name, actions=export)
