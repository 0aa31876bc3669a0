"""A project's keys on screen: its HMAC signing key (reveal, copy, rotate) and one provider key row."""

from __future__ import annotations

import reflex as rx

from .confirm import confirm_dialog
from .panel import field_message, panel
from .secret_field import secret_field


def hmac_card(*, shown: rx.Var, revealed: rx.Var, has_key: rx.Var, note: rx.Var, grace_until: rx.Var, on_toggle,
              on_copy, on_prepare_rotate, on_rotate) -> rx.Component:
    """The key masked (or revealed), and a rotation whose confirmation says until when the old key works."""
    return panel(
        "HMAC signing key",
        rx.text("Your agents sign usage reports with this key. Keep it secret.", size="2", color_scheme="gray"),
        secret_field(shown, revealed=revealed, on_toggle=on_toggle, on_copy=on_copy, id="hmac-key",
                     disabled=~has_key),
        rx.hstack(
            rx.text(note, size="1", color_scheme="gray", id="hmac-note", flex="1", min_width="12rem"),
            confirm_dialog(
                "Rotate the HMAC key?",
                rx.text("A new key is issued now. The current key keeps working for 24 hours, until ",
                        rx.text.strong(grace_until, id="grace-until"),
                        ", so you can roll the new one out to your agents; after that only the new key verifies.",
                        size="2"),
                "Rotate key", on_rotate, color_scheme="orange", confirm_id="confirm-rotate",
                trigger=rx.button(rx.icon("refresh-cw", size=14), "Rotate", variant="soft", color_scheme="orange",
                                  on_click=on_prepare_rotate, id="rotate-hmac")),
            align="center", width="100%", wrap="wrap", spacing="3"),
        id="hmac-card")


def _key_form(provider: str, label: str, *, value: rx.Var, problem: rx.Var, error: rx.Var, on_change, on_submit,
              on_cancel) -> rx.Component:
    start = "sk-ant-..." if provider == "anthropic" else "sk-..."
    return rx.form(rx.vstack(
        rx.hstack(
            rx.input(type="password", name="key", value=value, on_change=on_change, placeholder=start,
                     aria_label=f"{label} API key", id=f"{provider}-key-input", auto_complete="off", flex="1",
                     min_width="12rem"),
            rx.button("Save", type="submit", id=f"{provider}-key-save", disabled=(value == "") | (problem != "")),
            rx.button("Cancel", type="button", variant="soft", color_scheme="gray", on_click=on_cancel),
            spacing="2", width="100%", wrap="wrap"),
        field_message(problem, f"{provider}-key-problem"),
        field_message(error, f"{provider}-key-error"),
        spacing="2", width="100%"), on_submit=on_submit, reset_on_submit=False, width="100%")


def provider_key_row(provider: str, label: str, *, masked: rx.Var, updated: rx.Var, has_key: rx.Var,
                     editing: rx.Var, value: rx.Var, problem: rx.Var, error: rx.Var, on_edit, on_cancel, on_change,
                     on_submit, on_remove) -> rx.Component:
    """The provider's key masked (`sk-ant-...abcd`) with Set/Replace and Remove (confirmed), and its form."""
    return rx.vstack(
        rx.hstack(
            rx.text(label, weight="medium", size="2", min_width="5.5rem"),
            rx.cond(has_key,
                    rx.hstack(rx.code(masked, id=f"{provider}-masked", variant="ghost"),
                              rx.text("updated ", updated, size="1", color_scheme="gray"),
                              spacing="2", align="center", wrap="wrap"),
                    rx.text("Not set: runs use platform keys, paid from credit", size="1", color_scheme="gray",
                            id=f"{provider}-masked")),
            rx.spacer(),
            rx.button(rx.cond(has_key, "Replace", "Set key"), size="1", variant="soft", on_click=on_edit,
                      id=f"{provider}-key-edit"),
            rx.cond(has_key, confirm_dialog(
                f"Remove the {label} key?",
                "Runs of this project then use platform keys again, and their tokens are paid from credit.",
                "Remove key", on_remove, confirm_id=f"confirm-remove-{provider}",
                trigger=rx.button("Remove", size="1", variant="soft", color_scheme="red",
                                  id=f"{provider}-key-remove"))),
            align="center", spacing="3", width="100%", wrap="wrap"),
        rx.cond(editing, _key_form(provider, label, value=value, problem=problem, error=error, on_change=on_change,
                                   on_submit=on_submit, on_cancel=on_cancel)),
        spacing="2", width="100%")
