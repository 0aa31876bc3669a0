"""/settings: alert thresholds, the user's name and email, and signing out."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import reflex as rx

from billing_core.errors import ServiceError
from billing_core.services.account_settings import (ALLOWANCE_STEPS, AlertSettings, clean_display_name,
                                                    load_settings, parse_usd_limit, rename_user,
                                                    save_alert_settings)

from .. import live, routes
from ..auth.forms import post_form
from ..components.format import relative_time, usd
from ..components.panel import field_message, field_text
from ..components.shell import error_banner, page_shell
from ..runtime import get_billing
from ..state import SessionState

log = logging.getLogger("portal.pages.settings")
UNEXPECTED = "Something went wrong on our side; please try again."
DAILY_SPEND, LOW_CREDIT = "Daily spend", "Low credit"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def usd_problem(text: str, label: str) -> str:
    try:
        parse_usd_limit(text, label)
    except ServiceError as exc:
        return field_text(exc.message, label)
    return ""


def usd_text(micros: int | None) -> str:
    """An amount as the person would type it again: 25_000_000 -> "25.00"; None -> "" (off)."""
    return "" if micros is None else usd(micros).removeprefix("$").replace(",", "")


def display_name_problem(name: str) -> str:
    try:
        clean_display_name(name)
    except ServiceError as exc:
        return field_text(exc.message, "name")
    return ""


class SettingsState(SessionState):
    loaded: bool = False
    error: str = ""
    name_input: str = ""
    name_error: str = ""
    thresholds: list[int] = list(ALLOWANCE_STEPS)
    daily_spend: str = ""
    low_credit: str = ""
    alerts_error: str = ""
    saved_text: str = ""

    @rx.var
    def daily_spend_problem(self) -> str:
        return usd_problem(self.daily_spend, DAILY_SPEND)

    @rx.var
    def low_credit_problem(self) -> str:
        return usd_problem(self.low_credit, LOW_CREDIT)

    @rx.var
    def name_problem(self) -> str:
        return display_name_problem(self.name_input)

    @rx.var
    def at_50(self) -> bool:
        return 50 in self.thresholds

    @rx.var
    def at_80(self) -> bool:
        return 80 in self.thresholds

    @rx.var
    def at_100(self) -> bool:
        return 100 in self.thresholds

    def _show_alerts(self, alerts: AlertSettings) -> None:
        self.thresholds = list(alerts.allowance_thresholds)
        self.daily_spend, self.low_credit = usd_text(alerts.daily_spend_micros), usd_text(alerts.low_credit_micros)
        self.saved_text = (f"Saved {relative_time(alerts.updated_at, _utcnow())}." if alerts.updated_at
                           else "Defaults: not saved yet.")

    @rx.event
    def load(self):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        self.error = self.name_error = self.alerts_error = ""
        try:
            found = load_settings(get_billing(), user.account_id, user.user_id)
        except ServiceError as exc:
            self.error = exc.message
            return
        except Exception:
            log.exception("loading settings failed")
            self.error = UNEXPECTED
            return
        self.name_input = found.profile.name
        self._show_alerts(found.alerts)
        self.loaded = True

    @rx.event
    def set_name_input(self, value: str):
        self.name_input, self.name_error = value[:200], ""

    @rx.event
    def set_daily_spend(self, value: str):
        self.daily_spend, self.alerts_error = value[:60], ""

    @rx.event
    def set_low_credit(self, value: str):
        self.low_credit, self.alerts_error = value[:60], ""

    @rx.event
    def toggle(self, step: int, on: bool):
        chosen = set(self.thresholds) | {step} if on else set(self.thresholds) - {step}
        self.thresholds = sorted(chosen & set(ALLOWANCE_STEPS))

    @rx.event
    def save_alerts(self, form_data: dict):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        try:
            daily = parse_usd_limit(self.daily_spend, DAILY_SPEND)
            low = parse_usd_limit(self.low_credit, LOW_CREDIT)
            saved = save_alert_settings(get_billing(), user.account_id, allowance_thresholds=self.thresholds,
                                        daily_spend_micros=daily, low_credit_micros=low, now=_utcnow())
        except ServiceError as exc:
            self.alerts_error = exc.message
            return
        self._show_alerts(saved)
        return rx.toast.success("Alert thresholds saved")

    @rx.event
    def save_name(self, form_data: dict):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        try:
            profile = rename_user(get_billing(), user.account_id, user.user_id, name=self.name_input)
        except ServiceError as exc:
            self.name_error = field_text(exc.message, "name")
            return
        self.name = self.name_input = profile.name
        return rx.toast.success("Name saved")


# -- the page -------------------------------------------------------------------------------------
def _section(title: str, hint: str, *children) -> rx.Component:
    return rx.card(rx.vstack(rx.heading(title, size="3"), rx.text(hint, size="2", color_scheme="gray"), *children,
                             spacing="3", width="100%"), width="100%", max_width="40rem")


def _money_field(label: str, hint: str, value: rx.Var, on_change, problem: rx.Var, id: str) -> rx.Component:
    return rx.vstack(
        rx.el.label(rx.text(label, size="2", weight="medium"), html_for=id),
        rx.text(hint, size="1", color_scheme="gray"),
        rx.input(rx.input.slot("$"), rx.input.slot("USD", side="right"), value=value, on_change=on_change,
                 id=id, name=id, placeholder="Off", input_mode="decimal", max_width="14rem", width="100%",
                 color_scheme=rx.cond(problem != "", "red", "gray")),
        field_message(problem, f"{id}-problem"),
        spacing="1", width="100%")


def _switch(step: int, checked: rx.Var) -> rx.Component:
    return rx.el.label(rx.hstack(rx.switch(checked=checked, on_change=lambda on: SettingsState.toggle(step, on),
                                           id=f"threshold-{step}", name=f"threshold-{step}"),
                                 rx.text(f"{step} %", size="2"), align="center", spacing="2"))


def _alerts() -> rx.Component:
    s = SettingsState
    return _section(
        "Usage alerts", "The points at which Tollgate raises a usage alert for this account.",
        rx.form(rx.vstack(
            rx.text("Allowance used", size="2", weight="medium"),
            rx.hstack(_switch(50, s.at_50), _switch(80, s.at_80), _switch(100, s.at_100), spacing="5", wrap="wrap"),
            _money_field("Daily spend", "When a day's charges (UTC) reach this amount. Leave empty for no alert.",
                         s.daily_spend, s.set_daily_spend, s.daily_spend_problem, "daily-spend"),
            _money_field("Low credit", "When the credit balance falls below this amount. Leave empty for no alert.",
                         s.low_credit, s.set_low_credit, s.low_credit_problem, "low-credit"),
            rx.cond(s.alerts_error != "", rx.callout(s.alerts_error, icon="triangle_alert", color_scheme="red",
                                                     role="alert", width="100%")),
            rx.hstack(rx.button("Save alerts", type="submit", id="save-alerts",
                                disabled=(s.daily_spend_problem != "") | (s.low_credit_problem != "")),
                      rx.text(s.saved_text, size="1", color_scheme="gray", id="alerts-saved"),
                      align="center", spacing="3", wrap="wrap"),
            spacing="4", width="100%"), on_submit=s.save_alerts, reset_on_submit=False, width="100%"))


def _profile() -> rx.Component:
    s = SettingsState
    return _section(
        "Profile", "Your name is shown in the portal and on activity you cause.",
        rx.form(rx.vstack(
            rx.el.label(rx.text("Name", size="2", weight="medium"), html_for="profile-name"),
            rx.hstack(rx.input(value=s.name_input, on_change=s.set_name_input, id="profile-name", name="name",
                               placeholder="Your name", max_length=200, flex="1", min_width="12rem"),
                      rx.button("Save name", type="submit", id="save-name", disabled=s.name_problem != ""),
                      spacing="2", width="100%", wrap="wrap"),
            field_message(s.name_problem, "profile-name-problem"),
            field_message(s.name_error, "profile-name-error"),
            rx.text("Email", size="2", weight="medium"),
            rx.text(SessionState.email, size="2", id="profile-email"),
            rx.text("Your email is how you sign in; it cannot be changed here.", size="1", color_scheme="gray"),
            spacing="2", width="100%"), on_submit=s.save_name, reset_on_submit=False, width="100%"))


def _sign_out() -> rx.Component:
    return _section("Sign out", "End this browser's session. Your other sessions and API keys keep working.",
                    post_form(rx.button(rx.icon("log-out", size=14), "Sign out", type="submit", variant="soft",
                                        color_scheme="red", id="settings-sign-out"), action=routes.AUTH_SIGN_OUT))


def settings_page() -> rx.Component:
    s = SettingsState
    return page_shell(
        "Settings",
        error_banner(s.error),
        rx.cond(s.loaded, rx.vstack(_alerts(), _profile(), _sign_out(), spacing="4", width="100%"),
                rx.center(rx.spinner(size="3"), min_height="30vh")),
        signed_in=SessionState.signed_in, display_name=SessionState.display_name)


# The tab's live watcher keeps running here, but no refresh is registered: nothing on this page moves with
# usage, and a refresh would overwrite what the person is typing.
ON_LOAD = [SettingsState.load, live.LiveState.watch]
