"""Reflex configuration. Ports come from the command line (the Makefile passes TOLLGATE_PORT).

CORS and the live updates' WebSocket (socket.io) accept only the app's own origins, from settings
(portal/security/origin.py: the public URL's, and its loopback aliases on a loopback public URL).
"""

import reflex as rx

from portal.security.origin import allowed_origins
from portal.settings import settings_or_exit

config = rx.Config(
    app_name="portal",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[rx.plugins.RadixThemesPlugin()],
    disable_plugins=[rx.plugins.SitemapPlugin],
    cors_allowed_origins=list(allowed_origins(settings_or_exit())),
)
