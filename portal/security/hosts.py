"""Which Host names the app answers to: the public URL's, `TOLLGATE_ALLOWED_HOSTS`, and the loopback names.

A request for another name is refused before any route runs, so no absolute URL (a redirect, a link) is
ever built from a Host an attacker chose, and a DNS-rebinding page (its own name pointed at this machine)
is answered by nothing. Loopback names stay allowed: no rebinding can make a browser send them for another
site, and a health check or `curl` on the machine itself uses them. The port is not compared: behind a
proxy the Host keeps the public port, not the one the app listens on.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ..settings import Settings
from .origin import LOOPBACK_NAMES

ANY_HOST = "*"
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::[0-9]{1,5})?")


def allowed_host_names(settings: Settings) -> frozenset[str] | None:
    """The host names accepted (lower case, IPv6 in brackets); None when `*` turns the check off."""
    extra = {name.strip().lower().rstrip(".") for name in settings.allowed_hosts.split(",") if name.strip()}
    if ANY_HOST in extra:
        return None
    public = urlsplit(settings.public_url).hostname or ""
    public = f"[{public}]" if ":" in public else public
    return frozenset({public, *extra, *LOOPBACK_NAMES})


def host_name(header: str | None) -> str | None:
    """The name in a Host header (lower case, no port, no trailing dot); None when it is not a host[:port]."""
    match = _HOST.fullmatch(header or "")
    return match.group(1).lower().rstrip(".") if match else None


def host_allowed(header: str | None, names: frozenset[str] | None) -> bool:
    return names is None or host_name(header) in names
