"""FastAPI dependencies for routes that act for a person in a browser: who is signed in, from where."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi import Request

from billing_core.services.context import Billing
from billing_core.services.identity import SignedIn, authenticate_session

from ..api.errors import ApiError
from ..security.origin import allowed_origins, from_allowed_origin
from ..settings import Settings
from .cookies import SESSION_COOKIE, unsign_token


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def billing_of(request: Request) -> Billing:
    return request.app.state.billing


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def client_ip(request: Request) -> str:
    """The browser's address: a trusted proxy's X-Forwarded-For is already applied (portal/security/proxies.py)."""
    return request.client.host if request.client else ""


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


def session_token(request: Request) -> str | None:
    return unsign_token(settings_of(request), request.cookies.get(SESSION_COOKIE))


def optional_user(request: Request) -> SignedIn | None:
    """The signed-in user, or None without a valid, live session cookie."""
    token = session_token(request)
    return authenticate_session(billing_of(request), token, now=utcnow()) if token else None


def current_user(request: Request) -> SignedIn:
    """The signed-in user; 401 otherwise. Use as `user: SignedIn = Depends(current_user)`."""
    user = optional_user(request)
    if user is None:
        raise ApiError(401, "not_signed_in", "Sign in first.")
    return user


def same_origin(request: Request) -> bool:
    """False when the request names another site as its origin (Origin, else Referer): login CSRF.

    The same rule as SecurityMiddleware's (portal/security/origin.py). A form posted without the session
    cookie and naming no origin (curl, the tests) passes here; with the cookie, the middleware refuses it.
    """
    return from_allowed_origin(request.headers.get("origin"), request.headers.get("referer"),
                               allowed_origins(settings_of(request))) is not False


def session_ttl(settings: Settings) -> timedelta:
    return timedelta(days=settings.session_days)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only, never another site (open redirect)."""
    target = target or ""
    if not target.startswith("/") or target.startswith(("//", "/\\")) or len(target) > 2000 \
            or any(ord(c) < 32 for c in target) or target.startswith("/auth/"):
        return "/"
    return target
