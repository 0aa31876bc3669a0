"""Who is calling: an account key, or the operator's edge token acting for a named account."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime, timezone

from fastapi import Request

from billing_core.keys import ACCOUNT_KEY_PREFIX, is_well_formed
from billing_core.services.auth import authenticate_account_key
from billing_core.services.context import Billing

from .errors import ApiError


@dataclass(frozen=True)
class Caller:
    account_id: str | None  # None: the edge, which names the account per request
    is_edge: bool = False


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

    def resolve(self, billing: Billing) -> Caller:
        """The Caller, or the same 401 as `authenticate`; reads the database (call it off the event loop)."""
        if self.is_edge:
            return Caller(account_id=None, is_edge=True)
        principal = authenticate_account_key(billing, self.secret, now=utcnow())
        if principal is None:
            raise invalid_key()
        return Caller(account_id=principal.account_id)


def invalid_key() -> ApiError:
    return ApiError(401, "invalid_key", "The key is malformed, unknown or revoked.", {"WWW-Authenticate": "Bearer"})


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


def authenticate(request: Request) -> Caller:
    """Who is calling; a sync dependency, so FastAPI runs it (and its database read) in the thread pool."""
    return _pending(request).resolve(billing_of(request))


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
