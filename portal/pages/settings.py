"""/settings: alert thresholds, where alerts go (email, signed webhook), the user's name and email, and signing
out."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import reflex as rx

from billing_core.errors import ServiceError
from billing_core.services.account_settings import (ALLOWANCE_STEPS, AlertDelivery, AlertSettings,
                                                    check_alert_email, check_webhook_url, clean_display_name,
                                                    load_settings, parse_usd_limit, rename_user,
                                                    reveal_webhook_secret, rotate_webhook_secret,
                                                    save_alert_delivery, save_alert_settings)

from .. import live, routes
from ..auth.forms import post_form
from ..components.alert_delivery import alert_delivery_form, webhook_secret_row
from ..components.format import relative_time, usd
from ..components.panel import field_message, field_text
from ..components.shell import error_banner, page_shell
from ..runtime import get_billing
from ..settings import get_settings
from ..state import UNEXPECTED, SessionState

log = logging.getLogger("portal.pages.settings")
DAILY_SPEND, LOW_CREDIT = "Daily spend", "Low credit"
SECRET_MASK = "whsec_" + "•" * 24


def loopback_allowed() -> bool:
    """http:// and localhost webhooks are for development and tests, never a production install."""
    return get_settings().env != "prod"


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


def delivery_problem(check, text: str, field: str) -> str:
    try:
        check(text)
    except ServiceError as exc:
        return field_text(exc.message, field)
    return ""


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
    alert_email: str = ""
    default_email: str = ""
    webhook_url: str = ""
    has_webhook_secret: bool = False
    webhook_secret: str = ""  # the secret in clear while revealed; "" when hidden
    delivery_error: str = ""

    @rx.var
    def alert_email_problem(self) -> str:
        return delivery_problem(check_alert_email, self.alert_email, "alert_email")

    @rx.var
    def webhook_url_problem(self) -> str:
        return delivery_problem(lambda url: check_webhook_url(url, allow_loopback=loopback_allowed()),
                                self.webhook_url, "webhook_url")

    @rx.var
    def webhook_secret_shown(self) -> str:
        return self.webhook_secret or SECRET_MASK

    @rx.var
    def webhook_revealed(self) -> bool:
        return self.webhook_secret != ""

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

    def _show_delivery(self, delivery: AlertDelivery | None) -> None:
        if delivery is None:
            return
        self.alert_email, self.default_email = delivery.alert_email or "", delivery.default_email
        self.webhook_url, self.has_webhook_secret = delivery.webhook_url or "", delivery.has_webhook_secret


    @rx.event
    def load(self):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        self.error = self.name_error = self.alerts_error = self.delivery_error = self.webhook_secret = ""
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
        self._show_delivery(found.delivery)
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
    def set_alert_email(self, value: str):
        self.alert_email, self.delivery_error = value[:400], ""

    @rx.event
    def set_webhook_url(self, value: str):
        self.webhook_url, self.delivery_error = value[:600], ""

    @rx.event
    def save_delivery(self, form_data: dict):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        try:
            saved = save_alert_delivery(get_billing(), user.account_id, alert_email=self.alert_email,
                                        webhook_url=self.webhook_url, now=_utcnow(),
                                        allow_loopback=loopback_allowed())
        except ServiceError as exc:
            self.delivery_error = exc.message
            return
        except Exception:
            log.exception("saving alert delivery failed")
            self.delivery_error = UNEXPECTED
            return
        self._show_delivery(saved)
        return rx.toast.success("Alert delivery saved")

    @rx.event
    def toggle_webhook_secret(self):
        if self.webhook_secret:
            self.webhook_secret = ""
            return

        def reveal(account_id):
            self.webhook_secret = reveal_webhook_secret(get_billing(), account_id)
        return self._act(reveal)

    @rx.event
    def copy_webhook_secret(self):
        def copy(account_id):
            secret = self.webhook_secret or reveal_webhook_secret(get_billing(), account_id)
            return [rx.set_clipboard(secret), rx.toast.success("Webhook secret copied")]
        return self._act(copy)

    @rx.event
    def rotate_secret(self):
        def rotate(account_id):
            self.webhook_secret = rotate_webhook_secret(get_billing(), account_id, now=_utcnow())
            self.has_webhook_secret = True
            return rx.toast.success("Webhook secret rotated; the new one is shown")
        return self._act(rotate)

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


def _delivery() -> rx.Component:
    s = SettingsState
    return _section(
        "Alert delivery", "Every alert appears in the activity feed; it is also emailed, and posted to your webhook.",
        alert_delivery_form(email=s.alert_email, email_placeholder=s.default_email,
                            email_problem=s.alert_email_problem, on_email=s.set_alert_email, url=s.webhook_url,
                            url_problem=s.webhook_url_problem, on_url=s.set_webhook_url, error=s.delivery_error,
                            on_submit=s.save_delivery),
        webhook_secret_row(shown=s.webhook_secret_shown, revealed=s.webhook_revealed,
                           has_secret=s.has_webhook_secret, on_toggle=s.toggle_webhook_secret,
                           on_copy=s.copy_webhook_secret, on_rotate=s.rotate_secret))


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
        rx.cond(s.loaded, rx.vstack(_alerts(), _delivery(), _profile(), _sign_out(), spacing="4", width="100%"),
                rx.center(rx.spinner(size="3"), min_height="30vh")),
        signed_in=SessionState.signed_in, display_name=SessionState.display_name)


# The tab's live watcher keeps running here, but no refresh is registered: nothing on this page moves with
# usage, and a refresh would overwrite what the person is typing.
ON_LOAD = [SettingsState.load, live.LiveState.watch]
