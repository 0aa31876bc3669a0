"""Components for the auth pages: forms the browser itself posts, and the signed-in bar with sign-out.

(Stateless pieces; they belong with portal/components/ once that package settles.)
"""

from __future__ import annotations

import reflex as rx
from reflex_components_core.el.elements.forms import Form

from .. import routes


class PostForm(Form):
    """A `<form method="post">` the browser submits natively.

    Reflex's own form always calls preventDefault and sends its fields over the websocket, where no
    HttpOnly cookie can be set; the /auth routes need a real navigation to answer with Set-Cookie.
    """

    @classmethod
    def create(cls, *children, **props):
        props.setdefault("method", "post")
        return super(Form, cls).create(*children, **props)  # skips Form.create, which adds preventDefault


post_form = PostForm.create


def field(label: str, *, name: str, type: str = "text", **props) -> rx.Component:
    return rx.vstack(
        rx.el.label(rx.text(label, size="2", weight="medium"), html_for=name),
        rx.input(id=name, name=name, type=type, size="3", width="100%", **props),
        spacing="1", width="100%")


def error_callout(message: rx.Var) -> rx.Component:
    return rx.cond(message != "", rx.callout(message, icon="triangle_alert", color_scheme="red", role="alert",
                                             width="100%", id="form-error"))


def sign_out_button() -> rx.Component:
    return post_form(rx.button("Sign out", type="submit", variant="soft", color_scheme="gray", id="sign-out"),
                     action=routes.AUTH_SIGN_OUT)


def account_bar(display_name: rx.Var) -> rx.Component:
    """"Signed in as ..." and a sign-out button, for the top of every signed-in page."""
    return rx.hstack(
        rx.text("Signed in as ", rx.text.strong(display_name, id="signed-in-as"), size="2", color_scheme="gray"),
        sign_out_button(),
        align="center", justify="end", spacing="3", width="100%")


def auth_card(*children: rx.Component) -> rx.Component:
    # size 4 pads the card generously; on a phone size 3 leaves the fields their width.
    return rx.center(rx.card(rx.vstack(*children, spacing="4", width="100%"),
                             size=rx.breakpoints(initial="3", sm="4"), width="100%", max_width="26rem"),
                     min_height="100vh", padding="1rem")
