"""The app's own origins, and whether a request says it comes from one of them.

The public URL's origin is the app's; when it names a loopback host (`make run`: http://localhost:3000),
the other loopback names on the same scheme and port are the same app (people open http://127.0.0.1:3000
too). Another port on the same host is another origin: a browser treats it as the same site, so SameSite
cookies alone do not keep its pages out.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..settings import Settings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str | None) -> str | None:
    """`scheme://host[:port]` as a browser writes it (lower case, no default port); None unless http(s)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a port that is not a number, an unbalanced bracket
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def allowed_origins(settings: Settings) -> tuple[str, ...]:
    """The origins whose pages may use the session: the public URL's (first), plus its loopback aliases."""
    public = origin_of(settings.public_url)
    if public is None:
        raise ValueError(f"TOLLGATE_PUBLIC_URL must be an http(s) URL, not {settings.public_url!r}")
    parts = urlsplit(public)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if host not in LOOPBACK_NAMES:
        return (public,)
    suffix = f":{parts.port}" if parts.port else ""
    return (public, *(f"{parts.scheme}://{name}{suffix}" for name in LOOPBACK_NAMES if name != host))


def websocket_origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    """The ws:/wss: forms of the origins, for a CSP's connect-src (the live updates' WebSocket)."""
    return tuple(origin.replace("http", "ws", 1) for origin in origins)


def from_allowed_origin(origin: str | None, referer: str | None, allowed) -> bool | None:
    """Whether the request comes from an allowed origin by its Origin header (else its Referer's origin);
    None when it names neither. `Origin: null` (a sandboxed or privacy-hidden sender) is not allowed."""
    if origin is not None:
        return origin_of(origin) in allowed
    if referer:
        return origin_of(referer) in allowed
    return None
