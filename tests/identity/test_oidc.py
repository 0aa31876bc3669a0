"""OpenID Connect end to end: the Tollgate API (uvicorn) against a real provider on 127.0.0.1."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from .conftest import PASSWORD, oidc_env
from .servers import api_server

ACCOUNT = {"sub": "user-1", "email": "oidc.user@example.com", "email_verified": True, "name": "Olive Idc"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, sqlite_template, provider):
    with api_server(tmp_path_factory.mktemp("identity-oidc"), sqlite_template, **oidc_env(provider)) as live:
        provider.client.redirect_uris[:] = [f"{live.base_url}/auth/oidc/callback"]
        yield live


@pytest.fixture(autouse=True)
def well_behaved(provider):
    provider.mode, provider.user = "normal", dict(ACCOUNT)
    yield


def _db(server):
    return closing(sqlite3.connect(server.log_path.parent / "tollgate.db"))


def _to_callback(client, provider, next_path: str | None = None) -> str:
    """Start at Tollgate, pass through the provider (which approves at once); the callback URL it sends."""
    start = client.get("/auth/oidc/start" + (f"?{urlencode({'next': next_path})}" if next_path else ""))
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(provider.issuer + "/authorize?")
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["nonce"][0] and query["state"][0] and query["scope"] == ["openid email profile"]
    approved = client.get(authorize)
    assert approved.status_code == 302, approved.text
    return approved.headers["location"]


def test_first_sign_in_creates_the_account_and_user_and_sets_the_session_cookie(server, provider):
    with server.client() as client:
        callback = _to_callback(client, provider, next_path="/device?user_code=BCDF-GHJK")
        assert callback.startswith(f"{server.base_url}/auth/oidc/callback?")
        done = client.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/device?user_code=BCDF-GHJK"
        assert "tollgate_session=" in done.headers["set-cookie"] and "HttpOnly" in done.headers["set-cookie"]
        me = client.get("/auth/session").json()["user"]
    assert me["email"] == "oidc.user@example.com" and me["name"] == "Olive Idc"
    with _db(server) as db:
        user = db.execute("SELECT account_id, oidc_issuer, oidc_subject, password_hash FROM users "
                          "WHERE email = ?", ("oidc.user@example.com",)).fetchone()
        plan = db.execute("SELECT plan FROM accounts WHERE id = ?", (me["account_id"],)).fetchone()
    assert user == (me["account_id"], provider.issuer, "user-1", None) and plan == ("hobby",)


def test_the_whole_flow_follows_redirects_to_a_signed_in_browser(server, provider):
    with server.client(follow_redirects=True) as client:
        client.get("/auth/oidc/start")  # ends on "/", which this API-only server does not serve
        assert client.cookies.get("tollgate_session")
        assert client.get("/auth/session").json()["user"]["email"] == "oidc.user@example.com"


def _refused(server, provider, *, tamper=lambda url: url) -> str:
    with server.client() as client:
        done = client.get(tamper(_to_callback(client, provider)))
        assert done.status_code == 303, done.text
        assert "tollgate_session=" not in done.headers.get("set-cookie", "")
        assert client.get("/auth/session").status_code == 401
        return done.headers["location"]


def test_a_tampered_state_is_refused(server, provider):
    def tamper(url: str) -> str:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        query["state"] = [query["state"][0][:-1] + ("x" if not query["state"][0].endswith("x") else "y")]
        return parts._replace(query=urlencode(query, doseq=True)).geturl()
    assert _refused(server, provider, tamper=tamper) == "/sign-in?error=oidc_failed"
    assert "refused: mismatching_state" in server.log_tail()


def test_an_id_token_with_the_wrong_nonce_is_refused(server, provider):
    provider.mode = "wrong_nonce"
    assert _refused(server, provider) == "/sign-in?error=oidc_failed"
    assert "refused: invalid_claim: Invalid claim: 'nonce'" in server.log_tail()


def test_an_unsigned_id_token_is_refused(server, provider):
    provider.mode = "unsigned"
    assert _refused(server, provider) == "/sign-in?error=oidc_failed"
    assert "refused: unsupported_algorithm" in server.log_tail()


def test_an_unsigned_id_token_is_refused_even_when_the_provider_advertises_none(tmp_path, sqlite_template,
                                                                                 provider):
    provider.mode, provider.advertised_algs = "unsigned", ["none", "HS256", "RS256"]
    try:
        with api_server(tmp_path, sqlite_template, **oidc_env(provider)) as fresh:  # metadata is cached per app
            provider.client.redirect_uris.append(f"{fresh.base_url}/auth/oidc/callback")
            assert _refused(fresh, provider) == "/sign-in?error=oidc_failed"
            assert "refused: unsupported_algorithm" in fresh.log_tail()
    finally:
        provider.advertised_algs = ["RS256"]


def test_an_id_token_signed_by_a_key_not_in_the_jwks_is_refused(server, provider):
    provider.mode = "forged"
    assert _refused(server, provider) == "/sign-in?error=oidc_failed"
    assert "refused: bad_signature" in server.log_tail()


def test_an_unverified_email_cannot_create_an_account(server, provider):
    provider.user = {**ACCOUNT, "sub": "user-2", "email": "unverified@example.com", "email_verified": False}
    assert _refused(server, provider) == "/sign-in?error=oidc_email_unverified"
    with _db(server) as db:
        assert db.execute("SELECT count(*) FROM users WHERE email = 'unverified@example.com'").fetchone() == (0,)


def test_a_verified_email_links_the_user_who_signed_up_with_a_password(server, provider):
    with server.client() as client:
        signed_up = client.post("/auth/sign-up", data={"email": "linked@example.com", "password": PASSWORD},
                                headers={"Accept": "application/json"}).json()["user"]
    provider.user = {**ACCOUNT, "sub": "user-3", "email": "linked@example.com"}
    with server.client() as client:
        client.get(_to_callback(client, provider))
        assert client.get("/auth/session").json()["user"]["id"] == signed_up["id"]
