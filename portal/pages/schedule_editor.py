"""The schedule editor on /schedules: its own small state, checking the cron and zone as you type."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import reflex as rx

from billing_core.errors import ServiceError
from billing_core.services.schedules import create_schedule, get_schedule, update_schedule

from ..components.schedule_form import check_schedule, field_message, payload_error
from ..runtime import get_billing
from ..state import account_id_of, sign_in_redirect

# A service error's code says which field it is about; the message then sits beside that field.
FIELD_OF_CODE = {"invalid_cron": "cron", "invalid_timezone": "timezone", "invalid_agent": "agent",
                 "invalid_payload": "payload", "payload_too_large": "payload", "not_found": "project"}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ScheduleFormState(rx.State):
    open: bool = False
    editing: bool = False
    saving: bool = False
    project_id: str = ""
    agent: str = ""
    cron: str = "0 9 * * 1-5"
    timezone: str = "UTC"
    payload: str = "{}"
    enabled: bool = True
    project_error: str = ""
    agent_error: str = ""
    cron_error: str = ""
    timezone_error: str = ""
    payload_error: str = ""
    form_error: str = ""
    description: str = ""
    preview: list[str] = []
    _schedule_id: str = ""

    @rx.var
    def valid(self) -> bool:
        return bool(self.project_id and self.agent.strip()) and not (
            self.cron_error or self.timezone_error or self.payload_error or self.agent_error)

    def _check(self) -> None:
        result = check_schedule(self.cron, self.timezone, _utcnow())
        self.cron_error, self.timezone_error = result.cron_error, result.timezone_error
        self.description, self.preview = result.description, result.preview

    def _fill(self, project_id="", agent="", cron="0 9 * * 1-5", tz="UTC", payload="{}", enabled=True) -> None:
        self.project_id, self.agent, self.cron, self.timezone = project_id, agent, cron, tz
        self.payload, self.enabled = payload, enabled
        self.project_error = self.agent_error = self.payload_error = self.form_error = ""
        self._check()

    @rx.event
    def open_create(self, only_project: str = ""):
        """A blank form; with one project only, it is chosen already."""
        self._schedule_id, self.editing = "", False
        self._fill(project_id=str(only_project))
        self.open = True

    @rx.event
    async def open_edit(self, schedule_id: str):
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        try:
            s = get_schedule(get_billing(), account_id, str(schedule_id), now=_utcnow())
        except ServiceError as exc:
            yield rx.toast.error(exc.message)
            return
        self._schedule_id, self.editing = s.id, True
        self._fill(s.project_id, s.agent, s.cron, s.timezone, json.dumps(s.payload, indent=2), s.enabled)
        self.open = True

    @rx.event
    def set_open(self, value: bool):
        self.open = value

    @rx.event
    def set_project(self, value: str):
        self.project_id, self.project_error = value, ""

    @rx.event
    def set_agent(self, value: str):
        self.agent = value[:100]
        self.agent_error = "" if value.strip() else "Give the agent's name."

    @rx.event
    def set_cron(self, value: str):
        self.cron = value[:200]
        self._check()

    @rx.event
    def set_timezone(self, value: str):
        self.timezone = value[:100]
        self._check()

    @rx.event
    def set_payload(self, value: str):
        self.payload = value[:20_000]
        self.payload_error = payload_error(self.payload)

    @rx.event
    def set_enabled(self, value: bool):
        self.enabled = bool(value)

    @rx.event
    async def save(self):
        account_id = await account_id_of(self)
        if account_id is None:
            yield await sign_in_redirect(self)
            return
        self._check()
        self.payload_error, self.form_error = payload_error(self.payload), ""
        if not self.project_id:
            self.project_error = "Choose the project the agent runs in."
        if not self.valid:
            return
        self.saving = True
        yield
        values = dict(project_id=self.project_id, agent=self.agent, cron=self.cron, timezone=self.timezone,
                      enabled=self.enabled, payload=json.loads(self.payload) if self.payload.strip() else {})
        try:
            if self.editing:
                update_schedule(get_billing(), account_id, self._schedule_id, values, now=_utcnow())
            else:
                create_schedule(get_billing(), account_id, now=_utcnow(), **values)
        except ServiceError as exc:
            name = FIELD_OF_CODE.get(exc.code, "form")
            setattr(self, f"{name}_error", exc.message if name == "form" else field_message(exc))
            self.saving = False
            return
        self.saving, self.open = False, False
        # Imported here: the list page imports this module for its dialog, so a top-level import would cycle.
        from .schedules import SchedulesState

        (await self.get_state(SchedulesState))._fetch(account_id)
        yield rx.toast.success("Schedule saved." if self.editing else "Schedule created.")
