"""Badges for run statuses and plain labels: one colour per meaning, the same on every page."""

from __future__ import annotations

import reflex as rx

RUN_STATUS_COLORS = {"queued": "gray", "running": "blue", "succeeded": "grass", "failed": "red",
                     "cancelled": "amber"}
RUN_STATUS_ICONS = {"queued": "clock", "running": "loader", "succeeded": "circle-check", "failed": "circle-x",
                    "cancelled": "circle-slash"}


def _status_badge(status: rx.Var, text: str, color: str, icon: str) -> rx.Component:
    return rx.badge(rx.icon(icon, size=12), text, color_scheme=color, variant="soft", radius="full",
                    custom_attrs={"data-status": status})


def run_status_badge(status: rx.Var) -> rx.Component:
    """The run's status as a coloured badge; an unknown status shows as plain grey text."""
    cases = [(name, _status_badge(status, name.capitalize(), color, RUN_STATUS_ICONS[name]))
             for name, color in RUN_STATUS_COLORS.items()]
    return rx.match(status, *cases, rx.badge(status, color_scheme="gray", variant="soft", radius="full"))


def plain_badge(text: rx.Var | str, color: str = "gray") -> rx.Component:
    return rx.badge(text, color_scheme=color, variant="surface", radius="full")
