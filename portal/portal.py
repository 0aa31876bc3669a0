"""Builds the Reflex app: pages and the HTTP API on one server."""

import reflex as rx

from . import routes
from .api.app import create_api
from .pages.device import DeviceState, device
from .pages.home import home
from .pages.sign_in import SignInState, sign_in
from .pages.sign_up import SignUpState, sign_up
from .runtime import get_billing
from .settings import get_settings
from .state import SessionState

app = rx.App(api_transformer=create_api(get_billing(), get_settings()))
app.add_page(home, route=routes.HOME, title="Tollgate", on_load=SessionState.require_session)
app.add_page(sign_in, route=routes.SIGN_IN, title="Sign in · Tollgate", on_load=SignInState.load)
app.add_page(sign_up, route=routes.SIGN_UP, title="Create an account · Tollgate", on_load=SignUpState.load)
app.add_page(device, route=routes.DEVICE, title="Approve a CLI sign-in · Tollgate", on_load=DeviceState.load)
