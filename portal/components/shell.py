"""The frame of every signed-in page: navigation, account bar, theme switch, and the page body."""

from __future__ import annotations

import reflex as rx

from .. import routes
from ..auth.forms import sign_out_button
from ..state import SessionState

NAV = (
    ("Dashboard", routes.HOME, "layout-dashboard"),
    ("Projects", routes.PROJECTS, "folder-kanban"),
    ("Runs", routes.RUNS, "play"),
    ("Schedules", routes.SCHEDULES, "calendar-clock"),
    ("Usage", routes.USAGE, "chart-column"),
    ("Billing", routes.BILLING, "credit-card"),
    ("Settings", routes.SETTINGS, "settings"),
)


def _nav_link(label: str, href: str, icon: str) -> rx.Component:
    return rx.link(
        rx.hstack(rx.icon(icon, size=16), rx.text(label, size="2", weight="medium"), spacing="2", align="center"),
        href=href, underline="none", color_scheme="gray", high_contrast=True,
        padding_x="0.75rem", padding_y="0.5rem", border_radius="6px", width="100%",
        _hover={"background_color": rx.color("gray", 3)},
        id=f"nav-{label.lower()}")


def _nav() -> rx.Component:
    return rx.vstack(*[_nav_link(*item) for item in NAV],
                     rx.cond(SessionState.is_operator, _nav_link("Admin", routes.ADMIN, "shield")),
                     spacing="1", width="100%")


def _brand() -> rx.Component:
    return rx.link(rx.hstack(rx.icon("gauge", size=20), rx.heading("Tollgate", size="4"), align="center",
                             spacing="2"), href=routes.HOME, underline="none", high_contrast=True)


def _sidebar() -> rx.Component:
    # The border runs the page's full height; the navigation inside stays in view while the page scrolls.
    return rx.box(
        rx.vstack(_brand(), rx.divider(), _nav(), spacing="4", width="100%", padding="1rem", position="sticky",
                  top="0"),
        display=["none", "none", "block"], width="14rem", min_width="14rem", align_self="stretch",
        min_height="100vh", border_right=f"1px solid {rx.color('gray', 5)}")


def _mobile_menu() -> rx.Component:
    return rx.box(
        rx.drawer.root(
            rx.drawer.trigger(rx.icon_button(rx.icon("menu"), variant="ghost", aria_label="Menu", id="menu")),
            rx.drawer.overlay(z_index="5"),
            rx.drawer.portal(rx.drawer.content(
                rx.vstack(_brand(), rx.divider(), _nav(), spacing="4", padding="1rem", width="100%"),
                width="16rem", height="100%", background_color=rx.color("gray", 1))),
            direction="left"),
        display=["block", "block", "none"])


def _top_bar(display_name: rx.Var) -> rx.Component:
    return rx.hstack(
        _mobile_menu(),
        rx.spacer(),
        rx.text(display_name, size="2", color_scheme="gray", id="signed-in-as",
                display=["none", "inline", "inline"]),
        rx.color_mode.button(variant="ghost", id="theme"),
        sign_out_button(),
        align="center", spacing="3", width="100%", padding_y="0.75rem")


def page_shell(title: str, *children: rx.Component, signed_in: rx.Var, display_name: rx.Var,
               actions: rx.Component | None = None) -> rx.Component:
    """A signed-in page: nothing renders until the session check (on_load) has passed."""
    header = rx.hstack(rx.heading(title, size="6"), rx.spacer(), actions or rx.fragment(), align="center",
                       width="100%", wrap="wrap", spacing="3")
    body = rx.hstack(
        _sidebar(),
        rx.box(
            rx.vstack(_top_bar(display_name), header, *children, spacing="5", width="100%"),
            flex="1", min_width="0", padding_x=["0.75rem", "1rem", "1.5rem"], padding_bottom="2rem", max_width="80rem"),
        spacing="0", align="start", width="100%")
    return rx.cond(signed_in, body, rx.center(rx.spinner(size="3"), min_height="60vh"))


def empty_state(icon: str, title: str, hint: str) -> rx.Component:
    return rx.center(rx.vstack(rx.icon(icon, size=28, color=rx.color("gray", 9)), rx.text(title, weight="medium"),
                               rx.text(hint, size="2", color_scheme="gray"), align="center", spacing="2"),
                     padding="1.5rem", width="100%", border=f"1px dashed {rx.color('gray', 6)}", border_radius="8px")


def error_banner(message: rx.Var) -> rx.Component:
    return rx.cond(message != "", rx.callout(message, icon="triangle_alert", color_scheme="red", role="alert",
                                             width="100%"))
