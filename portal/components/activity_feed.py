"""The activity feed: the latest events of the account, each with an icon and a relative time."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

import reflex as rx

from billing_core.services.dashboard import ActivityLine

from . import format as fmt

# kind -> (icon, color); kinds not listed get a neutral dot.
KINDS = {
    "run_finished": ("circle_check", "green"), "run_failed": ("circle_x", "red"),
    "key_created": ("key_round", "indigo"), "key_revoked": ("key_square", "gray"),
    "hmac_key_created": ("key_round", "indigo"), "hmac_key_rotated": ("rotate_cw", "indigo"),
    "credit_added": ("wallet", "green"), "pool_added": ("package_plus", "green"),
    "pool_expired": ("package_x", "amber"), "plan_changed": ("circle_arrow_up", "indigo"),
    "plan_change_scheduled": ("calendar_clock", "gray"), "alert_fired": ("bell", "amber"),
    "period_closed": ("calendar_check", "gray"), "status_changed": ("octagon_alert", "amber"),
    "project_created": ("folder_plus", "indigo"), "project_renamed": ("folder_pen", "gray"),
    "project_deleted": ("folder_x", "gray"), "account_created": ("user_plus", "indigo"),
    "signed_in": ("log_in", "gray"), "device_approved": ("smartphone", "indigo"),
    "provider_key_set": ("lock_keyhole", "indigo"), "provider_key_removed": ("lock_keyhole", "gray"),
}


def activity_rows(lines: Iterable[ActivityLine], now: datetime) -> list[dict[str, str]]:
    """Each row's text, its time in words relative to `now`, and the exact time for a tooltip."""
    return [{"id": str(a.id), "kind": a.kind, "text": a.text, "when": fmt.relative_time(a.created_at, now),
             "at": fmt.timestamp(a.created_at),
             "iso": a.created_at.astimezone(timezone.utc).isoformat()} for a in lines]


def _icon(kind: rx.Var) -> rx.Component:
    cases = [(k, rx.icon(icon, size=16, color=rx.color(color, 10))) for k, (icon, color) in KINDS.items()]
    return rx.box(rx.match(kind, *cases, rx.icon("activity", size=16, color=rx.color("gray", 10))),
                  padding_top="2px", flex_shrink="0")


def _row(a: rx.Var) -> rx.Component:
    return rx.hstack(
        _icon(a["kind"]),
        rx.text(a["text"], size="2", flex="1", min_width="0", overflow_wrap="anywhere"),
        rx.tooltip(rx.text(a["when"], size="1", color_scheme="gray", white_space="nowrap",
                           class_name="activity-when"), content=a["at"]),
        spacing="3", align="start", width="100%", padding_y="var(--space-2)",
        border_bottom=f"1px solid {rx.color('gray', 4)}", class_name="activity-row")


def activity_feed(rows: rx.Var, loaded: rx.Var, empty: rx.Component) -> rx.Component:
    body = rx.cond(rows.length() > 0, rx.vstack(rx.foreach(rows, _row), spacing="0", width="100%"), empty)
    return rx.card(
        rx.vstack(rx.heading("Activity", size="4"),
                  rx.cond(loaded, body, rx.vstack(*[rx.skeleton(height="28px", width="100%") for _ in range(5)],
                                                  width="100%")),
                  spacing="3", width="100%"),
        width="100%", id="activity")
