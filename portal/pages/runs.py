"""/runs: the account's agent runs, newest first, filtered and paged, with each run's drawdown."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import reflex as rx

from billing_core.errors import ServiceError
from billing_core.services.paging import Page
from billing_core.services.projects import list_projects
from billing_core.services.runs import STATUSES, get_run, list_runs

from ..components.data_table import WIDE_ONLY, cell, data_table, field_label, no_rows, pager, phone_only
from ..components.format import duration, relative_time, timestamp, usd
from ..components.run_detail import drawdown_steps, run_detail_dialog
from ..components.shell import error_banner, page_shell
from ..components.status_badge import plain_badge, run_status_badge
from .. import live, routes
from ..runtime import get_billing
from ..state import SessionState, account_id_of, sign_in_redirect

log = logging.getLogger("portal.pages.runs")
PAGE_SIZE = 25
PROJECTS_SHOWN = 100  # filter choices; a run of a project past these shows its id
ALL = "all"
FAILED_TO_LOAD = "The runs could not be loaded just now. Try again in a moment."
COLUMNS = (("Status", "left", False), ("Run", "left", True), ("Agent", "left", False), ("Project", "left", False),
           ("Trigger", "left", False), ("Started", "left", False), ("Compute", "right", False),
           ("Cost", "right", True))


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class RunsState(rx.State):
    project_filter: str = ALL
    status_filter: str = ALL
    agent_filter: str = ""
    loading: bool = False
    error: str = ""
    page: int = 1
    has_next: bool = False
    project_options: list[dict[str, str]] = []
    detail_open: bool = False
    detail_loading: bool = False
    detail_error: str = ""
    _runs: list[dict] = []
    _project_names: dict[str, str] = {}
    _cursors: list[str] = [""]  # the cursor of each page up to the current one; "" is the first page
    _next_cursor: str = ""
    _now: datetime | None = None
    _detail: dict = {}

    # -- what the page shows ------------------------------------------------------------------------
    @rx.var
    def has_prev(self) -> bool:
        return self.page > 1

    @rx.var
    def filtered(self) -> bool:
        return self.project_filter != ALL or self.status_filter != ALL or self.agent_filter != ""

    @rx.var
    def rows(self) -> list[dict[str, str]]:
        now = self._now or _utcnow()
        return [{"id": r["id"], "status": r["status"], "agent": r["agent"], "trigger": r["trigger"],
                 "project": self._project_names.get(r["project_id"], r["project_id"]),
                 "started": relative_time(_parse(r["started_at"]), now) if r["started_at"] else "not started",
                 "started_exact": timestamp(_parse(r["started_at"] or r["created_at"])),
                 "duration": duration(r["duration_ms"]), "cost": usd(r["cost_micros"])} for r in self._runs]

    @rx.var
    def detail(self) -> dict[str, str]:
        r = self._detail
        if not r:
            return {}
        return {"id": r["id"], "status": r["status"], "agent": r["agent"], "trigger": r["trigger"],
                "project": self._project_names.get(r["project_id"], r["project_id"]),
                "schedule": r["schedule_id"] or "", "error": r["error"] or "",
                "created": timestamp(_parse(r["created_at"])), "started": timestamp(_parse(r["started_at"])),
                "finished": timestamp(_parse(r["finished_at"])), "duration": duration(r["duration_ms"]),
                "cost": usd(r["cost_micros"]), "cost_raw": str(r["cost_micros"])}

    @rx.var
    def drawdown(self) -> list[dict[str, str]]:
        return drawdown_steps(self._detail["drawdown"]) if self._detail.get("drawdown") else []

    # -- loading ----------------------------------------------------------------------------------------
    def _load_projects(self, account_id: str) -> None:
        projects = list_projects(get_billing(), account_id, limit=PROJECTS_SHOWN, cursor=None).items
        self._project_names = {p.id: p.name for p in projects}
        self.project_options = [{"id": p.id, "name": p.name} for p in sorted(projects, key=lambda p: p.name)]

    def _fetch(self, account_id: str) -> None:
        """The current page under the current filters; errors become a message, never a traceback."""
        self.error = ""
        try:
            page: Page = list_runs(
                get_billing(), account_id, limit=PAGE_SIZE, cursor=self._cursors[-1] or None,
                project_id=None if self.project_filter == ALL else self.project_filter,
                status=None if self.status_filter == ALL else self.status_filter,
                agent=self.agent_filter or None)
        except ServiceError as exc:
            self._runs, self.has_next, self.error = [], False, exc.message
            return
        except Exception:
            log.exception("listing runs failed")
            self.error = FAILED_TO_LOAD
            return
        self._runs = [run.to_dict() for run in page.items]
        self._next_cursor = page.next_cursor or ""
        self.has_next = page.next_cursor is not None
        self.page = len(self._cursors)
        self._now = _utcnow()

    async def _reload(self, *, first_page: bool):
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        if first_page:
            self._cursors = [""]
        self.loading = True
        yield
        self._fetch(account_id)
        self.loading = False

    @rx.event
    async def load(self):
        """on_load: filters from the URL (?project_id=&status=&agent=), the projects, then page one."""
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        params = self.router.url.query_parameters
        self.project_filter = params.get("project_id") or ALL
        self.status_filter = params.get("status") if params.get("status") in STATUSES else ALL
        self.agent_filter = (params.get("agent") or "")[:100]
        self.detail_open, self._detail, self._cursors, self.loading = False, {}, [""], True
        yield
        try:
            self._load_projects(account_id)
        except Exception:
            log.exception("listing projects failed")
        self._fetch(account_id)
        self.loading = False

    @rx.event
    async def refresh(self):
        """Fetch the page on screen again (a live update: a run was created or changed)."""
        account_id = await account_id_of(self)
        if account_id is not None:
            self._fetch(account_id)

    @rx.event
    async def set_project(self, value: str):
        self.project_filter = value
        async for update in self._reload(first_page=True):
            yield update

    @rx.event
    async def set_status(self, value: str):
        self.status_filter = value if value in STATUSES else ALL
        async for update in self._reload(first_page=True):
            yield update

    @rx.event
    async def set_agent(self, value: str):
        self.agent_filter = value.strip()[:100]
        async for update in self._reload(first_page=True):
            yield update

    @rx.event
    async def clear_filters(self):
        self.project_filter, self.status_filter, self.agent_filter = ALL, ALL, ""
        async for update in self._reload(first_page=True):
            yield update

    @rx.event
    async def next_page(self):
        if not self._next_cursor:
            return
        self._cursors = [*self._cursors, self._next_cursor]
        async for update in self._reload(first_page=False):
            yield update

    @rx.event
    async def prev_page(self):
        if len(self._cursors) < 2:
            return
        self._cursors = self._cursors[:-1]
        async for update in self._reload(first_page=False):
            yield update

    # -- one run --------------------------------------------------------------------------------------
    @rx.event
    async def open_run(self, run_id: str):
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        self.detail_open, self.detail_loading, self.detail_error, self._detail = True, True, "", {}
        yield
        try:
            self._detail = get_run(get_billing(), account_id, str(run_id)).to_dict()
        except ServiceError as exc:
            self.detail_error = exc.message
        except Exception:
            log.exception("reading a run failed")
            self.detail_error = "This run could not be loaded just now. Try again in a moment."
        self.detail_loading = False

    @rx.event
    def set_detail_open(self, value: bool):
        self.detail_open = value


ON_LOAD = [RunsState.load, live.LiveState.watch]
live.register_refresh(routes.RUNS, RunsState.refresh)


# -- the page ---------------------------------------------------------------------------------------------
def _filters() -> rx.Component:
    project = rx.select.root(
        rx.select.trigger(placeholder="All projects", width="100%", id="filter-project"),
        rx.select.content(rx.select.item("All projects", value=ALL),
                          rx.foreach(RunsState.project_options,
                                     lambda p: rx.select.item(p["name"], value=p["id"]))),
        value=RunsState.project_filter, on_change=RunsState.set_project)
    status = rx.select.root(
        rx.select.trigger(placeholder="All statuses", width="100%", id="filter-status"),
        rx.select.content(rx.select.item("All statuses", value=ALL),
                          *[rx.select.item(s.capitalize(), value=s) for s in STATUSES]),
        value=RunsState.status_filter, on_change=RunsState.set_status)
    agent = rx.input(rx.input.slot(rx.icon("search", size=14)), placeholder="Agent name", id="filter-agent",
                     value=RunsState.agent_filter, on_change=RunsState.set_agent, width="100%")
    clear = rx.cond(RunsState.filtered, rx.box(rx.button("Clear filters", variant="ghost", size="2",
                                                         on_click=RunsState.clear_filters, id="filter-clear"),
                                               align_self="end"))
    return rx.flex(field_label("Project", project, "filter-project"), field_label("Status", status, "filter-status"),
                   field_label("Agent", agent, "filter-agent"), clear,
                   spacing="3", width="100%", wrap="wrap", align="end")


def _row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(run_status_badge(row["status"]), display=WIDE_ONLY),
        # Ids the edge chooses can be long: cut to the column, whole in the tooltip and the detail.
        rx.table.cell(rx.text(row["id"], size="2", white_space="nowrap", font_family="var(--code-font-family)",
                              overflow="hidden", text_overflow="ellipsis", max_width=["13rem", "20rem", "11rem"],
                              title=row["id"]),
                      phone_only(rx.flex(run_status_badge(row["status"]),
                                         rx.text(row["agent"], " · ", row["started"], size="1", color_scheme="gray"),
                                         spacing="2", align="center", wrap="wrap", margin_top="var(--space-1)"))),
        cell(row["agent"], wide_only=True),
        cell(row["project"], wide_only=True),
        rx.table.cell(plain_badge(row["trigger"]), display=WIDE_ONLY),
        cell(row["started"], title=row["started_exact"], wide_only=True),
        cell(row["duration"], align="right", wide_only=True),
        cell(row["cost"], align="right"),
        on_click=RunsState.open_run(row["id"]), cursor="pointer", _hover={"background": rx.color("gray", 3)},
        custom_attrs={"data-run-id": row["id"]})


def runs() -> rx.Component:
    empty = rx.cond(RunsState.filtered,
                    no_rows("No runs match these filters", "Clear a filter to see more runs.", "filter-x"),
                    no_rows("No runs yet", "Runs appear here as soon as the edge reports one "
                                           "(POST /api/v1/runs).", "play"))
    return page_shell(
        "Runs",
        _filters(),
        error_banner(RunsState.error),
        data_table(COLUMNS, RunsState.rows, _row, loading=RunsState.loading, empty=empty, table_id="runs-table"),
        pager(page=RunsState.page, has_prev=RunsState.has_prev, has_next=RunsState.has_next,
              on_prev=RunsState.prev_page, on_next=RunsState.next_page,
              summary=f"Newest first, {PAGE_SIZE} per page", pager_id="runs-pager"),
        run_detail_dialog(RunsState.detail, RunsState.drawdown, open=RunsState.detail_open,
                          loading=RunsState.detail_loading, error=RunsState.detail_error,
                          on_open_change=RunsState.set_detail_open),
        signed_in=SessionState.signed_in, display_name=SessionState.display_name)
