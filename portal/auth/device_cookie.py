"""The device cookie (OWASP Authentication cheat sheet, "slow down online guessing attacks with device
cookies"): a browser that signed in to an email before is known for it, so its sign-ins are counted per
browser instead of per email, and a stranger's failures from elsewhere cannot lock the owner out.

Signed with the secret key under a salt of its own (no session cookie passes for one), HttpOnly, sent only
to /auth, kept a year. It names the emails by keyed digest, so whoever reads it learns no address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from ..settings import Settings
from .cookies import is_secure

DEVICE_COOKIE = "tollgate_device"
_SALT = "tollgate.device-cookie"
MAX_AGE_S = 365 * 86_400
MAX_EMAILS = 5  # accounts one browser is known for; the one signed in to longest ago is forgotten first
PATH = "/auth"  # sent with the sign-in and sign-up posts (routes.AUTH_*), nothing else


@dataclass(frozen=True)
class Device:
    id: str
    emails: tuple[str, ...]  # digests, most recent first


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=_SALT)


def _digest(settings: Settings, email: str) -> str:
    return hmac.new(settings.secret_key.encode(), f"{_SALT}:{email}".encode(), hashlib.sha256).hexdigest()[:32]


def read_device(settings: Settings, value: str | None) -> Device | None:
    """The device in a cookie value; None when missing, tampered with, older than a year or malformed."""
    if not value:
        return None
    try:
        data = _serializer(settings).loads(value, max_age=MAX_AGE_S)
    except BadSignature:  # also SignatureExpired, its subclass
        return None
    if not isinstance(data, dict) or not isinstance(data.get("d"), str) or not isinstance(data.get("e"), list):
        return None
    return Device(data["d"], tuple(e for e in data["e"] if isinstance(e, str))[:MAX_EMAILS])


def known_device(request: Request, settings: Settings, email: str) -> str | None:
    """The id of this browser's device cookie when it was issued for `email` (as sign-in spells it)."""
    device = read_device(settings, request.cookies.get(DEVICE_COOKIE))
    return device.id if device is not None and _digest(settings, email) in device.emails else None


def remember_device(request: Request, response: Response, settings: Settings, email: str) -> None:
    """Issue (or renew, adding `email`) this browser's device cookie after it proved the password."""
    device = read_device(settings, request.cookies.get(DEVICE_COOKIE))
    digest = _digest(settings, email)
    earlier = [e for e in device.emails if e != digest] if device else []
    value = _serializer(settings).dumps({"d": device.id if device else secrets.token_urlsafe(16),
                                         "e": [digest, *earlier][:MAX_EMAILS]})
    response.set_cookie(DEVICE_COOKIE, value, max_age=MAX_AGE_S, expires=MAX_AGE_S, path=PATH, httponly=True,
                        samesite="strict", secure=is_secure(settings))
