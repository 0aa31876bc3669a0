"""The /auth routes on a live server (uvicorn, SQLite): cookies, errors, limits, sign-out."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie

import pytest

from billing_core.services.identity import SIGN_IN_PER_EMAIL_IP

from .conftest import PASSWORD
from .servers import api_server

JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, sqlite_template):
    with api_server(tmp_path_factory.mktemp("identity-http"), sqlite_template) as live:
        yield live


@pytest.fixture
def client(server):
    # As a browser on the site: a request that changes something with the session cookie names its origin.
    with server.client(headers={"Origin": server.base_url}) as c:
        yield c


def _email() -> str:
    return f"http-{uuid.uuid4().hex[:12]}@example.com"


def _session_cookie(response) -> SimpleCookie:
    headers = [v for v in response.headers.get_list("set-cookie") if v.startswith("tollgate_session=")]
    assert len(headers) == 1, response.headers
    return SimpleCookie(headers[0])


def _sign_up(client, email, password=PASSWORD, **headers):
    return client.post("/auth/sign-up", data={"email": email, "password": password}, headers=headers)


def test_sign_up_redirects_home_with_an_httponly_lax_cookie_that_expires(client):
    email = _email()
    response = _sign_up(client, email)
    assert response.status_code == 303 and response.headers["location"] == "/"
    morsel = _session_cookie(response)["tollgate_session"]
    assert morsel["httponly"] and morsel["samesite"].lower() == "lax" and morsel["path"] == "/"
    assert not morsel["secure"]  # public_url is http here; https turns Secure on
    assert int(morsel["max-age"]) == 14 * 86_400
    expires = parsedate_to_datetime(morsel["expires"])
    assert abs(expires - (datetime.now(timezone.utc) + timedelta(days=14))) < timedelta(minutes=1)
    assert client.get("/auth/session").json()["user"]["email"] == email


def test_sign_in_sets_a_cookie_that_identifies_the_user(server, client):
    email = _email()
    _sign_up(client, email)
    with server.client() as fresh:
        response = fresh.post("/auth/sign-in", data={"email": email.upper(), "password": PASSWORD},
                              headers=JSON)
        assert response.status_code == 200 and response.json()["user"]["email"] == email
        assert _session_cookie(response)["tollgate_session"]["httponly"]
        assert fresh.get("/auth/session").json()["user"]["email"] == email


def test_a_wrong_password_is_401_for_json_and_a_redirect_with_a_code_for_browsers(client):
    email = _email()
    _sign_up(client, email)
    with_json = client.post("/auth/sign-in", data={"email": email, "password": "nope nope 1"}, headers=JSON)
    assert with_json.status_code == 401
    assert with_json.json()["error"]["code"] == "invalid_credentials"
    assert "tollgate_session=" not in with_json.headers.get("set-cookie", "")
    browser = client.post("/auth/sign-in", data={"email": email, "password": "nope nope 1", "next": "/device"})
    assert browser.status_code == 303
    assert browser.headers["location"] == "/sign-in?error=invalid_credentials&next=%2Fdevice"


def test_a_weak_password_is_refused_with_the_rule_it_breaks(client):
    response = _sign_up(client, _email(), password="password", **JSON)
    assert response.status_code == 422 and response.json()["error"]["code"] == "password_too_short"
    assert _sign_up(client, _email(), password="password").headers["location"] == "/sign-up?error=password_too_short"


def test_the_sixth_failure_in_a_row_is_429_with_retry_after(client):
    email = _email()
    _sign_up(client, email)
    for _ in range(SIGN_IN_PER_EMAIL_IP.attempts):
        assert client.post("/auth/sign-in", data={"email": email, "password": "wrong wrong 1"},
                           headers=JSON).status_code == 401
    limited = client.post("/auth/sign-in", data={"email": email, "password": PASSWORD}, headers=JSON)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert 800 < int(limited.headers["retry-after"]) <= 900
    browser = client.post("/auth/sign-in", data={"email": email, "password": PASSWORD})
    assert browser.status_code == 429 and int(browser.headers["retry-after"]) > 0
    assert 'http-equiv="refresh"' in browser.text and "error=rate_limited" in browser.text


def test_sign_out_revokes_the_session_so_the_old_cookie_no_longer_works(server, client):
    email = _email()
    signed_up = _sign_up(client, email)
    old_cookie = signed_up.cookies["tollgate_session"]
    assert client.get("/auth/session").status_code == 200
    out = client.post("/auth/sign-out")
    assert out.status_code == 303 and out.headers["location"] == "/sign-in"
    assert 'tollgate_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    with server.client(cookies={"tollgate_session": old_cookie}) as replay:
        refused = replay.get("/auth/session")
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "not_signed_in"


def test_a_tampered_or_foreign_cookie_is_refused(server, client):
    signed_up = _sign_up(client, _email())
    cookie = signed_up.cookies["tollgate_session"]
    for forged in (cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"), "made-up", ""):
        with server.client(cookies={"tollgate_session": forged}) as other:
            assert other.get("/auth/session").status_code == 401


def test_a_form_posted_from_another_site_is_refused(client):
    response = client.post("/auth/sign-in", data={"email": _email(), "password": PASSWORD},
                           headers={"Origin": "https://evil.example"})
    assert response.status_code == 303 and response.headers["location"] == "/sign-in?error=forbidden_origin"


def test_next_only_ever_points_into_this_site(client):
    email = _email()
    _sign_up(client, email)
    for target, expected in (("/device?user_code=BCDF-GHJK", "/device?user_code=BCDF-GHJK"),
                             ("https://evil.example/", "/"), ("//evil.example/", "/"), ("/\\evil.example", "/")):
        response = client.post("/auth/sign-in", data={"email": email, "password": PASSWORD, "next": target})
        assert response.status_code == 303 and response.headers["location"] == expected


def test_oidc_start_without_configuration_says_so_on_the_sign_in_page(client):
    response = client.get("/auth/oidc/start")
    assert response.status_code == 303 and response.headers["location"] == "/sign-in?error=oidc_unavailable"


def test_the_auth_routes_are_in_the_openapi_document(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/auth/sign-in", "/auth/sign-up", "/auth/sign-out"} <= {p for p in paths if "post" in paths[p]}
    assert "get" in paths["/auth/session"]
