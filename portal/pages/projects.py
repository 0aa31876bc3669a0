"""/projects: the account's projects with today's runs and this period's usage; create, rename, delete."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import reflex as rx

from billing_core.errors import ServiceError
from billing_core.services.project_usage import ProjectRow, projects_overview
from billing_core.services.projects import clean_name, create_project, delete_project, rename_project

from .. import live, routes
from ..components.confirm import confirm_dialog
from ..components.format import duration, number, short_date, timestamp, usd_cents
from ..components.panel import field_message, field_text, stat
from ..components.shell import empty_state, error_banner, page_shell
from ..runtime import get_billing
from ..state import UNEXPECTED, SessionState

log = logging.getLogger("portal.pages.projects")
PAGE_SIZE = 24
MAX_PAGES_BACK = 100


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def name_problem(name: str) -> str:
    """What is wrong with a project name as typed; "" when it is fine (or nothing is typed yet)."""
    if name == "":
        return ""
    try:
        clean_name(name)
    except ServiceError as exc:
        return field_text(exc.message, "name")
    return ""


def project_href(project_id: str) -> str:
    return routes.PROJECT.replace("[project_id]", project_id)


def row_view(row: ProjectRow) -> dict[str, str]:
    n = row.numbers
    return {"id": row.id, "name": row.name, "href": project_href(row.id), "created": short_date(row.created_at),
            "created_exact": timestamp(row.created_at), "runs_today": number(n.runs_today),
            "compute": duration(n.compute_ms), "spend": usd_cents(n.cost_micros),
            "hmac": f"{row.hmac_prefix}...{row.hmac_last4}" if row.hmac_prefix else "no key yet"}


class ProjectsState(SessionState):
    rows: list[dict[str, str]] = []  # one page, at most PAGE_SIZE
    loaded: bool = False
    error: str = ""
    plan_text: str = ""
    period_text: str = ""
    at_limit: bool = False
    has_older: bool = False
    has_newer: bool = False
    new_name: str = ""
    create_error: str = ""
    dialog: str = ""  # "rename" | "delete" | "" (closed)
    target_name: str = ""  # the project the open dialog is about
    rename_to: str = ""
    rename_error: str = ""
    _target_id: str = ""
    _cursors: list[str] = []  # the cursors of the pages before this one; "" is the first page
    _cursor: str = ""
    _next: str = ""

    @rx.var
    def new_name_problem(self) -> str:
        return name_problem(self.new_name)

    @rx.var
    def rename_problem(self) -> str:
        return name_problem(self.rename_to)

    @rx.var
    def rename_open(self) -> bool:
        return self.dialog == "rename"

    @rx.var
    def delete_open(self) -> bool:
        return self.dialog == "delete"

    def _fetch(self, account_id: str) -> None:
        try:
            found = projects_overview(get_billing(), account_id, now=_utcnow(), limit=PAGE_SIZE,
                                      cursor=self._cursor or None)
        except ServiceError as exc:
            self.error = exc.message
            return
        except Exception:
            log.exception("loading projects failed")
            self.error = UNEXPECTED
            return
        self.error = ""
        self.rows = [row_view(r) for r in found.rows]
        limit = "unlimited" if found.max_projects is None else number(found.max_projects)
        self.plan_text = f"{number(found.project_count)} of {limit} projects on the {found.plan} plan"
        self.period_text = f"Usage this period, since {short_date(found.period_start)} (UTC days)"
        self.at_limit = found.max_projects is not None and found.project_count >= found.max_projects
        self._next = found.next_cursor or ""
        self.has_older, self.has_newer = found.next_cursor is not None, bool(self._cursors)
        self.loaded = True

    @rx.event
    def load(self):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        self._cursors, self._cursor, self.dialog = [], "", ""
        self._fetch(user.account_id)

    @rx.event
    def refresh(self):
        """Re-read the page on screen (the live-update hook)."""
        user = self._signed_in_user()
        if user is not None:
            self._fetch(user.account_id)

    @rx.event
    def older(self):
        user = self._signed_in_user()
        if user is None or not self._next:
            return
        # Backend-only and capped: a very long walk forgets its oldest pages rather than growing without end.
        self._cursors, self._cursor = [*self._cursors, self._cursor][-MAX_PAGES_BACK:], self._next
        self._fetch(user.account_id)

    @rx.event
    def newer(self):
        user = self._signed_in_user()
        if user is None or not self._cursors:
            return
        self._cursor, self._cursors = self._cursors[-1], self._cursors[:-1]
        self._fetch(user.account_id)

    @rx.event
    def set_new_name(self, value: str):
        self.new_name, self.create_error = value[:200], ""

    @rx.event
    def create(self, form_data: dict):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        name = self.new_name
        try:
            project = create_project(get_billing(), user.account_id, name=name, now=_utcnow())
        except ServiceError as exc:
            self.create_error = field_text(exc.message, "name")
            return
        self.new_name = self.create_error = ""
        self._cursors, self._cursor = [], ""
        self._fetch(user.account_id)
        return rx.toast.success(f"Project {project.name} created")

    @rx.event
    def ask(self, dialog: str, project_id: str, name: str):
        """Open the rename or delete dialog for one project of the page."""
        self.dialog = dialog if dialog in ("rename", "delete") else ""
        self._target_id, self.target_name, self.rename_to, self.rename_error = project_id, name, name, ""

    @rx.event
    def close_dialog(self, open_: bool = False):
        if not open_:
            self.dialog = ""

    @rx.event
    def set_rename_to(self, value: str):
        self.rename_to, self.rename_error = value[:200], ""

    @rx.event
    def rename(self, form_data: dict):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        try:
            view = rename_project(get_billing(), user.account_id, self._target_id, name=self.rename_to,
                                  now=_utcnow())
        except ServiceError as exc:
            self.rename_error = field_text(exc.message, "name")
            return
        self.dialog = ""
        self._fetch(user.account_id)
        return rx.toast.success(f"Renamed to {view.name}")

    @rx.event
    def delete(self):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        self.dialog = ""
        try:
            delete_project(get_billing(), user.account_id, self._target_id, now=_utcnow())
        except ServiceError as exc:
            self.error = exc.message
            return
        self._fetch(user.account_id)
        return rx.toast.success(f"Project {self.target_name} deleted")


# -- the page -------------------------------------------------------------------------------------
def _create_form() -> rx.Component:
    s = ProjectsState
    return rx.form(
        rx.vstack(
            rx.hstack(
                rx.input(placeholder="New project name", value=s.new_name, on_change=s.set_new_name, name="name",
                         id="new-project-name", aria_label="New project name", max_length=200, flex="1",
                         min_width="12rem"),
                rx.button(rx.icon("plus", size=16), "Create project", type="submit", id="create-project",
                          disabled=(s.new_name == "") | (s.new_name_problem != "")),
                spacing="2", width="100%", wrap="wrap"),
            field_message(s.new_name_problem, "new-project-name-problem"),
            rx.cond(s.create_error != "",
                    rx.callout(s.create_error, icon="triangle_alert", color_scheme="amber", role="alert",
                               id="create-error", width="100%")),
            spacing="2", width="100%", max_width="40rem"),
        on_submit=s.create, reset_on_submit=False, width="100%")


def _card(row: rx.Var) -> rx.Component:
    s = ProjectsState
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.link(rx.hstack(rx.icon("folder", size=16), rx.text(row["name"], weight="bold", size="3",
                                                                      class_name="project-name", trim="both"),
                                  align="center", spacing="2", min_width="0"),
                        href=row["href"], underline="hover", high_contrast=True, min_width="0", flex="1",
                        overflow="hidden", white_space="nowrap", text_overflow="ellipsis"),
                rx.icon_button(rx.icon("pencil", size=14), on_click=s.ask("rename", row["id"], row["name"]),
                               variant="ghost", color_scheme="gray", size="1", aria_label="Rename " + row["name"],
                               class_name="rename-project"),
                rx.icon_button(rx.icon("trash-2", size=14), on_click=s.ask("delete", row["id"], row["name"]),
                               variant="ghost", color_scheme="red", size="1", aria_label="Delete " + row["name"],
                               class_name="delete-project"),
                align="center", spacing="3", width="100%"),
            rx.text("Created ", rx.el.span(row["created"], title=row["created_exact"]), size="1",
                    color_scheme="gray"),
            rx.flex(stat("Runs today", row["runs_today"], class_name="stat-runs-today", size="3"),
                    stat("Compute", row["compute"], class_name="stat-compute", size="3"),
                    stat("Spend", row["spend"], class_name="stat-spend", size="3"),
                    justify="between", wrap="wrap", gap="3", width="100%"),
            rx.hstack(rx.text("HMAC key", size="1", color_scheme="gray"),
                      rx.code(row["hmac"], size="1", variant="ghost", class_name="stat-hmac"),
                      align="center", spacing="2"),
            spacing="3", width="100%"),
        custom_attrs={"data-project-id": row["id"]}, class_name="project-card", width="100%")


def _list() -> rx.Component:
    s = ProjectsState
    return rx.cond(
        s.rows.length() > 0,
        rx.vstack(
            rx.text(s.period_text, size="1", color_scheme="gray"),
            rx.grid(rx.foreach(s.rows, _card), columns=rx.breakpoints(initial="1", sm="2", lg="3"), spacing="4",
                    width="100%", id="project-list"),
            rx.cond(s.has_older | s.has_newer, rx.hstack(
                rx.button("Newer", on_click=s.newer, disabled=~s.has_newer, variant="soft"),
                rx.button("Older", on_click=s.older, disabled=~s.has_older, variant="soft"), spacing="2")),
            spacing="3", width="100%"),
        empty_state("folder-plus", "No projects yet",
                    "Create one above: each project gets an HMAC key your agents sign usage with."))


def _loading() -> rx.Component:
    return rx.grid(*[rx.skeleton(rx.box(height="9rem"), loading=True) for _ in range(3)],
                   columns=rx.breakpoints(initial="1", sm="2", lg="3"), spacing="4", width="100%")


def _rename_dialog() -> rx.Component:
    s = ProjectsState
    return rx.dialog.root(rx.dialog.content(
        rx.dialog.title("Rename project"),
        rx.form(rx.vstack(
            rx.input(value=s.rename_to, on_change=s.set_rename_to, id="rename-input", name="name",
                     aria_label="Project name", max_length=200, width="100%", auto_focus=True),
            field_message(s.rename_problem, "rename-problem"),
            field_message(s.rename_error, "rename-error"),
            rx.flex(rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                    rx.button("Save", type="submit", id="rename-save",
                              disabled=(s.rename_to == "") | (s.rename_problem != "")),
                    spacing="3", justify="end", width="100%"),
            spacing="3", width="100%"), on_submit=s.rename, reset_on_submit=False),
        max_width="28rem"), open=s.rename_open, on_open_change=s.close_dialog)


def _delete_dialog() -> rx.Component:
    s = ProjectsState
    return confirm_dialog(
        "Delete project?",
        rx.text("Delete ", rx.text.strong(s.target_name), "? Usage reported for it is refused from then on, and "
                "its HMAC and provider keys are erased. Its past usage stays in your history and invoices. "
                "This cannot be undone.", size="2"),
        "Delete project", s.delete, open=s.delete_open, on_open_change=s.close_dialog, confirm_id="confirm-delete")


def projects_page() -> rx.Component:
    s = ProjectsState
    return page_shell(
        "Projects",
        rx.hstack(rx.text(s.plan_text, size="2", color_scheme="gray", id="plan-limit"),
                  rx.cond(s.at_limit, rx.badge("limit reached", color_scheme="amber", variant="soft")),
                  align="center", spacing="2", wrap="wrap"),
        _create_form(),
        error_banner(s.error),
        rx.cond(s.loaded, _list(), _loading()),
        _rename_dialog(),
        _delete_dialog(),
        signed_in=SessionState.signed_in, display_name=SessionState.display_name)


ON_LOAD = [ProjectsState.load, live.LiveState.watch]
live.register_refresh(routes.PROJECTS, ProjectsState.refresh)
