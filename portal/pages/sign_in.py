"""/sign-in: email and password (posted to /auth/sign-in), and single sign-on when OIDC is configured."""

from __future__ import annotations

from urllib.parse import urlencode

import reflex as rx

from .. import routes
from ..auth.deps import safe_next
from ..auth.forms import auth_card, error_callout, field, post_form
from ..auth.messages import message_for
from ..auth.oidc import button_label
from ..settings import get_settings
from ..state import SessionState


class SignInState(SessionState):
    error: str = ""
    next_path: str = routes.HOME
    oidc_label: str = ""  # empty: OIDC is not configured, no button
    oidc_href: str = routes.OIDC_START
    sign_up_href: str = routes.SIGN_UP  # carries `next`, so signing up also ends where the person was going

    @rx.event
    def load(self):
        """Read what the /auth routes put in the URL; someone already signed in goes on at once."""
        params = self.router.url.query_parameters
        self.next_path = safe_next(params.get("next"))
        self.error = message_for(params.get("error"), params.get("retry"))
        self.oidc_label = button_label(get_settings())
        query = "" if self.next_path == routes.HOME else "?" + urlencode({"next": self.next_path})
        self.oidc_href, self.sign_up_href = routes.OIDC_START + query, routes.SIGN_UP + query
        if self._signed_in_user() is not None:
            return rx.redirect(self.next_path, replace=True)


def sign_in() -> rx.Component:
    return auth_card(
        rx.heading("Sign in to Tollgate", size="6"),
        error_callout(SignInState.error),
        post_form(
            rx.vstack(
                field("Email", name="email", type="email", required=True, auto_complete="email"),
                field("Password", name="password", type="password", required=True,
                      auto_complete="current-password"),
                rx.el.input(type="hidden", name="next", value=SignInState.next_path),
                rx.button("Sign in", type="submit", size="3", width="100%", id="sign-in-submit"),
                spacing="4", width="100%"),
            action=routes.AUTH_SIGN_IN, width="100%"),
        rx.cond(SignInState.oidc_label != "", rx.vstack(
            rx.separator(size="4"),
            # Document navigation, not a client-side route change: the browser must leave for the provider.
            rx.button(rx.link(SignInState.oidc_label, href=SignInState.oidc_href, reload_document=True),
                      as_child=True, size="3", variant="outline", width="100%", id="oidc-start"),
            width="100%", spacing="4")),
        rx.text("New to Tollgate? ", rx.link("Create an account", href=SignInState.sign_up_href), size="2"),
    )
