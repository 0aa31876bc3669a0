"""Who is calling: an account key, or the operator's edge token acting for a named account."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache

from fastapi import Request

from billing_core.errors import InvalidKey
from billing_core.keys import ACCOUNT_KEY_PREFIX, is_well_formed
from billing_core.services.auth import KeyPrincipal, authenticate_account_key
from billing_core.services.context import Billing

from .errors import ApiError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Caller:
    account_id: str | None  # None: the edge, which names the account per request
    is_edge: bool = False
    key: KeyPrincipal | None = None  # the account key and its limits (None for the edge)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def billing_of(request: Request) -> Billing:
    return request.app.state.billing


@dataclass(frozen=True)
class PendingCaller:
    """A caller whose Authorization header has passed every check that needs no database: either the
    edge token, or a well-formed account key still to be looked up (resolve, in a worker thread)."""

    is_edge: bool
    secret: str | None = field(default=None, repr=False)

    def resolve(self, billing: Billing, scope: str) -> Caller:
        """The Caller, or the same 401 as `authenticate` (a key that is unknown, revoked or expired), or 403
        scope_missing for a key without `scope` (the edge token has its own rules: no scopes); reads the
        database (call it off the event loop)."""
        if self.is_edge:
            return Caller(account_id=None, is_edge=True)
        try:
            principal = authenticate_account_key(billing, self.secret, now=utcnow())
        except InvalidKey as exc:  # expired: said so
            raise invalid_key(exc.message) from None
        if principal is None:
            raise invalid_key()
        principal.require(scope)
        return Caller(account_id=principal.account_id, key=principal)


def invalid_key(message: str = "The key is malformed, unknown or revoked.") -> ApiError:
    return ApiError(401, "invalid_key", message, {"WWW-Authenticate": "Bearer"})


def _pending(request: Request) -> PendingCaller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "Send an account key as 'Authorization: Bearer ak_live_...'.",
                       {"WWW-Authenticate": "Bearer"})
    token = token.strip()
    edge_token = request.app.state.settings.edge_token
    if edge_token and hmac.compare_digest(token.encode(), edge_token.encode()):
        return PendingCaller(is_edge=True)
    if not is_well_formed(token, ACCOUNT_KEY_PREFIX):
        raise invalid_key()  # what authenticate_account_key answers for it, without a database read
    return PendingCaller(is_edge=False, secret=token)


def method_scope(request: Request) -> str:
    """The scope a route needs by default: `read` to look, `manage` to change anything."""
    return "read" if request.method in SAFE_METHODS else "manage"


def authenticate(request: Request) -> Caller:
    """Who is calling, holding the scope the request's method needs (method_scope): so a route cannot forget
    to check one. A sync dependency, so FastAPI runs it (and its database read) in the thread pool."""
    return _pending(request).resolve(billing_of(request), method_scope(request))


@cache
def require_scope(scope: str) -> Callable[[Request], Caller]:
    """A dependency: the caller, whose key must hold `scope` (403 scope_missing), whatever the method.
    For routes whose scope is not their method's (a POST that only records usage); one function per
    scope, so FastAPI's per-request cache shares it between a route and its router."""

    def caller_with_scope(request: Request) -> Caller:
        return _pending(request).resolve(billing_of(request), scope)

    caller_with_scope.__name__ = f"caller_with_{scope.replace(':', '_')}"
    return caller_with_scope


def pending_caller(request: Request) -> PendingCaller:
    """For handlers that do all their work in one thread-pool call: the header is checked here, on the
    event loop, and the key is looked up by PendingCaller.resolve inside that call, before anything else,
    so errors come in the same order as with `authenticate` with one thread hand-off fewer per request.
    (Called by the handler itself rather than through Depends, which costs a dependency resolution.)"""
    return _pending(request)


def account_for(caller: Caller, requested: str | None) -> str:
    """The account a request acts on; the edge must name it, a key may only name its own."""
    if caller.is_edge:
        if not requested:
            raise ApiError(422, "account_required", "The edge token must name the account (account_id).")
        return requested
    if requested and requested != caller.account_id:
        raise ApiError(404, "not_found", "No such account.")
    return caller.account_id
