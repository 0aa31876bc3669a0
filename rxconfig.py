"""Reflex configuration; reads Tollgate's settings and nothing else."""

import reflex as rx

from portal.settings import get_settings

_settings = get_settings()

config = rx.Config(
    app_name="portal",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    frontend_port=_settings.port,
    backend_port=_settings.port,
    plugins=[rx.plugins.RadixThemesPlugin()],
    disable_plugins=["reflex.plugins.sitemap.SitemapPlugin"],
)
