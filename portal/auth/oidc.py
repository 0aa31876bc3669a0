"""OpenID Connect sign-in with authlib's Starlette client: code flow, PKCE (S256), state and nonce checked.

Configured by settings alone (issuer, client id, client secret). authlib keeps the flow's state, nonce
and code verifier in `request.session`, so the two routes sit behind Starlette's SessionMiddleware in
an ASGI app of their own, mounted at /auth/oidc: the rest of the API never sees that middleware.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from urllib.parse import urlencode

from authlib.integrations.starlette_client import OAuth, OAuthError
from joserfc.errors import JoseError
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from billing_core.errors import ServiceError
from billing_core.services.identity import sign_in_with_oidc

from .. import routes
from ..settings import Settings
from .cookies import is_secure, set_session_cookie
from .deps import billing_of, client_ip, safe_next, session_ttl, settings_of, user_agent, utcnow

log = logging.getLogger("tollgate.auth.oidc")
NAME = "tollgate_oidc"
FLOW_COOKIE = "tollgate_oidc_flow"
FLOW_MAX_AGE_S = 600  # a person has ten minutes at the provider
SCOPE = "openid email profile"


def oidc_enabled(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def button_label(settings: Settings) -> str:
    """The sign-in page's single sign-on button; empty (no button) when OIDC is not configured."""
    return f"Sign in with {settings.oidc_name}" if oidc_enabled(settings) else ""


def callback_url(settings: Settings) -> str:
    # From settings, not from the request's Host header: the provider only accepts the registered URL.
    return settings.public_url.rstrip("/") + routes.OIDC_CALLBACK


def _flow_secret(settings: Settings) -> str:
    # Its own key, derived from the secret key, so the flow cookie and the session cookie never share one.
    return hmac.new(settings.secret_key.encode(), b"tollgate.oidc-flow", hashlib.sha256).hexdigest()


def _client(request: Request):
    """The registered authlib client for this app's settings (metadata and keys are cached inside it)."""
    state = request.app.state
    client = getattr(state, "oidc_client", None)
    if client is None:
        settings = settings_of(request)
        oauth = OAuth()
        oauth.register(NAME, client_id=settings.oidc_client_id, client_secret=settings.oidc_client_secret,
                       server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
                       client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"})
        client = state.oidc_client = oauth.create_client(NAME)
    return client


def _back_to_sign_in(code: str) -> RedirectResponse:
    return RedirectResponse(f"{routes.SIGN_IN}?{urlencode({'error': code})}", status_code=303)


async def start(request: Request):
    if not oidc_enabled(settings_of(request)):
        return _back_to_sign_in("oidc_unavailable")
    request.session["next"] = safe_next(request.query_params.get("next"))
    try:
        return await _client(request).authorize_redirect(request, callback_url(settings_of(request)))
    except Exception:  # the provider is down or its discovery document is broken: say so, keep serving
        log.warning("OpenID provider unavailable at start", exc_info=True)
        return _back_to_sign_in("oidc_unavailable")


async def callback(request: Request):
    settings = settings_of(request)
    if not oidc_enabled(settings):
        return _back_to_sign_in("oidc_unavailable")
    client = _client(request)
    try:
        metadata = await client.load_server_metadata()
        # authlib accepts what the metadata lists; never an unsigned (none) or shared-secret (HS*) ID token.
        algs = [a for a in metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
                if a != "none" and not a.startswith("HS")]
        metadata["id_token_signing_alg_values_supported"] = algs or ["RS256"]
        # authlib checks state, exchanges the code with the PKCE verifier, verifies the ID token's
        # signature against the provider's JWKS and its nonce; these options add issuer and audience.
        token = await client.authorize_access_token(request, claims_options={
            "iss": {"essential": True, "value": metadata.get("issuer", settings.oidc_issuer)},
            "aud": {"essential": True, "value": settings.oidc_client_id}})
    except (OAuthError, JoseError) as exc:
        log.warning("OpenID sign-in refused: %s", exc)
        return _back_to_sign_in("oidc_failed")
    except Exception:  # a malformed answer from the provider is its failure, not a 500 of ours
        log.warning("OpenID sign-in failed", exc_info=True)
        return _back_to_sign_in("oidc_failed")
    claims = token.get("userinfo")
    if not claims:  # no ID token: nothing signed says who this is
        log.warning("OpenID provider answered without an ID token")
        return _back_to_sign_in("oidc_failed")
    try:
        started = await run_in_threadpool(
            sign_in_with_oidc, billing_of(request), issuer=claims["iss"], subject=str(claims.get("sub") or ""),
            email=claims.get("email"), email_verified=claims.get("email_verified") is True,
            name=str(claims.get("name") or ""), ip=client_ip(request), user_agent=user_agent(request),
            now=utcnow(), ttl=session_ttl(settings))
    except ServiceError as exc:
        return _back_to_sign_in(exc.code)
    response = RedirectResponse(safe_next(request.session.pop("next", None)), status_code=303)
    set_session_cookie(response, settings, started.token)
    return response


class OIDCApp:
    """The ASGI app mounted at /auth/oidc. Being a plain callable (not a Starlette app), it leaves
    `scope["app"]` as the API app, whose state holds the billing context and settings."""

    def __init__(self) -> None:
        self._router = Router(routes=[Route("/start", start), Route("/callback", callback)])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        app = getattr(state, "oidc_flow_app", None)
        if app is None:  # built on first use: the secret comes from this app's settings
            settings: Settings = state.settings
            app = state.oidc_flow_app = SessionMiddleware(
                self._router, secret_key=_flow_secret(settings), session_cookie=FLOW_COOKIE,
                max_age=FLOW_MAX_AGE_S, path="/auth/oidc", same_site="lax", https_only=is_secure(settings))
        await app(scope, receive, send)
