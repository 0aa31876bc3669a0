"""Secrets on screen: masked by default, revealed on request, copied with one click."""

from __future__ import annotations

import reflex as rx


def copy_button(text: str | rx.Var, *, label: str = "Copy", id: str | None = None,
                toast: str = "Copied to the clipboard") -> rx.Component:
    """Copy a value the page already shows (never a secret the page does not hold)."""
    return rx.tooltip(
        rx.icon_button(rx.icon("copy", size=14), on_click=[rx.set_clipboard(text), rx.toast.success(toast)],
                       variant="ghost", color_scheme="gray", size="1", aria_label=label, id=id),
        content=label)


def secret_field(shown: rx.Var, *, revealed: rx.Var, on_toggle, on_copy, id: str,
                 disabled: rx.Var | bool = False) -> rx.Component:
    """One line of monospace text with reveal/hide and copy buttons.

    `shown` is what the state chose to show (the masked form, or the secret once revealed); `on_copy` is a
    handler that fetches the secret on the server and answers with rx.set_clipboard, so copying works
    without revealing it on screen first.
    """
    return rx.hstack(
        # Masked it keeps to one line; revealed it wraps, so a phone shows the whole secret.
        rx.code(shown, id=id, variant="ghost", size="2", white_space=rx.cond(revealed, "normal", "nowrap"),
                overflow_wrap="anywhere", overflow="hidden", text_overflow="ellipsis", min_width="0", flex="1"),
        rx.tooltip(
            rx.icon_button(rx.cond(revealed, rx.icon("eye-off", size=14), rx.icon("eye", size=14)),
                           on_click=on_toggle, variant="ghost", color_scheme="gray", size="1",
                           aria_label=rx.cond(revealed, "Hide", "Reveal"), id=f"{id}-reveal", disabled=disabled),
            content=rx.cond(revealed, "Hide", "Reveal")),
        rx.tooltip(
            rx.icon_button(rx.icon("copy", size=14), on_click=on_copy, variant="ghost", color_scheme="gray",
                           size="1", aria_label="Copy", id=f"{id}-copy", disabled=disabled),
            content="Copy"),
        align="center", spacing="2", width="100%", min_width="0", padding_x="var(--space-3)",
        padding_y="var(--space-2)",
        border=f"1px solid {rx.color('gray', 6)}", border_radius="6px", background_color=rx.color("gray", 2))
