"""Where usage alerts go: an email address and a webhook URL, with the webhook's signing secret."""

from __future__ import annotations

import reflex as rx

from .confirm import confirm_dialog
from .panel import field_message
from .secret_field import secret_field


def _text_field(label: str, hint: str | rx.Var, *, value: rx.Var, on_change, problem: rx.Var, id: str,
                placeholder: str | rx.Var, input_mode: str) -> rx.Component:
    return rx.vstack(
        rx.el.label(rx.text(label, size="2", weight="medium"), html_for=id),
        rx.text(hint, size="1", color_scheme="gray"),
        # type="text": the browser's own email/URL check would pop up instead of the message beside the field.
        rx.input(value=value, on_change=on_change, id=id, name=id, type="text", input_mode=input_mode,
                 placeholder=placeholder, max_length=600, width="100%", auto_complete="off",
                 color_scheme=rx.cond(problem != "", "red", "gray")),
        field_message(problem, f"{id}-problem"),
        spacing="1", width="100%")


def webhook_secret_row(*, shown: rx.Var, revealed: rx.Var, has_secret: rx.Var, on_toggle, on_copy,
                       on_rotate) -> rx.Component:
    """The signing secret, masked until revealed, and its rotation (shown once a webhook URL was saved)."""
    return rx.cond(has_secret, rx.vstack(
        rx.text("Signing secret", size="2", weight="medium"),
        rx.text("Verify each webhook with this secret (Standard Webhooks: webhook-id, webhook-timestamp and "
                "webhook-signature headers).", size="1", color_scheme="gray"),
        secret_field(shown, revealed=revealed, on_toggle=on_toggle, on_copy=on_copy, id="webhook-secret"),
        confirm_dialog(
            "Rotate the webhook secret?",
            "Webhooks sent from now on are signed with a new secret; the current one stops verifying at once. "
            "Update your receiver with the new secret.",
            "Rotate secret", on_rotate, color_scheme="orange", confirm_id="confirm-rotate-webhook",
            trigger=rx.button(rx.icon("refresh-cw", size=14), "Rotate secret", variant="soft",
                              color_scheme="orange", id="rotate-webhook-secret", width="fit-content")),
        spacing="2", width="100%"))


def alert_delivery_form(*, email: rx.Var, email_placeholder: rx.Var, email_problem: rx.Var, on_email,
                        url: rx.Var, url_problem: rx.Var, on_url, error: rx.Var, on_submit) -> rx.Component:
    """The two destinations, checked as typed, saved together."""
    return rx.form(rx.vstack(
        _text_field("Alert email", "Leave empty to send alerts to the account owner's email.", value=email,
                    on_change=on_email, problem=email_problem, id="alert-email", placeholder=email_placeholder,
                    input_mode="email"),
        _text_field("Webhook URL", "We POST each alert here as JSON, signed. Leave empty for no webhook.",
                    value=url, on_change=on_url, problem=url_problem, id="webhook-url",
                    placeholder="https://example.com/tollgate-alerts", input_mode="url"),
        rx.cond(error != "", rx.callout(error, icon="triangle_alert", color_scheme="red", role="alert",
                                        width="100%")),
        rx.button("Save delivery", type="submit", id="save-delivery",
                  disabled=(email_problem != "") | (url_problem != "")),
        spacing="3", width="100%"), on_submit=on_submit, reset_on_submit=False, width="100%")
