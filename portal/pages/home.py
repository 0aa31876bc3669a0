"""The landing page until the dashboard arrives: what runs here and where to start (signed in only)."""

import reflex as rx

from .. import routes
from ..auth.forms import account_bar
from ..state import SessionState


def _step(title: str, body: rx.Component) -> rx.Component:
    return rx.card(rx.vstack(rx.heading(title, size="3"), body, spacing="2"), width="100%")


def home() -> rx.Component:
    # Nothing shows until on_load (SessionState.require_session) has checked the session.
    return rx.cond(SessionState.signed_in, _content(), rx.center(rx.spinner(size="3"), min_height="60vh"))


def _content() -> rx.Component:
    return rx.container(
        rx.vstack(
            account_bar(SessionState.display_name),
            rx.heading("Tollgate", size="8"),
            rx.text("Metering and billing for agent compute and tokens.", color_scheme="gray", size="4"),
            _step("Report usage", rx.code_block(
                'curl -X POST localhost:3000/api/v1/usage -H "Authorization: Bearer $KEY" \\\n'
                '  -H "Content-Type: application/json" \\\n'
                '  -d \'{"events":[{"id":"e1","project_id":"prj_...","kind":"compute","duration_ms":1500}]}\'',
                language="bash", width="100%")),
            _step("See your balance", rx.code_block(
                'curl localhost:3000/api/v1/account -H "Authorization: Bearer $KEY"',
                language="bash", width="100%")),
            _step("Explore the API", rx.link("Interactive API reference", href=routes.API_DOCS)),
            spacing="5",
            padding_y="8",
        ),
        size="3",
    )
