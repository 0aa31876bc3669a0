"""Reflex configuration. Ports come from the command line (the Makefile passes TOLLGATE_PORT)."""

import reflex as rx

config = rx.Config(
    app_name="portal",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    plugins=[rx.plugins.RadixThemesPlugin()],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
