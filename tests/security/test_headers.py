"""Issue 12, finding 3: security headers on every answer, the session cookie Secure whenever the request came
over HTTPS (directly or through a trusted proxy), and the Host header checked before any route."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from portal.api.app import create_api
from portal.runtime import build_billing
from portal.security.headers import inline_script_hashes
from portal.settings import Settings
from tests.live_server import copy_sqlite_template, run_api_server

from .reflex_demo import demo_reflex_server

PASSWORD = "correct horse 1843"
JSON = {"Accept": "application/json"}


def _csp(response: httpx.Response) -> dict[str, list[str]]:
    directives = (d.split() for d in response.headers["content-security-policy"].split(";") if d.strip())
    return {d[0]: d[1:] for d in directives}


def _assert_protected(response: httpx.Response) -> None:
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] in ("same-origin", "no-referrer", "strict-origin-when-cross-origin")
    assert _csp(response)["frame-ancestors"] == ["'none'"]


def _session_cookie(response: httpx.Response) -> str:
    return next(v for v in response.headers.get_list("set-cookie") if v.startswith("tollgate_session="))


# -- the API alone (uvicorn), public URL http://127.0.0.1:<port> -----------------------------------------
@pytest.fixture(scope="module")
def api(tmp_path_factory, sqlite_template):
    with run_api_server(copy_sqlite_template(sqlite_template, tmp_path_factory.mktemp("headers"))) as live:
        yield live


def test_every_api_answer_carries_the_security_headers(api):
    for path, status in (("/api/health", 200), ("/api/v1/nothing-here", 404), ("/auth/session", 401),
                         ("/api/v1/projects", 401)):
        response = httpx.get(f"{api.base_url}{path}")
        assert response.status_code == status, path
        _assert_protected(response)
        assert _csp(response)["default-src"] == ["'none'"]
        assert "strict-transport-security" not in response.headers  # plain http


def test_the_api_docs_page_allows_swagger_ui_and_its_own_inline_script_only(api):
    docs = httpx.get(f"{api.base_url}/api/docs")
    assert docs.status_code == 200
    _assert_protected(docs)
    scripts = _csp(docs)["script-src"]
    assert "'unsafe-inline'" not in scripts and "https://cdn.jsdelivr.net" in scripts
    assert inline_script_hashes(docs.content) and set(inline_script_hashes(docs.content)) <= set(scripts)


def test_over_https_through_the_local_proxy_the_cookie_is_secure_and_hsts_is_sent(api):
    response = httpx.post(f"{api.base_url}/auth/sign-up", headers={**JSON, "X-Forwarded-Proto": "https"},
                          data={"email": f"tls-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert "; secure" in _session_cookie(response).lower()
    assert response.headers["strict-transport-security"].startswith("max-age=")
    plain = httpx.post(f"{api.base_url}/auth/sign-up", headers=JSON,
                       data={"email": f"plain-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD})
    assert "; secure" not in _session_cookie(plain).lower()


def test_a_request_for_another_host_is_refused_before_any_route(api):
    for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example", "user@127.0.0.1", ""):
        response = httpx.get(f"{api.base_url}/api/health", headers={"Host": host})
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_host", host
        _assert_protected(response)
    for host in (f"127.0.0.1:{api.port}", "localhost", "[::1]:8080"):
        assert httpx.get(f"{api.base_url}/api/health", headers={"Host": host}).status_code == 200, host


@pytest.mark.parametrize("peer, trusted", [("10.0.0.5", True), ("192.0.2.7", False)])
def test_only_a_trusted_proxy_says_how_and_from_where_the_browser_came(tmp_path, sqlite_template, peer, trusted):
    url = copy_sqlite_template(sqlite_template, tmp_path)
    settings = Settings(_env_file=None, env="test", database_url=url, data_dir=tmp_path,
                        public_url="http://localhost:3000", trusted_proxies="10.0.0.0/8")
    billing = build_billing(settings)
    try:
        with TestClient(create_api(billing, settings), base_url="http://localhost:3000",
                        client=(peer, 40000)) as client:
            response = client.post("/auth/sign-up", data={"email": "proxied@example.com", "password": PASSWORD},
                                   headers={**JSON, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    finally:
        billing.engine.dispose()
    assert response.status_code == 200
    assert ("; secure" in _session_cookie(response).lower()) is trusted
    assert ("strict-transport-security" in response.headers) is trusted
    engine = create_engine(url)
    try:
        with engine.connect() as conn:  # the session remembers the address the rate limits also count by
            stored_ip = conn.execute(text("SELECT ip FROM web_sessions")).scalar_one()
    finally:
        engine.dispose()
    assert stored_ip == ("203.0.113.9" if trusted else peer)


# -- the production server (Reflex: the compiled pages on the same port) -----------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory, request):
    return demo_reflex_server(tmp_path_factory, request.config)


@pytest.mark.slow
def test_pages_carry_a_csp_that_forbids_framing_and_runs_only_the_builds_inline_scripts(demo):
    for path in ("/sign-in/", "/", "/settings/", "/projects/prj_unknown"):
        page = httpx.get(f"{demo.base_url}{path}")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), path
        _assert_protected(page)
        csp = _csp(page)
        assert "'unsafe-inline'" not in csp["script-src"], path
        assert set(inline_script_hashes(page.content)) <= set(csp["script-src"]), path
        assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'self'"]
    for path in ("/api/health", "/_health"):  # the API and Reflex's own routes behind the same layer
        _assert_protected(httpx.get(f"{demo.base_url}{path}"))


@pytest.mark.slow
def test_a_foreign_host_no_longer_sends_sign_in_to_that_host(demo):
    refused = httpx.get(f"{demo.base_url}/sign-in", headers={"Host": "evil.example"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_host"
    assert "location" not in refused.headers
    ours = httpx.get(f"{demo.base_url}/sign-in")
    assert ours.status_code in (200, 307, 308)
    assert ours.headers.get("location", "/").startswith(("/", demo.base_url))
