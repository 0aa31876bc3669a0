"""The /auth routes the sign-in, sign-up and sign-out forms post to: they set or clear the session cookie.

A browser gets a 303 back to a page (errors as a code in the query string, which the page reads); a
client asking for JSON (`Accept: application/json`) gets JSON and the API's error shape. Rate limits
are a 429 with Retry-After for both; the browser's 429 page forwards to the form with the message.
"""

from __future__ import annotations

from html import escape
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from billing_core.errors import ServiceError
from billing_core.services import identity
from billing_core.services.identity import RateLimited, SignedIn, StartedSession

from .. import routes
from ..api.errors import error_response
from ..api.responses import FastJSON
from .cookies import clear_session_cookie, set_session_cookie
from .device_cookie import known_device, remember_device
from .deps import (billing_of, client_ip, current_user, safe_next, same_origin, session_token, session_ttl,
                   settings_of, user_agent, utcnow)
from .limits import get_limiter
from .oidc import OIDCApp

router = APIRouter(tags=["sign-in"])
FormText = Annotated[str, Form()]
FOREIGN_FORM = ServiceError("That form was posted from another site.", code="forbidden_origin", status=403)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _page_url(page: str, **params: str) -> str:
    params = {k: v for k, v in params.items() if v and not (k == "next" and v == "/")}
    return f"{page}?{urlencode(params)}" if params else page


def _user_json(user: SignedIn) -> dict:
    return {"id": user.user_id, "account_id": user.account_id, "email": user.email, "name": user.name}


def _refused(request: Request, page: str, exc: ServiceError, target: str) -> Response:
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after_s)}
        if _wants_json(request):
            return error_response(429, exc.code, exc.message, headers)
        url = escape(_page_url(page, error=exc.code, retry=str(exc.retry_after_s), next=target))
        return HTMLResponse(f'<!doctype html><meta http-equiv="refresh" content="0;url={url}">'
                            f'<title>Too many attempts</title><p>{escape(exc.message)} <a href="{url}">Back</a></p>',
                            status_code=429, headers=headers)
    if _wants_json(request):
        return error_response(exc.status, exc.code, exc.message)
    return RedirectResponse(_page_url(page, error=exc.code, next=target), status_code=303)


def _signed_in(request: Request, started: StartedSession, target: str) -> Response:
    if _wants_json(request):
        response = FastJSON({"user": _user_json(started.user),
                             "expires_at": started.expires_at.isoformat().replace("+00:00", "Z")})
    else:
        response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, settings_of(request), started.token)
    return response


# Sync routes on purpose: Argon2 takes tens of milliseconds, so they run in the thread pool.
@router.post(routes.AUTH_SIGN_IN, summary="Sign in with email and password (sets the session cookie)")
def sign_in(request: Request, email: FormText = "", password: FormText = "", next: FormText = "/"):
    target = safe_next(next)
    if not same_origin(request):
        return _refused(request, routes.SIGN_IN, FOREIGN_FORM, target)
    try:
        settings = settings_of(request)
        started = identity.sign_in(billing_of(request), get_limiter(settings), email=email, password=password,
                                   ip=client_ip(request), user_agent=user_agent(request), now=utcnow(),
                                   ttl=session_ttl(settings),
                                   device=known_device(request, settings, identity.login_email(email)))
    except ServiceError as exc:
        return _refused(request, routes.SIGN_IN, exc, target)
    response = _signed_in(request, started, target)
    remember_device(request, response, settings, started.user.email)
    return response


@router.post(routes.AUTH_SIGN_UP, summary="Create an account and its user (sets the session cookie)")
def sign_up(request: Request, email: FormText = "", password: FormText = "", name: FormText = "",
            next: FormText = "/"):
    target = safe_next(next)
    if not same_origin(request):
        return _refused(request, routes.SIGN_UP, FOREIGN_FORM, target)
    try:
        settings = settings_of(request)
        started = identity.sign_up(billing_of(request), get_limiter(settings), email=email, password=password,
                                   name=name, ip=client_ip(request), user_agent=user_agent(request), now=utcnow(),
                                   ttl=session_ttl(settings))
    except ServiceError as exc:
        return _refused(request, routes.SIGN_UP, exc, target)
    response = _signed_in(request, started, target)
    remember_device(request, response, settings, started.user.email)
    return response


@router.post(routes.AUTH_SIGN_OUT, summary="Sign out: revoke this browser's session and clear its cookie")
def sign_out(request: Request):
    if not same_origin(request):
        return _refused(request, routes.SIGN_IN, FOREIGN_FORM, "/")
    identity.end_session(billing_of(request), session_token(request) or "", now=utcnow())
    response: Response = (FastJSON({"signed_out": True}) if _wants_json(request)
                          else RedirectResponse(routes.SIGN_IN, status_code=303))
    clear_session_cookie(response, settings_of(request))
    return response


@router.get(routes.AUTH_SESSION, summary="Who this browser is signed in as (401 when nobody)")
def session(user: Annotated[SignedIn, Depends(current_user)]):
    return {"user": _user_json(user)}


router.mount(routes.OIDC_MOUNT, OIDCApp(), name="oidc")
