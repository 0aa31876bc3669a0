"""Errors a service raises for a person to read; the HTTP and CLI layers map `code` and `status`."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status


class NotFound(ServiceError):
    status, code = 404, "not_found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class Invalid(ServiceError):
    status, code = 422, "invalid"


class InvalidKey(ServiceError):
    """An account key that is unknown or revoked, found where the key is looked up inside a transaction."""

    status, code = 401, "invalid_key"
