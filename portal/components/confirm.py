"""A confirmation dialog for destructive actions: say what will happen, then act only on a clear yes."""

from __future__ import annotations

import reflex as rx


def confirm_dialog(title: str | rx.Var, text: str | rx.Var | rx.Component, confirm_label: str | rx.Var,
                   on_confirm, *, trigger: rx.Component | None = None, open: rx.Var | None = None,
                   on_open_change=None, color_scheme: str = "red", confirm_id: str | None = None) -> rx.Component:
    """An alert dialog with Cancel and a confirm button that runs `on_confirm`.

    Opened by `trigger` (uncontrolled), or by the `open` var with `on_open_change` (controlled). Escape,
    Cancel and a click outside all close it without acting.
    """
    controlled = {"open": open, "on_open_change": on_open_change} if open is not None else {}
    description = text if isinstance(text, rx.Component) else rx.text(text, size="2")
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(trigger) if trigger is not None else rx.fragment(),
        rx.alert_dialog.content(
            rx.alert_dialog.title(title),
            rx.alert_dialog.description(description, as_child=isinstance(text, rx.Component)),
            rx.flex(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                rx.alert_dialog.action(rx.button(confirm_label, color_scheme=color_scheme, on_click=on_confirm,
                                                 id=confirm_id)),
                spacing="3", justify="end", margin_top="var(--space-4)", wrap="wrap"),
            max_width="30rem"),
        **controlled,
    )
