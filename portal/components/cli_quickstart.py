"""CLI quick-start: install, sign in, a first command, each line with a copy button."""

from __future__ import annotations

import reflex as rx

from .key_display import copy_button


def cli_steps(public_url: str) -> list[dict[str, str]]:
    """The three commands for this portal's address (the CLI talks HTTP to it)."""
    url = public_url.rstrip("/")
    return [
        {"title": "Install the CLI", "command": "pip install tollgate"},
        {"title": "Sign in (approve the code in this browser)", "command": f"tollgate login --url {url}"},
        {"title": "See this week's usage by project", "command": "tollgate usage --group-by project"},
    ]


def _step(step: rx.Var, index: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.text(index + 1, ". ", step["title"], size="2", weight="medium"),
        rx.hstack(
            rx.code(rx.text.span("$ ", color=rx.color("gray", 9)), step["command"], size="2", variant="soft",
                    flex="1", min_width="0", white_space="pre-wrap", overflow_wrap="anywhere", padding="6px 8px",
                    class_name="cli-command"),
            copy_button(step["command"], "Copy command"),
            align="center", width="100%", spacing="2"),
        spacing="1", width="100%")


def cli_quickstart(steps: rx.Var) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(rx.icon("terminal", size=18), rx.heading("CLI quick-start", size="4"), align="center",
                      spacing="2"),
            rx.foreach(steps, _step),
            spacing="3", width="100%"),
        width="100%", id="cli")
