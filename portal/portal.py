"""Builds the Reflex app: pages and the HTTP API on one server."""

import reflex as rx

from . import routes
from .api.app import create_api
from .pages.home import home
from .runtime import get_billing
from .settings import get_settings

app = rx.App(api_transformer=create_api(get_billing(), get_settings()))
app.add_page(home, route=routes.HOME, title="Tollgate")
