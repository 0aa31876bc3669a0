"""Page building blocks: a titled card and a labelled figure."""

from __future__ import annotations

import reflex as rx


def panel(title: str, *children: rx.Component, hint: str | rx.Var | rx.Component = "", id: str | None = None,
          **props) -> rx.Component:
    """A card with a heading (and a short hint or link at its right) above its content."""
    side = hint if isinstance(hint, rx.Component) else rx.text(hint, size="1", color_scheme="gray")
    return rx.card(rx.vstack(rx.hstack(rx.heading(title, size="3"), rx.spacer(), side, align="baseline",
                                       width="100%", wrap="wrap"),
                             *children, spacing="3", width="100%"), width="100%", id=id, **props)


def stat(label: str, value: rx.Var | str, *, id: str | None = None, class_name: str | None = None,
         size: str = "4") -> rx.Component:
    """A small grey label over a number with its unit."""
    return rx.vstack(rx.text(label, size="1", color_scheme="gray", white_space="nowrap"),
                     rx.text(value, size=size, weight="bold", id=id, class_name=class_name, white_space="nowrap"),
                     spacing="1", min_width="0")


def field_message(message: rx.Var, id: str | None = None) -> rx.Component:
    """A validation message under a field, shown only when there is one."""
    return rx.cond(message != "", rx.text(message, size="1", color_scheme="red", id=id, role="alert"))


def field_text(message: str, field: str) -> str:
    """A service's "field: what is wrong" as a sentence to show beside that field."""
    text = message.removeprefix(f"{field}: ")
    return text[:1].upper() + text[1:]
