"""The session cookie: a random token signed with itsdangerous, HttpOnly, SameSite=Lax, Secure over https.

Secure here when the public URL is https; and SecurityMiddleware adds Secure to every cookie set in answer
to a request that came over HTTPS (directly, or by a trusted proxy's X-Forwarded-Proto), whatever the URL.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.responses import Response

from ..settings import Settings

SESSION_COOKIE = "tollgate_session"
# A salt of its own, so no other value signed with the secret key can pass as a session cookie.
_SALT = "tollgate.session-cookie"


def is_secure(settings: Settings) -> bool:
    """Whether every cookie is Secure whatever the request: the site is only ever served over https."""
    return settings.public_url.lower().startswith("https://")


def max_age_s(settings: Settings) -> int:
    return settings.session_days * 86_400


def sign_token(settings: Settings, token: str) -> str:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT).dumps(token)


def unsign_token(settings: Settings, value: str | None) -> str | None:
    """The token inside a cookie value; None when it is missing, tampered with or older than a session."""
    if not value:
        return None
    try:
        token = URLSafeTimedSerializer(settings.secret_key, salt=_SALT).loads(value, max_age=max_age_s(settings))
    except BadSignature:  # also SignatureExpired, its subclass
        return None
    return token if isinstance(token, str) else None


def cookie_from_header(header: str | None, name: str = SESSION_COOKIE) -> str | None:
    """One cookie's value from a raw Cookie header, tolerant of other apps' malformed cookies."""
    for part in (header or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, sign_token(settings, token), max_age=max_age_s(settings),
                        expires=max_age_s(settings), path="/", httponly=True, samesite="lax",
                        secure=is_secure(settings))


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_secure(settings))
