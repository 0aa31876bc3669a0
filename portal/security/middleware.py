"""One ASGI layer outside everything the app serves (pages, API, the live updates' WebSocket).

In order: the trusted proxies' forwarded scheme and client address; the Host check (400 `invalid_host`);
the origin rules (a foreign CORS preflight or WebSocket is refused, a state-changing request that carries
the session cookie must come from our origin: 403 `forbidden_origin`); then, on the way out, the security
headers, `Secure` on every cookie set over HTTPS, and no `Access-Control-Allow-*` for a foreign origin
(Reflex's own CORS layers add `Access-Control-Allow-Credentials` to any answer that has an Origin).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..auth.cookies import SESSION_COOKIE, cookie_from_header
from ..settings import Settings
from .headers import API_CSP, COMMON, HSTS, BuiltPages, docs_csp, inline_script_hashes, page_csp
from .hosts import allowed_host_names, host_allowed
from .origin import allowed_origins, from_allowed_origin, origin_of, websocket_origins
from .proxies import behind_proxies

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Set in the scope by the outermost instance: an inner one (the API app's own, when Reflex serves it) passes.
_SEEN = "tollgate.security"
_COMMON = [(name.encode(), value.encode()) for name, value in COMMON]
_HSTS = (b"strict-transport-security", HSTS.encode())
_API_CSP = (b"content-security-policy", API_CSP.encode())
_REPLACED = frozenset({b"content-security-policy", b"strict-transport-security", *(n for n, _ in _COMMON)})


def _error(status: int, code: str, message: str) -> tuple[dict, dict]:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, {"type": "http.response.body", "body": body}


INVALID_HOST = _error(400, "invalid_host", "This server does not answer for that host name.")
FOREIGN_ORIGIN = _error(403, "forbidden_origin", "That request came from another site.")
NO_ORIGIN = _error(403, "forbidden_origin",
                   "A request that changes something with the session cookie must say its Origin.")


def _secure_cookie(value: bytes) -> bytes:
    attributes = {part.strip().lower() for part in value.split(b";")[1:]}
    return value if b"secure" in attributes else value + b"; Secure"


class SecurityMiddleware:
    """Wrap the app (or install with `add_middleware(SecurityMiddleware, settings=...)`); `pages_dir` is
    the compiled frontend whose inline scripts the pages' CSP allows."""

    def __init__(self, app, settings: Settings, *, pages_dir: Path | None = None,
                 docs_path: str | None = "/api/docs") -> None:
        self.app = app
        self.origins = frozenset(allowed_origins(settings))
        self.hosts = allowed_host_names(settings)
        self.docs_path = docs_path
        self.pages = BuiltPages(pages_dir)
        self._ws_origins = websocket_origins(allowed_origins(settings))
        self._page_csp: tuple[tuple[str, ...], bytes] | None = None
        self._entry = behind_proxies(self._guard, settings)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or _SEEN in scope:
            return await self.app(scope, receive, send)
        scope[_SEEN] = True
        await self._entry(scope, receive, send)

    async def _guard(self, scope, receive, send) -> None:
        host = origin = referer = cookie = authorization = preflight = None
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"referer":
                referer = value.decode("latin-1")
            elif name == b"cookie":
                cookie = value.decode("latin-1") if cookie is None else f"{cookie}; {value.decode('latin-1')}"
            elif name == b"authorization":
                authorization = value
            elif name == b"access-control-request-method":
                preflight = value
        foreign = origin is not None and origin_of(origin) not in self.origins
        if scope["type"] == "websocket":
            if not host_allowed(host, self.hosts) or foreign:
                return await self._refuse_websocket(receive, send)
            return await self.app(scope, receive, send)

        send = self._outgoing(scope, send, foreign)
        if not host_allowed(host, self.hosts):
            return await self._answer(send, INVALID_HOST)
        method = scope["method"]
        if foreign and method == "OPTIONS" and preflight is not None:
            return await self._answer(send, FOREIGN_ORIGIN)
        if method in UNSAFE_METHODS and cookie_from_header(cookie, SESSION_COOKIE) is not None \
                and not (authorization or b"")[:7].lower() == b"bearer ":
            verdict = from_allowed_origin(origin, referer, self.origins)
            if verdict is not True:
                return await self._answer(send, NO_ORIGIN if verdict is None else FOREIGN_ORIGIN)
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(send, response: tuple[dict, dict]) -> None:
        start, body = response
        await send(dict(start, headers=list(start["headers"])))
        await send(body)

    @staticmethod
    async def _refuse_websocket(receive, send) -> None:
        # Closing before accepting makes the server answer the handshake with 403.
        if (await receive())["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": 1008})

    def _csp_for_pages(self) -> bytes:
        hashes = self.pages.script_hashes()
        if self._page_csp is None or self._page_csp[0] != hashes:
            self._page_csp = (hashes, page_csp(hashes, self._ws_origins).encode())
        return self._page_csp[1]

    def _outgoing(self, scope, send, foreign: bool):
        https = scope.get("scheme") == "https"
        docs = self.docs_path is not None and scope["path"] == self.docs_path
        held: list[dict] = []

        async def outgoing(message) -> None:
            if held:  # the docs page, held until its whole body is known
                held.append(message)
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    body = b"".join(m.get("body", b"") for m in held[1:])
                    start = held[0]
                    start["headers"].append((b"content-security-policy",
                                             docs_csp(inline_script_hashes(body)).encode()))
                    await send(start)
                    await send({"type": "http.response.body", "body": body})
                return
            if message["type"] != "http.response.start":
                return await send(message)
            headers, html = [], False
            for name, value in message.get("headers", ()):
                name = name.lower()
                if name in _REPLACED or (foreign and name.startswith(b"access-control-allow-")):
                    continue
                if name == b"content-type":
                    html = value[:9].lower() == b"text/html"
                elif name == b"set-cookie" and https:
                    value = _secure_cookie(value)
                headers.append((name, value))
            headers.extend(_COMMON)
            if https:
                headers.append(_HSTS)
            if html and docs:
                # FastAPI renders the docs page from the app's own configuration, the same on every
                # request: its one inline script is allowed by the hash of what it rendered.
                held.append({**message, "headers": headers})
                return
            if message["status"] == 304:
                # A revalidation's headers replace the cached page's: no CSP, so the page keeps its own.
                return await send({**message, "headers": headers})
            csp = (b"content-security-policy", self._csp_for_pages()) if html else _API_CSP
            await send({**message, "headers": [*headers, csp]})

        return outgoing

