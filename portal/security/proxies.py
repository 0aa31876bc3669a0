"""Believe X-Forwarded-Proto and X-Forwarded-For only from the proxies in `TOLLGATE_TRUSTED_PROXIES`.

uvicorn's ProxyHeadersMiddleware rewrites the ASGI scope's `scheme` and `client`, so everything after it
(the Secure cookie and HSTS, redirects, the rate limits' client address) sees the browser's connection,
not the proxy's. Granian, which `reflex run --env prod` uses, reads no such header itself.
"""

from __future__ import annotations

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ..settings import Settings


def trusted_proxies(settings: Settings) -> list[str]:
    return [entry.strip() for entry in settings.trusted_proxies.split(",") if entry.strip()]


def behind_proxies(app, settings: Settings):
    """The ASGI app with the trusted proxies' forwarded scheme and client address applied; as is without any."""
    trusted = trusted_proxies(settings)
    return ProxyHeadersMiddleware(app, trusted_hosts=trusted) if trusted else app
