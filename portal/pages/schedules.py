"""/schedules: the account's agent schedules, with a form that checks the cron and zone as you type."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import reflex as rx

from billing_core.errors import ServiceError
from billing_core.services.projects import list_projects
from billing_core.services.schedules import delete_schedule, list_schedules, update_schedule

from ..components.confirm import confirm_dialog
from ..components.data_table import WIDE_ONLY, cell, data_table, no_rows, pager, phone_only
from ..components.format import relative_time
from ..components.schedule_form import schedule_form_dialog
from ..components.shell import error_banner, page_shell
from .. import live, routes
from ..runtime import get_billing
from ..state import SessionState, account_id_of, sign_in_redirect
from .schedule_editor import ScheduleFormState

log = logging.getLogger("portal.pages.schedules")
PAGE_SIZE = 25
COLUMNS = (("On", "left", True), ("Agent", "left", True), ("Schedule", "left", False), ("Time zone", "left", False),
           ("Next run", "left", False), ("", "right", True))


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _in_zone(moment: str, zone: str) -> str:
    return f"{datetime.fromisoformat(moment).astimezone(ZoneInfo(zone)):%a %b %d, %H:%M %Z}"


class SchedulesState(rx.State):
    loading: bool = False
    error: str = ""
    page: int = 1
    has_next: bool = False
    project_options: list[dict[str, str]] = []
    delete_open: bool = False
    delete_label: str = ""
    _delete_id: str = ""
    _schedules: list[dict] = []
    _project_names: dict[str, str] = {}
    _cursors: list[str] = [""]
    _next_cursor: str = ""
    _now: datetime | None = None

    @rx.var
    def has_prev(self) -> bool:
        return self.page > 1

    @rx.var
    def rows(self) -> list[dict[str, str]]:
        now = self._now or _utcnow()
        out = []
        for s in self._schedules:
            upcoming = s["next_runs"]
            out.append({
                "id": s["id"], "agent": s["agent"], "cron": s["cron"], "description": s["description"],
                "timezone": s["timezone"], "enabled": "true" if s["enabled"] else "",
                "project": self._project_names.get(s["project_id"], s["project_id"]),
                "next": relative_time(datetime.fromisoformat(upcoming[0]), now) if upcoming else "Paused",
                "next_at": _in_zone(upcoming[0], s["timezone"]) if upcoming else "",
                "next_all": "\n".join(_in_zone(t, s["timezone"]) for t in upcoming)})
        return out

    def _fetch(self, account_id: str) -> None:
        self.error = ""
        now = _utcnow()
        try:
            page = list_schedules(get_billing(), account_id, limit=PAGE_SIZE, now=now,
                                  cursor=self._cursors[-1] or None)
        except ServiceError as exc:
            self._schedules, self.has_next, self.error = [], False, exc.message
            return
        except Exception:
            log.exception("listing schedules failed")
            self.error = "The schedules could not be loaded just now. Try again in a moment."
            return
        self._schedules = [s.to_dict() for s in page.items]
        self._next_cursor, self.has_next = page.next_cursor or "", page.next_cursor is not None
        self.page, self._now = len(self._cursors), now

    async def _reload(self):
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        self.loading = True
        yield
        self._fetch(account_id)
        self.loading = False

    @rx.event
    async def load(self):
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        self._cursors, self.loading, self.delete_open = [""], True, False
        yield
        try:
            projects = list_projects(get_billing(), account_id, limit=100, cursor=None).items
            self._project_names = {p.id: p.name for p in projects}
            self.project_options = [{"id": p.id, "name": p.name} for p in sorted(projects, key=lambda p: p.name)]
        except Exception:
            log.exception("listing projects failed")
        self._fetch(account_id)
        self.loading = False

    @rx.event
    async def refresh(self):
        account_id = await account_id_of(self)
        if account_id is not None:
            self._fetch(account_id)

    @rx.event
    async def next_page(self):
        if self._next_cursor:
            self._cursors = [*self._cursors, self._next_cursor]
            async for update in self._reload():
                yield update

    @rx.event
    async def prev_page(self):
        if len(self._cursors) > 1:
            self._cursors = self._cursors[:-1]
            async for update in self._reload():
                yield update

    @rx.event
    async def set_enabled(self, schedule_id: str, enabled: bool):
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        try:
            update_schedule(get_billing(), account_id, str(schedule_id), {"enabled": bool(enabled)}, now=_utcnow())
        except ServiceError as exc:
            self.error = exc.message
            return
        self._fetch(account_id)
        yield rx.toast.success("Schedule enabled." if enabled else "Schedule paused.")

    @rx.event
    def ask_delete(self, schedule_id: str):
        """Open the confirmation for a schedule on this page, named as the server knows it."""
        shown = next((x for x in self._schedules if x["id"] == schedule_id), None)
        if shown is not None:
            self._delete_id, self.delete_open = shown["id"], True
            self.delete_label = f"{shown['agent']} ({shown['cron']}, {shown['timezone']})"

    @rx.event
    def set_delete_open(self, value: bool):
        self.delete_open = value

    @rx.event
    async def delete_confirmed(self):
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        self.delete_open = False
        try:
            delete_schedule(get_billing(), account_id, self._delete_id)
        except ServiceError as exc:
            self.error = exc.message
            return
        self._delete_id = ""
        if len(self._cursors) > 1 and len(self._schedules) == 1:
            self._cursors = self._cursors[:-1]  # the last row of a page went: show the page before
        self._fetch(account_id)
        yield rx.toast.success("Schedule deleted.")


ON_LOAD = [SchedulesState.load, live.LiveState.watch]
live.register_refresh(routes.SCHEDULES, SchedulesState.refresh)


# -- the page ---------------------------------------------------------------------------------------------
def _next_runs(row: rx.Var) -> rx.Component:
    """The next run, relative and exact; hovering lists the next five in the schedule's zone."""
    trigger = rx.vstack(rx.text(row["next"], size="2", white_space="nowrap", class_name="next-run"),
                        rx.text(row["next_at"], size="1", color_scheme="gray", white_space="nowrap"),
                        spacing="0", cursor="default")
    return rx.hover_card.root(
        rx.hover_card.trigger(trigger),
        rx.hover_card.content(rx.text("Next runs", size="1", weight="medium", color_scheme="gray"),
                              rx.text(row["next_all"], size="2", white_space="pre-line", class_name="next-runs"),
                              side="left"))


