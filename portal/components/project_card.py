"""Project cards: name, runs today, compute and spend this period, the HMAC key's prefix, a link."""

from __future__ import annotations

from typing import Iterable

import reflex as rx

from billing_core.services.dashboard import ProjectCard

from .. import routes
from . import format as fmt


def project_href(project_id: str) -> str:
    return routes.PROJECT.replace("[project_id]", project_id)


def project_rows(cards: Iterable[ProjectCard]) -> list[dict[str, str]]:
    """What each card shows, formatted."""
    return [{
        "id": c.id, "name": c.name, "href": project_href(c.id),
        "runs_today": fmt.plural(c.runs_today, "run") + " today",
        "compute": fmt.duration(c.compute_ms_period),
        "spend": fmt.usd_cents(c.spend_micros_period),
        "spend_exact": fmt.usd(c.spend_micros_period),
        "hmac": f"{c.hmac_prefix}…{c.hmac_last4}" if c.hmac_prefix else "no key yet",
    } for c in cards]


def _figure(label: str, value: rx.Var, **props) -> rx.Component:
    return rx.vstack(rx.text(label, size="1", color_scheme="gray"), rx.text(value, size="3", weight="bold", **props),
                     spacing="0")


def _card(p: rx.Var) -> rx.Component:
    return rx.link(
        rx.card(
            rx.vstack(
                rx.hstack(rx.icon("folder", size=16), rx.text(p["name"], weight="bold", size="3", trim="both"),
                          rx.spacer(), rx.icon("chevron-right", size=16, color=rx.color("gray", 9)),
                          align="center", width="100%", spacing="2"),
                rx.text(p["runs_today"], size="2", color_scheme="gray"),
                rx.hstack(_figure("Compute this period", p["compute"], class_name="project-compute"),
                          _figure("Spend this period", p["spend"], title=p["spend_exact"],
                                  class_name="project-spend"),
                          spacing="5", wrap="wrap"),
                rx.hstack(rx.icon("key-round", size=14, color=rx.color("gray", 9)),
                          rx.code(p["hmac"], size="1", variant="ghost", color_scheme="gray"),
                          align="center", spacing="2"),
                spacing="3", width="100%"),
            width="100%", _hover={"border_color": rx.color("accent", 8)}, height="100%"),
        href=p["href"], underline="none", color="inherit", class_name="project-card", width="100%",
        data_project=p["id"])


def project_cards(projects: rx.Var, total: rx.Var[int], more: rx.Var[str], loaded: rx.Var,
                  empty: rx.Component) -> rx.Component:
    """A responsive grid of cards (one column on a phone), with a link to all when some are not shown."""
    grid = rx.grid(rx.foreach(projects, _card), columns=rx.breakpoints(initial="1", sm="2", lg="3"),
                   spacing="3", width="100%")
    return rx.vstack(
        rx.hstack(rx.heading("Projects", size="4"), rx.badge(total, variant="soft", color_scheme="gray"),
                  rx.spacer(), rx.link(more, href=routes.PROJECTS, size="2"), width="100%", align="center"),
        rx.cond(loaded, rx.cond(total > 0, grid, empty),
                rx.grid(*[rx.skeleton(height="130px") for _ in range(3)],
                        columns=rx.breakpoints(initial="1", sm="2", lg="3"), spacing="3", width="100%")),
        spacing="3", width="100%", id="projects")
