"""/device: a signed-in person approves or denies a CLI sign-in (RFC 8628) by its user code.

The page shows who is asking (client, device name, address, user agent, time) before anything is
approved, because a code can be phished: someone else's terminal may have started the request.
"""

from __future__ import annotations

from datetime import datetime, timezone

import reflex as rx

from billing_core.errors import ServiceError
from billing_core.services.device import DeviceRequest, approve_device, deny_device, lookup_user_code
from billing_core.services.identity import SignedIn, code_entry_attempt

from ..auth.forms import account_bar, error_callout
from ..auth.limits import get_limiter
from ..runtime import get_billing
from ..state import SessionState

STATUS_TEXT = {"approved": "This request was already approved.", "used": "This request was already used.",
               "denied": "This request was denied.", "expired": "This code has expired. Run `tollgate login` again."}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DeviceState(SessionState):
    user_code: str = ""
    message: str = ""  # what went wrong, for the person
    done: str = ""  # the outcome of approve or deny
    _code: str = ""  # the request on screen; approve/deny act on it, not on anything the browser sends
    shown_code: str = ""
    client_id: str = ""
    device_name: str = ""
    requester_ip: str = ""
    requester_agent: str = ""
    requested_at: str = ""
    expires_at: str = ""
    status: str = ""

    @rx.var
    def status_text(self) -> str:
        return STATUS_TEXT.get(self.status, "")

    def _show(self, request: DeviceRequest | None) -> None:
        self._code = request.user_code if request else ""
        self.shown_code = self._code
        self.client_id = request.client_id if request else ""
        self.device_name = request.device_name if request else ""
        self.requester_ip = request.requester_ip if request else ""
        self.requester_agent = request.requester_agent if request else ""
        self.requested_at = request.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") if request else ""
        self.expires_at = request.expires_at.strftime("%H:%M:%S UTC") if request else ""
        self.status = request.status if request else ""

    def _lookup(self, user: SignedIn, user_code: str) -> None:
        self.message = self.done = ""
        self._show(None)
        now = _utcnow()
        try:  # every code typed counts, before the lookup: user codes are short, so guessing must stay slow
            code_entry_attempt(get_limiter(), user_id=user.user_id, ip=self.router.session.client_ip, now=now)
        except ServiceError as exc:  # too many (RateLimited), or the limiter's store is down
            self.message = exc.message
            return
        request = lookup_user_code(get_billing(), user_code, now)
        if request is None:
            self.message = "No sign-in request has this code. Check the code shown in your terminal."
        self._show(request)

    @rx.event
    def load(self):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        self.message = self.done = ""
        self._show(None)
        self.user_code = (self.router.url.query_parameters.get("user_code") or "")[:64]
        if self.user_code:
            self._lookup(user, self.user_code)

    @rx.event
    def set_code(self, value: str):
        self.user_code = value[:64]

    @rx.event
    def lookup(self, form_data: dict):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        self._lookup(user, str(form_data.get("user_code", "")))

    @rx.event
    def approve(self):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        try:
            approve_device(get_billing(), self._code, user_id=user.user_id, account_id=user.account_id,
                           now=_utcnow())
        except ServiceError as exc:
            self.message = exc.message
            return
        self._show(None)
        self.done = "Approved. Go back to your terminal: the CLI is now signed in to your account."

    @rx.event
    def deny(self):
        if self._signed_in_user() is None:
            return self._sign_in_redirect()
        try:
            deny_device(get_billing(), self._code, now=_utcnow())
        except ServiceError as exc:
            self.message = exc.message
            return
        self._show(None)
        self.done = "Denied. The CLI that asked will not get access."


def _row(label: str, value: rx.Var) -> rx.Component:
    return rx.data_list.item(rx.data_list.label(label), rx.data_list.value(value))


def _request_card() -> rx.Component:
    return rx.card(rx.vstack(
        rx.heading("A CLI wants to sign in to your account", size="4"),
        rx.data_list.root(
            _row("Code", rx.code(DeviceState.shown_code)),
            _row("Client", DeviceState.client_id),
            _row("Device", rx.cond(DeviceState.device_name != "", DeviceState.device_name, "(not named)")),
            _row("From address", DeviceState.requester_ip),
            _row("User agent", rx.text(DeviceState.requester_agent, size="1", font_family="monospace")),
            _row("Requested", DeviceState.requested_at),
            _row("Expires", DeviceState.expires_at)),
        rx.cond(DeviceState.status == "pending",
                rx.hstack(rx.button("Approve", on_click=DeviceState.approve, color_scheme="green", id="approve"),
                          rx.button("Deny", on_click=DeviceState.deny, color_scheme="red", variant="soft",
                                    id="deny"), spacing="3"),
                rx.text(DeviceState.status_text, color_scheme="gray")),
        rx.text("Approve only if you just ran `tollgate login` yourself and the code matches your terminal.",
                size="1", color_scheme="gray"),
        spacing="4"), width="100%", id="device-request")


def device() -> rx.Component:
    return rx.cond(DeviceState.signed_in, rx.container(rx.vstack(
        account_bar(DeviceState.display_name),
        rx.heading("Approve a CLI sign-in", size="7"),
        rx.text("Enter the code that `tollgate login` printed in your terminal.", color_scheme="gray"),
        rx.form(rx.hstack(
            rx.input(name="user_code", value=DeviceState.user_code, on_change=DeviceState.set_code,
                     placeholder="XXXX-XXXX", size="3", max_length=64, auto_complete="off", id="user-code"),
            rx.button("Continue", type="submit", size="3"), spacing="3"),
            on_submit=DeviceState.lookup),
        error_callout(DeviceState.message),
        rx.cond(DeviceState.done != "", rx.callout(DeviceState.done, icon="circle_check", color_scheme="green",
                                                   width="100%", id="device-done")),
        rx.cond(DeviceState.shown_code != "", _request_card()),
        spacing="5", padding_y="6"), size="2"), rx.center(rx.spinner(size="3"), min_height="60vh"))
