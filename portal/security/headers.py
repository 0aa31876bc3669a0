"""The security headers of every answer, and the Content-Security-Policy the Reflex pages run under.

Pages: scripts from this origin and the inline scripts of the built pages, allowed one by one by their
SHA-256 (React Router's loader and the colour-mode script; no 'unsafe-inline' for scripts, so a script
that someone slips into a page does not run). 'unsafe-eval' is there because Reflex runs the client
actions a server handler answers with (`rx.toast`, `rx.set_clipboard`) through `eval`; it lets no
injected markup run. Styles need 'unsafe-inline': emotion (CSS-in-JS) writes <style> elements at run
time and Radix sets style attributes. The live updates' WebSocket is `connect-src`.
Other answers (JSON, assets) get `default-src 'none'`. The API docs page loads Swagger UI from its CDN.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

_INLINE_SCRIPT = re.compile(rb"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_SRC = re.compile(rb"\ssrc\s*=", re.IGNORECASE)
SWAGGER_CDN = "https://cdn.jsdelivr.net"
SWAGGER_FAVICON = "https://fastapi.tiangolo.com"
HSTS = "max-age=31536000"  # a year; no includeSubDomains: other hosts of the domain are not ours to pin

COMMON = (
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    # No path (project ids, device codes) and not even the origin leaves for another site.
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def inline_script_hashes(html: bytes) -> list[str]:
    """`'sha256-…'` of each inline <script> in a page, as a CSP names them (in order, without repeats)."""
    hashes = []
    for attributes, body in _INLINE_SCRIPT.findall(html):
        if _SRC.search(attributes):
            continue
        digest = f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
        if digest not in hashes:
            hashes.append(digest)
    return hashes


def page_csp(script_hashes, websocket_origins) -> str:
    return "; ".join((
        "default-src 'self'",
        " ".join(("script-src 'self' 'unsafe-eval'", *script_hashes)),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        # Chromium ignores (and complains about) an IPv6 literal in a source list; 'self' covers it.
        " ".join(("connect-src 'self'", *(o for o in websocket_origins if "[" not in o))),
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


def docs_csp(script_hashes) -> str:
    """The API docs page's policy: Swagger UI's script and stylesheet from its CDN, its one inline script."""
    return "; ".join((
        "default-src 'self'",
        " ".join((f"script-src 'self' {SWAGGER_CDN}", *script_hashes)),
        f"style-src 'self' 'unsafe-inline' {SWAGGER_CDN}",
        f"img-src 'self' data: {SWAGGER_FAVICON} {SWAGGER_CDN}",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


class BuiltPages:
    """The inline-script hashes of the compiled frontend's pages (its *.html files), read again when the
    build directory changes. Hashes come from the files the build wrote, never from an answer being sent,
    so no page made at request time can get a script of its own allowed."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._stamp: int | None = None
        self._hashes: tuple[str, ...] = ()

    def script_hashes(self) -> tuple[str, ...]:
        if self.directory is None:
            return ()
        try:
            stamp = os.stat(self.directory).st_mtime_ns
        except OSError:
            return ()
        if stamp != self._stamp:
            hashes: dict[str, None] = {}
            for page in sorted(self.directory.rglob("*.html")):
                hashes.update(dict.fromkeys(inline_script_hashes(page.read_bytes())))
            self._stamp, self._hashes = stamp, tuple(hashes)
        return self._hashes
