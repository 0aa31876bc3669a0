"""The Reflex app with the security layer outside all of it.

`api_transformer` wraps only what sits inside Reflex's outermost Starlette app, which has a CORS layer
of its own that answers preflights and adds `Access-Control-Allow-Credentials` before any transformer
sees the request; so the layer goes around what `App.__call__` returns (the ASGI app the server runs).
"""

from __future__ import annotations

from pathlib import Path

import reflex as rx
from reflex import constants
from reflex.utils import prerequisites

from ..settings import get_settings
from .middleware import SecurityMiddleware


def built_pages_dir() -> Path:
    """Where `reflex run --env prod --single-port` serves the compiled pages from (as get_frontend_mount)."""
    return prerequisites.get_web_dir() / constants.Dirs.STATIC / rx.config.get_config().frontend_path.strip("/")


class SecureApp(rx.App):
    def __call__(self):
        return SecurityMiddleware(super().__call__(), get_settings(), pages_dir=built_pages_dir())
