"""Refuse at the door what no route should see: NUL characters (PostgreSQL text cannot hold them, and no field
needs them), in the query, the raw body and a form's decoded fields; and a JSON body nested too deep."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from billing_core.validate import MAX_JSON_DEPTH, MAX_JSON_MARKS, json_nesting, locate_json_problem

from .responses import FastJSON

MAX_BODY_BYTES = 5 * 1024 * 1024
# One pass over the body keeps what every check below reads: NUL, backslash (a `\u0000` escape), quotes
# and brackets (JSON nesting); a usage batch is then a twentieth of its size.
_NOT_MARKS = bytes(c for c in range(256) if c not in b'\x00\\"[]{}')
# Naming the field means reading the body token by token in Python, on the event loop: only for bodies of
# the size of every body but a usage batch (a larger one is answered without the field's name).
_LOCATE_MAX_BYTES = 64 * 1024
_FORM = b"application/x-www-form-urlencoded"
_MULTIPART = b"multipart/form-data"


def _refuse(status: int, code: str, message: str):
    return FastJSON({"error": {"code": code, "message": message}}, status_code=status)


def _content_type(scope) -> bytes:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower()
    return b""


def _field(path: list) -> str | None:
    """The field a deep JSON value sits in: its top-level key, and in a list of objects the item's key too
    (`payload`, `events.3.model`)."""
    if not path:
        return None
    if isinstance(path[0], str):
        if len(path) >= 3 and isinstance(path[1], int) and isinstance(path[2], str):
            return f"{path[0]}.{path[1]}.{path[2]}"
        return path[0] or None
    return f"{path[0]}.{path[1]}" if len(path) >= 2 and isinstance(path[1], str) else None


def _too_deep(body: bytes):
    found = locate_json_problem(body, wide_integers=False) if len(body) <= _LOCATE_MAX_BYTES else None
    field = _field(found[0]) if found else None
    subject = field or "The body"
    return _refuse(422, "too_deep", f"{subject} is nested deeper than {MAX_JSON_DEPTH} levels.")


async def _multipart_has_nul(scope, body: bytes) -> bool:
    async def stream():
        yield body

    try:
        form = await MultiPartParser(Headers(scope=scope), stream()).parse()
    except MultiPartException:
        return False  # a form that cannot be read is the route's to answer
    try:
        for key, value in form.multi_items():
            text = (value.filename or "") if isinstance(value, UploadFile) else value
            if "\x00" in key or "\x00" in text:
                return True
        return False
    finally:
        await form.close()


class NulGuard:
    """ASGI middleware: a request whose query, body or form fields carry a NUL gets 400, and a JSON body
    nested more than MAX_JSON_DEPTH levels gets 422 `too_deep`, before any route runs."""

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
        refusal = await self._check(scope, body) if body else None
        if refusal is not None:
            return await refusal(scope, receive, send)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    @staticmethod
    async def _check(scope, body: bytes):
        marks = body.translate(None, _NOT_MARKS)
        if b"\x00" in marks or (b"\\" in marks and b"\\u0000" in body):
            return _refuse(400, "invalid_characters", "The body contains a NUL character.")
        kind = _content_type(scope)
        if kind == _FORM:
            # A form's fields arrive percent-encoded: `%00` is a NUL once the route decodes it.
            if b"\x00" in unquote_to_bytes(body.replace(b"+", b" ")):
                return _refuse(400, "invalid_characters", "The form contains a NUL character.")
            return None
        if kind == _MULTIPART:
            if await _multipart_has_nul(scope, body):
                return _refuse(400, "invalid_characters", "The form contains a NUL character.")
            return None
        # Every route that reads JSON parses the body whatever its Content-Type says: check what looks like it.
        first = body[:1]
        if first in (b" ", b"\t", b"\r", b"\n"):
            first = body.lstrip(b" \t\r\n")[:1]
        if first in (b"{", b"["):
            nesting = json_nesting(body, marks=marks)
            if nesting == "too_deep":
                return _too_deep(body)
            if nesting == "too_large":
                return _refuse(413, "payload_too_large",
                               f"The body holds more than {MAX_JSON_MARKS} quotes and brackets.")
        return None
