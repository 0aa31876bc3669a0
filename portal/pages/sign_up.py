"""/sign-up: a new account on the hobby plan, with the password rules stated up front."""

from __future__ import annotations

from urllib.parse import urlencode

import reflex as rx

from billing_core.passwords import MIN_LENGTH, RULES

from .. import routes
from ..auth.deps import safe_next
from ..auth.forms import auth_card, error_callout, field, post_form
from ..auth.messages import message_for
from ..state import SessionState


class SignUpState(SessionState):
    error: str = ""
    next_path: str = routes.HOME
    sign_in_href: str = routes.SIGN_IN

    @rx.event
    def load(self):
        params = self.router.url.query_parameters
        self.next_path = safe_next(params.get("next"))
        self.error = message_for(params.get("error"), params.get("retry"))
        self.sign_in_href = routes.SIGN_IN + (
            "" if self.next_path == routes.HOME else "?" + urlencode({"next": self.next_path}))
        if self._signed_in_user() is not None:
            return rx.redirect(self.next_path, replace=True)


def sign_up() -> rx.Component:
    return auth_card(
        rx.heading("Create your Tollgate account", size="6"),
        rx.text("Free on the hobby plan: one hour of compute a month, no card needed.", size="2",
                color_scheme="gray"),
        error_callout(SignUpState.error),
        post_form(
            rx.vstack(
                field("Email", name="email", type="email", required=True, auto_complete="email"),
                field("Name (optional)", name="name", auto_complete="name", max_length=100),
                field("Password", name="password", type="password", required=True, min_length=MIN_LENGTH,
                      auto_complete="new-password"),
                rx.box(rx.text("Your password needs:", size="1", weight="medium"),
                       rx.unordered_list(*[rx.list_item(rule) for rule in RULES], size="1"),
                       color="var(--gray-11)", id="password-rules"),
                rx.el.input(type="hidden", name="next", value=SignUpState.next_path),
                rx.button("Create account", type="submit", size="3", width="100%", id="sign-up-submit"),
                spacing="4", width="100%"),
            action=routes.AUTH_SIGN_UP, width="100%"),
        rx.text("Already have an account? ", rx.link("Sign in", href=SignUpState.sign_in_href), size="2"),
    )
