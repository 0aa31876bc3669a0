"""The one error shape, `{"error": {"code", "message"}}`, for every failure the API can answer."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from .responses import FastJSON
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from billing_core.errors import ServiceError

log = logging.getLogger("tollgate.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_response(status: int, code: str, message: str, headers: dict | None = None,
                   extra: dict | None = None) -> FastJSON:
    return FastJSON({"error": {"code": code, "message": message, **(extra or {})}}, status_code=status,
                    headers=headers)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
               422: "invalid_request", 429: "rate_limited"}


def describe_validation(exc: RequestValidationError) -> tuple[int, str, str]:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return 400, "malformed_json", "The body is not valid JSON."
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    message = first.get("msg", "invalid request").removeprefix("Value error, ")
    return 422, "invalid_request", f"{where}: {message}." if where else f"{message}."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError):
        return error_response(exc.status, exc.code, exc.message, extra=getattr(exc, "extra", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        return error_response(*describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError):
        # A connection the database dropped (a restart, a failover): SQLAlchemy has already discarded the
        # pool's connections, so the retry the client makes gets a fresh one. Anything else is a bug.
        if exc.connection_invalidated:
            log.warning("database connection lost on %s %s: %s", request.method, request.url.path, exc.orig)
            return error_response(503, "database_unavailable", "The database connection was lost; retry.",
                                  {"Retry-After": "1"})
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