def _row(row: rx.Var) -> rx.Component:
    enabled = row["enabled"] != ""
    return rx.table.row(
        rx.table.cell(rx.switch(checked=enabled, on_change=lambda v: SchedulesState.set_enabled(row["id"], v),
                                aria_label="Enabled", custom_attrs={"data-schedule-id": row["id"]})),
        rx.table.cell(rx.vstack(
            rx.text(row["agent"], size="2", weight="medium"),
            rx.text(row["project"], size="1", color_scheme="gray"),
            phone_only(rx.text(rx.code(row["cron"]), " ", row["description"], size="1"),
                       rx.text(rx.cond(enabled, "Next: " + row["next"].to(str), "Paused"), size="1",
                               color_scheme="gray")),
            spacing="0")),
        rx.table.cell(rx.vstack(rx.code(row["cron"], size="2", class_name="cron"),
                                rx.text(row["description"], size="1", color_scheme="gray"), spacing="1"),
                      display=WIDE_ONLY),
        cell(row["timezone"], wide_only=True),
        rx.table.cell(rx.cond(enabled, _next_runs(row),
                              rx.badge("Paused", color_scheme="gray", variant="soft", radius="full")),
                      display=WIDE_ONLY),
        rx.table.cell(rx.hstack(
            rx.icon_button(rx.icon("pencil", size=14), variant="ghost", size="2", aria_label="Edit",
                           on_click=ScheduleFormState.open_edit(row["id"])),
            rx.icon_button(rx.icon("trash-2", size=14), variant="ghost", color_scheme="red", size="2",
                           aria_label="Delete", on_click=SchedulesState.ask_delete(row["id"])),
            spacing="3", justify="end")),
        custom_attrs={"data-schedule-id": row["id"]}, align="center")


def schedules() -> rx.Component:
    only_project = rx.cond(SchedulesState.project_options.length() == 1,
                           SchedulesState.project_options[0]["id"], "")
    new_button = rx.button(rx.icon("plus", size=16), "New schedule", id="schedule-new",
                           on_click=ScheduleFormState.open_create(only_project))
    empty = no_rows("No schedules yet", "Create one to run an agent on a cron schedule.", "calendar-clock")
    return page_shell(
        "Schedules",
        error_banner(SchedulesState.error),
        data_table(COLUMNS, SchedulesState.rows, _row, loading=SchedulesState.loading, empty=empty,
                   table_id="schedules-table"),
        pager(page=SchedulesState.page, has_prev=SchedulesState.has_prev, has_next=SchedulesState.has_next,
              on_prev=SchedulesState.prev_page, on_next=SchedulesState.next_page,
              summary="Times are shown in each schedule's own time zone", pager_id="schedules-pager"),
        schedule_form_dialog(ScheduleFormState, SchedulesState.project_options),
        confirm_dialog("Delete this schedule?",
                       rx.text("No more runs will start for ", rx.text.strong(SchedulesState.delete_label),
                               ". Runs it already started are kept.", size="2"),
                       "Delete schedule", SchedulesState.delete_confirmed, open=SchedulesState.delete_open,
                       on_open_change=SchedulesState.set_delete_open, confirm_id="schedule-delete-confirm"),
        signed_in=SessionState.signed_in, display_name=SessionState.display_name, actions=new_button)
