"""Who is calling: an account key, or the operator's edge token acting for a named account."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timezone

from fastapi import Request

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


def authenticate(request: Request) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "Send an account key as 'Authorization: Bearer ak_live_...'.",
                       {"WWW-Authenticate": "Bearer"})
    token = token.strip()
    edge_token = request.app.state.settings.edge_token
    if edge_token and hmac.compare_digest(token.encode(), edge_token.encode()):
        return Caller(account_id=None, is_edge=True)
    principal = authenticate_account_key(billing_of(request), token, now=utcnow())
    if principal is None:
        raise ApiError(401, "invalid_key", "The key is malformed, unknown or revoked.",
                       {"WWW-Authenticate": "Bearer"})
    return Caller(account_id=principal.account_id)


def account_for(caller: Caller, requested: str | None) -> str:
    """The account a request acts on; the edge must name it, a key may only name its own."""
    if caller.is_edge:
        if not requested:
            raise ApiError(422, "account_required", "The edge token must name the account (account_id).")
        return requested
    if requested and requested != caller.account_id:
        raise ApiError(404, "not_found", "No such account.")
    return caller.account_id
