"""Who is signed in, for every page. Imports only the app's foundations (settings, runtime, routes, cookie).

The session cookie is HttpOnly: page scripts never see it, but the browser sends it with the websocket
upgrade, so the server reads it from the connection's request headers and checks it against the
database on every page load and before every privileged action.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from urllib.parse import urlencode

import reflex as rx

from billing_core.errors import NotFound, ServiceError
from billing_core.services.identity import SignedIn, authenticate_session

from . import routes
from .auth.cookies import cookie_from_header, unsign_token
from .runtime import get_billing
from .settings import get_settings

log = logging.getLogger("portal.state")

# What a person reads when something failed that is not their input's fault (the details go to the log).
UNEXPECTED = "Something went wrong on our side; please try again."


class SessionState(rx.State):
    """The signed-in user: ids in backend-only vars, what a page may show in plain ones."""

    _user_id: str = ""
    _account_id: str = ""
    email: str = ""
    name: str = ""
    is_operator: bool = False  # shows the Admin link; /admin itself checks the database again

    @rx.var
    def signed_in(self) -> bool:
        return self.email != ""

    @rx.var
    def display_name(self) -> str:
        return self.name or self.email

    def _here(self) -> str:
        url = self.router.url
        return f"{url.path}?{url.query}" if url.query else (url.path or routes.HOME)

    def _sign_in_redirect(self):
        here = self._here()
        query = "" if here == routes.HOME else "?" + urlencode({"next": here})
        return rx.redirect(routes.SIGN_IN + query, replace=True)

    def _signed_in_user(self) -> SignedIn | None:
        """Check the cookie against the database now; fills or clears the fields accordingly."""
        token = unsign_token(get_settings(), cookie_from_header(self.router.headers.cookie))
        user = authenticate_session(get_billing(), token, now=datetime.now(timezone.utc)) if token else None
        if user is None:
            self._user_id = self._account_id = self.email = self.name = ""
            self.is_operator = False
        else:
            self._user_id, self._account_id = user.user_id, user.account_id
            self.email, self.name, self.is_operator = user.email, user.name, user.is_operator
        return user

    def _act(self, action, *, what: str = "an action", on_not_found=None):
        """Run `action(account_id)` for the signed-in account (checked again now); a failure becomes a toast,
        never a traceback. `on_not_found(account_id)` lets a page re-read what vanished under it."""
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        try:
            return action(user.account_id)
        except ServiceError as exc:
            if on_not_found is not None and isinstance(exc, NotFound):
                on_not_found(user.account_id)
            return rx.toast.error(exc.message)
        except Exception:
            log.exception("%s failed", what)
            return rx.toast.error(UNEXPECTED)

    @rx.event
    def require_session(self):
        """on_load of every page but sign-in and sign-up: no valid session, no page."""
        if self._signed_in_user() is None:
            return self._sign_in_redirect()


async def account_id_of(state: rx.State) -> str | None:
    """For a page state that is not a SessionState: the signed-in account, checked against the database now."""
    user = (await state.get_state(SessionState))._signed_in_user()
    return user.account_id if user else None


async def sign_in_redirect(state: rx.State):
    """For a page state that is not a SessionState: to sign-in, coming back to this page afterwards."""
    return (await state.get_state(SessionState))._sign_in_redirect()
