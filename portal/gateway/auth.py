"""Who calls the gateway: an account key as `Authorization: Bearer ak_live_...` (OpenAI's SDK) or
`x-api-key: ak_live_...` (Anthropic's SDK); errors in OpenAI's shape, which both SDKs read."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from billing_core.errors import InvalidKey
from billing_core.key_limits import ScopeMissing
from billing_core.keys import ACCOUNT_KEY_PREFIX, is_well_formed
from billing_core.services.auth import KeyPrincipal, authenticate_account_key

from ..api.deps import billing_of, utcnow

GATEWAY_SCOPE = "gateway"


class GatewayError(Exception):
    """An error answered in OpenAI's shape `{"error": {"message", "type", "code"}}`."""

    def __init__(self, status: int, code: str, message: str, *, type_: str = "invalid_request_error",
                 headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.type, self.headers = status, code, message, type_, headers

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "type": self.type, "code": self.code}},
                            status_code=self.status, headers=self.headers)


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key", "").strip() or None


def gateway_account(request: Request) -> str:
    """The calling key's account (see gateway_key; a sync dependency: FastAPI runs its database read in the
    thread pool)."""
    return gateway_key(request).account_id


def gateway_key(request: Request) -> KeyPrincipal:
    """The calling key with its limits; it must be valid, unexpired and hold scope `gateway`."""
    secret = presented_key(request)
    principal = None
    if secret and is_well_formed(secret, ACCOUNT_KEY_PREFIX):
        try:
            principal = authenticate_account_key(billing_of(request), secret, now=utcnow())
        except InvalidKey as exc:  # expired
            raise GatewayError(401, "invalid_api_key", exc.message, type_="authentication_error") from None
    if principal is None:
        raise GatewayError(401, "invalid_api_key", "Send an account key as 'Authorization: Bearer ak_live_...' or "
                                                   "'x-api-key: ak_live_...'.", type_="authentication_error")
    try:
        principal.require(GATEWAY_SCOPE)
    except ScopeMissing as exc:
        raise GatewayError(403, "scope_missing", exc.message, type_="permission_error") from None
    return principal
