"""Refuse NUL characters at the door: PostgreSQL text cannot hold them, and no field needs them."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from .responses import FastJSON

MAX_BODY_BYTES = 5 * 1024 * 1024
_NUL_MARKERS = (b"\x00", b"\\u0000")


def _refuse(status: int, code: str, message: str):
    return FastJSON({"error": {"code": code, "message": message}}, status_code=status)


class NulGuard:
    """ASGI middleware: a request whose query or body carries a NUL gets 400 before any route runs."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if b"\x00" in unquote_to_bytes(scope.get("query_string", b"")) or b"\x00" in scope["path"].encode():
            return await _refuse(400, "invalid_characters", "The request contains a NUL character.")(
                scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return await _refuse(413, "payload_too_large", "The body is too large.")(scope, receive, send)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if any(marker in body for marker in _NUL_MARKERS):
            return await _refuse(400, "invalid_characters", "The body contains a NUL character.")(
                scope, receive, send)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)
