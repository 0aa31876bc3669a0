"""Account keys: masked (prefix…last4), a create dialog that shows the new secret once, revoke with a
confirmation. The page's state owns the handlers; these functions only lay out vars and wire events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

import reflex as rx

from billing_core.services.dashboard import KeyLine

from . import format as fmt


def key_rows(keys: Iterable[KeyLine], now: datetime) -> list[dict[str, str]]:
    return [{"id": k.id, "name": k.name, "masked": f"{k.prefix}…{k.last4}",
             "created": f"created {fmt.relative_time(k.created_at, now)}",
             "used": f"last used {fmt.relative_time(k.last_used_at, now)}" if k.last_used_at else "never used"}
            for k in keys]


def copy_button(text: rx.Var | str, label: str = "Copy", **props) -> rx.Component:
    return rx.tooltip(rx.icon_button(rx.icon("copy", size=14), variant="soft", size="1", aria_label=label,
                                     on_click=[rx.set_clipboard(text), rx.toast("Copied to the clipboard")],
                                     **props), content=label)


def _revoke(key: rx.Var, on_revoke) -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(rx.button("Revoke", size="1", variant="soft", color_scheme="red",
                                          class_name="revoke-key")),
        rx.alert_dialog.content(
            rx.alert_dialog.title("Revoke this key?"),
            rx.alert_dialog.description(
                rx.text("Anything using ", rx.code(key["masked"]), " (", key["name"],
                        ") stops working at once. This cannot be undone.")),
            rx.hstack(rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                      rx.alert_dialog.action(rx.button("Revoke key", color_scheme="red", id="confirm-revoke",
                                                       on_click=on_revoke(key["id"]))),
                      spacing="3", justify="end", margin_top="var(--space-4)"),
            max_width="28rem"))


def _row(key: rx.Var, on_revoke) -> rx.Component:
    return rx.hstack(
        rx.vstack(rx.hstack(rx.text(key["name"], weight="medium", size="2"),
                            rx.code(key["masked"], size="1", class_name="key-masked"), wrap="wrap", spacing="2",
                            align="center"),
                  rx.text(key["created"], " · ", key["used"], size="1", color_scheme="gray"),
                  spacing="1", min_width="0", flex="1"),
        _revoke(key, on_revoke),
        align="center", width="100%", spacing="3", padding_y="var(--space-2)", class_name="key-row",
        border_bottom=f"1px solid {rx.color('gray', 4)}")


def _create_form(on_create, error: rx.Var) -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.text("A name says where the key is used, e.g. \"laptop\" or \"ci\".", size="2"),
            rx.input(name="name", placeholder="Key name", max_length=100, required=True, width="100%",
                     id="new-key-name", auto_focus=True),
            rx.cond(error != "", rx.text(error, color_scheme="red", size="2", role="alert")),
            rx.hstack(rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                      rx.button("Create key", type="submit", id="create-key-submit"), spacing="3", justify="end",
                      width="100%"),
            spacing="3", width="100%"),
        on_submit=on_create, reset_on_submit=True)


def _secret_view(secret: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.callout("Copy this key now: it is shown only once. Only its hash is stored, so nobody can show it "
                   "to you again.", icon="triangle_alert", color_scheme="amber", width="100%"),
        rx.hstack(rx.code(secret, size="2", id="new-key-secret", overflow_wrap="anywhere", flex="1"),
                  copy_button(secret, "Copy key", id="copy-new-key"), align="center", width="100%", spacing="2"),
        rx.hstack(rx.dialog.close(rx.button("I have copied it", id="close-new-key")), justify="end", width="100%"),
        spacing="4", width="100%")


def key_display(keys: rx.Var, total: rx.Var[int], secret: rx.Var[str], dialog_open: rx.Var[bool],
                error: rx.Var[str], on_open_change, on_create, on_revoke, loaded: rx.Var) -> rx.Component:
    dialog = rx.dialog.root(
        rx.dialog.trigger(rx.button(rx.icon("plus", size=14), "Create key", size="2", id="create-key")),
        rx.dialog.content(
            rx.dialog.title(rx.cond(secret != "", "Your new account key", "Create an account key")),
            rx.cond(secret != "", _secret_view(secret), _create_form(on_create, error)),
            max_width="32rem"),
        open=dialog_open, on_open_change=on_open_change)
    listing = rx.cond(
        keys.length() > 0,
        rx.vstack(rx.foreach(keys, lambda k: _row(k, on_revoke)), spacing="0", width="100%"),
        rx.text("No active keys. Create one to use the API or the CLI.", size="2", color_scheme="gray"))
    return rx.card(
        rx.vstack(
            rx.hstack(rx.heading("Account keys", size="4"), rx.badge(total, variant="soft", color_scheme="gray"),
                      rx.spacer(), dialog, width="100%", align="center"),
            rx.cond(loaded, listing, rx.skeleton(height="48px", width="100%")),
            spacing="3", width="100%"),
        width="100%", id="keys")
