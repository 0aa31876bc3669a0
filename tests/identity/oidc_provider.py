"""A real OpenID provider for the tests, built from authlib's server parts and served by uvicorn.

Authorization code flow with PKCE required (CodeChallenge), OpenIDCode for ID tokens signed RS256 with
a fresh RSA key (joserfc), discovery at /.well-known/openid-configuration and the keys at /jwks.
It approves one test user without asking. `mode` makes it misbehave the ways a client must notice:
"wrong_nonce", "unsigned" (alg none), "forged" (signed by a key not in the JWKS).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from authlib.common.security import generate_token
from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, JsonRequest
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, OpenIDCode, UserInfo
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in ("openid", "email", "profile"))

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post") if endpoint == "token" else True

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: dict
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time


class _Request(OAuth2Request):
    """authlib's request over what Starlette already read (query and form merged, like Flask's values)."""

    def __init__(self, request: Request, form: dict[str, str]) -> None:
        super().__init__(request.method, str(request.url), headers=request.headers)
        self._args, self._form = dict(request.query_params), form
        self.payload = BasicOAuth2Payload({**self._args, **self._form})

    @property
    def args(self):
        return self._args

    @property
    def form(self):
        return self._form


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


class OpenIDProvider:
    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.port = _free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client = Client(client_id, client_secret, [])
        self.key = RSAKey.generate_key(2048, parameters={"kid": "provider-key", "use": "sig", "alg": "RS256"})
        self.rogue_key = RSAKey.generate_key(2048, parameters={"kid": "provider-key"})
        self.user = {"sub": "user-1", "email": "oidc.user@example.com", "email_verified": True, "name": "Olive Idc"}
        self.mode = "normal"
        self.advertised_algs = ["RS256"]  # what discovery says; a careless provider may list "none"
        self.codes: dict[str, Code] = {}
        self.nonces: set[str] = set()
        self.server = self._authorization_server()
        self.app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery), Route("/jwks", self.jwks),
            Route("/authorize", self.authorize), Route("/token", self.token, methods=["POST"])])
        self._uvicorn: uvicorn.Server | None = None

    # -- authlib's parts ---------------------------------------------------------------------------
    def _authorization_server(self) -> AuthorizationServer:
        provider = self

        class Server(AuthorizationServer):
            def query_client(self, client_id):
                return provider.client if client_id == provider.client.client_id else None

            def save_token(self, token, request):
                pass

            def create_oauth2_request(self, request):
                return request  # already an OAuth2Request, built by the route that read the body

            def create_json_request(self, request):
                return JsonRequest(request.method, str(request.url), request.headers)

            def handle_response(self, status, body, headers):
                content = json.dumps(body) if isinstance(body, dict) else body
                return Response(content, status_code=status, headers=dict(headers),
                                media_type="application/json" if isinstance(body, dict) else None)

            def send_signal(self, name, *args, **kwargs):
                pass

        class Grant(AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, request):
                data = request.payload.data
                provider.nonces.add(data.get("nonce") or "")
                provider.codes[code] = Code(code, request.client.get_client_id(), data.get("redirect_uri"),
                                            request.payload.scope, dict(request.user), data.get("nonce"),
                                            data.get("code_challenge"), data.get("code_challenge_method"))

            def query_authorization_code(self, code, client):
                item = provider.codes.get(code)
                return item if item and item.client_id == client.get_client_id() else None

            def delete_authorization_code(self, authorization_code):
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class OpenID(OpenIDCode):
            def exists_nonce(self, nonce, request):
                return nonce in provider.nonces

            def resolve_client_private_key(self, client):
                return provider.rogue_key if provider.mode == "forged" else provider.key

            def get_client_claims(self, client):
                return {"iss": provider.issuer, "aud": [client.get_client_id()]}

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": "provider-key"}

            def generate_user_info(self, user, scope):
                info = UserInfo(sub=user["sub"], name=user.get("name", ""))
                if "email" in scope:
                    info.update(email=user["email"], email_verified=user["email_verified"])
                if provider.mode == "wrong_nonce":
                    info["nonce"] = "a-nonce-the-client-never-sent"  # overrides the code's nonce
                return info

            def process_token(self, grant, response):
                token = super().process_token(grant, response)
                if provider.mode == "unsigned" and "id_token" in token:
                    claims = token["id_token"].split(".")[1]
                    token["id_token"] = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{claims}."
                return token

        server = Server()
        server.register_token_generator("default", BearerTokenGenerator(lambda **kw: generate_token(42)))
        server.register_grant(Grant, [CodeChallenge(required=True), OpenID(require_nonce=True)])
        return server

    # -- HTTP ---------------------------------------------------------------------------------------
    async def discovery(self, request: Request):
        return JSONResponse({
            "issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": self.advertised_algs, "scopes_supported": ["openid", "email", "profile"],
            "code_challenge_methods_supported": ["S256"], "grant_types_supported": ["authorization_code"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]})

    async def jwks(self, request: Request):
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request):
        oauth_request = _Request(request, {})
        grant = self.server.get_consent_grant(oauth_request, end_user=self.user)  # approves without asking
        return self.server.create_authorization_response(oauth_request, grant_user=self.user, grant=grant)

    async def token(self, request: Request):
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        return self.server.create_token_response(_Request(request, form))

    # -- the process ----------------------------------------------------------------------------------
    def start(self) -> None:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._uvicorn = uvicorn.Server(config)
        threading.Thread(target=self._uvicorn.run, daemon=True, name="oidc-provider").start()
        deadline = time.monotonic() + 10
        while not self._uvicorn.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test OpenID provider did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_client_credentials() -> tuple[str, str]:
    return "tollgate-" + secrets.token_hex(4), secrets.token_urlsafe(32)
