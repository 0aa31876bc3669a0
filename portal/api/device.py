"""POST /oauth/device/code and POST /oauth/token: the RFC 8628 device authorization grant.

These two endpoints speak OAuth, not the /api/v1 dialect: form bodies in, and errors in the
RFC 6749 section 5.2 shape `{"error": "<code>", "error_description": "..."}` that OAuth clients parse.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from authlib.oauth2.rfc6749.errors import InvalidRequestError, UnsupportedGrantTypeError
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE, SlowDownError
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from billing_core.errors import ServiceError
from billing_core.services.attempts import DEVICE_CODES_PER_IP, TOKEN_POLLS_PER_IP, Limit, RateLimited, take
from billing_core.services.device import poll_device_token, start_device_authorization

from ..auth.limits import get_limiter

from .deps import billing_of, utcnow
from .responses import FastJSON

router = APIRouter(tags=["device authorization"])

MAX_FORM_BYTES = 8 * 1024  # the largest honest body is a few hundred bytes
MAX_FORM_FIELDS = 20
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 section 5.1


class OAuthFailure(Exception):
    def __init__(self, status: int, error: str, description: str, headers: dict | None = None) -> None:
        super().__init__(description)
        self.status, self.error, self.description, self.headers = status, error, description, headers or {}


def oauth_error(exc: OAuthFailure) -> FastJSON:
    return FastJSON({"error": exc.error, "error_description": exc.description}, status_code=exc.status,
                    headers={**NO_STORE, **exc.headers})


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def check_rate(request: Request, name: str, limit: Limit) -> None:
    """Count this request against its address, in the limiter every process shares."""
    address = client_address(request)
    try:
        take(get_limiter(request.app.state.settings), [(f"oauth:{name}:ip:{address}", limit)], utcnow(), "requests")
    except RateLimited as exc:
        wait = exc.retry_after_s
        raise OAuthFailure(429, SlowDownError.error, f"Too many requests from this address; retry in {wait} s.",
                           {"Retry-After": str(wait)}) from None


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded parameters; empty ones count as absent and repeated ones are refused (RFC 6749 3.2)."""
    bad = InvalidRequestError.error
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise OAuthFailure(413, bad, f"The body may be at most {MAX_FORM_BYTES} bytes.")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM_BYTES:
            raise OAuthFailure(413, bad, f"The body may be at most {MAX_FORM_BYTES} bytes.")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if raw and media != "application/x-www-form-urlencoded":
        raise OAuthFailure(400, bad, "Send the parameters as application/x-www-form-urlencoded.")
    try:
        pairs = parse_qsl(bytes(raw).decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise OAuthFailure(400, bad, "The body is not a valid urlencoded form.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:  # named back only when it is a plain name: descriptions must stay in RFC 6749's charset
            shown = name if name.isascii() and name.replace("_", "").isalnum() and len(name) <= 40 else "a parameter"
            raise OAuthFailure(400, bad, f"The parameter {shown} may be given only once.")
        if value:
            form[name] = value
    return form


def required(form: dict[str, str], name: str) -> str:
    if name not in form:
        raise OAuthFailure(400, InvalidRequestError.error, f"The parameter {name} is required.")
    return form[name]


def from_service(exc: ServiceError) -> OAuthFailure:
    return OAuthFailure(exc.status if exc.status < 500 else 503, exc.code, exc.message)


_FORM_DOC = {"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "properties": {"client_id": {"type": "string", "example": "tollgate-cli"},
                                     "device_name": {"type": "string", "maxLength": 100}},
    "required": ["client_id"]}}}}}
_TOKEN_DOC = {"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "properties": {"grant_type": {"type": "string", "enum": [DEVICE_CODE_GRANT_TYPE]},
                                     "device_code": {"type": "string"},
                                     "client_id": {"type": "string", "example": "tollgate-cli"}},
    "required": ["grant_type", "device_code", "client_id"]}}}}}


@router.post("/oauth/device/code", summary="Start a device sign-in (RFC 8628 section 3.1)",
             openapi_extra=_FORM_DOC)
async def device_code(request: Request):
    try:
        await run_in_threadpool(check_rate, request, "device-code", DEVICE_CODES_PER_IP)  # Redis is blocking I/O
        form = await read_form(request)
        client_id = required(form, "client_id")
        start = await run_in_threadpool(
            start_device_authorization, billing_of(request), client_id=client_id,
            requester_ip=client_address(request), requester_agent=request.headers.get("user-agent", ""),
            device_name=form.get("device_name", ""), now=utcnow())
    except OAuthFailure as exc:
        return oauth_error(exc)
    except ServiceError as exc:
        return oauth_error(from_service(exc))
    verification_uri = request.app.state.settings.public_url.rstrip("/") + "/device"
    return FastJSON({"device_code": start.device_code, "user_code": start.user_code,
                     "verification_uri": verification_uri,
                     "verification_uri_complete": f"{verification_uri}?{urlencode({'user_code': start.user_code})}",
                     "expires_in": start.expires_in, "interval": start.interval}, headers=NO_STORE)


@router.post("/oauth/token", summary="Poll for the account key of a device sign-in (RFC 8628 section 3.4)",
             openapi_extra=_TOKEN_DOC)
async def token(request: Request):
    try:
        await run_in_threadpool(check_rate, request, "token", TOKEN_POLLS_PER_IP)
        form = await read_form(request)
        grant_type = required(form, "grant_type")
        if grant_type != DEVICE_CODE_GRANT_TYPE:
            raise OAuthFailure(400, UnsupportedGrantTypeError.error,
                               f"Only grant_type={DEVICE_CODE_GRANT_TYPE} is supported.")
        device_code, client_id = required(form, "device_code"), required(form, "client_id")
        key = await run_in_threadpool(poll_device_token, billing_of(request), device_code=device_code,
                                      client_id=client_id, now=utcnow())
    except OAuthFailure as exc:
        return oauth_error(exc)
    except ServiceError as exc:
        return oauth_error(from_service(exc))
    return FastJSON({"access_token": key, "token_type": "Bearer"}, headers=NO_STORE)
