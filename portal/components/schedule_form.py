"""The create/edit schedule form: fields with their messages beside them, and a live cron preview.

`check_schedule` is pure (text in, messages and a preview out); `schedule_form_dialog` draws a form
state's vars and handlers, given the state class, and fetches nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import available_timezones

import reflex as rx

from billing_core.cronspec import describe, next_fire_times, parse_cron, parse_timezone
from billing_core.errors import Invalid, ServiceError

from .format import relative_time

PREVIEW_RUNS = 3
PRESETS = (("Every 15 min", "*/15 * * * *"), ("Hourly", "0 * * * *"), ("Daily 09:00", "0 9 * * *"),
           ("Weekdays 09:00", "0 9 * * 1-5"), ("Mondays 06:00", "0 6 * * 1"))
# Offered as suggestions while typing; any IANA name is accepted.
ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/"))) + ["UTC"]


def field_message(exc: ServiceError) -> str:
    """The service's message without its field prefix ("cron: 61 is ..." -> "61 is ...")."""
    _, sep, rest = exc.message.partition(": ")
    text = rest if sep and " " not in _ else exc.message
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Check:
    cron_error: str = ""
    timezone_error: str = ""
    description: str = ""
    preview: list[str] = field(default_factory=list)


def check_schedule(cron: str, tz: str, now: datetime) -> Check:
    """What is wrong with the cron and the zone, and when a valid pair fires next (in that zone)."""
    cron_error = tz_error = description = ""
    spec = zone = None
    try:
        spec = parse_cron(cron)
        description = describe(spec)
    except Invalid as exc:
        cron_error = field_message(exc)
    try:
        zone = parse_timezone(tz)
    except Invalid as exc:
        tz_error = field_message(exc)
    preview = []
    if spec is not None and zone is not None:
        preview = [f"{t.astimezone(zone):%a %b %d, %H:%M %Z} ({relative_time(t, now)})"
                   for t in next_fire_times(spec, tz, now=now, count=PREVIEW_RUNS)]
    return Check(cron_error, tz_error, description, preview)


def payload_error(text: str) -> str:
    """Empty when the text is a JSON object (or blank), else what is wrong with it."""
    if not text.strip():
        return ""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
    return "" if isinstance(value, dict) else "The payload must be a JSON object, e.g. {\"topic\": \"news\"}."


def _message(text: rx.Var, field_id: str) -> rx.Component:
    return rx.cond(text != "", rx.text(text, size="1", color_scheme="red", id=f"{field_id}-error", role="alert"))


def _field(label: str, control: rx.Component, error: rx.Var, field_id: str, hint: rx.Component | None = None):
    return rx.vstack(
        rx.el.label(rx.text(label, size="2", weight="medium"), html_for=field_id),
        control, _message(error, field_id), hint or rx.fragment(), spacing="1", width="100%")


def _preset(label: str, cron: str, state) -> rx.Component:
    return rx.button(label, size="1", variant="soft", color_scheme="gray", type="button",
                     on_click=state.set_cron(cron))


def _cron_hint(state) -> rx.Component:
    return rx.vstack(
        rx.flex(*[_preset(label, cron, state) for label, cron in PRESETS], spacing="1", wrap="wrap"),
        rx.cond(state.description != "",
                rx.callout(rx.vstack(rx.text(state.description, weight="medium", id="cron-description"),
                                     rx.foreach(state.preview, lambda t: rx.text("Next: ", t, size="1")),
                                     spacing="1"),
                           icon="calendar-clock", color_scheme="indigo", size="1", width="100%")),
        spacing="2", width="100%")


def schedule_form_dialog(state, projects: rx.Var) -> rx.Component:
    """`state` is the form's state class (fields, messages, handlers); `projects` are {id, name} choices."""
    project = rx.select.root(
        rx.select.trigger(placeholder="Choose a project", width="100%", id="schedule-project"),
        rx.select.content(rx.foreach(projects, lambda p: rx.select.item(p["name"], value=p["id"]))),
        value=state.project_id, on_change=state.set_project)
    form = rx.vstack(
        _field("Project", project, state.project_error, "schedule-project"),
        _field("Agent", rx.input(value=state.agent, on_change=state.set_agent, id="schedule-agent",
                                 placeholder="e.g. nightly-etl", width="100%", max_length=100),
               state.agent_error, "schedule-agent"),
        _field("Cron expression", rx.input(value=state.cron, on_change=state.set_cron, id="schedule-cron",
                                           placeholder="minute hour day month weekday, e.g. 0 9 * * 1-5",
                                           width="100%", font_family="var(--code-font-family)",
                                           aria_invalid=rx.cond(state.cron_error != "", "true", "false")),
               state.cron_error, "schedule-cron", _cron_hint(state)),
        _field("Time zone", rx.input(value=state.timezone, on_change=state.set_timezone, id="schedule-timezone",
                                     placeholder="e.g. Europe/Berlin", width="100%",
                                     custom_attrs={"list": "schedule-zones"},
                                     aria_invalid=rx.cond(state.timezone_error != "", "true", "false")),
               state.timezone_error, "schedule-timezone"),
        rx.el.datalist(*[rx.el.option(value=z) for z in ZONES], id="schedule-zones"),
        _field("Payload (JSON object, optional)",
               rx.text_area(value=state.payload, on_change=state.set_payload, id="schedule-payload", rows="3",
                            width="100%", font_family="var(--code-font-family)"),
               state.payload_error, "schedule-payload"),
        rx.hstack(rx.switch(checked=state.enabled, on_change=state.set_enabled, id="schedule-enabled"),
                  rx.el.label(rx.text("Enabled: runs start at the times above", size="2"),
                              html_for="schedule-enabled"), align="center", spacing="2"),
        rx.cond(state.form_error != "", rx.callout(state.form_error, icon="triangle_alert", color_scheme="red",
                                                   width="100%", id="schedule-form-error")),
        spacing="4", width="100%")
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(state.editing, "Edit schedule", "New schedule")),
            rx.dialog.description("Runs the agent at the times of a cron expression in a time zone.", size="2",
                                  color_scheme="gray", margin_bottom="var(--space-4)"),
            form,
            rx.flex(rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                    rx.button(rx.cond(state.editing, "Save changes", "Create schedule"), on_click=state.save,
                              loading=state.saving, disabled=~state.valid, id="schedule-save"),
                    spacing="3", justify="end", margin_top="var(--space-5)"),
            max_width="34rem", id="schedule-form"),
        open=state.open, on_open_change=state.set_open)
